//! Reading the caller's values: borrowed strings and addresses, string lists, the C request
//! into a core `Request` (validated, allocation-free up to 32 headers and 16 audiences), the
//! fail-closed shape of the decide entry points, and borrowed names handed back.

use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_core::{Address, Auth, Direction, Headers, Http, Icmp, Request, StrList};

use crate::errors::guard;
use crate::types::{
    deny_decision, palisade_decision, palisade_header, palisade_ip, palisade_reason, palisade_request, palisade_status,
    palisade_str,
};

/// Reads a `palisade_str`; `Ok(None)` when absent.
pub(crate) unsafe fn read_str<'a>(s: palisade_str) -> Result<Option<&'a str>, palisade_status> {
    if s.ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises `ptr` points at `len` readable bytes for the call.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr.cast::<u8>(), s.len) };
    std::str::from_utf8(bytes).map(Some).map_err(|_| palisade_status::InvalidUtf8)
}

pub(crate) fn read_ip(ip: &palisade_ip) -> Result<Option<IpAddr>, palisade_status> {
    match ip.family {
        0 => Ok(None),
        4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(ip.addr[0], ip.addr[1], ip.addr[2], ip.addr[3])))),
        6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(ip.addr)))),
        _ => Err(palisade_status::InvalidArgument),
    }
}

/// Reads `n` strings; `None` when one is NULL-pointed or not UTF-8.
pub(crate) unsafe fn read_strs(list: *const palisade_str, n: usize) -> Result<Vec<String>, palisade_status> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() {
        return Err(palisade_status::NullArgument);
    }
    // SAFETY: the caller passes `n` valid palisade_str values.
    let items = unsafe { std::slice::from_raw_parts(list, n) };
    items
        .iter()
        .map(|s| match unsafe { read_str(*s) } {
            Ok(Some(t)) => Ok(t.to_string()),
            Ok(None) => Err(palisade_status::NullArgument),
            Err(e) => Err(e),
        })
        .collect()
}

