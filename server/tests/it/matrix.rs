//! Every role (and no one) against every route, as data: the answers are compared with the
//! committed `server/tests/authz-matrix.txt` (`BLESS=1` rewrites it after a deliberate
//! change). The test fails if a route of `server::ROUTES` has no probe, and checks that no
//! refused request appended anything, that no answer to anyone but the counselor carries a
//! counseling note, and that no answer to the bureau carries a personal value of the seed.
//! It runs on a store in clear and on one with encryption on: the same matrix for both.

use std::collections::BTreeSet;

use server::Limits;

use crate::{COUNTY, Keys, PASSWORD, Service};

/// (route method, route path, concrete path, body). `{user}` in a body is the caller's user
/// name; `{name}` in a path is a value the service was set up with.
const PROBES: &[(&str, &str, &str, Option<&str>)] = &[
    ("POST", "/api/login", "/api/login", Some(LOGIN)),
    ("GET", "/api/me", "/api/me", None),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/talk_held",
        Some(TALK_PAIRED),
    ),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/talk_held",
        Some(TALK_UNPAIRED),
    ),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/counseling_session",
        Some(COUNSELING),
    ),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/staff_joined",
        Some(STAFF_JOINED),
    ),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/retraction",
        Some(RETRACT_OTHERS),
    ),
    (
        "POST",
        "/api/record/{kind}",
        "/api/record/child_erased",
        Some(ERASURE),
    ),
    (
        "GET",
        "/api/children/{child}/archive",
        "/api/children/sq-c05/archive",
        None,
    ),
    (
        "GET",
        "/api/children/{child}/archive",
        "/api/children/sq-c01/archive",
        None,
    ),
    (
        "GET",
        "/api/children/{child}/archive",
        "/api/children/sq-c99/archive",
        None,
    ),
    (
        "GET",
        "/api/children/{child}/contact-card",
        "/api/children/sq-c05/contact-card",
        None,
    ),
    (
        "GET",
        "/api/children/{child}/history",
        "/api/children/sq-c05/history",
        None,
    ),
    (
        "GET",
        "/api/children/{child}/progress",
        "/api/children/sq-c05/progress",
        None,
    ),
    (
        "GET",
        "/api/schools/{school}/archives",
        "/api/schools/sq/archives",
        None,
    ),
    (
        "GET",
        "/api/schools/{school}/pairings",
        "/api/schools/sq/pairings?on=2025-11-20",
        None,
    ),
    (
        "GET",
        "/api/schools/{school}/pairings",
        "/api/schools/zz/pairings",
        None,
    ),
    (
        "GET",
        "/api/schools/{school}/backfill",
        "/api/schools/sq/backfill",
        None,
    ),
    (
        "GET",
        "/api/schools/{school}/scores",
        "/api/schools/sq/scores?period=2025-2026-1",
        None,
    ),
    (
        "GET",
        "/api/staff/{staff}/worklist",
        "/api/staff/sq-t03/worklist?on=2025-11-20",
        None,
    ),
    (
        "GET",
        "/api/staff/{staff}/worklist",
        "/api/staff/sq-t02/worklist?on=2025-11-20",
        None,
    ),
    (
        "GET",
        "/api/report/term",
        "/api/report/term?term=2025-2026-1&school=sq",
        None,
    ),
    (
        "GET",
        "/api/report/term",
        "/api/report/term?term=2025-2026-1&county={county}",
        None,
    ),
    ("GET", "/api/verify", "/api/verify", None),
    ("GET", "/api/access-log", "/api/access-log", None),
    ("GET", "/api/admin/users", "/api/admin/users", None),
    (
        "POST",
        "/api/admin/users",
        "/api/admin/users",
        Some(NEW_USER),
    ),
    (
        "POST",
        "/api/admin/tokens",
        "/api/admin/tokens",
        Some(NEW_TOKEN),
    ),
    (
        "POST",
        "/api/admin/users/{user}/password",
        "/api/admin/users/victim/password",
        Some(NEW_PASSWORD),
    ),
    (
        "POST",
        "/api/admin/tokens/{id}/revoke",
        "/api/admin/tokens/{victim_token}/revoke",
        None,
    ),
    (
        "POST",
        "/api/admin/users/{user}/disable",
        "/api/admin/users/victim/disable",
        None,
    ),
    ("GET", "/", "/", None),
    ("GET", "/login", "/login", None),
    ("POST", "/login", "/login", Some(LOGIN)),
    ("GET", "/static/htmx.min.js", "/static/htmx.min.js", None),
    ("GET", "/worklist", "/worklist?on=2025-11-20", None),
    (
        "GET",
        "/worklist/fields",
        "/worklist/fields?type=talk_held",
        None,
    ),
    (
        "POST",
        "/worklist/record",
        "/worklist/record",
        Some(TALK_FORM),
    ),
    ("GET", "/child/{child}", "/child/sq-c05", None),
    ("GET", "/child/{child}", "/child/sq-c01", None),
    (
        "GET",
        "/child/{child}/timeline",
        "/child/sq-c05/timeline",
        None,
    ),
    (
        "GET",
        "/child/{child}/timeline",
        "/child/sq-c01/timeline",
        None,
    ),
    (
        "GET",
        "/child/{child}/timeline",
        "/child/sq-c99/timeline",
        None,
    ),
    (
        "GET",
        "/school/{school}/backfill",
        "/school/sq/backfill",
        None,
    ),
    (
        "GET",
        "/school/{school}/backfill",
        "/school/zz/backfill",
        None,
    ),
    ("GET", "/verify", "/verify", None),
    ("GET", "/access-log", "/access-log?child=sq-c05", None),
    ("GET", "/school/{school}/roster", "/school/sq/roster", None),
    ("GET", "/school/{school}/roster", "/school/zz/roster", None),
    (
        "POST",
        "/school/{school}/roster",
        "/school/sq/roster",
        Some(TALK_FORM),
    ),
    (
        "GET",
        "/school/{school}/pairings",
        "/school/sq/pairings?on=2025-11-20",
        None,
    ),
    (
        "POST",
        "/school/{school}/pairings",
        "/school/sq/pairings",
        Some(TALK_FORM),
    ),
    ("POST", "/logout", "/logout", None),
    ("POST", "/api/logout", "/api/logout", None),
];

