//! SPIFFE ID validation, by the SPIFFE ID specification.

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
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if td.is_empty()
            || !td
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return None;
        }
        if !path.is_empty() {
            // `path` starts with '/'; every segment after it must be valid.
            for seg in path.get(1..)?.split('/') {
                if seg.is_empty() || seg == "." || seg == ".." {
                    return None;
                }
                if !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                {
                    return None;
                }
            }
        }
        Some(SpiffeId {
            trust_domain: td,
            path,
        })
    }

    /// `(namespace, service account)` when the path is exactly `/ns/<ns>/sa/<sa>`.
    pub fn workload(&self) -> Option<(&'a str, &'a str)> {
        let mut it = self.path.strip_prefix('/')?.split('/');
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
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

    #[test]
    fn workload_path() {
        let id = SpiffeId::parse("spiffe://td/ns/x/sa/y").unwrap();
        assert_eq!(id.workload(), Some(("x", "y")));
        assert_eq!(
            SpiffeId::parse("spiffe://td/ns/x/sa/y/z")
                .unwrap()
                .workload(),
            None
        );
        assert_eq!(SpiffeId::parse("spiffe://td").unwrap().workload(), None);
    }
}
