//! Blank form templates (`careledger template`) and filled workbooks, written from the same
//! form table the reader follows (`forms`), so that what a school fills in imports.
//!
//! A template sheet has the form's header (two rows with merged groups when the form has
//! grouped columns), one sample row (skipped on import while left unchanged), column widths,
//! drop-down lists of the Chinese labels of closed vocabularies, 是/否 lists and date cells.
//! This module owns that layout; it returns bytes and must never write a file or the log.
//! No cell it writes can start a formula: text starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is marked as text (Excel's quote prefix), so its value stays unchanged.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use events::EventKind;
use events::labels;
use rust_xlsxwriter::{
    DataValidation, DataValidationRule, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook,
    Worksheet, XlsxError,
};
use serde_json::{Map, Value};

use crate::forms::{self, Column, Target};
use crate::shape::{self, Shape};
use crate::wire::{self, ENVELOPE};

/// Why a workbook could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// An event has a field no column of its form can hold.
    #[error("{kind}: no form and no one-cell-per-field layout for field {field}")]
    NoColumn {
        /// The event type.
        kind: EventKind,
        /// The wire field without a column.
        field: String,
    },
    /// An event given to `workbook` is not the wire object of its sheet's type.
    #[error("{kind}: event {row} is not a wire object of that type")]
    NotAnEvent {
        /// The sheet's event type.
        kind: EventKind,
        /// Its position among that sheet's events.
        row: usize,
    },
    /// rust_xlsxwriter refused.
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
}

/// How many rows below the header carry the drop-downs and date formats.
const VALIDATED_ROWS: u32 = 2000;

/// A blank workbook with one sheet per type (in the order given): header, sample row,
/// widths and validation.
pub fn template(kinds: &[EventKind]) -> Result<Vec<u8>, TemplateError> {
    let mut book = Workbook::new();
    for &kind in kinds {
        let layout = Layout::of(kind);
        let sheet = book.add_worksheet();
        let first = layout.header(sheet, kind)?;
        layout.validate(sheet, first)?;
        layout.sample(sheet, first)?;
    }
    Ok(book.save_to_buffer()?)
}

/// A workbook holding these events (wire objects, as JSONL lines without `type`), one sheet
/// per type in the order given, in the form's layout: what `import` reads back as the same
/// events.
pub fn workbook(sheets: &[(EventKind, Vec<Map<String, Value>>)]) -> Result<Vec<u8>, TemplateError> {
    let mut book = Workbook::new();
    for (kind, rows) in sheets {
        let layout = Layout::of(*kind);
        let sheet = book.add_worksheet();
        let first = layout.header(sheet, *kind)?;
        layout.validate(sheet, first)?;
        for (i, obj) in rows.iter().enumerate() {
            let r = first + u32::try_from(i).unwrap_or(u32::MAX - first);
            layout.write_event(sheet, r, *kind, obj, i)?;
        }
    }
    Ok(book.save_to_buffer()?)
}

/// The columns of one sheet.
struct Layout {
    name: String,
    columns: Vec<Column>,
    parents: &'static str,
}

impl Layout {
    fn of(kind: EventKind) -> Layout {
        match forms::form_of(kind) {
            Some(f) => Layout {
                name: f.name.to_owned(),
                columns: f
                    .columns
                    .iter()
                    .filter(|c| c.target != Target::Field("id"))
                    .copied()
                    .collect(),
                parents: f.parents,
            },
            None => Layout {
                name: kind.as_str().to_owned(),
                columns: dotted_columns(kind).to_vec(),
                parents: "",
            },
        }
    }

    fn grouped(&self) -> bool {
        self.columns.iter().any(|c| c.group.is_some())
    }

