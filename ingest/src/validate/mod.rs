//! Validation of one batch (a file, or one `record` call), line by line in log order.
//!
//! Every line goes through the same path whatever its format: envelope fields, strict dates
//! and instants, decoding into `events::Event`, then impossible values and references against
//! the log (`Known`) plus the lines accepted before it in the batch. All problems of the batch
//! are collected. This module owns the batch and that path; the rules live in its children,
//! one idea each: `envelope` (envelope fields and times), `registry` (registry events),
//! `care` (care events, pairings, incidents), `amend` (corrections and retractions) and
//! `bounds` (plausible values). It must never write anything, and it must not let one bad
//! line hide the next ones (a failed registration still registers its id, so the lines that
//! use it are not reported as well).

mod amend;
pub mod bounds;
mod care;
mod envelope;
mod registry;
mod text;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use events::Draft;
use events::registry::Entry;
use events::{Event, EventKind, Registry};
use serde_json::{Map, Value};

use crate::error::{IngestErrors, LineError, found_value, quote};
use crate::known::{Known, KnownEvent};
use crate::shape;
use crate::wire::{self, Problem};

/// How a batch is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The time the batch is validated: nothing may have occurred (or, in a migration, been
    /// recorded) after it.
    pub now: DateTime<Utc>,
    /// A migration of paper records: every line carries its own `recorded_at`.
    pub preserve_recorded_at: bool,
    /// The `recorded_at` of the log's head: a migration may not go back before it.
    pub head_recorded_at: Option<DateTime<Utc>>,
}

impl Options {
    /// An ordinary import at `now`.
    pub fn new(now: DateTime<Utc>) -> Options {
        Options {
            now,
            preserve_recorded_at: false,
            head_recorded_at: None,
        }
    }
}

/// A valid batch, ready for `Store::append`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The new events with the line each came from, in input order.
    pub drafts: Vec<(usize, Draft)>,
    /// Lines whose event (same id, same content) is already in the log: left out.
    pub already_present: usize,
    /// Lines repeating an event of an earlier line of the same input: left out.
    pub repeated: usize,
}

impl Parsed {
    /// The drafts alone, for `Store::append`.
    pub fn into_drafts(self) -> Vec<Draft> {
        self.drafts.into_iter().map(|(_, d)| d).collect()
    }
}

/// Where a line came from: CSV cells are text, so values a correction changes must be typed
/// from the target's shape; JSON values are taken as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A JSONL line: values are typed as written.
    Json,
    /// A CSV row (rules §5.11): every cell is text, typed from the shape it fills.
    Csv,
}

/// The state of one batch being validated.
pub struct Batch<'a> {
    file: String,
    /// The workbook sheet being read, which errors carry (`None` outside workbooks).
    sheet: Option<String>,
    known: &'a dyn Known,
    opts: Options,
    /// The log's registry followed through the batch's accepted lines.
    registry: Registry,
    /// Events accepted in this batch: id → index in `parsed.drafts` (the drafts hold the
    /// events; a batch can be millions of lines, so they are not copied).
    events: HashMap<String, usize>,
    /// Pairings accepted in this batch, as in `Known::pairings`.
    pairings: HashMap<(String, String), Vec<(String, NaiveDate)>>,
    /// Explicit ids of lines that failed: amendments naming them are not reported again.
    failed_ids: HashSet<String>,
    /// The last `recorded_at` of a migration so far.
    last_recorded: Option<DateTime<Utc>>,
    errors: Vec<LineError>,
    parsed: Parsed,
}

/// What a line's envelope fields said.
struct Envelope0 {
    kind: Option<EventKind>,
    id: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    actor: Option<String>,
    /// The line's own `recorded_at` (a migration), read but not yet checked for order.
    recorded_at: Option<DateTime<Utc>>,
}

/// Whether the semantic checks look at a new event or at an event as a correction leaves it.
#[derive(Clone, Copy)]
enum Mode<'c> {
    New,
    Corrected(&'c BTreeSet<String>),
}

