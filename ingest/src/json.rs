//! Reading one JSON object strictly: a key given twice in one object is refused (serde_json
//! keeps the last one, which silently stored a talk under the second of two `child` keys),
//! and a value JSON cannot read (`1e400`) is reported under its field. This module owns the
//! "read" step of JSONL lines and `record --json`; it must never interpret the fields.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::found_value;
use crate::wire::{self, Problem};

/// What a line is instead of one JSON object.
pub fn read_object(text: &str) -> Result<Map<String, Value>, Problem> {
    let path = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Node { path: &path }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match read {
        Ok(Value::Object(m)) => Ok(m),
        Ok(v) => Err(Problem {
            field: None,
            expected: "a JSON object".to_owned(),
            found: Some(found_value("", &v)),
        }),
        Err(e) => {
            // On an error the path is left where reading stopped: the field being read.
            // A line cut short is not a problem of the field it stops in.
            let path = path.into_inner();
            let in_field = !path.is_empty() && !e.is_eof();
            let field = in_field.then(|| path.join("."));
            let msg = e.to_string();
            if let Some(key) = msg.strip_prefix(REPEATED) {
                let key = key.split(" at line ").next().unwrap_or(key);
                return Err(Problem {
                    field,
                    expected: "each key once in an object".to_owned(),
                    found: Some(format!("{key} given twice")),
                });
            }
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
            Err(Problem {
                field,
                expected: if in_field {
                    "a JSON value"
                } else {
                    "a JSON object"
                }
                .to_owned(),
                found: Some(format!("invalid JSON ({msg} at column {})", e.column())),
            })
        }
    }
}

/// The start of the error a repeated key raises.
const REPEATED: &str = "repeated key ";

/// A JSON value whose objects are checked for repeated keys. `path` follows the reading and
/// is left at the failing field on an error (entries are popped only after success).
struct Node<'p> {
    path: &'p RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        wire::number(n).ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.path.borrow_mut().push(items.len().to_string());
            match seq.next_element_seed(Node { path: self.path })? {
                Some(v) => items.push(v),
                None => {
                    self.path.borrow_mut().pop();
                    return Ok(Value::Array(items));
                }
            }
            self.path.borrow_mut().pop();
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let repeated = m.contains_key(&key);
            self.path.borrow_mut().push(key.clone());
            if repeated {
                return Err(de::Error::custom(format!(
                    "{REPEATED}{}",
                    Value::String(key)
                )));
            }
            let v = map.next_value_seed(Node { path: self.path })?;
            self.path.borrow_mut().pop();
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_named() {
        let p = read_object(r#"{"child":"sq-c01","child":"sq-c02"}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("child"));
        assert_eq!(p.found.as_deref(), Some(r#""child" given twice"#));
        let nested = read_object(r#"{"guardian":{"name":"a","name":"b"}}"#).unwrap_err();
        assert_eq!(nested.field.as_deref(), Some("guardian.name"));
    }

    #[test]
    fn a_number_out_of_range_names_its_field() {
        let p = read_object(r#"{"a":1,"score":1e400}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("score"));
        assert_eq!(p.expected, "a JSON value");
        assert_eq!(
            p.found.as_deref(),
            Some("invalid JSON (number out of range at column 20)")
        );
    }

    #[test]
    fn a_well_formed_object_reads_as_serde_json_reads_it() {
        let text = r#"{"a":[1,2.5,{"b":null}],"c":"x","d":true,"e":-3}"#;
        assert_eq!(
            Value::Object(read_object(text).unwrap()),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }
}
