//! The read plan: which envelopes each kind of view needs, and how they are fetched.
//!
//! A single child's views read the child's envelopes from the read models plus the registry
//! events of the schools the child's file names (`projections::world::schools_named`) — no
//! replay. School-wide views (scores, worklists, pairings, archives, back-fill, the term
//! report) read their scope through the read models (`scope_timeline`: the scope's versions
//! filtered as of a time; docs/read-models.md). `replay` folds the whole log, streamed: the
//! reference the read models are tested against. The `log` listing reads one index or the
//! whole log. The bureau's whole-log feed reads the world and then the effective facts in a
//! second scan (`fact_scan`).
//!
//! It is also where sealed personal fields are opened (docs/privacy.md): the envelopes a view
//! reads pass through an [`Opener`] after the read, with the key directory's vault; the term
//! report reads the clear parts as stored and never needs a key. The read models of `store`
//! index and hold envelopes as stored (sealed), never opened ones, so no clear personal field
//! is written into the store.
//!
//! This module owns those fetches and the opening; it must never compute a view, decide what a
//! view shows, or print anything.

use chrono::{DateTime, Utc};
use events::{Envelope, EventKind};
use projections::versions::Versions;
use projections::{Fact, ProjectionError, Timeline, World};
use store::{Store, StoreError};
use vault::{Reader, Vault, VaultError};

/// Why a read plan could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The envelopes read do not fold (a correction that cannot apply …): the record's
    /// content, not the machine, is at fault.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A sealed envelope could not be opened (a missing key, a ciphertext that does not
    /// authenticate).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Opens the sealed envelopes a view reads: with the key directory's vault for a reader, or
/// not at all (a store in clear, or a read that needs no personal field).
#[derive(Clone, Copy)]
pub struct Opener<'v> {
    vault: Option<&'v Vault>,
    reader: Reader,
    /// Whether a sealed envelope without a vault is an error (a view) or passes as stored.
    strict: bool,
    /// When set, only envelopes of these kinds are opened; the others pass as stored (their
    /// clear parts): for a view that shows no personal field of them.
    only: Option<fn(EventKind) -> bool>,
}

impl<'v> Opener<'v> {
    /// Opens with `vault` for `reader`; without a vault (a store in clear) a sealed
    /// envelope is an error naming the missing key directory.
    pub fn new(vault: Option<&'v Vault>, reader: Reader) -> Opener<'v> {
        Opener {
            vault,
            reader,
            strict: true,
            only: None,
        }
    }

    /// Leaves every envelope as stored: the clear parts with their presence placeholders.
    pub fn sealed() -> Opener<'static> {
        Opener {
            vault: None,
            reader: Reader::Staff,
            strict: false,
            only: None,
        }
    }

    /// This opener, opening only the envelopes `World::build` reads and the amendments (the
    /// names of schools, staff and children); care records pass as stored. For a worklist,
    /// which shows those names and counts care records, never their text: the rest need not
    /// be decrypted (measured: opening every envelope of a school made most of a worklist
    /// page's time with encryption on).
    pub fn world_only(self) -> Opener<'v> {
        Opener {
            only: Some(needed_for_world),
            ..self
        }
    }

    /// Whether envelopes are opened (or checked for a missing key directory) at all.
    pub fn opens(&self) -> bool {
        self.vault.is_some() || self.strict
    }

    /// One envelope, opened.
    pub fn open(&self, env: Envelope) -> Result<Envelope, VaultError> {
        if self.only.is_some_and(|open| !open(env.event.kind())) {
            return Ok(env);
        }
        match self.vault {
            Some(v) => v.open(env, self.reader),
            None if self.strict && env.sealed.is_some() => Err(VaultError::NoVault { id: env.id }),
            None => Ok(env),
        }
    }

    /// Envelopes, opened, in their order.
    pub fn open_all(&self, envs: Vec<Envelope>) -> Result<Vec<Envelope>, VaultError> {
        if !self.opens() {
            return Ok(envs);
        }
        envs.into_iter().map(|e| self.open(e)).collect()
    }
}

