//! The command line's contract: exit codes, idempotence, atomic files, tamper detection,
//! export round trip.

use store::Store;

use crate::{careledger, careledger_ok, prelude, seed_store, stderr, talks};

#[test]
fn importing_the_same_file_twice_appends_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("school.jsonl");
    std::fs::write(&file, prelude(3) + &talks("t", 10, 3)).unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    let first = careledger(&db, &["import", file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("16 new, 0 already present"),
        "{}",
        stderr(&first)
    );
    let second = careledger(&db, &["import", file.to_str().unwrap()]);
    assert!(
        stderr(&second).contains("0 new, 16 already present"),
        "{}",
        stderr(&second)
    );
    assert_eq!(Store::open(&db).unwrap().head().seq, 16);
}

#[test]
fn a_bad_line_in_the_middle_appends_nothing_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("bad.jsonl");
    let mut lines: Vec<String> = (prelude(2) + &talks("t", 6, 2))
        .lines()
        .map(String::from)
        .collect();
    // Line 7 (1-based) talks with a child nobody registered.
    lines[6] = lines[6]
        .replace("\"child\":\"c0\"", "\"child\":\"c99\"")
        .replace("\"child\":\"c1\"", "\"child\":\"c99\"");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    let out = careledger(&db, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:7"), "{err}");
    assert!(err.contains("child"), "{err}");
    assert_eq!(Store::open(&db).unwrap().head().seq, 0);
}

