//! Fact rows: the compact form of an event a quota may count (`EventKind::counts_toward_quota`),
//! as recorded — what the county-wide reads (the term report, the evaluation run) read of
//! each care record instead of its whole envelope.
//!
//! A row holds ids, instants and numbers only: the seq, the kind, `occurred_at`, the staff
//! member, the children, and per kind the aid in fen, or the incident with the instant it
//! happened, or the incident, the party told and when. Every one of those fields is public
//! (`personal::FIELDS`), so a row of a sealed envelope is the same as of a clear one and no
//! personal field is ever written into a row. A row is the event **as recorded**: an amendment
//! is applied by `projections::timeline`'s rule to the whole envelope, never to a row.
//!
//! Layout of one row (integers little-endian; a string is `u16 length ‖ UTF-8 bytes`, an
//! absent string the length `0xFFFF`):
//! ```text
//! u64 seq ‖ u8 kind (index in ROW_KINDS) ‖ i64 occurred_at (µs since the epoch)
//! ‖ string staff ‖ u16 children ‖ children × string
//! ‖ u8 detail: 0 none
//!              1 aid: i64 fen
//!              2 incident reported: string incident ‖ i64 happened_at (µs)
//!              3 incident notified: string incident ‖ u8 party (index in NotifiedParty::ALL)
//!                                   ‖ i64 notified_at (µs)
//! ```
//! Rows are self-delimiting, so rows written one after another read back as the same rows
//! (the store concatenates the rows of several appends into one value).
//!
//! This module owns that layout; it must never decide what a row means for a view (that is
//! `projections`' and `reports`').

use chrono::{DateTime, Utc};

use crate::envelope::Envelope;
use crate::event::{Event, EventKind, NotifiedParty};

/// The kinds a row is written for, in code order (a row's kind byte indexes it): the kinds a
/// quota may count. Changing this order changes the layout.
pub const ROW_KINDS: [EventKind; 17] = [
    EventKind::TalkHeld,
    EventKind::ParentCalled,
    EventKind::FamilyCallArranged,
    EventKind::GuardianContacted,
    EventKind::ClassTeacherContacted,
    EventKind::HomeVisited,
    EventKind::LetterWritten,
    EventKind::WarmthVisited,
    EventKind::Tutored,
    EventKind::CounselingHeld,
    EventKind::ActivityHeld,
    EventKind::AidGranted,
    EventKind::AwardGiven,
    EventKind::AcademicResultRecorded,
    EventKind::PhysicalTestRecorded,
    EventKind::IncidentReported,
    EventKind::IncidentNotified,
];

const NO_STRING: u16 = u16::MAX;

/// Why bytes do not read as rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fact row is malformed at byte {offset}: {expected}")]
pub struct RowError {
    /// Where the row that fails starts.
    pub offset: usize,
    /// What was expected there.
    pub expected: &'static str,
}

/// What a row carries beyond the fields every row has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail<'a> {
    /// Nothing (a talk, a visit …).
    None,
    /// Aid granted, in fen.
    Aid {
        /// The amount, exact to the fen.
        fen: i64,
    },
    /// An incident reported.
    Incident {
        /// The incident id.
        incident: &'a str,
        /// When it happened.
        happened_at: DateTime<Utc>,
    },
    /// A party told of an incident.
    Notified {
        /// The incident id.
        incident: &'a str,
        /// Who was told.
        party: NotifiedParty,
        /// When they were told.
        notified_at: DateTime<Utc>,
    },
}

/// One row, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    /// The event's seq.
    pub seq: u64,
    /// Its kind (one of `ROW_KINDS`).
    pub kind: EventKind,
    /// When it happened, as recorded.
    pub occurred_at: DateTime<Utc>,
    /// The staff member who did it, as recorded.
    pub staff: Option<&'a str>,
    children: Children<'a>,
    /// The kind's own fields.
    pub detail: Detail<'a>,
    /// The row as encoded.
    raw: &'a [u8],
}

