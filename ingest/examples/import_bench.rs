//! Times the XLSX import path as `careledger import FILE.xlsx --actor STAFF` runs it —
//! `ingest::parse_file_as` against the store, then `Store::append` of the one batch — without
//! the report crates, so a release build of it is quick:
//! `cargo run --release -p ingest --example import_bench -- DB FILE.xlsx STAFF`.
//! DB is a store made by `careledger init` (and the registry the file refers to). Prints rows,
//! seconds and rows/s of validation and of the whole import; measure peak memory around it
//! with `/usr/bin/time -v`. The figures are in docs/ingest.md.

use std::path::Path;
use std::time::Instant;

use events::Source;
use ingest::{Options, StoreKnown};
use store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, file, actor] = args.as_slice() else {
        return Err("usage: import_bench DB FILE.xlsx STAFF".into());
    };
    let store = Store::open(Path::new(db))?;
    let start = Instant::now();
    let known = StoreKnown::new(&store);
    let opts = Options {
        now: chrono::Utc::now(),
        preserve_recorded_at: false,
        head_recorded_at: store.head().recorded_at,
    };
    let parsed = ingest::parse_file_as(Path::new(file), &known, &opts, Some(actor))?;
    if let Some(e) = known.take_error() {
        return Err(e.into());
    }
    let validated = start.elapsed().as_secs_f64();
    let drafts = parsed.into_drafts();
    let rows = drafts.len();
    let out = store.append(drafts, Source::Import(file.clone()))?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "{rows} rows ({} appended): validated in {validated:.2} s ({:.0} rows/s), imported in {total:.2} s ({:.0} rows/s)",
        out.appended,
        rows as f64 / validated,
        rows as f64 / total
    );
    Ok(())
}
