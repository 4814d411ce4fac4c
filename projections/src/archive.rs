//! The child's archive (档案): the registered file with its updates, status, guardian and
//! work-place histories, pairings, study buddy, a count of care work and the completeness rule
//! of rules §8.5; plus the school listing of archives. The contact card (`contact_card`) reads
//! the same file through the helpers here.
//!
//! It is a pure fold over a [`Timeline`] and its [`World`]; it must never read the store or
//! the clock, and it never shows counseling notes (care work appears as counts only).
//!
//! Valid time: with `valid_at = D` the file shows the changes that occurred by the end of `D`
//! (`World::file_on`), statuses, pairings and buddies whose own date (`on`, `from`) is on or
//! before `D`, and care events that occurred by then. Without it, everything known is shown
//! and "current" (status, mentors, buddy) means the day of the as-of bound.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::event::{
    ChildRecord, ChildStatus, Guardian, GuardianRelation, PairingRole, Parent, ParentInfo,
};
use events::time::local_date;
use events::{Event, EventKind};
use serde::Serialize;

use crate::ProjectionError;
use crate::labels::{
    row, yes_no, zh_gender, zh_guardian_relation, zh_kind, zh_missing, zh_parent, zh_role,
    zh_status,
};
use crate::timeline::Timeline;
use crate::world::{Child, World};

/// A child's archive as of a recorded time, optionally restricted to what had occurred by a
/// valid date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Archive {
    /// The child id.
    pub child: String,
    /// The valid date asked for, if any.
    pub valid_at: Option<NaiveDate>,
    /// The day "current" refers to: `valid_at`, else the as-of day.
    pub reference_day: Option<NaiveDate>,
    /// The local date of `child_registered` (建档日期).
    pub registered_on: NaiveDate,
    /// The file (registration plus updates), in the wire vocabulary of `child_registered`.
    pub file: ChildRecord,
    /// Status on the reference day (`None`: no status change yet, which reads as left behind).
    pub status: Option<ChildStatus>,
    /// Active (rules §5.6) on the reference day.
    pub active: bool,
    /// Status changes whose `on` is by the valid date, by `on` (log order on the same day).
    pub status_history: Vec<StatusEntry>,
    /// The guardian named at registration, then each update that changed the guardian.
    pub guardian_history: Vec<GuardianEntry>,
    /// Each parent's work place at registration, then each update that changed it.
    pub work_place_history: Vec<WorkPlaceEntry>,
    /// Every pairing of the child (mentor or 代理家长), by `from` then staff id.
    pub pairings: Vec<PairingEntry>,
    /// Study buddies assigned by the valid date, by `from`.
    pub buddies: Vec<BuddyEntry>,
    /// The buddy on the reference day (the latest assigned from on or before it).
    pub buddy: Option<String>,
    /// Care work about the child, by kind: counts and the last date (no content).
    pub care: Vec<CareCount>,
    /// The file meets the completeness rule of rules §8.5 (`missing` is empty).
    pub complete: bool,
    /// Missing fields of the §8 completeness rule (empty when complete).
    pub missing: Vec<&'static str>,
}

/// A status change of the child.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusEntry {
    /// The day the status took effect (`child_status_changed.on`).
    pub on: NaiveDate,
    /// The new status.
    pub status: ChildStatus,
    /// The free-text note on the change, if any.
    pub note: Option<String>,
}

/// Who the guardian was from a date on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardianEntry {
    /// The local date of the registration or of the update that named this guardian.
    pub from: NaiveDate,
    /// The guardian's name.
    pub name: String,
    /// How the guardian is related to the child.
    pub relation: GuardianRelation,
    /// The guardian's phone, as written.
    pub phone: String,
}

/// Where a parent worked from a date on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkPlaceEntry {
    /// The local date of the registration or of the update that gave this work place.
    pub from: NaiveDate,
    /// Which parent (father or mother).
    pub relation: Parent,
    /// The parent's name.
    pub name: String,
    /// Where the parent works (city, trade), as written.
    pub work_place: String,
    /// The employer's address, as written (may be empty).
    pub employer_address: String,
}

