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
