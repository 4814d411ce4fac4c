//! The JSON API, mirroring the CLI: record an event (the wire format of `careledger record`,
//! its field errors as JSON), the child views, the school views, the worklist, scores, the
//! term report, verify, the access log, and account administration.
//!
//! Every handler authenticates (`Caller`), gathers the facts of its resource, asks
//! `policy::authorize` once per action, and only then reads or queues a write; the view's
//! JSON is the CLI's `--format json` output byte for byte (`serde_json::to_string_pretty` and
//! a newline). The route table `ROUTES` is the one list the router is built from, so a test
//! can see every route. This module must never compute a view (that is `projections`) nor
//! decide an authorisation itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, NaiveDate, Utc};
use events::{Event, EventKind, Registry};
use projections::{Timeline, World};
use serde::{Deserialize, Serialize};
use tower_http::limit::RequestBodyLimitLayer;

use crate::accounts::{Book, NewAccount};
use crate::auth::{self, Caller, Me};
use crate::error::{ApiError, field_error};
use crate::policy::{
    Action, Decision, Place, Principal, Resource, Scope, TokenScope, action_of, authorize,
};
use crate::writer::{Outcome, RecordRequest, WriteError};
use crate::{AppState, ReadFailure, Reading, access, blocking, pages};

/// Every route of the service (the JSON API, then the pages): method and path. The router is
/// built from this table only.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/login"),
    ("POST", "/api/logout"),
    ("GET", "/api/me"),
    ("POST", "/api/record/{kind}"),
    ("GET", "/api/children/{child}/archive"),
    ("GET", "/api/children/{child}/contact-card"),
    ("GET", "/api/children/{child}/history"),
    ("GET", "/api/children/{child}/progress"),
    ("GET", "/api/schools/{school}/archives"),
    ("GET", "/api/schools/{school}/pairings"),
    ("GET", "/api/schools/{school}/backfill"),
    ("GET", "/api/schools/{school}/scores"),
    ("GET", "/api/staff/{staff}/worklist"),
    ("GET", "/api/report/term"),
    ("GET", "/api/verify"),
    ("GET", "/api/access-log"),
    ("GET", "/api/admin/users"),
    ("POST", "/api/admin/users"),
    ("POST", "/api/admin/users/{user}/disable"),
    ("POST", "/api/admin/users/{user}/password"),
    ("POST", "/api/admin/tokens"),
    ("POST", "/api/admin/tokens/{id}/revoke"),
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/static/htmx.min.js"),
    ("GET", "/worklist"),
    ("GET", "/worklist/fields"),
    ("POST", "/worklist/record"),
    ("GET", "/child/{child}"),
    ("GET", "/child/{child}/timeline"),
    ("GET", "/school/{school}/backfill"),
    ("GET", "/verify"),
    ("GET", "/access-log"),
    ("GET", "/school/{school}/roster"),
    ("POST", "/school/{school}/roster"),
    ("GET", "/school/{school}/pairings"),
    ("POST", "/school/{school}/pairings"),
];

fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("POST", "/api/login") => post(auth::login),
        ("POST", "/api/logout") => post(logout),
        ("GET", "/api/me") => get(me),
        ("POST", "/api/record/{kind}") => post(record),
        ("GET", "/api/children/{child}/archive") => get(archive),
        ("GET", "/api/children/{child}/contact-card") => get(contact_card),
        ("GET", "/api/children/{child}/history") => get(history),
        ("GET", "/api/children/{child}/progress") => get(progress),
        ("GET", "/api/schools/{school}/archives") => get(archives),
        ("GET", "/api/schools/{school}/pairings") => get(pairings),
        ("GET", "/api/schools/{school}/backfill") => get(backfill),
        ("GET", "/api/schools/{school}/scores") => get(scores),
        ("GET", "/api/staff/{staff}/worklist") => get(worklist),
        ("GET", "/api/report/term") => get(report_term),
        ("GET", "/api/verify") => get(verify),
        ("GET", "/api/access-log") => get(access_log),
        ("GET", "/api/admin/users") => get(users_list),
        ("POST", "/api/admin/users") => post(users_add),
        ("POST", "/api/admin/users/{user}/disable") => post(users_disable),
        ("POST", "/api/admin/users/{user}/password") => post(users_passwd),
        ("POST", "/api/admin/tokens") => post(tokens_create),
        ("POST", "/api/admin/tokens/{id}/revoke") => post(tokens_revoke),
        ("GET", "/") => get(pages::home),
        ("GET", "/login") => get(pages::login_page),
        ("POST", "/login") => post(pages::login_form),
        ("POST", "/logout") => post(pages::logout_form),
        ("GET", "/static/htmx.min.js") => get(pages::htmx),
        ("GET", "/worklist") => get(pages::worklist),
        ("GET", "/worklist/fields") => get(pages::entry_fields),
        ("POST", "/worklist/record") => post(pages::entry_record),
        ("GET", "/child/{child}") => get(pages::child_page),
        ("GET", "/child/{child}/timeline") => get(pages::timeline_page),
        ("GET", "/school/{school}/backfill") => get(pages::backfill_page),
        ("GET", "/verify") => get(pages::verify_page),
        ("GET", "/access-log") => get(pages::access_log_page),
        ("GET", "/school/{school}/roster") => get(pages::roster_page),
        ("POST", "/school/{school}/roster") => post(pages::roster_upload),
        ("GET", "/school/{school}/pairings") => get(pages::pairings_page),
        ("POST", "/school/{school}/pairings") => post(pages::pairings_upload),
        (m, p) => panic!("route {m} {p} is in ROUTES but has no handler"),
    }
}

