//! The CSV cell convention every careledger CSV writer and its reader share (OWASP "CSV
//! injection"): a text cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return
//! would be read by a spreadsheet as a formula (`=HYPERLINK(…)` in a child's name becomes a
//! live link in the bureau's Excel), so writers put a `'` before it (and before a text that
//! itself begins with `'` and such a character), and `ingest` takes exactly that `'` off
//! again, so a roster written by careledger re-imports unchanged (a
//! phone `+86…` stays `+86…`). It owns the two functions and must never touch a cell that
//! does not begin (past its leading `'`) with one of those characters.

use std::borrow::Cow;

/// The characters a spreadsheet reads as the start of a formula.
pub const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a cell, past any leading `'`, begins like a formula: such a cell is escaped
/// (with one more `'`), so that `unescape` is the exact inverse of `escape` even for a text
/// that itself begins with `'=`.
fn formula_like(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// A cell as written to CSV: with a leading `'` when it begins like a formula.
pub fn escape(cell: &str) -> Cow<'_, str> {
    if formula_like(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell as read from CSV: `escape` undone (the `'` it added is dropped); any other cell as
/// it is. `unescape(&escape(c)) == c` for every text `c`.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_escaped_and_read_back() {
        for cell in [
            "=HYPERLINK(\"http://x\")",
            "+8613800000000",
            "-5",
            "@x",
            "\tx",
            "\rx",
        ] {
            let written = escape(cell);
            assert!(written.starts_with('\''), "{cell:?}");
            assert_eq!(unescape(&written), cell);
        }
    }

    #[test]
    fn a_text_that_itself_begins_with_the_escape_survives_the_round_trip() {
        for cell in ["'=x", "''+86", "'-", "'"] {
            assert_eq!(unescape(&escape(cell)), cell, "{cell:?}");
        }
        assert_eq!(escape("'=x"), "''=x");
    }

    #[test]
    fn other_cells_are_untouched_both_ways() {
        for cell in ["王小明", "13800000000", "'quoted", "a=b", "", "'", "''"] {
            assert_eq!(escape(cell), cell);
            assert_eq!(unescape(cell), cell);
        }
    }
}
