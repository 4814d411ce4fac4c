//! Who is who by name: the children (name, grade, class, school) and staff (name, school) as
//! their files stand, so that a workbook row may name a child by 姓名 + 年级 + 班级 and a
//! staff member by 姓名 instead of by id.
//!
//! It follows registrations, `child_updated` changes of name, school, grade and class,
//! corrections of those fields, and retractions of registrations. It owns that directory only;
//! it must never decide whether a name is good enough (the reader asks for exactly one match)
//! and never write anything.

use std::collections::{BTreeMap, HashMap};

use events::Event;
use serde_json::Value;

/// A child's identifying fields as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildEntry {
    /// The school the child is registered at.
    pub school: String,
    /// The child's name.
    pub name: String,
    /// The grade, 1–9.
    pub grade: u8,
    /// The class within the grade.
    pub class: u32,
}

/// A staff member's identifying fields as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEntry {
    /// The school the staff member joined.
    pub school: String,
    /// The staff member's name.
    pub name: String,
}

/// What an event id introduced or changed, for the corrections and retractions that name it.
#[derive(Debug, Clone)]
enum Subject {
    Child(String),
    ChildUpdate(String),
    Staff(String),
}

/// The directory of children and staff by name.
#[derive(Debug, Clone, Default)]
pub struct People {
    children: BTreeMap<String, ChildEntry>,
    staff: BTreeMap<String, StaffEntry>,
    subjects: HashMap<String, Subject>,
}

impl People {
    /// An empty directory.
    pub fn new() -> People {
        People::default()
    }

    /// Follows one event of the log (in log order).
    pub fn observe(&mut self, id: &str, event: &Event) {
        match event {
            Event::ChildRegistered(r) => {
                self.children.insert(
                    r.child.clone(),
                    ChildEntry {
                        school: r.school.clone(),
                        name: r.name.clone(),
                        grade: r.grade.get(),
                        class: r.class,
                    },
                );
                self.subjects
                    .insert(id.to_owned(), Subject::Child(r.child.clone()));
            }
            Event::ChildUpdated { child, changes } => {
                if let Some(e) = self.children.get_mut(child) {
                    if let Some(s) = &changes.school {
                        e.school.clone_from(s);
                    }
                    if let Some(n) = &changes.name {
                        e.name.clone_from(n);
                    }
                    if let Some(g) = changes.grade {
                        e.grade = g.get();
                    }
                    if let Some(c) = changes.class {
                        e.class = c;
                    }
                }
                self.subjects
                    .insert(id.to_owned(), Subject::ChildUpdate(child.clone()));
            }
            Event::StaffJoined {
                staff,
                school,
                name,
                ..
            } => {
                self.staff.insert(
                    staff.clone(),
                    StaffEntry {
                        school: school.clone(),
                        name: name.clone(),
                    },
                );
                self.subjects
                    .insert(id.to_owned(), Subject::Staff(staff.clone()));
            }
            Event::Corrected {
                target, changes, ..
            } => match self.subjects.get(target) {
                Some(Subject::Child(c)) => {
                    let c = c.clone();
                    self.correct_child(&c, changes.iter());
                }
                Some(Subject::ChildUpdate(c)) => {
                    let c = c.clone();
                    if let Some(Value::Object(inner)) = changes.get("changes") {
                        self.correct_child(&c, inner.iter());
                    }
                }
                Some(Subject::Staff(s)) => {
                    if let Some(e) = self.staff.get_mut(s) {
                        if let Some(Value::String(n)) = changes.get("name") {
                            e.name.clone_from(n);
                        }
                        if let Some(Value::String(v)) = changes.get("school") {
                            e.school.clone_from(v);
                        }
                    }
                }
                None => {}
            },
            Event::Retracted { target, .. } => match self.subjects.get(target) {
                Some(Subject::Child(c)) => {
                    self.children.remove(c);
                }
                Some(Subject::Staff(s)) => {
                    self.staff.remove(s);
                }
                // A retracted update is not undone here: the name lookup then answers with
                // the updated fields, and a row that does not match gets an error naming the
                // candidates, never a wrong child silently.
                Some(Subject::ChildUpdate(_)) | None => {}
            },
            _ => {}
        }
    }

    fn correct_child<'a>(
        &mut self,
        child: &str,
        changes: impl Iterator<Item = (&'a String, &'a Value)>,
    ) {
        let Some(e) = self.children.get_mut(child) else {
            return;
        };
        for (k, v) in changes {
            match (k.as_str(), v) {
                ("name", Value::String(n)) => e.name.clone_from(n),
                ("school", Value::String(s)) => e.school.clone_from(s),
                ("grade", Value::Number(n)) => {
                    if let Some(g) = n.as_u64().and_then(|g| u8::try_from(g).ok()) {
                        e.grade = g;
                    }
                }
                ("class", Value::Number(n)) => {
                    if let Some(c) = n.as_u64().and_then(|c| u32::try_from(c).ok()) {
                        e.class = c;
                    }
                }
                _ => {}
            }
        }
    }

    /// The children of `school` (any school when `None`) with this name, grade and class.
    pub fn children_named(
        &self,
        school: Option<&str>,
        name: &str,
        grade: u8,
        class: u32,
    ) -> Vec<&str> {
        self.children
            .iter()
            .filter(|(_, e)| {
                e.name == name
                    && e.grade == grade
                    && e.class == class
                    && school.is_none_or(|s| e.school == s)
            })
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// The staff of `school` (any school when `None`) with this name.
    pub fn staff_named(&self, school: Option<&str>, name: &str) -> Vec<&str> {
        self.staff
            .iter()
            .filter(|(_, e)| e.name == name && school.is_none_or(|s| e.school == s))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// A child's entry.
    pub fn child(&self, id: &str) -> Option<&ChildEntry> {
        self.children.get(id)
    }

    /// A staff member's entry.
    pub fn staff(&self, id: &str) -> Option<&StaffEntry> {
        self.staff.get(id)
    }
}
