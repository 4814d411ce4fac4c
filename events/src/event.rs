//! The event vocabulary: every fact careledger can record, as typed Rust.
//!
//! This file is the schema (DESIGN.md §5) and therefore the contract with every school's data.
//! It owns the payload types and their closed vocabularies; it must never know how events are
//! stored, parsed from a file or projected. Variants are past-tense facts. The serde names are
//! the wire names of DESIGN §5 (`talk_held`, `parent_call`, …).
//!
//! Decoding is strict (`deny_unknown_fields`): an input field we do not know is an error, never
//! silently dropped. New fields are added as `Option` / `#[serde(default)]` so that old stored
//! envelopes still decode (the envelope carries a schema version for anything bigger).
//!
//! Free-text fields that a paper form may leave blank (`follow_up`, `note`, `reason`, …) are
//! optional; identifiers, dates, numbers and closed vocabularies are required
//! (docs/events.md lists which is which).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::Policy;

/// One recorded fact. Externally tagged in storage (fast to decode); the JSONL wire form is the
/// same object flattened with a `type` field (see `ingest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    // ---- registry -------------------------------------------------------------------------
    /// A school was registered with careledger.
    SchoolRegistered {
        school: String,
        name: String,
        county: String,
        township: String,
    },
    /// A term (学期) of a school was defined; terms of one school year make up that year.
    TermDefined {
        school: String,
        term: TermId,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
    },
    /// A school adopted a care policy (制度) from a date on (DESIGN §6).
    PolicyAdopted {
        school: String,
        effective_from: NaiveDate,
        policy: Policy,
    },
    /// A staff member joined a school.
    StaffJoined {
        staff: String,
        school: String,
        name: String,
        roles: Vec<Role>,
        party_member: bool,
        phone: String,
    },
    /// A staff member left (from `on` on they no longer count).
    StaffLeft {
        staff: String,
        on: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A left-behind child was registered and their file (档案) opened.
    ChildRegistered(Box<ChildRecord>),
    /// Fields of a child's file changed (class, guardian, parents' work places, …).
    ChildUpdated {
        child: String,
        changes: Box<ChildChanges>,
    },
    /// A child's status changed from `on` on (no longer left behind, dropped out, …).
    ChildStatusChanged {
        child: String,
        status: ChildStatus,
        on: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A staff member was paired with a child (结对) from a date on.
    PairingAssigned {
        staff: String,
        child: String,
        role: PairingRole,
        from: NaiveDate,
    },
    /// A pairing ended: from `on` on it no longer holds.
    PairingEnded {
        staff: String,
        child: String,
        on: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A study buddy (学习帮手) was assigned to a child.
    BuddyAssigned {
        child: String,
        buddy: String,
        from: NaiveDate,
    },

    // ---- care interactions ----------------------------------------------------------------
    /// A one-to-one heart-to-heart talk (谈心) was held.
    TalkHeld {
        staff: String,
        child: String,
        topic: String,
        summary: String,
        mood: Mood,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up: Option<String>,
    },
    /// The staff member called the child's parent to report (与父母通话).
    #[serde(rename = "parent_call")]
    ParentCalled {
        staff: String,
        child: String,
        parent: Parent,
        minutes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// The school arranged a call between the child and a parent (亲情电话).
    #[serde(rename = "family_call")]
    FamilyCallArranged {
        staff: String,
        child: String,
        parent: Parent,
        minutes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The staff member contacted the guardian (委托监护人).
    #[serde(rename = "guardian_contact")]
    GuardianContacted {
        staff: String,
        child: String,
        mode: ContactMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// The staff member consulted the child's class teacher.
    #[serde(rename = "class_teacher_contact")]
    ClassTeacherContacted {
        staff: String,
        child: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// A home visit (家访 / 上门看望) was made.
    #[serde(rename = "home_visit")]
    HomeVisited {
        staff: String,
        child: String,
        met: Vec<MetParty>,
        findings: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_steps: Option<String>,
    },
    /// A letter was written (mentor to child, child to parent, parent to child).
    #[serde(rename = "letter")]
    LetterWritten {
        staff: String,
        child: String,
        direction: LetterDirection,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// A warmth visit (送温暖) with a gift was made.
    #[serde(rename = "warmth_visit")]
    WarmthVisited {
        staff: String,
        child: String,
        occasion: String,
        items: String,
        value_yuan: Yuan,
    },
    /// The staff member tutored the child.
    #[serde(rename = "tutoring")]
    Tutored {
        staff: String,
        child: String,
        subject: String,
        minutes: u32,
    },
    /// A counseling session was held. **Confidential**: `notes` never leaves a counselor's view.
    #[serde(rename = "counseling_session")]
    CounselingHeld {
        staff: String,
        child: String,
        risk: Risk,
        notes: String,
    },
    /// A group activity took place with several children.
    #[serde(rename = "activity")]
    ActivityHeld {
        staff: String,
        children: Vec<String>,
        name: String,
        kind: String,
    },
    /// Material aid was granted to the child.
    AidGranted {
        staff: String,
        child: String,
        kind: String,
        amount_yuan: Yuan,
    },
    /// The child received an award.
    AwardGiven {
        staff: String,
        child: String,
        title: String,
    },
    /// An exam result of the child was recorded.
    #[serde(rename = "academic_result")]
    AcademicResultRecorded {
        staff: String,
        child: String,
        exam: String,
        subject: String,
        score: f64,
        full_score: f64,
    },
    /// A physical test of the child was recorded.
    #[serde(rename = "physical_test")]
    PhysicalTestRecorded {
        staff: String,
        child: String,
        height_cm: f64,
        weight_kg: f64,
        #[serde(default)]
        items: BTreeMap<String, f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anomalies: Option<String>,
    },
    /// An incident involving the child was reported.
    IncidentReported {
        staff: String,
        child: String,
        incident: String,
        category: String,
        description: String,
        severity: String,
        #[serde(with = "chrono::serde::ts_microseconds")]
        happened_at: DateTime<Utc>,
    },
    /// A party was notified of an incident (escalation, DESIGN §8).
    IncidentNotified {
        staff: String,
        incident: String,
        party: NotifiedParty,
        #[serde(with = "chrono::serde::ts_microseconds")]
        notified_at: DateTime<Utc>,
    },

    // ---- amendments -----------------------------------------------------------------------
    /// An earlier event was corrected: it counts as if it had carried `changes`.
    #[serde(rename = "correction")]
    Corrected {
        target: String,
        changes: BTreeMap<String, serde_json::Value>,
        reason: String,
    },
    /// An earlier event was retracted: it counts nowhere.
    #[serde(rename = "retraction")]
    Retracted { target: String, reason: String },
}

/// The name of an event type, as on the wire (`talk_held`). Used by policies and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SchoolRegistered,
    TermDefined,
    PolicyAdopted,
    StaffJoined,
    StaffLeft,
    ChildRegistered,
    ChildUpdated,
    ChildStatusChanged,
    PairingAssigned,
    PairingEnded,
    BuddyAssigned,
    TalkHeld,
    #[serde(rename = "parent_call")]
    ParentCalled,
    #[serde(rename = "family_call")]
    FamilyCallArranged,
    #[serde(rename = "guardian_contact")]
    GuardianContacted,
    #[serde(rename = "class_teacher_contact")]
    ClassTeacherContacted,
    #[serde(rename = "home_visit")]
    HomeVisited,
    #[serde(rename = "letter")]
    LetterWritten,
    #[serde(rename = "warmth_visit")]
    WarmthVisited,
    #[serde(rename = "tutoring")]
    Tutored,
    #[serde(rename = "counseling_session")]
    CounselingHeld,
    #[serde(rename = "activity")]
    ActivityHeld,
    AidGranted,
    AwardGiven,
    #[serde(rename = "academic_result")]
    AcademicResultRecorded,
    #[serde(rename = "physical_test")]
    PhysicalTestRecorded,
    IncidentReported,
    IncidentNotified,
    #[serde(rename = "correction")]
    Corrected,
    #[serde(rename = "retraction")]
    Retracted,
}

impl EventKind {
    /// Every kind, in vocabulary order.
    pub const ALL: [EventKind; 30] = [
        EventKind::SchoolRegistered,
        EventKind::TermDefined,
        EventKind::PolicyAdopted,
        EventKind::StaffJoined,
        EventKind::StaffLeft,
        EventKind::ChildRegistered,
        EventKind::ChildUpdated,
        EventKind::ChildStatusChanged,
        EventKind::PairingAssigned,
        EventKind::PairingEnded,
        EventKind::BuddyAssigned,
        EventKind::TalkHeld,
        EventKind::ParentCalled,
        EventKind::FamilyCallArranged,
        EventKind::GuardianContacted,
        EventKind::ClassTeacherContacted,
        EventKind::HomeVisited,
        EventKind::LetterWritten,
        EventKind::WarmthVisited,
        EventKind::Tutored,
        EventKind::CounselingHeld,
        EventKind::ActivityHeld,
        EventKind::AidGranted,
        EventKind::AwardGiven,
        EventKind::AcademicResultRecorded,
        EventKind::PhysicalTestRecorded,
        EventKind::IncidentReported,
        EventKind::IncidentNotified,
        EventKind::Corrected,
        EventKind::Retracted,
    ];

    /// The wire name (`talk_held`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SchoolRegistered => "school_registered",
            EventKind::TermDefined => "term_defined",
            EventKind::PolicyAdopted => "policy_adopted",
            EventKind::StaffJoined => "staff_joined",
            EventKind::StaffLeft => "staff_left",
            EventKind::ChildRegistered => "child_registered",
            EventKind::ChildUpdated => "child_updated",
            EventKind::ChildStatusChanged => "child_status_changed",
            EventKind::PairingAssigned => "pairing_assigned",
            EventKind::PairingEnded => "pairing_ended",
            EventKind::BuddyAssigned => "buddy_assigned",
            EventKind::TalkHeld => "talk_held",
            EventKind::ParentCalled => "parent_call",
            EventKind::FamilyCallArranged => "family_call",
            EventKind::GuardianContacted => "guardian_contact",
            EventKind::ClassTeacherContacted => "class_teacher_contact",
            EventKind::HomeVisited => "home_visit",
            EventKind::LetterWritten => "letter",
            EventKind::WarmthVisited => "warmth_visit",
            EventKind::Tutored => "tutoring",
            EventKind::CounselingHeld => "counseling_session",
            EventKind::ActivityHeld => "activity",
            EventKind::AidGranted => "aid_granted",
            EventKind::AwardGiven => "award_given",
            EventKind::AcademicResultRecorded => "academic_result",
            EventKind::PhysicalTestRecorded => "physical_test",
            EventKind::IncidentReported => "incident_reported",
            EventKind::IncidentNotified => "incident_notified",
            EventKind::Corrected => "correction",
            EventKind::Retracted => "retraction",
        }
    }

    /// Looks a kind up by its wire name.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Care work, in vocabulary order: what a staff member does with a child (DESIGN §5),
    /// counted in archives, progress files and back-fill checks. Records *about* the child
    /// (results, tests, awards, incidents) are not care work; compare `counts_toward_quota`.
    pub const CARE_WORK: [EventKind; 12] = [
        EventKind::TalkHeld,
        EventKind::ParentCalled,
        EventKind::FamilyCallArranged,
        EventKind::GuardianContacted,
        EventKind::ClassTeacherContacted,
        EventKind::HomeVisited,
        EventKind::LetterWritten,
        EventKind::WarmthVisited,
        EventKind::Tutored,
        EventKind::CounselingHeld,
        EventKind::ActivityHeld,
        EventKind::AidGranted,
    ];

    /// Whether this kind is care work (`CARE_WORK`).
    pub fn is_care_work(self) -> bool {
        Self::CARE_WORK.contains(&self)
    }

    /// The kinds a policy quota may count (DESIGN §5): care work plus the records about a
    /// child that a school may ask its staff to keep (results, tests, awards, incidents).
    /// Every care-work kind is one of them; the converse does not hold.
    pub fn counts_toward_quota(self) -> bool {
        matches!(
            self,
            EventKind::TalkHeld
                | EventKind::ParentCalled
                | EventKind::FamilyCallArranged
                | EventKind::GuardianContacted
                | EventKind::ClassTeacherContacted
                | EventKind::HomeVisited
                | EventKind::LetterWritten
                | EventKind::WarmthVisited
                | EventKind::Tutored
                | EventKind::CounselingHeld
                | EventKind::ActivityHeld
                | EventKind::AidGranted
                | EventKind::AwardGiven
                | EventKind::AcademicResultRecorded
                | EventKind::PhysicalTestRecorded
                | EventKind::IncidentReported
                | EventKind::IncidentNotified
        )
    }
}

impl EventKind {
    /// The payload fields of this kind that only a counselor may read (rules §5: a counseling
    /// session's `notes`). This is the one place that says which fields are confidential;
    /// every output that is not a counselor's view hides them through `redact_wire`, in the
    /// event itself and in every correction of it.
    pub fn confidential_fields(self) -> &'static [&'static str] {
        match self {
            EventKind::CounselingHeld => &["notes"],
            _ => &[],
        }
    }

    /// Whether `field` (a top-level payload field) of an event of this kind is confidential.
    pub fn is_confidential(self, field: &str) -> bool {
        self.confidential_fields().contains(&field)
    }
}

/// Hides confidential text in a flat wire object (an event's payload, with or without its
/// envelope fields) for a reader who is not a counselor: each confidential field of `kind`
/// present in `fields` is replaced by `mask`. For a correction (`kind` is `Corrected`),
/// `target` is the kind of the event it corrects, and the entries of its `changes` that are
/// confidential in that kind are replaced instead: a correction of a counseling session's
/// `notes` carries notes too. A correction whose target is unknown (`None`) has every
/// change that is confidential in any kind masked, so an unknown target never leaks.
pub fn redact_wire(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    kind: EventKind,
    target: Option<EventKind>,
    mask: &serde_json::Value,
) {
    for f in kind.confidential_fields() {
        if let Some(v) = fields.get_mut(*f) {
            *v = mask.clone();
        }
    }
    if kind == EventKind::Corrected
        && let Some(serde_json::Value::Object(changes)) = fields.get_mut("changes")
    {
        for (field, v) in changes.iter_mut() {
            let hidden = match target {
                Some(t) => t.is_confidential(field),
                None => EventKind::ALL.iter().any(|k| k.is_confidential(field)),
            };
            if hidden {
                *v = mask.clone();
            }
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::SchoolRegistered { .. } => EventKind::SchoolRegistered,
            Event::TermDefined { .. } => EventKind::TermDefined,
            Event::PolicyAdopted { .. } => EventKind::PolicyAdopted,
            Event::StaffJoined { .. } => EventKind::StaffJoined,
            Event::StaffLeft { .. } => EventKind::StaffLeft,
            Event::ChildRegistered(_) => EventKind::ChildRegistered,
            Event::ChildUpdated { .. } => EventKind::ChildUpdated,
            Event::ChildStatusChanged { .. } => EventKind::ChildStatusChanged,
            Event::PairingAssigned { .. } => EventKind::PairingAssigned,
            Event::PairingEnded { .. } => EventKind::PairingEnded,
            Event::BuddyAssigned { .. } => EventKind::BuddyAssigned,
            Event::TalkHeld { .. } => EventKind::TalkHeld,
            Event::ParentCalled { .. } => EventKind::ParentCalled,
            Event::FamilyCallArranged { .. } => EventKind::FamilyCallArranged,
            Event::GuardianContacted { .. } => EventKind::GuardianContacted,
            Event::ClassTeacherContacted { .. } => EventKind::ClassTeacherContacted,
            Event::HomeVisited { .. } => EventKind::HomeVisited,
            Event::LetterWritten { .. } => EventKind::LetterWritten,
            Event::WarmthVisited { .. } => EventKind::WarmthVisited,
            Event::Tutored { .. } => EventKind::Tutored,
            Event::CounselingHeld { .. } => EventKind::CounselingHeld,
            Event::ActivityHeld { .. } => EventKind::ActivityHeld,
            Event::AidGranted { .. } => EventKind::AidGranted,
            Event::AwardGiven { .. } => EventKind::AwardGiven,
            Event::AcademicResultRecorded { .. } => EventKind::AcademicResultRecorded,
            Event::PhysicalTestRecorded { .. } => EventKind::PhysicalTestRecorded,
            Event::IncidentReported { .. } => EventKind::IncidentReported,
            Event::IncidentNotified { .. } => EventKind::IncidentNotified,
            Event::Corrected { .. } => EventKind::Corrected,
            Event::Retracted { .. } => EventKind::Retracted,
        }
    }

    /// The staff member who did a care interaction, or whom a registry event is about.
    pub fn staff(&self) -> Option<&str> {
        match self {
            Event::StaffJoined { staff, .. }
            | Event::StaffLeft { staff, .. }
            | Event::PairingAssigned { staff, .. }
            | Event::PairingEnded { staff, .. }
            | Event::TalkHeld { staff, .. }
            | Event::ParentCalled { staff, .. }
            | Event::FamilyCallArranged { staff, .. }
            | Event::GuardianContacted { staff, .. }
            | Event::ClassTeacherContacted { staff, .. }
            | Event::HomeVisited { staff, .. }
            | Event::LetterWritten { staff, .. }
            | Event::WarmthVisited { staff, .. }
            | Event::Tutored { staff, .. }
            | Event::CounselingHeld { staff, .. }
            | Event::ActivityHeld { staff, .. }
            | Event::AidGranted { staff, .. }
            | Event::AwardGiven { staff, .. }
            | Event::AcademicResultRecorded { staff, .. }
            | Event::PhysicalTestRecorded { staff, .. }
            | Event::IncidentReported { staff, .. }
            | Event::IncidentNotified { staff, .. } => Some(staff),
            _ => None,
        }
    }

    /// The children this event is directly about (an `activity` names several; an
    /// `incident_notified` names none: its child is the one of its incident).
    pub fn children(&self) -> &[String] {
        match self {
            Event::ChildRegistered(r) => std::slice::from_ref(&r.child),
            Event::ChildUpdated { child, .. }
            | Event::ChildStatusChanged { child, .. }
            | Event::PairingAssigned { child, .. }
            | Event::PairingEnded { child, .. }
            | Event::BuddyAssigned { child, .. }
            | Event::TalkHeld { child, .. }
            | Event::ParentCalled { child, .. }
            | Event::FamilyCallArranged { child, .. }
            | Event::GuardianContacted { child, .. }
            | Event::ClassTeacherContacted { child, .. }
            | Event::HomeVisited { child, .. }
            | Event::LetterWritten { child, .. }
            | Event::WarmthVisited { child, .. }
            | Event::Tutored { child, .. }
            | Event::CounselingHeld { child, .. }
            | Event::AidGranted { child, .. }
            | Event::AwardGiven { child, .. }
            | Event::AcademicResultRecorded { child, .. }
            | Event::PhysicalTestRecorded { child, .. }
            | Event::IncidentReported { child, .. } => std::slice::from_ref(child),
            Event::ActivityHeld { children, .. } => children,
            _ => &[],
        }
    }

    /// The school a registry event belongs to (children, staff and terms name theirs).
    pub fn school(&self) -> Option<&str> {
        match self {
            Event::SchoolRegistered { school, .. }
            | Event::TermDefined { school, .. }
            | Event::PolicyAdopted { school, .. }
            | Event::StaffJoined { school, .. } => Some(school),
            Event::ChildRegistered(r) => Some(&r.school),
            _ => None,
        }
    }

    /// The event id an amendment names.
    pub fn target(&self) -> Option<&str> {
        match self {
            Event::Corrected { target, .. } | Event::Retracted { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// A child's file as registered (登记表). Every field but `child` may later change through
/// `child_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildRecord {
    pub child: String,
    pub school: String,
    pub grade: Grade,
    pub class: u32,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub boarding: bool,
    pub address: String,
    pub left_behind_type: LeftBehindType,
    #[serde(default)]
    pub hardship: Vec<Hardship>,
    #[serde(default)]
    pub focus: Vec<Focus>,
    pub parents: Vec<ParentInfo>,
    pub guardian: Guardian,
}

/// The fields a `child_updated` may change; absent fields stay as they were. A list or the
/// guardian is replaced whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boarding: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_behind_type: Option<LeftBehindType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardship: Option<Vec<Hardship>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<Vec<Focus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<ParentInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<Guardian>,
}

impl ChildRecord {
    /// The file with `changes` applied (later changes win field by field).
    pub fn apply(&mut self, changes: &ChildChanges) {
        let c = changes.clone();
        if let Some(v) = c.school {
            self.school = v;
        }
        if let Some(v) = c.grade {
            self.grade = v;
        }
        if let Some(v) = c.class {
            self.class = v;
        }
        if let Some(v) = c.name {
            self.name = v;
        }
        if let Some(v) = c.gender {
            self.gender = v;
        }
        if let Some(v) = c.birth_date {
            self.birth_date = v;
        }
        if let Some(v) = c.boarding {
            self.boarding = v;
        }
        if let Some(v) = c.address {
            self.address = v;
        }
        if let Some(v) = c.left_behind_type {
            self.left_behind_type = v;
        }
        if let Some(v) = c.hardship {
            self.hardship = v;
        }
        if let Some(v) = c.focus {
            self.focus = v;
        }
        if let Some(v) = c.parents {
            self.parents = v;
        }
        if let Some(v) = c.guardian {
            self.guardian = v;
        }
    }
}

/// A parent of the child, usually working far away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentInfo {
    pub name: String,
    pub relation: Parent,
    #[serde(default)]
    pub work_place: String,
    #[serde(default)]
    pub employer_address: String,
    #[serde(default)]
    pub phone: String,
    pub away: bool,
}

/// The adult the child actually lives with (委托监护人 / 临时监护人).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardian {
    pub name: String,
    pub relation: GuardianRelation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub education: String,
    #[serde(default)]
    pub occupation: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub phone: String,
    pub capability: Capability,
}

macro_rules! closed_vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_vocabulary!(
    /// A staff member's roles at the school.
    Role {
        ClassTeacher => "class_teacher",
        SubjectTeacher => "subject_teacher",
        Counselor => "counselor",
        Admin => "admin",
        Leader => "leader",
        Inspector => "inspector",
    }
);
closed_vocabulary!(
    /// The kind of a pairing: mentor (帮扶教师) or proxy parent (代理家长).
    PairingRole { Mentor => "mentor", ProxyParent => "proxy_parent" }
);
closed_vocabulary!(
    /// The child's gender.
    Gender { Male => "male", Female => "female" }
);
closed_vocabulary!(
    /// Why the child counts as left behind.
    LeftBehindType { BothParentsAway => "both_parents_away", OneParentAway => "one_parent_away" }
);
closed_vocabulary!(
    /// Hardship a child's file may list.
    Hardship { Orphan => "orphan", Disabled => "disabled", Poverty => "poverty", SingleParent => "single_parent" }
);
closed_vocabulary!(
    /// Areas needing particular attention (重点关注).
    Focus {
        Learning => "learning",
        Personality => "personality",
        Psychological => "psychological",
        Behavior => "behavior",
        Safety => "safety",
    }
);
closed_vocabulary!(
    /// Which parent.
    Parent { Father => "father", Mother => "mother" }
);
closed_vocabulary!(
    /// How the guardian is related to the child.
    GuardianRelation {
        GrandparentPaternal => "grandparent_paternal",
        GrandparentMaternal => "grandparent_maternal",
        Relative => "relative",
        Sibling => "sibling",
        Parent => "parent",
        Other => "other",
    }
);
closed_vocabulary!(
    /// How well the guardian can look after the child.
    Capability { Good => "good", Fair => "fair", Weak => "weak", None => "none" }
);
closed_vocabulary!(
    /// A child's status from a date on.
    ChildStatus {
        LeftBehind => "left_behind",
        NoLongerLeftBehind => "no_longer_left_behind",
        TransferredOut => "transferred_out",
        DroppedOut => "dropped_out",
        ReturnedToSchool => "returned_to_school",
        Graduated => "graduated",
    }
);
closed_vocabulary!(
    /// The child's mood as the mentor saw it during a talk.
    Mood { Good => "good", Ok => "ok", Low => "low", Concerning => "concerning" }
);
closed_vocabulary!(
    /// How the guardian was contacted.
    ContactMode { Visit => "visit", Phone => "phone", Meeting => "meeting" }
);
closed_vocabulary!(
    /// Who was met on a home visit.
    MetParty { Guardian => "guardian", Parent => "parent", Child => "child" }
);
closed_vocabulary!(
    /// Who wrote to whom.
    LetterDirection {
        MentorToChild => "mentor_to_child",
        ChildToParent => "child_to_parent",
        ParentToChild => "parent_to_child",
    }
);
closed_vocabulary!(
    /// A counselor's risk assessment.
    Risk { None => "none", Low => "low", Medium => "medium", High => "high" }
);
closed_vocabulary!(
    /// Who was told of an incident.
    NotifiedParty { Guardian => "guardian", Parents => "parents", Bureau => "bureau", Police => "police" }
);

impl ChildStatus {
    /// Whether a child with this latest status counts as active (DESIGN §5).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ChildStatus::LeftBehind | ChildStatus::ReturnedToSchool
        )
    }
}

/// A school grade, 1 to 9 (primary and junior middle school).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Grade(u8);

impl Grade {
    /// A grade, if `n` is 1–9.
    pub fn new(n: u8) -> Option<Grade> {
        (1..=9).contains(&n).then_some(Grade(n))
    }
    /// The grade number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Grade {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u8::try_from(n)
            .ok()
            .and_then(Grade::new)
            .ok_or_else(|| serde::de::Error::custom(format!("grade must be 1 to 9, got {n}")))
    }
}

