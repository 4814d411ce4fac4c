//! What every field of the vocabulary carries, for privacy: identifiers, public facts,
//! personal data, free text, counseling notes.
//!
//! It owns one table, [`FIELDS`], classifying every field of every event kind (nested ones by
//! their dotted path: `guardian.phone`, `parents.name`, `changes.address`). Tests that check
//! what outputs may carry (reports, exports, logs) derive their list of sensitive values from
//! it, so a field added to the vocabulary must be classified here: a unit test walks the
//! fields serde knows for every kind and fails on any missing from the table. It must never
//! decide what an output shows; it only says what a field is.

use crate::event::EventKind;

/// What a field's values are, for privacy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldClass {
    /// An identifier or reference (`child`, `staff`, `school`, `incident`, `target`):
    /// codes an output may name.
    Id,
    /// A public or closed-vocabulary fact: dates, numbers, flags, enums, a school's or an
    /// activity's name, a term, a county, a subject.
    Public,
    /// Identifies or describes a person: names (a buddy is a child's name), phones, addresses,
    /// work places, birth dates, a guardian's age, health, education and occupation, body
    /// measurements.
    Personal,
    /// Free text written about a child or a family (a talk's topic, a visit's findings, a
    /// reason, a note): it may carry anything, names and circumstances included.
    FreeText,
    /// Counseling notes: seen by counselors only (ARCHITECTURE.md).
    Confidential,
    /// The changes of a `correction`: each key takes the class of that field of the target's
    /// kind.
    Amendment,
}

impl FieldClass {
    /// Whether no report, export, log line or view for a non-counselor may carry its values.
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            FieldClass::Personal | FieldClass::FreeText | FieldClass::Confidential
        )
    }
}

use EventKind as K;
use FieldClass::{Amendment, Confidential, FreeText, Id, Personal, Public};

/// The fields of a child's file (`child_registered`, and `changes.*` of `child_updated`).
const CHILD_FILE: &[(&str, FieldClass)] = &[
    ("child", Id),
    ("school", Id),
    ("grade", Public),
    ("class", Public),
    ("name", Personal),
    ("gender", Public),
    ("birth_date", Personal),
    ("boarding", Public),
    ("address", Personal),
    ("left_behind_type", Public),
    ("hardship", Public),
    ("focus", Public),
    ("parents", Personal),
    ("parents.name", Personal),
    ("parents.relation", Public),
    ("parents.work_place", Personal),
    ("parents.employer_address", Personal),
    ("parents.phone", Personal),
    ("parents.away", Public),
    ("guardian", Personal),
    ("guardian.name", Personal),
    ("guardian.relation", Public),
    ("guardian.age", Personal),
    ("guardian.health", Personal),
    ("guardian.education", Personal),
    ("guardian.occupation", Personal),
    ("guardian.address", Personal),
    ("guardian.phone", Personal),
    ("guardian.capability", Public),
];

