//! Which MBeans and attributes a module reads: `includeObjectNames`/`excludeObjectNames` (or
//! the older `whitelistObjectNames`/`blacklistObjectNames`), `excludeJvmMetrics`, and the
//! per-bean attribute lists `includeObjectNameAttributes`/`excludeObjectNameAttributes`.

use std::collections::{BTreeMap, HashMap, HashSet};

use kiln_registry::config::ConfigError;

use super::Locate;
use crate::object_name::{ObjectName, ObjectNamePattern};

/// Domains `excludeJvmMetrics: true` leaves out: the JVM's own platform MBeans.
const JVM_DOMAINS: [&str; 7] = [
    "java.lang",
    "java.nio",
    "java.util.logging",
    "jdk.management.jfr",
    "com.sun.management",
    "javax.management",
    "JMImplementation",
];

/// The compiled filters.
#[derive(Debug, Default)]
pub struct BeanFilter {
    /// `None`: every MBean.
    include: Option<Vec<ObjectNamePattern>>,
    exclude: Vec<ObjectNamePattern>,
    exclude_jvm: bool,
    /// Canonical object name → the only attributes read from that bean.
    include_attributes: HashMap<String, HashSet<String>>,
    /// Canonical object name → attributes never read.
    exclude_attributes: HashMap<String, HashSet<String>>,
}

/// What may be read of one bean.
#[derive(Debug, Clone, Copy)]
pub struct AttributeFilter<'a> {
    include: Option<&'a HashSet<String>>,
    exclude: Option<&'a HashSet<String>>,
}

impl AttributeFilter<'_> {
    /// Whether attribute `name` is read.
    pub fn admits(&self, name: &str) -> bool {
        self.include.is_none_or(|set| set.contains(name))
            && !self.exclude.is_some_and(|set| set.contains(name))
    }
}

impl BeanFilter {
    /// Compiles the configured lists; a malformed object name is located.
    pub fn compile(
        include: Option<Vec<String>>,
        exclude: Option<Vec<String>>,
        exclude_jvm: bool,
        include_attributes: BTreeMap<String, Vec<String>>,
        exclude_attributes: BTreeMap<String, Vec<String>>,
        locate: Locate<'_>,
    ) -> Result<Self, ConfigError> {
        let patterns = |list: Option<Vec<String>>, key: &str| {
            list.map(|items| {
                items
                    .iter()
                    .map(|text| ObjectNamePattern::parse(text).map_err(|e| locate(&[key], e)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
        };
        let attribute_map = |map: BTreeMap<String, Vec<String>>, key: &str| {
            map.into_iter()
                .map(|(name, attributes)| {
                    let parsed = ObjectName::parse(&name).map_err(|e| locate(&[key], e))?;
                    Ok((parsed.canonical(), attributes.into_iter().collect()))
                })
                .collect::<Result<HashMap<_, _>, ConfigError>>()
        };
        Ok(Self {
            include: patterns(include, "includeObjectNames")?,
            exclude: patterns(exclude, "excludeObjectNames")?.unwrap_or_default(),
            exclude_jvm,
            include_attributes: attribute_map(include_attributes, "includeObjectNameAttributes")?,
            exclude_attributes: attribute_map(exclude_attributes, "excludeObjectNameAttributes")?,
        })
    }

    /// The patterns to ask the bridge for; empty means all MBeans (`*:*`).
    pub fn query(&self) -> &[ObjectNamePattern] {
        match &self.include {
            Some(patterns) if !patterns.iter().any(ObjectNamePattern::matches_all) => patterns,
            _ => &[],
        }
    }

    /// Whether the bean is read at all.
    pub fn admits(&self, name: &ObjectName) -> bool {
        if let Some(include) = &self.include
            && !include.iter().any(|p| p.matches(name))
        {
            return false;
        }
        if self.exclude.iter().any(|p| p.matches(name)) {
            return false;
        }
        // An explicit include pattern brings JVM beans back, as in jmx_exporter.
        if self.exclude_jvm
            && JVM_DOMAINS.contains(&name.domain())
            && !self
                .include
                .as_ref()
                .is_some_and(|include| include.iter().any(|p| !p.matches_all() && p.matches(name)))
        {
            return false;
        }
        if !self.include_attributes.is_empty()
            && !self.include_attributes.contains_key(&name.canonical())
        {
            return false;
        }
        true
    }

    /// The attribute filter for one admitted bean.
    pub fn attributes(&self, name: &ObjectName) -> AttributeFilter<'_> {
        if self.include_attributes.is_empty() && self.exclude_attributes.is_empty() {
            return AttributeFilter {
                include: None,
                exclude: None,
            };
        }
        let canonical = name.canonical();
        AttributeFilter {
            include: self.include_attributes.get(&canonical),
            exclude: self.exclude_attributes.get(&canonical),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        include: Option<&[&str]>,
        exclude: &[&str],
        jvm: bool,
        attributes: &[(&str, &[&str])],
    ) -> BeanFilter {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        BeanFilter::compile(
            include.map(list),
            Some(list(exclude)),
            jvm,
            attributes
                .iter()
                .map(|(name, attrs)| ((*name).to_owned(), list(attrs)))
                .collect(),
            BTreeMap::new(),
            &|_, m| ConfigError::file(std::path::Path::new("t"), m),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(text: &str) -> ObjectName {
        ObjectName::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn include_exclude_and_jvm() {
        let memory = name("java.lang:type=Memory");
        let fs = name("Hadoop:service=NameNode,name=FSNamesystem");
        let all = filter(None, &[], false, &[]);
        assert!(all.admits(&memory) && all.admits(&fs));
        assert!(all.query().is_empty());

        let hadoop = filter(
            Some(&["Hadoop:*"]),
            &["Hadoop:name=JvmMetrics,*"],
            false,
            &[],
        );
        assert!(!hadoop.admits(&memory));
        assert!(hadoop.admits(&fs));
        assert!(!hadoop.admits(&name("Hadoop:service=NameNode,name=JvmMetrics")));
        assert_eq!(hadoop.query().len(), 1);

        let no_jvm = filter(None, &[], true, &[]);
        assert!(!no_jvm.admits(&memory));
        assert!(no_jvm.admits(&fs));
        let memory_back = filter(Some(&["java.lang:type=Memory"]), &[], true, &[]);
        assert!(memory_back.admits(&memory));
    }

    #[test]
    fn attribute_lists_use_canonical_names() {
        let only = filter(
            None,
            &[],
            false,
            &[("java.lang:type=Memory", &["HeapMemoryUsage"])],
        );
        let memory = name("java.lang:type=Memory");
        assert!(only.admits(&memory));
        assert!(!only.admits(&name("java.lang:type=Threading")));
        let attributes = only.attributes(&memory);
        assert!(attributes.admits("HeapMemoryUsage"));
        assert!(!attributes.admits("NonHeapMemoryUsage"));

        let reordered = filter(None, &[], false, &[("d:b=2,a=1", &["X"])]);
        assert!(reordered.admits(&name("d:a=1,b=2")));
    }
}
