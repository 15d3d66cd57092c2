//! Reading a JSON-RPC body in one strict pass, keeping only the members classification looks at.
//!
//! Everything else is skipped by [`StrictIgnore`], which still decodes every string and number
//! and refuses duplicate keys and excess depth, so every body gets the verdict a full
//! `mcpgate_json::parse` gives it, without building its `Value` tree (callgrind: most of the
//! gateway's JSON cost was that tree). Nothing is judged here: the members are validated once
//! the whole document has parsed, so a syntax error or duplicate key anywhere still wins over a
//! member of the wrong type, as it did when the body was parsed whole first.

use mcpgate_json::{JsonError, KeySet, Limits, Nesting, StrictIgnore};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// A body as read: one message or a batch of them; `None` for one that is not an object.
pub(super) enum Scanned<'de> {
    Single(Option<Fields<'de>>),
    Batch(Vec<Option<Fields<'de>>>),
}

/// The members of one message object that classification reads.
#[derive(Default)]
pub(super) struct Fields<'de> {
    pub id: Option<Scalar<'de>>,
    pub jsonrpc: Option<Scalar<'de>>,
    pub method: Option<Scalar<'de>>,
    /// A `result` or `error` member is present.
    pub answer: bool,
    pub params: Option<Params<'de>>,
}

/// A member's value: strings and numbers kept (borrowed from the body unless escaped).
pub(super) enum Scalar<'de> {
    Null,
    Number(Number),
    Str(Cow<'de, str>),
    /// A boolean, array or object: never what a member classification reads may be.
    Other,
}

/// `params`, as far as targets go.
pub(super) enum Params<'de> {
    Object(TargetFields<'de>),
    Array,
    /// Neither an object nor an array.
    Other,
}

/// The string members of a `params` object that can name a target. Both are kept because the
/// method that says which one counts may come after `params` in the message.
#[derive(Default)]
pub(super) struct TargetFields<'de> {
    name: Option<Cow<'de, str>>,
    uri: Option<Cow<'de, str>>,
}

impl<'de> TargetFields<'de> {
    /// The member `field` (`"name"` or `"uri"`) when it is a string.
    pub fn take(self, field: &str) -> Option<Cow<'de, str>> {
        match field {
            "name" => self.name,
            "uri" => self.uri,
            _ => None,
        }
    }
}

/// Read `bytes` under `limits`; errors are `mcpgate_json::parse`'s for the same bytes.
pub(super) fn scan(bytes: &[u8], limits: Limits) -> Result<Scanned<'_>, JsonError> {
    let top = Read {
        at: Nesting::top(limits),
        shape: BodyShape,
    };
    mcpgate_json::parse_with(bytes, limits, top)
}

/// What to keep of a value, by its JSON type. [`Read`] does the depth check on entering an
/// array or object, so a shape only decides what to keep.
trait Shape<'de>: Copy {
    type Out;
    /// A null, boolean, number or string (a boolean as [`Scalar::Other`]).
    fn scalar(self, value: Scalar<'de>) -> Self::Out;
    /// An array, already entered; its elements sit at `inner`.
    fn array<A: SeqAccess<'de>>(self, seq: A, inner: Nesting) -> Result<Self::Out, A::Error>;
    /// An object, already entered; its values sit at `inner`.
    fn object<A: MapAccess<'de>>(self, map: A, inner: Nesting) -> Result<Self::Out, A::Error>;
}