/// The service's router over `state`: every route of `ROUTES`, the body limit (413: the
/// limit of `Limits`, or `pages::UPLOAD_BYTES` for the CSV uploads) and the request timeout.
pub fn app(state: AppState) -> Router {
    let limits = state.0.limits.clone();
    let mut router = Router::new();
    for (method, path) in ROUTES {
        let limit = if pages::is_upload(method, path) {
            pages::UPLOAD_BYTES
        } else {
            limits.body_bytes
        };
        router = router.route(
            path,
            handler(method, path).layer(RequestBodyLimitLayer::new(limit)),
        );
    }
    router
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .with_state(state)
}

/// Decodes a JSON body, naming the field that is wrong.
pub fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let inner = e.into_inner();
        field_error(
            &field,
            "valid JSON of the documented shape",
            Some(inner.to_string()),
        )
    })
}

/// The pretty JSON the CLI prints with `--format json`, as the response.
fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| ApiError::Fault(format!("encoding a view: {e}")))?;
    text.push('\n');
    Ok(raw_json(text.into_bytes()))
}

fn raw_json(bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn decide(d: Decision) -> Result<(), ApiError> {
    match d {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(ApiError::Forbidden(
            "this account may not do that".to_owned(),
        )),
        Decision::NotFound => Err(ApiError::NotFound),
    }
}

pub(crate) fn read_failure(e: ReadFailure) -> ApiError {
    match e {
        ReadFailure::BadInput(m) => ApiError::BadParam(m),
        ReadFailure::Fault(m) => ApiError::Fault(m),
    }
}

pub(crate) fn projection(e: projections::ProjectionError) -> ApiError {
    ApiError::BadParam(e.to_string())
}

// ---- query parameters ---------------------------------------------------------------------

/// The query string, checked: only the named parameters, each parsed with its field named.
struct Params(BTreeMap<String, String>);

impl Params {
    fn new(q: BTreeMap<String, String>, allowed: &[&str]) -> Result<Params, ApiError> {
        if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(field_error(
                k,
                &format!("one of the parameters {}", allowed.join(", ")),
                Some(format!("{k:?}")),
            ));
        }
        Ok(Params(q))
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn as_of(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.str("as_of")
            .map(|s| {
                events::time::parse_as_of(s).ok_or_else(|| {
                    field_error(
                        "as_of",
                        "a date or a time (2025-11-20, 2025-11-20T18:00:00+08:00)",
                        Some(format!("{s:?}")),
                    )
                })
            })
            .transpose()
    }

    fn date(&self, k: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.str(k)
            .map(|s| {
                events::time::parse_date(s)
                    .ok_or_else(|| field_error(k, "a date (2025-11-20)", Some(format!("{s:?}"))))
            })
            .transpose()
    }
}

type Q = Query<BTreeMap<String, String>>;

// ---- facts for the policy -----------------------------------------------------------------

pub(crate) fn place_of_school(reg: &Registry, school: &str) -> Place {
    match reg.school_county(school) {
        Some(county) => Place {
            school: Some(school.to_owned()),
            county: Some(county.to_owned()),
        },
        None => Place::default(),
    }
}

fn place_of_child(reg: &Registry, child: &str) -> Place {
    reg.child_school(child)
        .map(|s| place_of_school(reg, s))
        .unwrap_or_default()
}

/// One child's timeline and world, from the child's read plan.
fn child_world(
    state: &AppState,
    child: &str,
    as_of: Option<DateTime<Utc>>,
    reading: Reading,
) -> Result<(Timeline, World), ApiError> {
    let tl = state
        .0
        .plan
        .child_timeline(&state.0.store, child, as_of, reading)
        .map_err(read_failure)?;
    let world = World::build(&tl);
    Ok((tl, world))
}

/// Authorises a read of one child's file; returns whether notes may be shown. Writes the
/// access-log entry once allowed.
pub(crate) async fn child_read(
    state: &AppState,
    caller: &Caller,
    child: &str,
    what: &str,
) -> Result<bool, ApiError> {
    let p = &caller.principal;
    let facts = state.facts();
    let place = place_of_child(&facts.registry, child);
    let paired = p
        .staff
        .as_deref()
        .is_some_and(|staff| facts.ever_paired(staff, child));
    let resource = Resource::Child { place, paired };
    decide(authorize(p, Action::ReadChild, &resource))?;
    let notes = authorize(p, Action::ReadNotes, &resource) == Decision::Allow;
    access::record(state, caller, what, Some(child)).await?;
    Ok(notes)
}

fn school_place(state: &AppState, school: &str) -> Place {
    place_of_school(&state.facts().registry, school)
}

// ---- session ------------------------------------------------------------------------------

async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let cookie = auth::end_session(&state, &caller).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

async fn me(caller: Caller) -> Result<Response, ApiError> {
    // Knowing who one is needs no right beyond being logged in (exempt in .ci/check-authorize).
    json_response(&Me::from(&caller.principal))
}

// ---- record -------------------------------------------------------------------------------

/// The place of an event: its children's school (all must share it), else its own school,
/// else its staff member's school.
pub(crate) fn place_of_event(reg: &Registry, event: &Event) -> Place {
    let children = event.children();
    if let Some(first) = children.first() {
        let place = place_of_child(reg, first);
        if children.iter().all(|c| place_of_child(reg, c) == place) {
            return place;
        }
        return Place::default();
    }
    if let Event::ChildRegistered(r) = event {
        return place_of_school(reg, &r.school);
    }
    if let Some(s) = event.school() {
        return place_of_school(reg, s);
    }
    if let Some(staff) = event.staff()
        && let Some(s) = reg.staff_school(staff)
    {
        return place_of_school(reg, s);
    }
    if let Event::IncidentNotified { incident, .. } = event
        && let Some(c) = reg.incident_child(incident)
    {
        return place_of_child(reg, c);
    }
    Place::default()
}

#[derive(Serialize)]
struct RecordedBody {
    id: String,
    seq: u64,
}

#[derive(Serialize)]
struct PresentBody {
    already_present: bool,
}

async fn record(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = String::from_utf8(body.to_vec()).map_err(|_| {
        field_error(
            "body",
            "UTF-8 JSON",
            Some("bytes that are not UTF-8".into()),
        )
    })?;
    Ok(match record_as(&state, &caller, kind, body).await? {
        Outcome::Recorded { id, seq } => {
            (StatusCode::CREATED, axum::Json(RecordedBody { id, seq })).into_response()
        }
        Outcome::AlreadyPresent => (
            StatusCode::OK,
            axum::Json(PresentBody {
                already_present: true,
            }),
        )
            .into_response(),
    })
}

/// Records one event for `caller` (the API's and the quick entry's one path): the type and
/// wire object as `careledger record` takes them. Authorised, queued, durable when `Ok`.
pub async fn record_as(
    state: &AppState,
    caller: &Caller,
    kind: String,
    body: String,
) -> Result<Outcome, ApiError> {
    let p = caller.principal.clone();
    let Some(event_kind) = EventKind::parse(&kind) else {
        return Err(field_error(
            "type",
            "an event type (talk_held, parent_call, …)",
            Some(format!("{kind:?}")),
        ));
    };
    decide(authorize(
        &p,
        crate::policy::action_of_kind(event_kind),
        &Resource::Unplaced,
    ))?;
    // The actor is the logged-in staff member, never what the client says (the writer
    // refuses a body naming another).
    let actor = p.staff.clone().unwrap_or_default();
    let admit = admission(state, p);
    state
        .0
        .writer
        .submit(RecordRequest {
            kind,
            body,
            actor,
            admit,
        })
        .await
        .map_err(write_error)
}

/// How a refusal of the writer is answered.
pub(crate) fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::Invalid(errors) => ApiError::from(errors),
        WriteError::Refused(m) => ApiError::BadParam(m),
        WriteError::Busy => ApiError::Busy,
        WriteError::Closed => ApiError::ShuttingDown,
        WriteError::Fault(m) => ApiError::Fault(m),
        WriteError::Denied(d) => match decide(d) {
            Err(e) => e,
            Ok(()) => ApiError::Fault("an allowed record answered as denied".into()),
        },
    }
}

