//! The timeline: the effective facts of a log prefix (rules §4–§5). It cuts the log at an
//! as-of time (recorded time), applies corrections and retractions in log order, and keeps
//! the amendments themselves for history views.
//!
//! This module owns the meaning of `correction` and `retraction` and the flat wire form used
//! to apply a correction's `changes`; it must never interpret care events beyond that (who,
//! when and what is the job of `world` and the views) nor read anything but the envelopes it
//! is given.
//!
//! Invariants: facts are in log order; a retracted event is never among the facts; an
//! amendment is never a fact.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use events::time::{format_local, parse_instant};
pub use events::wire::{event_from_wire, payload_of};
use events::{Envelope, Event, Source};
use serde_json::{Map, Value};

use crate::ProjectionError;

/// An event as it counts: the envelope's metadata with every applicable correction applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// The event's log sequence number (from 1).
    pub seq: u64,
    /// The event id (rules §4.6).
    pub id: String,
    /// When the log recorded it (rules §4.7); corrections never move it.
    pub recorded_at: DateTime<Utc>,
    /// The effective `occurred_at` (a correction may have moved it).
    pub occurred_at: DateTime<Utc>,
    /// Who recorded it (the envelope's `actor`).
    pub actor: String,
    /// Where it came from: `record`, an import file, or a migration.
    pub source: Source,
    /// The effective payload.
    pub event: Event,
    /// The seqs of the corrections applied to it, in log order.
    pub corrected_by: Vec<u64>,
}

impl Fact {
    /// The local date (+08:00) it occurred on.
    pub fn date(&self) -> chrono::NaiveDate {
        events::time::local_date(self.occurred_at)
    }

    /// The flat wire form of the effective event (rules §5.1): `type`, `id`, `occurred_at`
    /// (RFC 3339 at +08:00), `actor`, then the payload's fields (instants as RFC 3339).
    /// Callers showing it to anyone but a counselor must drop `notes`.
    pub fn to_wire(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.event.kind().as_str()));
        m.insert("id".into(), Value::from(self.id.clone()));
        m.insert(
            "occurred_at".into(),
            Value::from(format_local(self.occurred_at)),
        );
        m.insert("actor".into(), Value::from(self.actor.clone()));
        m.extend(payload_of(&self.event));
        m
    }
}

/// What an amendment asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum AmendmentKind {
    /// Replace top-level fields of the target's flat wire form.
    Correction {
        /// The top-level fields to replace, by name, with their new wire values.
        changes: BTreeMap<String, Value>,
        /// Why, in the recorder's words.
        reason: String,
    },
    /// The target counts nowhere.
    Retraction {
        /// Why, in the recorder's words.
        reason: String,
    },
}

/// What an amendment did within this log prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmendmentEffect {
    /// It applied to the event at `target_seq`.
    Applied {
        /// The seq of the target.
        target_seq: u64,
    },
    /// The target was retracted earlier in log order: nothing more applies to it.
    TargetRetracted {
        /// The seq of the target, retracted before this amendment.
        target_seq: u64,
    },
    /// No earlier non-amendment event has this id (the store rejects such input; an old or
    /// migrated log might still hold one, and then it changes nothing).
    UnknownTarget,
}

/// A correction or a retraction, as recorded, with its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Amendment {
    /// The amendment's own log sequence number.
    pub seq: u64,
    /// The amendment's own event id.
    pub id: String,
    /// When the log recorded the amendment.
    pub recorded_at: DateTime<Utc>,
    /// The amendment's own `occurred_at` (when the correction was made).
    pub occurred_at: DateTime<Utc>,
    /// Who recorded the amendment.
    pub actor: String,
    /// Where the amendment came from.
    pub source: Source,
    /// The id of the event it amends.
    pub target: String,
    /// What it asked for.
    pub kind: AmendmentKind,
    /// What it did in this log prefix.
    pub effect: AmendmentEffect,
}

