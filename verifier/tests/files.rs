//! End to end: a log of real envelopes (the `events` encoding and hash chain), the producer's
//! hashes and signed checkpoints (`tlog`), proof files as docs/proofs.md describes them, checked
//! by the library and by the `careledger-verify` binary (exit codes, state file).

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use ed25519_dalek::SigningKey;
use events::{Envelope, Event, Hash, SCHEMA, Source};
use verifier::check::{self, Rejection, Relation};
use verifier::format::{self, Bundle, ConsistencyFile, ConsistencyStep, Entry, InclusionFile};
use verifier::keys::VerifierKey;
use verifier::state::State;

const ORIGIN: &str = "careledger.example/school-3201";

/// A log as the store keeps it: envelope bodies, their chain hashes, the tree's stored hashes.
struct Log {
    bodies: Vec<Vec<u8>>,
    hashes: Vec<Hash>,
    stored: Vec<tlog::Hash>,
    signer: tlog::NoteSigner,
}

fn signer(seed: u8, name: &str) -> tlog::NoteSigner {
    tlog::NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

impl Log {
    fn new(n: u64, salt: &str) -> Log {
        let mut log = Log {
            bodies: Vec::new(),
            hashes: Vec::new(),
            stored: Vec::new(),
            signer: signer(1, ORIGIN),
        };
        let mut prev = Hash::ZERO;
        for seq in 1..=n {
            let at = Utc.timestamp_opt(1_700_000_000 + seq as i64, 0).unwrap();
            let env = Envelope {
                sealed: None,
                schema: SCHEMA,
                seq,
                id: format!("{salt}-{seq}"),
                recorded_at: at,
                occurred_at: at,
                actor: "t001".into(),
                source: Source::Import("visits.jsonl".into()),
                event: Event::Retracted {
                    target: format!("e{seq}"),
                    reason: "duplicate".into(),
                },
                prev_hash: prev,
                hash: Hash::ZERO,
            };
            let body = env.encode_body();
            let hash = Envelope::chain_hash(&prev, &body);
            let new =
                tlog::stored_hashes_for_leaf(seq - 1, tlog::leaf_hash(&body), &log.stored).unwrap();
            log.stored.extend(new);
            log.bodies.push(body);
            log.hashes.push(hash);
            prev = hash;
        }
        log
    }

    fn root(&self, size: u64) -> tlog::Hash {
        tlog::tree_hash(size, &self.stored).unwrap()
    }

    fn checkpoint(&self, size: u64) -> String {
        tlog::Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.root(size),
        }
        .sign(&self.signer)
        .unwrap()
    }

    fn entry(&self, size: u64, leaf: u64) -> Entry {
        Entry {
            leaf_index: leaf,
            envelope: format::encode(&self.bodies[leaf as usize]),
            hash: format::encode(&self.hashes[leaf as usize].0),
            proof: tlog::inclusion_proof(size, leaf, &self.stored)
                .unwrap()
                .iter()
                .map(|h| h.to_base64())
                .collect(),
        }
    }

    fn step(&self, new: u64, old: u64) -> ConsistencyStep {
        ConsistencyStep {
            old_size: old,
            proof: tlog::consistency_proof(new, old, &self.stored)
                .unwrap()
                .iter()
                .map(|h| h.to_base64())
                .collect(),
        }
    }

    fn bundle(&self, size: u64, leaves: &[u64]) -> Bundle {
        Bundle {
            format: format::BUNDLE_FORMAT.into(),
            version: format::VERSION,
            checkpoint: self.checkpoint(size),
            child: Some("c-0042".into()),
            entries: leaves.iter().map(|&l| self.entry(size, l)).collect(),
            withheld: Vec::new(),
            consistency: Vec::new(),
        }
    }

    fn inclusion(&self, size: u64, leaf: u64) -> InclusionFile {
        InclusionFile {
            format: format::INCLUSION_FORMAT.into(),
            version: format::VERSION,
            checkpoint: self.checkpoint(size),
            entry: self.entry(size, leaf),
            consistency: Vec::new(),
        }
    }

    fn consistency(&self, new: u64, old: u64) -> ConsistencyFile {
        ConsistencyFile {
            format: format::CONSISTENCY_FORMAT.into(),
            version: format::VERSION,
            checkpoint: self.checkpoint(new),
            old_size: old,
            old_root: self.root(old).to_base64(),
            proof: self.step(new, old).proof,
        }
    }

    fn keys(&self) -> Vec<VerifierKey> {
        vec![VerifierKey::parse(&self.signer.verifier_key()).unwrap()]
    }
}

