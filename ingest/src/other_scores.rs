//! The other appraisal scores of `careledger scores --other-scores` (the parts of a teacher's
//! year-end appraisal that are not care work): a CSV of `staff,score`, a header line first.
//!
//! It owns reading that file and its errors, each naming the file, the line and the field.
//! It must never weigh or combine the scores (that is `projections::scores`) and never use
//! the batch validator: these rows are not events.

use std::collections::BTreeMap;
use std::path::Path;

/// Why an other-scores file was refused.
#[derive(Debug, thiserror::Error)]
pub enum OtherScoresError {
    /// The file could not be opened.
    #[error("{file}: expected a readable CSV file: {cause}")]
    Unreadable {
        /// The path as the user gave it.
        file: String,
        /// The CSV reader's error (not found, no permission, …).
        cause: csv::Error,
    },
    /// A line is not CSV (or not UTF-8).
    #[error("{file}:{line}: {cause}")]
    Csv {
        /// The path as the user gave it.
        file: String,
        /// The physical line, from 1 (the header is line 1).
        line: usize,
        /// The CSV reader's error for that line.
        cause: csv::Error,
    },
    /// The header line lacks a column.
    #[error("{file}:1: expected a column named {column}")]
    MissingColumn {
        /// The path as the user gave it.
        file: String,
        /// The column the header lacks: `staff` or `score`.
        column: &'static str,
    },
    /// A row names no staff member.
    #[error("{file}:{line}: field staff: expected a staff id")]
    NoStaff {
        /// The path as the user gave it.
        file: String,
        /// The physical line whose `staff` cell is empty, from 1.
        line: usize,
    },
    /// A score is not a number from 0 to 100.
    #[error("{file}:{line}: field score: expected a number from 0 to 100, found {found:?}")]
    BadScore {
        /// The path as the user gave it.
        file: String,
        /// The physical line of the row, from 1.
        line: usize,
        /// The `score` cell as written (trimmed).
        found: String,
    },
    /// A staff member appears twice.
    #[error("{file}:{line}: field staff: expected each staff member once, found {staff} again")]
    Repeated {
        /// The path as the user gave it.
        file: String,
        /// The physical line of the second row for this staff member, from 1.
        line: usize,
        /// The staff id that appears twice.
        staff: String,
    },
}

/// Reads `staff,score` rows from `path` (cells trimmed, a BOM ignored, other columns
/// ignored). Errors name the file as `path` shows it; line 1 is the header.
pub fn read(path: &Path) -> Result<BTreeMap<String, f64>, OtherScoresError> {
    let file = path.display().to_string();
    let reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|cause| OtherScoresError::Unreadable {
            file: file.clone(),
            cause,
        })?;
    rows(&file, reader)
}

/// Reads `staff,score` rows from CSV `bytes` of a file named `file`, as `read` does.
pub fn parse(file: &str, bytes: &[u8]) -> Result<BTreeMap<String, f64>, OtherScoresError> {
    let reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    rows(file, reader)
}

fn rows<R: std::io::Read>(
    file: &str,
    mut r: csv::Reader<R>,
) -> Result<BTreeMap<String, f64>, OtherScoresError> {
    let headers = r
        .headers()
        .map_err(|cause| OtherScoresError::Csv {
            file: file.to_owned(),
            line: 1,
            cause,
        })?
        .clone();
    let col = |column: &'static str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == column)
            .ok_or_else(|| OtherScoresError::MissingColumn {
                file: file.to_owned(),
                column,
            })
    };
    let (staff_col, score_col) = (col("staff")?, col("score")?);
    let mut out = BTreeMap::new();
    for (i, rec) in r.records().enumerate() {
        // One record per line after the header: the file has no quoted line breaks to
        // speak of, and the line is what a person looks for.
        let line = i + 2;
        let rec = rec.map_err(|cause| OtherScoresError::Csv {
            file: file.to_owned(),
            line,
            cause,
        })?;
        let staff = rec.get(staff_col).unwrap_or_default().to_owned();
        if staff.is_empty() {
            return Err(OtherScoresError::NoStaff {
                file: file.to_owned(),
                line,
            });
        }
        let raw = rec.get(score_col).unwrap_or_default();
        let score: f64 = raw
            .parse()
            .ok()
            .filter(|s: &f64| (0.0..=100.0).contains(s))
            .ok_or_else(|| OtherScoresError::BadScore {
                file: file.to_owned(),
                line,
                found: raw.to_owned(),
            })?;
        if out.insert(staff.clone(), score).is_some() {
            return Err(OtherScoresError::Repeated {
                file: file.to_owned(),
                line,
                staff,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("o.csv", text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn given_rows_with_a_bom_and_spaces_then_each_staff_has_its_score() {
        let got = parse(
            "o.csv",
            "\u{feff}staff , score\n t1 ,80\nt2,91.5\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            got,
            BTreeMap::from([("t1".into(), 80.0), ("t2".into(), 91.5)])
        );
    }

    #[test]
    fn given_bad_rows_then_errors_name_file_line_and_field() {
        assert_eq!(
            err("staf,score\n"),
            "o.csv:1: expected a column named staff"
        );
        assert_eq!(
            err("staff,score\nt1,180\n"),
            "o.csv:2: field score: expected a number from 0 to 100, found \"180\""
        );
        assert_eq!(
            err("staff,score\nt1,1\nt1,2\n"),
            "o.csv:3: field staff: expected each staff member once, found t1 again"
        );
        assert_eq!(
            err("staff,score\n,1\n"),
            "o.csv:2: field staff: expected a staff id"
        );
        assert!(err("staff,score\nt1,1,extra\n").starts_with("o.csv:2: "));
    }

    #[test]
    fn given_a_missing_file_then_the_error_says_unreadable() {
        let e = read(Path::new("/nonexistent/o.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/o.csv: expected a readable CSV file: "),
            "{e}"
        );
    }
}
