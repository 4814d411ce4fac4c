//! Checkpoints (C2SP tlog-checkpoint): the origin, tree size and root the store signs after
//! each committed batch.
//!
//! This module owns the checkpoint text in both directions and is strict about it: the size is
//! canonical decimal (no sign, no leading zero), the root is canonical base64 of exactly 32
//! bytes, the origin is a valid key name, and this log writes no extension lines. It must never
//! accept a text it would not itself write, so that one tree state has exactly one text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::hash::Hash;
use crate::note::{NoteError, NoteSigner, is_valid_key_name};
use crate::tree::MAX_TREE_SIZE;

/// What a checkpoint text can get wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text does not end in a newline.
    #[error("checkpoint text does not end in a newline")]
    NotTerminated,
    /// Not exactly three lines (this log writes no extension lines).
    #[error("checkpoint has {0} lines, not 3 (origin, size, root)")]
    LineCount(usize),
    /// The origin is not a valid key name.
    #[error("origin {0:?} is empty or has a space, a plus sign or a control character")]
    BadOrigin(String),
    /// The size line is not canonical decimal.
    #[error("tree size {0:?} is not canonical decimal")]
    BadSize(String),
    /// The size is above [`MAX_TREE_SIZE`].
    #[error("tree size {0} is above the limit of {max}", max = MAX_TREE_SIZE)]
    SizeTooLarge(u64),
    /// The root line is not canonical base64 of 32 bytes.
    #[error("root hash {0:?} is not canonical base64 of 32 bytes")]
    BadRoot(String),
    /// The signer's key name is not the origin.
    #[error("the signer is named {signer:?} but the origin is {origin:?}")]
    SignerNotOrigin {
        /// The signer's key name.
        signer: String,
        /// The checkpoint's origin.
        origin: String,
    },
    /// The note could not be signed.
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// One signed tree head of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log: the school's or county's, e.g. `careledger.example/school-3201`.
    pub origin: String,
    /// The number of leaves (envelopes) in the tree.
    pub size: u64,
    /// The RFC 6962 root of the tree at `size`.
    pub root: Hash,
}

impl Checkpoint {
    /// `origin\nsize\nroot\n`.
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if !is_valid_key_name(&self.origin) || self.origin.chars().any(char::is_control) {
            return Err(CheckpointError::BadOrigin(self.origin.clone()));
        }
        if self.size > MAX_TREE_SIZE {
            return Err(CheckpointError::SizeTooLarge(self.size));
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        ))
    }

    /// Parses the note text of a checkpoint (the part above the blank line).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::NotTerminated)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines[..] else {
            return Err(CheckpointError::LineCount(lines.len()));
        };
        if !is_valid_key_name(origin) || origin.chars().any(char::is_control) {
            return Err(CheckpointError::BadOrigin(origin.to_owned()));
        }
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// The signed note of this checkpoint. The signer's key name must be the origin, so that
    /// the pinned key says which log it speaks for.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::SignerNotOrigin {
                signer: signer.name().to_owned(),
                origin: self.origin.clone(),
            });
        }
        Ok(signer.sign(&self.to_text()?)?)
    }
}

/// Canonical decimal: digits only, no leading zero except `0` itself.
fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    let bad = || CheckpointError::BadSize(s.to_owned());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad());
    }
    let n: u64 = s.parse().map_err(|_| bad())?;
    if n > MAX_TREE_SIZE {
        return Err(CheckpointError::SizeTooLarge(n));
    }
    Ok(n)
}

fn parse_root(s: &str) -> Result<Hash, CheckpointError> {
    let bad = || CheckpointError::BadRoot(s.to_owned());
    let bytes = STANDARD.decode(s).map_err(|_| bad())?;
    let root: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
    // The standard engine already refuses non-zero trailing bits; re-encoding pins the one text.
    if STANDARD.encode(root) != s {
        return Err(bad());
    }
    Ok(Hash(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "careledger.example/school-1".into(),
            size: 20852163,
            root: Hash([0x0a; 32]),
        }
    }

    #[test]
    fn round_trips() {
        let text = cp().to_text().unwrap();
        assert_eq!(
            text,
            "careledger.example/school-1\n20852163\nCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo=\n"
        );
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp());
    }

    #[test]
    fn strict_parse() {
        let root = Hash([0x0a; 32]).to_base64();
        let cases: &[(String, CheckpointError)] = &[
            (format!("o\n1\n{root}"), CheckpointError::NotTerminated),
            (
                format!("o\n01\n{root}\n"),
                CheckpointError::BadSize("01".into()),
            ),
            (
                format!("o\n00\n{root}\n"),
                CheckpointError::BadSize("00".into()),
            ),
            (
                format!("o\n+1\n{root}\n"),
                CheckpointError::BadSize("+1".into()),
            ),
            (
                format!("o\n-1\n{root}\n"),
                CheckpointError::BadSize("-1".into()),
            ),
            (
                format!("o\n 1\n{root}\n"),
                CheckpointError::BadSize(" 1".into()),
            ),
            (
                format!("o\n\n{root}\n"),
                CheckpointError::BadSize(String::new()),
            ),
            (
                format!("o\n99999999999999999999\n{root}\n"),
                CheckpointError::BadSize("99999999999999999999".into()),
            ),
            (
                format!("o\n{}\n{root}\n", MAX_TREE_SIZE + 1),
                CheckpointError::SizeTooLarge(MAX_TREE_SIZE + 1),
            ),
            (
                "o\n1\nAAAA\n".into(),
                CheckpointError::BadRoot("AAAA".into()),
            ),
            (
                "o\n1\n!!!!\n".into(),
                CheckpointError::BadRoot("!!!!".into()),
            ),
            (
                format!("o\n1\n{}\n", &root[..43]),
                CheckpointError::BadRoot(root[..43].into()),
            ),
            // Non-zero trailing bits in the last base64 digit.
            (
                "o\n1\nCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgp=\n".into(),
                CheckpointError::BadRoot("CgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgp=".into()),
            ),
            (
                format!("o\n1\n{root}\next\n"),
                CheckpointError::LineCount(4),
            ),
            ("o\n1\n".to_string(), CheckpointError::LineCount(2)),
            (
                format!("a b\n1\n{root}\n"),
                CheckpointError::BadOrigin("a b".into()),
            ),
            (
                format!("\n1\n{root}\n"),
                CheckpointError::BadOrigin(String::new()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::parse(text).as_ref(), Err(want), "{text:?}");
        }
        assert_eq!(
            Checkpoint::parse(&format!("o\n0\n{root}\n")).unwrap().size,
            0
        );
    }

    #[test]
    fn signer_must_be_the_origin() {
        let signer = NoteSigner::new(
            "other.example/log",
            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        assert!(matches!(
            cp().sign(&signer),
            Err(CheckpointError::SignerNotOrigin { .. })
        ));
        let signer = NoteSigner::new(
            "careledger.example/school-1",
            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        let note = cp().sign(&signer).unwrap();
        assert!(note.starts_with(&cp().to_text().unwrap()));
        assert!(note.contains("\n\n\u{2014} careledger.example/school-1 "));
    }
}
