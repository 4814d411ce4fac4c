//! The shape of every event payload, derived from `events::Event`'s own `Deserialize` impl.
//!
//! CSV cells must be typed (is `minutes` a number? is `roles` a list?), dates must be checked
//! strictly, wire timestamps converted, and error messages must say what a field expects. Rather
//! than keep a hand-written table that drifts from the schema, this module asks serde: a probing
//! `Deserializer` walks into one field of one variant, records what the type asks for
//! (`deserialize_str`, `deserialize_u32`, a struct with these fields, an enum with these
//! variants…) and stops. It owns that probe, the `Shape` tree and the typing of text cells by
//! shape (`Shape::coerce`, for CSV and a correction's CSV changes); it must never accept or
//! reject input itself.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use events::{Event, EventKind};
use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_json::Value;

/// What a payload field holds, as the schema's types deserialize it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Free text or an identifier.
    Str,
    /// A calendar date `YYYY-MM-DD` (`NaiveDate`).
    Date,
    /// An instant; stored as microseconds, written on the wire like `occurred_at`.
    Time,
    /// A whole number, 0 or more.
    UInt,
    /// A whole number (only `grade` uses it, with its own range).
    Int,
    /// A decimal number.
    Float,
    /// `true` / `false`.
    Bool,
    /// One of a closed vocabulary.
    Enum(&'static [&'static str]),
    /// A list of values of one shape.
    List(Box<Shape>),
    /// An object with these fields (in schema order).
    Object(Vec<(&'static str, Shape)>),
    /// An object with free keys and values of one shape (`items`, `quota`).
    Map(Box<Shape>),
    /// Any JSON value (a correction's `changes`).
    Any,
}

impl Shape {
    /// The shape at a path below this one (list indexes and map keys match anything).
    pub fn at<'a, S: AsRef<str>>(&'a self, path: &[S]) -> Option<&'a Shape> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Shape::Object(fields) => fields
                .iter()
                .find(|(name, _)| *name == first.as_ref())
                .and_then(|(_, s)| s.at(rest)),
            Shape::List(inner) => {
                first.as_ref().parse::<usize>().ok()?;
                inner.at(rest)
            }
            Shape::Map(inner) => inner.at(rest),
            _ => None,
        }
    }

    /// The field names of an object shape.
    pub fn field_names(&self) -> Vec<&'static str> {
        match self {
            Shape::Object(fields) => fields.iter().map(|(n, _)| *n).collect(),
            _ => Vec::new(),
        }
    }

    /// What a value of this shape looks like, for "expected …" in error messages. `field` is
    /// the last path segment: a few fields carry a rule their type enforces beyond its shape.
    pub fn describe(&self, field: &str) -> String {
        match (self, field) {
            (Shape::Int, "grade") => "a grade from 1 to 9".to_owned(),
            (Shape::Str, "term") => {
                "a term such as 2025-2026-1 (school year, then 1 or 2)".to_owned()
            }
            (Shape::Float, f) if f.ends_with("_yuan") => {
                "an amount of yuan, 0 or more, with at most two decimals".to_owned()
            }
            _ => self.to_string(),
        }
    }
}

