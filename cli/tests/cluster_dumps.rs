//! Friction seen on real cluster dumps (issue 16 item 7, issue 14): a dump on standard input,
//! manifests written for `kubectl apply -n NS`, every load error at once, skipped kinds in
//! `lint` and `explain`, and the identity behind an `identity_mismatch`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        let _ = child.stdin.take().unwrap().write_all(s.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-cli-dumps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const DUMP: &str = "apiVersion: v1\nkind: List\nitems:\n\
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n\
- {apiVersion: v1, kind: Pod, metadata: {name: api, namespace: shop, labels: {app: api}}, spec: {serviceAccountName: api}, status: {podIP: 10.1.0.9}}\n\
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}}\n\
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: closed, namespace: shop}, spec: {podSelector: {}, policyTypes: [Ingress]}}\n";

#[test]
fn a_dump_on_standard_input_is_a_bundle() {
    let req = temp("req.json", r#"{"source": {"ip": "10.9.9.9"}, "destination": {"ip": "10.1.0.9", "port": 80}}"#);
    let out = palisade(&["decide", "--bundle", "-", "--request", req.to_str().unwrap()], Some(DUMP));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["action"], "deny", "{d}");
    assert_eq!(d["policy"], "knp:shop/closed", "{d}");
    // Both on standard input is a usage error.
    let out = palisade(&["decide", "--bundle", "-", "--request", "-"], Some(DUMP));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn default_namespace_places_manifests_without_one() {
    let manifests = "apiVersion: v1\nkind: Pod\nmetadata: {name: api, labels: {app: api}}\nstatus: {podIP: 10.1.0.9}\n---\n\
                     apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: closed}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
    let bundle = temp("no-ns.yaml", manifests);
    let req = temp("req2.json", r#"{"source": {"ip": "10.9.9.9"}, "destination": {"ip": "10.1.0.9", "port": 80}}"#);
    let run = |extra: &[&str]| {
        let mut args = vec!["decide", "--bundle", bundle.to_str().unwrap(), "--request", req.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = palisade(&args, None);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(run(&[])["policy"], "knp:default/closed");
    assert_eq!(run(&["--default-namespace", "shop"])["policy"], "knp:shop/closed");
    let out = palisade(&["decide", "--bundle", "x", "--request", "y", "--default-namespace", "Not_A_Namespace"], None);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_load_error_is_printed_and_lint_lists_what_was_skipped() {
    let broken = temp(
        "broken.yaml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: \"app ==\"}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicies\nmetadata: {name: b}\nspec: {}\n",
    );
    let out = palisade(&["lint", "--bundle", broken.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(
        errors[0].contains("GlobalNetworkPolicy a") && errors[1].contains("did you mean GlobalNetworkPolicy"),
        "{text}"
    );
    let out = palisade(&["decide", "--bundle", broken.to_str().unwrap(), "--request", "-"], Some("{}"));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("palisade: ")).count(), 2);

    let dump = temp("dump.yaml", DUMP);
    let out = palisade(&["lint", "--bundle", dump.to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("note: skipped 1 document of apps/v1 Deployment"), "{text}");
}

#[test]
fn explain_shows_whose_identity_an_ip_owns() {
    let dump = temp("dump2.yaml", DUMP);
    let req = temp(
        "stolen.json",
        r#"{"source": {"ip": "10.1.0.9", "principal": "spiffe://cluster.local/ns/shop/sa/frontend"}, "destination": {"ip": "10.1.0.9", "port": 80}}"#,
    );
    let out = palisade(&["explain", "--bundle", dump.to_str().unwrap(), "--request", req.to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("identity_mismatch"), "{text}");
    assert!(text.contains("presented: spiffe://cluster.local/ns/shop/sa/frontend"), "{text}");
    assert!(
        text.contains("10.1.0.9 belongs to pod shop/api, whose identity is spiffe://cluster.local/ns/shop/sa/api"),
        "{text}"
    );
    assert!(text.contains("note: skipped 1 document of apps/v1 Deployment"), "{text}");
}
