//! XLSX workbooks of school forms: the seed school's roster and a month of its records as a
//! workbook give exactly the events of the JSONL import (same derived ids); a template filled
//! in the way a spreadsheet program does imports cleanly; the malformed workbooks of
//! `fixtures/bad` are kept current here (their expected errors are checked by `bad.rs`).
//!
//! `CARELEDGER_WRITE_FIXTURES=1 cargo test -p ingest --test it xlsx` rewrites the committed
//! workbooks from the code below; without it the tests check the committed files.

use std::io::{Cursor, Read, Write};

use calamine::{Data, Reader, Xlsx};
use events::Draft;
use events::EventKind;
use ingest::{MemoryKnown, Options, Parsed};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Map, Value};

use crate::{memory_of, now, parse, root};

const SEED: &str = "fixtures/seed-school/events.jsonl";
const SEED_XLSX: &str = "fixtures/seed-school/seed-school.xlsx";

/// Registry lines the workbook does not carry (the school, its terms, its policy).
const PRELUDE_KINDS: [EventKind; 3] = [
    EventKind::SchoolRegistered,
    EventKind::TermDefined,
    EventKind::PolicyAdopted,
];

/// The sheets of the seed workbook, in workbook order: the roster, then the records.
const SHEETS: [EventKind; 10] = [
    EventKind::StaffJoined,
    EventKind::ChildRegistered,
    EventKind::PairingAssigned,
    EventKind::TalkHeld,
    EventKind::FamilyCallArranged,
    EventKind::ParentCalled,
    EventKind::GuardianContacted,
    EventKind::ClassTeacherContacted,
    EventKind::HomeVisited,
    EventKind::Tutored,
];

fn writing() -> bool {
    std::env::var_os("CARELEDGER_WRITE_FIXTURES").is_some()
}

fn seed_lines() -> Vec<Map<String, Value>> {
    let text = std::fs::read_to_string(root().join(SEED)).expect("the seed school exists");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => m,
            _ => panic!("{SEED}: not an object: {l}"),
        })
        .collect()
}

fn kind_of(m: &Map<String, Value>) -> EventKind {
    m.get("type")
        .and_then(Value::as_str)
        .and_then(EventKind::parse)
        .expect("a typed seed line")
}

/// The seed school's registry (school, terms, policy) as a log.
fn seed_prelude() -> MemoryKnown {
    let mut jsonl = String::new();
    for mut m in seed_lines() {
        if PRELUDE_KINDS.contains(&kind_of(&m)) {
            m.remove("recorded_at");
            jsonl.push_str(&Value::Object(m).to_string());
            jsonl.push('\n');
        }
    }
    let p = ingest::parse_jsonl(
        "prelude.jsonl",
        jsonl.as_bytes(),
        &MemoryKnown::new(),
        &opts(),
    )
    .unwrap_or_else(|e| panic!("the seed prelude is valid:\n{e}"));
    memory_of(&p.into_drafts())
}

fn opts() -> Options {
    Options::new(now())
}

/// The roster (all of it) and the records of September 2025, by sheet, without their
/// explicit ids and recording times: what a school's workbook holds.
fn roster_and_a_month() -> Vec<(EventKind, Vec<Map<String, Value>>)> {
    let lines = seed_lines();
    SHEETS
        .iter()
        .map(|&k| {
            let rows = lines
                .iter()
                .filter(|m| kind_of(m) == k)
                .filter(|m| {
                    matches!(
                        k,
                        EventKind::StaffJoined
                            | EventKind::ChildRegistered
                            | EventKind::PairingAssigned
                    ) || m
                        .get("occurred_at")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.starts_with("2025-09"))
                })
                .map(|m| {
                    let mut m = m.clone();
                    m.remove("id");
                    m.remove("recorded_at");
                    m
                })
                .collect();
            (k, rows)
        })
        .collect()
}

fn drafts(p: Result<Parsed, ingest::IngestErrors>, what: &str) -> Vec<Draft> {
    match p {
        Ok(p) => p.into_drafts(),
        Err(e) => panic!("{what} must import:\n{e}"),
    }
}

