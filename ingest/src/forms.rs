//! The paper forms schools keep (留守儿童登记表, 亲情电话登记, 谈心记录, 家访记录, …) as one
//! table: for each form its event type, its sheet names and its columns (Chinese title, the
//! merged group above it in a two-row header, the wire field it fills, a sample value).
//!
//! The spreadsheet reader (`xlsx`) and the template writer (`template`) both read this table
//! and nothing else, so a template always imports. This module owns the table; it must never
//! read cells or judge values (a column says where a cell goes, decoding says if it is right).

use events::EventKind;
use events::event::Parent;

/// Where a column's cells go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A wire field at a dotted path: an envelope field (`id`, `actor`, `occurred_at`) or a
    /// payload field (`guardian.phone`).
    Field(&'static str),
    /// The time of day of `occurred_at` (通话时间), beside the date column.
    TimeOfDay,
    /// A field of the father's or the mother's entry in the form's parents list: the entry's
    /// `relation` is the group, and the list holds the father first, then the mother, each
    /// only when one of its cells is filled.
    Parent(Parent, &'static str),
    /// The child's name: with `ChildGrade` and `ChildClass`, names the child of a row that
    /// has no child id (the one child so named in the school).
    ChildName,
    /// The child's grade, beside `ChildName`.
    ChildGrade,
    /// The child's class, beside `ChildName`.
    ChildClass,
    /// The staff member's name: names the staff member of a row that has no staff id (the
    /// one staff member so named in the school).
    StaffName,
}

/// One column of a form.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// What the column's cells fill: a wire field, a parent's field, or a name to look up.
    pub target: Target,
    /// The merged cell above the title in a two-row header (父亲 above 姓名 / 电话).
    pub group: Option<&'static str>,
    /// The title (under the group, if any).
    pub title: &'static str,
    /// Other single-row titles schools use for the column (学籍号 for 编号).
    pub aliases: &'static [&'static str],
    /// The template's sample value, as the reader renders the cell (dates `YYYY-MM-DD`).
    pub sample: &'static str,
}

impl Column {
    /// The single-row title: the group and the title run together (父亲姓名).
    pub fn flat_title(&self) -> String {
        match self.group {
            Some(g) => format!("{g}{}", self.title),
            None => self.title.to_owned(),
        }
    }

    /// The title as error messages show it (父亲/姓名).
    pub fn shown_title(&self) -> String {
        match self.group {
            Some(g) => format!("{g}/{}", self.title),
            None => self.title.to_owned(),
        }
    }

    /// Whether a single-row header cell may name this column: its flat title, an alias, or
    /// the group followed by an alias (父亲联系电话). A bare alias of a grouped column
    /// (与儿童关系) names it only when no other column has it (see `Form::column_for_flat`).
    pub fn matches_flat(&self, title: &str) -> bool {
        self.flat_title() == title
            || self.aliases.contains(&title)
            || self
                .group
                .is_some_and(|g| self.aliases.iter().any(|a| format!("{g}{a}") == title))
    }

    /// Whether a two-row header (group above, title below) names this column.
    pub fn matches_grouped(&self, group: &str, title: &str) -> bool {
        self.group == Some(group) && (self.title == title || self.aliases.contains(&title))
    }
}

/// A school form: one event type.
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// The event type every row of the sheet becomes.
    pub kind: EventKind,
    /// The sheet name the template gives it.
    pub name: &'static str,
    /// Other sheet names that mean this form (留守儿童登记表 / 留守儿童花名册).
    pub aliases: &'static [&'static str],
    /// The wire path of the list the `Target::Parent` columns fill.
    pub parents: &'static str,
    /// The columns, in the order the template writes them.
    pub columns: &'static [Column],
}

impl Form {
    /// The column a single-row header cell names, if exactly one column answers to it.
    pub fn column_for_flat(&self, title: &str) -> Option<&'static Column> {
        let mut found = self.columns.iter().filter(|c| c.matches_flat(title));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// The column a two-row header (group above, title below) names.
    pub fn column_for_grouped(&self, group: &str, title: &str) -> Option<&'static Column> {
        self.columns
            .iter()
            .find(|c| c.matches_grouped(group, title))
            .or_else(|| self.column_for_flat(&format!("{group}{title}")))
    }
}

const fn col(path: &'static str, title: &'static str, sample: &'static str) -> Column {
    Column {
        target: Target::Field(path),
        group: None,
        title,
        aliases: &[],
        sample,
    }
}

const fn alias(
    path: &'static str,
    title: &'static str,
    aliases: &'static [&'static str],
    sample: &'static str,
) -> Column {
    Column {
        target: Target::Field(path),
        group: None,
        title,
        aliases,
        sample,
    }
}