/// The authorisation of one record by `p`, run by the writer on the event its own validation
/// made (in order, against the log and the batch before it): the event's action and the
/// resource it touches — its place, whether it names `p` as its staff member, whether `p`
/// was paired with its children on its day, whether a correction's target is `p`'s — decided
/// by `policy::authorize`, the same function every route calls. An event already in the log
/// is answered before this runs (nothing to authorise or append).
fn admission(state: &AppState, p: Principal) -> crate::writer::Admission {
    let state = state.clone();
    Arc::new(move |draft: &events::Draft, known: &dyn ingest::Known| {
        let facts = state.facts();
        let reg = known.registry();
        let actor = p.staff.as_deref().unwrap_or_default();
        let action = action_of(&draft.event);
        let (place, own_target) = match &draft.event {
            Event::Corrected { target, .. } | Event::Retracted { target, .. } => {
                match known.event_by_id(target) {
                    Some(t) => (place_of_event(reg, &t.event), t.actor == actor),
                    None => (Place::default(), false),
                }
            }
            e => (place_of_event(reg, e), false),
        };
        let own_staff = draft.event.staff().is_none_or(|st| st == actor);
        let paired_on_day = if action == Action::RecordCare && !actor.is_empty() {
            let day = events::time::local_date(draft.occurred_at);
            registry_children(reg, &draft.event)
                .iter()
                .all(|c| facts.paired_on(actor, c, day))
        } else {
            false
        };
        authorize(
            &p,
            action,
            &Resource::Event {
                place,
                own_staff,
                paired_on_day,
                own_target,
            },
        )
    })
}

