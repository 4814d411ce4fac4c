//! `careledger template --type T… --out FILE.xlsx`: a blank school form to fill in.
//!
//! This module owns the command's wiring only: the form layout is `ingest::template`'s (the
//! same table the importer reads), so a filled template imports. It must never open the store.

use std::path::Path;

use anyhow::{Context, Result};
use events::EventKind;

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
