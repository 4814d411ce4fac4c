//! Which bytes of an event are sealed, and how a sealed event looks in clear (docs/privacy.md).
//!
//! This module owns the split of an event into its clear part and its personal fields, the
//! presence placeholders left in the clear part, the merge that puts opened fields back, the
//! erased form, the subject whose key seals an event, and the associated data that binds a
//! ciphertext to its event. The classes come from [`crate::personal`]: a field whose class
//! is sensitive is sealed, every other field stays in clear. It must never encrypt, hold a
//! key or do I/O (that is the `vault` crate's).
//!
//! **Presence placeholders.** A sealed text that was not blank is replaced in the clear part
//! by [`PRESENT`], a blank one by `""`; a sealed number by `0`, a flag by `false` and a birth
//! date by [`PLACEHOLDER_DATE`]. The placeholders are computed when the event is written, so
//! the archive-completeness rule ("a guardian phone is filled in") reads the same answer from
//! the clear part before and after the key is erased, and scores and term statistics never
//! need a key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Event, EventKind};
use crate::personal::{FieldClass, class_of};

/// The envelope schema of a sealed event.
pub const SEALED_SCHEMA: u16 = 2;

/// What the clear part carries in place of a sealed text that was filled in.
pub const PRESENT: &str = "［已加密］";

/// What a view shows in place of a sealed text whose key was erased.
pub const ERASED: &str = "［已删除］";

/// What the clear part carries in place of a sealed date.
pub const PLACEHOLDER_DATE: &str = "1900-01-01";

/// The sealed fields whose values are dates (their placeholder must still parse as one).
const DATE_FIELDS: &[&str] = &["birth_date"];

/// Whose key seals an event's personal fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeySubject {
    /// A child's key: its file and every event about it.
    Child(String),
    /// A staff member's key: their joining and leaving.
    Staff(String),
}

impl KeySubject {
    /// `child:<id>` or `staff:<id>`, as stored beside the ciphertext.
    pub fn label(&self) -> String {
        match self {
            KeySubject::Child(c) => format!("child:{c}"),
            KeySubject::Staff(s) => format!("staff:{s}"),
        }
    }

    /// Reads [`KeySubject::label`] back.
    pub fn parse(s: &str) -> Option<KeySubject> {
        if let Some(c) = s.strip_prefix("child:") {
            return Some(KeySubject::Child(c.to_owned()));
        }
        s.strip_prefix("staff:")
            .map(|t| KeySubject::Staff(t.to_owned()))
    }
}

/// The sealed part of an envelope: which key, the nonce and the ciphertext of the personal
/// fields (an encoded [`Personal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The key's subject, as [`KeySubject::label`] writes it.
    pub key: String,
    /// The AEAD's nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The AEAD's output (ciphertext and tag).
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The personal fields of one event, by JSON pointer into the event's JSON form
/// (`/child_registered/guardian/phone`). Confidential ones (counseling notes) are kept apart:
/// the vault seals them again under the counselor key before sealing the whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Personal {
    /// Personal and free-text fields.
    pub fields: BTreeMap<String, Value>,
    /// Confidential fields (counseling notes), in clear before the vault seals them.
    pub confidential: BTreeMap<String, Value>,
}

impl Personal {
    /// Whether nothing was taken out.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.confidential.is_empty()
    }
}

/// Why an event could not be split or merged.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The event with its fields put back (or placeholders put in) does not decode.
    #[error("the event with its sealed fields restored does not decode: {0}")]
    Shape(serde_json::Error),
    /// An opened field names a place the event does not have.
    #[error("an opened field names {0}, which the event does not have")]
    NoSuchField(String),
}

/// The key that seals `event`'s personal fields: the child it is about, else the staff
/// member it registers; `None` for an event with no personal field to seal (a school, a
/// term, an activity about several children). An amendment is sealed under its target's
/// subject, which the caller passes as `target`.
pub fn subject_of(event: &Event, target: Option<&KeySubject>) -> Option<KeySubject> {
    match event {
        Event::Corrected { .. } | Event::Retracted { .. } => target.cloned(),
        Event::StaffJoined { staff, .. } | Event::StaffLeft { staff, .. } => {
            Some(KeySubject::Staff(staff.clone()))
        }
        // The erasure outlives the key it records: nothing of it is sealed.
        Event::ChildErased { .. } => None,
        e => match e.children() {
            [c] => Some(KeySubject::Child(c.clone())),
            // Several children (an activity): the vocabulary gives such events no personal
            // field (a test below holds it to that), so there is nothing to seal.
            _ => None,
        },
    }
}