const fn grouped(
    path: &'static str,
    group: &'static str,
    title: &'static str,
    aliases: &'static [&'static str],
    sample: &'static str,
) -> Column {
    Column {
        target: Target::Field(path),
        group: Some(group),
        title,
        aliases,
        sample,
    }
}

const fn parent(
    p: Parent,
    field: &'static str,
    title: &'static str,
    aliases: &'static [&'static str],
    sample: &'static str,
) -> Column {
    Column {
        target: Target::Parent(p, field),
        group: Some(match p {
            Parent::Father => "父亲",
            Parent::Mother => "母亲",
        }),
        title,
        aliases,
        sample,
    }
}

const fn time(title: &'static str, sample: &'static str) -> Column {
    Column {
        target: Target::TimeOfDay,
        group: None,
        title,
        aliases: &["时间"],
        sample,
    }
}

const fn date(title: &'static str, sample: &'static str) -> Column {
    Column {
        target: Target::Field("occurred_at"),
        group: None,
        title,
        aliases: &["日期"],
        sample,
    }
}

const ACTOR: Column = alias("actor", "记录人", &["填表人", "登记人"], "t-01");
const ID: Column = alias("id", "记录编号", &[], "");
const STAFF: Column = alias("staff", "教师编号", &["帮扶教师编号"], "t-01");
const CHILD: Column = alias("child", "儿童编号", &["学生编号", "学籍号"], "c-0001");
const fn lookup(
    target: Target,
    title: &'static str,
    aliases: &'static [&'static str],
    sample: &'static str,
) -> Column {
    Column {
        target,
        group: None,
        title,
        aliases,
        sample,
    }
}
const STAFF_NAME: Column = lookup(
    Target::StaffName,
    "教师姓名",
    &["帮扶教师"],
    "王老师（示例）",
);
const CHILD_NAME: Column = lookup(
    Target::ChildName,
    "儿童姓名",
    &["学生姓名"],
    "张小明（示例）",
);
const CHILD_GRADE: Column = lookup(Target::ChildGrade, "年级", &[], "7");
const CHILD_CLASS: Column = lookup(Target::ChildClass, "班级", &[], "1");

/// The parent columns of a form that lists the father and the mother.
macro_rules! parents {
    ($p:expr, $name:literal, $phone:literal) => {
        [
            parent($p, "name", "姓名", &[], $name),
            parent($p, "work_place", "务工地", &["务工地点"], "广东省东莞市"),
            parent(
                $p,
                "employer_address",
                "务工单位地址",
                &["单位地址"],
                "东莞市长安镇某电子厂",
            ),
            parent($p, "phone", "电话", &["联系电话"], $phone),
            parent($p, "away", "是否外出", &["外出"], "是"),
        ]
    };
}

const FATHER: [Column; 5] = parents!(Parent::Father, "张大山", "13800000001");
const MOTHER: [Column; 5] = parents!(Parent::Mother, "李秀兰", "13800000002");

const GUARDIAN: [Column; 9] = [
    grouped("guardian.name", "监护人", "姓名", &[], "张老汉"),
    grouped(
        "guardian.relation",
        "监护人",
        "与儿童关系",
        &["与儿童关系", "关系"],
        "祖父母",
    ),
    grouped("guardian.age", "监护人", "年龄", &[], "66"),
    grouped(
        "guardian.health",
        "监护人",
        "健康状况",
        &["健康状况"],
        "良好",
    ),
    grouped(
        "guardian.education",
        "监护人",
        "文化程度",
        &["文化程度"],
        "小学",
    ),
    grouped("guardian.occupation", "监护人", "职业", &[], "务农"),
    grouped("guardian.address", "监护人", "住址", &[], "某县某镇某村"),
    grouped(
        "guardian.phone",
        "监护人",
        "电话",
        &["联系电话"],
        "13800000003",
    ),
    grouped(
        "guardian.capability",
        "监护人",
        "监护能力",
        &["监护能力"],
        "好",
    ),
];

