//! The JVM's own metrics, as jmx_exporter's java agent adds them beside the rules' output
//! (`jvm_memory_bytes_used`, `jvm_gc_collection_seconds`, `jvm_threads_*`, `process_*`),
//! read from the platform beans in the same answer: `java.lang:type=Memory`, `MemoryPool`,
//! `GarbageCollector`, `Threading`, `ClassLoading`, `OperatingSystem` and `Runtime`.
//!
//! Names and types are those of the agent's Prometheus Java client: with 0.x naming
//! `simpleclient_hotspot` 0.9 (jmx_exporter 0.13's agent), with 1.x naming
//! `prometheus-metrics-instrumentation-jvm` 1.7 (jmx_exporter 1.6's). The two differ only in
//! the memory families (`jvm_memory_bytes_used` became `jvm_memory_used_bytes`) and in
//! `jvm_classes_loaded`, which became `jvm_classes_currently_loaded`.
//!
//! Families the bridges carry nothing for are not written: thread states and deadlocks
//! (thread dumps and operations, not attributes), the process's resident and virtual memory
//! (read from the JVM's own `/proc`), the runtime's version labels (system properties,
//! never read), buffer pools (`java.nio` beans, not fetched) and allocation counts (memory
//! pool notifications).

use std::collections::HashSet;

use kiln_registry::{MetricSet, MetricType};

use crate::json::Value;
use crate::object_name::ObjectName;
use crate::rules::Naming;
use crate::rules::evaluate::parse_number;
use crate::walk::Bean;

/// The object name patterns whose beans this reads, asked of the bridge when the rules'
/// include patterns would not fetch them.
pub const QUERY: &str = "java.lang:*";

/// One sample: the suffix after the family name (`_count`), its one label, its value.
type JvmSample<'a> = (&'static str, Option<(&'static str, &'a str)>, f64);

/// One family: name, help, type, and samples.
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<JvmSample<'a>>,
}

/// The memory family names of each naming: area used/committed/max/init, then the pools'.
fn memory_names(naming: Naming) -> [&'static str; 8] {
    match naming {
        Naming::V0 => [
            "jvm_memory_bytes_used",
            "jvm_memory_bytes_committed",
            "jvm_memory_bytes_max",
            "jvm_memory_bytes_init",
            "jvm_memory_pool_bytes_used",
            "jvm_memory_pool_bytes_committed",
            "jvm_memory_pool_bytes_max",
            "jvm_memory_pool_bytes_init",
        ],
        Naming::V1 => [
            "jvm_memory_used_bytes",
            "jvm_memory_committed_bytes",
            "jvm_memory_max_bytes",
            "jvm_memory_init_bytes",
            "jvm_memory_pool_used_bytes",
            "jvm_memory_pool_committed_bytes",
            "jvm_memory_pool_max_bytes",
            "jvm_memory_pool_init_bytes",
        ],
    }
}

/// The usage items, in the order of [`memory_names`].
const USAGE: [&str; 4] = ["used", "committed", "max", "init"];

