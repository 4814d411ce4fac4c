//! The service's kept worklist versions (`careledger::staff_cache`) against the plan they
//! stand for (`plan::staff_timeline`): on a generated county with transfers and corrections
//! that move events between schools, appended week by week, every staff member's worklist
//! from the kept versions equals the plan's, now and as of a past time, after every few
//! weeks (and equals the worklist computed from the whole school's score runs); and on a
//! sealed store, a child's key erased while its names are kept makes the kept versions fold
//! again, so the name is gone from the next worklist at once. The keeper's
//! catch-up after appends (`StaffCache::catch_up`) folds every kept set up to the log, and
//! the reads after it equal the plan's as well. A page of a set not kept yet is answered by
//! the teacher's own read (`plan::worklist_timeline`), the same worklist, and leaves the fold
//! to the keeper.

use careledger::plan::{self, Opener};
use careledger::staff_cache::StaffCache;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::{Draft, Source};
use projections::{Timeline, World};
use store::Store;

fn worklist(tl: &Timeline, staff: &str, day: NaiveDate) -> String {
    let world = World::build(tl);
    match projections::worklist::worklist(tl, &world, staff, day) {
        Ok(v) => serde_json::to_string(&v).expect("a view serializes"),
        Err(e) => format!("error: {e}"),
    }
}

/// Every staff member's worklist from the cache and from the plan, as of `as_of`.
fn check(store: &Store, cache: &StaffCache, as_of: Option<DateTime<Utc>>, what: &str) -> usize {
    let open = Opener::sealed();
    let head = plan::replay(store, None).expect("replay");
    let day = events::time::local_date(
        as_of.unwrap_or_else(|| head.facts().last().map(|f| f.recorded_at).expect("a fact")),
    );
    let staff: Vec<String> = World::build(&head)
        .all_staff()
        .map(|s| s.id.clone())
        .collect();
    for s in &staff {
        // What a page reads: the kept versions, or the teacher's own read while the set is
        // not kept yet (the first staff member of each set here).
        let page = cache
            .worklist_timeline(store, None, s, as_of, &open)
            .expect("page read");
        let kept = cache
            .staff_timeline(store, None, s, as_of, &open)
            .expect("kept read");
        let plan = plan::staff_timeline(store, s, as_of, &open).expect("plan read");
        let from_plan = worklist(&plan, s, day);
        assert_eq!(
            worklist(&page, s, day),
            from_plan,
            "{what}: page worklist of {s} as of {as_of:?}"
        );
        assert_eq!(
            worklist(&kept, s, day),
            from_plan,
            "{what}: worklist of {s} as of {as_of:?}"
        );
        // A worklist indexes only its staff member's events; the reference indexes the
        // school's, as the scores do: the same worklist.
        let world = World::build(&plan);
        let reference =
            match projections::worklist::worklist_indexing_the_school(&plan, &world, s, day) {
                Ok(v) => serde_json::to_string(&v).expect("a view serializes"),
                Err(e) => format!("error: {e}"),
            };
        assert_eq!(
            from_plan, reference,
            "{what}: worklist of {s} indexing the school"
        );
        // The same timeline, not only the same view of it: every fact, retracted event and
        // amendment, in log order.
        assert!(
            kept.facts() == plan.facts()
                && kept.retracted() == plan.retracted()
                && kept.amendments() == plan.amendments(),
            "{what}: timeline of {s} as of {as_of:?}"
        );
        assert_eq!(
            (kept.head_seq(), kept.head_recorded_at()),
            (plan.head_seq(), plan.head_recorded_at()),
            "{what}: head of {s}"
        );
    }
    staff.len()
}

