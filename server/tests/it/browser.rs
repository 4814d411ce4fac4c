//! The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver by fantoccini): a teacher logs in, sees the worklist, records a talk with
//! one mistake (the error shows at its field), fixes it and sees the item done; after a
//! guardian change, an inspector moves the timeline's as-of slider back before it and sees
//! the old guardian. A screenshot of each page is saved under the cargo target directory
//! (`browser-screenshots/`, the path is printed); `docs/screenshots/` holds a copy of each.
//!
//! Missing chromium or chromedriver fails the test with what to install: it is never skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{PASSWORD, Service};

/// How long any one thing may take to appear in the page.
const WAIT: Duration = Duration::from_secs(15);

/// A program on the PATH, or a failure naming the packages to install.
fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the browser test needs `{name}` on the PATH: apt-get install -y chromium \
                 chromium-driver fonts-noto-cjk (.ci/run installs them)"
            )
        })
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let child = Command::new(program("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver = Driver { child, port };
        let until = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "chromedriver did not listen on port {port} within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: `<target dir>/browser-screenshots/`.
fn screenshot_dir() -> PathBuf {
    // The test binary is <target>/debug/deps/it-…
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("writing a screenshot");
    println!("screenshot: {}", path.display());
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c.current_url().await.map(|u| u.to_string());
            let page = c.source().await.unwrap_or_default();
            panic!("{css} did not appear ({e}) at {url:?}:\n{page}")
        }
    }
}

