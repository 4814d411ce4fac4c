//! Valid inputs, the case `fixtures/ingest/good/` (the one layout, docs/fixtures.md):
//! `good.jsonl` gives exactly the drafts of `expected.drafts.jsonl` and the hand-written
//! anchors of `case.json` hold for them; every CSV of `csv/` (`<type>.csv`) gives exactly the
//! drafts of that type the JSONL gives (same ids, times and events); a re-import is a no-op;
//! an export re-imports to the same events.

use events::Draft;
use events::{EventKind, Source};
use fixtures::cases::{Output, Outputs};
use ingest::{MemoryKnown, Options, Parsed};
use serde_json::{Value, json};
use store::Store;

use crate::{memory_of, now, parse, root};

const GOOD: &str = "fixtures/ingest/good/good.jsonl";

fn good() -> Parsed {
    match parse(GOOD, &MemoryKnown::new(), &Options::new(now())) {
        Ok(p) => p,
        Err(e) => panic!("{GOOD} must be valid:\n{e}"),
    }
}

/// A draft as the golden file writes it: the stored form of the event, times at +08:00.
fn as_json(line: usize, d: &Draft) -> Value {
    json!({
        "line": line,
        "id": d.id,
        "occurred_at": events::time::format_local(d.occurred_at),
        "actor": d.actor,
        "event": serde_json::to_value(&d.event).expect("an event serializes"),
    })
}

#[test]
fn the_good_jsonl_gives_its_drafts_and_the_facts_written_by_hand() {
    let case = fixtures::cases::Case::load(&root().join("fixtures/ingest/good"))
        .unwrap_or_else(|e| panic!("{e}"));
    let anchors = case.anchors().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        anchors.len() >= 3,
        "state the facts of good.jsonl by hand in case.json"
    );
    let checked = fixtures::cases::check(&[case], |case| {
        let input = case.need("input").map_err(|e| e.to_string())?;
        let rel = format!("fixtures/ingest/good/{input}");
        let parsed = parse(&rel, &MemoryKnown::new(), &Options::new(now()))
            .map_err(|e| format!("{rel} must be valid:\n{e}"))?;
        if (parsed.already_present, parsed.repeated) != (0, 0) {
            return Err(format!(
                "{rel}: {} already present, {} repeated",
                parsed.already_present, parsed.repeated
            ));
        }
        let drafts = parsed.drafts.iter().map(|(l, d)| as_json(*l, d)).collect();
        Ok(Outputs::from([(
            "expected.drafts.jsonl".to_owned(),
            Output::JsonLines(drafts),
        )]))
    });
    if let Err(f) = checked {
        panic!("{f}");
    }
}

