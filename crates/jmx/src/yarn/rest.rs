//! The two ResourceManager REST answers the collector reads, parsed into what it serves.
//!
//! `GET /ws/v1/cluster/apps?states=RUNNING` answers `{"apps": {"app": [ … ]}}`, or
//! `{"apps": null}` when nothing runs. `GET /ws/v1/cluster/metrics` answers
//! `{"clusterMetrics": { … }}`. Fields the collector does not use are ignored, and fields a
//! Hadoop version does not write (`decommissioningNodes` before 2.8, the
//! `…AcrossPartition` resources before 3.3) read as absent, so one parser serves Hadoop 2
//! and 3. Extra resource types such as GPUs are only in Hadoop 3's `resourceInformations`
//! lists, named by their resource type (`yarn.io/gpu`).

use serde::Deserialize;

/// The resource type name YARN gives GPUs.
pub const GPU_RESOURCE: &str = "yarn.io/gpu";

/// Why an answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON of another shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// JSON without the expected top-level object.
    #[error("the answer has no {0:?} object")]
    Missing(&'static str),
}

/// One running application, as the collector serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// `application_<cluster timestamp>_<sequence>`.
    pub id: String,
    /// The name the submitter gave (`spark.app.name` for Spark).
    pub name: String,
    /// Who submitted it.
    pub user: String,
    /// Its queue.
    pub queue: String,
    /// `SPARK`, `MAPREDUCE`, `TEZ`, …
    pub application_type: String,
    /// Virtual cores allocated to its running containers.
    pub allocated_vcores: f64,
    /// Memory allocated to its running containers, in bytes.
    pub allocated_memory_bytes: f64,
    /// GPUs allocated to its running containers, when the cluster schedules GPUs.
    pub allocated_gpus: Option<f64>,
    /// Containers it runs now.
    pub running_containers: f64,
    /// When it started, in seconds since the epoch.
    pub started_seconds: Option<f64>,
}

/// The running applications of one answer, at most `limit` of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applications {
    /// The applications kept.
    pub kept: Vec<Application>,
    /// Applications in the answer beyond `limit`.
    pub left_out: usize,
}