/// The class a leaf at `path` takes: its own, else its parent's.
fn class_at(kind: EventKind, target: Option<EventKind>, path: &str) -> Option<FieldClass> {
    if kind == EventKind::Corrected
        && let Some(rest) = path.strip_prefix("changes.")
    {
        return match target {
            Some(t) => class_of(t, rest),
            // A correction of an unknown target: every changed field is sealed.
            None => Some(FieldClass::Personal),
        };
    }
    class_of(kind, path)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn placeholder(leaf: &Value, path: &str) -> Value {
    let last = path.rsplit('.').next().unwrap_or(path);
    match leaf {
        Value::String(_) if DATE_FIELDS.contains(&last) => Value::String(PLACEHOLDER_DATE.into()),
        Value::String(s) if s.trim().is_empty() => Value::String(String::new()),
        Value::String(_) => Value::String(PRESENT.into()),
        Value::Number(_) => Value::from(0),
        Value::Bool(_) => Value::Bool(false),
        other => other.clone(),
    }
}

struct Walk<'a> {
    kind: EventKind,
    target: Option<EventKind>,
    out: &'a mut Personal,
}

impl Walk<'_> {
    fn walk(&mut self, v: &mut Value, path: &str, pointer: &str, inherited: Option<FieldClass>) {
        let class = if path.is_empty() {
            None
        } else {
            class_at(self.kind, self.target, path).or(inherited)
        };
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let ptr = format!("{pointer}/{}", escape(k));
                    self.walk(child, &p, &ptr, class);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    self.walk(child, path, &format!("{pointer}/{i}"), class);
                }
            }
            Value::Null => {}
            leaf => {
                let Some(c) = class.filter(|c| c.is_sensitive()) else {
                    return;
                };
                let ph = placeholder(leaf, path);
                let value = std::mem::replace(leaf, ph);
                let map = if c == FieldClass::Confidential {
                    &mut self.out.confidential
                } else {
                    &mut self.out.fields
                };
                map.insert(pointer.to_owned(), value);
            }
        }
    }
}

/// Splits `event` into its clear part (sealed fields replaced by placeholders) and its
/// personal fields. `target` is the kind of a correction's target (its changes take that
/// kind's classes).
pub fn split(event: &Event, target: Option<EventKind>) -> Result<(Event, Personal), SealError> {
    let mut v = serde_json::to_value(event).map_err(SealError::Shape)?;
    let mut out = Personal::default();
    let kind = event.kind();
    if let Value::Object(top) = &mut v {
        for (tag, body) in top.iter_mut() {
            let mut w = Walk {
                kind,
                target,
                out: &mut out,
            };
            w.walk(body, "", &format!("/{}", escape(tag)), None);
        }
    }
    if out.is_empty() {
        return Ok((event.clone(), out));
    }
    let clear = serde_json::from_value(v).map_err(SealError::Shape)?;
    Ok((clear, out))
}

/// Puts opened fields back into a clear part.
pub fn merge(clear: &Event, fields: &BTreeMap<String, Value>) -> Result<Event, SealError> {
    if fields.is_empty() {
        return Ok(clear.clone());
    }
    let mut v = serde_json::to_value(clear).map_err(SealError::Shape)?;
    for (pointer, value) in fields {
        let slot = v
            .pointer_mut(pointer)
            .ok_or_else(|| SealError::NoSuchField(pointer.clone()))?;
        *slot = value.clone();
    }
    serde_json::from_value(v).map_err(SealError::Shape)
}

