//! JMX object names (`domain:key=value,…`) and object name patterns (`java.lang:type=*,*`).
//!
//! Property order matters to jmx_exporter: the first value goes into the default metric name
//! and the rest become labels, in the order the MBean was registered with. Both bridges print
//! that order, so it is kept here. Quoted values keep their quotes, as jmx_exporter does.

use std::fmt;

use smallvec::SmallVec;

/// A parsed object name: the text as written, and where its parts are.
///
/// A Kafka broker has tens of thousands of beans; keeping each name in one allocation (not
/// one per key and value) halves the cost of reading them on a first scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    text: Box<str>,
    /// Where the domain ends (the `:`).
    domain_end: u32,
    /// Key and value spans in `text`, in the order written; most names have four or fewer.
    properties: SmallVec<[Property; 4]>,
}

/// One `key=value`: byte offsets into the name's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Property {
    key: (u32, u32),
    value: (u32, u32),
}

impl ObjectName {
    /// Parses `domain:key=value[,key=value…]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if u32::try_from(text.len()).is_err() {
            return Err("object name longer than 4 GiB".into());
        }
        // Byte searches: every character looked for is ASCII, and a first scrape of a big
        // broker parses tens of thousands of names.
        let has_any = |part: &str, bytes: &[u8]| part.bytes().any(|b| bytes.contains(&b));
        let domain_end = memchr::memchr(b':', text.as_bytes())
            .ok_or_else(|| format!("object name {text:?} has no ':'"))?;
        let domain = &text[..domain_end];
        if has_any(domain, b"*?") {
            return Err(format!("object name {text:?}: wildcards are for patterns"));
        }
        let offset = |part: &str| (part.as_ptr() as usize - text.as_ptr() as usize) as u32;
        let span = |part: &str| (offset(part), offset(part) + part.len() as u32);
        let mut properties = SmallVec::new();
        for part in split_properties(&text[domain_end + 1..]) {
            let (key, value) = memchr::memchr(b'=', part.as_bytes())
                .map(|at| (&part[..at], &part[at + 1..]))
                .ok_or_else(|| format!("object name {text:?}: property {part:?} has no '='"))?;
            if key.is_empty() || has_any(key, b":*?\"") {
                return Err(format!("object name {text:?}: bad property key {key:?}"));
            }
            if !value.starts_with('"') && has_any(value, b"*?") {
                return Err(format!("object name {text:?}: wildcards are for patterns"));
            }
            properties.push(Property {
                key: span(key),
                value: span(value),
            });
        }
        if properties.is_empty() {
            return Err(format!("object name {text:?} has no key properties"));
        }
        Ok(Self {
            text: text.into(),
            domain_end: domain_end as u32,
            properties,
        })
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The domain, before the first `:`.
    pub fn domain(&self) -> &str {
        &self.text[..self.domain_end as usize]
    }

    /// Key properties in the order written; values verbatim (quoted ones with their quotes).
    pub fn properties(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        let slice = |(start, end): (u32, u32)| &self.text[start as usize..end as usize];
        self.properties
            .iter()
            .map(move |p| (slice(p.key), slice(p.value)))
    }

    /// The value of property `key`.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The canonical form: properties sorted by key. Two names are the same MBean exactly
    /// when their canonical forms are equal.
    pub fn canonical(&self) -> String {
        let mut sorted: Vec<_> = self.properties().collect();
        sorted.sort();
        let mut out = format!("{}:", self.domain());
        for (i, (key, value)) in sorted.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.domain())?;
        for (i, (key, value)) in self.properties().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            write!(f, "{comma}{key}={value}")?;
        }
        Ok(())
    }
}

/// Splits a property list at the commas outside quoted values, leaving out empty parts.
fn split_properties(list: &str) -> impl Iterator<Item = &str> {
    let bytes = list.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        while start <= bytes.len() {
            let mut at = start;
            // Jump to the next comma or quote; a quoted value is skipped whole, escapes and
            // all.
            while let Some(found) = memchr::memchr2(b',', b'"', &bytes[at..]) {
                at += found;
                if bytes[at] == b',' {
                    break;
                }
                at += 1;
                while at < bytes.len() {
                    match bytes[at] {
                        b'\\' => at += 2,
                        b'"' => break,
                        _ => at += 1,
                    }
                }
                at = (at + 1).min(bytes.len());
            }
            if at >= bytes.len() || bytes[at] != b',' {
                at = bytes.len();
            }
            let part = &list[start..at];
            start = at + 1;
            if !part.is_empty() {
                return Some(part);
            }
        }
        None
    })
}

