//! XLSX input: a workbook of school forms, one sheet per event type, read with calamine into
//! the same flat rows a CSV gives and validated by the same path (so errors and derived ids
//! are the same as for JSONL and CSV).
//!
//! Sheets are named by the type (`child_registered`) or by the form (`留守儿童登记表`, see
//! `forms`). Headers are the dotted wire names of the CSV form or the forms' Chinese titles,
//! in one row or in two rows with merged group cells (父亲 above 姓名 / 电话). Cells come as
//! Excel keeps them: date cells, serial numbers or date texts; 是/否; Chinese labels of closed
//! vocabularies; phone numbers stored as numbers. This module owns the reading of cells and
//! headers and the placing of errors in sheet, row and column; it must never judge a value
//! itself beyond reading its form (decoding reports what does not fit), and never write.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Data, Dimensions, Range, Reader, Xlsx};
use chrono::NaiveDate;
use events::EventKind;
use events::event::Parent;
use events::labels;
use serde_json::{Map, Value};

use crate::csv_rows::insert_path;
use crate::error::quote;
use crate::forms::{self, Column, Form, Target};
use crate::people::People;
use crate::shape::{self, Shape};
use crate::validate::{Batch, Origin};
use crate::wire::{ENVELOPE, Problem};

/// The separators a list cell may use between items (`贫困；单亲`, `监护人、儿童`).
const LIST_SEPARATORS: [char; 5] = [';', '；', '、', ',', '，'];