/// The clear part as a view shows it once the key is erased: every [`PRESENT`] placeholder
/// becomes [`ERASED`]. Blank fields stay blank, so completeness reads the same.
pub fn erased(clear: &Event) -> Result<Event, SealError> {
    fn mark(v: &mut Value) {
        match v {
            Value::String(s) if s == PRESENT => *s = ERASED.to_owned(),
            Value::Object(m) => m.values_mut().for_each(mark),
            Value::Array(a) => a.iter_mut().for_each(mark),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(clear).map_err(SealError::Shape)?;
    mark(&mut v);
    serde_json::from_value(v).map_err(SealError::Shape)
}

/// The associated data of a sealed event: the ciphertext is bound to the event's id, type,
/// schema version and key, so it cannot be moved to another event.
pub fn associated_data(id: &str, kind: EventKind, schema: u16, key: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(64 + id.len() + key.len());
    ad.extend_from_slice(b"careledger sealed event v2\0");
    ad.extend_from_slice(id.as_bytes());
    ad.push(0);
    ad.extend_from_slice(kind.as_str().as_bytes());
    ad.push(0);
    ad.extend_from_slice(&schema.to_be_bytes());
    ad.push(0);
    ad.extend_from_slice(key.as_bytes());
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of the seed school (fixtures/seed-school/events.jsonl).
    fn seed() -> Vec<Event> {
        include_str!("../../fixtures/seed-school/events.jsonl")
            .lines()
            .map(|line| {
                let serde_json::Value::Object(mut m) = serde_json::from_str(line).expect("json")
                else {
                    panic!("an object per line")
                };
                let kind = m.remove("type").and_then(|t| t.as_str().map(str::to_owned));
                for k in ["id", "occurred_at", "actor", "recorded_at"] {
                    m.remove(k);
                }
                crate::wire::event_from_wire(&kind.expect("a type"), m).expect("an event")
            })
            .collect()
    }

    #[test]
    fn split_then_merge_gives_the_event_back_and_the_clear_part_has_no_personal_value() {
        let mut sealed = 0;
        for e in seed() {
            let (clear, personal) = split(&e, None).expect("splits");
            let mut all = personal.fields.clone();
            all.extend(personal.confidential.clone());
            assert_eq!(merge(&clear, &all).expect("merges"), e);
            let text = serde_json::to_string(&clear).expect("encodes");
            for v in all.values() {
                if let Value::String(s) = v
                    && s.chars().count() > 1
                {
                    assert!(!text.contains(s.as_str()), "{s} left in clear: {text}");
                }
            }
            if !all.is_empty() {
                sealed += 1;
                assert_eq!(erased(&clear).expect("erases").kind(), e.kind());
            }
        }
        assert!(sealed > 20, "only {sealed} events had personal fields");
    }

    #[test]
    fn placeholders_keep_presence() {
        let e: Event = serde_json::from_value(serde_json::json!({"talk_held": {
            "staff": "t1", "child": "c1", "topic": "学习", "summary": "  ",
            "mood": "good", "follow_up": "下周再谈"
        }}))
        .expect("an event");
        let (clear, p) = split(&e, None).expect("splits");
        let Event::TalkHeld {
            topic,
            summary,
            follow_up,
            ..
        } = &clear
        else {
            panic!("kind kept")
        };
        assert_eq!(topic, PRESENT);
        assert_eq!(summary, "");
        assert_eq!(follow_up.as_deref(), Some(PRESENT));
        assert_eq!(p.fields.len(), 3);
        assert!(p.fields.contains_key("/talk_held/follow_up"));
    }

    #[test]
    fn counseling_notes_are_kept_apart() {
        let e: Event = serde_json::from_value(serde_json::json!({"counseling_session": {
            "staff": "t1", "child": "c1", "risk": "low", "notes": "心里话"
        }}))
        .expect("an event");
        let (_, p) = split(&e, None).expect("splits");
        assert!(p.fields.is_empty());
        assert_eq!(
            p.confidential.get("/counseling_session/notes"),
            Some(&Value::String("心里话".into()))
        );
    }

    #[test]
    fn a_correction_takes_its_targets_classes() {
        let e: Event = serde_json::from_value(serde_json::json!({"correction": {
            "target": "x", "changes": {"minutes": 30, "summary": "改了"}, "reason": "记错"
        }}))
        .expect("an event");
        let (clear, p) = split(&e, Some(EventKind::ParentCalled)).expect("splits");
        let Event::Corrected { changes, .. } = &clear else {
            panic!("kind kept")
        };
        assert_eq!(changes.get("minutes"), Some(&Value::from(30)));
        assert_eq!(changes.get("summary"), Some(&Value::from(PRESENT)));
        assert!(p.fields.contains_key("/correction/reason"));
    }

    #[test]
    fn an_event_about_several_children_has_no_field_to_seal() {
        use crate::personal::FIELDS;
        for (kind, field, class) in FIELDS {
            if *kind == EventKind::ActivityHeld {
                assert!(
                    !class.is_sensitive(),
                    "activity.{field} would need a key per child"
                );
            }
        }
    }

    #[test]
    fn associated_data_separates_events() {
        let a = associated_data("e1", EventKind::TalkHeld, 2, "child:c1");
        assert_ne!(a, associated_data("e2", EventKind::TalkHeld, 2, "child:c1"));
        assert_ne!(
            a,
            associated_data("e1", EventKind::HomeVisited, 2, "child:c1")
        );
        assert_ne!(a, associated_data("e1", EventKind::TalkHeld, 2, "child:c2"));
    }
}
