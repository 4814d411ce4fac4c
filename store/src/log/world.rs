//! The world's envelopes as the read models keep them (`W` values of the `scopes` tree):
//! every envelope a county-wide read needs whole — each one without a fact row, incident
//! reports and every amendment, about 2 % of a generated year — copied beside the fact rows,
//! so that such a read scans a few megabytes in order instead of fetching each envelope from
//! the cluster it was packed into (measured: the fetch was about a quarter of `report term
//! --county`'s samples; docs/read-models.md).
//!
//! Layout of one record (integers little-endian):
//! ```text
//! u64 seq ‖ 32 bytes: the hash stored beside the envelope in the log ‖ u32 n ‖ n bytes: body
//! ```
//! The body is the envelope encoded as this build encodes it (`Envelope::encode_body`), which
//! is the stored body for every envelope of the current schema and the upcast one for an
//! older schema's: so a record is not checked against the chain (the log is, by `verify`),
//! but by the check of the value that holds it, like every read model, and `verify` compares
//! it with what the log derives. Records are self-delimiting, so records written one after
//! another read back as the same records (values concatenate like postings).
//!
//! The amended rows (`T` values) are records of the same form, each after the seq of the
//! amendment that targets it (`u64 amendment seq ‖ record`): the events with a fact row that
//! a correction or retraction targets, copied when the amendment is appended, so a county-wide
//! read takes them in order too instead of fetching about 23,000 scattered envelopes.
//!
//! This module owns those layouts; it must never decide which envelopes are the world's or
//! which are amended (that is the read models' rule, `scopes`).

use events::envelope::{Envelope, Hash};

/// Bytes of a record before its body: seq, hash, body length.
const HEAD_BYTES: usize = 8 + 32 + 4;

/// Appends the record of `env` to `out`.
pub(super) fn encode(env: &Envelope, out: &mut Vec<u8>) {
    let body = env.encode_body();
    out.extend_from_slice(&env.seq.to_le_bytes());
    out.extend_from_slice(&env.hash.0);
    // An envelope is at most `MAX_EVENT_BYTES` (far below 4 GiB): the append refuses larger.
    let n = u32::try_from(body.len()).expect("an envelope's body fits in u32");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&body);
}

/// Appends the record of `target` amended by the amendment at `amendment` to `out`.
pub(super) fn encode_amended(amendment: u64, target: &Envelope, out: &mut Vec<u8>) {
    out.extend_from_slice(&amendment.to_le_bytes());
    encode(target, out);
}

/// One record, not yet decoded.
pub(super) struct Record<'a> {
    pub seq: u64,
    pub hash: Hash,
    pub body: &'a [u8],
}

impl Record<'_> {
    /// Appends the record's bytes to `out`, as `encode` wrote them.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.hash.0);
        let n = u32::try_from(self.body.len()).expect("read from a u32 length");
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(self.body);
    }

    /// The envelope, or why the record does not hold the envelope it names.
    pub(super) fn envelope(&self) -> Result<Envelope, String> {
        let env = Envelope::decode_body(self.body, self.hash).map_err(|e| e.to_string())?;
        if env.seq != self.seq {
            return Err(format!(
                "the record of seq {} holds seq {}",
                self.seq, env.seq
            ));
        }
        Ok(env)
    }
}

/// The records of `bytes`, in order; an `Err` (with the offset where the bad record starts)
/// ends the iteration.
pub(super) fn decode(bytes: &[u8]) -> impl Iterator<Item = Result<Record<'_>, usize>> + '_ {
    walk(bytes, record_at)
}

