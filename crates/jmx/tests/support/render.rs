//! The rule engine without HTTP: `/jmx` answers through a rules file, written as text.

use std::path::Path;

use kiln_jmx::json;
use kiln_jmx::rules::cache::MatchCache;
use kiln_jmx::rules::config::RawConfig;
use kiln_jmx::rules::{Naming, RuleSet};
use kiln_jmx::walk::{Bean, Walker};
use kiln_registry::config::{ConfigError, parse_yaml};

/// Compiles a rules file given as text.
pub fn rules(yaml: &str) -> RuleSet {
    let raw: RawConfig = parse_yaml(Path::new("rules.yml"), yaml).unwrap();
    RuleSet::compile(raw, &|path, message| {
        ConfigError::at_key(Path::new("rules.yml"), yaml, path, message)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The beans of Hadoop `/jmx` answers through the rules `yaml` with the names of `naming`,
/// written as text (twice, so the second pass comes from the cache, and both must agree).
pub fn render_as(yaml: &str, naming: Naming, answers: &[&str]) -> String {
    let rules = rules(yaml).with_naming(naming);
    let mut cache = MatchCache::new(&rules);
    let documents: Vec<_> = answers.iter().map(|a| json::parse(a).unwrap()).collect();
    let mut texts = Vec::new();
    for _ in 0..2 {
        let mut walker = Walker::new(&rules, &mut cache);
        for document in &documents {
            let Some(json::Value::Array(items)) = document.get("beans") else {
                panic!("no beans")
            };
            for item in items {
                let json::Value::Object(attributes) = item else {
                    continue;
                };
                let name = item.get("name").and_then(json::Value::as_str).unwrap();
                walker.bean(Bean { name, attributes });
            }
        }
        let mut exposition = kiln_registry::Exposition::new(kiln_registry::metrics::Format::Text);
        let none = kiln_registry::MetricSet::default();
        kiln_jmx::families::write(
            walker.samples.into_rows(),
            rules.naming,
            &none,
            &mut exposition,
        );
        texts.push(exposition.finish());
    }
    assert_eq!(texts[0], texts[1], "a cached pass differs from the first");
    texts.pop().unwrap()
}