/// One assignment of a staff member to the child.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairingEntry {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined` (the id when unknown).
    pub staff_name: String,
    /// `mentor` (帮扶教师) or `proxy_parent` (代理家长).
    pub role: PairingRole,
    /// The first day of the pairing (`pairing_assigned.from`).
    pub from: NaiveDate,
    /// The end (`pairing_ended.on`, exclusive); `None` while open.
    pub to: Option<NaiveDate>,
    /// Active (rules §5.6) on the reference day.
    pub active: bool,
}

/// A study buddy (学习帮手) from a date on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuddyEntry {
    /// The buddy's name (a classmate), as recorded in `buddy_assigned`.
    pub buddy: String,
    /// The first day (`buddy_assigned.from`).
    pub from: NaiveDate,
}

/// How much care work of one kind the child received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CareCount {
    /// The care event type (`talk_held`, `home_visit`, …).
    pub kind: EventKind,
    /// How many such events about the child occurred (by the valid date).
    pub count: u32,
    /// The local date of the latest of them.
    pub last_on: NaiveDate,
}

/// One row of the school's archive listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveRow {
    /// The child id.
    pub child: String,
    /// The child's name on the file.
    pub name: String,
    /// The grade on the file (1 to 9).
    pub grade: u8,
    /// The class within the grade.
    pub class: u32,
    /// The guardian's name.
    pub guardian: String,
    /// The guardian's phone.
    pub guardian_phone: String,
    /// Names of the staff paired and active on the reference day.
    pub mentors: Vec<String>,
    /// Status on the reference day (`None`: no status change yet).
    pub status: Option<ChildStatus>,
    /// Active (rules §5.6) on the reference day.
    pub active: bool,
    /// The file is complete (rules §8.5).
    pub complete: bool,
    /// Missing fields of the completeness rule (empty when complete).
    pub missing: Vec<&'static str>,
}

/// The archives of a school.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Archives {
    /// The school id.
    pub school: String,
    /// The valid date asked for, if any.
    pub valid_at: Option<NaiveDate>,
    /// Only incomplete files are listed in `rows` (`archives --incomplete`).
    pub incomplete_only: bool,
    /// Children whose file names the school (by the valid date), listed or not.
    pub children: usize,
    /// Of those, the ones with a complete file.
    pub complete: usize,
    /// `complete / children`; `None` when the school has no child.
    pub archive_rate: Option<f64>,
    /// The listed children, by grade, class and child id.
    pub rows: Vec<ArchiveRow>,
}

/// The day "current" refers to: the valid date, else the as-of day, else the day of the last
/// record (a timeline built without a bound).
pub(crate) fn reference_day(timeline: &Timeline, valid_at: Option<NaiveDate>) -> Option<NaiveDate> {
    valid_at.or_else(|| {
        timeline
            .as_of()
            .or(timeline.head_recorded_at())
            .map(local_date)
    })
}

/// The child, or `UnknownChild`; with a valid date, a child registered after it is unknown
/// then.
pub(crate) fn child_as_of<'a>(
    world: &'a World,
    child: &str,
    valid_at: Option<NaiveDate>,
) -> Result<&'a Child, ProjectionError> {
    world
        .child(child)
        .filter(|c| valid_at.is_none_or(|d| c.registered_on <= d))
        .ok_or_else(|| ProjectionError::UnknownChild {
            child: child.to_owned(),
        })
}

pub(crate) fn file_of(c: &Child, valid_at: Option<NaiveDate>) -> ChildRecord {
    match valid_at {
        Some(d) => c.file_on(d),
        None => c.file_latest(),
    }
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// The fields of the completeness rule (rules §8.5) the file lacks, in the rule's order:
/// `name`, `gender`, `birth_date`, `class`, `address`, a parent with `phone` and `work_place`,
/// `guardian.name`, `guardian.relation`, `guardian.phone`. Strings of blanks count as empty;
/// class 0 counts as no class. Typed fields (gender, birth date, relation) are always present.
/// For parents, the parent closest to complete is reported: `parents` when none is listed,
/// else the fields that parent lacks.
pub fn missing_fields(file: &ChildRecord) -> Vec<&'static str> {
    let mut out = Vec::new();
    if blank(&file.name) {
        out.push("name");
    }
    if file.class == 0 {
        out.push("class");
    }
    if blank(&file.address) {
        out.push("address");
    }
    let score = |p: &ParentInfo| u8::from(!blank(&p.phone)) + u8::from(!blank(&p.work_place));
    match file.parents.iter().max_by_key(|p| score(p)) {
        None => out.push("parents"),
        Some(p) => {
            if blank(&p.phone) {
                out.push("parents.phone");
            }
            if blank(&p.work_place) {
                out.push("parents.work_place");
            }
        }
    }
    if blank(&file.guardian.name) {
        out.push("guardian.name");
    }
    if blank(&file.guardian.phone) {
        out.push("guardian.phone");
    }
    out
}

