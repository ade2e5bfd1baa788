//! Text from a scraped target made safe to print on the operator's terminal.
//!
//! HELP text, metric and label names and parse messages come from whoever answers the
//! scrape. Printed raw, escape sequences in them could retitle or clear the terminal, write
//! to the clipboard (OSC 52) or hide lines; bidirectional overrides could make text read
//! differently from what it is. Every control character and bidirectional control is
//! therefore written as a visible escape instead.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with control characters (C0, DEL, C1) written as `\n`, `\t`, `\x1b`, and
/// bidirectional controls as `\u{202e}`. Borrowed when there is nothing to escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with the characters JSON allows raw but a terminal may act on (C1
/// controls, DEL and bidirectional controls) written as `\uXXXX` escapes: the same JSON
/// value, safe to print. serde_json already escapes C0 controls.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    if !json.chars().any(needs_escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if needs_escape(c) && !matches!(c, '\n' | '\t' | '\r' | ' ') {
            // Outside strings serde_json writes only ASCII punctuation, digits and the
            // whitespace kept above, so anything escaped here is inside a string.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The Unicode bidirectional embedding, override and isolate controls, and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        // Set the title, clear the screen, write the clipboard (OSC 52), CSI in C1 form.
        let hostile = "Requests.\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}31m";
        let safe = for_terminal(hostile);
        assert_eq!(
            safe,
            "Requests.\\x1b]0;pwned\\x07\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x9b31m"
        );
        assert!(!safe.chars().any(char::is_control));
        assert_eq!(for_terminal("a\nb\u{202e}c"), "a\\nb\\u{202e}c");
        assert!(matches!(for_terminal("plain: ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_controls() {
        let value = serde_json::json!({"help": "x\u{9b}2J\u{202e}y\u{1b}"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_for_terminal(&text);
        assert!(!safe.chars().any(needs_escape_but_newline), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }

    fn needs_escape_but_newline(c: char) -> bool {
        needs_escape(c) && c != '\n'
    }
}
