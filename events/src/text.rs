//! Text safe to show: what a terminal table may print of recorded text. A control character
//! (ESC starts the sequences that clear a screen or retitle a terminal) or a bidirectional
//! mark (it makes text display in another order than it is stored) is written as an escape
//! instead. `ingest` refuses them in new input; this is the second line, for text that reached
//! the log some other way. It must never change any other character.

use std::borrow::Cow;

/// Whether a character is a bidirectional mark, embedding, override or isolate.
pub fn is_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}'
    )
}

/// `s` with every control character (line breaks and tabs included: they would break a
/// table's columns) and bidirectional mark written as `\u{1b}`; unchanged when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi(c);
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_direction_marks_are_escaped() {
        assert_eq!(
            printable("学习\u{1b}[2J\u{1b}]0;pwned\u{7}\n\u{202e}x"),
            "学习\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{a}\\u{202e}x"
        );
        assert!(matches!(printable("王小明 = +86"), Cow::Borrowed(_)));
    }
}