#[test]
fn the_seed_workbook_gives_the_events_of_the_jsonl() {
    let sheets = roster_and_a_month();
    let built = ingest::template::workbook(&sheets).expect("the seed events fit their forms");
    if writing() {
        std::fs::write(root().join(SEED_XLSX), &built).expect("the workbook is written");
    }
    let known = seed_prelude();

    let mut jsonl = String::new();
    for (_, rows) in &sheets {
        for m in rows {
            jsonl.push_str(&Value::Object(m.clone()).to_string());
            jsonl.push('\n');
        }
    }
    let from_jsonl = drafts(
        ingest::parse_jsonl("seed.jsonl", jsonl.as_bytes(), &known, &opts()),
        "the JSONL",
    );
    let from_xlsx = drafts(parse(SEED_XLSX, &known, &opts()), SEED_XLSX);
    let rebuilt = drafts(
        ingest::parse_xlsx("rebuilt.xlsx", &built, &known, &opts(), None),
        "the rebuilt workbook",
    );
    let kinds: Vec<usize> = sheets.iter().map(|(_, r)| r.len()).collect();
    assert!(
        kinds.iter().all(|n| *n > 0),
        "every sheet has rows: {kinds:?}"
    );
    assert!(from_jsonl.len() > 150, "only {} events", from_jsonl.len());
    assert!(from_jsonl.iter().all(|d| d.id.starts_with("h-")));
    assert_eq!(from_xlsx.len(), from_jsonl.len());
    for (x, j) in from_xlsx.iter().zip(&from_jsonl) {
        assert_eq!(x, j);
    }
    assert_eq!(
        rebuilt, from_jsonl,
        "{SEED_XLSX} is not current: rewrite it"
    );
}

/// The workbook's sheets, as calamine reads them.
fn sheet_names(bytes: &[u8]) -> Vec<String> {
    let book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("a workbook");
    book.sheet_names()
}

/// Header titles of one sheet of a template: the last header row, a grouped title shown as
/// `group/title`.
fn titles(bytes: &[u8], sheet: &str) -> (Vec<String>, u32) {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("a workbook");
    let range = book.worksheet_range(sheet).expect("the sheet");
    let merges = book.merge_cells_by_sheet_name(sheet).expect("merges");
    let two = merges.iter().any(|m| m.start.0 == 0 && m.end.0 == 0);
    let text = |r: u32, c: u32| match range.get_value((r, c)) {
        Some(Data::String(s)) => s.clone(),
        _ => String::new(),
    };
    let mut out = Vec::new();
    for c in 0..range.width() as u32 {
        let group = merges
            .iter()
            .find(|m| m.start.0 == 0 && m.end.0 == 0 && m.start.1 <= c && c <= m.end.1)
            .map(|m| text(0, m.start.1));
        out.push(match (two, group) {
            (true, Some(g)) => format!("{g}/{}", text(1, c)),
            _ => text(0, c),
        });
    }
    (out, if two { 2 } else { 1 })
}

/// A value a person types into a cell.
enum Typed<'a> {
    Text(&'a str),
    Number(f64),
}

/// Fills rows into a template's sheet the way a spreadsheet program saves them: `<row>`
/// elements appended to the sheet's XML (text as inline strings, numbers as values), the
/// sample row left in place. `rows` give values by column title.
fn fill(
    template: &[u8],
    sheet_index: usize,
    first: u32,
    cols: &[String],
    rows: &[Vec<(&str, Typed)>],
) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(template)).expect("a zip");
    let target = format!("xl/worksheets/sheet{}.xml", sheet_index + 1);
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("an entry");
        let name = f.name().expect("a readable entry name").into_owned();
        let mut body = Vec::new();
        f.read_to_end(&mut body).expect("readable");
        if name == target {
            let xml = String::from_utf8(body).expect("utf-8 xml");
            let mut added = String::new();
            for (n, row) in rows.iter().enumerate() {
                // Row `first` is the sample; ours come below it.
                let r = first + 2 + n as u32;
                added.push_str(&format!("<row r=\"{r}\">"));
                for (title, v) in row {
                    let c = cols
                        .iter()
                        .position(|t| t == title)
                        .unwrap_or_else(|| panic!("the template has no column {title}"));
                    let cell = format!("{}{r}", column_letters(c));
                    added.push_str(&match v {
                        Typed::Text(s) => {
                            format!("<c r=\"{cell}\" t=\"inlineStr\"><is><t>{s}</t></is></c>")
                        }
                        Typed::Number(x) => format!("<c r=\"{cell}\"><v>{x}</v></c>"),
                    });
                }
                added.push_str("</row>");
            }
            let xml = xml.replacen("</sheetData>", &format!("{added}</sheetData>"), 1);
            body = xml.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("an entry");
        out.write_all(&body).expect("written");
    }
    out.finish().expect("a zip").into_inner()
}

