//! The bureau feed: hive-partitioned Parquet that polars reads back whole, with no
//! identifying column, and children and staff under the county secret's pseudonyms.

use events::pseudonym::{CountySecret, Subject};
use polars::prelude::*;
use reports::bureau::{FEED_COLUMNS, NONE_PARTITION, partition_value};

use crate::cases::Case;

fn read_feed(dir: &std::path::Path) -> DataFrame {
    let args = ScanArgsParquet {
        // try_parse_dates needs polars' dtype-date feature for hive values; the values here
        // are ids and term ids, strings all
        hive_options: HiveOptions {
            try_parse_dates: false,
            ..HiveOptions::new_enabled()
        },
        ..ScanArgsParquet::default()
    };
    let path = format!("{}/**/*.parquet", dir.display());
    LazyFrame::scan_parquet(PlRefPath::new(path.as_str()), args)
        .expect("scan")
        .sort(["seq"], SortMultipleOptions::default())
        .collect()
        .expect("the feed reads back")
}

/// The secret of the cases' county.
fn secret() -> CountySecret {
    CountySecret::new("青山县", [3u8; 32]).expect("a county name")
}

/// The distinct values of a string column, nulls left out.
fn values(df: &DataFrame, name: &str) -> Vec<String> {
    let mut v: Vec<String> = df
        .column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn count(df: &DataFrame, filter: Expr) -> usize {
    df.clone().lazy().filter(filter).collect().unwrap().height()
}

#[test]
fn given_the_small_school_when_exported_then_polars_reads_every_effective_event_back() {
    let case = Case::named("small_school");
    let (timeline, world) = case.project();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("feed");
    let secret = secret();
    let summary = reports::export_events_parquet(&timeline, &world, &secret, &dir).expect("export");
    assert_eq!(summary.rows as usize, timeline.facts().len());
    let rel: Vec<String> = summary
        .files
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        rel.contains(&"county=青山县/school=hx/term=2025-2026-1/part-00000.parquet".to_owned()),
        "{rel:?}"
    );
    assert!(rel.contains(&"county=青山县/school=hx/term=none/part-00000.parquet".to_owned()));
    assert!(
        rel.contains(&"county=青山县/school=hx/term=2025-2026-2/part-00000.parquet".to_owned())
    );

    let df = read_feed(&dir);
    assert_eq!(df.height(), timeline.facts().len());
    let mut names: Vec<String> = FEED_COLUMNS.iter().map(|s| s.to_string()).collect();
    names.extend(["county", "school", "term"].map(String::from));
    let got: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, names);
    for banned in [
        "name", "phone", "address", "notes", "summary", "risk", "actor", "id",
    ] {
        assert!(
            !got.iter().any(|c| c == banned),
            "column {banned} must not be exported"
        );
    }
    // UTC microseconds; the zone itself survives only with polars' `timezones` feature
    // (requested), so the check is on the unit and the values
    assert!(matches!(
        df.column("occurred_at").unwrap().dtype(),
        DataType::Datetime(TimeUnit::Microseconds, _)
    ));
    let inc1 = df
        .clone()
        .lazy()
        .filter(
            col("incident")
                .eq(lit("inc1"))
                .and(col("event_type").eq(lit("incident_reported"))),
        )
        .select([col("happened_at").cast(DataType::Int64)])
        .collect()
        .unwrap();
    let at = events::time::parse_instant("2025-10-20T10:00:00+08:00").unwrap();
    assert_eq!(
        inc1.column("happened_at").unwrap().i64().unwrap().get(0),
        Some(at.timestamp_micros())
    );
    assert_eq!(df.column("occurred_on").unwrap().dtype(), &DataType::Date);
    assert_eq!(df.column("school").unwrap().dtype(), &DataType::String);

    let talks = col("event_type").eq(lit("talk_held"));
    let term1 = col("term").eq(lit("2025-2026-1"));
    // 7 talks on days of the term (c8's included: the feed is the log, not the report)
    assert_eq!(count(&df, talks.clone().and(term1.clone())), 7);
    // before or after the term, and the one corrected to August; the retracted one is gone
    assert_eq!(
        count(&df, talks.clone().and(col("term").eq(lit(NONE_PARTITION)))),
        3
    );
    assert_eq!(
        count(&df, talks.clone().and(col("term").eq(lit("2025-2026-2")))),
        1
    );
    assert_eq!(count(&df, talks.clone().and(col("corrected"))), 1);
    assert_eq!(count(&df, col("event_type").eq(lit("retraction"))), 0);
    assert_eq!(count(&df, col("event_type").eq(lit("correction"))), 0);

    let aid = df
        .clone()
        .lazy()
        .filter(col("event_type").eq(lit("aid_granted")).and(term1))
        .select([col("amount_fen").sum()])
        .collect()
        .unwrap();
    // in the term: 10010 + 10 + 20 + 5 + 20020 + 99900 (c8 is in the log)
    assert_eq!(
        aid.column("amount_fen").unwrap().i64().unwrap().get(0),
        Some(129_965)
    );

    let act = df
        .clone()
        .lazy()
        .filter(col("event_type").eq(lit("activity")))
        .select([col("children")])
        .collect()
        .unwrap();
    let list = act
        .column("children")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(0)
        .unwrap();
    let kids: Vec<Option<&str>> = list.str().unwrap().iter().collect();
    let want: Vec<String> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| secret.pseudonym(Subject::Child, c))
        .collect();
    assert_eq!(
        kids,
        want.iter().map(|p| Some(p.as_str())).collect::<Vec<_>>()
    );
}

