//! The county secret and the child-term feed through the binary (docs/province.md): the
//! secret is installed once and never replaced, the feed is refused without it (exit 4) and
//! outside its county (exit 1), and with it writes one pseudonymous row per counted child.

use std::os::unix::fs::PermissionsExt as _;

use crate::{careledger, careledger_ok, seed_store, stderr};

const COUNTY: &str = "沿河土家族自治县";

fn secret_text(county: &str, byte: u8) -> String {
    format!(
        "careledger county secret v1\ncounty: {county}\nkey: {}\n",
        format!("{byte:02x}").repeat(32)
    )
}

#[test]
fn the_county_secret_is_installed_once_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, secret_text(COUNTY, 7)).unwrap();
    let f = file.to_str().unwrap();
    careledger_ok(&db, &["keys", "import-county-secret", f]);
    let installed = dir.path().join("db.keys").join("county-secret.key");
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        secret_text(COUNTY, 7)
    );
    // The same secret again: accepted, nothing changed.
    let again = careledger_ok(&db, &["keys", "import-county-secret", f]);
    assert!(
        stderr(&again).contains("already installed"),
        "{}",
        stderr(&again)
    );
    // A different secret: refused, the installed one kept.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, secret_text(COUNTY, 8)).unwrap();
    let out = careledger(
        &db,
        &["keys", "import-county-secret", other.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("never replaces"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        secret_text(COUNTY, 7)
    );
    // A malformed file names its line.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, secret_text(COUNTY, 7).replace("key: ", "key:")).unwrap();
    let out = careledger(
        &db,
        &["keys", "import-county-secret", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

#[test]
fn the_child_term_feed_needs_the_secret_and_stays_in_its_county() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let feed = dir.path().join("feed");
    let args = |out: &str| {
        vec![
            "export".to_owned(),
            "child-terms".to_owned(),
            "--term".to_owned(),
            "2025-2026-1".to_owned(),
            "--format".to_owned(),
            "parquet".to_owned(),
            "--out".to_owned(),
            out.to_owned(),
        ]
    };
    let run = |extra: &[&str], out: &str| {
        let mut a = args(out);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        careledger(&db, &a)
    };
    // No secret: exit 4, saying how to install one, and nothing written.
    let out = run(&[], feed.to_str().unwrap());
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("keys import-county-secret"),
        "{}",
        stderr(&out)
    );
    assert!(!feed.exists());

    let file = dir.path().join("secret.txt");
    std::fs::write(&file, secret_text(COUNTY, 7)).unwrap();
    careledger_ok(
        &db,
        &["keys", "import-county-secret", file.to_str().unwrap()],
    );
    // Another county: refused.
    let out = run(&["--county", "别的县"], feed.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("沿河土家族自治县"),
        "{}",
        stderr(&out)
    );
    assert!(!feed.exists());

    // The secret's county by default: one row per counted child, as the report counts.
    let out = run(&[], feed.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = careledger_ok(
        &db,
        &[
            "report",
            "term",
            "--term",
            "2025-2026-1",
            "--county",
            COUNTY,
            "--format",
            "json",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&report.stdout).unwrap();
    let children = rows.last().unwrap()["children"].as_u64().unwrap();
    assert!(children > 0);
    assert!(
        stderr(&out).contains(&format!("exported {children} children")),
        "{}",
        stderr(&out)
    );
    let part = feed
        .join(format!("county={COUNTY}"))
        .join("school=sq")
        .join("term=2025-2026-1")
        .join("part-00000.parquet");
    assert!(part.is_file(), "{} is written", part.display());
    // The school's ids never appear in the feed's bytes; only pseudonyms do.
    let bytes = std::fs::read(&part).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("sq-c0"), "a child id reached the feed");

    // A second export into the same folder is refused and leaves it as it was.
    let out = run(&["--school", "sq"], feed.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&part).unwrap(), bytes);
}

#[test]
fn the_event_feed_needs_the_secret_and_carries_pseudonyms_stable_across_exports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    seed_store(dir.path(), &db);
    let export = |out: &std::path::Path| {
        careledger(
            &db,
            &[
                "export",
                "events",
                "--format",
                "parquet",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    // No secret: exit 4, saying how to install one, and nothing written.
    let a = dir.path().join("a");
    let out = export(&a);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("keys import-county-secret"),
        "{}",
        stderr(&out)
    );
    assert!(!a.exists());

    let file = dir.path().join("secret.txt");
    std::fs::write(&file, secret_text(COUNTY, 7)).unwrap();
    careledger_ok(
        &db,
        &["keys", "import-county-secret", file.to_str().unwrap()],
    );
    let b = dir.path().join("b");
    for out in [&a, &b] {
        let o = export(out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let part = |root: &std::path::Path| {
        root.join(format!("county={COUNTY}"))
            .join("school=sq")
            .join("term=2025-2026-1")
            .join("part-00000.parquet")
    };
    // The same pseudonyms in both exports, byte for byte.
    assert!(
        std::fs::read(part(&a)).unwrap() == std::fs::read(part(&b)).unwrap(),
        "two exports of the same log differ"
    );
    use polars::prelude::{ParquetReader, SerReader as _};
    let df = ParquetReader::new(std::fs::File::open(part(&a)).unwrap())
        .finish()
        .unwrap();
    let column = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = df
            .column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .map(str::to_owned)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (children, staff) = (column("child"), column("staff"));
    let secret =
        events::pseudonym::CountySecret::parse(&secret_text(COUNTY, 7)).expect("the secret");
    let pseudonyms = |subject, prefix: &str, n: usize| -> Vec<String> {
        (1..=n)
            .map(|i| secret.pseudonym(subject, &format!("{prefix}{i:02}")))
            .collect()
    };
    let (all_children, all_staff) = (
        pseudonyms(events::pseudonym::Subject::Child, "sq-c", 20),
        pseudonyms(events::pseudonym::Subject::Staff, "sq-t", 10),
    );
    // Every value is the pseudonym of a seed child or staff member; no school id is written.
    assert!(
        children.len() > 10 && staff.len() > 5,
        "{children:?} {staff:?}"
    );
    for p in &children {
        assert!(all_children.contains(p), "{p} is no child's pseudonym");
    }
    for p in &staff {
        assert!(all_staff.contains(p), "{p} is no staff member's pseudonym");
    }
}
