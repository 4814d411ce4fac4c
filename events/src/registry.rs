//! The registry: which schools, terms, staff, children and incidents exist, and which events
//! were retracted — what validating a new batch needs to know about the log so far.
//!
//! It is a fold over events, kept by the store in its own tree (rebuilt from the log if it
//! falls behind) and cloned by `ingest` to follow a batch line by line. It must never hold
//! care records or personal data beyond ids and the school/child they belong to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// A registry entry, one per registered thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// A school and its county.
    School {
        /// The school's county.
        county: String,
    },
    /// A term of a school.
    Term {
        /// The school it belongs to.
        school: String,
        /// The term id.
        term: String,
    },
    /// A staff member and their school.
    Staff {
        /// The school it belongs to.
        school: String,
    },
    /// A child and their school.
    Child {
        /// The school it belongs to.
        school: String,
    },
    /// An incident and the child it is about.
    Incident {
        /// The child the incident is about.
        child: String,
    },
    /// An event id that was retracted.
    Retracted {
        /// The retracted event's id.
        target: String,
    },
}

impl Entry {
    /// The key of this entry in the registry tree: a tag byte and the identifying strings.
    pub fn key(&self) -> Vec<u8> {
        let (tag, parts): (u8, Vec<&str>) = match self {
            Entry::School { .. } => (b's', vec![]),
            Entry::Term { school, term } => (b'T', vec![school, term]),
            Entry::Staff { .. } => (b't', vec![]),
            Entry::Child { .. } => (b'c', vec![]),
            Entry::Incident { .. } => (b'i', vec![]),
            Entry::Retracted { target } => (b'r', vec![target]),
        };
        let mut k = vec![tag];
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(0);
            }
            k.extend_from_slice(p.as_bytes());
        }
        k
    }
}

/// What is registered so far.
///
/// A clone costs six reference counts, not a copy: validation takes a registry per request
/// (a county's holds tens of thousands of children), and copying it each time was most of a
/// service request's time. Each table is copied on its first change after a clone
/// (`Arc::make_mut`), so a clone is never changed by what happens to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    schools: Arc<BTreeMap<String, String>>,
    terms: Arc<BTreeSet<(String, String)>>,
    staff: Arc<BTreeMap<String, String>>,
    children: Arc<BTreeMap<String, String>>,
    incidents: Arc<BTreeMap<String, String>>,
    retracted: Arc<BTreeSet<String>>,
}

impl Registry {
    /// The entries an event adds, with the id they are keyed by (empty for care records).
    pub fn entries_of(event: &Event) -> Vec<(String, Entry)> {
        match event {
            Event::SchoolRegistered { school, county, .. } => vec![(
                school.clone(),
                Entry::School {
                    county: county.clone(),
                },
            )],
            Event::TermDefined { school, term, .. } => vec![(
                String::new(),
                Entry::Term {
                    school: school.clone(),
                    term: term.as_str().to_owned(),
                },
            )],
            Event::StaffJoined { staff, school, .. } => vec![(
                staff.clone(),
                Entry::Staff {
                    school: school.clone(),
                },
            )],
            Event::ChildRegistered(r) => vec![(
                r.child.clone(),
                Entry::Child {
                    school: r.school.clone(),
                },
            )],
            Event::IncidentReported {
                incident, child, ..
            } => vec![(
                incident.clone(),
                Entry::Incident {
                    child: child.clone(),
                },
            )],
            Event::Retracted { target, .. } => vec![(
                String::new(),
                Entry::Retracted {
                    target: target.clone(),
                },
            )],
            _ => vec![],
        }
    }

    /// Adds what `event` registers.
    pub fn observe(&mut self, event: &Event) {
        for (id, entry) in Registry::entries_of(event) {
            self.insert(id, entry);
        }
    }

    /// Adds one entry.
    pub fn insert(&mut self, id: String, entry: Entry) {
        match entry {
            Entry::School { county } => {
                Arc::make_mut(&mut self.schools).insert(id, county);
            }
            Entry::Term { school, term } => {
                Arc::make_mut(&mut self.terms).insert((school, term));
            }
            Entry::Staff { school } => {
                Arc::make_mut(&mut self.staff).insert(id, school);
            }
            Entry::Child { school } => {
                Arc::make_mut(&mut self.children).insert(id, school);
            }
            Entry::Incident { child } => {
                Arc::make_mut(&mut self.incidents).insert(id, child);
            }
            Entry::Retracted { target } => {
                Arc::make_mut(&mut self.retracted).insert(target);
            }
        }
    }

    /// The county of a registered school.
    pub fn school_county(&self, school: &str) -> Option<&str> {
        self.schools.get(school).map(String::as_str)
    }
    /// Whether a school defined this term.
    pub fn has_term(&self, school: &str, term: &str) -> bool {
        self.terms.contains(&(school.to_owned(), term.to_owned()))
    }
    /// The school of a staff member.
    pub fn staff_school(&self, staff: &str) -> Option<&str> {
        self.staff.get(staff).map(String::as_str)
    }
    /// The school a child was registered at.
    pub fn child_school(&self, child: &str) -> Option<&str> {
        self.children.get(child).map(String::as_str)
    }
    /// The child an incident is about.
    pub fn incident_child(&self, incident: &str) -> Option<&str> {
        self.incidents.get(incident).map(String::as_str)
    }
    /// Whether the event with this id was retracted.
    pub fn is_retracted(&self, id: &str) -> bool {
        self.retracted.contains(id)
    }
    /// Registered schools, by id.
    pub fn schools(&self) -> impl Iterator<Item = (&str, &str)> {
        self.schools.iter().map(|(s, c)| (s.as_str(), c.as_str()))
    }
    /// Registered children with their school, by id.
    pub fn children(&self) -> impl Iterator<Item = (&str, &str)> {
        self.children.iter().map(|(c, s)| (c.as_str(), s.as_str()))
    }
    /// Registered staff with their school, by id.
    pub fn staff(&self) -> impl Iterator<Item = (&str, &str)> {
        self.staff.iter().map(|(t, s)| (t.as_str(), s.as_str()))
    }
}
