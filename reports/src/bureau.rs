//! The bureau's event feed (rules §9.3): the effective log as Parquet, hive-partitioned
//! `county=…/school=…/term=…/part-NNNNN.parquet`, for an existing engine (polars, DuckDB,
//! Spark) to read.
//!
//! It owns the feed's columns and its partitioning. It must never write a name, phone,
//! address, free-text field or counseling content (notes, and the risk level too), nor a
//! school's own child or staff id: children and staff are named by the county secret's
//! pseudonyms (`events::pseudonym`, stable across exports, so the bureau can follow a child),
//! and the feed of a store holding a school of another county is refused. Only pseudonyms,
//! school, term and incident ids, times, types, closed vocabularies and numbers are written
//! (docs/reading-parquet.md lists the columns). Rows are buffered per partition with a
//! bounded total, so the feed can be fed one fact at a time from a scan of the whole log.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use events::Event;
use events::pseudonym::{CountySecret, Subject};
use events::time::local_date;
use polars::prelude::*;
use projections::{Fact, Timeline, World};

use crate::error::ReportError;

/// The value of a partition column for rows that have none: an event outside every term of
/// its school (`term=none`), or one that belongs to no school (`school=none`, `county=none`).
pub const NONE_PARTITION: &str = "none";

/// Rows buffered (over all partitions) before the largest partitions are flushed to files.
const BUFFERED_ROWS: usize = 200_000;

fn col_str(name: &str, v: Vec<Option<String>>) -> PolarsResult<Column> {
    Ok(Column::new(name.into(), v))
}
fn col_i64(name: &str, v: Vec<Option<i64>>) -> PolarsResult<Column> {
    Ok(Column::new(name.into(), v))
}
fn col_i32(name: &str, v: Vec<Option<i32>>) -> PolarsResult<Column> {
    Ok(Column::new(name.into(), v))
}
fn col_f64(name: &str, v: Vec<Option<f64>>) -> PolarsResult<Column> {
    Ok(Column::new(name.into(), v))
}
fn col_bool(name: &str, v: Vec<Option<bool>>) -> PolarsResult<Column> {
    Ok(Column::new(name.into(), v))
}
fn col_ts(name: &str, v: Vec<Option<DateTime<Utc>>>) -> PolarsResult<Column> {
    let micros: Vec<Option<i64>> = v
        .into_iter()
        .map(|t| t.map(|t| t.timestamp_micros()))
        .collect();
    Column::new(name.into(), micros).cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
}
fn col_date(name: &str, v: Vec<Option<NaiveDate>>) -> PolarsResult<Column> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");
    let days: Vec<Option<i32>> = v
        .into_iter()
        .map(|d| d.and_then(|d| i32::try_from((d - epoch).num_days()).ok()))
        .collect();
    Column::new(name.into(), days).cast(&DataType::Date)
}
fn col_list(name: &str, v: Vec<Option<Vec<String>>>) -> PolarsResult<Column> {
    let ca: ListChunked = v
        .into_iter()
        .map(|o| o.map(|items| Series::new(PlSmallStr::EMPTY, items)))
        .collect();
    // Cast so that a partition without any list still has the same schema as the others.
    ca.with_name(name.into())
        .into_series()
        .cast(&DataType::List(Box::new(DataType::String)))
        .map(Column::from)
}

macro_rules! feed_columns {
    ($( $field:ident : $ty:ty => $conv:ident ),* $(,)?) => {
        /// One row of the feed; `None` where the event has no such field.
        #[derive(Debug, Default)]
        struct Row { $( $field: Option<$ty>, )* }

        /// Column buffers of one partition. Invariant: every `Vec` has `len` entries.
        #[derive(Debug, Default)]
        struct Buffer { len: usize, $( $field: Vec<Option<$ty>>, )* }

        impl Buffer {
            fn push(&mut self, r: Row) {
                self.len += 1;
                $( self.$field.push(r.$field); )*
            }
            fn into_frame(self) -> PolarsResult<DataFrame> {
                let columns = vec![ $( $conv(stringify!($field), self.$field)?, )* ];
                DataFrame::new(self.len, columns)
            }
        }

        /// The feed's data columns, in file order (the partition columns `county`, `school`
        /// and `term` live in the directory names).
        pub const FEED_COLUMNS: &[&str] = &[ $( stringify!($field), )* ];
    };
}

