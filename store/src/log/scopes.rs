//! The read models (`scopes` tree): for every school, the seqs of every envelope a read of
//! that school needs — its registry, and every event (and amendment) about a child or staff
//! member who has ever belonged to it, in any version — so a school's views fetch that school,
//! not the county. The bitemporal versions are folded from those envelopes by
//! `projections::versions`; as of any recorded time a school's read is a filter of them.
//!
//! Layout (every value ends with the first 8 bytes of SHA-256 of `key ‖ payload`, checked on
//! every read: a changed or moved value is damage, never served):
//! - `S ‖ school ‖ 0x00 ‖ BE last seq of the batch ‖ BE n` → LE seqs: the school's postings;
//! - `E ‖ BE bucket ‖ BE last seq ‖ BE n` → the postings of the entities (a child `c`, a staff
//!   member `s`) of one of 1,024 buckets (`index::posting_bucket` of `kind ‖ id`): entries
//!   `LE u16 length ‖ kind ‖ id ‖ LE u32 count ‖ count LE seqs`, an entity's seqs being every
//!   envelope about it, so a school it joins later gets its past. A batch writes a value per
//!   bucket it touches, not one per entity (a batch names most of a county's children);
//! - `G ‖ kind ‖ id ‖ 0x00 ‖ BE last seq ‖ BE n` → LE seqs: the entity's registry events (a
//!   staff member's joining and leaving; a child's registration, file changes and status
//!   changes) and their amendments;
//! - `M ‖ kind ‖ id` → the schools the entity has ever belonged to (rmp list);
//! - `R ‖ kind ‖ id` → the other schools that refer to it (they read its registry events);
//! - `Y ‖ school ‖ 0x00 ‖ …` → LE seqs: the school's own registry (registration, terms,
//!   policies) and their amendments;
//! - `L ‖ school` → the other schools that read it (they share a child or staff member);
//! - `A ‖ BE seq` → what amendments added to the event at that seq: entities and schools its
//!   corrections named, and the amendments' seqs (rmp);
//! - `I ‖ incident` → the incident's child;
//! - `C ‖ county ‖ 0x00 ‖ school` → the school is in that county;
//! - `F ‖ 0x00 ‖ BE last seq of the batch ‖ BE n` → fact rows (`events::row`): the compact
//!   form, as recorded, of every event a quota may count, for the county-wide reads (the term
//!   report); rows are self-delimiting, so values concatenate like postings;
//! - `W ‖ 0x00 ‖ BE last seq of the batch ‖ BE n` → the world's envelopes themselves
//!   (`world`: seq, stored hash, body), every one without a row, incident reports (the world
//!   maps an incident to its child) and every amendment — with the rows, what a county-wide
//!   read needs of the log, read in order (docs/read-models.md);
//! - `T ‖ 0x00 ‖ BE last seq of the batch ‖ BE n` → the amended rows (`world`: amendment seq,
//!   then the target's seq, stored hash and body): every event with a fact row that an
//!   amendment of the batch targets, as recorded, so the read re-reads them in order too;
//! - `0xFE` → the layout's version (`FORMAT`): a tree of another version is rebuilt on open;
//! - `0xFF` → the `through` marker, as in every derived tree.
//!
//! The rule (`Scoper::add`): an event goes to the schools of every child and staff member it
//! names (an amendment: those of its target, as first recorded and as every correction named
//! them) and to the school it names itself (registry kinds; a transfer's new school). A child
//! or staff member joins a school when a registration, a transfer or a staff joining names it
//! (or a correction of one does): then all its postings so far are copied to that school, and
//! every child or staff member named with it in those envelopes (as recorded, or as a
//! correction named them) is referred to by that school. A school that gets an envelope naming a child or staff member who is not its own (a mentor
//! at the old school of a transferred child, a teacher of another school a correction named)
//! refers to them: it gets their registry events, past and future, so its world knows who
//! they are.
//! Membership only grows, so as of any time a school's postings hold all it needs and more;
//! the views filter by their own rules.
//!
//! This module owns that layout and the rule; it must never interpret events beyond children,
//! staff, schools, counties, incidents and amendment targets (the meaning of a correction is
//! `projections`'; what a fact row holds is `events::row`'s).

use std::collections::BTreeSet;

use compact_str::CompactString;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use events::envelope::Envelope;
use events::event::Event;

use super::error::{StoreError, damaged};
use super::{Store, THROUGH_KEY};
use crate::segment;

/// The key of the layout's version.
pub(super) const FORMAT_KEY: &[u8] = &[0xFE];
/// The layout's version. 2: entities' postings by bucket, no stored neighbour lists (a join
/// derives them from the entity's postings); 3: the fact rows (`F`) and the world's postings
/// (`W`); 4: the world's envelopes themselves in `W`, not their seqs; 5: the amended rows
/// (`T`). A tree without this marker, or with another, is rebuilt on open.
pub(super) const FORMAT: &[u8] = b"5";

/// The prefix of the fact rows' values (`F ‖ 0x00 ‖ BE last seq of the batch ‖ BE n`).
const ROWS_PREFIX: &[u8] = b"F\0";
/// The prefix of the amendment records (`A ‖ BE seq`).
const AMENDED_PREFIX: &[u8] = b"A";
/// The prefix of the world's envelopes (`W ‖ 0x00 ‖ BE last seq of the batch ‖ BE n`).
const WORLD_PREFIX: &[u8] = b"W\0";
/// The prefix of the amended rows (`T ‖ 0x00 ‖ BE last seq of the batch ‖ BE n`).
const TARGETS_PREFIX: &[u8] = b"T\0";
/// A value of fact rows or of the world's envelopes is closed once it passes this size (far
/// below sled's blob threshold).
const ROWS_VALUE_BYTES: usize = 8 * 1024;

/// Values of fact rows read and checked ahead of the rows' decoding (`Store::fact_rows`):
/// 512 KiB at most.
const ROWS_AHEAD: usize = 64;

/// Seqs per posting value (8 KiB of seqs, far below sled's blob threshold).
const SEQS_PER_VALUE: usize = 1024;
/// Bytes of the check appended to every value.
const CHECK_BYTES: usize = 8;

/// A key of the maps the rule probes for every envelope (`M ‖ entity`, `S ‖ school ‖ 0`,
/// `E ‖ entity ‖ 0`), held inline up to 24 bytes (every generated and real id fits): a probe
/// that hits compares bytes in the table's own slot instead of following a pointer to a key
/// allocated elsewhere, which at county scale (36,000 entities) is a cache miss per probe.
/// It hashes and compares as the byte slice it holds, so a map of them is probed by `&[u8]`.
type Key = SmallVec<[u8; 24]>;

/// A school's id in a list the rule reads for every envelope (`M`): inline, as `Key`.
type School = CompactString;

/// A child or a staff member, as `kind ‖ id` (`c` child, `s` staff).
type Entity = Key;

fn child(id: &str) -> Entity {
    let mut k = Entity::new();
    k.push(b'c');
    k.extend_from_slice(id.as_bytes());
    k
}

fn staff(id: &str) -> Entity {
    let mut k = Entity::new();
    k.push(b's');
    k.extend_from_slice(id.as_bytes());
    k
}

/// What the amendments of one event added to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Amended {
    /// Entities its corrections named that it did not name as recorded (`kind ‖ id`).
    entities: Vec<Vec<u8>>,
    /// Schools its corrections named.
    schools: Vec<String>,
    /// The seqs of its amendments, in log order.
    amendments: Vec<u64>,
}