/// Reads a workbook into the batch, sheet by sheet in workbook order, rows in sheet order.
/// `actor` is the importing staff member, the `actor` of rows that have no 记录人 cell.
pub fn read(batch: &mut Batch<'_>, bytes: &[u8], actor: Option<&str>) {
    let mut book = match Xlsx::new(Cursor::new(bytes)) {
        Ok(b) => b,
        Err(e) => {
            batch.report(
                None,
                Problem {
                    field: None,
                    expected: "an XLSX workbook".to_owned(),
                    found: Some(format!("a file that is not one ({e})")),
                },
            );
            return;
        }
    };
    // The directory of names, read from the log only when a row names someone by name.
    let mut people: Option<People> = None;
    for name in book.sheet_names() {
        batch.set_sheet(Some(name.clone()));
        let range = match book.worksheet_range(&name) {
            Ok(r) => r,
            Err(e) => {
                batch.report(None, unreadable(e.to_string()));
                continue;
            }
        };
        if range.used_cells().all(|(_, _, c)| text_of(c).is_empty()) {
            continue; // A blank sheet (Excel's default Sheet2) holds nothing to import.
        }
        let Some(kind) = forms::sheet_kind(&name) else {
            batch.report(
                None,
                Problem {
                    field: None,
                    expected: format!(
                        "a sheet named by an event type (child_registered) or by a form ({})",
                        forms::FORMS
                            .iter()
                            .map(|f| f.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    found: Some(format!("a sheet named {}", quote(&name))),
                },
            );
            continue;
        };
        let merges = match book.merge_cells_by_sheet_name(&name) {
            Ok(m) => m,
            Err(e) => {
                batch.report(None, unreadable(e.to_string()));
                continue;
            }
        };
        Sheet::new(kind, &range, &merges).read(batch, actor, &mut people);
    }
    batch.set_sheet(None);
}

fn unreadable(why: String) -> Problem {
    Problem {
        field: None,
        expected: "a readable sheet".to_owned(),
        found: Some(why),
    }
}

/// What a header column resolved to.
#[derive(Debug, Clone)]
enum Col {
    /// A column of the sheet's form.
    Form(Column),
    /// A dotted wire name (the CSV form).
    Dotted(String),
    /// `type`: must agree with the sheet's name.
    Type,
    /// A column with no title: its cells must stay empty.
    Untitled,
}

struct Sheet<'r> {
    kind: EventKind,
    form: Option<&'static Form>,
    range: &'r Range<Data>,
    merges: &'r [Dimensions],
    /// The absolute row and column of the range's first cell.
    origin: (u32, u32),
}

impl<'r> Sheet<'r> {
    fn new(kind: EventKind, range: &'r Range<Data>, merges: &'r [Dimensions]) -> Sheet<'r> {
        Sheet {
            kind,
            form: forms::form_of(kind),
            range,
            merges,
            origin: range.start().unwrap_or((0, 0)),
        }
    }

    /// The cell at an absolute position, as text (empty when absent).
    fn text(&self, row: u32, col: u32) -> String {
        self.range
            .get_value((row, col))
            .map(text_of)
            .unwrap_or_default()
    }

    /// The text of a header cell: a cell inside a merged region reads as the region's
    /// top-left cell only when the region spans columns (a group over sub-titles).
    fn header_text(&self, row: u32, col: u32) -> String {
        let own = self.text(row, col);
        if !own.is_empty() {
            return own;
        }
        self.merges
            .iter()
            .find(|m| {
                m.start.0 <= row
                    && row <= m.end.0
                    && m.start.1 <= col
                    && col <= m.end.1
                    && m.end.1 > m.start.1
            })
            .map(|m| self.text(m.start.0, m.start.1))
            .unwrap_or_default()
    }

    fn row_is_empty(&self, row: u32) -> bool {
        let (_, c0) = self.origin;
        (0..self.range.width() as u32).all(|i| self.text(row, c0 + i).is_empty())
    }

    fn filled(&self, row: u32) -> usize {
        let (_, c0) = self.origin;
        (0..self.range.width() as u32)
            .filter(|i| !self.text(row, c0 + i).is_empty())
            .count()
    }

    fn read(&self, batch: &mut Batch<'_>, actor: Option<&str>, people: &mut Option<People>) {
        let (r0, c0) = self.origin;
        let end = r0 + self.range.height() as u32;
        let Some(mut head) = (r0..end).find(|r| !self.row_is_empty(*r)) else {
            return;
        };
        // A form title above the header (思渠中学留守儿童登记表): one text, a header below.
        if self.filled(head) == 1 && head + 1 < end && self.filled(head + 1) > 1 {
            head += 1;
        }
        let two_rows = head + 1 < end
            && self
                .merges
                .iter()
                .any(|m| m.start.0 == head && m.end.0 == head && m.end.1 > m.start.1);
        let width = self.range.width() as u32;
        let mut cols = Vec::with_capacity(width as usize);
        let mut problems: Vec<(Option<String>, Problem)> = Vec::new();
        for i in 0..width {
            let c = c0 + i;
            let top = self.header_text(head, c);
            let bottom = if two_rows {
                self.text(head + 1, c)
            } else {
                String::new()
            };
            let (col, shown) = match (top.is_empty(), bottom.is_empty()) {
                (true, true) => (Ok(Col::Untitled), String::new()),
                (false, true) => (self.resolve_flat(&top), top.clone()),
                (true, false) => (self.resolve_flat(&bottom), bottom.clone()),
                (false, false) => (
                    self.resolve_grouped(&top, &bottom),
                    format!("{top}/{bottom}"),
                ),
            };
            match col {
                Ok(col) => cols.push(col),
                Err(p) => {
                    problems.push((Some(shown), p));
                    cols.push(Col::Untitled);
                }
            }
        }
        problems.extend(self.check_columns(&cols));
        let data_from = if two_rows { head + 2 } else { head + 1 };
        let header_line = (data_from - 1) as usize + 1;
        if !problems.is_empty() {
            for (column, p) in problems {
                let before = batch.error_count();
                batch.report(Some(header_line), p);
                for e in batch.errors_since(before) {
                    e.column.clone_from(&column);
                }
            }
            return;
        }
        for r in data_from..end {
            if self.row_is_empty(r) || self.is_sample(r, &cols) {
                continue;
            }
            self.row(batch, r, &cols, actor, people);
        }
    }

    /// A single-row title: a form column, a dotted wire name or `type`.
    fn resolve_flat(&self, title: &str) -> Result<Col, Problem> {
        if let Some(c) = self.form.and_then(|f| f.column_for_flat(title)) {
            return Ok(Col::Form(*c));
        }
        if title == "type" {
            return Ok(Col::Type);
        }
        if ENVELOPE.contains(&title) || crate::csv_rows::check_column(self.kind, title).is_none() {
            return Ok(Col::Dotted(title.to_owned()));
        }
        Err(Problem {
            field: None,
            expected: self.expected_titles(),
            found: Some("an unknown column".to_owned()),
        })
    }

    /// A title under a merged group cell.
    fn resolve_grouped(&self, group: &str, title: &str) -> Result<Col, Problem> {
        let found = self.form.and_then(|f| f.column_for_grouped(group, title));
        match found {
            Some(c) => Ok(Col::Form(*c)),
            None => Err(Problem {
                field: None,
                expected: match self.form {
                    Some(f) => {
                        let mut groups: Vec<&str> = Vec::new();
                        for g in f.columns.iter().filter_map(|c| c.group) {
                            if !groups.contains(&g) {
                                groups.push(g);
                            }
                        }
                        format!(
                            "a merged group of {} ({}) above a title of that group",
                            f.name,
                            groups.join(", ")
                        )
                    }
                    None => format!(
                        "a one-row header of dotted names ({} has no form with grouped titles)",
                        self.kind
                    ),
                },
                found: Some("a merged header that names no column".to_owned()),
            }),
        }
    }

    fn expected_titles(&self) -> String {
        match self.form {
            Some(f) => format!(
                "a column of {} ({}) or a dotted field name of {}",
                f.name,
                f.columns
                    .iter()
                    .map(Column::flat_title)
                    .collect::<Vec<_>>()
                    .join(", "),
                self.kind
            ),
            None => format!(
                "a dotted field name of {} (such as guardian.name)",
                self.kind
            ),
        }
    }

    /// Each field is given by one column only.
    fn check_columns(&self, cols: &[Col]) -> Vec<(Option<String>, Problem)> {
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for c in cols {
            let (key, shown) = match c {
                Col::Form(col) => (target_key(col.target), col.shown_title()),
                Col::Dotted(d) => (d.clone(), d.clone()),
                Col::Type => ("type".to_owned(), "type".to_owned()),
                Col::Untitled => continue,
            };
            if seen.contains(&key) {
                out.push((
                    Some(shown),
                    Problem {
                        field: None,
                        expected: "each field in one column".to_owned(),
                        found: Some("a second column for the same field".to_owned()),
                    },
                ));
            }
            seen.push(key);
        }
        out
    }

    /// The template's sample row, left as the template wrote it: not a record.
    fn is_sample(&self, row: u32, cols: &[Col]) -> bool {
        let (_, c0) = self.origin;
        let mut any = false;
        for (i, col) in cols.iter().enumerate() {
            let text = self.text(row, c0 + i as u32);
            match col {
                Col::Form(c) => {
                    if text != c.sample {
                        return false;
                    }
                    any |= !text.is_empty();
                }
                _ if text.is_empty() => {}
                _ => return false,
            }
        }
        any
    }

    /// Turns one row into a wire object, validates it, and places its errors in columns.
    fn row(
        &self,
        batch: &mut Batch<'_>,
        r: u32,
        cols: &[Col],
        actor: Option<&str>,
        people: &mut Option<People>,
    ) {
        let line = r as usize + 1;
        let (_, c0) = self.origin;
        let shape = shape::of(self.kind);
        let mut flat: Vec<(String, String)> = Vec::new();
        let mut titles: BTreeMap<String, String> = BTreeMap::new();
        let mut parents: [Vec<(&'static str, String, String)>; 2] = [Vec::new(), Vec::new()];
        let mut time_of_day: Option<(String, String)> = None;
        let mut names = Names::default();
        let mut problems: Vec<(Option<String>, Problem)> = Vec::new();
        for col in cols {
            match col {
                Col::Dotted(path) => {
                    titles.insert(path.clone(), path.clone());
                }
                Col::Form(c) => match c.target {
                    Target::Field(path) => {
                        titles.insert(path.to_owned(), c.shown_title());
                    }
                    Target::TimeOfDay
                    | Target::Parent(..)
                    | Target::ChildName
                    | Target::ChildGrade
                    | Target::ChildClass
                    | Target::StaffName => {}
                },
                Col::Type | Col::Untitled => {}
            }
        }
        for (i, col) in cols.iter().enumerate() {
            let Some(cell) = self.range.get_value((r, c0 + i as u32)) else {
                continue;
            };
            if text_of(cell).is_empty() {
                continue;
            }
            match col {
                Col::Untitled => problems.push((
                    None,
                    Problem {
                        field: None,
                        expected: format!("nothing in column {}, which has no title", i + 1),
                        found: Some(quote(&text_of(cell))),
                    },
                )),
                Col::Type => {
                    let t = text_of(cell);
                    if t != self.kind.as_str() {
                        problems.push((
                            Some("type".to_owned()),
                            Problem::field(
                                "type",
                                format!("{}, as the sheet's name says", self.kind),
                                Some(quote(&t)),
                            ),
                        ));
                    }
                }
                Col::Dotted(path) => {
                    flat.push((path.clone(), cell_text(cell, path_shape(shape, path))));
                }
                Col::Form(c) => match c.target {
                    Target::Field(path) => {
                        flat.push((path.to_owned(), cell_text(cell, path_shape(shape, path))));
                    }
                    Target::TimeOfDay => {
                        time_of_day = Some((time_text(cell), c.shown_title()));
                    }
                    Target::ChildName => names.child = Some((text_of(cell), c.shown_title())),
                    Target::ChildGrade => names.grade = Some((text_of(cell), c.shown_title())),
                    Target::ChildClass => names.class = Some((text_of(cell), c.shown_title())),
                    Target::StaffName => names.staff = Some((text_of(cell), c.shown_title())),
                    Target::Parent(p, field) => {
                        let list = self.form.map_or("parents", |f| f.parents);
                        let path = format!("{list}.0.{field}");
                        let text = cell_text(cell, path_shape(shape, &path));
                        let slot = usize::from(p == Parent::Mother);
                        parents[slot].push((field, text, c.shown_title()));
                    }
                },
            }
        }
        // The father first, then the mother, each only if the row gives one of their cells.
        let list = self.form.map_or("parents", |f| f.parents);
        let mut n = 0;
        for (slot, p) in [(0, Parent::Father), (1, Parent::Mother)] {
            if parents[slot].is_empty() {
                continue;
            }
            flat.push((format!("{list}.{n}.relation"), p.as_str().to_owned()));
            for (field, text, title) in &parents[slot] {
                let path = format!("{list}.{n}.{field}");
                titles.insert(path.clone(), title.clone());
                flat.push((path, text.clone()));
            }
            n += 1;
        }
        if let Some((time, title)) = time_of_day {
            titles.insert("occurred_at".to_owned(), title.clone());
            match flat.iter_mut().find(|(p, _)| p == "occurred_at") {
                Some((_, date)) => match (NaiveDate::parse_from_str(date, "%Y-%m-%d"), hm(&time)) {
                    (Ok(_), Some(t)) => *date = format!("{date}T{t}+08:00"),
                    (_, None) => problems.push((
                        Some(title),
                        Problem::field(
                            "occurred_at",
                            "a time of day such as 16:40 (or a time cell)",
                            Some(quote(&time)),
                        ),
                    )),
                    _ => {} // The date itself is reported by validation.
                },
                None => problems.push((
                    Some(title),
                    Problem::field(
                        "occurred_at",
                        "a date column beside the time of day",
                        Some("a time without a date".to_owned()),
                    ),
                )),
            }
        }
        if let Some(a) = actor
            && !flat.iter().any(|(p, _)| p == "actor")
        {
            flat.push(("actor".to_owned(), a.to_owned()));
        }
        let unresolved = if names.is_empty() {
            Vec::new()
        } else {
            let directory = people.get_or_insert_with(|| {
                let mut p = batch.known().people();
                for (_, d) in batch.accepted() {
                    p.observe(&d.id, &d.event);
                }
                p
            });
            names.resolve(directory, &mut flat, &mut problems)
        };

        let mut obj = Map::new();
        obj.insert(
            "type".to_owned(),
            Value::String(self.kind.as_str().to_owned()),
        );
        for (path, text) in flat {
            if ENVELOPE.contains(&path.as_str()) {
                obj.insert(path, Value::String(text));
            } else {
                insert_path(&mut obj, path.split('.'), Value::String(text));
            }
        }
        let mut v = Value::Object(obj);
        shape.coerce(&mut v);
        let obj = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };

        for (column, p) in problems {
            let at = batch.error_count();
            batch.report(Some(line), p);
            for e in batch.errors_since(at) {
                e.column.clone_from(&column);
            }
        }
        let from = batch.error_count();
        let accepted = batch.accepted().len();
        batch.line(line, obj, Origin::Csv);
        if let Some(p) = people.as_mut() {
            for (_, d) in &batch.accepted()[accepted..] {
                p.observe(&d.id, &d.event);
            }
        }
        // A child or staff member whose name did not resolve is reported once, on the name.
        batch.drop_errors_since(from, |e| {
            e.field
                .as_deref()
                .is_some_and(|f| unresolved.contains(&f) && e.found.as_deref() == Some("nothing"))
        });
        for e in batch.errors_since(from) {
            let Some(field) = e.field.clone() else {
                continue;
            };
            e.column = column_of(&titles, &field);
            if field == "actor" && e.column.is_none() && e.found.as_deref() == Some("nothing") {
                e.expected = "who recorded the row: a 记录人 column, or --actor".to_owned();
            }
            if let Some(s) = path_shape(shape, &field) {
                e.expected = spreadsheet_expected(s, &e.expected);
            }
        }
    }
}

/// The name columns of a row, each with its column title.
#[derive(Default)]
struct Names {
    child: Option<(String, String)>,
    grade: Option<(String, String)>,
    class: Option<(String, String)>,
    staff: Option<(String, String)>,
}

impl Names {
    fn is_empty(&self) -> bool {
        self.child.is_none() && self.grade.is_none() && self.class.is_none() && self.staff.is_none()
    }

    /// Puts the ids the names stand for into the row (a row that gives the id keeps it, and
    /// its names must agree with it). Returns the fields left without an id because their
    /// name did not resolve (their "missing" error is this one's).
    fn resolve(
        &self,
        people: &People,
        flat: &mut Vec<(String, String)>,
        problems: &mut Vec<(Option<String>, Problem)>,
    ) -> Vec<&'static str> {
        let mut unresolved = Vec::new();
        let given = |flat: &Vec<(String, String)>, field: &str| {
            flat.iter()
                .find(|(p, _)| p == field)
                .map(|(_, v)| v.clone())
        };
        let actor_school =
            given(flat, "actor").and_then(|a| people.staff(&a).map(|e| e.school.clone()));
        if let Some((name, title)) = &self.staff {
            match given(flat, "staff") {
                Some(id) => {
                    if let Some(e) = people.staff(&id)
                        && e.name != *name
                    {
                        problems.push((
                            Some(title.clone()),
                            Problem::field(
                                "staff",
                                format!("the name of staff member {id} ({})", e.name),
                                Some(quote(name)),
                            ),
                        ));
                    }
                }
                None => match people.staff_named(actor_school.as_deref(), name).as_slice() {
                    [one] => flat.push(("staff".to_owned(), (*one).to_owned())),
                    found => {
                        unresolved.push("staff");
                        problems
                            .push((Some(title.clone()), ambiguous("staff member", name, found)));
                    }
                },
            }
        }
        let (Some((name, title)), grade, class) = (&self.child, &self.grade, &self.class) else {
            return unresolved;
        };
        let number = |cell: &Option<(String, String)>| {
            cell.as_ref().and_then(|(t, _)| t.parse::<u32>().ok())
        };
        let (Some(g), Some(c)) = (number(grade), number(class)) else {
            unresolved.push("child");
            problems.push((
                Some(title.clone()),
                Problem::field(
                    "child",
                    "年级 and 班级 as numbers beside 儿童姓名 (or a 儿童编号)",
                    Some("a name without its grade and class".to_owned()),
                ),
            ));
            return unresolved;
        };
        let g = u8::try_from(g).unwrap_or(u8::MAX);
        let staff_school =
            given(flat, "staff").and_then(|s| people.staff(&s).map(|e| e.school.clone()));
        let school = staff_school.or(actor_school);
        match given(flat, "child") {
            Some(id) => {
                if let Some(e) = people.child(&id)
                    && (e.name != *name || e.grade != g || e.class != c)
                {
                    problems.push((
                        Some(title.clone()),
                        Problem::field(
                            "child",
                            format!(
                                "the name, grade and class of child {id} ({}, grade {}, class {})",
                                e.name, e.grade, e.class
                            ),
                            Some(format!("{}, grade {g}, class {c}", quote(name))),
                        ),
                    ));
                }
            }
            None => match people
                .children_named(school.as_deref(), name, g, c)
                .as_slice()
            {
                [one] => flat.push(("child".to_owned(), (*one).to_owned())),
                found => {
                    unresolved.push("child");
                    let who = format!("{name} of grade {g}, class {c}");
                    problems.push((Some(title.clone()), ambiguous("child", &who, found)));
                }
            },
        }
        unresolved
    }
}