feed_columns! {
    seq: i64 => col_i64,
    event_type: String => col_str,
    recorded_at: DateTime<Utc> => col_ts,
    occurred_at: DateTime<Utc> => col_ts,
    occurred_on: NaiveDate => col_date,
    source: String => col_str,
    corrected: bool => col_bool,
    child: String => col_str,
    staff: String => col_str,
    children: Vec<String> => col_list,
    incident: String => col_str,
    status: String => col_str,
    role: String => col_str,
    date: NaiveDate => col_date,
    until: NaiveDate => col_date,
    term_id: String => col_str,
    grade: i32 => col_i32,
    class: i64 => col_i64,
    gender: String => col_str,
    boarding: bool => col_bool,
    left_behind_type: String => col_str,
    hardship: String => col_str,
    guardian_relation: String => col_str,
    moved_to_school: String => col_str,
    mood: String => col_str,
    parent: String => col_str,
    mode: String => col_str,
    met: String => col_str,
    direction: String => col_str,
    minutes: i64 => col_i64,
    amount_fen: i64 => col_i64,
    amount_yuan: f64 => col_f64,
    kind: String => col_str,
    subject: String => col_str,
    score: f64 => col_f64,
    full_score: f64 => col_f64,
    height_cm: f64 => col_f64,
    weight_kg: f64 => col_f64,
    category: String => col_str,
    severity: String => col_str,
    happened_at: DateTime<Utc> => col_ts,
    party: String => col_str,
    notified_at: DateTime<Utc> => col_ts,
}

fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// The non-identifying fields of an event, its child and staff ids as `secret`'s pseudonyms.
/// Free text (summaries, topics, findings, notes, reasons, names, addresses, phones, titles,
/// exam names, occasions, items, descriptions) is left out, and so is a counseling session's
/// risk level.
fn row_of(fact: &Fact, secret: &CountySecret) -> Row {
    let child = |id: &String| secret.pseudonym(Subject::Child, id);
    let mut r = Row {
        seq: i64::try_from(fact.seq).ok(),
        event_type: Some(fact.event.kind().as_str().to_owned()),
        recorded_at: Some(fact.recorded_at),
        occurred_at: Some(fact.occurred_at),
        occurred_on: Some(local_date(fact.occurred_at)),
        source: Some(
            match fact.source {
                events::Source::Cli => "cli",
                events::Source::Import(_) => "import",
                events::Source::Migration => "migration",
            }
            .to_owned(),
        ),
        corrected: Some(!fact.corrected_by.is_empty()),
        staff: fact
            .event
            .staff()
            .map(|t| secret.pseudonym(Subject::Staff, t)),
        ..Row::default()
    };
    let s = |x: &dyn std::fmt::Display| Some(x.to_string());
    match &fact.event {
        Event::ActivityHeld { children, kind, .. } => {
            r.children = Some(children.iter().map(child).collect());
            r.kind = Some(kind.clone());
        }
        e => r.child = e.children().first().map(child),
    }
    match &fact.event {
        Event::SchoolRegistered { .. } => {}
        Event::TermDefined {
            term,
            starts_on,
            ends_on,
            ..
        } => {
            r.term_id = Some(term.as_str().to_owned());
            r.date = Some(*starts_on);
            r.until = Some(*ends_on);
        }
        Event::PolicyAdopted { effective_from, .. } => r.date = Some(*effective_from),
        Event::StaffJoined { roles, .. } => r.role = Some(joined(roles)),
        Event::StaffLeft { on, .. } => r.date = Some(*on),
        Event::ChildRegistered(c) => {
            r.grade = Some(i32::from(c.grade.get()));
            r.class = Some(i64::from(c.class));
            r.gender = s(&c.gender);
            r.boarding = Some(c.boarding);
            r.left_behind_type = s(&c.left_behind_type);
            r.hardship = Some(joined(&c.hardship));
            r.guardian_relation = s(&c.guardian.relation);
        }
        Event::ChildUpdated { changes, .. } => {
            r.grade = changes.grade.map(|g| i32::from(g.get()));
            r.class = changes.class.map(i64::from);
            r.gender = changes.gender.map(|g| g.to_string());
            r.boarding = changes.boarding;
            r.left_behind_type = changes.left_behind_type.map(|t| t.to_string());
            r.hardship = changes.hardship.as_deref().map(joined);
            r.guardian_relation = changes.guardian.as_ref().map(|g| g.relation.to_string());
            r.moved_to_school = changes.school.clone();
        }
        Event::ChildStatusChanged { status, on, .. } => {
            r.status = s(status);
            r.date = Some(*on);
        }
        // The bureau learns that the child's data was erased, not why.
        Event::ChildErased { .. } => {}
        Event::PairingAssigned { role, from, .. } => {
            r.role = s(role);
            r.date = Some(*from);
        }
        Event::PairingEnded { on, .. } => r.date = Some(*on),
        Event::BuddyAssigned { from, .. } => r.date = Some(*from),
        Event::TalkHeld { mood, .. } => r.mood = s(mood),
        Event::ParentCalled {
            parent, minutes, ..
        }
        | Event::FamilyCallArranged {
            parent, minutes, ..
        } => {
            r.parent = s(parent);
            r.minutes = Some(i64::from(*minutes));
        }
        Event::GuardianContacted { mode, .. } => r.mode = s(mode),
        Event::ClassTeacherContacted { .. } => {}
        Event::HomeVisited { met, .. } => r.met = Some(joined(met)),
        Event::LetterWritten { direction, .. } => r.direction = s(direction),
        Event::WarmthVisited { value_yuan, .. } => {
            r.amount_fen = Some(value_yuan.fen());
            r.amount_yuan = Some(value_yuan.as_yuan());
        }
        Event::Tutored {
            subject, minutes, ..
        } => {
            r.subject = Some(subject.clone());
            r.minutes = Some(i64::from(*minutes));
        }
        Event::CounselingHeld { .. } => {}
        Event::ActivityHeld { .. } => {}
        Event::AidGranted {
            kind, amount_yuan, ..
        } => {
            r.kind = Some(kind.clone());
            r.amount_fen = Some(amount_yuan.fen());
            r.amount_yuan = Some(amount_yuan.as_yuan());
        }
        Event::AwardGiven { .. } => {}
        Event::AcademicResultRecorded {
            subject,
            score,
            full_score,
            ..
        } => {
            r.subject = Some(subject.clone());
            r.score = Some(*score);
            r.full_score = Some(*full_score);
        }
        Event::PhysicalTestRecorded {
            height_cm,
            weight_kg,
            ..
        } => {
            r.height_cm = Some(*height_cm);
            r.weight_kg = Some(*weight_kg);
        }
        Event::IncidentReported {
            incident,
            category,
            severity,
            happened_at,
            ..
        } => {
            r.incident = Some(incident.clone());
            r.category = Some(category.clone());
            r.severity = Some(severity.clone());
            r.happened_at = Some(*happened_at);
        }
        Event::IncidentNotified {
            incident,
            party,
            notified_at,
            ..
        } => {
            r.incident = Some(incident.clone());
            r.party = s(party);
            r.notified_at = Some(*notified_at);
        }
        // Amendments are never facts: the feed carries their effect, not them.
        Event::Corrected { .. } | Event::Retracted { .. } => {}
    }
    r
}

