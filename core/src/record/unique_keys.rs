//! Refusing JSON objects that repeat a key. `{"votes": 10, "votes": 9000}`
//! is valid JSON to most parsers, but they disagree on which value counts
//! (serde_json's maps keep the last, others the first), so a signed body
//! with a repeated key could be read one way by the coordinator and another
//! by a court's tool. Such a body is refused before anything reads it.
//!
//! The walk is serde_json's own parser driving a visitor that keeps each
//! object's keys; nothing here parses JSON text itself.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Walks any JSON value, checking each object's keys (nesting is bounded
/// by serde_json's recursion limit).
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }
}

/// Checks that no object in the JSON text `bytes` repeats a key; the error
/// names the key (or says why the text is not JSON).
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth_and_escapes_count() {
        assert!(check_unique_keys(br#"{"a":1,"b":[{"c":2}],"d":{"e":"x"}}"#).is_ok());
        let top = check_unique_keys(br#"{"votes":10,"votes":9000}"#).unwrap_err();
        assert!(top.contains("\"votes\" appears twice"), "{top}");
        assert!(check_unique_keys(br#"{"p":{"x":[1,{"y":1,"y":2}]}}"#).is_err());
        // The same key spelled with an escape is the same key.
        assert!(check_unique_keys(br#"{"a":1,"\u0061":2}"#).is_err());
        // The same key in two different objects is fine.
        assert!(check_unique_keys(br#"[{"a":1},{"a":2}]"#).is_ok());
        assert!(check_unique_keys(b"{\"a\":1} x").is_err());
    }
}
