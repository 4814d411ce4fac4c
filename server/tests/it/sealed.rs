//! The service over a store with encryption on (docs/privacy.md, docs/service.md): the views
//! open sealed fields for the caller's role — the counselor alone reads counseling notes — and
//! what the writer records is sealed, so no byte of the store directory holds a name, phone,
//! address, summary or note, of the seed or of what was recorded through the API.

use crate::{Service, talk};

/// The first counseling note of sq-c07 in the seed school, and the child's name.
const NOTE: &str = "初次会谈。自述想念母亲，夜间偶有失眠；与室友关系一般。建议每周写日记。";
const NAME: &str = "何欣怡";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counselor_alone_reads_the_notes_of_a_sealed_store() {
    let svc = Service::start_sealed().await;
    for user in ["teacher", "counselor", "admin", "inspector"] {
        let (status, archive) = svc
            .call(Some(user), "GET", "/api/children/sq-c07/archive", None)
            .await;
        assert_eq!(status, 200, "{user}: {archive}");
        assert!(archive.contains(NAME), "{user} reads the opened archive");
        for view in ["history", "progress"] {
            let path = format!("/api/children/sq-c07/{view}");
            let (status, body) = svc.call(Some(user), "GET", &path, None).await;
            assert_eq!(status, 200, "{user} {view}: {body}");
            assert_eq!(
                body.contains(NOTE),
                user == "counselor",
                "{user} {view}: only the counselor's views carry the note"
            );
        }
    }
    // The bureau reads the term report only: no child's file, no name.
    let (status, _) = svc
        .call(Some("bureau"), "GET", "/api/children/sq-c07/archive", None)
        .await;
    assert_eq!(status, 403);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_byte_of_the_store_holds_what_the_service_recorded_or_the_seed() {
    let svc = Service::start_sealed().await;
    // Personal values recorded through the API, by the roles that record them.
    let summary = "周末跟奶奶去赶集很开心";
    let notes = "说起父亲打工的工地时哭了很久";
    let staff_name = "覃晓燕";
    let phone = "13912345678";
    let body = talk("sq-t03", "sq-c07", summary);
    let (status, text) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let body = format!(
        r#"{{"staff":"sq-t06","child":"sq-c07","occurred_at":"2025-11-20T15:00:00+08:00","risk":"low","notes":"{notes}"}}"#
    );
    let (status, text) = svc
        .call(
            Some("counselor"),
            "POST",
            "/api/record/counseling_session",
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let body = format!(
        r#"{{"staff":"sq-t98","school":"sq","occurred_at":"2025-11-20","name":"{staff_name}","roles":["subject_teacher"],"party_member":false,"phone":"{phone}"}}"#
    );
    let (status, text) = svc
        .call(
            Some("admin"),
            "POST",
            "/api/record/staff_joined",
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    // Recording the same talk again is idempotent: validation reads the stored one in clear.
    let again = talk("sq-t03", "sq-c07", summary);
    let (status, text) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&again),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("already_present"), "{text}");
    // The views open them for their readers.
    let (_, history) = svc
        .call(
            Some("counselor"),
            "GET",
            "/api/children/sq-c07/history",
            None,
        )
        .await;
    assert!(
        history.contains(summary) && history.contains(notes),
        "{history}"
    );
    let (_, history) = svc
        .call(Some("teacher"), "GET", "/api/children/sq-c07/history", None)
        .await;
    assert!(history.contains(summary) && !history.contains(notes));
    let dir = svc.store_dir();
    let keys = dir.with_file_name("store.keys");
    assert!(
        keys.is_dir() && !keys.starts_with(&dir),
        "keys beside, not inside"
    );
    let _kept = svc.stop_keeping_files().await;

    let mut secrets = fixtures::secrets::seed_secrets().unwrap();
    assert!(secrets.contains(NAME) && secrets.contains(NOTE));
    for s in [summary, notes, staff_name, phone] {
        secrets.insert(s.to_owned());
    }
    let files = fixtures::secrets::every_file(&dir).unwrap();
    // sled's data file holds the log: the seed and what was recorded (well over 100 KiB).
    let data = files.iter().find(|(n, _)| n.ends_with("/db"));
    assert!(
        data.is_some_and(|(_, b)| b.len() > 100_000),
        "the store's data file: {:?}",
        files.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
    );
    let hits = fixtures::secrets::hits(&files, &secrets);
    assert!(hits.is_empty(), "{} hits: {:?}", hits.len(), hits);
}
