//! Sealing a batch before the append (docs/privacy.md): each draft's personal fields sealed
//! under its subject's key by the key directory's vault, an amendment under its target's; and
//! the sealed lines of an export (`"sealed": {key, nonce, ciphertext}`), written and opened
//! again for a re-import.
//!
//! The sealing itself is the library's (`careledger::sealing`, shared with the service's
//! writer and the benchmarks); this module owns loading the vault, the wording of its
//! refusals and the wire form of a sealed part; it must never write the store (the caller
//! appends), write an opened line anywhere but memory, nor print a personal field.

use std::path::Path;

use anyhow::Result;
use careledger::sealing::SealError;
use events::seal::{KeySubject, SEALED_SCHEMA, Sealed};
use events::{Draft, Envelope, EventKind, Hash, Source};
use serde_json::{Map, Value};
use store::Store;
use vault::{Reader, Vault, VaultError};

use super::keys;
use crate::CliError;

/// The field of an exported line that carries its sealed part.
pub const SEALED_FIELD: &str = "sealed";

/// What `sealed` of an exported line must look like, for the error of one that does not.
const SEALED_EXPECTED: &str = "{\"key\": \"child:<id>\" or \"staff:<id>\", \"nonce\": <48 lowercase hex digits>, \"ciphertext\": <lowercase hex digits>}";

/// The sealed part of an exported line: the key's subject, the nonce and the ciphertext (hex).
pub fn sealed_to_wire(s: &Sealed) -> Value {
    serde_json::json!({
        "key": s.key,
        "nonce": hex::encode(&s.nonce),
        "ciphertext": hex::encode(&s.ciphertext),
    })
}

/// Reads [`sealed_to_wire`] back, strictly; `None` for anything else.
fn sealed_from_wire(v: &Value) -> Option<Sealed> {
    let m = v.as_object().filter(|m| m.len() == 3)?;
    let key = m.get("key")?.as_str()?;
    KeySubject::parse(key)?;
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .then(|| hex::decode(s).ok())
            .flatten()
    };
    let nonce = lower_hex(m.get("nonce")?.as_str()?).filter(|n| n.len() == 24)?;
    let ciphertext = lower_hex(m.get("ciphertext")?.as_str()?).filter(|c| !c.is_empty())?;
    Some(Sealed {
        key: key.to_owned(),
        nonce,
        ciphertext,
    })
}

/// The lines of a JSONL file with their sealed parts opened, in memory, for validation to
/// compare in clear (an idempotent re-import) and for sealing again under the key
/// directory's keys (a new nonce). `None` when no line is sealed. Each line stays on its
/// line, so validation's errors name the file's own lines. A sealed line needs the key
/// directory the export's store used (exit 4 without one); a ciphertext that does not open
/// for its line's id, type and key is refused (exit 1, naming file and line).
pub fn open_jsonl(file: &Path, bytes: &[u8], vault: Option<&Vault>) -> Result<Option<Vec<u8>>> {
    let bytes = bytes.strip_prefix(ingest::csv_rows::BOM).unwrap_or(bytes);
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut any = false;
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let sealed_line = std::str::from_utf8(raw)
            .ok()
            .filter(|t| t.contains("\"sealed\""))
            .and_then(|t| serde_json::from_str::<Map<String, Value>>(t.trim_end_matches('\r')).ok())
            .filter(|o| o.contains_key(SEALED_FIELD));
        let Some(obj) = sealed_line else {
            out.extend_from_slice(raw);
            continue;
        };
        let at = format!("{}:{}", file.display(), i + 1);
        let Some(v) = vault else {
            return Err(CliError::Environment(format!(
                "{at}: the line is sealed, but there is no master key in the key directory: give \
                 --keys DIR (or $CARELEDGER_KEYS) where the keys of the store it was exported \
                 from are kept, or export it again with --decrypt; nothing was written"
            ))
            .into());
        };
        let opened = open_line(obj, v).map_err(|e| match e {
            LineError::Input(what) => CliError::BadInput(format!("{at}: {what}")),
            LineError::Vault(e @ VaultError::Tampered { .. }) => CliError::BadInput(format!(
                "{at}: field sealed: {e} (this line was altered, or its sealed part comes from \
                 another line)"
            )),
            LineError::Vault(e) => match CliError::from_vault(&e) {
                CliError::Environment(m) => CliError::Environment(format!("{at}: {m}")),
                CliError::BadInput(m) => CliError::BadInput(format!("{at}: {m}")),
                other => other,
            },
        })?;
        serde_json::to_writer(&mut out, &opened)?;
        any = true;
    }
    Ok(any.then_some(out))
}