fn column_letters(mut c: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

fn bad_prelude() -> MemoryKnown {
    let p = parse("fixtures/bad/_prelude.jsonl", &MemoryKnown::new(), &opts())
        .unwrap_or_else(|e| panic!("the prelude is valid:\n{e}"));
    memory_of(&p.into_drafts())
}

#[test]
fn a_filled_template_imports_cleanly() {
    let kinds = [EventKind::ChildRegistered, EventKind::FamilyCallArranged];
    let template = ingest::template::template(&kinds).expect("a template");
    let names = sheet_names(&template);
    assert_eq!(names, ["留守儿童登记表", "亲情电话登记"]);
    let known = bad_prelude();

    // Left as it is, the template holds nothing to import (its sample row is skipped).
    let blank = ingest::parse_xlsx("form.xlsx", &template, &known, &opts(), Some("t1"))
        .expect("a blank template is valid");
    assert!(blank.drafts.is_empty());

    let (roster_cols, roster_first) = titles(&template, "留守儿童登记表");
    assert!(
        roster_cols.contains(&"父亲/电话".to_owned()),
        "{roster_cols:?}"
    );
    let child = vec![
        ("编号", Typed::Text("c-9001")),
        ("学校编号", Typed::Text("s1")),
        ("姓名", Typed::Text("冉小雨")),
        ("性别", Typed::Text("女")),
        ("出生日期", Typed::Text("2013年3月14日")),
        ("年级", Typed::Number(7.0)),
        ("班级", Typed::Number(2.0)),
        ("家庭住址", Typed::Text("思渠镇荷叶村一组")),
        ("是否寄宿", Typed::Text("是")),
        ("留守类型", Typed::Text("父母均外出")),
        ("困难类型", Typed::Text("贫困、单亲")),
        ("父亲/姓名", Typed::Text("冉茂林")),
        ("父亲/务工地", Typed::Text("广东省东莞市")),
        ("父亲/电话", Typed::Number(18_732_835_504.0)),
        ("父亲/是否外出", Typed::Text("是")),
        ("监护人/姓名", Typed::Text("冉正文")),
        ("监护人/与儿童关系", Typed::Text("爷爷")),
        ("监护人/年龄", Typed::Number(66.0)),
        ("监护人/电话", Typed::Number(18_344_309_564.0)),
        ("监护人/监护能力", Typed::Text("一般")),
        // 2025-09-01 as Excel's serial day number.
        ("登记日期", Typed::Number(45901.0)),
        ("登记时间", Typed::Text("14:05")),
    ];
    let filled = fill(&template, 0, roster_first, &roster_cols, &[child]);

    let (call_cols, call_first) = titles(&filled, "亲情电话登记");
    let call = vec![
        ("通话日期", Typed::Text("2025/10/8")),
        ("通话时间", Typed::Text("19:30")),
        // Named as a school names them: the teacher by name, the child (registered on the
        // first sheet of this very workbook) by name, grade and class.
        ("教师姓名", Typed::Text("王老师")),
        ("儿童姓名", Typed::Text("冉小雨")),
        ("年级", Typed::Number(7.0)),
        ("班级", Typed::Number(2.0)),
        ("通话对象", Typed::Text("母亲")),
        ("通话时长（分钟）", Typed::Number(12.0)),
        ("事由", Typed::Text("国庆后想念妈妈")),
    ];
    let filled = fill(&filled, 1, call_first, &call_cols, &[call]);

    let parsed = ingest::parse_xlsx("form.xlsx", &filled, &known, &opts(), Some("t1"))
        .unwrap_or_else(|e| panic!("the filled template must import:\n{e}"));
    let drafts = parsed.into_drafts();
    assert_eq!(drafts.len(), 2);
    let wire = |d: &Draft| {
        let mut m = events::wire::payload_of(&d.event);
        m.insert("type".into(), d.event.kind().as_str().into());
        m.insert("actor".into(), d.actor.clone().into());
        m.insert(
            "occurred_at".into(),
            events::time::format_local(d.occurred_at).into(),
        );
        Value::Object(m)
    };
    let registered = wire(&drafts[0]);
    assert_eq!(registered["type"], "child_registered");
    assert_eq!(registered["actor"], "t1");
    assert_eq!(registered["occurred_at"], "2025-09-01T14:05:00+08:00");
    assert_eq!(registered["gender"], "female");
    assert_eq!(registered["birth_date"], "2013-03-14");
    assert_eq!(registered["boarding"], true);
    assert_eq!(
        registered["hardship"],
        serde_json::json!(["poverty", "single_parent"])
    );
    assert_eq!(registered["parents"][0]["relation"], "father");
    assert_eq!(registered["parents"][0]["phone"], "18732835504");
    assert_eq!(registered["parents"].as_array().map(Vec::len), Some(1));
    assert_eq!(registered["guardian"]["relation"], "grandparent_paternal");
    assert_eq!(registered["guardian"]["capability"], "fair");
    let call = wire(&drafts[1]);
    assert_eq!(call["type"], "family_call");
    assert_eq!(call["occurred_at"], "2025-10-08T19:30:00+08:00");
    assert_eq!(call["parent"], "mother");
    assert_eq!(call["staff"], "t1");
    assert_eq!(call["child"], "c-9001");
    assert_eq!(call["minutes"], 12);
}

// ---- the malformed workbooks of fixtures/bad ------------------------------------------------

/// A cell of a hand-made workbook.
#[derive(Clone, Copy)]
enum C<'a> {
    S(&'a str),
    N(f64),
    D(u16, u8, u8),
    E,
}

struct BadSheet<'a> {
    name: &'a str,
    /// Horizontal merges of row `merge_row`: (first column, last column).
    merges: &'a [(u16, u16)],
    merge_row: u32,
    rows: Vec<Vec<C<'a>>>,
}

