//! `palisade sync`: keeps an engine current with a live source (`palisade-sync`), prints one
//! status line per applied snapshot, and optionally dumps the objects in force as a bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use palisade::load::ObjectRef;
use palisade::{Config, Engine};
use palisade_sync::{Options, Syncer};
use serde_json::Value;

pub(crate) const USAGE: &str = "\
usage:
  palisade sync (--kube [--kubeconfig FILE] | --etcd URL... | --dir PATH) [--dump DIR] [--once] [--config FILE]

Follows the Kubernetes API (every kind Palisade reads; the kubeconfig given, else $KUBECONFIG,
~/.kube/config or the in-cluster account), Calico's etcd v3 datastore (client URLs of one or
more members) or a bundle directory, and prints one line per applied snapshot:
  generation=N synced=true|false objects=N kinds=Kind:N,... build_ms=F rejected=N [last_error=\"...\"]
Rejected objects and source errors also go to stderr; errors are retried and the last good
snapshot keeps serving. --dump DIR writes the objects in force after every snapshot as YAML
files (one per kind) that `palisade decide --bundle DIR` loads. --once exits 0 after the
first complete sync (and its dump). Exit status: 1 when the config or the dump fails, 2 on
usage errors.";

enum Source {
    Etcd(Vec<String>),
    Dir(PathBuf),
    /// The Kubernetes API: the kubeconfig file, or the default (`$KUBECONFIG`,
    /// `~/.kube/config`, in-cluster).
    Kube(Option<PathBuf>),
}

struct Args {
    source: Source,
    dump: Option<PathBuf>,
    once: bool,
    config: Option<String>,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter().peekable();
    let (mut etcd, mut dir, mut dump, mut once, mut config) = (Vec::new(), None, None, false, None);
    let mut etcd_given = false;
    let (mut kube, mut kubeconfig) = (false, None);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--etcd" => {
                etcd_given = true;
                while let Some(v) = it.next_if(|v| !v.starts_with("--")) {
                    etcd.push(v.clone());
                }
                if etcd.is_empty() {
                    return Err("--etcd needs at least one client URL (http://127.0.0.1:2379)".into());
                }
            }
            "--dir" => dir = Some(PathBuf::from(it.next().ok_or("--dir needs a directory")?)),
            "--kube" => kube = true,
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(it.next().ok_or("--kubeconfig needs a file")?)),
            "--dump" => dump = Some(PathBuf::from(it.next().ok_or("--dump needs a directory")?)),
            "--once" => once = true,
            "--config" => config = Some(it.next().ok_or("--config needs a file")?.clone()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if kubeconfig.is_some() && !kube {
        return Err("--kubeconfig goes with --kube".into());
    }
    let source = match (etcd_given, dir, kube) {
        (true, None, false) => Source::Etcd(etcd),
        (false, Some(d), false) => Source::Dir(d),
        (false, None, true) => Source::Kube(kubeconfig),
        _ => return Err("give exactly one source: --kube [--kubeconfig F], --etcd URL... or --dir PATH".into()),
    };
    Ok(Args { source, dump, once, config })
}

