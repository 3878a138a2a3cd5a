//! Tier order (T2-T5), tier verdicts (E1-E3) and policy order within a tier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nstatus: {podIP: 10.0.0.2}\n---\n";

fn tier(name: &str, order: Option<f64>, action: &str) -> String {
    let order = order.map(|o| format!("order: {o}, ")).unwrap_or_default();
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{{order}defaultAction: {action}}}\n---\n"
    )
}

/// A policy in `tier` selecting every endpoint, with ingress rules that match nothing
/// (or the given rules).
fn gnp(name: &str, tier: &str, rules: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {{tier: {tier}, types: [Ingress], ingress: {rules}}}\n---\n"
    )
}

const NO_MATCH: &str = "[{action: Allow, protocol: UDP}]";

fn ingress_trace(bundle: &str) -> Vec<String> {
    let e = engine(&format!("{POD}{bundle}"));
    let d = decide(
        &e,
        r#"{"direction": "ingress", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    );
    trace(&d, "ingress")
}

fn tier_names(trace: &[String]) -> Vec<String> {
    trace.iter().map(|h| h.split('|').nth(1).unwrap().to_string()).collect()
}

#[test]
fn t2_unordered_tiers_sort_by_name() {
    let b = format!(
        "{}{}{}{}",
        tier("foo", None, "Pass"),
        tier("bar", None, "Pass"),
        gnp("pf", "foo", NO_MATCH),
        gnp("pb", "bar", NO_MATCH)
    );
    assert_eq!(tier_names(&ingress_trace(&b)), ["bar", "foo", "__PROFILE__"]);
}

#[test]
fn t3_lower_order_first() {
    let b = format!(
        "{}{}{}{}",
        tier("bar", Some(10.0), "Pass"),
        tier("foo", Some(1.0), "Pass"),
        gnp("pf", "foo", NO_MATCH),
        gnp("pb", "bar", NO_MATCH)
    );
    assert_eq!(tier_names(&ingress_trace(&b)), ["foo", "bar", "__PROFILE__"]);
}

#[test]
fn t4_absent_order_is_last() {
    let b = format!(
        "{}{}{}{}{}{}",
        tier("bar", None, "Pass"),
        tier("baz", Some(10.0), "Pass"),
        tier("foo", Some(1.0), "Pass"),
        gnp("p1", "foo", NO_MATCH),
        gnp("p2", "baz", NO_MATCH),
        gnp("p3", "bar", NO_MATCH)
    );
    assert_eq!(tier_names(&ingress_trace(&b)), ["foo", "baz", "bar", "__PROFILE__"]);
}

#[test]
fn t5_equal_order_by_name() {
    let b = format!(
        "{}{}{}{}",
        tier("foo", Some(10.0), "Pass"),
        tier("baz", Some(10.0), "Pass"),
        gnp("p1", "foo", NO_MATCH),
        gnp("p2", "baz", NO_MATCH)
    );
    assert_eq!(tier_names(&ingress_trace(&b)), ["baz", "foo", "__PROFILE__"]);
}

#[test]
fn default_tier_sits_at_one_million() {
    let b = format!(
        "{}{}{}{}",
        tier("early", Some(999_999.0), "Pass"),
        tier("late", Some(1_000_001.0), "Pass"),
        gnp("a", "late", NO_MATCH),
        gnp("b", "early", NO_MATCH)
    );
    let b = format!("{b}{}", gnp("c", "default", "[{action: Pass}]"));
    assert_eq!(tier_names(&ingress_trace(&b)), ["early", "default", "late", "__PROFILE__"]);
}

#[test]
fn e1_deny_tier_ends_the_walk() {
    let b = format!(
        "{}{}{}{}",
        tier("tier1", Some(1.0), "Deny"),
        tier("tier2", Some(2.0), "Pass"),
        gnp("p1", "tier1", NO_MATCH),
        gnp("p2", "tier2", NO_MATCH)
    );
    let e = engine(&format!("{POD}{b}"));
    let d = decide(
        &e,
        r#"{"direction": "ingress", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    );
    assert_eq!(trace(&d, "ingress"), ["0|tier1|gnp:p1|deny|-1"]);
    assert_eq!(d["reason"], "end_of_tier");
    assert_eq!(d["rule"], -1);
    assert_eq!(d["policy"], "gnp:p1");
}

#[test]
fn e2_pass_then_deny() {
    let b = format!(
        "{}{}{}{}",
        tier("tier1", Some(1.0), "Pass"),
        tier("tier2", Some(2.0), "Deny"),
        gnp("p1", "tier1", NO_MATCH),
        gnp("p2", "tier2", NO_MATCH)
    );
    let e = engine(&format!("{POD}{b}"));
    let d = decide(
        &e,
        r#"{"direction": "ingress", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    );
    assert_eq!(trace(&d, "ingress"), ["0|tier1|gnp:p1|pass|-1", "1|tier2|gnp:p2|deny|-1"]);
    assert_eq!(d["action"], "deny");
    assert_eq!(d["tier"], "tier2");
}

fn sgnp(name: &str, tier: &str, order: f64, rules: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {{tier: {tier}, order: {order}, types: [Ingress], ingress: {rules}}}\n---\n"
    )
}

fn gnp_ordered(name: &str, tier: &str, order: f64, rules: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {{tier: {tier}, order: {order}, types: [Ingress], ingress: {rules}}}\n---\n"
    )
}

fn verdicts(bundle: &str) -> (String, String) {
    let e = engine(&format!("{POD}{}{bundle}", tier("tier1", Some(1.0), "Deny")));
    let d = decide(
        &e,
        r#"{"direction": "ingress", "source": {"ip": "192.0.2.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    );
    (d["action"].as_str().unwrap().to_string(), d["staged"]["action"].as_str().unwrap_or("null").to_string())
}

#[test]
fn e3_only_staged_deny_skips_tier_for_enforcement() {
    assert_eq!(verdicts(&sgnp("s", "tier1", 1.0, "[{action: Deny}]")), ("allow".into(), "deny".into()));
}

#[test]
fn e3_enforced_and_staged_no_match_both_deny() {
    let b = format!("{}{}", gnp_ordered("e", "tier1", 1.0, NO_MATCH), sgnp("s", "tier1", 2.0, NO_MATCH));
    assert_eq!(verdicts(&b), ("deny".into(), "deny".into()));
}

#[test]
fn e3_staged_deny_before_enforced_allow() {
    let b = format!(
        "{}{}",
        sgnp("s", "tier1", 1.0, "[{action: Deny}]"),
        gnp_ordered("e", "tier1", 2.0, "[{action: Allow}]")
    );
    assert_eq!(verdicts(&b), ("allow".into(), "deny".into()));
}

#[test]
fn staged_delete_removes_the_enforced_policy_in_the_staged_verdict() {
    let b = format!(
        "{}apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {{name: e}}\nspec: {{tier: tier1, stagedAction: Delete}}\n---\n",
        gnp_ordered("e", "tier1", 1.0, "[{action: Deny}]")
    );
    assert_eq!(verdicts(&b), ("deny".into(), "allow".into()));
}

#[test]
fn staged_set_replaces_the_enforced_policy_of_the_same_name() {
    let b = format!(
        "{}{}",
        gnp_ordered("e", "tier1", 1.0, "[{action: Deny}]"),
        sgnp("e", "tier1", 1.0, "[{action: Allow}]")
    );
    assert_eq!(verdicts(&b), ("deny".into(), "allow".into()));
}

#[test]
fn no_staged_policy_means_staged_is_null() {
    assert_eq!(verdicts(&gnp_ordered("e", "tier1", 1.0, "[{action: Allow}]")), ("allow".into(), "null".into()));
}

#[test]
fn policies_within_a_tier_by_order_then_name_namespace_kind() {
    // Same order: `a` before `b`; a GNP `x` (key `x//GlobalNetworkPolicy`) before an NP `x`
    // in namespace ns (key `x/ns/NetworkPolicy`), since '/' sorts before 'n'.
    let np = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: x, namespace: ns}\nspec: {order: 5, ingress: [{action: Log}]}\n---\n";
    let b = format!(
        "{}{}{}{np}{}",
        gnp_ordered("b", "default", 5.0, "[{action: Log}]"),
        gnp_ordered("a", "default", 5.0, "[{action: Log}]"),
        gnp_ordered("x", "default", 5.0, "[{action: Log}]"),
        gnp("unordered", "default", "[{action: Log}]"),
    );
    let t = ingress_trace(&b);
    let names: Vec<&str> = t.iter().map(|h| h.split('|').nth(2).unwrap()).collect();
    assert_eq!(names, ["gnp:a", "gnp:b", "gnp:x", "np:ns/x", "gnp:unordered", "gnp:a"]);
    assert!(t.last().unwrap().ends_with("|deny|-1"), "{t:?}");
}

#[test]
fn pass_rule_skips_rest_of_tier_and_log_goes_on() {
    let b = format!(
        "{}{}{}",
        tier("t", Some(1.0), "Deny"),
        gnp_ordered("p1", "t", 1.0, "[{action: Log}, {action: Pass}, {action: Deny}]"),
        gnp_ordered("p2", "t", 2.0, "[{action: Deny}]")
    );
    let t = ingress_trace(&b);
    assert_eq!(t, ["0|t|gnp:p1|log|0", "1|t|gnp:p1|pass|1", "2|__PROFILE__|pro:kns.ns|allow|0"]);
}

#[test]
fn no_policy_action_deny_from_config() {
    let cfg = palisade::Config::from_yaml("no_policy_action: deny").unwrap();
    let e = engine_with(POD, cfg);
    let d = decide(&e, &tcp("192.0.2.1", "10.0.0.2", 80));
    assert_eq!(d["action"], "deny");
    assert_eq!(d["reason"], "no_policy");
    assert_eq!(d["side"], "ingress");
    assert_eq!(trace(&d, "ingress"), ["0|__PROFILE__|pro:kns.ns|deny|0"]);
    // Neither side known: no side evaluated.
    let d = decide(&e, &tcp("192.0.2.1", "192.0.2.2", 80));
    assert_eq!(d["reason"], "no_policy");
    assert_eq!(d["side"], serde_json::Value::Null);
    assert_eq!(d["action"], "deny");
}

#[test]
fn egress_deny_is_reported_first_and_allow_names_ingress() {
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: ns, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n---\n";
    let b = format!(
        "{POD}{pods}apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: eg}}\nspec: {{selector: app == 'a', types: [Egress], egress: [{{action: Deny, protocol: TCP, destination: {{ports: [81]}}}}, {{action: Allow}}]}}\n"
    );
    let e = engine(&b);
    let d = decide(&e, &tcp("10.0.0.1", "10.0.0.2", 81));
    assert_eq!((d["action"].as_str(), d["side"].as_str()), (Some("deny"), Some("egress")));
    assert!(d["trace"].get("ingress").is_none(), "ingress is not walked after an egress deny");
    let d = decide(&e, &tcp("10.0.0.1", "10.0.0.2", 80));
    assert_eq!(
        (d["action"].as_str(), d["side"].as_str(), d["reason"].as_str()),
        (Some("allow"), Some("ingress"), Some("no_policy"))
    );
    let d = decide(
        &e,
        r#"{"direction": "egress", "source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
    );
    assert_eq!((d["side"].as_str(), d["policy"].as_str()), (Some("egress"), Some("gnp:eg")));
}
