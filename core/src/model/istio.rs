//! Istio AuthorizationPolicy rules, kept with Istio's semantics: sources, operations and
//! `when` conditions; values ORed within a field, fields ANDed, `not*` negated.

use ipnet::IpNet;

/// Istio's string match: `abc` exact, `abc*` prefix, `*abc` suffix, `*` presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Present and not empty.
    Presence,
}

impl StrMatch {
    /// Parses Istio's notation.
    ///
    /// ```
    /// use palisade::model::StrMatch;
    /// assert_eq!(StrMatch::parse("*"), StrMatch::Presence);
    /// assert_eq!(StrMatch::parse("/api*"), StrMatch::Prefix("/api".into()));
    /// assert_eq!(StrMatch::parse("*.svc"), StrMatch::Suffix(".svc".into()));
    /// ```
    pub fn parse(s: &str) -> StrMatch {
        if s == "*" {
            StrMatch::Presence
        } else if let Some(p) = s.strip_suffix('*') {
            StrMatch::Prefix(p.to_string())
        } else if let Some(p) = s.strip_prefix('*') {
            StrMatch::Suffix(p.to_string())
        } else {
            StrMatch::Exact(s.to_string())
        }
    }

    /// The same match with its text lower-cased (for case-insensitive hosts).
    pub fn lowercased(&self) -> StrMatch {
        match self {
            StrMatch::Exact(s) => StrMatch::Exact(s.to_ascii_lowercase()),
            StrMatch::Prefix(s) => StrMatch::Prefix(s.to_ascii_lowercase()),
            StrMatch::Suffix(s) => StrMatch::Suffix(s.to_ascii_lowercase()),
            StrMatch::Presence => StrMatch::Presence,
        }
    }
}

/// One segment of a `{*}` / `{**}` path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// A literal segment.
    Literal(String),
    /// `{*}`: exactly one segment.
    One,
    /// `{**}`: any number of segments (zero or more, as Envoy's `uri_template`).
    Many,
}

/// A path criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// Istio string match on the normalised path.
    Str(StrMatch),
    /// A URI template, segment by segment.
    Template(Vec<TemplateSegment>),
}

/// `from.source`: every set field must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IstioSource {
    /// Peer principal (`<td>/ns/<ns>/sa/<sa>`).
    pub principals: Vec<StrMatch>,
    /// Negated.
    pub not_principals: Vec<StrMatch>,
    /// JWT `iss/sub` (HTTP only).
    pub request_principals: Vec<StrMatch>,
    /// Negated (HTTP only).
    pub not_request_principals: Vec<StrMatch>,
    /// Peer namespace patterns (`*` wildcards).
    pub namespaces: Vec<String>,
    /// Negated.
    pub not_namespaces: Vec<String>,
    /// `(namespace, service account)`.
    pub service_accounts: Vec<(String, String)>,
    /// Negated.
    pub not_service_accounts: Vec<(String, String)>,
    /// The direct peer IP.
    pub ip_blocks: Vec<IpNet>,
    /// Negated.
    pub not_ip_blocks: Vec<IpNet>,
    /// The original client IP (`remote_ip`, else the peer IP).
    pub remote_ip_blocks: Vec<IpNet>,
    /// Negated.
    pub not_remote_ip_blocks: Vec<IpNet>,
    /// Peer trust domain patterns.
    pub trust_domains: Vec<String>,
    /// Negated.
    pub not_trust_domains: Vec<String>,
}

impl IstioSource {
    /// Whether any field needs HTTP attributes.
    pub fn uses_http(&self) -> bool {
        !self.request_principals.is_empty() || !self.not_request_principals.is_empty()
    }
}

