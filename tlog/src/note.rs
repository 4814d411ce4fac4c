//! Signed notes (C2SP signed-note), signing side: key names, key ids, verifier-key and
//! private-key strings, and Ed25519 signature lines.
//!
//! This module owns the text rules a note must meet before it is signed; it must never sign text
//! that a conforming verifier would refuse to open, and never print a private key except through
//! [`NoteSigner::to_private_key`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in signed notes.
pub const ED25519: u8 = 0x01;

/// What can go wrong building or signing a note.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key name is empty or has a space or a plus sign.
    #[error("key name {0:?} is empty or has a space or a plus sign")]
    BadKeyName(String),
    /// The text is empty or lacks its final newline.
    #[error("note text is empty or does not end in a newline")]
    TextNotTerminated,
    /// The text has a control character other than newline, at this byte.
    #[error("note text has a control character at byte {0}")]
    ControlCharacter(usize),
    /// A private-key string that does not parse; says which part.
    #[error("private key string is malformed: {0}")]
    BadPrivateKey(&'static str),
}

/// Key names are non-empty and contain no Unicode space and no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`, big-endian.
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// `<name>+<hex key id>+<base64(0x01 ‖ public key)>`, what an inspector pins.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(ED25519);
    material.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{:08x}+{}",
        key_id(name, key),
        STANDARD.encode(material)
    )
}

/// Checks the text rules of a note: non-empty, ends in a newline, no control character other
/// than newline (Rust strings are already valid UTF-8).
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    if let Some((i, _)) = text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        return Err(NoteError::ControlCharacter(i));
    }
    Ok(())
}

/// A named Ed25519 key that signs notes.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl NoteSigner {
    /// A signer named `name` (which must be a valid key name) with `key`.
    pub fn new(name: &str, key: SigningKey) -> Result<NoteSigner, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKeyName(name.to_owned()));
        }
        let id = key_id(name, &key.verifying_key());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>`, the form Go's
    /// `note.NewSigner` reads, checking that the key id matches the key.
    pub fn from_private_key(s: &str) -> Result<NoteSigner, NoteError> {
        let rest = s
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadPrivateKey(
                "it does not start with PRIVATE+KEY+",
            ))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadPrivateKey(
                "it does not have name, key id and key",
            ));
        };
        let id = parse_key_id(id_hex)
            .ok_or(NoteError::BadPrivateKey("the key id is not 8 hex digits"))?;
        let material = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadPrivateKey("the key is not base64"))?;
        let (&alg, seed) = material
            .split_first()
            .ok_or(NoteError::BadPrivateKey("the key is empty"))?;
        if alg != ED25519 {
            return Err(NoteError::BadPrivateKey("the key is not ed25519"));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::BadPrivateKey("the key is not 32 bytes"))?;
        let signer = NoteSigner::new(name, SigningKey::from_bytes(&seed))?;
        if signer.id != id {
            return Err(NoteError::BadPrivateKey(
                "the key id does not match the key",
            ));
        }
        Ok(signer)
    }

    /// The private-key string [`NoteSigner::from_private_key`] reads. It holds the secret seed.
    pub fn to_private_key(&self) -> String {
        let mut material = Vec::with_capacity(33);
        material.push(ED25519);
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(material)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id of the signed-note format.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The verifier-key string of this signer.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.key.verifying_key())
    }

    /// The signature line `— <name> <base64(key id ‖ signature)>\n` over `text`.
    pub fn signature_line(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!("\u{2014} {} {}\n", self.name, STANDARD.encode(raw)))
    }

    /// The signed note: the text, a blank line, this signer's signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        let line = self.signature_line(text)?;
        Ok(format!("{text}\n{line}"))
    }
}

fn parse_key_id(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `sumdb/note` signing vector: a known key, text and signed output.
    #[test]
    fn signs_like_go_sumdb_note() {
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let signer = NoteSigner::from_private_key(skey).unwrap();
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.to_private_key(), skey);
        assert_eq!(
            signer.verifier_key(),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let want = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(signer.sign(text).unwrap(), want);
    }

    #[test]
    fn refuses_bad_names_and_text() {
        let key = SigningKey::from_bytes(&[7; 32]);
        assert!(matches!(
            NoteSigner::new("a+b", key.clone()),
            Err(NoteError::BadKeyName(_))
        ));
        assert!(matches!(
            NoteSigner::new("a b", key.clone()),
            Err(NoteError::BadKeyName(_))
        ));
        assert!(matches!(
            NoteSigner::new("", key.clone()),
            Err(NoteError::BadKeyName(_))
        ));
        let s = NoteSigner::new("school.example/log", key).unwrap();
        assert_eq!(s.sign("no newline"), Err(NoteError::TextNotTerminated));
        assert_eq!(s.sign(""), Err(NoteError::TextNotTerminated));
        assert_eq!(s.sign("a\tb\n"), Err(NoteError::ControlCharacter(1)));
    }

    #[test]
    fn private_key_strings_are_checked() {
        let good = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let wrong_id = good.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            NoteSigner::from_private_key(&wrong_id),
            Err(NoteError::BadPrivateKey(_))
        ));
        assert!(matches!(
            NoteSigner::from_private_key("PeterNeumann+c74f20a3+AA"),
            Err(NoteError::BadPrivateKey(_))
        ));
        let wrong_alg =
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        assert!(matches!(
            NoteSigner::from_private_key(wrong_alg),
            Err(NoteError::BadPrivateKey(_))
        ));
    }
}
