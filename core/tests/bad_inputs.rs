//! The hostile-input catalogue: every file under `tests/bad_inputs/` is a broken bundle or
//! request, with the exact expected error in `<name>.expect`. Bundles must be rejected with
//! that message (naming file, document, object and field), requests refused by the parser,
//! and `decide-*` requests (well-formed JSON, invalid content) denied with `invalid_request`.
//! Nothing may panic. `PALISADE_BLESS=1` rewrites the `.expect` files (review the diff).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use palisade::load::{Source, load};
use palisade::{Config, Engine, OwnedRequest};

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

fn shop() -> Engine {
    let e = Engine::new(Config::default());
    e.load_paths(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop")]).unwrap();
    e
}

fn outcome(path: &Path, engine: &Engine) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    let result = std::panic::catch_unwind(|| {
        if name.ends_with(".yaml") {
            let text = match palisade::load::read_paths(&[path], palisade::Config::default().max_bundle_bytes) {
                Ok(files) => files.into_iter().next().unwrap().1,
                Err(e) => return format!("error: {}", e.to_string().replace(&format!("{}/", dir().display()), "")),
            };
            match load(&[Source { name, text: &text }], &Config::default()) {
                Ok(_) => "loaded".to_string(),
                Err(e) => format!("error ({}): {e}", e.kind.as_str()),
            }
        } else {
            let text = std::fs::read_to_string(path).unwrap();
            match OwnedRequest::from_json(text.trim()) {
                Err(e) if name.starts_with("req-") => format!("error: {e}"),
                Err(e) => format!("unexpected parse error: {e}"),
                Ok(r) => {
                    let d = engine.decide(&r.as_request());
                    format!("{} {}: {}", d.action.as_str(), d.reason.as_str(), d.detail.unwrap_or("-"))
                }
            }
        }
    });
    result.unwrap_or_else(|_| "PANIC".to_string())
}

#[test]
fn catalogue() {
    let engine = shop();
    let bless = std::env::var("PALISADE_BLESS").is_ok();
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the catalogue has {} inputs", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let got = outcome(path, &engine);
        assert_ne!(got, "PANIC", "{} panicked", path.display());
        let expect_path = path.with_extension("expect");
        if bless {
            std::fs::write(&expect_path, format!("{got}\n")).unwrap();
            continue;
        }
        let want =
            std::fs::read_to_string(&expect_path).unwrap_or_else(|_| panic!("missing {}", expect_path.display()));
        if got != want.trim_end() {
            failures.push(format!("{}:\n  want: {}\n  got:  {got}", path.display(), want.trim_end()));
        }
        // Every bundle here is broken: none may load; every decide-* request is denied.
        assert!(got != "loaded", "{} loaded", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.starts_with("decide-") {
            assert!(got.starts_with("deny invalid_request"), "{name}: {got}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn generated_hostile_inputs() {
    let run = |text: &str| load(&[Source { name: "gen.yaml", text }], &Config::default());
    // A 20 KiB selector: over the length limit.
    let long = format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {{selector: \"{}\"}}\n",
        "a == 'b' && ".repeat(2000) + "all()"
    );
    assert_eq!(
        run(&long).unwrap_err().to_string(),
        "gen.yaml (document 0): GlobalNetworkPolicy p: spec.selector: selector error at byte 0: selector is 24005 bytes long, the limit is 16384"
    );
    // 1,000 nested parentheses: over the depth limit, no stack overflow.
    let deep = format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {{selector: \"{}has(a){}\"}}\n",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    assert_eq!(
        run(&deep).unwrap_err().to_string(),
        "gen.yaml (document 0): GlobalNetworkPolicy p: spec.selector: selector error at byte 64: selector nests deeper than 64 levels"
    );
    // A 10 MB label value loads (labels are data) and decides; a 10 MB name is refused.
    let big = "x".repeat(10 * 1024 * 1024);
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: n, labels: {{blob: {big}}}}}\nstatus: {{podIP: 10.0.0.1}}\n"
    );
    assert_eq!(run(&pod).unwrap().endpoints[0].labels["blob"].len(), big.len());
    let named =
        format!("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {big}}}\nspec: {{}}\n");
    let e = run(&named).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("metadata.name"));
    assert!(e.message.ends_with("is not a valid name (lower-case DNS subdomain)"));
    // Over the configured bundle size.
    let cfg = Config { max_bundle_bytes: 1024, ..Config::default() };
    let e = load(&[Source { name: "gen.yaml", text: &pod }], &cfg).unwrap_err();
    assert_eq!(e.to_string(), format!("bundle is {} bytes, the limit (max_bundle_bytes) is 1024", pod.len()));
    // Deeply nested YAML: bounded by the parser's depth budget.
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(run(&nested).unwrap_err().kind, palisade::LoadErrorKind::Syntax);
}