#[test]
fn given_a_county_appended_week_by_week_when_worklists_are_read_from_kept_versions_then_each_equals_the_plans()
 {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Store::create(&dir.path().join("db")).expect("init");
    let (drafts, between) = crate::read_models::county(2);
    let now = events::time::parse_instant("2027-01-01").expect("an instant");
    let cache = StaffCache::default();
    let mut batch: Vec<Draft> = Vec::new();
    let mut start: Option<DateTime<Utc>> = None;
    let mut weeks = 0;
    let mut checked = 0;
    let mut past = None;
    for d in drafts {
        let r = d.recorded_at.expect("a migration");
        if start.is_some_and(|s| r - s > Duration::days(7)) {
            store
                .append_at(std::mem::take(&mut batch), Source::Migration, now)
                .expect("append");
            start = None;
            weeks += 1;
            // Every other week the service's keeper catches the kept sets up after the
            // append (the other weeks the next read folds the weeks appended since).
            if weeks % 2 == 1 {
                cache.catch_up(&store, None, &Opener::sealed());
                for (schools, folded) in cache.kept() {
                    let seqs = plan::schools_seqs(&store, &schools).expect("postings");
                    assert_eq!(folded, seqs.len(), "week {weeks}: {schools:?} caught up");
                }
            }
            // Every six weeks: now, and as of the week before (an earlier time than the kept
            // versions hold).
            if weeks % 6 == 0 {
                checked += check(&store, &cache, None, &format!("week {weeks}"));
                checked += check(&store, &cache, past, &format!("week {weeks}"));
                past = Some(r - Duration::days(7));
            }
        }
        start.get_or_insert(r);
        batch.push(d);
    }
    store
        .append_at(batch, Source::Migration, now)
        .expect("append");
    checked += check(&store, &cache, None, "the end");
    checked += check(
        &store,
        &cache,
        Some(between),
        "between a correction and its event",
    );
    // Not vacuous: every check compared the worklists of many staff members.
    assert!(
        weeks > 30 && checked > 200,
        "{weeks} weeks, {checked} worklists"
    );
}

#[test]
fn a_page_of_a_set_not_kept_is_answered_by_the_teachers_own_read_and_the_keeper_folds_the_set() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Store::create(&dir.path().join("db")).expect("init");
    let (drafts, _) = crate::read_models::county(1);
    let now = events::time::parse_instant("2027-01-01").expect("an instant");
    store
        .append_at(drafts, Source::Migration, now)
        .expect("append");
    let open = Opener::sealed();
    let cache = StaffCache::default();
    let staff = "s001-t02";
    let day = NaiveDate::from_ymd_opt(2025, 11, 20).expect("a date");
    let as_of = Some(events::time::end_of_day(day));
    let plan = plan::staff_timeline(&store, staff, as_of, &open).expect("plan read");

    // Given a set never read, when a page reads it: the teacher's own read answers (the same
    // worklist, fewer facts than the schools'), and the set is registered, not folded.
    let page = cache
        .worklist_timeline(&store, None, staff, as_of, &open)
        .expect("page read");
    assert_eq!(worklist(&page, staff, day), worklist(&plan, staff, day));
    assert!(page.facts().len() < plan.facts().len());
    let schools = store.staff_schools(staff).expect("schools");
    assert_eq!(cache.kept(), vec![(schools.clone(), 0)]);
    assert!(cache.unfolded(), "the page asks the keeper to fold the set");

    // When the keeper catches up, the set is folded, and the next page reads it.
    cache.catch_up(&store, None, &open);
    let folded = plan::schools_seqs(&store, &schools)
        .expect("postings")
        .len();
    assert!(folded > 0);
    assert_eq!(cache.kept(), vec![(schools, folded)]);
    assert!(!cache.unfolded(), "nothing left for the keeper to fold");
    let page = cache
        .worklist_timeline(&store, None, staff, as_of, &open)
        .expect("page read");
    assert!(page.facts() == plan.facts(), "the kept versions answer");
    assert_eq!(worklist(&page, staff, day), worklist(&plan, staff, day));
}

#[test]
fn an_erased_key_is_gone_from_the_next_worklist_of_kept_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    crate::seed_store(tmp.path(), &db);
    let store = Store::open(&db).unwrap();
    let v = vault::Vault::open_dir(&tmp.path().join("store.keys"))
        .unwrap()
        .expect("a master key");
    let open = Opener::new(Some(&v), vault::Reader::Staff);
    let day = NaiveDate::from_ymd_opt(2025, 11, 20).unwrap();
    let as_of = Some(events::time::end_of_day(day));
    let cache = StaffCache::default();
    let read = |staff: &str| {
        let kept = cache
            .staff_timeline(&store, Some(&v), staff, as_of, &open)
            .unwrap();
        let plan = plan::staff_timeline(&store, staff, as_of, &open).unwrap();
        let (a, b) = (worklist(&kept, staff, day), worklist(&plan, staff, day));
        assert_eq!(a, b, "worklist of {staff}");
        a
    };
    // A teacher's worklist names the children they mentor; take the first one's name.
    let world = World::build(&plan::staff_timeline(&store, "sq-t02", as_of, &open).unwrap());
    let child = world
        .children()
        .find(|c| read("sq-t02").contains(&c.file_on(day).name))
        .map(|c| (c.id.clone(), c.file_on(day).name))
        .expect("a child named on sq-t02's worklist");
    assert!(read("sq-t02").contains(&child.1));
    v.erase(&events::seal::KeySubject::Child(child.0.clone()))
        .unwrap();
    assert!(
        !read("sq-t02").contains(&child.1),
        "{} is still named after its key was erased",
        child.0
    );
}
