//! Integration tests of the store: the log's contract (atomic, idempotent, chained,
//! verifiable, consistent indexes across reopen) against an in-memory model, and the damage
//! it must notice.

mod damage;
mod log;
mod model;

use chrono::{DateTime, TimeZone, Utc};
use events::event::Mood;
use events::{Draft, Event};

/// A talk between `staff` and `child`, `day` days into September 2025.
pub fn talk(id: &str, staff: &str, child: &str, day: u32) -> Draft {
    Draft {
        sealed: None,
        id: id.to_owned(),
        occurred_at: at(day),
        actor: staff.to_owned(),
        event: Event::TalkHeld {
            staff: staff.to_owned(),
            child: child.to_owned(),
            topic: "学习".to_owned(),
            summary: "谈了期中考试".to_owned(),
            mood: Mood::Ok,
            follow_up: None,
        },
        recorded_at: None,
    }
}

/// An event recorded by the school admin, `day` days into September 2025 (an amendment).
pub fn by_admin(id: &str, day: u32, event: Event) -> Draft {
    Draft {
        sealed: None,
        id: id.to_owned(),
        occurred_at: at(day),
        actor: "admin".to_owned(),
        event,
        recorded_at: None,
    }
}

/// A correction of `target`'s child to `child`.
pub fn child_corrected(id: &str, day: u32, target: &str, child: &str) -> Draft {
    by_admin(
        id,
        day,
        Event::Corrected {
            target: target.to_owned(),
            changes: [("child".to_owned(), serde_json::json!(child))].into(),
            reason: "wrong child".to_owned(),
        },
    )
}

/// Noon (+08:00) on 2025-09-01 plus `day` days.
pub fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 4, 0, 0).unwrap() + chrono::Duration::days(day as i64)
}

/// A fixed clock well after every test event.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}
