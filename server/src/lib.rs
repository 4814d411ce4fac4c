//! `server`: `careledger serve`, the service through which teachers, counselors, school admins,
//! inspectors and the bureau reach one store (docs/service.md).
//!
//! It owns the HTTP surface (`api`: the JSON API mirroring the CLI), authentication
//! (`auth`: accounts, sessions, bearer tokens), the one authorisation decision (`policy`),
//! the single writer with group commit (`writer`) and the access log of reads (`access`). It
//! must never append to the log except through the writer, never decide an authorisation
//! outside `policy::authorize`, never compute a view itself (that is `projections`, fed by
//! the read plan the binary hands over as `ReadPlan`), and never run a store write, a scan,
//! a password hash or polars on the async threads (`spawn_blocking`): only a request's
//! admission (a bearer token's look-up: point reads) runs there. A record is validated once,
//! by the writer, which then runs the request's authorisation (`writer::Admission`, built by
//! `api` around `policy::authorize`) on the validated event before it joins the batch.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod pages;
pub mod policy;
pub mod writer;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use events::{Envelope, Registry};
use projections::world::Pairing;
use projections::{Timeline, World};
use store::Store;
use store::access_log::AccessLog;

pub use api::{ROUTES, app};
pub use error::ApiError;

/// Why the read plan could not give envelopes.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// The log's content does not fold (a correction that cannot apply …): the caller's 400.
    #[error("{0}")]
    BadInput(String),
    /// The store could not be read (damage or the machine): a 500 whose text is only logged.
    #[error("{0}")]
    Fault(String),
}

/// How the sealed personal fields of a child's file are opened for a reader
/// (docs/privacy.md): the key directory's vault opens them after the read; a store in clear
/// has nothing sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Personal fields, never counseling notes: teachers, school admins, inspectors, and a
    /// counselor's views that show no notes.
    Staff,
    /// Personal fields and counseling notes: only a counselor's history and progress (the
    /// policy's `ReadNotes`).
    Counselor,
}

impl Reading {
    /// The reading of a child's view that shows notes when `notes` (the policy allowed them).
    pub fn with_notes(notes: bool) -> Reading {
        if notes {
            Reading::Counselor
        } else {
            Reading::Staff
        }
    }
}

/// Why a draft the writer accepted could not be sealed: its index in the batch given to the
/// sealer, and whether the event itself is at fault (an event about an erased child) or the
/// key directory (a key file that does not open).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SealFailure {
    /// The draft's index in the slice given to [`Seal::seal`].
    pub index: usize,
    /// Whether the event is refused as input (400), rather than a fault of the key directory.
    pub bad_input: bool,
    /// What was wrong.
    pub message: String,
}

/// Seals the personal fields of the writer's drafts before the append, as `record` and
/// `import` do (docs/privacy.md). One sealer lives for one batch, so that an amendment is
/// sealed under the key of a target earlier in the same batch.
pub trait Seal {
    /// Seals `drafts` in place, in order (they are one request's, after those sealed before).
    fn seal(&mut self, drafts: &mut [events::Draft]) -> Result<(), SealFailure>;
}

/// Which envelopes a view reads: the binary's read plan (`careledger::plan`), handed over so
/// that the service reads exactly what the commands read, with the key directory's vault
/// that opens sealed fields after the read and seals them before the writer's append.
pub trait ReadPlan: Send + Sync + 'static {
    /// Everything a single child's views need (the child's envelopes plus the registry events
    /// of the schools its file names), in log order, opened for `reading`.
    fn child_envelopes(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
        reading: Reading,
    ) -> Result<Vec<Envelope>, ReadFailure>;

    /// One child's timeline as of `as_of` (archive, contact card, progress), opened for
    /// `reading`.
    fn child_timeline(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
        reading: Reading,
    ) -> Result<Timeline, ReadFailure>;

    /// The timeline of school-wide views of `school` (archives, pairings, back-fill, scores),
    /// opened for staff (no notes).
    fn school_timeline(
        &self,
        store: &Store,
        school: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure>;

    /// The timeline of a staff member's worklist, opened for staff (no notes).
    fn staff_timeline(
        &self,
        store: &Store,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure>;

    /// The term report of `scope` for `term` as of `as_of`, read as `report term` reads it (a
    /// report reads the clear parts as stored, so a bureau's read never opens a personal
    /// field).
    fn term_report(
        &self,
        store: &Store,
        scope: &reports::Scope,
        term: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<reports::TermReport, ReadFailure>;

    /// The timeline of every school (the facts the policy reads: registry and pairings), the
    /// clear parts as stored.
    fn all_schools_timeline(&self, store: &Store) -> Result<Timeline, ReadFailure>;

    /// Opens a stored envelope for validation (idempotent re-recording compares payloads in
    /// clear, a correction reads its target), as `careledger record` does.
    fn open_to_validate(
        &self,
        env: Envelope,
    ) -> Result<Envelope, Box<dyn std::error::Error + Send + Sync>>;

    /// The sealer of one batch of the writer; `None` for a store in clear (nothing sealed).
    fn sealer<'s>(&'s self, store: &'s Store) -> Option<Box<dyn Seal + 's>>;

    /// Called on a blocking thread after commits (coalesced, at most every
    /// `writer::KEEP_EVERY`): a plan that keeps derived state between reads brings it up to
    /// date with the log here, off the request path. A failure is left for the next read to
    /// meet and report. Nothing by default.
    fn committed(&self, _store: &Store) {}

    /// Whether some kept state waits for its first fold (a read registered it and was
    /// answered without it): the reader then wakes the keeper (`WriterHandle::keep_up`), which
    /// calls [`ReadPlan::committed`]. Never by default.
    fn unkept(&self) -> bool {
        false
    }
}

/// Limits of the service; the defaults suit a school or a county.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests waiting for the writer before a new one is answered 503.
    pub queue: usize,
    /// Most requests the writer commits in one batch.
    pub batch: usize,
    /// Largest request body accepted (bytes); larger is 413.
    pub body_bytes: usize,
    /// How long one request may take before it is answered 408.
    pub request_timeout: Duration,
    /// How long a browser session lasts.
    pub session_ttl: chrono::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            queue: 4096,
            batch: 1024,
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            session_ttl: chrono::Duration::hours(12),
        }
    }
}

