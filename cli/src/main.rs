//! The `palisade` command: `decide`, `explain` and `lint` over a bundle of manifests, and
//! `sync` with a live cluster.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use palisade::{Config, Engine, OwnedRequest, Reason};

mod flows;
mod sync;

const USAGE: &str = "\
usage:
  palisade decide  --bundle PATH... (--request FILE|- | --requests FILE.jsonl) [--config FILE]
  palisade explain --bundle PATH... (--request FILE|- | --requests FILE.jsonl) [--config FILE]
  palisade lint    --bundle PATH... [--config FILE]
  palisade replay  --flow-log FILE... --bundle NEW... [--baseline OLD...] [--format table|json|markdown]
  palisade review  --rbac PATH... --as USER [--as-group G]... --base PATH... --head PATH...
  palisade can-i   VERB KIND [NAME] --rbac PATH... --as USER [--as-group G]... [--namespace NS] [--tier T]...
  palisade sync    (--etcd URL... | --dir PATH) [--dump DIR] [--once] [--config FILE]

decide also takes --flow-log FILE|- [--aggregation 0-3]: Calico flow-log records of the
decisions (docs/flow-logs.md).

PATH is a file or a directory (its *.yaml, *.yml and *.json files, recursively), or - for
a dump on standard input (`kubectl get -A -o yaml ... | palisade decide --bundle - ...`).
--default-namespace NS places namespaced objects that name no namespace in NS (as
`kubectl apply -n NS` would); the default is `default`.
Exit status: 0 when decisions were printed, 1 when the bundle or config cannot be loaded,
2 on usage errors.";

struct Args {
    command: String,
    bundles: Vec<String>,
    request: Option<String>,
    requests: Option<String>,
    config: Option<String>,
    flow_log: Option<String>,
    aggregation: Option<u8>,
    default_namespace: Option<String>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter().peekable();
    let command = it.next().ok_or("missing command")?.clone();
    if !matches!(command.as_str(), "decide" | "explain" | "lint") {
        return Err(format!("unknown command {command:?}"));
    }
    let mut a = Args {
        command,
        bundles: Vec::new(),
        request: None,
        requests: None,
        config: None,
        flow_log: None,
        aggregation: None,
        default_namespace: None,
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bundle" => {
                let before = a.bundles.len();
                while let Some(v) = it.peek() {
                    if v.starts_with("--") {
                        break;
                    }
                    a.bundles.push((*v).clone());
                    it.next();
                }
                if a.bundles.len() == before {
                    return Err("--bundle needs at least one path".into());
                }
            }
            "--request" => a.request = Some(it.next().ok_or("--request needs a file or -")?.clone()),
            "--requests" => a.requests = Some(it.next().ok_or("--requests needs a file")?.clone()),
            "--config" => a.config = Some(it.next().ok_or("--config needs a file")?.clone()),
            "--default-namespace" => {
                a.default_namespace = Some(it.next().ok_or("--default-namespace needs a namespace")?.clone());
            }
            "--flow-log" => a.flow_log = Some(it.next().ok_or("--flow-log needs a file or -")?.clone()),
            "--aggregation" => {
                let v = it.next().ok_or("--aggregation needs 0, 1, 2 or 3")?;
                a.aggregation = Some(v.parse().map_err(|_| format!("--aggregation {v}: give 0, 1, 2 or 3"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.bundles.is_empty() {
        return Err("--bundle is required".into());
    }
    if a.bundles.iter().any(|b| b == "-") && (a.request.as_deref() == Some("-") || a.requests.as_deref() == Some("-")) {
        return Err("standard input can hold the bundle or the requests, not both".into());
    }
    if a.command != "decide" && (a.flow_log.is_some() || a.aggregation.is_some()) {
        return Err("--flow-log and --aggregation are for decide".into());
    }
    if a.command == "lint" {
        if a.request.is_some() || a.requests.is_some() {
            return Err("lint takes no requests".into());
        }
    } else if a.request.is_some() == a.requests.is_some() {
        return Err("give exactly one of --request or --requests".into());
    }
    Ok(a)
}

fn read_input(path: &str) -> std::io::Result<Vec<u8>> {
    if path == "-" {
        let mut s = Vec::new();
        std::io::stdin().read_to_end(&mut s)?;
        Ok(s)
    } else {
        std::fs::read(path)
    }
}

/// Every error of a rejected bundle, one per line, the headline first.
fn load_errors(e: &palisade::LoadError) -> String {
    e.report()
}

fn load(args: &Args) -> Result<Engine, String> {
    let mut config = match &args.config {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            Config::from_yaml(&text).map_err(|e| format!("{p}: {e}"))?
        }
    };
    if let Some(ns) = &args.default_namespace {
        config.default_namespace = ns.clone();
        config.validate().map_err(|e| format!("--default-namespace: {}", e.message))?;
    }
    let limit = config.max_bundle_bytes;
    let engine = Engine::new(config);
    let paths: Vec<&String> = args.bundles.iter().filter(|b| *b != "-").collect();
    let mut files = palisade::load::read_paths(&paths, limit).map_err(|e| load_errors(&e))?;
    if args.bundles.iter().any(|b| b == "-") {
        let mut bytes = Vec::new();
        std::io::stdin().take(limit as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("<stdin>: {e}"))?;
        if bytes.len() > limit {
            return Err(format!("<stdin>: the bundle is over {limit} bytes (max_bundle_bytes)"));
        }
        let text = String::from_utf8(bytes).map_err(|_| "<stdin>: the bundle is not UTF-8".to_string())?;
        files.push(("<stdin>".to_string(), text));
    }
    let sources: Vec<palisade::load::Source<'_>> =
        files.iter().map(|(n, t)| palisade::load::Source { name: n, text: t }).collect();
    engine.load(&sources).map_err(|e| load_errors(&e))?;
    Ok(engine)
}

/// Why a request could not be read, for a person: no `-` placeholder for the whole text.
/// A one-line request (`--requests`) says "at column N", not "at line 1 column N".
fn request_error(e: &palisade::RequestError) -> String {
    let message = e.message.replace(" at line 1 column ", " at column ");
    if e.field == "-" { message } else { format!("{}: {message}", e.field) }
}

/// The text of a request line or file; bytes that are not UTF-8 are an invalid request.
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let byte = bytes.get(at).copied().unwrap_or_default();
        format!("the request is not UTF-8 (byte 0x{byte:02x} at column {} starts no valid character)", at + 1)
    })
}