/// An object name pattern as `MBeanServer.queryNames` takes it: `*` and `?` in the domain
/// and in unquoted property values, and a trailing `*` in the property list for "any other
/// properties too".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNamePattern {
    text: String,
    domain: String,
    properties: Vec<(String, String)>,
    any_other_properties: bool,
}

impl ObjectNamePattern {
    /// Parses a pattern (a plain object name is a pattern that matches itself).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (domain, list) = text
            .split_once(':')
            .ok_or_else(|| format!("object name pattern {text:?} has no ':'"))?;
        let mut properties = Vec::new();
        let mut any_other_properties = false;
        for part in split_properties(list) {
            if part == "*" {
                any_other_properties = true;
                continue;
            }
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("object name pattern {text:?}: property {part:?} has no '='")
            })?;
            if key.is_empty() {
                return Err(format!("object name pattern {text:?}: empty property key"));
            }
            properties.push((key.to_owned(), value.to_owned()));
        }
        if properties.is_empty() && !any_other_properties {
            return Err(format!(
                "object name pattern {text:?} has no key properties (use {domain}:* for all)"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            domain: if domain.is_empty() {
                "*".to_owned()
            } else {
                domain.to_owned()
            },
            properties,
            any_other_properties,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this matches every MBean (`*:*`).
    pub fn matches_all(&self) -> bool {
        self.domain == "*" && self.properties.is_empty() && self.any_other_properties
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &ObjectName) -> bool {
        if !wildcard_match(&self.domain, name.domain()) {
            return false;
        }
        if !self.any_other_properties && self.properties.len() != name.properties().len() {
            return false;
        }
        self.properties.iter().all(|(key, pattern)| {
            name.property(key).is_some_and(|value| {
                if pattern.starts_with('"') {
                    pattern == value
                } else {
                    wildcard_match(pattern, value)
                }
            })
        })
    }
}

impl fmt::Display for ObjectNamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Glob matching with `*` (any run) and `?` (one character).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    backtrack = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ObjectName {
        ObjectName::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pattern(text: &str) -> ObjectNamePattern {
        ObjectNamePattern::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keeps_property_order_and_quotes() {
        let parsed = name(r#"kiln.test:type=Sample,name="quoted,name""#);
        assert_eq!(parsed.domain(), "kiln.test");
        assert_eq!(
            parsed.properties().collect::<Vec<_>>(),
            [("type", "Sample"), ("name", r#""quoted,name""#)]
        );
        assert_eq!(
            parsed.to_string(),
            r#"kiln.test:type=Sample,name="quoted,name""#
        );
        assert_eq!(
            parsed.canonical(),
            r#"kiln.test:name="quoted,name",type=Sample"#
        );
        // An escaped quote does not end the value; empty parts are left out.
        let escaped = name(r#"d:a="x\",y",,b=2,c="t\\",d=4"#);
        assert_eq!(
            escaped.properties().collect::<Vec<_>>(),
            [
                ("a", r#""x\",y""#),
                ("b", "2"),
                ("c", r#""t\\""#),
                ("d", "4")
            ]
        );
    }

    #[test]
    fn refuses_malformed_names() {
        for text in ["nodomain", "d:", "d:novalue", "d*:type=x", "d:type=a*"] {
            assert!(ObjectName::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn patterns_match_like_query_names() {
        let gc = name("java.lang:type=GarbageCollector,name=G1 Young Generation");
        assert!(pattern("*:*").matches(&gc));
        assert!(pattern("java.lang:*").matches(&gc));
        assert!(pattern("java.lang:type=GarbageCollector,*").matches(&gc));
        assert!(pattern("java.*:type=Garbage*,*").matches(&gc));
        assert!(pattern("java.lan?:name=G1 Young Generation,type=GarbageCollector").matches(&gc));
        assert!(!pattern("java.lang:type=GarbageCollector").matches(&gc));
        assert!(!pattern("java.lang:type=Memory,*").matches(&gc));
        assert!(!pattern("kafka.*:*").matches(&gc));
        assert!(pattern("*:*").matches_all());
        assert!(!pattern("java.lang:*").matches_all());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*PerSec*", "MessagesInPerSecond"));
        assert!(!wildcard_match("*PerSec", "MessagesInPerSecond"));
    }
}
