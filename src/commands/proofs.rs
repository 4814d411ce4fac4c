//! `checkpoint`, `prove` and `bundle`: the signed checkpoints of the log and the proof files of
//! docs/proofs.md, for an inspector to check offline with `careledger-verify`.
//!
//! This module owns which checkpoint a proof is made against and which envelopes a bundle
//! shows. It must never put a counseling note in a file: a counseling session, and any
//! correction or retraction of one, is listed in a bundle as withheld (leaf hash and proof
//! only), and `prove` refuses to write its envelope.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use events::envelope::Hash;
use events::{Envelope, Event};
use store::Store;
use store::log::StoredCheckpoint;
use verifier::format::{
    self, BUNDLE_FORMAT, BUNDLE_VERSION, Bundle, CONSISTENCY_FORMAT, ConsistencyFile, Entry,
    INCLUSION_FORMAT, InclusionFile, VERSION, WITHHELD_CONFIDENTIAL, Withheld,
};

use super::keys::{self, with_key};
use crate::{BadInput, CliError};

/// A key or proof command, resolved.
#[derive(Debug)]
pub enum ProofsRequest {
    /// `keys init [--origin NAME]`.
    KeysInit { origin: Option<String> },
    /// `keys show`.
    KeysShow,
    /// `keys import-county-secret FILE` (needs no store: `commands::dispatch` runs it).
    ImportCountySecret { file: PathBuf },
    /// `keys rotate`: a new master key (the store is held open for writing meanwhile, so no
    /// other command makes a key during the rotation).
    KeysRotate,
    /// `checkpoint [--as-of T]`.
    Checkpoint { as_of: Option<DateTime<Utc>> },
    /// `prove EVENT_ID [--checkpoint FILE]`.
    ProveInclusion {
        id: String,
        checkpoint: Option<PathBuf>,
        out: Option<PathBuf>,
    },
    /// `prove --from FILE`.
    ProveConsistency { from: PathBuf, out: Option<PathBuf> },
    /// `bundle --child C [--as-of T] --out F`.
    Bundle {
        child: String,
        as_of: Option<DateTime<Utc>>,
        out: PathBuf,
    },
}

/// Runs a key or proof command on the store at `db`, opened to write (a missing head
/// checkpoint is signed first when the key is there).
pub fn run(
    store: &Store,
    db: &Path,
    keys_dir: Option<&Path>,
    request: ProofsRequest,
) -> Result<()> {
    if let ProofsRequest::KeysInit { origin } = &request {
        return keys::keys_init(store, db, keys_dir, origin.as_deref());
    }
    if let ProofsRequest::KeysShow = &request {
        return keys::show(db, keys_dir);
    }
    if let ProofsRequest::ImportCountySecret { file } = &request {
        return keys::import_county_secret(db, keys_dir, file);
    }
    if let ProofsRequest::KeysRotate = &request {
        return keys::rotate(db, keys_dir);
    }
    let key_origin = with_key(store, db, keys_dir)?;
    match request {
        ProofsRequest::KeysInit { .. }
        | ProofsRequest::KeysShow
        | ProofsRequest::ImportCountySecret { .. }
        | ProofsRequest::KeysRotate => Ok(()),
        ProofsRequest::Checkpoint { as_of } => checkpoint(store, as_of),
        ProofsRequest::ProveInclusion {
            id,
            checkpoint,
            out,
        } => prove_inclusion(
            store,
            key_origin,
            &id,
            checkpoint.as_deref(),
            out.as_deref(),
        ),
        ProofsRequest::ProveConsistency { from, out } => {
            prove_consistency(store, key_origin, &from, out.as_deref())
        }
        ProofsRequest::Bundle { child, as_of, out } => bundle(store, &child, as_of, &out),
    }
}

