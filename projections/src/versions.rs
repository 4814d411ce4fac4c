//! Bitemporal versions: for every effective fact, the recorded-time interval in which each of
//! its versions was the current one (rules §4.7: `recorded_at` never decreases along the log,
//! so "as known at T" is a prefix). A correction recorded at `t` closes the version it
//! amends at `t` and opens the corrected one at `t`; a retraction recorded at `t` closes the
//! last version and opens none. The state as of `T` is then a filter — the versions whose
//! interval contains `T` — not a replay of the prefix.
//!
//! This module owns that bookkeeping over envelopes given in log order. It applies
//! corrections with `timeline`'s own rule (so every correction, including those that change
//! `child`, `staff`, `occurred_at` or a transfer's `school`, means the same here as in the
//! replay) and gives back [`Timeline`]s; it must never read anything but the envelopes it is
//! given. `Timeline::build` stays the reference: a property test checks that
//! `Versions::build(log).timeline(T)` equals `Timeline::build(log, T)` for many `T`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use events::{Envelope, Event};

use crate::ProjectionError;
use crate::timeline::{
    Amendment, AmendmentEffect, AmendmentKind, Fact, Timeline, apply_correction,
};

/// Where in the log a version was opened or closed: the seq and `recorded_at` of the envelope
/// that did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The envelope's seq.
    pub seq: u64,
    /// The envelope's recorded time.
    pub recorded_at: DateTime<Utc>,
}

impl Stamp {
    fn of(env: &Envelope) -> Stamp {
        Stamp {
            seq: env.seq,
            recorded_at: env.recorded_at,
        }
    }

    /// Whether this stamp is within the prefix known at `as_of` (every stamp when `None`).
    fn known_at(&self, as_of: Option<DateTime<Utc>>) -> bool {
        as_of.is_none_or(|t| self.recorded_at <= t)
    }
}

/// One version of a fact: its content, and the interval `[from, until)` of recorded time in
/// which it was the current one (`until` is `None` while it still is).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The fact as this version has it (its `corrected_by` lists the corrections applied so
    /// far).
    pub fact: Arc<Fact>,
    /// The envelope that opened it: the event itself, or the correction that made it.
    pub from: Stamp,
    /// The amendment that closed it (a later correction or a retraction).
    pub until: Option<Stamp>,
}

impl Version {
    /// Whether this version was the current one as of `as_of` (the latest when `None`).
    pub fn current_at(&self, as_of: Option<DateTime<Utc>>) -> bool {
        self.from.known_at(as_of) && self.until.is_none_or(|u| !u.known_at(as_of))
    }
}

/// Every version of one event, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The versions; consecutive ones meet (`versions[i].until == Some(versions[i+1].from)`).
    pub versions: Vec<Version>,
    /// The retraction that ended the last version, if one did.
    pub retracted_by: Option<Stamp>,
}

/// The versions of every event of a run of envelopes, and the amendments with their effect.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    /// One history per non-amendment event, in log order.
    histories: Vec<History>,
    /// Every amendment in log order, its effect decided by what preceded it.
    amendments: Vec<Amendment>,
    /// The envelopes given, as stamps, in log order (for the head as of a time).
    stamps: Vec<Stamp>,
    /// The first correction that could not be applied: a timeline as of a time at or after it
    /// fails as the replay does.
    failure: Option<(Stamp, ProjectionError)>,
    /// id → index into `histories` (the first event with an id holds, as in the replay).
    by_id: HashMap<String, usize>,
}

impl Versions {
    /// Folds envelopes given in log order (seq ascending, `recorded_at` never decreasing) into
    /// versions.
    pub fn build(envelopes: impl IntoIterator<Item = Envelope>) -> Versions {
        let mut v = Versions::default();
        v.extend(envelopes);
        v
    }

    /// Folds more envelopes, each after every envelope given so far in the log (seq above
    /// the last one's): the result equals `build` of all of them together (a service keeps a
    /// school's versions and folds what was appended since).
    pub fn extend(&mut self, envelopes: impl IntoIterator<Item = Envelope>) {
        let v = self;
        for env in envelopes {
            let stamp = Stamp::of(&env);
            v.stamps.push(stamp);
            let (target, kind) = match env.event {
                Event::Corrected {
                    target,
                    changes,
                    reason,
                } => (target, AmendmentKind::Correction { changes, reason }),
                Event::Retracted { target, reason } => {
                    (target, AmendmentKind::Retraction { reason })
                }
                event => {
                    let ix = v.histories.len();
                    v.by_id.entry(env.id.clone()).or_insert(ix);
                    v.histories.push(History {
                        versions: vec![Version {
                            fact: Arc::new(Fact {
                                seq: env.seq,
                                id: env.id,
                                recorded_at: env.recorded_at,
                                occurred_at: env.occurred_at,
                                actor: env.actor,
                                source: env.source,
                                event,
                                corrected_by: Vec::new(),
                            }),
                            from: stamp,
                            until: None,
                        }],
                        retracted_by: None,
                    });
                    continue;
                }
            };
            let mut amendment = Amendment {
                seq: env.seq,
                id: env.id,
                recorded_at: env.recorded_at,
                occurred_at: env.occurred_at,
                actor: env.actor,
                source: env.source,
                target,
                kind,
                effect: AmendmentEffect::UnknownTarget,
            };
            if v.failure.is_none()
                && let Some(&ix) = v.by_id.get(&amendment.target)
            {
                amendment.effect = v.amend(ix, &amendment, stamp);
            }
            v.amendments.push(amendment);
        }
    }

