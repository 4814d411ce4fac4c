use super::*;
use chrono::TimeZone as _;
use events::{Event, Hash, Source};
use std::path::Path;

fn talk(id: &str, child: &str, summary: &str) -> Draft {
    let event: Event = serde_json::from_value(serde_json::json!({"talk_held": {
        "staff": "t1", "child": child, "topic": "学习", "summary": summary, "mood": "good"
    }}))
    .expect("an event");
    Draft {
        id: id.into(),
        occurred_at: chrono::Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap(),
        actor: "t1".into(),
        event,
        recorded_at: None,
        sealed: None,
    }
}

fn envelope(d: Draft, seq: u64) -> Envelope {
    Envelope {
        schema: if d.sealed.is_some() {
            SEALED_SCHEMA
        } else {
            events::SCHEMA
        },
        seq,
        id: d.id,
        recorded_at: d.occurred_at,
        occurred_at: d.occurred_at,
        actor: d.actor,
        source: Source::Cli,
        event: d.event,
        sealed: d.sealed,
        prev_hash: Hash::ZERO,
        hash: Hash::ZERO,
    }
}

#[test]
fn seal_then_open_gives_the_event_back_and_the_clear_part_hides_it() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(&dir.path().join("k")).unwrap();
    let mut d = talk("e1", "c1", "想妈妈了");
    let original = d.event.clone();
    v.seal(&mut d, None).unwrap();
    assert!(d.sealed.is_some());
    assert!(!format!("{:?}", d).contains("想妈妈了"));
    let env = envelope(d, 1);
    let opened = v.open(env, Reader::Staff).unwrap();
    assert_eq!(opened.event, original);
    // Reopening the directory finds the same key.
    let again = Vault::open_dir(&dir.path().join("k")).unwrap().unwrap();
    let mut d2 = talk("e2", "c1", "又谈了");
    v.seal(&mut d2, None).unwrap();
    assert_eq!(
        again.open(envelope(d2, 2), Reader::Staff).unwrap().event,
        talk("e2", "c1", "又谈了").event
    );
}

#[test]
fn ciphertext_moved_to_another_event_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(dir.path()).unwrap();
    let mut a = talk("e1", "c1", "甲");
    let mut b = talk("e2", "c1", "乙");
    v.seal(&mut a, None).unwrap();
    v.seal(&mut b, None).unwrap();
    let mut moved = envelope(b, 2);
    moved.sealed = a.sealed.clone();
    assert!(matches!(
        v.open(moved, Reader::Staff),
        Err(VaultError::Tampered { id }) if id == "e2"
    ));
}

#[test]
fn counseling_notes_open_only_for_a_counselor() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(dir.path()).unwrap();
    let event: Event = serde_json::from_value(serde_json::json!({"counseling_session": {
        "staff": "t1", "child": "c1", "risk": "low", "notes": "心里话"
    }}))
    .unwrap();
    let mut d = talk("e1", "c1", "x");
    d.event = event.clone();
    v.seal(&mut d, None).unwrap();
    let env = envelope(d, 1);
    let staff = v.open(env.clone(), Reader::Staff).unwrap();
    assert_ne!(staff.event, event);
    assert!(!format!("{:?}", staff.event).contains("心里话"));
    assert_eq!(v.open(env, Reader::Counselor).unwrap().event, event);
}

#[test]
fn an_erased_key_shows_the_erased_form_and_is_never_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(dir.path()).unwrap();
    let mut d = talk("e1", "c1", "想妈妈了");
    v.seal(&mut d, None).unwrap();
    let env = envelope(d, 1);
    let subject = KeySubject::Child("c1".into());
    let c = v.commitment_of(&subject).unwrap().unwrap();
    assert_eq!(v.erase(&subject).unwrap(), c);
    // A fresh vault on the same directory, so nothing is cached.
    let v = Vault::open_dir(dir.path()).unwrap().unwrap();
    let opened = v.open(env, Reader::Counselor).unwrap();
    let Event::TalkHeld { summary, .. } = &opened.event else {
        panic!("kind kept")
    };
    assert_eq!(summary, seal::ERASED);
    assert!(matches!(
        v.seal(&mut talk("e2", "c1", "新的"), None),
        Err(VaultError::Erased { .. })
    ));
    assert!(matches!(v.erase(&subject), Err(VaultError::Erased { .. })));
    // The wrapped key file is gone; the tombstone holds only the commitment.
    let files: Vec<_> = std::fs::read_dir(dir.path().join(SUBJECTS_DIR))
        .unwrap()
        .collect();
    assert!(files.is_empty());
}

#[test]
fn a_master_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    Vault::create(dir.path()).unwrap();
    let master = dir.path().join(MASTER_FILE);
    std::fs::set_permissions(&master, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Vault::open_dir(dir.path()),
        Err(VaultError::File(KeyFileError::Open { .. }))
    ));
    assert!(matches!(
        Vault::create(dir.path()),
        Err(VaultError::File(KeyFileError::Exists { .. }))
    ));
}

