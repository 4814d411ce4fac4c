//! The key directory: the Ed25519 key that signs the log's checkpoints (docs/proofs.md), kept
//! outside the store, and opening a store with it for appends.
//!
//! Where: `--keys DIR`, else `$CARELEDGER_KEYS`, else `<db>.keys` beside the store. The
//! directory is mode 0700 and holds `checkpoint-signer.key` (mode 0600): one line, the
//! private-key string `PRIVATE+KEY+<origin>+<key id>+<key>`. `init` makes it with the store,
//! `keys init` for an existing store; neither ever replaces a key. `keys show` prints the
//! verifier key an inspector pins.
//!
//! An append without a key: if the store's checkpoints were signed before, it is refused (exit
//! 4) before anything is written — the key is missing, not unneeded, and a new one would not be
//! the key inspectors pinned. A store never signed (made before keys, or by the library) is
//! appended to with a warning naming `careledger keys init`; once a key is there, the next
//! command that opens the store with it signs the head.
//!
//! The same directory holds the master key and the data keys of the `vault` crate (docs/privacy.md):
//! `init` makes them with the store, so a new store seals personal fields from its first event.
//!
//! The same directory holds `county-secret.key` (mode 0600), the county's pseudonym secret
//! (`events::pseudonym`, docs/privacy.md) that the bureau issues and every school installs with
//! `keys import-county-secret FILE`; the bureau's feeds (`export child-terms`) refuse to run
//! without it (exit 4) rather than write real ids.
//!
//! This module owns the key files and their permissions; it must never print the private key
//! or the county secret, write them anywhere but their files, or replace an existing one.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Result;
use events::pseudonym::CountySecret;
use store::Store;
use tlog::NoteSigner;

use crate::{BadInput, CliError};

/// The private key's file name inside the key directory.
pub const KEY_FILE: &str = "checkpoint-signer.key";
/// The county secret's file name inside the key directory.
pub const COUNTY_SECRET_FILE: &str = "county-secret.key";
/// The prefix of a default origin; the store directory's name follows.
const DEFAULT_ORIGIN_PREFIX: &str = "careledger.local/";

/// The key directory: `--keys` / `$CARELEDGER_KEYS` when given, else `<db>.keys` beside the
/// store.
pub fn key_dir(db: &Path, keys: Option<&Path>) -> PathBuf {
    if let Some(k) = keys {
        return k.to_owned();
    }
    let abs = std::path::absolute(db).unwrap_or_else(|_| db.to_owned());
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "careledger-data".into());
    abs.with_file_name(format!("{name}.keys"))
}

/// `careledger.local/<store directory name>`, spaces and plus signs made hyphens (a key name
/// may hold neither).
pub fn default_origin(db: &Path) -> String {
    let abs = std::path::absolute(db).unwrap_or_else(|_| db.to_owned());
    let name: String = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    let name = if name.is_empty() {
        "store".into()
    } else {
        name
    };
    format!("{DEFAULT_ORIGIN_PREFIX}{name}")
}

/// Reads the signer from the key directory: `None` when there is no key file.
pub fn load(dir: &Path) -> Result<Option<NoteSigner>> {
    let path = dir.join(KEY_FILE);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                CliError::Environment(format!("cannot read {}: {e}", path.display())).into(),
            );
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::Environment(format!(
            "the signing key {} can be read by others (mode {mode:o}); make it 0600 \
             (`chmod 600`) and check who has copied it",
            path.display()
        ))
        .into());
    }
    let text = fs::read_to_string(&path)
        .map_err(|e| CliError::Environment(format!("cannot read {}: {e}", path.display())))?;
    let signer = NoteSigner::from_private_key(text.trim_end_matches('\n')).map_err(|e| {
        CliError::Environment(format!(
            "{} is not a careledger signing key: {e}",
            path.display()
        ))
    })?;
    Ok(Some(signer))
}