/// No one or several by that name.
fn ambiguous(what: &str, name: &str, found: &[&str]) -> Problem {
    let id_column = if what == "child" {
        "儿童编号"
    } else {
        "教师编号"
    };
    let (expected, found) = match found {
        [] => (
            format!("a registered {what} of that name in the school (or a {id_column})"),
            format!("no {what} named {}", quote(name)),
        ),
        many => (
            format!("a name that only one {what} has in the school (or a {id_column})"),
            format!("{} candidates: {}", many.len(), many.join(", ")),
        ),
    };
    Problem::field(
        if what == "child" { "child" } else { "staff" },
        expected,
        Some(found),
    )
}

/// The key two columns must not share.
fn target_key(t: Target) -> String {
    match t {
        Target::Field(p) => p.to_owned(),
        Target::TimeOfDay => "occurred_at.time".to_owned(),
        Target::Parent(p, f) => format!("{}.{f}", p.as_str()),
        Target::ChildName => "child.name".to_owned(),
        Target::ChildGrade => "child.grade".to_owned(),
        Target::ChildClass => "child.class".to_owned(),
        Target::StaffName => "staff.name".to_owned(),
    }
}

/// The shape at a dotted wire path (envelope fields: `occurred_at` reads like a date-time).
fn path_shape<'s>(shape: &'s Shape, path: &str) -> Option<&'s Shape> {
    if path == "occurred_at" {
        return Some(&Shape::Time);
    }
    if ENVELOPE.contains(&path) {
        return None;
    }
    let segs: Vec<&str> = path.split('.').collect();
    shape.at(&segs)
}