/// The check of a value stored under `key`.
fn check(key: &[u8], payload: &[u8]) -> [u8; CHECK_BYTES] {
    let mut h = Sha256::new();
    h.update((key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(payload);
    h.finalize()[..CHECK_BYTES]
        .try_into()
        .expect("8 bytes of a digest")
}

/// A value with its check.
pub(super) fn sealed(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = payload.to_vec();
    v.extend_from_slice(&check(key, payload));
    v
}

/// The seqs of posting values (`LE` seqs, each value checked), up to `head`, ascending
/// without repeats.
fn seqs_of_values(
    values: impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>>,
    head: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for item in values {
        let (k, v) = item?;
        let payload = opened(&k, &v)?;
        if payload.len() % 8 != 0 {
            return Err(StoreError::Corrupt(format!(
                "read model {}: a value is malformed",
                show_key(&k)
            )));
        }
        out.extend(
            payload
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .filter(|&s| s <= head),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The values of the fact rows up to a log position, read and checked
/// ([`Store::fact_values`]).
pub struct FactValues {
    /// The log position the rows are read up to.
    head: u64,
    /// The values in key order, checked; their payloads end `CHECK_BYTES` before their end.
    values: Vec<sled::IVec>,
    /// Whether every value up to `head` was read and passed its check.
    whole: bool,
}

impl FactValues {
    /// The rows [`Store::fact_rows`] gives, each to one of `shares` on as many threads (the
    /// caller's one of them), in no particular order: for a reader whose rows can be counted
    /// apart and added up. `false` when that cannot be done exactly — a value damaged, or the
    /// values' rows not one increasing run of seqs (a small append's staged rows merged while
    /// they were read, so the same rows come twice, which `fact_rows` passes over in order):
    /// the shares then hold part of the rows, and the caller reads them with `fact_rows`,
    /// which reports the damage.
    pub fn split<S: Send>(
        &self,
        shares: &mut [S],
        each: impl Fn(&mut S, events::row::Row<'_>) + Sync,
    ) -> bool {
        use std::sync::atomic::{AtomicUsize, Ordering};
        if !self.whole {
            return false;
        }
        let next = AtomicUsize::new(0);
        // What a thread saw: per value it read, its place in key order and the seqs of its
        // first and last row read; `None` once a value does not read as one run of rows.
        let count = |share: &mut S| -> Option<Vec<(usize, u64, u64)>> {
            let mut spans = Vec::new();
            loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(v) = self.values.get(at) else {
                    return Some(spans);
                };
                // Checked when read (`opened`): it ends with its check.
                let payload = &v[..v.len() - CHECK_BYTES];
                let mut span: Option<(u64, u64)> = None;
                for row in events::row::decode(payload) {
                    let row = row.ok()?;
                    let seq = row.seq;
                    match &mut span {
                        None => span = Some((seq, seq)),
                        Some((_, last)) if seq > *last => *last = seq,
                        Some(_) => return None,
                    }
                    if seq > self.head {
                        break;
                    }
                    each(share, row);
                }
                if let Some((first, last)) = span {
                    spans.push((at, first, last));
                }
            }
        };
        let seen = std::thread::scope(|threads| {
            let (first, rest) = shares.split_first_mut()?;
            let others: Vec<_> = rest
                .iter_mut()
                .map(|share| threads.spawn(|| count(share)))
                .collect();
            let mut spans = count(first)?;
            for other in others {
                spans.extend(
                    other
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))?,
                );
            }
            Some(spans)
        });
        seen.is_some_and(one_run)
    }
}

/// Whether the values' rows, each value's first and last seq given with its place in key
/// order, are one increasing run: no row at or before one of an earlier value.
fn one_run(mut spans: Vec<(usize, u64, u64)>) -> bool {
    spans.sort_unstable();
    spans.windows(2).all(|w| w[0].2 < w[1].1)
}

/// The payload of a stored value, refused as damage when its check fails (also the staged
/// values of every posting tree: `staged`).
pub(super) fn opened<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let cut = value.len().checked_sub(CHECK_BYTES);
    match cut {
        Some(cut) if check(key, &value[..cut]) == value[cut..] => Ok(&value[..cut]),
        _ => Err(StoreError::Corrupt(format!(
            "read model {}: a stored value fails its check (the read models are derived from \
             the log: `careledger verify` tells whether the log itself is intact)",
            show_key(key)
        ))),
    }
}

/// The damage of a value of fact rows that passes its check but does not read as rows.
fn rows_malformed(key: &[u8], e: events::row::RowError) -> StoreError {
    StoreError::Corrupt(format!("read model {}: {e}", show_key(key)))
}

/// The last value of `values` while it is under `ROWS_VALUE_BYTES`, else a new one.
fn open_value(values: &mut Vec<Vec<u8>>) -> &mut Vec<u8> {
    if values.last().is_none_or(|v| v.len() >= ROWS_VALUE_BYTES) {
        values.push(Vec::new());
    }
    values.last_mut().expect("pushed above")
}

fn world_malformed(key: &[u8], at: usize) -> StoreError {
    StoreError::Corrupt(format!(
        "read model {}: an envelope record is malformed at byte {at}",
        show_key(key)
    ))
}

/// The first record by key that `have` lacks, holds differently or holds beyond `want`, as
/// `name` of its key followed by what is wrong.
fn first_record_difference<K: Ord + Copy, V: Eq>(
    have: &std::collections::BTreeMap<K, V>,
    want: &std::collections::BTreeMap<K, V>,
    name: impl Fn(K) -> String,
) -> Option<String> {
    let keys: BTreeSet<K> = want.keys().chain(have.keys()).copied().collect();
    keys.into_iter().find_map(|k| {
        let what = match (have.get(&k), want.get(&k)) {
            (Some(a), Some(b)) if a == b => return None,
            (None, _) => "is missing",
            (_, None) => "does not belong there",
            _ => "is different",
        };
        Some(format!("{} {what}", name(k)))
    })
}

/// A key as a person reads it.
fn show_key(key: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(key)
        .chars()
        .take_while(|c| *c != '\0')
        .collect();
    let mut chars = text.chars();
    match chars.next() {
        Some('S') => format!("school {}", chars.as_str()),
        Some('Y') => format!("registry of school {}", chars.as_str()),
        Some('L') => format!("readers of school {}", chars.as_str()),
        Some('E') if key.len() >= 3 => format!(
            "postings of bucket {}",
            u16::from_be_bytes([key[1], key[2]])
        ),
        Some('E') | Some('M') | Some('G') | Some('R') => {
            let rest = chars.as_str();
            match rest.split_at_checked(1) {
                Some(("c", id)) => format!("child {id}"),
                Some(("s", id)) => format!("staff member {id}"),
                _ => rest.to_owned(),
            }
        }
        Some('A') => format!(
            "amendments of seq {}",
            segment::first_seq(&key[1..]).unwrap_or(0)
        ),
        Some('I') => format!("incident {}", chars.as_str()),
        Some('C') => format!("county {}", chars.as_str()),
        Some('F') => "fact rows".to_owned(),
        Some('W') => "the world's envelopes".to_owned(),
        _ => "an unknown key".to_owned(),
    }
}

/// Writes `tag ‖ body ‖ end` into `key` (its old content dropped): a key of this layout
/// built without allocating once the buffer has grown.
fn key_into(key: &mut Vec<u8>, tag: &[u8], body: &[u8], end: &[u8]) {
    key.clear();
    key.extend_from_slice(tag);
    key.extend_from_slice(body);
    key.extend_from_slice(end);
}

fn school_prefix(school: &str) -> Vec<u8> {
    let mut k = b"S".to_vec();
    k.extend_from_slice(school.as_bytes());
    k.push(0);
    k
}

/// The key under which the run gathers an entity's new postings (`E ‖ kind ‖ id ‖ 0x00`);
/// they are stored by bucket (`entity_bucket_prefix`).
fn entity_prefix(e: &[u8]) -> Vec<u8> {
    let mut k = b"E".to_vec();
    k.extend_from_slice(e);
    k.push(0);
    k
}

/// The entity of an `entity_prefix` key.
fn entity_of_prefix(prefix: &[u8]) -> Option<&[u8]> {
    prefix.strip_prefix(b"E")?.strip_suffix(&[0])
}

/// The stored prefix of the bucket holding an entity's postings.
fn entity_bucket_prefix(e: &[u8]) -> Vec<u8> {
    let mut k = b"E".to_vec();
    k.extend_from_slice(&super::index::posting_bucket(e).to_be_bytes());
    k
}

/// Appends one entity's entry to a bucket value's payload.
fn push_entity_entry(out: &mut Vec<u8>, e: &[u8], seqs: &[u64]) {
    // Invariant: ids are short (ingest's `ID_RULE`: at most 128 characters, so at most 512
    // bytes) and a value holds at most `SEQS_PER_VALUE` seqs: both casts are exact.
    out.extend_from_slice(&(e.len() as u16).to_le_bytes());
    out.extend_from_slice(e);
    out.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
    for s in seqs {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// The entries of a bucket value's payload: (entity, seqs), or `None` when malformed.
fn entity_entries(mut payload: &[u8]) -> Option<Vec<(&[u8], Vec<u64>)>> {
    let mut out = Vec::new();
    while !payload.is_empty() {
        let (len, rest) = payload.split_first_chunk::<2>()?;
        let (e, rest) = rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        let bytes = usize::try_from(u32::from_le_bytes(*count))
            .ok()?
            .checked_mul(8)?;
        let (seqs, rest) = rest.split_at_checked(bytes)?;
        out.push((
            e,
            seqs.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        ));
        payload = rest;
    }
    Some(out)
}

fn members_key(e: &[u8]) -> Vec<u8> {
    let mut k = b"M".to_vec();
    k.extend_from_slice(e);
    k
}

fn refs_key(e: &[u8]) -> Vec<u8> {
    let mut k = b"R".to_vec();
    k.extend_from_slice(e);
    k
}

fn registry_prefix(e: &[u8]) -> Vec<u8> {
    let mut k = b"G".to_vec();
    k.extend_from_slice(e);
    k.push(0);
    k
}

fn school_registry_prefix(school: &str) -> Vec<u8> {
    let mut k = b"Y".to_vec();
    k.extend_from_slice(school.as_bytes());
    k.push(0);
    k
}

fn linked_key(school: &str) -> Vec<u8> {
    let mut k = b"L".to_vec();
    k.extend_from_slice(school.as_bytes());
    k
}

fn amended_key(seq: u64) -> Vec<u8> {
    let mut k = AMENDED_PREFIX.to_vec();
    k.extend_from_slice(&segment::key(seq));
    k
}

fn incident_key(incident: &str) -> Vec<u8> {
    let mut k = b"I".to_vec();
    k.extend_from_slice(incident.as_bytes());
    k
}

fn county_key(county: &str, school: &str) -> Vec<u8> {
    let mut k = b"C".to_vec();
    k.extend_from_slice(county.as_bytes());
    k.push(0);
    k.extend_from_slice(school.as_bytes());
    k
}

/// Where the rule reads what earlier batches derived: the tree, or nothing (a rebuild from
/// seq 1, as `verify` does).
pub(super) trait Earlier {
    /// A stored value's payload.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every seq posted under a prefix (`S…` or `E…`).
    fn seqs(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError>;
    /// The envelope with an id (an amendment's target), when it is in the log.
    fn target(&mut self, id: &str) -> Result<Option<Envelope>, StoreError>;
    /// The envelope at a seq already posted (this run's included: the log holds them).
    fn envelope(&mut self, seq: u64) -> Result<Option<Envelope>, StoreError>;
}

/// A key and its sealed value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// Lists (`M`, `R`, `L` keys) as the tree holds them (an empty list: no value).
pub(super) type Lists = FxHashMap<Key, Vec<School>>;

/// The rule, applied to a run of consecutive envelopes: what they add to the tree.
#[derive(Default)]
pub(super) struct Scoper {
    /// New postings: key prefix (`S…\0` or `E…\0`) → seqs.
    postings: FxHashMap<Key, Vec<u64>>,
    /// The lists (`M`, `R`, `L` keys): those the writer held before the run
    /// (`Store::read_model_lists`), and every other one the run read from the tree, as they
    /// stand after the run. One map, changed in place: a failed run drops it whole.
    lists: Lists,
    /// Key scratch for the look-ups every envelope makes (a hit allocates nothing).
    key: Vec<u8>,
    /// Which of those changed (and must be written).
    lists_changed: FxHashSet<Key>,
    amended: FxHashMap<u64, Amended>,
    incidents: FxHashMap<String, String>,
    counties: BTreeSet<Vec<u8>>,
    /// The run's fact rows, in values of about `ROWS_VALUE_BYTES` (the last one open).
    rows: Vec<Vec<u8>>,
    /// The run's world envelopes (`world` records), in values as `rows`.
    world: Vec<Vec<u8>>,
    /// The rows the run's amendments target (`world::encode_amended`), in values as `rows`.
    targets: Vec<Vec<u8>>,
    /// Set by `amendment_places` when the target is a registry event of an entity.
    registry_target: Option<Entity>,
    /// Set by `amendment_places` when the target is part of a school's own registry.
    school_registry_target: Option<String>,
}

/// What an event names: entities and schools.
#[derive(Default)]
struct Places {
    entities: SmallVec<[Entity; 2]>,
    schools: Vec<String>,
}

impl Places {
    fn entity(&mut self, e: Entity) {
        if !self.entities.contains(&e) {
            self.entities.push(e);
        }
    }
    fn school(&mut self, s: &str) {
        if !self.schools.iter().any(|x| x == s) {
            self.schools.push(s.to_owned());
        }
    }
}

impl Scoper {
    /// A stored list (`M`, `R` or `L` key), as this run left it (read from the tree once).
    fn list_mut(
        &mut self,
        key: Vec<u8>,
        earlier: &impl Earlier,
    ) -> Result<&mut Vec<School>, StoreError> {
        self.load_list(&key, earlier)?;
        Ok(self.lists.get_mut(key.as_slice()).expect("loaded above"))
    }

    /// Makes sure the list under `key` is in `lists` (read from the tree on a miss).
    fn load_list(&mut self, key: &[u8], earlier: &impl Earlier) -> Result<(), StoreError> {
        if self.lists.contains_key(key) {
            return Ok(());
        }
        let m: Vec<String> = match earlier.get(key)? {
            Some(v) => rmp_serde::from_slice(&v).map_err(|err| {
                StoreError::Corrupt(format!("read model {}: {err}", show_key(key)))
            })?,
            None => Vec::new(),
        };
        self.lists.insert(
            Key::from_slice(key),
            m.into_iter().map(School::from).collect(),
        );
        Ok(())
    }

    /// A copy of a stored list.
    fn list(&mut self, key: Vec<u8>, earlier: &impl Earlier) -> Result<Vec<School>, StoreError> {
        Ok(self.list_mut(key, earlier)?.clone())
    }

    /// Adds `item` to a stored list; whether it was new.
    fn push_list(
        &mut self,
        key: Vec<u8>,
        item: &str,
        earlier: &impl Earlier,
    ) -> Result<bool, StoreError> {
        let m = self.list_mut(key.clone(), earlier)?;
        if m.iter().any(|x| x == item) {
            return Ok(false);
        }
        m.push(School::from(item));
        self.lists_changed.insert(key.into());
        Ok(true)
    }

    fn members_of(&mut self, e: &[u8], earlier: &impl Earlier) -> Result<Vec<School>, StoreError> {
        self.list(members_key(e), earlier)
    }

    /// School `school` reads something naming `e`: it gets `e`'s registry events (its
    /// registration or joining, file changes, status changes, leaving), past and future.
    fn refer(&mut self, e: &[u8], school: &str, earlier: &impl Earlier) -> Result<(), StoreError> {
        if self
            .list_mut(members_key(e), earlier)?
            .iter()
            .any(|s| s == school)
            || !self.push_list(refs_key(e), school, earlier)?
        {
            return Ok(());
        }
        let prefix = registry_prefix(e);
        let seqs = self.posted(&prefix, earlier)?;
        self.postings
            .entry(school_prefix(school).into())
            .or_default()
            .extend(seqs);
        Ok(())
    }

    fn amended_of(&mut self, seq: u64, earlier: &impl Earlier) -> Result<Amended, StoreError> {
        if let Some(a) = self.amended.get(&seq) {
            return Ok(a.clone());
        }
        let a: Amended = match earlier.get(&amended_key(seq))? {
            Some(v) => rmp_serde::from_slice(&v).map_err(|err| {
                StoreError::Corrupt(format!("read model {}: {err}", show_key(&amended_key(seq))))
            })?,
            None => Amended::default(),
        };
        Ok(a)
    }

    /// Every seq posted under `prefix` so far: by earlier appends, then by this run.
    fn posted(&self, prefix: &[u8], earlier: &impl Earlier) -> Result<Vec<u64>, StoreError> {
        let mut seqs = earlier.seqs(prefix)?;
        seqs.extend(self.postings.get(prefix).into_iter().flatten().copied());
        Ok(seqs)
    }

    fn post(&mut self, prefix: Vec<u8>, seq: u64) {
        self.postings.entry(prefix.into()).or_default().push(seq);
    }

    /// `post` without allocating a key the run already holds.
    fn post_at(postings: &mut FxHashMap<Key, Vec<u64>>, prefix: &[u8], seq: u64) {
        match postings.get_mut(prefix) {
            Some(seqs) => seqs.push(seq),
            None => {
                postings.insert(Key::from_slice(prefix), vec![seq]);
            }
        }
    }

    /// Posts `seq` under entity `e` and every school it belongs to.
    fn post_entity(
        &mut self,
        e: &[u8],
        seq: u64,
        earlier: &impl Earlier,
    ) -> Result<(), StoreError> {
        self.post(entity_prefix(e), seq);
        for s in self.members_of(e, earlier)? {
            self.post(school_prefix(&s), seq);
        }
        Ok(())
    }

    /// `e` belongs to `school` from now on: its postings so far are copied there, and every
    /// child or staff member ever named with it is referred to by that school.
    fn join(
        &mut self,
        e: &[u8],
        school: &str,
        earlier: &mut impl Earlier,
    ) -> Result<(), StoreError> {
        let before = self.list(members_key(e), earlier)?;
        if !self.push_list(members_key(e), school, earlier)? {
            return Ok(());
        }
        // The schools of one child or staff member read each other's registry (terms,
        // policies): where a transferred child counts depends on both schools' terms.
        for other in before {
            self.link(school, &other, earlier)?;
            self.link(&other, school, earlier)?;
        }
        let prefix = entity_prefix(e);
        let mut seqs = self.posted(&prefix, earlier)?;
        seqs.sort_unstable();
        seqs.dedup();
        let neighbours = self.neighbours(e, &seqs, earlier)?;
        let to = school_prefix(school);
        self.postings.entry(to.into()).or_default().extend(seqs);
        for n in neighbours {
            self.refer(&n, school, earlier)?;
        }
        Ok(())
    }

    /// Every child or staff member but `e` named in the envelopes at `seqs` (an entity's
    /// postings): as recorded, or as a correction named them (the `A` record). Derived when
    /// an entity joins a school — rare — instead of kept as a list that every envelope would
    /// read and rewrite. An amendment is skipped: its target is among the seqs too, and what
    /// it named is in the target's record.
    fn neighbours(
        &mut self,
        e: &[u8],
        seqs: &[u64],
        earlier: &mut impl Earlier,
    ) -> Result<Vec<Entity>, StoreError> {
        let mut out = Places::default();
        for &seq in seqs {
            let env = earlier
                .envelope(seq)?
                .ok_or_else(|| damaged(seq, "posted in the read models, missing from the log"))?;
            if env.event.target().is_some() {
                continue;
            }
            let places = self.places_of(&env.event, earlier)?;
            for n in places.entities {
                out.entity(n);
            }
            for n in self.amended_of(seq, earlier)?.entities {
                out.entity(Entity::from_vec(n));
            }
        }
        out.entities.retain(|n| n.as_slice() != e);
        out.entities.sort();
        Ok(out.entities.into_vec())
    }

    /// School `reader` reads `school`'s own registry (its registration, terms and policies),
    /// past and future.
    fn link(
        &mut self,
        reader: &str,
        school: &str,
        earlier: &impl Earlier,
    ) -> Result<(), StoreError> {
        if reader == school || !self.push_list(linked_key(school), reader, earlier)? {
            return Ok(());
        }
        let prefix = school_registry_prefix(school);
        let seqs = self.posted(&prefix, earlier)?;
        self.postings
            .entry(school_prefix(reader).into())
            .or_default()
            .extend(seqs);
        Ok(())
    }

    /// The school whose own registry an event is part of (its registration, a term, a policy).
    fn school_registry(e: &Event) -> Option<String> {
        match e {
            Event::SchoolRegistered { school, .. }
            | Event::TermDefined { school, .. }
            | Event::PolicyAdopted { school, .. } => Some(school.clone()),
            _ => None,
        }
    }

    /// The entity whose registry events an event is one of (a staff member's joining or
    /// leaving, a child's registration, file change or status change).
    fn registry_entity(e: &Event) -> Option<Entity> {
        match e {
            Event::StaffJoined { staff: s, .. } | Event::StaffLeft { staff: s, .. } => {
                Some(staff(s))
            }
            Event::ChildRegistered(r) => Some(child(&r.child)),
            Event::ChildUpdated { child: c, .. } | Event::ChildStatusChanged { child: c, .. } => {
                Some(child(c))
            }
            _ => None,
        }
    }

    /// What an event names as recorded.
    fn places_of(&mut self, e: &Event, earlier: &impl Earlier) -> Result<Places, StoreError> {
        let mut p = Places::default();
        for c in e.children() {
            p.entity(child(c));
        }
        if let Some(s) = e.staff() {
            p.entity(staff(s));
        }
        if let Event::IncidentNotified { incident, .. } = e
            && let Some(c) = self.incident_child(incident, earlier)?
        {
            p.entity(child(&c));
        }
        if let Some(s) = e.school() {
            p.school(s);
        }
        if let Event::ChildUpdated { changes, .. } = e
            && let Some(s) = &changes.school
        {
            p.school(s);
        }
        Ok(p)
    }

    fn incident_child(
        &mut self,
        incident: &str,
        earlier: &impl Earlier,
    ) -> Result<Option<String>, StoreError> {
        if let Some(c) = self.incidents.get(incident) {
            return Ok(Some(c.clone()));
        }
        Ok(earlier
            .get(&incident_key(incident))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The memberships an event makes: (entity, school).
    fn joins_of(e: &Event) -> Vec<(Entity, String)> {
        match e {
            Event::ChildRegistered(r) => vec![(child(&r.child), r.school.clone())],
            Event::ChildUpdated {
                child: c, changes, ..
            } => changes
                .school
                .iter()
                .map(|s| (child(c), s.clone()))
                .collect(),
            Event::StaffJoined {
                staff: s, school, ..
            } => vec![(staff(s), school.clone())],
            _ => Vec::new(),
        }
    }

    /// Applies the rule to one envelope (after every earlier one).
    pub(super) fn add(
        &mut self,
        env: &Envelope,
        earlier: &mut impl Earlier,
    ) -> Result<(), StoreError> {
        let seq = env.seq;
        self.registry_target = None;
        self.school_registry_target = None;
        if !events::row::encode(env, open_value(&mut self.rows))
            || matches!(env.event, Event::IncidentReported { .. })
        {
            super::world::encode(env, open_value(&mut self.world));
        }
        let mut places = match env.event.target() {
            None => self.places_of(&env.event, earlier)?,
            Some(target) => self.amendment_places(env, target, earlier)?,
        };
        if let Event::IncidentReported {
            incident, child: c, ..
        } = &env.event
        {
            self.incidents.insert(incident.clone(), c.clone());
        }
        if let Event::SchoolRegistered { school, county, .. } = &env.event {
            self.counties.insert(county_key(county, school));
        }
        places.entities.sort();
        // The schools this envelope goes to: its own, and each entity's. Every envelope
        // passes here, so each entity's list is loaded if missing and then borrowed (two
        // probes, not one per use), its key built in one scratch buffer.
        let mut key = std::mem::take(&mut self.key);
        for e in &places.entities {
            key_into(&mut key, b"M", e, b"");
            self.load_list(&key, earlier)?;
        }
        let mut of: SmallVec<[&Vec<School>; 2]> = SmallVec::new();
        for e in &places.entities {
            key_into(&mut key, b"M", e, b"");
            of.push(self.lists.get(key.as_slice()).expect("loaded above"));
            key_into(&mut key, b"E", e, b"\0");
            Self::post_at(&mut self.postings, &key, seq);
        }
        let mut to: SmallVec<[&str; 2]> = places.schools.iter().map(String::as_str).collect();
        for s in of.iter().flat_map(|m| m.iter()) {
            if !to.contains(&s.as_str()) {
                to.push(s);
            }
        }
        for s in &to {
            key_into(&mut key, b"S", s.as_bytes(), b"\0");
            Self::post_at(&mut self.postings, &key, seq);
        }
        // Which of the entities a school this goes to does not hold (it then refers to
        // them): the members as they stood above, as nothing below changes them before.
        let mut refers: Vec<(Entity, String)> = Vec::new();
        for (e, m) in places.entities.iter().zip(&of) {
            for s in &to {
                if !m.iter().any(|x| x == s) {
                    refers.push((e.clone(), (*s).to_owned()));
                }
            }
        }
        // Their borrows of the lists end here (the lists change below).
        drop((to, of));
        self.key = key;
        // A registry event of a child or staff member (or an amendment of one) also goes to
        // the schools that refer to them.
        let school_registry_of = match env.event.target() {
            None => Self::school_registry(&env.event),
            Some(_) => self.school_registry_target.take(),
        };
        if let Some(k) = school_registry_of {
            self.post(school_registry_prefix(&k), seq);
            for s in self.list(linked_key(&k), earlier)? {
                self.post(school_prefix(&s), seq);
            }
        }
        let registry_of = match env.event.target() {
            None => Self::registry_entity(&env.event),
            Some(_) => self.registry_target.take(),
        };
        if let Some(e) = registry_of {
            self.post(registry_prefix(&e), seq);
            for s in self.list(refs_key(&e), earlier)? {
                self.post(school_prefix(&s), seq);
            }
        }
        // Every school this goes to refers to every entity it names (a school an entity
        // belongs to already reads all of it).
        for (e, s) in refers {
            self.refer(&e, &s, earlier)?;
        }
        for (e, s) in Self::joins_of(&env.event) {
            self.join(&e, &s, earlier)?;
        }
        Ok(())
    }

    /// The places of an amendment: its target's, as recorded and as every correction named
    /// them; a correction naming new ones adds them to the target (and posts the target and
    /// its earlier amendments there).
    fn amendment_places(
        &mut self,
        env: &Envelope,
        target: &str,
        earlier: &mut impl Earlier,
    ) -> Result<Places, StoreError> {
        let Some(t) = earlier.target(target)? else {
            return Ok(Places::default());
        };
        if t.seq >= env.seq || t.event.target().is_some() {
            return Ok(Places::default());
        }
        let mut places = self.places_of(&t.event, earlier)?;
        // An amendment of a registry event goes where that event's registry postings go.
        self.registry_target = Self::registry_entity(&t.event);
        self.school_registry_target = Self::school_registry(&t.event);
        let mut amended = self.amended_of(t.seq, earlier)?;
        for e in &amended.entities {
            places.entity(Entity::from_slice(e));
        }
        for s in &amended.schools {
            places.school(s);
        }
        if let Event::Corrected { changes, .. } = &env.event {
            let mut named = Places::default();
            for (k, v) in changes {
                match (k.as_str(), v) {
                    ("child", Value::String(c)) => named.entity(child(c)),
                    ("staff", Value::String(s)) => named.entity(staff(s)),
                    ("children", Value::Array(cs)) => {
                        for c in cs.iter().filter_map(Value::as_str) {
                            named.entity(child(c));
                        }
                    }
                    _ => {}
                }
                schools_in(v, k == "school", &mut named);
            }
            for e in named.entities {
                if !places.entities.contains(&e) {
                    // The target and its earlier amendments now concern `e` too.
                    self.post_entity(&e, t.seq, earlier)?;
                    for &a in &amended.amendments {
                        self.post_entity(&e, a, earlier)?;
                    }
                    amended.entities.push(e.to_vec());
                    places.entity(e);
                }
            }
            for s in named.schools {
                if !places.schools.contains(&s) {
                    self.post(school_prefix(&s), t.seq);
                    for &a in &amended.amendments {
                        self.post(school_prefix(&s), a);
                    }
                    amended.schools.push(s.clone());
                    places.school(&s);
                }
                // A corrected registration, transfer or joining moves its child or staff.
                if matches!(
                    t.event,
                    Event::ChildRegistered(_)
                        | Event::ChildUpdated { .. }
                        | Event::StaffJoined { .. }
                ) {
                    for e in Self::joins_of(&t.event)
                        .into_iter()
                        .map(|(e, _)| e)
                        .chain(t.event.children().iter().map(|c| child(c)))
                        .collect::<BTreeSet<_>>()
                    {
                        self.join(&e, &s, earlier)?;
                    }
                }
            }
        }
        amended.amendments.push(env.seq);
        self.amended.insert(t.seq, amended);
        if events::row::has_row(t.event.kind()) {
            super::world::encode_amended(env.seq, &t, open_value(&mut self.targets));
        }
        Ok(places)
    }

    /// What the run added: its postings (never rewritten: an append may stage them), its
    /// other values with the layout's version (`StagedTree::apply` adds the `through`
    /// marker), and every list as the tree holds it once they are written (those the run
    /// read, and those it was handed and did not read).
    fn batch(self, through: &[u8]) -> (Vec<KeyValue>, Vec<KeyValue>, Lists) {
        let (postings, mut others, lists) = self.entries(through);
        others.push((FORMAT_KEY.to_vec(), FORMAT.to_vec()));
        (postings, others, lists)
    }

    /// Every key and sealed value the run adds: the postings (keyed by `through`), the other
    /// values (lists, amendment records, incidents, counties), and the lists as they stand
    /// after the run.
    fn entries(self, through: &[u8]) -> (Vec<KeyValue>, Vec<KeyValue>, Lists) {
        let mut out = Vec::new();
        // Entities' postings by bucket, each bucket's entities in order (the same bytes for
        // the same postings, whatever the map's order).
        let mut buckets: std::collections::BTreeMap<Vec<u8>, Vec<(Entity, Vec<u64>)>> =
            std::collections::BTreeMap::new();
        for (prefix, mut seqs) in self.postings {
            seqs.sort_unstable();
            seqs.dedup();
            if let Some(e) = entity_of_prefix(&prefix) {
                buckets
                    .entry(entity_bucket_prefix(e))
                    .or_default()
                    .push((Entity::from_slice(e), seqs));
                continue;
            }
            for (n, chunk) in seqs.chunks(SEQS_PER_VALUE).enumerate() {
                let mut key = prefix.to_vec();
                key.extend_from_slice(through);
                key.extend_from_slice(&(n as u32).to_be_bytes());
                let payload: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                let v = sealed(&key, &payload);
                out.push((key, v));
            }
        }
        for (prefix, mut entities) in buckets {
            entities.sort();
            // Values of at most `SEQS_PER_VALUE` seqs (an entity's run split where needed).
            let mut n: u32 = 0;
            let mut payload = Vec::new();
            let mut held = 0;
            let mut flush = |payload: &mut Vec<u8>, n: &mut u32| {
                let mut key = prefix.clone();
                key.extend_from_slice(through);
                key.extend_from_slice(&n.to_be_bytes());
                out.push((key.clone(), sealed(&key, payload)));
                payload.clear();
                *n += 1;
            };
            for (e, seqs) in &entities {
                for chunk in seqs.chunks(SEQS_PER_VALUE) {
                    if held + chunk.len() > SEQS_PER_VALUE {
                        flush(&mut payload, &mut n);
                        held = 0;
                    }
                    push_entity_entry(&mut payload, e, chunk);
                    held += chunk.len();
                }
            }
            if !payload.is_empty() {
                flush(&mut payload, &mut n);
            }
        }
        for (prefix, values) in [
            (ROWS_PREFIX, &self.rows),
            (WORLD_PREFIX, &self.world),
            (TARGETS_PREFIX, &self.targets),
        ] {
            for (n, payload) in values.iter().filter(|v| !v.is_empty()).enumerate() {
                let mut key = prefix.to_vec();
                key.extend_from_slice(through);
                key.extend_from_slice(&(n as u32).to_be_bytes());
                let v = sealed(&key, payload);
                out.push((key, v));
            }
        }
        let postings = out;
        let mut out = Vec::new();
        for key in self.lists_changed {
            // Encoded as the strings they are, the same bytes as a list of `String`s.
            let m: Vec<&str> = self.lists[&key].iter().map(School::as_str).collect();
            let v = sealed(&key, &rmp_serde::to_vec(&m).expect("a list encodes"));
            out.push((key.to_vec(), v));
        }
        for (seq, a) in self.amended {
            let key = amended_key(seq);
            let v = sealed(&key, &rmp_serde::to_vec(&a).expect("a record encodes"));
            out.push((key, v));
        }
        for (i, c) in self.incidents {
            let key = incident_key(&i);
            let v = sealed(&key, c.as_bytes());
            out.push((key, v));
        }
        for key in self.counties {
            let v = sealed(&key, &[]);
            out.push((key, v));
        }
        (postings, out, self.lists)
    }
}

/// Schools a correction's value names: a string under a `school` key, at any depth (a
/// transfer's `changes.school`).
fn schools_in(v: &Value, is_school: bool, out: &mut Places) {
    match v {
        Value::String(s) if is_school => out.school(s),
        Value::Object(m) => {
            for (k, v) in m {
                schools_in(v, k == "school", out);
            }
        }
        Value::Array(a) => {
            for v in a {
                schools_in(v, false, out);
            }
        }
        _ => {}
    }
}

/// The tree as what earlier batches derived.
struct InTree<'a> {
    store: &'a Store,
}

impl Earlier for InTree<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.store.scopes.get(key)? {
            Some(v) => Ok(Some(opened(key, &v)?.to_vec())),
            None => Ok(None),
        }
    }
    fn seqs(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        match entity_of_prefix(prefix) {
            Some(e) => self.store.entity_seqs(e, u64::MAX),
            None => self.store.scope_seqs(prefix, u64::MAX),
        }
    }
    fn target(&mut self, id: &str) -> Result<Option<Envelope>, StoreError> {
        match self.store.seq_of(id)? {
            Some(s) => self.store.get_raw(s),
            None => Ok(None),
        }
    }
    fn envelope(&mut self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        self.store.get_raw(seq)
    }
}

/// Nothing derived before: a rebuild from seq 1 (what `verify` compares the tree with), with
/// amendment targets found by `resolve` and envelopes by seq by `fetch`.
pub(super) struct Scratch<F, G> {
    /// Finds an envelope by id among those already seen.
    pub resolve: F,
    /// Reads the envelope at a seq already seen.
    pub fetch: G,
}

impl<F, G> Earlier for Scratch<F, G>
where
    F: FnMut(&str) -> Result<Option<Envelope>, StoreError>,
    G: FnMut(u64) -> Result<Option<Envelope>, StoreError>,
{
    fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn seqs(&self, _: &[u8]) -> Result<Vec<u64>, StoreError> {
        Ok(Vec::new())
    }
    fn target(&mut self, id: &str) -> Result<Option<Envelope>, StoreError> {
        (self.resolve)(id)
    }
    fn envelope(&mut self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        (self.fetch)(seq)
    }
}

/// The content of the read models, normalized for comparison: postings by prefix (sorted
/// seqs) and every other value by key.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Content {
    /// `S…\0` / `E…\0` → seqs.
    pub postings: std::collections::BTreeMap<Vec<u8>, Vec<u64>>,
    /// Every other key → payload.
    pub values: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// The fact rows by seq, each as encoded.
    pub rows: std::collections::BTreeMap<u64, Vec<u8>>,
    /// The world's envelopes by seq: stored hash and body.
    pub world: std::collections::BTreeMap<u64, ([u8; 32], Vec<u8>)>,
    /// The amended rows by (amendment seq, target seq): stored hash and body.
    pub targets: std::collections::BTreeMap<(u64, u64), ([u8; 32], Vec<u8>)>,
}

impl Content {
    /// Adds one stored (key, sealed value), checking it.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key == THROUGH_KEY || key == FORMAT_KEY {
            return Ok(());
        }
        let payload = opened(key, value)?;
        if key.first() == Some(&b'F') {
            for row in events::row::decode(payload) {
                let row = row.map_err(|e| rows_malformed(key, e))?;
                self.rows.insert(row.seq, row.bytes().to_vec());
            }
            return Ok(());
        }
        if key.first() == Some(&b'T') {
            for record in super::world::decode_amended(payload) {
                let (a, r) = record.map_err(|at| world_malformed(key, at))?;
                self.targets.insert((a, r.seq), (r.hash.0, r.body.to_vec()));
            }
            return Ok(());
        }
        if key.first() == Some(&b'W') {
            for record in super::world::decode(payload) {
                let r = record.map_err(|at| world_malformed(key, at))?;
                self.world.insert(r.seq, (r.hash.0, r.body.to_vec()));
            }
            return Ok(());
        }
        if key.first() == Some(&b'E') {
            let entries = entity_entries(payload).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "read model {}: a value is malformed",
                    show_key(key)
                ))
            })?;
            for (e, seqs) in entries {
                self.postings
                    .entry(entity_prefix(e))
                    .or_default()
                    .extend(seqs);
            }
            return Ok(());
        }
        if matches!(key.first(), Some(b'S' | b'G' | b'Y')) {
            let cut = key.len().checked_sub(12).ok_or_else(|| {
                StoreError::Corrupt(format!("read model {}: a key is malformed", show_key(key)))
            })?;
            if payload.len() % 8 != 0 {
                return Err(StoreError::Corrupt(format!(
                    "read model {}: a value is malformed",
                    show_key(key)
                )));
            }
            let seqs = self.postings.entry(key[..cut].to_vec()).or_default();
            seqs.extend(
                payload
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8"))),
            );
        } else {
            self.values.insert(key.to_vec(), payload.to_vec());
        }
        Ok(())
    }

    /// Sorts and deduplicates the postings.
    pub fn settle(&mut self) {
        for seqs in self.postings.values_mut() {
            seqs.sort_unstable();
            seqs.dedup();
        }
    }

    /// The first difference from `other` (what the log derives), as a person reads it.
    pub fn first_difference(&self, want: &Content) -> Option<String> {
        for (k, seqs) in &want.postings {
            match self.postings.get(k) {
                None => return Some(format!("read model {}: missing", show_key(k))),
                Some(s) if s != seqs => {
                    let missing = seqs.iter().find(|x| !s.contains(x));
                    let extra = s.iter().find(|x| !seqs.contains(x));
                    return Some(format!(
                        "read model {}: {}",
                        show_key(k),
                        match (missing, extra) {
                            (Some(m), _) => format!("seq {m} is missing"),
                            (None, Some(e)) => format!("seq {e} does not belong there"),
                            _ => "different".into(),
                        }
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(k) = self
            .postings
            .keys()
            .find(|k| !want.postings.contains_key(*k))
        {
            return Some(format!(
                "read model {}: holds what the log never made",
                show_key(k)
            ));
        }
        let differs = first_record_difference(&self.rows, &want.rows, |seq| {
            format!("read model fact rows: seq {seq}")
        })
        .or_else(|| {
            first_record_difference(&self.world, &want.world, |seq| {
                format!("read model world envelopes: seq {seq}")
            })
        })
        .or_else(|| {
            first_record_difference(&self.targets, &want.targets, |(a, seq)| {
                format!("read model amended rows: seq {seq} amended by seq {a}")
            })
        });
        if differs.is_some() {
            return differs;
        }
        for (k, v) in &want.values {
            if self.values.get(k) != Some(v) {
                return Some(format!("read model {}: missing or different", show_key(k)));
            }
        }
        if let Some(k) = self.values.keys().find(|k| !want.values.contains_key(*k)) {
            return Some(format!(
                "read model {}: holds what the log never made",
                show_key(k)
            ));
        }
        None
    }
}

impl Scoper {
    /// What the rule derived, normalized (for a rebuild compared with the tree).
    pub(super) fn content(self) -> Result<Content, StoreError> {
        let mut c = Content::default();
        let (postings, others, _) = self.entries(&segment::key(0));
        for (k, v) in postings.into_iter().chain(others) {
            c.add(&k, &v)?;
        }
        c.settle();
        Ok(c)
    }
}

/// What a run of envelopes adds to the read models, derived and not yet written: the
/// postings, the other values, and the lists as they stand after the run.
pub(super) struct DerivedScopes {
    postings: Vec<KeyValue>,
    others: Vec<KeyValue>,
    lists: Lists,
}

/// The tree as earlier appends left it, with the run being appended in memory: the run's
/// envelopes may not be in the log or the id index yet when its read models are derived
/// beside the rest of the append (`Store::derive_scopes_beside`).
struct WithRun<'a> {
    tree: InTree<'a>,
    run: &'a [Envelope],
    /// The run's ids, built on the first amendment that asks.
    ids: Option<FxHashMap<&'a str, usize>>,
}

impl WithRun<'_> {
    fn in_run(&self, seq: u64) -> Option<&Envelope> {
        let first = self.run.first()?.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.run.get(i)
    }
}

impl Earlier for WithRun<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree.get(key)
    }
    fn seqs(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.tree.seqs(prefix)
    }
    fn target(&mut self, id: &str) -> Result<Option<Envelope>, StoreError> {
        let run = self.run;
        let ids = self.ids.get_or_insert_with(|| {
            run.iter()
                .enumerate()
                .map(|(i, e)| (e.id.as_str(), i))
                .collect()
        });
        match ids.get(id) {
            Some(&i) => Ok(Some(run[i].clone())),
            // Not in the run: the id index holds every earlier one (an id is never in both,
            // the append skips ids already in the log).
            None => self.tree.target(id),
        }
    }
    fn envelope(&mut self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        match self.in_run(seq) {
            Some(e) => Ok(Some(e.clone())),
            None => self.tree.envelope(seq),
        }
    }
}

