//! The C ABI of Palisade. Thin: it translates types and errors and catches panics; every
//! behaviour lives in the `palisade` core crate.
//!
//! See `c-header/palisade.h` (generated from this crate) for the contract: ownership,
//! threads, and the fail-closed rule (a non-OK status from a decide function always comes
//! with a deny).
//!
//! This file holds the entry points only; what they share is in modules named after it:
//! [`types`] (the C types and the decision's translation), [`errors`] (`palisade_error`
//! from the core's located errors, and the panic boundary `guarded`), [`requests`] (the
//! caller's strings, lists and requests, and the fail-closed decide shape).

#![allow(unsafe_code)] // the C ABI: one of the two places with `unsafe` (see the workspace lints)
#![allow(clippy::missing_safety_doc)] // each function's safety contract is in its doc comment
#![allow(non_camel_case_types)] // C names

mod errors;
mod requests;
mod types;

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use palisade_core::flowlog::{Aggregation, FlowLog, FlowLogConfig};
use palisade_core::{Action, Config, Engine, Reason};

use errors::{cstring, error_field, guarded, load_error, make_error, report, write_error};
use requests::{borrowed, decide_into, read_str, read_strs, with_request};
pub use types::*;

/// The library version (a static NUL-terminated string).
#[unsafe(no_mangle)]
pub extern "C" fn palisade_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Creates an engine with nothing loaded (it denies everything with reason `no_bundle`).
/// `config` may be NULL for the defaults. Returns NULL on error, with `*err` set when `err`
/// is not NULL. Free with `palisade_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_new(
    config: *const palisade_config,
    err: *mut *mut palisade_error,
) -> *mut palisade_engine {
    let mut out: *mut palisade_engine = std::ptr::null_mut();
    guarded(err, || {
        let mut cfg = Config::default();
        if !config.is_null() {
            // SAFETY: non-NULL config points at a valid struct for the call.
            let c = unsafe { &*config };
            let text = |s| unsafe { read_str(s) };
            match (text(c.trust_domain), text(c.istio_root_namespace)) {
                (Ok(td), Ok(root)) => {
                    if let Some(td) = td {
                        cfg.trust_domain = td.to_string();
                    }
                    if let Some(r) = root {
                        cfg.istio_root_namespace = r.to_string();
                    }
                }
                _ => {
                    return unsafe {
                        report(err, make_error(palisade_status::InvalidUtf8, "config", "a config string is not UTF-8"))
                    };
                }
            }
            cfg.require_peer_identity = c.require_peer_identity;
            cfg.no_policy_action = if c.no_policy_deny { Action::Deny } else { Action::Allow };
            if c.max_bundle_bytes > 0 {
                cfg.max_bundle_bytes = c.max_bundle_bytes;
            }
            if c.max_documents > 0 {
                cfg.max_documents = c.max_documents;
            }
            if let Err(e) = cfg.validate() {
                return unsafe { report(err, make_error(palisade_status::Config, "config", &e.to_string())) };
            }
        }
        out = Box::into_raw(Box::new(palisade_engine { engine: Arc::new(Engine::new(cfg)) }));
        palisade_status::Ok
    });
    out
}

/// Creates an engine from a configuration given as YAML or JSON text (every key of the
/// configuration, `trust_domain_aliases` and `default_namespace` included; empty text is
/// the defaults). Returns NULL on error, with `*err` set when `err` is not NULL. Free with
/// `palisade_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_new_from_config_text(
    config: palisade_str,
    err: *mut *mut palisade_error,
) -> *mut palisade_engine {
    let mut out: *mut palisade_engine = std::ptr::null_mut();
    guarded(err, || {
        // SAFETY: the caller passes a valid palisade_str (or a NULL pointer for none).
        let text = match unsafe { read_str(config) } {
            Ok(t) => t.unwrap_or_default(),
            Err(s) => return unsafe { report(err, make_error(s, "config", "the configuration is not UTF-8")) },
        };
        match Config::from_yaml(text) {
            Ok(cfg) => {
                out = Box::into_raw(Box::new(palisade_engine { engine: Arc::new(Engine::new(cfg)) }));
                palisade_status::Ok
            }
            Err(e) => unsafe { report(err, make_error(palisade_status::Config, "config", &e.to_string())) },
        }
    });
    out
}

