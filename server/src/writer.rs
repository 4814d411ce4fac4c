//! The single writer: every append of the service goes through one task that commits what
//! queued during the previous commit as one durable batch (group commit).
//!
//! Requests wait on a bounded channel, each with its own reply. The writer takes everything
//! queued (`recv_many`), validates each request in order against the log plus the requests
//! before it in the batch, seals its personal fields under the subject's key as `record` does
//! (the read plan's sealer; nothing for a store in clear), appends the accepted drafts with one
//! `Store::append` (one fsync sequence for the batch) and only then answers each request. A
//! full queue is refused at once (`WriteError::Busy`, the caller's 503). On stop the queue is
//! closed to new requests and what is in it is still committed.
//!
//! The writer is a thread of its own, not a task: every commit blocks on the store, and a
//! task would hand each one to tokio's blocking pool and back (docs/service.md, "The writer
//! on a thread of its own").
//!
//! After commits, the read plan's kept state is brought up to date off the request path
//! (`ReadPlan::committed`, by a keeper task woken by the writer and coalescing the commits of
//! `KEEP_EVERY`), so that a read after a burst of appends does not fold the burst itself.
//!
//! This module owns that loop; it must never answer a request before its batch is durable,
//! never hold an unbounded backlog, and never call the store on an async thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::{Registry, Source};
use ingest::{IngestErrors, Known, KnownEvent, MemoryKnown, StoreKnown};
use store::Store;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::policy::Decision;
use crate::{Limits, ReadPlan};

/// What one request asks the writer to record: `careledger record TYPE --json BODY`, by
/// `actor`, if `admit` lets it.
#[derive(Clone)]
pub struct RecordRequest {
    /// The event type (`talk_held`, …).
    pub kind: String,
    /// The wire object, as received.
    pub body: String,
    /// The logged-in staff member: the event's actor.
    pub actor: String,
    /// The authorisation of the validated event (the caller's `policy::authorize` on it),
    /// run by the writer after its own validation and before the event joins the batch.
    pub admit: Admission,
}

impl std::fmt::Debug for RecordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRequest")
            .field("kind", &self.kind)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Whether a validated event may be recorded by the request's caller: `Allow`, or the
/// decision to answer. It reads the event as validation made it and the log as validation
/// sees it (the store plus the batch's accepted events before it: a correction's target).
///
/// Why here and not in the handler: deciding needs the validated event (its children, its
/// day, a correction's target), and validating is what the writer does anyway, in order. A
/// handler that validated to decide made every record parse and validate twice (docs/service.md,
/// "Authorisation after the writer's validation").
pub type Admission = Arc<dyn Fn(&events::Draft, &dyn Known) -> Decision + Send + Sync>;

/// A whole CSV file of one event type, uploaded by a school admin (the roster and pairing
/// pages): appended whole or not at all, every row recorded by `actor`.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The file's name as the admin uploaded it (errors carry it).
    pub file: String,
    /// The event type of every row (the file's `<type>.csv`).
    pub kind: events::EventKind,
    /// The file's bytes, read by `ingest`'s CSV reader.
    pub bytes: Vec<u8>,
    /// The logged-in admin's staff member: every row must name them as its actor.
    pub actor: String,
}

/// What a committed import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Events appended (durable).
    pub appended: usize,
    /// Rows already in the log (same content), left out.
    pub already_present: usize,
}

/// What a committed request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Appended, durable, at this seq.
    Recorded {
        /// The event id.
        id: String,
        /// Its seq.
        seq: u64,
    },
    /// The same event is already in the log; nothing appended.
    AlreadyPresent,
}

/// Why a request was not recorded. Nothing of it was appended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The event is not valid: every problem, with field.
    #[error("{0}")]
    Invalid(IngestErrors),
    /// The store refused the batch as input (a time rule): the text says why.
    #[error("{0}")]
    Refused(String),
    /// The queue is full: try again shortly.
    #[error("the service is busy")]
    Busy,
    /// The writer has stopped (the service is shutting down).
    #[error("the service is shutting down")]
    Closed,
    /// The store failed (disk, damage): logged, not shown.
    #[error("{0}")]
    Fault(String),
    /// The caller may not record this event (the request's `Admission` said so): 403, or
    /// 404 where the event is out of the caller's scope.
    #[error("not allowed")]
    Denied(Decision),
}

