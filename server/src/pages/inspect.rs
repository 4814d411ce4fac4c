//! The inspector's pages: a child's timeline (the file as it was recorded at a moment, chosen
//! with an as-of slider over the child's distinct recorded times, and a valid-at date), the
//! back-fill table, the verify status and the access log. Each shows the same data as its JSON
//! route, through the same read plan and view functions, the same `policy::authorize` and the
//! same access log.
//!
//! This module owns those pages' markup and their query parameters; it must never compute a
//! view (the slider's positions are the recorded times of the envelopes the read plan gives,
//! and each position is read as `--as-of` that time), decide an authorisation itself, or show
//! a counseling note to anyone but a counselor.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use projections::{Timeline, World};

use super::{Section, Visitor, page_error, render};
use crate::api::{child_read, decide, projection, read_failure, school_read};
use crate::error::{ApiError, field_error};
use crate::policy::{Action, Resource, authorize};
use crate::{AppState, Reading, access, blocking};

/// The query parameters of a page, checked: only `allowed`, an empty value read as absent
/// (an HTML form sends every input).
pub(crate) fn params(
    q: BTreeMap<String, String>,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, ApiError> {
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(field_error(
            k,
            &format!("one of the parameters {}", allowed.join(", ")),
            Some(format!("{k:?}")),
        ));
    }
    Ok(q.into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect())
}

fn date_param(q: &BTreeMap<String, String>, k: &str) -> Result<Option<NaiveDate>, ApiError> {
    q.get(k)
        .map(|s| {
            events::time::parse_date(s)
                .ok_or_else(|| field_error(k, "a date (2025-11-20)", Some(format!("{s:?}"))))
        })
        .transpose()
}

// ---- a child's timeline -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage {
    title: String,
    child: String,
    /// The slider's position (from 0) and the last position.
    pos: usize,
    last: usize,
    /// The moment, +08:00, for people.
    label: String,
    /// The moment as the CLI's `--as-of` takes it.
    as_of: String,
    /// The event types recorded at that moment.
    kinds: String,
    valid_at: String,
    /// The archive and the history at that moment (the fragment the slider swaps).
    sections: Vec<Section>,
}

/// The slider's positions: the distinct recorded times of the child's envelopes, from the
/// first that names the child (before it, the child has no file to show), in log order.
fn moments(envelopes: &[events::Envelope], child: &str) -> Vec<DateTime<Utc>> {
    let first = envelopes
        .iter()
        .position(|e| e.event.children().iter().any(|c| c == child));
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for e in first.map_or(&[][..], |i| &envelopes[i..]) {
        if times.last() != Some(&e.recorded_at) {
            times.push(e.recorded_at);
        }
    }
    times
}

