//! Pinned verifier keys: the `<name>+<hex key id>+<base64(0x01 ‖ public key)>` strings of the
//! signed-note format, given with `--key` or in a keys file.
//!
//! This module owns parsing those strings and must never accept one whose key id does not match
//! its name and key: a pinned key is exactly what the inspector was handed, or nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// Ed25519's signature type byte in signed notes.
const ED25519: u8 = 0x01;

/// Why a verifier-key string is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not three `+`-separated parts.
    #[error("verifier key {0:?} is not <name>+<key id>+<key>")]
    Shape(String),
    /// The name has a space or a plus sign, or is empty.
    #[error("verifier key {0:?} has a key name with a space or a plus sign")]
    Name(String),
    /// The key id is not 8 lowercase hex digits.
    #[error("verifier key {0:?} has a key id that is not 8 lowercase hex digits")]
    Id(String),
    /// The key material is not 0x01 and a valid 32-byte Ed25519 key, in base64.
    #[error("verifier key {0:?} is not base64 of 0x01 and a 32-byte ed25519 public key")]
    Material(String),
    /// The key id is not the one the name and key give.
    #[error("verifier key {0:?} has a key id that does not match its name and key")]
    IdMismatch(String),
    /// A bad line of a keys file.
    #[error("keys file line {line}: {source}")]
    Line {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the key on it.
        source: Box<KeyError>,
    },
}

/// One pinned Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key name: the origin of the log it signs for.
    pub name: String,
    /// The key id of the signed-note format.
    pub id: u32,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// The string as pinned, which also names the key in the state file.
    pub text: String,
}

/// Key names are non-empty and have no Unicode space and no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, key: &[u8; 32]) -> u32 {
    let d = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519])
        .chain_update(key)
        .finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl VerifierKey {
    /// Parses one verifier-key string, checking its key id.
    pub fn parse(s: &str) -> Result<VerifierKey, KeyError> {
        // The name has no '+' and the id is hex, so the first two '+' split the parts; the
        // base64 key material may itself contain '+'.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Shape(s.to_owned()));
        };
        if !is_valid_name(name) {
            return Err(KeyError::Name(s.to_owned()));
        }
        if id.len() != 8
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(KeyError::Id(s.to_owned()));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| KeyError::Id(s.to_owned()))?;
        let bad = || KeyError::Material(s.to_owned());
        let raw = STANDARD.decode(material).map_err(|_| bad())?;
        let (&alg, key) = raw.split_first().ok_or_else(bad)?;
        let key: [u8; 32] = key.try_into().map_err(|_| bad())?;
        if alg != ED25519 {
            return Err(bad());
        }
        let vk = VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
        if key_id(name, &key) != id {
            return Err(KeyError::IdMismatch(s.to_owned()));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            key: vk,
            text: s.to_owned(),
        })
    }

    /// A keys file: one verifier key per line; blank lines and lines starting with `#` are
    /// skipped.
    pub fn parse_file(text: &str) -> Result<Vec<VerifierKey>, KeyError> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(line, l)| {
                VerifierKey::parse(l).map_err(|e| KeyError::Line {
                    line,
                    source: Box::new(e),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_signed_note_spec_example() {
        let k = VerifierKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        assert_eq!(k.name, "example.com/foo");
        assert_eq!(k.id, 0x530d903a);
    }

    #[test]
    fn key_material_may_contain_plus_signs() {
        // Found by the agreement property test: base64 has '+' in its alphabet.
        let k =
            VerifierKey::parse(".--13-v1b.+d7523034+Abli+Nk9qnQPyt/W3ZhhViTdBl//NoeHB2Xqm+fcwCtt")
                .unwrap();
        assert_eq!(k.id, 0xd7523034);
    }

    #[test]
    fn refuses_malformed_keys() {
        let good = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        assert!(matches!(
            VerifierKey::parse("example.com/foo+530d903a"),
            Err(KeyError::Shape(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&format!("{good}+x")),
            Err(KeyError::Material(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("530d903a", "530D903A")),
            Err(KeyError::Id(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("530d903a", "530d903b")),
            Err(KeyError::IdMismatch(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("example.com/foo", "example.com/bar")),
            Err(KeyError::IdMismatch(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("Aeky", "Aaky")),
            Err(KeyError::Material(_) | KeyError::IdMismatch(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("+Aeky", "+Aky")),
            Err(KeyError::Material(_))
        ));
        assert!(matches!(
            VerifierKey::parse(&good.replace("+Aeky", "+Beky")),
            Err(KeyError::Material(_))
        ));
    }

    #[test]
    fn keys_file_names_the_bad_line() {
        let text = "# pinned on the first visit\n\nexample.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\nnot a key\n";
        match VerifierKey::parse_file(text) {
            Err(KeyError::Line { line, .. }) => assert_eq!(line, 4),
            other => panic!("{other:?}"),
        }
    }
}
