//! kiln-node-exporter: a drop-in replacement for Prometheus' node_exporter on Linux.
//!
//! Same flags, same metric names and labels, so existing scrape configs, alerts and the
//! "Node Exporter Full" dashboard keep working; and where node_exporter hurts, it does
//! better: a hung NFS mount never blocks a scrape (statfs runs off the scrape path), a bad textfile never
//! breaks the others, slow sensors are bounded by a time budget, and hosts with hundreds
//! of cores can aggregate per-CPU series.
//!
//! Every collector is one file in [`collectors`]; [`collectors::ALL`] says which run by
//! default. All host access goes through [`Paths`], so tests point it at fixture trees.

pub mod cli;
pub mod collectors;
mod filter;
pub mod flags;
mod go_text;
mod gojson;
mod netlink;
mod paths;
mod read;
mod statfs_pool;
mod sys;

pub use cli::{Cli, CollectorSet};
pub use flags::{CollectorOptions, NodeFlags};
pub use paths::Paths;
pub use sys::activated_listeners;
