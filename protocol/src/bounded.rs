//! Serde helpers that hold fields to their [wire limits](crate::limits): lists are
//! refused from their claimed length before anything is allocated for them, strings
//! before they are copied; free text is cut when sent, everything else refused.
//!
//! postcard drops the message of a serde error, so a helper that refuses records *what*
//! it refused in a thread-local [`Breach`] as well; the codec takes it to build an error
//! that names the field and the limit. Owns that record and the helpers. Must never
//! allocate more than the limit allows for a field, or keep a breach across decodes (the
//! codec clears it before each one).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{self, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{Limit, Unit};

/// What a helper refused, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Breach {
    pub field: &'static str,
    pub kind: BreachKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreachKind {
    /// More entries or bytes than `limit` allows; `found` when the count is known.
    Over {
        limit: &'static Limit,
        found: Option<usize>,
    },
    /// Not a value of the field's kind (e.g. not a node id), and why.
    Invalid(&'static str),
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BreachKind::Over { limit, found } => f.write_str(&over_text(
                self.field,
                limit.name,
                &found,
                &limit.max,
                &limit.unit,
            )),
            BreachKind::Invalid(why) => write!(f, "{}: {why}", self.field),
        }
    }
}

/// "`field`: 20000 entries, over the wire limit of 16384 (CONFIG_FILES)": the one wording
/// of a breached limit, sent or received.
pub(crate) fn over_text(
    field: &str,
    limit: &str,
    found: &Option<usize>,
    max: &usize,
    unit: &Unit,
) -> String {
    match found {
        Some(n) => format!("{field}: {n} {unit}, over the wire limit of {max} ({limit})"),
        None => format!("{field}: more than {max} {unit}, the wire limit ({limit})"),
    }
}

thread_local! {
    // A `const` thread local without a destructor: setting it never allocates.
    static BREACH: Cell<Option<Breach>> = const { Cell::new(None) };
}

/// Forgets any earlier breach (the codec calls it before every decode and encode).
pub(crate) fn clear() {
    BREACH.set(None);
}

/// The breach that ended the last decode or encode on this thread, if one did.
pub(crate) fn take() -> Option<Breach> {
    BREACH.take()
}

/// Records `b` for the codec and returns it (for the error's message).
pub(crate) fn record(b: Breach) -> Breach {
    BREACH.set(Some(b));
    b
}

/// A decode error for `b`, recorded for the codec.
pub(crate) fn de_error<E: de::Error>(b: Breach) -> E {
    E::custom(record(b))
}

fn ser_error<E: ser::Error>(b: Breach) -> E {
    E::custom(record(b))
}

fn over(field: &'static str, limit: &'static Limit, found: Option<usize>) -> Breach {
    Breach {
        field,
        kind: BreachKind::Over { limit, found },
    }
}

/// `s` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &s[..end]).into()
}

// ---------------------------------------------------------------------------------------
// Sending.

/// A string sent under `limit`: refused when longer, or cut when the limit says so.
pub(crate) struct SendStr<'a> {
    pub s: &'a str,
    pub field: &'static str,
    pub limit: &'static Limit,
}

impl Serialize for SendStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.s.len() <= self.limit.max {
            s.serialize_str(self.s)
        } else if self.limit.cut_when_sent {
            s.serialize_str(&cut(self.s, self.limit.max))
        } else {
            Err(ser_error(over(self.field, self.limit, Some(self.s.len()))))
        }
    }
}

pub(crate) fn ser_str<S: Serializer>(
    v: &str,
    field: &'static str,
    limit: &'static Limit,
    s: S,
) -> Result<S::Ok, S::Error> {
    SendStr { s: v, field, limit }.serialize(s)
}

pub(crate) fn ser_opt_str<S: Serializer>(
    v: &Option<String>,
    field: &'static str,
    limit: &'static Limit,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(v) => s.serialize_some(&SendStr { s: v, field, limit }),
    }
}

pub(crate) fn ser_seq<S: Serializer, T: Serialize>(
    v: &[T],
    field: &'static str,
    limit: &'static Limit,
    s: S,
) -> Result<S::Ok, S::Error> {
    if v.len() > limit.max {
        return Err(ser_error(over(field, limit, Some(v.len()))));
    }
    s.collect_seq(v)
}

