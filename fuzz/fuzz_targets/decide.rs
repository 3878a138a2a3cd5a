//! Decide on the shop and mesh examples with structurally arbitrary requests (typed, so the
//! fuzzer reaches the engine rather than the JSON parser): no panic, compiled == reference.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use palisade::{Address, Auth, Direction, Headers, Http, Icmp, Request, StrList};

/// One engine per example bundle (shop: Calico tiers; mesh: Calico, Istio and Kubernetes).
fn engines() -> &'static [palisade::Engine; 2] {
    static E: OnceLock<[palisade::Engine; 2]> = OnceLock::new();
    E.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        ["shop", "mesh"].map(|name| {
            let e = palisade::Engine::new(palisade::Config::default());
            e.load_paths(&[format!("{root}/../examples/{name}")]).expect("example loads");
            e
        })
    })
}

const IPS: [[u8; 4]; 8] =
    [[10, 1, 0, 5], [10, 1, 0, 9], [10, 2, 0, 7], [10, 1, 0, 66], [203, 0, 113, 9], [10, 20, 0, 20], [10, 30, 0, 10], [10, 99, 0, 7]];
const PRINCIPALS: [&str; 5] = [
    "spiffe://cluster.local/ns/shop/sa/frontend",
    "spiffe://cluster.local/ns/payments/sa/payments",
    "spiffe://cluster.local/ns/store/sa/api",
    "spiffe://other.example/ns/x/sa/y",
    "spiffe://cluster.local",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    direction: u8,
    protocol: u8,
    src: u8,
    dst: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    src_principal: Option<u8>,
    raw_principal: Option<&'a str>,
    icmp: Option<(u8, Option<u8>)>,
    http: Option<(&'a str, &'a str, Option<&'a str>)>,
    headers: Vec<(&'a str, &'a str)>,
    sni: Option<&'a str>,
    auth: Option<(&'a str, Vec<&'a str>)>,
}

fn ip(i: u8) -> IpAddr {
    let a = IPS[i as usize % IPS.len()];
    IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3].wrapping_add(i / 8 % 2)))
}

fuzz_target!(|input: Input<'_>| {
    let principal = match (input.src_principal, input.raw_principal) {
        (Some(i), _) => Some(PRINCIPALS[i as usize % PRINCIPALS.len()]),
        (None, raw) => raw,
    };
    let audiences: Vec<&str> = input.auth.as_ref().map(|a| a.1.clone()).unwrap_or_default();
    let req = Request {
        direction: match input.direction % 3 {
            0 => Direction::Both,
            1 => Direction::Ingress,
            _ => Direction::Egress,
        },
        protocol: input.protocol,
        source: Address { ip: ip(input.src), port: input.src_port, principal },
        destination: Address { ip: ip(input.dst), port: input.dst_port, principal: None },
        remote_ip: None,
        icmp: input.icmp.map(|(t, c)| Icmp { icmp_type: t, code: c }),
        http: input.http.map(|(m, p, h)| Http { method: m, path: p, host: h, headers: Headers::Borrowed(&input.headers) }),
        sni: input.sni,
        auth: input.auth.as_ref().map(|a| Auth {
            principal: Some(a.0),
            audiences: StrList::Borrowed(&audiences),
            presenter: None,
            claims: None,
        }),
    };
    for engine in engines() {
        let snap = engine.snapshot().expect("loaded");
        let (fast, fast_trace) = snap.decide_traced(&req);
        let (reference, reference_trace) = snap.decide_reference_traced(&req);
        assert_eq!(fast, reference, "{req:?}");
        assert_eq!(fast_trace, reference_trace, "{req:?}");
        assert_eq!(snap.decide(&req), fast);
    }
});