fn no_state() -> State {
    State::default()
}

fn bundle_check(log: &Log, b: &Bundle) -> Result<check::Accepted, Rejection> {
    check::bundle(b, &log.keys(), &no_state(), Path::new("unused"), &[])
}

#[test]
fn a_bundle_of_real_envelopes_verifies() {
    let log = Log::new(20, "a");
    let b = log.bundle(20, &[0, 1, 2, 7, 8, 19]);
    let ok = bundle_check(&log, &b).unwrap();
    assert_eq!(ok.relation, Relation::FirstSeen);
    assert!(ok.proven[0].contains("6 envelopes"), "{:?}", ok.proven);
    assert!(
        ok.proven[0].contains("3 consecutive pairs"),
        "{:?}",
        ok.proven
    );
    // The JSON form round-trips through the strict parser.
    let text = serde_json::to_string(&b).unwrap();
    assert_eq!(Bundle::parse(&text).unwrap(), b);
}

#[test]
fn every_byte_of_an_entry_matters() {
    let log = Log::new(9, "b");
    let b = log.bundle(9, &[3, 4]);
    // Flip every byte of the envelope, the stored hash and each proof element of entry 2.
    let e = &b.entries[1];
    let fields: Vec<(&str, Vec<u8>)> = vec![
        (
            "envelope",
            format::decode_bytes(&e.envelope, String::new).unwrap(),
        ),
        ("hash", format::decode_bytes(&e.hash, String::new).unwrap()),
    ];
    for (name, bytes) in fields {
        for i in 0..bytes.len() {
            let mut m = bytes.clone();
            m[i] ^= 0x04;
            let mut bad = b.clone();
            match name {
                "envelope" => bad.entries[1].envelope = format::encode(&m),
                _ => bad.entries[1].hash = format::encode(&m),
            }
            assert!(
                bundle_check(&log, &bad).is_err(),
                "{name} byte {i} accepted"
            );
        }
    }
    for k in 0..e.proof.len() {
        for i in 0..32 {
            let mut m = format::decode_bytes(&e.proof[k], String::new).unwrap();
            m[i] ^= 0x80;
            let mut bad = b.clone();
            bad.entries[1].proof[k] = format::encode(&m);
            let err = bundle_check(&log, &bad).unwrap_err().to_string();
            assert_eq!(
                err,
                "entry 2 (leaf 4, seq 5): the proof for leaf 4 does not lead to the checkpoint root"
            );
        }
    }
    let mut bad = b.clone();
    bad.entries[1].proof.pop();
    assert!(
        bundle_check(&log, &bad)
            .unwrap_err()
            .to_string()
            .contains("needs")
    );
    let mut bad = b.clone();
    let first = bad.entries[1].proof[0].clone();
    bad.entries[1].proof.push(first);
    assert!(
        bundle_check(&log, &bad)
            .unwrap_err()
            .to_string()
            .contains("needs")
    );
    let mut bad = b.clone();
    bad.entries[1].proof[0] = "AAAA".into();
    assert_eq!(
        bundle_check(&log, &bad).unwrap_err().to_string(),
        "entry 2 (leaf 4, seq 5): proof element 1 is not base64 of 32 bytes"
    );
}