/// The child's archive as the timeline knows it, optionally as of a valid date.
pub fn archive(
    timeline: &Timeline,
    world: &World,
    child: &str,
    valid_at: Option<NaiveDate>,
) -> Result<Archive, ProjectionError> {
    let c = child_as_of(world, child, valid_at)?;
    let day = reference_day(timeline, valid_at);
    let file = file_of(c, valid_at);
    let by_valid = |d: NaiveDate| valid_at.is_none_or(|v| d <= v);

    let status_history: Vec<StatusEntry> = c
        .statuses()
        .iter()
        .filter(|s| by_valid(s.on))
        .map(|s| StatusEntry {
            on: s.on,
            status: s.status,
            note: s.note.clone(),
        })
        .collect();

    let (guardian_history, work_place_history) = file_histories(c, valid_at);
    let pairings = pairing_entries(world, child, valid_at, day);

    let mut buddies = Vec::new();
    let mut care: BTreeMap<EventKind, (u32, NaiveDate)> = BTreeMap::new();
    for f in timeline.facts() {
        match &f.event {
            Event::BuddyAssigned {
                child: c2,
                buddy,
                from,
            } if c2 == child && by_valid(*from) => buddies.push(BuddyEntry {
                buddy: buddy.clone(),
                from: *from,
            }),
            e if e.kind().is_care_work()
                && by_valid(f.date())
                && world.event_children(e).contains(&child) =>
            {
                let slot = care.entry(e.kind()).or_insert((0, f.date()));
                slot.0 += 1;
                slot.1 = slot.1.max(f.date());
            }
            _ => {}
        }
    }
    buddies.sort_by_key(|a| a.from);
    let buddy = current_buddy(&buddies, day);
    let missing = missing_fields(&file);
    Ok(Archive {
        child: child.to_owned(),
        valid_at,
        reference_day: day,
        registered_on: c.registered_on,
        status: day.and_then(|d| c.status_on(d)),
        active: day.is_some_and(|d| c.active_on(d)),
        file,
        status_history,
        guardian_history,
        work_place_history,
        pairings,
        buddies,
        buddy,
        care: EventKind::CARE_WORK
            .iter()
            .filter_map(|k| {
                care.get(k).map(|(count, last_on)| CareCount {
                    kind: *k,
                    count: *count,
                    last_on: *last_on,
                })
            })
            .collect(),
        complete: missing.is_empty(),
        missing,
    })
}

/// The latest buddy assigned on or before `day` (buddies sorted by `from`, stable).
pub(crate) fn current_buddy(buddies: &[BuddyEntry], day: Option<NaiveDate>) -> Option<String> {
    let day = day?;
    buddies
        .iter()
        .rev()
        .find(|b| b.from <= day)
        .map(|b| b.buddy.clone())
}

