//! Text rules node_exporter gets from Go's standard library, where its output depends on
//! them: integers in any of Go's bases (`strconv.ParseInt(s, 0, 64)`) and the way it makes
//! a metric name out of arbitrary text.

/// An integer written in decimal or with a `0x`, `0o`, `0b` or `0` prefix for another
/// base, with an optional sign, as sysfs and sysctl files may hold them (watchdog
/// `options` are hexadecimal). `None` for anything else or a value past `i64`.
pub(crate) fn int_any_base(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = strip_prefix_ci(rest, "0x") {
        (16, hex)
    } else if let Some(octal) = strip_prefix_ci(rest, "0o") {
        (8, octal)
    } else if let Some(binary) = strip_prefix_ci(rest, "0b") {
        (2, binary)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `name` made fit for a metric name as node_exporter makes it: each run of characters
/// other than ASCII letters, digits and `_`, together with the underscores around it,
/// becomes one `_` (`fs.file-nr` → `fs_file_nr`).
pub(crate) fn sanitize_metric_name(name: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(name.len());
    // Underscores a replacement wrote are not taken back by the next replacement.
    let mut kept = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if valid(c) {
            out.push(c);
            continue;
        }
        while out.len() > kept && out.ends_with('_') {
            out.pop();
        }
        while chars.peek().is_some_and(|&c| !valid(c)) {
            chars.next();
        }
        while chars.peek() == Some(&'_') {
            chars.next();
        }
        out.push('_');
        kept = out.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_every_base() {
        assert_eq!(int_any_base("120"), Some(120));
        assert_eq!(int_any_base("0x8380"), Some(0x8380));
        assert_eq!(int_any_base("0X1f"), Some(31));
        assert_eq!(int_any_base("010"), Some(8));
        assert_eq!(int_any_base("0b101"), Some(5));
        assert_eq!(int_any_base("0"), Some(0));
        assert_eq!(int_any_base("-3"), Some(-3));
        assert_eq!(int_any_base("+3"), Some(3));
        assert_eq!(int_any_base("0x"), None);
        assert_eq!(int_any_base("--3"), None);
        assert_eq!(int_any_base("09"), None);
        assert_eq!(int_any_base("active"), None);
        assert_eq!(int_any_base(""), None);
        assert_eq!(int_any_base("9223372036854775808"), None);
        assert_eq!(int_any_base("-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn metric_names_as_node_exporter_sanitizes_them() {
        assert_eq!(sanitize_metric_name("package"), "package");
        assert_eq!(sanitize_metric_name("fs.file-nr"), "fs_file_nr");
        assert_eq!(sanitize_metric_name("a__-__b"), "a_b");
        assert_eq!(sanitize_metric_name("a-_-b"), "a__b");
        assert_eq!(sanitize_metric_name("a b.c"), "a_b_c");
        assert_eq!(sanitize_metric_name("-a-"), "_a_");
    }
}