/// Frees an engine. NULL is ignored. Snapshots pinned from it stay valid until released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_free(engine: *mut palisade_engine) {
    if !engine.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the pointer came from palisade_engine_new and is freed once.
            drop(unsafe { Box::from_raw(engine) });
        }));
    }
}

/// Loads a bundle (YAML or JSON text, `len` bytes), compiles it and swaps it in. On error the
/// previous snapshot keeps serving and `*err` (when `err` is not NULL) says what and where.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_load(
    engine: *const palisade_engine,
    yaml: *const c_char,
    len: usize,
    err: *mut *mut palisade_error,
) -> palisade_status {
    guarded(err, || {
        if engine.is_null() || yaml.is_null() {
            return unsafe {
                report(err, make_error(palisade_status::NullArgument, "argument", "engine and yaml must not be NULL"))
            };
        }
        // SAFETY: checked non-NULL; the engine outlives the call.
        let engine = unsafe { &*engine };
        let text = match unsafe { read_str(palisade_str { ptr: yaml, len }) } {
            Ok(Some(t)) => t,
            _ => {
                return unsafe {
                    report(err, make_error(palisade_status::InvalidUtf8, "syntax", "the bundle is not UTF-8"))
                };
            }
        };
        match engine.engine.load_str(text) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, load_error(&e)) },
        }
    })
}

/// Applies a change set given as JSON text (`changes_json`): an array of
/// `{"op": "upsert", "object": {...}}`, `{"op": "upsert", "text": "...", "source": "..."}`
/// and `{"op": "delete", "apiVersion": "...", "kind": "...", "namespace": "...", "name": "..."}`
/// (what an embedder with its own informers feeds). All-or-nothing: on error nothing
/// changes and `*err` (when not NULL) says what and where (`PALISADE_STATUS_BUNDLE`). With
/// `lenient`, upserts that fail validation are left out and listed in the report's
/// `rejected`. On success `*report_json` (when not NULL) gets the report as an owned
/// NUL-terminated JSON object (`generation`, `upserted`, `deleted`, `objects`, `rejected`;
/// free with `palisade_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_apply_json(
    engine: *const palisade_engine,
    changes_json: palisade_str,
    lenient: bool,
    report_json: *mut *mut c_char,
    err: *mut *mut palisade_error,
) -> palisade_status {
    guarded(err, || {
        if engine.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "engine is NULL")) };
        }
        // SAFETY: checked non-NULL; the engine outlives the call.
        let engine = unsafe { &*engine };
        // SAFETY: the caller passes a valid palisade_str.
        let text = match unsafe { read_str(changes_json) } {
            Ok(Some(t)) => t,
            Ok(None) => {
                return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "no changes")) };
            }
            Err(s) => return unsafe { report(err, make_error(s, "argument", "the changes are not UTF-8")) },
        };
        // Strict text: a key given twice is an error, not last-wins.
        let value = match palisade_core::request::parse_json(text) {
            Ok(v) => v,
            Err(e) => {
                return unsafe { report(err, make_error(palisade_status::Bundle, "syntax", &format!("changes: {e}"))) };
            }
        };
        match palisade_core::answer::apply_value(&engine.engine, &value, lenient) {
            Ok(r) => {
                if !report_json.is_null() {
                    let json = palisade_core::answer::apply_report_json(&r).to_string();
                    // SAFETY: checked non-NULL; the caller owns the string.
                    unsafe { *report_json = cstring(&json).into_raw() };
                }
                palisade_status::Ok
            }
            Err(e) => unsafe { report(err, load_error(&e)) },
        }
    })
}

