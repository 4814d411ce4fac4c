//! `vault`: the key directory's data keys and the sealing of personal fields
//! (docs/privacy.md).
//!
//! It owns the master key, the per-subject data keys wrapped by it (one per child, one per
//! staff member), the counselor key, the tombstones of erased keys, and the AEAD
//! (XChaCha20-Poly1305) that seals an event's personal fields before the append and opens
//! them after the read. Which fields are personal is `events::seal`'s (from
//! `events::personal`); where envelopes live is `store`'s. It must never write a key into the
//! store, never print a key, never re-create a key that was erased, and never hand out clear
//! text whose ciphertext does not authenticate under its event's associated data.
//!
//! The key directory (beside the store, never inside it; mode 0700, every file 0600):
//!
//! ```text
//! master.key                 careledger master key v1 / key: <64 hex>
//! counselor.key              the counselor key, wrapped by the master key
//! subjects/<hex of subject>  a child's or staff member's data key, wrapped by the master key
//! erased/<hex of subject>    the tombstone of an erased key: its commitment; never removed
//! rotation/                  only during `keys rotate`: the next generation, staged
//! ```
//!
//! **Rotation** (`Vault::rotate`) re-wraps every live key under a new master key. The new
//! generation (master key, counselor key, every data key) is written whole into `rotation/`,
//! then `rotation/ready` is written: the commit point. Only then are the staged files renamed
//! over the live ones, the master key last. A crash before `ready` leaves the old generation
//! whole (the staging is dropped when the directory is next opened); a crash after it is
//! finished when the directory is next opened. Tombstones are not keys: they stay as they are,
//! and an erased key is never in a generation.
//!
//! One `Vault` may be shared by threads (`Send + Sync`: its cache of unwrapped keys is behind a
//! lock), as a service shares it between its writer and its readers.
//!
//! Not in sled: sled's append-only file keeps removed values, so an erased key would survive
//! there. Removing a file and syncing the directory is what erasing a key means here.

mod files;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use events::seal::{self, KeySubject, SEALED_SCHEMA, Sealed};
use events::{Draft, Envelope, EventKind};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub use files::KeyFileError;

/// The master key's file name.
pub const MASTER_FILE: &str = "master.key";
/// The counselor key's file name.
pub const COUNSELOR_FILE: &str = "counselor.key";
/// The folder of the wrapped data keys.
pub const SUBJECTS_DIR: &str = "subjects";
/// The folder of the erased keys' tombstones.
pub const ERASED_DIR: &str = "erased";
/// The folder a rotation stages the next generation in.
pub const ROTATION_DIR: &str = "rotation";
/// The commit point of a rotation, inside [`ROTATION_DIR`].
const ROTATION_READY: &str = "ready";

/// A 256-bit key.
type Key = [u8; 32];

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A key file is missing, unreadable or malformed.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The operating system gave no randomness.
    #[error("no randomness for a new key or nonce: {0}")]
    Random(String),
    /// A ciphertext does not authenticate: it was altered, or moved from another event.
    #[error(
        "the sealed fields of event {id} do not open: the ciphertext was altered or moved from another event"
    )]
    Tampered {
        /// The event's id.
        id: String,
    },
    /// A wrapped key does not open under the master key.
    #[error(
        "the key of {subject} in {dir} does not open under this master key: the key directory was altered or belongs to another store"
    )]
    Unwrap {
        /// The subject (`child:…`).
        subject: String,
        /// The key directory.
        dir: PathBuf,
    },
    /// A sealed event names a key the directory has neither alive nor erased.
    #[error(
        "event {id} is sealed under the key of {subject}, which {dir} does not hold: give --keys DIR (or $CARELEDGER_KEYS) where this store's keys are kept"
    )]
    NoKey {
        /// The event's id.
        id: String,
        /// The subject (`child:…`).
        subject: String,
        /// The key directory.
        dir: PathBuf,
    },
    /// A sealed event was read with no key directory at all.
    #[error(
        "event {id} is sealed, but there is no master key in the key directory: give --keys DIR (or $CARELEDGER_KEYS) where this store's keys are kept"
    )]
    NoVault {
        /// The event's id.
        id: String,
    },
    /// The key of this subject was erased: it can never be made again.
    #[error(
        "the key of {subject} was erased (commitment {commitment}); it can never be made again"
    )]
    Erased {
        /// The subject (`child:…`).
        subject: String,
        /// The erased key's commitment.
        commitment: String,
    },
    /// The split or merge of an event failed.
    #[error("event {id}: {source}")]
    Shape {
        /// The event's id.
        id: String,
        /// What failed.
        #[source]
        source: seal::SealError,
    },
    /// An event with personal fields names no subject whose key could seal it.
    #[error(
        "event {id} ({kind}) has personal fields but names no child or staff member to seal them under"
    )]
    NoSubject {
        /// The event's id.
        id: String,
        /// Its type.
        kind: &'static str,
    },
}

