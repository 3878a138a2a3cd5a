//! The request JSON parser, then decide on the shop example: never a panic, and the compiled
//! engine agrees with the reference on whatever parses.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn engine() -> &'static palisade::Engine {
    static E: OnceLock<palisade::Engine> = OnceLock::new();
    E.get_or_init(|| {
        let e = palisade::Engine::new(palisade::Config::default());
        e.load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop")]).expect("shop loads");
        e
    })
}

fuzz_target!(|text: &str| {
    if let Ok(req) = palisade::OwnedRequest::from_json(text) {
        let snap = engine().snapshot().expect("loaded");
        let r = req.as_request();
        let d = snap.decide(&r);
        assert_eq!(d, snap.decide_reference(&r));
        let _ = snap.explain(&r).json().to_string();
    }
});
