//! Reading typed structs out of a parsed JSON/YAML value, strictly.
//!
//! `serde_json::Value` as a deserializer lets a struct be read from a sequence by position
//! (`spec: [a, b]`, `metadata: [name]`), which would let a bundle or configuration written in
//! the wrong shape load as something its author never wrote. [`from_value`] wraps a value so
//! that a struct is only ever read from a mapping; everything else behaves as `Value` does.
//! Every bundle document and every configuration goes through it (SPEC 9.1, "Shapes").

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Deserialises `value` into `T`, naming the failing field path on error (`spec.ingress[0]`);
/// the path is `.` when the value as a whole is wrong.
pub(crate) fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        (path, human(&e.into_inner().to_string()))
    })
}

/// Rewrites serde's messages for people who write YAML, not Rust: no Rust type names, no
/// advice meant for the programmer.
pub(crate) fn human(message: &str) -> String {
    let mut out = message
        .replace("; use Option<String>", "")
        .replace("cannot deserialize null into string", "a string is required here, not null")
        .replace("invalid type: unit value", "invalid type: null");
    // `expected struct RawPolicySpec` names a Rust type: say what the YAML needs instead.
    while let Some(at) = out.find("expected struct ") {
        let rest = &out[at + "expected struct ".len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        out = format!("{}expected a mapping{}", &out[..at], &rest[end..]);
    }
    out
}

/// A borrowed value that refuses to be read as a struct when it is a sequence.
struct Strict<'a>(&'a Value);

fn shape(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> de::Deserializer<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => n.clone().deserialize_any(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = Seq { iter: items.iter(), len: items.len() };
                let out = visitor.visit_seq(&mut seq)?;
                match seq.iter.len() {
                    0 => Ok(out),
                    _ => Err(de::Error::invalid_length(seq.len, &"fewer elements")),
                }
            }
            Value::Object(map) => visitor.visit_map(Entries { iter: map.iter(), value: None }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(shape(other), &"a mapping")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((k, v)) => visitor.visit_enum(Variant { key: k, value: v }),
                None => Err(de::Error::invalid_length(0, &"one key")),
            },
            other => Err(de::Error::invalid_type(shape(other), &"a string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct Seq<'a> {
    iter: std::slice::Iter<'a, Value>,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        match self.iter.next() {
            Some(v) => seed.deserialize(Strict(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Entries<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> de::MapAccess<'de> for Entries<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(de::value::BorrowedStrDeserializer::new(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Strict(v)),
            None => Err(de::Error::custom("a value was read before its key")),
        }
    }
}

struct Variant<'a> {
    key: &'a String,
    value: &'a Value,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = serde_json::Error;
    type Variant = Strict<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Self::Error> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::<serde_json::Error>::new(self.key))?;
        Ok((v, Strict(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        match self.0 {
            Value::Null => Ok(()),
            other => Err(de::Error::invalid_type(shape(other), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Self::Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// An empty mapping, for documents whose `spec` is absent.
pub(crate) fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::from_value;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<String>,
        #[serde(default)]
        b: Vec<u16>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
        kind: Option<Kind>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum Kind {
        Allow,
        Deny,
    }

    #[test]
    fn mappings_read_as_serde_json_would() {
        let v = json!({"inner": {"a": "x", "b": [1, 2]}, "list": [{"a": null}], "kind": "Deny"});
        let o: Outer = from_value(&v).unwrap();
        assert_eq!(o.inner, Some(Inner { a: Some("x".into()), b: vec![1, 2] }));
        assert_eq!(o.list, Some(vec![Inner { a: None, b: vec![] }]));
        assert_eq!(o.kind, Some(Kind::Deny));
    }

    #[test]
    fn a_sequence_is_never_a_struct_at_any_depth() {
        let top = from_value::<Outer>(&json!([{"a": "x"}])).unwrap_err();
        assert_eq!(top.0, ".");
        assert!(top.1.contains("sequence"), "{}", top.1);
        let nested = from_value::<Outer>(&json!({"inner": ["x", [1]]})).unwrap_err();
        assert_eq!(nested.0, "inner");
        let in_list = from_value::<Outer>(&json!({"list": [["x"]]})).unwrap_err();
        assert_eq!(in_list.0, "list[0]");
    }

    #[test]
    fn unknown_fields_and_bad_numbers_are_located() {
        let e = from_value::<Outer>(&json!({"inner": {"c": 1}})).unwrap_err();
        assert_eq!(e.0, "inner.c");
        let e = from_value::<Outer>(&json!({"inner": {"b": [70000]}})).unwrap_err();
        assert_eq!(e.0, "inner.b[0]");
        let e = from_value::<Outer>(&json!({"kind": ["Allow"]})).unwrap_err();
        assert_eq!(e.0, "kind");
    }
}
