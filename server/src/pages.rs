//! The web pages (zh-CN, usable on a phone): login, a teacher's worklist with quick entry, a
//! child's page; the inspector's pages (`inspect`: a child's timeline with an as-of slider,
//! back-fill, verify status, the access log); the school admin's roster and pairing pages
//! with CSV upload (`roster`). Server-rendered askama templates (`server/templates/`); htmx is vendored as one
//! embedded file pinned by its SHA-256 (`HTMX_SHA256`), served at `/static/htmx.min.js`.
//!
//! Pages go through the same paths as the API: `auth` for the session, `policy::authorize`
//! for every decision, `api::record_as` for every record. This module owns the markup and the
//! form ↔ wire-object mapping of quick entry; it must never decide an authorisation itself,
//! compute a view, or render a counseling note to anyone but a counselor.

pub mod inspect;
pub mod roster;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::api::record_as;
use crate::auth::{self, Caller, Login};
use crate::error::ApiError;
use crate::policy::{Action, Decision, Place, Resource, Role, authorize};
use crate::writer::Outcome;
use crate::{AppState, blocking};

pub use inspect::{access_log_page, backfill_page, timeline_page, verify_page};
pub use roster::{UPLOAD_BYTES, pairings_page, pairings_upload, roster_page, roster_upload};

/// Whether a route takes a CSV upload (its body limit is `UPLOAD_BYTES`).
pub fn is_upload(method: &str, path: &str) -> bool {
    method == "POST"
        && matches!(
            path,
            "/school/{school}/roster" | "/school/{school}/pairings"
        )
}

/// htmx 2.0.11 (`npm pack htmx.org@2.0.11`, `dist/htmx.min.js`), embedded.
pub const HTMX: &[u8] = include_bytes!("../static/htmx-2.0.11.min.js");
/// The SHA-256 the embedded htmx must have (a test checks it).
pub const HTMX_SHA256: &str = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717";

fn render<T: Template>(t: &T) -> Result<Response, ApiError> {
    t.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| ApiError::Fault(format!("rendering a page: {e}")))
}

/// A page error: 401 sends the browser to the login page; others are shown as JSON errors.
fn page_error(e: ApiError) -> Response {
    match e {
        ApiError::Unauthenticated => Redirect::to("/login").into_response(),
        e => e.into_response(),
    }
}

/// The caller of a page: as [`Caller`] for the API, except that a request without a session
/// (or a token) gets the login page, not a 401.
pub struct Visitor(pub Caller);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Visitor, Response> {
        Caller::from_request_parts(parts, state)
            .await
            .map(Visitor)
            .map_err(page_error)
    }
}

/// `GET /static/htmx.min.js`.
pub async fn htmx() -> Response {
    let mut r = HTMX.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    user: String,
    error: String,
}

/// `GET /login`.
pub async fn login_page() -> Response {
    render(&LoginPage {
        title: "登录",
        user: String::new(),
        error: String::new(),
    })
    .unwrap_or_else(page_error)
}

/// `POST /login` (a form): on success, the session cookie and a redirect to the worklist.
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(login): Form<Login>,
) -> Response {
    let user = login.user.clone();
    match auth::check_login(&state, &headers, login).await {
        Ok((principal, id)) => {
            let mut r = Redirect::to(&start_page(&principal)).into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                auth::session_set_cookie(&id, state.0.limits.session_ttl),
            );
            r
        }
        Err(ApiError::BadLogin | ApiError::Invalid(_)) => {
            let page = LoginPage {
                title: "登录",
                user,
                error: "用户名或密码不对".to_owned(),
            };
            let mut r = render(&page).unwrap_or_else(page_error);
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(e) => page_error(e),
    }
}

