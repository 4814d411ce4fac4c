//! The event vocabulary: every fact careledger can record, as typed Rust.
//!
//! This file is the schema (rules §5) and therefore the contract with every school's data.
//! It owns the payload types and their closed vocabularies; it must never know how events are
//! stored, parsed from a file or projected. Variants are past-tense facts. The serde names are
//! the wire names of rules §5 (`talk_held`, `parent_call`, …).
//!
//! Decoding is strict (`deny_unknown_fields`): an input field we do not know is an error, never
//! silently dropped. New fields are added as `Option` / `#[serde(default)]` so that old stored
//! envelopes still decode (the envelope carries a schema version for anything bigger).
//!
//! Free-text fields that a paper form may leave blank (`follow_up`, `note`, `reason`, …) are
//! optional; identifiers, dates, numbers and closed vocabularies are required
//! (docs/rules.md §5.3–§5.4 list which is which).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::personal::FieldClass;
use crate::policy::Policy;

/// One recorded fact. Externally tagged in storage (fast to decode); the JSONL wire form is the
/// same object flattened with a `type` field (see `ingest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    // ---- registry -------------------------------------------------------------------------
    /// A school was registered with careledger.
    SchoolRegistered {
        /// The school id.
        school: String,
        /// The school's name.
        name: String,
        /// The county (县) the school is in.
        county: String,
        /// The township (乡镇) the school is in.
        township: String,
    },
    /// A term (学期) of a school was defined; terms of one school year make up that year.
    TermDefined {
        /// The school id.
        school: String,
        /// The term id, e.g. `2025-2026-1`.
        term: TermId,
        /// The term's first day.
        starts_on: NaiveDate,
        /// The term's last day.
        ends_on: NaiveDate,
    },
    /// A school adopted a care policy (制度) from a date on (rules §6).
    PolicyAdopted {
        /// The school id.
        school: String,
        /// The first day the policy is in force.
        effective_from: NaiveDate,
        /// The policy itself.
        policy: Policy,
    },
    /// A staff member joined a school.
    StaffJoined {
        /// The new staff member's id.
        staff: String,
        /// The school id.
        school: String,
        /// The staff member's name (personal).
        name: String,
        /// The staff member's roles at the school.
        roles: Vec<Role>,
        /// Whether the staff member is a Party member (the seed rules pair them first).
        party_member: bool,
        /// The staff member's phone (personal).
        phone: String,
    },
    /// A staff member left (from `on` on they no longer count).
    StaffLeft {
        /// The staff member who left.
        staff: String,
        /// The first day they no longer count.
        on: NaiveDate,
        /// Why, in the recorder's words (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A left-behind child was registered and their file (档案) opened.
    ChildRegistered(Box<ChildRecord>),
    /// Fields of a child's file changed (class, guardian, parents' work places, …).
    ChildUpdated {
        /// The child (child id) it is about.
        child: String,
        /// The fields that changed; absent ones stay as they were.
        changes: Box<ChildChanges>,
    },
    /// A child's status changed from `on` on (no longer left behind, dropped out, …).
    ChildStatusChanged {
        /// The child (child id) it is about.
        child: String,
        /// The new status.
        status: ChildStatus,
        /// The first day of the new status.
        on: NaiveDate,
        /// A note on the change (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A child's personal data was erased (PIPL Art. 47; rules §5.14): the child's data key
    /// was destroyed right after this event was recorded, so every sealed field of the child
    /// reads as erased from then on, while ids, dates, counts and the log's hashes stay.
    ChildErased {
        /// The child (child id) whose key was destroyed.
        child: String,
        /// Why, on what legal basis (it stays readable: it is sealed under no key).
        basis: String,
        /// The staff member (staff id) who approved the erasure.
        approved_by: String,
        /// The commitment of the destroyed key (`vault::commitment`): names the key without
        /// revealing it.
        key_commitment: String,
    },
    /// A staff member was paired with a child (结对) from a date on.
    PairingAssigned {
        /// The mentor.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Mentor (帮扶教师) or proxy parent (代理家长).
        role: PairingRole,
        /// The first day it holds.
        from: NaiveDate,
    },
    /// A pairing ended: from `on` on it no longer holds.
    PairingEnded {
        /// The mentor.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The first day the pairing no longer holds.
        on: NaiveDate,
        /// Why, in the recorder's words (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A study buddy (学习帮手) was assigned to a child.
    BuddyAssigned {
        /// The child (child id) it is about.
        child: String,
        /// The buddy's name (a classmate: a child's name, personal).
        buddy: String,
        /// The first day it holds.
        from: NaiveDate,
    },

    // ---- care interactions ----------------------------------------------------------------
    /// A one-to-one heart-to-heart talk (谈心) was held.
    TalkHeld {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// What the talk was about (学习, 生活, 心理, …).
        topic: String,
        /// What was said or done, in the recorder's words (personal free text).
        summary: String,
        /// The child's mood as the staff member saw it.
        mood: Mood,
        /// What the staff member will follow up on (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up: Option<String>,
    },
    /// The staff member called the child's parent to report (与父母通话).
    #[serde(rename = "parent_call")]
    ParentCalled {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Which parent.
        parent: Parent,
        /// How long the call lasted, in minutes.
        minutes: u32,
        /// What was said or done, in the recorder's words (personal free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// The school arranged a call between the child and a parent (亲情电话).
    #[serde(rename = "family_call")]
    FamilyCallArranged {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Which parent.
        parent: Parent,
        /// How long the call lasted, in minutes.
        minutes: u32,
        /// Why the call was arranged (事由, free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The staff member contacted the guardian (委托监护人).
    #[serde(rename = "guardian_contact")]
    GuardianContacted {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// How the guardian was contacted.
        mode: ContactMode,
        /// What was said or done, in the recorder's words (personal free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// The staff member consulted the child's class teacher.
    #[serde(rename = "class_teacher_contact")]
    ClassTeacherContacted {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// What was said or done, in the recorder's words (personal free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// A home visit (家访 / 上门看望) was made.
    #[serde(rename = "home_visit")]
    HomeVisited {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Who was met.
        met: Vec<MetParty>,
        /// What the visitor found (personal free text).
        findings: String,
        /// What the visitor plans next (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_steps: Option<String>,
    },
    /// A letter was written (mentor to child, child to parent, parent to child).
    #[serde(rename = "letter")]
    LetterWritten {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Who wrote to whom.
        direction: LetterDirection,
        /// What was said or done, in the recorder's words (personal free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// A warmth visit (送温暖) with a gift was made.
    #[serde(rename = "warmth_visit")]
    WarmthVisited {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The occasion (festival, birthday, winter, …).
        occasion: String,
        /// What was given.
        items: String,
        /// The gift's value, exact to the fen.
        value_yuan: Yuan,
    },
    /// The staff member tutored the child.
    #[serde(rename = "tutoring")]
    Tutored {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The school subject.
        subject: String,
        /// How long the tutoring lasted, in minutes.
        minutes: u32,
    },
    /// A counseling session was held. **Confidential**: `notes` never leaves a counselor's view.
    #[serde(rename = "counseling_session")]
    CounselingHeld {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The counselor's risk assessment.
        risk: Risk,
        /// The counselor's notes. Confidential: only a counselor ever reads them.
        notes: String,
    },
    /// A group activity took place with several children.
    #[serde(rename = "activity")]
    ActivityHeld {
        /// The staff member (staff id) who did it.
        staff: String,
        /// Every child who took part.
        children: Vec<String>,
        /// The activity's name.
        name: String,
        /// The kind of activity, in the school's own words.
        kind: String,
    },
    /// Material aid was granted to the child.
    AidGranted {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The kind of aid, in the school's own words.
        kind: String,
        /// The amount, exact to the fen.
        amount_yuan: Yuan,
    },
    /// The child received an award.
    AwardGiven {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The award's title.
        title: String,
    },
    /// An exam result of the child was recorded.
    #[serde(rename = "academic_result")]
    AcademicResultRecorded {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The exam (期中, 期末, …).
        exam: String,
        /// The school subject.
        subject: String,
        /// The score obtained.
        score: f64,
        /// The full score of the exam.
        full_score: f64,
    },
    /// A physical test of the child was recorded.
    #[serde(rename = "physical_test")]
    PhysicalTestRecorded {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// Height in centimetres.
        height_cm: f64,
        /// Weight in kilograms.
        weight_kg: f64,
        /// Other measured items by name (肺活量, 50米跑, …).
        #[serde(default)]
        items: BTreeMap<String, f64>,
        /// Anything unusual the test found (personal free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anomalies: Option<String>,
    },
    /// An incident involving the child was reported.
    IncidentReported {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The child (child id) it is about.
        child: String,
        /// The incident id, chosen by the school; `incident_notified` names it.
        incident: String,
        /// The incident category, in the school's own words.
        category: String,
        /// What happened (personal free text).
        description: String,
        /// How serious the school judged it.
        severity: String,
        /// When the incident happened.
        #[serde(with = "chrono::serde::ts_microseconds")]
        happened_at: DateTime<Utc>,
    },
    /// A party was notified of an incident (escalation, rules §8.7).
    IncidentNotified {
        /// The staff member (staff id) who did it.
        staff: String,
        /// The incident this notification is for.
        incident: String,
        /// Who was told.
        party: NotifiedParty,
        /// When the party was told.
        #[serde(with = "chrono::serde::ts_microseconds")]
        notified_at: DateTime<Utc>,
    },

    // ---- amendments -----------------------------------------------------------------------
    /// An earlier event was corrected: it counts as if it had carried `changes`.
    #[serde(rename = "correction")]
    Corrected {
        /// The id of the earlier event it amends.
        target: String,
        /// The corrected payload fields only; envelope fields cannot be corrected.
        changes: BTreeMap<String, serde_json::Value>,
        /// Why the correction was needed.
        reason: String,
    },
    /// An earlier event was retracted: it counts nowhere.
    #[serde(rename = "retraction")]
    Retracted {
        /// The id of the earlier event it amends.
        target: String,
        /// Why the event was retracted.
        reason: String,
    },
}

/// The name of an event type, as on the wire (`talk_held`). Used by policies and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A school was registered.
    SchoolRegistered,
    /// A term was defined.
    TermDefined,
    /// A policy was adopted.
    PolicyAdopted,
    /// A staff member joined.
    StaffJoined,
    /// A staff member left.
    StaffLeft,
    /// A child was registered.
    ChildRegistered,
    /// A child's file changed.
    ChildUpdated,
    /// A child's status changed.
    ChildStatusChanged,
    /// A child's personal data was erased.
    ChildErased,
    /// A pairing was assigned.
    PairingAssigned,
    /// A pairing ended.
    PairingEnded,
    /// A study buddy was assigned.
    BuddyAssigned,
    /// A talk (谈心) was held.
    TalkHeld,
    /// A parent was called (与父母通话).
    #[serde(rename = "parent_call")]
    ParentCalled,
    /// A family call (亲情电话) was arranged.
    #[serde(rename = "family_call")]
    FamilyCallArranged,
    /// The guardian was contacted.
    #[serde(rename = "guardian_contact")]
    GuardianContacted,
    /// The class teacher was consulted.
    #[serde(rename = "class_teacher_contact")]
    ClassTeacherContacted,
    /// A home visit (家访) was made.
    #[serde(rename = "home_visit")]
    HomeVisited,
    /// A letter was written.
    #[serde(rename = "letter")]
    LetterWritten,
    /// A warmth visit (送温暖) was made.
    #[serde(rename = "warmth_visit")]
    WarmthVisited,
    /// The child was tutored.
    #[serde(rename = "tutoring")]
    Tutored,
    /// A counseling session was held.
    #[serde(rename = "counseling_session")]
    CounselingHeld,
    /// A group activity was held.
    #[serde(rename = "activity")]
    ActivityHeld,
    /// Aid was granted.
    AidGranted,
    /// An award was given.
    AwardGiven,
    /// An exam result was recorded.
    #[serde(rename = "academic_result")]
    AcademicResultRecorded,
    /// A physical test was recorded.
    #[serde(rename = "physical_test")]
    PhysicalTestRecorded,
    /// An incident was reported.
    IncidentReported,
    /// A party was told of an incident.
    IncidentNotified,
    /// An earlier event was corrected.
    #[serde(rename = "correction")]
    Corrected,
    /// An earlier event was retracted.
    #[serde(rename = "retraction")]
    Retracted,
}

impl EventKind {
    /// Every kind, in vocabulary order.
    pub const ALL: [EventKind; 31] = [
        EventKind::SchoolRegistered,
        EventKind::TermDefined,
        EventKind::PolicyAdopted,
        EventKind::StaffJoined,
        EventKind::StaffLeft,
        EventKind::ChildRegistered,
        EventKind::ChildUpdated,
        EventKind::ChildStatusChanged,
        EventKind::ChildErased,
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
            EventKind::ChildErased => "child_erased",
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

    /// Care work, in vocabulary order: what a staff member does with a child (rules §5.4),
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

    /// The kinds a policy quota may count (rules §6.3): care work plus the records about a
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
    /// Whether `field` (a top-level payload field) of an event of this kind only a counselor
    /// may read (rules §5: a counseling session's `notes`). The rule is the `Confidential`
    /// class of `personal::FIELDS`; every output that is not a counselor's view hides those
    /// fields through `redact_wire`, in the event itself and in every correction of it.
    pub fn is_confidential(self, field: &str) -> bool {
        crate::personal::class_of(self, field) == Some(FieldClass::Confidential)
    }

    /// Whether events of this kind carry a confidential field.
    pub fn has_confidential_fields(self) -> bool {
        crate::personal::FIELDS
            .iter()
            .any(|(k, _, c)| *k == self && *c == FieldClass::Confidential)
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
    for (field, v) in fields.iter_mut() {
        if kind.is_confidential(field) {
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
            Event::ChildErased { .. } => EventKind::ChildErased,
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
            | Event::ChildErased { child, .. }
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
    /// The child's id (编号 / 学籍号), fixed for life.
    pub child: String,
    /// The school id.
    pub school: String,
    /// The grade, 1 to 9.
    pub grade: Grade,
    /// The class number within the grade.
    pub class: u32,
    /// The child's name (personal).
    pub name: String,
    /// The child's gender.
    pub gender: Gender,
    /// The child's birth date (personal).
    pub birth_date: NaiveDate,
    /// Whether the child boards at school (寄宿).
    pub boarding: bool,
    /// The home address (personal).
    pub address: String,
    /// Why the child counts as left behind.
    pub left_behind_type: LeftBehindType,
    /// Hardships the file lists (孤儿, 残疾, 贫困, 单亲).
    #[serde(default)]
    pub hardship: Vec<Hardship>,
    /// Areas needing particular attention (重点关注).
    #[serde(default)]
    pub focus: Vec<Focus>,
    /// The child's parents, usually working away.
    pub parents: Vec<ParentInfo>,
    /// The adult the child lives with.
    pub guardian: Guardian,
}

/// The fields a `child_updated` may change; absent fields stay as they were. A list or the
/// guardian is replaced whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildChanges {
    /// The school id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// The grade, 1 to 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// The class number within the grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<u32>,
    /// The child's name (personal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The child's gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// The child's birth date (personal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    /// Whether the child boards at school (寄宿).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boarding: Option<bool>,
    /// The home address (personal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why the child counts as left behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_behind_type: Option<LeftBehindType>,
    /// Hardships the file lists (孤儿, 残疾, 贫困, 单亲).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardship: Option<Vec<Hardship>>,
    /// Areas needing particular attention (重点关注).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<Vec<Focus>>,
    /// The child's parents, usually working away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<ParentInfo>>,
    /// The adult the child lives with.
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
    /// The parent's name (personal).
    pub name: String,
    /// How this adult is related to the child.
    pub relation: Parent,
    /// Where the parent works (务工地, personal).
    #[serde(default)]
    pub work_place: String,
    /// The employer's address (personal).
    #[serde(default)]
    pub employer_address: String,
    /// The parent's phone (personal).
    #[serde(default)]
    pub phone: String,
    /// Whether this parent works away from home.
    pub away: bool,
}

/// The adult the child actually lives with (委托监护人 / 临时监护人).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardian {
    /// The guardian's name (personal).
    pub name: String,
    /// How this adult is related to the child.
    pub relation: GuardianRelation,
    /// The guardian's age in years, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    /// The guardian's health (personal).
    #[serde(default)]
    pub health: String,
    /// The guardian's education (文化程度).
    #[serde(default)]
    pub education: String,
    /// The guardian's occupation (personal).
    #[serde(default)]
    pub occupation: String,
    /// Where the guardian lives (personal).
    #[serde(default)]
    pub address: String,
    /// The guardian's phone (personal).
    #[serde(default)]
    pub phone: String,
    /// How well the guardian can look after the child (监护能力).
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
        /// 班主任
        ClassTeacher => "class_teacher",
        /// 任课教师
        SubjectTeacher => "subject_teacher",
        /// 心理辅导员
        Counselor => "counselor",
        /// 学校管理员
        Admin => "admin",
        /// 领导小组成员
        Leader => "leader",
        /// 督查
        Inspector => "inspector",
    }
);
closed_vocabulary!(
    /// The kind of a pairing: mentor (帮扶教师) or proxy parent (代理家长).
    PairingRole {
        /// 帮扶教师
        Mentor => "mentor",
        /// 代理家长
        ProxyParent => "proxy_parent",
    }
);
closed_vocabulary!(
    /// The child's gender.
    Gender {
        /// 男
        Male => "male",
        /// 女
        Female => "female",
    }
);
closed_vocabulary!(
    /// Why the child counts as left behind.
    LeftBehindType {
        /// 父母双方外出
        BothParentsAway => "both_parents_away",
        /// 一方外出、另一方无监护能力
        OneParentAway => "one_parent_away",
    }
);
closed_vocabulary!(
    /// Hardship a child's file may list.
    Hardship {
        /// 孤儿
        Orphan => "orphan",
        /// 残疾
        Disabled => "disabled",
        /// 贫困
        Poverty => "poverty",
        /// 单亲
        SingleParent => "single_parent",
    }
);
closed_vocabulary!(
    /// Areas needing particular attention (重点关注).
    Focus {
        /// 学习
        Learning => "learning",
        /// 性格
        Personality => "personality",
        /// 心理
        Psychological => "psychological",
        /// 行为
        Behavior => "behavior",
        /// 安全
        Safety => "safety",
    }
);
closed_vocabulary!(
    /// Which parent.
    Parent {
        /// 父亲
        Father => "father",
        /// 母亲
        Mother => "mother",
    }
);
closed_vocabulary!(
    /// How the guardian is related to the child.
    GuardianRelation {
        /// 祖父母
        GrandparentPaternal => "grandparent_paternal",
        /// 外祖父母
        GrandparentMaternal => "grandparent_maternal",
        /// 亲属
        Relative => "relative",
        /// 兄弟姐妹
        Sibling => "sibling",
        /// 父母（另一方）
        Parent => "parent",
        /// 其他
        Other => "other",
    }
);
closed_vocabulary!(
    /// How well the guardian can look after the child.
    Capability {
        /// 好
        Good => "good",
        /// 一般
        Fair => "fair",
        /// 弱
        Weak => "weak",
        /// 无监护能力
        None => "none",
    }
);
closed_vocabulary!(
    /// A child's status from a date on.
    ChildStatus {
        /// 留守
        LeftBehind => "left_behind",
        /// 不再留守
        NoLongerLeftBehind => "no_longer_left_behind",
        /// 转出
        TransferredOut => "transferred_out",
        /// 辍学
        DroppedOut => "dropped_out",
        /// 复学
        ReturnedToSchool => "returned_to_school",
        /// 毕业
        Graduated => "graduated",
    }
);
closed_vocabulary!(
    /// The child's mood as the mentor saw it during a talk.
    Mood {
        /// 好
        Good => "good",
        /// 一般
        Ok => "ok",
        /// 低落
        Low => "low",
        /// 需关注
        Concerning => "concerning",
    }
);
closed_vocabulary!(
    /// How the guardian was contacted.
    ContactMode {
        /// 走访
        Visit => "visit",
        /// 电话
        Phone => "phone",
        /// 面谈
        Meeting => "meeting",
    }
);
closed_vocabulary!(
    /// Who was met on a home visit.
    MetParty {
        /// 监护人
        Guardian => "guardian",
        /// 父母
        Parent => "parent",
        /// 儿童本人
        Child => "child",
    }
);
closed_vocabulary!(
    /// Who wrote to whom.
    LetterDirection {
        /// 帮扶教师写给儿童
        MentorToChild => "mentor_to_child",
        /// 儿童写给父母
        ChildToParent => "child_to_parent",
        /// 父母写给儿童
        ParentToChild => "parent_to_child",
    }
);
closed_vocabulary!(
    /// A counselor's risk assessment.
    Risk {
        /// 无风险
        None => "none",
        /// 低
        Low => "low",
        /// 中
        Medium => "medium",
        /// 高
        High => "high",
    }
);
closed_vocabulary!(
    /// Who was told of an incident.
    NotifiedParty {
        /// 监护人
        Guardian => "guardian",
        /// 父母
        Parents => "parents",
        /// 教育局
        Bureau => "bureau",
        /// 公安
        Police => "police",
    }
);

impl ChildStatus {
    /// Whether a child with this latest status counts as active (rules §5.6).
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
            let counseling = k == EventKind::CounselingHeld;
            assert_eq!(k.has_confidential_fields(), counseling, "{k}");
            assert_eq!(k.is_confidential("notes"), counseling, "{k}");
            assert!(
                !k.is_confidential("risk") && !k.is_confidential("child"),
                "{k}"
            );
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