/// Everything a single child's views need: the registry-kind events of every school the
/// child's file has named and the child's own events (amendments included), in log order,
/// from the indexes — no replay.
pub fn child_envelopes(
    store: &Store,
    child: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    // The amendments of the child's file are indexed under the child too, so the timeline of
    // its own events knows every school the file has named and every staff member its events
    // name (a mentor, whoever recorded care), as corrected.
    let envs = store.child_envelopes(child, as_of)?;
    let envs = with_registries(store, envs, Vec::new(), Vec::new(), as_of)?;
    Ok(open.open_all(envs)?)
}

/// `envs` (a read's own envelopes, in log order) with the registries of the schools and staff
/// members they name as of `as_of`, and of `schools` and `staff` besides (`Store::registries_of`):
/// what a view reads of the world beyond its own people — a school's terms and policies, a
/// staff member's name and school — not the other children of those schools. In log order,
/// each envelope once.
fn with_registries(
    store: &Store,
    mut envs: Vec<Envelope>,
    mut schools: Vec<String>,
    mut staff: Vec<String>,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Envelope>, PlanError> {
    let named = Timeline::build(&envs, as_of)?;
    schools.extend(projections::world::schools_named(&named));
    staff.extend(
        named
            .facts()
            .iter()
            .chain(named.retracted())
            .filter_map(|f| f.event.staff().map(str::to_owned)),
    );
    for ids in [&mut schools, &mut staff] {
        ids.sort();
        ids.dedup();
    }
    envs.extend(store.registries_of(&schools, &staff, as_of)?);
    envs.sort_by_key(|e| e.seq);
    envs.dedup_by_key(|e| e.seq);
    Ok(envs)
}

/// One child's timeline as of `as_of`: the child's envelopes (`child_envelopes`) folded into
/// versions and filtered at `as_of`, with the whole log's head as of then (so "today" in a
/// view without `--as-of` is the log's last record, as in the replay).
pub fn child_timeline(
    store: &Store,
    child: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let envs = child_envelopes(store, child, as_of, open)?;
    let (head_seq, head_recorded_at) = store.head_as_of(as_of)?;
    Ok(Versions::build(envs).timeline_with_head(as_of, head_seq, head_recorded_at)?)
}

/// Everything a school's policy needs: that school's registry-kind events, folded.
pub fn school_registry(
    store: &Store,
    school: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Timeline, PlanError> {
    Ok(Timeline::build_owned(
        store.registry_events(Some(school), as_of)?,
        as_of,
    )?)
}

/// The envelopes of `careledger log`: one child's (by-child index), else one staff member's
/// (by-staff index), else the whole log, in log order.
pub fn log_envelopes(
    store: &Store,
    child: Option<&str>,
    staff: Option<&str>,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    let envs = match (child, staff) {
        (Some(c), _) => store.by_child(c, as_of)?,
        (None, Some(t)) => store.by_staff(t, as_of)?,
        (None, None) => store.scan(as_of).collect::<Result<_, _>>()?,
    };
    Ok(open.open_all(envs)?)
}

/// The whole log's timeline as of `as_of` by a plain replay — the reference the read models
/// are tested against, and the read of commands about no one school (`export`, `log`). The
/// log is streamed into the fold, so it is never held twice; the first read error ends the
/// replay and is returned.
pub fn replay(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<Timeline, PlanError> {
    replay_opened(store, as_of, &Opener::sealed())
}

/// [`replay`], each envelope opened by `open` as it is read.
fn replay_opened(
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let mut read_error = None;
    let envs = store.scan(as_of).map_while(|r| {
        match r
            .map_err(PlanError::from)
            .and_then(|env| Ok(open.open(env)?))
        {
            Ok(env) => Some(env),
            Err(e) => {
                read_error = Some(e);
                None
            }
        }
    });
    let tl = Timeline::build_owned(envs, as_of)?;
    match read_error {
        Some(e) => Err(e),
        None => Ok(tl),
    }
}

/// What a scoped read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One school, by id.
    School(String),
    /// Several schools, by id (a staff member's: the schools they ever belonged to).
    Schools(Vec<String>),
    /// Every school registered in a county, by county name.
    County(String),
}

impl Scope {
    /// The read scope of a report scope.
    pub fn of_report(scope: &reports::Scope) -> Scope {
        match scope {
            reports::Scope::School(s) => Scope::School(s.clone()),
            reports::Scope::County(c) => Scope::County(c.clone()),
        }
    }
}

/// The envelopes of a scope, in log order, up to `as_of`: for each school, its registry and
/// every envelope about a child or staff member who ever belonged to it, in any version (the
/// read models of `store`, `docs/read-models.md`). Costs the scope's envelopes, not the log's.
pub fn scope_envelopes(
    store: &Store,
    scope: &Scope,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    let schools = match scope {
        Scope::School(s) => vec![s.clone()],
        Scope::Schools(v) => v.clone(),
        Scope::County(c) => store.county_schools(c)?,
    };
    if let [one] = schools.as_slice() {
        return Ok(open.open_all(store.school_envelopes(one, as_of)?)?);
    }
    let seqs = schools_seqs(store, &schools)?;
    Ok(open.open_all(store.envelopes_at(seqs, as_of)?)?)
}

/// **The scoped read of the term report and of every school-wide view**: the versions of the
/// scope's effective facts (`projections::versions`), filtered as of `as_of` into a
/// `Timeline` whose head is the whole log's as of `as_of` (so the position a run prints is
/// the log's, as the replay gives it). For every view of a school in the scope — scores,
/// worklists of its staff, pairings, archives, back-fill, the term statistics — `World::build`
/// of it gives the same output as the replay of the whole log (`tests/it/read_models.rs`).
/// Facts of other schools may be present (a child who left, a visit by a teacher of another
/// school): the views select by their own rules, never by what the read left out.
///
/// A scope of most of the store's schools (a county's term report or evaluation run, when the
/// store holds that county) is read by one sequential replay instead: its envelopes are then
/// most of the log, and fetching them by seq and folding their versions measured 2–3 times
/// slower than the replay at county scale (docs/read-models.md). The replay is the reference
/// the read models are tested against, so the output is the same either way.
pub fn scope_timeline(
    store: &Store,
    scope: &Scope,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    if scope_is_replayed(store, scope)? {
        return replay_opened(store, as_of, open);
    }
    read_models_timeline(store, scope, as_of, open)
}

/// Whether [`scope_timeline`] reads `scope` by a replay of the whole log: a scope of more
/// than one school and more than half the store's.
pub fn scope_is_replayed(store: &Store, scope: &Scope) -> Result<bool, PlanError> {
    let schools = match scope {
        Scope::School(_) => 1,
        Scope::Schools(v) => v.len(),
        Scope::County(c) => store.county_schools(c)?.len(),
    };
    Ok(schools > 1 && schools * 2 > store.school_count()?)
}

/// The seqs the read models give for a set of schools (each school's, merged), ascending:
/// what [`scope_envelopes`] fetches for them.
pub fn schools_seqs(store: &Store, schools: &[String]) -> Result<Vec<u64>, PlanError> {
    let mut seqs = Vec::new();
    for s in schools {
        seqs.extend(store.school_seqs(s)?);
    }
    seqs.sort_unstable();
    seqs.dedup();
    Ok(seqs)
}

/// [`scope_timeline`] through the read models whatever the scope's size (what it does for a
/// scope of at most half the store's schools).
pub fn read_models_timeline(
    store: &Store,
    scope: &Scope,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let envs = scope_envelopes(store, scope, as_of, open)?;
    let (head_seq, head_recorded_at) = store.head_as_of(as_of)?;
    let versions = Versions::build(envs);
    Ok(versions.timeline_with_head(as_of, head_seq, head_recorded_at)?)
}

/// The scoped timeline of a staff member's views (`worklist`): the schools they ever
/// belonged to. Only what the world reads is opened ([`Opener::world_only`]): a worklist
/// shows names and counts, never a care record's text.
pub fn staff_timeline(
    store: &Store,
    staff: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let schools = store.staff_schools(staff)?;
    scope_timeline(store, &Scope::Schools(schools), as_of, &open.world_only())
}

/// Everything one staff member's worklist reads, from the read models, in log order: the
/// envelopes naming the staff member (their care records, pairings and registry events, with
/// amendments), the whole file of every child their pairings name as of `as_of` (what the
/// child's own views read: its registry, its pairings, its incidents), and the registries of
/// the schools and staff members all of those name. A worklist row reads nothing else (its staff member's
/// pairings and events, those children's files, the schools' terms and policies), so this
/// costs the teacher's few children, not the school.
pub fn worklist_envelopes(
    store: &Store,
    staff: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    let mut envs = store.staff_envelopes(staff, as_of)?;
    let own = Timeline::build(&envs, as_of)?;
    // A row counts care only for the children the staff member is paired with, and shows
    // only theirs: the children of an activity the teacher held with the whole class need not
    // be read.
    let mut children: Vec<String> = own
        .facts()
        .iter()
        .chain(own.retracted())
        .filter(|f| {
            matches!(
                f.event.kind(),
                EventKind::PairingAssigned | EventKind::PairingEnded
            )
        })
        .flat_map(|f| f.event.children().iter().cloned())
        .collect();
    children.sort();
    children.dedup();
    let known: Vec<u64> = envs.iter().map(|e| e.seq).collect();
    envs.extend(store.children_envelopes(&children, &known, as_of)?);
    envs.sort_by_key(|e| e.seq);
    // The staff member's own schools: a `staff_joined` names no school `schools_named` reads.
    let envs = with_registries(
        store,
        envs,
        store.staff_schools(staff)?,
        vec![staff.to_owned()],
        as_of,
    )?;
    Ok(open.world_only().open_all(envs)?)
}

/// One staff member's worklist timeline as of `as_of`: [`worklist_envelopes`] folded into
/// versions and filtered at `as_of`, with the whole log's head as of then. Gives the worklist
/// the replay gives (tested against it), reading the teacher's children instead of the
/// teacher's schools ([`staff_timeline`]).
pub fn worklist_timeline(
    store: &Store,
    staff: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let envs = worklist_envelopes(store, staff, as_of, open)?;
    let (head_seq, head_recorded_at) = store.head_as_of(as_of)?;
    Ok(Versions::build(envs).timeline_with_head(as_of, head_seq, head_recorded_at)?)
}

/// Why a walk of the fact rows stopped: the store, or the caller's own error.
enum Stop<E> {
    Store(StoreError),
    Each(E),
}

impl<E> From<StoreError> for Stop<E> {
    fn from(e: StoreError) -> Stop<E> {
        Stop::Store(e)
    }
}

/// One effective fact of a county-wide read ([`RowRead::facts`]): a fact row taken as
/// recorded, or — for an event an amendment had touched by then — the effective fact, the
/// amendments applied by `projections::timeline`'s rule.
pub enum RowFact<'r> {
    /// No amendment targets it as of the read's time: the row is the fact.
    Row(events::row::Row<'r>),
    /// An amendment targets it (a correction, a retraction would have left it out).
    Fact(Fact),
}

/// **The county-wide read**, from the read models' fact rows and world envelopes
/// (`Store::fact_rows`, `Store::world_envelopes`), never from the county's envelopes one by
/// one nor a replay: [`RowRead::world`] is `World::build` of the world's envelopes (every
/// envelope without a row, incident reports, every amendment) as of `as_of`, and
/// [`RowRead::facts`] gives every effective fact of a kind a quota may count
/// (`events::row::has_row`) recorded by then.
pub struct RowRead<'s> {
    store: &'s Store,
    open: Opener<'s>,
    as_of: Option<DateTime<Utc>>,
    /// The log's head as of `as_of`.
    head: u64,
    /// The timeline of the world's envelopes: every amendment of the prefix is in it.
    kept: Timeline,
    world: World,
    /// The events with a row that an amendment in `kept` targets, opened, in log order.
    amended: Vec<Envelope>,
    /// Their seqs.
    amended_seqs: rustc_hash::FxHashSet<u64>,
    /// The fact rows' values, when read ahead ([`row_read`]); taken by
    /// [`RowRead::rows_split`].
    values: std::sync::Mutex<Option<store::FactValues>>,
}

/// What a [`RowRead`] held besides its world ([`RowRead::into_world`]): only ever dropped.
pub struct Leftovers {
    _kept: Timeline,
    _amended: Vec<Envelope>,
    _amended_seqs: rustc_hash::FxHashSet<u64>,
}

/// Drops `value` on a thread of its own, so that the caller need not wait while a county's
/// read is freed (about 76 ms of the county's term report on the main thread, `perf`;
/// docs/read-models.md). Freeing is all that thread does: a process may end before it is
/// done. If no thread can be started, `value` is dropped here.
pub fn drop_beside<T: Send + 'static>(value: T) {
    // On an error the closure, and `value` with it, is dropped on this thread.
    let _ = std::thread::Builder::new()
        .name("careledger-drop".into())
        .spawn(move || drop(value));
}