/// `POST /logout` (a form): ends the session, back to the login page.
pub async fn logout_form(State(state): State<AppState>, Visitor(caller): Visitor) -> Response {
    match auth::end_session(&state, &caller).await {
        Ok(cookie) => {
            let mut r = Redirect::to("/login").into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => page_error(e),
    }
}

// ---- worklist and quick entry -------------------------------------------------------------

/// An input of the quick-entry form.
pub enum Input {
    /// One line.
    Text,
    /// Several lines.
    Area,
    /// A number.
    Number,
    /// One of (value, label).
    Select(&'static [(&'static str, &'static str)]),
    /// Any of (value, label).
    Multi(&'static [(&'static str, &'static str)]),
}

/// One field of the form, with what was entered and its error.
pub struct Field {
    name: &'static str,
    label: &'static str,
    input: Input,
    value: String,
    checked: Vec<String>,
    error: String,
}

impl Field {
    fn is_checked(&self, v: &str) -> bool {
        self.checked.iter().any(|c| c == v)
    }
}

/// The care types of quick entry (wire type, label).
const TYPES: &[(&str, &str)] = &[
    ("talk_held", "谈心谈话"),
    ("parent_call", "联系家长"),
    ("family_call", "亲情通话"),
    ("home_visit", "家访"),
    ("warmth_visit", "送温暖"),
];
const MOODS: &[(&str, &str)] = &[
    ("good", "好"),
    ("ok", "一般"),
    ("low", "低落"),
    ("concerning", "令人担忧"),
];
const PARENTS: &[(&str, &str)] = &[("father", "父亲"), ("mother", "母亲")];
const MET: &[(&str, &str)] = &[
    ("guardian", "监护人"),
    ("parent", "父母"),
    ("child", "学生本人"),
];

/// The fields of each type beyond staff, child and time: (name, label, input).
fn specs(kind: &str) -> Vec<(&'static str, &'static str, Input)> {
    match kind {
        "talk_held" => vec![
            ("topic", "话题", Input::Text),
            ("summary", "内容", Input::Area),
            ("mood", "情绪", Input::Select(MOODS)),
            ("follow_up", "后续（可不填）", Input::Text),
        ],
        "parent_call" => vec![
            ("parent", "家长", Input::Select(PARENTS)),
            ("minutes", "通话分钟", Input::Number),
            ("summary", "内容（可不填）", Input::Area),
        ],
        "family_call" => vec![
            ("parent", "家长", Input::Select(PARENTS)),
            ("minutes", "通话分钟", Input::Number),
            ("reason", "缘由（可不填）", Input::Text),
        ],
        "home_visit" => vec![
            ("met", "见到", Input::Multi(MET)),
            ("findings", "情况", Input::Area),
            ("next_steps", "下一步（可不填）", Input::Text),
        ],
        "warmth_visit" => vec![
            ("occasion", "缘由", Input::Text),
            ("items", "物品", Input::Text),
            ("value_yuan", "价值（元）", Input::Number),
        ],
        _ => Vec::new(),
    }
}

fn fields_of(
    kind: &str,
    form: &[(String, String)],
    errors: &BTreeMap<String, String>,
) -> Vec<Field> {
    specs(kind)
        .into_iter()
        .map(|(name, label, input)| Field {
            name,
            label,
            input,
            value: form
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            checked: form
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect(),
            error: errors.get(name).cloned().unwrap_or_default(),
        })
        .collect()
}

/// One row of the worklist.
pub struct Item {
    child: String,
    child_name: String,
    quota: String,
    label: String,
    window: String,
    count: u64,
    min: u32,
    status: &'static str,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage {
    title: String,
    worklist_on: String,
    due_count: usize,
    done_count: usize,
    items: Vec<Item>,
    types: &'static [(&'static str, &'static str)],
    children: Vec<(String, String)>,
    kind: String,
    child: String,
    occurred_at: String,
    fields: Vec<Field>,
    child_error: String,
    time_error: String,
    general_error: String,
    saved: String,
}

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryFragment {
    worklist_on: String,
    types: &'static [(&'static str, &'static str)],
    children: Vec<(String, String)>,
    kind: String,
    child: String,
    occurred_at: String,
    fields: Vec<Field>,
    child_error: String,
    time_error: String,
    general_error: String,
    saved: String,
}

#[derive(Template)]
#[template(path = "worklist_items.html")]
struct ItemsFragment {
    worklist_on: String,
    due_count: usize,
    done_count: usize,
    items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "fields.html")]
struct FieldsFragment {
    fields: Vec<Field>,
}

/// The worklist of the caller's staff member on `on`, as the rows the page shows and the
/// children they may record for.
struct Work {
    name: String,
    items: Vec<Item>,
    children: Vec<(String, String)>,
}

async fn work(state: &AppState, caller: &Caller, on: NaiveDate) -> Result<Work, ApiError> {
    let p = &caller.principal;
    let Some(staff) = p.staff.clone() else {
        return Err(ApiError::Forbidden(
            "the worklist is a staff member's".to_owned(),
        ));
    };
    let facts = state.facts();
    let place = facts
        .registry
        .staff_school(&staff)
        .map(|s| Place {
            school: Some(s.to_owned()),
            county: facts.registry.school_county(s).map(str::to_owned),
        })
        .unwrap_or_default();
    match authorize(
        p,
        Action::ReadWorklist,
        &Resource::Staff { place, own: true },
    ) {
        Decision::Allow => {}
        Decision::Forbidden => return Err(ApiError::Forbidden("no worklist".to_owned())),
        Decision::NotFound => return Err(ApiError::NotFound),
    }
    crate::access::record(state, caller, "worklist", None).await?;
    let s = state.clone();
    let work = blocking(move || {
        let tl =
            s.0.plan
                .staff_timeline(&s.0.store, &staff, None)
                .map_err(|e| ApiError::Fault(e.to_string()))?;
        let world = projections::World::build(&tl);
        let view = projections::worklist::worklist(&tl, &world, &staff, on)
            .map_err(|e| ApiError::BadParam(e.to_string()))?;
        let mut items = Vec::new();
        let mut children: Vec<(String, String)> = Vec::new();
        for (i, overdue) in view
            .current
            .iter()
            .map(|i| (i, false))
            .chain(view.missed.iter().map(|i| (i, true)))
        {
            let (status, class) = match (i.met, overdue) {
                (true, _) => ("已完成", "done"),
                (false, false) => ("待办", "due"),
                (false, true) => ("逾期", "overdue"),
            };
            items.push(Item {
                child: i.child.clone(),
                child_name: i.child_name.clone(),
                quota: i.quota.clone(),
                label: quota_label(&i.quota),
                window: i.window.clone(),
                count: i.count,
                min: i.min,
                status,
                class,
            });
        }
        // Quick entry offers the children paired with the teacher on that day.
        for pairing in world.pairings_of_staff(&staff) {
            if pairing.active_on(on) && !children.iter().any(|(c, _)| c == &pairing.child) {
                let name = world
                    .child(&pairing.child)
                    .map(|c| c.file_latest().name.clone())
                    .unwrap_or_else(|| pairing.child.clone());
                children.push((pairing.child.clone(), name));
            }
        }
        Ok(Work {
            name: view.name,
            items,
            children,
        })
    })
    .await;
    state.keep_up_after_read();
    work
}

/// The Chinese name of a quota of the default policy, else its own name.
fn quota_label(quota: &str) -> String {
    match quota {
        "talk" => "谈心谈话",
        "family_call" => "亲情通话",
        "home_visit" => "家访",
        "warmth" => "送温暖",
        other => other,
    }
    .to_owned()
}

fn counts(items: &[Item]) -> (usize, usize) {
    let done = items.iter().filter(|i| i.class == "done").count();
    (items.len() - done, done)
}

fn day(on: Option<&str>) -> Result<NaiveDate, ApiError> {
    match on {
        None => Ok(events::time::local_date(chrono::Utc::now())),
        Some(s) => events::time::parse_date(s).ok_or_else(|| {
            crate::error::field_error("on", "a date (2025-11-20)", Some(format!("{s:?}")))
        }),
    }
}

/// `GET /worklist?on=`: the teacher's worklist and the quick-entry form.
pub async fn worklist(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let inner = async {
        let on = day(q.get("on").map(String::as_str))?;
        let w = work(&state, &caller, on).await?;
        let (due_count, done_count) = counts(&w.items);
        let child = w.children.first().map(|c| c.0.clone()).unwrap_or_default();
        render(&WorklistPage {
            title: format!("{} 的工作清单", w.name),
            worklist_on: on.to_string(),
            due_count,
            done_count,
            items: w.items,
            types: TYPES,
            children: w.children,
            kind: "talk_held".to_owned(),
            child,
            occurred_at: String::new(),
            fields: fields_of("talk_held", &[], &BTreeMap::new()),
            child_error: String::new(),
            time_error: String::new(),
            general_error: String::new(),
            saved: String::new(),
        })
    };
    inner.await.unwrap_or_else(page_error)
}

/// `GET /worklist/fields?type=`: the fields of one care type (htmx swaps them in).
pub async fn entry_fields(
    Visitor(caller): Visitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let kind = q.get("type").cloned().unwrap_or_default();
    let Some(event_kind) = events::EventKind::parse(&kind) else {
        return page_error(crate::error::field_error(
            "type",
            "a care type",
            Some(format!("{kind:?}")),
        ));
    };
    if let Err(e) = decide_unplaced(&caller, crate::policy::action_of_kind(event_kind)) {
        return page_error(e);
    }
    render(&FieldsFragment {
        fields: fields_of(&kind, &[], &BTreeMap::new()),
    })
    .unwrap_or_else(page_error)
}

fn decide_unplaced(caller: &Caller, action: Action) -> Result<(), ApiError> {
    match authorize(&caller.principal, action, &Resource::Unplaced) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(ApiError::Forbidden("this account may not do that".into())),
        Decision::NotFound => Err(ApiError::NotFound),
    }
}

/// The wire object of a quick-entry form: the type's fields, numbers as numbers, `met` as a
/// list, the time in +08:00.
fn wire_object(kind: &str, staff: &str, form: &[(String, String)]) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("staff".into(), Value::String(staff.to_owned()));
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(c) = get("child") {
        obj.insert("child".into(), Value::String(c));
    }
    if let Some(t) = get("occurred_at") {
        // `datetime-local` gives 2025-11-20T16:00: the school's own time.
        let t = if t.len() == 16 {
            format!("{t}:00+08:00")
        } else {
            t
        };
        obj.insert("occurred_at".into(), Value::String(t));
    }
    for (name, _, input) in specs(kind) {
        match input {
            Input::Multi(_) => {
                let all: Vec<Value> = form
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| Value::String(v.clone()))
                    .collect();
                obj.insert(name.into(), Value::Array(all));
            }
            Input::Number => {
                if let Some(v) = get(name) {
                    let n = v
                        .parse::<u64>()
                        .map(Value::from)
                        .or_else(|_| v.parse::<f64>().map(Value::from))
                        .unwrap_or(Value::String(v));
                    obj.insert(name.into(), n);
                }
            }
            _ => {
                if let Some(v) = get(name) {
                    obj.insert(name.into(), Value::String(v));
                }
            }
        }
    }
    obj
}

