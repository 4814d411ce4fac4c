//! Validation of one batch (a file, or one `record` call), line by line in log order.
//!
//! Every line goes through the same path whatever its format: envelope fields, strict dates
//! and instants, decoding into `events::Event`, then impossible values and references against
//! the log (`Known`) plus the lines accepted before it in the batch. All problems of the batch
//! are collected. This module owns those rules; it must never write anything, and it must not
//! let one bad line hide the next ones (a failed registration still registers its id, so the
//! lines that use it are not reported as well).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use events::Draft;
use events::registry::Entry;
use events::{Envelope, Event, EventKind, Hash, Registry, SCHEMA, Source, time};
use serde_json::{Map, Value};
use store::log::MAX_EVENT_BYTES;

use crate::error::{IngestErrors, LineError, found_value, quote};
use crate::known::{Known, KnownEvent};
use crate::shape::{self, Shape};
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
    Json,
    Csv,
}

/// The state of one batch being validated.
pub struct Batch<'a> {
    file: String,
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

    /// Records a problem of a line (or of the file when `line` is `None`).
    pub fn report(&mut self, line: Option<usize>, p: Problem) {
        self.errors.push(LineError {
            file: self.file.clone(),
            line,
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
    pub fn line(&mut self, line: usize, mut obj: Map<String, Value>, origin: Origin) {
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
            if prev.event == event && prev.occurred_at == occurred_at {
                if in_batch {
                    self.parsed.repeated += 1;
                } else {
                    self.parsed.already_present += 1;
                }
            } else {
                let whose = if in_batch {
                    "an earlier line"
                } else {
                    "the log"
                };
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

    /// Takes the envelope fields out of a line and checks them.
    fn envelope(&self, obj: &mut Map<String, Value>, problems: &mut Vec<Problem>) -> Envelope0 {
        let kind = match obj.remove("type") {
            Some(Value::String(s)) => {
                let k = EventKind::parse(&s);
                if k.is_none() {
                    problems.push(Problem::field(
                        "type",
                        "a known event type",
                        Some(quote(&s)),
                    ));
                }
                k
            }
            other => {
                problems.push(Problem::field(
                    "type",
                    "a known event type",
                    Some(found_or_nothing("type", other.as_ref())),
                ));
                None
            }
        };
        let id = match obj.remove("id") {
            None => None,
            Some(Value::String(s)) => match wire::check_id("id", &s) {
                Some(p) => {
                    problems.push(p);
                    None
                }
                None => Some(s),
            },
            Some(v) => {
                problems.push(Problem::field(
                    "id",
                    "a non-empty text of at most 128 characters without control characters",
                    Some(found_value("id", &v)),
                ));
                None
            }
        };
        let occurred_at = instant_field("occurred_at", obj.remove("occurred_at"), problems);
        let actor = match obj.remove("actor") {
            Some(Value::String(s)) => match wire::check_id("actor", &s) {
                Some(p) => {
                    problems.push(p);
                    None
                }
                None => Some(s),
            },
            other => {
                problems.push(Problem::field(
                    "actor",
                    "the id of who recorded it (a staff id or an account name)",
                    Some(found_or_nothing("actor", other.as_ref())),
                ));
                None
            }
        };
        let recorded_at = self.read_recorded_at(obj.remove("recorded_at"), problems);
        Envelope0 {
            kind,
            id,
            occurred_at,
            actor,
            recorded_at,
        }
    }

    /// The time a new line counts as recorded (its own `recorded_at` in a migration, else
    /// `now`) and the problems of its times: a migration's `recorded_at` must not be in the
    /// future, before the previous line's or before the log's head; nothing may have occurred
    /// after it is recorded. Lines already in the log are not checked (a re-import of an
    /// export is a no-op, not a list of times gone by).
    fn times(
        &self,
        occurred_at: Option<DateTime<Utc>>,
        recorded_at: Option<DateTime<Utc>>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>, Vec<Problem>) {
        let now = self.opts.now;
        let mut problems = Vec::new();
        let recorded_at = recorded_at.filter(|&t| {
            let shown = Some(quote(&time::format_local(t)));
            let expected = if t > now {
                format!(
                    "a time not in the future (now is {})",
                    time::format_local(now)
                )
            } else if let Some(prev) = self.last_recorded
                && t < prev
            {
                format!(
                    "a time not before the previous line's recorded_at ({})",
                    time::format_local(prev)
                )
            } else if let Some(head) = self.opts.head_recorded_at
                && t < head
            {
                format!(
                    "a time not before the last recorded_at in the log ({})",
                    time::format_local(head)
                )
            } else {
                return true;
            };
            problems.push(Problem::field("recorded_at", expected, shown));
            false
        });
        let recorded = recorded_at.unwrap_or(now);
        if let Some(t) = occurred_at
            && t > recorded
        {
            let when = if recorded_at.is_some() {
                "its recorded_at"
            } else {
                "now"
            };
            problems.push(Problem::field(
                "occurred_at",
                format!(
                    "a time not later than when it is recorded ({when}, {})",
                    time::format_local(recorded)
                ),
                Some(quote(&time::format_local(t))),
            ));
        }
        (recorded, recorded_at, problems)
    }

    /// Reads `recorded_at`: forbidden unless migrating, then required on every line.
    fn read_recorded_at(
        &self,
        v: Option<Value>,
        problems: &mut Vec<Problem>,
    ) -> Option<DateTime<Utc>> {
        if !self.opts.preserve_recorded_at {
            if let Some(v) = v {
                problems.push(Problem::field(
                    "recorded_at",
                    "no recorded_at (the store sets it; a migration of paper records uses --preserve-recorded-at)",
                    Some(found_value("recorded_at", &v)),
                ));
            }
            return None;
        }
        let Some(v) = v else {
            problems.push(Problem::field(
                "recorded_at",
                format!(
                    "a recorded_at on every line of a migration ({})",
                    Shape::Time
                ),
                Some("nothing".to_owned()),
            ));
            return None;
        };
        instant_field("recorded_at", Some(v), problems)
    }

    /// The store refuses an envelope larger than `MAX_EVENT_BYTES`; say so on the line.
    fn too_large(&self, d: &Draft, recorded: DateTime<Utc>) -> Option<Problem> {
        let env = Envelope {
            schema: SCHEMA,
            seq: u64::MAX,
            id: d.id.clone(),
            recorded_at: recorded,
            occurred_at: d.occurred_at,
            actor: d.actor.clone(),
            source: if self.opts.preserve_recorded_at {
                Source::Migration
            } else {
                // As the binary names it: the file name without its folder.
                Source::Import(
                    std::path::Path::new(&self.file)
                        .file_name()
                        .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned()),
                )
            },
            event: d.event.clone(),
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        };
        let bytes = env.encode_body().len();
        (bytes > MAX_EVENT_BYTES).then(|| Problem {
            field: None,
            expected: format!("an event of at most {MAX_EVENT_BYTES} bytes once stored"),
            found: Some(format!("{bytes} bytes (shorten its texts)")),
        })
    }

    /// Impossible values and references of a decoded event. In `Corrected` mode the event is
    /// an earlier one with a correction's changes applied: registrations are not new, and
    /// only problems in changed fields are reported.
    fn check(
        &self,
        event: &Event,
        payload: &Value,
        occurred_at: DateTime<Utc>,
        recorded: DateTime<Utc>,
        mode: Mode<'_>,
        problems: &mut Vec<Problem>,
    ) {
        let reg = &self.registry;
        let new = matches!(mode, Mode::New);
        let mut out: Vec<Problem> = Vec::new();
        let school_ok = |s: &str| reg.school_county(s).is_some();
        let staff_ok = |s: &str| reg.staff_school(s).is_some();
        let child_ok = |c: &str| reg.child_school(c).is_some();

        match event {
            Event::SchoolRegistered { school, .. } => {
                if new && school_ok(school) {
                    out.push(refp("school", "a school id not yet registered", school));
                }
            }
            Event::TermDefined {
                school,
                term,
                starts_on,
                ends_on,
            } => {
                if !school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                } else if new && reg.has_term(school, term.as_str()) {
                    out.push(refp(
                        "term",
                        "a term not yet defined for this school",
                        term.as_str(),
                    ));
                }
                if ends_on < starts_on {
                    let blame_start = matches!(mode, Mode::Corrected(c)
                        if c.contains("starts_on") && !c.contains("ends_on"));
                    out.push(if blame_start {
                        Problem::field(
                            "starts_on",
                            format!("a date on or before ends_on ({ends_on})"),
                            Some(quote(&starts_on.to_string())),
                        )
                    } else {
                        Problem::field(
                            "ends_on",
                            format!("a date on or after starts_on ({starts_on})"),
                            Some(quote(&ends_on.to_string())),
                        )
                    });
                }
            }
            Event::PolicyAdopted { school, policy, .. } => {
                if !school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                }
                for p in policy.problems() {
                    let field = format!("policy.{}", p.field);
                    let path: Vec<&str> = field.split('.').collect();
                    // As written in the input; a section left out shows the default's value.
                    let found = wire::value_at(payload, &path)
                        .cloned()
                        .or_else(|| {
                            let as_json = serde_json::to_value(policy).ok()?;
                            wire::value_at(&as_json, &path[1..]).cloned()
                        })
                        .map(|v| found_value(&field, &v));
                    out.push(Problem::field(field, p.expected, found));
                }
            }
            Event::StaffJoined { staff, school, .. } => {
                if !school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                }
                if new && staff_ok(staff) {
                    out.push(refp("staff", "a staff id not yet registered", staff));
                }
            }
            Event::ChildRegistered(r) => {
                if !school_ok(&r.school) {
                    out.push(refp("school", "a registered school", &r.school));
                }
                if new && child_ok(&r.child) {
                    out.push(refp("child", "a child id not yet registered", &r.child));
                }
                let registered_on = time::local_date(occurred_at);
                if r.birth_date > registered_on {
                    out.push(Problem::field(
                        "birth_date",
                        format!("a date not after the registration ({registered_on})"),
                        Some(quote(&r.birth_date.to_string())),
                    ));
                }
            }
            Event::ChildUpdated { child, changes } => {
                if !child_ok(child) {
                    out.push(refp("child", "a registered child", child));
                }
                if let Some(s) = &changes.school
                    && !school_ok(s)
                {
                    out.push(refp("changes.school", "a registered school", s));
                }
                if **changes == events::event::ChildChanges::default() {
                    out.push(Problem::field(
                        "changes",
                        "at least one changed field",
                        Some("an empty object".to_owned()),
                    ));
                }
            }
            Event::PairingEnded {
                staff, child, on, ..
            } => {
                if !staff_ok(staff) {
                    out.push(refp("staff", "a registered staff member", staff));
                }
                if !child_ok(child) {
                    out.push(refp("child", "a registered child", child));
                }
                if staff_ok(staff) && child_ok(child) {
                    let starts = self.pairing_starts(staff, child);
                    match starts.iter().min() {
                        None => out.push(Problem::field(
                            "child",
                            format!("a child paired with {staff} (no pairing_assigned found)"),
                            Some(quote(child)),
                        )),
                        Some(first) if on < first => out.push(Problem::field(
                            "on",
                            format!("a date on or after the pairing's start ({first})"),
                            Some(quote(&on.to_string())),
                        )),
                        Some(_) => {}
                    }
                }
            }
            Event::StaffLeft { staff, .. } => {
                if !staff_ok(staff) {
                    out.push(refp("staff", "a registered staff member", staff));
                }
            }
            Event::IncidentNotified {
                staff,
                incident,
                notified_at,
                ..
            } => {
                if !staff_ok(staff) {
                    out.push(refp("staff", "a registered staff member", staff));
                }
                if reg.incident_child(incident).is_none() {
                    out.push(refp("incident", "a reported incident", incident));
                }
                if *notified_at > recorded {
                    out.push(Problem::field(
                        "notified_at",
                        format!(
                            "a time not later than when it is recorded ({})",
                            time::format_local(recorded)
                        ),
                        Some(quote(&time::format_local(*notified_at))),
                    ));
                }
            }
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
            other => {
                // Everything else names a staff member and children directly.
                if let Some(s) = other.staff()
                    && !staff_ok(s)
                {
                    out.push(refp("staff", "a registered staff member", s));
                }
                let children = other.children();
                let many = matches!(other, Event::ActivityHeld { .. });
                for (i, c) in children.iter().enumerate() {
                    if !child_ok(c) {
                        let field = if many {
                            format!("children.{i}")
                        } else {
                            "child".to_owned()
                        };
                        out.push(refp(&field, "a registered child", c));
                    }
                }
                if many && children.is_empty() {
                    out.push(Problem::field(
                        "children",
                        "at least one child",
                        Some("an empty list".to_owned()),
                    ));
                }
                if let Event::IncidentReported {
                    incident,
                    happened_at,
                    ..
                } = other
                {
                    if new && reg.incident_child(incident).is_some() {
                        out.push(refp(
                            "incident",
                            "an incident id not yet reported",
                            incident,
                        ));
                    }
                    if *happened_at > recorded {
                        out.push(Problem::field(
                            "happened_at",
                            format!(
                                "a time not later than when it is recorded ({})",
                                time::format_local(recorded)
                            ),
                            Some(quote(&time::format_local(*happened_at))),
                        ));
                    }
                }
            }
        }
        match mode {
            Mode::New => problems.extend(out),
            Mode::Corrected(changed) => problems.extend(
                out.into_iter()
                    .filter(|p| {
                        let top = p
                            .field
                            .as_deref()
                            .unwrap_or("")
                            .split('.')
                            .next()
                            .unwrap_or("");
                        changed.contains(top)
                    })
                    .map(|p| p.under("changes")),
            ),
        }
    }

    /// The starts of the live pairings of a staff member and child, log and batch.
    fn pairing_starts(&self, staff: &str, child: &str) -> Vec<NaiveDate> {
        let key = (staff.to_owned(), child.to_owned());
        self.known
            .pairings(staff, child)
            .into_iter()
            .chain(self.pairings.get(&key).cloned().unwrap_or_default())
            .filter(|(id, _)| !self.registry.is_retracted(id))
            .map(|(_, from)| from)
            .collect()
    }

    /// The event an amendment names: it must exist, not be an amendment, not be retracted.
    fn check_target(&self, target: &str, out: &mut Vec<Problem>) -> Option<KnownEvent> {
        let found = self
            .batch_event(target)
            .or_else(|| self.known.event_by_id(target));
        let Some(t) = found else {
            if !self.failed_ids.contains(target) {
                out.push(Problem::field(
                    "target",
                    "the id of an event in the log or earlier in this input",
                    Some(quote(target)),
                ));
            }
            return None;
        };
        if matches!(t.kind, EventKind::Corrected | EventKind::Retracted) {
            out.push(Problem::field(
                "target",
                "an event that is not itself a correction or a retraction",
                Some(format!("{} (a {})", quote(target), t.kind)),
            ));
            return None;
        }
        if self.registry.is_retracted(target) {
            out.push(Problem::field(
                "target",
                "an event that has not been retracted",
                Some(format!("{} (retracted)", quote(target))),
            ));
            return None;
        }
        Some(t)
    }

    /// CSV cells of a correction's `changes` are text; they are typed by the shape of the
    /// target's fields (the target is looked up here; if it is missing, `check_target` says
    /// so later), so that the stored correction carries `3`, not `"3"`.
    fn type_csv_changes(&self, payload: &mut Value) {
        let Some(target) = payload.get("target").and_then(Value::as_str) else {
            return;
        };
        let Some(kind) = self
            .events
            .get(target)
            .map(|&i| self.parsed.drafts[i].1.event.kind())
            .or_else(|| self.known.event_by_id(target).map(|t| t.kind))
        else {
            return;
        };
        let target_shape = shape::of(kind);
        if let Some(Value::Object(changes)) = payload.get_mut("changes") {
            for (k, v) in changes.iter_mut() {
                if let Some(s) = target_shape.at(&[k.as_str()]) {
                    crate::csv_rows::coerce(s, v);
                }
            }
        }
    }

    /// A correction: its target, then the target as the changes leave it, re-validated.
    fn check_correction(
        &self,
        target: &str,
        changes: &std::collections::BTreeMap<String, Value>,
        recorded: DateTime<Utc>,
        out: &mut Vec<Problem>,
    ) {
        let t = self.check_target(target, out);
        if changes.is_empty() {
            out.push(Problem::field(
                "changes",
                "at least one corrected field",
                Some("an empty object".to_owned()),
            ));
            return;
        }
        let mut ok = true;
        for key in changes.keys() {
            if matches!(key.as_str(), "type" | "id" | "actor" | "recorded_at") {
                out.push(Problem::field(
                    format!("changes.{key}"),
                    "a field a correction may change (not type, id, actor or recorded_at)",
                    Some(format!("a change of {key}")),
                ));
                ok = false;
            }
        }
        let Some(t) = t else { return };
        if let Some(key) = identity(t.kind)
            && changes.contains_key(key)
        {
            out.push(Problem::field(
                format!("changes.{key}"),
                format!(
                    "a field a correction may change (not the {key} id that {} registers)",
                    t.kind
                ),
                Some(format!("a change of {key}")),
            ));
            ok = false;
        }
        if !ok {
            return;
        }

        let target_shape = shape::of(t.kind);
        let mut occurred_at = t.occurred_at;
        let mut merged = events::wire::payload_of(&t.event);
        for (k, v) in changes {
            if k == "occurred_at" {
                let mut ps = Vec::new();
                match instant_field("occurred_at", Some(v.clone()), &mut ps) {
                    Some(o) if o > recorded => out.push(Problem::field(
                        "changes.occurred_at",
                        format!(
                            "a time not later than when it is recorded ({})",
                            time::format_local(recorded)
                        ),
                        Some(quote(&time::format_local(o))),
                    )),
                    Some(o) => occurred_at = o,
                    None => out.extend(ps.into_iter().map(|p| p.under("changes"))),
                }
                continue;
            }
            merged.insert(k.clone(), v.clone());
        }
        let mut ps = Vec::new();
        let mut payload = Value::Object(merged);
        wire::normalize(target_shape, &mut payload, &mut Vec::new(), &mut ps);
        let decoded = wire::decode(t.kind, payload.clone());
        let corrected = match decoded {
            Ok(e) if ps.is_empty() => e,
            Ok(_) => {
                out.extend(ps.into_iter().map(|p| p.under("changes")));
                return;
            }
            Err(more) => {
                out.extend(ps.into_iter().chain(more).map(|p| p.under("changes")));
                return;
            }
        };
        let changed: BTreeSet<String> = changes.keys().cloned().collect();
        self.check(
            &corrected,
            &payload,
            occurred_at,
            recorded,
            Mode::Corrected(&changed),
            out,
        );
    }
}

