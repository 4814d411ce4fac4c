//! The school admin's roster and pairing pages, with CSV upload: the school's children (the
//! listing of `GET /api/schools/{school}/archives`) and pairings (`GET
//! /api/schools/{school}/pairings`), and a form that uploads one CSV file of the format
//! `careledger import` reads for those event types (`child_registered.csv`,
//! `pairing_assigned.csv`, …).
//!
//! An upload is read by `ingest`'s CSV reader (`writer::read_import`), each row authorised
//! by `policy::authorize` as a registry event of the admin's school, and appended whole
//! through the one writer (`WriterHandle::submit_import`) or not at all; every problem is
//! shown with its line and field. This module owns the pages' markup and the upload form; it
//! must never parse CSV itself, append except through the writer, or decide an authorisation
//! outside `policy`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use events::EventKind;
use projections::World;

use super::inspect::params;
use super::{Section, Visitor, page_error, render};
use crate::api::{decide, place_of_event, place_of_school, projection, read_failure, school_read};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError, field_error};
use crate::policy::{Action, Decision, Resource, authorize};
use crate::writer::{ImportRequest, WriteError, read_import};
use crate::{AppState, blocking};

/// The largest CSV file the upload takes (a county's roster is well below it).
pub const UPLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Which page: the roster or the pairings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Roster,
    Pairings,
}

impl Which {
    /// The event types its upload takes (wire type, label).
    fn kinds(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Which::Roster => &[
                ("child_registered", "新建档案（child_registered.csv）"),
                ("child_updated", "档案变更（child_updated.csv）"),
                (
                    "child_status_changed",
                    "状态变更（child_status_changed.csv）",
                ),
            ],
            Which::Pairings => &[
                ("pairing_assigned", "结对（pairing_assigned.csv）"),
                ("pairing_ended", "结束结对（pairing_ended.csv）"),
            ],
        }
    }

    fn path(self, school: &str) -> String {
        match self {
            Which::Roster => format!("/school/{school}/roster"),
            Which::Pairings => format!("/school/{school}/pairings"),
        }
    }
}

#[derive(Template)]
#[template(path = "roster.html")]
struct RosterPage {
    title: String,
    action: String,
    /// Whether the caller may upload (a school admin of this school).
    may_upload: bool,
    kinds: &'static [(&'static str, &'static str)],
    kind: String,
    /// After an upload: what was appended.
    saved: String,
    /// After an upload: every problem (line, field, message).
    errors: Vec<FieldError>,
    sections: Vec<Section>,
}

/// What an upload did, shown above the listing.
#[derive(Default)]
struct Upload {
    kind: String,
    saved: String,
    errors: Vec<FieldError>,
}

/// The page's listing and form, after `upload` if one was made.
async fn page(
    state: &AppState,
    caller: &Caller,
    school: String,
    which: Which,
    on: Option<chrono::NaiveDate>,
    upload: Upload,
) -> Result<Response, ApiError> {
    let what = match which {
        Which::Roster => "roster",
        Which::Pairings => "pairings",
    };
    school_read(state, caller, &school, Action::ReadSchool, what).await?;
    let may_upload = authorize(
        &caller.principal,
        Action::RecordRegistry,
        &upload_resource(state, &school),
    ) == Decision::Allow;
    let s = state.clone();
    let failed = !upload.errors.is_empty();
    let mut r = blocking(move || {
        let tl =
            s.0.plan
                .school_timeline(&s.0.store, &school, None)
                .map_err(read_failure)?;
        let world = World::build(&tl);
        let (title, section) = match which {
            Which::Roster => {
                let view = projections::archive::archives(&tl, &world, &school, None, false)
                    .map_err(projection)?;
                (
                    format!("{school} 学生名册"),
                    Section {
                        title: "名册",
                        rows: view.to_table(),
                    },
                )
            }
            Which::Pairings => {
                let day = on.unwrap_or_else(|| events::time::local_date(Utc::now()));
                let view =
                    projections::pairings::pairings_on(&world, &school, day).map_err(projection)?;
                (
                    format!("{school} 结对帮扶（{day}）"),
                    Section {
                        title: "结对",
                        rows: view.to_table(),
                    },
                )
            }
        };
        render(&RosterPage {
            title,
            action: which.path(&school),
            may_upload,
            kinds: which.kinds(),
            kind: upload.kind,
            saved: upload.saved,
            errors: upload.errors,
            sections: vec![section],
        })
    })
    .await?;
    if failed {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

/// `GET /school/{school}/roster`: the school's children, and the upload form for a school
/// admin of the school.
pub async fn roster_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(school): Path<String>,
) -> Response {
    page(
        &state,
        &caller,
        school,
        Which::Roster,
        None,
        Upload::default(),
    )
    .await
    .unwrap_or_else(page_error)
}

/// `GET /school/{school}/pairings?on=`: the school's pairings on a day (today without `on`),
/// and the upload form for a school admin of the school.
pub async fn pairings_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(school): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let inner = async {
        let q = params(q, &["on"])?;
        let on = q
            .get("on")
            .map(|s| {
                events::time::parse_date(s)
                    .ok_or_else(|| field_error("on", "a date (2025-11-20)", Some(format!("{s:?}"))))
            })
            .transpose()?;
        page(
            &state,
            &caller,
            school,
            Which::Pairings,
            on,
            Upload::default(),
        )
        .await
    };
    inner.await.unwrap_or_else(page_error)
}

/// `POST /school/{school}/roster` (multipart: `type`, `file`).
pub async fn roster_upload(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(school): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    upload(&state, &caller, school, Which::Roster, form)
        .await
        .unwrap_or_else(page_error)
}

