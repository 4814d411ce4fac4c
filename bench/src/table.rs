//! The result table of `bench --scale …`: one markdown table with the machine, the data set
//! and every stage's figures, and its place in docs/BENCHMARKS.md.
//!
//! It owns the wording and number formats of the table; it must never measure anything
//! (it only reads what the stages reported) and never print a figure a stage did not report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::StageOut;
use crate::data::{DEFAULT_YEAR, DataArgs};
use crate::machine::Machine;

/// `1234567.8` → `1,234,568`.
pub(crate) fn int(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with a sensible unit.
fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `n` over `s` seconds as a rate, with the time.
fn rate(n: f64, s: f64, unit: &str) -> String {
    if s > 0.0 {
        format!("{} {unit}/s ({})", int(n / s), secs(s))
    } else {
        format!("— ({})", secs(s))
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn peak(out: Option<&StageOut>) -> String {
    out.and_then(|o| o.peak_rss_kib)
        .map(|kib| format!("{:.0} MiB", kib as f64 / 1024.0))
        .unwrap_or_default()
}

/// The figures of one stage, with "not measured" for anything missing.
struct Figures<'a>(Option<&'a StageOut>);

impl Figures<'_> {
    fn get(&self, key: &str) -> Option<f64> {
        self.0.and_then(|o| o.figures.get(key).copied())
    }
    fn f(&self, key: &str) -> f64 {
        self.get(key).unwrap_or(f64::NAN)
    }
    fn note(&self, key: &str) -> String {
        self.0
            .and_then(|o| o.notes.get(key).cloned())
            .unwrap_or_default()
    }
}

/// The `bench` arguments that reproduce the data set, in backticks.
fn command_line(data: &DataArgs) -> String {
    let mut c = format!("`careledger-bench --scale {}", data.scale.name());
    if let Some(s) = data.schools {
        c += &format!(" --schools {s}");
    }
    if let Some(n) = data.children {
        c += &format!(" --children {n}");
    }
    if data.batch.is_some() {
        c += &format!(" --batch {}", data.batch());
    }
    if data.year != DEFAULT_YEAR {
        c += &format!(" --year {}", data.year);
    }
    if data.seed != 1 {
        c += &format!(" --seed {}", data.seed);
    }
    c + "`"
}

/// Renders the table (markdown, with a heading and the machine).
pub fn render(machine: &Machine, data: &DataArgs, results: &BTreeMap<&str, StageOut>) -> String {
    let cfg = data.config();
    let st = |name: &str| Figures(results.get(name));
    let (imp, sql, flo, rep, arc, trm) = (
        st("import"),
        st("sqlite"),
        st("floor"),
        st("replay"),
        st("archive"),
        st("report"),
    );
    let events = imp.f("events");
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |a: &str, b: String, c: String, d: String| rows.push([a.to_owned(), b, c, d]);

    let careledger_eps = imp.f("events") / imp.f("append_s");
    let sqlite_eps = sql.f("events") / sql.f("insert_s");
    let bare_s = imp.f("append_without_read_models_s");
    row(
        "import, careledger",
        format!(
            "`Store::append` per batch of {}: encode, chain, index (id, child, staff, registry), flush + fsync; {} batches",
            int(data.batch() as f64),
            int(imp.f("batches"))
        ),
        format!(
            "{}; first ¼ of batches {} events/s, last ¼ {} events/s",
            rate(events, imp.f("append_s"), "events"),
            int(imp.f("first_quarter_eps")),
            int(imp.f("last_quarter_eps"))
        ),
        peak(results.get("import")),
    );
    row(
        "import without read models",
        "the same import into another fresh store first, in the same process, with the read models (`scopes`) turned off; removed afterwards".to_owned(),
        format!(
            "{}; with them {:+.1} %",
            rate(events, bare_s, "events"),
            (imp.f("append_s") / bare_s - 1.0) * 100.0
        ),
        String::new(),
    );
    row(
        "import, SQLite",
        "same bodies and chain, 1 row per event; WAL, `synchronous=FULL`, 256 MiB cache, 1 transaction per batch; indexes on id (unique), child, staff".to_owned(),
        rate(sql.f("events"), sql.f("insert_s"), "events"),
        peak(results.get("sqlite")),
    );
    let same = imp.note("head_hash") == sql.note("head_hash") && !sql.note("head_hash").is_empty();
    row(
        "import ratio",
        format!(
            "careledger ÷ SQLite events/s; same chain head hash: {}",
            if same { "yes" } else { "NO" }
        ),
        format!("{:.2}×", careledger_eps / sqlite_eps),
        String::new(),
    );
    row(
        "disk after import",
        "careledger store directory; SQLite database after close".to_owned(),
        format!(
            "{} ({:.0} B/event); SQLite {} ({:.0} B/event)",
            mb(imp.f("disk_bytes")),
            imp.f("disk_bytes") / events,
            mb(sql.f("disk_bytes")),
            sql.f("disk_bytes") / sql.f("events")
        ),
        String::new(),
    );
    row(
        "generator",
        "`fixtures::events` in the import stage (not timed above)".to_owned(),
        rate(events, imp.f("generate_s"), "events"),
        String::new(),
    );

    let body = flo.f("body_bytes");
    let fev = flo.f("events");
    row(
        "floor: full scan",
        format!(
            "`Store::scan` of the whole log (read segments and clusters, check, decode; the caller only counts), {} avg body",
            format_args!("{:.0} B", body / fev)
        ),
        rate(fev, flo.f("scan_s"), "events"),
        peak(results.get("floor")),
    );
    row(
        "floor: rmp-serde encode",
        "`to_vec_named` of every envelope (the stored body)".to_owned(),
        rate(fev, flo.f("encode_s"), "events"),
        String::new(),
    );
    row(
        "floor: rmp-serde decode",
        "`from_slice` of every stored body".to_owned(),
        rate(fev, flo.f("decode_s"), "events"),
        String::new(),
    );
    row(
        "floor: SHA-256",
        "the chain hash `SHA-256(prev ‖ body)` of every body".to_owned(),
        format!(
            "{}, {:.0} MB/s",
            rate(fev, flo.f("sha256_s"), "events"),
            body / 1e6 / flo.f("sha256_s")
        ),
        String::new(),
    );
    match flo.get("sled_insert_s") {
        Some(s) => {
            row(
                "floor: raw sled insert",
                format!(
                    "the same bodies, 1 key per event, 1 `apply_batch` + flush + fsync per {} events (`store::floor`)",
                    int(data.batch() as f64)
                ),
                format!(
                    "{}; disk {} ({:.0} B/event)",
                    rate(flo.f("sled_values"), s, "events"),
                    mb(flo.f("sled_disk_bytes")),
                    flo.f("sled_disk_bytes") / flo.f("sled_values")
                ),
                String::new(),
            );
            row(
                "floor: raw sled scan",
                "iterate those keys, no decode".to_owned(),
                rate(flo.f("sled_values"), flo.f("sled_scan_s"), "events"),
                String::new(),
            );
        }
        None => row(
            "floor: raw sled",
            flo.note("sled"),
            "not measured".to_owned(),
            String::new(),
        ),
    }

    let rev = rep.f("events");
    row(
        "replay: timeline",
        "`Store::scan` streamed into `Timeline::build_owned` (amendments applied), as a whole-log command replays without a snapshot".to_owned(),
        rate(rev, rep.f("timeline_s"), "events"),
        peak(results.get("replay")),
    );
    row(
        "replay: world",
        "`World::build` (schools, staff, children, pairings) on that timeline".to_owned(),
        secs(rep.f("world_s")),
        String::new(),
    );
    row(
        "scores, one school",
        format!(
            "`projections::scores` of {} ({} children, {} staff rows), school year {}, on the replayed world",
            rep.note("scores_school"),
            int(rep.f("scores_school_children")),
            int(rep.f("scores_school_rows")),
            data.year
        ),
        secs(rep.f("scores_school_s")),
        String::new(),
    );
    row(
        "scores, whole county",
        format!(
            "every school ({}), {} staff rows, school year",
            int(rep.f("schools")),
            int(rep.f("scores_county_rows"))
        ),
        secs(rep.f("scores_county_s")),
        String::new(),
    );
    row(
        "scores, whole county, one index",
        format!(
            "`projections::scores::scores_of_schools` (as `scores --county` runs it): every school, {} staff rows, school year",
            int(rep.f("scores_county_indexed_rows"))
        ),
        secs(rep.f("scores_county_indexed_s")),
        String::new(),
    );
    row(
        "term report, in memory",
        format!(
            "`reports::term_statistics` (polars) of the county, term {}-1, on the replayed timeline ({} rows)",
            data.year,
            int(rep.f("report_rows"))
        ),
        secs(rep.f("report_memory_s")),
        String::new(),
    );
    let rdm = st("readmodels");
    let cli = |k: &str| {
        let v = rdm.f(k);
        if v > 0.0 {
            secs(v)
        } else {
            "not run (no `careledger` binary beside the bench)".to_owned()
        }
    };
    row(
        "read models: store open",
        "`Store::open` of the county (the registry is no longer loaded on open)".to_owned(),
        secs(rdm.f("open_s")),
        peak(results.get("readmodels")),
    );
    row(
        "read models: scores, one school",
        format!(
            "open, `plan::scope_timeline` of {}, world, the polars scorer `reports::score_run`, school year ({} staff rows); as a whole `careledger scores` run: {}. The read needs {} of the log's {} envelopes and read {:.0} MiB through sled (the store: {:.0} MiB)",
            rdm.note("school"),
            int(rdm.f("scores_school_rows")),
            cli("cli_scores_s"),
            int(rdm.f("school_envelopes")),
            int(rdm.f("log_envelopes")),
            rdm.f("scores_school_read_mib"),
            rdm.f("store_mib")
        ),
        secs(rdm.f("scores_school_s")),
        String::new(),
    );
    row(
        "read models: scores, one school, as of a past time",
        format!(
            "the same as of {}; whole `careledger scores --as-of` run: {}",
            rdm.note("past"),
            cli("cli_scores_past_s")
        ),
        secs(rdm.f("scores_school_past_s")),
        String::new(),
    );
    for (key, staff) in [("worklist", "staff"), ("worklist2", "staff2")] {
        row(
            "read models: worklist, one teacher",
            format!(
                "open, `plan::worklist_timeline` of {} on {} ({} items), world, `worklist`; whole `careledger worklist --on` run: {}; read {:.0} MiB through sled",
                rdm.note(staff),
                rdm.note("day"),
                rdm.f(&format!("{key}_items")),
                cli(&format!("cli_{key}_s")),
                rdm.f(&format!("{key}_read_mib"))
            ),
            secs(rdm.f(&format!("{key}_s"))),
            String::new(),
        );
    }
    row(
        "read models: scores, every school",
        format!(
            "as `scores --county` runs it: open, `plan::row_read` (the fact rows and the world's envelopes), the polars scorer `report_read::score_runs` over every school in one plan ({} staff rows); whole `careledger scores --county` run: {}; the replay path beside it (open, `plan::replay`, world, `reports::score_runs`): {}",
            int(rdm.f("scores_county_rows")),
            cli("cli_scores_county_s"),
            secs(rdm.f("scores_county_replay_s"))
        ),
        secs(rdm.f("scores_county_s")),
        String::new(),
    );
    row(
        "read models: term report, county",
        format!(
            "open, `report_read::term_report` (the fact rows and the world's envelopes, the polars reporter); whole `careledger report term --county` run: {}; the replay path beside it (open, `plan::replay`, world, `reports::term_statistics`): {}",
            cli("cli_report_s"),
            secs(rdm.f("report_county_replay_s"))
        ),
        secs(rdm.f("report_county_s")),
        String::new(),
    );
    row(
        "read models: term report, county, as of a past time",
        format!(
            "the same as of {}; whole run: {}; the replay path: {}",
            rdm.note("past"),
            cli("cli_report_past_s"),
            secs(rdm.f("report_county_past_replay_s"))
        ),
        secs(rdm.f("report_county_past_s")),
        String::new(),
    );
    row(
        "term report, county, alone in its process",
        format!(
            "`report_read::term_report` of the county from the fact rows, term {} (its peak memory is this stage's)",
            trm.note("term")
        ),
        secs(trm.f("report_s")),
        peak(results.get("report")),
    );
    row(
        "one child's archive",
        format!(
            "{} lookups of random children as of {} (seq {}): `plan::child_envelopes` (the child's envelopes, its schools' own registries and its staff's registry events, from the read models), timeline, world, `archive`; {} envelopes read per lookup on average, {:.0} KiB through sled (the children drawn from the county's {} registry events by then)",
            int(arc.f("lookups")),
            arc.note("as_of"),
            int(arc.f("as_of_seq")),
            int(arc.f("envelopes_mean")),
            arc.f("read_kib_mean"),
            int(arc.f("registry_envelopes"))
        ),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms (mean: fetch {:.1} ms + project {:.1} ms; slowest: {})",
            arc.f("p50_ms"),
            arc.f("p99_ms"),
            arc.f("fetch_ms_mean"),
            arc.f("project_ms_mean"),
            arc.note("slowest")
        ),
        peak(results.get("archive")),
    );

    rows.extend(crate::encryption::rows(results.get("encryption")));

    let mut text = format!("### {}, {} build\n\n", command_line(data), machine.profile);
    text += &format!("Machine: {}.\n", machine.describe());
    text += &format!(
        "Data: `fixtures` generator, {} schools × {} children, seed {}, school year {}: {} events; import batches of {}.\n",
        cfg.schools,
        cfg.children_per_school,
        cfg.seed,
        cfg.year,
        int(events),
        int(data.batch() as f64)
    );
    text += "Peak RSS: `VmHWM` of the stage's own process (each stage runs as a child process of `careledger-bench`).\n\n";
    text += "| measure | how | result | peak RSS of the stage |\n|---|---|---|---|\n";
    for r in rows {
        text += &format!("| {} |\n", r.join(" | "));
    }
    text
}

