//! Spark-shaped Graphite names for the benchmark and the load generator: the 314 metrics of
//! a real Spark 4.3 driver (tests/fixtures), over executors and applications.

const CAPTURE: &str = include_str!("../../tests/fixtures/spark-4.3-graphitesink-local.txt");

/// `count` distinct names `<application id>.<executor>.<metric>`.
pub(crate) fn spark_names(count: usize) -> Vec<String> {
    let mut metrics: Vec<&str> = CAPTURE
        .lines()
        .filter_map(|l| l.split(' ').next())
        .filter_map(|n| n.split_once(".driver.").map(|(_, m)| m))
        .collect();
    metrics.sort_unstable();
    metrics.dedup();
    (0..)
        .flat_map(|app| (0..40).map(move |executor| (app, executor)))
        .flat_map(|(app, executor)| {
            let executor = if executor == 0 {
                "driver".to_owned()
            } else {
                executor.to_string()
            };
            metrics.iter().map(move |metric| {
                format!("application_1795252902794_{app:04}.{executor}.{metric}")
            })
        })
        .take(count)
        .collect()
}
