//! Strict JSON parsing for security decisions.
//!
//! Two parsers that disagree about a document are a bypass: if mcpgate reads the first of two
//! duplicate `"aud"` (or `"name"`) keys and the upstream reads the last, a policy check can be
//! steered. Everything mcpgate decides on (token headers and claims, introspection answers,
//! JSON-RPC requests) is parsed here, where duplicate keys are an error, nesting depth is bounded
//! and the input size is capped before any parsing starts.
//!
//! [`parse`] builds a whole [`Value`]; callers that need only a few fields bring their own serde
//! seed to [`parse_with`] and skip the rest with [`StrictIgnore`], which holds every object to
//! the same rules ([`KeySet`], [`Nesting`]) without keeping any of it.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;
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
    parse_with(
        input,
        limits,
        ValueSeed {
            at: Nesting::top(limits),
        },
    )
}

/// Run `seed` over `input` as the whole document, under `limits`: the size is checked before
/// parsing, trailing data is refused, and errors are reported as [`parse`] reports them. The
/// seed must enforce [`Nesting`] and [`KeySet`] on every array and object it visits (skipping
/// with [`StrictIgnore`] does), or it is not as strict as [`parse`].
pub fn parse_with<'de, S: DeserializeSeed<'de>>(
    input: &'de [u8],
    limits: Limits,
    seed: S,
) -> Result<S::Value, JsonError> {
    if input.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(input);
    // serde_json's own recursion guard (128) stays on as a second line of defence.
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

/// How deep a value sits in the document, and how deep values may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    depth: usize,
    max_depth: usize,
}

impl Nesting {
    /// The top-level value: depth 1.
    pub fn top(limits: Limits) -> Nesting {
        Nesting {
            depth: 1,
            max_depth: limits.max_depth,
        }
    }

    /// The values inside an array or object at this nesting.
    pub fn child(self) -> Nesting {
        Nesting {
            depth: self.depth + 1,
            ..self
        }
    }

    /// Refuse an array or object at this nesting if it is past the bound; call it on entering
    /// one, before reading what is inside (so a too-deep value is refused before its contents).
    pub fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.depth > self.max_depth {
            return Err(de::Error::custom(TOO_DEEP));
        }
        Ok(())
    }
}

/// The keys seen so far in one JSON object, compared decoded (`"\u0061ud"` is `"aud"`).
/// Keys are borrowed from the input; only a key that had escapes is copied (decoded). The
/// first [`KeySet::INLINE`] are scanned in place; past that they move to a hash set, so a
/// 10,000-key object costs 10,000 lookups rather than 50 million comparisons.
#[derive(Default)]
pub struct KeySet<'de> {
    // `&str`, not `Cow`: nothing to drop, so an object's set costs nothing to throw away
    // (callgrind: dropping 16 `Cow`s was 4% of classifying a tools/call).
    borrowed: [&'de str; KeySet::INLINE],
    len: usize,
    escaped: Vec<String>,
    spilled: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> KeySet<'de> {
    /// Keys kept in place before spilling to a hash set: a JSON-RPC message has at most five
    /// of its own, and scanning 16 short strings is cheaper than hashing one.
    pub const INLINE: usize = 16;

    /// Read the next key of `map`, refusing one this object already had.
    pub fn next_key<A: MapAccess<'de>>(
        &mut self,
        map: &mut A,
    ) -> Result<Option<Cow<'de, str>>, A::Error> {
        let Some(key) = map.next_key_seed(KeySeed)? else {
            return Ok(None);
        };
        // A copy for the set: free for a borrowed key, an allocation for an escaped one.
        self.insert(key.clone())?;
        Ok(Some(key))
    }

    fn insert<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        let seen = match &self.spilled {
            Some(set) => set.contains(&*key),
            None => {
                self.borrowed[..self.len].contains(&&*key)
                    || self.escaped.iter().any(|k| **k == *key)
            }
        };
        if seen {
            return Err(de::Error::custom(format_args!("{DUPLICATE}{key}")));
        }
        if self.spilled.is_none() && self.len + self.escaped.len() == Self::INLINE {
            let borrowed = self.borrowed[..self.len].iter().map(|k| Cow::Borrowed(*k));
            let escaped = self.escaped.drain(..).map(Cow::Owned);
            self.spilled = Some(borrowed.chain(escaped).collect());
        }
        match (&mut self.spilled, key) {
            (Some(set), key) => {
                set.insert(key);
            }
            (None, Cow::Borrowed(key)) => {
                self.borrowed[self.len] = key;
                self.len += 1;
            }
            (None, Cow::Owned(key)) => self.escaped.push(key),
        }
        Ok(())
    }
}

/// An object key as written, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Skip one value as strictly as [`parse`] reads it: numbers and strings are decoded (so an
/// out-of-range number or a bad escape is the same error), every object's keys are checked for
/// duplicates and every array and object for depth, and nothing is kept. Unlike
/// [`serde::de::IgnoredAny`], which lets serde_json skip without decoding or checking keys.
#[derive(Debug, Clone, Copy)]
pub struct StrictIgnore {
    /// Where the skipped value sits.
    pub at: Nesting,
}

