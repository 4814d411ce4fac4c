//! The polars reporter (`reports::term_statistics`, the default) against the reference fold
//! (`reports::term_statistics_folded`): byte-identical in every output format (CSV, JSON,
//! Parquet, XLSX, text) on every case of fixtures/reports, the seed school and generated
//! counties (three seeds, both terms, every scope, several as-of times including ones
//! between a correction and the event it corrects). Neither path may depend on the order
//! the events arrive in.

use chrono::{DateTime, Utc};
use events::{Envelope, Event};
use projections::{Timeline, World};
use reports::{FactFrame, Format, Scope, TermFold};

use crate::cases::{Case, load_events, seed_school};

const FORMATS: [Format; 5] = [
    Format::Csv,
    Format::Json,
    Format::Parquet,
    Format::Xlsx,
    Format::Table,
];

/// Every part of a workbook, by name and content, except `docProps/core.xml`: it holds the
/// time the workbook was written, which differs between any two renders.
fn xlsx_parts(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    let mut parts = Vec::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).expect("a part");
        let name = part.name().expect("a part name").into_owned();
        if name == "docProps/core.xml" {
            continue;
        }
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut part, &mut content).expect("readable");
        parts.push((name, content));
    }
    assert!(parts.len() > 3, "{} parts in a workbook", parts.len());
    parts
}

/// Both paths on one timeline; panics naming `what` and the format on the first difference.
/// Returns the number of data rows compared.
fn same_bytes(timeline: &Timeline, world: &World, scope: &Scope, term: &str, what: &str) -> usize {
    let folded = reports::term_statistics_folded(timeline, world, scope.clone(), term);
    let polars = reports::term_statistics(timeline, world, scope.clone(), term);
    let (folded, polars) = match (folded, polars) {
        (Ok(f), Ok(p)) => (f, p),
        (Err(f), Err(p)) => {
            assert_eq!(f.to_string(), p.to_string(), "{what}: the errors differ");
            return 0;
        }
        (f, p) => panic!("{what}: fold gave {:?}, polars {:?}", f.err(), p.err()),
    };
    assert_eq!(
        folded.schools_without_term(),
        polars.schools_without_term(),
        "{what}"
    );
    for format in FORMATS {
        let a = reports::render(&folded, format).unwrap_or_else(|e| panic!("{what}: {e}"));
        let b = reports::render(&polars, format).unwrap_or_else(|e| panic!("{what}: {e}"));
        if format == Format::Xlsx {
            assert!(xlsx_parts(&a) == xlsx_parts(&b), "{what}: Xlsx differs");
        } else {
            assert!(a == b, "{what}: {format:?} differs");
        }
    }
    polars.frame().height()
}

#[test]
fn given_every_case_when_reported_by_polars_and_by_the_fold_then_every_output_is_identical() {
    for case in Case::all() {
        let (timeline, world) = case.project();
        same_bytes(&timeline, &world, &case.scope, &case.term, &case.name);
        let polars = reports::term_statistics(&timeline, &world, case.scope.clone(), &case.term)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(polars.rows().unwrap(), case.expected, "case {}", case.name);
    }
}

#[test]
fn given_every_case_when_events_arrive_backwards_then_both_paths_give_the_same_rows() {
    for case in Case::all() {
        let (timeline, world) = case.project();
        let mut fold = TermFold::new(&world, case.scope.clone(), &case.term).unwrap();
        let mut frame = FactFrame::new();
        for f in timeline.facts().iter().rev() {
            fold.observe(f.occurred_at, &f.event);
            frame.push(f).unwrap();
        }
        assert_eq!(
            fold.finish().unwrap().rows().unwrap(),
            case.expected,
            "case {}",
            case.name
        );
        let polars = reports::term_report(&world, frame, case.scope.clone(), &case.term).unwrap();
        assert_eq!(polars.rows().unwrap(), case.expected, "case {}", case.name);
    }
}

#[test]
fn given_the_seed_school_when_reported_by_both_paths_then_every_output_is_identical() {
    let Some(seed) = seed_school() else {
        panic!("fixtures/seed-school/events.jsonl is missing");
    };
    let envelopes = load_events(&[seed]);
    let timeline = Timeline::build(&envelopes, None).unwrap();
    let world = World::build(&timeline);
    let school = world.schools().next().expect("a school").clone();
    let mut rows = 0;
    for term in school.terms() {
        rows += same_bytes(
            &timeline,
            &world,
            &Scope::School(school.id.clone()),
            term.id.as_str(),
            &format!("seed school, term {}", term.id.as_str()),
        );
    }
    assert!(rows > 2, "the seed school reported {rows} rows");
}