/// Runs `read` (an `ingest` reader) against the log as it is now, as a handler checks input
/// before the writer checks it again in order: stored events opened in clear (a store with
/// encryption on), as the writer reads them. A store that failed while being read is a fault,
/// whatever `read` made of it.
pub(crate) fn against_the_log<T>(
    state: &AppState,
    read: impl FnOnce(&dyn ingest::Known, &ingest::Options) -> T,
) -> Result<T, ApiError> {
    let store = &state.0.store;
    let open = |env| state.0.plan.open_to_validate(env);
    let known = ingest::StoreKnown::new(store).opening(&open);
    let opts = ingest::Options {
        now: Utc::now(),
        preserve_recorded_at: false,
        head_recorded_at: store.head().recorded_at,
    };
    let read = read(&known, &opts);
    match known.take_error() {
        Some(e) => Err(ApiError::Fault(format!(
            "reading the store to validate: {e}"
        ))),
        None => Ok(read),
    }
}

/// The children an event is about (an incident notification's is its incident's).
fn registry_children(reg: &Registry, event: &Event) -> Vec<String> {
    if let Event::IncidentNotified { incident, .. } = event {
        return reg
            .incident_child(incident)
            .map(|c| vec![c.to_owned()])
            .unwrap_or_default();
    }
    event.children().to_vec()
}

// ---- child views --------------------------------------------------------------------------

async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(child): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "valid_at"])?;
    let (as_of, valid_at) = (q.as_of()?, q.date("valid_at")?);
    child_read(&state, &caller, &child, "archive").await?;
    blocking(move || {
        let (tl, world) = child_world(&state, &child, as_of, Reading::Staff)?;
        let view =
            projections::archive::archive(&tl, &world, &child, valid_at).map_err(projection)?;
        json_response(&view)
    })
    .await
}