#[test]
fn given_a_feed_then_children_and_staff_are_pseudonyms_stable_across_exports() {
    let case = Case::named("small_school");
    let (timeline, world) = case.project();
    let out = tempfile::tempdir().unwrap();
    let secret = secret();
    let (a, b) = (out.path().join("a"), out.path().join("b"));
    reports::export_events_parquet(&timeline, &world, &secret, &a).expect("export");
    reports::export_events_parquet(&timeline, &world, &secret, &b).expect("export");
    let (fa, fb) = (read_feed(&a), read_feed(&b));
    assert!(fa.equals_missing(&fb), "two exports give the same feed");
    let children: Vec<String> = world.children().map(|c| c.id.clone()).collect();
    let staff: Vec<String> = world.all_staff().map(|t| t.id.clone()).collect();
    assert!(!children.is_empty() && !staff.is_empty());
    let child_col = values(&fa, "child");
    let staff_col = values(&fa, "staff");
    let want_children: Vec<String> = children
        .iter()
        .map(|c| secret.pseudonym(Subject::Child, c))
        .collect();
    let want_staff: Vec<String> = staff
        .iter()
        .map(|t| secret.pseudonym(Subject::Staff, t))
        .collect();
    assert!(!child_col.is_empty() && !staff_col.is_empty());
    for p in &child_col {
        assert!(want_children.contains(p), "{p} is no child's pseudonym");
    }
    for p in &staff_col {
        assert!(want_staff.contains(p), "{p} is no staff member's pseudonym");
    }
    for id in children.iter().chain(&staff) {
        assert!(
            !child_col.contains(id) && !staff_col.contains(id),
            "{id} is written"
        );
    }
    // Another county's secret gives other pseudonyms: it is refused, nothing is written.
    let other = CountySecret::new("别的县", [3u8; 32]).unwrap();
    let err = reports::export_events_parquet(&timeline, &world, &other, &out.path().join("c"))
        .unwrap_err();
    assert!(err.to_string().contains("别的县"), "{err}");
    assert!(!out.path().join("c").exists());
}

#[test]
fn a_feed_is_never_written_over_another() {
    let case = Case::named("aid_sums");
    let (timeline, world) = case.project();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("old.parquet"), b"x").unwrap();
    let err = reports::export_events_parquet(&timeline, &world, &secret(), out.path()).unwrap_err();
    assert!(err.to_string().starts_with("output folder "), "{err}");
    assert!(err.to_string().ends_with(" is not empty"), "{err}");
}

#[test]
fn partition_values_escape_path_characters_and_keep_chinese() {
    assert_eq!(partition_value("青山县"), "青山县");
    assert_eq!(partition_value("a/b=c%d e:f"), "a%2Fb%3Dc%25d%20e%3Af");
    assert_eq!(partition_value(""), "none");
    assert_eq!(partition_value(".."), "%2E%2E");
}