fn bad_book(sheets: &[BadSheet<'_>]) -> Vec<u8> {
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for s in sheets {
        let ws = book.add_worksheet();
        ws.set_name(s.name).expect("a sheet name");
        for (r, row) in s.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                if s.merges
                    .iter()
                    .any(|(a, b)| r == s.merge_row && c > *a && c <= *b)
                {
                    continue;
                }
                match *cell {
                    C::S(t) => {
                        if let Some((a, b)) =
                            s.merges.iter().find(|(a, _)| r == s.merge_row && *a == c)
                        {
                            ws.merge_range(r, *a, r, *b, t, &Format::new())
                                .expect("merge");
                        } else {
                            ws.write_string(r, c, t).expect("a cell");
                        }
                    }
                    C::N(n) => {
                        ws.write_number(r, c, n).expect("a cell");
                    }
                    C::D(y, m, d) => {
                        let dt = ExcelDateTime::from_ymd(y, m, d).expect("a date");
                        ws.write_datetime_with_format(r, c, &dt, &date)
                            .expect("a cell");
                    }
                    C::E => {}
                }
            }
        }
    }
    book.save_to_buffer().expect("a workbook")
}

const TALK_HEADER: [C<'static>; 7] = [
    C::S("谈心日期"),
    C::S("教师编号"),
    C::S("儿童编号"),
    C::S("谈心主题"),
    C::S("谈心内容"),
    C::S("情绪"),
    C::S("记录人"),
];

fn talk_row<'a>(date: C<'a>, mood: C<'a>) -> Vec<C<'a>> {
    vec![
        date,
        C::S("t1"),
        C::S("c1"),
        C::S("学习压力"),
        C::S("期中考试前有些紧张"),
        mood,
        C::S("t1"),
    ]
}

