//! The request JSON parser, then decide on the shop example: never a panic, and the compiled
//! engine agrees with the reference on whatever parses.
//!
//! Two modes. Input starting with byte 0 is a structured description (issue 14): a request
//! tree, written out with duplicates kept, where the fuzzer may repeat a key in any object
//! (nested claims included, and header names differing only in case), give any struct as an
//! array, and build paths from encoded separators. Oracles: a duplicate key or an array
//! where an object belongs never parses; a parsed request whose path holds `%2F` or `%5C`
//! is always denied `invalid_request`. Any other input is JSON text, parsed as it is: the
//! strict parser then agrees with serde_json on every text it accepts.
#![no_main]
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static palisade::Engine {
    static E: OnceLock<palisade::Engine> = OnceLock::new();
    E.get_or_init(|| {
        let e = palisade::Engine::new(palisade::Config::default());
        e.load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop")]).expect("shop loads");
        e
    })
}

const IPS: [&str; 8] =
    ["10.1.0.5", "10.1.0.9", "10.2.0.7", "203.0.113.9", "fd00::1", "::ffff:10.1.0.5", "2001:db8::9", "10.1.0.66"];
const PRINCIPALS: [&str; 5] = [
    "spiffe://cluster.local/ns/shop/sa/frontend",
    "spiffe://cluster.local/ns/shop/sa/cart",
    "cluster.local/ns/shop/sa/frontend",
    "spiffe://other.example/ns/x/sa/y",
    "spiffe://cluster.local/ns/shop/sa/",
];
const SEGMENTS: [&str; 16] =
    ["api", "cart", "42", "admin", "public", "..", ".", "", "%2F", "%2f", "%5C", "%5c", "%2e", "%252F", "x;y", "%41"];
const HEADER_NAMES: [&str; 4] = ["x-evil", "X-Evil", "x-a", "X-EVIL"];
const KEYS: [&str; 4] = ["a", "b", "role", "groups"];

/// A JSON tree that keeps duplicate keys. `typed`: the object is read as a struct or a
/// map (not as free-form claims), so an array in its place must be refused.
#[derive(Debug, Clone)]
enum J {
    Obj { entries: Vec<(String, J)>, typed: bool },
    Arr(Vec<J>),
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
}

fn obj(entries: Vec<(&str, J)>) -> J {
    J::Obj { entries: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), typed: true }
}

fn s(x: &str) -> J {
    J::Str(x.to_string())
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Obj { entries, .. } => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("a string serialises"));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            J::Str(x) => out.push_str(&serde_json::to_string(x).expect("a string serialises")),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Null => out.push_str("null"),
        }
    }

    /// Whether some object holds one key twice.
    fn has_duplicate(&self) -> bool {
        match self {
            J::Obj { entries, .. } => {
                let mut seen = std::collections::HashSet::new();
                entries.iter().any(|(k, _)| !seen.insert(k.as_str())) || entries.iter().any(|(_, v)| v.has_duplicate())
            }
            J::Arr(items) => items.iter().any(J::has_duplicate),
            _ => false,
        }
    }
}

/// Free-form claims: nested objects and arrays over a tiny key alphabet (so keys collide).
fn claims(u: &mut Unstructured<'_>, depth: u32) -> Result<J> {
    Ok(match (depth, u.int_in_range(0..=5)?) {
        (3.., _) | (_, 0) => s(u.choose(&["admin", "user", "x"])?),
        (_, 1) => J::Num(u.int_in_range(-3..=3)?),
        (_, 2) if u.arbitrary()? => J::Null,
        (_, 2) => J::Bool(u.arbitrary()?),
        (_, 3) => J::Arr((0..u.int_in_range(0..=3)?).map(|_| claims(u, depth + 1)).collect::<Result<_>>()?),
        _ => J::Obj {
            entries: (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((u.choose(&KEYS)?.to_string(), claims(u, depth + 1)?)))
                .collect::<Result<_>>()?,
            typed: false,
        },
    })
}

fn path(u: &mut Unstructured<'_>) -> Result<String> {
    let mut p = String::new();
    for _ in 0..u.int_in_range(1..=5)? {
        p.push(if u.ratio(1, 8)? { '\\' } else { '/' });
        p.push_str(u.choose(&SEGMENTS)?);
    }
    match u.int_in_range(0..=5)? {
        0 => p.push_str("?next=%2Fadmin"),
        1 => p.push_str("#%5C"),
        _ => {}
    }
    Ok(p)
}

/// Whether the path part (before `?` or `#`) holds an encoded `/` or `\`.
fn encoded_separator(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or("").to_ascii_lowercase();
    path.contains("%2f") || path.contains("%5c")
}

struct Built {
    tree: J,
    path: Option<String>,
    /// Header names that are equal but for case.
    header_case_clash: bool,
}

