//! The strict readers: no struct is ever read from a sequence by position, and no key may
//! count twice. There are two because input arrives in two forms, and the duplicate-key
//! rule can only be checked where the text is read:
//!
//! * [`value`]: typed structs out of an already parsed [`serde_json::Value`] (bundle
//!   documents, configuration, API objects). The YAML parser (serde-saphyr) already refuses
//!   duplicate keys, and a `Value` cannot hold one; what is left is the shape rule, with
//!   messages written for people who write YAML.
//! * [`stream`]: a wrapper around any serde `Deserializer`, for request JSON text (the CLI,
//!   Node's `decideJson`, the C API's claims, `OwnedRequest::from_json`): it refuses
//!   duplicate keys at every depth *while* the text is read (once parsed, the first of two
//!   keys is gone) and the shape rule as well.
//!
//! A new input path picks the one that matches its form; neither is ever skipped.

pub(crate) mod stream;
mod value;

pub(crate) use value::{empty, from_value};