/// The message a teacher reads under a field of the quick-entry form: in Chinese, naming the
/// field by its label — "please choose …" when nothing was given, otherwise what was wrong
/// followed by what the record expects (the CLI's wording of it, the same as the API's
/// `expected`). The API's JSON keeps the CLI's message unchanged.
fn at_field(kind: &str, field: &str, e: &crate::error::FieldError) -> String {
    let spec = specs(kind).into_iter().find(|(n, ..)| *n == field);
    let label = match (field, &spec) {
        ("child", _) => "学生",
        ("occurred_at", _) => "时间",
        (_, Some((_, label, _))) => label.split('（').next().unwrap_or(label),
        (_, None) => field,
    };
    let choose =
        matches!(spec, Some((_, _, Input::Select(_) | Input::Multi(_)))) || field == "child";
    // The validator says "nothing" for an absent value (ingest's convention).
    let missing = e
        .found
        .as_deref()
        .is_none_or(|f| f.trim().is_empty() || f == "nothing");
    match (missing, choose) {
        (true, true) => format!("请选择{label}"),
        (true, false) => format!("请填写{label}"),
        (false, _) => format!("{label}填写有误（应为：{}）", e.expected),
    }
}

/// `POST /worklist/record` (htmx): records through the API's path; answers the form again —
/// with each error at its field, or cleared with a note — and, after a save, the worklist
/// swapped out of band.
pub async fn entry_record(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let kind = form
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let on = match day(form
        .iter()
        .find(|(k, _)| k == "on")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty()))
    {
        Ok(d) => d,
        Err(e) => return page_error(e),
    };
    let staff = caller.principal.staff.clone().unwrap_or_default();
    let obj = wire_object(&kind, &staff, &form);
    let body = Value::Object(obj).to_string();
    let result = record_as(&state, &caller, kind.clone(), body).await;
    let mut errors = BTreeMap::new();
    let mut general_error = String::new();
    let saved = match result {
        Ok(Outcome::Recorded { .. }) => "已保存".to_owned(),
        Ok(Outcome::AlreadyPresent) => "这条记录已经有了".to_owned(),
        Err(ApiError::Invalid(list)) => {
            for e in list {
                match e.field {
                    Some(ref f) => {
                        let name = f.split('.').next().unwrap_or(f).to_owned();
                        let message = at_field(&kind, &name, &e);
                        errors.entry(name).or_insert(message);
                    }
                    None => general_error = e.message,
                }
            }
            String::new()
        }
        Err(ApiError::Unauthenticated) => return page_error(ApiError::Unauthenticated),
        Err(e) => {
            general_error = e.to_string();
            String::new()
        }
    };
    // An error of a field the form does not show is shown above the form.
    let shown: Vec<&str> = specs(&kind).iter().map(|(n, ..)| *n).collect();
    for (field, message) in &errors {
        if !shown.contains(&field.as_str()) && field != "child" && field != "occurred_at" {
            if !general_error.is_empty() {
                general_error.push('；');
            }
            general_error.push_str(message);
        }
    }
    let ok = !saved.is_empty();
    let w = match work(&state, &caller, on).await {
        Ok(w) => w,
        Err(e) => return page_error(e),
    };
    let child = form
        .iter()
        .find(|(k, _)| k == "child")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // After a save the form is cleared (type and child kept for the next entry).
    let kept: Vec<(String, String)> = if ok { Vec::new() } else { form.clone() };
    let occurred_at = if ok {
        String::new()
    } else {
        form.iter()
            .find(|(k, _)| k == "occurred_at")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let entry = EntryFragment {
        worklist_on: on.to_string(),
        types: TYPES,
        children: w.children.clone(),
        kind: kind.clone(),
        child,
        occurred_at,
        fields: fields_of(&kind, &kept, &errors),
        child_error: errors.get("child").cloned().unwrap_or_default(),
        time_error: errors.get("occurred_at").cloned().unwrap_or_default(),
        general_error,
        saved,
    };
    let mut html = match entry.render() {
        Ok(h) => h,
        Err(e) => return page_error(ApiError::Fault(e.to_string())),
    };
    if ok {
        // The worklist follows the save: swapped out of band by htmx.
        let (due_count, done_count) = counts(&w.items);
        let items = ItemsFragment {
            worklist_on: on.to_string(),
            due_count,
            done_count,
            items: w.items,
        };
        match items.render() {
            Ok(h) => {
                html.push_str(&h.replacen(
                    "<div id=\"worklist\"",
                    "<div id=\"worklist\" hx-swap-oob=\"true\"",
                    1,
                ));
            }
            Err(e) => return page_error(ApiError::Fault(e.to_string())),
        }
    }
    Html(html).into_response()
}