#[test]
fn another_master_key_does_not_open_the_wrapped_keys() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(dir.path()).unwrap();
    let mut d = talk("e1", "c1", "甲");
    v.seal(&mut d, None).unwrap();
    std::fs::remove_file(dir.path().join(MASTER_FILE)).unwrap();
    std::fs::write(dir.path().join(MASTER_FILE), files::master_text(&[9u8; 32])).unwrap();
    std::fs::set_permissions(
        dir.path().join(MASTER_FILE),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let other = Vault::open_dir(dir.path()).unwrap().unwrap();
    assert!(matches!(
        other.open(envelope(d, 1), Reader::Staff),
        Err(VaultError::Unwrap { .. })
    ));
}

/// A key directory with three children's keys (one erased) and a counseling session, and
/// the envelopes sealed under it.
fn rotation_fixture(dir: &Path) -> Vec<Envelope> {
    let v = Vault::create(dir).unwrap();
    let mut envs = Vec::new();
    for (i, c) in ["c1", "c2", "c3"].iter().enumerate() {
        let mut d = talk(&format!("e{i}"), c, &format!("摘要{i}"));
        v.seal(&mut d, None).unwrap();
        envs.push(envelope(d, i as u64 + 1));
    }
    let mut d = counseling("cs1", "c1", "笔记");
    v.seal(&mut d, None).unwrap();
    envs.push(envelope(d, 4));
    v.erase(&KeySubject::Child("c3".into())).unwrap();
    envs
}

fn counseling(id: &str, child: &str, notes: &str) -> Draft {
    let mut d = talk(id, child, "");
    d.event = serde_json::from_value(serde_json::json!({"counseling_session": {
        "staff": "t1", "child": child, "risk": "low", "notes": notes
    }}))
    .expect("an event");
    d
}

/// Everything opened by a fresh vault of `dir`, as counselor.
fn opened_all(dir: &Path, envs: &[Envelope]) -> Vec<Event> {
    let v = Vault::open_dir(dir).unwrap().unwrap();
    envs.iter()
        .map(|e| v.open(e.clone(), Reader::Counselor).unwrap().event)
        .collect()
}

#[test]
fn rotation_rewraps_every_live_key_under_a_new_master_and_keeps_erased_keys_erased() {
    let dir = tempfile::tempdir().unwrap();
    let envs = rotation_fixture(dir.path());
    let before = opened_all(dir.path(), &envs);
    let old_master = std::fs::read(dir.path().join(MASTER_FILE)).unwrap();
    let old_wrapped = std::fs::read(dir.path().join(COUNSELOR_FILE)).unwrap();
    // The counselor key and the two live data keys.
    assert_eq!(Vault::rotate(dir.path()).unwrap(), 3);
    assert_ne!(
        std::fs::read(dir.path().join(MASTER_FILE)).unwrap(),
        old_master
    );
    assert_ne!(
        std::fs::read(dir.path().join(COUNSELOR_FILE)).unwrap(),
        old_wrapped
    );
    assert!(!dir.path().join(ROTATION_DIR).exists());
    assert_eq!(opened_all(dir.path(), &envs), before);
    // The erased key stays erased: its tombstone is there, no key is made for it.
    let v = Vault::open_dir(dir.path()).unwrap().unwrap();
    assert!(
        v.erased_commitment(&KeySubject::Child("c3".into()))
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        v.seal(&mut talk("e9", "c3", "新的"), None),
        Err(VaultError::Erased { .. })
    ));
    // The old master key opens none of the new wrapped keys (a backup of it is useless).
    std::fs::remove_file(dir.path().join(MASTER_FILE)).unwrap();
    files::write_new(
        &dir.path().join(MASTER_FILE),
        &String::from_utf8(old_master).unwrap(),
    )
    .unwrap();
    let old = Vault::open_dir(dir.path()).unwrap().unwrap();
    assert!(matches!(
        old.open(envs[0].clone(), Reader::Staff),
        Err(VaultError::Unwrap { .. })
    ));
}

#[test]
fn a_rotation_cut_before_its_commit_point_leaves_the_old_generation() {
    let dir = tempfile::tempdir().unwrap();
    let envs = rotation_fixture(dir.path());
    let before = opened_all(dir.path(), &envs);
    let master = std::fs::read(dir.path().join(MASTER_FILE)).unwrap();
    stage_rotation(dir.path()).unwrap();
    // The crash: the commit point never reached the disk.
    std::fs::remove_file(dir.path().join(ROTATION_DIR).join(ROTATION_READY)).unwrap();
    assert_eq!(opened_all(dir.path(), &envs), before);
    assert_eq!(std::fs::read(dir.path().join(MASTER_FILE)).unwrap(), master);
    assert!(
        !dir.path().join(ROTATION_DIR).exists(),
        "the staging is dropped"
    );
}

