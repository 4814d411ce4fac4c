//! Turns the lines of some types of a JSONL file into a workbook of school forms, as
//! `careledger import` reads it: `cargo run -p ingest --example jsonl_to_xlsx -- IN.jsonl
//! OUT.xlsx child_registered [TYPE…]`. Explicit ids and recording times are left out (a
//! school's sheet has neither; the importer derives the ids). Used to build the county roster
//! of the XLSX import benchmark (docs/ingest.md).

use std::io::BufRead;

use events::EventKind;
use serde_json::{Map, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, types @ ..] = args.as_slice() else {
        return Err("usage: jsonl_to_xlsx IN.jsonl OUT.xlsx TYPE [TYPE…]".into());
    };
    let mut sheets: Vec<(EventKind, Vec<Map<String, Value>>)> = Vec::new();
    for t in types {
        let kind = EventKind::parse(t).ok_or_else(|| format!("unknown type {t}"))?;
        sheets.push((kind, Vec::new()));
    }
    let file = std::io::BufReader::new(std::fs::File::open(input)?);
    for line in file.lines() {
        let line = line?;
        // Only lines of the wanted types are decoded (the input may be gigabytes).
        let Some((_, rows)) = sheets
            .iter_mut()
            .find(|(k, _)| line.contains(&format!("\"type\":\"{k}\"")))
        else {
            continue;
        };
        let Value::Object(mut m) = serde_json::from_str::<Value>(&line)? else {
            return Err(format!("not a JSON object: {line}").into());
        };
        m.remove("id");
        m.remove("recorded_at");
        rows.push(m);
    }
    let bytes = ingest::template::workbook(&sheets)?;
    std::fs::write(output, bytes)?;
    for (k, rows) in &sheets {
        eprintln!("{k}: {} rows", rows.len());
    }
    Ok(())
}
