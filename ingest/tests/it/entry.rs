//! The entry points besides files of events: `parse_record` (`careledger record`) and
//! `parse_file`'s handling of unreadable or unsupported files.

use ingest::{MemoryKnown, Options};

use crate::{now, parse};

fn prelude_log() -> MemoryKnown {
    let p = parse(
        "fixtures/bad/_prelude.jsonl",
        &MemoryKnown::new(),
        &Options::new(now()),
    )
    .unwrap_or_else(|e| panic!("the prelude must be valid:\n{e}"));
    crate::memory_of(&p.into_drafts())
}

const TALK: &str =
    r#"{"staff":"t1","child":"c1","topic":"周记","summary":"写得认真","mood":"good"}"#;

#[test]
fn record_takes_its_type_actor_and_time_from_the_command() {
    let parsed = ingest::parse_record(
        "talk_held",
        TALK,
        Some("t1"),
        &prelude_log(),
        &Options::new(now()),
    )
    .unwrap_or_else(|e| panic!("a valid record:\n{e}"));
    let d = &parsed.drafts[0].1;
    assert_eq!(
        (parsed.drafts.len(), d.actor.as_str(), d.occurred_at),
        (1, "t1", now())
    );
    assert_eq!(d.event.kind(), events::EventKind::TalkHeld);
    assert_eq!(d.recorded_at, None);
}

#[test]
fn record_errors_name_the_command_line() {
    let log = prelude_log();
    let opts = Options::new(now());
    let cases = [
        (
            "talk_held",
            "{\"staff\":",
            "<cli>:1: expected a JSON object, found invalid JSON (EOF while parsing a value at column 9)",
        ),
        (
            "talk_held",
            r#"{"type":"home_visit"}"#,
            "<cli>:1: field type: expected talk_held, the type given, found \"home_visit\"\n<cli>:1: field actor: expected the id of who recorded it (a staff id or an account name), found nothing\n<cli>:1: field staff: expected a string, found nothing\n<cli>:1: field child: expected a string, found nothing\n<cli>:1: field topic: expected a string, found nothing\n<cli>:1: field summary: expected a string, found nothing\n<cli>:1: field mood: expected one of good, ok, low, concerning, found nothing",
        ),
        (
            "talk",
            TALK,
            "<cli>:1: field type: expected a known event type, found \"talk\"\n<cli>:1: field actor: expected the id of who recorded it (a staff id or an account name), found nothing",
        ),
    ];
    for (kind, json, expected) in cases {
        let actual = match ingest::parse_record(kind, json, None, &log, &opts) {
            Ok(p) => format!("(no error: {} drafts)", p.drafts.len()),
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected, "record {kind} {json}");
    }
}

#[test]
fn unreadable_and_unsupported_files_are_named() {
    let opts = Options::new(now());
    let log = MemoryKnown::new();
    let missing = ingest::parse_file(std::path::Path::new("no/such/file.jsonl"), &log, &opts)
        .expect_err("a missing file is an error");
    assert_eq!(
        missing.to_string(),
        "no/such/file.jsonl: expected a readable file, found no such file"
    );
    let xls = ingest::parse_file(std::path::Path::new("roster.xls"), &log, &opts)
        .expect_err("the old binary format is not read");
    assert_eq!(
        xls.to_string(),
        "roster.xls: expected a .jsonl, .csv or .xlsx file (save an .xls or .et workbook as .xlsx), found a .xls file"
    );
    let not_a_workbook = ingest::parse_bytes("roster.xlsx", b"name,grade\n", &log, &opts)
        .expect_err("text is not a workbook");
    assert!(
        not_a_workbook
            .to_string()
            .starts_with("roster.xlsx: expected an XLSX workbook, found a file that is not one"),
        "{not_a_workbook}"
    );
}

#[test]
fn an_event_too_large_for_the_store_is_refused_on_its_line() {
    let summary = "很长的记录".repeat(4000);
    let line = format!(
        r#"{{"type":"talk_held","id":"big","occurred_at":"2025-10-08","actor":"t1","staff":"t1","child":"c1","topic":"长","summary":"{summary}","mood":"ok"}}"#
    );
    let err = ingest::parse_bytes(
        "big.jsonl",
        line.as_bytes(),
        &prelude_log(),
        &Options::new(now()),
    )
    .expect_err("a 60 KB event does not fit in the store");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "big.jsonl:1: expected an event of at most 16384 bytes once stored, found 60"
        ),
        "{text}"
    );
}