impl Shape {
    /// Types text cells by the shape they go into: numbers, booleans (`true`/`false`, any case:
    /// spreadsheets write `TRUE`), `;`-separated lists, and lists given by position
    /// (`parents.0.name`). A cell that does not read as its type stays text, for decoding to
    /// report.
    pub fn coerce(&self, v: &mut Value) {
        match self {
            Shape::Object(fields) => {
                if let Value::Object(m) = v {
                    for (name, s) in fields {
                        if let Some(child) = m.get_mut(*name) {
                            s.coerce(child);
                        }
                    }
                }
            }
            Shape::Map(inner) => {
                if let Value::Object(m) = v {
                    for child in m.values_mut() {
                        inner.coerce(child);
                    }
                }
            }
            Shape::List(inner) => {
                match v {
                    Value::String(s) => {
                        let items = s
                            .split(';')
                            .map(str::trim)
                            .filter(|i| !i.is_empty())
                            .map(|i| Value::String(i.to_owned()))
                            .collect();
                        *v = Value::Array(items);
                    }
                    Value::Object(m) if m.keys().all(|k| k.parse::<usize>().is_ok()) => {
                        let mut items: Vec<(usize, Value)> = std::mem::take(m)
                            .into_iter()
                            .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
                            .collect();
                        items.sort_by_key(|(i, _)| *i);
                        *v = Value::Array(items.into_iter().map(|(_, v)| v).collect());
                    }
                    _ => {}
                }
                if let Value::Array(items) = v {
                    for item in items {
                        inner.coerce(item);
                    }
                }
            }
            Shape::UInt | Shape::Int => {
                if let Value::String(s) = v
                    && let Ok(n) = s.trim().parse::<i64>()
                {
                    *v = Value::Number(n.into());
                }
            }
            Shape::Float => {
                if let Value::String(s) = v {
                    let t = s.trim();
                    if let Ok(n) = t.parse::<i64>() {
                        *v = Value::Number(n.into());
                    } else if let Some(n) = t
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                    {
                        *v = n;
                    }
                }
            }
            Shape::Bool => {
                if let Value::String(s) = v {
                    if s.trim().eq_ignore_ascii_case("true") {
                        *v = Value::Bool(true);
                    } else if s.trim().eq_ignore_ascii_case("false") {
                        *v = Value::Bool(false);
                    }
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Str => f.write_str("a string"),
            Shape::Date => f.write_str("a date YYYY-MM-DD"),
            Shape::Time => f.write_str("a time in RFC 3339 with an offset, or a date YYYY-MM-DD"),
            Shape::UInt => f.write_str("a whole number, 0 or more"),
            Shape::Int => f.write_str("a whole number"),
            Shape::Float => f.write_str("a number"),
            Shape::Bool => f.write_str("true or false"),
            // The event kinds are too many to list in a message.
            Shape::Enum(v) if v.len() > 12 => f.write_str("a known event type"),
            Shape::Enum(v) => write!(f, "one of {}", v.join(", ")),
            Shape::List(inner) => match inner.as_ref() {
                Shape::Enum(v) if v.len() <= 12 => {
                    write!(f, "a list of {}", v.join(", "))
                }
                Shape::Str => f.write_str("a list of strings"),
                _ => f.write_str("a list"),
            },
            Shape::Object(_) | Shape::Map(_) => f.write_str("an object"),
            Shape::Any => f.write_str("a value"),
        }
    }
}

/// The payload shape of each event kind (always an `Object`).
pub fn of(kind: EventKind) -> &'static Shape {
    static SHAPES: OnceLock<BTreeMap<EventKind, Shape>> = OnceLock::new();
    let shapes = SHAPES.get_or_init(|| {
        EventKind::ALL
            .into_iter()
            .map(|k| (k, explore(&mut vec![k.as_str().to_owned()])))
            .collect()
    });
    // Invariant: the map is built from EventKind::ALL, so every kind is present.
    shapes.get(&kind).expect("every event kind has a shape")
}

/// The shape at `path` (variant first), exploring objects, lists and maps below it.
fn explore(path: &mut Vec<String>) -> Shape {
    match probe(path) {
        Hint::Object(fields) => Shape::Object(
            fields
                .iter()
                .map(|f| {
                    path.push((*f).to_owned());
                    let s = explore(path);
                    path.pop();
                    (*f, s)
                })
                .collect(),
        ),
        Hint::List => {
            path.push("0".to_owned());
            let s = explore(path);
            path.pop();
            Shape::List(Box::new(s))
        }
        Hint::Map => {
            path.push("key".to_owned());
            let s = explore(path);
            path.pop();
            Shape::Map(Box::new(s))
        }
        Hint::Leaf(s) => s,
    }
}

/// What the probe saw at the end of its path.
#[derive(Debug, Clone)]
enum Hint {
    Object(&'static [&'static str]),
    List,
    Map,
    Leaf(Shape),
}

fn probe(path: &[String]) -> Hint {
    let seen = RefCell::new(None);
    let _ = Event::deserialize(Probe { path, seen: &seen });
    // Invariant: every path `explore` builds comes from a shape the probe itself reported,
    // so the probe always reaches its end and records a hint there.
    seen.into_inner()
        .unwrap_or_else(|| panic!("the schema probe did not reach {}", path.join(".")))
}

/// The probe's error: it always stops deserialization, whether it recorded its hint or a
/// visitor refused the probe's made-up key.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// Follows `path` into the type being deserialized and records what it asks for at the end.
struct Probe<'p> {
    path: &'p [String],
    seen: &'p RefCell<Option<Hint>>,
}

impl<'p> Probe<'p> {
    fn at_end(&self) -> bool {
        self.path.is_empty()
    }

    fn leaf<T>(self, shape: Shape) -> Result<T, Stop> {
        if self.at_end() {
            *self.seen.borrow_mut() = Some(Hint::Leaf(shape));
        }
        Err(Stop)
    }

    fn child(&self) -> Probe<'p> {
        Probe {
            path: &self.path[1..],
            seen: self.seen,
        }
    }
}

