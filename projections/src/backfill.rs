//! Back-fill check (补录检查) for a school: per person who entered care records (the envelope's
//! `actor`), how many records were recorded more than N days after they occurred, and bursts:
//! many records entered within a short span about several different days — the mark of a
//! notebook filled in the night before an inspection.
//!
//! Scope: effective care facts (corrections applied, retracted records left out, rules §5.10)
//! whose child belongs to the school (its latest file) or whose actor is a staff member of the
//! school. It is a pure fold over a [`Timeline`] and its [`World`]; it must never read the
//! store or the clock, and it shows no record content.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::time::format_local;
use serde::Serialize;

use crate::ProjectionError;
use crate::labels::row;
use crate::timeline::{Fact, Timeline};
use crate::world::World;

/// Thresholds of the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillOptions {
    /// A record is late when `recorded_at − occurred_at` is more than this many days.
    pub late_after_days: i64,
    /// A burst holds at least this many records …
    pub burst_min_records: usize,
    /// … recorded within this many minutes of the first …
    pub burst_window_minutes: i64,
    /// … about at least this many different days.
    pub burst_min_days: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            late_after_days: 7,
            burst_min_records: 5,
            burst_window_minutes: 60,
            burst_min_days: 3,
        }
    }
}

/// The check for a school.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backfill {
    /// The school id.
    pub school: String,
    /// The thresholds the check ran with.
    pub options: BackfillOptions,
    /// Most late records first, then highest late share, then actor id.
    pub rows: Vec<BackfillRow>,
}

/// One person who entered records (or a staff member of the school who entered none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillRow {
    /// The envelope's `actor`: a staff id, or another account.
    pub actor: String,
    /// The staff member's name; `None` for an account that is not a staff member.
    pub name: Option<String>,
    /// Care records in scope this actor entered.
    pub records: usize,
    /// Of them, the late ones (`late_after_days`).
    pub late: usize,
    /// `late / records`; `None` without records.
    pub late_share: Option<f64>,
    /// The longest `recorded_at − occurred_at`, in seconds (`None` without records).
    pub max_delay_seconds: Option<i64>,
    /// Records whose source is a migration of paper records.
    pub migrated: usize,
    /// The bursts this actor entered, in recorded order.
    pub bursts: Vec<Burst>,
}

/// Records entered together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Burst {
    /// Recorded time of the first and last record (RFC 3339 at +08:00).
    pub first_recorded_at: String,
    /// Recorded time of the last record of the burst (RFC 3339 at +08:00).
    pub last_recorded_at: String,
    /// Records in the burst.
    pub records: usize,
    /// Of them, late ones (a weekly write-up of the week's records is a burst with none).
    pub late: usize,
    /// Distinct local dates the records say they occurred on.
    pub days: usize,
    /// The earliest local date the records say they occurred on.
    pub first_day: NaiveDate,
    /// The latest local date the records say they occurred on.
    pub last_day: NaiveDate,
}