/// What the caller of [`Vault::open`] may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Personal fields, not counseling notes.
    Staff,
    /// Personal fields and counseling notes.
    Counselor,
}

/// The key directory, opened: the master key, and the data keys unwrapped so far.
pub struct Vault {
    dir: PathBuf,
    master: Key,
    /// Unwrapped data keys by subject label; `None` for an erased one. Behind a lock so that
    /// one vault is shared by the threads of a service (its writer seals, its readers open).
    keys: Mutex<HashMap<String, Option<Key>>>,
    /// Keys made by [`Vault::seal_deferred`] and not yet written: each subject's file and
    /// text. Invariant: every entry's key is in `keys`; an event sealed under one of them is
    /// appended only after [`Vault::write_new_keys`] wrote it.
    unwritten: Mutex<Vec<(String, PathBuf, String)>>,
    /// The counselor key, once unwrapped (rotation re-wraps it; its value never changes).
    counselor: std::sync::OnceLock<Key>,
    /// Keys this handle has erased: whoever keeps opened envelopes (a service's cache of a
    /// school's versions) drops them when it changes.
    erasures: std::sync::atomic::AtomicU64,
}

/// When a key made for a seal is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Make {
    /// Never: only existing keys.
    No,
    /// At once, before the seal returns.
    Now,
    /// By the next [`Vault::write_new_keys`].
    Deferred,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(b)
}

/// Seals `msg` under `key` with a fresh random nonce; returns (nonce, ciphertext).
fn aead_seal(key: &Key, msg: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
    let nonce: [u8; 24] = random()?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let ct = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg, aad })
        .map_err(|_| VaultError::Random("the cipher refused a message".into()))?;
    Ok((nonce.to_vec(), ct))
}

/// Opens a ciphertext; `None` when it does not authenticate.
fn aead_open(key: &Key, nonce: &[u8], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 24] = nonce.try_into().ok()?;
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
        .ok()
}

fn wrap_aad(subject: &str) -> Vec<u8> {
    [
        b"careledger wrapped key v1\0".as_slice(),
        subject.as_bytes(),
    ]
    .concat()
}

/// The subject a key directory file is named after (the hex of its label).
fn subject_of_file(path: &Path, name: &str) -> Result<String, VaultError> {
    hex::decode(name)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            VaultError::File(KeyFileError::Format {
                path: path.to_owned(),
                line: 0,
                expected: "a file named by the hex of its subject",
            })
        })
}

/// Wraps `key` of `subject` under `master` into the new file `path`.
fn wrap_into(master: &Key, path: &Path, subject: &str, key: &Key) -> Result<(), VaultError> {
    let (nonce, ct) = aead_seal(master, key, &wrap_aad(subject))?;
    files::write_new(path, &files::wrapped_text(subject, &nonce, &ct))?;
    Ok(())
}

/// Writes the next generation of `dir`'s keys into `rotation/` and commits it (`ready`);
/// nothing live is touched. Returns how many keys it holds.
fn stage_rotation(dir: &Path) -> Result<usize, VaultError> {
    let old = Vault::open_dir(dir)?.ok_or_else(|| {
        VaultError::File(KeyFileError::Missing {
            path: dir.join(MASTER_FILE),
        })
    })?;
    let stage = dir.join(ROTATION_DIR);
    files::remove_tree(&stage)?;
    files::ensure_dir(&stage.join(SUBJECTS_DIR))?;
    let master: Key = random()?;
    files::write_new(&stage.join(MASTER_FILE), &files::master_text(&master))?;
    let mut staged = Vec::new();
    let mut wrap = |path: PathBuf, subject: &str, key: &Key| -> Result<(), VaultError> {
        let (nonce, ct) = aead_seal(&master, key, &wrap_aad(subject))?;
        staged.push((path, files::wrapped_text(subject, &nonce, &ct)));
        Ok(())
    };
    if let Some(k) = old.unwrap_file(&dir.join(COUNSELOR_FILE), COUNSELOR_SUBJECT)? {
        wrap(stage.join(COUNSELOR_FILE), COUNSELOR_SUBJECT, &k)?;
    }
    for name in files::names(&dir.join(SUBJECTS_DIR))? {
        let path = dir.join(SUBJECTS_DIR).join(&name);
        let subject = subject_of_file(&path, &name)?;
        let Some(k) = old.unwrap_file(&path, &subject)? else {
            continue;
        };
        wrap(stage.join(SUBJECTS_DIR).join(&name), &subject, &k)?;
    }
    // All staged keys at once (two syncs), then the commit point.
    files::write_new_all(&staged)?;
    files::write_new(&stage.join(ROTATION_READY), "careledger key rotation v1\n")?;
    Ok(staged.len())
}