#[test]
fn seq_order_and_chain_are_checked() {
    let log = Log::new(6, "c");
    // An envelope presented at the wrong leaf.
    let mut bad = log.bundle(6, &[2]);
    bad.entries[0].leaf_index = 3;
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::Seq {
            seq: 3,
            leaf: 3,
            ..
        })
    ));
    // Out of order, or twice.
    let bad = log.bundle(6, &[3, 2]);
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::Order { entry: 2, .. })
    ));
    let bad = log.bundle(6, &[2, 2]);
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::Order { entry: 2, .. })
    ));
    // A foreign envelope with its own consistent stored hash, spliced in: its leaf is not in
    // this tree, whatever its chain says.
    let other = Log::new(6, "other");
    let mut spliced = log.bundle(6, &[1, 2]);
    spliced.entries[1].envelope = format::encode(&other.bodies[2]);
    spliced.entries[1].hash = format::encode(&other.hashes[2].0);
    assert!(bundle_check(&log, &spliced).is_err());
    let empty = log.bundle(6, &[]);
    assert!(matches!(
        bundle_check(&log, &empty),
        Err(Rejection::EmptyBundle)
    ));
}

#[test]
fn checkpoint_must_be_signed_by_a_pinned_key_of_its_origin() {
    let log = Log::new(5, "d");
    let b = log.bundle(5, &[1]);
    // Unknown key only.
    let stranger = vec![VerifierKey::parse(&signer(9, ORIGIN).verifier_key()).unwrap()];
    let err = check::bundle(&b, &stranger, &no_state(), Path::new("x"), &[]).unwrap_err();
    assert_eq!(err.to_string(), "checkpoint: no pinned key signed the note");
    // A pinned key with another name: its signature is not the origin's.
    let county = signer(1, "careledger.example/county");
    let mut other = b.clone();
    let text = tlog::Checkpoint {
        origin: ORIGIN.into(),
        size: 5,
        root: log.root(5),
    }
    .to_text()
    .unwrap();
    other.checkpoint = county.sign(&text).unwrap();
    let keys = vec![VerifierKey::parse(&county.verifier_key()).unwrap()];
    assert!(matches!(
        check::bundle(&other, &keys, &no_state(), Path::new("x"), &[]),
        Err(Rejection::Checkpoint(_))
    ));
    // Extra signatures from unknown keys are ignored.
    let mut cosigned = b.clone();
    cosigned.checkpoint.push_str(
        &signer(3, "witness.example/w1")
            .signature_line(&text)
            .unwrap(),
    );
    assert!(bundle_check(&log, &cosigned).is_ok());
    // Any flipped signature byte: refused.
    let note = b.checkpoint.clone();
    let sig_start = note.rfind(' ').unwrap() + 1;
    let sig = format::decode_bytes(note[sig_start..].trim_end(), String::new).unwrap();
    for i in 0..sig.len() {
        let mut m = sig.clone();
        m[i] ^= 0x01;
        let mut bad = b.clone();
        bad.checkpoint = format!("{}{}\n", &note[..sig_start], format::encode(&m));
        assert!(
            bundle_check(&log, &bad).is_err(),
            "signature byte {i} accepted"
        );
    }
}