/// The column title of a field path: the longest titled path that is the field or holds it
/// (`hardship` for `hardship.1`).
fn column_of(titles: &BTreeMap<String, String>, field: &str) -> Option<String> {
    let mut path = field;
    loop {
        if let Some(t) = titles.get(path) {
            return Some(t.clone());
        }
        path = &path[..path.rfind('.')?];
    }
}

/// Says what a spreadsheet cell should hold where validation says what a wire value should.
fn spreadsheet_expected(shape: &Shape, expected: &str) -> String {
    let enum_labels = |variants: &[&str]| {
        labels::of_variants(variants)
            .map(|l| format!("one of {} (or {})", l.zh.join(", "), l.wire.join(", ")))
    };
    match shape {
        Shape::Enum(v) if expected.starts_with("one of ") => {
            enum_labels(v).unwrap_or_else(|| expected.to_owned())
        }
        Shape::List(inner) => match inner.as_ref() {
            Shape::Enum(v) if expected.starts_with("one of ") => {
                enum_labels(v).unwrap_or_else(|| expected.to_owned())
            }
            _ => expected.to_owned(),
        },
        Shape::Bool if expected == "true or false" => "是 or 否 (or true, false)".to_owned(),
        Shape::Date if expected == Shape::Date.to_string() => {
            "a date (a date cell, 2025-09-01, 2025/9/1 or 2025年9月1日)".to_owned()
        }
        Shape::Time if expected == Shape::Time.to_string() => {
            "a date (a date cell, 2025-09-01, 2025/9/1 or 2025年9月1日), or a date and time"
                .to_owned()
        }
        _ => expected.to_owned(),
    }
}