fn build(u: &mut Unstructured<'_>) -> Result<Built> {
    let mut source = vec![("ip", s(u.choose(&IPS)?))];
    if u.arbitrary()? {
        source.push(("principal", s(u.choose(&PRINCIPALS)?)));
    }
    let mut root = vec![
        ("source", obj(source)),
        ("destination", obj(vec![("ip", s(u.choose(&IPS)?)), ("port", J::Num(*u.choose(&[8080, 8443, 53, 80])?))])),
    ];
    let mut the_path = None;
    let mut header_case_clash = false;
    if u.arbitrary()? {
        let p = path(u)?;
        let mut names: Vec<&str> = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            names.push(u.choose(&HEADER_NAMES)?);
        }
        // Distinct JSON keys that name one header (HTTP names are case-insensitive).
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        let mut lower: Vec<String> = distinct.iter().map(|n| n.to_ascii_lowercase()).collect();
        lower.sort();
        lower.dedup();
        header_case_clash = lower.len() < distinct.len();
        let headers = obj(names.iter().map(|n| (*n, s(u.choose(&["1", "2"]).unwrap_or(&"1")))).collect());
        root.push((
            "http",
            obj(vec![("method", s(u.choose(&["GET", "POST"])?)), ("path", s(&p)), ("headers", headers)]),
        ));
        the_path = Some(p);
    }
    if u.arbitrary()? {
        root.push(("auth", obj(vec![("principal", s("https://issuer/x")), ("claims", claims(u, 0)?)])));
    }
    Ok(Built { tree: obj(root), path: the_path, header_case_clash })
}

/// Applies the fuzzer's mutations: repeat a key somewhere, or turn a typed object into an
/// array of its values. Returns whether an array now stands where an object belongs.
fn mutate(u: &mut Unstructured<'_>, tree: &mut J) -> Result<bool> {
    let mut array_for_object = false;
    for _ in 0..u.int_in_range(0..=2)? {
        // Walk to the n-th object by pre-order index.
        let n = u.int_in_range(0..=8)?;
        let mut count = 0;
        let Some(target) = nth_object(tree, n, &mut count) else { continue };
        let dup = u.arbitrary()?;
        if let J::Obj { entries, typed } = target {
            if dup && !entries.is_empty() {
                let i = u.choose_index(entries.len())?;
                let (k, v) = entries[i].clone();
                let v = if u.arbitrary()? { v } else { s("other") };
                let at = u.int_in_range(0..=entries.len())?;
                entries.insert(at, (k, v));
            } else if !dup && *typed {
                let values = entries.iter().map(|(_, v)| v.clone()).collect();
                *target = J::Arr(values);
                array_for_object = true;
            }
        }
    }
    Ok(array_for_object)
}

fn nth_object<'a>(j: &'a mut J, n: usize, count: &mut usize) -> Option<&'a mut J> {
    if matches!(j, J::Obj { .. }) {
        if *count == n {
            return Some(j);
        }
        *count += 1;
    }
    match j {
        J::Obj { entries, .. } => entries.iter_mut().find_map(|(_, v)| nth_object(v, n, count)),
        J::Arr(items) => items.iter_mut().find_map(|v| nth_object(v, n, count)),
        _ => None,
    }
}

fn decide(req: &palisade::OwnedRequest) -> palisade::Decision {
    let snap = engine().snapshot().expect("loaded");
    let r = req.as_request();
    let d = snap.decide(&r);
    assert_eq!(d, snap.decide_reference(&r));
    let _ = snap.explain(&r).json().to_string();
    d
}

fn structured(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let Built { mut tree, path, header_case_clash } = build(&mut u)?;
    let array_for_object = mutate(&mut u, &mut tree)?;
    let mut text = String::new();
    tree.write(&mut text);
    let duplicate = tree.has_duplicate();
    match palisade::OwnedRequest::from_json(&text) {
        Ok(req) => {
            assert!(!duplicate, "a duplicate key parsed: {text}");
            assert!(!array_for_object, "an array parsed as an object: {text}");
            assert!(!header_case_clash, "one header given twice parsed: {text}");
            let d = decide(&req);
            if path.as_deref().is_some_and(encoded_separator) {
                assert_eq!(d.reason, palisade::Reason::InvalidRequest, "encoded separator decided: {text}");
            }
        }
        Err(e) => {
            // A refusal names a field or the whole request, and no Rust type.
            assert!(!e.message.contains("struct ") && !e.message.contains("Option<"), "{e}");
        }
    }
    if duplicate {
        assert!(palisade::request::parse_json(&text).is_err(), "parse_json kept a duplicate: {text}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => {
            let _ = structured(rest);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(data) else { return };
            if let Ok(req) = palisade::OwnedRequest::from_json(text) {
                decide(&req);
            }
            // Strict parsing refuses more than serde_json, never less, and reads the same.
            if let Ok(v) = palisade::request::parse_json(text) {
                assert_eq!(serde_json::from_str::<serde_json::Value>(text).ok(), Some(v), "{text}");
            }
        }
    }
});