#[test]
fn checkpoint_text_is_strict_even_when_signed() {
    let log = Log::new(4, "e");
    let root = log.root(4).to_base64();
    let signed = |text: &str| log.signer.sign(text).unwrap();
    let cases = [
        (
            format!("{ORIGIN}\n04\n{root}\n"),
            "is not canonical decimal",
        ),
        (
            format!("{ORIGIN}\n+4\n{root}\n"),
            "is not canonical decimal",
        ),
        (
            format!("{ORIGIN}\n4\n{}\n", &root[..40]),
            "is not canonical base64 of 32 bytes",
        ),
        (
            format!("{ORIGIN}\n4\nAAAA\n"),
            "is not canonical base64 of 32 bytes",
        ),
        (
            format!("{ORIGIN}\n4\n{root}\nextension\n"),
            "has 4 text lines",
        ),
    ];
    for (text, want) in cases {
        let mut b = log.bundle(4, &[0]);
        b.checkpoint = signed(&text);
        let err = bundle_check(&log, &b).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
    // A signed checkpoint of another size or root: the proofs no longer fit.
    for (size, root) in [(5, log.root(4)), (4, log.root(3))] {
        let mut b = log.bundle(4, &[1]);
        b.checkpoint = tlog::Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(&log.signer)
        .unwrap();
        assert!(bundle_check(&log, &b).is_err(), "size {size}");
    }
}

#[test]
fn file_versions_and_shapes_are_strict() {
    let log = Log::new(3, "f");
    let mut v: serde_json::Value = serde_json::to_value(log.inclusion(3, 1)).unwrap();
    assert!(InclusionFile::parse(&v.to_string()).is_ok());
    v["version"] = 2.into();
    assert_eq!(
        InclusionFile::parse(&v.to_string())
            .unwrap_err()
            .to_string(),
        "the file is version 2; this checker reads version 1"
    );
    v["version"] = 1.into();
    v["extra"] = true.into();
    assert!(
        InclusionFile::parse(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("unknown field")
    );
    let b = serde_json::to_string(&log.bundle(3, &[0])).unwrap();
    assert!(
        InclusionFile::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("not a \"careledger-inclusion-proof\"")
    );
}

#[test]
fn state_advances_only_along_consistent_checkpoints() {
    let log = Log::new(40, "g");
    let keys = log.keys();
    let path = Path::new("state.json");
    let mut state = State::default();
    // First visit at size 10.
    let first = check::inclusion(&log.inclusion(10, 3), &keys, &state, path, &[]).unwrap();
    assert_eq!(first.relation, Relation::FirstSeen);
    state.remember(&first.verified);
    // Next visit at size 30 without a consistency proof: refused.
    let mut later = log.bundle(30, &[3, 25]);
    assert!(matches!(
        check::bundle(&later, &keys, &state, path, &[]),
        Err(Rejection::NoConsistency { remembered: 10, .. })
    ));
    // With one from another size only: still refused.
    later.consistency = vec![log.step(30, 11)];
    assert!(matches!(
        check::bundle(&later, &keys, &state, path, &[]),
        Err(Rejection::NoConsistency { .. })
    ));
    // With the proof from 10: accepted.
    later.consistency.push(log.step(30, 10));
    let ok = check::bundle(&later, &keys, &state, path, &[]).unwrap();
    assert_eq!(ok.relation, Relation::Extends { from: 10 });
    state.remember(&ok.verified);
    assert_eq!(state.get(&keys[0].text).unwrap().size, 30);
    // A smaller checkpoint than remembered: refused.
    assert!(matches!(
        check::inclusion(&log.inclusion(20, 1), &keys, &state, path, &[]),
        Err(Rejection::Smaller { .. })
    ));
    // The same checkpoint again: fine.
    assert_eq!(
        check::inclusion(&log.inclusion(30, 1), &keys, &state, path, &[])
            .unwrap()
            .relation,
        Relation::Same
    );
    // A rewritten log signed by the same key: same size refused, bigger size inconsistent.
    let forged = Log::new(40, "rewritten");
    assert!(matches!(
        check::inclusion(&forged.inclusion(30, 1), &keys, &state, path, &[]),
        Err(Rejection::Forked { .. })
    ));
    let mut f = forged.inclusion(35, 1);
    f.consistency = vec![forged.step(35, 30)];
    assert!(matches!(
        check::inclusion(&f, &keys, &state, path, &[]),
        Err(Rejection::Inconsistent { .. })
    ));
    // A consistency file beside the proof, as the inspector may be handed it.
    let mut g = log.inclusion(40, 39);
    assert!(check::inclusion(&g, &keys, &state, path, &[]).is_err());
    let cf = log.consistency(40, 30);
    assert_eq!(
        check::inclusion(&g, &keys, &state, path, std::slice::from_ref(&cf))
            .unwrap()
            .relation,
        Relation::Extends { from: 30 }
    );
    // …but not one for another checkpoint.
    g.consistency.clear();
    let other = log.consistency(39, 30);
    assert!(matches!(
        check::inclusion(&g, &keys, &state, path, &[other]),
        Err(Rejection::OtherCheckpoint { .. })
    ));
    // A consistency file alone moves the state too, but only from the remembered size.
    assert_eq!(
        check::consistency(&cf, &keys, &state, path)
            .unwrap()
            .relation,
        Relation::Extends { from: 30 }
    );
    assert!(matches!(
        check::consistency(&log.consistency(40, 31), &keys, &state, path),
        Err(Rejection::WrongStart { .. })
    ));
}

// ---- the binary -----------------------------------------------------------------------------

fn verify(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_careledger-verify"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_binary_exit_codes_and_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = Log::new(16, "h");
    let vkey = log.signer.verifier_key();
    std::fs::write(d.join("keys.txt"), format!("# school 3201\n{vkey}\n")).unwrap();
    let write = |name: &str, v: &dyn erased::Ser| std::fs::write(d.join(name), v.json()).unwrap();
    write("v1.json", &log.bundle(8, &[0, 1, 5]));
    write("v2.json", &log.bundle(16, &[0, 1, 5, 12]));
    write("c.json", &log.consistency(16, 8));
    write("old.json", &log.inclusion(4, 2));

    // Visit 1: accepted and remembered.
    let (code, out, err) = verify(
        d,
        &[
            "--keys",
            "keys.txt",
            "--state",
            "st/state.json",
            "bundle",
            "v1.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("at size 8"), "{out}");
    let st = std::fs::read_to_string(d.join("st/state.json")).unwrap();
    assert!(st.contains("\"size\": 8"), "{st}");
    // Visit 2 without the consistency proof: rejected, state unchanged.
    let (code, _, err) = verify(
        d,
        &[
            "--key",
            &vkey,
            "--state",
            "st/state.json",
            "bundle",
            "v2.json",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "careledger-verify: rejected: the checkpoint of careledger.example/school-3201 (size 16) comes with no consistency proof from the remembered size 8\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("st/state.json")).unwrap(),
        st
    );
    // With it: accepted, and the state moves to 16.
    let (code, out, err) = verify(
        d,
        &[
            "--key",
            &vkey,
            "--state",
            "st/state.json",
            "bundle",
            "v2.json",
            "--consistency",
            "c.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("prefix of the log at size 16"), "{out}");
    assert!(
        std::fs::read_to_string(d.join("st/state.json"))
            .unwrap()
            .contains("\"size\": 16")
    );
    // An older checkpoint: rejected.
    let (code, _, err) = verify(
        d,
        &[
            "--key",
            &vkey,
            "--state",
            "st/state.json",
            "inclusion",
            "old.json",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("smaller than the remembered size 16"), "{err}");
    // Usage: no key, a bad key, an unreadable file.
    assert_eq!(verify(d, &["--state", "s.json", "bundle", "v1.json"]).0, 2);
    assert_eq!(
        verify(
            d,
            &[
                "--key", "nonsense", "--state", "s.json", "bundle", "v1.json"
            ]
        )
        .0,
        2
    );
    assert_eq!(
        verify(
            d,
            &[
                "--key",
                &vkey,
                "--state",
                "s.json",
                "bundle",
                "missing.json"
            ]
        )
        .0,
        2
    );
    assert_eq!(verify(d, &["frobnicate"]).0, 2);
    // A state file that is not one: usage error, and it is left as it was.
    std::fs::write(d.join("bad-state.json"), "{\"version\": 9, \"logs\": {}}").unwrap();
    let (code, _, err) = verify(
        d,
        &[
            "--key",
            &vkey,
            "--state",
            "bad-state.json",
            "bundle",
            "v1.json",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("is not a version 1 state file"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("bad-state.json")).unwrap(),
        "{\"version\": 9, \"logs\": {}}"
    );
    // A file of the wrong kind is a rejection, not a usage error.
    let (code, _, err) = verify(
        d,
        &["--key", &vkey, "--state", "s.json", "inclusion", "v1.json"],
    );
    assert_eq!(code, 1, "{err}");
}

/// Writing any of the three file types from one helper.
mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap()
        }
    }
}

impl Log {
    fn withheld(&self, size: u64, leaf: u64) -> format::Withheld {
        format::Withheld {
            leaf_index: leaf,
            leaf_hash: tlog::leaf_hash(&self.bodies[leaf as usize]).to_base64(),
            proof: self.entry(size, leaf).proof,
            reason: format::WITHHELD_CONFIDENTIAL.into(),
        }
    }
}

#[test]
fn a_version_2_bundle_proves_its_withheld_leaves_and_counts_them() {
    let log = Log::new(30, "w");
    let mut b = log.bundle(30, &[0, 1, 5, 20]);
    b.version = format::BUNDLE_VERSION;
    b.withheld = vec![
        log.withheld(30, 2),
        log.withheld(30, 6),
        log.withheld(30, 29),
    ];
    let text = serde_json::to_string(&b).unwrap();
    let parsed = Bundle::parse(&text).unwrap();
    assert_eq!(parsed, b);
    let ok = bundle_check(&log, &parsed).unwrap();
    assert!(
        ok.proven[1].contains("3 more leaves are in that tree, withheld as confidential"),
        "{:?}",
        ok.proven
    );
    assert!(ok.proven[1].contains("leaves 2, 6, 29"), "{:?}", ok.proven);
    // A withheld leaf hash or proof element changed in any bit: rejected, naming it.
    for k in 0..=b.withheld[1].proof.len() {
        for i in 0..32 {
            let mut bad = b.clone();
            let field = if k == 0 {
                &mut bad.withheld[1].leaf_hash
            } else {
                &mut bad.withheld[1].proof[k - 1]
            };
            let mut m = format::decode_bytes(field, String::new).unwrap();
            m[i] ^= 0x10;
            *field = format::encode(&m);
            let err = bundle_check(&log, &bad).unwrap_err().to_string();
            assert!(err.starts_with("withheld 2 (leaf 6, seq 7): "), "{err}");
        }
    }
    // Another leaf's hash at this index, a proof one short, out of order, shown and withheld,
    // another reason: all rejected.
    let mut bad = b.clone();
    bad.withheld[1].leaf_hash = log.withheld(30, 7).leaf_hash;
    assert!(bundle_check(&log, &bad).is_err());
    let mut bad = b.clone();
    bad.withheld[1].proof.pop();
    assert!(
        bundle_check(&log, &bad)
            .unwrap_err()
            .to_string()
            .contains("needs")
    );
    let mut bad = b.clone();
    bad.withheld.swap(0, 1);
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::WithheldOrder { .. })
    ));
    let mut bad = b.clone();
    bad.withheld[0] = log.withheld(30, 1);
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::WithheldShown { .. })
    ));
    let mut bad = b.clone();
    bad.withheld[0].reason = "private".into();
    assert!(matches!(
        bundle_check(&log, &bad),
        Err(Rejection::WithheldReason { .. })
    ));
}

