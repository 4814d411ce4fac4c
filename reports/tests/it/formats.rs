//! Every output format, written and read back, carries the same values as the report.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook};
use polars::prelude::*;
use reports::table::{ColumnKind, REPORT_COLUMNS};
use reports::{Format, ReportRow, TermReport};

use crate::cases::Case;

/// The values of a row in column order, as numbers (keys and counts as f64, null as None),
/// except the school, which is compared as text.
fn numbers(row: &ReportRow) -> Vec<Option<f64>> {
    let v = serde_json::to_value(row).expect("row encodes");
    REPORT_COLUMNS[1..]
        .iter()
        .map(|c| v[c.name].as_f64())
        .collect()
}

fn written(case: &str) -> (TermReport, tempfile::TempDir, Vec<std::path::PathBuf>) {
    let report = Case::named(case).report();
    let dir = tempfile::tempdir().expect("temp dir");
    let formats = Format::parse_list("csv,json,parquet,xlsx,table").expect("formats");
    let paths = reports::write(&report, dir.path(), &formats).expect("written");
    (report, dir, paths)
}

#[test]
fn format_names_parse_and_unknown_ones_are_refused() {
    assert_eq!(
        Format::parse_list("csv, JSON,parquet,xlsx,csv").unwrap(),
        vec![Format::Csv, Format::Json, Format::Parquet, Format::Xlsx]
    );
    let err = Format::parse_list("csv,pdf").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown format \"pdf\" (expected csv, json, parquet, xlsx or table)"
    );
}

#[test]
fn files_are_named_after_term_and_scope() {
    for (case, stem) in [
        ("small_school", "term-2025-2026-1-school-hx"),
        ("county", "term-2025-2026-1-county-青山县"),
    ] {
        let (_, dir, paths) = written(case);
        let names: Vec<String> = paths
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["csv", "json", "parquet", "xlsx", "txt"].map(|e| format!("{stem}.{e}"))
        );
    }
}

#[test]
fn csv_has_a_bom_and_reads_back_to_the_same_values() {
    for case in ["small_school", "county"] {
        let (report, _dir, paths) = written(case);
        let bytes = std::fs::read(&paths[0]).unwrap();
        assert_eq!(
            &bytes[..3],
            b"\xEF\xBB\xBF",
            "{case}: the csv starts with a BOM"
        );
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let names: Vec<&str> = REPORT_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(header, names, "{case}: csv header");
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .into_reader_with_file_handle(Cursor::new(bytes[3..].to_vec()))
            .finish()
            .expect("csv reads back");
        let rows = report.rows().unwrap();
        assert_eq!(df.height(), rows.len(), "{case}");
        for (i, row) in rows.iter().enumerate() {
            let school = df.column("school").unwrap().str().unwrap().get(i);
            assert_eq!(school, row.school.as_deref(), "{case}: row {i} school");
            let want = numbers(row);
            for (j, c) in REPORT_COLUMNS[1..].iter().enumerate() {
                let col = df.column(c.name).unwrap().cast(&DataType::Float64).unwrap();
                let got = col.f64().unwrap().get(i);
                assert_eq!(got, want[j], "{case}: row {i} column {}", c.name);
            }
        }
    }
}

#[test]
fn json_reads_back_to_the_same_rows() {
    for case in ["small_school", "county"] {
        let (report, _dir, paths) = written(case);
        let rows: Vec<ReportRow> =
            serde_json::from_slice(&std::fs::read(&paths[1]).unwrap()).expect("json rows");
        assert_eq!(rows, report.rows().unwrap(), "{case}");
    }
}

#[test]
fn parquet_reads_back_to_the_same_frame() {
    for case in ["small_school", "county"] {
        let (report, _dir, paths) = written(case);
        let file = std::fs::File::open(&paths[2]).unwrap();
        let df = ParquetReader::new(file)
            .finish()
            .expect("parquet reads back");
        assert!(
            df.equals_missing(report.frame()),
            "{case}:\n{df}\n{}",
            report.frame()
        );
    }
}