async fn contact_card(
    State(state): State<AppState>,
    caller: Caller,
    Path(child): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "on"])?;
    let (as_of, on) = (q.as_of()?, q.date("on")?);
    child_read(&state, &caller, &child, "contact_card").await?;
    blocking(move || {
        let (tl, world) = child_world(&state, &child, as_of, Reading::Staff)?;
        let view =
            projections::contact_card::contact_card(&tl, &world, &child, on).map_err(projection)?;
        json_response(&view)
    })
    .await
}

async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(child): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of"])?;
    let as_of = q.as_of()?;
    let notes = child_read(&state, &caller, &child, "history").await?;
    blocking(move || {
        // As the CLI: the raw envelopes beside their timeline.
        let envs = state
            .0
            .plan
            .child_envelopes(&state.0.store, &child, as_of, Reading::with_notes(notes))
            .map_err(read_failure)?;
        let tl = Timeline::build(&envs, as_of).map_err(projection)?;
        let world = World::build(&tl);
        let view =
            projections::history::history(&envs, &tl, &world, &child, notes).map_err(projection)?;
        json_response(&view)
    })
    .await
}

async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(child): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of"])?;
    let as_of = q.as_of()?;
    let notes = child_read(&state, &caller, &child, "progress").await?;
    blocking(move || {
        let (tl, world) = child_world(&state, &child, as_of, Reading::with_notes(notes))?;
        let view =
            projections::progress::progress(&tl, &world, &child, notes).map_err(projection)?;
        json_response(&view)
    })
    .await
}

// ---- school views -------------------------------------------------------------------------

/// A school's timeline and world, through the read models.
fn school_world(
    state: &AppState,
    school: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Timeline, World), ApiError> {
    let tl = state
        .0
        .plan
        .school_timeline(&state.0.store, school, as_of)
        .map_err(read_failure)?;
    let world = World::build(&tl);
    Ok((tl, world))
}

pub(crate) async fn school_read(
    state: &AppState,
    caller: &Caller,
    school: &str,
    action: Action,
    what: &str,
) -> Result<(), ApiError> {
    let resource = Resource::School(school_place(state, school));
    decide(authorize(&caller.principal, action, &resource))?;
    access::record(state, caller, what, None).await
}

async fn archives(
    State(state): State<AppState>,
    caller: Caller,
    Path(school): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "valid_at", "incomplete"])?;
    let (as_of, valid_at) = (q.as_of()?, q.date("valid_at")?);
    let incomplete = match q.str("incomplete") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(field_error(
                "incomplete",
                "true or false",
                Some(format!("{other:?}")),
            ));
        }
    };
    school_read(&state, &caller, &school, Action::ReadSchool, "archives").await?;
    blocking(move || {
        let (tl, world) = school_world(&state, &school, as_of)?;
        let view = projections::archive::archives(&tl, &world, &school, valid_at, incomplete)
            .map_err(projection)?;
        json_response(&view)
    })
    .await
}

/// The day "today" means: `on`, else the as-of date, else today (+08:00), as the CLI has it.
fn day_of(on: Option<NaiveDate>, as_of: Option<DateTime<Utc>>) -> NaiveDate {
    on.unwrap_or_else(|| events::time::local_date(as_of.unwrap_or_else(Utc::now)))
}

async fn pairings(
    State(state): State<AppState>,
    caller: Caller,
    Path(school): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "on"])?;
    let (as_of, on) = (q.as_of()?, q.date("on")?);
    school_read(&state, &caller, &school, Action::ReadSchool, "pairings").await?;
    blocking(move || {
        let (_, world) = school_world(&state, &school, as_of)?;
        let view = projections::pairings::pairings_on(&world, &school, day_of(on, as_of))
            .map_err(projection)?;
        json_response(&view)
    })
    .await
}

async fn backfill(
    State(state): State<AppState>,
    caller: Caller,
    Path(school): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "days"])?;
    let as_of = q.as_of()?;
    let days =
        match q.str("days") {
            None => 7,
            Some(s) => s.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                field_error("days", "a whole number of days", Some(format!("{s:?}")))
            })?,
        };
    school_read(&state, &caller, &school, Action::ReadSchool, "backfill").await?;
    blocking(move || {
        let (tl, world) = school_world(&state, &school, as_of)?;
        let options = projections::backfill::BackfillOptions {
            late_after_days: days,
            ..Default::default()
        };
        let view =
            projections::backfill::backfill(&tl, &world, &school, &options).map_err(projection)?;
        json_response(&view)
    })
    .await
}