/// A cell as plain text, as a person reads it: numbers without a needless `.0`, date cells
/// as `YYYY-MM-DD` (with ` HH:MM:SS` when they hold a time).
pub fn text_of(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if dt.as_f64() < 1.0 {
                format!("{h:02}:{mi:02}")
            } else if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+08:00")
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Error(e) => e.to_string(),
    }
}

/// A number as text: whole numbers without a fraction (a phone number stored as a number
/// reads back as its digits).
fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// A cell as the text the CSV form would hold for a field of `shape`: dates in `YYYY-MM-DD`
/// from date cells, serial numbers and the usual written forms; labels of closed
/// vocabularies and 是/否 as wire names; list items separated by `;`. A cell that does not
/// read as its shape stays as written, for validation to report.
fn cell_text(cell: &Data, shape: Option<&Shape>) -> String {
    let text = text_of(cell);
    match shape {
        Some(Shape::Date) => match cell {
            Data::Float(f) => serial_date(*f).unwrap_or(text),
            Data::Int(i) => serial_date(*i as f64).unwrap_or(text),
            _ => loose_date(&text).unwrap_or(text),
        },
        Some(Shape::Time) => match cell {
            Data::Float(f) => serial_date(*f).unwrap_or(text),
            Data::Int(i) => serial_date(*i as f64).unwrap_or(text),
            _ => loose_date(&text).unwrap_or(text),
        },
        Some(Shape::Bool) => match text.as_str() {
            "是" | "√" => "true".to_owned(),
            "否" | "×" => "false".to_owned(),
            _ => text,
        },
        Some(Shape::Enum(v)) => labels::of_variants(v)
            .and_then(|l| l.wire_of(&text))
            .map_or(text, str::to_owned),
        Some(Shape::List(inner)) => {
            let items: Vec<String> = text
                .split(LIST_SEPARATORS)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|item| match inner.as_ref() {
                    Shape::Enum(v) => labels::of_variants(v)
                        .and_then(|l| l.wire_of(item))
                        .map_or_else(|| item.to_owned(), str::to_owned),
                    _ => item.to_owned(),
                })
                .collect();
            items.join(";")
        }
        _ => text,
    }
}