/// `GET /child/{child}/timeline?at=&valid_at=`: the child's file as recorded at the `at`-th
/// of its recorded times (the latest without `at`), as of `valid_at` (a date) when given:
/// the archive and the history the CLI shows with `--as-of` that time (and `--valid-at`).
pub async fn timeline_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(child): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let inner = async {
        let q = params(q, &["at", "valid_at"])?;
        let at = q
            .get("at")
            .map(|s| {
                s.parse::<usize>().map_err(|_| {
                    field_error(
                        "at",
                        "a position of the slider (0, 1, 2, …)",
                        Some(format!("{s:?}")),
                    )
                })
            })
            .transpose()?;
        let valid_at = date_param(&q, "valid_at")?;
        let notes = child_read(&state, &caller, &child, "timeline").await?;
        let s = state.clone();
        blocking(move || {
            let (store, plan) = (&s.0.store, &s.0.plan);
            let all = plan
                .child_envelopes(store, &child, None, Reading::Staff)
                .map_err(read_failure)?;
            let times = moments(&all, &child);
            let Some(last) = times.len().checked_sub(1) else {
                return Err(ApiError::NotFound);
            };
            let pos = at.unwrap_or(last);
            let Some(&as_of) = times.get(pos) else {
                return Err(field_error(
                    "at",
                    &format!("a position from 0 to {last}"),
                    Some(pos.to_string()),
                ));
            };
            // As `careledger archive CHILD --as-of T [--valid-at D]`.
            let tl = plan
                .child_timeline(store, &child, Some(as_of), Reading::Staff)
                .map_err(read_failure)?;
            let world = World::build(&tl);
            let archive =
                projections::archive::archive(&tl, &world, &child, valid_at).map_err(projection)?;
            // As `careledger history CHILD --as-of T`: the envelopes beside their timeline.
            let envs = plan
                .child_envelopes(store, &child, Some(as_of), Reading::with_notes(notes))
                .map_err(read_failure)?;
            let htl = Timeline::build(&envs, Some(as_of)).map_err(projection)?;
            let hworld = World::build(&htl);
            let history = projections::history::history(&envs, &htl, &hworld, &child, notes)
                .map_err(projection)?;
            let mut kinds: Vec<&str> = all
                .iter()
                .filter(|e| e.recorded_at == as_of)
                .map(|e| e.event.kind().as_str())
                .collect();
            kinds.dedup();
            let name = world
                .child(&child)
                .map(|c| c.file_latest().name.clone())
                .unwrap_or_else(|| child.clone());
            let as_of_text = events::time::format_local(as_of);
            render(&TimelinePage {
                title: format!("{name} 的时间线"),
                child: child.clone(),
                pos,
                last,
                label: as_of
                    .with_timezone(&events::time::school_tz())
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                as_of: as_of_text,
                kinds: kinds.join("、"),
                valid_at: valid_at.map(|d| d.to_string()).unwrap_or_default(),
                sections: vec![
                    Section {
                        title: "档案",
                        rows: archive.to_table(),
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

// ---- back-fill ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "table.html")]
struct TablePage {
    title: String,
    /// A line above the table.
    note: String,
    /// The filter form's fields: (name, label, value, input type).
    filters: Vec<(&'static str, &'static str, String, &'static str)>,
    sections: Vec<Section>,
}

/// `GET /school/{school}/backfill?days=&as_of=`: the back-fill table of `GET
/// /api/schools/{school}/backfill`, as `careledger backfill --school S` shows it.
pub async fn backfill_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Path(school): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let inner = async {
        let q = params(q, &["as_of", "days"])?;
        let as_of = q
            .get("as_of")
            .map(|s| {
                events::time::parse_as_of(s).ok_or_else(|| {
                    field_error(
                        "as_of",
                        "a date or a time (2025-11-20, 2025-11-20T18:00:00+08:00)",
                        Some(format!("{s:?}")),
                    )
                })
            })
            .transpose()?;
        let days = match q.get("days") {
            None => 7,
            Some(s) => s.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                field_error("days", "a whole number of days", Some(format!("{s:?}")))
            })?,
        };
        school_read(&state, &caller, &school, Action::ReadSchool, "backfill").await?;
        let s = state.clone();
        blocking(move || {
            let tl =
                s.0.plan
                    .school_timeline(&s.0.store, &school, as_of)
                    .map_err(read_failure)?;
            let world = World::build(&tl);
            let options = projections::backfill::BackfillOptions {
                late_after_days: days,
                ..Default::default()
            };
            let view = projections::backfill::backfill(&tl, &world, &school, &options)
                .map_err(projection)?;
            render(&TablePage {
                title: format!("{school} 补录情况"),
                note: format!("记录晚于发生 {days} 天以上算补录"),
                filters: vec![
                    ("days", "天数", days.to_string(), "number"),
                    (
                        "as_of",
                        "截至（日期）",
                        q.get("as_of").cloned().unwrap_or_default(),
                        "date",
                    ),
                ],
                sections: vec![Section {
                    title: "补录",
                    rows: view.to_table(),
                }],
            })
        })
        .await
    };
    inner.await.unwrap_or_else(page_error)
}

// ---- verify -------------------------------------------------------------------------------

/// `GET /verify`: the verify status of `GET /api/verify`. Damage is shown as such, with a 500
/// (the CLI's exit 3), never as a store in order.
pub async fn verify_page(State(state): State<AppState>, Visitor(caller): Visitor) -> Response {
    let inner = async {
        decide(authorize(
            &caller.principal,
            Action::Verify,
            &Resource::Service,
        ))?;
        let s = state.clone();
        blocking(move || {
            let (status, note, rows) = match s.0.store.verify() {
                Ok(v) => (
                    StatusCode::OK,
                    "日志完整：每条记录的哈希链与索引都已核对".to_owned(),
                    vec![
                        vec!["项目".to_owned(), "结果".to_owned()],
                        vec!["状态".to_owned(), "完整".to_owned()],
                        vec!["记录数".to_owned(), v.events.to_string()],
                        vec!["最新哈希".to_owned(), v.head.to_hex()],
                    ],
                ),
                Err(e) => {
                    eprintln!("careledger serve: verify: {e}");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "日志已损坏：请停止使用并联系管理员".to_owned(),
                        vec![
                            vec!["项目".to_owned(), "结果".to_owned()],
                            vec!["状态".to_owned(), "损坏".to_owned()],
                            vec!["原因".to_owned(), e.to_string()],
                        ],
                    )
                }
            };
            let mut r = render(&TablePage {
                title: "日志校验".to_owned(),
                note,
                filters: Vec::new(),
                sections: vec![Section {
                    title: "校验结果",
                    rows,
                }],
            })?;
            *r.status_mut() = status;
            Ok(r)
        })
        .await
    };
    inner.await.unwrap_or_else(page_error)
}

// ---- the access log -----------------------------------------------------------------------

/// `GET /access-log?child=&actor=`: the entries of `GET /api/access-log` the caller may see,
/// filtered by child and account.
pub async fn access_log_page(
    State(state): State<AppState>,
    Visitor(caller): Visitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let inner = async {
        let q = params(q, &["child", "actor"])?;
        decide(authorize(
            &caller.principal,
            Action::ReadAccessLog,
            &Resource::Service,
        ))?;
        let child = q.get("child").cloned();
        let actor = q.get("actor").cloned();
        let scope = caller.principal.scope.clone();
        let s = state.clone();
        blocking(move || {
            let entries =
                s.0.access
                    .entries()
                    .map_err(|e| ApiError::Fault(e.to_string()))?;
            let shown = access::visible(&s, &scope, entries, child.as_deref(), actor.as_deref());
            let mut rows = vec![
                ["序号", "时间", "账户", "角色", "内容", "学生", "来源"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for e in shown.iter().rev() {
                rows.push(vec![
                    e.seq.to_string(),
                    events::time::format_local(e.at),
                    e.access.actor.clone(),
                    e.access.role.clone(),
                    e.access.what.clone(),
                    e.access.child.clone().unwrap_or_default(),
                    e.access.from.clone(),
                ]);
            }
            render(&TablePage {
                title: "查阅记录".to_owned(),
                note: format!("共 {} 条，最新的在前", shown.len()),
                filters: vec![
                    ("child", "学生编号", child.unwrap_or_default(), "text"),
                    ("actor", "账户", actor.unwrap_or_default(), "text"),
                ],
                sections: vec![Section {
                    title: "记录",
                    rows,
                }],
            })
        })
        .await
    };
    inner.await.unwrap_or_else(page_error)
}