/// Makes a new key named `origin` in `dir` (created 0700 if missing), atomically: a temporary
/// file (0600) written and synced, then linked into place, which fails rather than replace a
/// key that is already there.
pub fn create(dir: &Path, origin: &str) -> Result<NoteSigner> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        return Err(BadInput(format!(
            "a signing key already exists at {}; careledger never replaces one",
            path.display()
        ))
        .into());
    }
    if tlog::note::check_text(&format!("{origin}\n")).is_err()
        || !tlog::note::is_valid_key_name(origin)
    {
        return Err(BadInput(format!(
            "--origin {origin:?}: a log's name may not be empty nor hold a space, a plus sign or \
             a control character"
        ))
        .into());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| CliError::Environment(format!("no randomness for a new key: {e}")))?;
    let signer = NoteSigner::new(origin, ed25519_dalek::SigningKey::from_bytes(&seed))
        .map_err(|e| BadInput(format!("--origin: {e}")))?;
    seed.fill(0);
    let mut text = signer.to_private_key();
    text.push('\n');
    write_private(dir, KEY_FILE, text.as_bytes())?;
    Ok(signer)
}

/// Writes `bytes` as the new file `name` (0600) in the key directory `dir` (made 0700 if
/// missing), atomically: a temporary file written and synced, then linked into place, which
/// fails rather than replace a file that is already there.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let env = |what: &str, e: std::io::Error| CliError::Environment(format!("{what}: {e}"));
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| env(&format!("making {} private", dir.display()), e))?,
        Ok(_) => {
            return Err(
                BadInput(format!("{} is a file, not a key directory", dir.display())).into(),
            );
        }
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| env(&format!("creating {}", dir.display()), e))?,
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // A link fails if the name exists: a file made meanwhile is never replaced.
        fs::hard_link(&tmp, &path)?;
        fs::File::open(dir)?.sync_all()
    };
    let written = write();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| env(&format!("writing {}", path.display()), e))?;
    Ok(())
}

/// `keys import-county-secret FILE`: installs the bureau's county secret in the key directory.
/// The file is checked first (`CountySecret::parse`); the same secret already installed is
/// accepted again, a different one is never replaced.
pub fn import_county_secret(db: &Path, keys: Option<&Path>, file: &Path) -> Result<()> {
    let text = fs::read_to_string(file).map_err(|e| {
        BadInput(format!(
            "cannot read the county secret {}: {e}",
            file.display()
        ))
    })?;
    let secret = CountySecret::parse(&text).map_err(|e| {
        BadInput(format!(
            "{} is not a careledger county secret: {e}",
            file.display()
        ))
    })?;
    let dir = key_dir(db, keys);
    if let Some(existing) = read_county_secret(&dir)? {
        if existing == secret {
            eprintln!(
                "the county secret of {} is already installed in {}; nothing was changed",
                secret.county(),
                dir.display()
            );
            return Ok(());
        }
        return Err(BadInput(format!(
            "a different county secret (county {}) is already installed at {}; careledger \
             never replaces one: the pseudonyms of every feed already sent depend on it",
            existing.county(),
            dir.join(COUNTY_SECRET_FILE).display()
        ))
        .into());
    }
    write_private(&dir, COUNTY_SECRET_FILE, secret.to_file_text().as_bytes())?;
    eprintln!(
        "installed the county secret of {} in {}",
        secret.county(),
        dir.display()
    );
    Ok(())
}

/// Reads the installed county secret: `None` when there is no file; an unreadable, shared
/// (mode not 0600-like) or malformed file is the machine's problem (exit 4).
fn read_county_secret(dir: &Path) -> Result<Option<CountySecret>> {
    let path = dir.join(COUNTY_SECRET_FILE);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                CliError::Environment(format!("cannot read {}: {e}", path.display())).into(),
            );
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::Environment(format!(
            "the county secret {} can be read by others (mode {mode:o}); make it 0600 \
             (`chmod 600`) and ask the bureau whether it must be reissued",
            path.display()
        ))
        .into());
    }
    let text = fs::read_to_string(&path)
        .map_err(|e| CliError::Environment(format!("cannot read {}: {e}", path.display())))?;
    let secret = CountySecret::parse(&text).map_err(|e| {
        CliError::Environment(format!(
            "{} is not a careledger county secret ({e}); install the bureau's file again with \
             `careledger keys import-county-secret FILE` after removing it",
            path.display()
        ))
    })?;
    Ok(Some(secret))
}

