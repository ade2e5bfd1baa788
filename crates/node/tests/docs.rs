//! docs/node-exporter.md says what the code and the tests say: its collector table lists
//! exactly the collectors of [`kiln_node::collectors::ALL`] with their defaults, and its
//! account of the end-to-end test's allow-list names exactly the families in
//! `tests/upstream_e2e/differences.txt`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

fn docs() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/node-exporter.md");
    std::fs::read_to_string(path).unwrap()
}

/// The text of the section under `heading`, up to the next heading of its level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    let body = &text[start + heading.len()..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

#[test]
fn the_collector_table_is_the_code_s() {
    let text = docs();
    let table: BTreeMap<&str, bool> = section(&text, "## Collectors\n")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", name, "on", ..] => Some((*name, true)),
                ["", name, "off", ..] => Some((*name, false)),
                _ => None,
            }
        })
        .collect();
    let code: BTreeMap<&str, bool> = kiln_node::collectors::ALL
        .iter()
        .map(|spec| (spec.name, spec.enabled_by_default))
        .collect();
    assert_eq!(table, code);
}

#[test]
fn the_allow_list_is_the_one_documented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream_e2e/differences.txt");
    let allowed: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let text = docs();
    let documented = section(&text, "## node_exporter's own end-to-end test\n");
    if allowed.is_empty() {
        assert!(
            documented.contains("`tests/upstream_e2e/differences.txt`, is empty"),
            "the docs must say the allow-list is empty"
        );
    } else {
        for family in &allowed {
            assert!(
                documented.contains(&format!("`{family}`")),
                "{family} is allowed to differ but not documented"
            );
        }
        assert!(!documented.contains("is empty"));
    }
}
