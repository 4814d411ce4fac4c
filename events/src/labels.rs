//! The Chinese labels of the closed vocabularies (男/女, 祖父母, 帮扶教师, …), as school forms
//! write them.
//!
//! One table serves every reader and writer: the views print `zh()`, the spreadsheet reader
//! turns a label back into its wire name with `wire_of_label`, and the form templates list
//! the labels in their drop-downs. It owns the labels and their accepted synonyms only; it must
//! never change a wire name (those are the schema's, in `event`).

use crate::event::{
    Capability, ChildStatus, ContactMode, Focus, Gender, GuardianRelation, Hardship,
    LeftBehindType, LetterDirection, MetParty, Mood, NotifiedParty, PairingRole, Parent, Risk,
    Role,
};

/// A closed vocabulary seen through its labels: the wire names and labels in declaration
/// order, and the other words a form may use for a value (爷爷 for 祖父母).
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// The wire names, in the schema's declaration order.
    pub wire: &'static [&'static str],
    /// The labels, in the same order.
    pub zh: &'static [&'static str],
    /// Other words read as a value: (word, wire name).
    pub synonyms: &'static [(&'static str, &'static str)],
}

impl Labels {
    /// The wire name a label (or synonym, or the wire name itself) stands for.
    pub fn wire_of(&self, text: &str) -> Option<&'static str> {
        if let Some(w) = self.wire.iter().find(|w| **w == text) {
            return Some(w);
        }
        if let Some(i) = self.zh.iter().position(|l| *l == text) {
            return self.wire.get(i).copied();
        }
        self.synonyms
            .iter()
            .find(|(s, _)| *s == text)
            .map(|(_, w)| *w)
    }

    /// The label of a wire name.
    pub fn zh_of(&self, wire: &str) -> Option<&'static str> {
        let i = self.wire.iter().position(|w| *w == wire)?;
        self.zh.get(i).copied()
    }
}

macro_rules! labels {
    ($(#[$doc:meta])* $ty:ident, $konst:ident {
        $($variant:ident => $wire:literal / $zh:literal),+ $(,)?
    } $(synonyms { $($syn:literal => $synwire:literal),* $(,)? })?) => {
        $(#[$doc])*
        pub const $konst: Labels = Labels {
            wire: &[$($wire),+],
            zh: &[$($zh),+],
            synonyms: &[$($(($syn, $synwire)),*)?],
        };

        impl $ty {
            /// The Chinese label a school form uses.
            pub fn zh(self) -> &'static str {
                match self { $($ty::$variant => $zh),+ }
            }
        }

        // The wire names written here must be the schema's, in its order.
        const _: () = {
            let all = $ty::ALL;
            let wire: &[&str] = &[$($wire),+];
            assert!(all.len() == wire.len());
        };
    };
}

labels!(
    /// 班主任, 任课教师, …
    Role, ROLE {
        ClassTeacher => "class_teacher" / "班主任",
        SubjectTeacher => "subject_teacher" / "任课教师",
        Counselor => "counselor" / "心理辅导教师",
        Admin => "admin" / "管理员",
        Leader => "leader" / "学校领导",
        Inspector => "inspector" / "督导",
    }
    synonyms { "科任教师" => "subject_teacher", "心理教师" => "counselor", "领导" => "leader" }
);
labels!(
    /// 帮扶教师, 代理家长.
    PairingRole, PAIRING_ROLE {
        Mentor => "mentor" / "帮扶教师",
        ProxyParent => "proxy_parent" / "代理家长",
    }
);
labels!(
    /// 男, 女.
    Gender, GENDER { Male => "male" / "男", Female => "female" / "女" }
);
labels!(
    /// 父母均外出, 父母一方外出.
    LeftBehindType, LEFT_BEHIND_TYPE {
        BothParentsAway => "both_parents_away" / "父母均外出",
        OneParentAway => "one_parent_away" / "父母一方外出",
    }
    synonyms { "双亲外出" => "both_parents_away", "单亲外出" => "one_parent_away" }
);
labels!(
    /// 孤儿, 残疾, 贫困, 单亲.
    Hardship, HARDSHIP {
        Orphan => "orphan" / "孤儿",
        Disabled => "disabled" / "残疾",
        Poverty => "poverty" / "贫困",
        SingleParent => "single_parent" / "单亲",
    }
);
labels!(
    /// 学习, 性格, 心理, 行为, 安全.
    Focus, FOCUS {
        Learning => "learning" / "学习",
        Personality => "personality" / "性格",
        Psychological => "psychological" / "心理",
        Behavior => "behavior" / "行为",
        Safety => "safety" / "安全",
    }
);
labels!(
    /// 父亲, 母亲.
    Parent, PARENT { Father => "father" / "父亲", Mother => "mother" / "母亲" }
    synonyms { "爸爸" => "father", "妈妈" => "mother" }
);
labels!(
    /// 祖父母, 外祖父母, 亲属, 兄弟姐妹, 父母, 其他.
    GuardianRelation, GUARDIAN_RELATION {
        GrandparentPaternal => "grandparent_paternal" / "祖父母",
        GrandparentMaternal => "grandparent_maternal" / "外祖父母",
        Relative => "relative" / "亲属",
        Sibling => "sibling" / "兄弟姐妹",
        Parent => "parent" / "父母",
        Other => "other" / "其他",
    }
    synonyms {
        "祖父" => "grandparent_paternal", "祖母" => "grandparent_paternal",
        "爷爷" => "grandparent_paternal", "奶奶" => "grandparent_paternal",
        "外祖父" => "grandparent_maternal", "外祖母" => "grandparent_maternal",
        "外公" => "grandparent_maternal", "外婆" => "grandparent_maternal",
    }
);
labels!(
    /// 好, 一般, 较弱, 无.
    Capability, CAPABILITY {
        Good => "good" / "好",
        Fair => "fair" / "一般",
        Weak => "weak" / "较弱",
        None => "none" / "无",
    }
    synonyms { "较好" => "good", "良好" => "good", "差" => "weak", "较差" => "weak" }
);
labels!(
    /// 留守, 不再留守, 转出, 辍学, 复学, 毕业.
    ChildStatus, CHILD_STATUS {
        LeftBehind => "left_behind" / "留守",
        NoLongerLeftBehind => "no_longer_left_behind" / "不再留守",
        TransferredOut => "transferred_out" / "转出",
        DroppedOut => "dropped_out" / "辍学",
        ReturnedToSchool => "returned_to_school" / "复学",
        Graduated => "graduated" / "毕业",
    }
);
labels!(
    /// 好, 一般, 低落, 需关注.
    Mood, MOOD {
        Good => "good" / "好",
        Ok => "ok" / "一般",
        Low => "low" / "低落",
        Concerning => "concerning" / "需关注",
    }
);
labels!(
    /// 上门, 电话, 面谈.
    ContactMode, CONTACT_MODE {
        Visit => "visit" / "上门",
        Phone => "phone" / "电话",
        Meeting => "meeting" / "面谈",
    }
);
labels!(
    /// 监护人, 父母, 儿童.
    MetParty, MET_PARTY {
        Guardian => "guardian" / "监护人",
        Parent => "parent" / "父母",
        Child => "child" / "儿童",
    }
    synonyms { "学生" => "child" }
);
labels!(
    /// 教师致儿童, 儿童致父母, 父母致儿童.
    LetterDirection, LETTER_DIRECTION {
        MentorToChild => "mentor_to_child" / "教师致儿童",
        ChildToParent => "child_to_parent" / "儿童致父母",
        ParentToChild => "parent_to_child" / "父母致儿童",
    }
);
labels!(
    /// 无, 低, 中, 高.
    Risk, RISK { None => "none" / "无", Low => "low" / "低", Medium => "medium" / "中", High => "high" / "高" }
);
labels!(
    /// 监护人, 父母, 教育局, 公安.
    NotifiedParty, NOTIFIED_PARTY {
        Guardian => "guardian" / "监护人",
        Parents => "parents" / "父母",
        Bureau => "bureau" / "教育局",
        Police => "police" / "公安",
    }
);