/// The least time between two catch-ups of the plan's kept state: under a stream of commits
/// one catch-up folds what this many milliseconds appended, so keeping up costs a bounded
/// share of a core whatever the commit rate, and a read folds at most what came since.
pub const KEEP_EVERY: Duration = Duration::from_millis(500);

/// Called (on the writer's thread) after a batch that held anything but care events, so that
/// the facts the policy reads follow the log.
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

type Reply = oneshot::Sender<Result<Outcome, WriteError>>;

type ImportReply = oneshot::Sender<Result<Imported, WriteError>>;

/// Work that must not interleave with an append (an erasure: its event, then the destruction
/// of the key the writer seals under), run by the writer between two batches.
type Exclusive = Box<dyn FnOnce(&Store) + Send>;

enum Job {
    Record {
        request: RecordRequest,
        reply: Reply,
    },
    Import {
        request: ImportRequest,
        reply: ImportReply,
    },
    Exclusive(Exclusive),
    /// Sent by `WriterTask::finish`: close the queue, commit what is in it, end.
    Stop,
}

/// One queued request, as the batch sees it.
enum Work {
    Record(RecordRequest),
    Import(ImportRequest),
}

/// One request's answer.
#[derive(Clone)]
enum Done {
    Record(Outcome),
    Import(Imported),
}

/// The cloneable end handlers submit to.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    /// The keeper's wake-up (as after a commit).
    kick: Arc<Notify>,
}

impl WriterHandle {
    /// Wakes the keeper: the plan's kept state catches up with the log (`ReadPlan::committed`)
    /// off the request path, at most once per `KEEP_EVERY`. A read that found a part of it
    /// not kept yet (a school's first worklist page) asks for it here.
    pub fn keep_up(&self) {
        self.kick.notify_one();
    }

    /// Queues a request and waits until its batch is durable (or refused).
    pub async fn submit(&self, request: RecordRequest) -> Result<Outcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Record { request, reply })?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Queues a whole file and waits until its batch is durable (or the file refused, with
    /// nothing of it appended).
    pub async fn submit_import(&self, request: ImportRequest) -> Result<Imported, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Import { request, reply })?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Runs `work` on the writer's thread, after the batches queued before it
    /// and before any queued after: nothing is appended while it runs. For an erasure, whose
    /// event must be durable before the key is destroyed and no event sealed under that key
    /// may be appended in between. The policy's facts are refreshed after it.
    pub async fn exclusive<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Exclusive(Box::new(move |store| {
            let _ = reply.send(work(store));
        })))?;
        answer.await.map_err(|_| WriteError::Closed)
    }

    fn queue(&self, job: Job) -> Result<(), WriteError> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WriteError::Busy,
            mpsc::error::TrySendError::Closed(_) => WriteError::Closed,
        })
    }
}

/// The running writer: `finish` stops it after the queue is committed.
pub struct WriterTask {
    stop: mpsc::Sender<Job>,
    /// Dropped by the writer's thread when it ends (the error `finish` awaits).
    ended: oneshot::Receiver<()>,
    keeper: tokio::task::JoinHandle<()>,
}

impl WriterTask {
    /// Closes the queue to new requests, commits what is in it, and waits for the writer.
    pub async fn finish(self) {
        // Waits for room in a full queue rather than being refused: the writer drains it.
        let _ = self.stop.send(Job::Stop).await;
        let _ = self.ended.await;
        // The kept state is derived and in memory: a catch-up cut short loses nothing.
        self.keeper.abort();
    }
}