async fn scores(
    State(state): State<AppState>,
    caller: Caller,
    Path(school): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "period"])?;
    let as_of = q.as_of()?;
    let period = q
        .str("period")
        .ok_or_else(|| field_error("period", "a term or a school year (2025-2026-1)", None))?;
    let period = projections::Period::parse(period)
        .map_err(|e| field_error("period", "a term or a school year", Some(e.to_string())))?;
    school_read(&state, &caller, &school, Action::ReadScores, "scores").await?;
    blocking(move || {
        let (tl, world) = school_world(&state, &school, as_of)?;
        // The polars scorer, as `careledger scores` runs it (the Rust scorer of `projections`
        // is its reference in the tests).
        let run = reports::score_run(&tl, &world, &school, &period, None)
            .map_err(|e| ApiError::BadParam(e.to_string()))?;
        json_response(&run.rows_json())
    })
    .await
}

async fn worklist(
    State(state): State<AppState>,
    caller: Caller,
    Path(staff): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "on"])?;
    let (as_of, on) = (q.as_of()?, q.date("on")?);
    let facts = state.facts();
    let reg = &facts.registry;
    let place = reg
        .staff_school(&staff)
        .map(|s| place_of_school(reg, s))
        .unwrap_or_default();
    let own = caller.principal.staff.as_deref() == Some(staff.as_str());
    decide(authorize(
        &caller.principal,
        Action::ReadWorklist,
        &Resource::Staff { place, own },
    ))?;
    access::record(&state, &caller, "worklist", None).await?;
    // As the CLI: with `on` and no `as_of`, what was recorded by the end of that day.
    let as_of = match (as_of, on) {
        (Some(t), _) => Some(t),
        (None, Some(d)) => Some(events::time::end_of_day(d)),
        (None, None) => None,
    };
    let s = state.clone();
    let answer = blocking(move || {
        let tl =
            s.0.plan
                .staff_timeline(&s.0.store, &staff, as_of)
                .map_err(read_failure)?;
        let world = World::build(&tl);
        let view = projections::worklist::worklist(&tl, &world, &staff, day_of(on, as_of))
            .map_err(projection)?;
        json_response(&view)
    })
    .await;
    state.keep_up_after_read();
    answer
}

async fn report_term(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["as_of", "term", "school", "county"])?;
    let as_of = q.as_of()?;
    let term = q
        .str("term")
        .ok_or_else(|| field_error("term", "a term id (2025-2026-1)", None))?
        .to_owned();
    let (scope, resource) = match (q.str("school"), q.str("county")) {
        (Some(s), None) => (
            reports::Scope::School(s.to_owned()),
            Resource::School(school_place(&state, s)),
        ),
        (None, Some(c)) => (
            reports::Scope::County(c.to_owned()),
            Resource::County(c.to_owned()),
        ),
        _ => {
            return Err(field_error(
                "school",
                "exactly one of school and county",
                None,
            ));
        }
    };
    decide(authorize(
        &caller.principal,
        Action::ReadTermReport,
        &resource,
    ))?;
    access::record(&state, &caller, "report_term", None).await?;
    blocking(move || {
        let report = state
            .0
            .plan
            .term_report(&state.0.store, &scope, &term, as_of)
            .map_err(read_failure)?;
        let bytes = reports::render(&report, reports::Format::Json)
            .map_err(|e| ApiError::Fault(e.to_string()))?;
        Ok(raw_json(bytes))
    })
    .await
}

#[derive(Serialize)]
struct VerifiedBody {
    events: u64,
    head: String,
}

async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    decide(authorize(
        &caller.principal,
        Action::Verify,
        &Resource::Service,
    ))?;
    blocking(move || {
        // Damage is reported as such (the CLI's exit 3), never served as data.
        let v = state
            .0
            .store
            .verify()
            .map_err(|e| ApiError::Fault(format!("verify: {e}")))?;
        json_response(&VerifiedBody {
            events: v.events,
            head: v.head.to_hex(),
        })
    })
    .await
}

