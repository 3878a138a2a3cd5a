//! Time per `proxy_on_request_headers` (host calls included) with the filter on the shop
//! example, in this interpreter-based host, every stream on one connection (the `peer` network
//! filter runs once, when it opens); and the `.wasm` size.
//!
//! `cargo run --release -p palisade-proxy-wasm-host --bin filter_bench [PATH.wasm]`

use palisade_proxy_wasm_host::FilterVm;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("{root}/target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm"));
    let wasm = match std::fs::read(&path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{path}: {e} (build it with scripts/wasm-filter.sh)");
            std::process::exit(1);
        }
    };
    let mut files: Vec<_> = std::fs::read_dir(format!("{root}/examples/shop"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "yaml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let bundle: String =
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect::<Vec<_>>().join("\n---\n");
    let Ok(mut vm) = FilterVm::load(&wasm) else {
        eprintln!("the filter does not load");
        std::process::exit(1);
    };
    let t = std::time::Instant::now();
    let ok = vm.configure(bundle.as_bytes()).unwrap_or(false);
    let configure = t.elapsed();
    assert!(ok, "configuration rejected");
    assert!(vm.configure_peer_filter(br#"{"listener": "peer"}"#).unwrap_or(false), "peer filter rejected");
    vm.set_connection(
        Some("10.1.0.5:43122"),
        Some("10.1.0.9:8080"),
        Some("spiffe://cluster.local/ns/shop/sa/frontend"),
        Some("cart.shop.svc.cluster.local"),
    );
    let headers = [(":method", "GET"), (":path", "/api/cart/42"), (":authority", "cart.shop"), ("x-request-id", "1")];
    let n = 5_000;
    for _ in 0..200 {
        let _ = vm.http_request(&headers);
    }
    let t = std::time::Instant::now();
    let mut allowed = 0;
    for _ in 0..n {
        if vm.http_request(&headers).map(|o| o.allowed()).unwrap_or(false) {
            allowed += 1;
        }
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    println!(".wasm size: {} bytes ({:.0} KiB)", wasm.len(), wasm.len() as f64 / 1024.0);
    println!("on_configure (shop bundle): {:.1} ms", configure.as_secs_f64() * 1e3);
    println!("HTTP stream (context create + request headers + done/log/delete): {per:.0} ns ({allowed}/{n} allowed)");
}
