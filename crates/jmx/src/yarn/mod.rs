//! YARN's own view of a cluster, from the ResourceManager's REST API: which applications
//! run (name, user, queue, type), what YARN allocated to each (vcores, memory, GPUs,
//! containers), and the cluster's totals. Served on `/metrics` by the `yarn` collector
//! when a `yarn:` section or `--yarn.resourcemanager-url` names the ResourceManager.
//!
//! The labels match the node exporter's `yarn` collector and the GPU exporter's process
//! series (`yarn_application`), so Prometheus joins what an application was given with
//! what its containers use (see deploy/prometheus/rules/kiln-yarn.yml).

pub mod collector;
pub mod config;
pub mod rest;

pub use collector::YarnCollector;
pub use config::{YarnFlags, YarnSettings};