/// Writes the JVM families found in `beans` to `out`, skipping any whose name is in `taken`
/// (a rule already wrote a family of that name). Returns how many families were skipped.
pub fn write(
    beans: &[Bean<'_>],
    naming: Naming,
    taken: &HashSet<&str>,
    out: &mut MetricSet,
) -> u64 {
    let mut memory = None;
    let mut threading = None;
    let mut class_loading = None;
    let mut os = None;
    let mut runtime = None;
    let mut collectors = Vec::new();
    let mut pools = Vec::new();
    for bean in beans {
        if !bean.name.starts_with("java.lang:") {
            continue;
        }
        let Ok(name) = ObjectName::parse(bean.name) else {
            continue;
        };
        match (name.property("type"), name.property("name")) {
            (Some("Memory"), _) => memory = Some(bean),
            (Some("Threading"), _) => threading = Some(bean),
            (Some("ClassLoading"), _) => class_loading = Some(bean),
            (Some("OperatingSystem"), _) => os = Some(bean),
            (Some("Runtime"), _) => runtime = Some(bean),
            (Some("GarbageCollector"), Some(gc)) => collectors.push((bean, gc.to_owned())),
            (Some("MemoryPool"), Some(pool)) => pools.push((bean, pool.to_owned())),
            _ => {}
        }
    }
    let names = memory_names(naming);
    let mut families: Vec<Family<'_>> = Vec::new();
    if let Some(memory) = memory {
        for (i, item) in USAGE.iter().enumerate() {
            let samples: Vec<_> = [
                ("heap", "HeapMemoryUsage"),
                ("nonheap", "NonHeapMemoryUsage"),
            ]
            .into_iter()
            .filter_map(|(area, attribute)| {
                composite(memory, attribute, item).map(|v| ("", Some(("area", area)), v))
            })
            .collect();
            families.push(Family {
                name: names[i],
                help: MEMORY_HELP[i],
                kind: "gauge",
                samples,
            });
        }
    }
    for (i, item) in USAGE.iter().enumerate() {
        let samples: Vec<_> = pools
            .iter()
            .filter_map(|(bean, pool)| {
                composite(bean, "Usage", item).map(|v| ("", Some(("pool", pool.as_str())), v))
            })
            .collect();
        families.push(Family {
            name: names[4 + i],
            help: POOL_HELP[i],
            kind: "gauge",
            samples,
        });
    }
    let mut gc_samples = Vec::new();
    for (bean, gc) in &collectors {
        if let (Some(count), Some(millis)) = (
            number(bean, "CollectionCount"),
            number(bean, "CollectionTime"),
        ) {
            gc_samples.push(("_count", Some(("gc", gc.as_str())), count));
            gc_samples.push(("_sum", Some(("gc", gc.as_str())), millis / 1e3));
        }
    }
    families.push(Family {
        name: "jvm_gc_collection_seconds",
        help: "Time spent in each garbage collector, in seconds, and how many collections it ran.",
        kind: "summary",
        samples: gc_samples,
    });
    if let Some(threading) = threading {
        for (name, help, kind, attribute) in [
            (
                "jvm_threads_current",
                "Live threads of the JVM.",
                "gauge",
                "ThreadCount",
            ),
            (
                "jvm_threads_daemon",
                "Live daemon threads of the JVM.",
                "gauge",
                "DaemonThreadCount",
            ),
            (
                "jvm_threads_peak",
                "Most live threads of the JVM at once.",
                "gauge",
                "PeakThreadCount",
            ),
            (
                "jvm_threads_started_total",
                "Threads the JVM has started.",
                "counter",
                "TotalStartedThreadCount",
            ),
        ] {
            families.push(single(name, help, kind, number(threading, attribute)));
        }
    }
    if let Some(class_loading) = class_loading {
        let loaded = match naming {
            Naming::V0 => "jvm_classes_loaded",
            Naming::V1 => "jvm_classes_currently_loaded",
        };
        for (name, help, kind, attribute) in [
            (
                loaded,
                "Classes loaded in the JVM now.",
                "gauge",
                "LoadedClassCount",
            ),
            (
                "jvm_classes_loaded_total",
                "Classes the JVM has loaded since it started.",
                "counter",
                "TotalLoadedClassCount",
            ),
            (
                "jvm_classes_unloaded_total",
                "Classes the JVM has unloaded since it started.",
                "counter",
                "UnloadedClassCount",
            ),
        ] {
            families.push(single(name, help, kind, number(class_loading, attribute)));
        }
    }
    if let Some(os) = os {
        families.push(single(
            "process_cpu_seconds_total",
            "CPU time (user and system) the JVM's process has used, in seconds.",
            "counter",
            number(os, "ProcessCpuTime")
                .filter(|v| *v >= 0.0)
                .map(|ns| ns / 1e9),
        ));
    }
    if let Some(runtime) = runtime {
        families.push(single(
            "process_start_time_seconds",
            "When the JVM started, in seconds since the Unix epoch.",
            "gauge",
            number(runtime, "StartTime").map(|ms| ms / 1e3),
        ));
    }
    if let Some(os) = os {
        families.push(single(
            "process_open_fds",
            "File descriptors the JVM's process has open.",
            "gauge",
            number(os, "OpenFileDescriptorCount"),
        ));
        families.push(single(
            "process_max_fds",
            "Most file descriptors the JVM's process may open.",
            "gauge",
            number(os, "MaxFileDescriptorCount"),
        ));
    }

    let mut skipped = 0;
    for family in families {
        if family.samples.is_empty() {
            continue;
        }
        if taken.contains(family.name) {
            skipped += 1;
            continue;
        }
        let kind = match family.kind {
            "counter" => MetricType::Counter,
            "summary" => MetricType::Summary,
            _ => MetricType::Gauge,
        };
        let id = out.family(family.name, family.help, kind);
        if kind == MetricType::Summary {
            // A summary without quantiles: its `_count` and `_sum`, label set by label set.
            for pair in family.samples.chunks(2) {
                let part = |suffix: &str| pair.iter().find(|s| s.0 == suffix).map(|s| s.2);
                let (Some(count), Some(sum)) = (part("_count"), part("_sum")) else {
                    continue;
                };
                let labels: &[(&str, &str)] = match &pair[0].1 {
                    Some(label) => std::slice::from_ref(label),
                    None => &[],
                };
                out.summary(id, labels, &[], sum, count as u64);
            }
        } else {
            for (_, label, value) in &family.samples {
                let labels: &[(&str, &str)] = match label {
                    Some(label) => std::slice::from_ref(label),
                    None => &[],
                };
                out.sample(id, labels, *value);
            }
        }
    }
    skipped
}

const MEMORY_HELP: [&str; 4] = [
    "Bytes used in the JVM's heap or non-heap memory.",
    "Bytes committed for the JVM's heap or non-heap memory.",
    "Most bytes the JVM's heap or non-heap memory may use (-1: no limit).",
    "Bytes the JVM's heap or non-heap memory started with.",
];

const POOL_HELP: [&str; 4] = [
    "Bytes used in a JVM memory pool.",
    "Bytes committed for a JVM memory pool.",
    "Most bytes a JVM memory pool may use (-1: no limit).",
    "Bytes a JVM memory pool started with.",
];

fn single(
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: Option<f64>,
) -> Family<'static> {
    Family {
        name,
        help,
        kind,
        samples: value.map(|v| ("", None, v)).into_iter().collect(),
    }
}