fn bad_cases() -> Vec<(&'static str, Vec<u8>)> {
    let good_talk = || talk_row(C::D(2025, 10, 9), C::S("一般"));
    let roster_two_rows =
        |group: &'static str, gender: &'static str, name: &'static str| BadSheet {
            name: "留守儿童登记表",
            merges: &[(8, 10)],
            merge_row: 0,
            rows: vec![
                vec![
                    C::S("编号"),
                    C::S("学校编号"),
                    C::S("姓名"),
                    C::S("性别"),
                    C::S("出生日期"),
                    C::S("年级"),
                    C::S("班级"),
                    C::S("家庭住址"),
                    C::S(group),
                    C::E,
                    C::E,
                    C::S("是否寄宿"),
                    C::S("留守类型"),
                    C::S("监护人姓名"),
                    C::S("与儿童关系"),
                    C::S("监护能力"),
                    C::S("登记日期"),
                    C::S("记录人"),
                ],
                vec![
                    C::E,
                    C::E,
                    C::E,
                    C::E,
                    C::E,
                    C::E,
                    C::E,
                    C::E,
                    C::S("姓名"),
                    C::S("电话"),
                    C::S("是否外出"),
                ],
                vec![
                    C::S("c-9002"),
                    C::S("s1"),
                    C::S(name),
                    C::S(gender),
                    C::D(2012, 11, 2),
                    C::N(7.0),
                    C::N(2.0),
                    C::S("思渠镇边墙村二组"),
                    C::S("杨再兴"),
                    C::N(15_968_819_544.0),
                    C::S("是"),
                    C::S("否"),
                    C::S("父母一方外出"),
                    C::S("杨昌富"),
                    C::S("祖父母"),
                    C::S("一般"),
                    C::S("2025-09-01"),
                    C::S("t1"),
                ],
            ],
        };
    vec![
        (
            "xlsx_wrong_sheet_name.xlsx",
            bad_book(&[
                BadSheet {
                    name: "谈心记录",
                    merges: &[],
                    merge_row: 0,
                    rows: vec![TALK_HEADER.to_vec(), good_talk()],
                },
                BadSheet {
                    name: "谈心记录表2",
                    merges: &[],
                    merge_row: 0,
                    rows: vec![TALK_HEADER.to_vec(), good_talk()],
                },
            ]),
        ),
        (
            "xlsx_unknown_header.xlsx",
            bad_book(&[BadSheet {
                name: "谈心记录",
                merges: &[],
                merge_row: 0,
                rows: vec![
                    TALK_HEADER
                        .iter()
                        .copied()
                        .chain([C::S("心情指数")])
                        .collect(),
                    good_talk().into_iter().chain([C::N(3.0)]).collect(),
                ],
            }]),
        ),
        (
            "xlsx_text_date.xlsx",
            bad_book(&[BadSheet {
                name: "谈心记录",
                merges: &[],
                merge_row: 0,
                rows: vec![
                    TALK_HEADER.to_vec(),
                    good_talk(),
                    talk_row(C::S("上周三下午"), C::S("好")),
                ],
            }]),
        ),
        (
            "xlsx_merged_header.xlsx",
            bad_book(&[roster_two_rows("祖父", "男", "杨小军")]),
        ),
        (
            "xlsx_bad_label.xlsx",
            bad_book(&[roster_two_rows("父亲", "未知", "杨小军")]),
        ),
        (
            "xlsx_ambiguous_child.xlsx",
            bad_book(&[
                // A second 李小明 in grade 7, class 2 of s1 (the prelude has c1).
                roster_two_rows("父亲", "男", "李小明"),
                BadSheet {
                    name: "谈心记录",
                    merges: &[],
                    merge_row: 0,
                    rows: vec![
                        vec![
                            C::S("谈心日期"),
                            C::S("教师编号"),
                            C::S("儿童姓名"),
                            C::S("年级"),
                            C::S("班级"),
                            C::S("谈心主题"),
                            C::S("谈心内容"),
                            C::S("情绪"),
                            C::S("记录人"),
                        ],
                        vec![
                            C::D(2025, 10, 9),
                            C::S("t1"),
                            C::S("李小明"),
                            C::N(7.0),
                            C::N(2.0),
                            C::S("学习压力"),
                            C::S("期中考试前有些紧张"),
                            C::S("一般"),
                            C::S("t1"),
                        ],
                    ],
                },
            ]),
        ),
        (
            "xlsx_empty_required.xlsx",
            bad_book(&[BadSheet {
                name: "亲情电话登记",
                merges: &[],
                merge_row: 0,
                rows: vec![
                    vec![
                        C::S("通话日期"),
                        C::S("通话时间"),
                        C::S("教师编号"),
                        C::S("儿童编号"),
                        C::S("通话对象"),
                        C::S("通话时长（分钟）"),
                        C::S("事由"),
                        C::S("记录人"),
                    ],
                    vec![
                        C::D(2025, 10, 8),
                        C::S("19:30"),
                        C::S("t1"),
                        C::S("c1"),
                        C::E,
                        C::N(12.0),
                        C::S("想念妈妈"),
                        C::S("t1"),
                    ],
                ],
            }]),
        ),
    ]
}