/// Loads a bundle from files and directories (`count` NUL-terminated paths).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_load_paths(
    engine: *const palisade_engine,
    paths: *const *const c_char,
    count: usize,
    err: *mut *mut palisade_error,
) -> palisade_status {
    guarded(err, || {
        if engine.is_null() || (paths.is_null() && count > 0) {
            return unsafe {
                report(err, make_error(palisade_status::NullArgument, "argument", "engine and paths must not be NULL"))
            };
        }
        // SAFETY: checked non-NULL.
        let engine = unsafe { &*engine };
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: `paths` holds `count` pointers.
            let p = unsafe { *paths.add(i) };
            if p.is_null() {
                return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "a path is NULL")) };
            }
            // SAFETY: each path is a NUL-terminated string.
            match unsafe { CStr::from_ptr(p) }.to_str() {
                Ok(s) => list.push(s.to_string()),
                Err(_) => {
                    return unsafe {
                        report(err, make_error(palisade_status::InvalidUtf8, "argument", "a path is not UTF-8"))
                    };
                }
            }
        }
        match engine.engine.load_paths(&list) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, load_error(&e)) },
        }
    })
}

/// Pins the snapshot in force; NULL when nothing is loaded (or `engine` is NULL). Release
/// with `palisade_snapshot_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_snapshot(engine: *const palisade_engine) -> *mut palisade_snapshot {
    if engine.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let engine = unsafe { &*engine };
        match engine.engine.snapshot() {
            Some(s) => Box::into_raw(Box::new(palisade_snapshot { snapshot: s })),
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// Releases a pinned snapshot. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_release(snapshot: *mut palisade_snapshot) {
    if !snapshot.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the pointer came from palisade_engine_snapshot and is released once.
            drop(unsafe { Box::from_raw(snapshot) });
        }));
    }
}

/// The generation of a pinned snapshot (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_generation(snapshot: *const palisade_snapshot) -> u64 {
    if snapshot.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*snapshot }.snapshot.generation()
}

/// Decides a request against a pinned snapshot; allocation-free for requests without JWT
/// claims. Always fills `*out` (when not NULL): on any non-OK status it is a deny.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decide(
    snapshot: *const palisade_snapshot,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if snapshot.is_null() {
                *out = deny_decision(palisade_reason::NoBundle);
                return palisade_status::NoBundle;
            }
            if request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (snap, req) = (&*snapshot, &*request);
            match with_request(req, |r| snap.snapshot.decide(r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    palisade_status::Ok
                }
                Err(status) => status,
            }
        })
    }
}

/// Decides against the snapshot in force, pinning and releasing it internally. The tier and
/// policy ids in `*out` refer to that snapshot; use `palisade_decide` with a pinned snapshot
/// to read their names safely across reloads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_engine_decide(
    engine: *const palisade_engine,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if engine.is_null() || request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (engine, req) = (&*engine, &*request);
            match with_request(req, |r| engine.engine.decide(r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    if d.reason == Reason::NoBundle { palisade_status::NoBundle } else { palisade_status::Ok }
                }
                Err(status) => status,
            }
        })
    }
}

/// The name of the decision's tier, borrowed from `snapshot` (valid until it is released);
/// `*len` gets its length. NULL when the decision has no tier or ids are out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decision_tier(
    snapshot: *const palisade_snapshot,
    decision: *const palisade_decision,
    len: *mut usize,
) -> *const c_char {
    if snapshot.is_null() || decision.is_null() {
        return std::ptr::null();
    }
    // SAFETY: checked non-NULL.
    let (snap, d) = unsafe { (&*snapshot, &*decision) };
    let name = snap.snapshot.bundle().tier(d.tier).map(|t| t.name.as_str());
    borrowed(name, len)
}

/// The decision's policy as `<kind>:[<ns>/]<name>`, borrowed from `snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_decision_policy(
    snapshot: *const palisade_snapshot,
    decision: *const palisade_decision,
    len: *mut usize,
) -> *const c_char {
    if snapshot.is_null() || decision.is_null() {
        return std::ptr::null();
    }
    // SAFETY: checked non-NULL.
    let (snap, d) = unsafe { (&*snapshot, &*decision) };
    borrowed(snap.snapshot.policy_name(d.policy), len)
}