/// Starts the writer's thread and, on the current runtime, its keeper.
pub fn start(
    store: Arc<Store>,
    plan: Arc<dyn ReadPlan>,
    refresh: Refresh,
    limits: &Limits,
) -> (WriterHandle, WriterTask) {
    // The defaults hold two batches, so that the next batch queues while one commits.
    let (tx, rx) = mpsc::channel(limits.queue.max(1));
    let (ended_tx, ended) = oneshot::channel::<()>();
    let batch = limits.batch.max(1);
    let kick = Arc::new(Notify::new());
    let keeper = tokio::spawn(keep(store.clone(), plan.clone(), kick.clone()));
    let writer = Writer {
        store,
        plan,
        refresh,
        kick: kick.clone(),
    };
    // Without a thread there is no writer: failing to start one is the process's end, as
    // failing to start the runtime would be.
    std::thread::Builder::new()
        .name("careledger-writer".into())
        .spawn(move || {
            run(writer, rx, batch);
            drop(ended_tx);
        })
        .expect("the operating system starts the writer's thread");
    let handle = WriterHandle { tx, kick };
    let task = WriterTask {
        stop: handle.tx.clone(),
        ended,
        keeper,
    };
    (handle, task)
}

/// What the writer loop holds.
struct Writer {
    store: Arc<Store>,
    plan: Arc<dyn ReadPlan>,
    refresh: Refresh,
    /// Wakes the keeper after a commit that appended.
    kick: Arc<Notify>,
}

/// The keeper: after commits (at most once per `KEEP_EVERY`), the plan's kept state catches
/// up with the log on a blocking thread. A `Notify` holds one wake-up, so the commits made
/// while a catch-up runs or waits are taken by the next one.
async fn keep(store: Arc<Store>, plan: Arc<dyn ReadPlan>, kick: Arc<Notify>) {
    loop {
        kick.notified().await;
        let (s, p) = (store.clone(), plan.clone());
        let _ = tokio::task::spawn_blocking(move || p.committed(&s)).await;
        tokio::time::sleep(KEEP_EVERY).await;
    }
}

/// The writer's loop, on its own thread: takes what queued while the last commit ran (up to
/// `batch` jobs) and commits it, until `Job::Stop`; then commits what is still queued.
fn run(w: Writer, mut rx: mpsc::Receiver<Job>, batch: usize) {
    let mut jobs = Vec::with_capacity(batch);
    loop {
        if rx.blocking_recv_many(&mut jobs, batch) == 0 {
            return;
        }
        if let Some(at) = jobs.iter().position(|j| matches!(j, Job::Stop)) {
            jobs.remove(at);
            // Stopping: nothing new gets in; what is queued is still committed and answered.
            rx.close();
        }
        commit(&w, std::mem::take(&mut jobs));
    }
}

/// Runs what was taken from the queue in order: each run of records and imports as one
/// batch, each exclusive job alone between them.
fn commit(w: &Writer, jobs: Vec<Job>) {
    let mut batch = Vec::new();
    for job in jobs {
        match job {
            Job::Record { request, reply } => {
                batch.push((Work::Record(request), Answer::Record(reply)))
            }
            Job::Import { request, reply } => {
                batch.push((Work::Import(request), Answer::Import(reply)))
            }
            Job::Exclusive(work) => {
                commit_jobs(w, std::mem::take(&mut batch));
                if catch_unwind(AssertUnwindSafe(|| work(&w.store))).is_err() {
                    eprintln!("careledger serve: an exclusive job of the writer failed");
                }
                refresh(w);
                w.kick.notify_one();
            }
            Job::Stop => {}
        }
    }
    commit_jobs(w, batch);
}

/// Re-reads the facts the policy decides by; a panic there leaves the old ones in force.
fn refresh(w: &Writer) {
    if catch_unwind(AssertUnwindSafe(|| (w.refresh)())).is_err() {
        eprintln!("careledger serve: refreshing the writer's facts failed");
    }
}