#[test]
fn a_rotation_cut_after_its_commit_point_is_finished_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let envs = rotation_fixture(dir.path());
    let before = opened_all(dir.path(), &envs);
    let master = std::fs::read(dir.path().join(MASTER_FILE)).unwrap();
    stage_rotation(dir.path()).unwrap();
    // The crash: one data key moved, the master key not yet.
    let staged = dir.path().join(ROTATION_DIR).join(SUBJECTS_DIR);
    let first = files::names(&staged).unwrap().remove(0);
    files::replace(
        &staged.join(&first),
        &dir.path().join(SUBJECTS_DIR).join(&first),
    )
    .unwrap();
    assert_eq!(opened_all(dir.path(), &envs), before);
    assert_ne!(std::fs::read(dir.path().join(MASTER_FILE)).unwrap(), master);
    assert!(!dir.path().join(ROTATION_DIR).exists());
}

#[test]
fn one_vault_seals_on_one_thread_and_opens_on_others() {
    // A service shares one vault: its writer seals while request threads open.
    let dir = tempfile::tempdir().unwrap();
    let v = std::sync::Arc::new(Vault::create(dir.path()).unwrap());
    let sealed: Vec<Envelope> = (0..8)
        .map(|i| {
            let mut d = talk(&format!("e{i}"), &format!("c{}", i % 3), "甲");
            v.seal(&mut d, None).unwrap();
            envelope(d, i + 1)
        })
        .collect();
    let readers: Vec<_> = sealed
        .into_iter()
        .map(|env| {
            let v = v.clone();
            std::thread::spawn(move || v.open(env, Reader::Staff).unwrap())
        })
        .collect();
    for r in readers {
        let opened = r.join().unwrap();
        assert_eq!(
            opened.event,
            talk(&opened.id, opened.event.children()[0].as_str(), "甲").event
        );
    }
}

#[test]
fn deferred_keys_are_on_disk_only_after_write_new_keys_and_open_from_a_new_vault() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k");
    let v = Vault::create(&k).unwrap();
    let mut drafts: Vec<Draft> = (0..5)
        .map(|i| talk(&format!("e{i}"), &format!("c{i}"), "想妈妈了"))
        .collect();
    for d in &mut drafts {
        v.seal_deferred(d, None).unwrap();
    }
    assert_eq!(v.unwritten_keys(), 5);
    assert_eq!(files::names(&k.join(SUBJECTS_DIR)).unwrap().len(), 0);
    assert_eq!(v.write_new_keys().unwrap(), 5);
    assert_eq!(v.unwritten_keys(), 0);
    let names = files::names(&k.join(SUBJECTS_DIR)).unwrap();
    assert_eq!(names.len(), 5, "{names:?}");
    // No temporary file is left behind.
    let all: Vec<_> = std::fs::read_dir(k.join(SUBJECTS_DIR)).unwrap().collect();
    assert_eq!(all.len(), 5);
    let again = Vault::open_dir(&k).unwrap().unwrap();
    for (i, d) in drafts.into_iter().enumerate() {
        let opened = again
            .open(envelope(d, i as u64 + 1), Reader::Staff)
            .unwrap();
        assert_eq!(opened.event, talk("x", &format!("c{i}"), "想妈妈了").event);
    }
}

#[test]
fn an_unwritten_key_erased_is_never_written_and_a_failed_write_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k");
    let v = Vault::create(&k).unwrap();
    let mut a = talk("e1", "c1", "一");
    let mut b = talk("e2", "c2", "二");
    v.seal_deferred(&mut a, None).unwrap();
    v.seal_deferred(&mut b, None).unwrap();
    v.erase(&KeySubject::Child("c1".into())).unwrap();
    assert_eq!(v.unwritten_keys(), 1);
    // A file in the way of c2's key: the write fails, c2's key stays to be written.
    std::fs::create_dir_all(k.join(SUBJECTS_DIR)).unwrap();
    let c2 = k.join(SUBJECTS_DIR).join(hex::encode("child:c2"));
    std::fs::write(&c2, "in the way").unwrap();
    assert!(matches!(
        v.write_new_keys(),
        Err(VaultError::File(KeyFileError::Exists { .. }))
    ));
    assert_eq!(v.unwritten_keys(), 1);
    std::fs::remove_file(&c2).unwrap();
    assert_eq!(v.write_new_keys().unwrap(), 1);
    let names = files::names(&k.join(SUBJECTS_DIR)).unwrap();
    assert_eq!(names, vec![hex::encode("child:c2")]);
    // c1 was erased before its key reached the disk: it can never be made.
    assert!(matches!(
        v.seal(&mut talk("e3", "c1", "三"), None),
        Err(VaultError::Erased { .. })
    ));
}

#[test]
fn seal_writes_a_key_a_deferred_seal_made_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k");
    let v = Vault::create(&k).unwrap();
    v.seal_deferred(&mut talk("e1", "c1", "一"), None).unwrap();
    v.seal(&mut talk("e2", "c1", "二"), None).unwrap();
    assert_eq!(v.unwritten_keys(), 0);
    assert_eq!(files::names(&k.join(SUBJECTS_DIR)).unwrap().len(), 1);
}