/// A number attribute of `bean`.
fn number(bean: &Bean<'_>, attribute: &str) -> Option<f64> {
    match attribute_value(bean, attribute)? {
        Value::Number(text) => parse_number(text),
        _ => None,
    }
}

/// An item of a composite attribute of `bean` (`HeapMemoryUsage.used`).
fn composite(bean: &Bean<'_>, attribute: &str, item: &str) -> Option<f64> {
    match attribute_value(bean, attribute)?.get(item)? {
        Value::Number(text) => parse_number(text),
        _ => None,
    }
}

fn attribute_value<'a>(bean: &'a Bean<'a>, attribute: &str) -> Option<&'a Value<'a>> {
    bean.attributes
        .iter()
        .find(|(key, _)| key == attribute)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test JVM's platform beans through Hadoop's servlet (tests/fixtures/README.md).
    const ANSWER: &str = include_str!("../tests/fixtures/jvm-java-lang-kiln-test-jvm.json");

    fn render(naming: Naming, taken: &[&str]) -> (String, u64) {
        let document = crate::json::parse(ANSWER).unwrap_or(Value::Null);
        let mut beans = Vec::new();
        crate::bridge::hadoop::beans(&document, &mut beans).unwrap_or_default();
        let mut set = MetricSet::default();
        let skipped = write(&beans, naming, &taken.iter().copied().collect(), &mut set);
        set.seal();
        let mut out = String::new();
        kiln_registry::metrics::encode(&[&set], kiln_registry::metrics::Format::Text, &mut out);
        (out, skipped)
    }

    /// A value of the answer, read independently of the code under test.
    fn recorded(bean: &str, path: &[&str]) -> f64 {
        let answer: serde_json::Value = serde_json::from_str(ANSWER).unwrap_or_default();
        let bean = answer["beans"]
            .as_array()
            .and_then(|beans| beans.iter().find(|b| b["name"] == bean))
            .unwrap_or_else(|| panic!("{bean} is in the answer"));
        path.iter()
            .fold(bean, |v, key| &v[*key])
            .as_f64()
            .unwrap_or_else(|| panic!("{bean} {path:?}"))
    }

    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let exposition = kiln_scraper::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        exposition.value(name, labels)
    }

    #[test]
    fn families_of_both_namings_from_the_platform_beans() {
        let heap_used = recorded("java.lang:type=Memory", &["HeapMemoryUsage", "used"]);
        let eden_max = recorded(
            "java.lang:name=Eden Space,type=MemoryPool",
            &["Usage", "max"],
        );
        let copy = "java.lang:name=Copy,type=GarbageCollector";
        for (naming, used, pool_max) in [
            (
                Naming::V0,
                "jvm_memory_bytes_used",
                "jvm_memory_pool_bytes_max",
            ),
            (
                Naming::V1,
                "jvm_memory_used_bytes",
                "jvm_memory_pool_max_bytes",
            ),
        ] {
            let (text, skipped) = render(naming, &[]);
            assert_eq!(skipped, 0);
            assert_eq!(
                sample(&text, used, &[("area", "heap")]),
                Some(heap_used),
                "{text}"
            );
            assert_eq!(
                sample(&text, pool_max, &[("pool", "Eden Space")]),
                Some(eden_max)
            );
            assert_eq!(
                sample(&text, "jvm_gc_collection_seconds_count", &[("gc", "Copy")]),
                Some(recorded(copy, &["CollectionCount"]))
            );
            assert_eq!(
                sample(&text, "jvm_gc_collection_seconds_sum", &[("gc", "Copy")]),
                Some(recorded(copy, &["CollectionTime"]) / 1e3)
            );
            assert!(
                text.contains("# TYPE jvm_gc_collection_seconds summary\n"),
                "{text}"
            );
            assert_eq!(
                sample(&text, "jvm_threads_started_total", &[]),
                Some(recorded(
                    "java.lang:type=Threading",
                    &["TotalStartedThreadCount"]
                ))
            );
            assert!(
                text.contains("# TYPE jvm_threads_started_total counter\n"),
                "{text}"
            );
            let loaded = match naming {
                Naming::V0 => "jvm_classes_loaded",
                Naming::V1 => "jvm_classes_currently_loaded",
            };
            assert_eq!(
                sample(&text, loaded, &[]),
                Some(recorded(
                    "java.lang:type=ClassLoading",
                    &["LoadedClassCount"]
                ))
            );
            assert_eq!(
                sample(&text, "jvm_classes_loaded_total", &[]),
                Some(recorded(
                    "java.lang:type=ClassLoading",
                    &["TotalLoadedClassCount"]
                ))
            );
            assert_eq!(
                sample(&text, "process_cpu_seconds_total", &[]),
                Some(recorded("java.lang:type=OperatingSystem", &["ProcessCpuTime"]) / 1e9)
            );
            assert_eq!(
                sample(&text, "process_start_time_seconds", &[]),
                Some(recorded("java.lang:type=Runtime", &["StartTime"]) / 1e3)
            );
            assert_eq!(
                sample(&text, "process_max_fds", &[]),
                Some(recorded(
                    "java.lang:type=OperatingSystem",
                    &["MaxFileDescriptorCount"]
                ))
            );
            for name in [
                "jvm_threads_current",
                "jvm_threads_daemon",
                "jvm_threads_peak",
            ] {
                assert!(sample(&text, name, &[]).is_some_and(|v| v > 0.0), "{name}");
            }
        }
    }

    #[test]
    fn a_name_the_rules_took_is_left_to_them() {
        let (text, skipped) = render(Naming::V0, &["jvm_threads_current"]);
        assert_eq!(skipped, 1);
        assert!(!text.contains("jvm_threads_current"), "{text}");
        assert!(text.contains("jvm_threads_peak"), "{text}");
    }
}
