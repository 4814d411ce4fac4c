//! The Chinese labels and table cells the views share: how a school's forms name genders,
//! statuses, roles, relations, moods, missing fields and event types, and the first row of a
//! table.
//!
//! The labels of closed vocabularies come from `events::labels` (the one table the workbook
//! reader and the form templates use too); this module adds the views' own wording. It owns
//! wording only; it must never decide what a view contains.

use chrono::NaiveDate;
use events::EventKind;
use events::event::{ChildStatus, Gender, GuardianRelation, Mood, PairingRole, Parent};

pub(crate) fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) fn zh_gender(g: Gender) -> &'static str {
    g.zh()
}

pub(crate) fn zh_status(s: ChildStatus) -> &'static str {
    s.zh()
}

pub(crate) fn zh_role(r: PairingRole) -> &'static str {
    r.zh()
}

pub(crate) fn zh_parent(p: Parent) -> &'static str {
    p.zh()
}

pub(crate) fn zh_guardian_relation(r: GuardianRelation) -> &'static str {
    r.zh()
}

pub(crate) fn zh_mood(m: Mood) -> &'static str {
    m.zh()
}

pub(crate) fn zh_missing(field: &str) -> &'static str {
    match field {
        "name" => "姓名",
        "gender" => "性别",
        "birth_date" => "出生日期",
        "class" => "班级",
        "address" => "家庭住址",
        "parents" => "父母信息",
        "parents.phone" => "父母电话",
        "parents.work_place" => "父母务工单位",
        "guardian.name" => "监护人姓名",
        "guardian.relation" => "监护关系",
        "guardian.phone" => "监护人电话",
        _ => "其他",
    }
}

/// The Chinese name of an event type, as school forms call it.
pub(crate) fn zh_kind(k: EventKind) -> &'static str {
    match k {
        EventKind::SchoolRegistered => "学校登记",
        EventKind::TermDefined => "学期设定",
        EventKind::PolicyAdopted => "制度采用",
        EventKind::StaffJoined => "教职工登记",
        EventKind::StaffLeft => "教职工离校",
        EventKind::ChildRegistered => "建档",
        EventKind::ChildUpdated => "档案变更",
        EventKind::ChildStatusChanged => "状态变更",
        EventKind::ChildErased => "个人信息删除",
        EventKind::PairingAssigned => "结对",
        EventKind::PairingEnded => "结对结束",
        EventKind::BuddyAssigned => "学习帮手",
        EventKind::TalkHeld => "谈心",
        EventKind::ParentCalled => "与父母通话",
        EventKind::FamilyCallArranged => "亲情电话",
        EventKind::GuardianContacted => "联系监护人",
        EventKind::ClassTeacherContacted => "联系班主任",
        EventKind::HomeVisited => "家访",
        EventKind::LetterWritten => "书信",
        EventKind::WarmthVisited => "送温暖",
        EventKind::Tutored => "学业辅导",
        EventKind::CounselingHeld => "心理辅导",
        EventKind::ActivityHeld => "活动",
        EventKind::AidGranted => "资助",
        EventKind::AwardGiven => "获奖",
        EventKind::AcademicResultRecorded => "学业成绩",
        EventKind::PhysicalTestRecorded => "体检",
        EventKind::IncidentReported => "事件报告",
        EventKind::IncidentNotified => "事件通报",
        EventKind::Corrected => "更正",
        EventKind::Retracted => "撤回",
    }
}

/// A date, or an empty cell.
pub(crate) fn opt_date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// 是 or 否.
pub(crate) fn yes_no(b: bool) -> String {
    events::labels::yes_no(b).to_owned()
}
