//! Pairings (结对) on a day: the children each staff member is actively paired with, the staff
//! each child has, each staff member's load against the policy in force that day
//! (`pairing.max_children`, `pairing.min_children`), and the active children nobody mentors.
//!
//! "Active" is the world's (rules §5.7); this module only lists and counts. It is a pure fold
//! over a [`World`]; it must never read the store or the clock.

use chrono::NaiveDate;
use events::event::PairingRole;
use serde::Serialize;

use crate::ProjectionError;
use crate::labels::{row, zh_role};
use crate::world::{Pairing, World};

/// The pairings of a school on a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairingsView {
    /// The school id.
    pub school: String,
    /// The day shown.
    pub on: NaiveDate,
    /// `pairing.min_children` of the school's policy in force that day (rules §6.2).
    pub min_children: u32,
    /// `pairing.max_children` of the school's policy in force that day (rules §6.2).
    pub max_children: u32,
    /// Staff present that day (joined on or before it, not left), by id.
    pub staff: Vec<StaffLoad>,
    /// Active children of the school that day, by grade, class and id.
    pub children: Vec<ChildPairs>,
    /// Staff ids whose load exceeds `max_children`.
    pub overloaded: Vec<String>,
    /// Active children with no active pairing.
    pub unpaired_children: Vec<String>,
}

/// One staff member's pairings on the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffLoad {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined`.
    pub name: String,
    /// Pairings active that day (rules §5.7), of any role.
    pub load: usize,
    /// `pairing.max_children` of the policy of the staff member's school in force that day.
    pub max_children: u32,
    /// `load` exceeds `max_children`.
    pub overloaded: bool,
    /// Fewer pairings than `min_children`.
    pub underloaded: bool,
    /// The children actively paired that day, by child id.
    pub children: Vec<PairedChild>,
}

/// A child paired with the staff member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedChild {
    /// The child id.
    pub child: String,
    /// The child's name on its file that day.
    pub name: String,
    /// The role of the assignment in force (帮扶教师 or 代理家长).
    pub role: PairingRole,
    /// Start of the assignment in force.
    pub from: NaiveDate,
}

/// A child's pairings on the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildPairs {
    /// The child id.
    pub child: String,
    /// The child's name on its file that day.
    pub name: String,
    /// The grade on that file (1 to 9).
    pub grade: u8,
    /// The class within the grade.
    pub class: u32,
    /// The staff actively paired with the child that day (empty: unpaired).
    pub staff: Vec<PairedStaff>,
}

/// A staff member paired with the child.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedStaff {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined`.
    pub name: String,
    /// The role of the assignment in force (帮扶教师 or 代理家长).
    pub role: PairingRole,
    /// Start of the assignment in force.
    pub from: NaiveDate,
}

/// The role and start of the assignment in force on `d`.
fn assignment_on(p: &Pairing, d: NaiveDate) -> (PairingRole, NaiveDate) {
    p.assignments()
        .iter()
        .rev()
        .find(|a| a.from <= d && a.until.is_none_or(|u| d < u))
        .map_or((PairingRole::Mentor, d), |a| (a.role, a.from))
}

/// One staff member's active pairings on `d`, with the load against the policy of their
/// school in force that day.
pub fn staff_load(world: &World, staff: &str, on: NaiveDate) -> Result<StaffLoad, ProjectionError> {
    let s = world
        .staff(staff)
        .ok_or_else(|| ProjectionError::UnknownStaff {
            staff: staff.to_owned(),
        })?;
    let limits = &world.policy_on(&s.school, on).pairing;
    let mut children: Vec<PairedChild> = world
        .pairings_of_staff(staff)
        .filter(|p| p.active_on(on))
        .map(|p| {
            let (role, from) = assignment_on(p, on);
            PairedChild {
                child: p.child.clone(),
                name: world
                    .child(&p.child)
                    .map(|c| c.file_on(on).name)
                    .unwrap_or_default(),
                role,
                from,
            }
        })
        .collect();
    children.sort_by(|a, b| a.child.cmp(&b.child));
    let load = children.len();
    Ok(StaffLoad {
        staff: staff.to_owned(),
        name: s.name.clone(),
        load,
        max_children: limits.max_children,
        overloaded: load > limits.max_children as usize,
        underloaded: load < limits.min_children as usize,
        children,
    })
}

