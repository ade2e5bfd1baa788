//! Keys jmx_exporter does not know. jmx_exporter ignores them without a word, so a misspelt
//! `lowercaseOutputName` silently changes every name; here each one is reported with its
//! line, and a misspelt `rules` (which would export every attribute under default names) is
//! refused.

use kiln_registry::config::edit_distance;
use serde_yaml_ng::Value;

/// Top-level keys some jmx_exporter version reads (0.x to 1.x), including those only its
/// own HTTP server, OpenTelemetry exporter or RMI connection use.
const TOP: &[&str] = &[
    "startDelaySeconds",
    "scrapeTimeoutSeconds",
    "hostPort",
    "jmxUrl",
    "username",
    "password",
    "ssl",
    "lowercaseOutputName",
    "lowercaseOutputLabelNames",
    "inferCounterTypeFromName",
    "includeObjectNames",
    "excludeObjectNames",
    "whitelistObjectNames",
    "blacklistObjectNames",
    "excludeJvmMetrics",
    "includeObjectNameAttributes",
    "excludeObjectNameAttributes",
    "autoExcludeObjectNameAttributes",
    "metricCustomizers",
    "rules",
    "httpServer",
    "openTelemetry",
];

/// Keys of a rule.
const RULE: &[&str] = &[
    "pattern",
    "name",
    "value",
    "valueFactor",
    "labels",
    "help",
    "type",
    "attrNameSnakeCase",
    "cache",
];

/// Keys of a `metricCustomizers` entry, its `mbeanFilter` and its `extraMetrics` entries.
const CUSTOMIZER: &[&str] = &["mbeanFilter", "attributesAsLabels", "extraMetrics"];
const MBEAN_FILTER: &[&str] = &["domain", "properties"];
const EXTRA_METRIC: &[&str] = &["name", "value", "description"];

/// A key path (outermost first, list items as `[n]`) and what to say about it.
pub type Finding = (Vec<String>, String);

/// The unknown keys of a jmx_exporter configuration, and the one problem that refuses it: no
/// `rules` but an unknown key holding what looks like rules, which is a misspelt `rules`.
pub fn check(config: &Value) -> (Vec<Finding>, Option<Finding>) {
    let mut unknown = Vec::new();
    let Value::Mapping(top) = config else {
        return (unknown, None);
    };
    let mut refusal = None;
    for (key, value) in top {
        let Some(key) = key.as_str() else { continue };
        if !TOP.contains(&key) {
            unknown.push((vec![key.to_owned()], message(key, TOP)));
            if !top.contains_key("rules") && looks_like_rules(key, value) {
                refusal = Some((
                    vec![key.to_owned()],
                    format!(
                        "unknown key `{key}` holds what looks like rules and there is no \
                         `rules`: is it a misspelt `rules`? Without `rules` every attribute would be exported \
                         under default names"
                    ),
                ));
            }
        }
    }
    let mut items = |list: &str, allowed: &[&str], nested: &[(&str, &[&str], bool)]| {
        let Some(Value::Sequence(entries)) = top.get(list) else {
            return;
        };
        for (i, entry) in entries.iter().enumerate() {
            let path = [list.to_owned(), format!("[{i}]")];
            unknown_in(entry, &path, allowed, &mut unknown);
            for (key, keys, is_list) in nested {
                match (entry.get(*key), is_list) {
                    (Some(Value::Sequence(inner)), true) => {
                        for (j, item) in inner.iter().enumerate() {
                            let path = [
                                path[0].clone(),
                                path[1].clone(),
                                (*key).into(),
                                format!("[{j}]"),
                            ];
                            unknown_in(item, &path, keys, &mut unknown);
                        }
                    }
                    (Some(inner), false) => {
                        let path = [path[0].clone(), path[1].clone(), (*key).into()];
                        unknown_in(inner, &path, keys, &mut unknown);
                    }
                    _ => {}
                }
            }
        }
    };
    items("rules", RULE, &[]);
    items(
        "metricCustomizers",
        CUSTOMIZER,
        &[
            ("mbeanFilter", MBEAN_FILTER, false),
            ("extraMetrics", EXTRA_METRIC, true),
        ],
    );
    (unknown, refusal)
}