/// A hive partition value safe in a path on every system: ASCII control characters and
/// `/ \ = % : space * ? " < > | #` are percent-encoded (readers decode them); other text,
/// Chinese included, is kept as UTF-8.
pub fn partition_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_ascii_control() || "/\\=%: *?\"<>|#".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        // An empty or dot-only value is not a usable directory name.
        out = out.replace('.', "%2E");
        if out.is_empty() {
            out = NONE_PARTITION.to_owned();
        }
    }
    out
}

/// (county, school, term) of a partition, as written in the path.
type PartKey = (String, String, String);

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The Parquet files, in the order written.
    pub files: Vec<PathBuf>,
    /// Rows written (one per effective event).
    pub rows: u64,
}

/// A streaming writer of the bureau feed: [`BureauExport::create`], then
/// [`BureauExport::push`] each effective fact (any order; log order gives sorted files),
/// then [`BureauExport::finish`].
#[derive(Debug)]
pub struct BureauExport<'w> {
    world: &'w World,
    secret: &'w CountySecret,
    dir: PathBuf,
    buffers: BTreeMap<PartKey, Buffer>,
    parts: BTreeMap<PartKey, usize>,
    buffered: usize,
    summary: ExportSummary,
}

impl<'w> BureauExport<'w> {
    /// Starts an export into `dir`, which must not exist or be empty (a feed is never mixed
    /// with an older one), with ids pseudonymised under `secret`. A world holding a school of
    /// another county than the secret's is refused before anything is written.
    pub fn create(
        world: &'w World,
        secret: &'w CountySecret,
        dir: &Path,
    ) -> Result<BureauExport<'w>, ReportError> {
        if let Some(school) = world.schools().find(|s| s.county != secret.county()) {
            return Err(ReportError::OtherCounty {
                asked: format!(
                    "the feed of school {} (county {})",
                    school.id, school.county
                ),
                secret_county: secret.county().to_owned(),
            });
        }
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(ReportError::io(dir))?;
            if entries.next().is_some() {
                return Err(ReportError::OutputNotEmpty {
                    path: dir.to_path_buf(),
                });
            }
        }
        std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
        Ok(BureauExport {
            world,
            secret,
            dir: dir.to_path_buf(),
            buffers: BTreeMap::new(),
            parts: BTreeMap::new(),
            buffered: 0,
            summary: ExportSummary {
                files: Vec::new(),
                rows: 0,
            },
        })
    }

    /// The school an event belongs to: the school it names (registry events), else its
    /// child's school as the file stood on the event's day, else its staff member's school.
    fn school_of(&self, fact: &Fact) -> Option<String> {
        if let Some(s) = fact.event.school() {
            return Some(s.to_owned());
        }
        let day = local_date(fact.occurred_at);
        let child = match &fact.event {
            Event::IncidentNotified { incident, .. } => self.world.incident_child(incident),
            Event::ActivityHeld { .. } => None,
            e => e.children().first().map(String::as_str),
        };
        if let Some(c) = child.and_then(|c| self.world.child(c)) {
            let mut school = &c.registration.school;
            for (at, _, changes) in c.updates() {
                if local_date(*at) > day {
                    break;
                }
                if let Some(s) = &changes.school {
                    school = s;
                }
            }
            return Some(school.clone());
        }
        fact.event
            .staff()
            .and_then(|t| self.world.staff(t))
            .map(|t| t.school.clone())
    }

    fn key_of(&self, fact: &Fact) -> PartKey {
        let day = local_date(fact.occurred_at);
        let school = self.school_of(fact);
        let known = school.as_deref().and_then(|s| self.world.school(s));
        let county = known.map_or(NONE_PARTITION.to_owned(), |s| s.county.clone());
        let term = known
            .and_then(|s| {
                s.terms()
                    .iter()
                    .find(|t| t.starts_on <= day && day <= t.ends_on)
            })
            .map_or(NONE_PARTITION.to_owned(), |t| t.id.as_str().to_owned());
        (
            partition_value(&county),
            partition_value(school.as_deref().unwrap_or(NONE_PARTITION)),
            partition_value(&term),
        )
    }

    /// Adds one effective fact.
    pub fn push(&mut self, fact: &Fact) -> Result<(), ReportError> {
        let key = self.key_of(fact);
        self.buffers
            .entry(key)
            .or_default()
            .push(row_of(fact, self.secret));
        self.buffered += 1;
        if self.buffered >= BUFFERED_ROWS {
            self.flush_largest()?;
        }
        Ok(())
    }

    /// Flushes the largest buffers until at most half the bound is held.
    fn flush_largest(&mut self) -> Result<(), ReportError> {
        while self.buffered > BUFFERED_ROWS / 2 {
            let Some(key) = self
                .buffers
                .iter()
                .max_by_key(|(_, b)| b.len)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.flush(&key)?;
        }
        Ok(())
    }

    fn flush(&mut self, key: &PartKey) -> Result<(), ReportError> {
        let Some(buffer) = self.buffers.remove(key) else {
            return Ok(());
        };
        let rows = buffer.len;
        let n = self.parts.entry(key.clone()).or_insert(0);
        let dir = self
            .dir
            .join(format!("county={}", key.0))
            .join(format!("school={}", key.1))
            .join(format!("term={}", key.2));
        std::fs::create_dir_all(&dir).map_err(ReportError::io(&dir))?;
        let path = dir.join(format!("part-{:05}.parquet", *n));
        *n += 1;
        let mut df = buffer
            .into_frame()
            .map_err(ReportError::polars("building a feed partition"))?;
        let file = File::create(&path).map_err(ReportError::io(&path))?;
        ParquetWriter::new(file)
            .finish(&mut df)
            .map_err(ReportError::polars("writing a feed partition"))?;
        self.buffered -= rows;
        self.summary.rows += rows as u64;
        self.summary.files.push(path);
        Ok(())
    }

    /// Writes what is buffered and says what was written.
    pub fn finish(mut self) -> Result<ExportSummary, ReportError> {
        let keys: Vec<PartKey> = self.buffers.keys().cloned().collect();
        for k in keys {
            self.flush(&k)?;
        }
        Ok(self.summary)
    }
}

/// Writes the effective log of `timeline` (corrections applied, retracted events left out,
/// as of the timeline's time) as the bureau feed under `out_dir` (must not exist or be
/// empty), child and staff ids as `secret`'s pseudonyms.
pub fn export_events_parquet(
    timeline: &Timeline,
    world: &World,
    secret: &CountySecret,
    out_dir: &Path,
) -> Result<ExportSummary, ReportError> {
    let mut export = BureauExport::create(world, secret, out_dir)?;
    for f in timeline.facts() {
        export.push(f)?;
    }
    export.finish()
}
