//! Which hosts `kiln top` shows, and which exporter URLs make up each.
//!
//! A target is `host` (every standard Kiln port of that host), `host:port` (one exporter)
//! or a full URL. Targets sharing a host name form one row, so a `file_sd` file listing
//! `gpu1:9100` and `gpu1:9445` shows one host with its GPUs.

use std::path::Path;

use anyhow::{Context as _, Result};
use kiln_scraper::targets::{Target, load_file_sd, parse_list};

/// The exporters a bare host name stands for: node, GPU and ping, on their standard
/// ports. One that does not run there shows as refused in the detail pane only.
pub const STANDARD_PORTS: [u16; 3] = [9100, 9445, 9427];

/// One row of `kiln top`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub urls: Vec<String>,
}

/// Targets from the command line and from `file` (a `file_sd` file when it ends in
/// `.json`, `.yml` or `.yaml`, else a list with one target per line). With neither, this
/// host.
pub fn resolve(arguments: &[String], file: Option<&Path>) -> Result<Vec<HostSpec>> {
    let mut targets: Vec<Target> = arguments.iter().map(Target::new).collect();
    if let Some(file) = file {
        let is_file_sd = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yml" | "yaml"));
        if is_file_sd {
            targets.extend(load_file_sd(file)?);
        } else {
            let text = kiln_scraper::targets::read_capped(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            targets.extend(parse_list(&text));
        }
    }
    if targets.is_empty() {
        targets.push(Target::new("localhost"));
    }
    Ok(group(&targets))
}

/// Groups targets by host name, in order of first appearance.
pub fn group(targets: &[Target]) -> Vec<HostSpec> {
    let mut hosts: Vec<HostSpec> = Vec::new();
    for target in targets {
        let (name, urls) = expand(target);
        match hosts.iter_mut().find(|h| h.name == name) {
            Some(host) => {
                for url in urls {
                    if !host.urls.contains(&url) {
                        host.urls.push(url);
                    }
                }
            }
            None => hosts.push(HostSpec { name, urls }),
        }
    }
    hosts
}

/// A target's host name and the URLs it stands for.
fn expand(target: &Target) -> (String, Vec<String>) {
    let address = target.address.trim();
    let authority = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let (host, port) = split_port(authority);
    if port.is_some() || address.contains("://") {
        return (host.to_owned(), vec![target.url("http", "/metrics")]);
    }
    let urls = STANDARD_PORTS
        .iter()
        .map(|port| {
            let bracketed = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            Target {
                address: format!("{bracketed}:{port}"),
                labels: target.labels.clone(),
            }
            .url("http", "/metrics")
        })
        .collect();
    (host.to_owned(), urls)
}

/// `host:port`, `[v6]:port`, `[v6]`, a bare v6 address or a bare name.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(arguments: &[&str]) -> Vec<HostSpec> {
        let targets: Vec<Target> = arguments.iter().map(|a| Target::new(*a)).collect();
        group(&targets)
    }

    #[test]
    fn a_bare_host_stands_for_every_standard_port() {
        assert_eq!(
            hosts(&["gpu1"]),
            [HostSpec {
                name: "gpu1".into(),
                urls: vec![
                    "http://gpu1:9100/metrics".into(),
                    "http://gpu1:9445/metrics".into(),
                    "http://gpu1:9427/metrics".into(),
                ],
            }]
        );
        assert_eq!(hosts(&["::1"])[0].urls[0], "http://[::1]:9100/metrics");
    }

    #[test]
    fn targets_of_one_host_share_a_row() {
        let grouped = hosts(&[
            "gpu1:9100",
            "https://gpu2:9445/metrics",
            "gpu1:9445",
            "[fd00:203::1]:9100",
            "gpu1:9100",
        ]);
        let names: Vec<&str> = grouped.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["gpu1", "gpu2", "fd00:203::1"]);
        assert_eq!(
            grouped[0].urls,
            ["http://gpu1:9100/metrics", "http://gpu1:9445/metrics"]
        );
        assert_eq!(grouped[1].urls, ["https://gpu2:9445/metrics"]);
    }

    #[test]
    fn no_targets_means_this_host() {
        let resolved = resolve(&[], None).unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].name, "localhost");
    }

    #[test]
    fn a_file_sd_file_and_a_list_are_both_read() {
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("targets.json");
        std::fs::write(
            &sd,
            r#"[{"targets": ["a:9100", "a:9445"], "labels": {"job": "x"}}]"#,
        )
        .unwrap();
        let list = dir.path().join("hosts.txt");
        std::fs::write(&list, "# fleet\nb:9100\n\nc\n").unwrap();
        let from_sd = resolve(&[], Some(&sd)).unwrap();
        assert_eq!(from_sd.len(), 1);
        assert_eq!(from_sd[0].urls.len(), 2);
        let from_list = resolve(&["z:1".into()], Some(&list)).unwrap();
        let names: Vec<&str> = from_list.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["z", "b", "c"]);
        let broken = dir.path().join("broken.yml");
        std::fs::write(&broken, "- targets: [a\n").unwrap();
        let error = resolve(&[], Some(&broken)).unwrap_err().to_string();
        assert!(error.contains("broken.yml"), "{error}");
    }
}
