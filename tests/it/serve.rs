//! The real `careledger serve`: its JSON equals the CLI's `--format json` byte for byte (on a
//! store in clear and on one with encryption on, as `init` makes it), it survives SIGKILL
//! under load with every acknowledged event present and nothing half-written, `user`/`token`
//! set up its accounts, and `erase` reaches it through its admin socket.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{careledger, careledger_ok, stderr};

/// The seed school in a store in clear: the master key `init` made is removed before anything
/// is imported — a store made before encryption, which the service still serves.
fn seed_clear_store(dir: &Path, db: &Path) {
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
    byte_for_byte(false);
}

#[test]
fn the_api_answers_the_clis_json_byte_for_byte_on_an_encrypted_store() {
    byte_for_byte(true);
}

fn byte_for_byte(encrypted: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    if encrypted {
        crate::seed_store(dir.path(), &db);
    } else {
        seed_clear_store(dir.path(), &db);
    }
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
    crate::seed_store(dir.path(), &db);
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
    seed_clear_store(dir.path(), &db);
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
    crate::seed_store(dir.path(), &db);
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

fn post(base: &str, token: &str, path: &str, body: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// The first counseling note of sq-c07 in the seed school, and the child's name.
const NOTE: &str = "初次会谈。自述想念母亲，夜间偶有失眠；与室友关系一般。建议每周写日记。";
const NAME: &str = "何欣怡";

#[test]
fn erase_goes_through_the_running_service_and_scores_do_not_move() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    crate::seed_store(dir.path(), &db);
    let inspector = account_token(&db, "insp", "inspector", None, "read");
    let counselor = account_token(&db, "coun", "counselor", Some("sq-t06"), "read");
    let teacher = account_token(&db, "tch", "teacher", Some("sq-t03"), "record");
    let (mut server, base) = start_serve(&db);
    let county = "%E6%B2%BF%E6%B2%B3%E5%9C%9F%E5%AE%B6%E6%97%8F%E8%87%AA%E6%B2%BB%E5%8E%BF";
    let unchanged = [
        "/api/schools/sq/scores?period=2025-2026-1".to_owned(),
        "/api/schools/sq/scores?period=2025-2026-1&as_of=2025-11-01".to_owned(),
        "/api/report/term?term=2025-2026-1&school=sq".to_owned(),
        format!("/api/report/term?term=2025-2026-1&county={county}"),
    ];
    let before: Vec<Vec<u8>> = unchanged
        .iter()
        .map(|p| {
            let (status, body) = get(&base, &inspector, p);
            assert_eq!(status, 200, "{p}");
            body
        })
        .collect();
    let (_, archive) = get(&base, &inspector, "/api/children/sq-c07/archive");
    assert!(String::from_utf8_lossy(&archive).contains(NAME));
    let (_, history) = get(&base, &counselor, "/api/children/sq-c07/history");
    assert!(String::from_utf8_lossy(&history).contains(NOTE));

    // The service holds the store: `erase` reaches it through the admin socket.
    let args = [
        "erase",
        "--child",
        "sq-c07",
        "--basis",
        "PIPL Art. 47: the purpose is served",
        "--approved-by",
        "sq-t01",
    ];
    let out = careledger_ok(&db, &args);
    let said = stderr(&out);
    assert!(said.contains("through the running service"), "{said}");
    assert!(said.contains("data key is destroyed"), "{said}");

    // The child reads as erased for everyone, at once; no error.
    for (token, path) in [
        (&inspector, "/api/children/sq-c07/archive"),
        (&inspector, "/api/children/sq-c07/contact-card"),
        (&inspector, "/api/children/sq-c07/progress"),
        (&counselor, "/api/children/sq-c07/history"),
        (&counselor, "/api/children/sq-c07/progress"),
    ] {
        let (status, body) = get(&base, token, path);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body.contains(NAME) && !body.contains(NOTE),
            "{path}: {body}"
        );
    }
    // Scores and reports, now and as of before, are byte-identical.
    for (p, b) in unchanged.iter().zip(&before) {
        let (status, body) = get(&base, &inspector, p);
        assert_eq!(status, 200, "{p}");
        assert!(&body == b, "{p} changed after the erasure");
    }
    let (status, body) = get(&base, &inspector, "/api/verify");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // Nothing new is sealed under the destroyed key: a talk about the child is refused.
    let talk = r#"{"staff":"sq-t03","child":"sq-c07","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"after","mood":"ok"}"#;
    let (status, body) = post(&base, &teacher, "/api/record/talk_held", talk);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("erased"), "{body}");
    // A second erasure through the service is refused as input (exit 1).
    let out = careledger(&db, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already erased"), "{}", stderr(&out));

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    // After the service: the CLI reads the same erased child, and the log verifies.
    careledger_ok(&db, &["verify"]);
    let out = careledger_ok(&db, &["archive", "sq-c07", "--format", "json"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(NAME));
}

#[test]
fn serve_demo_serves_an_encrypted_store() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let base = loop {
        let line = err.next().expect("serve said where it listens").unwrap();
        if let Some(rest) = line.split(" on http://").nth(1) {
            said.push(line.clone());
            break format!("http://{}", rest.split_whitespace().next().unwrap());
        }
        said.push(line);
    };
    std::thread::spawn(move || for _ in err {});
    assert!(said.iter().any(|l| l.contains("encryption on")), "{said:?}");
    // The printed accounts: user, role, staff, password.
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut passwords = std::collections::BTreeMap::new();
    for line in out.lines() {
        let line = line.unwrap();
        if line.starts_with("the store is temporary") {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 4 && f[0] != "user" {
            passwords.insert(f[0].to_owned(), f[3].to_owned());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let history = rt.block_on(async {
        let client = reqwest::Client::new();
        let login = client
            .post(format!("{base}/api/login"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"user":"counselor","password":"{}"}}"#,
                passwords["counselor"]
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status().as_u16(), 200);
        let cookie = login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let r = client
            .get(format!("{base}/api/children/sq-c07/history"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    });
    assert!(
        history.contains(NOTE),
        "the demo's counselor reads the opened notes"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