/// A quick-entry form sent as the API's JSON: the form extractor refuses it (415); the
/// upload pages answer it, once authorised, with their form and the error (400).
const TALK_FORM: &str = r#"{"type":"talk_held"}"#;

const LOGIN: &str = r#"{"user":"{user}","password":"correct horse battery"}"#;
const TALK_PAIRED: &str = r#"{"staff":"sq-t03","child":"sq-c05","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"matrix","mood":"ok"}"#;
const TALK_UNPAIRED: &str = r#"{"staff":"sq-t03","child":"sq-c01","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"matrix","mood":"ok"}"#;
const COUNSELING: &str = r#"{"staff":"sq-t06","child":"sq-c07","occurred_at":"2025-11-20T15:00:00+08:00","risk":"low","notes":"matrix"}"#;
const STAFF_JOINED: &str = r#"{"staff":"sq-t99","school":"sq","occurred_at":"2025-11-20","name":"新老师","roles":["subject_teacher"],"party_member":false,"phone":"13800000099"}"#;
const RETRACT_OTHERS: &str = r#"{"target":"sq-e0054","reason":"matrix"}"#;
/// No role erases through the API (docs/service.md): only the operator, through the admin
/// socket, with the key directory.
const ERASURE: &str =
    r#"{"child":"sq-c05","basis":"PIPL Art. 47","approved_by":"sq-t01","key_commitment":"00"}"#;
const NEW_USER: &str = r#"{"user":"new-teacher","role":"teacher","staff":"sq-t04","scope":{"school":"sq"},"password":"a long password"}"#;
const NEW_TOKEN: &str = r#"{"user":"victim","scope":"read","days":1}"#;
const NEW_PASSWORD: &str = r#"{"password":"another long password"}"#;

const CALLERS: [&str; 6] = [
    "anonymous",
    "teacher",
    "counselor",
    "admin",
    "inspector",
    "bureau",
];

/// The counseling notes of the seed school.
fn seed_notes() -> Vec<String> {
    fixtures::SEED_SCHOOL_JSONL
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["notes"].as_str().map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_route() {
    every_role(Keys::Clear).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_route_of_a_sealed_store() {
    every_role(Keys::Sealed).await;
}

async fn every_role(keys: Keys) {
    let notes = seed_notes();
    assert!(notes.len() >= 5, "the seed has counseling notes");
    let secrets: BTreeSet<String> = fixtures::secrets::seed_secrets().unwrap();
    // Coverage first: a route without a probe fails the test.
    for (m, p) in server::ROUTES {
        assert!(
            PROBES.iter().any(|(pm, pp, ..)| pm == m && pp == p),
            "route {m} {p} has no probe in the matrix"
        );
    }
    for (m, p, ..) in PROBES {
        assert!(
            server::ROUTES.contains(&(m, p)),
            "probe of unknown route {m} {p}"
        );
    }
    let svc = Service::start_on(Limits::default(), keys).await;
    let mut out = String::from(
        "# status of each probe per caller (server/tests/it/matrix.rs; BLESS=1 rewrites)\n",
    );
    for (method, _, shown, body) in PROBES {
        let mut path = shown.replace("{county}", COUNTY);
        for (k, v) in &svc.vars {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        let mut line = format!("{method} {shown}:");
        for caller in CALLERS {
            let user = (caller != "anonymous").then_some(caller);
            let body = body.map(|b| {
                b.replace("{user}", user.unwrap_or("nobody"))
                    .replace("correct horse battery", PASSWORD)
            });
            let head = svc.head();
            let (status, text) = svc.call(user, method, &path, body.as_deref()).await;
            // Pages answer a missing session with the login page (303), the API with 401.
            if !(200..300).contains(&status) {
                assert_eq!(
                    svc.head(),
                    head,
                    "{caller} {method} {path} appended on {status}"
                );
            }
            if caller != "counselor" {
                for n in &notes {
                    assert!(
                        !text.contains(n.as_str()),
                        "{caller} {method} {path}: a note"
                    );
                }
            }
            if caller == "bureau" {
                for s in &secrets {
                    assert!(!text.contains(s.as_str()), "bureau {method} {path}: {s}");
                }
            }
            if status == 404 {
                // Out of scope reads exactly like absent: the same body.
                assert_eq!(text, r#"{"error":"not found"}"#, "{caller} {method} {path}");
            }
            line.push_str(&format!(" {caller}={status}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    svc.stop().await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authz-matrix.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&file, &out).unwrap();
    }
    let expected = std::fs::read_to_string(&file)
        .unwrap_or_else(|_| panic!("{} is missing: run with BLESS=1", file.display()));
    assert_eq!(
        out, expected,
        "the role × route matrix changed (BLESS=1 after review)"
    );
}
