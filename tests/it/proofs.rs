//! Checkpoints and proofs end to end (docs/proofs.md): the `careledger` binary makes them, the
//! checker of `careledger-verify` (its library, run as its binary runs it: state loaded, file
//! checked, state saved only on acceptance) accepts them; a rewritten history is refused.

use std::path::{Path, PathBuf};
use std::process::Output;

use store::Store;
use verifier::check::{self, Accepted, Relation};
use verifier::format::{Bundle, ConsistencyFile, InclusionFile};
use verifier::keys::VerifierKey;
use verifier::state::State;

use crate::{careledger, careledger_ok, stderr, talks};

// The crash test of checkpoints is in `proofs_crash`.

/// A store made by `init` with its key directory, inside `dir`.
struct Site {
    dir: PathBuf,
    db: PathBuf,
    keys: PathBuf,
}

impl Site {
    fn new(dir: &Path) -> Site {
        let site = Site {
            dir: dir.to_owned(),
            db: dir.join("school"),
            keys: dir.join("school-keys"),
        };
        site.ok(&["init", "--origin", "careledger.example/school-sq"]);
        site
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--keys", self.keys.to_str().unwrap()];
        all.extend_from_slice(args);
        all
    }

    fn run(&self, args: &[&str]) -> Output {
        careledger(&self.db, &self.args(args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        careledger_ok(&self.db, &self.args(args))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn import_seed(&self) {
        let seed = self.path("seed.jsonl");
        std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL).unwrap();
        self.ok(&["import", "--preserve-recorded-at", seed.to_str().unwrap()]);
    }

    /// Imports `n` talks of the seed school's sq-t02 with sq-c04, ids `{prefix}-{i}`.
    fn import_talks(&self, prefix: &str, n: usize) {
        let file = self.path(&format!("{prefix}.jsonl"));
        let text: String = (0..n)
            .map(|i| {
                format!(
                    r#"{{"type":"talk_held","id":"{prefix}-{i}","occurred_at":"2026-01-{:02}","actor":"sq-t02","staff":"sq-t02","child":"sq-c04","topic":"学习","summary":"谈心","mood":"ok"}}"#,
                    20 + i % 8
                ) + "\n"
            })
            .collect();
        std::fs::write(&file, text).unwrap();
        self.ok(&["import", file.to_str().unwrap()]);
    }

    fn verifier_key(&self) -> VerifierKey {
        let out = self.ok(&["keys", "show"]);
        VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
    }

    fn head(&self) -> u64 {
        Store::open(&self.db).unwrap().head().seq
    }
}

/// What `careledger-verify` does with one file: load the state, check, and only on acceptance
/// remember the checkpoint.
enum Check<'a> {
    Inclusion(&'a Path),
    Consistency(&'a Path),
    Bundle(&'a Path),
}

fn verify(key: &VerifierKey, state_path: &Path, file: Check<'_>) -> Result<Accepted, String> {
    let keys = vec![key.clone()];
    let mut state = State::load(state_path).unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let accepted = match file {
        Check::Inclusion(p) => InclusionFile::parse(&read(p))
            .map_err(|e| e.to_string())
            .and_then(|f| {
                check::inclusion(&f, &keys, &state, state_path, &[]).map_err(|e| e.to_string())
            }),
        Check::Consistency(p) => ConsistencyFile::parse(&read(p))
            .map_err(|e| e.to_string())
            .and_then(|f| {
                check::consistency(&f, &keys, &state, state_path).map_err(|e| e.to_string())
            }),
        Check::Bundle(p) => Bundle::parse(&read(p))
            .map_err(|e| e.to_string())
            .and_then(|f| {
                check::bundle(&f, &keys, &state, state_path, &[]).map_err(|e| e.to_string())
            }),
    }?;
    state.remember(&accepted.verified);
    state.save(state_path).unwrap();
    Ok(accepted)
}

#[test]
fn seed_school_checkpoint_inclusion_and_consistency_verify() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    site.import_seed();
    let head = site.head();
    assert!(head > 600);
    // The checkpoint of the head, signed after the import.
    let note = String::from_utf8(site.ok(&["checkpoint"]).stdout).unwrap();
    let mut lines = note.lines();
    assert_eq!(lines.next(), Some("careledger.example/school-sq"));
    assert_eq!(lines.next(), Some(head.to_string().as_str()));
    let saved = site.path("visit-1.checkpoint");
    std::fs::write(&saved, &note).unwrap();
    let key = site.verifier_key();
    assert!(key.text.starts_with("careledger.example/school-sq+"));

    // An inclusion proof of a talk of the seed school: accepted on first use, remembered.
    let state = site.path("inspector-state.json");
    let proof = site.path("e0001.json");
    site.ok(&["prove", "sq-e0001", "--out", proof.to_str().unwrap()]);
    let ok = verify(&key, &state, Check::Inclusion(&proof)).unwrap();
    assert_eq!(ok.relation, Relation::FirstSeen);
    assert_eq!(ok.verified.checkpoint.size, head);

    // More batches; the newer checkpoint is refused without a consistency proof ...
    site.import_talks("visit", 40);
    site.import_talks("later", 7);
    assert_eq!(site.head(), head + 47);
    let newer = site.path("later-3.json");
    site.ok(&["prove", "later-3", "--out", newer.to_str().unwrap()]);
    let err = verify(&key, &state, Check::Inclusion(&newer)).unwrap_err();
    assert!(err.contains("no consistency proof"), "{err}");
    // ... and accepted after one from the checkpoint saved on the first visit.
    let step = site.path("consistency.json");
    site.ok(&[
        "prove",
        "--from",
        saved.to_str().unwrap(),
        "--out",
        step.to_str().unwrap(),
    ]);
    let ok = verify(&key, &state, Check::Consistency(&step)).unwrap();
    assert_eq!(ok.relation, Relation::Extends { from: head });
    assert_eq!(ok.verified.checkpoint.size, head + 47);
    let ok = verify(&key, &state, Check::Inclusion(&newer)).unwrap();
    assert_eq!(ok.relation, Relation::Same);
    // The state file itself is a saved checkpoint `prove --from` reads.
    site.ok(&["prove", "--from", state.to_str().unwrap()]);

    // A proof against the saved, older checkpoint still verifies against that size.
    let old = site.path("e0002-old.json");
    site.ok(&[
        "prove",
        "sq-e0002",
        "--checkpoint",
        saved.to_str().unwrap(),
        "--out",
        old.to_str().unwrap(),
    ]);
    let fresh = site.path("fresh-state.json");
    let ok = verify(&key, &fresh, Check::Inclusion(&old)).unwrap();
    assert_eq!(ok.verified.checkpoint.size, head);
    // An event after that checkpoint cannot be proven in it.
    let out = site.run(&["prove", "later-3", "--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // `checkpoint --as-of` a time before the later batches: the seed's checkpoint.
    let as_of =
        String::from_utf8(site.ok(&["checkpoint", "--as-of", "2026-01-31"]).stdout).unwrap();
    assert_eq!(as_of, note);
    let out = site.run(&["checkpoint", "--as-of", "2020-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    // The store checks the tree and every checkpoint against the log.
    site.ok(&["verify"]);
}

#[test]
fn a_bundle_withholds_counseling_sessions_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    site.import_seed();
    // sq-c07's counseling sessions, and a correction of one carrying new notes.
    let correction_note = "更正后的会谈记录：仅供心理老师阅读";
    site.ok(&[
        "record",
        "correction",
        "--json",
        &format!(
            r#"{{"id":"fix-0135","occurred_at":"2026-02-01","actor":"sq-t06","target":"sq-e0135","changes":{{"notes":"{correction_note}"}},"reason":"笔误"}}"#
        ),
    ]);
    let notes: Vec<String> = fixtures::SEED_SCHOOL_JSONL
        .lines()
        .filter(|l| l.contains("\"counseling_session\"") && l.contains("\"child\":\"sq-c07\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["notes"].as_str().unwrap().to_owned()
        })
        .chain([correction_note.to_owned()])
        .collect();
    assert!(notes.len() >= 3, "{notes:?}");
    let file = site.path("bundle-c07.json");
    site.ok(&[
        "bundle",
        "--child",
        "sq-c07",
        "--out",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let bundle = Bundle::parse(&text).unwrap();
    assert_eq!(bundle.version, 2);
    assert_eq!(bundle.withheld.len(), notes.len());
    assert!(!bundle.entries.is_empty());
    // No note anywhere: not in the file's text, not in any envelope it carries.
    for note in &notes {
        let probe: String = note.chars().take(8).collect();
        assert!(!text.contains(&probe), "a note is in the bundle");
        for e in &bundle.entries {
            let body = verifier::format::decode_bytes(&e.envelope, String::new).unwrap();
            assert!(
                !body.windows(probe.len()).any(|w| w == probe.as_bytes()),
                "a note is in an envelope of the bundle"
            );
        }
    }
    let state = site.path("state.json");
    let ok = verify(&site.verifier_key(), &state, Check::Bundle(&file)).unwrap();
    assert!(
        ok.report().contains(&format!(
            "{} more leaves are in that tree, withheld as confidential",
            notes.len()
        )),
        "{}",
        ok.report()
    );
    // No proof file shows a counseling envelope on its own either.
    let out = site.run(&["prove", "sq-e0135"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = site.run(&["prove", "fix-0135"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A bundle as of a time before the correction: against the seed's checkpoint.
    let early = site.path("bundle-early.json");
    site.ok(&[
        "bundle",
        "--child",
        "sq-c07",
        "--as-of",
        "2026-01-31",
        "--out",
        early.to_str().unwrap(),
    ]);
    let early = Bundle::parse(&std::fs::read_to_string(&early).unwrap()).unwrap();
    assert_eq!(early.withheld.len(), notes.len() - 1);
    assert_ne!(early.checkpoint, bundle.checkpoint);
}

#[test]
fn a_rewritten_history_passes_verify_but_not_the_inspector() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    site.import_seed();
    site.import_talks("visit", 20);
    let key = site.verifier_key();
    // The inspector's first visit: a bundle checked and remembered, the checkpoint saved.
    let state = site.path("state.json");
    let first = site.path("bundle-1.json");
    site.ok(&[
        "bundle",
        "--child",
        "sq-c01",
        "--out",
        first.to_str().unwrap(),
    ]);
    verify(&key, &state, Check::Bundle(&first)).unwrap();
    let saved = site.path("visit-1.checkpoint");
    std::fs::write(&saved, site.ok(&["checkpoint"]).stdout).unwrap();

    // Someone with the machine and the key rewrites an old talk, re-chains the log, rebuilds
    // the tree and signs the new head.
    {
        let store = Store::open(&site.db).unwrap();
        let key_text = std::fs::read_to_string(site.keys.join("checkpoint-signer.key")).unwrap();
        let signer = tlog::NoteSigner::from_private_key(key_text.trim()).unwrap();
        store.set_signer(signer).unwrap();
        let seq = store.seq_of("sq-e0001").unwrap().unwrap();
        store
            .tamper_rewrite_history(seq, |env| {
                env.occurred_at -= chrono::Duration::days(30);
            })
            .unwrap();
    }
    site.import_talks("after", 3);
    // The store's own verify cannot tell: chain, tree and checkpoints agree with each other.
    site.ok(&["verify"]);
    // No consistency proof from the saved checkpoint exists.
    let out = site.run(&["prove", "--from", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no proof from it exists"),
        "{}",
        stderr(&out)
    );
    // The inspector's checker refuses the new bundle: no consistency proof from what it
    // remembers ...
    let second = site.path("bundle-2.json");
    site.ok(&[
        "bundle",
        "--child",
        "sq-c01",
        "--out",
        second.to_str().unwrap(),
    ]);
    let err = verify(&key, &state, Check::Bundle(&second)).unwrap_err();
    assert!(err.contains("no consistency proof"), "{err}");
    // ... and a consistency proof made from the new tree at the old size fails too.
    let store = Store::open(&site.db).unwrap();
    let old_size: u64 = std::fs::read_to_string(&saved)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let new = Bundle::parse(&std::fs::read_to_string(&second).unwrap()).unwrap();
    let new_size = store.head().seq;
    let forged = serde_json::json!({
        "format": "careledger-consistency-proof",
        "version": 1,
        "checkpoint": new.checkpoint,
        "old_size": old_size,
        "old_root": store.tree_root(old_size).unwrap().to_base64(),
        "proof": store
            .consistency_proof(old_size, new_size)
            .unwrap()
            .iter()
            .map(|h| h.to_base64())
            .collect::<Vec<_>>(),
    });
    drop(store);
    let forged_path = site.path("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let err = verify(&key, &state, Check::Consistency(&forged_path)).unwrap_err();
    assert!(err.contains("remembered"), "{err}");
    // What the inspector remembers is still the first visit's checkpoint.
    let remembered = State::load(&state).unwrap();
    assert_eq!(remembered.get(&key.text).unwrap().size, old_size);
}

#[test]
fn verify_names_the_seq_of_a_flipped_tree_hash() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    site.import_talks_into_empty();
    {
        let store = Store::open(&site.db).unwrap();
        // Stored hash 12 is leaf 7's (seq 8): 7 = stored_hash_index(0, 7) + …, see tlog.
        let index = tlog::stored_hash_index(0, 7).unwrap();
        store.tamper_tree_hash(index).unwrap();
    }
    let out = site.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("at seq 8:"), "{}", stderr(&out));
}

impl Site {
    /// A school's prelude and 30 talks, in one import.
    fn import_talks_into_empty(&self) {
        let file = self.path("prelude.jsonl");
        std::fs::write(&file, format!("{}{}", crate::prelude(3), talks("t", 30, 3))).unwrap();
        self.ok(&["import", file.to_str().unwrap()]);
    }
}

#[test]
fn appends_need_the_key_of_a_signed_store() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    site.import_talks_into_empty();
    let head = site.head();
    // The key directory is elsewhere: a signed store refuses to append, writing nothing.
    let file = site.path("more.jsonl");
    std::fs::write(&file, talks("more", 5, 3)).unwrap();
    let empty = site.path("no-keys");
    let out = careledger(
        &site.db,
        &[
            "--keys",
            empty.to_str().unwrap(),
            "import",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("no signing key"), "{}", stderr(&out));
    assert_eq!(site.head(), head);
    // Another key is refused as well.
    careledger_ok(
        &site.path("other"),
        &["--keys", empty.to_str().unwrap(), "init"],
    );
    let out = careledger(
        &site.db,
        &[
            "--keys",
            empty.to_str().unwrap(),
            "import",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(site.head(), head);
    // `keys init` never replaces a key; `init` refuses a directory that holds one.
    let out = site.run(&["keys", "init"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The key file is private.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(site.keys.join("checkpoint-signer.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&site.keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn a_store_made_before_keys_is_signed_once_it_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old");
    drop(Store::create(&db).unwrap());
    let file = dir.path().join("prelude.jsonl");
    std::fs::write(&file, format!("{}{}", crate::prelude(3), talks("t", 10, 3))).unwrap();
    // No key beside it: the import warns and appends.
    let out = careledger_ok(&db, &["import", file.to_str().unwrap()]);
    assert!(stderr(&out).contains("keys init"), "{}", stderr(&out));
    let out = careledger(&db, &["checkpoint"]);
    assert_eq!(out.status.code(), Some(1));
    // `keys init` makes the default key directory beside the store and signs the head.
    careledger_ok(&db, &["keys", "init"]);
    assert!(
        dir.path()
            .join("old.keys")
            .join("checkpoint-signer.key")
            .exists()
    );
    let note = String::from_utf8(careledger_ok(&db, &["checkpoint"]).stdout).unwrap();
    assert!(note.starts_with("careledger.local/old\n16\n"), "{note}");
}
