//! The producer (`tlog`) and the checker (`verifier`) parse and sign/open checkpoints
//! independently; here they must agree on every text, including the ones both must refuse.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use verifier::checkpoint::{self, parse_text};
use verifier::keys::VerifierKey;
use verifier::note;

fn origin() -> impl Strategy<Value = String> {
    "[a-z0-9.-]{1,20}(/[a-z0-9-]{1,12})?"
}

proptest! {
    #[test]
    fn checkpoint_texts_round_trip_in_both(origin in origin(), size in 0u64..=(1u64 << 62), root in any::<[u8; 32]>()) {
        let cp = tlog::Checkpoint { origin: origin.clone(), size, root: tlog::Hash(root) };
        let text = cp.to_text().unwrap();
        let mine = parse_text(&text).unwrap();
        prop_assert_eq!(&mine.origin, &origin);
        prop_assert_eq!(mine.size, size);
        prop_assert_eq!(mine.root, root);
        prop_assert_eq!(tlog::Checkpoint::parse(&text).unwrap(), cp);
    }

    /// Any size line: both accept it with the same value, or both refuse it.
    #[test]
    fn both_parsers_agree_on_any_size_line(size in "[0-9+ -]{0,22}|0[0-9]{1,5}|[1-9][0-9]{0,20}") {
        let root = tlog::Hash([9; 32]).to_base64();
        let text = format!("careledger.example/s\n{size}\n{root}\n");
        let a = tlog::Checkpoint::parse(&text).ok().map(|c| c.size);
        let b = parse_text(&text).ok().map(|c| c.size);
        prop_assert_eq!(a, b, "{:?}", size);
        if size.len() > 1 && size.starts_with('0') {
            prop_assert!(a.is_none());
        }
    }

    /// Any root line: both accept it with the same value, or both refuse it.
    #[test]
    fn both_parsers_agree_on_any_root_line(bytes in proptest::collection::vec(any::<u8>(), 0..40), cut in 0usize..4) {
        use base64::Engine as _;
        let mut root = base64::engine::general_purpose::STANDARD.encode(&bytes);
        root.truncate(root.len().saturating_sub(cut));
        let text = format!("careledger.example/s\n7\n{root}\n");
        let a = tlog::Checkpoint::parse(&text).ok().map(|c| c.root.0);
        let b = parse_text(&text).ok().map(|c| c.root);
        prop_assert_eq!(a, b);
        prop_assert_eq!(a.is_some(), bytes.len() == 32 && cut == 0);
    }

    /// What `tlog` signs, the checker opens with the verifier key `tlog` prints.
    #[test]
    fn signed_notes_open(seed in any::<[u8; 32]>(), origin in origin(), size in 0u64..1_000_000, root in any::<[u8; 32]>()) {
        let signer = tlog::NoteSigner::new(&origin, SigningKey::from_bytes(&seed)).unwrap();
        let key = VerifierKey::parse(&signer.verifier_key()).unwrap();
        prop_assert_eq!(key.id, signer.key_id());
        let cp = tlog::Checkpoint { origin: origin.clone(), size, root: tlog::Hash(root) };
        let signed = cp.sign(&signer).unwrap();
        let v = checkpoint::open(&signed, std::slice::from_ref(&key)).unwrap();
        prop_assert_eq!(v.checkpoint.size, size);
        // Another key of the same name is unknown (its id differs): no known signature.
        let other = tlog::NoteSigner::new(&origin, SigningKey::from_bytes(&[seed[0] ^ 1; 32])).unwrap();
        let other_key = VerifierKey::parse(&other.verifier_key()).unwrap();
        prop_assert_eq!(note::open(signed.as_bytes(), &[other_key]), Err(note::NoteError::NoKnownSignature));
    }
}