/// Every labelled vocabulary.
pub const ALL: [Labels; 16] = [
    ROLE,
    PAIRING_ROLE,
    GENDER,
    LEFT_BEHIND_TYPE,
    HARDSHIP,
    FOCUS,
    PARENT,
    GUARDIAN_RELATION,
    CAPABILITY,
    CHILD_STATUS,
    MOOD,
    CONTACT_MODE,
    MET_PARTY,
    LETTER_DIRECTION,
    RISK,
    NOTIFIED_PARTY,
];

/// The labels of the vocabulary whose wire names are exactly `variants` (as a schema probe
/// reports an enum), if it has labels.
pub fn of_variants(variants: &[&str]) -> Option<&'static Labels> {
    ALL.iter().find(|l| l.wire == variants)
}

/// 是 / 否 for a yes-or-no field.
pub fn yes_no(b: bool) -> &'static str {
    if b { "是" } else { "否" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_reads_back_as_its_value() {
        for labels in ALL {
            assert_eq!(labels.wire.len(), labels.zh.len());
            for (w, z) in labels.wire.iter().zip(labels.zh) {
                assert_eq!(labels.wire_of(z), Some(*w));
                assert_eq!(labels.wire_of(w), Some(*w));
                assert_eq!(labels.zh_of(w), Some(*z));
            }
            for (s, w) in labels.synonyms {
                assert!(labels.wire.contains(w), "{s} stands for an unknown {w}");
            }
        }
        assert_eq!(Gender::Female.zh(), "女");
        assert_eq!(
            GUARDIAN_RELATION.wire_of("外婆"),
            Some("grandparent_maternal")
        );
        assert_eq!(GENDER.wire_of("未知"), None);
    }

    #[test]
    fn wire_names_follow_the_schema_order() {
        let check = |l: &Labels, all: Vec<&str>| assert_eq!(l.wire, all.as_slice());
        check(&GENDER, Gender::ALL.iter().map(|v| v.as_str()).collect());
        check(&ROLE, Role::ALL.iter().map(|v| v.as_str()).collect());
        check(
            &GUARDIAN_RELATION,
            GuardianRelation::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &CAPABILITY,
            Capability::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &CHILD_STATUS,
            ChildStatus::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(&MOOD, Mood::ALL.iter().map(|v| v.as_str()).collect());
        check(&RISK, Risk::ALL.iter().map(|v| v.as_str()).collect());
        check(
            &HARDSHIP,
            Hardship::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(&FOCUS, Focus::ALL.iter().map(|v| v.as_str()).collect());
        check(&PARENT, Parent::ALL.iter().map(|v| v.as_str()).collect());
        check(
            &PAIRING_ROLE,
            PairingRole::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &LEFT_BEHIND_TYPE,
            LeftBehindType::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &CONTACT_MODE,
            ContactMode::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &MET_PARTY,
            MetParty::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &LETTER_DIRECTION,
            LetterDirection::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            &NOTIFIED_PARTY,
            NotifiedParty::ALL.iter().map(|v| v.as_str()).collect(),
        );
    }
}