/// Why one sealed line did not open.
enum LineError {
    /// The line is not an exported sealed line.
    Input(String),
    /// The vault refused it.
    Vault(VaultError),
}

/// One sealed line, opened: its envelope fields as written, its payload in clear.
fn open_line(mut obj: Map<String, Value>, v: &Vault) -> Result<Map<String, Value>, LineError> {
    let input = |s: String| LineError::Input(s);
    let sealed = obj
        .remove(SEALED_FIELD)
        .and_then(|s| sealed_from_wire(&s))
        .ok_or_else(|| input(format!("field sealed: expected {SEALED_EXPECTED}")))?;
    let text = |f: &str| obj.get(f).and_then(Value::as_str).map(str::to_owned);
    let kind = text("type")
        .and_then(|t| EventKind::parse(&t))
        .ok_or_else(|| input("field type: expected an event type (a sealed line)".into()))?;
    let id = text("id")
        .ok_or_else(|| input("field id: expected the event's id (a sealed line)".into()))?;
    let instant = |f: &str| text(f).and_then(|t| ingest::wire::parse_instant(&t));
    let occurred_at = instant("occurred_at").ok_or_else(|| {
        input("field occurred_at: expected an RFC 3339 time (a sealed line)".into())
    })?;
    let recorded_at = instant("recorded_at").unwrap_or(occurred_at);
    let actor = text("actor").unwrap_or_default();
    let payload: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !ingest::wire::ENVELOPE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let event = events::wire::event_from_wire(kind.as_str(), payload.clone()).map_err(|e| {
        input(format!(
            "the clear part of this sealed line does not decode as {kind}: {e}"
        ))
    })?;
    let env = Envelope {
        schema: SEALED_SCHEMA,
        seq: 0,
        id,
        recorded_at,
        occurred_at,
        actor,
        source: Source::Cli,
        event,
        sealed: Some(sealed),
        prev_hash: Hash::ZERO,
        hash: Hash::ZERO,
    };
    let opened = v.open(env, Reader::Counselor).map_err(LineError::Vault)?;
    for k in payload.keys() {
        obj.remove(k);
    }
    obj.extend(events::wire::payload_of(&opened.event));
    Ok(obj)
}

/// The key directory's vault, when it holds a master key (a store in clear has none).
pub fn load(db: &Path, keys_dir: Option<&Path>) -> Result<Option<Vault>> {
    let dir = keys::key_dir(db, keys_dir);
    Vault::open_dir(&dir).map_err(|e| CliError::from_vault(&e).into())
}

/// Why a draft of a batch could not be sealed: its index in the batch and the sentence.
#[derive(Debug)]
pub struct Refused {
    /// The draft's index in the batch.
    pub index: usize,
    /// What was wrong, or which key failed.
    pub error: anyhow::Error,
}

/// Seals every draft of a batch in place (`careledger::sealing`, shared with the service's
/// writer), each failure worded as the CLI words it.
pub fn seal_batch(store: &Store, vault: &Vault, drafts: &mut [Draft]) -> Result<(), Refused> {
    careledger::sealing::seal_batch(store, vault, drafts).map_err(|r| Refused {
        index: r.index,
        error: match r.error {
            SealError::Store(e) => e.into(),
            SealError::Vault(e) => CliError::from_vault(&e).into(),
        },
    })
}