impl Store {
    /// Derives what `envs` (consecutive, just after the tree's `through`) add to the read
    /// models and writes it with the new `through` marker in one sled batch.
    pub(super) fn write_scopes(
        &self,
        envs: &[Envelope],
        through: &[u8],
        defer: bool,
    ) -> Result<(), StoreError> {
        let derived = self.derive_scopes(envs, through, &mut InTree { store: self })?;
        self.store_scopes(derived, through, defer)
    }

    /// `derive_scopes` for a run being appended, before it is in the log or the id index:
    /// what an append of many envelopes runs on a second thread beside writing the log and
    /// the other indexes (it reads only the `scopes` tree, earlier envelopes and the run).
    /// The caller has the id map loaded (`seq_of`), so this never loads it while the append
    /// writes the run's ids.
    pub(super) fn derive_scopes_beside(
        &self,
        envs: &[Envelope],
        through: &[u8],
    ) -> Result<DerivedScopes, StoreError> {
        let mut earlier = WithRun {
            tree: InTree { store: self },
            run: envs,
            ids: None,
        };
        self.derive_scopes(envs, through, &mut earlier)
    }

    fn derive_scopes(
        &self,
        envs: &[Envelope],
        through: &[u8],
        earlier: &mut impl Earlier,
    ) -> Result<DerivedScopes, StoreError> {
        // Taken for the run: a failure, here or before the values are written, leaves no
        // lists known (the next append reads them from the tree).
        let known = std::mem::take(&mut *self.lock_read_model_lists());
        let mut scoper = Scoper {
            lists: known,
            ..Scoper::default()
        };
        for env in envs {
            scoper.add(env, earlier)?;
        }
        let (postings, others, lists) = scoper.batch(through);
        Ok(DerivedScopes {
            postings,
            others,
            lists,
        })
    }

