//! Plausible values: the bounds a number of a decoded event must keep (minutes of a call,
//! a class number, a guardian's age, an exam score within its full score, a child's height
//! and weight). docs/ingest.md lists each bound and why. It owns those numbers and must
//! never look at the log: a value is plausible or not whatever else is recorded.
//!
//! Dates and instants before 1900 are refused where they are read (`wire::normalize`,
//! `envelope::instant_field`), with every date of every event.

use std::ops::RangeInclusive;

use events::Event;
use events::event::{ChildChanges, Guardian};

use crate::wire::Problem;

/// Minutes of one call or tutoring session: at least one, at most a day.
pub const MINUTES: RangeInclusive<u32> = 1..=1440;
/// A class number within a grade (a large county middle school has a few dozen classes).
pub const CLASS: RangeInclusive<u32> = 1..=50;
/// A guardian's age in years: an adult or a near-adult sibling, and a living person.
pub const GUARDIAN_AGE: RangeInclusive<u32> = 16..=120;
/// A child's height in centimetres.
pub const HEIGHT_CM: RangeInclusive<f64> = 30.0..=250.0;
/// A child's weight in kilograms: above 0 and at most this.
pub const MAX_WEIGHT_KG: f64 = 300.0;

/// The values of `event` outside their bounds, by field.
pub fn check(event: &Event) -> Vec<Problem> {
    let mut out = Vec::new();
    match event {
        Event::ParentCalled { minutes, .. }
        | Event::FamilyCallArranged { minutes, .. }
        | Event::Tutored { minutes, .. }
            if !MINUTES.contains(minutes) =>
        {
            out.push(Problem::field(
                "minutes",
                format!(
                    "a number of minutes from {} to {} (one day)",
                    MINUTES.start(),
                    MINUTES.end()
                ),
                Some(minutes.to_string()),
            ));
        }
        Event::ChildRegistered(r) => {
            class(r.class, "class", &mut out);
            guardian(&r.guardian, "guardian", &mut out);
        }
        Event::ChildUpdated { changes, .. } => {
            let ChildChanges {
                class: c,
                guardian: g,
                ..
            } = changes.as_ref();
            if let Some(c) = c {
                class(*c, "changes.class", &mut out);
            }
            if let Some(g) = g {
                guardian(g, "changes.guardian", &mut out);
            }
        }
        Event::AcademicResultRecorded {
            score, full_score, ..
        } => {
            if full_score.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                out.push(Problem::field(
                    "full_score",
                    "a full score above 0",
                    Some(full_score.to_string()),
                ));
            } else if !(0.0..=*full_score).contains(score) {
                out.push(Problem::field(
                    "score",
                    format!("a score from 0 to the full score ({full_score})"),
                    Some(score.to_string()),
                ));
            }
        }
        Event::PhysicalTestRecorded {
            height_cm,
            weight_kg,
            ..
        } => {
            if !HEIGHT_CM.contains(height_cm) {
                out.push(Problem::field(
                    "height_cm",
                    format!(
                        "a height from {} to {} cm",
                        HEIGHT_CM.start(),
                        HEIGHT_CM.end()
                    ),
                    Some(height_cm.to_string()),
                ));
            }
            if weight_kg.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
                || *weight_kg > MAX_WEIGHT_KG
            {
                out.push(Problem::field(
                    "weight_kg",
                    format!("a weight above 0 and at most {MAX_WEIGHT_KG} kg"),
                    Some(weight_kg.to_string()),
                ));
            }
        }
        _ => {}
    }
    out
}

fn class(c: u32, field: &str, out: &mut Vec<Problem>) {
    if !CLASS.contains(&c) {
        out.push(Problem::field(
            field,
            format!("a class number from {} to {}", CLASS.start(), CLASS.end()),
            Some(c.to_string()),
        ));
    }
}

fn guardian(g: &Guardian, field: &str, out: &mut Vec<Problem>) {
    if let Some(age) = g.age
        && !GUARDIAN_AGE.contains(&age)
    {
        out.push(Problem::field(
            format!("{field}.age"),
            format!(
                "an age from {} to {}",
                GUARDIAN_AGE.start(),
                GUARDIAN_AGE.end()
            ),
            Some(age.to_string()),
        ));
    }
}
