//! The selector parser: never panics; a parsed selector's canonical form re-parses to the
//! same canonical form and the same tree.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(e) = palisade::selector::parse(text) {
        let canonical = e.canonical();
        let again = palisade::selector::parse(&canonical).expect("a canonical form re-parses");
        assert_eq!(again.canonical(), canonical);
        let _ = e.unique_id();
    }
});