/// The figures of `/ws/v1/cluster/metrics` the collector serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterMetrics {
    /// Applications by state: submitted, completed, pending, running, failed, killed.
    pub applications: Vec<(&'static str, f64)>,
    /// Virtual cores by state: total, allocated, available, reserved.
    pub vcores: Vec<(&'static str, f64)>,
    /// Memory in bytes by state: total, allocated, available, reserved.
    pub memory_bytes: Vec<(&'static str, f64)>,
    /// GPUs by state (total, allocated, available, reserved), when the cluster has them.
    pub gpus: Vec<(&'static str, f64)>,
    /// Containers by state: allocated, reserved, pending.
    pub containers: Vec<(&'static str, f64)>,
    /// NodeManagers by state: active, lost, unhealthy, decommissioning, decommissioned,
    /// rebooted, shutdown.
    pub nodes: Vec<(&'static str, f64)>,
}

const MIB: f64 = 1_048_576.0;

#[derive(Deserialize)]
struct AppsAnswer {
    apps: Option<AppsList>,
}

#[derive(Deserialize)]
struct AppsList {
    #[serde(default)]
    app: Vec<AppJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppJson {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    application_type: String,
    // The RM writes -1 for applications that hold nothing (finished ones).
    #[serde(default, rename = "allocatedVCores")]
    allocated_vcores: f64,
    #[serde(default, rename = "allocatedMB")]
    allocated_mb: f64,
    #[serde(default)]
    running_containers: f64,
    #[serde(default)]
    started_time: Option<f64>,
    #[serde(default)]
    resource_info: Option<ResourceInfoJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceInfoJson {
    #[serde(default)]
    resource_usages_by_partition: Vec<PartitionJson>,
}

#[derive(Deserialize)]
struct PartitionJson {
    #[serde(default)]
    used: Option<ResourceJson>,
}

/// A `resource` object: memory and vCores, and in Hadoop 3 every resource type by name.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceJson {
    #[serde(default)]
    resource_informations: Option<ResourceInformationsJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceInformationsJson {
    #[serde(default)]
    resource_information: Vec<ResourceInformationJson>,
}

#[derive(Deserialize)]
struct ResourceInformationJson {
    name: String,
    #[serde(default)]
    value: f64,
}

impl ResourceJson {
    /// The amount of resource type `name`, if the object lists it.
    fn amount(&self, name: &str) -> Option<f64> {
        self.resource_informations
            .as_ref()?
            .resource_information
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.value)
    }
}

/// Parses a `/ws/v1/cluster/apps` answer, keeping the first `limit` applications.
pub fn parse_applications(text: &str, limit: usize) -> Result<Applications, ParseError> {
    let answer: AppsAnswer = serde_json::from_str(text)?;
    // `{"apps": null}` is how the RM says no application matched.
    let apps = answer.apps.map(|a| a.app).unwrap_or_default();
    let left_out = apps.len().saturating_sub(limit);
    let kept = apps
        .into_iter()
        .take(limit)
        .map(|app| {
            let allocated_gpus = app.resource_info.as_ref().and_then(|info| {
                let amounts: Vec<f64> = info
                    .resource_usages_by_partition
                    .iter()
                    .filter_map(|p| p.used.as_ref()?.amount(GPU_RESOURCE))
                    .collect();
                (!amounts.is_empty()).then(|| amounts.iter().sum())
            });
            Application {
                id: app.id,
                name: app.name,
                user: app.user,
                queue: app.queue,
                application_type: app.application_type,
                allocated_vcores: app.allocated_vcores.max(0.0),
                allocated_memory_bytes: app.allocated_mb.max(0.0) * MIB,
                allocated_gpus,
                running_containers: app.running_containers.max(0.0),
                started_seconds: app.started_time.filter(|t| *t > 0.0).map(|t| t / 1000.0),
            }
        })
        .collect();
    Ok(Applications { kept, left_out })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsAnswer {
    cluster_metrics: Option<MetricsJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsJson {
    apps_submitted: Option<f64>,
    apps_completed: Option<f64>,
    apps_pending: Option<f64>,
    apps_running: Option<f64>,
    apps_failed: Option<f64>,
    apps_killed: Option<f64>,
    #[serde(rename = "totalMB")]
    total_mb: Option<f64>,
    #[serde(rename = "allocatedMB")]
    allocated_mb: Option<f64>,
    #[serde(rename = "availableMB")]
    available_mb: Option<f64>,
    #[serde(rename = "reservedMB")]
    reserved_mb: Option<f64>,
    total_virtual_cores: Option<f64>,
    allocated_virtual_cores: Option<f64>,
    available_virtual_cores: Option<f64>,
    reserved_virtual_cores: Option<f64>,
    containers_allocated: Option<f64>,
    containers_reserved: Option<f64>,
    containers_pending: Option<f64>,
    active_nodes: Option<f64>,
    lost_nodes: Option<f64>,
    unhealthy_nodes: Option<f64>,
    decommissioning_nodes: Option<f64>,
    decommissioned_nodes: Option<f64>,
    rebooted_nodes: Option<f64>,
    shutdown_nodes: Option<f64>,
    total_cluster_resources_across_partition: Option<ResourceJson>,
    total_used_resources_across_partition: Option<ResourceJson>,
    total_reserved_resources_across_partition: Option<ResourceJson>,
}

/// Parses a `/ws/v1/cluster/metrics` answer.
pub fn parse_cluster_metrics(text: &str) -> Result<ClusterMetrics, ParseError> {
    let answer: MetricsAnswer = serde_json::from_str(text)?;
    let m = answer
        .cluster_metrics
        .ok_or(ParseError::Missing("clusterMetrics"))?;
    let present = |pairs: &[(&'static str, Option<f64>)]| -> Vec<(&'static str, f64)> {
        pairs
            .iter()
            .filter_map(|(state, value)| value.map(|v| (*state, v)))
            .collect()
    };
    let mb = |v: Option<f64>| v.map(|v| v * MIB);
    // GPUs are only in the cross-partition resources, and "used" there includes what is
    // reserved (as the RM's own web UI subtracts it).
    let gpus = match m
        .total_cluster_resources_across_partition
        .as_ref()
        .and_then(|r| r.amount(GPU_RESOURCE))
    {
        None => Vec::new(),
        Some(total) => {
            let amount = |r: &Option<ResourceJson>| {
                r.as_ref()
                    .and_then(|r| r.amount(GPU_RESOURCE))
                    .unwrap_or(0.0)
            };
            let used = amount(&m.total_used_resources_across_partition);
            let reserved = amount(&m.total_reserved_resources_across_partition);
            vec![
                ("total", total),
                ("allocated", (used - reserved).max(0.0)),
                ("available", (total - used).max(0.0)),
                ("reserved", reserved),
            ]
        }
    };
    Ok(ClusterMetrics {
        applications: present(&[
            ("submitted", m.apps_submitted),
            ("completed", m.apps_completed),
            ("pending", m.apps_pending),
            ("running", m.apps_running),
            ("failed", m.apps_failed),
            ("killed", m.apps_killed),
        ]),
        vcores: present(&[
            ("total", m.total_virtual_cores),
            ("allocated", m.allocated_virtual_cores),
            ("available", m.available_virtual_cores),
            ("reserved", m.reserved_virtual_cores),
        ]),
        memory_bytes: present(&[
            ("total", mb(m.total_mb)),
            ("allocated", mb(m.allocated_mb)),
            ("available", mb(m.available_mb)),
            ("reserved", mb(m.reserved_mb)),
        ]),
        gpus,
        containers: present(&[
            ("allocated", m.containers_allocated),
            ("reserved", m.containers_reserved),
            ("pending", m.containers_pending),
        ]),
        nodes: present(&[
            ("active", m.active_nodes),
            ("lost", m.lost_nodes),
            ("unhealthy", m.unhealthy_nodes),
            ("decommissioning", m.decommissioning_nodes),
            ("decommissioned", m.decommissioned_nodes),
            ("rebooted", m.rebooted_nodes),
            ("shutdown", m.shutdown_nodes),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/yarn")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn documented_cluster_metrics() {
        let m = parse_cluster_metrics(&fixture("rm-cluster-metrics-hadoop-docs.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.vcores,
            [
                ("total", 8.0),
                ("allocated", 1.0),
                ("available", 7.0),
                ("reserved", 0.0)
            ]
        );
        assert_eq!(m.memory_bytes[0], ("total", 17408.0 * MIB));
        assert!(m.gpus.is_empty());
        assert_eq!(m.nodes.len(), 7);
    }

    #[test]
    fn hadoop_2_answers_without_newer_fields() {
        // Hadoop 2.7 writes neither decommissioningNodes nor shutdownNodes.
        let m =
            parse_cluster_metrics(r#"{"clusterMetrics":{"totalVirtualCores":8,"activeNodes":1}}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.vcores, [("total", 8.0)]);
        assert_eq!(m.nodes, [("active", 1.0)]);
    }

    #[test]
    fn gpus_from_resource_informations() {
        let m = parse_cluster_metrics(&fixture("rm-cluster-metrics-gpu.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.gpus,
            [
                ("total", 4.0),
                ("allocated", 1.0),
                ("available", 3.0),
                ("reserved", 0.0)
            ]
        );
        let apps = parse_applications(&fixture("rm-apps-running-gpu.json"), 10)
            .unwrap_or_else(|e| panic!("{e}"));
        let gpus: Vec<_> = apps.kept.iter().map(|a| a.allocated_gpus).collect();
        assert_eq!(gpus, [Some(1.0), Some(0.0)]);
        assert_eq!(apps.kept[0].name, "nightly-features");
        assert_eq!(apps.kept[0].started_seconds, Some(1_700_000_100.0));
    }

    #[test]
    fn no_applications_and_the_limit() {
        let none = parse_applications(r#"{"apps":null}"#, 10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none, Applications::default());
        let one = parse_applications(&fixture("rm-apps-hadoop-docs.json"), 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((one.kept.len(), one.left_out), (1, 1));
        // Finished applications carry -1: nothing held, not a negative amount.
        let finished = parse_applications(
            r#"{"apps":{"app":[{"id":"application_1_0001","allocatedMB":-1,"allocatedVCores":-1,"runningContainers":-1}]}}"#,
            10,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(finished.kept[0].allocated_memory_bytes, 0.0);
        assert_eq!(finished.kept[0].running_containers, 0.0);
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse_applications(r#"{"apps":{"app":[{"id":"#, 10).is_err());
        assert!(parse_applications(r#"{"apps":{"app":[{"name":"no id"}]}}"#, 10).is_err());
        assert!(parse_cluster_metrics("{}").is_err());
        assert!(parse_cluster_metrics(r#"{"clusterMetrics":{"totalMB":"lots"}}"#).is_err());
    }
}