    /// Writes the header; returns the first data row.
    fn header(&self, sheet: &mut Worksheet, _kind: EventKind) -> Result<u32, TemplateError> {
        sheet.set_name(&self.name)?;
        let head = Format::new()
            .set_bold()
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter)
            .set_border(FormatBorder::Thin)
            .set_text_wrap();
        let two = self.grouped();
        let mut i = 0;
        while i < self.columns.len() {
            let c = self.columns[i];
            let col = col_num(i);
            let width =
                (display_width(&c.flat_title()).max(display_width(c.sample)) + 2).clamp(8, 40);
            sheet.set_column_width(col, width as f64)?;
            match (two, c.group) {
                (false, _) => {
                    sheet.write_string_with_format(0, col, c.title, &head)?;
                }
                (true, None) => {
                    sheet.merge_range(0, col, 1, col, c.title, &head)?;
                }
                (true, Some(g)) => {
                    let mut j = i;
                    while j + 1 < self.columns.len() && self.columns[j + 1].group == Some(g) {
                        j += 1;
                    }
                    if j > i {
                        sheet.merge_range(0, col, 0, col_num(j), g, &head)?;
                    } else {
                        sheet.write_string_with_format(0, col, g, &head)?;
                    }
                    for k in i..=j {
                        let kc = col_num(k);
                        let w = (display_width(self.columns[k].title)
                            .max(display_width(self.columns[k].sample))
                            + 2)
                        .clamp(8, 40);
                        sheet.set_column_width(kc, w as f64)?;
                        sheet.write_string_with_format(1, kc, self.columns[k].title, &head)?;
                    }
                    i = j + 1;
                    continue;
                }
            }
            i += 1;
        }
        let first = if two { 2 } else { 1 };
        sheet.set_freeze_panes(first, 0)?;
        Ok(first)
    }

    /// Drop-downs for closed vocabularies and 是/否, date validation for dates.
    fn validate(&self, sheet: &mut Worksheet, first: u32) -> Result<(), TemplateError> {
        let last = first + VALIDATED_ROWS;
        let date_format = Format::new().set_num_format("yyyy-mm-dd");
        for (i, c) in self.columns.iter().enumerate() {
            let col = col_num(i);
            let dv = match self.shape_of(c) {
                Some(Shape::Enum(v)) => match labels::of_variants(v) {
                    Some(l) => Some(
                        DataValidation::new()
                            .allow_list_strings(l.zh)?
                            .set_error_message(format!("请从列表中选择：{}", l.zh.join("、")))?,
                    ),
                    None => None,
                },
                Some(Shape::Bool) => Some(DataValidation::new().allow_list_strings(&["是", "否"])?),
                Some(Shape::List(inner)) => match inner.as_ref() {
                    Shape::Enum(v) => labels::of_variants(v)
                        .map(|l| {
                            DataValidation::new()
                                .allow_any_value()
                                .set_input_message(format!(
                                    "可填多项，用“；”分隔：{}",
                                    l.zh.join("、")
                                ))
                        })
                        .transpose()?,
                    _ => None,
                },
                Some(Shape::Date) | Some(Shape::Time) if c.target != Target::TimeOfDay => {
                    sheet.set_column_format(col, &date_format)?;
                    Some(
                        DataValidation::new()
                            .allow_date(DataValidationRule::Between(
                                ExcelDateTime::from_ymd(1900, 1, 1)?,
                                ExcelDateTime::from_ymd(2100, 12, 31)?,
                            ))
                            .set_error_message("请填写日期，如 2025-09-01")?,
                    )
                }
                _ => None,
            };
            if let Some(dv) = dv {
                sheet.add_data_validation(first, col, last, col, &dv)?;
            }
        }
        Ok(())
    }

    /// The sample row, typed as a school would type it.
    fn sample(&self, sheet: &mut Worksheet, r: u32) -> Result<(), TemplateError> {
        for (i, c) in self.columns.iter().enumerate() {
            if c.sample.is_empty() {
                continue;
            }
            let value = Cell::Text(c.sample.to_owned());
            let value = match (self.shape_of(c), c.sample.parse::<f64>()) {
                (Some(Shape::UInt | Shape::Int | Shape::Float), Ok(n)) => Cell::Number(n),
                (Some(Shape::Date | Shape::Time), _) if c.target != Target::TimeOfDay => {
                    crate::xlsx::loose_date(c.sample).map_or(value, Cell::Date)
                }
                _ => value,
            };
            value.write(sheet, r, col_num(i))?;
        }
        Ok(())
    }

    /// The schema shape of a column's cells (`occurred_at` as an instant).
    fn shape_of(&self, c: &Column) -> Option<&'static Shape> {
        match c.target {
            Target::Field("occurred_at") => Some(&Shape::Time),
            Target::Field(p) if ENVELOPE.contains(&p) => None,
            Target::Field(p) => self.kind_shape().and_then(|s| {
                let segs: Vec<&str> = p.split('.').collect();
                s.at(&segs)
            }),
            Target::ChildGrade | Target::ChildClass => Some(&Shape::UInt),
            Target::TimeOfDay | Target::ChildName | Target::StaffName => None,
            Target::Parent(_, f) => self
                .kind_shape()
                .and_then(|s| s.at(&[self.parents, "0", f])),
        }
    }

    fn kind_shape(&self) -> Option<&'static Shape> {
        forms::sheet_kind(&self.name).map(shape::of)
    }

    /// One event as a row.
    fn write_event(
        &self,
        sheet: &mut Worksheet,
        r: u32,
        kind: EventKind,
        obj: &Map<String, Value>,
        index: usize,
    ) -> Result<(), TemplateError> {
        let mut used: Vec<String> = Vec::new();
        let when = obj
            .get("occurred_at")
            .and_then(Value::as_str)
            .ok_or(TemplateError::NotAnEvent { kind, row: index })?;
        let (date, time) =
            local_parts(when).ok_or(TemplateError::NotAnEvent { kind, row: index })?;
        for (i, c) in self.columns.iter().enumerate() {
            let col = col_num(i);
            let cell = match c.target {
                Target::Field("occurred_at") => {
                    used.push("occurred_at".to_owned());
                    Some(Cell::Date(date.clone()))
                }
                Target::TimeOfDay => time.clone().map(Cell::Text),
                // The event names its child and staff by id; the name columns stay empty.
                Target::ChildName | Target::ChildGrade | Target::ChildClass | Target::StaffName => {
                    None
                }
                Target::Field(p) => {
                    let v = at_path(obj, p);
                    if v.is_some() {
                        used.push(p.to_owned());
                    }
                    v.map(|v| self.cell(c, v))
                }
                Target::Parent(p, f) => {
                    let entries = at_path(obj, self.parents).and_then(Value::as_array);
                    let found = entries.and_then(|list| {
                        list.iter().enumerate().find(|(_, e)| {
                            e.get("relation").and_then(Value::as_str) == Some(p.as_str())
                        })
                    });
                    found.and_then(|(n, e)| {
                        used.push(format!("{}.{n}.relation", self.parents));
                        e.get(f).map(|v| {
                            used.push(format!("{}.{n}.{f}", self.parents));
                            self.cell(c, v)
                        })
                    })
                }
            };
            if let Some(cell) = cell {
                cell.write(sheet, r, col)?;
            }
        }
        // Every field of the event must have found a column, or the row would lose it.
        let mut leaves_of = Vec::new();
        wire_leaves(
            &Value::Object(obj.clone()),
            &mut String::new(),
            &mut leaves_of,
        );
        for leaf in leaves_of {
            if leaf == "type" || leaf == "recorded_at" {
                continue;
            }
            if !used
                .iter()
                .any(|u| *u == leaf || leaf.starts_with(&format!("{u}.")))
            {
                return Err(TemplateError::NoColumn { kind, field: leaf });
            }
        }
        Ok(())
    }

    /// A wire value as the cell a school would write.
    fn cell(&self, c: &Column, v: &Value) -> Cell {
        let shape = self.shape_of(c);
        match (shape, v) {
            (Some(Shape::Enum(vs)), Value::String(s)) => Cell::Text(
                labels::of_variants(vs)
                    .and_then(|l| l.zh_of(s))
                    .unwrap_or(s)
                    .to_owned(),
            ),
            (Some(Shape::List(inner)), Value::Array(items)) => {
                let label = |s: &str| match inner.as_ref() {
                    Shape::Enum(vs) => labels::of_variants(vs)
                        .and_then(|l| l.zh_of(s))
                        .unwrap_or(s)
                        .to_owned(),
                    _ => s.to_owned(),
                };
                Cell::Text(
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), label))
                        .collect::<Vec<_>>()
                        .join("；"),
                )
            }
            (_, Value::Bool(b)) => Cell::Text(labels::yes_no(*b).to_owned()),
            (Some(Shape::Date), Value::String(s)) => Cell::Date(s.clone()),
            (_, Value::Number(n)) => n.as_f64().map_or(Cell::Text(n.to_string()), Cell::Number),
            (_, Value::String(s)) => Cell::Text(s.clone()),
            (_, other) => Cell::Text(other.to_string()),
        }
    }
}