#[test]
fn a_version_1_bundle_still_reads_but_may_not_withhold() {
    let log = Log::new(5, "v");
    let b = log.bundle(5, &[0, 1]);
    assert_eq!(b.version, 1);
    let mut v: serde_json::Value = serde_json::to_value(&b).unwrap();
    assert!(Bundle::parse(&v.to_string()).is_ok());
    v["withheld"] = serde_json::to_value(vec![log.withheld(5, 3)]).unwrap();
    let err = Bundle::parse(&v.to_string()).unwrap_err().to_string();
    assert!(err.contains("unknown field `withheld`"), "{err}");
    v["version"] = 3.into();
    assert_eq!(
        Bundle::parse(&v.to_string()).unwrap_err().to_string(),
        "the file is version 3; this checker reads version 1 or 2"
    );
}

#[test]
fn the_leaf_hash_path_and_ct_merkle_agree_on_every_proof() {
    use verifier::merkle::{verify_inclusion, verify_inclusion_of_leaf_hash};
    let log = Log::new(40, "m");
    for size in 1..=40u64 {
        let root = log.root(size).0;
        for index in 0..size {
            let body = &log.bodies[index as usize];
            let leaf = tlog::leaf_hash(body).0;
            let proof: Vec<[u8; 32]> = tlog::inclusion_proof(size, index, &log.stored)
                .unwrap()
                .iter()
                .map(|h| h.0)
                .collect();
            verify_inclusion(&root, size, index, body, &proof).unwrap();
            verify_inclusion_of_leaf_hash(&root, size, index, &leaf, &proof).unwrap();
            // The same proof for a neighbouring index: both refuse it alike.
            if size > 1 {
                let other = (index + 1) % size;
                assert_eq!(
                    verify_inclusion(&root, size, other, body, &proof).is_ok(),
                    verify_inclusion_of_leaf_hash(&root, size, other, &leaf, &proof).is_ok(),
                    "size {size} index {index}"
                );
            }
        }
    }
}
