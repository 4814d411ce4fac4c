//! Given the events of a case folder, when the term report runs, then its rows are the
//! hand-worked expected.json (fixtures/reports/README.md).

use reports::ReportRow;

use crate::cases::Case;

fn describe(rows: &[ReportRow]) -> String {
    serde_json::to_string_pretty(rows).expect("rows encode")
}

#[test]
fn every_case_gives_its_expected_rows() {
    let cases = Case::all();
    assert!(
        cases.len() >= 9,
        "the cases are missing: found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let report = case.report();
        let rows = report.rows().expect("rows read back");
        if rows != case.expected {
            let mut diff = String::new();
            for (i, (got, want)) in rows.iter().zip(&case.expected).enumerate() {
                if got != want {
                    diff.push_str(&format!(
                        "row {i}:\n got  {}\n want {}\n",
                        serde_json::to_string(got).unwrap(),
                        serde_json::to_string(want).unwrap()
                    ));
                }
            }
            if rows.len() != case.expected.len() {
                diff.push_str(&format!(
                    "{} rows, expected {}\n{}",
                    rows.len(),
                    case.expected.len(),
                    describe(&rows)
                ));
            }
            failures.push(format!("case {}:\n{diff}", case.name));
        }
        if let Some(without) = &case.schools_without_term {
            assert_eq!(
                report.schools_without_term(),
                &without[..],
                "case {}",
                case.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_json_output_is_the_expected_file_value_for_value() {
    for case in Case::all() {
        let json = reports::output::to_json(&case.report()).expect("json");
        let got: serde_json::Value = serde_json::from_str(&json).expect("valid json");
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(case.dir.join("expected.json")).expect("expected.json"),
        )
        .expect("expected.json parses");
        assert_eq!(got, want, "case {}", case.name);
    }
}