/// Every field of every event kind except the child's file (which [`class_of`] reads from a
/// table of its own), by kind. `children` of an activity and `policy` of a policy are
/// classified whole.
pub const FIELDS: &[(EventKind, &str, FieldClass)] = &[
    (K::SchoolRegistered, "school", Id),
    (K::SchoolRegistered, "name", Public),
    (K::SchoolRegistered, "county", Public),
    (K::SchoolRegistered, "township", Public),
    (K::TermDefined, "school", Id),
    (K::TermDefined, "term", Public),
    (K::TermDefined, "starts_on", Public),
    (K::TermDefined, "ends_on", Public),
    (K::PolicyAdopted, "school", Id),
    (K::PolicyAdopted, "effective_from", Public),
    (K::PolicyAdopted, "policy", Public),
    (K::StaffJoined, "staff", Id),
    (K::StaffJoined, "school", Id),
    (K::StaffJoined, "name", Personal),
    (K::StaffJoined, "roles", Public),
    (K::StaffJoined, "party_member", Public),
    (K::StaffJoined, "phone", Personal),
    (K::StaffLeft, "staff", Id),
    (K::StaffLeft, "on", Public),
    (K::StaffLeft, "reason", FreeText),
    (K::ChildUpdated, "child", Id),
    (K::ChildUpdated, "changes", Personal),
    (K::ChildStatusChanged, "child", Id),
    (K::ChildStatusChanged, "status", Public),
    (K::ChildStatusChanged, "on", Public),
    (K::ChildStatusChanged, "note", FreeText),
    (K::ChildErased, "child", Id),
    (K::ChildErased, "basis", Public),
    (K::ChildErased, "approved_by", Id),
    (K::ChildErased, "key_commitment", Public),
    (K::PairingAssigned, "staff", Id),
    (K::PairingAssigned, "child", Id),
    (K::PairingAssigned, "role", Public),
    (K::PairingAssigned, "from", Public),
    (K::PairingEnded, "staff", Id),
    (K::PairingEnded, "child", Id),
    (K::PairingEnded, "on", Public),
    (K::PairingEnded, "reason", FreeText),
    (K::BuddyAssigned, "child", Id),
    (K::BuddyAssigned, "buddy", Personal),
    (K::BuddyAssigned, "from", Public),
    (K::TalkHeld, "staff", Id),
    (K::TalkHeld, "child", Id),
    (K::TalkHeld, "topic", FreeText),
    (K::TalkHeld, "summary", FreeText),
    (K::TalkHeld, "mood", Public),
    (K::TalkHeld, "follow_up", FreeText),
    (K::ParentCalled, "staff", Id),
    (K::ParentCalled, "child", Id),
    (K::ParentCalled, "parent", Public),
    (K::ParentCalled, "minutes", Public),
    (K::ParentCalled, "summary", FreeText),
    (K::FamilyCallArranged, "staff", Id),
    (K::FamilyCallArranged, "child", Id),
    (K::FamilyCallArranged, "parent", Public),
    (K::FamilyCallArranged, "minutes", Public),
    (K::FamilyCallArranged, "reason", FreeText),
    (K::GuardianContacted, "staff", Id),
    (K::GuardianContacted, "child", Id),
    (K::GuardianContacted, "mode", Public),
    (K::GuardianContacted, "summary", FreeText),
    (K::ClassTeacherContacted, "staff", Id),
    (K::ClassTeacherContacted, "child", Id),
    (K::ClassTeacherContacted, "summary", FreeText),
    (K::HomeVisited, "staff", Id),
    (K::HomeVisited, "child", Id),
    (K::HomeVisited, "met", Public),
    (K::HomeVisited, "findings", FreeText),
    (K::HomeVisited, "next_steps", FreeText),
    (K::LetterWritten, "staff", Id),
    (K::LetterWritten, "child", Id),
    (K::LetterWritten, "direction", Public),
    (K::LetterWritten, "summary", FreeText),
    (K::WarmthVisited, "staff", Id),
    (K::WarmthVisited, "child", Id),
    (K::WarmthVisited, "occasion", Public),
    (K::WarmthVisited, "items", FreeText),
    (K::WarmthVisited, "value_yuan", Public),
    (K::Tutored, "staff", Id),
    (K::Tutored, "child", Id),
    (K::Tutored, "subject", Public),
    (K::Tutored, "minutes", Public),
    (K::CounselingHeld, "staff", Id),
    (K::CounselingHeld, "child", Id),
    (K::CounselingHeld, "risk", Public),
    (K::CounselingHeld, "notes", Confidential),
    (K::ActivityHeld, "staff", Id),
    (K::ActivityHeld, "children", Id),
    (K::ActivityHeld, "name", Public),
    (K::ActivityHeld, "kind", Public),
    (K::AidGranted, "staff", Id),
    (K::AidGranted, "child", Id),
    (K::AidGranted, "kind", Public),
    (K::AidGranted, "amount_yuan", Public),
    (K::AwardGiven, "staff", Id),
    (K::AwardGiven, "child", Id),
    (K::AwardGiven, "title", Public),
    (K::AcademicResultRecorded, "staff", Id),
    (K::AcademicResultRecorded, "child", Id),
    (K::AcademicResultRecorded, "exam", Public),
    (K::AcademicResultRecorded, "subject", Public),
    (K::AcademicResultRecorded, "score", Public),
    (K::AcademicResultRecorded, "full_score", Public),
    (K::PhysicalTestRecorded, "staff", Id),
    (K::PhysicalTestRecorded, "child", Id),
    (K::PhysicalTestRecorded, "height_cm", Personal),
    (K::PhysicalTestRecorded, "weight_kg", Personal),
    (K::PhysicalTestRecorded, "items", Personal),
    (K::PhysicalTestRecorded, "anomalies", FreeText),
    (K::IncidentReported, "staff", Id),
    (K::IncidentReported, "child", Id),
    (K::IncidentReported, "incident", Id),
    (K::IncidentReported, "category", Public),
    (K::IncidentReported, "description", FreeText),
    (K::IncidentReported, "severity", Public),
    (K::IncidentReported, "happened_at", Public),
    (K::IncidentNotified, "staff", Id),
    (K::IncidentNotified, "incident", Id),
    (K::IncidentNotified, "party", Public),
    (K::IncidentNotified, "notified_at", Public),
    (K::Corrected, "target", Id),
    (K::Corrected, "changes", Amendment),
    (K::Corrected, "reason", FreeText),
    (K::Retracted, "target", Id),
    (K::Retracted, "reason", FreeText),
];

