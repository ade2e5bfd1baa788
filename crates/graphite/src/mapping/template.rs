//! Expanding `$1`-style references in mapping names and labels, exactly as graphite_exporter
//! does — which differs between glob rules and regex rules.
//!
//! Glob rules: each `$n`, `${n}` (and anything matching `\$\{?[a-zA-Z0-9_$]+\}?`) must be a
//! capture number from 1 to the number of `*`s, or the whole token becomes empty. So
//! `${1}_x` is `a_x` but `$1_x` is `""`. The result goes through Go's `Sprintf`, which is
//! why a literal `%` next to captures comes out mangled; that is reproduced too.
//!
//! Regex rules: Go's `Regexp.ExpandString`: `$name` takes the longest run of letters,
//! digits and underscores, `${name}` is explicit, `$$` is a dollar, numbers with leading
//! zeros are names, and anything unknown expands to nothing.

use std::fmt::Write as _;

use regex::{Captures, Regex};

/// A glob rule's name or label template, prepared once at load time.
#[derive(Debug, Clone)]
pub(crate) struct GlobTemplate {
    /// The template with every valid reference replaced by `%s` (Go's format string).
    format: String,
    /// Zero-based capture index for each `%s`, in order of the references found.
    captures: Vec<usize>,
}

impl GlobTemplate {
    /// Prepares `template` for a rule with `capture_count` `*` components.
    pub(crate) fn new(template: &str, capture_count: usize) -> Self {
        let mut format = template.to_owned();
        let mut captures = Vec::new();
        for token in reference_tokens(template) {
            let index = token_inner(token).parse::<usize>().ok();
            match index {
                Some(index) if (1..=capture_count).contains(&index) => {
                    format = format.replace(token, "%s");
                    captures.push(index - 1);
                }
                _ => format = format.replace(token, ""),
            }
        }
        Self { format, captures }
    }

    /// Expands the template with the rule's captures.
    pub(crate) fn expand(&self, captures: &[&str]) -> String {
        if self.captures.is_empty() {
            return self.format.clone();
        }
        let args: Vec<&str> = self
            .captures
            .iter()
            .map(|&i| captures.get(i).copied().unwrap_or_default())
            .collect();
        go_sprintf(&self.format, &args)
    }
}

/// The tokens Go's `\$\{?([a-zA-Z0-9_\$]+)\}?` finds, leftmost first, without overlaps.
fn reference_tokens(template: &str) -> Vec<&str> {
    let bytes = template.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'$' {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = index + 1;
        if bytes.get(end) == Some(&b'{') {
            end += 1;
        }
        let inner = end;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        if end == inner {
            // `$` or `${` followed by no word character: not a reference. Go's regex would
            // retry from the next byte; a `{` cannot start one, so skip just the `$`.
            index = start + 1;
            continue;
        }
        if bytes.get(end) == Some(&b'}') {
            end += 1;
        }
        tokens.push(&template[start..end]);
        index = end;
    }
    tokens
}

/// The reference inside a token: `${12}` → `12`, `$1` → `1`.
fn token_inner(token: &str) -> &str {
    let inner = token.strip_prefix('$').unwrap_or(token);
    let inner = inner.strip_prefix('{').unwrap_or(inner);
    inner.strip_suffix('}').unwrap_or(inner)
}

/// The part of Go's `fmt.Sprintf` a template can reach: `%s` takes the next argument, `%%`
/// is a percent sign, any other verb and missing or extra arguments are reported inline
/// the way Go does (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA string=x)`).
fn go_sprintf(format: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(format.len() + args.iter().map(|a| a.len()).sum::<usize>());
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(verb) => {
                match args.get(next) {
                    Some(arg) if verb == 's' => out.push_str(arg),
                    Some(arg) => {
                        let _ = write!(out, "%!{verb}(string={arg})");
                    }
                    None => {
                        let _ = write!(out, "%!{verb}(MISSING)");
                    }
                }
                next += 1;
            }
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "string={arg}");
        }
        out.push(')');
    }
    out
}

