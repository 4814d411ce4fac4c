//! Pseudonymous ids for the bureau's feeds (docs/privacy.md): a child's or staff member's id
//! replaced by a keyed hash under a per-county secret, stable across exports and terms so a
//! bureau can follow a child over years without learning who it is.
//!
//! This module owns the county secret's file text and the pseudonym rule:
//! `hex(HMAC-SHA256(key, "careledger pseudonym v1" ‖ 0x00 ‖ subject ‖ 0x00 ‖ id))[..32]`, the
//! subject being `child` or `staff` so one id never maps to the same pseudonym in both roles.
//! It must never do I/O (the key directory is the binary's), never derive a pseudonym without
//! a secret (an unkeyed hash of an id is reversible by trying every id of a school), and never
//! print the key: `Debug` shows the county only.
//!
//! The secret's file (issued by the bureau, installed by every school of the county):
//!
//! ```text
//! careledger county secret v1
//! county: 黔东县
//! key: <64 lowercase hex digits: 32 random bytes>
//! ```

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The first line of a county secret file.
pub const HEADER: &str = "careledger county secret v1";

/// Whose id a pseudonym stands for; part of the hashed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A child (`child_id`).
    Child,
    /// A staff member (`staff_id`).
    Staff,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Child => "child",
            Subject::Staff => "staff",
        }
    }
}

/// A county's pseudonym secret. The key is private: it leaves only as the file text.
#[derive(Clone, PartialEq, Eq)]
pub struct CountySecret {
    county: String,
    key: [u8; 32],
}

impl std::fmt::Debug for CountySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountySecret")
            .field("county", &self.county)
            .finish_non_exhaustive()
    }
}

/// Why a county secret file was refused; `line` counts from 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// A line is missing or is not what the format puts there.
    #[error("line {line}: expected {expected}")]
    Line {
        /// The line number (from 1).
        line: usize,
        /// What the format expects on that line.
        expected: &'static str,
    },
    /// The county name is empty or has a control character.
    #[error("line 2: the county name must be non-empty printable text")]
    County,
}

impl CountySecret {
    /// A secret for `county` from 32 bytes the caller drew from the operating system's
    /// random source.
    pub fn new(county: &str, key: [u8; 32]) -> Result<Self, SecretError> {
        if county.trim().is_empty() || county.chars().any(char::is_control) {
            return Err(SecretError::County);
        }
        Ok(CountySecret {
            county: county.to_owned(),
            key,
        })
    }

    /// The county the secret was issued for.
    pub fn county(&self) -> &str {
        &self.county
    }

    /// Reads the file text; strict: exactly the three lines of the format (a final newline
    /// is optional), the key 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        if lines.next() != Some(HEADER) {
            return Err(SecretError::Line {
                line: 1,
                expected: "\"careledger county secret v1\"",
            });
        }
        let county = lines
            .next()
            .and_then(|l| l.strip_prefix("county: "))
            .ok_or(SecretError::Line {
                line: 2,
                expected: "\"county: <county name>\"",
            })?;
        let key_hex = lines
            .next()
            .and_then(|l| l.strip_prefix("key: "))
            .filter(|k| k.len() == 64 && k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or(SecretError::Line {
                line: 3,
                expected: "\"key: <64 lowercase hex digits>\"",
            })?;
        if lines.next().is_some() {
            return Err(SecretError::Line {
                line: 4,
                expected: "the end of the file",
            });
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(key_hex, &mut key).map_err(|_| SecretError::Line {
            line: 3,
            expected: "\"key: <64 lowercase hex digits>\"",
        })?;
        CountySecret::new(county, key)
    }

    /// The file text (what `parse` reads back).
    pub fn to_file_text(&self) -> String {
        format!(
            "{HEADER}\ncounty: {}\nkey: {}\n",
            self.county,
            hex::encode(self.key)
        )
    }

    /// The pseudonym of `id` as a `subject`: 32 lowercase hex digits (128 bits of the HMAC).
    pub fn pseudonym(&self, subject: Subject, id: &str) -> String {
        // HMAC accepts a key of any length; 32 bytes can never be refused.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("hmac takes keys of any length"));
        mac.update(b"careledger pseudonym v1\0");
        mac.update(subject.label().as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        hex::encode(&tag[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> CountySecret {
        CountySecret::new("黔东县", [7u8; 32]).expect("valid county")
    }

    #[test]
    fn file_text_round_trips() {
        let s = secret();
        assert_eq!(CountySecret::parse(&s.to_file_text()), Ok(s));
    }

    #[test]
    fn known_answer() {
        // Computed independently:
        // python3 -c 'import hmac,hashlib;print(hmac.new(bytes([7]*32),
        //   b"careledger pseudonym v1\0child\0s001-c0001",hashlib.sha256).hexdigest()[:32])'
        assert_eq!(
            secret().pseudonym(Subject::Child, "s001-c0001"),
            KNOWN_CHILD
        );
    }

    const KNOWN_CHILD: &str = "86db8cdd67fd4d451e287c2738fbf830";

    #[test]
    fn subjects_and_secrets_separate() {
        let s = secret();
        assert_ne!(
            s.pseudonym(Subject::Child, "x1"),
            s.pseudonym(Subject::Staff, "x1")
        );
        let other = CountySecret::new("黔东县", [8u8; 32]).expect("valid county");
        assert_ne!(
            s.pseudonym(Subject::Child, "x1"),
            other.pseudonym(Subject::Child, "x1")
        );
        assert_eq!(s.pseudonym(Subject::Child, "x1").len(), 32);
    }

    #[test]
    fn strict_parse_names_the_line() {
        let good = secret().to_file_text();
        assert_eq!(
            CountySecret::parse(&good.replace("v1", "v2")).unwrap_err(),
            SecretError::Line {
                line: 1,
                expected: "\"careledger county secret v1\""
            }
        );
        let upper = good.replace("0707", "0A07");
        assert!(matches!(
            CountySecret::parse(&upper),
            Err(SecretError::Line { line: 3, .. })
        ));
        assert!(matches!(
            CountySecret::parse(&format!("{good}extra\n")),
            Err(SecretError::Line { line: 4, .. })
        ));
        assert_eq!(
            CountySecret::parse(&good.replace("黔东县", " ")),
            Err(SecretError::County)
        );
        // Debug never shows the key.
        assert!(!format!("{:?}", secret()).contains("0707"));
    }
}