/// Puts payload problems in the schema's field order (unknown fields last), whatever order
/// the input or the decoder met them in; problems of one field keep their order.
fn sort_by_schema(kind: EventKind, problems: &mut [Problem]) {
    let fields = shape::of(kind).field_names();
    problems.sort_by_key(|p| {
        let top = p
            .field
            .as_deref()
            .unwrap_or("")
            .split('.')
            .next()
            .unwrap_or("");
        fields.iter().position(|f| *f == top).unwrap_or(usize::MAX)
    });
}

/// A reference problem: the id is unknown (or, for a registration, already known).
fn refp(field: &str, expected: &str, id: &str) -> Problem {
    Problem::field(field, expected, Some(quote(id)))
}

/// The field holding the id a registration introduces; a correction may not change it.
fn identity(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::SchoolRegistered => Some("school"),
        EventKind::StaffJoined => Some("staff"),
        EventKind::ChildRegistered => Some("child"),
        EventKind::IncidentReported => Some("incident"),
        EventKind::TermDefined => Some("term"),
        _ => None,
    }
}

/// A required instant field (`occurred_at`, `recorded_at`).
fn instant_field(
    field: &str,
    v: Option<Value>,
    problems: &mut Vec<Problem>,
) -> Option<DateTime<Utc>> {
    let expected = Shape::Time.to_string();
    match v {
        Some(Value::String(s)) => {
            let t = wire::parse_instant(&s);
            if t.is_none() {
                problems.push(Problem::field(field, expected, Some(quote(&s))));
            }
            t
        }
        other => {
            problems.push(Problem::field(
                field,
                expected,
                Some(found_or_nothing(field, other.as_ref())),
            ));
            None
        }
    }
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