/// The children of a row, encoded: iterate with [`Row::children`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Children<'a> {
    count: u16,
    bytes: &'a [u8],
}

impl<'a> Row<'a> {
    /// The children it is about, as recorded (an activity's every child; none for a
    /// notification, which names the incident).
    pub fn children(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.children.bytes;
        (0..self.children.count).map(move |_| {
            // Checked when the row was read: every child is a whole string.
            let (s, r) = string(rest).ok().flatten().map_or(("", &[][..]), |x| x);
            rest = r;
            s
        })
    }

    /// The first child, if any (every kind but an activity and a notification has exactly
    /// one).
    pub fn child(&self) -> Option<&'a str> {
        self.children().next()
    }

    /// The row as encoded (what a comparison of two sets of rows compares).
    pub fn bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// Whether an event of this kind has a row (`encode` writes one): the kinds a quota may count.
pub fn has_row(kind: EventKind) -> bool {
    code_of(kind).is_some()
}

fn code_of(kind: EventKind) -> Option<u8> {
    ROW_KINDS.iter().position(|k| *k == kind).map(|i| i as u8)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Ids are a few bytes; an envelope is at most 16 KiB, so every field fits a u16 length
    // short of the marker for "absent".
    let len = u16::try_from(s.len())
        .unwrap_or(NO_STRING - 1)
        .min(NO_STRING - 1);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&NO_STRING.to_le_bytes()),
    }
}

fn put_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.extend_from_slice(&t.timestamp_micros().to_le_bytes());
}

/// Appends the row of `env` to `out`; `false` (and nothing written) when its kind has none.
pub fn encode(env: &Envelope, out: &mut Vec<u8>) -> bool {
    let kind = env.event.kind();
    let Some(code) = code_of(kind) else {
        return false;
    };
    out.extend_from_slice(&env.seq.to_le_bytes());
    out.push(code);
    put_time(out, env.occurred_at);
    put_opt_str(out, env.event.staff());
    let children = env.event.children();
    // A row holds at most u16::MAX - 1 children; an envelope of 16 KiB cannot name more.
    let count = u16::try_from(children.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for c in children.iter().take(usize::from(count)) {
        put_str(out, c);
    }
    match &env.event {
        Event::AidGranted { amount_yuan, .. } => {
            out.push(1);
            out.extend_from_slice(&amount_yuan.fen().to_le_bytes());
        }
        Event::IncidentReported {
            incident,
            happened_at,
            ..
        } => {
            out.push(2);
            put_str(out, incident);
            put_time(out, *happened_at);
        }
        Event::IncidentNotified {
            incident,
            party,
            notified_at,
            ..
        } => {
            out.push(3);
            put_str(out, incident);
            let p = NotifiedParty::ALL
                .iter()
                .position(|x| x == party)
                .unwrap_or(0);
            out.push(p as u8);
            put_time(out, *notified_at);
        }
        _ => out.push(0),
    }
    true
}

/// A string at the start of `b` and what follows it; `Ok(None)` for the absent marker.
fn string(b: &[u8]) -> Result<Option<(&str, &[u8])>, &'static str> {
    let (len, rest) = u16_at(b).ok_or("a string's length")?;
    if len == NO_STRING {
        return Ok(None);
    }
    let len = usize::from(len);
    let bytes = rest.get(..len).ok_or("a string's bytes")?;
    let s = std::str::from_utf8(bytes).map_err(|_| "a string in UTF-8")?;
    Ok(Some((s, &rest[len..])))
}

fn u16_at(b: &[u8]) -> Option<(u16, &[u8])> {
    let v = b.get(..2)?;
    Some((u16::from_le_bytes([v[0], v[1]]), &b[2..]))
}

fn u64_at(b: &[u8]) -> Option<(u64, &[u8])> {
    let v: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_le_bytes(v), &b[8..]))
}

fn time_at(b: &[u8]) -> Result<(DateTime<Utc>, &[u8]), &'static str> {
    let (v, rest) = u64_at(b).ok_or("an instant")?;
    let t = DateTime::from_timestamp_micros(v as i64).ok_or("an instant in range")?;
    Ok((t, rest))
}

