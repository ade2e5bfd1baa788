//! Name transformations with jmx_exporter's exact results.

/// `toSafeName`, written onto the end of `out`: every run of characters outside
/// `[A-Za-z0-9:]` (underscores included) becomes one `_`, and a leading digit gets a `_` in
/// front. `"001"` → `_001`, `"-_-"` → `_`, `"a.b-c"` → `a_b_c`. What it writes is always
/// ASCII.
pub fn to_safe_name_into(name: &str, out: &mut String) {
    let safe = |byte: u8| byte.is_ascii_alphanumeric() || byte == b':';
    let bytes = name.as_bytes();
    let mut after_underscore = false;
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
        after_underscore = true;
    }
    // Runs of safe bytes are copied whole. Every byte of a non-ASCII character is outside
    // the safe set, so a run of them becomes one `_` just as the character would, and each
    // run starts and ends on a character boundary.
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        while at < bytes.len() && safe(bytes[at]) {
            at += 1;
        }
        if at > start {
            out.push_str(&name[start..at]);
            after_underscore = false;
        }
        if at < bytes.len() {
            while at < bytes.len() && !safe(bytes[at]) {
                at += 1;
            }
            if !after_underscore {
                out.push('_');
                after_underscore = true;
            }
        }
    }
}

/// `toSnakeAndLowerCase` (for `attrNameSnakeCase`): a `_` before each upper-case letter
/// that follows a character that is neither upper case nor `_`, then all lower case.
/// `testTCPTest` → `test_tcptest`.
pub fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return out;
    };
    let mut after_upper_or_underscore = first.is_uppercase() || first == '_';
    out.extend(first.to_lowercase());
    for c in chars {
        let upper = c.is_uppercase();
        if upper && !after_upper_or_underscore {
            out.push('_');
        }
        out.extend(c.to_lowercase());
        after_upper_or_underscore = upper || c == '_';
    }
    out
}

/// The suffixes the Prometheus Java client (1.x) reserves and strips from metric names.
const RESERVED_SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_info", ".total", ".created", ".bucket", ".info",
];

/// client_java's `sanitizeMetricName`, which jmx_exporter 1.x applies to every name: the
/// reserved suffixes are stripped, repeatedly (`a_created_total` → `a`); a name that is
/// nothing but a suffix keeps it without the separator (`_total` → `total`).
pub fn strip_reserved_suffixes(name: &str) -> &str {
    let mut name = name;
    loop {
        let mut changed = false;
        for suffix in RESERVED_SUFFIXES {
            if name == suffix {
                return &suffix[1..];
            }
            if let Some(stripped) = name.strip_suffix(suffix) {
                name = stripped;
                changed = true;
            }
        }
        if !changed {
            return name;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_match_jmx_exporter() {
        // The cases of jmx_exporter's ToSafeNameTest.
        let cases = [
            ("abc", "abc"),
            ("abc_def", "abc_def"),
            ("abc-def", "abc_def"),
            ("abc__def", "abc_def"),
            ("abc___def", "abc_def"),
            ("abc.def", "abc_def"),
            ("abc:def", "abc:def"),
            ("001", "_001"),
            ("-_-", "_"),
            ("_", "_"),
            ("___", "_"),
            ("", ""),
            ("test_swedish_chars_åäö", "test_swedish_chars_"),
            (
                "Hadoop_NameNode_Blocks Total",
                "Hadoop_NameNode_Blocks_Total",
            ),
            ("a😀b", "a_b"),
        ];
        for (input, expected) in cases {
            let mut safe = String::new();
            to_safe_name_into(input, &mut safe);
            assert_eq!(safe, expected, "{input:?}");
        }
    }

    #[test]
    fn snake_case_matches_jmx_exporter() {
        let cases = [
            ("testTCPTest", "test_tcptest"),
            ("ThreadCount", "thread_count"),
            ("already_snake", "already_snake"),
            ("_Leading", "_leading"),
            ("HeapMemoryUsage", "heap_memory_usage"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(to_snake_case(input), expected, "{input:?}");
        }
    }

    #[test]
    fn reserved_suffixes_are_stripped_repeatedly() {
        let cases = [
            ("requests_total", "requests"),
            ("a_created_total", "a"),
            ("jvm_info", "jvm"),
            ("le_bucket", "le"),
            ("_total", "total"),
            ("total", "total"),
            ("plain", "plain"),
            ("x_total_info", "x"),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_reserved_suffixes(input), expected, "{input:?}");
        }
    }
}
