//! Turning Graphite paths and tags into valid Prometheus names, as graphite_exporter (and
//! the Prometheus client's "underscores" escaping) does, and writing label values escaped.

/// Replaces every character outside `[a-zA-Z0-9_:]` with one `_` (one per character, not
/// per byte), as graphite_exporter does with a mapped or unmapped name. Leading digits are
/// kept here; see [`escape_leading_digit`].
pub fn sanitize_metric_name(name: &str, out: &mut String) {
    out.reserve(name.len());
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        });
    }
}

/// The exposition format forbids a leading digit; Prometheus' client replaces it with `_`
/// when it writes the name (the HELP text keeps the original). Returns the digit replaced.
pub fn escape_leading_digit(name: &mut String) -> Option<u8> {
    let first = *name.as_bytes().first()?;
    if first.is_ascii_digit() {
        name.replace_range(..1, "_");
        Some(first)
    } else {
        None
    }
}

/// A tag key as a label name: characters outside `[a-zA-Z0-9_]` and a leading digit become
/// `_`, one per character.
pub fn escape_label_name(key: &str, out: &mut String) {
    for (i, c) in key.chars().enumerate() {
        let valid = c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
        out.push(if valid { c } else { '_' });
    }
}

/// Appends a label value with `\`, `"` and newlines escaped.
pub fn push_label_value(value: &str, out: &mut String) {
    let mut rest = value;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => r"\\",
            b'"' => r#"\""#,
            _ => r"\n",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sanitized(name: &str) -> String {
        let mut out = String::new();
        sanitize_metric_name(name, &mut out);
        out
    }

    #[test]
    fn names_are_sanitized_per_character() {
        assert_eq!(sanitized("a.b-c:d"), "a_b_c:d");
        assert_eq!(sanitized("é--x"), "___x");
        assert_eq!(sanitized("9lives.count"), "9lives_count");
        let mut name = sanitized("9lives.count");
        assert_eq!(escape_leading_digit(&mut name), Some(b'9'));
        assert_eq!(name, "_lives_count");
    }

    #[test]
    fn label_names_and_values_are_escaped() {
        let mut out = String::new();
        escape_label_name("host-name", &mut out);
        out.push(' ');
        escape_label_name("1x:y", &mut out);
        assert_eq!(out, "host_name _x_y");
        let mut out = String::new();
        push_label_value("a\"b\\c\nd", &mut out);
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