/// `palisade sync ...` (`argv` without the command name).
pub(crate) fn main(argv: &[String]) -> ExitCode {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("palisade: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("palisade: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let config = match &args.config {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            Config::from_yaml(&text).map_err(|e| format!("{p}: {e}"))?
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let engine = Arc::new(Engine::new(config));
    let syncer = Syncer::new(engine.clone(), Options::default());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    runtime.spawn(syncer.clone().run(rx));
    match args.source {
        Source::Etcd(urls) => {
            runtime.spawn(palisade_sync::etcd::EtcdSource::new(urls).run(tx));
        }
        Source::Dir(dir) => {
            runtime.spawn(palisade_sync::dir::watch(dir, tx, Duration::from_secs(30)));
        }
        Source::Kube(kubeconfig) => {
            let source = runtime
                .block_on(async {
                    match &kubeconfig {
                        Some(path) => palisade_sync::kube::KubeSource::from_kubeconfig(path).await,
                        None => palisade_sync::kube::KubeSource::try_default().await,
                    }
                })
                .map_err(|e| format!("the Kubernetes client: {e}"))?;
            runtime.spawn(source.run(tx));
        }
    }
    runtime.block_on(follow(&engine, &syncer, args.dump.as_deref(), args.once))
}

/// Polls the status; one line (and one dump) per applied batch.
async fn follow(engine: &Engine, syncer: &Syncer, dump: Option<&Path>, once: bool) -> Result<(), String> {
    let mut batches = 0;
    let mut last_error: Option<String> = None;
    let mut dumped = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let s = syncer.status();
        if s.last_error != last_error {
            if let Some(e) = &s.last_error {
                eprintln!("palisade: sync: {e}");
            }
            last_error = s.last_error.clone();
        }
        if s.batches == batches {
            continue;
        }
        batches = s.batches;
        let (generation, objects) = engine.objects();
        // The dump first: a reader of the line finds the dump of that snapshot.
        if let Some(dir) = dump {
            dumped = write_dump(dir, &objects, &dumped).map_err(|e| format!("--dump {}: {e}", dir.display()))?;
        }
        // A closed stdout (`palisade sync ... | head -1`) ends the command quietly.
        if writeln!(std::io::stdout().lock(), "{}", status_line(generation, &s, &objects)).is_err() {
            return Ok(());
        }
        for r in &s.rejected {
            eprintln!("palisade: sync: rejected (its last valid version, or nothing, stays): {r}");
        }
        if once && s.synced {
            return Ok(());
        }
    }
}

/// `Kind` for the core group, `Kind.group` otherwise (as kubectl names resources).
fn kind_name(k: &ObjectRef) -> String {
    if k.group.is_empty() { k.kind.clone() } else { format!("{}.{}", k.kind, k.group) }
}

fn status_line(generation: u64, s: &palisade_sync::Status, objects: &[(ObjectRef, Arc<Value>)]) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (k, _) in objects {
        *kinds.entry(kind_name(k)).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let mut line = format!(
        "generation={generation} synced={} objects={} kinds={} build_ms={:.3} rejected={}",
        s.synced,
        objects.len(),
        if kinds.is_empty() { "-".to_string() } else { kinds.join(",") },
        s.build_time.as_secs_f64() * 1000.0,
        s.rejected.len()
    );
    if let Some(e) = &s.last_error {
        let _ = write!(line, " last_error={}", Value::String(e.clone()));
    }
    line
}

/// Writes the objects as one YAML file per kind (`<kind>[.<group>].yaml`, lower case), each
/// file replaced by a rename; removes the files of an earlier dump (`previous`) whose kind is
/// gone. Returns the files written.
fn write_dump(
    dir: &Path,
    objects: &[(ObjectRef, Arc<Value>)],
    previous: &BTreeSet<String>,
) -> std::io::Result<BTreeSet<String>> {
    std::fs::create_dir_all(dir)?;
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in objects {
        let file = format!("{}.yaml", kind_name(k).to_ascii_lowercase());
        let text = files.entry(file).or_default();
        text.push_str("---\n");
        // A namespaced object keeps its namespace even when its value named none (the
        // loader placed it in the default namespace): the dump loads the same under any
        // configuration.
        match (&k.namespace, v.get("metadata").and_then(|m| m.get("namespace"))) {
            (Some(ns), None) => {
                let mut v = (**v).clone();
                if let Some(Value::Object(m)) = v.get_mut("metadata") {
                    m.insert("namespace".into(), Value::String(ns.clone()));
                }
                yaml(&v, 0, text);
            }
            _ => yaml(v, 0, text),
        }
    }
    for (name, text) in &files {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    for gone in previous.iter().filter(|f| !files.contains_key(*f)) {
        std::fs::remove_file(dir.join(gone))?;
    }
    Ok(files.into_keys().collect())
}

/// A mapping key: plain when YAML reads it back as the same string, JSON-quoted otherwise.
fn key(k: &str, out: &mut String) {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        out.push_str(k);
    } else {
        out.push_str(&Value::String(k.to_string()).to_string());
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// Block-style YAML for a value at `indent`; scalars (strings JSON-quoted, which YAML reads
/// as the same string) and empty collections in flow style.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&pad);
                key(k, out);
                out.push(':');
                if is_block(val) {
                    out.push('\n');
                    yaml(val, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&val.to_string());
                    out.push('\n');
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    // The item rendered two deeper, its first indentation turned into "- ".
                    let mut nested = String::new();
                    yaml(item, indent + 2, &mut nested);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&nested[indent + 2..]);
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&item.to_string());
                    out.push('\n');
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&scalar.to_string());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_of_nested_values_and_awkward_keys() {
        let v = json!({"a": {"b": [1, {"c": "x: 'y'", "d": []}, [true, null]], "e": {}},
                       "yes": "no", "app.kubernetes.io/name": "web", "8080": 1.5});
        let mut out = String::new();
        yaml(&v, 0, &mut out);
        assert_eq!(
            out,
            "a:\n  b:\n    - 1\n    - c: \"x: 'y'\"\n      d: []\n    - - true\n      - null\n  e: {}\n\
             \"yes\": \"no\"\napp.kubernetes.io/name: \"web\"\n\"8080\": 1.5\n"
        );
    }

    #[test]
    fn one_source_is_required() {
        let args = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(args(&[]).is_err());
        assert!(args(&["--etcd"]).is_err());
        assert!(args(&["--etcd", "http://a", "--dir", "d"]).is_err());
        let a = args(&["--etcd", "http://a", "http://b", "--once", "--dump", "out"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&a.source, Source::Etcd(u) if u.len() == 2));
        assert!(matches!(args(&["--kube"]).map(|a| a.source), Ok(Source::Kube(None))));
        assert!(matches!(args(&["--kube", "--kubeconfig", "k"]).map(|a| a.source), Ok(Source::Kube(Some(_)))));
        assert!(args(&["--kubeconfig", "k"]).is_err(), "--kubeconfig without --kube");
        assert!(args(&["--kube", "--dir", "d"]).is_err());
        assert!(a.once && a.dump.is_some());
    }
}
