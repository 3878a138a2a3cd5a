//! Errors across the boundary: `palisade_error` values built from the core's located
//! errors (the same fields as every binding: `ErrorFields`), stored into the caller's
//! `err` out-pointer, and the panic boundary every entry point runs behind.

use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use palisade_core::LoadError;
use palisade_core::answer::ErrorFields;

use crate::types::{palisade_error, palisade_status};

pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

pub(crate) fn make_error(status: palisade_status, kind: &str, message: &str) -> Box<palisade_error> {
    Box::new(palisade_error {
        status,
        message: cstring(message),
        kind: cstring(kind),
        file: None,
        object: None,
        field: None,
        document: -1,
        report: cstring(message),
        count: 1,
    })
}

pub(crate) fn load_error(e: &LoadError) -> Box<palisade_error> {
    let fields = ErrorFields::of_load(e);
    let mut err = make_error(palisade_status::Bundle, fields.kind, &e.to_string());
    err.file = fields.file.as_deref().map(cstring);
    err.object = fields.object.as_deref().map(cstring);
    err.field = fields.field.as_deref().map(cstring);
    err.document = fields.document.map(|d| d as i64).unwrap_or(-1);
    err.report = cstring(&e.report());
    err.count = 1 + e.others.len();
    err
}

/// Stores `err` into `*out` when `out` is not NULL; returns its status.
pub(crate) unsafe fn report(out: *mut *mut palisade_error, err: Box<palisade_error>) -> palisade_status {
    let status = err.status;
    if !out.is_null() {
        // SAFETY: the caller gave a writable pointer (or NULL, checked above).
        unsafe { *out = Box::into_raw(err) };
    }
    status
}

pub(crate) fn write_error(e: palisade_ownership::WriteError) -> Box<palisade_error> {
    match e {
        palisade_ownership::WriteError::Load(l) => load_error(&l),
        refused @ palisade_ownership::WriteError::Refused(_) => {
            make_error(palisade_status::Refused, "refused", &refused.to_string())
        }
    }
}

/// Runs `f`, turning a panic into `PALISADE_STATUS_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> palisade_status) -> palisade_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(palisade_status::Panic)
}

/// The panic boundary of an entry point with an `err` out-pointer: runs `f`, and turns a
/// panic into `PALISADE_STATUS_PANIC` with an error stored into `*err`.
pub(crate) fn guarded(err: *mut *mut palisade_error, f: impl FnOnce() -> palisade_status) -> palisade_status {
    let status = guard(f);
    if status == palisade_status::Panic {
        // SAFETY: `err` is the caller's out-pointer (NULL or writable), as `report` requires.
        unsafe { report(err, make_error(palisade_status::Panic, "panic", "internal error (panic caught)")) };
    }
    status
}

/// Reads a field of a caller's error; `absent` for NULL.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
pub(crate) unsafe fn error_field<T>(err: *const palisade_error, absent: T, f: impl FnOnce(&palisade_error) -> T) -> T {
    // SAFETY: per the contract above.
    match unsafe { err.as_ref() } {
        Some(e) => f(e),
        None => absent,
    }
}