/// Decides and explains: the SPEC 7 decision JSON with its Calico-format trace, as an owned
/// NUL-terminated string in `*json` (free with `palisade_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_explain_json(
    snapshot: *const palisade_snapshot,
    request: *const palisade_request,
    json: *mut *mut c_char,
    err: *mut *mut palisade_error,
) -> palisade_status {
    guarded(err, || {
        if snapshot.is_null() || request.is_null() || json.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL argument")) };
        }
        // SAFETY: checked non-NULL.
        let (snap, req) = unsafe { (&*snapshot, &*request) };
        match unsafe { with_request(req, |r| snap.snapshot.explain(r).json().to_string()) } {
            Ok(text) => {
                unsafe { *json = cstring(&text).into_raw() };
                palisade_status::Ok
            }
            Err(s) => unsafe {
                report(err, make_error(s, "request", "the request is invalid (NULL, non-UTF-8 or out-of-range field)"))
            },
        }
    })
}

/// Creates a policy store with the default configuration and the bundle given as `n` sources
/// (`names[i]`, YAML/JSON `texts[i]`), loaded unchecked (as an administrator). Returns NULL
/// on error. Free with `palisade_store_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_new(
    names: *const palisade_str,
    texts: *const palisade_str,
    n: usize,
    err: *mut *mut palisade_error,
) -> *mut palisade_store {
    let mut out: *mut palisade_store = std::ptr::null_mut();
    guarded(err, || {
        let (names, texts) = match unsafe { (read_strs(names, n), read_strs(texts, n)) } {
            (Ok(a), Ok(b)) => (a, b),
            (Err(s), _) | (_, Err(s)) => return unsafe { report(err, make_error(s, "argument", "bad source list")) },
        };
        let engine = Arc::new(Engine::new(Config::default()));
        match palisade_ownership::PolicyStore::new(engine, names.into_iter().zip(texts)) {
            Ok(store) => {
                out = Box::into_raw(Box::new(palisade_store { store }));
                palisade_status::Ok
            }
            Err(e) => unsafe { report(err, write_error(e)) },
        }
    });
    out
}

/// Pins the store's snapshot in force, to decide with (`palisade_decide`); NULL when `store`
/// is NULL. Release with `palisade_snapshot_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_snapshot(store: *const palisade_store) -> *mut palisade_snapshot {
    if store.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let s = unsafe { &*store };
        match s.store.engine().snapshot() {
            Some(snapshot) => Box::into_raw(Box::new(palisade_snapshot { snapshot })),
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// A writer that may change the policies of the `n` tiers named, and nothing else. NULL on
/// a NULL store or bad tier names. Free with `palisade_tier_writer_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_tier_writer(
    store: *const palisade_store,
    tiers: *const palisade_str,
    n: usize,
) -> *mut palisade_tier_writer {
    if store.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL; `tiers` holds `n` strings.
        let s = unsafe { &*store };
        match unsafe { read_strs(tiers, n) } {
            Ok(t) => Box::into_raw(Box::new(palisade_tier_writer { writer: s.store.tier_writer(t) })),
            Err(_) => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// Replaces (or adds) the source `name` with `text`. The whole new bundle is loaded and
/// compared with the one in force; anything outside the writer's tiers refuses the write
/// whole (`PALISADE_STATUS_REFUSED`, one message per change), a bundle that does not load is
/// `PALISADE_STATUS_BUNDLE`; either way nothing changes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_tier_writer_put(
    writer: *const palisade_tier_writer,
    name: palisade_str,
    text: palisade_str,
    err: *mut *mut palisade_error,
) -> palisade_status {
    guarded(err, || {
        if writer.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL writer")) };
        }
        // SAFETY: checked non-NULL.
        let w = unsafe { &*writer };
        let (name, text) = match unsafe { (read_str(name), read_str(text)) } {
            (Ok(Some(n)), Ok(Some(t))) => (n, t),
            _ => return unsafe { report(err, make_error(palisade_status::InvalidUtf8, "argument", "name or text")) },
        };
        match w.writer.put(name, text) {
            Ok(_) => palisade_status::Ok,
            Err(e) => unsafe { report(err, write_error(e)) },
        }
    })
}

/// Frees a tier writer. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_tier_writer_free(writer: *mut palisade_tier_writer) {
    if !writer.is_null() {
        // SAFETY: the pointer came from palisade_store_tier_writer and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(writer) })));
    }
}