/// Decides one request; one that cannot be read or is refused by validation is an
/// `invalid_request` deny, and its cause goes to stderr as `palisade: <at>: invalid
/// request: <cause>` (`at` is `file:line` for `--requests`).
fn answer(
    engine: &Engine,
    input: Result<&str, String>,
    at: &str,
    explain: bool,
    out: &mut impl Write,
    flow: &mut Option<flows::Recorder>,
) -> std::io::Result<()> {
    let parsed = input.and_then(|text| OwnedRequest::from_json(text).map_err(|e| request_error(&e)));
    let (json, readable) = match &parsed {
        Ok(req) => {
            if let Some(f) = flow.as_mut() {
                f.record(engine, req);
            }
            let e = engine.explain(&req.as_request());
            if e.decision.reason == Reason::InvalidRequest {
                eprintln!("palisade: {at}: invalid request: {}", e.decision.detail.unwrap_or("refused by validation"));
            }
            (e.json().clone(), e.to_string())
        }
        Err(why) => {
            let unparsed = palisade::RequestError { field: "-".into(), message: why.clone() };
            let json = palisade::answer::Answer::unparsed(engine, unparsed).json();
            eprintln!("palisade: {at}: invalid request: {why}");
            (json, format!("decision: deny (invalid_request)\n  why: {why}\n"))
        }
    };
    if explain { writeln!(out, "{readable}") } else { writeln!(out, "{json}") }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let engine = match load(args) {
        Ok(e) => e,
        // lint reports its findings, errors included, on stdout.
        Err(e) if args.command == "lint" => {
            for line in e.lines() {
                println!("error: {line}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| e.to_string();
    match args.command.as_str() {
        "lint" => {
            let snapshot = engine.snapshot().ok_or("nothing loaded")?;
            let warnings = palisade::lint::lint(snapshot.bundle());
            for w in &warnings {
                writeln!(out, "{w}").map_err(io)?;
            }
            for n in palisade::lint::notes(snapshot.bundle()) {
                writeln!(out, "{n}").map_err(io)?;
            }
            writeln!(
                out,
                "{} policies, {} endpoints, {} network sets: 0 errors, {} warnings",
                snapshot.bundle().policies.len(),
                snapshot.bundle().endpoints.len(),
                snapshot.bundle().network_sets.len(),
                warnings.len()
            )
            .map_err(io)?;
        }
        cmd => {
            let explain = cmd == "explain";
            let mut flow = match &args.flow_log {
                Some(p) => Some(flows::Recorder::new(p, args.aggregation)?),
                None => None,
            };
            if let Some(path) = &args.request {
                let bytes = read_input(path).map_err(|e| format!("{path}: {e}"))?;
                let at = if path == "-" { "<stdin>" } else { path };
                answer(&engine, utf8(&bytes), at, explain, &mut out, &mut flow).map_err(io)?;
            } else if let Some(path) = &args.requests {
                let mut reader: Box<dyn BufRead> = if path == "-" {
                    Box::new(std::io::BufReader::new(std::io::stdin()))
                } else {
                    Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?))
                };
                let name = if path == "-" { "<stdin>" } else { path };
                // Bytes, not `lines()`: a line that is not UTF-8 is that line's invalid
                // request, and the lines after it still get their decisions.
                let mut line = Vec::new();
                for number in 1.. {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).map_err(|e| format!("{path}: {e}"))? == 0 {
                        break;
                    }
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    answer(&engine, utf8(text), &format!("{name}:{number}"), explain, &mut out, &mut flow)
                        .map_err(io)?;
                }
            }
            if let Some(f) = flow {
                out.flush().map_err(io)?;
                f.finish()?;
            }
            if explain && let Some(snapshot) = engine.snapshot() {
                for n in palisade::lint::skipped(snapshot.bundle()) {
                    writeln!(out, "{n}").map_err(io)?;
                }
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("sync") {
        return sync::main(argv.get(1..).unwrap_or_default());
    }
    if argv.first().map(String::as_str) == Some("replay") {
        return flows::replay_main(argv.get(1..).unwrap_or_default());
    }
    // Tier ownership (docs/ownership.md): the same commands as `palisade-ownership`.
    if matches!(argv.first().map(String::as_str), Some("review" | "can-i")) {
        return palisade_ownership::cli::main(&argv);
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("palisade: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            for line in msg.lines() {
                eprintln!("palisade: {line}");
            }
            ExitCode::from(1)
        }
    }
}