impl StrictIgnore {
    /// Skip the rest of an array whose elements sit at `inner` (the array itself was entered).
    pub fn elements<'de, A: SeqAccess<'de>>(mut seq: A, inner: Nesting) -> Result<(), A::Error> {
        while seq.next_element_seed(StrictIgnore { at: inner })?.is_some() {}
        Ok(())
    }

    /// Skip the rest of an object whose values sit at `inner` (the object itself was entered).
    pub fn entries<'de, A: MapAccess<'de>>(mut map: A, inner: Nesting) -> Result<(), A::Error> {
        let mut keys = KeySet::default();
        while keys.next_key(&mut map)?.is_some() {
            map.next_value_seed(StrictIgnore { at: inner })?;
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for StrictIgnore {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // `deserialize_any`, not `deserialize_ignored_any`: serde_json skips an ignored value
        // without decoding it, and must reach the same verdict as `parse` on every input.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictIgnore {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
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
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.at.enter()?;
        StrictIgnore::elements(seq, self.at.child())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.at.enter()?;
        StrictIgnore::entries(map, self.at.child())
    }
}

struct ValueSeed {
    at: Nesting,
}

impl ValueSeed {
    fn child(&self) -> ValueSeed {
        ValueSeed {
            at: self.at.child(),
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
        self.at.enter()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child())? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.at.enter()?;
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

    fn skip(s: &str, limits: Limits) -> Result<(), JsonError> {
        parse_with(
            s.as_bytes(),
            limits,
            StrictIgnore {
                at: Nesting::top(limits),
            },
        )
    }

    #[test]
    fn strict_ignore_refuses_what_parse_refuses() {
        let lim = Limits {
            max_depth: 3,
            max_bytes: 1000,
        };
        for doc in [
            r#"{"a":[1,2.5,"x\u00e9",null,true,{"b":{}}]}"#,
            r#"{"aud":1,"\u0061ud":2}"#,
            r#"[{"k":1},{"k":1,"k":1}]"#,
            r#"[{"k":1},{"k":2}]"#,
            r#"{"a":1,"a":[[[[[["#,
            r#"{"x":{"y":{"z":1,"z":2}}}"#,
            "[[[1]]]",
            "[[[[1]]]]",
            "[[[[",
            "1e999",
            "18446744073709551616",
            r#""\ud800""#,
            r#"{"a":1} x"#,
            "\u{feff}{}",
            "",
            " 42 ",
            r#"{"a\"b":1,"a\u0022b":2}"#,
        ] {
            assert_eq!(
                skip(doc, lim),
                parse(doc.as_bytes(), lim).map(drop),
                "{doc:?}"
            );
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            skip(&deep, Limits::default()),
            Err(JsonError::TooDeep { .. })
        ));
    }

    #[test]
    fn key_sets_stay_exact_past_the_inline_keys() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let many = format!("{{{}}}", keys.join(","));
        assert_eq!(skip(&many, Limits::default()), Ok(()));
        // The duplicate of an early (inline) key and of a late (spilled) key are both found,
        // escaped or not.
        for dup in [r#""k3":0"#, r#""\u006b9999":0"#] {
            let doc = format!("{{{},{dup}}}", keys.join(","));
            assert!(
                matches!(
                    skip(&doc, Limits::default()),
                    Err(JsonError::DuplicateKey(_))
                ),
                "{dup}"
            );
        }
        // Keys written with escapes are kept apart until the spill; every mix is still exact.
        let mixed: Vec<String> = (0..40)
            .map(|i| match i % 3 {
                0 => format!(r#""\u006b{i}":{i}"#),
                _ => format!(r#""k{i}":{i}"#),
            })
            .collect();
        for n in [
            5,
            KeySet::INLINE - 1,
            KeySet::INLINE,
            KeySet::INLINE + 1,
            40,
        ] {
            let head = mixed[..n].join(",");
            assert_eq!(
                skip(&format!("{{{head}}}"), Limits::default()),
                Ok(()),
                "{n}"
            );
            for dup in [0, 1, n - 1] {
                let doc = format!(r#"{{{head},"k{dup}":0}}"#);
                assert_eq!(
                    skip(&doc, Limits::default()),
                    Err(JsonError::DuplicateKey(format!("k{dup}"))),
                    "{n} {dup}"
                );
            }
        }
        let edge = format!("{{{},\"k0\":1}}", keys[..KeySet::INLINE].join(","));
        assert_eq!(
            skip(&edge, Limits::default()),
            Err(JsonError::DuplicateKey("k0".into()))
        );
    }

    #[test]
    fn parse_object_requires_an_object() {
        assert!(parse_object(b"{}", Limits::default()).is_ok());
        assert!(parse_object(b"[]", Limits::default()).is_err());
    }
}