/// The back-fill check of a school.
pub fn backfill(
    timeline: &Timeline,
    world: &World,
    school: &str,
    options: &BackfillOptions,
) -> Result<Backfill, ProjectionError> {
    world.require_school(school)?;
    let school_staff: BTreeSet<&str> = world.staff_of(school).map(|s| s.id.as_str()).collect();
    let of_school = |c: &str| {
        world
            .child(c)
            .is_some_and(|c| c.file_latest().school == school)
    };
    let mut by_actor: BTreeMap<&str, Vec<&Fact>> = BTreeMap::new();
    for s in &school_staff {
        by_actor.entry(s).or_default();
    }
    for f in timeline.facts() {
        if !f.event.kind().is_care_work() {
            continue;
        }
        if school_staff.contains(f.actor.as_str())
            || world.event_children(&f.event).into_iter().any(of_school)
        {
            by_actor.entry(f.actor.as_str()).or_default().push(f);
        }
    }
    let late_after = Duration::days(options.late_after_days);
    let mut rows: Vec<BackfillRow> = by_actor
        .into_iter()
        .map(|(actor, mut facts)| {
            // Facts are in log order, hence in recorded order.
            facts.sort_by_key(|f| (f.recorded_at, f.seq));
            let delays: Vec<Duration> = facts
                .iter()
                .map(|f| f.recorded_at - f.occurred_at)
                .collect();
            let late = delays.iter().filter(|d| **d > late_after).count();
            BackfillRow {
                actor: actor.to_owned(),
                name: world.staff(actor).map(|s| s.name.clone()),
                records: facts.len(),
                late,
                late_share: (!facts.is_empty()).then(|| late as f64 / facts.len() as f64),
                max_delay_seconds: delays.iter().max().map(|d| d.num_seconds()),
                migrated: facts
                    .iter()
                    .filter(|f| f.source == events::Source::Migration)
                    .count(),
                bursts: bursts(&facts, options),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.late
            .cmp(&a.late)
            .then_with(|| {
                let (x, y) = (a.late_share.unwrap_or(0.0), b.late_share.unwrap_or(0.0));
                y.total_cmp(&x)
            })
            .then_with(|| a.actor.cmp(&b.actor))
    });
    Ok(Backfill {
        school: school.to_owned(),
        options: options.clone(),
        rows,
    })
}

/// Greedy, left to right over records sorted by recorded time: from each record, the longest
/// run recorded within the window of it; a run with enough records about enough different
/// days is a burst and the scan resumes after it, otherwise it resumes at the next record.
fn bursts(facts: &[&Fact], o: &BackfillOptions) -> Vec<Burst> {
    let span = Duration::minutes(o.burst_window_minutes);
    let late_after = Duration::days(o.late_after_days);
    let mut out = Vec::new();
    let mut i = 0;
    while i < facts.len() {
        let start: DateTime<Utc> = facts[i].recorded_at;
        let mut j = i;
        while j + 1 < facts.len() && facts[j + 1].recorded_at - start <= span {
            j += 1;
        }
        let run = &facts[i..=j];
        let days: BTreeSet<NaiveDate> = run.iter().map(|f| f.date()).collect();
        if run.len() >= o.burst_min_records && days.len() >= o.burst_min_days {
            out.push(Burst {
                first_recorded_at: format_local(run[0].recorded_at),
                last_recorded_at: format_local(run[run.len() - 1].recorded_at),
                records: run.len(),
                late: run
                    .iter()
                    .filter(|f| f.recorded_at - f.occurred_at > late_after)
                    .count(),
                days: days.len(),
                first_day: *days.first().expect("a run holds at least one record"),
                last_day: *days.last().expect("a run holds at least one record"),
            });
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

impl Backfill {
    /// One row per person: 录入人, 姓名, 记录数, 补录数, 补录比例, 最长延迟(天), 迁移, 集中录入.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row([
            "录入人",
            "姓名",
            "记录数",
            "补录数",
            "补录比例",
            "最长延迟(天)",
            "迁移",
            "集中录入",
        ])];
        for r in &self.rows {
            // The table names the burst with the most late records (then the biggest); the
            // JSON lists them all.
            let bursts = match r.bursts.iter().max_by_key(|b| {
                (
                    b.late,
                    b.records,
                    std::cmp::Reverse(b.first_recorded_at.clone()),
                )
            }) {
                None => String::new(),
                Some(b) => format!(
                    "{} 次；{} 起 {} 条（补录 {} 条）涉及 {} 天",
                    r.bursts.len(),
                    b.first_recorded_at,
                    b.records,
                    b.late,
                    b.days
                ),
            };
            t.push(vec![
                r.actor.clone(),
                r.name.clone().unwrap_or_default(),
                r.records.to_string(),
                r.late.to_string(),
                r.late_share
                    .map(|s| format!("{:.1}%", s * 100.0))
                    .unwrap_or_default(),
                r.max_delay_seconds
                    .map(|s| format!("{:.1}", s as f64 / 86_400.0))
                    .unwrap_or_default(),
                r.migrated.to_string(),
                bursts,
            ]);
        }
        t
    }
}