async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["child", "actor"])?;
    decide(authorize(
        &caller.principal,
        Action::ReadAccessLog,
        &Resource::Service,
    ))?;
    let child = q.str("child").map(str::to_owned);
    let actor = q.str("actor").map(str::to_owned);
    let scope = caller.principal.scope.clone();
    blocking(move || {
        let entries = state
            .0
            .access
            .entries()
            .map_err(|e| ApiError::Fault(e.to_string()))?;
        let shown = access::visible(&state, &scope, entries, child.as_deref(), actor.as_deref());
        json_response(&shown)
    })
    .await
}

// ---- accounts -----------------------------------------------------------------------------

/// The school an account manager manages (school admins manage their school's accounts).
fn managed_place(state: &AppState, p: &Principal, scope: &Scope) -> Place {
    match scope {
        Scope::School(s) => school_place(state, s),
        Scope::County(_) => {
            // County accounts are made by the operator (`careledger user add`), not through
            // the API: out of every school admin's scope.
            let _ = p;
            Place::default()
        }
    }
}

fn account_error(e: crate::accounts::AccountError) -> ApiError {
    match e {
        crate::accounts::AccountError::Invalid(m) => ApiError::BadParam(m),
        e => ApiError::Fault(e.to_string()),
    }
}

async fn users_list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let p = caller.principal.clone();
    let place = managed_place(&state, &p, &p.scope);
    decide(authorize(
        &p,
        Action::ManageAccounts,
        &Resource::School(place),
    ))?;
    blocking(move || {
        let all = Book::new(&state.0.store).list().map_err(account_error)?;
        let mine: Vec<_> = all.into_iter().filter(|a| a.scope == p.scope).collect();
        json_response(&mine)
    })
    .await
}

async fn users_add(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewAccount = json_body(&body)?;
    let p = caller.principal.clone();
    let place = managed_place(&state, &p, &new.scope);
    decide(authorize(
        &p,
        Action::ManageAccounts,
        &Resource::School(place),
    ))?;
    blocking(move || {
        let info = Book::new(&state.0.store).add(new).map_err(account_error)?;
        json_response(&info)
    })
    .await
}

/// An account the caller manages, else 404.
fn managed_account(
    state: &AppState,
    p: &Principal,
    user: &str,
) -> Result<crate::accounts::Account, ApiError> {
    let account = Book::new(&state.0.store)
        .account(user)
        .map_err(account_error)?;
    let place = account
        .as_ref()
        .map(|a| managed_place(state, p, &a.scope))
        .unwrap_or_default();
    decide(authorize(
        p,
        Action::ManageAccounts,
        &Resource::School(place),
    ))?;
    account.ok_or(ApiError::NotFound)
}

async fn users_disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let p = caller.principal.clone();
    blocking(move || {
        managed_account(&state, &p, &user)?;
        Book::new(&state.0.store)
            .disable(&user)
            .map_err(account_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

async fn users_passwd(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: Password = json_body(&body)?;
    let p = caller.principal.clone();
    blocking(move || {
        managed_account(&state, &p, &user)?;
        Book::new(&state.0.store)
            .set_password(&user, &new.password)
            .map_err(account_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Deserialize)]
struct NewToken {
    user: String,
    scope: TokenScope,
    /// Days until it expires.
    days: u32,
    #[serde(default)]
    label: String,
}

#[derive(Serialize)]
struct CreatedToken {
    token: String,
    id: String,
    expires_at: DateTime<Utc>,
}

async fn tokens_create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewToken = json_body(&body)?;
    if new.days == 0 || new.days > 366 {
        return Err(field_error(
            "days",
            "1 to 366 days",
            Some(new.days.to_string()),
        ));
    }
    let p = caller.principal.clone();
    blocking(move || {
        managed_account(&state, &p, &new.user)?;
        let expires = Utc::now() + chrono::Duration::days(i64::from(new.days));
        let (token, record) = Book::new(&state.0.store)
            .create_token(&new.user, new.scope, expires, &new.label)
            .map_err(account_error)?;
        json_response(&CreatedToken {
            token,
            id: record.id,
            expires_at: record.expires_at,
        })
    })
    .await
}

async fn tokens_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = caller.principal.clone();
    blocking(move || {
        let book = Book::new(&state.0.store);
        let owner = book.token_owner(&id).map_err(account_error)?;
        // An unknown id and a token of an account out of scope answer alike.
        let user = owner.unwrap_or_default();
        managed_account(&state, &p, &user)?;
        if book.revoke_token(&id).map_err(account_error)? {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(ApiError::NotFound)
        }
    })
    .await
}
