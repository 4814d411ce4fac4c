//! The audit trail of a child (rules §10.2 `history`): every event touching the child, as
//! recorded and as it counts now, with both times, the delay between them, actor and source;
//! and every correction or retraction of those events with what it changed (field, from, to).
//!
//! An event touches the child when the child is among its children as recorded or as
//! corrected (an `activity` lists several), when it is an `incident_notified` of one of the
//! child's incidents, or when it amends such an event. The original payloads come from the
//! envelopes (the timeline keeps only the effective ones); the amendments' effects come from
//! the timeline, so both always agree.
//!
//! It is a pure fold; it must never read the store or the clock. Counseling `notes` (in the
//! payload and in corrections of it) are replaced by `[redacted]` unless the viewer is a
//! counselor.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use events::event::redact_wire;
use events::time::format_local;
use events::{Envelope, Event, EventKind};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ProjectionError;
use crate::labels::{row, zh_kind};
use crate::timeline::{AmendmentEffect, AmendmentKind, Fact, Slot, Timeline};
use crate::world::World;

/// What replaces confidential text for a viewer who is not a counselor.
pub const REDACTED: &str = "[redacted]";

/// The audit trail of one child.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The child id whose trail this is.
    pub child: String,
    /// The as-of bound of the timeline (RFC 3339 at +08:00), if any.
    pub as_of: Option<String>,
    /// The last seq of the log prefix read.
    pub head_seq: u64,
    /// In log order.
    pub entries: Vec<HistoryEntry>,
}

/// How an entry stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Counts as recorded.
    Effective,
    /// Counts with corrections applied (see `effective`).
    Corrected,
    /// Counts nowhere.
    Retracted,
    /// A correction of another entry.
    Correction,
    /// A retraction of another entry.
    Retraction,
}

/// One field a correction changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The top-level wire field changed (`occurred_at`, `minutes`, …).
    pub field: String,
    /// The value before this correction (`null` when the field was absent).
    pub from: Value,
    /// The value after this correction.
    pub to: Value,
}

/// One event of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// The event's log sequence number.
    pub seq: u64,
    /// The event id.
    pub id: String,
    #[serde(rename = "type")]
    /// The event type, `type` in JSON.
    pub kind: EventKind,
    /// When the log recorded it, RFC 3339 at +08:00.
    pub recorded_at: String,
    /// As recorded (a correction may have moved the event: see `effective`).
    pub occurred_at: String,
    /// `recorded_at − occurred_at` as recorded, in seconds.
    pub delay_seconds: i64,
    /// Who recorded it (the envelope's `actor`).
    pub actor: String,
    /// Where it came from: `cli`, `import:<file>` or `migration`.
    pub source: String,
    /// How the entry stands now.
    pub state: EntryState,
    /// The payload as recorded, in the flat wire form with `occurred_at` (events only).
    pub event: Option<Map<String, Value>>,
    /// The payload as it counts now, when corrections changed it (events only).
    pub effective: Option<Map<String, Value>>,
    /// The seqs of the amendments of this event, in log order.
    pub amended_by: Vec<u64>,
    /// Amendments only: the id of the event amended.
    pub target: Option<String>,
    /// Amendments only: the reason the recorder gave.
    pub reason: Option<String>,
    /// Corrections only: what changed.
    pub changes: Option<Vec<FieldChange>>,
    /// Amendments only: `applied`, `target_retracted` or `unknown_target`.
    pub effect: Option<&'static str>,
}

/// The flat wire form of an event as a fact stood, without `type`, `id` and `actor` (they
/// are entry fields and never change), redacted for non-counselors.
fn wire(f: &Fact, counselor: bool) -> Map<String, Value> {
    let mut m = f.to_wire();
    for k in ["type", "id", "actor"] {
        m.remove(k);
    }
    if !counselor {
        redact_wire(&mut m, f.event.kind(), None, &Value::from(REDACTED));
    }
    m
}