const fn concat<const A: usize, const B: usize, const C: usize, const D: usize, const N: usize>(
    a: [Column; A],
    b: [Column; B],
    c: [Column; C],
    d: [Column; D],
) -> [Column; N] {
    let mut out = [ID; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    let mut k = 0;
    while k < C {
        out[A + B + k] = c[k];
        k += 1;
    }
    let mut l = 0;
    while l < D {
        out[A + B + C + l] = d[l];
        l += 1;
    }
    out
}

const CHILD_HEAD: [Column; 12] = [
    alias("child", "编号", &["学籍号", "儿童编号"], "c-0001"),
    alias("school", "学校编号", &["学校"], "s-01"),
    alias("name", "姓名", &["学生姓名", "儿童姓名"], "张小明（示例）"),
    col("gender", "性别", "男"),
    col("birth_date", "出生日期", "2013-03-14"),
    col("grade", "年级", "7"),
    col("class", "班级", "1"),
    alias("address", "家庭住址", &["住址"], "某县某镇某村一组"),
    alias("boarding", "是否寄宿", &["寄宿"], "否"),
    col("left_behind_type", "留守类型", "父母均外出"),
    alias("hardship", "困难类型", &["困难情况"], "贫困"),
    col("focus", "重点关注", "学习"),
];
const CHILD_PARENTS: [Column; 10] = concat(FATHER, MOTHER, [], []);
const CHILD_TAIL: [Column; 4] = [
    date("登记日期", "2025-08-29"),
    time("登记时间", "14:00"),
    ACTOR,
    ID,
];
const CHILD_COLUMNS: [Column; 35] = concat(CHILD_HEAD, CHILD_PARENTS, GUARDIAN, CHILD_TAIL);

const PARENT_UPDATE_HEAD: [Column; 1] = [alias("child", "编号", &["学籍号", "儿童编号"], "c-0001")];
const PARENT_UPDATE_TAIL: [Column; 4] = [
    date("登记日期", "2025-09-01"),
    time("登记时间", "08:00"),
    ACTOR,
    ID,
];
const PARENT_UPDATE_COLUMNS: [Column; 15] =
    concat(PARENT_UPDATE_HEAD, FATHER, MOTHER, PARENT_UPDATE_TAIL);

/// Every form careledger reads (and writes as a template), in the order the template puts them.
pub const FORMS: &[Form] = &[
    Form {
        kind: EventKind::StaffJoined,
        name: "教职工登记表",
        aliases: &["教师登记表"],
        parents: "",
        columns: &[
            alias("staff", "教师编号", &["编号", "工号"], "t-01"),
            alias("school", "学校编号", &["学校"], "s-01"),
            col("name", "姓名", "王老师（示例）"),
            alias("roles", "职务", &["岗位"], "班主任；任课教师"),
            alias("party_member", "是否党员", &["党员"], "是"),
            alias("phone", "电话", &["联系电话"], "13900000001"),
            date("入职日期", "2015-09-01"),
            time("入职时间", ""),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::ChildRegistered,
        name: "留守儿童登记表",
        aliases: &["留守儿童花名册"],
        parents: "parents",
        columns: &CHILD_COLUMNS,
    },
    Form {
        kind: EventKind::ChildUpdated,
        name: "留守儿童父母登记表",
        aliases: &[],
        parents: "changes.parents",
        columns: &PARENT_UPDATE_COLUMNS,
    },
    Form {
        kind: EventKind::PairingAssigned,
        name: "结对帮扶登记表",
        aliases: &["结对帮扶表"],
        parents: "",
        columns: &[
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("role", "结对类型", &["帮扶类型"], "帮扶教师"),
            alias("from", "开始日期", &["结对日期"], "2025-09-01"),
            date("登记日期", "2025-08-29"),
            time("登记时间", ""),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::TalkHeld,
        name: "谈心记录",
        aliases: &["谈心记录表", "谈心谈话记录"],
        parents: "",
        columns: &[
            date("谈心日期", "2025-09-01"),
            time("谈心时间", "16:40"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("topic", "谈心主题", &["主题"], "想念父母"),
            alias(
                "summary",
                "谈心内容",
                &["内容"],
                "情绪低落，安慰并约好亲情电话",
            ),
            alias("mood", "情绪", &["情绪状况"], "低落"),
            alias("follow_up", "后续措施", &["跟进"], "下周再谈一次"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::FamilyCallArranged,
        name: "亲情电话登记",
        aliases: &["亲情电话登记表", "亲情电话登记记录", "亲情电话"],
        parents: "",
        columns: &[
            date("通话日期", "2025-09-03"),
            time("通话时间", "19:08"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("parent", "通话对象", &["父母"], "母亲"),
            alias("minutes", "通话时长（分钟）", &["通话时长", "时长"], "20"),
            alias("reason", "事由", &[], "中秋节前与父母通话"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::ParentCalled,
        name: "家长联系记录",
        aliases: &["与父母通话记录"],
        parents: "",
        columns: &[
            date("通话日期", "2025-09-11"),
            time("通话时间", "20:17"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("parent", "通话对象", &["父母"], "父亲"),
            alias("minutes", "通话时长（分钟）", &["通话时长", "时长"], "19"),
            alias("summary", "通话内容", &["内容"], "介绍期中考试成绩"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::GuardianContacted,
        name: "监护人联系记录",
        aliases: &[],
        parents: "",
        columns: &[
            date("联系日期", "2025-09-19"),
            time("联系时间", "17:30"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("mode", "联系方式", &["方式"], "电话"),
            alias("summary", "联系内容", &["内容"], "了解周末在家作息"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::ClassTeacherContacted,
        name: "班主任沟通记录",
        aliases: &[],
        parents: "",
        columns: &[
            date("沟通日期", "2025-09-26"),
            time("沟通时间", "16:00"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("summary", "沟通内容", &["内容"], "沟通英语学习和住校情况"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::HomeVisited,
        name: "家访记录",
        aliases: &["家访记录表", "上门看望记录"],
        parents: "",
        columns: &[
            date("家访日期", "2025-09-20"),
            time("家访时间", "10:00"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("met", "会见对象", &["见到"], "监护人；儿童"),
            alias("findings", "家访情况", &["情况"], "家中经济较困难"),
            alias("next_steps", "后续措施", &["跟进"], "下月电话回访监护人"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::LetterWritten,
        name: "书信记录",
        aliases: &[],
        parents: "",
        columns: &[
            date("日期", "2025-12-10"),
            time("时间", ""),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("direction", "书信方向", &["方向"], "儿童致父母"),
            alias("summary", "内容", &[], "写给在宁波的妈妈"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::WarmthVisited,
        name: "送温暖记录",
        aliases: &[],
        parents: "",
        columns: &[
            date("日期", "2025-12-13"),
            time("时间", ""),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("occasion", "事由", &["节日"], "冬季送温暖"),
            alias("items", "物品", &[], "棉被一床"),
            alias("value_yuan", "价值（元）", &["价值", "金额"], "260"),
            ACTOR,
            ID,
        ],
    },
    Form {
        kind: EventKind::Tutored,
        name: "学业辅导记录",
        aliases: &["辅导记录"],
        parents: "",
        columns: &[
            date("辅导日期", "2025-09-16"),
            time("辅导时间", "17:10"),
            STAFF,
            STAFF_NAME,
            CHILD,
            CHILD_NAME,
            CHILD_GRADE,
            CHILD_CLASS,
            alias("subject", "科目", &["学科"], "语文"),
            alias("minutes", "时长（分钟）", &["时长"], "40"),
            ACTOR,
            ID,
        ],
    },
];

/// The form of an event type, if it has one.
pub fn form_of(kind: EventKind) -> Option<&'static Form> {
    FORMS.iter().find(|f| f.kind == kind)
}

/// What a sheet name means: an event type by its wire name (`child_registered`) or a form by
/// its name. Surrounding spaces are ignored.
pub fn sheet_kind(name: &str) -> Option<EventKind> {
    let name = name.trim();
    EventKind::parse(name).or_else(|| {
        FORMS
            .iter()
            .find(|f| f.name == name || f.aliases.contains(&name))
            .map(|f| f.kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape;

    #[test]
    fn titles_and_sheet_names_are_unambiguous() {
        let mut sheets = Vec::new();
        for f in FORMS {
            for n in std::iter::once(&f.name).chain(f.aliases) {
                assert!(!sheets.contains(n), "sheet name {n} means two forms");
                assert!(EventKind::parse(n).is_none());
                sheets.push(*n);
            }
            for c in f.columns {
                let own = f.column_for_flat(&c.flat_title()).map(Column::shown_title);
                assert_eq!(own, Some(c.shown_title()), "{}: {}", f.name, c.flat_title());
                if let Some(g) = c.group {
                    let own = f.column_for_grouped(g, c.title).map(Column::shown_title);
                    assert_eq!(own, Some(c.shown_title()), "{}: {g}/{}", f.name, c.title);
                }
            }
        }
    }

    #[test]
    fn every_column_names_a_field_of_its_type() {
        for f in FORMS {
            let s = shape::of(f.kind);
            for c in f.columns {
                let path = match c.target {
                    Target::Field(p) => p.to_owned(),
                    Target::TimeOfDay
                    | Target::ChildName
                    | Target::ChildGrade
                    | Target::ChildClass
                    | Target::StaffName => continue,
                    Target::Parent(_, field) => format!("{}.0.{field}", f.parents),
                };
                if crate::wire::ENVELOPE.contains(&path.as_str()) {
                    continue;
                }
                let segs: Vec<&str> = path.split('.').collect();
                assert!(s.at(&segs).is_some(), "{}: {path} is not a field", f.name);
            }
        }
    }
}
