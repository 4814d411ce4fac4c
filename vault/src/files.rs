//! The key directory's files: their text, their permissions, and writing them so that a
//! crash leaves either the whole file or none.
//!
//! This module owns the three file texts (master key, wrapped key, tombstone) and strict
//! reading of them; it must never print a key, overwrite a file, or leave a file readable by
//! others.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Not the format careledger writes.
    #[error("{path}: line {line}: expected {expected}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What the format puts there.
        expected: &'static str,
    },
    /// Readable by others.
    #[error(
        "{path} can be read by others (mode {mode:o}); make it 0600 and check who has copied it"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A file careledger needs is not there.
    #[error("{path} is missing")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file careledger would write is already there (keys are never replaced).
    #[error("{path} already exists; careledger never replaces a key")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes `dir` (0700) when missing; makes an existing one private.
pub fn ensure_dir(dir: &Path) -> Result<(), KeyFileError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
        }
        Ok(_) => Err(KeyFileError::Io {
            path: dir.to_owned(),
            source: std::io::Error::other("a file, not a directory"),
        }),
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir)),
    }
}

/// Writes a new file (0600) whole: a temporary file written and synced, then linked into
/// place, which fails rather than replace a file already there; the directory is synced.
pub fn write_new(path: &Path, text: &str) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    let written = write();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    })
}

/// Writes new files (0600) whole, many for the cost of two syncs instead of two each: every
/// text goes to a temporary file first and the file system is synced (the contents are on
/// disk), then each is linked into place — which fails rather than replace a file already
/// there — and each directory is synced. A crash leaves each file whole or absent, never
/// empty. On an error, the files linked so far stay (each whole); the caller sees which by
/// whether its path holds its text.
pub fn write_new_all(files: &[(PathBuf, String)]) -> Result<(), KeyFileError> {
    let Some((first, _)) = files.first() else {
        return Ok(());
    };
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(KeyFileError::Exists { path: path.clone() });
    }
    let tmp_of = |path: &Path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dir_of(path).join(format!(".{name}.{}.tmp", std::process::id()))
    };
    let result = (|| {
        for (path, text) in files {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp_of(path))
                .map_err(io(path))?;
            f.write_all(text.as_bytes()).map_err(io(path))?;
        }
        // One syncfs(2) puts every temporary file's contents on disk at once.
        let d = fs::File::open(dir_of(first)).map_err(io(dir_of(first)))?;
        nix::unistd::syncfs(&d).map_err(|e| io(dir_of(first))(e.into()))?;
        let mut dirs: Vec<&Path> = Vec::new();
        for (path, _) in files {
            fs::hard_link(tmp_of(path), path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyFileError::Exists { path: path.clone() }
                } else {
                    io(path)(e)
                }
            })?;
            if !dirs.contains(&dir_of(path)) {
                dirs.push(dir_of(path));
            }
        }
        for dir in dirs {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    })();
    for (path, _) in files {
        let _ = fs::remove_file(tmp_of(path));
    }
    result
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Moves `from` over `to` (a rename: the old file is replaced whole or not at all) and syncs
/// `to`'s directory.
pub fn replace(from: &Path, to: &Path) -> Result<(), KeyFileError> {
    fs::rename(from, to).map_err(io(to))?;
    let dir = to.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Removes a directory and everything in it (a missing one is fine), then syncs its parent.
pub fn remove_tree(dir: &Path) -> Result<(), KeyFileError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(parent))
}

/// The names of the files of `dir` (none when it does not exist), temporary files left out.
pub fn names(dir: &Path) -> Result<Vec<String>, KeyFileError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.map_err(io(dir))?.file_name();
        let name = name.to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a file (a missing one is fine) and syncs its directory, so the removal is on disk.
pub fn remove_synced(path: &Path) -> Result<(), KeyFileError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The file's text, `None` when it does not exist; refuses a file readable by others.
fn read_private(path: &Path) -> Result<Option<String>, KeyFileError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Open {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map(Some).map_err(io(path))
}