/// One row at the start of `b`, and what follows it.
fn row(b: &[u8]) -> Result<(Row<'_>, &[u8]), &'static str> {
    let (seq, rest) = u64_at(b).ok_or("a seq")?;
    let (&code, rest) = rest.split_first().ok_or("a kind")?;
    let kind = *ROW_KINDS.get(usize::from(code)).ok_or("a kind of row")?;
    let (occurred_at, rest) = time_at(rest)?;
    let (staff, rest) = match string(rest)? {
        Some((s, r)) => (Some(s), r),
        None => (None, &rest[2..]),
    };
    let (count, rest) = u16_at(rest).ok_or("a count of children")?;
    let start = rest;
    let mut after = rest;
    for _ in 0..count {
        let (_, r) = string(after)?.ok_or("a child")?;
        after = r;
    }
    let children = Children {
        count,
        bytes: &start[..start.len() - after.len()],
    };
    let (&tag, rest) = after.split_first().ok_or("a detail")?;
    let (detail, rest) = match tag {
        0 => (Detail::None, rest),
        1 => {
            let (fen, rest) = u64_at(rest).ok_or("an amount")?;
            (Detail::Aid { fen: fen as i64 }, rest)
        }
        2 => {
            let (incident, rest) = string(rest)?.ok_or("an incident")?;
            let (happened_at, rest) = time_at(rest)?;
            (
                Detail::Incident {
                    incident,
                    happened_at,
                },
                rest,
            )
        }
        3 => {
            let (incident, rest) = string(rest)?.ok_or("an incident")?;
            let (&p, rest) = rest.split_first().ok_or("a party")?;
            let party = *NotifiedParty::ALL
                .get(usize::from(p))
                .ok_or("a party told")?;
            let (notified_at, rest) = time_at(rest)?;
            (
                Detail::Notified {
                    incident,
                    party,
                    notified_at,
                },
                rest,
            )
        }
        _ => return Err("a detail of 0 to 3"),
    };
    Ok((
        Row {
            seq,
            kind,
            occurred_at,
            staff,
            children,
            detail,
            raw: &b[..b.len() - rest.len()],
        },
        rest,
    ))
}

/// The rows of `bytes` (rows written one after another), in order; the first malformed one
/// ends the iteration with its error.
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = Result<Row<'_>, RowError>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let offset = bytes.len() - rest.len();
        match row(rest) {
            Ok((r, after)) => {
                rest = after;
                Some(Ok(r))
            }
            Err(expected) => {
                rest = &[];
                Some(Err(RowError { offset, expected }))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Hash, Source};
    use crate::event::{Mood, Yuan};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn envelope(seq: u64, occurred_us: i64, event: Event) -> Envelope {
        Envelope {
            schema: crate::SCHEMA,
            seq,
            id: format!("e{seq}"),
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            occurred_at: DateTime::from_timestamp_micros(occurred_us).unwrap(),
            actor: "t".into(),
            source: Source::Cli,
            event,
            sealed: None,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        }
    }

    fn id() -> impl Strategy<Value = String> {
        "[a-z0-9\\-一二三]{1,12}"
    }

    fn instant() -> impl Strategy<Value = i64> {
        // 1990 to 2100, to the microsecond.
        631_152_000_000_000i64..4_102_444_800_000_000
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (id(), id()).prop_map(|(staff, child)| Event::TalkHeld {
                staff,
                child,
                topic: "学习".into(),
                summary: "谈话".into(),
                mood: Mood::Ok,
                follow_up: None,
            }),
            (id(), proptest::collection::vec(id(), 0..6)).prop_map(|(staff, children)| {
                Event::ActivityHeld {
                    staff,
                    children,
                    name: "活动".into(),
                    kind: "文体".into(),
                }
            }),
            (id(), id(), 0i64..10_000_000).prop_map(|(staff, child, fen)| Event::AidGranted {
                staff,
                child,
                kind: "助学".into(),
                amount_yuan: Yuan::from_fen(fen).unwrap(),
            }),
            (id(), id(), id(), instant()).prop_map(|(staff, child, incident, t)| {
                Event::IncidentReported {
                    staff,
                    child,
                    incident,
                    category: "安全".into(),
                    description: "摔倒".into(),
                    severity: "轻".into(),
                    happened_at: DateTime::from_timestamp_micros(t).unwrap(),
                }
            }),
            (id(), id(), 0usize..4, instant()).prop_map(|(staff, incident, p, t)| {
                Event::IncidentNotified {
                    staff,
                    incident,
                    party: NotifiedParty::ALL[p],
                    notified_at: DateTime::from_timestamp_micros(t).unwrap(),
                }
            }),
        ]
    }

    /// What a row must say of its envelope.
    fn expected(env: &Envelope) -> (u64, EventKind, DateTime<Utc>, Option<String>, Vec<String>) {
        (
            env.seq,
            env.event.kind(),
            env.occurred_at,
            env.event.staff().map(str::to_owned),
            env.event.children().to_vec(),
        )
    }

    fn got(r: &Row<'_>) -> (u64, EventKind, DateTime<Utc>, Option<String>, Vec<String>) {
        (
            r.seq,
            r.kind,
            r.occurred_at,
            r.staff.map(str::to_owned),
            r.children().map(str::to_owned).collect(),
        )
    }

    fn detail_of(env: &Envelope) -> Detail<'_> {
        match &env.event {
            Event::AidGranted { amount_yuan, .. } => Detail::Aid {
                fen: amount_yuan.fen(),
            },
            Event::IncidentReported {
                incident,
                happened_at,
                ..
            } => Detail::Incident {
                incident,
                happened_at: *happened_at,
            },
            Event::IncidentNotified {
                incident,
                party,
                notified_at,
                ..
            } => Detail::Notified {
                incident,
                party: *party,
                notified_at: *notified_at,
            },
            _ => Detail::None,
        }
    }

    proptest! {
        /// Rows written one after another read back, each equal to what its envelope says.
        #[test]
        fn rows_read_back_as_their_envelopes_say(
            evs in proptest::collection::vec((instant(), event()), 1..20),
        ) {
            let envs: Vec<Envelope> = evs
                .into_iter()
                .enumerate()
                .map(|(i, (t, e))| envelope(i as u64 + 1, t, e))
                .collect();
            let mut bytes = Vec::new();
            for e in &envs {
                prop_assert!(encode(e, &mut bytes));
            }
            let rows: Vec<Row<'_>> = decode(&bytes).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(rows.len(), envs.len());
            for (r, e) in rows.iter().zip(&envs) {
                prop_assert_eq!(got(r), expected(e));
                prop_assert_eq!(r.detail, detail_of(e));
            }
            // Any cut inside the last row is refused, never read as a shorter row.
            let mut last = Vec::new();
            encode(envs.last().unwrap(), &mut last);
            let whole = bytes.len();
            for cut in (whole - last.len() + 1)..whole {
                let read: Vec<_> = decode(&bytes[..cut]).collect();
                prop_assert!(read.last().unwrap().is_err(), "cut at {}", cut);
            }
        }
    }

    #[test]
    fn the_kinds_with_a_row_are_the_kinds_a_quota_may_count() {
        for kind in EventKind::ALL {
            assert_eq!(has_row(kind), kind.counts_toward_quota(), "{kind:?}");
        }
    }

    #[test]
    fn an_event_no_quota_counts_has_no_row() {
        let env = envelope(
            1,
            0,
            Event::Retracted {
                target: "e0".into(),
                reason: "重复".into(),
            },
        );
        let mut out = Vec::new();
        assert!(!encode(&env, &mut out));
        assert!(out.is_empty());
        assert!(
            EventKind::ALL
                .iter()
                .all(|k| has_row(*k) == code_of(*k).is_some())
        );
    }
}
