//! The progress file (进步档案 / 成长记录袋) of a child: exam results per subject over time with
//! the change from the previous exam, physical tests, awards, activities, talk moods, and the
//! count of each care interaction per term.
//!
//! It is a pure fold over a [`Timeline`] and its [`World`]; it must never read the store or
//! the clock. Counseling sessions appear as counts only; their `notes` (and the session list)
//! appear only when the caller says the viewer is a counselor, never otherwise.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::event::{Mood, Risk};
use events::{Event, EventKind};
use serde::Serialize;

use crate::ProjectionError;
use crate::labels::{row, zh_kind, zh_mood};
use crate::timeline::{Fact, Timeline};
use crate::world::World;

/// A child's progress file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressFile {
    /// The child id.
    pub child: String,
    /// The child's name on its latest file.
    pub name: String,
    /// By subject (sorted), each subject's results in occurred order.
    pub academic: Vec<SubjectResults>,
    /// Physical tests (体质测试), in occurred order.
    pub physical_tests: Vec<PhysicalTest>,
    /// Awards, in occurred order.
    pub awards: Vec<Award>,
    /// Group activities the child took part in, in occurred order.
    pub activities: Vec<Activity>,
    /// The mood seen at each `talk_held` about the child, in occurred order.
    pub moods: Vec<MoodEntry>,
    /// Care interactions per term of the child's school; events on no term day come last
    /// with `term: null`.
    pub care_per_term: Vec<TermCare>,
    /// Counseling sessions with notes: present only for a counselor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counseling: Option<Vec<CounselingEntry>>,
}

/// The results of one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectResults {
    /// The school subject, as recorded.
    pub subject: String,
    /// The subject's results, in occurred order.
    pub results: Vec<ExamResult>,
}

/// One exam result. `percent` is `score / full_score × 100`; the changes compare with the
/// previous result of the same subject (`change` in points only when both exams had the same
/// full score). Figures are rounded to two decimals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExamResult {
    /// The exam's name as recorded (期中, 期末, …).
    pub exam: String,
    /// The event day (rules §5.13) of the result.
    pub on: NaiveDate,
    /// The score obtained.
    pub score: f64,
    /// The exam's full score.
    pub full_score: f64,
    /// `score / full_score × 100`; `None` when the full score is 0.
    pub percent: Option<f64>,
    /// Points gained since the previous result of the subject, when both had this full score.
    pub change: Option<f64>,
    /// Percentage points gained since the previous result of the subject with a percent.
    pub percent_change: Option<f64>,
}

/// A physical test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalTest {
    /// The event day of the test.
    pub on: NaiveDate,
    /// Height in centimetres.
    pub height_cm: f64,
    /// Weight in kilograms.
    pub weight_kg: f64,
    /// Other measured items by name (50米跑_秒, …), as recorded.
    pub items: BTreeMap<String, f64>,
    /// Anything unusual the test found (personal free text).
    pub anomalies: Option<String>,
}

/// An award.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Award {
    /// The event day of the award.
    pub on: NaiveDate,
    /// The award's title.
    pub title: String,
    /// The staff id named on the award (who gave it).
    pub staff: String,
}

/// A group activity the child took part in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// The event day of the activity.
    pub on: NaiveDate,
    /// The activity's name.
    pub name: String,
    /// The kind of activity, in the school's own words.
    pub kind: String,
    /// The staff id who led it.
    pub staff: String,
}

/// The mood seen during a talk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoodEntry {
    /// The event day of the talk.
    pub on: NaiveDate,
    /// The mood the staff member saw.
    pub mood: Mood,
    /// The staff id who held the talk.
    pub staff: String,
}

/// Care interactions of one term, by kind (kinds with no event left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermCare {
    /// The term id (`2025-2026-1`) of the child's school; `None` for days in no term.
    pub term: Option<String>,
    /// Events about the child by care kind; kinds with none are absent.
    pub counts: BTreeMap<EventKind, u32>,
}

/// A counseling session as a counselor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounselingEntry {
    /// The event day of the session.
    pub on: NaiveDate,
    /// The counselor's staff id.
    pub staff: String,
    /// The counselor's risk assessment.
    pub risk: Risk,
    /// The counselor's notes (confidential: only in a counselor's view).
    pub notes: String,
}