/// Expands a regex rule's template against one match, as Go's `Regexp.ExpandString`.
pub(crate) fn expand_regex(template: &str, regex: &Regex, captures: &Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.as_bytes().get(1) == Some(&b'$') {
            out.push('$');
            rest = &rest[2..];
            continue;
        }
        let Some((name, after)) = extract_reference(rest) else {
            // Malformed: the dollar is plain text.
            out.push('$');
            rest = &rest[1..];
            continue;
        };
        rest = after;
        let group = match go_group_number(name) {
            Some(number) => captures.get(number),
            None => regex
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| captures.get(i)),
        };
        if let Some(group) = group {
            out.push_str(group.as_str());
        }
    }
    out.push_str(rest);
    out
}

/// Splits `$name` or `${name}` off the front of `text` (which starts with `$`).
fn extract_reference(text: &str) -> Option<(&str, &str)> {
    let body = &text[1..];
    let braced = body.starts_with('{');
    let inner = if braced { &body[1..] } else { body };
    let length = inner
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if length == 0 {
        return None;
    }
    let name = &inner[..length];
    if braced {
        inner[length..].strip_prefix('}').map(|after| (name, after))
    } else {
        Some((name, &inner[length..]))
    }
}

/// Go reads a reference as a group number only when it is all digits, below 10⁸ and without
/// a leading zero; otherwise it is a group name.
fn go_group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|c| c.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    name.parse::<usize>().ok().filter(|n| *n < 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(template: &str, captures: &[&str]) -> String {
        GlobTemplate::new(template, captures.len()).expand(captures)
    }

    #[test]
    fn glob_references() {
        assert_eq!(glob("${1}_foo", &["a"]), "a_foo");
        assert_eq!(glob("$1_foo", &["a"]), "");
        assert_eq!(glob("$1$2", &["a", "b"]), "");
        assert_eq!(glob("$1-$2", &["a", "b"]), "a-b");
        assert_eq!(glob("${1}${2}", &["a", "b"]), "ab");
        assert_eq!(glob("$3", &["a", "b"]), "");
        assert_eq!(glob("x_$0", &["a"]), "x_");
        assert_eq!(glob("plain", &["a"]), "plain");
        assert_eq!(glob("$2.$1.$2", &["a", "b"]), "b.a.b");
        assert_eq!(glob("${2}", &["a", "b"]), "b");
        assert_eq!(glob("$name", &["a"]), "");
        assert_eq!(glob("$$1", &["a"]), "");
        assert_eq!(glob("$1}", &["a"]), "a");
    }

    #[test]
    fn glob_percent_is_mangled_like_go() {
        assert_eq!(glob("100%", &["a"]), "100%");
        assert_eq!(glob("${1}%", &["a"]), "a%!(NOVERB)");
        assert_eq!(glob("${1}%%", &["a"]), "a%");
        assert_eq!(glob("%d_${1}", &["a"]), "%!d(string=a)_%!s(MISSING)");
    }

    #[test]
    fn regex_expansion_follows_go() {
        let regex = Regex::new(r"^(?P<app>[^.]+)\.(\w+)\.(.*)$").unwrap();
        let captures = regex.captures("app1.driver.jvm.heap").unwrap();
        let expand = |t: &str| expand_regex(t, &regex, &captures);
        assert_eq!(expand("${app}_$2"), "app1_driver");
        assert_eq!(expand("$1x"), "");
        assert_eq!(expand("${1}x"), "app1x");
        assert_eq!(expand("$0"), "app1.driver.jvm.heap");
        assert_eq!(expand("$$1"), "$1");
        assert_eq!(expand("cost $"), "cost $");
        assert_eq!(expand("${3"), "${3");
        assert_eq!(expand("$01"), "");
        assert_eq!(expand("$9"), "");
        assert_eq!(expand("$app"), "app1");
        assert_eq!(expand("a.$3.b"), "a.jvm.heap.b");
    }
}
