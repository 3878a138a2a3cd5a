//! Flow logs on the command line: `decide --flow-log FILE [--aggregation N]` writes Calico
//! flow-log records of the decided requests, and `palisade replay` decides recorded flows
//! (Palisade's or Calico's own `flows.log`) under a new bundle and reports every verdict
//! that would change.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use palisade::flowlog::{self, Aggregation, Capture, FixedTrace, FlowLog, FlowLogConfig, FlowRecord, Sink};
use palisade::{Config, Engine, OwnedRequest};

/// Records the flow logs of a `decide` run and writes them, aggregated over the run, at the end.
pub struct Recorder {
    log: FlowLog,
    path: String,
    aggregation: Option<Aggregation>,
    records: Vec<FlowRecord>,
}

impl Recorder {
    /// A recorder writing to `path` (`-` for standard output) at `aggregation` (both
    /// actions), or at Felix's defaults (2 allowed, 1 denied) when `None`.
    pub fn new(path: &str, aggregation: Option<u8>) -> Result<Recorder, String> {
        let aggregation = match aggregation {
            None => None,
            Some(n) => Some(Aggregation::from_level(n).ok_or(format!("--aggregation {n}: give 0, 1, 2 or 3"))?),
        };
        let log = FlowLog::new(FlowLogConfig { capacity: 4096, ..FlowLogConfig::default() });
        Ok(Recorder { log, path: path.into(), aggregation, records: Vec::new() })
    }

    /// Logs one request's decision.
    pub fn record(&mut self, engine: &Engine, req: &OwnedRequest) {
        if let Some(s) = engine.snapshot()
            && self.log.stats().captured == 0
        {
            self.log.prepare(&s);
        }
        self.log.decide(engine, &req.as_request());
        if self.log.stats().captured - self.log.stats().drained >= 4000 {
            self.records.extend(self.log.drain());
        }
    }

    /// Aggregates and writes every record; says on stderr how many were dropped, if any.
    pub fn finish(mut self) -> Result<(), String> {
        self.records.extend(self.log.drain());
        let cfg = FlowLogConfig::default();
        let (allowed, denied) = match self.aggregation {
            Some(a) => (a, a),
            None => (cfg.aggregation_allowed, cfg.aggregation_denied),
        };
        let records = flowlog::aggregate(std::mem::take(&mut self.records), allowed, denied);
        let dropped = self.log.stats().dropped;
        if dropped > 0 {
            eprintln!("palisade: flow log: {dropped} decisions dropped (queue full)");
        }
        let result = if self.path == "-" {
            flowlog::StdoutSink.write(&records)
        } else {
            flowlog::FileSink::new(
                &self.path,
                flowlog::FileSink::DEFAULT_MAX_BYTES,
                flowlog::FileSink::DEFAULT_MAX_FILES,
            )
            .write(&records)
        };
        result.map_err(|e| format!("{}: {e}", self.path))
    }
}

const REPLAY_USAGE: &str = "\
usage:
  palisade replay --flow-log FILE... --bundle NEW... [--baseline OLD...] [--config FILE]
                  [--format table|json|markdown]

Decides every recorded flow (Palisade's or Calico's flows.log, JSON lines) under NEW and
reports the flows whose verdict changes, from the recorded verdict, or from OLD's when
--baseline is given. Exit status: 0 no change, 3 some verdict changes, 1 a bundle or file
cannot be read, 2 usage errors.";

struct ReplayArgs {
    flow_logs: Vec<String>,
    bundle: Vec<String>,
    baseline: Vec<String>,
    config: Option<String>,
    format: String,
}

fn values<'a>(
    it: &mut std::iter::Peekable<std::slice::Iter<'a, String>>,
    out: &mut Vec<String>,
    flag: &str,
) -> Result<(), String> {
    let before = out.len();
    while let Some(v) = it.peek() {
        if v.starts_with("--") {
            break;
        }
        out.push((*v).clone());
        it.next();
    }
    if out.len() == before { Err(format!("{flag} needs at least one path")) } else { Ok(()) }
}

