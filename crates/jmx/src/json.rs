//! A JSON reader for what the bridges send, with two departures from a generic parser:
//!
//! - Numbers keep their text. jmx_exporter matches rules against Java's rendering of the
//!   value (`345`, `100.0`, `1.07351072768E11`), and both bridges print numbers with Java's
//!   `Number.toString()`, so the token as sent is exactly the string rules expect.
//! - Hadoop's `/jmx` writes `NaN`, `Infinity` and `-Infinity` as bare tokens (invalid JSON,
//!   unless `hadoop.http.jmx.nan-filter.enabled` is set); they are read as numbers.
//!
//! Strings without escapes borrow from the input, so a 2 MB NameNode answer is parsed with
//! few allocations.

use std::borrow::Cow;
use std::fmt;

/// Nesting deeper than this is refused (Jolokia's own limit is 15; Hadoop nests a few levels).
const MAX_DEPTH: usize = 64;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written (also `NaN`, `Infinity`, `-Infinity`).
    Number(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Value<'a>>),
    /// An object, members in the order sent.
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
    /// An object or array left as its text by [`parse_shallow`]: checked, not yet read.
    Raw(&'a str),
}

impl<'a> Value<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }
}

/// Where and why a document did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Line of the offending byte, from 1.
    pub line: usize,
    /// Column (in bytes), from 1.
    pub column: usize,
    /// What was expected.
    pub message: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid JSON at line {} column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for JsonError {}

/// Parses one document; anything but whitespace after it is an error.
pub fn parse(text: &str) -> Result<Value<'_>, JsonError> {
    parse_shallow(text, usize::MAX)
}

/// Parses one document as [`parse`] does, checking all of it, but leaves every object and
/// array nested `keep` levels deep (the document itself is level 0) as [`Value::Raw`] text.
///
/// A large answer is mostly its beans: read this way, the tree above them costs a few bytes
/// per bean, and each bean is parsed (with [`parse`], which cannot fail on checked text) only
/// while it is walked, instead of the whole answer's tree, several times its size, at once.
pub fn parse_shallow(text: &str, keep: usize) -> Result<Value<'_>, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        keep,
    };
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.at != parser.bytes.len() {
        return Err(parser.error("trailing characters after the document"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Containers this deep are checked and kept as text.
    keep: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &'static str) -> JsonError {
        let before = &self.bytes[..self.at.min(self.bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        JsonError {
            line,
            column: before.len() - line_start + 1,
            message,
        }
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.bytes[self.at..].starts_with(literal.as_bytes()) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        if depth >= self.keep && matches!(self.bytes.get(self.at), Some(b'{' | b'[')) {
            let start = self.at;
            self.skip(depth)?;
            return Ok(Value::Raw(&self.text[start..self.at]));
        }
        match self.bytes.get(self.at) {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') if self.eat("true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Value::Null),
            Some(b'N') if self.eat("NaN") => Ok(Value::Number("NaN")),
            Some(b'I') if self.eat("Infinity") => Ok(Value::Number("Infinity")),
            Some(b'-') if self.bytes[self.at..].starts_with(b"-Infinity") => {
                self.at += "-Infinity".len();
                Ok(Value::Number("-Infinity"))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        self.at += 1;
        let mut members = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.error("expected a member name"));
            }
            let key = self.string()?;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b':') {
                return Err(self.error("expected ':' after a member name"));
            }
            self.at += 1;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    /// Checks one value as [`Parser::value`] would, keeping nothing.
    fn skip(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        let (close, what) = match self.bytes.get(self.at) {
            Some(b'{') => (b'}', "expected ',' or '}' in an object"),
            Some(b'[') => (b']', "expected ',' or ']' in an array"),
            _ => return self.value(depth).map(drop),
        };
        let object = close == b'}';
        self.at += 1;
        self.skip_space();
        if self.bytes.get(self.at) == Some(&close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            if object {
                self.skip_space();
                if self.bytes.get(self.at) != Some(&b'"') {
                    return Err(self.error("expected a member name"));
                }
                self.string()?;
                self.skip_space();
                if self.bytes.get(self.at) != Some(&b':') {
                    return Err(self.error("expected ':' after a member name"));
                }
                self.at += 1;
            }
            self.skip(depth + 1)?;
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(&b) if b == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error(what)),
            }
        }
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.bytes.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at > from
        };
        if !digits(self) {
            return Err(self.error("expected digits"));
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !digits(self) {
                return Err(self.error("expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(self.error("expected digits in the exponent"));
            }
        }
        Ok(Value::Number(&self.text[start..self.at]))
    }

    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.at += 1;
        let start = self.at;
        // Fast path: no escapes, so the string is a slice of the input.
        match memchr::memchr2(b'"', b'\\', &self.bytes[self.at..]) {
            None => return Err(self.error("unterminated string")),
            Some(offset) if self.bytes[self.at + offset] == b'"' => {
                self.at += offset + 1;
                return Ok(Cow::Borrowed(&self.text[start..self.at - 1]));
            }
            Some(offset) => self.at += offset,
        }
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            match self.bytes.get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let escaped = match self.bytes.get(self.at + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 2;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    out.push(escaped);
                    self.at += 2;
                }
                Some(_) => {
                    let run = memchr::memchr2(b'"', b'\\', &self.bytes[self.at..])
                        .unwrap_or(self.bytes.len() - self.at);
                    out.push_str(&self.text[self.at..self.at + run]);
                    self.at += run;
                }
            }
        }
    }

    /// Four hex digits after `\u` (and a second escape for a surrogate pair); a lone
    /// surrogate becomes U+FFFD, as Java would print it.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Ok(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        if self.bytes[self.at..].starts_with(b"\\u") {
            let save = self.at;
            self.at += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            self.at = save;
        }
        Ok('\u{FFFD}')
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        self.at += 4;
        Ok(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_parse_keeps_deep_containers_as_checked_text() {
        let text = r#"{"beans": [{"name": "a:b=c", "X": [1, {"y": "\u00e9"}]}, 7, []]}"#;
        let document = parse_shallow(text, 2).unwrap();
        let Some(Value::Array(items)) = document.get("beans") else {
            panic!("{document:?}");
        };
        assert_eq!(
            items[0],
            Value::Raw(r#"{"name": "a:b=c", "X": [1, {"y": "\u00e9"}]}"#)
        );
        assert_eq!(items[1], Value::Number("7"));
        assert_eq!(items[2], Value::Raw("[]"));
        // The kept text parses to what a whole parse gives.
        let Value::Raw(bean) = items[0] else {
            unreachable!()
        };
        let whole = parse(text).unwrap();
        let Some(Value::Array(whole_items)) = whole.get("beans") else {
            panic!("{whole:?}");
        };
        assert_eq!(parse(bean).unwrap(), whole_items[0]);
    }

    #[test]
    fn shallow_parse_finds_errors_inside_kept_text_where_a_whole_parse_does() {
        for text in [
            r#"{"beans": [{"name": "x", "a": tru}]}"#,
            r#"{"beans": [{"name": "x" "a": 1}]}"#,
            r#"{"beans": [{"name": "x", "a": [1 2]}]}"#,
            r#"{"beans": [{"name": "x", "a": "\q"}]}"#,
            r#"{"beans": [{"name": "x"}"#,
        ] {
            assert_eq!(
                parse_shallow(text, 2).unwrap_err(),
                parse(text).unwrap_err(),
                "{text}"
            );
        }
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert_eq!(
            parse_shallow(&deep, 2).unwrap_err(),
            parse(&deep).unwrap_err()
        );
    }
}