/// Frees a store. NULL is ignored. Writers and snapshots taken from it stay valid until freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_store_free(store: *mut palisade_store) {
    if !store.is_null() {
        // SAFETY: the pointer came from palisade_store_new and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// The documents of a pinned snapshot's bundle that Palisade read no access rule from, as
/// an owned JSON string `[{"apiVersion", "kind", "count"}]` (free with
/// `palisade_string_free`); NULL when `snapshot` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_snapshot_skipped_json(snapshot: *const palisade_snapshot) -> *mut c_char {
    if snapshot.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let snap = unsafe { &*snapshot };
        cstring(&palisade_core::lint::skipped_json(snap.snapshot.bundle()).to_string()).into_raw()
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// `palisade_flowlog_new`'s `aggregation`: one record per evaluated side of each decision,
/// not aggregated (each with its `palisade.decision_id`).
pub const PALISADE_FLOWLOG_AGGREGATION_NONE: i32 = -1;
/// `palisade_flowlog_new`'s `aggregation`: Felix's defaults, level 2 for allowed flows and
/// 1 for denied ones. Levels 0-3 aggregate allowed and denied flows alike at that level.
pub const PALISADE_FLOWLOG_AGGREGATION_DEFAULT: i32 = -2;

/// Creates a flow logger deciding with `engine` (which it keeps alive: the engine may be
/// freed first). `capacity` is the number of decisions its queue holds (0: the default,
/// 4096), allocated now; when the queue is full further decisions are still decided but not
/// recorded, and counted (`palisade_flowlog_dropped`). `aggregation` is how
/// `palisade_flowlog_drain_json` aggregates: `PALISADE_FLOWLOG_AGGREGATION_NONE`,
/// `PALISADE_FLOWLOG_AGGREGATION_DEFAULT`, or a Calico level 0-3. Returns NULL on error
/// (NULL engine, another aggregation value), with `*err` set when `err` is not NULL. Free
/// with `palisade_flowlog_free`. Every function on a flow logger may be called from any
/// thread, concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_new(
    engine: *const palisade_engine,
    capacity: usize,
    aggregation: i32,
    err: *mut *mut palisade_error,
) -> *mut palisade_flowlog {
    let mut out: *mut palisade_flowlog = std::ptr::null_mut();
    guarded(err, || {
        if engine.is_null() {
            return unsafe { report(err, make_error(palisade_status::NullArgument, "argument", "NULL engine")) };
        }
        // SAFETY: checked non-NULL; the engine lives for the call.
        let engine = unsafe { &*engine }.engine.clone();
        let mut config = FlowLogConfig::default();
        if capacity > 0 {
            config.capacity = capacity;
        }
        let aggregated = match aggregation {
            PALISADE_FLOWLOG_AGGREGATION_NONE => false,
            PALISADE_FLOWLOG_AGGREGATION_DEFAULT => true,
            n => match u8::try_from(n).ok().and_then(Aggregation::from_level) {
                Some(level) => {
                    config.aggregation_allowed = level;
                    config.aggregation_denied = level;
                    true
                }
                None => {
                    let msg = format!("aggregation {n}: give -1 (none), -2 (Felix's defaults) or a level 0-3");
                    return unsafe { report(err, make_error(palisade_status::InvalidArgument, "argument", &msg)) };
                }
            },
        };
        let log = FlowLog::new(config);
        if let Some(s) = engine.snapshot() {
            log.prepare(&s);
        }
        out = Box::into_raw(Box::new(palisade_flowlog { log, engine, aggregated }));
        palisade_status::Ok
    });
    out
}

/// Decides a request against the engine's snapshot in force, as `palisade_engine_decide`
/// does (same statuses, same decision), and records the decision for the flow log. Never
/// blocks or allocates (for requests without JWT claims). Always fills `*out` (when not
/// NULL): on any non-OK status it is a deny. Requests that do not translate (a non-OK
/// status other than `PALISADE_STATUS_NO_BUNDLE`) are not recorded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_decide(
    flowlog: *const palisade_flowlog,
    request: *const palisade_request,
    out: *mut palisade_decision,
) -> palisade_status {
    unsafe {
        decide_into(out, |out| {
            if flowlog.is_null() || request.is_null() {
                return palisade_status::NullArgument;
            }
            // SAFETY: checked non-NULL; both live for the call.
            let (fl, req) = (&*flowlog, &*request);
            match with_request(req, |r| fl.log.decide(&fl.engine, r)) {
                Ok(d) => {
                    *out = to_c(&d);
                    if d.reason == Reason::NoBundle { palisade_status::NoBundle } else { palisade_status::Ok }
                }
                Err(status) => status,
            }
        })
    }
}

