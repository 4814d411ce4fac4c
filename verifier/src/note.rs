//! Opening a signed note (C2SP signed-note) with pinned keys.
//!
//! This module owns the note's text rules and the signature policy: signatures by unknown keys
//! (a different name or key id) are ignored; a signature by a pinned key must verify, or the
//! whole note is refused; at least one pinned key must have signed. It must never return the
//! text of a note no pinned key signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;

use crate::keys::{VerifierKey, is_valid_name};

/// More signature lines than this and the note is refused unread (the spec asks verifiers to
/// accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Why a note is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The bytes are not UTF-8.
    #[error("the note is not valid utf-8")]
    NotUtf8,
    /// A control character other than newline, at this byte.
    #[error("the note has a control character at byte {0}")]
    ControlCharacter(usize),
    /// No blank line, or nothing after it, or no final newline.
    #[error("the note has no blank line before its signatures")]
    NoSignatureBlock,
    /// A signature line that does not parse (1-based).
    #[error("signature line {0} is malformed")]
    BadSignatureLine(usize),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {max} signatures", max = MAX_SIGNATURES)]
    TooManySignatures,
    /// A pinned key's signature that does not verify.
    #[error("the signature of pinned key {0} does not verify")]
    BadSignature(String),
    /// No pinned key signed.
    #[error("no pinned key signed the note")]
    NoKnownSignature,
}

/// A note at least one pinned key signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The signed text, with its final newline.
    pub text: String,
    /// The pinned keys whose signatures verified, in the order they appear.
    pub signers: Vec<VerifierKey>,
}

/// Opens `msg` with the pinned `keys`.
pub fn open(msg: &[u8], keys: &[VerifierKey]) -> Result<Opened, NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::NotUtf8)?;
    if let Some((i, _)) = msg.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        return Err(NoteError::ControlCharacter(i));
    }
    // The text ends at the last blank line; everything after it is signature lines.
    let split = msg.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::NoSignatureBlock);
    }
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut signers: Vec<VerifierKey> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(NoteError::BadSignatureLine(n))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::BadSignatureLine(n))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadSignatureLine(n))?;
        if !is_valid_name(name) || raw.len() < 5 {
            return Err(NoteError::BadSignatureLine(n));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        // Unknown unless both the name and the id match a pinned key.
        let Some(key) = keys.iter().find(|k| k.name == name && k.id == id) else {
            continue;
        };
        if signers.iter().any(|s| s.text == key.text) {
            continue;
        }
        let sig = <[u8; 64]>::try_from(&raw[4..])
            .map(|b| Signature::from_bytes(&b))
            .map_err(|_| NoteError::BadSignature(key.text.clone()))?;
        key.key
            .verify_strict(text.as_bytes(), &sig)
            .map_err(|_| NoteError::BadSignature(key.text.clone()))?;
        signers.push(key.clone());
    }
    if signers.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(Opened {
        text: text.to_owned(),
        signers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_KEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn key() -> Vec<VerifierKey> {
        vec![VerifierKey::parse(SPEC_KEY).unwrap()]
    }

    #[test]
    fn opens_the_signed_note_spec_example() {
        let n = open(SPEC_NOTE.as_bytes(), &key()).unwrap();
        assert_eq!(n.text, "This is an example message.\n");
        assert_eq!(n.signers.len(), 1);
    }

    #[test]
    fn unknown_signatures_are_ignored_but_one_known_is_required() {
        let extra = format!("{SPEC_NOTE}\u{2014} witness.example/w AAAAAQAAAAAAAAAA\n");
        assert!(open(extra.as_bytes(), &key()).is_ok());
        let only_unknown =
            "This is an example message.\n\n\u{2014} witness.example/w AAAAAQAAAAAAAAAA\n";
        assert_eq!(
            open(only_unknown.as_bytes(), &key()),
            Err(NoteError::NoKnownSignature)
        );
        assert_eq!(
            open(SPEC_NOTE.as_bytes(), &[]),
            Err(NoteError::NoKnownSignature)
        );
    }

    #[test]
    fn a_bad_known_signature_refuses_the_note() {
        let tampered = SPEC_NOTE.replace("example message", "example massage");
        assert_eq!(
            open(tampered.as_bytes(), &key()),
            Err(NoteError::BadSignature(SPEC_KEY.into()))
        );
    }

    #[test]
    fn text_rules() {
        assert_eq!(
            open(b"a\tb\n\n\xe2\x80\x94 x AAAAAQ==\n", &key()),
            Err(NoteError::ControlCharacter(1))
        );
        assert_eq!(open(b"\xff\n\n", &key()), Err(NoteError::NotUtf8));
        assert_eq!(
            open(b"no signatures\n", &key()),
            Err(NoteError::NoSignatureBlock)
        );
        let no_final_newline = SPEC_NOTE.trim_end();
        assert_eq!(
            open(no_final_newline.as_bytes(), &key()),
            Err(NoteError::NoSignatureBlock)
        );
        let bad_line = "This is an example message.\n\n- example.com/foo AAAAAQ==\n";
        assert_eq!(
            open(bad_line.as_bytes(), &key()),
            Err(NoteError::BadSignatureLine(1))
        );
        let short = "This is an example message.\n\n\u{2014} example.com/foo AAAA\n";
        assert_eq!(
            open(short.as_bytes(), &key()),
            Err(NoteError::BadSignatureLine(1))
        );
        let many: String = std::iter::repeat_n(
            "\u{2014} w.example/x AAAAAQAAAAAAAAAA\n",
            MAX_SIGNATURES + 1,
        )
        .collect();
        assert_eq!(
            open(format!("{SPEC_NOTE}{many}").as_bytes(), &key()),
            Err(NoteError::TooManySignatures)
        );
    }
}