/// `checkpoint [--as-of T]`: the latest signed checkpoint, or the one in force at T.
fn checkpoint(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<()> {
    let cp = in_force(store, as_of)?;
    print!("{}", cp.note);
    Ok(())
}

/// The checkpoint in force at `--as-of` (the latest whose batch was recorded by then), or the
/// latest.
fn in_force(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<StoredCheckpoint> {
    match as_of {
        Some(t) => store.checkpoint_as_of(t)?.ok_or_else(|| {
            BadInput(format!(
                "no checkpoint was in force at {}: none was signed for a batch recorded by then",
                events::time::format_local(t)
            ))
            .into()
        }),
        None => store.latest_checkpoint()?.ok_or_else(|| {
            BadInput(
                "the log has no signed checkpoint yet (it is empty, or it has no signing key: \
                 `careledger keys init`)"
                    .into(),
            )
            .into()
        }),
    }
}

/// The origin this log signs as: its key's name, else its latest checkpoint's.
fn origin(store: &Store, key_origin: Option<String>) -> Result<String> {
    if let Some(o) = key_origin {
        return Ok(o);
    }
    let cp = store.latest_checkpoint()?.ok_or_else(|| {
        BadInput("the log has no signed checkpoint and no signing key".to_owned())
    })?;
    Ok(parse_note(&cp.note)?.origin)
}

/// The checkpoint text of a signed note, parsed.
fn parse_note(note: &str) -> Result<tlog::Checkpoint> {
    let text = note
        .find("\n\n")
        .map(|i| &note[..=i])
        .ok_or_else(|| BadInput("the checkpoint is not a signed note".into()))?;
    tlog::Checkpoint::parse(text).map_err(|e| BadInput(format!("the checkpoint: {e}")).into())
}

/// Reads a saved checkpoint of `origin`: a signed note as `careledger checkpoint` prints it, a
/// proof file or bundle (its `checkpoint`), or `careledger-verify`'s state file (the
/// checkpoint remembered for this log).
fn read_checkpoint_file(path: &Path, origin: &str) -> Result<(String, tlog::Checkpoint)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    let bad = |why: &str| BadInput(format!("{}: {why}", path.display()));
    let note = if text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(&format!("not json: {e}")))?;
        if let Some(s) = v.get("checkpoint").and_then(|c| c.as_str()) {
            s.to_owned()
        } else if let Some(logs) = v.get("logs").and_then(|l| l.as_object()) {
            let ours: Vec<&str> = logs
                .values()
                .filter(|l| l.get("origin").and_then(|o| o.as_str()) == Some(origin))
                .filter_map(|l| l.get("checkpoint").and_then(|c| c.as_str()))
                .collect();
            match ours[..] {
                [one] => one.to_owned(),
                [] => return Err(bad(&format!("it remembers no checkpoint of {origin}")).into()),
                _ => {
                    return Err(bad(&format!(
                        "it remembers {} checkpoints of {origin} under different keys",
                        ours.len()
                    ))
                    .into());
                }
            }
        } else {
            return Err(bad("a json file without a checkpoint").into());
        }
    } else {
        text
    };
    let cp = parse_note(&note).with_context(|| path.display().to_string())?;
    if cp.origin != origin {
        return Err(bad(&format!(
            "it is a checkpoint of {}, not of this log ({origin})",
            cp.origin
        ))
        .into());
    }
    Ok((note, cp))
}

/// The old checkpoint must be of this log as it is: its root is the tree's root at its size.
fn check_against_log(store: &Store, cp: &tlog::Checkpoint, path: &Path) -> Result<()> {
    let head = store.head().seq;
    if cp.size > head {
        return Err(BadInput(format!(
            "{}: the checkpoint has size {}, but the log holds {head} events",
            path.display(),
            cp.size
        ))
        .into());
    }
    let root = store.tree_root(cp.size)?;
    if root != cp.root {
        return Err(CliError::Damaged(format!(
            "the log's tree at size {} has root {root}, not the root {} of the checkpoint in {}: \
             the log is not the one that checkpoint signed, and no proof from it exists",
            cp.size,
            cp.root,
            path.display()
        ))
        .into());
    }
    Ok(())
}

fn b64(h: &tlog::Hash) -> String {
    h.to_base64()
}

fn proof(hashes: &[tlog::Hash]) -> Vec<String> {
    hashes.iter().map(b64).collect()
}

/// How many amendments deep a chain of corrections is followed to find what it amends.
const MAX_AMENDMENT_DEPTH: usize = 64;

/// Whether an envelope can carry a counseling note: an event of a kind with confidential fields
/// (`EventKind::has_confidential_fields`: a counseling session), or a correction or
/// retraction of one, directly or through other amendments (a correction may carry new notes;
/// a retraction's reason is free text). An amendment whose target cannot be followed is
/// treated as confidential: withholding too much is a count the inspector sees, showing a note
/// is a breach.
fn confidential(store: &Store, env: &Envelope) -> Result<bool> {
    let mut event = env.event.clone();
    for _ in 0..MAX_AMENDMENT_DEPTH {
        if event.kind().has_confidential_fields() {
            return Ok(true);
        }
        let target = match &event {
            Event::Corrected { target, .. } | Event::Retracted { target, .. } => target.clone(),
            _ => return Ok(false),
        };
        match store.get_by_id(&target)? {
            Some(t) => event = t.event,
            None => return Ok(true),
        }
    }
    Ok(true)
}

/// The entry of `seq` (envelope as stored, chain hash, inclusion proof at `size`).
fn entry(store: &Store, seq: u64, size: u64) -> Result<Entry> {
    let (hash, body) = stored(store, seq)?;
    Ok(Entry {
        leaf_index: seq - 1,
        envelope: format::encode(&body),
        hash: format::encode(&hash.0),
        proof: proof(&store.inclusion_proof(size, seq - 1)?),
    })
}

