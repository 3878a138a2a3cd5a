//! HTTP path validation and normalisation, without heap allocation.
//!
//! Every policy kind first: strip query and fragment, reject an encoded separator (`%2F`,
//! `%5C`, any case: SPEC 9.3), percent-decode once, reject what is still encoded (`%2e`,
//! `%2f`, `%5c`), NUL and non-UTF-8, turn `\` into `/`, drop `;params` from each segment. Then Calico rules apply Go's `path.Clean`, Istio rules
//! RFC 3986 dot-segment removal without merging slashes.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))] // on the decision path: nothing here may panic

/// The longest HTTP path accepted (a longer one is an invalid request).
pub const MAX_PATH_LEN: usize = 8192;

/// A fixed-capacity byte buffer on the stack.
pub struct PathBuffer {
    bytes: [u8; MAX_PATH_LEN],
    len: usize,
}

impl Default for PathBuffer {
    fn default() -> Self {
        PathBuffer { bytes: [0; MAX_PATH_LEN], len: 0 }
    }
}

impl PathBuffer {
    fn push(&mut self, b: u8) -> Result<(), &'static str> {
        let slot = self.bytes.get_mut(self.len).ok_or("HTTP path is too long")?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    fn extend(&mut self, s: &[u8]) -> Result<(), &'static str> {
        for &b in s {
            self.push(b)?;
        }
        Ok(())
    }

    fn truncate_to_last_slash(&mut self) {
        let cut = self.as_bytes().iter().rposition(|&b| b == b'/').unwrap_or(0);
        self.len = cut;
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// The buffer as text (it only ever holds validated UTF-8).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Whether a path needs no normalisation at all: it is already what both forms give.
pub fn is_plain(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    // Branch-free folds the compiler turns into SIMD compares: no byte that normalisation
    // rewrites, no empty segment ("//"), no trailing '/'.
    let special = b.iter().fold(false, |acc, &c| acc | matches!(c, b'%' | b'.' | b'\\' | b';' | b'?' | b'#' | 0));
    let double_slash = b.iter().zip(b.iter().skip(1)).fold(false, |acc, (&x, &y)| acc | ((x == b'/') & (y == b'/')));
    !special && !double_slash && (b.len() == 1 || b.last() != Some(&b'/'))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why a path with `%2F` or `%5C` is refused.
pub const ENCODED_SEPARATOR: &str = "HTTP path has an encoded '/' or '\\' (%2F or %5C), which Palisade refuses: \
     the backend may not decode it, so no policy can know which path it serves";

/// Validates a request path and writes its decoded form (query and fragment stripped,
/// decoded once, `\` as `/`, `;params` dropped) into `out`. An encoded `/` or `\`
/// (`%2F`, `%5C`, any case) is an error: Istio's default, like many backends, keeps `%2F`
/// as it is, so decoding it would let `/admin%2F..%2Fpublic/x` match a rule on `/public`
/// while the backend serves something under `/admin`.
pub fn decode(path: &str, out: &mut PathBuffer) -> Result<(), &'static str> {
    out.clear();
    let raw = path.as_bytes();
    let end = raw.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(raw.len());
    let raw = raw.get(..end).unwrap_or_default();
    if raw.first() != Some(&b'/') {
        return Err("HTTP path does not start with '/'");
    }
    if raw.len() > MAX_PATH_LEN {
        return Err("HTTP path is too long");
    }
    // Percent-decode once.
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let (h, l) = match (raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => (h, l),
                _ => return Err("HTTP path has a malformed percent-escape"),
            };
            let byte = h * 16 + l;
            if byte == b'/' || byte == b'\\' {
                return Err(ENCODED_SEPARATOR);
            }
            out.push(byte)?;
            i += 3;
        } else {
            out.push(b)?;
            i += 1;
        }
    }
    let decoded = out.as_bytes();
    if std::str::from_utf8(decoded).is_err() {
        return Err("HTTP path is not UTF-8 after decoding");
    }
    if decoded.contains(&0) {
        return Err("HTTP path contains NUL");
    }
    for w in decoded.windows(3) {
        if let [b'%', a, b] = w {
            let pair = [a.to_ascii_lowercase(), b.to_ascii_lowercase()];
            if matches!(&pair, b"2e" | b"2f" | b"5c") {
                return Err("HTTP path is still percent-encoded after one decoding pass");
            }
        }
    }
    // `\` to `/`, then drop `;params` from each segment, in place.
    let mut w = 0;
    let mut in_params = false;
    for r in 0..out.len {
        let c = match out.bytes.get(r) {
            Some(b'\\') => b'/',
            Some(&c) => c,
            None => break,
        };
        if c == b'/' {
            in_params = false;
        } else if c == b';' {
            in_params = true;
        }
        if !in_params && let Some(slot) = out.bytes.get_mut(w) {
            *slot = c;
            w += 1;
        }
    }
    out.len = w;
    Ok(())
}

/// Go's `path.Clean` on a rooted, decoded path: repeated `/` merged, `.` and `..`
/// resolved, no trailing `/` (except the root).
pub fn clean_calico(decoded: &str, out: &mut PathBuffer) -> Result<(), &'static str> {
    out.clear();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => out.truncate_to_last_slash(),
            s => {
                out.push(b'/')?;
                out.extend(s.as_bytes())?;
            }
        }
    }
    if out.len == 0 {
        out.push(b'/')?;
    }
    Ok(())
}

