//! The bundle loader on arbitrary bytes: an error or a bundle, never a panic or a hang;
//! a bundle that loads also compiles and decides.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let engine = palisade::Engine::new(palisade::Config::default());
    if engine.load_str(text).is_ok() {
        let req = palisade::OwnedRequest::from_json(
            r#"{"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2", "port": 80}}"#,
        )
        .expect("fixed request");
        let snap = engine.snapshot().expect("loaded");
        assert_eq!(snap.decide(&req.as_request()), snap.decide_reference(&req.as_request()));
    }
});