/// Commits one batch and answers each job. A panic in the commit is answered as a fault to
/// every job of the batch (nothing of it is acknowledged), and the writer goes on.
fn commit_jobs(w: &Writer, jobs: Vec<(Work, Answer)>) {
    if jobs.is_empty() {
        return;
    }
    let (work, replies): (Vec<Work>, Vec<Answer>) = jobs.into_iter().unzip();
    let n = work.len();
    let results = match catch_unwind(AssertUnwindSafe(|| commit_work(&w.store, &*w.plan, work))) {
        Ok((results, changed)) => {
            if changed {
                // Before the answers: a request that follows sees the new registry.
                refresh(w);
            }
            if results.iter().any(|r| r.is_ok()) {
                w.kick.notify_one();
            }
            results
        }
        Err(_) => vec![Err(WriteError::Fault("the writer failed".into())); n],
    };
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that went away (timeout, closed connection) no longer waits: its event
        // is committed all the same.
        match (reply, result) {
            (Answer::Record(r), Ok(Done::Record(o))) => {
                let _ = r.send(Ok(o));
            }
            (Answer::Import(r), Ok(Done::Import(i))) => {
                let _ = r.send(Ok(i));
            }
            (Answer::Record(r), Err(e)) => {
                let _ = r.send(Err(e));
            }
            (Answer::Import(r), Err(e)) => {
                let _ = r.send(Err(e));
            }
            (Answer::Record(r), Ok(Done::Import(_))) => {
                let _ = r.send(Err(WriteError::Fault(
                    "a record answered as an import".into(),
                )));
            }
            (Answer::Import(r), Ok(Done::Record(_))) => {
                let _ = r.send(Err(WriteError::Fault(
                    "an import answered as a record".into(),
                )));
            }
        }
    }
}

enum Answer {
    Record(Reply),
    Import(ImportReply),
}

/// Reads an uploaded CSV file with `ingest`'s CSV reader against `known` and checks that
/// every row names `actor` (the logged-in admin) as its actor: the drafts with their lines,
/// or every problem. Used by the page before queueing and by the writer inside the batch.
pub fn read_import(
    request: &ImportRequest,
    known: &dyn Known,
    opts: &ingest::Options,
) -> Result<ingest::Parsed, IngestErrors> {
    let parsed = ingest::parse_csv(
        &request.file,
        Some(request.kind),
        &request.bytes,
        known,
        opts,
    )?;
    let errors: Vec<ingest::LineError> = parsed
        .drafts
        .iter()
        .filter(|(_, d)| d.actor != request.actor)
        .map(|(line, d)| ingest::LineError {
            file: request.file.clone(),
            sheet: None,
            line: Some(*line),
            column: None,
            field: Some("actor".to_owned()),
            expected: format!(
                "{}, the logged-in admin's staff id (the service records as you)",
                request.actor
            ),
            found: Some(format!("{:?}", d.actor)),
        })
        .collect();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(IngestErrors { errors })
    }
}

/// Validates the requests in order (each against the log plus the accepted requests before
/// it), seals the accepted ones (a store with encryption on) and appends them as one batch.
/// Returns each request's result and whether anything but care events was appended (the
/// policy's facts must then be refreshed).
pub fn commit_batch(
    store: &Store,
    plan: &dyn ReadPlan,
    requests: Vec<RecordRequest>,
) -> (Vec<Result<Outcome, WriteError>>, bool) {
    let (results, changed) = commit_work(
        store,
        plan,
        requests.into_iter().map(Work::Record).collect(),
    );
    let results = results
        .into_iter()
        .map(|r| match r {
            Ok(Done::Record(o)) => Ok(o),
            Ok(Done::Import(_)) => Err(WriteError::Fault("a record answered as an import".into())),
            Err(e) => Err(e),
        })
        .collect();
    (results, changed)
}