/// RFC 3986 dot-segment removal on a rooted, decoded path, keeping empty segments (Istio's
/// default: `/public//../admin` is `/public/admin`).
pub fn clean_istio(decoded: &str, out: &mut PathBuffer) -> Result<(), &'static str> {
    out.clear();
    let body = decoded.strip_prefix('/').unwrap_or(decoded);
    let n = body.split('/').count();
    for (i, seg) in body.split('/').enumerate() {
        let last = i + 1 == n;
        match seg {
            "." => {
                if last {
                    out.push(b'/')?;
                }
            }
            ".." => {
                out.truncate_to_last_slash();
                if last {
                    out.push(b'/')?;
                }
            }
            s => {
                out.push(b'/')?;
                out.extend(s.as_bytes())?;
            }
        }
    }
    if out.len == 0 {
        out.push(b'/')?;
    }
    Ok(())
}

/// Normalises a rule's path (Calico form) at load time.
pub fn normalise_calico(path: &str) -> Result<String, &'static str> {
    let mut dec = Box::<PathBuffer>::default();
    decode(path, &mut dec)?;
    let mut out = Box::<PathBuffer>::default();
    clean_calico(dec.as_str(), &mut out)?;
    Ok(out.as_str().to_string())
}

/// Calico path matching on normalised paths: `exact` is equality, `prefix` is
/// segment-aligned (`/` matches everything).
pub fn calico_prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calico(p: &str) -> Result<String, &'static str> {
        let mut d = Box::<PathBuffer>::default();
        decode(p, &mut d)?;
        let mut o = Box::<PathBuffer>::default();
        clean_calico(d.as_str(), &mut o)?;
        Ok(o.as_str().to_string())
    }

    fn istio(p: &str) -> Result<String, &'static str> {
        let mut d = Box::<PathBuffer>::default();
        decode(p, &mut d)?;
        let mut o = Box::<PathBuffer>::default();
        clean_istio(d.as_str(), &mut o)?;
        Ok(o.as_str().to_string())
    }

    #[test]
    fn h4_exact_ignores_query_and_fragment() {
        assert_eq!(calico("/foo?xyz").unwrap(), "/foo");
        assert_eq!(calico("/foo#xyz").unwrap(), "/foo");
        assert_ne!(calico("/foobar").unwrap(), "/foo");
    }

    #[test]
    fn h5_prefix_is_segment_aligned() {
        assert!(calico_prefix_matches("/foo", "/foo/bar"));
        assert!(calico_prefix_matches("/foo", "/foo"));
        assert!(!calico_prefix_matches("/foo", "/foobar"));
        assert!(calico_prefix_matches("/", "/anything"));
    }

    #[test]
    fn h6_traversal_does_not_stay_under_prefix() {
        for p in ["/public/../admin", "/public/..;x/admin", "/public\\..\\admin"] {
            let n = calico(p).unwrap();
            assert_eq!(n, "/admin", "{p}");
            assert!(!calico_prefix_matches("/public", &n));
        }
        // Double-encoded dots are rejected outright.
        assert!(calico("/public/%252e%252e/admin").is_err());
    }

    #[test]
    fn encoded_separators_are_refused() {
        for p in ["/admin%2F..%2Fpublic/x", "/admin%5C..%5Cpublic/x", "/a%2fb", "/a%5cb", "/%2F", "/x/%5C"] {
            assert_eq!(calico(p), Err(ENCODED_SEPARATOR), "{p}");
            assert_eq!(istio(p), Err(ENCODED_SEPARATOR), "{p}");
        }
        // In the query or fragment they are not part of the path.
        assert_eq!(calico("/public/x?next=%2Fadmin").unwrap(), "/public/x");
        assert_eq!(calico("/public/x#%5C").unwrap(), "/public/x");
        // Other escapes still decode once.
        assert_eq!(calico("/public/%78").unwrap(), "/public/x");
    }

    #[test]
    fn h7_repeated_slashes_merge() {
        assert_eq!(calico("//public").unwrap(), "/public");
        assert_eq!(calico("/public//foo").unwrap(), "/public/foo");
    }

    #[test]
    fn h8_escapes_decode_once() {
        assert_eq!(calico("/public/%66ile").unwrap(), "/public/file");
    }

    #[test]
    fn istio_keeps_empty_segments() {
        assert_eq!(istio("/public//../admin").unwrap(), "/public/admin");
        assert_eq!(calico("/public//../admin").unwrap(), "/admin");
        assert_eq!(istio("/a/b/..").unwrap(), "/a/");
        assert_eq!(istio("/a/./").unwrap(), "/a/");
        assert_eq!(istio("/a/").unwrap(), "/a/");
        assert_eq!(istio("/../..").unwrap(), "/");
    }

    #[test]
    fn invalid_paths() {
        for p in ["", "foo", "/a%2", "/a%zz", "/a%00b", "/a\0b", "/%ff", "/a%2fb%252f", "/x%5C%255c"] {
            assert!(calico(p).is_err(), "{p:?}");
        }
        assert!(calico(&format!("/{}", "a".repeat(MAX_PATH_LEN))).is_err());
    }

    #[test]
    fn plain_paths_are_their_own_normal_form() {
        for p in ["/", "/api/items", "/a-b_c~d"] {
            assert!(is_plain(p));
            assert_eq!(calico(p).unwrap(), p);
            assert_eq!(istio(p).unwrap(), p);
        }
        for p in ["/a/", "/a//b", "/a/./b", "/a;x", "/a%41", "/a?b", "a"] {
            assert!(!is_plain(p), "{p}");
        }
    }
}