/// A generated county (3 schools × 80 children) as envelopes in log order.
fn county(seed: u64) -> Vec<Envelope> {
    let cfg = fixtures::GenConfig {
        county: None,
        schools: 3,
        children_per_school: 80,
        seed,
        year: "2025-2026".to_owned(),
    };
    let now = events::time::parse_as_of("2026-09-01T00:00:00+08:00").expect("an instant");
    let mut out = Vec::new();
    fixtures::generate(&cfg, now, &mut out).expect("generates");
    let text = String::from_utf8(out).expect("utf-8");
    let mut log = fixtures::WireLog::default();
    log.push_text(&text, "county.jsonl")
        .expect("the generated county loads");
    log.into_envelopes()
}

/// The as-of times of a differential run: the end of the log, four recorded times spread
/// along it, and for the first few corrections the instant just before each (the event it
/// corrects is known, the correction not yet).
fn as_of_times(envs: &[Envelope]) -> Vec<Option<DateTime<Utc>>> {
    let mut out = vec![None];
    for q in 1..=4 {
        out.push(Some(envs[envs.len() * q / 5].recorded_at));
    }
    let corrections = envs
        .iter()
        .filter(|e| {
            matches!(e.event, Event::Corrected { .. }) && e.recorded_at > envs[0].recorded_at
        })
        .step_by(7)
        .take(3);
    for c in corrections {
        out.push(Some(c.recorded_at - chrono::Duration::microseconds(1)));
    }
    out
}

#[test]
fn given_generated_counties_when_reported_by_both_paths_then_every_output_is_identical() {
    let mut compared = 0;
    let mut rows = 0;
    for seed in [1, 2, 3] {
        let envs = county(seed);
        assert!(
            envs.iter()
                .any(|e| matches!(e.event, Event::Corrected { .. }))
                && envs
                    .iter()
                    .any(|e| matches!(e.event, Event::Retracted { .. })),
            "seed {seed} has no correction or retraction"
        );
        let times = as_of_times(&envs);
        assert!(times.len() >= 6, "seed {seed}: {} as-of times", times.len());
        for as_of in times {
            let timeline = Timeline::build(&envs, as_of).unwrap();
            let world = World::build(&timeline);
            let mut scopes: Vec<Scope> = world
                .schools()
                .map(|s| Scope::School(s.id.clone()))
                .collect();
            let mut counties: Vec<String> = world.schools().map(|s| s.county.clone()).collect();
            counties.dedup();
            scopes.extend(counties.into_iter().map(Scope::County));
            for term in ["2025-2026-1", "2025-2026-2"] {
                for scope in &scopes {
                    rows += same_bytes(
                        &timeline,
                        &world,
                        scope,
                        term,
                        &format!("seed {seed}, as of {as_of:?}, term {term}, {scope}"),
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 3 * 6 * 2 * 4, "{compared} reports compared");
    assert!(rows > compared, "{rows} rows over {compared} reports");
}

/// A frame that leaves out the days outside `term_days` (`FactFrame::keep_days`, as the
/// county's read does once its world is folded) gives the report of a frame that keeps every
/// fact, in every format; and it does leave facts out, or the test would prove nothing.
#[test]
fn given_generated_counties_when_the_frame_keeps_only_the_terms_days_then_the_report_is_the_same() {
    let mut left_out = 0;
    for seed in [1, 2] {
        let envs = county(seed);
        for as_of in [None, Some(envs[envs.len() * 3 / 5].recorded_at)] {
            let timeline = Timeline::build(&envs, as_of).unwrap();
            let world = World::build(&timeline);
            let county = world.schools().next().expect("a school").county.clone();
            let school = world.schools().next().expect("a school").id.clone();
            for term in ["2025-2026-1", "2025-2026-2"] {
                for scope in [Scope::County(county.clone()), Scope::School(school.clone())] {
                    let what = format!("seed {seed}, as of {as_of:?}, term {term}, {scope}");
                    let roster = reports::roster::Roster::new(&world, scope.clone(), term);
                    let days = reports::term_days(&roster.unwrap())
                        .unwrap_or_else(|| panic!("{what}: no days"));
                    let all = FactFrame::of_timeline(&timeline).unwrap();
                    let mut kept = FactFrame::new();
                    kept.keep_days(days);
                    for f in timeline.facts() {
                        kept.push(f).unwrap();
                    }
                    left_out += all.len() - kept.len();
                    let a = reports::term_report(&world, all, scope.clone(), term).unwrap();
                    let b = reports::term_report(&world, kept, scope.clone(), term).unwrap();
                    for format in FORMATS {
                        let (x, y) = (reports::render(&a, format), reports::render(&b, format));
                        let (x, y) = (x.unwrap(), y.unwrap());
                        if format == Format::Xlsx {
                            assert!(xlsx_parts(&x) == xlsx_parts(&y), "{what}: Xlsx differs");
                        } else {
                            assert!(x == y, "{what}: {format:?} differs");
                        }
                    }
                }
            }
        }
    }
    assert!(left_out > 1000, "only {left_out} facts left out");
}
