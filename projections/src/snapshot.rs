//! Checkpoints of the timeline fold, so whole-school views can resume from a stored state
//! instead of replaying the log from seq 1.
//!
//! The state is the *compacted log*: every event of the prefix as it stands (corrections
//! applied; a retracted event as it stood when retracted) and every amendment as recorded, in
//! log order with their seqs. Replaying it reproduces the timeline exactly: a correction sets
//! top-level fields, so re-applying the corrections to their own result changes nothing, and
//! retractions and unknown targets fall out the same way. `World` is not stored: it is a cheap
//! fold of the timeline (`World::build`).
//!
//! A snapshot carries a fingerprint of the projection code; a snapshot with another
//! fingerprint is refused (the caller replays from scratch and stores a new one). This module
//! owns the snapshot's shape and the resume rule; it must never read the store or the clock.
//! Encoding is the caller's (serde; the store would use rmp-serde named, as for envelopes).

use chrono::{DateTime, Utc};
use events::{Envelope, Event, Hash, SCHEMA};
use serde::{Deserialize, Serialize};

use crate::ProjectionError;
use crate::timeline::{AmendmentKind, Fact, Timeline};

/// Bumped by hand whenever a fold's meaning changes (timeline, world, views): a snapshot taken
/// by other code must not be resumed.
pub const PROJECTION_CODE: &str = "fold-1";

/// The fingerprint stored in every snapshot: crate version and [`PROJECTION_CODE`].
pub fn fingerprint() -> String {
    format!(
        "projections/{}/{}",
        env!("CARGO_PKG_VERSION"),
        PROJECTION_CODE
    )
}

/// Why a snapshot cannot be resumed or decoded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Taken by other projection code.
    #[error("snapshot fingerprint {found} does not match this code's {expected}")]
    Fingerprint {
        /// The snapshot's fingerprint.
        found: String,
        /// This code's [`fingerprint`].
        expected: String,
    },
    /// The envelopes after the snapshot do not continue it.
    #[error("snapshot ends at seq {head_seq}, but the next envelope given has seq {found}")]
    Gap {
        /// The last seq reached: the snapshot's, or that of the last envelope that continued it.
        head_seq: u64,
        /// The seq of the envelope that does not follow it (not `head_seq + 1`).
        found: u64,
    },
    /// The as-of bound cuts inside the snapshot: replay from the log instead.
    #[error("as-of bound {as_of} is before the snapshot's last recorded time {head_recorded_at}")]
    AsOfInside {
        /// The as-of bound asked for.
        as_of: DateTime<Utc>,
        /// The `recorded_at` of the snapshot's last envelope.
        head_recorded_at: DateTime<Utc>,
    },
    /// Building the timeline failed (a correction that does not apply).
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// A checkpoint of the timeline fold at `head_seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`fingerprint`] of the code that took it; another code's snapshot is refused.
    pub fingerprint: String,
    /// The last seq folded (0 for an empty log).
    pub head_seq: u64,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    /// The `recorded_at` of the envelope at `head_seq` (`None` for an empty log).
    pub head_recorded_at: Option<DateTime<Utc>>,
    /// The compacted log, in log order. Invariant: seqs increase and end at `head_seq`.
    entries: Vec<Envelope>,
}

fn envelope_of(f: &Fact) -> Envelope {
    Envelope {
        sealed: None,
        schema: SCHEMA,
        seq: f.seq,
        id: f.id.clone(),
        recorded_at: f.recorded_at,
        occurred_at: f.occurred_at,
        actor: f.actor.clone(),
        source: f.source.clone(),
        event: f.event.clone(),
        // Hashes belong to the log, which keeps them; the fold never reads them.
        prev_hash: Hash::ZERO,
        hash: Hash::ZERO,
    }
}

impl Snapshot {
    /// The checkpoint of a timeline (built with or without an as-of bound).
    pub fn take(timeline: &Timeline) -> Snapshot {
        let mut entries: Vec<Envelope> = timeline
            .facts()
            .iter()
            .chain(timeline.retracted())
            .map(envelope_of)
            .collect();
        entries.extend(timeline.amendments().iter().map(|a| Envelope {
            sealed: None,
            schema: SCHEMA,
            seq: a.seq,
            id: a.id.clone(),
            recorded_at: a.recorded_at,
            occurred_at: a.occurred_at,
            actor: a.actor.clone(),
            source: a.source.clone(),
            event: match &a.kind {
                AmendmentKind::Correction { changes, reason } => Event::Corrected {
                    target: a.target.clone(),
                    changes: changes.clone(),
                    reason: reason.clone(),
                },
                AmendmentKind::Retraction { reason } => Event::Retracted {
                    target: a.target.clone(),
                    reason: reason.clone(),
                },
            },
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        }));
        entries.sort_by_key(|e| e.seq);
        Snapshot {
            fingerprint: fingerprint(),
            head_seq: timeline.head_seq(),
            head_recorded_at: timeline.head_recorded_at(),
            entries,
        }
    }

    /// The timeline of the snapshot followed by `more` (envelopes in log order; those at or
    /// before `head_seq` are skipped, the next must be `head_seq + 1`), cut at `as_of`.
    /// Equals `Timeline::build` over the whole log with the same bound.
    pub fn resume<'a>(
        &self,
        more: impl IntoIterator<Item = &'a Envelope>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, SnapshotError> {
        if self.fingerprint != fingerprint() {
            return Err(SnapshotError::Fingerprint {
                found: self.fingerprint.clone(),
                expected: fingerprint(),
            });
        }
        if let (Some(cut), Some(head)) = (as_of, self.head_recorded_at)
            && cut < head
        {
            return Err(SnapshotError::AsOfInside {
                as_of: cut,
                head_recorded_at: head,
            });
        }
        let mut next = self.head_seq + 1;
        let mut tail: Vec<&Envelope> = Vec::new();
        for e in more {
            if e.seq <= self.head_seq {
                continue;
            }
            if e.seq != next {
                return Err(SnapshotError::Gap {
                    head_seq: next - 1,
                    found: e.seq,
                });
            }
            next += 1;
            tail.push(e);
        }
        Ok(Timeline::build(self.entries.iter().chain(tail), as_of)?)
    }

    /// The number of envelopes the snapshot holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the snapshot holds nothing (an empty log).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
