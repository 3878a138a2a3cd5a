//! `palisade-ownership`: who may change which tier, checked offline (see [`palisade_ownership::cli`]).

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    palisade_ownership::cli::main(&argv)
}