impl<'a> Batch<'a> {
    /// A batch read from `file` (the name errors carry) against the log `known`.
    pub fn new(file: impl Into<String>, known: &'a dyn Known, opts: Options) -> Batch<'a> {
        Batch {
            file: file.into(),
            sheet: None,
            registry: known.registry().clone(),
            known,
            opts,
            events: HashMap::new(),
            pairings: HashMap::new(),
            failed_ids: HashSet::new(),
            last_recorded: None,
            errors: Vec::new(),
            parsed: Parsed {
                drafts: Vec::new(),
                already_present: 0,
                repeated: 0,
            },
        }
    }

    /// The file name errors carry.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Sets the workbook sheet the next lines come from (the errors carry it).
    pub fn set_sheet(&mut self, sheet: Option<String>) {
        self.sheet = sheet;
    }

    /// The log the batch is checked against.
    pub fn known(&self) -> &'a dyn Known {
        self.known
    }

    /// The lines accepted so far, in input order.
    pub fn accepted(&self) -> &[(usize, Draft)] {
        &self.parsed.drafts
    }

    /// Drops the problems reported since the first `from` ones that `redundant` says another
    /// problem of the same line already explains.
    pub fn drop_errors_since(&mut self, from: usize, redundant: impl Fn(&LineError) -> bool) {
        let mut i = from.min(self.errors.len());
        while i < self.errors.len() {
            if redundant(&self.errors[i]) {
                self.errors.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// How many problems were reported so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The problems reported since the first `from` ones, to be placed in their columns.
    pub fn errors_since(&mut self, from: usize) -> &mut [LineError] {
        let from = from.min(self.errors.len());
        &mut self.errors[from..]
    }

    /// Records a problem of a line (or of the file when `line` is `None`).
    pub fn report(&mut self, line: Option<usize>, p: Problem) {
        self.errors.push(LineError {
            file: self.file.clone(),
            sheet: self.sheet.clone(),
            line,
            column: None,
            field: p.field,
            expected: p.expected,
            found: p.found,
        });
    }

    /// The valid batch, or every problem found.
    pub fn finish(self) -> Result<Parsed, IngestErrors> {
        if self.errors.is_empty() {
            Ok(self.parsed)
        } else {
            Err(IngestErrors {
                errors: self.errors,
            })
        }
    }

    /// Validates one wire line (an object: envelope fields and payload side by side) and, if
    /// it is valid, accepts it into the batch.
    ///
    /// A line about a confidential event (a counseling session, or a correction of one)
    /// never has a found value quoted in its errors: a shifted CSV column or a value in the
    /// wrong field would put note text there.
    pub fn line(&mut self, line: usize, obj: Map<String, Value>, origin: Origin) {
        let start = self.errors.len();
        let confidential = self.is_confidential(&obj);
        self.check_line(line, obj, origin);
        if confidential {
            for e in &mut self.errors[start..] {
                e.found = e.found.take().map(hide_found);
            }
        }
    }

    /// Whether a line is about an event with confidential fields: its type has some, or it
    /// amends an event (of the log or of the batch) whose type has some.
    fn is_confidential(&self, obj: &Map<String, Value>) -> bool {
        let kind_of = |v: Option<&Value>| v.and_then(Value::as_str).and_then(EventKind::parse);
        let has_confidential = |k: EventKind| k.has_confidential_fields();
        if kind_of(obj.get("type")).is_some_and(has_confidential) {
            return true;
        }
        obj.get("target")
            .and_then(Value::as_str)
            .and_then(|t| self.batch_event(t).or_else(|| self.known.event_by_id(t)))
            .is_some_and(|t| has_confidential(t.kind))
    }

    fn check_line(&mut self, line: usize, mut obj: Map<String, Value>, origin: Origin) {
        let mut problems = Vec::new();
        let env = self.envelope(&mut obj, &mut problems);
        let Some(kind) = env.kind else {
            problems.extend(self.times(env.occurred_at, env.recorded_at).2);
            self.fail(line, problems, None, &obj, env.id);
            return;
        };
        let mut payload = Value::Object(obj);
        let envelope_problems = problems.len();
        wire::normalize(
            shape::of(kind),
            &mut payload,
            &mut Vec::new(),
            &mut problems,
        );
        if origin == Origin::Csv && kind == EventKind::Corrected {
            self.type_csv_changes(&mut payload);
        }
        problems.extend(text::check(&payload));
        let event = match wire::decode(kind, payload.clone()) {
            Ok(e) if problems.is_empty() => e,
            decoded => {
                if let Err(more) = decoded {
                    problems.extend(more);
                }
                sort_by_schema(kind, &mut problems[envelope_problems..]);
                let times = self.times(env.occurred_at, env.recorded_at).2;
                problems.splice(envelope_problems..envelope_problems, times);
                self.fail(line, problems, Some(kind), &payload, env.id);
                return;
            }
        };
        let (Some(occurred_at), Some(actor)) = (env.occurred_at, env.actor) else {
            problems.extend(self.times(env.occurred_at, env.recorded_at).2);
            self.fail(line, problems, Some(kind), &payload, env.id);
            return;
        };
        let explicit = env.id.is_some();
        let id = env
            .id
            .unwrap_or_else(|| wire::derive_id(occurred_at, &actor, &event));

        // Idempotency: the same event again is left out; another event under a used id is not.
        let earlier = self.batch_event(&id);
        let in_batch = earlier.is_some();
        if let Some(prev) = earlier.or_else(|| self.known.event_by_id(&id)) {
            let whose = if in_batch {
                "an earlier line"
            } else {
                "the log"
            };
            if prev.event == event && prev.occurred_at == occurred_at && prev.actor != actor {
                // The actor is part of the event: the same payload by someone else under
                // this id is a conflict, not a repeat.
                self.report(
                    Some(line),
                    Problem::field(
                        "actor",
                        format!(
                            "{}, the actor of the event with this id (in {whose})",
                            prev.actor
                        ),
                        Some(quote(&actor)),
                    ),
                );
            } else if prev.event == event && prev.occurred_at == occurred_at {
                if in_batch {
                    self.parsed.repeated += 1;
                } else {
                    self.parsed.already_present += 1;
                }
            } else {
                self.report(
                    Some(line),
                    Problem::field(
                        "id",
                        format!("an id not already used by a different event (in {whose})"),
                        Some(quote(&id)),
                    ),
                );
            }
            return;
        }

        let (recorded, recorded_at, times) = self.times(Some(occurred_at), env.recorded_at);
        problems.extend(times);
        self.check(
            &event,
            &payload,
            occurred_at,
            recorded,
            Mode::New,
            &mut problems,
        );
        let draft = Draft {
            sealed: None,
            id,
            occurred_at,
            actor,
            event,
            recorded_at,
        };
        if let Some(p) = self.too_large(&draft, recorded) {
            problems.push(p);
        }
        if !problems.is_empty() {
            let id = explicit.then_some(draft.id);
            self.fail(line, problems, Some(kind), &payload, id);
            return;
        }
        self.accept(line, draft);
    }

    /// An event accepted earlier in this batch.
    fn batch_event(&self, id: &str) -> Option<KnownEvent> {
        let (_, d) = &self.parsed.drafts[*self.events.get(id)?];
        Some(KnownEvent {
            kind: d.event.kind(),
            occurred_at: d.occurred_at,
            actor: d.actor.clone(),
            event: d.event.clone(),
        })
    }

    fn accept(&mut self, line: usize, draft: Draft) {
        self.registry.observe(&draft.event);
        if let Event::PairingAssigned {
            staff, child, from, ..
        } = &draft.event
        {
            self.pairings
                .entry((staff.clone(), child.clone()))
                .or_default()
                .push((draft.id.clone(), *from));
        }
        self.events
            .insert(draft.id.clone(), self.parsed.drafts.len());
        if let Some(r) = draft.recorded_at {
            self.last_recorded = Some(r);
        }
        self.parsed.drafts.push((line, draft));
    }

    /// Reports a failed line. What the line registers is still registered (from the raw
    /// payload, best effort), and its explicit id remembered, so that later lines using it
    /// are not reported for a fault that is this line's.
    fn fail(
        &mut self,
        line: usize,
        problems: Vec<Problem>,
        kind: Option<EventKind>,
        payload: &impl PayloadLike,
        id: Option<String>,
    ) {
        for p in problems {
            self.report(Some(line), p);
        }
        if let Some(id) = id {
            self.failed_ids.insert(id);
        }
        let text = |k: &str| payload.text(k);
        let entry = match kind {
            Some(EventKind::SchoolRegistered) => text("school").map(|s| {
                (
                    s,
                    Entry::School {
                        county: String::new(),
                    },
                )
            }),
            Some(EventKind::TermDefined) => match (text("school"), text("term")) {
                (Some(school), Some(term)) => Some((String::new(), Entry::Term { school, term })),
                _ => None,
            },
            Some(EventKind::StaffJoined) => text("staff").map(|s| {
                (
                    s,
                    Entry::Staff {
                        school: text("school").unwrap_or_default(),
                    },
                )
            }),
            Some(EventKind::ChildRegistered) => text("child").map(|c| {
                (
                    c,
                    Entry::Child {
                        school: text("school").unwrap_or_default(),
                    },
                )
            }),
            Some(EventKind::IncidentReported) => text("incident").map(|i| {
                (
                    i,
                    Entry::Incident {
                        child: text("child").unwrap_or_default(),
                    },
                )
            }),
            _ => None,
        };
        if let Some((id, entry)) = entry {
            // Only fill a gap: a failed duplicate must not overwrite the real entry.
            let exists = match &entry {
                Entry::School { .. } => self.registry.school_county(&id).is_some(),
                Entry::Staff { .. } => self.registry.staff_school(&id).is_some(),
                Entry::Child { .. } => self.registry.child_school(&id).is_some(),
                Entry::Incident { .. } => self.registry.incident_child(&id).is_some(),
                Entry::Term { school, term } => self.registry.has_term(school, term),
                Entry::Retracted { .. } => true,
            };
            if !exists {
                self.registry.insert(id, entry);
            }
        }
    }

    fn school_ok(&self, school: &str) -> bool {
        self.registry.school_county(school).is_some()
    }

    fn staff_ok(&self, staff: &str) -> bool {
        self.registry.staff_school(staff).is_some()
    }

    fn child_ok(&self, child: &str) -> bool {
        self.registry.child_school(child).is_some()
    }

    /// Impossible values and references of a decoded event. In `Corrected` mode the event is
    /// an earlier one with a correction's changes applied: registrations are not new, and
    /// only problems in changed fields are reported, under `changes.`.
    fn check(
        &self,
        event: &Event,
        payload: &Value,
        occurred_at: DateTime<Utc>,
        recorded: DateTime<Utc>,
        mode: Mode<'_>,
        problems: &mut Vec<Problem>,
    ) {
        let new = matches!(mode, Mode::New);
        let mut out: Vec<Problem> = Vec::new();
        match event {
            Event::Corrected {
                target, changes, ..
            } => {
                if new {
                    self.check_correction(target, changes, recorded, &mut out);
                }
            }
            Event::Retracted { target, .. } => {
                if new {
                    self.check_target(target, &mut out);
                }
            }
            e => {
                // The id a registration introduces ends up in file names and spreadsheets.
                if let Some(key) = amend::identity(e.kind())
                    && let Some(Value::String(id)) = payload.get(key)
                    && let Some(p) = wire::check_id(key, id)
                {
                    out.push(p);
                }
                if !self.check_registry(e, payload, occurred_at, mode, &mut out) {
                    self.check_care(e, recorded, new, &mut out);
                }
                out.extend(bounds::check(e));
            }
        }
        match mode {
            Mode::New => problems.extend(out),
            Mode::Corrected(changed) => problems.extend(
                out.into_iter()
                    .filter(|p| changed.contains(top_field(p)))
                    .map(|p| p.under("changes")),
            ),
        }
    }
}

/// What an error of a confidential line says instead of the value it found ("nothing" says
/// no value and stays).
pub fn hide_found(found: String) -> String {
    if found == "nothing" {
        found
    } else {
        CONFIDENTIAL_FOUND.to_owned()
    }
}

/// The found part of an error about a counseling session (or a correction of one).
pub const CONFIDENTIAL_FOUND: &str = "a value not shown (counseling sessions are confidential)";

/// Puts payload problems in the schema's field order (unknown fields last), whatever order
/// the input or the decoder met them in; problems of one field keep their order.
fn sort_by_schema(kind: EventKind, problems: &mut [Problem]) {
    let fields = shape::of(kind).field_names();
    problems.sort_by_key(|p| {
        let top = top_field(p);
        fields.iter().position(|f| *f == top).unwrap_or(usize::MAX)
    });
}

/// The top-level field a problem is in (`guardian` for `guardian.age`), or "".
fn top_field(p: &Problem) -> &str {
    p.field
        .as_deref()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("")
}

/// A reference problem: the id is unknown (or, for a registration, already known).
fn refp(field: &str, expected: &str, id: &str) -> Problem {
    Problem::field(field, expected, Some(quote(id)))
}

fn found_or_nothing(field: &str, v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), |v| found_value(field, v))
}

/// Read access to a line's payload fields, for registering what a failed line would have.
trait PayloadLike {
    fn text(&self, key: &str) -> Option<String>;
}

impl PayloadLike for Value {
    fn text(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_owned)
    }
}

impl PayloadLike for Map<String, Value> {
    fn text(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_owned)
    }
}