/// One value at `at`, read as `shape` says.
#[derive(Clone, Copy)]
struct Read<S> {
    at: Nesting,
    shape: S,
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Read<S> {
    type Value = S::Out;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Out, D::Error> {
        // `deserialize_any` for every value, as `mcpgate_json::parse` does: the same scanning
        // gives the same syntax errors at the same positions.
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Read<S> {
    type Value = S::Out;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Null))
    }
    fn visit_none<E>(self) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Other))
    }
    fn visit_i64<E>(self, v: i64) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<S::Out, E> {
        // As `mcpgate_json::parse` makes a `Value` of it (serde_json refuses non-finite
        // numbers before this, so the null is unreachable there too).
        let number = Number::from_f64(v).map_or(Scalar::Null, Scalar::Number);
        Ok(self.shape.scalar(number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<S::Out, E> {
        Ok(self.shape.scalar(Scalar::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S::Out, A::Error> {
        self.at.enter()?;
        self.shape.array(seq, self.at.child())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S::Out, A::Error> {
        self.at.enter()?;
        self.shape.object(map, self.at.child())
    }
}

/// The whole body: an array is a batch, anything else one message.
#[derive(Clone, Copy)]
struct BodyShape;

impl<'de> Shape<'de> for BodyShape {
    type Out = Scanned<'de>;
    fn scalar(self, _: Scalar<'de>) -> Scanned<'de> {
        Scanned::Single(None)
    }
    fn array<A: SeqAccess<'de>>(
        self,
        mut seq: A,
        inner: Nesting,
    ) -> Result<Scanned<'de>, A::Error> {
        let mut messages = Vec::new();
        let member = Read {
            at: inner,
            shape: MessageShape,
        };
        while let Some(m) = seq.next_element_seed(member)? {
            messages.push(m);
        }
        Ok(Scanned::Batch(messages))
    }
    fn object<A: MapAccess<'de>>(self, map: A, inner: Nesting) -> Result<Scanned<'de>, A::Error> {
        MessageShape.object(map, inner).map(Scanned::Single)
    }
}

/// One message: its members when it is an object, `None` otherwise.
#[derive(Clone, Copy)]
struct MessageShape;

impl<'de> Shape<'de> for MessageShape {
    type Out = Option<Fields<'de>>;
    fn scalar(self, _: Scalar<'de>) -> Self::Out {
        None
    }
    fn array<A: SeqAccess<'de>>(self, seq: A, inner: Nesting) -> Result<Self::Out, A::Error> {
        StrictIgnore::elements(seq, inner).map(|()| None)
    }
    fn object<A: MapAccess<'de>>(self, mut map: A, inner: Nesting) -> Result<Self::Out, A::Error> {
        let member = Read {
            at: inner,
            shape: ScalarShape,
        };
        let skip = StrictIgnore { at: inner };
        let mut keys = KeySet::default();
        let mut fields = Fields::default();
        while let Some(key) = keys.next_key(&mut map)? {
            match &*key {
                "id" => fields.id = Some(map.next_value_seed(member)?),
                "jsonrpc" => fields.jsonrpc = Some(map.next_value_seed(member)?),
                "method" => fields.method = Some(map.next_value_seed(member)?),
                "params" => {
                    let params = Read {
                        at: inner,
                        shape: ParamsShape,
                    };
                    fields.params = Some(map.next_value_seed(params)?);
                }
                "result" | "error" => {
                    fields.answer = true;
                    map.next_value_seed(skip)?;
                }
                _ => map.next_value_seed(skip)?,
            }
        }
        Ok(Some(fields))
    }
}

/// `params`: an object's target members, or only which other type it was.
#[derive(Clone, Copy)]
struct ParamsShape;

impl<'de> Shape<'de> for ParamsShape {
    type Out = Params<'de>;
    fn scalar(self, _: Scalar<'de>) -> Params<'de> {
        Params::Other
    }
    fn array<A: SeqAccess<'de>>(self, seq: A, inner: Nesting) -> Result<Params<'de>, A::Error> {
        StrictIgnore::elements(seq, inner).map(|()| Params::Array)
    }
    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
        inner: Nesting,
    ) -> Result<Params<'de>, A::Error> {
        let member = Read {
            at: inner,
            shape: ScalarShape,
        };
        let as_string = |value| match value {
            Scalar::Str(s) => Some(s),
            _ => None,
        };
        let mut keys = KeySet::default();
        let mut fields = TargetFields::default();
        while let Some(key) = keys.next_key(&mut map)? {
            match &*key {
                "name" => fields.name = as_string(map.next_value_seed(member)?),
                "uri" => fields.uri = as_string(map.next_value_seed(member)?),
                _ => map.next_value_seed(StrictIgnore { at: inner })?,
            }
        }
        Ok(Params::Object(fields))
    }
}

/// A member read as a [`Scalar`]: arrays and objects skipped strictly.
#[derive(Clone, Copy)]
struct ScalarShape;

impl<'de> Shape<'de> for ScalarShape {
    type Out = Scalar<'de>;
    fn scalar(self, value: Scalar<'de>) -> Scalar<'de> {
        value
    }
    fn array<A: SeqAccess<'de>>(self, seq: A, inner: Nesting) -> Result<Scalar<'de>, A::Error> {
        StrictIgnore::elements(seq, inner).map(|()| Scalar::Other)
    }
    fn object<A: MapAccess<'de>>(self, map: A, inner: Nesting) -> Result<Scalar<'de>, A::Error> {
        StrictIgnore::entries(map, inner).map(|()| Scalar::Other)
    }
}
