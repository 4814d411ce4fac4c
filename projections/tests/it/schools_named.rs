//! `world::schools_named`: the schools a child's file names, which decides whose registry
//! events a single child's views read.

use projections::Timeline;
use projections::world::schools_named;

const SCHOOLS: &str = r#"{"type":"school_registered","id":"e1","occurred_at":"2025-08-28","actor":"admin","recorded_at":"2025-08-28T09:00:00+08:00","school":"a","name":"甲校","county":"县","township":"镇"}
{"type":"school_registered","id":"e2","occurred_at":"2025-08-28","actor":"admin","recorded_at":"2025-08-28T09:01:00+08:00","school":"b","name":"乙校","county":"县","township":"镇"}
{"type":"school_registered","id":"e3","occurred_at":"2025-08-28","actor":"admin","recorded_at":"2025-08-28T09:02:00+08:00","school":"c","name":"丙校","county":"县","township":"镇"}
"#;

fn registration(id: &str, recorded: &str, school: &str) -> String {
    format!(
        r#"{{"type":"child_registered","id":"{id}","occurred_at":"2025-08-29T14:00:00+08:00","actor":"admin","recorded_at":"{recorded}","child":"k1","school":"{school}","grade":7,"class":1,"name":"田雨欣","gender":"female","birth_date":"2013-03-14","boarding":false,"address":"村","left_behind_type":"both_parents_away","hardship":[],"focus":[],"parents":[{{"name":"田茂林","relation":"father","work_place":"东莞","employer_address":"东莞","phone":"18732835504","away":true}}],"guardian":{{"name":"田正文","relation":"grandparent_paternal","age":66,"health":"良好","education":"小学","occupation":"务农","address":"村","phone":"18344309564","capability":"good"}}}}"#
    ) + "\n"
}

fn named(log: &str) -> Vec<String> {
    let envs = fixtures::envelopes(log, "events.jsonl").expect("the test log is valid");
    let tl = Timeline::build(&envs, None).expect("the test log folds");
    schools_named(&tl)
}

#[test]
fn given_a_registration_then_its_school_is_named() {
    let log = String::from(SCHOOLS) + &registration("e4", "2025-08-29T14:03:00+08:00", "b");
    assert_eq!(named(&log), ["b"]);
}

#[test]
fn given_a_move_then_both_schools_are_named_once() {
    let log = String::from(SCHOOLS)
        + &registration("e4", "2025-08-29T14:03:00+08:00", "b")
        + r#"{"type":"child_updated","id":"e5","occurred_at":"2025-10-08T09:00:00+08:00","actor":"admin","recorded_at":"2025-10-09T08:20:00+08:00","child":"k1","changes":{"school":"a"}}
{"type":"child_updated","id":"e6","occurred_at":"2025-10-10T09:00:00+08:00","actor":"admin","recorded_at":"2025-10-10T08:20:00+08:00","child":"k1","changes":{"class":2}}
"#;
    assert_eq!(named(&log), ["a", "b"]);
}

#[test]
fn given_a_corrected_registration_then_the_corrected_school_is_named_instead() {
    let log = String::from(SCHOOLS)
        + &registration("e4", "2025-08-29T14:03:00+08:00", "b")
        + r#"{"type":"correction","id":"e5","occurred_at":"2025-09-01T09:00:00+08:00","actor":"admin","recorded_at":"2025-09-01T09:05:00+08:00","target":"e4","changes":{"school":"c"},"reason":"录错学校"}
"#;
    assert_eq!(named(&log), ["c"]);
}