pub(crate) fn ser_str_seq<S: Serializer>(
    v: &[String],
    field: &'static str,
    limit: &'static Limit,
    item_field: &'static str,
    item_limit: &'static Limit,
    s: S,
) -> Result<S::Ok, S::Error> {
    if v.len() > limit.max {
        return Err(ser_error(over(field, limit, Some(v.len()))));
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for item in v {
        seq.serialize_element(&SendStr {
            s: item,
            field: item_field,
            limit: item_limit,
        })?;
    }
    seq.end()
}

// ---------------------------------------------------------------------------------------
// Receiving.

/// Reads a string of at most `limit` bytes, checked before it is copied.
#[derive(Clone, Copy)]
pub(crate) struct StrSeed {
    pub field: &'static str,
    pub limit: &'static Limit,
}

impl StrSeed {
    fn check<E: de::Error>(self, len: usize) -> Result<(), E> {
        if len > self.limit.max {
            return Err(de_error(over(self.field, self.limit, Some(len))));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for StrSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {} bytes", self.limit.max)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.check(v.len())?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.check(v.len())?;
        Ok(v)
    }
}

/// An optional [`StrSeed`].
#[derive(Clone, Copy)]
pub(crate) struct OptStrSeed(pub StrSeed);

impl<'de> DeserializeSeed<'de> for OptStrSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptStrSeed {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nothing or a string of at most {} bytes",
            self.0.limit.max
        )
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// Reads a list of at most `limit` entries, each read by `item`. A claimed length over
/// the limit is refused before anything is allocated; the buffer never grows past the
/// limit.
pub(crate) struct SeqSeed<I> {
    pub field: &'static str,
    pub limit: &'static Limit,
    pub item: I,
}

impl<'de, I: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for SeqSeed<I> {
    type Value = Vec<I::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, I: DeserializeSeed<'de> + Copy> Visitor<'de> for SeqSeed<I> {
    type Value = Vec<I::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} entries", self.limit.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // postcard gives the claimed length as the hint whenever the input could hold it.
        let hint = seq.size_hint();
        if let Some(n) = hint.filter(|n| *n > self.limit.max) {
            return Err(de_error(over(self.field, self.limit, Some(n))));
        }
        let mut out = Vec::with_capacity(hint.unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self.item)? {
            if out.len() == self.limit.max {
                return Err(de_error(over(self.field, self.limit, None)));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// Reads a `T` with its own `Deserialize` (for lists of values whose fields are bounded
/// by their own types).
pub(crate) struct Plain<T>(PhantomData<fn() -> T>);

impl<T> Plain<T> {
    pub const fn new() -> Self {
        Plain(PhantomData)
    }
}

impl<T> Clone for Plain<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Plain<T> {}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Plain<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
}

pub(crate) fn de_str<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
    limit: &'static Limit,
) -> Result<String, D::Error> {
    StrSeed { field, limit }.deserialize(d)
}

pub(crate) fn de_opt_str<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
    limit: &'static Limit,
) -> Result<Option<String>, D::Error> {
    OptStrSeed(StrSeed { field, limit }).deserialize(d)
}

pub(crate) fn de_seq<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    field: &'static str,
    limit: &'static Limit,
) -> Result<Vec<T>, D::Error> {
    SeqSeed {
        field,
        limit,
        item: Plain::new(),
    }
    .deserialize(d)
}

pub(crate) fn de_str_seq<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
    limit: &'static Limit,
    item_field: &'static str,
    item_limit: &'static Limit,
) -> Result<Vec<String>, D::Error> {
    SeqSeed {
        field,
        limit,
        item: StrSeed {
            field: item_field,
            limit: item_limit,
        },
    }
    .deserialize(d)
}

/// Serde `with` modules, one per bounded field: `name: Kind("Type.field", LIMIT)`, where
/// `LIMIT` names a constant of [`crate::limits`].
///
/// Kinds: `Str` (a `String`), `OptStr` (an `Option<String>`), `Seq` (a `Vec<T>` whose
/// entries bound their own fields), `StrSeq` (a `Vec<String>`, with the limit of each
/// entry after the list's own).
macro_rules! bounded_fields {
    () => {};
    ($name:ident: Str($field:literal, $limit:ident); $($rest:tt)*) => {
        mod $name {
            pub(crate) fn serialize<S: serde::Serializer>(
                v: &str,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                $crate::bounded::ser_str(v, $field, &$crate::limits::$limit, s)
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<String, D::Error> {
                $crate::bounded::de_str(d, $field, &$crate::limits::$limit)
            }
        }
        $crate::bounded::fields!($($rest)*);
    };
    ($name:ident: OptStr($field:literal, $limit:ident); $($rest:tt)*) => {
        mod $name {
            pub(crate) fn serialize<S: serde::Serializer>(
                v: &Option<String>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                $crate::bounded::ser_opt_str(v, $field, &$crate::limits::$limit, s)
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Option<String>, D::Error> {
                $crate::bounded::de_opt_str(d, $field, &$crate::limits::$limit)
            }
        }
        $crate::bounded::fields!($($rest)*);
    };
    ($name:ident: Seq($field:literal, $limit:ident); $($rest:tt)*) => {
        mod $name {
            pub(crate) fn serialize<S: serde::Serializer, T: serde::Serialize>(
                v: &[T],
                s: S,
            ) -> Result<S::Ok, S::Error> {
                $crate::bounded::ser_seq(v, $field, &$crate::limits::$limit, s)
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
                d: D,
            ) -> Result<Vec<T>, D::Error> {
                $crate::bounded::de_seq(d, $field, &$crate::limits::$limit)
            }
        }
        $crate::bounded::fields!($($rest)*);
    };
    ($name:ident: StrSeq($field:literal, $limit:ident, $item_field:literal, $item_limit:ident); $($rest:tt)*) => {
        mod $name {
            pub(crate) fn serialize<S: serde::Serializer>(
                v: &[String],
                s: S,
            ) -> Result<S::Ok, S::Error> {
                $crate::bounded::ser_str_seq(v, $field, &$crate::limits::$limit, $item_field, &$crate::limits::$item_limit, s)
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Vec<String>, D::Error> {
                $crate::bounded::de_str_seq(d, $field, &$crate::limits::$limit, $item_field, &$crate::limits::$item_limit)
            }
        }
        $crate::bounded::fields!($($rest)*);
    };
}

pub(crate) use bounded_fields as fields;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_char_boundaries_and_the_limit() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 5), "ab…");
        // "é" is two bytes: a cut never splits it.
        let s = "éééééé";
        for max in 3..s.len() {
            let c = cut(s, max);
            assert!(c.len() <= max, "{max}: {c}");
            assert!(c.ends_with('…'));
        }
    }
}
