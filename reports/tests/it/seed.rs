//! The seed school (fixtures/seed-school): the report's own arithmetic holds — every total is
//! the sum of its rows, every rate is its count over `children` — and it agrees with a count
//! made straight from the projections.

use projections::{Timeline, World};
use reports::{ReportRow, Scope};

use crate::cases::{load_events, seed_school};

fn counts(r: &ReportRow) -> Vec<u64> {
    vec![
        r.children,
        r.both_parents_away,
        r.one_parent_away,
        r.grandparent_guardian,
        r.boarding,
        r.hardship,
        r.archived,
        r.paired,
        r.talked,
        r.home_visited,
        r.talks,
        r.parent_calls,
        r.family_calls,
        r.letters,
        r.warmth_visits,
        r.counseling_sessions,
        r.aid_fen() as u64,
        r.dropped_out,
        r.incidents,
        r.escalated_on_time,
    ]
}

#[test]
fn given_the_seed_school_when_reported_then_totals_add_up_and_rates_follow() {
    let Some(seed) = seed_school() else {
        panic!("fixtures/seed-school/events.jsonl is missing");
    };
    let envelopes = load_events(&[seed]);
    let timeline = Timeline::build(&envelopes, None).unwrap();
    let world = World::build(&timeline);
    let school = world.schools().next().expect("a school").clone();
    for term in school.terms() {
        let report = reports::term_statistics(
            &timeline,
            &world,
            Scope::School(school.id.clone()),
            term.id.as_str(),
        )
        .unwrap();
        let rows = report.rows().unwrap();
        let (total, classes) = rows.split_last().expect("a total row");
        assert_eq!((total.grade, total.class), (None, None));
        assert!(
            classes
                .iter()
                .all(|r| r.grade.is_some() && r.class.is_some())
        );
        let mut sum = vec![0u64; counts(total).len()];
        for r in classes {
            for (s, c) in sum.iter_mut().zip(counts(r)) {
                *s += c;
            }
        }
        assert_eq!(sum, counts(total), "term {}", term.id);
        for r in &rows {
            let n = r.children as f64;
            assert!(r.children > 0);
            assert_eq!(r.archive_rate, Some(r.archived as f64 / n));
            assert_eq!(r.pairing_rate, Some(r.paired as f64 / n));
            assert_eq!(r.talk_coverage, Some(r.talked as f64 / n));
            assert_eq!(r.home_visit_coverage, Some(r.home_visited as f64 / n));
            assert_eq!(r.retention_rate, Some(1.0 - r.dropped_out as f64 / n));
        }
        // every child active on a day of the term counts, once
        let days = term.days();
        let active = world
            .children()
            .filter(|c| c.active_days().overlaps(&days))
            .count() as u64;
        assert_eq!(total.children, active, "term {}", term.id);
        // every talk about a counted child on a day of the term counts
        let talks = timeline
            .facts()
            .iter()
            .filter(|f| {
                matches!(&f.event, events::Event::TalkHeld { child, .. }
                    if world.child(child).is_some_and(|c| c.active_days().overlaps(&days)))
                    && days.contains(f.date())
            })
            .count() as u64;
        assert_eq!(total.talks, talks, "term {}", term.id);
    }
}

#[test]
fn the_seed_school_table_prints() {
    let Some(seed) = seed_school() else {
        panic!("fixtures/seed-school/events.jsonl is missing");
    };
    let envelopes = load_events(&[seed]);
    let timeline = Timeline::build(&envelopes, None).unwrap();
    let world = World::build(&timeline);
    let school = world.schools().next().expect("a school").id.clone();
    let report =
        reports::term_statistics(&timeline, &world, Scope::School(school), "2025-2026-1").unwrap();
    let table = reports::render_table(&report).unwrap();
    println!("{table}");
    assert_eq!(table.lines().count(), report.frame().height() + 1);
}