fn stored(store: &Store, seq: u64) -> Result<(Hash, Vec<u8>)> {
    Ok(store
        .stored_leaf(seq)?
        .ok_or_else(|| BadInput(format!("seq {seq} is not in the log")))?)
}

fn write_json<T: serde::Serialize>(value: &T, out: Option<&Path>) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `prove EVENT_ID [--checkpoint FILE]`: an inclusion proof of the event's envelope.
fn prove_inclusion(
    store: &Store,
    key_origin: Option<String>,
    id: &str,
    checkpoint: Option<&Path>,
    out: Option<&Path>,
) -> Result<()> {
    let env = store
        .get_by_id(id)?
        .ok_or_else(|| BadInput(format!("no event with id {id:?} in the log")))?;
    if confidential(store, &env)? {
        return Err(BadInput(format!(
            "{id} is a counseling session or an amendment of one: its envelope may hold notes, \
             so no proof file shows it (`careledger bundle` lists it as withheld)"
        ))
        .into());
    }
    let (note, size) = match checkpoint {
        Some(path) => {
            let origin = origin(store, key_origin)?;
            let (note, cp) = read_checkpoint_file(path, &origin)?;
            check_against_log(store, &cp, path)?;
            (note, cp.size)
        }
        None => {
            let cp = in_force(store, None)?;
            (cp.note, cp.size)
        }
    };
    if env.seq > size {
        return Err(BadInput(format!(
            "{id} is seq {}, recorded after that checkpoint (size {size})",
            env.seq
        ))
        .into());
    }
    let file = InclusionFile {
        format: INCLUSION_FORMAT.into(),
        version: VERSION,
        checkpoint: note,
        entry: entry(store, env.seq, size)?,
        consistency: Vec::new(),
    };
    write_json(&file, out)?;
    eprintln!("proved seq {} ({id}) in the tree of size {size}", env.seq);
    Ok(())
}

/// `prove --from FILE`: a consistency proof from an older checkpoint to the latest one.
fn prove_consistency(
    store: &Store,
    key_origin: Option<String>,
    from: &Path,
    out: Option<&Path>,
) -> Result<()> {
    let origin = origin(store, key_origin)?;
    let (_, old) = read_checkpoint_file(from, &origin)?;
    if old.size == 0 {
        return Err(BadInput(format!(
            "{}: the checkpoint is of the empty log; every log extends it",
            from.display()
        ))
        .into());
    }
    check_against_log(store, &old, from)?;
    let latest = in_force(store, None)?;
    let file = ConsistencyFile {
        format: CONSISTENCY_FORMAT.into(),
        version: VERSION,
        checkpoint: latest.note,
        old_size: old.size,
        old_root: b64(&old.root),
        proof: proof(&store.consistency_proof(old.size, latest.size)?),
    };
    write_json(&file, out)?;
    eprintln!(
        "proved the log at size {} a prefix of the log at size {}",
        old.size, latest.size
    );
    Ok(())
}

/// `bundle --child C [--as-of T] --out F`: the child's envelopes as stored, with proofs, against
/// the checkpoint in force at T (or the latest).
fn bundle(store: &Store, child: &str, as_of: Option<DateTime<Utc>>, out: &Path) -> Result<()> {
    let cp = in_force(store, as_of)?;
    let envs = store.by_child(child, as_of)?;
    if envs.is_empty() {
        return Err(BadInput(format!("the log has no event about child {child:?}")).into());
    }
    let later = envs.iter().filter(|e| e.seq > cp.size).count();
    let mut entries = Vec::new();
    let mut withheld = Vec::new();
    for env in envs.iter().filter(|e| e.seq <= cp.size) {
        if confidential(store, env)? {
            let (_, body) = stored(store, env.seq)?;
            withheld.push(Withheld {
                leaf_index: env.seq - 1,
                leaf_hash: b64(&tlog::leaf_hash(&body)),
                proof: proof(&store.inclusion_proof(cp.size, env.seq - 1)?),
                reason: WITHHELD_CONFIDENTIAL.into(),
            });
        } else {
            entries.push(entry(store, env.seq, cp.size)?);
        }
    }
    if entries.is_empty() && withheld.is_empty() {
        return Err(BadInput(format!(
            "no event about child {child:?} is in the tree of that checkpoint (size {})",
            cp.size
        ))
        .into());
    }
    let file = Bundle {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        checkpoint: cp.note,
        child: Some(child.to_owned()),
        entries,
        withheld,
        consistency: Vec::new(),
    };
    write_json(&file, Some(out))?;
    eprintln!(
        "wrote the bundle of child {child} to {}: {} envelopes and {} withheld as confidential, \
         proven in the tree of size {}",
        out.display(),
        file.entries.len(),
        file.withheld.len(),
        cp.size
    );
    if later > 0 {
        eprintln!(
            "note: {later} later events about {child} are not covered by that checkpoint and are \
             left out"
        );
    }
    Ok(())
}