/// Takes every recorded decision and returns its flow-log records, aggregated as configured,
/// as Calico `flows.log` JSON lines (each ending in a newline; an empty string when nothing
/// was recorded), an owned string to free with `palisade_string_free`. NULL when `flowlog`
/// is NULL (or on an internal error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_drain_json(flowlog: *const palisade_flowlog) -> *mut c_char {
    if flowlog.is_null() {
        return std::ptr::null_mut();
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-NULL.
        let fl = unsafe { &*flowlog };
        let records = if fl.aggregated { fl.log.drain_aggregated() } else { fl.log.drain() };
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.to_json_line());
            text.push('\n');
        }
        cstring(&text).into_raw()
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// How many decisions were not recorded because the queue was full (never reset; 0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_dropped(flowlog: *const palisade_flowlog) -> u64 {
    if flowlog.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL.
    unsafe { &*flowlog }.log.stats().dropped
}

/// Frees a flow logger (decisions still queued are discarded). NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_flowlog_free(flowlog: *mut palisade_flowlog) {
    if !flowlog.is_null() {
        // SAFETY: the pointer came from palisade_flowlog_new and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(flowlog) })));
    }
}

/// Frees a string returned by Palisade. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The error's status.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_status(err: *const palisade_error) -> palisade_status {
    // SAFETY: `err` is NULL or an error from this library (the caller's contract).
    unsafe { error_field(err, palisade_status::NullArgument, |e| e.status) }
}

/// The error's message (NUL-terminated, borrowed from the error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_message(err: *const palisade_error) -> *const c_char {
    // SAFETY: `err` is NULL or an error from this library (the caller's contract).
    unsafe { error_field(err, c"(null error)".as_ptr(), |e| e.message.as_ptr()) }
}

/// Every error of a rejected load, one located line each, the headline first
/// (NUL-terminated, borrowed from the error); the message itself for other errors.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_report(err: *const palisade_error) -> *const c_char {
    // SAFETY: `err` is NULL or an error from this library (the caller's contract).
    unsafe { error_field(err, c"(null error)".as_ptr(), |e| e.report.as_ptr()) }
}

/// How many errors the load found (at most 100 are listed in the report; 1 for errors that
/// are not load errors, 0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_count(err: *const palisade_error) -> usize {
    // SAFETY: `err` is NULL or an error from this library (the caller's contract).
    unsafe { error_field(err, 0, |e| e.count) }
}

/// A stable lower-case code for the error kind (`syntax`, `schema`, `invalid`, `unsupported`,
/// `duplicate`, `unknown_tier`, `limit`, `empty`, `io`, `config`, `argument`, `panic`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_kind(err: *const palisade_error) -> *const c_char {
    // SAFETY: `err` is NULL or an error from this library (the caller's contract).
    unsafe { error_field(err, c"argument".as_ptr(), |e| e.kind.as_ptr()) }
}

/// For bundle errors: the source file, the object (`Kind ns/name`) and the field path
/// (each NULL when unknown); `*document` gets the document index or -1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_location(
    err: *const palisade_error,
    file: *mut *const c_char,
    object: *mut *const c_char,
    field: *mut *const c_char,
    document: *mut i64,
) {
    if err.is_null() {
        return;
    }
    // SAFETY: checked non-NULL; out pointers are checked before writing.
    let e = unsafe { &*err };
    let put = |dst: *mut *const c_char, v: &Option<CString>| {
        if !dst.is_null() {
            unsafe { *dst = v.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null()) };
        }
    };
    put(file, &e.file);
    put(object, &e.object);
    put(field, &e.field);
    if !document.is_null() {
        unsafe { *document = e.document };
    }
}

/// Frees an error. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn palisade_error_free(err: *mut palisade_error) {
    if !err.is_null() {
        // SAFETY: the error came from this library and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}