/// A cell to write.
enum Cell {
    Text(String),
    Number(f64),
    /// `YYYY-MM-DD`, written as a date cell.
    Date(String),
}

impl Cell {
    fn write(self, sheet: &mut Worksheet, r: u32, c: u16) -> Result<(), TemplateError> {
        match self {
            Cell::Text(s) => {
                if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    sheet.write_string_with_format(r, c, &s, &Format::new().set_quote_prefix())?;
                } else {
                    sheet.write_string(r, c, &s)?;
                }
            }
            Cell::Number(n) => {
                sheet.write_number(r, c, n)?;
            }
            Cell::Date(d) => match ExcelDateTime::parse_from_str(&d) {
                Ok(dt) => {
                    let f = Format::new().set_num_format("yyyy-mm-dd");
                    sheet.write_datetime_with_format(r, c, &dt, &f)?;
                }
                Err(_) => {
                    sheet.write_string(r, c, &d)?;
                }
            },
        }
        Ok(())
    }
}

/// The date (`YYYY-MM-DD`) and the time of day (`HH:MM`, or `HH:MM:SS`; `None` at midnight)
/// of a wire instant, at +08:00.
fn local_parts(when: &str) -> Option<(String, Option<String>)> {
    let t = wire::parse_instant(when)?;
    let local = t.with_timezone(&events::time::school_tz());
    let date = local.format("%Y-%m-%d").to_string();
    let time = local.format("%H:%M:%S").to_string();
    let time = match time.as_str() {
        "00:00:00" => None,
        t if t.ends_with(":00") => Some(t[..5].to_owned()),
        t => Some(t.to_owned()),
    };
    Some((date, time))
}