/// Finishes a committed rotation of `dir` (moves the staged keys over the live ones, the
/// master key last, then removes the staging) or drops an uncommitted one. Idempotent: a
/// crash in the middle of it is finished by the next call.
fn finish_rotation(dir: &Path) -> Result<(), VaultError> {
    let stage = dir.join(ROTATION_DIR);
    if !stage.exists() {
        return Ok(());
    }
    if stage.join(ROTATION_READY).exists() {
        let staged = stage.join(SUBJECTS_DIR);
        let names = files::names(&staged)?;
        if !names.is_empty() {
            files::ensure_dir(&dir.join(SUBJECTS_DIR))?;
        }
        for name in names {
            files::replace(&staged.join(&name), &dir.join(SUBJECTS_DIR).join(&name))?;
        }
        for file in [COUNSELOR_FILE, MASTER_FILE] {
            if stage.join(file).exists() {
                files::replace(&stage.join(file), &dir.join(file))?;
            }
        }
    }
    files::remove_tree(&stage)?;
    Ok(())
}

/// The commitment of a key recorded by an erasure: `SHA-256("careledger key commitment v1"
/// ‖ 0x00 ‖ subject ‖ 0x00 ‖ key)`, hex. It names the key without revealing it.
pub fn commitment(subject: &str, key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"careledger key commitment v1\0");
    h.update(subject.as_bytes());
    h.update(b"\0");
    h.update(key);
    hex::encode(h.finalize())
}

/// The associated data of a confidential field sealed under the counselor key: the event's
/// own, plus the field's pointer.
fn confidential_aad(event_aad: &[u8], pointer: &str) -> Vec<u8> {
    [event_aad, b"\0confidential\0", pointer.as_bytes()].concat()
}

const COUNSELOR_SUBJECT: &str = "counselor";

impl Vault {
    /// Makes a new key directory (0700) with a master key and a counselor key. Refuses a
    /// directory that already holds a master key.
    pub fn create(dir: &Path) -> Result<Vault, VaultError> {
        files::ensure_dir(dir)?;
        let master: Key = random()?;
        files::write_new(&dir.join(MASTER_FILE), &files::master_text(&master))?;
        let vault = Vault {
            dir: dir.to_owned(),
            master,
            keys: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(Vec::new()),
            counselor: std::sync::OnceLock::new(),
            erasures: std::sync::atomic::AtomicU64::new(0),
        };
        vault.write_wrapped(&dir.join(COUNSELOR_FILE), COUNSELOR_SUBJECT, &random()?)?;
        Ok(vault)
    }

