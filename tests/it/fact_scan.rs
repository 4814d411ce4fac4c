//! The read plan's fact scan (`plan::fact_scan`: the world, then the effective facts in a
//! second scan) against the replay it stands in for, on a stored generated county as of
//! several recorded times — one just before a correction: the same facts, the same term
//! report (polars over the scan against the reference fold over the replay, byte for byte),
//! the same bureau feed files.

use careledger::plan;
use events::Event;
use projections::World;
use reports::{Format, Scope};
use store::Store;

use crate::careledger_ok;

#[test]
fn given_a_stored_county_when_scanned_for_facts_then_they_equal_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("county.jsonl");
    careledger_ok(
        &db,
        &[
            "fixtures",
            "generate",
            "--schools",
            "2",
            "--children-per-school",
            "30",
            "--seed",
            "4",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    careledger_ok(&db, &["init"]);
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", file.to_str().unwrap()],
    );
    let store = Store::open(&db).unwrap();
    let all: Vec<_> = store.scan(None).collect::<Result<_, _>>().unwrap();
    let correction = all
        .iter()
        .find(|e| matches!(e.event, Event::Corrected { .. }))
        .expect("the county has a correction");
    let times = [
        None,
        Some(all[all.len() / 3].recorded_at),
        Some(correction.recorded_at - chrono::Duration::microseconds(1)),
        Some(correction.recorded_at),
    ];
    for as_of in times {
        let replayed = plan::replay(&store, as_of).unwrap();
        let world = World::build(&replayed);
        let scan = plan::fact_scan(&store, as_of).unwrap();
        let facts: Vec<_> = scan.facts(|_| true).collect::<Result<_, _>>().unwrap();
        let replayed_facts: Vec<_> = replayed.facts().iter().map(|f| (**f).clone()).collect();
        assert!(facts == replayed_facts, "facts as of {as_of:?}");

        let mut frame = reports::FactFrame::new();
        for f in scan.facts(reports::columnar::counted_by_term_report) {
            frame.push(&f.unwrap()).unwrap();
        }
        let county = Scope::County("黔东县".into());
        let polars = reports::term_report(scan.world(), frame, county.clone(), "2025-2026-1");
        let folded = reports::term_statistics_folded(&replayed, &world, county, "2025-2026-1");
        match (polars, folded) {
            (Ok(p), Ok(f)) => {
                for format in [Format::Csv, Format::Json, Format::Table, Format::Parquet] {
                    assert!(
                        reports::render(&p, format).unwrap()
                            == reports::render(&f, format).unwrap(),
                        "{format:?} as of {as_of:?}"
                    );
                }
            }
            (Err(p), Err(f)) => assert_eq!(p.to_string(), f.to_string()),
            (p, f) => panic!("as of {as_of:?}: {:?} vs {:?}", p.err(), f.err()),
        }

        let out = tempfile::tempdir().unwrap();
        let secret = events::pseudonym::CountySecret::new("黔东县", [5u8; 32]).unwrap();
        let whole =
            reports::export_events_parquet(&replayed, &world, &secret, &out.path().join("a"))
                .unwrap();
        let mut export =
            reports::BureauExport::create(scan.world(), &secret, &out.path().join("b")).unwrap();
        for f in scan.facts(|_| true) {
            export.push(&f.unwrap()).unwrap();
        }
        let streamed = export.finish().unwrap();
        assert_eq!(whole.rows, streamed.rows);
        assert_eq!(whole.files.len(), streamed.files.len());
        for (a, b) in whole.files.iter().zip(&streamed.files) {
            assert_eq!(
                a.strip_prefix(out.path().join("a")).unwrap(),
                b.strip_prefix(out.path().join("b")).unwrap()
            );
            assert!(
                std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                "{}",
                a.display()
            );
        }
    }
}