/// Guardian and parents' work-place histories: the registration, then every update (in
/// occurred order) that changed them.
fn file_histories(
    c: &Child,
    valid_at: Option<NaiveDate>,
) -> (Vec<GuardianEntry>, Vec<WorkPlaceEntry>) {
    let mut guardians = Vec::new();
    let mut places = Vec::new();
    let reg = &c.registration;
    let mut guardian: Guardian = reg.guardian.clone();
    guardians.push(guardian_entry(c.registered_on, &guardian));
    let mut parents: Vec<ParentInfo> = reg.parents.clone();
    for p in &parents {
        places.push(place_entry(c.registered_on, p));
    }
    for (at, _, changes) in c.updates() {
        let on = local_date(*at);
        if valid_at.is_some_and(|v| on > v) {
            break;
        }
        if let Some(g) = &changes.guardian {
            if g.name != guardian.name
                || g.relation != guardian.relation
                || g.phone != guardian.phone
            {
                guardians.push(guardian_entry(on, g));
            }
            guardian = g.clone();
        }
        if let Some(ps) = &changes.parents {
            for p in ps {
                let same = parents.iter().any(|q| {
                    q.relation == p.relation
                        && q.name == p.name
                        && q.work_place == p.work_place
                        && q.employer_address == p.employer_address
                });
                if !same {
                    places.push(place_entry(on, p));
                }
            }
            parents = ps.clone();
        }
    }
    (guardians, places)
}

fn guardian_entry(from: NaiveDate, g: &Guardian) -> GuardianEntry {
    GuardianEntry {
        from,
        name: g.name.clone(),
        relation: g.relation,
        phone: g.phone.clone(),
    }
}

fn place_entry(from: NaiveDate, p: &ParentInfo) -> WorkPlaceEntry {
    WorkPlaceEntry {
        from,
        relation: p.relation,
        name: p.name.clone(),
        work_place: p.work_place.clone(),
        employer_address: p.employer_address.clone(),
    }
}

/// Every assignment of a staff member to the child, by start date then staff. With a valid
/// date, assignments starting after it are left out and ends after it are not yet known.
fn pairing_entries(
    world: &World,
    child: &str,
    valid_at: Option<NaiveDate>,
    day: Option<NaiveDate>,
) -> Vec<PairingEntry> {
    let mut out = Vec::new();
    for p in world.pairings_of_child(child) {
        let staff_name = world
            .staff(&p.staff)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        for a in p.assignments() {
            if valid_at.is_some_and(|v| a.from > v) {
                continue;
            }
            let to = a.until.filter(|u| valid_at.is_none_or(|v| *u <= v));
            out.push(PairingEntry {
                staff: p.staff.clone(),
                staff_name: staff_name.clone(),
                role: a.role,
                from: a.from,
                to,
                active: day.is_some_and(|d| {
                    a.from <= d && a.until.is_none_or(|u| d < u) && p.active_on(d)
                }),
            });
        }
    }
    out.sort_by(|a, b| (a.from, &a.staff).cmp(&(b.from, &b.staff)));
    out
}

/// The archives of every child whose file (as of the valid date, else latest) names the
/// school, by grade, class and id; `incomplete_only` keeps the incomplete ones.
pub fn archives(
    timeline: &Timeline,
    world: &World,
    school: &str,
    valid_at: Option<NaiveDate>,
    incomplete_only: bool,
) -> Result<Archives, ProjectionError> {
    world.require_school(school)?;
    let day = reference_day(timeline, valid_at);
    let mut rows = Vec::new();
    for c in world.children() {
        if valid_at.is_some_and(|v| c.registered_on > v) {
            continue;
        }
        let file = file_of(c, valid_at);
        if file.school != school {
            continue;
        }
        let missing = missing_fields(&file);
        let mut mentors: Vec<String> = match day {
            Some(d) => world
                .pairings_of_child(&c.id)
                .filter(|p| p.active_on(d))
                .map(|p| {
                    world
                        .staff(&p.staff)
                        .map_or_else(|| p.staff.clone(), |s| s.name.clone())
                })
                .collect(),
            None => Vec::new(),
        };
        mentors.sort();
        rows.push(ArchiveRow {
            child: c.id.clone(),
            name: file.name.clone(),
            grade: file.grade.get(),
            class: file.class,
            guardian: file.guardian.name.clone(),
            guardian_phone: file.guardian.phone.clone(),
            mentors,
            status: day.and_then(|d| c.status_on(d)),
            active: day.is_some_and(|d| c.active_on(d)),
            complete: missing.is_empty(),
            missing,
        });
    }
    rows.sort_by(|a, b| (a.grade, a.class, &a.child).cmp(&(b.grade, b.class, &b.child)));
    let children = rows.len();
    let complete = rows.iter().filter(|r| r.complete).count();
    if incomplete_only {
        rows.retain(|r| !r.complete);
    }
    Ok(Archives {
        school: school.to_owned(),
        valid_at,
        incomplete_only,
        children,
        complete,
        archive_rate: (children > 0).then(|| complete as f64 / children as f64),
        rows,
    })
}