/// The county secret a bureau feed is pseudonymised with; without one the feed is refused
/// (exit 4), saying how to install it.
pub fn load_county_secret(db: &Path, keys: Option<&Path>) -> Result<CountySecret> {
    let dir = key_dir(db, keys);
    read_county_secret(&dir)?.ok_or_else(|| {
        CliError::Environment(format!(
            "no county secret in {}: the bureau's feeds carry pseudonyms keyed by the county's \
             secret, never real ids; install the file the bureau issued with `careledger keys \
             import-county-secret FILE` (or give --keys DIR where it is installed); nothing was \
             written",
            dir.display()
        ))
        .into()
    })
}

/// `init [--origin NAME]`: the store and its key directory.
pub fn init(db: &Path, keys: Option<&Path>, origin: Option<&str>) -> Result<()> {
    let dir = key_dir(db, keys);
    let key_exists = dir.join(KEY_FILE).exists();
    let refuse_key = || -> anyhow::Error {
        BadInput(format!(
            "a signing key already exists at {}; give --keys for another key directory (a new \
             log signed by a key that signed another would look like a rewritten one)",
            dir.join(KEY_FILE).display()
        ))
        .into()
    };
    // Something already at `db` (a store, the remains of one, a file) is said first, as
    // `Store::create` words it; otherwise an existing key refuses before anything is written.
    let occupied = db.is_file() || std::fs::read_dir(db).is_ok_and(|mut d| d.next().is_some());
    if key_exists && !occupied {
        return Err(refuse_key());
    }
    let origin = origin.map_or_else(|| default_origin(db), str::to_owned);
    let store = Store::create(db).map_err(|e| CliError::from_store(&e, db, true))?;
    if key_exists {
        drop(store);
        return Err(refuse_key());
    }
    let signer = create(&dir, &origin)?;
    vault::Vault::create(&dir).map_err(|e| CliError::from_vault(&e))?;
    eprintln!("created an empty store at {}", db.display());
    eprintln!(
        "created the checkpoint signing key of {origin} in {} (keep it off the store's disk \
         backups; `careledger keys show` prints the key inspectors pin)",
        dir.display()
    );
    eprintln!(
        "created the master key in {}: personal fields are sealed under per-child and \
         per-staff keys it wraps (docs/privacy.md); back the key directory up apart from the \
         store",
        dir.display()
    );
    store.set_signer(signer)?;
    Ok(())
}

/// `keys init [--origin NAME]`: a key for an existing store, which then signs its head.
pub fn keys_init(
    store: &Store,
    db: &Path,
    keys: Option<&Path>,
    origin: Option<&str>,
) -> Result<()> {
    let dir = key_dir(db, keys);
    let origin = match (origin, store.latest_checkpoint()?) {
        (_, Some(cp)) => {
            return Err(BadInput(format!(
                "this store's checkpoints are already signed (the latest at size {}); a new key \
                 would not be the one inspectors pinned: give --keys where its key is kept",
                cp.size
            ))
            .into());
        }
        (Some(o), None) => o.to_owned(),
        (None, None) => default_origin(db),
    };
    let signer = create(&dir, &origin)?;
    eprintln!(
        "created the checkpoint signing key of {origin} in {}",
        dir.display()
    );
    if vault::Vault::open_dir(&dir)
        .map_err(|e| CliError::from_vault(&e))?
        .is_none()
    {
        vault::Vault::create(&dir).map_err(|e| CliError::from_vault(&e))?;
        eprintln!(
            "created the master key in {}: events appended from now on have their personal \
             fields sealed; the events already in the store stay in clear until the store is \
             migrated (docs/privacy.md)",
            dir.display()
        );
    }
    if let Some(cp) = store.set_signer(signer)? {
        eprintln!("signed a checkpoint of the log at size {}", cp.size);
    }
    Ok(())
}