/// `commit_batch` over records and whole-file imports: an import's rows are accepted all
/// together or the import is refused with every problem.
fn commit_work(
    store: &Store,
    plan: &dyn ReadPlan,
    requests: Vec<Work>,
) -> (Vec<Result<Done, WriteError>>, bool) {
    let opts = ingest::Options {
        now: Utc::now(),
        preserve_recorded_at: false,
        head_recorded_at: store.head().recorded_at,
    };
    // Validation reads stored events in clear (an idempotent re-recording, a correction's
    // target), as `record` does.
    let open = |env| plan.open_to_validate(env);
    let base = StoreKnown::new(store).opening(&open);
    let mut sealer = plan.sealer(store);
    let mut known = BatchKnown {
        registry: base.registry().clone(),
        base: &base,
        batch: MemoryKnown::new(),
    };
    let mut results: Vec<Result<Done, WriteError>> = Vec::with_capacity(requests.len());
    let mut drafts = Vec::new();
    let mut owner = Vec::new();
    // Per import: how many of its rows were already present.
    let mut present = vec![0usize; requests.len()];
    for (i, w) in requests.iter().enumerate() {
        let parsed = match w {
            Work::Record(r) => {
                ingest::parse_record(&r.kind, &r.body, Some(&r.actor), &known, &opts)
            }
            Work::Import(r) => read_import(r, &known, &opts),
        };
        // A record names its caller as actor or none: a body naming someone else is refused
        // before anything else is said about it.
        if let Work::Record(r) = w
            && let Some(e) = other_actor(r, &parsed)
        {
            results.push(Err(WriteError::Invalid(e)));
            continue;
        }
        match (w, parsed) {
            (_, Err(e)) => results.push(Err(WriteError::Invalid(e))),
            (Work::Record(_), Ok(parsed)) if parsed.drafts.is_empty() => {
                results.push(Ok(Done::Record(Outcome::AlreadyPresent)))
            }
            (Work::Import(_), Ok(parsed)) if parsed.drafts.is_empty() => {
                results.push(Ok(Done::Import(Imported {
                    appended: 0,
                    already_present: parsed.already_present,
                })))
            }
            (_, Ok(parsed)) => {
                if let Work::Record(r) = w {
                    let decision = denial(r, &parsed, &known);
                    if decision != Decision::Allow {
                        results.push(Err(WriteError::Denied(decision)));
                        continue;
                    }
                }
                present[i] = parsed.already_present;
                let clear = parsed.into_drafts();
                // Validation of the requests after this one reads it in clear; the log gets
                // it sealed (an import all together or not at all).
                let mut stored = clear.clone();
                if let Some(sealer) = sealer.as_mut()
                    && let Err(e) = sealer.seal(&mut stored)
                {
                    results.push(Err(if e.bad_input {
                        WriteError::Refused(e.message)
                    } else {
                        WriteError::Fault(e.message)
                    }));
                    continue;
                }
                for (c, d) in clear.iter().zip(stored) {
                    known.push(c);
                    drafts.push(d);
                    owner.push(i);
                }
                // Filled in after the append.
                results.push(Err(WriteError::Closed));
            }
        }
    }
    if let Some(e) = base.take_error() {
        let fault = WriteError::Fault(format!("reading the store to validate: {e}"));
        return (vec![Err(fault); requests.len()], false);
    }
    if drafts.is_empty() {
        return (results, false);
    }
    let ids: Vec<String> = drafts.iter().map(|d| d.id.clone()).collect();
    // Care events change no registry fact, except an incident report (its child).
    let changes_facts = drafts.iter().any(|d| {
        matches!(d.event, events::Event::IncidentReported { .. })
            || !matches!(
                crate::policy::action_of(&d.event),
                crate::policy::Action::RecordCare | crate::policy::Action::RecordCounseling
            )
    });
    match store.append(drafts, Source::Cli) {
        Ok(appended) => {
            let seqs = seqs_of(&appended, &ids, store);
            for ((id, i), seq) in ids.into_iter().zip(owner).zip(seqs) {
                results[i] = match (&requests[i], &results[i]) {
                    (Work::Import(_), Ok(Done::Import(done))) => Ok(Done::Import(Imported {
                        appended: done.appended.saturating_add(1),
                        already_present: done.already_present,
                    })),
                    (Work::Import(_), _) => Ok(Done::Import(Imported {
                        appended: 1,
                        already_present: present[i],
                    })),
                    (Work::Record(_), _) => match seq {
                        Ok(Some(seq)) => Ok(Done::Record(Outcome::Recorded { id, seq })),
                        Ok(None) => Err(WriteError::Fault(format!("{id} not found after append"))),
                        Err(e) => Err(WriteError::Fault(e.to_string())),
                    },
                };
            }
            (results, changes_facts)
        }
        Err(e) => {
            let err = if e.kind() == store::ErrorKind::BadInput {
                WriteError::Refused(e.to_string())
            } else {
                WriteError::Fault(e.to_string())
            };
            // Nothing of the batch is in the log: no request of it is answered as a success —
            // not those whose events were in it, and not one answered "already present"
            // because its twin was earlier in the batch.
            for r in &mut results {
                if r.is_ok() {
                    *r = Err(err.clone());
                }
            }
            for i in owner {
                results[i] = Err(err.clone());
            }
            (results, false)
        }
    }
}

