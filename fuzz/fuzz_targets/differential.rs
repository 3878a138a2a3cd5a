//! Compiled vs reference on arbitrary small bundles (built from a structured description)
//! and arbitrary requests.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const LABELS: [&str; 4] = ["app: a", "app: b", "team: x", "app: a, team: x"];
const SELECTORS: [&str; 8] =
    ["all()", "app == 'a'", "app != 'a'", "has(team)", "!has(app)", "app in {'a', 'b'}", "team == 'x' || app == 'b'", ""];
const NETS: [&str; 4] = ["10.0.0.0/30", "10.0.0.4/31", "192.0.2.0/24", "0.0.0.0/1"];
const ACTIONS: [&str; 4] = ["Allow", "Deny", "Pass", "Log"];
const PROTOCOLS: [&str; 4] = ["", "protocol: TCP, ", "protocol: UDP, ", "protocol: ICMP, "];

#[derive(Arbitrary, Debug)]
struct Rule {
    action: u8,
    protocol: u8,
    src_sel: Option<u8>,
    dst_net: Option<u8>,
    not_sel: Option<u8>,
    port: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Policy {
    namespaced: bool,
    tier: u8,
    order: Option<u8>,
    selector: u8,
    staged: bool,
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
}

#[derive(Arbitrary, Debug)]
struct Case {
    pods: Vec<(bool, u8)>,
    sets: Vec<(u8, u8)>,
    tier_pass: bool,
    policies: Vec<Policy>,
    requests: Vec<(u8, u8, u8, Option<u16>, bool, u8)>,
}

fn rule(r: &Rule, egress: bool) -> String {
    let protocol = PROTOCOLS[r.protocol as usize % 4];
    let mut src = Vec::new();
    let mut dst = Vec::new();
    if let Some(s) = r.src_sel {
        src.push(format!("selector: \"{}\"", SELECTORS[s as usize % SELECTORS.len()]));
    }
    if let Some(n) = r.not_sel {
        src.push(format!("notSelector: \"{}\"", SELECTORS[n as usize % SELECTORS.len()]));
    }
    if let Some(n) = r.dst_net {
        dst.push(format!("nets: [{}]", NETS[n as usize % NETS.len()]));
    }
    if let Some(p) = r.port
        && (protocol.contains("TCP") || protocol.contains("UDP"))
    {
        dst.push(format!("ports: [{}]", [80, 53, 443, 8080][p as usize % 4]));
    }
    let _ = egress;
    format!(
        "{{action: {}, {protocol}source: {{{}}}, destination: {{{}}}}}",
        ACTIONS[r.action as usize % 4],
        src.join(", "),
        dst.join(", ")
    )
}

fuzz_target!(|case: Case| {
    let mut y = String::new();
    y.push_str(&format!(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: t1}}\nspec: {{order: 1, defaultAction: {}}}\n---\n",
        if case.tier_pass { "Pass" } else { "Deny" }
    ));
    for (i, (ns2, l)) in case.pods.iter().take(6).enumerate() {
        y.push_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: {}, labels: {{{}}}}}\nstatus: {{podIP: 10.0.0.{}}}\n---\n",
            if *ns2 { "ns2" } else { "ns1" },
            LABELS[*l as usize % 4],
            i + 1
        ));
    }
    for (i, (n, l)) in case.sets.iter().take(3).enumerate() {
        y.push_str(&format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: s{i}, labels: {{{}}}}}\nspec: {{nets: [{}]}}\n---\n",
            LABELS[*l as usize % 4],
            NETS[*n as usize % 4]
        ));
    }
    for (i, p) in case.policies.iter().take(6).enumerate() {
        let kind = match (p.namespaced, p.staged) {
            (false, false) => "GlobalNetworkPolicy",
            (true, false) => "NetworkPolicy",
            (false, true) => "StagedGlobalNetworkPolicy",
            (true, true) => "StagedNetworkPolicy",
        };
        let meta = if p.namespaced { format!("{{name: p{i}, namespace: ns1}}") } else { format!("{{name: p{i}}}") };
        let order = p.order.map(|o| format!("order: {}, ", o % 3)).unwrap_or_default();
        let ingress: Vec<String> = p.ingress.iter().take(3).map(|r| rule(r, false)).collect();
        let egress: Vec<String> = p.egress.iter().take(3).map(|r| rule(r, true)).collect();
        y.push_str(&format!(
            "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {meta}\nspec: {{tier: {}, {order}selector: \"{}\", ingress: [{}], egress: [{}]}}\n---\n",
            if p.tier % 2 == 0 { "default" } else { "t1" },
            SELECTORS[p.selector as usize % SELECTORS.len()],
            ingress.join(", "),
            egress.join(", ")
        ));
    }
    let engine = palisade::Engine::new(palisade::Config::default());
    let Ok(_) = engine.load_str(&y) else { return };
    let snap = engine.snapshot().expect("loaded");
    for (s, d, proto, port, both, icmp) in case.requests.iter().take(16) {
        let ip = |x: u8| if x % 8 == 7 { "192.0.2.9".to_string() } else { format!("10.0.0.{}", x % 8) };
        let protocol = ["TCP", "UDP", "ICMP"][*proto as usize % 3];
        let port = match (protocol, port) {
            ("ICMP", _) => String::new(),
            (_, Some(p)) => format!(r#", "port": {p}"#),
            (_, None) => r#", "port": 80"#.into(),
        };
        let icmp = if protocol == "ICMP" && icmp % 2 == 0 { r#", "icmp": {"type": 8}"# } else { "" };
        let text = format!(
            r#"{{"direction": "{}", "protocol": "{protocol}", "source": {{"ip": "{}"}}, "destination": {{"ip": "{}"{port}}}{icmp}}}"#,
            if *both { "both" } else { "ingress" },
            ip(*s),
            ip(*d)
        );
        let Ok(req) = palisade::OwnedRequest::from_json(&text) else { continue };
        let r = req.as_request();
        let (fast, ft) = snap.decide_traced(&r);
        let (reference, rt) = snap.decide_reference_traced(&r);
        assert_eq!(fast, reference, "{text}\n{y}");
        assert_eq!(ft, rt, "{text}\n{y}");
    }
});