/// Reads the world of the county-wide read as of `as_of` ([`RowRead`]), its envelopes opened
/// by `open` (and so are those of the amended events [`RowRead::facts`] reads back).
pub fn row_read<'s>(
    store: &'s Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'s>,
) -> Result<RowRead<'s>, PlanError> {
    // Neither read needs the other: the amended events and the fact rows' values are read
    // while the world is folded.
    let (amended, world) = std::thread::scope(|threads| {
        let amended = threads.spawn(|| {
            amended_rows(store, as_of, open)
                .map(|(head, amended)| (head, amended, store.fact_values(head)))
        });
        let world = world_of(store, as_of, open);
        let amended = amended
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (amended, world)
    });
    let (head, amended, values) = amended?;
    let world = world?;
    let amended_seqs = amended.iter().map(|e| e.seq).collect();
    Ok(RowRead::new(
        store,
        open,
        as_of,
        head,
        world,
        (amended, amended_seqs),
        Some(values),
    ))
}

/// [`row_read`] and [`RowRead::facts`] in one, for an `each` that does not need the world (the
/// term report's frame; a score run needs it to take a row): the rows are given while the
/// world is folded on a second thread, then the amended events' facts. `on_world` is called
/// on that thread with the world as soon as it is folded, while the rows are still being
/// given (the term report learns from it which days it can leave out). The facts given, and
/// the read returned, are those of the two calls.
pub fn row_read_with_facts<'s, E: From<PlanError>>(
    store: &'s Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'s>,
    on_world: impl FnOnce(&World) + Send,
    mut each: impl FnMut(RowFact<'_>) -> Result<bool, E>,
) -> Result<RowRead<'s>, E> {
    let (world, rows) = std::thread::scope(|threads| {
        let world = threads.spawn(|| {
            let read = world_of(store, as_of, open);
            if let Ok((_, world)) = &read {
                on_world(world);
            }
            read
        });
        // The amended events are read while the world is folded, then the rows.
        let rows = amended_rows(store, as_of, open).map(|(head, amended)| {
            let seqs: rustc_hash::FxHashSet<u64> = amended.iter().map(|e| e.seq).collect();
            let untaken = rows_pass(store, head, &seqs, &mut each);
            (head, amended, seqs, untaken)
        });
        let world = world
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (world, rows)
    });
    // Failures in the order the reads were made before they overlapped: the amended events',
    // the world's, the rows'.
    let (head, amended, amended_seqs, untaken) = rows?;
    let read = RowRead::new(
        store,
        open,
        as_of,
        head,
        world?,
        (amended, amended_seqs),
        None,
    );
    read.amended_pass(untaken?, &mut each)?;
    Ok(read)
}