// ---- a child's page -----------------------------------------------------------------------

/// A titled table (first row = headers).
pub struct Section {
    title: &'static str,
    rows: Vec<Vec<String>>,
}

#[derive(Template)]
#[template(path = "child.html")]
struct ChildPage {
    title: String,
    sections: Vec<Section>,
}

/// `GET /child/{child}`: the child's archive, progress and history.
pub async fn child_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(child): Path<String>,
) -> Response {
    let inner = async {
        let notes = crate::api::child_read(&state, &caller, &child, "child_page").await?;
        let s = state.clone();
        blocking(move || {
            let envs =
                s.0.plan
                    .child_envelopes(&s.0.store, &child, None, crate::Reading::with_notes(notes))
                    .map_err(|e| ApiError::Fault(e.to_string()))?;
            let tl = projections::Timeline::build(&envs, None)
                .map_err(|e| ApiError::BadParam(e.to_string()))?;
            let world = projections::World::build(&tl);
            let bad = |e: projections::ProjectionError| ApiError::BadParam(e.to_string());
            let archive = projections::archive::archive(&tl, &world, &child, None).map_err(bad)?;
            let progress =
                projections::progress::progress(&tl, &world, &child, notes).map_err(bad)?;
            let history =
                projections::history::history(&envs, &tl, &world, &child, notes).map_err(bad)?;
            let name = world
                .child(&child)
                .map(|c| c.file_latest().name.clone())
                .unwrap_or_else(|| child.clone());
            render(&ChildPage {
                title: format!("{name} 的档案"),
                sections: vec![
                    Section {
                        title: "档案",
                        rows: archive.to_table(),
                    },
                    Section {
                        title: "成长记录",
                        rows: progress.to_table(),
                    },
                    Section {
                        title: "历史",
                        rows: history.to_table(),
                    },
                ],
            })
        })
        .await
    };
    inner.await.unwrap_or_else(page_error)
}

/// Where a role starts: the worklist for teachers and counselors, the roster for a school
/// admin, the access log for an inspector, who one is for the bureau (its statistics are the
/// API's).
fn start_page(p: &crate::policy::Principal) -> String {
    match (p.role, &p.scope) {
        (Role::Teacher | Role::Counselor, _) => "/worklist".to_owned(),
        (Role::SchoolAdmin, crate::policy::Scope::School(s)) => format!("/school/{s}/roster"),
        (Role::Inspector, _) => "/access-log".to_owned(),
        _ => "/api/me".to_owned(),
    }
}

/// The home page: the caller's start page, else the login page.
pub async fn home(caller: Result<Caller, ApiError>) -> Response {
    match caller {
        Ok(c) => Redirect::to(&start_page(&c.principal)).into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}
