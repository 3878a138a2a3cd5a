//! Calico's label-selector language: parser, evaluation and canonical form.
//!
//! ```
//! use std::collections::BTreeMap;
//! use palisade::selector;
//!
//! let sel = selector::parse("a in {'z', 'x'} && b != 'y'").unwrap();
//! assert_eq!(sel.canonical(), r#"(a in {"x", "z"} && b != "y")"#);
//! let labels: BTreeMap<String, String> = [("a".into(), "x".into())].into();
//! assert!(sel.matches(&labels)); // `b` is missing, so `b != 'y'` holds
//! ```

mod ast;
mod parser;

pub use ast::{Expr, Labels};
pub use parser::{MAX_LABEL_LEN, ParseLimits, parse, parse_with};

#[cfg(test)]
mod tests;