    /// How many envelopes were folded.
    pub fn folded(&self) -> usize {
        self.stamps.len()
    }

    /// The seq of the last envelope folded.
    pub fn last_folded(&self) -> Option<u64> {
        self.stamps.last().map(|s| s.seq)
    }

    /// Whether the envelope at `seq` was folded (the stamps are in log order: seq ascending).
    pub fn has_folded(&self, seq: u64) -> bool {
        self.stamps.binary_search_by_key(&seq, |s| s.seq).is_ok()
    }

    /// Applies one amendment to the history at `ix`; returns its effect.
    fn amend(&mut self, ix: usize, a: &Amendment, stamp: Stamp) -> AmendmentEffect {
        let history = &mut self.histories[ix];
        let last = history.versions.len() - 1;
        let target_seq = history.versions[last].fact.seq;
        if history.retracted_by.is_some() {
            return AmendmentEffect::TargetRetracted { target_seq };
        }
        match &a.kind {
            AmendmentKind::Retraction { .. } => {
                history.versions[last].until = Some(stamp);
                history.retracted_by = Some(stamp);
            }
            AmendmentKind::Correction { changes, .. } => {
                let mut fact = Fact::clone(&history.versions[last].fact);
                if let Err(message) = apply_correction(&mut fact, changes) {
                    self.failure = Some((
                        stamp,
                        ProjectionError::Correction {
                            seq: a.seq,
                            target: a.target.clone(),
                            message,
                        },
                    ));
                    // Like the replay, nothing after a failing correction is applied: a
                    // timeline at or after it is refused (`timeline`).
                    return AmendmentEffect::UnknownTarget;
                }
                fact.corrected_by.push(a.seq);
                history.versions[last].until = Some(stamp);
                history.versions.push(Version {
                    fact: Arc::new(fact),
                    from: stamp,
                    until: None,
                });
            }
        }
        AmendmentEffect::Applied { target_seq }
    }

    /// Every event's versions, in log order.
    pub fn histories(&self) -> &[History] {
        &self.histories
    }

    /// The effective facts as of `as_of` (all recorded when `None`), in log order: the
    /// versions current then. A filter, not a replay.
    pub fn facts_at(&self, as_of: Option<DateTime<Utc>>) -> impl Iterator<Item = &Fact> + '_ {
        self.histories.iter().filter_map(move |h| {
            h.versions
                .iter()
                .rev()
                .find(|v| v.current_at(as_of))
                .map(|v| &*v.fact)
        })
    }

    /// The timeline as of `as_of`, equal to `Timeline::build` over the same envelopes: the
    /// facts current then, the events retracted by then (as they stood when retracted), the
    /// amendments recorded by then. Its head is the last envelope given that was recorded
    /// by `as_of`; [`Versions::timeline_with_head`] sets another (the log's own).
    pub fn timeline(&self, as_of: Option<DateTime<Utc>>) -> Result<Timeline, ProjectionError> {
        let head = self
            .stamps
            .iter()
            .take_while(|s| s.known_at(as_of))
            .last()
            .map(|s| (s.seq, s.recorded_at));
        self.timeline_with_head(as_of, head.map_or(0, |h| h.0), head.map(|h| h.1))
    }

    /// As [`Versions::timeline`], with the head given: when the versions are a part of the log
    /// (one school's), the head a view reports is the whole log's as of `as_of`.
    pub fn timeline_with_head(
        &self,
        as_of: Option<DateTime<Utc>>,
        head_seq: u64,
        head_recorded_at: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ProjectionError> {
        if let Some((stamp, e)) = &self.failure
            && stamp.known_at(as_of)
        {
            return Err(e.clone());
        }
        let mut facts = Vec::new();
        let mut retracted = Vec::new();
        for h in &self.histories {
            if let Some(v) = h.versions.iter().rev().find(|v| v.current_at(as_of)) {
                facts.push(v.fact.clone());
            } else if h.retracted_by.is_some_and(|r| r.known_at(as_of)) {
                // Retracted by then: as it stood just before the retraction.
                if let Some(last) = h.versions.last() {
                    retracted.push(last.fact.clone());
                }
            }
        }
        let amendments = self
            .amendments
            .iter()
            .take_while(|a| as_of.is_none_or(|t| a.recorded_at <= t))
            .cloned()
            .collect();
        Ok(Timeline::from_parts(
            facts,
            retracted,
            amendments,
            head_seq,
            head_recorded_at,
            as_of,
        ))
    }
}