/// A list under a name close to `rules`, or a list of mappings with a `pattern` or `name`.
fn looks_like_rules(key: &str, value: &Value) -> bool {
    let Value::Sequence(items) = value else {
        return false;
    };
    edit_distance(&key.to_ascii_lowercase(), "rules") <= 2
        || items.iter().any(|item| {
            item.as_mapping()
                .is_some_and(|m| m.contains_key("pattern") || m.contains_key("name"))
        })
}

fn unknown_in(value: &Value, path: &[String], allowed: &[&str], out: &mut Vec<Finding>) {
    let Value::Mapping(map) = value else { return };
    for key in map.keys().filter_map(Value::as_str) {
        if !allowed.contains(&key) {
            let mut full = path.to_vec();
            full.push(key.to_owned());
            out.push((full, message(key, allowed)));
        }
    }
}

/// "unknown key, ignored", with the known key it is probably a misspelling of.
fn message(key: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                k,
            )
        })
        .min();
    match closest {
        Some((distance, k)) if distance <= 2.max(key.len() / 6) => {
            format!("unknown key, ignored (did you mean `{k}`?)")
        }
        _ => "unknown key, ignored".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> (Vec<Finding>, Option<Finding>) {
        check(&serde_yaml_ng::from_str(yaml).unwrap_or(Value::Null))
    }

    #[test]
    fn known_keys_pass() {
        let (unknown, refusal) = run(
            "lowercaseOutputName: true\nhttpServer: {}\nrules:\n  - pattern: a\n    name: b\n    labels: {x: y}\nmetricCustomizers:\n  - mbeanFilter: {domain: d}\n    extraMetrics:\n      - {name: n, value: 1}\n",
        );
        assert!(unknown.is_empty(), "{unknown:?}");
        assert!(refusal.is_none());
    }

    #[test]
    fn unknown_keys_are_found_with_suggestions() {
        let (unknown, refusal) = run(
            "lowercaseOutputNme: true\nrules:\n  - pattern: a\n    nmae: b\ncolour: red\nmetricCustomizers:\n  - mbeanFilter: {domian: d}\n",
        );
        assert!(refusal.is_none());
        let found: Vec<(String, &str)> = unknown
            .iter()
            .map(|(p, m)| (p.join("."), m.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "lowercaseOutputNme".into(),
                    "unknown key, ignored (did you mean `lowercaseOutputName`?)"
                ),
                ("colour".into(), "unknown key, ignored"),
                (
                    "rules.[0].nmae".into(),
                    "unknown key, ignored (did you mean `name`?)"
                ),
                (
                    "metricCustomizers.[0].mbeanFilter.domian".into(),
                    "unknown key, ignored (did you mean `domain`?)"
                ),
            ]
        );
    }

    #[test]
    fn a_misspelt_rules_is_refused() {
        let (_, refusal) = run("lowercaseOutputName: true\nrule:\n  - pattern: a\n");
        assert_eq!(refusal.map(|(p, _)| p), Some(vec!["rule".to_owned()]));
        let (_, refusal) = run("my_rules:\n  - name: x\n    pattern: y\n");
        assert_eq!(refusal.map(|(p, _)| p), Some(vec!["my_rules".to_owned()]));
        // With `rules` present, another list is only reported; so is a list that is not
        // rules under another name.
        let (unknown, refusal) = run("rules: []\nextra:\n  - 1\n");
        assert!(refusal.is_none());
        assert_eq!(unknown.len(), 1);
        let (unknown, refusal) = run("includeObjectNamez: ['Hadoop:*']\n");
        assert!(refusal.is_none());
        assert_eq!(unknown.len(), 1);
    }
}