macro_rules! leaf_methods {
    ($($method:ident => $shape:expr),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Stop> {
            self.leaf($shape)
        })*
    };
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    leaf_methods! {
        deserialize_any => Shape::Any,
        deserialize_bool => Shape::Bool,
        deserialize_i8 => Shape::Int,
        deserialize_i16 => Shape::Int,
        deserialize_i32 => Shape::Int,
        deserialize_u8 => Shape::UInt,
        deserialize_u16 => Shape::UInt,
        deserialize_u32 => Shape::UInt,
        deserialize_u64 => Shape::UInt,
        deserialize_f32 => Shape::Float,
        deserialize_f64 => Shape::Float,
        deserialize_char => Shape::Str,
        deserialize_string => Shape::Str,
        deserialize_bytes => Shape::Any,
        deserialize_byte_buf => Shape::Any,
        deserialize_unit => Shape::Any,
        deserialize_identifier => Shape::Str,
        deserialize_ignored_any => Shape::Any,
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        // `chrono::serde::ts_microseconds` stores instants as i64; its visitor says so.
        let expecting = format!("{}", &v as &dyn de::Expected);
        if expecting.contains("timestamp") {
            self.leaf(Shape::Time)
        } else {
            self.leaf(Shape::Int)
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        // `NaiveDate` asks for a borrowed str and expects "a formatted date string".
        let expecting = format!("{}", &v as &dyn de::Expected);
        if expecting.contains("date") {
            self.leaf(Shape::Date)
        } else {
            self.leaf(Shape::Str)
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        v.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _v: V,
    ) -> Result<V::Value, Stop> {
        self.leaf(Shape::Any)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Stop> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        if self.at_end() {
            *self.seen.borrow_mut() = Some(Hint::List);
            return Err(Stop);
        }
        v.visit_seq(OneElement(Some(self.child())))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Stop> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        if self.at_end() {
            *self.seen.borrow_mut() = Some(Hint::Map);
            return Err(Stop);
        }
        v.visit_map(OneEntry {
            key: Some(self.path[0].clone()),
            value: Some(self.child()),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        if self.at_end() {
            *self.seen.borrow_mut() = Some(Hint::Object(fields));
            return Err(Stop);
        }
        v.visit_map(OneEntry {
            key: Some(self.path[0].clone()),
            value: Some(self.child()),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        if self.at_end() {
            *self.seen.borrow_mut() = Some(Hint::Leaf(Shape::Enum(variants)));
            return Err(Stop);
        }
        v.visit_enum(self)
    }
}

impl<'de, 'p> EnumAccess<'de> for Probe<'p> {
    type Error = Stop;
    type Variant = Probe<'p>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Probe<'p>), Stop> {
        let tag = seed.deserialize(de::value::StrDeserializer::<Stop>::new(&self.path[0]))?;
        Ok((tag, self.child()))
    }
}

impl<'de> VariantAccess<'de> for Probe<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        Err(Stop)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Stop> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Stop> {
        self.deserialize_seq(v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_struct("", fields, v)
    }
}

/// A map holding the one key the probe follows.
struct OneEntry<'p> {
    key: Option<String>,
    value: Option<Probe<'p>>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(k) => seed
                .deserialize(de::value::StringDeserializer::<Stop>::new(k))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        match self.value.take() {
            Some(p) => seed.deserialize(p),
            None => Err(Stop),
        }
    }
}

/// A list holding the one element the probe follows.
struct OneElement<'p>(Option<Probe<'p>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        match self.0.take() {
            Some(p) => seed.deserialize(p).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_the_schema() {
        let child = of(EventKind::ChildRegistered);
        assert_eq!(child.at(&["grade"]), Some(&Shape::Int));
        assert_eq!(child.at(&["birth_date"]), Some(&Shape::Date));
        assert_eq!(child.at(&["boarding"]), Some(&Shape::Bool));
        assert_eq!(child.at(&["guardian", "phone"]), Some(&Shape::Str));
        assert_eq!(child.at(&["guardian", "age"]), Some(&Shape::UInt));
        assert_eq!(
            child.at(&["parents", "0", "relation"]),
            Some(&Shape::Enum(&["father", "mother"]))
        );
        assert!(matches!(child.at(&["hardship"]), Some(Shape::List(_))));
        let incident = of(EventKind::IncidentReported);
        assert_eq!(incident.at(&["happened_at"]), Some(&Shape::Time));
        let policy = of(EventKind::PolicyAdopted);
        assert_eq!(
            policy.at(&["policy", "quota", "talk", "weight"]),
            Some(&Shape::Float)
        );
        assert_eq!(policy.at(&["effective_from"]), Some(&Shape::Date));
        let test = of(EventKind::PhysicalTestRecorded);
        assert_eq!(test.at(&["items", "run_50m"]), Some(&Shape::Float));
        let correction = of(EventKind::Corrected);
        assert_eq!(correction.at(&["changes", "minutes"]), Some(&Shape::Any));
        let term = of(EventKind::TermDefined);
        assert_eq!(
            term.field_names(),
            vec!["school", "term", "starts_on", "ends_on"]
        );
        assert_eq!(term.at(&["term"]), Some(&Shape::Str));
    }
}
