//! The streamed (two-scan) runs give exactly what the whole-timeline runs give, and the fold
//! does not depend on the order events arrive in.

use std::convert::Infallible;

use events::Envelope;
use polars::prelude::*;
use reports::TermFold;

use crate::cases::{Case, load_events};

fn scan(
    envs: &[Envelope],
) -> impl FnMut() -> std::vec::IntoIter<Result<Envelope, Infallible>> + '_ {
    move || envs.iter().cloned().map(Ok).collect::<Vec<_>>().into_iter()
}

#[test]
fn given_every_case_when_streamed_in_two_scans_then_the_report_is_the_same() {
    for case in Case::all() {
        let envs = load_events(&case.files);
        let streamed = reports::term_statistics_streamed(
            scan(&envs),
            case.as_of,
            case.scope.clone(),
            &case.term,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            streamed.rows().unwrap(),
            case.expected,
            "case {}",
            case.name
        );
        assert!(
            streamed.frame().equals_missing(case.report().frame()),
            "case {}",
            case.name
        );
    }
}

#[test]
fn given_every_case_when_events_arrive_backwards_then_the_fold_gives_the_same_rows() {
    for case in Case::all() {
        let (timeline, world) = case.project();
        let mut fold = TermFold::new(&world, case.scope.clone(), &case.term).unwrap();
        for f in timeline.facts().iter().rev() {
            fold.observe(f.occurred_at, &f.event);
        }
        assert_eq!(
            fold.finish().unwrap().rows().unwrap(),
            case.expected,
            "case {}",
            case.name
        );
    }
}

#[test]
fn given_a_failing_scan_when_streamed_then_the_error_is_reported() {
    let failing = || vec![Err::<Envelope, _>(std::io::Error::other("disk gone"))];
    let err = reports::term_statistics_streamed(
        failing,
        None,
        reports::Scope::School("hx".into()),
        "2025-2026-1",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "reading the log failed: disk gone");
}

fn read_dir_frame(dir: &std::path::Path) -> DataFrame {
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
        .sort(["seq"], SortMultipleOptions::default())
        .collect()
        .unwrap()
}

#[test]
fn given_the_small_school_when_the_feed_is_streamed_then_it_equals_the_whole_export() {
    let case = Case::named("small_school");
    let envs = load_events(&case.files);
    let (timeline, world) = case.project();
    let out = tempfile::tempdir().unwrap();
    let whole = reports::export_events_parquet(&timeline, &world, &out.path().join("a")).unwrap();
    let streamed =
        reports::export_events_parquet_streamed(scan(&envs), None, &out.path().join("b")).unwrap();
    assert_eq!(whole.rows, streamed.rows);
    let (a, b) = (
        read_dir_frame(&out.path().join("a")),
        read_dir_frame(&out.path().join("b")),
    );
    assert!(a.equals_missing(&b), "{a}\n{b}");
}