/// `POST /school/{school}/pairings` (multipart: `type`, `file`).
pub async fn pairings_upload(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(school): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    upload(&state, &caller, school, Which::Pairings, form)
        .await
        .unwrap_or_else(page_error)
}

/// What an upload records, before its rows are read: registry events of `school` by the
/// caller's own staff member (an account that is no staff member has no actor to record as).
fn upload_resource(state: &AppState, school: &str) -> Resource {
    Resource::Event {
        place: place_of_school(&state.facts().registry, school),
        own_staff: true,
        paired_on_day: false,
        own_target: false,
    }
}

/// The form's two parts: the event type and the file (its name and bytes).
async fn read_form(
    form: Result<Multipart, MultipartRejection>,
) -> Result<(String, String, Vec<u8>), ApiError> {
    let bad =
        |field: &str, expected: &str, found: String| field_error(field, expected, Some(found));
    let mut form = form.map_err(|e| {
        bad(
            "body",
            "a multipart/form-data upload (type, file)",
            e.body_text(),
        )
    })?;
    let (mut kind, mut file) = (None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad("body", "a complete upload", e.body_text())),
        };
        match field.name() {
            Some("type") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad("type", "an event type", e.body_text()))?;
                kind = Some(text);
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("upload.csv").to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| bad("file", "a CSV file", e.body_text()))?;
                file = Some((name, bytes.to_vec()));
            }
            Some(other) => {
                return Err(bad("body", "the parts type and file", format!("{other:?}")));
            }
            None => return Err(bad("body", "named parts", "a part without a name".into())),
        }
    }
    let kind = kind.ok_or_else(|| field_error("type", "an event type", None))?;
    let (name, bytes) = file.ok_or_else(|| field_error("file", "a CSV file", None))?;
    if bytes.is_empty() {
        return Err(bad("file", "a CSV file", "an empty file".into()));
    }
    Ok((kind, name, bytes))
}

async fn upload(
    state: &AppState,
    caller: &Caller,
    school: String,
    which: Which,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let p = caller.principal.clone();
    // Only a school admin of this school, as a staff member, uploads: decided before the
    // body is read.
    decide(authorize(
        &p,
        Action::RecordRegistry,
        &upload_resource(state, &school),
    ))?;
    let (kind, name, bytes) = match read_form(form).await {
        Ok(f) => f,
        Err(ApiError::Invalid(errors)) => {
            let upload = Upload {
                errors,
                ..Upload::default()
            };
            return page(state, caller, school, which, None, upload).await;
        }
        Err(e) => return Err(e),
    };
    let Some(event_kind) =
        EventKind::parse(&kind).filter(|_| which.kinds().iter().any(|(k, _)| *k == kind))
    else {
        let errors = vec![FieldError {
            file: name,
            line: None,
            field: Some("type".into()),
            expected: format!(
                "one of {}",
                which
                    .kinds()
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            found: Some(format!("{kind:?}")),
            message: format!("the type of this page's upload, not {kind:?}"),
        }];
        let upload = Upload {
            kind,
            errors,
            ..Upload::default()
        };
        return page(state, caller, school, which, None, upload).await;
    };
    let request = ImportRequest {
        file: name,
        kind: event_kind,
        bytes,
        actor: p.staff.clone().unwrap_or_default(),
    };
    // Read against the log as it is, and authorise each row as a registry event of this
    // school; the writer reads the file again, in order, inside its batch.
    let (s, r, sc) = (state.clone(), request.clone(), school.clone());
    let checked = blocking(move || {
        let parsed = crate::api::against_the_log(&s, |known, opts| read_import(&r, known, opts))?;
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(e.errors.iter().map(FieldError::from).collect())),
        };
        let facts = s.facts();
        let mut errors = Vec::new();
        for (line, d) in &parsed.drafts {
            let place = place_of_event(&facts.registry, &d.event);
            let resource = Resource::Event {
                place: place.clone(),
                own_staff: true,
                paired_on_day: false,
                own_target: false,
            };
            let allowed = authorize(&p, Action::RecordRegistry, &resource) == Decision::Allow;
            if !allowed || place.school.as_deref() != Some(sc.as_str()) {
                let field = match d.event {
                    events::Event::ChildRegistered(_) => "school",
                    _ => "child",
                };
                let e = ingest::LineError {
                    file: r.file.clone(),
                    sheet: None,
                    line: Some(*line),
                    column: None,
                    field: Some(field.to_owned()),
                    expected: format!("a {field} of school {sc} (the school of this page)"),
                    found: None,
                };
                errors.push(FieldError::from(&e));
            }
        }
        Ok(if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        })
    })
    .await?;
    let outcome = match checked {
        Err(errors) => Err(errors),
        Ok(()) => match state.0.writer.submit_import(request).await {
            Ok(done) => Ok(done),
            Err(WriteError::Invalid(e)) => Err(e.errors.iter().map(FieldError::from).collect()),
            Err(e) => return Err(crate::api::write_error(e)),
        },
    };
    let upload = match outcome {
        Ok(done) => Upload {
            kind,
            saved: format!(
                "已导入 {} 条{}",
                done.appended,
                if done.already_present > 0 {
                    format!("（{} 条已经有了，未重复导入）", done.already_present)
                } else {
                    String::new()
                }
            ),
            errors: Vec::new(),
        },
        Err(errors) => Upload {
            kind,
            saved: String::new(),
            errors,
        },
    };
    page(state, caller, school, which, None, upload).await
}