    /// Opens a key directory; `None` when it holds no master key (a store in clear). A
    /// rotation a crash interrupted is finished first (committed) or dropped (not committed).
    pub fn open_dir(dir: &Path) -> Result<Option<Vault>, VaultError> {
        finish_rotation(dir)?;
        let Some(master) = files::read_master(&dir.join(MASTER_FILE))? else {
            return Ok(None);
        };
        Ok(Some(Vault {
            dir: dir.to_owned(),
            master,
            keys: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(Vec::new()),
            counselor: std::sync::OnceLock::new(),
            erasures: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// The cache of unwrapped keys. A poisoned lock still holds a consistent map (each
    /// insert is one call), so it is used as it is.
    fn cache(&self) -> MutexGuard<'_, HashMap<String, Option<Key>>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys made but not yet written. A poisoned lock holds a consistent list (each
    /// change is one call).
    fn unwritten(&self) -> MutexGuard<'_, Vec<(String, PathBuf, String)>> {
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many keys [`Vault::seal_deferred`] made that are not written yet.
    pub fn unwritten_keys(&self) -> usize {
        self.unwritten().len()
    }

    /// Writes every key [`Vault::seal_deferred`] made and has not written, all at once (two
    /// syncs for the lot: `files::write_new_all`). Call it before appending what they sealed.
    /// On an error, the keys not written stay to be written by the next call. Returns how
    /// many were written.
    pub fn write_new_keys(&self) -> Result<usize, VaultError> {
        let mut unwritten = self.unwritten();
        if unwritten.is_empty() {
            return Ok(0);
        }
        files::ensure_dir(&self.dir.join(SUBJECTS_DIR))?;
        let files: Vec<(PathBuf, String)> = unwritten
            .iter()
            .map(|(_, path, text)| (path.clone(), text.clone()))
            .collect();
        match files::write_new_all(&files) {
            Ok(()) => {
                let n = unwritten.len();
                unwritten.clear();
                Ok(n)
            }
            Err(e) => {
                // Written are those whose file holds exactly their text; a file in the way (a
                // key made elsewhere) keeps its entry, so that the error stays.
                unwritten.retain(|(_, path, text)| {
                    std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str())
                });
                Err(e.into())
            }
        }
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn subject_file(&self, folder: &str, subject: &str) -> PathBuf {
        self.dir.join(folder).join(hex::encode(subject))
    }

    fn write_wrapped(&self, path: &Path, subject: &str, key: &Key) -> Result<(), VaultError> {
        wrap_into(&self.master, path, subject, key)
    }

    /// Copies the tombstones of `other`'s key directory into this one (a migration into a new
    /// store: a key erased there stays erased here, and is never made). Tombstones already
    /// here are kept. Returns how many were copied.
    pub fn copy_tombstones(&self, other: &Vault) -> Result<usize, VaultError> {
        let from = other.dir.join(ERASED_DIR);
        let mut n = 0;
        for name in files::names(&from)? {
            let path = from.join(&name);
            let subject = subject_of_file(&path, &name)?;
            let Some(c) = files::read_tombstone(&path)? else {
                continue;
            };
            let to = self.subject_file(ERASED_DIR, &subject);
            if to.exists() {
                continue;
            }
            files::ensure_dir(&self.dir.join(ERASED_DIR))?;
            files::write_new(&to, &files::tombstone_text(&subject, &c))?;
            self.cache().insert(subject, None);
            n += 1;
        }
        Ok(n)
    }

    /// Re-wraps every live key of the key directory `dir` under a new master key, atomically
    /// (see the module comment): the counselor key and every data key keep their value, the
    /// old master key is replaced, tombstones stay. Returns how many keys were re-wrapped.
    pub fn rotate(dir: &Path) -> Result<usize, VaultError> {
        let n = stage_rotation(dir)?;
        finish_rotation(dir)?;
        Ok(n)
    }

    fn unwrap_file(&self, path: &Path, subject: &str) -> Result<Option<Key>, VaultError> {
        let Some((nonce, ct)) = files::read_wrapped(path, subject)? else {
            return Ok(None);
        };
        let key = aead_open(&self.master, &nonce, &ct, &wrap_aad(subject))
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| VaultError::Unwrap {
                subject: subject.to_owned(),
                dir: self.dir.clone(),
            })?;
        Ok(Some(key))
    }

    /// The erased key's commitment, when `subject`'s key was erased.
    pub fn erased_commitment(&self, subject: &KeySubject) -> Result<Option<String>, VaultError> {
        Ok(files::read_tombstone(
            &self.subject_file(ERASED_DIR, &subject.label()),
        )?)
    }

    /// `subject`'s data key: `Ok(None)` when it was erased; made (and written) when it does
    /// not exist yet and `create` is set.
    fn key(&self, subject: &str, make: Make) -> Result<Option<Option<Key>>, VaultError> {
        if let Some(k) = self.cache().get(subject).copied() {
            return Ok(Some(k));
        }
        let tomb = self.subject_file(ERASED_DIR, subject);
        if files::read_tombstone(&tomb)?.is_some() {
            self.cache().insert(subject.to_owned(), None);
            return Ok(Some(None));
        }
        let path = self.subject_file(SUBJECTS_DIR, subject);
        let key = match self.unwrap_file(&path, subject)? {
            Some(k) => k,
            None if make == Make::Now => {
                let k: Key = random()?;
                files::ensure_dir(&self.dir.join(SUBJECTS_DIR))?;
                self.write_wrapped(&path, subject, &k)?;
                k
            }
            None if make == Make::Deferred => {
                let k: Key = random()?;
                let (nonce, ct) = aead_seal(&self.master, &k, &wrap_aad(subject))?;
                let text = files::wrapped_text(subject, &nonce, &ct);
                self.unwritten().push((subject.to_owned(), path, text));
                k
            }
            None => return Ok(None),
        };
        self.cache().insert(subject.to_owned(), Some(key));
        Ok(Some(Some(key)))
    }

    fn counselor_key(&self) -> Result<Key, VaultError> {
        if let Some(k) = self.counselor.get() {
            return Ok(*k);
        }
        let k = self
            .unwrap_file(&self.dir.join(COUNSELOR_FILE), COUNSELOR_SUBJECT)?
            .ok_or_else(|| {
                VaultError::File(KeyFileError::Missing {
                    path: self.dir.join(COUNSELOR_FILE),
                })
            })?;
        Ok(*self.counselor.get_or_init(|| k))
    }

    /// Seals `draft`'s personal fields under its subject's key (made on first use), leaving
    /// the clear part with presence placeholders in `draft.event`. `target` is a correction's
    /// or retraction's target: its kind and the subject it was sealed under. A draft with no
    /// personal field stays as it is (schema 1). An erased subject's key is never re-made:
    /// an event about an erased child is refused.
    pub fn seal(
        &self,
        draft: &mut Draft,
        target: Option<(EventKind, Option<KeySubject>)>,
    ) -> Result<(), VaultError> {
        self.seal_making(draft, target, Make::Now)
    }

    /// [`Vault::seal`], except that a key it makes is written by the next
    /// [`Vault::write_new_keys`] (with every other key made meanwhile), not before it returns:
    /// a batch's new keys then cost two syncs in all. The caller must write them before it
    /// appends what they sealed (`careledger::sealing::Sealer` does).
    pub fn seal_deferred(
        &self,
        draft: &mut Draft,
        target: Option<(EventKind, Option<KeySubject>)>,
    ) -> Result<(), VaultError> {
        self.seal_making(draft, target, Make::Deferred)
    }

    fn seal_making(
        &self,
        draft: &mut Draft,
        target: Option<(EventKind, Option<KeySubject>)>,
        make: Make,
    ) -> Result<(), VaultError> {
        self.seal_fields(draft, target, make)?;
        if make == Make::Now {
            // The key may have been made by an earlier deferred seal: written before returning.
            self.write_new_keys()?;
        }
        Ok(())
    }

    fn seal_fields(
        &self,
        draft: &mut Draft,
        target: Option<(EventKind, Option<KeySubject>)>,
        make: Make,
    ) -> Result<(), VaultError> {
        let shape = |source| VaultError::Shape {
            id: draft.id.clone(),
            source,
        };
        let (clear, personal) =
            seal::split(&draft.event, target.as_ref().map(|t| t.0)).map_err(shape)?;
        if personal.is_empty() {
            return Ok(());
        }
        let kind = draft.event.kind();
        let amendment = draft.event.target().is_some();
        let subject = seal::subject_of(&draft.event, target.as_ref().and_then(|t| t.1.as_ref()))
            // An amendment of an event about no one person (an activity, a term): its reason is
            // sealed under the key of the staff member who recorded it.
            .or_else(|| amendment.then(|| KeySubject::Staff(draft.actor.clone())))
            .ok_or(VaultError::NoSubject {
                id: draft.id.clone(),
                kind: kind.as_str(),
            })?;
        let label = subject.label();
        let key = match self.key(&label, make)? {
            Some(Some(k)) => k,
            _ => {
                return Err(VaultError::Erased {
                    commitment: self.erased_commitment(&subject)?.unwrap_or_default(),
                    subject: label,
                });
            }
        };
        let aad = seal::associated_data(&draft.id, kind, SEALED_SCHEMA, &label);
        let mut fields = personal.fields;
        if !personal.confidential.is_empty() {
            let ck = self.counselor_key()?;
            for (pointer, value) in personal.confidential {
                let msg =
                    serde_json::to_vec(&value).map_err(|e| shape(seal::SealError::Shape(e)))?;
                let (nonce, ct) = aead_seal(&ck, &msg, &confidential_aad(&aad, &pointer))?;
                let packed = hex::encode([nonce, ct].concat());
                fields.insert(format!("{pointer}#counselor"), Value::String(packed));
            }
        }
        let msg = serde_json::to_vec(&fields).map_err(|e| shape(seal::SealError::Shape(e)))?;
        let (nonce, ciphertext) = aead_seal(&key, &msg, &aad)?;
        draft.event = clear;
        draft.sealed = Some(Sealed {
            key: label,
            nonce,
            ciphertext,
        });
        Ok(())
    }

    /// Opens a sealed envelope for `reader`: its personal fields put back (counseling notes
    /// only for a counselor), or, when its subject's key was erased, the erased form
    /// (`events::seal::erased`). A clear envelope comes back as it is. A ciphertext that does
    /// not authenticate under its event's associated data is an error, never a guess.
    pub fn open(&self, mut env: Envelope, reader: Reader) -> Result<Envelope, VaultError> {
        let Some(sealed) = &env.sealed else {
            return Ok(env);
        };
        let shape = |source| VaultError::Shape {
            id: env.id.clone(),
            source,
        };
        let key = match self.key(&sealed.key, Make::No)? {
            Some(Some(k)) => k,
            Some(None) => {
                env.event = seal::erased(&env.event).map_err(shape)?;
                return Ok(env);
            }
            None => {
                return Err(VaultError::NoKey {
                    id: env.id.clone(),
                    subject: sealed.key.clone(),
                    dir: self.dir.clone(),
                });
            }
        };
        let aad = seal::associated_data(&env.id, env.event.kind(), env.schema, &sealed.key);
        let tampered = || VaultError::Tampered { id: env.id.clone() };
        let msg = aead_open(&key, &sealed.nonce, &sealed.ciphertext, &aad).ok_or_else(tampered)?;
        let stored: BTreeMap<String, Value> =
            serde_json::from_slice(&msg).map_err(|_| tampered())?;
        let mut fields = BTreeMap::new();
        let mut counselor = None;
        for (pointer, value) in stored {
            match pointer.strip_suffix("#counselor") {
                None => {
                    fields.insert(pointer, value);
                }
                Some(p) if reader == Reader::Counselor => {
                    let ck = match &counselor {
                        Some(k) => *k,
                        None => *counselor.insert(self.counselor_key()?),
                    };
                    let packed = value
                        .as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .filter(|b| b.len() > 24)
                        .ok_or_else(tampered)?;
                    let (nonce, ct) = packed.split_at(24);
                    let clear = aead_open(&ck, nonce, ct, &confidential_aad(&aad, p))
                        .ok_or_else(tampered)?;
                    let v: Value = serde_json::from_slice(&clear).map_err(|_| tampered())?;
                    fields.insert(p.to_owned(), v);
                }
                Some(_) => {}
            }
        }
        env.event = seal::merge(&env.event, &fields).map_err(shape)?;
        Ok(env)
    }

    /// The commitment of `subject`'s live key (what an erasure records); `None` when there is
    /// no such key (never made, or erased).
    pub fn commitment_of(&self, subject: &KeySubject) -> Result<Option<String>, VaultError> {
        let label = subject.label();
        Ok(match self.key(&label, Make::No)? {
            Some(Some(k)) => Some(commitment(&label, &k)),
            _ => None,
        })
    }

    /// Erases `subject`'s key: writes its tombstone (the commitment), then removes the wrapped
    /// key and syncs the directory. Returns the commitment; refuses a key already erased.
    pub fn erase(&self, subject: &KeySubject) -> Result<String, VaultError> {
        let label = subject.label();
        if let Some(c) = self.erased_commitment(subject)? {
            return Err(VaultError::Erased {
                subject: label,
                commitment: c,
            });
        }
        let c = match self.key(&label, Make::No)? {
            Some(Some(k)) => commitment(&label, &k),
            // A subject that never had a key: the tombstone still forbids one from now on.
            _ => commitment(&label, &[0u8; 32]),
        };
        files::ensure_dir(&self.dir.join(ERASED_DIR))?;
        files::write_new(
            &self.subject_file(ERASED_DIR, &label),
            &files::tombstone_text(&label, &c),
        )?;
        files::remove_synced(&self.subject_file(SUBJECTS_DIR, &label))?;
        // A key made and not written yet is never written now.
        self.unwritten().retain(|(subject, _, _)| *subject != label);
        self.cache().insert(label, None);
        self.erasures
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(c)
    }

    /// How many keys this handle has erased (`erase`) since it was opened. Anything opened
    /// with this vault and kept is stale once this changes: an erased key's fields must be
    /// gone from every view at once.
    pub fn erasures(&self) -> u64 {
        self.erasures.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests;