/// Strict lines: exactly `expected.len()` lines (a final newline optional), each starting
/// with its prefix; returns what follows each prefix.
fn fields<'t>(
    path: &Path,
    text: &'t str,
    expected: &[(&'static str, &'static str)],
) -> Result<Vec<&'t str>, KeyFileError> {
    let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
    let mut out = Vec::new();
    for (i, (prefix, what)) in expected.iter().enumerate() {
        let rest = lines
            .next()
            .and_then(|l| l.strip_prefix(prefix))
            .ok_or_else(|| KeyFileError::Format {
                path: path.to_owned(),
                line: i + 1,
                expected: what,
            })?;
        out.push(rest);
    }
    if lines.next().is_some() {
        return Err(KeyFileError::Format {
            path: path.to_owned(),
            line: expected.len() + 1,
            expected: "the end of the file",
        });
    }
    Ok(out)
}

fn hex_field(
    path: &Path,
    line: usize,
    s: &str,
    len: Option<usize>,
) -> Result<Vec<u8>, KeyFileError> {
    let bad = || KeyFileError::Format {
        path: path.to_owned(),
        line,
        expected: "lowercase hex digits",
    };
    if s.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    let b = hex::decode(s).map_err(|_| bad())?;
    if len.is_some_and(|n| n != b.len()) {
        return Err(bad());
    }
    Ok(b)
}

const MASTER_HEADER: &str = "careledger master key v1";
const WRAPPED_HEADER: &str = "careledger wrapped key v1";
const TOMBSTONE_HEADER: &str = "careledger erased key v1";

/// The master key's file text.
pub fn master_text(key: &[u8; 32]) -> String {
    format!("{MASTER_HEADER}\nkey: {}\n", hex::encode(key))
}

/// Reads the master key; `None` when the file does not exist.
pub fn read_master(path: &Path) -> Result<Option<[u8; 32]>, KeyFileError> {
    let Some(text) = read_private(path)? else {
        return Ok(None);
    };
    let f = fields(
        path,
        &text,
        &[
            (MASTER_HEADER, "\"careledger master key v1\""),
            ("key: ", "\"key: <64 lowercase hex digits>\""),
        ],
    )?;
    if !f[0].is_empty() {
        return Err(KeyFileError::Format {
            path: path.to_owned(),
            line: 1,
            expected: "\"careledger master key v1\"",
        });
    }
    let b = hex_field(path, 2, f[1], Some(32))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&b);
    Ok(Some(key))
}

/// A wrapped key's file text.
pub fn wrapped_text(subject: &str, nonce: &[u8], ct: &[u8]) -> String {
    format!(
        "{WRAPPED_HEADER}\nsubject: {subject}\nnonce: {}\nwrapped: {}\n",
        hex::encode(nonce),
        hex::encode(ct)
    )
}

/// A wrapped key as read: the nonce and the wrapped bytes.
pub type Wrapped = (Vec<u8>, Vec<u8>);

/// Reads a wrapped key of `subject`; `None` when the file does not exist.
pub fn read_wrapped(path: &Path, subject: &str) -> Result<Option<Wrapped>, KeyFileError> {
    let Some(text) = read_private(path)? else {
        return Ok(None);
    };
    let f = fields(
        path,
        &text,
        &[
            (WRAPPED_HEADER, "\"careledger wrapped key v1\""),
            (
                "subject: ",
                "\"subject: <child:id | staff:id | counselor>\"",
            ),
            ("nonce: ", "\"nonce: <48 lowercase hex digits>\""),
            ("wrapped: ", "\"wrapped: <lowercase hex digits>\""),
        ],
    )?;
    if !f[0].is_empty() || f[1] != subject {
        return Err(KeyFileError::Format {
            path: path.to_owned(),
            line: if f[0].is_empty() { 2 } else { 1 },
            expected: "the subject its file name says",
        });
    }
    Ok(Some((
        hex_field(path, 3, f[2], Some(24))?,
        hex_field(path, 4, f[3], None)?,
    )))
}

/// A tombstone's file text.
pub fn tombstone_text(subject: &str, commitment: &str) -> String {
    format!("{TOMBSTONE_HEADER}\nsubject: {subject}\ncommitment: {commitment}\n")
}

/// Reads a tombstone's commitment; `None` when there is none.
pub fn read_tombstone(path: &Path) -> Result<Option<String>, KeyFileError> {
    let Some(text) = read_private(path)? else {
        return Ok(None);
    };
    let f = fields(
        path,
        &text,
        &[
            (TOMBSTONE_HEADER, "\"careledger erased key v1\""),
            ("subject: ", "\"subject: <child:id | staff:id>\""),
            ("commitment: ", "\"commitment: <64 lowercase hex digits>\""),
        ],
    )?;
    hex_field(path, 3, f[2], Some(32))?;
    Ok(Some(f[2].to_owned()))
}
