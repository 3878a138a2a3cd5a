//! Reviewing a change between two bundles, in the library and through the command as a CI
//! job runs it.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BASE, bundle, edit, teams, user};
use palisade_ownership::calico::Kind;
use palisade_ownership::review::{Format, Op, Verbs, diff, render, review};

fn changes(head: &str) -> Vec<(Op, Kind, String, String)> {
    diff(&bundle(BASE), &bundle(head)).into_iter().map(|c| (c.op, c.kind, c.object(), c.tier())).collect()
}

#[test]
fn diff_lists_created_changed_deleted_and_moved_policies_with_their_tiers() {
    assert!(changes(BASE).is_empty(), "same bundle, no change");
    // Reordering documents or reformatting is no change.
    let mut docs: Vec<&str> = BASE.split("\n---\n").collect();
    docs.reverse();
    assert!(changes(&docs.join("\n---\n")).is_empty());

    let head = edit("destination: {ports: [8080]}", "destination: {ports: [8081]}");
    assert_eq!(changes(&head), [(Op::Update, Kind::NetworkPolicy, "np shop/cart-ingress".into(), "app".into())]);

    let head = edit("  tier: app\n  selector: app == 'cart'", "  tier: platform\n  selector: app == 'cart'");
    assert_eq!(
        changes(&head),
        [(Op::Update, Kind::NetworkPolicy, "np shop/cart-ingress".into(), "app -> platform".into())]
    );

    let head = format!(
        "{BASE}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: new}}\n\
         spec: {{tier: security, selector: all(), types: [Ingress]}}\n"
    );
    assert_eq!(changes(&head), [(Op::Create, Kind::GlobalNetworkPolicy, "gnp new".into(), "security".into())]);

    let head = edit("spec: {order: 100, defaultAction: Pass}", "spec: {order: 400, defaultAction: Pass}");
    assert_eq!(changes(&head), [(Op::Update, Kind::Tier, "tier security".into(), "-".into())]);

    let head =
        edit("spec: {podSelector: {}, policyTypes: [Ingress]}", "spec: {podSelector: {}, policyTypes: [Egress]}");
    assert_eq!(
        changes(&head),
        [(Op::Update, Kind::KubernetesNetworkPolicy, "knp payments/pay-default-deny".into(), "default".into())]
    );

    let cut =
        BASE.find("---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: pay-api").unwrap();
    let end = BASE[cut..].find("---\napiVersion: networking.k8s.io").unwrap() + cut;
    let head = format!("{}{}", &BASE[..cut], &BASE[end..]);
    assert_eq!(changes(&head), [(Op::Delete, Kind::NetworkPolicy, "np payments/pay-api".into(), "default".into())]);
}

#[test]
fn a_change_touching_a_higher_tier_is_refused() {
    let rbac = teams();
    let alice = user("alice", &["team-app"]);
    let own = edit("destination: {ports: [8080]}", "destination: {ports: [8081]}");
    let r = review(&rbac, &alice, &bundle(BASE), &bundle(&own), &Verbs::default());
    assert!(r.allowed(), "{}", render(&r, Format::Table));

    let higher = own.replace("nets: [203.0.113.0/24]", "nets: [203.0.113.0/25]");
    let r = review(&rbac, &alice, &bundle(BASE), &bundle(&higher), &Verbs::default());
    assert!(!r.allowed());
    assert_eq!(r.refused(), 1);
    let refused = r.verdicts.iter().find(|v| !v.outcome.allowed).unwrap();
    assert_eq!(refused.change.object(), "gnp block-threats");
    assert_eq!(
        refused.outcome.denial(),
        Some(
            "globalnetworkpolicies.projectcalico.org \"block-threats\" is forbidden: User \"alice\" cannot update \
             globalnetworkpolicies.projectcalico.org in tier \"security\" (user cannot get tier)"
        )
    );
    // With kubectl apply's verb.
    let r = review(&rbac, &alice, &bundle(BASE), &bundle(&higher), &Verbs { update: "patch".into() });
    assert!(r.verdicts.iter().all(|v| v.verb == "patch"));
    assert!(!r.allowed());
    // The security team may.
    let sec = user("sam", &["security-team"]);
    assert!(review(&rbac, &sec, &bundle(BASE), &bundle(&higher), &Verbs::default()).allowed());
}

#[test]
fn moving_a_policy_between_tiers_needs_both_tiers_rights() {
    let rbac = teams();
    let moved = edit("  tier: app\n  selector: app == 'cart'", "  tier: platform\n  selector: app == 'cart'");
    // alice owns app, not platform: the new tier refuses.
    let alice = user("alice", &["team-app"]);
    let r = review(&rbac, &alice, &bundle(BASE), &bundle(&moved), &Verbs::default());
    let v = &r.verdicts[0];
    assert_eq!(v.outcome.steps.len(), 3, "generic, old tier, new tier");
    assert!(v.outcome.steps[1].allowed && !v.outcome.steps[2].allowed);
    assert_eq!(
        v.outcome.denial(),
        Some(
            "networkpolicies.projectcalico.org \"cart-ingress\" is forbidden: User \"alice\" cannot update \
             networkpolicies.projectcalico.org in tier \"platform\" and namespace \"shop\" (user cannot get tier)"
        )
    );
    // platform-team has both app and platform (through the aggregated role).
    let pat = user("pat", &["platform-team"]);
    assert!(review(&rbac, &pat, &bundle(BASE), &bundle(&moved), &Verbs::default()).allowed());
    // Moving it back from platform to app: for alice the old tier refuses first.
    let r = review(&rbac, &alice, &bundle(&moved), &bundle(BASE), &Verbs::default());
    assert!(!r.verdicts[0].outcome.steps[1].allowed);
    assert!(r.verdicts[0].outcome.denial().unwrap().contains("in tier \"platform\""));
}

