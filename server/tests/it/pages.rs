//! The web pages over HTTP: the pinned htmx, login, a teacher's worklist with quick entry
//! (one mistake shown at its field, then fixed, then the item done), a child's page, and the
//! login page for anyone without a session.

use sha2::{Digest, Sha256};

use crate::{PASSWORD, Service};

#[test]
fn the_embedded_htmx_is_the_pinned_file() {
    let hash = hex::encode(Sha256::digest(server::pages::HTMX));
    assert_eq!(hash, server::pages::HTMX_SHA256);
    assert_eq!(
        hash,
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    );
}

/// The class of the worklist row of `child`'s `quota` in a page.
fn row_class(html: &str, child: &str, quota: &str) -> Option<String> {
    let needle = format!("data-child=\"{child}\" data-quota=\"{quota}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind("<tr class=\"")? + "<tr class=\"".len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_logs_in_records_a_family_call_with_a_mistake_fixes_it_and_sees_it_done() {
    let svc = Service::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Without a session, pages send the browser to the login page.
    let r = client.get(svc.url("/worklist")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let page = client.get(svc.url("/login")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"zh-CN\"") && html.contains("name=\"viewport\""));
    assert!(html.contains("<script src=\"/static/htmx.min.js\">"));
    let js = client
        .get(svc.url("/static/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.bytes().await.unwrap().as_ref(), server::pages::HTMX);
    // A wrong password: the login page again, with the error.
    let r = client
        .post(svc.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("user", "teacher"), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("用户名或密码不对"));
    let r = client
        .post(svc.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("user", "teacher"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/worklist");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let html = client
        .get(svc.url("/worklist?on=2025-11-24"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("杨国华 的工作清单"), "{html}");
    let before = row_class(&html, "sq-c05", "family_call").expect("a family call row for sq-c05");
    assert_eq!(before, "due", "{html}");
    // Quick entry of a family call with one mistake: the minutes in words.
    let head = svc.head();
    let mut form = vec![
        ("on", "2025-11-24"),
        ("type", "family_call"),
        ("child", "sq-c05"),
        ("occurred_at", "2025-11-24T19:30"),
        ("parent", "father"),
        ("minutes", "十五分钟"),
        ("reason", "期中考试后和爸爸通话"),
    ];
    let post = |form: Vec<(&'static str, &'static str)>| {
        client
            .post(svc.url("/worklist/record"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .header("hx-request", "true")
            .form(&form)
            .send()
    };
    let html = post(form.clone()).await.unwrap().text().await.unwrap();
    assert!(
        html.contains("id=\"err-minutes\""),
        "the error is at the field: {html}"
    );
    assert!(
        html.contains("通话分钟填写有误（应为："),
        "the error is said in Chinese, naming the field by its label: {html}"
    );
    assert!(
        html.contains("期中考试后和爸爸通话"),
        "what was typed is kept"
    );
    assert_eq!(svc.head(), head, "nothing appended");
    // Fixed: saved, the form cleared, the worklist swapped with the item done.
    form[5] = ("minutes", "15");
    let html = post(form).await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"saved\""), "{html}");
    assert!(html.contains("hx-swap-oob=\"true\""));
    assert_eq!(
        row_class(&html, "sq-c05", "family_call").as_deref(),
        Some("done"),
        "{html}"
    );
    assert_eq!(svc.head(), head + 1);
    // The child's page; an unpaired child's is not found.
    let r = client
        .get(svc.url("/child/sq-c05"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("<h2>档案</h2>"));
    let r = client
        .get(svc.url("/child/sq-c01"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    svc.stop().await;
}

/// The text of the cells of every table in `html`, row by row (askama's escapes undone).
fn tables(html: &str) -> Vec<Vec<Vec<String>>> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    html.split("<table")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</table>").unwrap_or(t.len())];
            t.split("<tr")
                .skip(1)
                .map(|row| {
                    row.split("<t")
                        .skip(1)
                        .filter(|c| c.starts_with('h') || c.starts_with('d'))
                        .map(|c| {
                            let body = &c[c.find('>').map_or(0, |i| i + 1)..];
                            unescape(&body[..body.find("</t").unwrap_or(body.len())])
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn attr(html: &str, element: &str, name: &str) -> String {
    let at = html.find(element).unwrap_or_else(|| panic!("no {element}"));
    let rest = &html[at..];
    let key = format!("{name}=\"");
    let start = rest.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_position_of_the_timeline_is_the_file_as_the_cli_reads_it_as_of_that_moment() {
    let svc = Service::start().await;
    let child = "sq-c06";
    let (status, html) = svc
        .call(
            Some("inspector"),
            "GET",
            &format!("/child/{child}/timeline"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let last: usize = attr(&html, "id=\"asof\"", "max").parse().unwrap();
    assert!(last > 10, "the child's file has many moments: {last}");
    assert_eq!(attr(&html, "id=\"file\"", "data-pos"), last.to_string());
    let mut seen_guardian_phones = std::collections::BTreeSet::new();
    for pos in 0..=last {
        for valid_at in [None, Some("2025-10-01")] {
            let mut path = format!("/child/{child}/timeline?at={pos}");
            if let Some(d) = valid_at {
                path.push_str(&format!("&valid_at={d}"));
            }
            let (status, html) = svc.call(Some("inspector"), "GET", &path, None).await;
            assert_eq!(status, 200, "{path}: {html}");
            let as_of = events::time::parse_instant(&attr(&html, "id=\"file\"", "data-as-of"))
                .expect("the moment's time");
            // The reference: the whole log replayed as of that moment (what `archive
            // CHILD --as-of T` and `history CHILD --as-of T` show, docs/read-models.md).
            let tl = careledger::plan::replay(&svc.store, Some(as_of)).unwrap();
            let world = projections::World::build(&tl);
            let valid = valid_at.and_then(events::time::parse_date);
            let archive = projections::archive::archive(&tl, &world, child, valid).unwrap();
            let envs: Vec<events::Envelope> = svc
                .store
                .scan(Some(as_of))
                .collect::<Result<_, _>>()
                .unwrap();
            let history = projections::history::history(&envs, &tl, &world, child, false).unwrap();
            let shown = tables(&html);
            assert_eq!(shown.len(), 2, "{path}: the archive and the history");
            assert_eq!(shown[0], archive.to_table(), "{path}: the archive");
            assert_eq!(shown[1], history.to_table(), "{path}: the history");
            seen_guardian_phones.insert(archive.file.guardian.phone.clone());
        }
    }
    // The seed school's guardian change of this child (a phone number added on 2025-12-05)
    // is seen on both sides of the slider.
    assert!(seen_guardian_phones.len() >= 2, "{seen_guardian_phones:?}");
    // A position past the last is a field error; a teacher not paired with the child gets
    // what an unknown child gets.
    let (status, body) = svc
        .call(
            Some("inspector"),
            "GET",
            &format!("/child/{child}/timeline?at={}", last + 1),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"at\""), "{body}");
    let (status, body) = svc
        .call(Some("teacher"), "GET", "/child/sq-c01/timeline", None)
        .await;
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));
    // Every position read is in the access log.
    let (_, log) = svc
        .call(
            Some("inspector"),
            "GET",
            &format!("/api/access-log?child={child}&actor=inspector"),
            None,
        )
        .await;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap();
    let timeline_reads = entries.iter().filter(|e| e["what"] == "timeline").count();
    assert_eq!(timeline_reads, 1 + 2 * (last + 1) + 1, "{log}");
    svc.stop().await;
}

/// A multipart/form-data body of the upload form: the type and one CSV file.
fn upload_body(kind: &str, file: &str, csv: &str) -> (String, String) {
    let boundary = "careledger-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n{kind}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_uploads_pairings_as_csv_whole_or_not_at_all_with_each_error_at_its_line() {
    let svc = Service::start().await;
    let cookie = svc.login("admin").await;
    let post = |kind: &'static str, csv: String| {
        let (content_type, body) = upload_body(kind, "pairing_assigned.csv", &csv);
        svc.client
            .post(svc.url("/school/sq/pairings"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let header = "id,occurred_at,actor,staff,child,role,from\n";
    let good = "sq-e9001,2025-11-24T10:00:00+08:00,sq-t01,sq-t04,sq-c01,mentor,2025-11-25\n";
    // Line 3 has an impossible date; line 4 names another actor than the logged-in admin.
    let bad = format!(
        "{header}{good}sq-e9002,2025-11-24T10:00:00+08:00,sq-t01,sq-t04,sq-c02,mentor,2025-13-01\n\
         sq-e9003,2025-11-24T10:00:00+08:00,sq-t02,sq-t04,sq-c03,mentor,2025-11-25\n"
    );
    let head = svc.head();
    let r = post("pairing_assigned", bad).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let errors = tables(&html)[0].clone();
    assert_eq!(errors[0], ["行", "字段", "问题"]);
    assert_eq!(errors.len(), 2, "one problem only: {errors:?}");
    assert_eq!(errors[1][0..2], ["3", "from"], "{errors:?}");
    assert!(
        errors[1][2].contains("pairing_assigned.csv:3"),
        "{errors:?}"
    );
    assert_eq!(svc.head(), head, "nothing of the file appended");
    // With the date fixed, the actor is checked: the service records as the admin.
    let wrong_actor = format!(
        "{header}{good}sq-e9003,2025-11-24T10:00:00+08:00,sq-t02,sq-t04,sq-c03,mentor,2025-11-25\n"
    );
    let r = post("pairing_assigned", wrong_actor).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let errors = tables(&r.text().await.unwrap())[0].clone();
    assert_eq!(errors[1][0..2], ["3", "actor"], "{errors:?}");
    assert_eq!(svc.head(), head, "nothing of the file appended");
    // A type this page does not take.
    let r = post("talk_held", format!("{header}{good}")).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(svc.head(), head);
    // The valid file: appended whole, shown in the pairings of that day.
    let r = post("pairing_assigned", format!("{header}{good}"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("已导入 1 条"), "{html}");
    assert_eq!(svc.head(), head + 1);
    let (status, page) = svc
        .call(
            Some("admin"),
            "GET",
            "/school/sq/pairings?on=2025-11-26",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, api) = svc
        .call(
            Some("admin"),
            "GET",
            "/api/schools/sq/pairings?on=2025-11-26",
            None,
        )
        .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let t04 = api["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["staff"] == "sq-t04")
        .expect("sq-t04 in the pairings");
    assert!(
        t04["children"].to_string().contains("sq-c01"),
        "the new pairing: {t04}"
    );
    let rows = &tables(&page)[0];
    let name = t04["name"].as_str().unwrap();
    assert!(rows.iter().any(|r| r[0] == name), "{rows:?}");
    // The same file again: nothing new.
    let r = post("pairing_assigned", format!("{header}{good}"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(svc.head(), head + 1);
    // The inspector sees the page, without the upload form, and may not upload.
    let (status, page) = svc
        .call(Some("inspector"), "GET", "/school/sq/roster", None)
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"upload\""));
    let (content_type, body) = upload_body(
        "pairing_assigned",
        "pairing_assigned.csv",
        &format!("{header}{good}"),
    );
    let r = svc
        .client
        .post(svc.url("/school/sq/pairings"))
        .bearer_auth(svc.token("inspector"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_verify_and_access_log_pages_show_what_their_json_routes_answer() {
    let svc = Service::start().await;
    let (status, page) = svc
        .call(Some("inspector"), "GET", "/school/sq/backfill?days=3", None)
        .await;
    assert_eq!(status, 200, "{page}");
    let (_, api) = svc
        .call(
            Some("inspector"),
            "GET",
            "/api/schools/sq/backfill?days=3",
            None,
        )
        .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let rows = &tables(&page)[0];
    assert_eq!(rows.len(), 1 + api["rows"].as_array().unwrap().len());
    for (row, json) in rows[1..].iter().zip(api["rows"].as_array().unwrap()) {
        assert_eq!(row[0], json["actor"].as_str().unwrap());
        assert_eq!(row[2], json["records"].to_string());
    }
    let (status, page) = svc.call(Some("inspector"), "GET", "/verify", None).await;
    assert_eq!(status, 200);
    let (_, api) = svc
        .call(Some("inspector"), "GET", "/api/verify", None)
        .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let rows = &tables(&page)[0];
    assert_eq!(rows[1], ["状态", "完整"]);
    assert_eq!(rows[2][1], api["events"].to_string());
    assert_eq!(rows[3][1], api["head"].as_str().unwrap());
    // Two reads of a child's file by two accounts; the page filters by child and account.
    svc.call(Some("teacher"), "GET", "/child/sq-c05", None)
        .await;
    svc.call(Some("admin"), "GET", "/api/children/sq-c05/archive", None)
        .await;
    let (status, page) = svc
        .call(
            Some("inspector"),
            "GET",
            "/access-log?child=sq-c05&actor=teacher",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let rows = &tables(&page)[0];
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[1][2..6],
        ["teacher", "teacher", "child_page", "sq-c05"]
    );
    let (_, api) = svc
        .call(
            Some("inspector"),
            "GET",
            "/api/access-log?child=sq-c05",
            None,
        )
        .await;
    let api: Vec<serde_json::Value> = serde_json::from_str(&api).unwrap();
    let (_, page) = svc
        .call(Some("inspector"), "GET", "/access-log?child=sq-c05", None)
        .await;
    assert_eq!(tables(&page)[0].len(), 1 + api.len());
    svc.stop().await;
}
