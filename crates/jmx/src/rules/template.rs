//! Java's replacement syntax (`Matcher.replaceAll`), which rule `name`, `labels`, `value`
//! and `help` use: `$1`, `${name}`, `\$` for a literal. It differs from Rust's: in Java `$1_$2`
//! is group 1, `_`, group 2, and a multi-digit reference takes as many digits as still name
//! a group (`$12` is group 12 only if the pattern has twelve groups, else group 1 and `2`).

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Group(usize),
}

/// Spans of the capture groups of one match, group 0 first; `None` for a group that did not
/// take part.
pub type Spans = [Option<(usize, usize)>];

impl Template {
    /// Parses `text` for a pattern with `groups` capture groups whose names are `names`
    /// (index, name). Errors are those Java would throw when the rule is used.
    pub fn parse(text: &str, groups: usize, names: &[(usize, String)]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => literal.push(escaped),
                    None => return Err("a trailing '\\' escapes nothing".into()),
                },
                '$' => {
                    let group = match chars.next() {
                        None => return Err("'$' at the end names no group".into()),
                        Some('{') => {
                            let mut name = String::new();
                            loop {
                                match chars.next() {
                                    Some('}') => break,
                                    Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                                    _ => return Err(format!("'${{{name}' is not closed by '}}'")),
                                }
                            }
                            names
                                .iter()
                                .find(|(_, n)| *n == name)
                                .map(|(i, _)| *i)
                                .ok_or_else(|| format!("the pattern has no group named {name:?}"))?
                        }
                        Some(d) if d.is_ascii_digit() => {
                            let mut group = d as usize - '0' as usize;
                            if group > groups {
                                return Err(format!(
                                    "${group} refers to a group the pattern does not have ({groups} groups)"
                                ));
                            }
                            while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                                let longer = group * 10 + next as usize;
                                if longer > groups {
                                    break;
                                }
                                group = longer;
                                chars.next();
                            }
                            group
                        }
                        Some(other) => {
                            return Err(format!("'${other}' is not a group reference"));
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Group(group));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the template uses any capture group.
    pub fn uses_groups(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Group(_)))
    }

    /// Expands the template for one match of `input` onto the end of `out`.
    pub fn expand_into(&self, input: &str, spans: &Spans, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Group(group) => {
                    if let Some(Some((start, end))) = spans.get(*group) {
                        out.push_str(&input[*start..*end]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Template {
        fn expand(&self, input: &str, spans: &Spans) -> String {
            let mut out = String::new();
            self.expand_into(input, spans, &mut out);
            out
        }
    }

    fn expand(template: &str, groups: &[&str]) -> String {
        let input: String = groups.concat();
        let mut spans = vec![Some((0, input.len()))];
        let mut at = 0;
        for g in groups {
            spans.push(Some((at, at + g.len())));
            at += g.len();
        }
        Template::parse(template, groups.len(), &[(1, "first".into())])
            .unwrap_or_else(|e| panic!("{e}"))
            .expand(&input, &spans)
    }

    #[test]
    fn java_group_references() {
        assert_eq!(
            expand("kafka_$1_$2", &["server", "Broker"]),
            "kafka_server_Broker"
        );
        assert_eq!(expand("$1$2", &["a", "b"]), "ab");
        assert_eq!(expand("${first}-x", &["a"]), "a-x");
        assert_eq!(expand(r"cost_\$1", &["a"]), "cost_$1");
        assert_eq!(expand("plain", &[]), "plain");
        // Two groups only: `$12` is group 1 then the digit 2.
        assert_eq!(expand("$12", &["a", "b"]), "a2");
        let twelve: Vec<String> = (1..=12).map(|i| format!("g{i}.")).collect();
        let twelve: Vec<&str> = twelve.iter().map(String::as_str).collect();
        assert_eq!(expand("$12", &twelve), "g12.");
        assert_eq!(expand("$0", &["x", "y"]), "xy");
    }

    #[test]
    fn a_group_that_did_not_take_part_is_empty() {
        let template = Template::parse("a$1b", 1, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(template.expand("zz", &[Some((0, 2)), None]), "ab");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for (text, groups) in [("$", 1), ("$x", 1), ("$3", 2), ("${nope}", 1), ("a\\", 0)] {
            assert!(Template::parse(text, groups, &[]).is_err(), "{text}");
        }
    }

    #[test]
    fn literals_and_group_use() {
        let fixed = Template::parse(r"a\$b", 0, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fixed.expand("", &[]), "a$b");
        assert!(!fixed.uses_groups());
        let grouped = Template::parse("$1", 1, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(grouped.uses_groups());
        assert_eq!(grouped.expand("xy", &[Some((0, 2)), Some((1, 2))]), "y");
    }
}
