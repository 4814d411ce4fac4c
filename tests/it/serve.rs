//! The real `careledger serve`: its JSON equals the CLI's `--format json` byte for byte, it
//! survives SIGKILL under load with every acknowledged event present and nothing
//! half-written, and `user`/`token` set up its accounts.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{careledger, careledger_ok, stderr};

/// The seed school in a store in clear: the service serves only those for now (it does not
/// seal what it records, docs/service.md), so the master key `init` made is removed before
/// anything is imported — a store made before encryption, as far as the service can tell.
fn seed_store(dir: &Path, db: &Path) {
    let seed = dir.join("seed.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL).unwrap();
    careledger_ok(db, &["init"]);
    let keys = db.with_extension("keys");
    std::fs::remove_file(keys.join(vault::MASTER_FILE)).unwrap();
    careledger_ok(
        db,
        &["import", "--preserve-recorded-at", seed.to_str().unwrap()],
    );
}

const COUNTY: &str = "沿河土家族自治县";

/// Starts `careledger serve` on a free port; returns the child and its base URL.
fn start_serve(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("serve said where it listens").unwrap();
        if let Some(rest) = line.split(" on http://").nth(1) {
            break format!("http://{}", rest.split_whitespace().next().unwrap());
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// Adds an account and returns a token for it.
fn account_token(db: &Path, user: &str, role: &str, staff: Option<&str>, scope: &str) -> String {
    let mut args = vec!["user", "add", user, "--role", role];
    if let Some(s) = staff {
        args.extend(["--staff", s]);
    }
    if role == "inspector" || role == "bureau" {
        args.extend(["--county", COUNTY]);
    } else {
        args.extend(["--school", "sq"]);
    }
    careledger_ok(db, &args);
    let out = careledger_ok(db, &["token", "create", "--user", user, "--scope", scope]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn get(base: &str, token: &str, path: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn the_api_answers_the_clis_json_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let inspector = account_token(&db, "insp", "inspector", None, "read");
    let counselor = account_token(&db, "coun", "counselor", Some("sq-t06"), "read");
    let admin = account_token(&db, "adm", "school_admin", Some("sq-t01"), "read");
    let county = "%E6%B2%BF%E6%B2%B3%E5%9C%9F%E5%AE%B6%E6%97%8F%E8%87%AA%E6%B2%BB%E5%8E%BF";
    // (CLI arguments, API path, token)
    let cases: Vec<(Vec<&str>, String, &str)> = vec![
        (
            vec!["archive", "sq-c05"],
            "/api/children/sq-c05/archive".into(),
            &inspector,
        ),
        (
            vec![
                "archive",
                "sq-c05",
                "--valid-at",
                "2025-10-01",
                "--as-of",
                "2025-11-01",
            ],
            "/api/children/sq-c05/archive?valid_at=2025-10-01&as_of=2025-11-01".into(),
            &inspector,
        ),
        (
            vec!["contact-card", "sq-c05", "--on", "2025-11-20"],
            "/api/children/sq-c05/contact-card?on=2025-11-20".into(),
            &inspector,
        ),
        (
            vec!["history", "sq-c07"],
            "/api/children/sq-c07/history".into(),
            &inspector,
        ),
        (
            vec!["history", "sq-c07", "--role", "counselor"],
            "/api/children/sq-c07/history".into(),
            &counselor,
        ),
        (
            vec!["progress", "sq-c07", "--role", "counselor"],
            "/api/children/sq-c07/progress".into(),
            &counselor,
        ),
        (
            vec!["progress", "sq-c07"],
            "/api/children/sq-c07/progress".into(),
            &admin,
        ),
        (
            vec!["archives", "--school", "sq"],
            "/api/schools/sq/archives".into(),
            &inspector,
        ),
        (
            vec!["pairings", "--school", "sq", "--on", "2025-11-20"],
            "/api/schools/sq/pairings?on=2025-11-20".into(),
            &inspector,
        ),
        (
            vec!["worklist", "--staff", "sq-t03", "--on", "2025-11-20"],
            "/api/staff/sq-t03/worklist?on=2025-11-20".into(),
            &inspector,
        ),
        (
            vec!["backfill", "--school", "sq", "--days", "3"],
            "/api/schools/sq/backfill?days=3".into(),
            &inspector,
        ),
    ];
    let scores = (
        vec![
            "scores",
            "--school",
            "sq",
            "--period",
            "2025-2026-1",
            "--format",
            "json",
        ],
        "/api/schools/sq/scores?period=2025-2026-1".to_owned(),
        inspector.as_str(),
    );
    let report = (
        vec![
            "report",
            "term",
            "--term",
            "2025-2026-1",
            "--county",
            COUNTY,
            "--format",
            "json",
        ],
        format!("/api/report/term?term=2025-2026-1&county={county}"),
        inspector.as_str(),
    );
    let mut expected = Vec::new();
    for (args, path, token) in cases {
        let mut args = args.clone();
        args.extend(["--format", "json"]);
        let out = careledger_ok(&db, &args);
        expected.push((args.join(" "), out.stdout, path, token.to_owned()));
    }
    for (args, path, token) in [scores, report] {
        let out = careledger_ok(&db, &args);
        expected.push((args.join(" "), out.stdout, path, token.to_owned()));
    }
    let (mut server, base) = start_serve(&db);
    for (args, cli, path, token) in &expected {
        let (status, api) = get(&base, token, path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&api));
        assert!(
            &api == cli,
            "`careledger {args}` and GET {path} differ:\n--- cli\n{}\n--- api\n{}",
            String::from_utf8_lossy(cli),
            String::from_utf8_lossy(&api)
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn sigkill_under_load_keeps_every_acknowledged_event_and_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let token = account_token(&db, "t03", "teacher", Some("sq-t03"), "record");
    let (mut server, base) = start_serve(&db);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let children = [
        "sq-c05", "sq-c06", "sq-c07", "sq-c08", "sq-c09", "sq-c11", "sq-c12",
    ];
    let mut clients = Vec::new();
    for c in 0..16usize {
        let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
        clients.push(rt.spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!(
                    r#"{{"staff":"sq-t03","child":"{}","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"crash {c} {i}","mood":"ok"}}"#,
                    children[(c + i) % children.len()]
                );
                let sent = client
                    .post(format!("{base}/api/record/talk_held"))
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await;
                // After the kill, requests fail: those were never acknowledged.
                let Ok(resp) = sent else { break };
                if resp.status().as_u16() != 201 {
                    break;
                }
                let Ok(text) = resp.text().await else { break };
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                acked.push((v["id"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap()));
            }
            acked
        }));
    }
    // Let the load run, then kill the server in the middle of it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(rt.block_on(c).unwrap());
    }
    drop(rt);
    assert!(
        acked.len() > 50,
        "the load ran: {} acknowledged",
        acked.len()
    );
    // After restart: the chain verifies and every acknowledged event is where it was said to be.
    let out = careledger(&db, &["verify"]);
    assert!(
        out.status.success(),
        "verify after SIGKILL: {}",
        stderr(&out)
    );
    let store = store::Store::open(&db).unwrap();
    for (id, seq) in &acked {
        let env = store
            .get(*seq)
            .unwrap()
            .expect("an acknowledged event is present");
        assert_eq!(&env.id, id);
    }
    let head = store.head().seq;
    assert!(head >= 682 + acked.len() as u64);
    store.close();
    // And the service starts again on it and records.
    let (mut server, base) = start_serve(&db);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/record/talk_held"))
            .bearer_auth(&token)
            .body(r#"{"staff":"sq-t03","child":"sq-c05","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"after restart","mood":"ok"}"#)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 201);
    // SIGTERM: a graceful stop.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    let out = careledger(&db, &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn user_and_token_work_on_a_store_no_service_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let mut add = Command::new(env!("CARGO_BIN_EXE_careledger"))
        .arg("--db")
        .arg(&db)
        .args([
            "user",
            "add",
            "t",
            "--role",
            "teacher",
            "--staff",
            "sq-t03",
            "--school",
            "sq",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .output_after(b"a long password\n");
    assert!(add.status.success(), "{}", stderr(&add));
    add.stdout.clear();
    // A teacher must be a staff member of the school; a county role needs a county.
    let out = careledger(
        &db,
        &["user", "add", "x", "--role", "teacher", "--school", "sq"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = careledger(
        &db,
        &["user", "add", "y", "--role", "inspector", "--school", "sq"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let list = careledger_ok(&db, &["user", "list"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&list.stdout).contains("argon2"));
    let token = careledger_ok(&db, &["token", "create", "--user", "t", "--scope", "read"]);
    let err = stderr(&token);
    let id = err.split_whitespace().nth(1).unwrap().to_owned();
    careledger_ok(&db, &["token", "revoke", &id]);
    let out = careledger(&db, &["token", "revoke", &id]);
    assert_eq!(out.status.code(), Some(1));
    careledger_ok(&db, &["user", "disable", "t"]);
    let list = careledger_ok(&db, &["user", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("\"disabled\": true"));
    let log = careledger_ok(&db, &["access-log"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "[]");
}

/// Runs a piped command with `input` on stdin.
trait OutputAfter {
    fn output_after(&mut self, input: &[u8]) -> std::process::Output;
}

impl OutputAfter for Command {
    fn output_after(&mut self, input: &[u8]) -> std::process::Output {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[test]
fn user_and_token_go_through_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let (mut server, base) = start_serve(&db);
    // The service holds the store: the commands reach it through its admin socket.
    let out = careledger_ok(
        &db,
        &[
            "user",
            "add",
            "insp",
            "--role",
            "inspector",
            "--county",
            COUNTY,
        ],
    );
    assert!(
        stderr(&out).contains("through the running service"),
        "{}",
        stderr(&out)
    );
    let out = careledger_ok(
        &db,
        &["token", "create", "--user", "insp", "--scope", "read"],
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, _) = get(&base, &token, "/api/children/sq-c05/archive");
    assert_eq!(status, 200);
    let out = careledger_ok(&db, &["access-log", "--child", "sq-c05"]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log[0]["actor"], "insp");
    assert_eq!(log[0]["what"], "archive");
    // A bad request through the socket is still exit 1.
    let out = careledger(&db, &["user", "disable", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    careledger_ok(&db, &["user", "disable", "insp"]);
    let (status, _) = get(&base, &token, "/api/children/sq-c05/archive");
    assert_eq!(status, 401, "a disabled account's token ends at once");
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    assert!(
        !server::admin::socket_path(&db).exists(),
        "the socket is removed at stop"
    );
}

#[test]
fn a_store_with_encryption_on_is_refused_by_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    crate::seed_store(dir.path(), &db);
    let out = careledger(&db, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("serves only a store in clear"),
        "{}",
        stderr(&out)
    );
}