fn at_path<'v>(obj: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut segs = path.split('.');
    let mut v = obj.get(segs.next()?)?;
    for s in segs {
        v = match v {
            Value::Object(m) => m.get(s)?,
            Value::Array(a) => a.get(s.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The dotted paths of a wire object's values (lists of plain values count as one).
fn wire_leaves(v: &Value, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                wire_leaves(child, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!(".{i}"));
                wire_leaves(child, path, out);
                path.truncate(len);
            }
        }
        Value::Null => {}
        Value::Array(items) if items.is_empty() => {}
        Value::String(s) if s.is_empty() => {}
        _ => out.push(path.clone()),
    }
}

/// One dotted column per leaf field of a shape (lists of objects and free maps have no
/// one-cell form and are left out).
fn leaves(shape: &Shape, path: &mut Vec<&'static str>, out: &mut Vec<Column>) {
    if let Shape::Object(fields) = shape {
        for (name, s) in fields {
            path.push(name);
            match s {
                Shape::Object(_) => leaves(s, path, out),
                Shape::Map(_) | Shape::Any => {}
                Shape::List(inner) if matches!(inner.as_ref(), Shape::Object(_)) => {}
                _ => out.push(dotted(leak(path.join(".")))),
            }
            path.pop();
        }
    }
}

/// The columns of a type without a form: the CSV form's dotted names, one per field. Built
/// once per program (the titles are leaked once, as the form table's are static).
fn dotted_columns(kind: EventKind) -> &'static [Column] {
    static COLUMNS: OnceLock<BTreeMap<EventKind, Vec<Column>>> = OnceLock::new();
    let all = COLUMNS.get_or_init(|| {
        EventKind::ALL
            .into_iter()
            .map(|k| {
                let mut columns = vec![dotted("occurred_at"), dotted("actor")];
                leaves(shape::of(k), &mut Vec::new(), &mut columns);
                (k, columns)
            })
            .collect()
    });
    all.get(&kind).map_or(&[], Vec::as_slice)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn dotted(path: &'static str) -> Column {
    Column {
        target: Target::Field(path),
        group: None,
        title: path,
        aliases: &[],
        sample: "",
    }
}

fn col_num(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

/// Display width counting CJK characters as two columns.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}
