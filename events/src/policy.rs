//! The care policy (制度) a school adopts: pairing limits, quotas, evaluation thresholds,
//! escalation limits (rules §6) and how long a file is kept after a child leaves the
//! programme (rules §13.3). It is part of the `policy_adopted` payload.
//!
//! This module owns the policy's shape, its default (the seeds' "四个一") and its validation;
//! it must never decide how windows or scores are computed (that is `projections`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;

/// A school's care policy. Sections left out of an adopted policy take the default's values
/// (a policy that gives `quota` replaces the default quotas whole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// How many children a staff member may mentor.
    #[serde(default)]
    pub pairing: PairingLimits,
    /// The care quotas, by name (`talk`, `home_visit`, …).
    #[serde(default = "default_quotas")]
    pub quota: BTreeMap<String, Quota>,
    /// The thresholds of the evaluation run.
    #[serde(default)]
    pub evaluation: Evaluation,
    /// How soon each party must learn of an incident.
    #[serde(default)]
    pub escalation: Escalation,
    /// How long a child's file is kept after the child leaves the programme (rules §13.3).
    /// Left out of the stored form when it is the default, so policies written before it
    /// existed encode as they always did.
    #[serde(default, skip_serializing_if = "Retention::is_default")]
    pub retention: Retention,
}

/// How long a child's personal data is kept after the child leaves the programme (status
/// `graduated`, `transferred_out` or `no_longer_left_behind`), before `careledger retention`
/// erases it (rules §13.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Whole years from the day the child left (from 1 to 30).
    pub years: u32,
}

impl Retention {
    /// The period when a school sets none: 3 years.
    pub const DEFAULT_YEARS: u32 = 3;

    /// Whether this is the default period.
    pub fn is_default(&self) -> bool {
        self.years == Self::DEFAULT_YEARS
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            years: Self::DEFAULT_YEARS,
        }
    }
}

/// How many children one staff member may mentor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingLimits {
    /// The fewest children a mentor should have.
    pub min_children: u32,
    /// The most children a mentor may have before the load is flagged.
    pub max_children: u32,
}

/// One quota: at least `min` events of kind `event` per window of length `per`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// The care event kind the quota counts.
    pub event: EventKind,
    /// The window the minimum applies to.
    pub per: Per,
    /// How many events each window needs.
    pub min: u32,
    /// The quota's weight in the score (positive; weights are normalised).
    pub weight: f64,
}

/// The window length of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// An ISO week, Monday first.
    Week,
    /// A calendar month.
    Month,
    /// A term of the school (`term_defined`).
    Term,
    /// The school year: its first term's start to its last term's end.
    Year,
}

impl Per {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Week => "week",
            Per::Month => "month",
            Per::Term => "term",
            Per::Year => "year",
        }
    }
}

impl fmt::Display for Per {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds of the evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The share of the year-end appraisal that care work carries (0.10 = 10%).
    pub year_end_share: f64,
    /// The score at or above which a teacher is commended.
    pub outstanding_at: f64,
    /// The score below which a teacher cannot be rated outstanding that year.
    pub disqualified_below: f64,
}

/// How soon after an incident each party must be told, in minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Minutes within which the guardian must be told.
    pub guardian_minutes: u32,
    /// Minutes within which the parents must be told.
    pub parents_minutes: u32,
    /// Minutes within which the bureau must be told.
    pub bureau_minutes: u32,
}

impl Default for PairingLimits {
    fn default() -> Self {
        PairingLimits {
            min_children: 1,
            max_children: 8,
        }
    }
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation {
            year_end_share: 0.10,
            outstanding_at: 90.0,
            disqualified_below: 60.0,
        }
    }
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            guardian_minutes: 30,
            parents_minutes: 60,
            bureau_minutes: 120,
        }
    }
}

fn default_quotas() -> BTreeMap<String, Quota> {
    let q = |event, per, weight| Quota {
        event,
        per,
        min: 1,
        weight,
    };
    BTreeMap::from([
        ("talk".to_owned(), q(EventKind::TalkHeld, Per::Month, 40.0)),
        (
            "home_visit".to_owned(),
            q(EventKind::HomeVisited, Per::Term, 25.0),
        ),
        (
            "parent_call".to_owned(),
            q(EventKind::ParentCalled, Per::Month, 20.0),
        ),
        (
            "warmth".to_owned(),
            q(EventKind::WarmthVisited, Per::Year, 15.0),
        ),
    ])
}

impl Default for Policy {
    /// The seeds' common rule "四个一" (rules §6.2), in force before a school adopts its own.
    fn default() -> Self {
        Policy {
            pairing: PairingLimits::default(),
            quota: default_quotas(),
            evaluation: Evaluation::default(),
            escalation: Escalation::default(),
            retention: Retention::default(),
        }
    }
}

/// A reason a policy cannot be adopted, naming the offending field (`quota.talk.weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The offending field, dotted (`quota.talk.weight`).
    pub field: String,
    /// What the field must be.
    pub expected: String,
}

impl Policy {
    /// Checks what serde cannot: quotas count care interactions only, `min ≥ 1`, weights > 0,
    /// thresholds within 0–100, a share within 0–1 and a retention of 1–30 years.
    pub fn problems(&self) -> Vec<PolicyProblem> {
        let mut out = Vec::new();
        let mut bad = |field: String, expected: &str| {
            out.push(PolicyProblem {
                field,
                expected: expected.to_owned(),
            })
        };
        if self.pairing.max_children < self.pairing.min_children {
            bad(
                "pairing.max_children".into(),
                "at least pairing.min_children",
            );
        }
        if self.quota.is_empty() {
            bad("quota".into(), "at least one quota");
        }
        for (name, q) in &self.quota {
            if !q.event.counts_toward_quota() {
                bad(
                    format!("quota.{name}.event"),
                    "a care interaction type such as talk_held or home_visit",
                );
            }
            if q.min == 0 {
                bad(format!("quota.{name}.min"), "at least 1");
            }
            if !(q.weight.is_finite() && q.weight > 0.0) {
                bad(format!("quota.{name}.weight"), "a number greater than 0");
            }
        }
        if !(1..=30).contains(&self.retention.years) {
            bad(
                "retention.years".into(),
                "a whole number of years from 1 to 30",
            );
        }
        let e = &self.evaluation;
        if !(0.0..=1.0).contains(&e.year_end_share) {
            bad("evaluation.year_end_share".into(), "a share from 0 to 1");
        }
        if !(0.0..=100.0).contains(&e.outstanding_at) {
            bad("evaluation.outstanding_at".into(), "a score from 0 to 100");
        }
        if !(0.0..=100.0).contains(&e.disqualified_below) {
            bad(
                "evaluation.disqualified_below".into(),
                "a score from 0 to 100",
            );
        }
        out
    }
}
