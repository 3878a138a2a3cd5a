//! Upstream conformance cases S1-S17, X1-X15 and K1-K6 (`calico-semantics.md` section 7).

use std::collections::BTreeMap;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn check(sel: &str, yes: &[&[(&str, &str)]], no: &[&[(&str, &str)]]) {
    let e = parse(sel).unwrap_or_else(|err| panic!("{sel:?} should parse: {err}"));
    for l in yes {
        assert!(e.matches(&labels(l)), "{sel:?} should match {l:?}");
    }
    for l in no {
        assert!(!e.matches(&labels(l)), "{sel:?} should not match {l:?}");
    }
}

#[test]
fn s1_eq() {
    check(r#"a == "b""#, &[&[("a", "b")], &[("a", "b"), ("c", "d")]], &[&[], &[("a", "c")], &[("c", "d")]]);
}

#[test]
fn s2_and() {
    check(
        r#"a == "b" && c == "d""#,
        &[&[("a", "b"), ("c", "d")]],
        &[&[("a", "b")], &[("c", "d")], &[("a", "b"), ("c", "e")]],
    );
}

#[test]
fn s3_or() {
    check(r#"a == "b" || c == "d""#, &[&[("a", "b")], &[("c", "d")]], &[&[], &[("a", "e"), ("c", "e")]]);
}

#[test]
fn s4_in_with_quotes() {
    check(r#"a in {"'", '"', "c"}"#, &[&[("a", "c")], &[("a", "\"")], &[("a", "'")]], &[&[], &[("a", "e")]]);
}

#[test]
fn s5_not_in() {
    check(r#"a not in {"'", '"', "c"}"#, &[&[], &[("a", "e")]], &[&[("a", "c")], &[("a", "\"")]]);
}

#[test]
fn s6_ne_missing_is_true() {
    check(r#"a != "a""#, &[&[]], &[&[("a", "a")]]);
}

#[test]
fn s7_contains() {
    check(r#"a contains "a""#, &[&[("a", "bab")]], &[&[], &[("a", "b")], &[("b", "aaa")]]);
}

#[test]
fn s8_starts_with() {
    check(r#"a starts with "a""#, &[&[("a", "abb")]], &[&[("a", "baa")], &[("b", "aaa")]]);
}

#[test]
fn s9_ends_with() {
    check(r#"a ends with "a""#, &[&[("a", "bba")]], &[&[("a", "aab")]]);
}

#[test]
fn s10_negated_in() {
    check(r#"!a in {"a"}"#, &[&[("a", "b")]], &[]);
}

#[test]
fn s11_not_has() {
    check("!has(a)", &[&[("b", "b")]], &[&[("a", "b")]]);
}

#[test]
fn s12_negation_parity() {
    check("!!!has(a)", &[], &[&[("a", "b")]]);
    check("!! ! has(a)", &[], &[&[("a", "b")]]);
}

#[test]
fn s13_match_everything() {
    for s in ["", " ", "all()", "global()"] {
        check(s, &[&[], &[("a", "b")]], &[]);
    }
}

#[test]
fn s14_not_group() {
    check("!(!has(a) || has(b))", &[&[("a", "a")]], &[]);
}

#[test]
fn s15_to_s17_precedence() {
    let l: &[(&str, &str)] = &[("a", "a1"), ("b", "b1")];
    check("a != 'a1' || b != 'b1'", &[], &[l]);
    check("! a == 'a1' || ! b == 'b1'", &[], &[l]);
    check("a != 'a1' && !b == 'b1'", &[], &[l]);
}

#[test]
fn x_bad_selectors_are_rejected() {
    let long = "a".repeat(513);
    let bad: Vec<String> = vec![
        "b == b".into(),
        "'b1' == b".into(),
        "b".into(),
        "a b".into(),
        "!".into(),
        r#"foo == "bar" &"#.into(),
        r#"foo in """#.into(),
        r#""FOO'"#.into(),
        "()".into(),
        "a ".into(),
        "has(foo) &&".into(),
        r#"label = "value""#.into(),
        "has()".into(),
        r#"label ends withs "value""#.into(),
        format!("{long} == 'x'"),
        // Lexing rules from the reference.
        "all ( )".into(),
        "a containsx \"y\"".into(),
        "a == 'x'\n".into(),
        "a notin\"bar\"".into(),
        "a == 'x' | b == 'y'".into(),
    ];
    for s in bad {
        assert!(parse(&s).is_err(), "{s:?} must be rejected");
    }
}

#[test]
fn x_parse_errors_carry_positions() {
    let err = parse("a == 'x' && b").unwrap_err();
    assert_eq!(err.position, 13);
    let err = parse("has(a) && ()").unwrap_err();
    assert_eq!(err.position, 11);
}

#[test]
fn accepted_edge_cases() {
    let long = "a".repeat(512);
    for s in [
        format!("{long} == 'x'"),
        "a notin{\"bar\"}".into(),
        "has(calico/k8s_NS-.1/role)".into(),
        "contains contains 'contains'".into(),
        "in in {\"in\"}".into(),
        "label contains\"v\"".into(),
        "a startswith 'x'".into(),
        "a endswith 'x'".into(),
        "all( )".into(),
        "a in {}".into(),
        "a in {'x',}".into(),
    ] {
        assert!(parse(&s).is_ok(), "{s:?} must parse");
    }
    // Empty sets: `in {}` never matches, `not in {}` always does.
    check("a in {}", &[], &[&[("a", "")], &[]]);
    check("a not in {}", &[&[("a", "")], &[]], &[]);
}

#[test]
fn k_canonical_forms() {
    let cases = [
        ("", "all()"),
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
        (r#"a in {"z", "z", "x", "y", "x", "a"}"#, r#"a in {"a", "x", "y", "z"}"#),
        (r#"a startswith '"'"#, r#"a starts with '"'"#),
        (r#"a!='"'"#, r#"a != '"'"#),
    ];
    for (input, canonical) in cases {
        let e = parse(input).unwrap();
        assert_eq!(e.canonical(), canonical, "canonical form of {input:?}");
        // Canonical text re-parses to the same tree.
        assert_eq!(parse(canonical).unwrap(), e);
    }
}

#[test]
fn k_unique_ids() {
    assert_eq!(parse("").unwrap().unique_id(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
    assert_eq!(parse("! (has( b)||! has(a ))").unwrap().unique_id(), "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q");
    assert_eq!(parse(r#"! (a == "b"&&! c != "d")"#).unwrap().unique_id(), "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w");
}

#[test]
fn depth_and_length_limits() {
    let deep = format!("{}has(a){}", "(".repeat(100), ")".repeat(100));
    let err = parse(&deep).unwrap_err();
    assert!(err.message.contains("deeper"), "{err}");
    let limits = ParseLimits { max_len: 10, max_depth: 8 };
    assert!(parse_with("has(abcdefghijk)", limits).is_err());
}

#[test]
fn prefixing_for_namespace_scope() {
    // G3 of the reference: labels gain the pcns. prefix.
    let e = parse("!has(key) || (has(key) && !key in {'value'})").unwrap();
    assert_eq!(
        e.prefixed("pcns.", Some("projectcalico.org/namespace")).canonical(),
        r#"(!has(pcns.key) || (has(pcns.key) && !pcns.key in {"value"}))"#
    );
    assert_eq!(
        parse("all()").unwrap().prefixed("pcns.", Some("projectcalico.org/namespace")).canonical(),
        "has(projectcalico.org/namespace)"
    );
    assert_eq!(
        parse("global()").unwrap().prefixed("pcns.", Some("projectcalico.org/namespace")).canonical(),
        "!has(projectcalico.org/namespace)"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let label = prop::sample::select(vec!["a", "b", "app", "x/y", "in", "contains"]).prop_map(String::from);
        let value = prop::sample::select(vec!["", "v", "w", "a\"b", "it's"]).prop_map(String::from);
        let leaf = prop_oneof![
            Just(Expr::All),
            label.clone().prop_map(Expr::Has),
            (label.clone(), value.clone()).prop_map(|(k, v)| Expr::Eq(k, v)),
            (label.clone(), value.clone()).prop_map(|(k, v)| Expr::Ne(k, v)),
            (label.clone(), value.clone()).prop_map(|(k, v)| Expr::Contains(k, v)),
            (label.clone(), value.clone()).prop_map(|(k, v)| Expr::StartsWith(k, v)),
            (label.clone(), value.clone()).prop_map(|(k, v)| Expr::EndsWith(k, v)),
            (label.clone(), prop::collection::btree_set(value.clone(), 0..3)).prop_map(|(k, s)| Expr::In(k, s)),
            (label, prop::collection::btree_set(value, 0..3)).prop_map(|(k, s)| Expr::NotIn(k, s)),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
    }

    fn strip_double_not(e: Expr) -> Expr {
        // The parser collapses `!!x` to `x`; normalise the generated tree the same way.
        match e {
            Expr::Not(inner) => match strip_double_not(*inner) {
                Expr::Not(x) => *x,
                other => Expr::Not(Box::new(other)),
            },
            Expr::And(es) => Expr::And(es.into_iter().map(strip_double_not).collect()),
            Expr::Or(es) => Expr::Or(es.into_iter().map(strip_double_not).collect()),
            other => other,
        }
    }

    proptest! {
        /// Printing then parsing gives back the same expression: the canonical form is a
        /// faithful serialisation.
        #[test]
        fn canonical_round_trips(e in arb_expr()) {
            let e = strip_double_not(e);
            let text = e.canonical();
            let back = parse(&text).unwrap();
            prop_assert_eq!(back.canonical(), text);
        }
    }
}