/// A term id such as `2025-2026-1`: school year `2025-2026`, term 1 or 2.
/// Invariant: the second year is the first plus one and the term number is 1 or 2.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TermId(String);

impl TermId {
    /// Parses `YYYY-YYYY-N`.
    pub fn parse(s: &str) -> Option<TermId> {
        let mut parts = s.split('-');
        let (a, b, n) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || a.len() != 4 || b.len() != 4 || n.len() != 1 {
            return None;
        }
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        let n: u32 = n.parse().ok()?;
        (b == a + 1 && (1..=2).contains(&n)).then(|| TermId(s.to_owned()))
    }
    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The school year it belongs to, e.g. `2025-2026`.
    pub fn school_year(&self) -> &str {
        &self.0[..9]
    }
    /// The term number within the year (1 or 2).
    pub fn number(&self) -> u8 {
        self.0.as_bytes()[10] - b'0'
    }
}

impl fmt::Display for TermId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TermId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TermId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TermId::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "term must look like 2025-2026-1 (school year, then term 1 or 2), got {s:?}"
            ))
        })
    }
}

/// An amount of money, held exactly in fen (分). Invariant: never negative. On the wire it is
/// a decimal number of yuan with at most two decimals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Yuan(i64);

impl Yuan {
    /// An amount from fen, if not negative.
    pub fn from_fen(fen: i64) -> Option<Yuan> {
        (fen >= 0).then_some(Yuan(fen))
    }
    /// The amount in fen.
    pub fn fen(self) -> i64 {
        self.0
    }
    /// The amount in yuan (exact to the fen when printed with two decimals).
    pub fn as_yuan(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Yuan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_yuan())
    }
}

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || v < 0.0 {
            return Err(serde::de::Error::custom(format!(
                "amount must be a non-negative number of yuan, got {v}"
            )));
        }
        let fen = (v * 100.0).round();
        if (v * 100.0 - fen).abs() > 1e-6 || fen > 1e15 {
            return Err(serde::de::Error::custom(format!(
                "amount must be yuan with at most two decimals, got {v}"
            )));
        }
        Ok(Yuan(fen as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("the tests pass objects"),
        }
    }

    #[test]
    fn only_counseling_notes_are_confidential() {
        for k in EventKind::ALL {
            let expected: &[&str] = if k == EventKind::CounselingHeld {
                &["notes"]
            } else {
                &[]
            };
            assert_eq!(k.confidential_fields(), expected, "{k}");
        }
    }

    #[test]
    fn a_correction_of_counseling_notes_is_masked_like_the_notes() {
        let mask = Value::from("");
        let mut session =
            obj(json!({"type": "counseling_session", "notes": "secret", "risk": "low"}));
        redact_wire(&mut session, EventKind::CounselingHeld, None, &mask);
        assert_eq!(session["notes"], mask);
        assert_eq!(session["risk"], json!("low"));

        let fix = json!({"type": "correction", "changes": {"notes": "secret 2", "risk": "high"}});
        let mut of_session = obj(fix.clone());
        redact_wire(
            &mut of_session,
            EventKind::Corrected,
            Some(EventKind::CounselingHeld),
            &mask,
        );
        assert_eq!(of_session["changes"], json!({"notes": "", "risk": "high"}));

        // A talk has no confidential field: its correction keeps its text.
        let mut of_talk = obj(json!({"type": "correction", "changes": {"notes": "x"}}));
        redact_wire(
            &mut of_talk,
            EventKind::Corrected,
            Some(EventKind::TalkHeld),
            &mask,
        );
        assert_eq!(of_talk["changes"], json!({"notes": "x"}));

        // An unknown target never leaks.
        let mut unknown = obj(fix);
        redact_wire(&mut unknown, EventKind::Corrected, None, &mask);
        assert_eq!(unknown["changes"]["notes"], mask);
    }
}