/// `to.operation`: every set field must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IstioOperation {
    /// Hosts (lower-cased; compared case-insensitively). HTTP only.
    pub hosts: Vec<StrMatch>,
    /// Negated.
    pub not_hosts: Vec<StrMatch>,
    /// Destination ports.
    pub ports: Vec<u16>,
    /// Negated.
    pub not_ports: Vec<u16>,
    /// Methods. HTTP only.
    pub methods: Vec<StrMatch>,
    /// Negated.
    pub not_methods: Vec<StrMatch>,
    /// Paths. HTTP only.
    pub paths: Vec<PathPattern>,
    /// Negated.
    pub not_paths: Vec<PathPattern>,
}

impl IstioOperation {
    /// Whether any field needs HTTP attributes.
    pub fn uses_http(&self) -> bool {
        !(self.hosts.is_empty()
            && self.not_hosts.is_empty()
            && self.methods.is_empty()
            && self.not_methods.is_empty()
            && self.paths.is_empty()
            && self.not_paths.is_empty())
    }
}

/// A `when` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenKey {
    /// `request.headers[name]` (name lower-cased). HTTP only.
    Header(String),
    /// `source.ip`.
    SourceIp,
    /// `remote.ip`.
    RemoteIp,
    /// `source.namespace`.
    SourceNamespace,
    /// `source.serviceAccount`.
    SourceServiceAccount,
    /// `source.trustDomain`.
    SourceTrustDomain,
    /// `source.principal`.
    SourcePrincipal,
    /// `request.auth.principal`. HTTP only.
    AuthPrincipal,
    /// `request.auth.audiences`. HTTP only.
    AuthAudiences,
    /// `request.auth.presenter`. HTTP only.
    AuthPresenter,
    /// `request.auth.claims[a][b]...`. HTTP only.
    AuthClaim(Vec<String>),
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `connection.sni`.
    Sni,
}

impl WhenKey {
    /// Whether the key reads an HTTP-only attribute.
    pub fn is_http(&self) -> bool {
        matches!(
            self,
            WhenKey::Header(_)
                | WhenKey::AuthPrincipal
                | WhenKey::AuthAudiences
                | WhenKey::AuthPresenter
                | WhenKey::AuthClaim(_)
        )
    }
}

/// Typed condition values.
#[derive(Debug, Clone, PartialEq)]
pub enum CondValues {
    /// String matches.
    Str(Vec<StrMatch>),
    /// CIDRs.
    Nets(Vec<IpNet>),
    /// Ports.
    Ports(Vec<u16>),
    /// Namespace patterns.
    Namespaces(Vec<String>),
    /// `(namespace, service account)`.
    ServiceAccounts(Vec<(String, String)>),
    /// Trust-domain patterns.
    TrustDomains(Vec<String>),
}

impl CondValues {
    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        match self {
            CondValues::Str(v) => v.is_empty(),
            CondValues::Nets(v) => v.is_empty(),
            CondValues::Ports(v) => v.is_empty(),
            CondValues::Namespaces(v) => v.is_empty(),
            CondValues::ServiceAccounts(v) => v.is_empty(),
            CondValues::TrustDomains(v) => v.is_empty(),
        }
    }
}

/// A `when` condition: `values` ORed, `not_values` negated, both ANDed.
#[derive(Debug, Clone, PartialEq)]
pub struct IstioCondition {
    /// The key.
    pub key: WhenKey,
    /// Values (possibly empty).
    pub values: CondValues,
    /// Negated values (possibly empty).
    pub not_values: CondValues,
}

/// One Istio rule: any `from` matches, any `to` matches, every `when` holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IstioRule {
    /// Sources (empty: any).
    pub from: Vec<IstioSource>,
    /// Operations (empty: any).
    pub to: Vec<IstioOperation>,
    /// Conditions.
    pub when: Vec<IstioCondition>,
}

impl IstioRule {
    /// Whether any field of the rule needs HTTP attributes (so that an ALLOW rule is
    /// dropped for a request without them).
    pub fn uses_http(&self) -> bool {
        self.from.iter().any(IstioSource::uses_http)
            || self.to.iter().any(IstioOperation::uses_http)
            || self.when.iter().any(|c| c.key.is_http())
    }
}
