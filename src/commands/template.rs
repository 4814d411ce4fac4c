//! School forms as workbooks: `careledger template --type T… --out FILE.xlsx` (a blank form
//! to fill in) and `archives --format xlsx` (the children's files as a 留守儿童登记表).
//!
//! This module owns the wiring only: the form layout is `ingest::template`'s (the same table
//! the importer reads), so a filled template and an archives workbook import. It must never
//! write the store.

use std::path::Path;

use anyhow::{Context, Result};
use events::{Event, EventKind};
use projections::World;
use projections::archive::Archives;
use serde_json::Value;

use crate::BadInput;

/// Writes the template of these types (wire names or form names), in the order given.
pub fn write(types: &[String], out: &Path) -> Result<()> {
    let mut kinds = Vec::with_capacity(types.len());
    for t in types {
        let Some(kind) = ingest::forms::sheet_kind(t) else {
            let forms: Vec<&str> = ingest::forms::FORMS.iter().map(|f| f.name).collect();
            return Err(BadInput(format!(
                "--type: expected an event type (child_registered) or a form ({}), found {t:?}",
                forms.join(", ")
            ))
            .into());
        };
        if kinds.contains(&kind) {
            return Err(BadInput(format!("--type: {kind} is given twice")).into());
        }
        kinds.push(kind);
    }
    let is_xlsx = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if !is_xlsx {
        return Err(BadInput(format!(
            "--out: expected a .xlsx file, found {}",
            out.display()
        ))
        .into());
    }
    let bytes = ingest::template::template(&kinds).context("building the template")?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    let names: Vec<&str> = kinds.iter().map(|k| sheet_name(*k)).collect();
    eprintln!("wrote {} with sheets {}", out.display(), names.join(", "));
    Ok(())
}

fn sheet_name(kind: EventKind) -> &'static str {
    ingest::forms::form_of(kind).map_or(kind.as_str(), |f| f.name)
}

/// `archives --format xlsx --out FILE`: each listed child's file (as of `--valid-at`, else as
/// it stands) as a 留守儿童登记表 row dated on its registration day, without 记录人 (the
/// importing staff member gives `--actor`). It re-imports as a roster into a store holding
/// the school but not these children (a new store, another county's system); into the same
/// store every row is a child registered twice.
pub fn archives_xlsx(world: &World, view: &Archives, out: Option<&Path>) -> Result<()> {
    let Some(out) = out else {
        return Err(BadInput("--format xlsx needs --out FILE.xlsx".into()).into());
    };
    let mut rows = Vec::with_capacity(view.rows.len());
    for row in &view.rows {
        let Some(child) = world.child(&row.child) else {
            continue;
        };
        let file = match view.valid_at {
            Some(d) => child.file_on(d),
            None => child.file_latest(),
        };
        let mut m = events::wire::payload_of(&Event::ChildRegistered(Box::new(file)));
        m.insert(
            "occurred_at".into(),
            Value::String(child.registered_on.to_string()),
        );
        rows.push(m);
    }
    let bytes = ingest::template::workbook(&[(EventKind::ChildRegistered, rows)])
        .context("building the archives workbook")?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} children of {} to {}",
        view.rows.len(),
        view.school,
        out.display()
    );
    Ok(())
}