fn parse(argv: &[String]) -> Result<ReplayArgs, String> {
    let mut a =
        ReplayArgs { flow_logs: vec![], bundle: vec![], baseline: vec![], config: None, format: "table".into() };
    let mut it = argv.iter().peekable();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--flow-log" => values(&mut it, &mut a.flow_logs, flag)?,
            "--bundle" => values(&mut it, &mut a.bundle, flag)?,
            "--baseline" => values(&mut it, &mut a.baseline, flag)?,
            "--config" => a.config = Some(it.next().ok_or("--config needs a file")?.clone()),
            "--format" => {
                a.format = it.next().ok_or("--format needs table, json or markdown")?.clone();
                if !matches!(a.format.as_str(), "table" | "json" | "markdown") {
                    return Err(format!("unknown --format {:?}", a.format));
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.flow_logs.is_empty() {
        return Err("--flow-log is required".into());
    }
    if a.bundle.is_empty() {
        return Err("--bundle is required".into());
    }
    Ok(a)
}

/// The request a flow-log record stands for, decided for the record's reporter's side.
pub fn request_of(r: &FlowRecord) -> Result<OwnedRequest, String> {
    let (Some(src), Some(dst)) = (&r.source_ip, &r.dest_ip) else {
        return Err("aggregated: source_ip or dest_ip is null (aggregation level 2 or 3)".into());
    };
    let proto = flowlog::proto_number(&r.proto).ok_or(format!("unknown proto {:?}", r.proto))?;
    let direction = match r.reporter.as_str() {
        "src" => "egress",
        "dst" => "ingress",
        other => return Err(format!("unknown reporter {other:?}")),
    };
    if matches!(proto, 6 | 17 | 132 | 136) && r.dest_port.is_none() {
        return Err("aggregated: dest_port is null (aggregation level 3)".into());
    }
    let ext = r.palisade.as_ref();
    let mut source = serde_json::json!({"ip": src});
    if let Some(p) = r.source_port {
        source["port"] = p.into();
    }
    if let Some(p) = ext.and_then(|e| e.principal.as_deref()) {
        source["principal"] = p.into();
    }
    let mut destination = serde_json::json!({"ip": dst});
    if let Some(p) = r.dest_port {
        destination["port"] = p.into();
    }
    if let Some(p) = ext.and_then(|e| e.dest_principal.as_deref()) {
        destination["principal"] = p.into();
    }
    let mut req =
        serde_json::json!({"direction": direction, "protocol": proto, "source": source, "destination": destination});
    if let Some((m, p)) = ext.and_then(|e| e.http_method.as_deref().zip(e.http_path.as_deref())) {
        req["http"] = serde_json::json!({"method": m, "path": p});
    }
    OwnedRequest::from_json(&req.to_string()).map_err(|e| format!("invalid request: {}", e.message))
}

/// `<tier>|<policy>|<action>|<rule>` of the last hit, without its index.
fn deciding_hit(r: &FlowRecord) -> String {
    let last = r.policies.as_ref().and_then(|p| p.enforced_policies.last());
    match last {
        Some(h) => h.split_once('|').map(|(_, rest)| rest.to_string()).unwrap_or_else(|| h.clone()),
        None => r.palisade.as_ref().map(|p| p.reason.clone()).unwrap_or_else(|| "-".into()),
    }
}

/// The verdict and deciding hit of `req` under `engine`, for `reporter`'s side.
fn verdict(engine: &Engine, req: &OwnedRequest, reporter: &str) -> (String, String) {
    let e = engine.explain(&req.as_request());
    let c = Capture::new(engine.snapshot(), &req.as_request(), e.decision, FixedTrace::from_trace(&e.trace), None);
    let recs = flowlog::records(&c);
    match recs.iter().find(|r| r.reporter == reporter).or(recs.first()) {
        Some(r) => (r.action.clone(), deciding_hit(r)),
        None => (e.decision.action.as_str().into(), e.decision.reason.as_str().into()),
    }
}

fn endpoint(ns: &str, name: &str, kind: &str) -> String {
    match kind {
        "net" => format!("net:{name}"),
        _ if ns == "-" => format!("{kind}:{name}"),
        _ => format!("{ns}/{name}"),
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
struct ChangeKey {
    source: String,
    destination: String,
    reporter: String,
    before: String,
    after: String,
    before_policy: String,
    after_policy: String,
}

struct Change {
    key: ChangeKey,
    records: u64,
    flows: u64,
    /// `file:line` of the first records.
    examples: Vec<String>,
}

struct Skipped {
    at: String,
    why: String,
}

#[derive(Default)]
struct Report {
    records: u64,
    replayed: u64,
    unchanged: u64,
    allowed_to_denied: u64,
    denied_to_allowed: u64,
    changes: Vec<Change>,
    skipped: Vec<Skipped>,
}

fn engine_of(paths: &[String], config: &Config) -> Result<Engine, String> {
    let engine = Engine::new(config.clone());
    engine.load_paths(paths).map_err(|e| e.to_string())?;
    Ok(engine)
}

fn run(a: &ReplayArgs) -> Result<Report, String> {
    let config = match &a.config {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            Config::from_yaml(&text).map_err(|e| format!("{p}: {e}"))?
        }
    };
    let new = engine_of(&a.bundle, &config)?;
    let old = if a.baseline.is_empty() { None } else { Some(engine_of(&a.baseline, &config)?) };
    let mut report = Report::default();
    let mut groups: BTreeMap<ChangeKey, Change> = BTreeMap::new();
    for path in &a.flow_logs {
        let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(|e| format!("{path}: {e}"))? == 0 {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            report.records += 1;
            if report.records % 100_000 == 0 {
                eprintln!("palisade: replay: {} records read", report.records);
            }
            let at = format!("{path}:{number}");
            let rec: FlowRecord = match serde_json::from_slice(&line) {
                Ok(r) => r,
                Err(e) => {
                    report.skipped.push(Skipped { at, why: format!("not a flow-log record: {e}") });
                    continue;
                }
            };
            let req = match request_of(&rec) {
                Ok(r) => r,
                Err(why) => {
                    report.skipped.push(Skipped { at, why });
                    continue;
                }
            };
            report.replayed += 1;
            let (before, before_policy) = match &old {
                Some(o) => verdict(o, &req, &rec.reporter),
                None => (rec.action.clone(), deciding_hit(&rec)),
            };
            let (after, after_policy) = verdict(&new, &req, &rec.reporter);
            if before == after {
                report.unchanged += 1;
                continue;
            }
            if before == "allow" {
                report.allowed_to_denied += 1;
            } else {
                report.denied_to_allowed += 1;
            }
            let key = ChangeKey {
                source: endpoint(&rec.source_namespace, &rec.source_name_aggr, &rec.source_type),
                destination: endpoint(&rec.dest_namespace, &rec.dest_name_aggr, &rec.dest_type),
                reporter: rec.reporter.clone(),
                before,
                after,
                before_policy,
                after_policy,
            };
            let g = groups.entry(key.clone()).or_insert(Change { key, records: 0, flows: 0, examples: Vec::new() });
            g.records += 1;
            g.flows += rec.num_flows.max(1);
            if g.examples.len() < 3 {
                g.examples.push(at);
            }
        }
    }
    report.changes = groups.into_values().collect();
    Ok(report)
}

fn report_json(r: &Report) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = r
        .changes
        .iter()
        .map(|c| {
            let k = &c.key;
            serde_json::json!({"source": k.source, "destination": k.destination, "reporter": k.reporter,
                "before": k.before, "after": k.after, "before_policy": k.before_policy,
                "after_policy": k.after_policy, "records": c.records, "flows": c.flows, "examples": c.examples})
        })
        .collect();
    let skipped: Vec<serde_json::Value> =
        r.skipped.iter().map(|s| serde_json::json!({"at": s.at, "why": s.why})).collect();
    serde_json::json!({"records": r.records, "replayed": r.replayed, "unchanged": r.unchanged,
        "allowed_to_denied": r.allowed_to_denied, "denied_to_allowed": r.denied_to_allowed,
        "changes": changes, "skipped": skipped})
}

fn print(report: &Report, format: &str, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&report_json(report)).unwrap_or_default()),
        "markdown" => {
            writeln!(out, "### Policy change impact\n")?;
            writeln!(
                out,
                "{} records, {} replayed: **{} allowed → denied**, **{} denied → allowed**, {} unchanged, {} not replayed.\n",
                report.records,
                report.replayed,
                report.allowed_to_denied,
                report.denied_to_allowed,
                report.unchanged,
                report.skipped.len()
            )?;
            if !report.changes.is_empty() {
                writeln!(out, "| source | destination | reporter | change | flows | records | before | after |")?;
                writeln!(out, "|---|---|---|---|---|---|---|---|")?;
                for c in &report.changes {
                    let k = &c.key;
                    // A `|` inside a table cell must be escaped, code spans included.
                    let cell = |s: &str| s.replace('|', "\\|");
                    writeln!(
                        out,
                        "| `{}` | `{}` | {} | {} → {} | {} | {} | `{}` | `{}` |",
                        k.source,
                        k.destination,
                        k.reporter,
                        k.before,
                        k.after,
                        c.flows,
                        c.records,
                        cell(&k.before_policy),
                        cell(&k.after_policy)
                    )?;
                }
            }
            if !report.skipped.is_empty() {
                writeln!(out, "\n<details><summary>{} records not replayed</summary>\n", report.skipped.len())?;
                for s in report.skipped.iter().take(50) {
                    writeln!(out, "- `{}`: {}", s.at, s.why)?;
                }
                writeln!(out, "\n</details>")?;
            }
            Ok(())
        }
        _ => {
            writeln!(
                out,
                "{} records, {} replayed: {} allowed -> denied, {} denied -> allowed, {} unchanged, {} not replayed",
                report.records,
                report.replayed,
                report.allowed_to_denied,
                report.denied_to_allowed,
                report.unchanged,
                report.skipped.len()
            )?;
            for c in &report.changes {
                let k = &c.key;
                writeln!(
                    out,
                    "{} -> {} ({}): {} -> {}, {} flows in {} records\n  before: {}\n  after:  {}\n  e.g. {}",
                    k.source,
                    k.destination,
                    k.reporter,
                    k.before,
                    k.after,
                    c.flows,
                    c.records,
                    k.before_policy,
                    k.after_policy,
                    c.examples.join(", ")
                )?;
            }
            for s in &report.skipped {
                writeln!(out, "not replayed: {}: {}", s.at, s.why)?;
            }
            Ok(())
        }
    }
}

/// `palisade replay ...`.
pub fn replay_main(argv: &[String]) -> ExitCode {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            println!("{REPLAY_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("palisade: {msg}\n{REPLAY_USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if let Err(e) = print(&report, &args.format, &mut out) {
                eprintln!("palisade: {e}");
                return ExitCode::from(1);
            }
            if report.changes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) }
        }
        Err(msg) => {
            eprintln!("palisade: {msg}");
            ExitCode::from(1)
        }
    }
}