/// The first decision other than `Allow` over the events a record validated to, or `Allow`.
fn denial(r: &RecordRequest, parsed: &ingest::Parsed, known: &dyn Known) -> Decision {
    parsed
        .drafts
        .iter()
        .map(|(_, d)| (r.admit)(d, known))
        .find(|d| *d != Decision::Allow)
        .unwrap_or(Decision::Allow)
}

/// The problem of a record whose body names an actor other than the logged-in staff member
/// (the service sets the actor; a client never chooses it), if it does. A valid record's
/// draft carries the body's actor; otherwise the body is read again for it (the rare path of
/// a refused or already present record).
fn other_actor(
    r: &RecordRequest,
    parsed: &Result<ingest::Parsed, IngestErrors>,
) -> Option<IngestErrors> {
    let given = match parsed {
        Ok(p) if !p.drafts.is_empty() => p
            .drafts
            .iter()
            .map(|(_, d)| d.actor.as_str())
            .find(|a| *a != r.actor)
            .map(|a| serde_json::Value::String(a.to_owned())),
        _ => ingest::json::read_object(&r.body)
            .ok()
            .and_then(|obj| obj.get("actor").cloned())
            .filter(|a| a.as_str() != Some(r.actor.as_str())),
    }?;
    Some(IngestErrors {
        errors: vec![crate::error::request_line_error(
            "actor",
            "no actor, or the logged-in staff member's id (the service sets it)",
            Some(given.to_string()),
        )],
    })
}

/// The seq of each id appended, in order: when the store skipped none (the writer validated
/// them new, so it skips one only if another writer raced it) they are the seqs after the
/// previous head, in order; otherwise each is looked up.
fn seqs_of(
    appended: &store::Appended,
    ids: &[String],
    store: &Store,
) -> Vec<Result<Option<u64>, store::StoreError>> {
    if appended.skipped == 0 && appended.appended == ids.len() as u64 {
        let first = appended.head.seq + 1 - appended.appended;
        (first..=appended.head.seq).map(|s| Ok(Some(s))).collect()
    } else {
        ids.iter().map(|id| store.seq_of(id)).collect()
    }
}

/// The log as validation sees it during a batch: the store, plus the drafts accepted before.
struct BatchKnown<'a> {
    registry: Registry,
    base: &'a StoreKnown<'a>,
    batch: MemoryKnown,
}

impl BatchKnown<'_> {
    fn push(&mut self, d: &events::Draft) {
        self.registry.observe(&d.event);
        self.batch.push(&d.id, d.occurred_at, &d.actor, &d.event);
    }
}

impl Known for BatchKnown<'_> {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn event_by_id(&self, id: &str) -> Option<KnownEvent> {
        self.batch
            .event_by_id(id)
            .or_else(|| self.base.event_by_id(id))
    }

    fn pairings(&self, staff: &str, child: &str) -> Vec<(String, chrono::NaiveDate)> {
        let mut p = self.base.pairings(staff, child);
        p.extend(self.batch.pairings(staff, child));
        p
    }

    fn people(&self) -> ingest::people::People {
        self.base.people()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        // A queue of one that nobody drains: the first request waits, the second is refused.
        let (tx, _rx) = mpsc::channel(1);
        let handle = WriterHandle {
            tx,
            kick: Arc::default(),
        };
        let request = RecordRequest {
            kind: "talk_held".into(),
            body: "{}".into(),
            actor: "t".into(),
            admit: Arc::new(|_, _| Decision::Allow),
        };
        let waiting = {
            let (h, r) = (handle.clone(), request.clone());
            tokio::spawn(async move { h.submit(r).await })
        };
        tokio::task::yield_now().await;
        while handle.tx.capacity() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            handle.submit(request).await,
            Err(WriteError::Busy)
        ));
        waiting.abort();
    }
}