/// What the policy's facts are gathered from without reading the log per request: the
/// registry and every pairing (staff, child) with its active days.
pub struct Facts {
    /// Schools, terms, staff, children, incidents, retractions.
    pub registry: Registry,
    /// Every pairing by (staff, child).
    pub pairings: std::collections::HashMap<(String, String), Pairing>,
}

impl Facts {
    /// The facts of the store's log as it is now.
    pub fn read(store: &Store, plan: &dyn ReadPlan) -> Result<Facts, ReadFailure> {
        let registry = store
            .registry()
            .map_err(|e| ReadFailure::Fault(e.to_string()))?;
        let world = World::build(&plan.all_schools_timeline(store)?);
        let pairings = world
            .pairings()
            .map(|p| ((p.staff.clone(), p.child.clone()), p.clone()))
            .collect();
        Ok(Facts { registry, pairings })
    }

    /// Whether `staff` has ever been paired with `child`.
    pub fn ever_paired(&self, staff: &str, child: &str) -> bool {
        self.pairings
            .contains_key(&(staff.to_owned(), child.to_owned()))
    }

    /// Whether the pairing of `staff` and `child` is active on `day`.
    pub fn paired_on(&self, staff: &str, child: &str, day: chrono::NaiveDate) -> bool {
        self.pairings
            .get(&(staff.to_owned(), child.to_owned()))
            .is_some_and(|p| p.active_on(day))
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The access log could not be opened.
    #[error(transparent)]
    AccessLog(#[from] store::access_log::AccessLogError),
    /// The log could not be read for the registry and pairings.
    #[error("reading the log: {0}")]
    Read(#[from] ReadFailure),
}

/// Everything a handler reaches: shared, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

/// The service's state: the store, the writer's queue, the read plan, the access log.
pub struct App {
    /// The one open store.
    pub store: Arc<Store>,
    /// The writer's queue.
    pub writer: writer::WriterHandle,
    /// The read plan of the binary.
    pub plan: Arc<dyn ReadPlan>,
    /// The access log (one handle per process).
    pub access: AccessLog,
    /// The registry and pairings as of the last commit that changed them (refreshed by the
    /// writer after a batch with anything but care events).
    pub facts: Arc<RwLock<Arc<Facts>>>,
    /// Limits.
    pub limits: Limits,
}

impl AppState {
    /// After a read through the plan's kept state (a worklist): if the read registered state
    /// that waits for its first fold (`ReadPlan::unkept`), the writer's keeper folds it now,
    /// off the request.
    pub fn keep_up_after_read(&self) {
        if self.0.plan.unkept() {
            self.0.writer.keep_up();
        }
    }

    /// The state over an open store, with the writer task started on the current runtime.
    pub fn start(
        store: Arc<Store>,
        plan: Arc<dyn ReadPlan>,
        limits: Limits,
    ) -> Result<(AppState, writer::WriterTask), StartError> {
        let facts = Arc::new(RwLock::new(Arc::new(Facts::read(&store, &*plan)?)));
        let access = store.access_log()?;
        let refresh: writer::Refresh = {
            let (store, plan, facts) = (store.clone(), plan.clone(), facts.clone());
            Arc::new(move || match Facts::read(&store, &*plan) {
                Ok(fresh) => *facts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh),
                Err(e) => eprintln!("careledger serve: refreshing the registry failed: {e}"),
            })
        };
        let (writer, task) = writer::start(store.clone(), plan.clone(), refresh, &limits);
        Ok((
            AppState(Arc::new(App {
                store,
                writer,
                plan,
                access,
                facts,
                limits,
            })),
            task,
        ))
    }

    /// The registry and pairings as of the last commit that changed them.
    pub fn facts(&self) -> Arc<Facts> {
        self.0
            .facts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish, drains the writer's queue and returns once the last batch is
/// durable.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    task: writer::WriterTask,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router: Router = app(state.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // No request is left that could enqueue: close the queue, let the writer finish it.
    drop(state);
    task.finish().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs store work (or password hashing) on a blocking thread, never on the async ones.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Fault(format!("a blocking task failed: {e}")))?
}