#[test]
fn xlsx_has_chinese_headers_a_sheet_per_school_and_the_same_values() {
    for (case, sheets) in [
        ("small_school", vec!["hx"]),
        ("county", vec!["全县汇总", "ew", "gy", "hx"]),
    ] {
        let (report, _dir, paths) = written(case);
        let mut book: Xlsx<_> = open_workbook(&paths[3]).expect("xlsx opens");
        assert_eq!(book.sheet_names(), sheets, "{case}");
        let rows = report.rows().unwrap();
        for name in sheets {
            let range = book.worksheet_range(name).expect("sheet");
            let cells: Vec<&[Data]> = range.rows().collect();
            let header: Vec<String> = cells[0].iter().map(|c| c.to_string()).collect();
            let zh: Vec<&str> = REPORT_COLUMNS.iter().map(|c| c.zh).collect();
            assert_eq!(header, zh, "{case}/{name}: header");
            assert_eq!(&header[..4], ["学校", "年级", "班级", "留守儿童数"]);
            let expected: Vec<&ReportRow> = if name == "全县汇总" {
                rows.iter().filter(|r| r.grade.is_none()).collect()
            } else {
                rows.iter()
                    .filter(|r| r.school.as_deref() == Some(name))
                    .collect()
            };
            assert_eq!(cells.len() - 1, expected.len(), "{case}/{name}: rows");
            for (line, row) in cells[1..].iter().zip(expected) {
                let label = line[0].to_string();
                match (&row.school, row.grade) {
                    (None, _) => assert_eq!(label, "全县合计"),
                    (Some(s), None) => {
                        assert_eq!(&label, s);
                        assert_eq!(line[1].to_string(), "合计");
                    }
                    (Some(s), Some(g)) => {
                        assert_eq!(&label, s);
                        assert_eq!(line[1], Data::Float(f64::from(g)));
                        assert_eq!(line[2], Data::Float(f64::from(row.class.unwrap())));
                    }
                }
                let want = numbers(row);
                for (j, c) in REPORT_COLUMNS.iter().enumerate().skip(3) {
                    let got = match &line[j] {
                        Data::Float(f) => Some(*f),
                        Data::Int(i) => Some(*i as f64),
                        Data::Empty => None,
                        other => panic!("{case}/{name}: {}: unexpected cell {other:?}", c.name),
                    };
                    assert_eq!(got, want[j - 1], "{case}/{name}: {}", c.name);
                    if c.kind == ColumnKind::Rate && row.children == 0 {
                        assert_eq!(got, None, "a rate over no child is empty");
                    }
                }
            }
        }
    }
}

#[test]
fn the_table_aligns_columns_and_shows_rates_as_percentages() {
    let (report, _dir, paths) = written("small_school");
    let text = std::fs::read_to_string(&paths[4]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + report.frame().height());
    // Every cell against the hand-computed expectation of the case (not the renderer's own
    // output): labels, `-` for null, rates as percentages to one decimal, figures as written.
    let expected = Case::named("small_school").expected;
    assert_eq!(lines.len(), 1 + expected.len());
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    let names: Vec<&str> = REPORT_COLUMNS.iter().map(|c| c.name).collect();
    assert_eq!(header, names);
    let figures = REPORT_COLUMNS.len() - 3;
    for (line, row) in lines[1..].iter().zip(&expected) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let (labels, values) = cells.split_at(cells.len() - figures);
        let want_labels: Vec<String> = match (&row.school, row.grade) {
            (Some(s), Some(g)) => vec![s.clone(), g.to_string(), row.class.unwrap().to_string()],
            (Some(s), None) => vec![s.clone(), "total".to_owned()],
            (None, _) => vec!["county".to_owned(), "total".to_owned()],
        };
        assert_eq!(labels, want_labels, "{line}");
        let want = numbers(row);
        for (j, (c, cell)) in REPORT_COLUMNS[3..].iter().zip(values).enumerate() {
            match want[j + 2] {
                None => assert_eq!(*cell, "-", "{}: {line}", c.name),
                Some(v) if c.kind == ColumnKind::Rate => {
                    let pct: f64 = cell
                        .strip_suffix('%')
                        .unwrap_or_else(|| panic!("{}: {cell} is not a percentage", c.name))
                        .parse()
                        .unwrap();
                    assert!(
                        (pct - v * 100.0).abs() <= 0.05 + 1e-9,
                        "{}: {cell} vs {v}",
                        c.name
                    );
                }
                Some(v) => {
                    let got: f64 = cell
                        .parse()
                        .unwrap_or_else(|_| panic!("{}: {cell}", c.name));
                    assert!((got - v).abs() < 0.005, "{}: {cell} vs {v}", c.name);
                }
            }
        }
    }
    assert!(lines[0].starts_with("school  grade  class  children"));
    let total = lines.last().unwrap();
    assert!(total.starts_with("hx      total"), "{total}");
    assert!(total.contains("66.7%") && total.contains("83.3%") && total.contains("300.65"));
    // right-aligned numbers: every line ends at the same column
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "\n{text}");
}