/// Translates the C request and calls `f` with it. Strings are validated; up to 32 headers
/// and 16 audiences are held on the stack (more allocate).
pub(crate) unsafe fn with_request<R>(
    req: &palisade_request,
    f: impl FnOnce(&Request<'_>) -> R,
) -> Result<R, palisade_status> {
    let raw_headers: &[palisade_header] = if req.header_count == 0 {
        &[]
    } else if req.headers.is_null() {
        return Err(palisade_status::NullArgument);
    } else {
        // SAFETY: `headers` holds `header_count` entries.
        unsafe { std::slice::from_raw_parts(req.headers, req.header_count) }
    };
    let raw_audiences: &[palisade_str] = if req.audience_count == 0 {
        &[]
    } else if req.audiences.is_null() {
        return Err(palisade_status::NullArgument);
    } else {
        // SAFETY: `audiences` holds `audience_count` entries.
        unsafe { std::slice::from_raw_parts(req.audiences, req.audience_count) }
    };
    with_pairs(raw_headers, |headers| with_strs(raw_audiences, |audiences| build(req, headers, audiences, f)))
}

/// Validates header pairs into a stack buffer (up to 32; more allocate) and calls `k`.
pub(crate) fn with_pairs<T>(
    raw: &[palisade_header],
    k: impl FnOnce(&[(&str, &str)]) -> Result<T, palisade_status>,
) -> Result<T, palisade_status> {
    let pair = |h: &palisade_header| -> Result<(&str, &str), palisade_status> {
        // SAFETY: the caller's strings are readable for the call.
        Ok(unsafe { (read_str(h.name)?.unwrap_or(""), read_str(h.value)?.unwrap_or("")) })
    };
    if raw.is_empty() {
        return k(&[]);
    }
    if raw.len() <= 32 {
        let mut buf: [(&str, &str); 32] = [("", ""); 32];
        for (slot, h) in buf.iter_mut().zip(raw) {
            *slot = pair(h)?;
        }
        return k(&buf[..raw.len()]);
    }
    let v = raw.iter().map(pair).collect::<Result<Vec<_>, _>>()?;
    k(&v)
}

/// Validates strings into a stack buffer (up to 16; more allocate) and calls `k`.
pub(crate) fn with_strs<T>(
    raw: &[palisade_str],
    k: impl FnOnce(&[&str]) -> Result<T, palisade_status>,
) -> Result<T, palisade_status> {
    // SAFETY: the caller's strings are readable for the call.
    let one = |x: &palisade_str| -> Result<&str, palisade_status> { Ok(unsafe { read_str(*x)? }.unwrap_or("")) };
    if raw.is_empty() {
        return k(&[]);
    }
    if raw.len() <= 16 {
        let mut buf: [&str; 16] = [""; 16];
        for (slot, x) in buf.iter_mut().zip(raw) {
            *slot = one(x)?;
        }
        return k(&buf[..raw.len()]);
    }
    let v = raw.iter().map(one).collect::<Result<Vec<_>, _>>()?;
    k(&v)
}

/// Builds the core request from validated parts and calls `f`.
pub(crate) fn build<R>(
    req: &palisade_request,
    headers: &[(&str, &str)],
    audiences: &[&str],
    f: impl FnOnce(&Request<'_>) -> R,
) -> Result<R, palisade_status> {
    // SAFETY: the caller's strings are readable for the call.
    let s = |x| unsafe { read_str(x) };
    let port = |p: i32| -> Result<Option<u16>, palisade_status> {
        match p {
            -1 => Ok(None),
            0..=65535 => Ok(Some(p as u16)),
            _ => Err(palisade_status::InvalidArgument),
        }
    };
    let src_ip = read_ip(&req.src_ip)?.ok_or(palisade_status::InvalidArgument)?;
    let dst_ip = read_ip(&req.dst_ip)?.ok_or(palisade_status::InvalidArgument)?;
    let remote_ip = read_ip(&req.remote_ip)?;
    let direction = match req.direction {
        0 => Direction::Both,
        1 => Direction::Ingress,
        2 => Direction::Egress,
        _ => return Err(palisade_status::InvalidArgument),
    };
    let icmp = match (req.icmp_type, req.icmp_code) {
        (-1, _) => None,
        (t @ 0..=255, -1) => Some(Icmp { icmp_type: t as u8, code: None }),
        (t @ 0..=255, c @ 0..=255) => Some(Icmp { icmp_type: t as u8, code: Some(c as u8) }),
        _ => return Err(palisade_status::InvalidArgument),
    };
    // One header name given twice (names compare case-insensitively) is a duplicate key, as
    // in the JSON form (SPEC 9.1): which value would a policy read? Allocation-free.
    if headers.iter().enumerate().any(|(i, (a, _))| headers.iter().skip(i + 1).any(|(b, _)| a.eq_ignore_ascii_case(b)))
    {
        return Err(palisade_status::InvalidArgument);
    }
    let claims_text = s(req.claims_json)?;
    let claims: Option<serde_json::Value> = match claims_text {
        None => None,
        // Strict parsing: a claim given twice is an error, not last-wins.
        Some(t) => Some(palisade_core::request::parse_json(t).map_err(|_| palisade_status::InvalidArgument)?),
    };
    let auth_principal = s(req.auth_principal)?;
    let auth_presenter = s(req.auth_presenter)?;
    let has_auth = auth_principal.is_some() || auth_presenter.is_some() || !audiences.is_empty() || claims.is_some();
    let http = if req.has_http {
        Some(Http {
            method: s(req.method)?.ok_or(palisade_status::NullArgument)?,
            path: s(req.path)?.ok_or(palisade_status::NullArgument)?,
            host: s(req.host)?,
            headers: Headers::Borrowed(headers),
        })
    } else {
        None
    };
    let request = Request {
        direction,
        protocol: if req.protocol == 0 { 6 } else { req.protocol },
        source: Address { ip: src_ip, port: port(req.src_port)?, principal: s(req.src_principal)? },
        destination: Address { ip: dst_ip, port: port(req.dst_port)?, principal: s(req.dst_principal)? },
        remote_ip,
        icmp,
        http,
        sni: s(req.sni)?,
        auth: has_auth.then_some(Auth {
            principal: auth_principal,
            audiences: StrList::Borrowed(audiences),
            presenter: auth_presenter,
            claims: claims.as_ref(),
        }),
    };
    Ok(f(&request))
}

/// The shared shape of the decide entry points: `*out` starts as a deny, `body` fills it,
/// and a caught panic leaves a deny.
pub(crate) unsafe fn decide_into(
    out: *mut palisade_decision,
    body: impl FnOnce(&mut palisade_decision) -> palisade_status,
) -> palisade_status {
    if out.is_null() {
        return palisade_status::NullArgument;
    }
    // SAFETY: `out` is writable (checked non-NULL) for the call.
    let out = unsafe { &mut *out };
    *out = deny_decision(palisade_reason::InvalidRequest);
    let status = guard(|| body(&mut *out));
    if status == palisade_status::Panic {
        *out = deny_decision(palisade_reason::InvalidRequest);
    }
    status
}

pub(crate) fn borrowed(s: Option<&str>, len: *mut usize) -> *const c_char {
    match s {
        Some(s) => {
            if !len.is_null() {
                // SAFETY: checked non-NULL.
                unsafe { *len = s.len() };
            }
            s.as_ptr().cast()
        }
        None => std::ptr::null(),
    }
}
