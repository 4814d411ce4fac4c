//! The one-page contact card (联系卡) of a child: the latest file's contacts (guardian,
//! parents), the staff paired and active on the day, and the study buddy.
//!
//! It is a pure fold over a [`Timeline`] and its [`World`], reading the child's file as the
//! archive does; it must never read the store or the clock, and it never shows care work or
//! a counseling note.

use chrono::NaiveDate;
use events::Event;
use events::event::{GuardianRelation, PairingRole, Parent};
use serde::Serialize;

use crate::ProjectionError;
use crate::archive::{BuddyEntry, child_as_of, current_buddy, file_of, reference_day};
use crate::labels::{opt_date, row, zh_guardian_relation, zh_parent, zh_role};
use crate::timeline::Timeline;
use crate::world::World;

/// The one-page contact card (联系卡).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactCard {
    /// The child id.
    pub child: String,
    /// The child's name on the file.
    pub name: String,
    /// The grade on the file (1 to 9).
    pub grade: u8,
    /// The class within the grade.
    pub class: u32,
    /// Where the child lives, as written on the file.
    pub address: String,
    /// The guardian the child lives with (委托监护人).
    pub guardian: GuardianContact,
    /// The parents listed on the file, in file order.
    pub parents: Vec<ParentContact>,
    /// The staff paired with the child and active on the reference day.
    pub mentors: Vec<MentorContact>,
    /// The study buddy (学习帮手) on the reference day, if any.
    pub buddy: Option<String>,
    /// The day the card shows: the day asked for, else the as-of day.
    pub reference_day: Option<NaiveDate>,
}

/// The guardian's lines of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardianContact {
    /// The guardian's name.
    pub name: String,
    /// How the guardian is related to the child.
    pub relation: GuardianRelation,
    /// The guardian's phone, as written.
    pub phone: String,
    /// The guardian's address, as written.
    pub address: String,
}

/// A parent's lines of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentContact {
    /// Which parent (father or mother).
    pub relation: Parent,
    /// The parent's name.
    pub name: String,
    /// The parent's phone, as written.
    pub phone: String,
    /// Where the parent works, as written.
    pub work_place: String,
    /// The employer's address, as written (may be empty).
    pub employer_address: String,
}

/// A mentor's line of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MentorContact {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined` (empty when unknown).
    pub name: String,
    /// The pairing's role on the reference day (帮扶教师 or 代理家长).
    pub role: PairingRole,
    /// The staff member's phone from `staff_joined` (empty when unknown).
    pub phone: String,
}

/// The contact card of a child on a day (default: the as-of day): the latest file's
/// contacts, and the staff paired and active that day.
pub fn contact_card(
    timeline: &Timeline,
    world: &World,
    child: &str,
    on: Option<NaiveDate>,
) -> Result<ContactCard, ProjectionError> {
    let c = child_as_of(world, child, on)?;
    let day = reference_day(timeline, on);
    let file = file_of(c, on);
    let mut mentors: Vec<MentorContact> = Vec::new();
    if let Some(d) = day {
        for p in world.pairings_of_child(child).filter(|p| p.active_on(d)) {
            let s = world.staff(&p.staff);
            mentors.push(MentorContact {
                staff: p.staff.clone(),
                name: s.map(|s| s.name.clone()).unwrap_or_default(),
                role: p.role_on(d).unwrap_or(PairingRole::Mentor),
                phone: s.map(|s| s.phone.clone()).unwrap_or_default(),
            });
        }
    }
    let mut buddies: Vec<BuddyEntry> = timeline
        .facts()
        .iter()
        .filter_map(|f| match &f.event {
            Event::BuddyAssigned {
                child: c2,
                buddy,
                from,
            } if c2 == child => Some(BuddyEntry {
                buddy: buddy.clone(),
                from: *from,
            }),
            _ => None,
        })
        .collect();
    buddies.sort_by_key(|a| a.from);
    Ok(ContactCard {
        child: child.to_owned(),
        name: file.name.clone(),
        grade: file.grade.get(),
        class: file.class,
        address: file.address.clone(),
        guardian: GuardianContact {
            name: file.guardian.name.clone(),
            relation: file.guardian.relation,
            phone: file.guardian.phone.clone(),
            address: file.guardian.address.clone(),
        },
        parents: file
            .parents
            .iter()
            .map(|p| ParentContact {
                relation: p.relation,
                name: p.name.clone(),
                phone: p.phone.clone(),
                work_place: p.work_place.clone(),
                employer_address: p.employer_address.clone(),
            })
            .collect(),
        mentors,
        buddy: current_buddy(&buddies, day),
        reference_day: day,
    })
}

impl ContactCard {
    /// The card as rows (项目, 姓名, 电话, 单位/地址).
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row(["项目", "姓名", "电话", "单位/地址"])];
        t.push(vec![
            "学生".into(),
            self.name.clone(),
            String::new(),
            format!("{}年级{}班 {}", self.grade, self.class, self.address),
        ]);
        t.push(vec![
            format!("监护人（{}）", zh_guardian_relation(self.guardian.relation)),
            self.guardian.name.clone(),
            self.guardian.phone.clone(),
            self.guardian.address.clone(),
        ]);
        for p in &self.parents {
            t.push(vec![
                zh_parent(p.relation).to_owned(),
                p.name.clone(),
                p.phone.clone(),
                format!("{} {}", p.work_place, p.employer_address)
                    .trim()
                    .to_owned(),
            ]);
        }
        for m in &self.mentors {
            t.push(vec![
                zh_role(m.role).to_owned(),
                m.name.clone(),
                m.phone.clone(),
                String::new(),
            ]);
        }
        t.push(vec![
            "学习帮手".into(),
            self.buddy.clone().unwrap_or_default(),
            String::new(),
            String::new(),
        ]);
        t.push(vec![
            "日期".into(),
            opt_date(self.reference_day),
            String::new(),
            String::new(),
        ]);
        t
    }
}