/// One child's active pairings on `d`.
pub fn child_pairs(
    world: &World,
    child: &str,
    on: NaiveDate,
) -> Result<ChildPairs, ProjectionError> {
    let c = world
        .child(child)
        .ok_or_else(|| ProjectionError::UnknownChild {
            child: child.to_owned(),
        })?;
    let file = c.file_on(on);
    let mut staff: Vec<PairedStaff> = world
        .pairings_of_child(child)
        .filter(|p| p.active_on(on))
        .map(|p| {
            let (role, from) = assignment_on(p, on);
            PairedStaff {
                staff: p.staff.clone(),
                name: world
                    .staff(&p.staff)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                role,
                from,
            }
        })
        .collect();
    staff.sort_by(|a, b| a.staff.cmp(&b.staff));
    Ok(ChildPairs {
        child: child.to_owned(),
        name: file.name,
        grade: file.grade.get(),
        class: file.class,
        staff,
    })
}

/// Every pairing of a school on a day. Children count for the school their file names that
/// day; staff for the school they joined.
pub fn pairings_on(
    world: &World,
    school: &str,
    on: NaiveDate,
) -> Result<PairingsView, ProjectionError> {
    let sch = world.require_school(school)?;
    let limits = &sch.policy_on(on).pairing;
    let mut staff = Vec::new();
    for s in world
        .staff_of(school)
        .filter(|s| s.joined_on <= on && s.present_on(on))
    {
        staff.push(staff_load(world, &s.id, on)?);
    }
    let mut children = Vec::new();
    for c in world.children().filter(|c| c.active_on(on)) {
        if c.file_on(on).school != school {
            continue;
        }
        children.push(child_pairs(world, &c.id, on)?);
    }
    children.sort_by(|a, b| (a.grade, a.class, &a.child).cmp(&(b.grade, b.class, &b.child)));
    Ok(PairingsView {
        school: school.to_owned(),
        on,
        min_children: limits.min_children,
        max_children: limits.max_children,
        overloaded: staff
            .iter()
            .filter(|s| s.overloaded)
            .map(|s| s.staff.clone())
            .collect(),
        unpaired_children: children
            .iter()
            .filter(|c| c.staff.is_empty())
            .map(|c| c.child.clone())
            .collect(),
        staff,
        children,
    })
}

impl PairingsView {
    /// One row per active pairing, then one per unpaired child: 帮扶教师, 结对人数, 上限,
    /// 超额, 姓名, 年级, 班级, 身份, 结对日期.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row([
            "帮扶教师",
            "结对人数",
            "上限",
            "超额",
            "姓名",
            "年级",
            "班级",
            "身份",
            "结对日期",
        ])];
        let class_of = |child: &str| {
            self.children
                .iter()
                .find(|c| c.child == child)
                .map_or((String::new(), String::new()), |c| {
                    (c.grade.to_string(), c.class.to_string())
                })
        };
        for s in &self.staff {
            let head = |t: &mut Vec<Vec<String>>, rest: [String; 5]| {
                let mut r = vec![
                    s.name.clone(),
                    s.load.to_string(),
                    s.max_children.to_string(),
                    if s.overloaded { "是" } else { "否" }.to_owned(),
                ];
                r.extend(rest);
                t.push(r);
            };
            if s.children.is_empty() {
                head(&mut t, Default::default());
            }
            for c in &s.children {
                let (grade, class) = class_of(&c.child);
                head(
                    &mut t,
                    [
                        c.name.clone(),
                        grade,
                        class,
                        zh_role(c.role).to_owned(),
                        c.from.to_string(),
                    ],
                );
            }
        }
        for c in self.children.iter().filter(|c| c.staff.is_empty()) {
            t.push(vec![
                "（未结对）".into(),
                String::new(),
                String::new(),
                String::new(),
                c.name.clone(),
                c.grade.to_string(),
                c.class.to_string(),
                String::new(),
                String::new(),
            ]);
        }
        t
    }
}