async fn log_in(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    shot(c, "login").await;
    c.find(Locator::Id("user"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The start page has a header once logged in.
    wait_for(c, "header h1").await;
}

async fn log_out(c: &Client, base: &str) {
    // The logout form posts from the page (same origin), as a person would.
    c.goto(&format!("{base}/login")).await.unwrap();
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/logout'; \
         document.body.appendChild(f); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    wait_for(c, "#user").await;
}

/// The class of the worklist row of `child`'s `quota`.
async fn row_class(c: &Client, child: &str, quota: &str) -> String {
    let css = format!("#worklist tr[data-child='{child}'][data-quota='{quota}']");
    c.find(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("no row {css}: {e}"))
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_records_a_talk_and_an_inspector_slides_back_before_a_guardian_change() {
    let chromium = program("chromium");
    let driver = Driver::start();
    let svc = Service::start().await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=zh-CN",
                // A phone's screen.
                "--window-size=412,1100",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with chromedriver");
    let result = scenario(&c, &svc).await;
    let _ = c.close().await;
    svc.stop().await;
    drop(driver);
    result.unwrap();
}

/// The scenario; an error is returned so that the browser is closed before the test fails.
async fn scenario(c: &Client, svc: &Service) -> Result<(), String> {
    let base = svc.base.clone();
    // The teacher logs in and sees the worklist of a school day on which a talk is due
    // (the seed school's teachers kept up in most weeks: the first Monday of the term with
    // one still to do).
    log_in(c, &base, "teacher").await;
    let mut found = None;
    let mut monday = chrono::NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
    while monday < chrono::NaiveDate::from_ymd_opt(2026, 1, 16).unwrap() {
        c.goto(&format!("{base}/worklist?on={monday}"))
            .await
            .unwrap();
        wait_for(c, "#worklist").await;
        if let Ok(row) = c
            .find(Locator::Css("#worklist tr.due[data-quota='talk']"))
            .await
        {
            found = Some((
                monday,
                row.attr("data-child").await.unwrap().unwrap_or_default(),
            ));
            break;
        }
        monday += chrono::Duration::days(7);
    }
    let (day, child) = found.ok_or("no week of the term with a talk due")?;
    assert!(!child.is_empty(), "a talk is due for a child");
    shot(c, "worklist").await;

    // A talk with one mistake: no mood chosen.
    let head = svc.head();
    c.find(Locator::Id("type"))
        .await
        .unwrap()
        .select_by_value("talk_held")
        .await
        .unwrap();
    c.find(Locator::Id("child"))
        .await
        .unwrap()
        .select_by_value(&child)
        .await
        .unwrap();
    // A date-time picker takes its value in the ISO form (typing into it depends on the
    // locale's layout of the widget).
    c.execute(
        "document.getElementById('occurred_at').value = arguments[0];",
        vec![json!(format!("{day}T16:00"))],
    )
    .await
    .unwrap();
    c.find(Locator::Id("f-topic"))
        .await
        .unwrap()
        .send_keys("学习")
        .await
        .unwrap();
    c.find(Locator::Id("f-summary"))
        .await
        .unwrap()
        .send_keys("期中考试后谈学习计划")
        .await
        .unwrap();
    c.find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The error is at its field: right after the mood's select.
    let err = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//select[@id='f-mood']/following-sibling::p[@id='err-mood']",
        ))
        .await
        .map_err(|e| format!("the mood's error did not show at the field: {e}"))?;
    let text = err.text().await.unwrap();
    assert_eq!(text, "请选择情绪", "the error names the field in Chinese");
    assert_eq!(svc.head(), head, "nothing appended on the mistake");
    let kept = c
        .find(Locator::Id("f-summary"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("期中考试后谈学习计划"),
        "what was typed is kept"
    );
    shot(c, "worklist-error").await;

    // Fixed: saved, and the worklist (swapped by htmx) shows the talk done.
    c.find(Locator::Id("f-mood"))
        .await
        .unwrap()
        .select_by_value("ok")
        .await
        .unwrap();
    c.find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#saved").await;
    wait_for(
        c,
        &format!("#worklist tr.done[data-child='{child}'][data-quota='talk']"),
    )
    .await;
    assert_eq!(row_class(c, &child, "talk").await, "done");
    assert_eq!(svc.head(), head + 1, "one talk appended");
    assert!(c.find(Locator::Id("err-mood")).await.is_err(), "error gone");
    shot(c, "worklist-done").await;
    c.goto(&format!("{base}/child/{child}")).await.unwrap();
    wait_for(c, "table").await;
    shot(c, "child").await;
    log_out(c, &base).await;

    // The school admin records a new guardian for the child.
    let old_guardian = guardian_name(svc, &child, None).await;
    let change = json!({
        "child": child,
        "changes": {"guardian": {
            "name": "冉秀英", "relation": "relative", "age": 45, "health": "良好",
            "education": "初中", "occupation": "务农",
            "address": "贵州省铜仁市沿河土家族自治县思渠镇", "phone": "13900000001",
            "capability": "good"
        }}
    });
    let (status, body) = svc
        .call(
            Some("admin"),
            "POST",
            "/api/record/child_updated",
            Some(&change.to_string()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(old_guardian, "冉秀英");

    // The inspector's timeline: the latest moment shows the new guardian …
    log_in(c, &base, "inspector").await;
    c.goto(&format!("{base}/child/{child}/timeline"))
        .await
        .unwrap();
    let slider = wait_for(c, "#asof").await;
    let last: usize = slider
        .attr("max")
        .await
        .unwrap()
        .and_then(|m| m.parse().ok())
        .ok_or("the slider has a max")?;
    let file = wait_for(c, "#file").await;
    assert_eq!(file.attr("data-pos").await.unwrap(), Some(last.to_string()));
    let text = file.text().await.unwrap();
    assert!(text.contains("冉秀英"), "the new guardian: {text}");
    shot(c, "timeline-latest").await;
    // … and one step back with the keyboard, before the change, the old one.
    slider.send_keys(&Key::Left).await.unwrap();
    let before = last - 1;
    let file = wait_for(c, &format!("#file[data-pos='{before}']")).await;
    let text = file.text().await.unwrap();
    assert!(
        text.contains(&old_guardian) && !text.contains("冉秀英"),
        "before the change, the old guardian {old_guardian}: {text}"
    );
    // That moment is what the CLI's `archive --as-of` shows (the API's JSON is its output).
    let as_of = file
        .attr("data-as-of")
        .await
        .unwrap()
        .ok_or("the moment's time")?;
    assert_eq!(guardian_name(svc, &child, Some(&as_of)).await, old_guardian);
    wait_for(c, "#moment-label").await;
    shot(c, "timeline-before").await;

    // The inspector's other pages.
    for (path, name) in [
        ("/school/sq/backfill?days=3".to_owned(), "backfill"),
        ("/verify".to_owned(), "verify"),
        (format!("/access-log?child={child}"), "access-log"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(c, "table tbody").await;
        shot(c, name).await;
    }
    let text = c
        .find(Locator::Css("table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("timeline"),
        "the timeline reads are logged: {text}"
    );
    log_out(c, &base).await;

    // The school admin's roster and pairing pages.
    log_in(c, &base, "admin").await;
    wait_for(c, "#upload").await;
    shot(c, "roster").await;
    c.goto(&format!("{base}/school/sq/pairings?on={day}"))
        .await
        .unwrap();
    wait_for(c, "#upload").await;
    shot(c, "pairings").await;
    // An upload with a mistake (an impossible date on line 2): the problem with its line and
    // field, and nothing appended.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pairing_assigned.csv");
    std::fs::write(
        &csv,
        "id,occurred_at,actor,staff,child,role,from\n\
         ,2025-11-24T10:00:00+08:00,sq-t01,sq-t04,sq-c01,mentor,2025-13-01\n",
    )
    .unwrap();
    let head = svc.head();
    c.find(Locator::Id("type"))
        .await
        .unwrap()
        .select_by_value("pairing_assigned")
        .await
        .unwrap();
    c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(&csv.display().to_string())
        .await
        .unwrap();
    c.find(Locator::Id("import"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#upload-errors").await;
    let row = wait_for(c, "#errors tbody tr").await.text().await.unwrap();
    assert!(row.starts_with("2 from"), "line and field: {row}");
    assert_eq!(svc.head(), head, "nothing appended");
    shot(c, "pairings-upload-error").await;
    Ok(())
}

/// The guardian's name in the archive the API answers (the CLI's JSON), as of `as_of`.
async fn guardian_name(svc: &Service, child: &str, as_of: Option<&str>) -> String {
    let mut path = format!("/api/children/{child}/archive");
    if let Some(t) = as_of {
        path.push_str(&format!("?as_of={}", t.replace('+', "%2B")));
    }
    let (status, body) = svc.call(Some("inspector"), "GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.pointer("/file/guardian/name")
        .and_then(|n| n.as_str())
        .unwrap_or_else(|| panic!("no guardian name in {body}"))
        .to_owned()
}
