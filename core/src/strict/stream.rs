//! A streaming deserializer wrapper for request JSON (SPEC 9.1 "Shapes", 9.3): no struct is
//! ever read from a sequence by position, and a key that appears twice in one mapping is an
//! error at every depth (a request's own fields, `http.headers`, `auth.claims` and whatever
//! JSON the claims hold).
//!
//! serde_json, left alone, reads a struct from an array (`["both", "TCP", [...], [...]]`)
//! and keeps the last of two equal keys in a map or a `Value` (`{"x-evil": "1", "x-evil":
//! "2"}` is `{"x-evil": "2"}`), so a request could mean something else to Palisade than to
//! the component that wrote it. The check has to run while the text is read: once parsed
//! into a `Value` or a map, the first of two keys is already gone.
//!
//! [`Strict`] wraps any [`Deserializer`] and every visitor, sequence, map and enum it hands
//! out, so the rules hold however deep the value goes. Its limits: a type that buffers its
//! input first (serde's `untagged` and `flatten`) sees the duplicate check but reads its
//! structs from the buffer unchecked; the request types use neither.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// The message for a struct given as a sequence.
pub(crate) const SEQ_FOR_STRUCT: &str =
    "expected an object, found an array (fields are read by name, never by position)";

/// A deserializer that refuses structs from sequences and duplicate keys in mappings.
pub(crate) struct Strict<'c, D> {
    inner: D,
    /// For a map key: where to record the key's text, for the duplicate check.
    key: Option<&'c mut Option<String>>,
}

impl<D> Strict<'static, D> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: D) -> Self {
        Strict { inner, key: None }
    }
}

/// Wraps a visitor: forwards every call, wrapping what it hands on; records a map key's text.
struct Wrap<'c, V> {
    inner: V,
    /// Whether a struct was asked for (a sequence is then refused).
    is_struct: bool,
    key: Option<&'c mut Option<String>>,
}

impl<'c, V> Wrap<'c, V> {
    fn new(inner: V, key: Option<&'c mut Option<String>>) -> Self {
        Wrap { inner, is_struct: false, key }
    }

    fn record(&mut self, text: impl fmt::Display) {
        if let Some(slot) = self.key.as_deref_mut() {
            *slot = Some(text.to_string());
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.inner.$method(Wrap::new(visitor, self.key))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq
        deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, Wrap::new(visitor, self.key))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_newtype_struct(name, Wrap::new(visitor, self.key))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, Wrap::new(visitor, self.key))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple_struct(name, len, Wrap::new(visitor, self.key))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // `any`, not `struct`: every self-describing source (JSON text, a JSON value, Python
        // objects) then hands a sequence to the wrapped visitor, which refuses it with the
        // same message whatever the source.
        let _ = (name, fields);
        self.inner.deserialize_any(Wrap { inner: visitor, is_struct: true, key: self.key })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_enum(name, variants, Wrap::new(visitor, self.key))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty,)*) => {
        $(
            fn $method<E: de::Error>(mut self, v: $ty) -> Result<Self::Value, E> {
                self.record(&v);
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128,
        visit_f32: f32, visit_f64: f64, visit_char: char, visit_str: &str, visit_borrowed_str: &'de str,
        visit_string: String,
    }

    fn visit_bytes<E: de::Error>(mut self, v: &[u8]) -> Result<Self::Value, E> {
        self.record(String::from_utf8_lossy(v));
        self.inner.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(mut self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.record(String::from_utf8_lossy(v));
        self.inner.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(mut self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.record(String::from_utf8_lossy(&v));
        self.inner.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_some(Strict::new(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_newtype_struct(Strict::new(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.is_struct {
            return Err(de::Error::custom(SEQ_FOR_STRUCT));
        }
        self.inner.visit_seq(StrictSeq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(StrictMap { inner: map, seen: HashSet::new() })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(StrictEnum(data))
    }
}

/// A seed whose deserializer is wrapped.
struct Seed<'c, S> {
    inner: S,
    key: Option<&'c mut Option<String>>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Strict { inner: d, key: self.key })
    }
}

fn seed<'c, S>(inner: S) -> Seed<'c, S> {
    Seed { inner, key: None }
}

struct StrictSeq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for StrictSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct StrictMap<A> {
    inner: A,
    seen: HashSet<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StrictMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, s: K) -> Result<Option<K::Value>, A::Error> {
        let mut text = None;
        let key = self.inner.next_key_seed(Seed { inner: s, key: Some(&mut text) })?;
        if let Some(text) = text
            && !self.seen.insert(text.clone())
        {
            return Err(de::Error::custom(format_args!("duplicate key {text:?}")));
        }
        Ok(key)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct StrictEnum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for StrictEnum<A> {
    type Error = A::Error;
    type Variant = StrictVariant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(seed(s))?;
        Ok((value, StrictVariant(variant)))
    }
}

struct StrictVariant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for StrictVariant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(seed(s))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::new(visitor, None))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap { inner: visitor, is_struct: true, key: None })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Point {
        x: u8,
        y: Option<u8>,
    }

    fn read<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        T::deserialize(Strict::new(&mut de)).map_err(|e| e.to_string())
    }

    #[test]
    fn structs_only_from_objects() {
        assert!(read::<Point>(r#"{"x": 1, "y": 2}"#).is_ok());
        assert!(read::<Point>("[1, 2]").unwrap_err().starts_with(SEQ_FOR_STRUCT));
        assert!(read::<Vec<Point>>(r#"[{"x": 1}, [1]]"#).unwrap_err().starts_with(SEQ_FOR_STRUCT));
        assert!(read::<Option<Point>>("[1]").unwrap_err().starts_with(SEQ_FOR_STRUCT));
        // Sequences that are meant to be sequences still read.
        assert_eq!(read::<Vec<u8>>("[1, 2]").unwrap(), vec![1, 2]);
    }

    #[test]
    fn duplicate_keys_at_any_depth() {
        let dup = |t: &str| read::<serde_json::Value>(t).unwrap_err();
        assert!(dup(r#"{"a": 1, "a": 2}"#).starts_with("duplicate key \"a\""));
        assert!(dup(r#"{"a": {"b": [{"c": 1, "c": 1}]}}"#).starts_with("duplicate key \"c\""));
        assert!(read::<std::collections::BTreeMap<String, String>>(r#"{"k": "1", "k": "2"}"#).is_err());
        assert!(read::<Point>(r#"{"x": 1, "x": 2}"#).unwrap_err().starts_with("duplicate key \"x\""));
        // The same key in two different objects is fine.
        assert!(read::<serde_json::Value>(r#"{"a": {"k": 1}, "b": {"k": 1}, "k": [1, 1]}"#).is_ok());
    }

    #[test]
    fn values_too() {
        let v = serde_json::json!([1, 2]);
        assert!(Point::deserialize(Strict::new(v)).is_err());
        let v = serde_json::json!({"x": 1});
        assert_eq!(Point::deserialize(Strict::new(v)).unwrap().x, 1);
    }
}