#[test]
fn renders_table_json_and_markdown() {
    let rbac = teams();
    let alice = user("alice", &["team-app"]);
    let head = edit("destination: {ports: [8080]}", "destination: {ports: [8081]}")
        .replace("nets: [203.0.113.0/24]", "nets: [203.0.113.0/25]");
    let r = review(&rbac, &alice, &bundle(BASE), &bundle(&head), &Verbs::default());
    let table = render(&r, Format::Table);
    assert!(table.contains("changed  gnp block-threats     security  update  no"), "{table}");
    assert!(table.contains("changed  np shop/cart-ingress  app       update  yes"), "{table}");
    assert!(table.ends_with("2 change(s), 1 refused\n"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["refused"], 1);
    assert_eq!(json["verdicts"][0]["tier"], "security");
    assert_eq!(json["verdicts"][0]["steps"].as_array().unwrap().len(), 2);
    let md = render(&r, Format::Markdown);
    assert!(
        md.contains("| changed | `gnp block-threats` | security | update | **no** | globalnetworkpolicies"),
        "{md}"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade-ownership")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_command_gates_a_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, own, higher, broken, empty) = (
        tmp.path().join("base"),
        tmp.path().join("own"),
        tmp.path().join("higher"),
        tmp.path().join("broken"),
        tmp.path().join("empty"),
    );
    write(&base, "policies.yaml", BASE);
    write(&own, "policies.yaml", &edit("destination: {ports: [8080]}", "destination: {ports: [8081]}"));
    write(&higher, "policies.yaml", &edit("nets: [203.0.113.0/24]", "nets: [198.51.100.0/24]"));
    write(&broken, "policies.yaml", &edit("order: 10\n  selector: all()", "order: 10\n  selector: all(("));
    std::fs::create_dir_all(&empty).unwrap();
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rbac");
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let review = |head: &std::path::PathBuf, who: &[&str], extra: &[&str]| {
        let mut a: Vec<String> =
            vec!["review".into(), "--rbac".into(), rbac.into(), "--base".into(), s(&base), "--head".into(), s(head)];
        a.extend(who.iter().map(|x| x.to_string()));
        a.extend(extra.iter().map(|x| x.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&refs)
    };

    let (code, out, _) = review(&own, &["--as", "alice", "--as-group", "team-app"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 change(s), all allowed"), "{out}");

    let (code, out, _) = review(&higher, &["--as", "alice", "--as-group", "team-app"], &["--format", "markdown"]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(
            "| **no** | globalnetworkpolicies.projectcalico.org \"block-threats\" is forbidden: User \"alice\""
        ),
        "{out}"
    );

    let (code, out, _) = review(&higher, &["--as", "sam", "--as-group", "security-team"], &["--format", "json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["allowed"], true);

    // A service account as the author (the CI bot's own identity).
    let (code, _, _) = review(&own, &["--as", "system:serviceaccount:ci:deployer"], &[]);
    assert_eq!(code, 0);
    let (code, _, _) = review(&higher, &["--as", "system:serviceaccount:ci:deployer"], &[]);
    assert_eq!(code, 4);

    // A head that does not load: exit 1, nothing on stdout.
    let (code, out, err) = review(&broken, &["--as", "alice"], &[]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.starts_with("palisade-ownership: head: "), "{err}");

    // The first commit of a repository: every policy is created.
    let (code, out, _) = {
        let a = [
            "review",
            "--rbac",
            rbac,
            "--base",
            empty.to_str().unwrap(),
            "--head",
            base.to_str().unwrap(),
            "--as",
            "sam",
            "--as-group",
            "security-team",
        ];
        run(&a)
    };
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created  tier security"), "{out}");

    // Usage errors.
    assert_eq!(run(&["review", "--rbac", rbac, "--as", "alice"]).0, 2);
    assert_eq!(run(&["review", "--bogus"]).0, 2);
    assert_eq!(run(&[]).0, 2);
}

#[test]
fn can_i_answers_one_question() {
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rbac");
    let (code, out, _) = run(&[
        "can-i",
        "create",
        "np",
        "--tier",
        "app",
        "-n",
        "shop",
        "--rbac",
        rbac,
        "--as",
        "alice",
        "--as-group",
        "team-app",
    ]);
    assert_eq!((code, out.as_str()), (0, "yes\n"));
    let (code, out, _) = run(&[
        "can-i",
        "update",
        "gnp",
        "block-threats",
        "--tier",
        "security",
        "--rbac",
        rbac,
        "--as",
        "alice",
        "--as-group",
        "team-app",
    ]);
    assert_eq!(code, 4);
    assert_eq!(
        out,
        "no\nglobalnetworkpolicies.projectcalico.org \"block-threats\" is forbidden: User \"alice\" cannot update \
         globalnetworkpolicies.projectcalico.org in tier \"security\" (user cannot get tier)\n"
    );
    let (code, out, _) = run(&[
        "can-i",
        "update",
        "np",
        "web-ingress",
        "--tier",
        "app",
        "-n",
        "shop",
        "--rbac",
        rbac,
        "--as",
        "dave",
        "-v",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("+ get tiers.projectcalico.org/app"), "{out}");
    assert_eq!(run(&["can-i", "create", "pods", "--rbac", rbac, "--as", "x"]).0, 2);
    let (code, _, err) = run(&["can-i", "create", "np", "--rbac", "/nonexistent", "--as", "x"]);
    assert_eq!(code, 1, "{err}");
}
