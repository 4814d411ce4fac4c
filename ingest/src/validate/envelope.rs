//! The envelope fields of a line (`type`, `id`, `occurred_at`, `actor`, `recorded_at`) and
//! the rules on its times: strict instants, nothing occurred after it is recorded, and in a
//! migration `recorded_at` never going back. It also says when an event is too large for the
//! store. It must not look at the payload.

use chrono::{DateTime, Utc};
use events::{Draft, Envelope, EventKind, Hash, SCHEMA, Source, time};
use serde_json::{Map, Value};
use store::log::MAX_EVENT_BYTES;

use super::{Batch, Envelope0, found_or_nothing};
use crate::error::{found_value, quote};
use crate::shape::Shape;
use crate::wire::{self, Problem};

impl Batch<'_> {
    /// Takes the envelope fields out of a line and checks them.
    pub(super) fn envelope(
        &self,
        obj: &mut Map<String, Value>,
        problems: &mut Vec<Problem>,
    ) -> Envelope0 {
        let kind = match obj.remove("type") {
            Some(Value::String(s)) => {
                let k = EventKind::parse(&s);
                if k.is_none() {
                    problems.push(Problem::field(
                        "type",
                        "a known event type",
                        Some(quote(&s)),
                    ));
                }
                k
            }
            other => {
                problems.push(Problem::field(
                    "type",
                    "a known event type",
                    Some(found_or_nothing("type", other.as_ref())),
                ));
                None
            }
        };
        let id = match obj.remove("id") {
            None => None,
            Some(Value::String(s)) => match wire::check_id("id", &s) {
                Some(p) => {
                    problems.push(p);
                    None
                }
                None => Some(s),
            },
            Some(v) => {
                problems.push(Problem::field(
                    "id",
                    wire::ID_RULE,
                    Some(found_value("id", &v)),
                ));
                None
            }
        };
        let occurred_at = instant_field("occurred_at", obj.remove("occurred_at"), problems);
        let actor = match obj.remove("actor") {
            Some(Value::String(s)) => match wire::check_id("actor", &s) {
                Some(p) => {
                    problems.push(p);
                    None
                }
                None => Some(s),
            },
            other => {
                problems.push(Problem::field(
                    "actor",
                    "the id of who recorded it (a staff id or an account name)",
                    Some(found_or_nothing("actor", other.as_ref())),
                ));
                None
            }
        };
        let recorded_at = self.read_recorded_at(obj.remove("recorded_at"), problems);
        Envelope0 {
            kind,
            id,
            occurred_at,
            actor,
            recorded_at,
        }
    }

    /// The time a new line counts as recorded (its own `recorded_at` in a migration, else
    /// `now`) and the problems of its times: a migration's `recorded_at` must not be in the
    /// future, before the previous line's or before the log's head; nothing may have occurred
    /// after it is recorded. Lines already in the log are not checked (a re-import of an
    /// export is a no-op, not a list of times gone by).
    pub(super) fn times(
        &self,
        occurred_at: Option<DateTime<Utc>>,
        recorded_at: Option<DateTime<Utc>>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>, Vec<Problem>) {
        let now = self.opts.now;
        let mut problems = Vec::new();
        let recorded_at = recorded_at.filter(|&t| {
            let shown = Some(quote(&time::format_local(t)));
            let expected = if t > now {
                format!(
                    "a time not in the future (now is {})",
                    time::format_local(now)
                )
            } else if let Some(prev) = self.last_recorded
                && t < prev
            {
                format!(
                    "a time not before the previous line's recorded_at ({})",
                    time::format_local(prev)
                )
            } else if let Some(head) = self.opts.head_recorded_at
                && t < head
            {
                format!(
                    "a time not before the last recorded_at in the log ({})",
                    time::format_local(head)
                )
            } else {
                return true;
            };
            problems.push(Problem::field("recorded_at", expected, shown));
            false
        });
        let recorded = recorded_at.unwrap_or(now);
        if let Some(t) = occurred_at
            && t > recorded
        {
            let when = if recorded_at.is_some() {
                "its recorded_at"
            } else {
                "now"
            };
            problems.push(Problem::field(
                "occurred_at",
                format!(
                    "a time not later than when it is recorded ({when}, {})",
                    time::format_local(recorded)
                ),
                Some(quote(&time::format_local(t))),
            ));
        }
        (recorded, recorded_at, problems)
    }

    /// Reads `recorded_at`: forbidden unless migrating, then required on every line.
    fn read_recorded_at(
        &self,
        v: Option<Value>,
        problems: &mut Vec<Problem>,
    ) -> Option<DateTime<Utc>> {
        if !self.opts.preserve_recorded_at {
            if let Some(v) = v {
                problems.push(Problem::field(
                    "recorded_at",
                    "no recorded_at (the store sets it; a migration of paper records uses --preserve-recorded-at)",
                    Some(found_value("recorded_at", &v)),
                ));
            }
            return None;
        }
        let Some(v) = v else {
            problems.push(Problem::field(
                "recorded_at",
                format!(
                    "a recorded_at on every line of a migration ({})",
                    Shape::Time
                ),
                Some("nothing".to_owned()),
            ));
            return None;
        };
        instant_field("recorded_at", Some(v), problems)
    }

    /// The store refuses an envelope larger than `MAX_EVENT_BYTES`; say so on the line.
    pub(super) fn too_large(&self, d: &Draft, recorded: DateTime<Utc>) -> Option<Problem> {
        let env = Envelope {
            sealed: None,
            schema: SCHEMA,
            seq: u64::MAX,
            id: d.id.clone(),
            recorded_at: recorded,
            occurred_at: d.occurred_at,
            actor: d.actor.clone(),
            source: if self.opts.preserve_recorded_at {
                Source::Migration
            } else {
                // As the binary names it: the file name without its folder.
                Source::Import(
                    std::path::Path::new(&self.file)
                        .file_name()
                        .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned()),
                )
            },
            event: d.event.clone(),
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        };
        let bytes = env.encode_body().len();
        (bytes > MAX_EVENT_BYTES).then(|| Problem {
            field: None,
            expected: format!("an event of at most {MAX_EVENT_BYTES} bytes once stored"),
            found: Some(format!("{bytes} bytes (shorten its texts)")),
        })
    }
}

/// A required instant field (`occurred_at`, `recorded_at`).
pub(super) fn instant_field(
    field: &str,
    v: Option<Value>,
    problems: &mut Vec<Problem>,
) -> Option<DateTime<Utc>> {
    let expected = Shape::Time.to_string();
    match v {
        Some(Value::String(s)) => match wire::parse_instant(&s) {
            None => {
                problems.push(Problem::field(field, expected, Some(quote(&s))));
                None
            }
            Some(t) if wire::too_early(time::local_date(t)) => {
                problems.push(wire::too_early_problem(field, &s));
                None
            }
            t => t,
        },
        other => {
            problems.push(Problem::field(
                field,
                expected,
                Some(found_or_nothing(field, other.as_ref())),
            ));
            None
        }
    }
}