/// The log's head as of `as_of`, and the events with a row that the amendments recorded by
/// then may change, opened — as the read models copied them (not fetched one by one from the
/// log, nor found by the id index, which a county-wide read would load whole for this).
fn amended_rows(
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<(u64, Vec<Envelope>), PlanError> {
    let (head, _) = store.head_as_of(as_of)?;
    Ok((head, open.open_all(store.amended_rows(head)?)?))
}

/// The world's envelopes as of `as_of`, opened, their timeline and `World::build` of it.
fn world_of(
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<(Timeline, World), PlanError> {
    let kept = Timeline::build_owned(open.open_all(store.world_envelopes(as_of)?)?, as_of)?;
    let world = World::build(&kept);
    Ok((kept, world))
}

/// Gives `each` every row up to `head` whose event is not in `amended`; returns the seqs of
/// the rows it did not take.
fn rows_pass<E: From<PlanError>>(
    store: &Store,
    head: u64,
    amended: &rustc_hash::FxHashSet<u64>,
    each: &mut impl FnMut(RowFact<'_>) -> Result<bool, E>,
) -> Result<Vec<u64>, E> {
    let mut untaken = Vec::new();
    store
        .fact_rows(head, |row| {
            let seq = row.seq;
            if !amended.contains(&seq) && !each(RowFact::Row(row)).map_err(Stop::Each)? {
                untaken.push(seq);
            }
            Ok(())
        })
        .map_err(|stop| match stop {
            Stop::Store(e) => E::from(PlanError::from(e)),
            Stop::Each(e) => e,
        })?;
    Ok(untaken)
}

impl<'s> RowRead<'s> {
    fn new(
        store: &'s Store,
        open: &Opener<'s>,
        as_of: Option<DateTime<Utc>>,
        head: u64,
        (kept, world): (Timeline, World),
        (amended, amended_seqs): (Vec<Envelope>, rustc_hash::FxHashSet<u64>),
        values: Option<store::FactValues>,
    ) -> RowRead<'s> {
        RowRead {
            store,
            open: *open,
            as_of,
            head,
            kept,
            world,
            amended,
            amended_seqs,
            values: std::sync::Mutex::new(values),
        }
    }

    /// The world as of the read's time.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world, and the rest of the read as one value to be dropped ([`drop_beside`]): a
    /// county's timeline of the world's envelopes and the amended events, which take tens of
    /// milliseconds to free once the facts are given.
    pub fn into_world(self) -> (World, Leftovers) {
        let rest = Leftovers {
            _kept: self.kept,
            _amended: self.amended,
            _amended_seqs: self.amended_seqs,
        };
        (self.world, rest)
    }

    /// The read's time.
    pub fn as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }

    /// The log's head (its last seq) as of the read's time.
    pub fn head_seq(&self) -> u64 {
        self.head
    }

    /// Calls `each` with every effective fact of a kind a quota may count recorded by the
    /// read's time, in no particular order: a row as recorded when no amendment targets its
    /// event by then; else the event read back as its envelope and made effective by the
    /// world's timeline (`Timeline::effective`), so a correction of `child`, `staff` or
    /// `occurred_at` and a retraction mean what they mean in the replay. `each` answers
    /// whether it took a row; a row it did not take (one it cannot represent, e.g. an instant
    /// out of its range) is given again as a fact. The facts given equal the replay's
    /// `timeline.facts()` of those kinds (`tests/it/read_models.rs`).
    pub fn facts<E: From<PlanError>>(
        &self,
        mut each: impl FnMut(RowFact<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let untaken = rows_pass(self.store, self.head, &self.amended_seqs, &mut each)?;
        self.amended_pass(untaken, &mut each)
    }

    /// The first half of [`RowRead::facts`] for a reader that takes every row and can count
    /// them apart on each core: the rows no amendment targets, each to one of `shares` (one
    /// per thread, in no particular order); the second half is [`RowRead::amended_facts`].
    /// `false` when the rows could not be split exactly (`FactValues::split`): the shares
    /// hold part of the rows, and the caller reads everything with `facts` instead.
    pub fn rows_split<S: Send>(
        &self,
        shares: &mut [S],
        row: impl Fn(&mut S, events::row::Row<'_>) + Sync,
    ) -> bool {
        // The values read ahead, freed once their rows are given.
        let ahead = self.values.lock().ok().and_then(|mut v| v.take());
        let values = ahead.unwrap_or_else(|| self.store.fact_values(self.head));
        let amended = &self.amended_seqs;
        let split = values.split(shares, |share, r| {
            if !amended.contains(&r.seq) {
                row(share, r);
            }
        });
        drop_beside(values);
        split
    }

    /// The effective facts of the amended events: what [`RowRead::facts`] gives after the
    /// rows, when every row was taken ([`RowRead::rows_split`]).
    pub fn amended_facts<E: From<PlanError>>(
        &self,
        mut each: impl FnMut(Fact) -> Result<(), E>,
    ) -> Result<(), E> {
        self.amended_pass(Vec::new(), &mut |f| {
            // With nothing untaken, `amended_pass` gives facts only.
            if let RowFact::Fact(f) = f {
                each(f)?;
            }
            Ok(true)
        })
    }

    /// Gives `each` the effective facts of the amended events and of the rows it did not take
    /// (`untaken`, read back whole).
    fn amended_pass<E: From<PlanError>>(
        &self,
        untaken: Vec<u64>,
        each: &mut impl FnMut(RowFact<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let envs = match untaken.is_empty() {
            true => Vec::new(),
            false => {
                let envs = self
                    .store
                    .envelopes_at(untaken, self.as_of)
                    .map_err(PlanError::from)?;
                self.open.open_all(envs).map_err(PlanError::from)?
            }
        };
        for env in self.amended.iter().cloned().chain(envs) {
            if let Some(fact) = self.kept.effective(env).map_err(PlanError::from)? {
                each(RowFact::Fact(fact))?;
            }
        }
        Ok(())
    }
}

/// Whether `World::build` reads envelopes of this kind, or it is an amendment (which any
/// event may need): what the first scan of [`fact_scan`] keeps.
fn needed_for_world(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::SchoolRegistered
            | EventKind::TermDefined
            | EventKind::PolicyAdopted
            | EventKind::StaffJoined
            | EventKind::StaffLeft
            | EventKind::ChildRegistered
            | EventKind::ChildUpdated
            | EventKind::ChildStatusChanged
            | EventKind::PairingAssigned
            | EventKind::PairingEnded
            | EventKind::IncidentReported
            | EventKind::Corrected
            | EventKind::Retracted
    )
}

/// The world as of a time and a stream of the effective facts of that prefix, for the
/// whole-log read of the bureau feed (`export events --format parquet`) that never holds the
/// care events in memory: see [`fact_scan`].
pub struct FactScan<'s> {
    store: &'s Store,
    as_of: Option<DateTime<Utc>>,
    kept: Timeline,
    world: World,
}

/// Scans the log once for what the world needs and every amendment (a small share of the
/// log), builds the timeline of those and its world; [`FactScan::facts`] then streams the
/// log again, each envelope made effective through that timeline's amendments
/// (`Timeline::effective`).
pub fn fact_scan(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<FactScan<'_>, PlanError> {
    let mut kept = Vec::new();
    for env in store.scan(as_of) {
        let env = env?;
        if needed_for_world(env.event.kind()) {
            kept.push(env);
        }
    }
    let kept = Timeline::build_owned(kept, as_of)?;
    let world = World::build(&kept);
    Ok(FactScan {
        store,
        as_of,
        kept,
        world,
    })
}

impl FactScan<'_> {
    /// The world as of the scan's time.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The effective facts of the kinds `wanted`, in log order (retracted events and
    /// amendments left out, corrections applied), streamed from a second scan of the log.
    pub fn facts(
        &self,
        wanted: fn(EventKind) -> bool,
    ) -> impl Iterator<Item = Result<Fact, PlanError>> + '_ {
        self.store
            .scan(self.as_of)
            .filter_map(move |env| match env {
                Err(e) => Some(Err(PlanError::Store(e))),
                Ok(env) if !wanted(env.event.kind()) => None,
                Ok(env) => self
                    .kept
                    .effective(env)
                    .map_err(PlanError::from)
                    .transpose(),
            })
    }
}
