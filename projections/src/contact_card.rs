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
    pub child: String,
    pub name: String,
    pub grade: u8,
    pub class: u32,
    pub address: String,
    pub guardian: GuardianContact,
    pub parents: Vec<ParentContact>,
    pub mentors: Vec<MentorContact>,
    pub buddy: Option<String>,
    pub reference_day: Option<NaiveDate>,
}

/// The guardian's lines of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardianContact {
    pub name: String,
    pub relation: GuardianRelation,
    pub phone: String,
    pub address: String,
}

/// A parent's lines of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentContact {
    pub relation: Parent,
    pub name: String,
    pub phone: String,
    pub work_place: String,
    pub employer_address: String,
}

/// A mentor's line of the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MentorContact {
    pub staff: String,
    pub name: String,
    pub role: PairingRole,
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