/// Where an id lives in the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot<'a> {
    /// An event that counts, with its corrections applied.
    Fact(&'a Fact),
    /// A retracted event, as it stood (corrections included) when it was retracted.
    Retracted(&'a Fact),
    /// A correction or retraction.
    Amendment(&'a Amendment),
}

#[derive(Debug, Clone, Copy)]
enum SlotIx {
    Fact(usize),
    Retracted(usize),
    Amendment(usize),
}

/// The effective facts of a log prefix.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Shared, not copied: a service's kept versions hand the same facts to every timeline
    /// it filters from them (`versions::Versions::timeline`).
    facts: Vec<Arc<Fact>>,
    retracted: Vec<Arc<Fact>>,
    amendments: Vec<Amendment>,
    head_seq: u64,
    head_recorded_at: Option<DateTime<Utc>>,
    as_of: Option<DateTime<Utc>>,
    /// id → slot, built on first lookup (most runs never look up by id).
    index: OnceLock<HashMap<String, SlotIx>>,
    /// target id → indexes into `amendments` (log order), built on first `effective` call.
    by_target: OnceLock<HashMap<String, Vec<usize>>>,
}

/// An envelope given either by reference (cloned) or by value (moved).
trait EnvelopeSource {
    fn recorded_at(&self) -> DateTime<Utc>;
    fn into_parts(self) -> Envelope;
}

impl EnvelopeSource for &Envelope {
    fn recorded_at(&self) -> DateTime<Utc> {
        self.recorded_at
    }
    fn into_parts(self) -> Envelope {
        self.clone()
    }
}

impl EnvelopeSource for Envelope {
    fn recorded_at(&self) -> DateTime<Utc> {
        self.recorded_at
    }
    fn into_parts(self) -> Envelope {
        self
    }
}

impl Timeline {
    /// The timeline of the envelopes recorded at or before `as_of` (all when `None`), given in
    /// log order. `recorded_at` never decreases along the log, so reading stops at the first
    /// later envelope.
    pub fn build<'a>(
        envelopes: impl IntoIterator<Item = &'a Envelope>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ProjectionError> {
        Timeline::fold(envelopes, as_of)
    }

    /// As [`Timeline::build`], taking the envelopes by value (no clone of the payloads).
    pub fn build_owned(
        envelopes: impl IntoIterator<Item = Envelope>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ProjectionError> {
        Timeline::fold(envelopes, as_of)
    }

    fn fold<E: EnvelopeSource>(
        envelopes: impl IntoIterator<Item = E>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ProjectionError> {
        let mut t = Timeline {
            as_of,
            ..Timeline::default()
        };
        for e in envelopes {
            if as_of.is_some_and(|cut| e.recorded_at() > cut) {
                break;
            }
            let env = e.into_parts();
            t.head_seq = env.seq;
            t.head_recorded_at = Some(env.recorded_at);
            match env.event {
                Event::Corrected {
                    target,
                    changes,
                    reason,
                } => t.amendments.push(Amendment {
                    seq: env.seq,
                    id: env.id,
                    recorded_at: env.recorded_at,
                    occurred_at: env.occurred_at,
                    actor: env.actor,
                    source: env.source,
                    target,
                    kind: AmendmentKind::Correction { changes, reason },
                    effect: AmendmentEffect::UnknownTarget,
                }),
                Event::Retracted { target, reason } => t.amendments.push(Amendment {
                    seq: env.seq,
                    id: env.id,
                    recorded_at: env.recorded_at,
                    occurred_at: env.occurred_at,
                    actor: env.actor,
                    source: env.source,
                    target,
                    kind: AmendmentKind::Retraction { reason },
                    effect: AmendmentEffect::UnknownTarget,
                }),
                event => t.facts.push(Arc::new(Fact {
                    seq: env.seq,
                    id: env.id,
                    recorded_at: env.recorded_at,
                    occurred_at: env.occurred_at,
                    actor: env.actor,
                    source: env.source,
                    event,
                    corrected_by: Vec::new(),
                })),
            }
        }
        t.apply_amendments()?;
        Ok(t)
    }

    /// Applies the amendments in log order. Only the targeted facts are looked up, so a log
    /// without amendments costs nothing here.
    fn apply_amendments(&mut self) -> Result<(), ProjectionError> {
        if self.amendments.is_empty() {
            return Ok(());
        }
        let mut wanted: HashMap<&str, Option<usize>> = self
            .amendments
            .iter()
            .map(|a| (a.target.as_str(), None))
            .collect();
        for (i, f) in self.facts.iter().enumerate() {
            if let Some(slot) = wanted.get_mut(f.id.as_str()) {
                // Ids are unique in a log; should one repeat, the first holds.
                slot.get_or_insert(i);
            }
        }
        let targets: Vec<Option<usize>> = self
            .amendments
            .iter()
            .map(|a| wanted.get(a.target.as_str()).copied().flatten())
            .collect();
        drop(wanted);

        let mut retracted = vec![false; self.facts.len()];
        for (a, target) in self.amendments.iter_mut().zip(targets) {
            let Some(ix) = target.filter(|&ix| self.facts[ix].seq < a.seq) else {
                a.effect = AmendmentEffect::UnknownTarget;
                continue;
            };
            // The fold holds the only reference: `make_mut` never copies here.
            let fact = Arc::make_mut(&mut self.facts[ix]);
            if retracted[ix] {
                a.effect = AmendmentEffect::TargetRetracted {
                    target_seq: fact.seq,
                };
                continue;
            }
            match &a.kind {
                AmendmentKind::Retraction { .. } => retracted[ix] = true,
                AmendmentKind::Correction { changes, .. } => {
                    apply_correction(fact, changes).map_err(|message| {
                        ProjectionError::Correction {
                            seq: a.seq,
                            target: a.target.clone(),
                            message,
                        }
                    })?;
                    fact.corrected_by.push(a.seq);
                }
            }
            a.effect = AmendmentEffect::Applied {
                target_seq: fact.seq,
            };
        }
        if retracted.iter().any(|r| *r) {
            let all = std::mem::take(&mut self.facts);
            for (f, r) in all.into_iter().zip(retracted) {
                if r {
                    self.retracted.push(f);
                } else {
                    self.facts.push(f);
                }
            }
        }
        Ok(())
    }

    /// A timeline from its parts, as `versions::Versions` filters them at `as_of`: facts and
    /// retracted events in log order, amendments in log order with their effects, and the
    /// head of the log as of `as_of`.
    pub(crate) fn from_parts(
        facts: Vec<Arc<Fact>>,
        retracted: Vec<Arc<Fact>>,
        amendments: Vec<Amendment>,
        head_seq: u64,
        head_recorded_at: Option<DateTime<Utc>>,
        as_of: Option<DateTime<Utc>>,
    ) -> Timeline {
        Timeline {
            facts,
            retracted,
            amendments,
            head_seq,
            head_recorded_at,
            as_of,
            ..Timeline::default()
        }
    }

    /// The effective facts, in log order (amendments and retracted events excluded).
    pub fn facts(&self) -> &[Arc<Fact>] {
        &self.facts
    }

    /// The retracted events as they stood when retracted, in log order.
    pub fn retracted(&self) -> &[Arc<Fact>] {
        &self.retracted
    }

    /// Every correction and retraction in the prefix, in log order, with its effect.
    pub fn amendments(&self) -> &[Amendment] {
        &self.amendments
    }

    /// The seq of the last envelope in the prefix (0 for an empty prefix).
    pub fn head_seq(&self) -> u64 {
        self.head_seq
    }

    /// When the last envelope of the prefix was recorded.
    pub fn head_recorded_at(&self) -> Option<DateTime<Utc>> {
        self.head_recorded_at
    }

    /// The as-of bound the timeline was built with.
    pub fn as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }

    fn index(&self) -> &HashMap<String, SlotIx> {
        self.index.get_or_init(|| {
            let mut m = HashMap::with_capacity(
                self.facts.len() + self.retracted.len() + self.amendments.len(),
            );
            for (i, f) in self.facts.iter().enumerate() {
                m.entry(f.id.clone()).or_insert(SlotIx::Fact(i));
            }
            for (i, f) in self.retracted.iter().enumerate() {
                m.entry(f.id.clone()).or_insert(SlotIx::Retracted(i));
            }
            for (i, a) in self.amendments.iter().enumerate() {
                m.entry(a.id.clone()).or_insert(SlotIx::Amendment(i));
            }
            m
        })
    }

    fn by_target(&self) -> &HashMap<String, Vec<usize>> {
        self.by_target.get_or_init(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, a) in self.amendments.iter().enumerate() {
                m.entry(a.target.clone()).or_default().push(i);
            }
            m
        })
    }

    /// The effective form of an envelope that is not among this timeline's facts because the
    /// caller left it out of the build (e.g. a county-scale report that folds care events one
    /// at a time in a second scan of the same prefix): the amendments of this timeline that
    /// target `env.id` and come after it in log order are applied by the rules of
    /// [`Timeline::build`]. `Ok(None)` when it is retracted, is itself an amendment, or was
    /// recorded after the timeline's as-of bound. For the result to be right the timeline
    /// must have been built from a stream holding every amendment of the prefix.
    pub fn effective(&self, env: Envelope) -> Result<Option<Fact>, ProjectionError> {
        if self.as_of.is_some_and(|cut| env.recorded_at > cut)
            || matches!(env.event, Event::Corrected { .. } | Event::Retracted { .. })
        {
            return Ok(None);
        }
        let mut fact = Fact {
            seq: env.seq,
            id: env.id,
            recorded_at: env.recorded_at,
            occurred_at: env.occurred_at,
            actor: env.actor,
            source: env.source,
            event: env.event,
            corrected_by: Vec::new(),
        };
        let Some(ixs) = self.by_target().get(&fact.id) else {
            return Ok(Some(fact));
        };
        for &i in ixs {
            let a = &self.amendments[i];
            if a.seq <= fact.seq {
                continue;
            }
            match &a.kind {
                AmendmentKind::Retraction { .. } => return Ok(None),
                AmendmentKind::Correction { changes, .. } => {
                    apply_correction(&mut fact, changes).map_err(|message| {
                        ProjectionError::Correction {
                            seq: a.seq,
                            target: a.target.clone(),
                            message,
                        }
                    })?;
                    fact.corrected_by.push(a.seq);
                }
            }
        }
        Ok(Some(fact))
    }

    /// What the id names: an effective fact, a retracted event or an amendment.
    pub fn lookup(&self, id: &str) -> Option<Slot<'_>> {
        self.index().get(id).map(|s| match *s {
            SlotIx::Fact(i) => Slot::Fact(&self.facts[i]),
            SlotIx::Retracted(i) => Slot::Retracted(&self.retracted[i]),
            SlotIx::Amendment(i) => Slot::Amendment(&self.amendments[i]),
        })
    }

    /// The effective fact with this id (`None` when unknown, retracted or an amendment).
    pub fn fact(&self, id: &str) -> Option<&Fact> {
        match self.lookup(id) {
            Some(Slot::Fact(f)) => Some(f),
            _ => None,
        }
    }

    /// Whether the event with this id was retracted.
    pub fn is_retracted(&self, id: &str) -> bool {
        matches!(self.lookup(id), Some(Slot::Retracted(_)))
    }
}

/// Applies a correction's `changes` to a fact: each top-level field of the flat wire form
/// named in `changes` takes the new value (`occurred_at` included); `type`, `id` and `actor`
/// cannot change. The fact is untouched when the result is not a valid event.
pub(crate) fn apply_correction(
    fact: &mut Fact,
    changes: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let mut body = payload_of(&fact.event);
    let mut occurred_at = fact.occurred_at;
    for (k, v) in changes {
        match k.as_str() {
            "type" | "id" | "actor" => return Err(format!("field {k} cannot be corrected")),
            "occurred_at" => {
                let s = v.as_str().ok_or_else(|| {
                    "occurred_at: expected an RFC 3339 instant or a date".to_owned()
                })?;
                occurred_at = parse_instant(s).ok_or_else(|| {
                    format!("occurred_at: not an RFC 3339 instant or a date: {s:?}")
                })?;
            }
            _ => {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    let event = event_from_wire(fact.event.kind().as_str(), body).map_err(|e| e.to_string())?;
    fact.event = event;
    fact.occurred_at = occurred_at;
    Ok(())
}