/// The records of `bytes` of amended rows, each with its amendment's seq, in order; an `Err`
/// (with the offset where the bad record starts) ends the iteration.
pub(super) fn decode_amended(
    bytes: &[u8],
) -> impl Iterator<Item = Result<(u64, Record<'_>), usize>> + '_ {
    walk(bytes, |rest| {
        let amendment = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let (r, len) = record_at(&rest[8..])?;
        Some(((amendment, r), 8 + len))
    })
}

/// The items `one` reads one after another from `bytes` (`one`: the item at the start of what
/// is left and its length, `None` when it does not read); an `Err` with the offset where one
/// fails ends the iteration.
fn walk<'a, T>(
    bytes: &'a [u8],
    one: impl Fn(&'a [u8]) -> Option<(T, usize)> + 'a,
) -> impl Iterator<Item = Result<T, usize>> + 'a {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= bytes.len() {
            return None;
        }
        match one(&bytes[at..]) {
            Some((item, len)) => {
                at += len;
                Some(Ok(item))
            }
            None => {
                failed = true;
                Some(Err(at))
            }
        }
    })
}

/// The record at the start of `rest` and its length in bytes.
fn record_at(rest: &[u8]) -> Option<(Record<'_>, usize)> {
    let head = rest.get(..HEAD_BYTES)?;
    let seq = u64::from_le_bytes(head[..8].try_into().ok()?);
    let hash = Hash(head[8..40].try_into().ok()?);
    let n = u32::from_le_bytes(head[40..44].try_into().ok()?) as usize;
    let body = rest.get(HEAD_BYTES..HEAD_BYTES.checked_add(n)?)?;
    Some((Record { seq, hash, body }, HEAD_BYTES + n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use events::envelope::{SCHEMA, Source};
    use events::event::Event;

    fn envelope(seq: u64, summary: &str) -> Envelope {
        let at = Utc
            .with_ymd_and_hms(2025, 10, 1, 8, 0, 0)
            .single()
            .expect("a time");
        Envelope {
            schema: SCHEMA,
            seq,
            id: format!("id-{seq}"),
            recorded_at: at,
            occurred_at: at,
            actor: "s001-t01".into(),
            source: Source::Cli,
            event: Event::SchoolRegistered {
                school: "s001".into(),
                name: summary.into(),
                county: "黔东县".into(),
                township: "城关镇".into(),
            },
            sealed: None,
            prev_hash: Hash([7; 32]),
            hash: Hash([seq as u8; 32]),
        }
    }

    #[test]
    fn records_written_one_after_another_read_back_as_their_envelopes() {
        let envs = [envelope(3, "一"), envelope(9, ""), envelope(12, "三")];
        let mut bytes = Vec::new();
        for e in &envs {
            encode(e, &mut bytes);
        }
        let back: Vec<Envelope> = decode(&bytes)
            .map(|r| r.expect("a record").envelope().expect("an envelope"))
            .collect();
        assert_eq!(back, envs);
    }

    #[test]
    fn amended_records_read_back_with_their_amendments() {
        let mut bytes = Vec::new();
        encode_amended(20, &envelope(3, "一"), &mut bytes);
        encode_amended(21, &envelope(3, "一"), &mut bytes);
        encode_amended(30, &envelope(9, "二"), &mut bytes);
        let back: Vec<(u64, u64)> = decode_amended(&bytes)
            .map(|r| r.map(|(a, r)| (a, r.seq)).expect("a record"))
            .collect();
        assert_eq!(back, vec![(20, 3), (21, 3), (30, 9)]);
        bytes.truncate(bytes.len() - 1);
        assert!(decode_amended(&bytes).last().expect("some").is_err());
    }

    #[test]
    fn a_cut_record_is_refused_where_it_starts() {
        let mut bytes = Vec::new();
        encode(&envelope(3, "一"), &mut bytes);
        let second = bytes.len();
        encode(&envelope(4, "二"), &mut bytes);
        bytes.pop();
        let got: Vec<Result<u64, usize>> = decode(&bytes).map(|r| r.map(|r| r.seq)).collect();
        assert_eq!(got, vec![Ok(3), Err(second)]);
    }

    #[test]
    fn a_record_naming_another_seq_than_its_envelope_is_refused() {
        let mut bytes = Vec::new();
        encode(&envelope(3, "一"), &mut bytes);
        bytes[0] = 4;
        let r = decode(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            r.envelope().err().as_deref(),
            Some("the record of seq 4 holds seq 3")
        );
    }
}
