//! The security rules of docs/service.md: 401 without credentials, 403 for a cross-site
//! cookie POST, slowed and counted wrong passwords, 413, 400 naming the field, session
//! cookies, the actor, token scopes, notes for counselors only, nothing identifying for the
//! bureau, the access log — and nothing appended on any rejected request.

use std::time::{Duration, Instant};

use server::accounts::Book;
use server::policy::TokenScope;

use crate::{PASSWORD, Service, talk};

fn field_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["errors"][0]["field"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_401_and_a_bad_token_is_not_anonymous() {
    let svc = Service::start().await;
    let head = svc.head();
    let (s, _) = svc
        .call(None, "GET", "/api/children/sq-c05/archive", None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = svc
        .call(
            None,
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c05", "a")),
        )
        .await;
    assert_eq!(s, 401);
    let resp = svc
        .client
        .get(svc.url("/api/me"))
        .bearer_auth("clt_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(svc.head(), head);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_cookie_posts_are_refused_and_bearer_requests_are_exempt() {
    let svc = Service::start().await;
    let cookie = svc.login("teacher").await;
    let head = svc.head();
    let post = |headers: Vec<(&'static str, String)>, tag: &str| {
        let mut req = svc
            .client
            .post(svc.url("/api/record/talk_held"))
            .body(talk("sq-t03", "sq-c05", tag));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    // A cookie and nothing saying where the request comes from: refused.
    let r = post(vec![("cookie", cookie.clone())], "x1").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A cookie from another site: refused.
    let r = post(
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "cross-site".into()),
        ],
        "x2",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = post(
        vec![
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".into()),
        ],
        "x3",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(svc.head(), head, "nothing appended on a refused request");
    // Same origin, by either header: recorded.
    let r = post(
        vec![
            ("cookie", cookie.clone()),
            ("sec-fetch-site", "same-origin".into()),
        ],
        "ok1",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let host = svc.base.trim_start_matches("http://").to_owned();
    let r = post(
        vec![
            ("cookie", cookie.clone()),
            ("origin", format!("http://{host}")),
        ],
        "ok2",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // A bearer request carries no cookie and needs neither header.
    let (s, _) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c05", "ok3")),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(svc.head(), head + 3);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_slowed_and_counted() {
    let svc = Service::start().await;
    let attempt = || async {
        let t = Instant::now();
        let r = svc
            .client
            .post(svc.url("/api/login"))
            .body(r#"{"user":"teacher","password":"wrong password"}"#)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), t.elapsed())
    };
    let (s1, _) = attempt().await;
    let (s2, t2) = attempt().await;
    let (s3, t3) = attempt().await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    // The delay before answering grows with the failures (a lower bound, not a speed).
    assert!(t2 >= Duration::from_millis(250), "{t2:?}");
    assert!(t3 >= Duration::from_millis(500), "{t3:?}");
    let failures = Book::new(&svc.store).failures("teacher").unwrap();
    assert_eq!(failures.count, 3);
    // A success clears the count.
    svc.login("teacher").await;
    assert_eq!(Book::new(&svc.store).failures("teacher").unwrap().count, 0);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_http_only_strict_and_rotated_at_login() {
    let svc = Service::start().await;
    let resp = svc
        .client
        .post(svc.url("/api/login"))
        .body(format!(r#"{{"user":"teacher","password":"{PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let old = set.split(';').next().unwrap().to_owned();
    // Logging in again with the old cookie gives a new id and ends the old one.
    let resp = svc
        .client
        .post(svc.url("/api/login"))
        .header("cookie", old.clone())
        .header("sec-fetch-site", "same-origin")
        .body(format!(r#"{{"user":"teacher","password":"{PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    let new = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let new = new.split(';').next().unwrap().to_owned();
    assert_ne!(old, new);
    let me = |c: String| {
        svc.client
            .get(svc.url("/api/me"))
            .header("cookie", c)
            .send()
    };
    assert_eq!(me(old).await.unwrap().status().as_u16(), 401);
    assert_eq!(me(new.clone()).await.unwrap().status().as_u16(), 200);
    // A new password ends the account's sessions.
    Book::new(&svc.store)
        .set_password("teacher", "another long password")
        .unwrap();
    assert_eq!(me(new).await.unwrap().status().as_u16(), 401);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_bodies_are_refused_naming_the_field() {
    let svc = Service::start().await;
    let head = svc.head();
    let huge = format!(
        r#"{{"staff":"sq-t03","child":"sq-c05","topic":"x","summary":"{}","mood":"ok"}}"#,
        "长".repeat(100_000)
    );
    // The server answers 413 without reading the rest of the body and closes the
    // connection; `Connection: close` keeps the client from reusing it for the next request
    // (a reused, half-closed connection fails the next request with an incomplete message).
    let resp = svc
        .client
        .post(svc.url("/api/record/talk_held"))
        .bearer_auth(svc.token("teacher"))
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let (s, body) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(r#"{"staff":"sq-t03","child":}"#),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(field_of(&body).as_deref(), Some("child"), "{body}");
    let (s, body) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(r#"{"staff":"sq-t03","child":"sq-c05","topic":"x","summary":"y","mood":"sunny"}"#),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(field_of(&body).as_deref(), Some("mood"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("<cli>:1: field mood")
    );
    // The actor is the logged-in staff member, never the client's.
    let (s, body) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(r#"{"actor":"sq-t01","staff":"sq-t03","child":"sq-c05","topic":"x","summary":"y","mood":"ok"}"#),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(field_of(&body).as_deref(), Some("actor"));
    // A JSON body of the admin API names its field too.
    let (s, body) = svc
        .call(
            Some("admin"),
            "POST",
            "/api/admin/users",
            Some(r#"{"user":"x","role":"king"}"#),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(field_of(&body).as_deref(), Some("role"), "{body}");
    assert_eq!(svc.head(), head, "nothing appended on any rejected request");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_cannot_record_and_a_teacher_records_only_for_paired_children() {
    let svc = Service::start().await;
    let head = svc.head();
    let (read, _) = Book::new(&svc.store)
        .create_token(
            "teacher",
            TokenScope::Read,
            chrono::Utc::now() + chrono::Duration::hours(1),
            "read only",
        )
        .unwrap();
    let r = svc
        .client
        .post(svc.url("/api/record/talk_held"))
        .bearer_auth(&read)
        .body(talk("sq-t03", "sq-c05", "r"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // sq-c01 is paired with sq-t02, not with the teacher sq-t03.
    let (s, _) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c01", "u")),
        )
        .await;
    assert_eq!(s, 403);
    // Nor for another teacher.
    let (s, _) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t02", "sq-c01", "v")),
        )
        .await;
    assert_eq!(s, 403);
    // Before the pairing began (2025-09-01) the teacher was not paired: refused.
    let early = r#"{"staff":"sq-t03","child":"sq-c05","occurred_at":"2025-08-30T10:00:00+08:00","topic":"x","summary":"y","mood":"ok"}"#;
    let (s, _) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(early),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(svc.head(), head);
    // A late entry of real work (paired on that day) is allowed.
    let (s, body) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c05", "late")),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // The same event again: already present, nothing appended.
    let (s, body) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c05", "late")),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(svc.head(), head + 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_reach_the_counselor_only() {
    let svc = Service::start().await;
    let note = "初次会谈。自述想念母亲";
    let (s, body) = svc
        .call(
            Some("counselor"),
            "GET",
            "/api/children/sq-c07/history",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(body.contains(note), "the counselor reads notes");
    for user in ["admin", "inspector"] {
        for view in ["history", "progress"] {
            let (s, body) = svc
                .call(
                    Some(user),
                    "GET",
                    &format!("/api/children/sq-c07/{view}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{user} {view}");
            assert!(!body.contains(note), "{user} must not read notes in {view}");
        }
    }
    // sq-c07 is paired with the teacher sq-t03, who reads the file without notes.
    let (s, body) = svc
        .call(Some("teacher"), "GET", "/api/children/sq-c07/history", None)
        .await;
    assert_eq!(s, 200);
    assert!(!body.contains(note));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bureau_sees_nothing_identifying() {
    let svc = Service::start().await;
    let path = format!(
        "/api/report/term?term=2025-2026-1&county={}",
        "%E6%B2%BF%E6%B2%B3%E5%9C%9F%E5%AE%B6%E6%97%8F%E8%87%AA%E6%B2%BB%E5%8E%BF"
    );
    let (s, body) = svc.call(Some("bureau"), "GET", &path, None).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with('['));
    // No name, phone or address of any child, parent, guardian or staff member.
    let mut personal = Vec::new();
    for line in fixtures::SEED_SCHOOL_JSONL.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        collect_personal(&v, &mut personal);
    }
    assert!(personal.len() > 50);
    for p in &personal {
        assert!(!body.contains(p.as_str()), "the bureau's report holds {p}");
    }
    // And every child view is closed to the bureau.
    for view in ["archive", "contact-card", "history", "progress"] {
        let (s, _) = svc
            .call(
                Some("bureau"),
                "GET",
                &format!("/api/children/sq-c01/{view}"),
                None,
            )
            .await;
        assert_eq!(s, 403);
    }
    svc.stop().await;
}

fn collect_personal(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if matches!(
                    k.as_str(),
                    "name" | "phone" | "address" | "employer_address"
                ) && let Some(s) = v.as_str()
                    && s.chars().count() >= 2
                {
                    out.push(s.to_owned());
                }
                collect_personal(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_personal(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_of_a_child_file_is_in_the_hash_chained_access_log() {
    let svc = Service::start().await;
    for view in ["archive", "contact-card", "history", "progress"] {
        let (s, _) = svc
            .call(
                Some("teacher"),
                "GET",
                &format!("/api/children/sq-c05/{view}"),
                None,
            )
            .await;
        assert_eq!(s, 200);
    }
    // A refused read is not an access.
    let (s, _) = svc
        .call(Some("teacher"), "GET", "/api/children/sq-c01/archive", None)
        .await;
    assert_eq!(s, 404);
    let (s, body) = svc
        .call(
            Some("inspector"),
            "GET",
            "/api/access-log?child=sq-c05&actor=teacher",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let whats: Vec<&str> = entries
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["archive", "contact_card", "history", "progress"]);
    assert!(
        entries
            .iter()
            .all(|e| e["role"] == "teacher" && e["from"] == "127.0.0.1")
    );
    // The chain: each entry names the one before it, and an altered entry is found.
    let log = svc.store.access_log().unwrap();
    let all = log.entries().unwrap();
    assert_eq!(all.len(), 4);
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let mut bad = all[1].clone();
    bad.access.child = Some("sq-c06".into());
    log.tamper_for_test(2, &serde_json::to_vec(&bad).unwrap())
        .unwrap();
    let err = log.entries().unwrap_err().to_string();
    assert!(err.contains("entry 2"), "{err}");
    // Only inspectors read it.
    for user in ["teacher", "counselor", "admin", "bureau"] {
        let (s, _) = svc.call(Some(user), "GET", "/api/access-log", None).await;
        assert_eq!(s, 403, "{user}");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_appends_nothing_for_it() {
    // A queue of one and batches of one: of many requests sent at once, some find it full.
    let limits = server::Limits {
        queue: 1,
        batch: 1,
        ..Default::default()
    };
    let svc = Service::start_with(limits).await;
    let head = svc.head();
    let mut sent = Vec::new();
    for i in 0..64 {
        let req = svc
            .client
            .post(svc.url("/api/record/talk_held"))
            .bearer_auth(svc.token("teacher"))
            .body(talk("sq-t03", "sq-c05", &format!("busy {i}")));
        sent.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry)
        }));
    }
    let mut created = 0;
    let mut busy = 0;
    for s in sent {
        match s.await.unwrap() {
            (201, _) => created += 1,
            (503, Some(retry)) => {
                assert_eq!(retry, "1");
                busy += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(created + busy, 64);
    assert_eq!(
        svc.head(),
        head + created,
        "only acknowledged events are in the log"
    );
    svc.stop().await;
}