    /// Writes what `derive_scopes` derived for the run ending at `through`.
    pub(super) fn store_scopes(
        &self,
        derived: DerivedScopes,
        through: &[u8],
        defer: bool,
    ) -> Result<(), StoreError> {
        let DerivedScopes {
            postings,
            mut others,
            lists,
        } = derived;
        // The layout's version, already stored, need not hold a small append back.
        if defer
            && matches!(others.as_slice(), [(k, v)] if k == FORMAT_KEY && v == FORMAT)
            && self.scopes.raw().get(FORMAT_KEY)?.as_deref() == Some(FORMAT)
        {
            others.clear();
        }
        self.scopes.apply(postings, others, through, defer)?;
        *self.lock_read_model_lists() = lists;
        Ok(())
    }

    /// For the benchmark of the read models' cost only (`careledger-bench`, stage `import`):
    /// appends from now on write no read models. The store is then behind on them, which the
    /// next open catches up (as after a crash between the indexes and the read models); never
    /// read a school through this handle, nor use it on real data.
    #[doc(hidden)]
    pub fn turn_read_models_off_for_bench(&self) {
        self.read_models_off_for_bench
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// For tests only: the posting trees merge what small appends staged once more than
    /// `pairs` postings are staged (instead of hundreds of thousands), so that a test of a
    /// few appends merges often.
    #[doc(hidden)]
    pub fn set_staging_limit_for_tests(&self, pairs: usize) {
        for t in [&self.by_child, &self.by_staff, &self.scopes] {
            t.set_compact_pairs(pairs);
        }
    }

    pub(super) fn read_models_off(&self) -> bool {
        self.read_models_off_for_bench
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every seq posted under `prefix` up to `head`, sorted, each value checked.
    fn scope_seqs(&self, prefix: &[u8], head: u64) -> Result<Vec<u64>, StoreError> {
        seqs_of_values(self.scopes.scan_prefix(prefix)?, head)
    }

    /// The last seq the read models reflect (their `through` marker): every batch's postings
    /// up to it are written, each batch's together with it.
    pub fn read_models_through(&self) -> Result<u64, StoreError> {
        self.scopes.through()
    }

    /// The seqs up to `through` (at most [`Store::read_models_through`]) posted to `school`
    /// by the batches after `after`: what a reader that keeps a school's seqs (the service's
    /// kept worklist versions) reads next, instead of every posting again. A seq posted anew
    /// by a later batch (a transfer brings a child's past) is among them, however old. It may
    /// also hold seqs posted by batches up to `after` (postings staged by small appends are
    /// merged into values keyed by the last of their batches: `staged`), which a reader
    /// already has. Ascending, without repeats.
    pub fn school_seqs_between(
        &self,
        school: &str,
        after: u64,
        through: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let Some(first) = after.checked_add(1).filter(|&f| f <= through) else {
            return Ok(Vec::new());
        };
        let prefix = school_prefix(school);
        let mut from = prefix.clone();
        from.extend_from_slice(&first.to_be_bytes());
        // To the prefix's end, not to `through`: a merged value is keyed by the last batch it
        // holds, which may be after `through` while it holds batches before it.
        let mut to = prefix;
        to.extend_from_slice(&[0xff; 12]);
        seqs_of_values(self.scopes.range(from..=to)?, through)
    }

    /// Calls `each` with every fact row (`events::row`) up to `head`, in log order, each once:
    /// the compact form, as recorded, of every event a quota may count. Every value is checked
    /// as it is read; a value that fails its check or does not read as rows is refused.
    pub fn fact_rows<E: From<StoreError>>(
        &self,
        head: u64,
        mut each: impl FnMut(events::row::Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        // The values are read from sled and checked on a second thread while this one decodes
        // their rows and hands them to `each`: the two halves cost about the same (a county's
        // 4.3 million rows; docs/read-models.md). At most `ROWS_AHEAD` values wait between.
        std::thread::scope(|threads| {
            let (tx, rx) = std::sync::mpsc::sync_channel(ROWS_AHEAD);
            threads.spawn(move || {
                let values = match self.scopes.scan_prefix(ROWS_PREFIX) {
                    Ok(values) => values,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for item in values {
                    let item = item.and_then(|(k, v)| {
                        opened(&k, &v)?;
                        Ok((k, v))
                    });
                    let failed = item.is_err();
                    // A send fails once the reader has stopped (it is past `head`).
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            });
            // Values come in key order, which is log order: a batch's values by their number,
            // a merged value keyed by the last batch it holds. A row seen again (a value read
            // from the staged set and, merged meanwhile, from the tree) is skipped.
            let mut last = 0;
            for item in rx {
                let (k, v) = item?;
                // Checked by the reading thread (`opened`): it ends with its check.
                let payload = &v[..v.len() - CHECK_BYTES];
                for row in events::row::decode(payload) {
                    let row = row.map_err(|e| rows_malformed(&k, e))?;
                    if row.seq <= last {
                        continue;
                    }
                    if row.seq > head {
                        return Ok(());
                    }
                    last = row.seq;
                    each(row)?;
                }
            }
            Ok(())
        })
    }

    /// The values of the fact rows [`Store::fact_rows`] gives up to `head`, read and checked
    /// now and held, so that their rows can be read on every core at once
    /// ([`FactValues::split`]) — e.g. while the world of the same read is folded. The reading
    /// stops where `fact_rows` stops: at a value whose first row is past `head`. A value that
    /// fails its check, or whose first row does not read, is not kept, and the split then
    /// declines (the caller reads the rows with `fact_rows`, which reports the damage).
    pub fn fact_values(&self, head: u64) -> FactValues {
        let mut values = Vec::new();
        let whole = (|| {
            for item in self.scopes.scan_prefix(ROWS_PREFIX).ok()? {
                let (k, v) = item.ok()?;
                let payload = opened(&k, &v).ok()?;
                let past = match events::row::decode(payload).next() {
                    Some(Ok(first)) => first.seq > head,
                    Some(Err(_)) => return None,
                    None => false,
                };
                if past {
                    break;
                }
                values.push(v);
            }
            Some(())
        })()
        .is_some();
        FactValues {
            head,
            values,
            whole,
        }
    }

    /// The envelopes with a fact row that an amendment recorded up to `head` targets (a
    /// correction or retraction of an event recorded before it: the amendments
    /// `projections::timeline` applies), as recorded, in log order, each once, from the read
    /// models' copies (`T`), each value checked as it is read: the rows a county-wide read
    /// must not take as stored.
    pub fn amended_rows(&self, head: u64) -> Result<Vec<Envelope>, StoreError> {
        let mut out: std::collections::BTreeMap<u64, Envelope> = Default::default();
        for item in self.scopes.scan_prefix(TARGETS_PREFIX)? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            for record in super::world::decode_amended(payload) {
                let (amendment, r) = record.map_err(|at| world_malformed(&k, at))?;
                if amendment > head || out.contains_key(&r.seq) {
                    continue;
                }
                let env = r.envelope().map_err(|e| {
                    StoreError::Corrupt(format!("read model {}: {e}", show_key(&k)))
                })?;
                out.insert(r.seq, env);
            }
        }
        Ok(out.into_values().collect())
    }

    /// The world's envelopes up to `as_of` (every envelope without a fact row, incident
    /// reports, every amendment), in log order, from the read models' copies (`world`), each
    /// value checked as it is read: with [`Store::fact_rows`], everything a county-wide read
    /// needs of the log.
    pub fn world_envelopes(
        &self,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let head = self.head().seq;
        let mut out = Vec::new();
        // In key order, which is log order (as `fact_rows`); a record seen again is skipped.
        let mut last = 0;
        for item in self.scopes.scan_prefix(WORLD_PREFIX)? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            for record in super::world::decode(payload) {
                let r = record.map_err(|at| world_malformed(&k, at))?;
                if r.seq <= last {
                    continue;
                }
                if r.seq > head {
                    return Ok(out);
                }
                last = r.seq;
                let env = r.envelope().map_err(|e| {
                    StoreError::Corrupt(format!("read model {}: {e}", show_key(&k)))
                })?;
                if as_of.is_some_and(|t| env.recorded_at > t) {
                    return Ok(out);
                }
                out.push(env);
            }
        }
        Ok(out)
    }

    pub(super) fn lock_read_model_lists(&self) -> std::sync::MutexGuard<'_, Lists> {
        // The lists are only ever replaced whole, so a panic elsewhere leaves them as a
        // consistent (if empty) set.
        self.read_model_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every seq posted for entity `e` up to `head`, sorted, each value of its bucket checked.
    fn entity_seqs(&self, e: &[u8], head: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self.scopes.scan_prefix(entity_bucket_prefix(e))? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            let entries = entity_entries(payload).ok_or_else(|| {
                StoreError::Corrupt(format!("read model {}: a value is malformed", show_key(&k)))
            })?;
            for (_, seqs) in entries.into_iter().filter(|(x, _)| *x == e) {
                out.extend(seqs.into_iter().filter(|&s| s <= head));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The seqs a read of `school` needs (see the module doc), up to the head.
    pub fn school_seqs(&self, school: &str) -> Result<Vec<u64>, StoreError> {
        self.scope_seqs(&school_prefix(school), self.head().seq)
    }

    /// The envelopes a read of `school` needs, in log order, up to `as_of` (all when `None`):
    /// its registry and every envelope about a child or staff member that has ever belonged
    /// to it. Costs that school's envelopes, not the log's.
    pub fn school_envelopes(
        &self,
        school: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.school_seqs(school)?;
        self.fetch(seqs, as_of)
    }

    /// The envelopes at `seqs` (ascending, committed: from the read models), in log order, up
    /// to `as_of`; each checked against its hash.
    pub fn envelopes_at(
        &self,
        seqs: Vec<u64>,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.fetch(seqs, as_of)
    }

    /// The envelopes a read of a child needs from the read models: every envelope about it
    /// (including those a correction moved to it), in log order, up to `as_of`.
    pub fn child_envelopes(
        &self,
        child_id: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.entity_seqs(&child(child_id), self.head().seq)?;
        self.fetch(seqs, as_of)
    }

    /// The envelopes about a staff member from the read models: every envelope naming them in
    /// any version (their care records, their pairings, their registry events) and the
    /// amendments of those, in log order, up to `as_of`.
    pub fn staff_envelopes(
        &self,
        staff_id: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.entity_seqs(&staff(staff_id), self.head().seq)?;
        self.fetch(seqs, as_of)
    }

    /// The envelopes about any of `children` (as [`Store::child_envelopes`]), each once, in
    /// log order, up to `as_of`, leaving out the seqs in `known` (ascending; envelopes the
    /// caller already holds).
    pub fn children_envelopes(
        &self,
        children: &[String],
        known: &[u64],
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let head = self.head().seq;
        let mut seqs = Vec::new();
        for c in children {
            seqs.extend(self.entity_seqs(&child(c), head)?);
        }
        seqs.sort_unstable();
        seqs.dedup();
        seqs.retain(|s| known.binary_search(s).is_err());
        self.fetch(seqs, as_of)
    }

    /// The registries a child's own views need besides the child's envelopes, up to `as_of`:
    /// each school's own registry (its registration, terms and policies, with their
    /// amendments) and each staff member's registry events (joining, leaving, with their
    /// amendments). Costs those few envelopes, not every registration of the schools.
    pub fn registries_of(
        &self,
        schools: &[String],
        staff_ids: &[String],
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let head = self.head().seq;
        let mut seqs = Vec::new();
        for s in schools {
            seqs.extend(self.scope_seqs(&school_registry_prefix(s), head)?);
        }
        for t in staff_ids {
            seqs.extend(self.scope_seqs(&registry_prefix(&staff(t)), head)?);
        }
        seqs.sort_unstable();
        seqs.dedup();
        self.fetch(seqs, as_of)
    }

    /// The schools a staff member has ever belonged to (joined, or moved to by a correction).
    pub fn staff_schools(&self, staff_id: &str) -> Result<Vec<String>, StoreError> {
        self.members(&staff(staff_id))
    }

    /// The schools a child has ever belonged to (registered at, transferred to).
    pub fn child_schools(&self, child_id: &str) -> Result<Vec<String>, StoreError> {
        self.members(&child(child_id))
    }

    fn members(&self, e: &[u8]) -> Result<Vec<String>, StoreError> {
        let key = members_key(e);
        match self.scopes.get(&key)? {
            Some(v) => rmp_serde::from_slice(opened(&key, &v)?).map_err(|err| {
                StoreError::Corrupt(format!("read model {}: {err}", show_key(&key)))
            }),
            None => Ok(Vec::new()),
        }
    }

    /// How many schools the store holds, in every county.
    pub fn school_count(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.scopes.scan_prefix(b"C")? {
            let (k, v) = item?;
            opened(&k, &v)?;
            n += 1;
        }
        Ok(n)
    }

    /// The schools registered in `county`, by id.
    pub fn county_schools(&self, county: &str) -> Result<Vec<String>, StoreError> {
        let mut prefix = b"C".to_vec();
        prefix.extend_from_slice(county.as_bytes());
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.scopes.scan_prefix(&prefix)? {
            let (k, v) = item?;
            opened(&k, &v)?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// The head of the log as of `as_of`: the last envelope recorded by then (binary search
    /// over seqs: `recorded_at` never decreases along the log). `None` for all of it.
    pub fn head_as_of(
        &self,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(u64, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
        let head = self.head();
        let Some(t) = as_of else {
            return Ok((head.seq, head.recorded_at));
        };
        if head.recorded_at.is_none_or(|r| r <= t) {
            return Ok((head.seq, head.recorded_at));
        }
        // Invariant: seq `lo` is recorded by `t` (0 = before the log), seq `hi` after it.
        let (mut lo, mut hi) = (0u64, head.seq);
        let mut lo_at = None;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let env = self
                .get(mid)?
                .ok_or_else(|| damaged(mid, "missing from the log"))?;
            if env.recorded_at <= t {
                lo = mid;
                lo_at = Some(env.recorded_at);
            } else {
                hi = mid;
            }
        }
        if lo > 0 && lo_at.is_none() {
            lo_at = self.get(lo)?.map(|e| e.recorded_at);
        }
        Ok((lo, lo_at))
    }
}

impl Store {
    /// Damage for tests (never on real data): flips one byte of the first stored value of
    /// fact rows, leaving its check as it was.
    #[doc(hidden)]
    pub fn tamper_fact_rows_flip(&self) -> Result<(), StoreError> {
        self.tamper_flip_first(ROWS_PREFIX, "fact rows")
    }

    /// Flips one byte of the first value under `prefix` (`what` it holds), leaving its check.
    fn tamper_flip_first(&self, prefix: &[u8], what: &str) -> Result<(), StoreError> {
        self.scopes.compact()?;
        let (k, v) = self
            .scopes
            .scan_prefix(prefix)?
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("no {what}")))??;
        let mut v = v.to_vec();
        v[0] ^= 0x01;
        self.scopes.insert(&k, v)?;
        self.sync()
    }

    /// Damage for tests (never on real data): removes the fact row of `seq` from its value and
    /// reseals the value, as someone who knew the check would.
    #[doc(hidden)]
    pub fn tamper_fact_row_drop(&self, seq: u64) -> Result<(), StoreError> {
        self.scopes.compact()?;
        for item in self.scopes.scan_prefix(ROWS_PREFIX)? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            let mut kept = Vec::new();
            let mut found = false;
            for row in events::row::decode(payload) {
                let row = row.map_err(|e| rows_malformed(&k, e))?;
                if row.seq == seq {
                    found = true;
                } else {
                    kept.extend_from_slice(row.bytes());
                }
            }
            if found {
                self.scopes.insert(k.as_ref(), sealed(&k, &kept))?;
                return self.sync();
            }
        }
        Err(StoreError::Corrupt(format!("no fact row of seq {seq}")))
    }

    /// Damage for tests (never on real data): flips one byte of the first value of the
    /// world's envelopes (`W`), or with `amended` of the amended rows (`T`), leaving its check
    /// as it was.
    #[doc(hidden)]
    pub fn tamper_world_flip(&self, amended: bool) -> Result<(), StoreError> {
        match amended {
            true => self.tamper_flip_first(TARGETS_PREFIX, "amended rows"),
            false => self.tamper_flip_first(WORLD_PREFIX, "world envelopes"),
        }
    }

    /// Damage for tests (never on real data): removes the record of `seq` from the world's
    /// envelopes (`W`), or with `amended` from the amended rows (`T`), and reseals the value,
    /// as someone who knew the check would.
    #[doc(hidden)]
    pub fn tamper_world_drop(&self, amended: bool, seq: u64) -> Result<(), StoreError> {
        self.scopes.compact()?;
        let prefix = if amended {
            TARGETS_PREFIX
        } else {
            WORLD_PREFIX
        };
        for item in self.scopes.scan_prefix(prefix)? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            let mut kept = Vec::new();
            let mut found = false;
            let records: Vec<(Option<u64>, super::world::Record<'_>)> = if amended {
                super::world::decode_amended(payload)
                    .map(|r| r.map(|(a, r)| (Some(a), r)))
                    .collect::<Result<_, _>>()
            } else {
                super::world::decode(payload)
                    .map(|r| r.map(|r| (None, r)))
                    .collect::<Result<_, _>>()
            }
            .map_err(|at| world_malformed(&k, at))?;
            for (a, r) in records {
                if r.seq == seq {
                    found = true;
                    continue;
                }
                if let Some(a) = a {
                    kept.extend_from_slice(&a.to_le_bytes());
                }
                r.write(&mut kept);
            }
            if found {
                self.scopes.insert(k.as_ref(), sealed(&k, &kept))?;
                return self.sync();
            }
        }
        Err(StoreError::Corrupt(format!("no record of seq {seq}")))
    }

    /// Damage for tests (never on real data): flips one byte of the first stored value of
    /// `school`'s postings, leaving its check as it was.
    #[doc(hidden)]
    pub fn tamper_read_model_flip(&self, school: &str) -> Result<(), StoreError> {
        let what = format!("read model of school {school}");
        self.tamper_flip_first(&school_prefix(school), &what)
    }

    /// For tests (never on real data): makes the read models look like those of the layout
    /// before `FORMAT` 2 — no version marker, and a neighbour list (`N ‖ kind ‖ id`) as that
    /// layout kept — so that the next open must rebuild them.
    #[doc(hidden)]
    pub fn tamper_read_models_to_an_earlier_layout(&self) -> Result<(), StoreError> {
        self.scopes.remove(FORMAT_KEY)?;
        let key = b"Nst0".to_vec();
        let list = rmp_serde::to_vec(&vec!["cc0".to_owned()]).expect("a list encodes");
        self.scopes.insert(key.as_slice(), sealed(&key, &list))?;
        self.sync()
    }

    /// Damage for tests (never on real data): removes `seq` from `school`'s postings and
    /// reseals the value, as an editor who knew the check would: only `verify` can tell.
    #[doc(hidden)]
    pub fn tamper_read_model_drop(&self, school: &str, seq: u64) -> Result<(), StoreError> {
        self.scopes.compact()?;
        for item in self.scopes.scan_prefix(school_prefix(school))? {
            let (k, v) = item?;
            let payload = opened(&k, &v)?;
            let seqs: Vec<u64> = payload
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect();
            if seqs.contains(&seq) {
                let kept: Vec<u8> = seqs
                    .iter()
                    .filter(|&&s| s != seq)
                    .flat_map(|s| s.to_le_bytes())
                    .collect();
                self.scopes.insert(k.as_ref(), sealed(&k, &kept))?;
                return self.sync();
            }
        }
        Err(StoreError::Corrupt(format!(
            "seq {seq} is not posted under school {school}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_value_reads_back_what_was_written_and_a_cut_one_is_malformed() {
        let mut payload = Vec::new();
        push_entity_entry(&mut payload, b"cc1", &[3, 9, 27]);
        push_entity_entry(&mut payload, b"st1", &[]);
        push_entity_entry(&mut payload, "c学生".as_bytes(), &[u64::MAX]);
        let entries = entity_entries(&payload).unwrap();
        assert_eq!(
            entries,
            vec![
                (&b"cc1"[..], vec![3, 9, 27]),
                (&b"st1"[..], vec![]),
                ("c学生".as_bytes(), vec![u64::MAX]),
            ]
        );
        for cut in 1..payload.len() {
            let whole_entries = [0, 33, 42].contains(&cut);
            assert_eq!(
                entity_entries(&payload[..cut]).is_some(),
                whole_entries,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_entity_prefix_names_its_entity_and_only_an_entity() {
        assert_eq!(entity_of_prefix(&entity_prefix(b"cc1")), Some(&b"cc1"[..]));
        assert_eq!(entity_of_prefix(&school_prefix("k1")), None);
        assert_eq!(entity_of_prefix(&registry_prefix(b"cc1")), None);
    }
}