/// Rounds to two decimals, half away from zero (on the binary value; these are display
/// figures, not scores).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The child's progress file as the timeline knows it. `viewer_is_counselor` adds the
/// counseling sessions with their notes.
pub fn progress(
    timeline: &Timeline,
    world: &World,
    child: &str,
    viewer_is_counselor: bool,
) -> Result<ProgressFile, ProjectionError> {
    let c = world
        .child(child)
        .ok_or_else(|| ProjectionError::UnknownChild {
            child: child.to_owned(),
        })?;
    let file = c.file_latest();
    let terms = world
        .school(&file.school)
        .map(|s| s.terms().to_vec())
        .unwrap_or_default();

    let mut facts: Vec<&Fact> = timeline
        .facts()
        .iter()
        .filter(|f| world.event_children(&f.event).contains(&child))
        .map(|f| &**f)
        .collect();
    // Occurred order; log order among equal times.
    facts.sort_by_key(|f| (f.occurred_at, f.seq));

    let mut subjects: BTreeMap<String, Vec<ExamResult>> = BTreeMap::new();
    let mut out = ProgressFile {
        child: child.to_owned(),
        name: file.name.clone(),
        academic: Vec::new(),
        physical_tests: Vec::new(),
        awards: Vec::new(),
        activities: Vec::new(),
        moods: Vec::new(),
        care_per_term: Vec::new(),
        counseling: viewer_is_counselor.then(Vec::new),
    };
    let mut per_term: BTreeMap<Option<usize>, BTreeMap<EventKind, u32>> = BTreeMap::new();
    for f in facts {
        let on = f.date();
        let kind = f.event.kind();
        if kind.is_care_work() {
            let term = terms
                .iter()
                .position(|t| t.starts_on <= on && on <= t.ends_on);
            *per_term.entry(term).or_default().entry(kind).or_insert(0) += 1;
        }
        match &f.event {
            Event::AcademicResultRecorded {
                exam,
                subject,
                score,
                full_score,
                ..
            } => {
                let list = subjects.entry(subject.clone()).or_default();
                let percent = (*full_score > 0.0).then(|| round2(score / full_score * 100.0));
                let prev = list.last();
                let change = prev
                    .filter(|p| p.full_score == *full_score)
                    .map(|p| round2(score - p.score));
                let percent_change = match (prev.and_then(|p| p.percent), percent) {
                    (Some(a), Some(b)) => Some(round2(b - a)),
                    _ => None,
                };
                list.push(ExamResult {
                    exam: exam.clone(),
                    on,
                    score: *score,
                    full_score: *full_score,
                    percent,
                    change,
                    percent_change,
                });
            }
            Event::PhysicalTestRecorded {
                height_cm,
                weight_kg,
                items,
                anomalies,
                ..
            } => out.physical_tests.push(PhysicalTest {
                on,
                height_cm: *height_cm,
                weight_kg: *weight_kg,
                items: items.clone(),
                anomalies: anomalies.clone(),
            }),
            Event::AwardGiven { title, staff, .. } => out.awards.push(Award {
                on,
                title: title.clone(),
                staff: staff.clone(),
            }),
            Event::ActivityHeld {
                name, kind, staff, ..
            } => out.activities.push(Activity {
                on,
                name: name.clone(),
                kind: kind.clone(),
                staff: staff.clone(),
            }),
            Event::TalkHeld { mood, staff, .. } => out.moods.push(MoodEntry {
                on,
                mood: *mood,
                staff: staff.clone(),
            }),
            Event::CounselingHeld {
                staff, risk, notes, ..
            } => {
                if let Some(list) = out.counseling.as_mut() {
                    list.push(CounselingEntry {
                        on,
                        staff: staff.clone(),
                        risk: *risk,
                        notes: notes.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out.academic = subjects
        .into_iter()
        .map(|(subject, results)| SubjectResults { subject, results })
        .collect();
    // `None` (no term) sorts first in a BTreeMap; it is listed last.
    let mut no_term = None;
    for (ix, counts) in per_term {
        match ix {
            Some(i) => out.care_per_term.push(TermCare {
                term: Some(terms[i].id.as_str().to_owned()),
                counts,
            }),
            None => no_term = Some(counts),
        }
    }
    if let Some(counts) = no_term {
        out.care_per_term.push(TermCare { term: None, counts });
    }
    Ok(out)
}

fn zh_risk(r: Risk) -> &'static str {
    r.zh()
}

fn signed(x: Option<f64>) -> String {
    match x {
        Some(v) if v > 0.0 => format!("+{v}"),
        Some(v) => format!("{v}"),
        None => String::new(),
    }
}

impl ProgressFile {
    /// One table of every entry: 类别, 日期, 项目, 内容, 较上次.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row(["类别", "日期", "项目", "内容", "较上次"])];
        for s in &self.academic {
            for r in &s.results {
                t.push(vec![
                    "成绩".into(),
                    r.on.to_string(),
                    format!("{} {}", r.exam, s.subject),
                    format!("{}/{}", r.score, r.full_score),
                    match (r.change, r.percent_change) {
                        (Some(_), _) => signed(r.change),
                        (None, Some(_)) => format!("得分率 {}%", signed(r.percent_change)),
                        (None, None) => String::new(),
                    },
                ]);
            }
        }
        for p in &self.physical_tests {
            let mut items: Vec<String> = p.items.iter().map(|(k, v)| format!("{k} {v}")).collect();
            if let Some(a) = &p.anomalies {
                items.push(a.clone());
            }
            t.push(vec![
                "体检".into(),
                p.on.to_string(),
                format!("身高 {} cm 体重 {} kg", p.height_cm, p.weight_kg),
                items.join("；"),
                String::new(),
            ]);
        }
        for a in &self.awards {
            t.push(vec![
                "获奖".into(),
                a.on.to_string(),
                a.title.clone(),
                String::new(),
                String::new(),
            ]);
        }
        for a in &self.activities {
            t.push(vec![
                "活动".into(),
                a.on.to_string(),
                a.name.clone(),
                a.kind.clone(),
                String::new(),
            ]);
        }
        for m in &self.moods {
            t.push(vec![
                "谈心情绪".into(),
                m.on.to_string(),
                zh_mood(m.mood).into(),
                String::new(),
                String::new(),
            ]);
        }
        for tc in &self.care_per_term {
            let counts: Vec<String> = tc
                .counts
                .iter()
                .map(|(k, n)| format!("{} {}", zh_kind(*k), n))
                .collect();
            t.push(vec![
                "关爱次数".into(),
                tc.term.clone().unwrap_or_else(|| "学期外".into()),
                String::new(),
                counts.join("、"),
                String::new(),
            ]);
        }
        if let Some(list) = &self.counseling {
            for c in list {
                t.push(vec![
                    "心理辅导".into(),
                    c.on.to_string(),
                    format!("风险{}", zh_risk(c.risk)),
                    c.notes.clone(),
                    String::new(),
                ]);
            }
        }
        t
    }
}
