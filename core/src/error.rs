//! Typed errors. Every load error names where it happened: the source, the document, the
//! object and the field path, so that a person can find and fix it.

use std::fmt;

/// A selector that does not parse, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector error at byte {position}: {message}")]
pub struct SelectorError {
    /// Byte offset in the selector text.
    pub position: usize,
    /// What was wrong.
    pub message: String,
}

impl SelectorError {
    pub(crate) fn new(position: usize, message: String) -> Self {
        SelectorError { position, message }
    }
}

/// What kind of problem a [`LoadError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid YAML or JSON, or broke a parser budget (alias bombs, depth).
    Syntax,
    /// A field has the wrong type, an unknown name, or is missing.
    Schema,
    /// A value is well-typed but invalid (bad selector, CIDR, port, action...).
    Invalid,
    /// A kind Palisade must not ignore (it would silently change access) but cannot evaluate.
    Unsupported,
    /// Two objects with the same identity, or two endpoints claiming one IP.
    Duplicate,
    /// A policy names a tier the bundle does not declare.
    UnknownTier,
    /// A configured resource limit was exceeded.
    Limit,
    /// The bundle holds no document of a kind Palisade reads.
    Empty,
}

impl LoadErrorKind {
    /// A stable lower-case name, used by the bindings as an error code.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadErrorKind::Io => "io",
            LoadErrorKind::Syntax => "syntax",
            LoadErrorKind::Schema => "schema",
            LoadErrorKind::Invalid => "invalid",
            LoadErrorKind::Unsupported => "unsupported",
            LoadErrorKind::Duplicate => "duplicate",
            LoadErrorKind::UnknownTier => "unknown_tier",
            LoadErrorKind::Limit => "limit",
            LoadErrorKind::Empty => "empty",
        }
    }
}

/// Why a bundle could not be loaded. Loading is all-or-nothing: any error rejects the
/// whole bundle and the snapshot in force keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The kind of problem.
    pub kind: LoadErrorKind,
    /// The source: a file path, or `<string>` for text handed in directly.
    pub file: String,
    /// The document index within the source (0-based), when known.
    pub document: Option<usize>,
    /// The object, as `Kind namespace/name` or `Kind name`, when known.
    pub object: Option<String>,
    /// The field path inside the object (`spec.ingress[0].source.selector`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The other errors found in the same load (at most 99 more), in the order found. This
    /// error is the first, the headline; a bundle is fixed by fixing all of them.
    pub others: Vec<LoadError>,
}

impl LoadError {
    pub(crate) fn new(kind: LoadErrorKind, message: impl Into<String>) -> Self {
        LoadError {
            kind,
            file: String::new(),
            document: None,
            object: None,
            field: None,
            message: message.into(),
            others: Vec::new(),
        }
    }

    /// This error and every other one found in the same load, headline first.
    pub fn all(&self) -> impl Iterator<Item = &LoadError> {
        std::iter::once(self).chain(self.others.iter())
    }

    /// Every error of the load, one located line each, headline first: what the CLI prints
    /// and the bindings carry as their message.
    ///
    /// ```
    /// let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: 'x =='}\n---\n\
    ///             apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: b}\nspec: {types: [Up]}\n";
    /// let e = palisade::load::load(&[palisade::load::Source { name: "b.yaml", text }], &Default::default()).unwrap_err();
    /// let report = e.report();
    /// assert_eq!(report.lines().count(), 2);
    /// assert!(report.lines().nth(1).unwrap().contains("GlobalNetworkPolicy b"));
    /// ```
    pub fn report(&self) -> String {
        let lines: Vec<String> =
            self.all().map(|e| LoadError { others: Vec::new(), ..e.clone() }.to_string()).collect();
        lines.join("\n")
    }

    pub(crate) fn at_field(mut self, field: impl Into<String>) -> Self {
        if self.field.is_none() {
            self.field = Some(field.into());
        }
        self
    }

    pub(crate) fn in_object(mut self, object: impl Into<String>) -> Self {
        if self.object.is_none() {
            self.object = Some(object.into());
        }
        self
    }

    pub(crate) fn in_source(mut self, file: &str, document: Option<usize>) -> Self {
        if self.file.is_empty() {
            self.file = file.to_string();
        }
        if self.document.is_none() {
            self.document = document;
        }
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}", self.file)?;
            if let Some(d) = self.document {
                write!(f, " (document {d})")?;
            }
            f.write_str(": ")?;
        }
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        match self.others.len() {
            0 => Ok(()),
            1 => f.write_str(" (and 1 more error)"),
            n => write!(f, " (and {n} more errors)"),
        }
    }
}

/// A configuration that cannot be used: unknown keys, wrong types, unknown values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {field}: {message}")]
pub struct ConfigError {
    /// The key (path) that is wrong, or `-` when the text as a whole is.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A request that cannot be parsed (from JSON) into a [`crate::Request`].
///
/// `decide` never returns this: a bad request is a `deny` with reason
/// `invalid_request`. Parsers return it so that callers can say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {field}: {message}")]
pub struct RequestError {
    /// The field path (`source.ip`), or `-` for the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl RequestError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError { field: field.into(), message: message.into() }
    }
}