fn fact_of(e: &Envelope) -> Fact {
    Fact {
        seq: e.seq,
        id: e.id.clone(),
        recorded_at: e.recorded_at,
        occurred_at: e.occurred_at,
        actor: e.actor.clone(),
        source: e.source.clone(),
        event: e.event.clone(),
        corrected_by: Vec::new(),
    }
}

/// The audit trail of `child`. `envelopes` is the log prefix in log order (at least every
/// envelope up to the timeline's head; later ones are ignored); `timeline` and `world` are
/// built from it.
pub fn history(
    envelopes: &[Envelope],
    timeline: &Timeline,
    world: &World,
    child: &str,
    viewer_is_counselor: bool,
) -> Result<History, ProjectionError> {
    let head = timeline.head_seq();
    let prefix: Vec<&Envelope> = envelopes
        .iter()
        .take_while(|e| e.seq <= head)
        .filter(|e| !matches!(e.event, Event::Corrected { .. } | Event::Retracted { .. }))
        .collect();

    // The child's incidents, as recorded or as corrected.
    let mut incidents: BTreeSet<&str> = BTreeSet::new();
    for e in &prefix {
        if let Event::IncidentReported {
            incident, child: c, ..
        } = &e.event
            && (c == child || world.incident_child(incident) == Some(child))
        {
            incidents.insert(incident);
        }
    }
    let about = |event: &Event| -> bool {
        match event {
            Event::IncidentNotified { incident, .. } => incidents.contains(incident.as_str()),
            e => e.children().iter().any(|c| c == child),
        }
    };
    let effective_of = |id: &str| -> Option<&Fact> {
        match timeline.lookup(id) {
            Some(Slot::Fact(f)) | Some(Slot::Retracted(f)) => Some(f),
            _ => None,
        }
    };

    let mut entries: BTreeMap<u64, HistoryEntry> = BTreeMap::new();
    let mut states: HashMap<&str, (u64, Map<String, Value>)> = HashMap::new();
    for e in &prefix {
        let now = effective_of(&e.id);
        if !(about(&e.event) || now.is_some_and(|f| about(&f.event))) {
            continue;
        }
        let original = fact_of(e);
        let state = if timeline.is_retracted(&e.id) {
            EntryState::Retracted
        } else if now.is_some_and(|f| !f.corrected_by.is_empty()) {
            EntryState::Corrected
        } else {
            EntryState::Effective
        };
        let mut full = original.to_wire();
        for k in ["type", "id", "actor"] {
            full.remove(k);
        }
        states.insert(e.id.as_str(), (e.seq, full));
        entries.insert(
            e.seq,
            HistoryEntry {
                seq: e.seq,
                id: e.id.clone(),
                kind: e.event.kind(),
                recorded_at: format_local(e.recorded_at),
                occurred_at: format_local(e.occurred_at),
                delay_seconds: (e.recorded_at - e.occurred_at).num_seconds(),
                actor: e.actor.clone(),
                source: e.source.to_string(),
                state,
                event: Some(wire(&original, viewer_is_counselor)),
                effective: match (state, now) {
                    (EntryState::Corrected, Some(f)) => Some(wire(f, viewer_is_counselor)),
                    _ => None,
                },
                amended_by: Vec::new(),
                target: None,
                reason: None,
                changes: None,
                effect: None,
            },
        );
    }

    for a in timeline.amendments() {
        let Some((target_seq, state)) = states.get_mut(a.target.as_str()) else {
            continue;
        };
        let target_seq = *target_seq;
        let target_kind = entries.get(&target_seq).map(|t| t.kind);
        let redact = |field: &str, v: Value| {
            let hidden = target_kind.is_none_or(|k| k.is_confidential(field));
            if !viewer_is_counselor && hidden {
                Value::from(REDACTED)
            } else {
                v
            }
        };
        let (kind, reason, changes) = match &a.kind {
            AmendmentKind::Correction { changes, reason } => {
                let applied = matches!(a.effect, AmendmentEffect::Applied { .. });
                let list = changes
                    .iter()
                    .map(|(field, to)| {
                        let from = state.get(field).cloned().unwrap_or(Value::Null);
                        if applied {
                            state.insert(field.clone(), to.clone());
                        }
                        FieldChange {
                            field: field.clone(),
                            from: redact(field, from),
                            to: redact(field, to.clone()),
                        }
                    })
                    .collect();
                (EventKind::Corrected, reason.clone(), Some(list))
            }
            AmendmentKind::Retraction { reason } => (EventKind::Retracted, reason.clone(), None),
        };
        if let Some(t) = entries.get_mut(&target_seq) {
            t.amended_by.push(a.seq);
        }
        entries.insert(
            a.seq,
            HistoryEntry {
                seq: a.seq,
                id: a.id.clone(),
                kind,
                recorded_at: format_local(a.recorded_at),
                occurred_at: format_local(a.occurred_at),
                delay_seconds: (a.recorded_at - a.occurred_at).num_seconds(),
                actor: a.actor.clone(),
                source: a.source.to_string(),
                state: if kind == EventKind::Corrected {
                    EntryState::Correction
                } else {
                    EntryState::Retraction
                },
                event: None,
                effective: None,
                amended_by: Vec::new(),
                target: Some(a.target.clone()),
                reason: Some(reason),
                changes,
                effect: Some(match a.effect {
                    AmendmentEffect::Applied { .. } => "applied",
                    AmendmentEffect::TargetRetracted { .. } => "target_retracted",
                    AmendmentEffect::UnknownTarget => "unknown_target",
                }),
            },
        );
    }

    // A child whose registration was retracted still has a trail; one never named has none.
    if entries.is_empty() && world.child(child).is_none() {
        return Err(ProjectionError::UnknownChild {
            child: child.to_owned(),
        });
    }
    Ok(History {
        child: child.to_owned(),
        as_of: timeline.as_of().map(format_local),
        head_seq: head,
        entries: entries.into_values().collect(),
    })
}

