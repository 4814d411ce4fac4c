//! The child-term feed (docs/province.md) read back with polars: for every term-report case,
//! one row per counted child, whose sums per school and over the scope are the report's own
//! figures, under hive partitions `county=/school=/term=` without a null value, with the
//! county secret's pseudonyms in place of ids and nothing personal in any byte.

use std::collections::BTreeSet;
use std::path::Path;

use events::pseudonym::{CountySecret, Subject};
use polars::prelude::*;
use reports::child_terms::CHILD_TERM_COLUMNS;
use reports::{ReportError, ReportRow, Scope, TermFold};

use crate::cases::Case;
use crate::privacy::{assert_clean, sensitive_values};

/// The county of a case's scope, and a secret for it.
fn secret_of(case: &Case) -> CountySecret {
    let (_, world) = case.project();
    let county = match &case.scope {
        Scope::County(c) => c.clone(),
        Scope::School(s) => world.school(s).expect("the case's school").county.clone(),
    };
    CountySecret::new(&county, [9u8; 32]).expect("a county name")
}

fn read_feed(dir: &Path) -> DataFrame {
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            try_parse_dates: false,
            ..HiveOptions::new_enabled()
        },
        ..ScanArgsParquet::default()
    };
    let path = format!("{}/**/*.parquet", dir.display());
    LazyFrame::scan_parquet(PlRefPath::new(path.as_str()), args)
        .unwrap()
        .collect()
        .unwrap()
}

/// A report row's figures as the feed's sums give them: (feed column, report value).
fn figures(r: &ReportRow) -> Vec<(&'static str, i64)> {
    let i = |v: u64| i64::try_from(v).unwrap();
    vec![
        ("both_parents_away", i(r.both_parents_away)),
        ("one_parent_away", i(r.one_parent_away)),
        ("grandparent_guardian", i(r.grandparent_guardian)),
        ("boarding", i(r.boarding)),
        ("hardship", i(r.hardship)),
        ("archived", i(r.archived)),
        ("paired", i(r.paired)),
        ("talked", i(r.talked)),
        ("home_visited", i(r.home_visited)),
        ("dropped_out", i(r.dropped_out)),
        ("talks", i(r.talks)),
        ("parent_calls", i(r.parent_calls)),
        ("family_calls", i(r.family_calls)),
        ("letters", i(r.letters)),
        ("warmth_visits", i(r.warmth_visits)),
        ("counseling_sessions", i(r.counseling_sessions)),
        ("aid_fen", r.aid_fen()),
        ("incidents", i(r.incidents)),
        ("escalated_on_time", i(r.escalated_on_time)),
    ]
}

fn sum_of(df: &DataFrame, column: &str) -> i64 {
    let c = df.column(column).unwrap();
    c.cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .sum()
        .unwrap_or(0)
}

#[test]
fn given_every_case_then_the_feed_sums_to_the_report_row_by_row() {
    let mut checked = 0;
    for case in Case::all() {
        let (timeline, world) = case.project();
        let secret = secret_of(&case);
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("feed");
        let summary = reports::export_child_terms(
            &timeline,
            &world,
            case.scope.clone(),
            &case.term,
            &secret,
            &dir,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let total: u64 = case
            .expected
            .iter()
            .filter(|r| r.school.is_some() && r.grade.is_none())
            .map(|r| r.children)
            .sum();
        assert_eq!(summary.rows, total, "case {}", case.name);
        if total == 0 {
            continue;
        }
        let df = read_feed(&dir);
        let mut names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        names.sort();
        let mut want: Vec<String> = CHILD_TERM_COLUMNS
            .iter()
            .chain(&["county", "school", "term"])
            .map(|s| s.to_string())
            .collect();
        want.sort();
        assert_eq!(names, want, "case {}", case.name);
        for part in ["county", "school", "term"] {
            assert_eq!(
                df.column(part).unwrap().null_count(),
                0,
                "case {}",
                case.name
            );
        }
        // Every school total of the report is the sum of that school's rows.
        for row in case.expected.iter().filter(|r| r.grade.is_none()) {
            let rows = match &row.school {
                Some(s) => df
                    .clone()
                    .lazy()
                    .filter(col("school").eq(lit(s.as_str())))
                    .collect()
                    .unwrap(),
                None => df.clone(),
            };
            assert_eq!(
                rows.height() as u64,
                row.children,
                "case {} {:?}",
                case.name,
                row.school
            );
            for (column, value) in figures(row) {
                assert_eq!(
                    sum_of(&rows, column),
                    value,
                    "case {} school {:?} column {column}",
                    case.name,
                    row.school
                );
            }
        }
        // The ids are the pseudonyms of exactly the children the fold counted.
        let (timeline, world) = case.project();
        let mut fold = TermFold::new(&world, case.scope.clone(), &case.term).unwrap();
        for f in timeline.facts() {
            fold.observe(f.occurred_at, &f.event);
        }
        let want: BTreeSet<String> = fold
            .finish_children()
            .into_iter()
            .map(|(id, _)| secret.pseudonym(Subject::Child, &id))
            .collect();
        let got: BTreeSet<String> = df
            .column("child")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.expect("no null pseudonym").to_owned())
            .collect();
        assert_eq!(got, want, "case {}", case.name);
        assert_eq!(
            got.len() as u64,
            total,
            "one row per child, case {}",
            case.name
        );
        // Nothing personal in any byte.
        assert_clean(&dir, &sensitive_values(&case.files), &case.name);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} cases had counted children");
}

#[test]
fn given_a_scope_outside_the_secret_county_then_nothing_is_written() {
    let case = Case::named("small_school");
    let (timeline, world) = case.project();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("feed");
    let other = CountySecret::new("别的县", [9u8; 32]).unwrap();
    let err = reports::export_child_terms(
        &timeline,
        &world,
        case.scope.clone(),
        &case.term,
        &other,
        &dir,
    )
    .unwrap_err();
    assert!(matches!(err, ReportError::OtherCounty { .. }), "{err}");
    assert!(err.to_string().contains("别的县"), "{err}");
    assert!(!dir.exists());
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "no staging left"
    );
}
