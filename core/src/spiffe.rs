//! SPIFFE ID validation, by the SPIFFE ID specification.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))] // on the decision path: nothing here may panic

/// The longest SPIFFE ID accepted (the specification's limit for URIs).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// A valid SPIFFE ID, borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    /// The trust domain.
    pub trust_domain: &'a str,
    /// The path, starting with `/`, or empty for a trust-domain-only ID.
    pub path: &'a str,
}

impl<'a> SpiffeId<'a> {
    /// Parses and validates a SPIFFE ID: lower-case `spiffe` scheme, a trust domain of
    /// `[a-z0-9._-]`, path segments of `[A-Za-z0-9._-]` that are not `.` or `..`, no
    /// empty segment, no trailing `/`, and no percent-encoding, query, fragment, port or
    /// user info (all of which the character sets exclude).
    ///
    /// ```
    /// use palisade::spiffe::SpiffeId;
    /// let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/frontend").unwrap();
    /// assert_eq!(id.trust_domain, "cluster.local");
    /// assert_eq!(id.workload(), Some(("shop", "frontend")));
    /// assert!(SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/frontend/").is_none());
    /// assert!(SpiffeId::parse("SPIFFE://cluster.local/x").is_none());
    /// ```
    pub fn parse(text: &'a str) -> Option<SpiffeId<'a>> {
        if text.len() > MAX_SPIFFE_ID_LEN {
            return None;
        }
        let rest = text.strip_prefix("spiffe://")?;
        let b = rest.as_bytes();
        // Trust domain: up to the first '/'.
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            if c == b'/' {
                break;
            }
            if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_' || c == b'-') {
                return None;
            }
            i += 1;
        }
        if i == 0 {
            return None;
        }
        let (td, path) = rest.split_at(i);
        // Path: segments of [A-Za-z0-9._-], none empty, none `.` or `..`, no trailing '/'.
        let p = path.as_bytes();
        let mut seg_start = 1;
        let mut k = 1;
        while k <= p.len() && !p.is_empty() {
            let c = p.get(k).copied();
            if c.is_none() || c == Some(b'/') {
                let seg = p.get(seg_start..k)?;
                if seg.is_empty() || seg == b"." || seg == b".." {
                    return None;
                }
                seg_start = k + 1;
            } else if let Some(c) = c
                && !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
            {
                return None;
            }
            k += 1;
        }
        Some(SpiffeId { trust_domain: td, path })
    }

    /// `(namespace, service account)` when the path is exactly `/ns/<ns>/sa/<sa>`.
    pub fn workload(&self) -> Option<(&'a str, &'a str)> {
        let rest = self.path.strip_prefix("/ns/")?;
        let (ns, rest) = rest.split_at(rest.find('/')?);
        let sa = rest.strip_prefix("/sa/")?;
        if sa.contains('/') {
            return None;
        }
        Some((ns, sa))
    }

    /// Istio's principal string: the URI without `spiffe://`.
    pub fn istio_principal(&self, original: &'a str) -> &'a str {
        original.strip_prefix("spiffe://").unwrap_or(original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        for s in [
            "spiffe://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local",
            "spiffe://td-1.example_x/Path/With.Dots/and_under-scores",
        ] {
            assert!(SpiffeId::parse(s).is_some(), "{s}");
        }
    }

    #[test]
    fn invalid_ids() {
        for s in [
            "",
            "spiffe://",
            "spiffe:///ns/a",
            "Spiffe://cluster.local/ns/a/sa/b",
            "spiffe://Cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe://cluster.local/ns/./sa/b",
            "spiffe://cluster.local/ns/../sa/b",
            "spiffe://cluster.local/ns/a%20b/sa/b",
            "spiffe://cluster.local/ns/a/sa/b?x=1",
            "spiffe://cluster.local/ns/a/sa/b#f",
            "spiffe://cluster.local:8443/ns/a/sa/b",
            "spiffe://user@cluster.local/ns/a/sa/b",
            "https://cluster.local/ns/a/sa/b",
        ] {
            assert!(SpiffeId::parse(s).is_none(), "{s}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_SPIFFE_ID_LEN));
        assert!(SpiffeId::parse(&long).is_none());
    }

    /// The obvious statement of the specification, to check the byte-level parser against.
    fn valid_by_spec(s: &str) -> bool {
        let Some(rest) = s.strip_prefix("spiffe://") else { return false };
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let td_ok =
            !td.is_empty() && td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        let path_ok = path.is_empty()
            || path[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        s.len() <= MAX_SPIFFE_ID_LEN && td_ok && path_ok
    }

    proptest::proptest! {
        #[test]
        fn parser_agrees_with_the_specification(s in "(spiffe://)?[a-zA-Z0-9./_%:@-]{0,12}(/[a-zA-Z0-9./_-]{0,6}){0,4}") {
            proptest::prop_assert_eq!(SpiffeId::parse(&s).is_some(), valid_by_spec(&s), "{}", s);
        }
    }

    #[test]
    fn workload_path() {
        let id = SpiffeId::parse("spiffe://td/ns/x/sa/y").unwrap();
        assert_eq!(id.workload(), Some(("x", "y")));
        assert_eq!(SpiffeId::parse("spiffe://td/ns/x/sa/y/z").unwrap().workload(), None);
        assert_eq!(SpiffeId::parse("spiffe://td").unwrap().workload(), None);
    }
}
