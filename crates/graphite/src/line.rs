//! Reading one plaintext-protocol line: `<path>[;tag=value...] <value> <timestamp>`.
//!
//! As graphite_exporter: surrounding whitespace is trimmed, then the line must split on
//! single spaces into exactly three fields. Tags follow the path, separated by `;`; a tag
//! without `=` is a failure that is counted while the rest of the line is still used.

/// Why a line was refused. Each reason is a value of `graphite_invalid_lines_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not exactly three space-separated fields (also: an empty line).
    PartCount,
    /// The value is not a number.
    Value,
    /// The timestamp is not a number, or not finite.
    Timestamp,
    /// Longer than the line length limit.
    TooLong,
    /// The path is not UTF-8.
    Utf8,
    /// The mapped (or sent) name is empty.
    EmptyName,
    /// A tag key is empty or starts with `__` (reserved by Prometheus).
    LabelName,
}

impl Invalid {
    /// Every reason, in the order of [`Invalid::index`].
    pub const ALL: [Invalid; 7] = [
        Self::PartCount,
        Self::Value,
        Self::Timestamp,
        Self::TooLong,
        Self::Utf8,
        Self::EmptyName,
        Self::LabelName,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::PartCount => "part_count",
            Self::Value => "value",
            Self::Timestamp => "timestamp",
            Self::TooLong => "too_long",
            Self::Utf8 => "invalid_utf8",
            Self::EmptyName => "empty_name",
            Self::LabelName => "invalid_label_name",
        }
    }

    /// Position in [`Invalid::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The three fields of a line, still as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The path with its tags, exactly as sent: the key samples are stored under.
    pub name: &'a [u8],
    /// The value field.
    pub value: &'a [u8],
    /// The timestamp field.
    pub timestamp: &'a [u8],
}

/// Trims and splits a line (without its newline).
pub fn split_fields(line: &[u8]) -> Result<Fields<'_>, Invalid> {
    let line = line.trim_ascii();
    let mut parts = line.splitn(4, |&b| b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(value), Some(timestamp), None) => Ok(Fields {
            name,
            value,
            timestamp,
        }),
        _ => Err(Invalid::PartCount),
    }
}

/// Reads a value or timestamp field as Go's `ParseFloat` would.
pub fn parse_number(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field)
        .ok()
        .and_then(crate::goparse::parse_float)
}

/// A path and the tags sent with it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tagged<'a> {
    /// The path the mapping sees.
    pub path: &'a str,
    /// `key=value` pairs in the order sent (a repeated key: the last one wins later).
    pub tags: Vec<(&'a str, &'a str)>,
    /// Pieces without `=` (including empty ones), each counted as a tag parse failure.
    pub failures: u32,
}

/// Splits `path;k=v;k2=v2`.
pub fn split_tags(name: &str) -> Tagged<'_> {
    let mut pieces = name.split(';');
    let path = pieces.next().unwrap_or_default();
    let mut tagged = Tagged {
        path,
        ..Tagged::default()
    };
    for piece in pieces {
        match piece.split_once('=') {
            Some(pair) => tagged.tags.push(pair),
            None => tagged.failures += 1,
        }
    }
    tagged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_fields_on_single_spaces() {
        let fields = split_fields(b"  a.b 1.5 1700000000\r\n").unwrap();
        assert_eq!(fields.name, b"a.b");
        assert_eq!(fields.value, b"1.5");
        assert_eq!(fields.timestamp, b"1700000000");
        for bad in [
            &b""[..],
            b"a.b 1",
            b"a.b  1 2",
            b"a.b\t1\t2",
            b"a.b 1 2 3",
            b"   ",
        ] {
            assert_eq!(split_fields(bad), Err(Invalid::PartCount), "{bad:?}");
        }
    }

    #[test]
    fn tags_as_upstream() {
        let t = split_tags("m;a=1;b=x=y;c=;bad;;");
        assert_eq!(t.path, "m");
        assert_eq!(t.tags, vec![("a", "1"), ("b", "x=y"), ("c", "")]);
        assert_eq!(t.failures, 3);
        assert_eq!(split_tags("plain").tags.len(), 0);
        assert_eq!(split_tags(";k=v").path, "");
    }
}