/// `keys rotate`: every live key of the key directory re-wrapped under a new master key
/// (`vault::Vault::rotate`, atomic: a crash leaves the old generation or finishes the new one
/// on the next open). The caller holds the store open for writing, so no key is made meanwhile.
pub fn rotate(db: &Path, keys: Option<&Path>) -> Result<()> {
    let dir = key_dir(db, keys);
    if vault::Vault::open_dir(&dir)
        .map_err(|e| CliError::from_vault(&e))?
        .is_none()
    {
        return Err(BadInput(format!(
            "no master key in {}: this store seals nothing, so there is nothing to rotate; give \
             --keys DIR where its keys are kept",
            dir.display()
        ))
        .into());
    }
    let n = vault::Vault::rotate(&dir).map_err(|e| CliError::from_vault(&e))?;
    eprintln!(
        "re-wrapped {n} keys under a new master key in {}; the old master key is gone: back the \
         key directory up now and destroy its older backups (an erased key in them becomes \
         unreadable once no copy of the old master key is left)",
        dir.display()
    );
    Ok(())
}

/// `keys show`: the verifier key on stdout.
pub fn show(db: &Path, keys: Option<&Path>) -> Result<()> {
    let dir = key_dir(db, keys);
    let signer = load(&dir)?.ok_or_else(|| {
        BadInput(format!(
            "no signing key in {}; `careledger keys init` makes one",
            dir.display()
        ))
    })?;
    println!("{}", signer.verifier_key());
    eprintln!(
        "the verifier key of {} (key id {:08x}): give it to inspectors through a channel this \
         machine does not control",
        signer.name(),
        signer.key_id()
    );
    Ok(())
}

/// Readies a store opened for an append: with its key, which signs a checkpoint after each
/// commit (and the head now, if it has none); without one, see the module comment.
pub fn for_append(store: &Store, db: &Path, keys: Option<&Path>) -> Result<()> {
    let dir = key_dir(db, keys);
    match load(&dir)? {
        Some(signer) => attach(store, signer)?,
        None => {
            if let Some(cp) = store.latest_checkpoint()? {
                return Err(CliError::Environment(format!(
                    "this store's checkpoints are signed (the latest at size {}), but there is no \
                     signing key in {}: give --keys DIR (or $CARELEDGER_KEYS) where it is kept; \
                     nothing was written",
                    cp.size,
                    dir.display()
                ))
                .into());
            }
            eprintln!(
                "careledger: warning: no signing key in {}, so this batch gets no signed \
                 checkpoint; `careledger keys init` makes one",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Hands a store its key when there is one (signing a missing head checkpoint), for the
/// commands that read checkpoints and proofs. Returns the key's name, the log's origin.
pub fn with_key(store: &Store, db: &Path, keys: Option<&Path>) -> Result<Option<String>> {
    let dir = key_dir(db, keys);
    Ok(match load(&dir)? {
        Some(signer) => {
            let name = signer.name().to_owned();
            attach(store, signer)?;
            Some(name)
        }
        None => None,
    })
}

fn attach(store: &Store, signer: NoteSigner) -> Result<()> {
    match store.set_signer(signer) {
        Ok(Some(cp)) => {
            eprintln!(
                "signed the missing checkpoint of the log at size {}",
                cp.size
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e @ store::StoreError::Signer(_)) => Err(CliError::Environment(format!(
            "{e}; give --keys DIR (or $CARELEDGER_KEYS) where this store's key is kept"
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}
