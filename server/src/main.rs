//! `palisade-serve`: the Envoy ext_authz server. See `palisade-serve --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use palisade::{Config, Direction};
use palisade_server::{ServeOptions, start};

const USAGE: &str = "\
usage: palisade-serve --bundle PATH... [options]

  --bundle PATH         a bundle file or directory (repeatable); reloaded when it changes
  --config FILE         engine configuration (YAML, as for `palisade decide`)
  --listen ADDR         gRPC on TCP (repeatable; default 127.0.0.1:9191 when no --unix)
  --unix PATH           gRPC on a Unix socket
  --metrics ADDR        Prometheus text on http://ADDR/metrics
  --direction D         both (default), ingress or egress
  --remote-ip-header H  header whose last element is source.remote_ip (never source.ip)
  --no-watch            load the bundle once (SIGHUP still reloads nothing)
  --max-message-bytes N largest CheckRequest accepted (default 4194304)
  --max-streams N       concurrent streams per HTTP/2 connection (default 1024)
  --drain-seconds N     on SIGTERM/SIGINT, wait at most N s for checks in flight (default 10)
  --log-level L         error, warn, info (default), debug, trace

Prints one `listening <kind> <address>` line per listener on stdout once bound.
Exit status: 0 after a graceful shutdown, 1 when it cannot start, 2 on usage errors.";

struct Args {
    opts: ServeOptions,
    config_path: Option<PathBuf>,
    drain: Duration,
    log_level: tracing::Level,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut opts = ServeOptions::default();
    let mut config_path: Option<PathBuf> = None;
    let mut drain = Duration::from_secs(10);
    let mut log_level = tracing::Level::INFO;
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bundle" => opts.bundles.push(PathBuf::from(value()?)),
            "--config" => config_path = Some(PathBuf::from(value()?)),
            "--listen" => opts.listen.push(parse_addr(&value()?)?),
            "--unix" => opts.unix = Some(PathBuf::from(value()?)),
            "--metrics" => opts.metrics = Some(parse_addr(&value()?)?),
            "--direction" => {
                opts.translate.direction = match value()?.as_str() {
                    "both" => Direction::Both,
                    "ingress" => Direction::Ingress,
                    "egress" => Direction::Egress,
                    other => return Err(format!("--direction {other:?}: expected both, ingress or egress")),
                }
            }
            "--remote-ip-header" => opts.translate.remote_ip_header = Some(value()?.to_ascii_lowercase()),
            "--no-watch" => opts.watch = false,
            "--max-message-bytes" => opts.max_message_bytes = parse_num(flag, &value()?)?,
            "--max-streams" => opts.max_concurrent_streams = parse_num(flag, &value()?)?,
            "--drain-seconds" => drain = Duration::from_secs(parse_num(flag, &value()?)?),
            "--log-level" => {
                log_level =
                    value()?.parse().map_err(|_| format!("{flag}: expected error, warn, info, debug or trace"))?
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.bundles.is_empty() {
        return Err("--bundle is required".to_string());
    }
    if opts.listen.is_empty() && opts.unix.is_none() {
        opts.listen.push(SocketAddr::from(([127, 0, 0, 1], 9191)));
    }
    Ok(Args { opts, config_path, drain, log_level })
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an address (IP:PORT)"))
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{flag}: {s:?} is not a number in range"))
}

async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn read_config(path: &std::path::Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    Config::from_yaml(&text).map_err(|e| format!("--config {}: {e}", path.display()))
}

async fn run(mut args: Args) -> ExitCode {
    if let Some(path) = &args.config_path {
        match read_config(path) {
            Ok(c) => args.opts.config = c,
            Err(e) => {
                eprintln!("palisade-serve: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let unix = args.opts.unix.clone();
    let running = match start(args.opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade-serve: {e}");
            return ExitCode::from(1);
        }
    };
    for addr in &running.grpc_addrs {
        println!("listening grpc {addr}");
    }
    if let Some(path) = &unix {
        println!("listening unix {}", path.display());
    }
    if let Some(addr) = &running.metrics_addr {
        println!("listening metrics {addr}");
    }
    stop_requested().await;
    tracing::info!("stopping: finishing the checks in flight");
    let result = running.shutdown(args.drain).await;
    if let Some(path) = &unix {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade-serve: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("palisade-serve: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt().with_max_level(args.log_level).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade-serve: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(args))
}