/// The envelope's own fields, the same for every kind (`type`, `id`, both times, the actor).
const ENVELOPE: &[(&str, FieldClass)] = &[
    ("type", Public),
    ("id", Id),
    ("occurred_at", Public),
    ("recorded_at", Public),
    ("actor", Id),
];

/// The class of the field at `path` (dotted, without list indexes: `parents.phone`) of an
/// event of `kind`, envelope fields included; `None` for a field the vocabulary does not have.
/// Inside `child_updated.changes` the child's file applies (`changes.guardian.phone`).
pub fn class_of(kind: EventKind, path: &str) -> Option<FieldClass> {
    if let Some((_, c)) = ENVELOPE.iter().find(|(f, _)| *f == path) {
        return Some(*c);
    }
    let file_path = match kind {
        K::ChildRegistered => Some(path),
        K::ChildUpdated => path.strip_prefix("changes."),
        _ => None,
    };
    if let Some(p) = file_path
        && let Some((_, c)) = CHILD_FILE.iter().find(|(f, _)| *f == p)
    {
        return Some(*c);
    }
    FIELDS
        .iter()
        .find(|(k, f, _)| *k == kind && *f == path)
        .map(|(_, _, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChildChanges, ChildRecord, Event, Guardian, ParentInfo};
    use serde::de::DeserializeOwned;

    /// The field names serde expects for a type with `deny_unknown_fields`, read from the
    /// error it gives for an unknown field (`unknown field …, expected one of `a`, `b``).
    fn fields_of_json(
        probe: serde_json::Value,
        decode: impl Fn(serde_json::Value) -> String,
    ) -> Vec<String> {
        let msg = decode(probe);
        let (_, expected) = msg
            .split_once(", expected ")
            .unwrap_or_else(|| panic!("serde no longer names the expected fields: {msg}"));
        let names: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(!names.is_empty(), "no field names in: {msg}");
        names
    }

    fn fields_of<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        fields_of_json(serde_json::json!({ "\u{1}probe": 0 }), |v| {
            serde_json::from_value::<T>(v)
                .expect_err("an unknown field is refused")
                .to_string()
        })
    }

    #[test]
    fn every_field_of_every_event_kind_is_classified() {
        let mut checked = 0;
        for kind in EventKind::ALL {
            let fields = match kind {
                K::ChildRegistered => fields_of::<ChildRecord>(),
                _ => fields_of_json(
                    serde_json::json!({ kind.as_str(): { "\u{1}probe": 0 } }),
                    |v| {
                        serde_json::from_value::<Event>(v)
                            .expect_err("an unknown field is refused")
                            .to_string()
                    },
                ),
            };
            for f in fields {
                assert!(
                    class_of(kind, &f).is_some(),
                    "{}.{f} is not classified in events/src/personal.rs",
                    kind.as_str()
                );
                checked += 1;
            }
        }
        // The nested records: every field of a child's file, both as registered and changed.
        for (prefix, fields) in [
            ("parents.", fields_of::<ParentInfo>()),
            ("guardian.", fields_of::<Guardian>()),
            ("", fields_of::<ChildChanges>()),
        ] {
            for f in fields {
                for (kind, path) in [
                    (K::ChildRegistered, format!("{prefix}{f}")),
                    (K::ChildUpdated, format!("changes.{prefix}{f}")),
                ] {
                    assert!(
                        class_of(kind, &path).is_some(),
                        "{}.{path} is not classified in events/src/personal.rs",
                        kind.as_str()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 150, "only {checked} fields were found to check");
    }

    #[test]
    fn the_table_names_no_field_the_vocabulary_lacks() {
        for (kind, field, _) in FIELDS {
            let probe = serde_json::json!({ kind.as_str(): { "\u{1}probe": 0 } });
            let msg = serde_json::from_value::<Event>(probe)
                .expect_err("an unknown field is refused")
                .to_string();
            assert!(
                msg.contains(&format!("`{field}`")),
                "{}.{field} is in the table but not in the vocabulary: {msg}",
                kind.as_str()
            );
        }
    }

    #[test]
    fn the_fields_named_in_the_privacy_review_are_sensitive() {
        for (kind, path) in [
            (K::BuddyAssigned, "buddy"),
            (K::StaffLeft, "reason"),
            (K::ChildStatusChanged, "note"),
            (K::TalkHeld, "follow_up"),
            (K::TalkHeld, "topic"),
            (K::HomeVisited, "next_steps"),
            (K::PhysicalTestRecorded, "anomalies"),
            (K::ChildRegistered, "guardian.health"),
            (K::ChildUpdated, "changes.guardian.occupation"),
            (K::CounselingHeld, "notes"),
        ] {
            let c = class_of(kind, path).expect("classified");
            assert!(c.is_sensitive(), "{}.{path} is {c:?}", kind.as_str());
        }
        assert_eq!(class_of(K::TalkHeld, "no_such_field"), None);
    }
}