#[test]
fn each_csv_gives_the_same_drafts_as_the_jsonl() {
    let all: Vec<Draft> = good().into_drafts();
    let dir = root().join("fixtures/ingest/good/csv");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/ingest/good/csv exists")
        .map(|e| e.expect("a readable entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "only {} CSV files", files.len());
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let kind = EventKind::parse(stem)
            .unwrap_or_else(|| panic!("{stem}.csv is not named after a type"));
        // The log as it stood when the JSONL reached its last event of this type, without
        // the events of this type.
        let last = all
            .iter()
            .rposition(|d| d.event.kind() == kind)
            .unwrap_or(0);
        let others: Vec<Draft> = all[..last]
            .iter()
            .filter(|d| d.event.kind() != kind)
            .cloned()
            .collect();
        let expected: Vec<Draft> = all
            .iter()
            .filter(|d| d.event.kind() == kind)
            .cloned()
            .collect();
        let rel = format!("fixtures/ingest/good/csv/{stem}.csv");
        let parsed = match parse(&rel, &memory_of(&others), &Options::new(now())) {
            Ok(p) => p,
            Err(e) => panic!("{rel} must be valid:\n{e}"),
        };
        assert!(!expected.is_empty(), "{rel}: the JSONL has no {kind}");
        assert_eq!(parsed.into_drafts(), expected, "{rel}");
    }
}

#[test]
fn a_reimport_is_a_no_op() {
    let first = good();
    let n = first.drafts.len();
    let log = memory_of(&first.into_drafts());
    let again = parse(GOOD, &log, &Options::new(now())).expect("a re-import is valid");
    assert_eq!(
        (again.drafts.len(), again.already_present, again.repeated),
        (0, n, 0)
    );
}

#[test]
fn a_line_repeated_in_one_file_is_left_out() {
    let text = std::fs::read_to_string(root().join(GOOD)).expect("good.jsonl");
    let first_talk = text
        .lines()
        .find(|l| l.contains("\"talk_held\""))
        .expect("good.jsonl has a talk");
    let doubled = format!("{text}{first_talk}\n");
    let parsed = ingest::parse_bytes(
        "twice.jsonl",
        doubled.as_bytes(),
        &MemoryKnown::new(),
        &Options::new(now()),
    )
    .expect("a repeated line is not an error");
    assert_eq!(parsed.repeated, 1);
    assert_eq!(parsed.drafts.len(), good().drafts.len());
}

#[test]
fn ids_are_derived_from_content_not_form() {
    let lines = [
        r#"{"type":"school_registered","occurred_at":"2025-08-20","actor":"admin","school":"s1","name":"一中","county":"沿河县","township":"思渠镇"}"#,
        r#"{"township":"思渠镇","county":"沿河县","name":"一中","school":"s1","actor":"admin","occurred_at":"2025-08-20T00:00:00+08:00","type":"school_registered"}"#,
        r#"{"type":"school_registered","occurred_at":"2025-08-19T16:00:00Z","actor":"admin","school":"s1","name":"一中","county":"沿河县","township":"思渠镇"}"#,
    ];
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let p = ingest::parse_bytes(
                "one.jsonl",
                l.as_bytes(),
                &MemoryKnown::new(),
                &Options::new(now()),
            )
            .expect("a valid line");
            p.drafts[0].1.id.clone()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], ids[2]);
    assert!(ids[0].starts_with("h-") && ids[0].len() == 22, "{}", ids[0]);
    assert!(ids[0][2..].chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn an_export_reimports_to_the_same_events_ids_and_times() {
    let drafts = good().into_drafts();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::create(&dir.path().join("db")).expect("a new store");
    store
        .append_at(drafts, Source::Import(GOOD.into()), now())
        .expect("the good drafts append");
    let envs: Vec<events::Envelope> = store
        .scan(None)
        .collect::<Result<_, _>>()
        .expect("the log reads back");
    let export: String = envs
        .iter()
        .map(|e| format!("{}\n", Value::Object(events::wire::envelope_to_wire(e))))
        .collect();
    let opts = Options {
        now: now(),
        preserve_recorded_at: true,
        head_recorded_at: None,
    };
    let back = ingest::parse_bytes(
        "export.jsonl",
        export.as_bytes(),
        &MemoryKnown::new(),
        &opts,
    )
    .unwrap_or_else(|e| panic!("the export must re-import:\n{e}"));
    let back = back.into_drafts();

    // Into the same store, the export is a no-op: its old recorded_at are not errors.
    let same = ingest::StoreKnown::new(&store);
    let again_opts = Options {
        head_recorded_at: store.head().recorded_at,
        ..opts
    };
    let again = ingest::parse_bytes("export.jsonl", export.as_bytes(), &same, &again_opts)
        .unwrap_or_else(|e| panic!("the export re-imports into its own store:\n{e}"));
    assert_eq!((again.drafts.len(), again.already_present), (0, envs.len()));
    assert!(same.take_error().is_none());

    assert_eq!(back.len(), envs.len());
    for (d, e) in back.iter().zip(&envs) {
        assert_eq!(
            (&d.id, d.occurred_at, &d.actor, &d.event, d.recorded_at),
            (
                &e.id,
                e.occurred_at,
                &e.actor,
                &e.event,
                Some(e.recorded_at)
            )
        );
    }
}