/// The committed bad workbooks hold exactly the cells built here (their errors are checked
/// with every other bad case, by `bad.rs`).
#[test]
fn the_bad_workbooks_are_current() {
    for (name, bytes) in bad_cases() {
        let stem = name.trim_end_matches(".xlsx");
        let path = root().join("fixtures/bad").join(stem).join("input.xlsx");
        if writing() {
            std::fs::write(&path, &bytes).expect("a bad workbook is written");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (rewrite with CARELEDGER_WRITE_FIXTURES=1)",
                path.display()
            )
        });
        assert_eq!(cells(&committed), cells(&bytes), "{name} is not current");
        // Nothing of a workbook with errors is appended: the batch as a whole is refused.
        let rel = format!("fixtures/bad/{name}");
        let refused = ingest::parse_bytes(&rel, &committed, &bad_prelude(), &opts());
        assert!(refused.is_err(), "{rel} is accepted");
    }
}

fn cells(bytes: &[u8]) -> Vec<(String, Vec<Vec<String>>, usize)> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("a workbook");
    let mut out = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).expect("a sheet");
        let merges = book.merge_cells_by_sheet_name(&name).expect("merges").len();
        let rows = range
            .rows()
            .map(|r| r.iter().map(ingest::xlsx::text_of).collect())
            .collect();
        out.push((name, rows, merges));
    }
    out
}

/// 留守儿童父母登记表 replaces a registered child's parents (the mother alone here, so she is
/// the list's only entry); a form title above the header is skipped; a sheet named by its type
/// reads the CSV form's dotted headers; rows without 记录人 take the importing staff member.
#[test]
fn the_parents_form_a_title_row_and_dotted_headers_are_read() {
    let bytes = bad_book(&[
        BadSheet {
            name: "留守儿童父母登记表",
            merges: &[(1, 4)],
            merge_row: 1,
            rows: vec![
                vec![C::S("思渠中学留守儿童父母登记表")],
                vec![
                    C::S("编号"),
                    C::S("母亲"),
                    C::E,
                    C::E,
                    C::E,
                    C::S("登记日期"),
                ],
                vec![
                    C::E,
                    C::S("姓名"),
                    C::S("务工地"),
                    C::S("电话"),
                    C::S("是否外出"),
                    C::E,
                ],
                vec![
                    C::S("c1"),
                    C::S("王秀"),
                    C::S("浙江宁波"),
                    C::N(13_600_000_009.0),
                    C::S("是"),
                    C::S("2025/10/8"),
                ],
            ],
        },
        BadSheet {
            name: "guardian_contact",
            merges: &[],
            merge_row: 0,
            rows: vec![
                vec![
                    C::S("occurred_at"),
                    C::S("staff"),
                    C::S("child"),
                    C::S("mode"),
                    C::S("summary"),
                ],
                vec![
                    C::S("2025-10-09T18:30:00+08:00"),
                    C::S("t1"),
                    C::S("c1"),
                    C::S("电话"),
                    C::S("母亲外出务工，告知监护人"),
                ],
            ],
        },
    ]);
    // The title row is merged across the sheet in real forms; here it is one text alone.
    let parsed = ingest::parse_xlsx("parents.xlsx", &bytes, &bad_prelude(), &opts(), Some("t1"))
        .unwrap_or_else(|e| panic!("the workbook must import:\n{e}"));
    let drafts = parsed.into_drafts();
    assert_eq!(drafts.len(), 2);
    let updated = events::wire::payload_of(&drafts[0].event);
    assert_eq!(
        updated["changes"]["parents"],
        serde_json::json!([{
            "name": "王秀", "relation": "mother", "work_place": "浙江宁波",
            "employer_address": "", "phone": "13600000009", "away": true
        }])
    );
    assert_eq!(drafts[0].actor, "t1");
    assert_eq!(
        events::time::format_local(drafts[0].occurred_at),
        "2025-10-08T00:00:00+08:00"
    );
    let contact = events::wire::payload_of(&drafts[1].event);
    assert_eq!(contact["mode"], "phone");
    assert_eq!(drafts[1].event.kind(), EventKind::GuardianContacted);
}
