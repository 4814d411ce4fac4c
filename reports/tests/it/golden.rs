//! Given the events of a case folder, when the term report runs, then its rows are the
//! hand-worked `expected.json` (fixtures/reports/README.md), read back from the frame and
//! from the JSON writer alike; checked through the one loader (`fixtures::cases`), so
//! `BLESS=1` rewrites `expected.json` and fails until the diff is reviewed. The hand count
//! itself, `rows.spec`, is checked against the report as well: a bless cannot rewrite it.

use fixtures::cases::{Output, Outputs};
use serde_json::{Map, Value, json};

use crate::cases::Case;

/// The counts of a `rows.spec` line, in order (`aid_fen` becomes `aid_yuan`).
const COUNTS: [&str; 20] = [
    "children",
    "both_parents_away",
    "one_parent_away",
    "grandparent_guardian",
    "boarding",
    "hardship",
    "archived",
    "paired",
    "talked",
    "home_visited",
    "talks",
    "parent_calls",
    "family_calls",
    "letters",
    "warmth_visits",
    "counseling_sessions",
    "aid_fen",
    "dropped_out",
    "incidents",
    "escalated_on_time",
];

/// The rates of a `rows.spec` line, in order, each written by hand as a fraction or a
/// decimal.
const RATES: [&str; 5] = [
    "archive_rate",
    "pairing_rate",
    "talk_coverage",
    "home_visit_coverage",
    "retention_rate",
];

/// A `rows.spec` (the hand count `tools/rows.py` typed `expected.json` from) read as rows:
/// `school grade class | 20 counts | 5 rates`, `-` for null, `#` starts a comment.
fn spec_rows(text: &str) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("rows.spec line {}: {what}", n + 1);
        let parts: Vec<Vec<&str>> = line
            .split('|')
            .map(|p| p.split_whitespace().collect())
            .collect();
        let [keys, counts, rates] = &parts[..] else {
            return Err(bad("three parts separated by |"));
        };
        if keys.len() != 3 || counts.len() != COUNTS.len() || rates.len() != RATES.len() {
            return Err(bad("3 keys, 20 counts and 5 rates"));
        }
        let mut row = Map::new();
        row.insert(
            "school".into(),
            if keys[0] == "-" {
                Value::Null
            } else {
                json!(keys[0])
            },
        );
        for (k, v) in ["grade", "class"].into_iter().zip(&keys[1..]) {
            let v = if *v == "-" {
                Value::Null
            } else {
                json!(v.parse::<u64>().map_err(|_| bad(k))?)
            };
            row.insert(k.into(), v);
        }
        for (k, v) in COUNTS.iter().zip(counts) {
            let v: u64 = v.parse().map_err(|_| bad(k))?;
            if *k == "aid_fen" {
                row.insert("aid_yuan".into(), json!(v as f64 / 100.0));
            } else {
                row.insert((*k).into(), json!(v));
            }
        }
        for (k, v) in RATES.iter().zip(rates) {
            let v = match v.split_once('/') {
                _ if *v == "-" => Value::Null,
                Some((a, b)) => {
                    let (a, b): (u64, u64) = (
                        a.parse().map_err(|_| bad(k))?,
                        b.parse().map_err(|_| bad(k))?,
                    );
                    json!(a as f64 / b as f64)
                }
                None => json!(v.parse::<f64>().map_err(|_| bad(k))?),
            };
            row.insert((*k).into(), v);
        }
        rows.push(Value::Object(row));
    }
    Ok(rows)
}

#[test]
fn every_case_gives_its_expected_rows_and_json_and_its_hand_count() {
    let checked = fixtures::cases::check_suite("reports", "term_report", 9, |c| {
        let case = Case::from_case(c)?;
        let report = case.report();
        let rows = report.rows().map_err(|e| format!("rows read back: {e}"))?;
        let from_rows = serde_json::to_value(&rows).map_err(|e| e.to_string())?;
        let json = reports::output::to_json(&report).map_err(|e| e.to_string())?;
        let written: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        if !fixtures::cases::json_equal(&written, &from_rows) {
            return Err(format!(
                "the JSON writer and the rows disagree:\n{json}\n{from_rows}"
            ));
        }
        let spec = spec_rows(&c.read_text("rows.spec").map_err(|e| e.to_string())?)?;
        if !fixtures::cases::json_equal(&written, &Value::Array(spec.clone())) {
            return Err(format!(
                "the report differs from the hand count in rows.spec:\n got  {written}\n spec {}",
                Value::Array(spec)
            ));
        }
        if let Some(without) = &case.schools_without_term
            && report.schools_without_term() != &without[..]
        {
            return Err(format!(
                "schools without the term: {:?}, expected {without:?}",
                report.schools_without_term()
            ));
        }
        Ok(Outputs::from([(
            "expected.json".to_owned(),
            Output::Json(written),
        )]))
    });
    if let Err(f) = checked {
        panic!("{f}");
    }
}