/// An Excel serial day number (1900 system) as a date, for whole numbers in a plausible
/// range (1900-03-01 to 9999-12-31).
fn serial_date(f: f64) -> Option<String> {
    if !f.is_finite() || f.fract() != 0.0 || !(61.0..=2_958_465.0).contains(&f) {
        return None;
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let d = epoch.checked_add_signed(chrono::Duration::days(f as i64))?;
    Some(d.format("%Y-%m-%d").to_string())
}

/// `2025/9/1`, `2025.9.1`, `2025-9-1` and `2025年9月1日` as `2025-09-01`; anything else `None`.
pub fn loose_date(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t.strip_suffix('日').unwrap_or(t);
    let parts: Vec<&str> = t.split(['/', '.', '-', '年', '月']).collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    Some(date.format("%Y-%m-%d").to_string())
}

/// A time-of-day cell as text: time cells as `HH:MM`, fractions of a day likewise.
fn time_text(cell: &Data) -> String {
    match cell {
        Data::Float(f) if (0.0..1.0).contains(f) => {
            let secs = (f * 86_400.0).round() as u32;
            format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
        }
        _ => text_of(cell),
    }
}

/// `HH:MM` or `HH:MM:SS` (or `16时40分`) as `HH:MM:SS`.
fn hm(s: &str) -> Option<String> {
    let t = s.trim().trim_end_matches('分');
    let parts: Vec<&str> = t.split([':', '：', '时']).collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (h, m, &"0"),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    let (h, m, sec): (u32, u32, u32) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    chrono::NaiveTime::from_hms_opt(h, m, sec).map(|t| t.format("%H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_in_the_forms_schools_write() {
        assert_eq!(loose_date("2025/9/1").as_deref(), Some("2025-09-01"));
        assert_eq!(loose_date("2025年9月1日").as_deref(), Some("2025-09-01"));
        assert_eq!(loose_date("2025-09-01").as_deref(), Some("2025-09-01"));
        assert_eq!(loose_date("2025/2/30"), None);
        assert_eq!(loose_date("下周一"), None);
        assert_eq!(serial_date(45901.0).as_deref(), Some("2025-09-01"));
        assert_eq!(serial_date(45901.5), None);
    }

    #[test]
    fn cells_take_the_form_their_field_needs() {
        let gender = shape::of(EventKind::ChildRegistered)
            .at(&["gender"])
            .cloned();
        assert_eq!(
            cell_text(&Data::String("女".into()), gender.as_ref()),
            "female"
        );
        assert_eq!(
            cell_text(&Data::String("未知".into()), gender.as_ref()),
            "未知"
        );
        assert_eq!(
            cell_text(&Data::Float(13_908_561_201.0), Some(&Shape::Str)),
            "13908561201"
        );
        assert_eq!(
            cell_text(&Data::String("是".into()), Some(&Shape::Bool)),
            "true"
        );
        let hardship = shape::of(EventKind::ChildRegistered)
            .at(&["hardship"])
            .cloned();
        assert_eq!(
            cell_text(&Data::String("贫困、单亲".into()), hardship.as_ref()),
            "poverty;single_parent"
        );
        assert_eq!(hm("16:40").as_deref(), Some("16:40:00"));
        assert_eq!(hm("25:00"), None);
        assert_eq!(time_text(&Data::Float(0.5)), "12:00");
    }
}
