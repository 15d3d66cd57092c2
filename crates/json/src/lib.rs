//! Strict JSON parsing for security decisions.
//!
//! Two parsers that disagree about a document are a bypass: if mcpgate reads the first of two
//! duplicate `"aud"` (or `"name"`) keys and the upstream reads the last, a policy check can be
//! steered. Everything mcpgate decides on (token headers and claims, introspection answers,
//! JSON-RPC requests) is parsed here, where duplicate keys are an error, nesting depth is bounded
//! and the input size is capped before any parsing starts.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::fmt;

/// Bounds applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays/objects accepted (the top-level value is depth 1).
    pub max_depth: usize,
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("JSON document larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("JSON nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("duplicate key {0:?} in JSON object")]
    DuplicateKey(String),
    #[error("invalid JSON: {0}")]
    Syntax(String),
}

const TOO_DEEP: &str = "\u{0}mcpgate:too-deep";
const DUPLICATE: &str = "\u{0}mcpgate:duplicate:";

/// Parse `input` as one JSON value under `limits`.
pub fn parse(input: &[u8], limits: Limits) -> Result<Value, JsonError> {
    if input.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(input);
    // serde_json's own recursion guard (128) stays on as a second line of defence.
    let seed = ValueSeed {
        depth: 1,
        max_depth: limits.max_depth,
    };
    let value = seed.deserialize(&mut de).map_err(|e| classify(e, limits))?;
    de.end().map_err(|e| classify(e, limits))?;
    Ok(value)
}

/// Parse `input` and require a JSON object at the top level.
pub fn parse_object(input: &[u8], limits: Limits) -> Result<Map<String, Value>, JsonError> {
    match parse(input, limits)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::Syntax("expected a JSON object".into())),
    }
}

fn classify(e: serde_json::Error, limits: Limits) -> JsonError {
    let msg = e.to_string();
    if msg.starts_with(TOO_DEEP) || msg.starts_with("recursion limit exceeded") {
        JsonError::TooDeep {
            limit: limits.max_depth,
        }
    } else if let Some(rest) = msg.strip_prefix(DUPLICATE) {
        // serde_json appends " at line L column C"; keep only the key.
        let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
        JsonError::DuplicateKey(key.to_string())
    } else {
        JsonError::Syntax(msg)
    }
}

struct ValueSeed {
    depth: usize,
    max_depth: usize,
}

impl ValueSeed {
    fn child(&self) -> ValueSeed {
        ValueSeed {
            depth: self.depth + 1,
            max_depth: self.max_depth,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth > self.max_depth {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child())? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth > self.max_depth {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One lookup per key, not two (`contains_key`, then `insert`).
            match out.entry(key) {
                Entry::Occupied(e) => {
                    return Err(de::Error::custom(format_args!("{DUPLICATE}{}", e.key())));
                }
                Entry::Vacant(e) => {
                    e.insert(map.next_value_seed(self.child())?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Result<Value, JsonError> {
        parse(s.as_bytes(), Limits::default())
    }

    #[test]
    fn parses_ordinary_documents() {
        assert_eq!(
            p(r#"{"a":[1,2.5,"x",null,true,{"b":{}}]}"#).unwrap(),
            json!({"a":[1,2.5,"x",null,true,{"b":{}}]})
        );
        assert_eq!(p(" 42 ").unwrap(), json!(42));
        assert_eq!(p(r#""\u00e9""#).unwrap(), json!("é"));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(
            p(r#"{"aud":"a","aud":"b"}"#),
            Err(JsonError::DuplicateKey("aud".into()))
        );
        assert_eq!(
            p(r#"{"x":{"n":1,"n":2}}"#),
            Err(JsonError::DuplicateKey("n".into()))
        );
        assert_eq!(
            p(r#"[{"k":1},{"k":1,"k":1}]"#),
            Err(JsonError::DuplicateKey("k".into()))
        );
        // Escaped spellings of the same key are the same key.
        assert_eq!(
            p(r#"{"aud":1,"\u0061ud":2}"#),
            Err(JsonError::DuplicateKey("aud".into()))
        );
        // The same key in sibling objects is fine.
        assert!(p(r#"[{"k":1},{"k":2}]"#).is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        let lim = Limits {
            max_depth: 3,
            max_bytes: 1000,
        };
        assert!(parse(b"[[[1]]]", lim).is_ok());
        assert_eq!(
            parse(b"[[[[1]]]]", lim),
            Err(JsonError::TooDeep { limit: 3 })
        );
        assert_eq!(
            parse(br#"{"a":{"b":{"c":{}}}}"#, lim),
            Err(JsonError::TooDeep { limit: 3 })
        );
        // Far beyond serde_json's own guard: refused, no stack overflow.
        let deep = "[".repeat(100_000);
        assert!(matches!(p(&deep), Err(JsonError::TooDeep { .. })));
    }

    #[test]
    fn size_is_capped_before_parsing() {
        let lim = Limits {
            max_depth: 8,
            max_bytes: 4,
        };
        assert_eq!(parse(b"12345", lim), Err(JsonError::TooLarge { limit: 4 }));
        assert!(parse(b"1234", lim).is_ok());
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_refused() {
        for bad in [
            "",
            "{",
            r#"{"a":1,}"#,
            "[1,]",
            "{'a':1}",
            r#"{"a":1} x"#,
            "NaN",
            r#""\ud800""#,
            "01",
        ] {
            assert!(
                matches!(p(bad), Err(JsonError::Syntax(_))),
                "{bad:?} -> {:?}",
                p(bad)
            );
        }
    }

    #[test]
    fn parse_object_requires_an_object() {
        assert!(parse_object(b"{}", Limits::default()).is_ok());
        assert!(parse_object(b"[]", Limits::default()).is_err());
    }
}
