//! Amendments: a correction or a retraction must name an event of the log or of the batch
//! that is neither an amendment nor retracted, and a correction must leave its target valid
//! (the target with the changes applied goes through the same checks as a new event, and
//! only problems in changed fields are reported, under `changes.`). It must never let a
//! correction change what identifies an event (`type`, `id`, `actor`, `recorded_at`, or the
//! id a registration introduces).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use events::{EventKind, time};
use serde_json::Value;

use super::envelope::instant_field;
use super::{Batch, Mode};
use crate::error::quote;
use crate::known::KnownEvent;
use crate::shape;
use crate::wire::{self, Problem};

impl Batch<'_> {
    /// The event an amendment names: it must exist, not be an amendment, not be retracted.
    pub(super) fn check_target(&self, target: &str, out: &mut Vec<Problem>) -> Option<KnownEvent> {
        let found = self
            .batch_event(target)
            .or_else(|| self.known.event_by_id(target));
        let Some(t) = found else {
            if !self.failed_ids.contains(target) {
                out.push(Problem::field(
                    "target",
                    "the id of an event in the log or earlier in this input",
                    Some(quote(target)),
                ));
            }
            return None;
        };
        if matches!(t.kind, EventKind::Corrected | EventKind::Retracted) {
            out.push(Problem::field(
                "target",
                "an event that is not itself a correction or a retraction",
                Some(format!("{} (a {})", quote(target), t.kind)),
            ));
            return None;
        }
        if self.registry.is_retracted(target) {
            out.push(Problem::field(
                "target",
                "an event that has not been retracted",
                Some(format!("{} (retracted)", quote(target))),
            ));
            return None;
        }
        Some(t)
    }

    /// CSV cells of a correction's `changes` are text; they are typed by the shape of the
    /// target's fields (the target is looked up here; if it is missing, `check_target` says
    /// so later), so that the stored correction carries `3`, not `"3"`.
    pub(super) fn type_csv_changes(&self, payload: &mut Value) {
        let Some(target) = payload.get("target").and_then(Value::as_str) else {
            return;
        };
        let Some(kind) = self
            .events
            .get(target)
            .map(|&i| self.parsed.drafts[i].1.event.kind())
            .or_else(|| self.known.event_by_id(target).map(|t| t.kind))
        else {
            return;
        };
        let target_shape = shape::of(kind);
        if let Some(Value::Object(changes)) = payload.get_mut("changes") {
            for (k, v) in changes.iter_mut() {
                if let Some(s) = target_shape.at(&[k.as_str()]) {
                    s.coerce(v);
                }
            }
        }
    }

    /// A correction: its target, then the target as the changes leave it, re-validated.
    pub(super) fn check_correction(
        &self,
        target: &str,
        changes: &BTreeMap<String, Value>,
        recorded: DateTime<Utc>,
        out: &mut Vec<Problem>,
    ) {
        let t = self.check_target(target, out);
        if changes.is_empty() {
            out.push(Problem::field(
                "changes",
                "at least one corrected field",
                Some("an empty object".to_owned()),
            ));
            return;
        }
        let mut ok = true;
        for key in changes.keys() {
            if matches!(key.as_str(), "type" | "id" | "actor" | "recorded_at") {
                out.push(Problem::field(
                    format!("changes.{key}"),
                    "a field a correction may change (not type, id, actor or recorded_at)",
                    Some(format!("a change of {key}")),
                ));
                ok = false;
            }
        }
        let Some(t) = t else { return };
        if let Some(key) = identity(t.kind)
            && changes.contains_key(key)
        {
            out.push(Problem::field(
                format!("changes.{key}"),
                format!(
                    "a field a correction may change (not the {key} id that {} registers)",
                    t.kind
                ),
                Some(format!("a change of {key}")),
            ));
            ok = false;
        }
        if !ok {
            return;
        }

        let target_shape = shape::of(t.kind);
        let mut occurred_at = t.occurred_at;
        let mut merged = events::wire::payload_of(&t.event);
        for (k, v) in changes {
            if k == "occurred_at" {
                let mut ps = Vec::new();
                match instant_field("occurred_at", Some(v.clone()), &mut ps) {
                    Some(o) if o > recorded => out.push(Problem::field(
                        "changes.occurred_at",
                        format!(
                            "a time not later than when it is recorded ({})",
                            time::format_local(recorded)
                        ),
                        Some(quote(&time::format_local(o))),
                    )),
                    Some(o) => occurred_at = o,
                    None => out.extend(ps.into_iter().map(|p| p.under("changes"))),
                }
                continue;
            }
            merged.insert(k.clone(), v.clone());
        }
        let mut ps = Vec::new();
        let mut payload = Value::Object(merged);
        wire::normalize(target_shape, &mut payload, &mut Vec::new(), &mut ps);
        let decoded = wire::decode(t.kind, payload.clone());
        let corrected = match decoded {
            Ok(e) if ps.is_empty() => e,
            Ok(_) => {
                out.extend(ps.into_iter().map(|p| p.under("changes")));
                return;
            }
            Err(more) => {
                out.extend(ps.into_iter().chain(more).map(|p| p.under("changes")));
                return;
            }
        };
        let changed: BTreeSet<String> = changes.keys().cloned().collect();
        self.check(
            &corrected,
            &payload,
            occurred_at,
            recorded,
            Mode::Corrected(&changed),
            out,
        );
    }
}

/// The field holding the id a registration introduces; a correction may not change it.
pub(super) fn identity(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::SchoolRegistered => Some("school"),
        EventKind::StaffJoined => Some("staff"),
        EventKind::ChildRegistered => Some("child"),
        EventKind::IncidentReported => Some("incident"),
        EventKind::TermDefined => Some("term"),
        _ => None,
    }
}
