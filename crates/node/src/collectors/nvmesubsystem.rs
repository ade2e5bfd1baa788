//! `nvmesubsystem` (off by default): NVMe subsystems from `/sys/class/nvme-subsystem/`,
//! with the state of each controller path, for NVMe over Fabrics multipathing (a
//! subsystem reached through several controllers, some of which may be down).

use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(NvmeSubsystem {
        root: settings.paths.sys("class/nvme-subsystem"),
    })
}

struct NvmeSubsystem {
    /// `/sys/class/nvme-subsystem`.
    root: PathBuf,
}

/// The `state` label values, sorted; a state the kernel reports that is not one of these
/// is `unknown`, and `deleting (no IO)` is `deleting`.
const STATES: [&str; 7] = [
    "connecting",
    "dead",
    "deleting",
    "live",
    "new",
    "resetting",
    "unknown",
];

fn state_label(raw: &str) -> &'static str {
    match raw {
        "deleting (no IO)" => "deleting",
        raw => STATES
            .iter()
            .find(|state| **state == raw && raw != "unknown")
            .copied()
            .unwrap_or("unknown"),
    }
}

/// One controller path of a subsystem.
#[derive(Debug, PartialEq)]
struct Controller {
    name: String,
    state: String,
    transport: String,
}

/// One subsystem, as read from its directory.
#[derive(Debug, PartialEq)]
struct Subsystem {
    name: String,
    nqn: String,
    model: String,
    serial: String,
    iopolicy: String,
    controllers: Vec<Controller>,
    namespaces: Vec<String>,
}

/// `nvme<digits>`: a controller; `nvme<digits>n<digits>`: a namespace.
fn kind(name: &str) -> Option<bool> {
    let rest = name.strip_prefix("nvme")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(rest) {
        return Some(true);
    }
    let (controller, namespace) = rest.split_once('n')?;
    (digits(controller) && digits(namespace)).then_some(false)
}

/// A sysfs attribute, trimmed; empty when it cannot be read (the series keep the rest).
fn attribute(path: &Path) -> String {
    read::attribute(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

fn read_subsystem(name: &str, dir: &Path) -> Result<Subsystem, CollectError> {
    let mut controllers = Vec::new();
    let mut namespaces = Vec::new();
    for (entry, path) in read::dir_entries(dir, |entry| kind(entry).is_some())? {
        if kind(&entry) == Some(true) {
            controllers.push(Controller {
                state: attribute(&path.join("state")),
                transport: attribute(&path.join("transport")),
                name: entry,
            });
        } else {
            namespaces.push(entry);
        }
    }
    Ok(Subsystem {
        name: name.to_owned(),
        nqn: attribute(&dir.join("subsysnqn")),
        model: attribute(&dir.join("model")),
        serial: attribute(&dir.join("serial")),
        iopolicy: attribute(&dir.join("iopolicy")),
        controllers,
        namespaces,
    })
}

impl Collector for NvmeSubsystem {
    fn name(&self) -> &str {
        "nvmesubsystem"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = read::dir_entries(&self.root, |name| name.starts_with("nvme-subsys"))?;
        let info = out.gauge(
            "node_nvmesubsystem_info",
            "Non-numeric information about an NVMe subsystem.",
        );
        let namespace_info = out.gauge(
            "node_nvmesubsystem_namespace_info",
            "Maps an NVMe namespace block device to its subsystem.",
        );
        let paths = out.gauge(
            "node_nvmesubsystem_paths",
            "Number of controller paths for an NVMe subsystem.",
        );
        let paths_live = out.gauge(
            "node_nvmesubsystem_paths_live",
            "Number of controller paths in live state for an NVMe subsystem.",
        );
        let path_state = out.gauge(
            "node_nvmesubsystem_path_state",
            "Current NVMe controller path state (1 for the current state, 0 for all others).",
        );
        for (name, dir) in entries {
            // A subsystem removed while it was read is left out of this scrape.
            let Ok(subsystem) = read_subsystem(&name, &dir) else {
                continue;
            };
            let name = subsystem.name.as_str();
            out.sample(
                info,
                &[
                    ("subsystem", name),
                    ("nqn", &subsystem.nqn),
                    ("model", &subsystem.model),
                    ("serial", &subsystem.serial),
                    ("iopolicy", &subsystem.iopolicy),
                ],
                1.0,
            );
            for namespace in &subsystem.namespaces {
                out.sample(
                    namespace_info,
                    &[("subsystem", name), ("device", namespace)],
                    1.0,
                );
            }
            let mut live = 0.0;
            for controller in &subsystem.controllers {
                let current = state_label(&controller.state);
                if current == "live" {
                    live += 1.0;
                }
                for state in STATES {
                    out.sample(
                        path_state,
                        &[
                            ("subsystem", name),
                            ("controller", &controller.name),
                            ("transport", &controller.transport),
                            ("state", state),
                        ],
                        if state == current { 1.0 } else { 0.0 },
                    );
                }
            }
            out.sample(
                paths,
                &[("subsystem", name)],
                subsystem.controllers.len() as f64,
            );
            out.sample(paths_live, &[("subsystem", name)], live);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_as_node_exporter_names_them() {
        assert_eq!(state_label("live"), "live");
        assert_eq!(state_label("deleting (no IO)"), "deleting");
        assert_eq!(state_label("frozen"), "unknown");
        assert_eq!(state_label("unknown"), "unknown");
        assert_eq!(state_label(""), "unknown");
    }

    #[test]
    fn controllers_and_namespaces_by_name() {
        assert_eq!(kind("nvme0"), Some(true));
        assert_eq!(kind("nvme12n3"), Some(false));
        assert_eq!(kind("nvme0c0n1"), None);
        assert_eq!(kind("nvme"), None);
        assert_eq!(kind("subsysnqn"), None);
    }

    #[test]
    fn reads_node_exporters_fixture() {
        let work = tempfile::tempdir().unwrap();
        let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures/sys.ttar");
        kiln_test_support::ttar::extract(&archive, work.path()).unwrap();
        let collector = NvmeSubsystem {
            root: work.path().join("sys/class/nvme-subsystem"),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        for line in [
            r#"node_nvmesubsystem_info{iopolicy="round-robin",model="Dell PowerStore",nqn="nqn.2014-08.org.nvmexpress:uuid:a34c4f3a-0d6f-5cec-dead-beefcafebabe",serial="SN12345678",subsystem="nvme-subsys0"} 1"#,
            r#"node_nvmesubsystem_namespace_info{device="nvme0n1",subsystem="nvme-subsys0"} 1"#,
            r#"node_nvmesubsystem_paths{subsystem="nvme-subsys0"} 4"#,
            r#"node_nvmesubsystem_paths_live{subsystem="nvme-subsys0"} 3"#,
            r#"node_nvmesubsystem_path_state{controller="nvme3",state="dead",subsystem="nvme-subsys0",transport="fc"} 1"#,
            r#"node_nvmesubsystem_path_state{controller="nvme3",state="live",subsystem="nvme-subsys0",transport="fc"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(
            text.matches("node_nvmesubsystem_path_state{").count(),
            4 * STATES.len()
        );
    }
}