#[test]
fn a_flipped_byte_makes_verify_exit_3_and_name_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("school.jsonl");
    std::fs::write(&file, prelude(5) + &talks("t", 200, 5)).unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    assert!(
        careledger(&db, &["import", file.to_str().unwrap()])
            .status
            .success()
    );
    assert!(careledger(&db, &["verify"]).status.success());
    Store::open(&db).unwrap().tamper_for_test(150).unwrap();
    let out = careledger(&db, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("seq 150"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = careledger(dir.path(), &["import"]);
    assert_eq!(out.status.code(), Some(2));
    let out = careledger(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_export_re_imports_to_the_same_events_ids_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    seed_store(dir.path(), &a);
    let export = dir.path().join("export.jsonl");
    careledger_ok(
        &a,
        &[
            "export",
            "events",
            "--format",
            "jsonl",
            "--decrypt",
            "--with-confidential",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    // Opened: another store, with keys of its own, takes it.
    assert!(careledger(&b, &["init"]).status.success());
    careledger_ok(
        &b,
        &["import", "--preserve-recorded-at", export.to_str().unwrap()],
    );
    let (sa, sb) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    let ea: Vec<_> = sa.scan(None).map(Result::unwrap).collect();
    let eb: Vec<_> = sb.scan(None).map(Result::unwrap).collect();
    assert_eq!(ea.len(), eb.len());
    for (x, y) in ea.iter().zip(&eb) {
        assert_eq!(
            (&x.id, x.occurred_at, x.recorded_at, &x.actor, &x.event),
            (&y.id, y.occurred_at, y.recorded_at, &y.actor, &y.event)
        );
    }
    drop((sa, sb));
    // Without the flag, counseling notes do not leave the store.
    let plain = dir.path().join("plain.jsonl");
    assert!(
        careledger(
            &a,
            &[
                "export",
                "events",
                "--format",
                "jsonl",
                "--out",
                plain.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let text = std::fs::read_to_string(&plain).unwrap();
    // The store holds the notes sealed: the seed's own are the ones to look for.
    let mut notes = 0;
    for line in fixtures::SEED_SCHOOL_JSONL.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(n) = v["notes"].as_str() {
            assert!(!n.is_empty() && !text.contains(n));
            notes += 1;
        }
    }
    assert!(notes > 0, "the seed has counseling notes");
}

/// A child's views read only the by-child index and its schools' registry events; they must
/// equal the same views over a replay of the whole log, for every child, as of several times.
#[test]
fn views_from_the_index_equal_views_from_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("county.jsonl");
    careledger_ok(
        &db,
        &[
            "fixtures",
            "generate",
            "--schools",
            "2",
            "--children-per-school",
            "12",
            "--seed",
            "7",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(careledger(&db, &["init"]).status.success());
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", file.to_str().unwrap()],
    );
    let store = Store::open(&db).unwrap();
    // The full replay reads the envelopes opened, as the CLI's views do (docs/privacy.md).
    let vault = vault::Vault::open_dir(&dir.path().join("db.keys"))
        .unwrap()
        .expect("init made a master key");
    let envs: Vec<events::Envelope> = store
        .scan(None)
        .map(|e| vault.open(e.unwrap(), vault::Reader::Staff).unwrap())
        .collect();
    let children: Vec<String> = store
        .registry()
        .unwrap()
        .children()
        .map(|(c, _)| c.to_owned())
        .collect();
    drop(store);
    assert!(children.len() >= 24);
    // Every child looked at is either compared (both paths answer, alike) or refused by both
    // with the same message (not yet registered as of that date); none is passed over.
    let (mut compared, mut refused) = (0, 0);
    for as_of in ["2025-11-15", "2026-07-01"] {
        let t = events::time::parse_as_of(as_of).unwrap();
        let tl = projections::Timeline::build(&envs, Some(t)).unwrap();
        let world = projections::World::build(&tl);
        for child in children.iter().step_by(3) {
            let out = careledger(
                &db,
                &["archive", child, "--as-of", as_of, "--format", "json"],
            );
            let full = match projections::archive::archive(&tl, &world, child, None) {
                Ok(full) => full,
                Err(e) => {
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{child} as of {as_of}: the full replay refuses ({e}), the CLI does not"
                    );
                    assert!(
                        stderr(&out).contains(&e.to_string()),
                        "{child} as of {as_of}: refused for another reason: {} vs {e}",
                        stderr(&out)
                    );
                    refused += 1;
                    continue;
                }
            };
            assert!(out.status.success(), "{child}: {}", stderr(&out));
            let indexed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                indexed,
                serde_json::to_value(&full).unwrap(),
                "{child} as of {as_of}"
            );
            let hist = projections::history::history(&envs, &tl, &world, child, false).unwrap();
            let out = careledger(
                &db,
                &["history", child, "--as-of", as_of, "--format", "json"],
            );
            assert!(out.status.success(), "history of {child}: {}", stderr(&out));
            let mut indexed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut full = serde_json::to_value(&hist).unwrap();
            // The head a view was computed on differs by construction: the child's last
            // event versus the log's; everything the view shows must not.
            indexed.as_object_mut().unwrap().remove("head_seq");
            full.as_object_mut().unwrap().remove("head_seq");
            assert!(indexed == full, "history of {child} as of {as_of} differs");
            compared += 1;
        }
    }
    let looked_at = 2 * children.len().div_ceil(3);
    assert_eq!(compared + refused, looked_at);
    // Most children are registered at the start of the year: a run where most views are
    // refused compares too little to prove anything.
    assert!(
        compared >= looked_at * 3 / 4,
        "only {compared} of {looked_at} views compared ({refused} refused by both)"
    );
}

/// Whether `text` says `phrase` exactly once (a cause is never printed twice).
fn once(text: &str, phrase: &str) -> bool {
    text.matches(phrase).count() == 1
}

/// A file system mounted for a test (a tmpfs, or a read-only bind), unmounted on drop.
struct Mount(std::path::PathBuf);

impl Mount {
    /// `mount ARGS… DIR`; `None` when mounting is not allowed here (not root).
    fn new(args: &[&str], dir: &std::path::Path) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(args)
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_owned()))
    }

    fn remount(&self, options: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", options])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Issue 11 item 1: a full disk during an import and during the next command leaves the
/// store as it was; once there is room, every acknowledged event is there. On a real 20 MB
/// tmpfs; where mounting is not allowed, the residue a snapshot failing on a full disk
/// leaves (an empty `snap.*.generating`) is made by hand instead.
#[test]
fn a_full_disk_never_makes_the_store_unopenable() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let db = mnt.join("store");
    let big = dir.path().join("big.jsonl");
    let Some(mount) = Mount::new(&["-t", "tmpfs", "-o", "size=20m", "tmpfs"], &mnt) else {
        eprintln!("no tmpfs can be mounted here: checking the residue of a full disk instead");
        seed_store(dir.path(), &db);
        std::fs::write(db.join("snap.FFFFFFFFFFFFFFF0.generating"), b"").unwrap();
        let out = careledger_ok(&db, &["verify"]);
        assert!(
            stderr(&out).contains("verified 682 events"),
            "{}",
            stderr(&out)
        );
        return;
    };
    seed_store(dir.path(), &db);
    // About 30 MB of talks: more than the disk holds.
    let mut text = String::new();
    for i in 0..40_000 {
        text.push_str(&format!(
            r#"{{"type":"talk_held","id":"big-{i}","occurred_at":"2025-10-01","actor":"sq-t02","staff":"sq-t02","child":"sq-c01","topic":"学习","summary":"{}","mood":"ok"}}"#,
            "谈了期中考试".repeat(30)
        ));
        text.push('\n');
    }
    std::fs::write(&big, text).unwrap();
    eprintln!("on a 20 MB tmpfs at {}", mnt.display());
    let out = careledger(&db, &["import", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(once(&stderr(&out), "is full"), "{}", stderr(&out));
    // While the disk is still full: refused before anything is written.
    for _ in 0..3 {
        let out = careledger(&db, &["verify"]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(once(&stderr(&out), "is full"), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was changed"),
            "{}",
            stderr(&out)
        );
    }
    mount.remount("remount,size=60m");
    let out = careledger_ok(&db, &["verify"]);
    assert!(
        stderr(&out).contains("verified 682 events"),
        "{}",
        stderr(&out)
    );
    careledger_ok(&db, &["archive", "sq-c01"]);
}

/// Issue 11 item 2: a data file cut back to an earlier commit (at a message boundary, sled's
/// snapshot deleted) opens as a consistent, shorter log; the head file says how long it was.
#[test]
fn a_shortened_store_is_damage_naming_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let lines: Vec<&str> = fixtures::SEED_SCHOOL_JSONL.lines().collect();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, lines[..300].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[300..].join("\n") + "\n").unwrap();
    careledger_ok(&db, &["init"]);
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", a.to_str().unwrap()],
    );
    // sled's log ends where the first batch's messages end; the rest of its segment is zero.
    let after_a = std::fs::read(db.join("db")).unwrap();
    let end = after_a.iter().rposition(|&b| b != 0).unwrap() + 1;
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", b.to_str().unwrap()],
    );
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    for name in ["conf", "db", "head"] {
        std::fs::copy(db.join(name), cut.join(name)).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(cut.join("db"))
        .unwrap()
        .set_len(end as u64)
        .unwrap();
    let cut_bytes = std::fs::read(cut.join("db")).unwrap();
    for _ in 0..2 {
        let out = careledger(&cut, &["verify"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            once(
                &stderr(&out),
                "the log ends at seq 300 but seq 682 was acknowledged"
            ),
            "{}",
            stderr(&out)
        );
        // Opening it changed nothing: sled's snapshot of the shorter log was taken back.
        assert!(std::fs::read(cut.join("db")).unwrap() == cut_bytes);
        assert!(!std::fs::read_dir(&cut).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snap.")
        }));
    }
    // A zeroed data file: the log ends at 0.
    let zero = dir.path().join("zero");
    std::fs::create_dir(&zero).unwrap();
    for name in ["conf", "head"] {
        std::fs::copy(db.join(name), zero.join(name)).unwrap();
    }
    std::fs::write(zero.join("db"), vec![0u8; after_a.len()]).unwrap();
    let out = careledger(&zero, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the log ends at seq 0 but seq 682 was acknowledged"),
        "{}",
        stderr(&out)
    );
    // A stray two-byte `db`: never opened as an empty store, never overwritten.
    std::fs::write(zero.join("db"), b"hi").unwrap();
    let out = careledger(&zero, &["log"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(std::fs::read(zero.join("db")).unwrap(), b"hi");
}

/// Issue 11 item 3: an envelope edited in place (sled's checksums valid) is never served.
#[test]
fn an_edited_envelope_is_refused_by_reads_not_served() {
    let (_dir, db) = school_of_20_talks();
    // Seq 7 registers c3 (its name is sealed); the edit moves it to school s9 without
    // touching its hash.
    {
        let store = Store::open(&db).unwrap();
        assert_eq!(store.get(7).unwrap().unwrap().id, "reg3");
        store
            .tamper_replace_in_body(7, b"\xa2s1", b"\xa2s9")
            .unwrap();
    }
    for args in [&["archive", "c3"][..], &["contact-card", "c3"], &["verify"]] {
        let out = careledger(&db, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("s9"));
        assert!(once(&stderr(&out), "damaged at seq 7"), "{}", stderr(&out));
    }
}

/// A store (`<dir>/db`) of one school (`prelude(5)`) and 20 talks, imported by the CLI.
fn school_of_20_talks() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("school.jsonl");
    std::fs::write(&file, prelude(5) + &talks("t", 20, 5)).unwrap();
    careledger_ok(&db, &["init"]);
    careledger_ok(&db, &["import", file.to_str().unwrap()]);
    (dir, db)
}

/// A county-wide read of damaged fact rows is refused, not served: the score run's rows split
/// among the cores decline a value that fails its check, and the ordered read they fall back
/// to reports it (exit 3); the term report's read refuses it too.
#[test]
fn damaged_fact_rows_are_refused_by_the_county_reads() {
    let (_dir, db) = school_of_20_talks();
    let county = ["scores", "--county", "沿河县", "--period", "2025-2026-1"];
    let report = [
        "report",
        "term",
        "--term",
        "2025-2026-1",
        "--county",
        "沿河县",
    ];
    careledger_ok(&db, &county);
    careledger_ok(&db, &report);
    Store::open(&db).unwrap().tamper_fact_rows_flip().unwrap();
    for args in [&county[..], &report[..]] {
        let out = careledger(&db, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        assert!(
            once(&stderr(&out), "read model fact rows"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Issue 11 item 3: an index that drops an event fails `verify`, naming it.
#[test]
fn an_index_posting_edited_away_fails_verify() {
    let (_dir, db) = school_of_20_talks();
    // Talk t-2 (seq 11) is with c2.
    Store::open(&db)
        .unwrap()
        .tamper_unpost(false, "c2", 11)
        .unwrap();
    let out = careledger(&db, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        once(
            &stderr(&out),
            "damaged at seq 11: index by_child: not listed under c2"
        ),
        "{}",
        stderr(&out)
    );
}

/// Issue 11 item 4: bytes flipped in sled's data region are damage (exit 3), said once —
/// and opening the damaged store changes nothing in it (sled's recovery would clear what
/// follows the first bad message; that is undone).
#[test]
fn flipped_bytes_in_the_data_file_are_damage_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let path = db.join("db");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    let mut rng = 3u64;
    for _ in 0..20 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = 1000 + (rng >> 33) as usize % (end - 1000);
        bytes[at] ^= 0x55;
    }
    std::fs::write(&path, &bytes).unwrap();
    let files = |d: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files(&db);
    for args in [&["verify"][..], &["archive", "sq-c01"], &["log"]] {
        let out = careledger(&db, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("is damaged") && err.contains("restore it from a backup"),
            "{err}"
        );
        assert!(!err.contains("Read corrupted"), "{err}");
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{args:?} changed the data file"
        );
        assert_eq!(files(&db), before);
    }
}

/// Issue 9 item 3: one test per exit code, each message naming its cause once and what to do.
#[test]
fn every_exit_code_names_its_cause_once_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let check = |args: &[&str], code: i32, phrases: &[&str]| {
        let out = careledger(&db, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        // Bad input lists every error of the file, one a line; the others are one sentence.
        assert!(code == 1 || err.lines().count() == 1, "{args:?}: {err}");
        for p in phrases {
            assert!(once(&err, p), "{args:?}: {p:?} once in {err}");
        }
    };
    // 1: bad input, nothing written.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"type\":\"talk_held\"}\n").unwrap();
    check(
        &["import", bad.to_str().unwrap()],
        1,
        &["bad.jsonl:1: field occurred_at"],
    );
    assert_eq!(Store::open(&db).unwrap().head().seq, 682);
    // 2: usage.
    check(
        &["--copy", "import", bad.to_str().unwrap()],
        2,
        &["--copy", "only for read"],
    );
    // 3: damage.
    Store::open(&db).unwrap().tamper_for_test(500).unwrap();
    check(
        &["verify"],
        3,
        &["damaged at seq 500", "restore it from a backup"],
    );
    // 4: environment — the store held by a running import.
    let held = Store::open_as(&db, "import").unwrap();
    check(
        &["log"],
        4,
        &[
            "in use by another careledger process",
            "`careledger import`",
            "try again when it finishes",
        ],
    );
    drop(held);
}

/// Issue 11 item 16: `--db` naming a file, or a store that lost its `db`: say so.
#[test]
fn a_wrong_db_says_what_is_actually_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "x").unwrap();
    let out = careledger(&file, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a careledger store: it is a file"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("careledger init` to make"),
        "{}",
        stderr(&out)
    );

    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    std::fs::remove_file(db.join("db")).unwrap();
    for args in [&["verify"][..], &["init"]] {
        let out = careledger(&db, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            once(
                &stderr(&out),
                "its data file `db` is gone (its head file says 682 events"
            ),
            "{}",
            stderr(&out)
        );
    }
}

/// Issue 11 item 15: an inspector's read-only copy is read through `--copy`.
#[test]
fn a_read_only_store_is_read_through_a_private_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    seed_store(dir.path(), &src);
    let ro = dir.path().join("ro");
    // A read-only bind mount (as root); otherwise a directory without write permission.
    let _mount = Mount::new(&["--bind", src.to_str().unwrap()], &ro)
        .inspect(|m| m.remount("remount,bind,ro"));
    let ro = if _mount.is_some() {
        ro
    } else {
        let mut perms = std::fs::metadata(&src).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&src, perms).unwrap();
        src.clone()
    };
    let out = careledger(&ro, &["verify"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(once(&stderr(&out), "is read-only"), "{}", stderr(&out));
    assert!(stderr(&out).contains("add --copy"), "{}", stderr(&out));
    let before = std::fs::read(ro.join("db")).unwrap();
    for args in [
        &["--copy", "verify"][..],
        &["--copy", "log"],
        &["--copy", "archive", "sq-c01"],
    ] {
        // The store's key directory is beside `src`, not beside the mount point.
        let keys = dir.path().join("src.keys");
        let args = [&["--keys", keys.to_str().unwrap()][..], args].concat();
        let args = &args[..];
        let out = careledger(&ro, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("working on a private copy"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read(ro.join("db")).unwrap(), before);
    let out = careledger(&ro, &["record", "talk_held", "--json", "{}"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("must write it"), "{}", stderr(&out));
}