/// The markers around a scale's table in the docs file.
fn markers(label: &str, profile: &str) -> (String, String) {
    (
        format!("<!-- bench:{label}:{profile}:begin -->"),
        format!("<!-- bench:{label}:{profile}:end -->"),
    )
}

/// The byte offset of the line that is exactly `line` (not a mention of it inside text).
fn line_at(doc: &str, line: &str) -> Option<usize> {
    let mut at = 0;
    for l in doc.split_inclusive('\n') {
        if l.trim_end_matches(['\n', '\r']) == line {
            return Some(at);
        }
        at += l.len();
    }
    None
}

/// Puts `table` between the marker lines of `label`/`profile` in `doc`, or appends it with
/// its markers when they are missing. A marker counts only as a line of its own.
fn splice(doc: &str, label: &str, profile: &str, table: &str) -> String {
    let (begin, end) = markers(label, profile);
    let block = format!("{begin}\n{table}{end}");
    match (line_at(doc, &begin), line_at(doc, &end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &doc[..b], &doc[e + end.len()..])
        }
        _ => {
            let sep = if doc.is_empty() || doc.ends_with("\n\n") {
                ""
            } else if doc.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{doc}{sep}{block}\n")
        }
    }
}

/// Writes `table` into the docs file at `path` (see [`splice`]).
pub fn write_docs(path: &Path, label: &str, profile: &str, table: &str) -> Result<()> {
    let doc = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    std::fs::write(path, splice(&doc, label, profile, table))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_numbers_when_formatting_then_thousands_are_separated() {
        assert_eq!(int(0.0), "0");
        assert_eq!(int(999.4), "999");
        assert_eq!(int(1234567.8), "1,234,568");
        assert_eq!(secs(0.0123), "12.3 ms");
        assert_eq!(secs(2.5), "2.50 s");
    }

    #[test]
    fn given_a_doc_with_markers_when_splicing_then_only_that_block_changes() {
        let doc =
            "intro\n<!-- bench:small:dev:begin -->\nold\n<!-- bench:small:dev:end -->\nafter\n";
        let new = splice(doc, "small", "dev", "new\n");
        assert_eq!(
            new,
            "intro\n<!-- bench:small:dev:begin -->\nnew\n<!-- bench:small:dev:end -->\nafter\n"
        );
        let mentioned = format!("see `<!-- bench:small:dev:begin -->` below\n{doc}");
        assert_eq!(
            splice(&mentioned, "small", "dev", "new\n"),
            format!("see `<!-- bench:small:dev:begin -->` below\n{new}")
        );
        let other = splice(&new, "county", "release", "big\n");
        assert!(other.starts_with(&new));
        assert!(other.ends_with(
            "\n<!-- bench:county:release:begin -->\nbig\n<!-- bench:county:release:end -->\n"
        ));
    }
}