/// A delay as a school reads it: `3天2小时`, `45分钟`; negative delays (clock skew in migrated
/// data) keep their sign.
pub fn format_delay(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    let body = match (d, h) {
        (0, 0) => format!("{m}分钟"),
        (0, _) => format!("{h}小时{m}分钟"),
        _ => format!("{d}天{h}小时"),
    };
    format!("{sign}{body}")
}

fn compact(m: &Map<String, Value>) -> String {
    m.iter()
        .filter(|(k, _)| k.as_str() != "occurred_at")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl HistoryEntry {
    fn state_zh(&self) -> &'static str {
        match self.state {
            EntryState::Effective => "有效",
            EntryState::Corrected => "已更正",
            EntryState::Retracted => "已撤回",
            EntryState::Correction => "更正",
            EntryState::Retraction => "撤回",
        }
    }

    fn content(&self) -> String {
        if let Some(changes) = &self.changes {
            let list: Vec<String> = changes
                .iter()
                .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
                .collect();
            return format!(
                "{} {}（{}）",
                self.target.clone().unwrap_or_default(),
                list.join("；"),
                self.reason.clone().unwrap_or_default()
            );
        }
        if self.state == EntryState::Retraction {
            return format!(
                "{}（{}）",
                self.target.clone().unwrap_or_default(),
                self.reason.clone().unwrap_or_default()
            );
        }
        self.event.as_ref().map(compact).unwrap_or_default()
    }
}

impl History {
    /// One row per entry: 序号, 记录时间, 发生时间, 延迟, 类型, 录入人, 来源, 状态, 内容.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row([
            "序号",
            "记录时间",
            "发生时间",
            "延迟",
            "类型",
            "录入人",
            "来源",
            "状态",
            "内容",
        ])];
        for e in &self.entries {
            t.push(vec![
                e.seq.to_string(),
                e.recorded_at.clone(),
                e.occurred_at.clone(),
                format_delay(e.delay_seconds),
                zh_kind(e.kind).to_owned(),
                e.actor.clone(),
                e.source.clone(),
                e.state_zh().to_owned(),
                e.content(),
            ]);
        }
        t
    }
}