// ---- tables --------------------------------------------------------------------------------

impl Archive {
    /// A two-column sheet (项目, 内容) as a school reads the file.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let f = &self.file;
        let mut t = vec![row(["项目", "内容"])];
        let mut kv = |k: &str, v: String| t.push(vec![k.to_owned(), v]);
        kv("编号", self.child.clone());
        kv("姓名", f.name.clone());
        kv("性别", zh_gender(f.gender).to_owned());
        kv("出生日期", f.birth_date.to_string());
        kv("年级", f.grade.get().to_string());
        kv("班级", f.class.to_string());
        kv("家庭住址", f.address.clone());
        kv("寄宿", yes_no(f.boarding));
        kv("建档日期", self.registered_on.to_string());
        kv("状态", self.status.map_or("留守", zh_status).to_owned());
        kv(
            "监护人",
            format!(
                "{}（{}）{}",
                f.guardian.name,
                zh_guardian_relation(f.guardian.relation),
                f.guardian.phone
            ),
        );
        for p in &f.parents {
            kv(
                zh_parent(p.relation),
                format!(
                    "{} {} {} {}",
                    p.name, p.phone, p.work_place, p.employer_address
                )
                .trim_end()
                .to_owned(),
            );
        }
        for g in &self.guardian_history {
            kv(
                "监护人变更",
                format!(
                    "{} 起 {}（{}）{}",
                    g.from,
                    g.name,
                    zh_guardian_relation(g.relation),
                    g.phone
                ),
            );
        }
        for w in &self.work_place_history {
            kv(
                "务工地变更",
                format!(
                    "{} 起 {}{} {} {}",
                    w.from,
                    zh_parent(w.relation),
                    w.name,
                    w.work_place,
                    w.employer_address
                )
                .trim_end()
                .to_owned(),
            );
        }
        for s in &self.status_history {
            kv(
                "状态变更",
                format!(
                    "{} {} {}",
                    s.on,
                    zh_status(s.status),
                    s.note.clone().unwrap_or_default()
                )
                .trim_end()
                .to_owned(),
            );
        }
        for p in &self.pairings {
            kv(
                zh_role(p.role),
                format!(
                    "{} {} 至 {}{}",
                    p.staff_name,
                    p.from,
                    p.to.map_or("今".to_owned(), |d| d.to_string()),
                    if p.active { "（在帮扶）" } else { "" }
                ),
            );
        }
        kv("学习帮手", self.buddy.clone().unwrap_or_default());
        for c in &self.care {
            kv(
                zh_kind(c.kind),
                format!("{} 次，最近 {}", c.count, c.last_on),
            );
        }
        kv("档案完整", yes_no(self.complete));
        kv(
            "缺项",
            self.missing
                .iter()
                .map(|m| zh_missing(m))
                .collect::<Vec<_>>()
                .join("、"),
        );
        t
    }
}

impl Archives {
    /// One row per child: 编号, 姓名, 年级, 班级, 监护人, 电话, 帮扶教师, 状态, 档案完整, 缺项.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row([
            "编号",
            "姓名",
            "年级",
            "班级",
            "监护人",
            "电话",
            "帮扶教师",
            "状态",
            "档案完整",
            "缺项",
        ])];
        for r in &self.rows {
            t.push(vec![
                r.child.clone(),
                r.name.clone(),
                r.grade.to_string(),
                r.class.to_string(),
                r.guardian.clone(),
                r.guardian_phone.clone(),
                r.mentors.join("、"),
                r.status.map_or("留守", zh_status).to_owned(),
                yes_no(r.complete),
                r.missing
                    .iter()
                    .map(|m| zh_missing(m))
                    .collect::<Vec<_>>()
                    .join("、"),
            ]);
        }
        t
    }
}
