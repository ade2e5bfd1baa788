//! `nvmesubsystem`: each NVMe subsystem of `/sys/class/nvme-subsystem/` (NVMe over
//! Fabrics and multipath NVMe), its namespaces, and the state of each controller path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(NvmeSubsystem {
        root: settings.paths.sys("class/nvme-subsystem"),
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct NvmeSubsystem {
    /// `/sys/class/nvme-subsystem`.
    root: PathBuf,
    /// Holds back repeats of the warning about subsystems that could not be read.
    warnings: LogLimiter,
}

/// The `state` label values, sorted: each path has a series for every one of them.
const STATES: [&str; 7] = [
    "connecting",
    "dead",
    "deleting",
    "live",
    "new",
    "resetting",
    "unknown",
];

/// A controller's state as the kernel words it, folded to a `state` label value: the
/// kernel's `deleting (no IO)` counts as `deleting`; anything unknown is `unknown`.
fn state_label(raw: &str) -> &'static str {
    match raw {
        "live" => "live",
        "connecting" => "connecting",
        "resetting" => "resetting",
        "dead" => "dead",
        "deleting" | "deleting (no IO)" => "deleting",
        "new" => "new",
        _ => "unknown",
    }
}

/// `nvme<digits>`: a controller directory of a subsystem.
fn is_controller(name: &str) -> bool {
    name.strip_prefix("nvme")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `nvme<digits>n<digits>`: a namespace block device of a subsystem.
fn is_namespace(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix("nvme")
        .and_then(|rest| rest.split_once('n'))
        .is_some_and(|(controller, namespace)| digits(controller) && digits(namespace))
}

#[derive(Debug, PartialEq)]
struct Controller {
    name: String,
    state: String,
    transport: String,
}

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

/// Reads one subsystem directory. Upstream gives up on a subsystem whose identity files or
/// whose controllers' state files cannot be read; so does this, naming the file.
fn read_subsystem(dir: &Path, name: &str) -> Result<Subsystem, String> {
    let attribute = |path: PathBuf| {
        read::read_attribute(&path)
            .map(|text| text.trim().to_owned())
            .map_err(|error| format!("{}: {error}", path.display()))
    };
    let entries =
        read::dir_entries(dir, |_| true).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut subsystem = Subsystem {
        name: name.to_owned(),
        nqn: attribute(dir.join("subsysnqn"))?,
        model: attribute(dir.join("model"))?,
        serial: attribute(dir.join("serial"))?,
        iopolicy: attribute(dir.join("iopolicy"))?,
        controllers: Vec::new(),
        namespaces: Vec::new(),
    };
    for (entry, path) in entries {
        if is_controller(&entry) {
            subsystem.controllers.push(Controller {
                state: attribute(path.join("state"))?,
                transport: attribute(path.join("transport"))?,
                name: entry,
            });
        } else if is_namespace(&entry) {
            subsystem.namespaces.push(entry);
        }
    }
    Ok(subsystem)
}

impl Collector for NvmeSubsystem {
    fn name(&self) -> &str {
        "nvmesubsystem"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // A host without NVMe subsystems (or without the right to see them) has no data.
        let listing = match std::fs::read_dir(&self.root) {
            Ok(listing) => listing,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                tracing::debug!(collector = "nvmesubsystem", %error, "no NVMe subsystems");
                return Err(CollectError::NoData);
            }
            Err(error) => return Err(read::failed(&self.root, error)),
        };
        let mut subsystems: Vec<(String, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.starts_with("nvme-subsys")
                    .then(|| (name, entry.path()))
            })
            .collect();
        subsystems.sort_by(|a, b| read::natural_cmp(&a.0, &b.0));
        let info = out.gauge(
            "node_nvmesubsystem_info",
            "Non-numeric information about an NVMe subsystem.",
        );
        let namespace_info = out.gauge(
            "node_nvmesubsystem_namespace_info",
            "Maps an NVMe namespace block device to its subsystem.",
        );
        let path_state = out.gauge(
            "node_nvmesubsystem_path_state",
            "Current NVMe controller path state (1 for the current state, 0 for all others).",
        );
        let paths = out.gauge(
            "node_nvmesubsystem_paths",
            "Number of controller paths for an NVMe subsystem.",
        );
        let paths_live = out.gauge(
            "node_nvmesubsystem_paths_live",
            "Number of controller paths in live state for an NVMe subsystem.",
        );
        for (name, dir) in subsystems {
            let subsystem = match read_subsystem(&dir, &name) {
                Ok(subsystem) => subsystem,
                Err(problem) => {
                    if let Some(held_back) = self.warnings.check() {
                        tracing::warn!(
                            collector = "nvmesubsystem",
                            subsystem = %name,
                            %problem,
                            held_back,
                            "subsystem not reported"
                        );
                    }
                    continue;
                }
            };
            out.sample(
                info,
                &[
                    ("subsystem", &subsystem.name),
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
                    &[("subsystem", &subsystem.name), ("device", namespace)],
                    1.0,
                );
            }
            let mut live = 0;
            for controller in &subsystem.controllers {
                let current = state_label(&controller.state);
                if current == "live" {
                    live += 1;
                }
                for state in STATES {
                    let labels = [
                        ("subsystem", subsystem.name.as_str()),
                        ("controller", &controller.name),
                        ("transport", &controller.transport),
                        ("state", state),
                    ];
                    out.sample(path_state, &labels, f64::from(u8::from(state == current)));
                }
            }
            let labels = [("subsystem", subsystem.name.as_str())];
            out.sample(paths, &labels, subsystem.controllers.len() as f64);
            out.sample(paths_live, &labels, f64::from(live));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(root: &Path) -> Result<String, CollectError> {
        let collector = NvmeSubsystem {
            root: root.join("sys/class/nvme-subsystem"),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut set = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        collector.collect(&ctx, &mut set)?;
        set.seal();
        let mut text = String::new();
        let left_out = kiln_registry::metrics::encode(
            &[&set],
            kiln_registry::metrics::Format::Text,
            &mut text,
        );
        assert!(left_out.is_empty());
        Ok(text)
    }

    fn sys_fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures/sys.ttar");
        kiln_test_support::ttar::extract(&archive, dir.path()).unwrap();
        dir
    }

    /// Upstream's `TestNVMeSubsystemMetrics`: its expected exposition over the fixture.
    #[test]
    fn upstreams_expected_output() {
        let dir = sys_fixture();
        let mut expected = String::from(
            "# HELP node_nvmesubsystem_info Non-numeric information about an NVMe subsystem.\n\
             # TYPE node_nvmesubsystem_info gauge\n\
             node_nvmesubsystem_info{iopolicy=\"round-robin\",model=\"Dell PowerStore\",nqn=\"nqn.2014-08.org.nvmexpress:uuid:a34c4f3a-0d6f-5cec-dead-beefcafebabe\",serial=\"SN12345678\",subsystem=\"nvme-subsys0\"} 1\n\
             # HELP node_nvmesubsystem_namespace_info Maps an NVMe namespace block device to its subsystem.\n\
             # TYPE node_nvmesubsystem_namespace_info gauge\n\
             node_nvmesubsystem_namespace_info{device=\"nvme0n1\",subsystem=\"nvme-subsys0\"} 1\n\
             # HELP node_nvmesubsystem_path_state Current NVMe controller path state (1 for the current state, 0 for all others).\n\
             # TYPE node_nvmesubsystem_path_state gauge\n",
        );
        for (controller, current) in [
            ("nvme0", "live"),
            ("nvme1", "live"),
            ("nvme2", "live"),
            ("nvme3", "dead"),
        ] {
            for state in STATES {
                expected.push_str(&format!(
                    "node_nvmesubsystem_path_state{{controller=\"{controller}\",state=\"{state}\",subsystem=\"nvme-subsys0\",transport=\"fc\"}} {}\n",
                    u8::from(state == current)
                ));
            }
        }
        expected.push_str(
            "# HELP node_nvmesubsystem_paths Number of controller paths for an NVMe subsystem.\n\
             # TYPE node_nvmesubsystem_paths gauge\n\
             node_nvmesubsystem_paths{subsystem=\"nvme-subsys0\"} 4\n\
             # HELP node_nvmesubsystem_paths_live Number of controller paths in live state for an NVMe subsystem.\n\
             # TYPE node_nvmesubsystem_paths_live gauge\n\
             node_nvmesubsystem_paths_live{subsystem=\"nvme-subsys0\"} 3\n",
        );
        assert_eq!(collect(dir.path()).unwrap(), expected);
    }

    /// Upstream's `TestNVMeSubsystemNoDevices`.
    #[test]
    fn no_subsystems_is_no_data() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(collect(dir.path()), Err(CollectError::NoData)));
    }

    /// Upstream's `TestNormalizeControllerState`.
    #[test]
    fn controller_states() {
        for (raw, label) in [
            ("live", "live"),
            ("connecting", "connecting"),
            ("resetting", "resetting"),
            ("dead", "dead"),
            ("deleting", "deleting"),
            ("deleting (no IO)", "deleting"),
            ("new", "new"),
            ("", "unknown"),
            ("something-else", "unknown"),
        ] {
            assert_eq!(state_label(raw), label, "{raw:?}");
        }
    }

    #[test]
    fn directory_names() {
        assert!(is_controller("nvme0") && is_controller("nvme12"));
        assert!(!is_controller("nvme") && !is_controller("nvme0n1") && !is_controller("power"));
        assert!(is_namespace("nvme0n1") && is_namespace("nvme3n12"));
        assert!(!is_namespace("nvme0c0n1") && !is_namespace("nvme0n") && !is_namespace("nvmen1"));
    }

    #[test]
    fn an_unreadable_subsystem_is_left_out() {
        let dir = sys_fixture();
        let root = dir.path().join("sys/class/nvme-subsystem");
        let broken = root.join("nvme-subsys1");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join("model"), "x\n").unwrap();
        let text = collect(dir.path()).unwrap();
        assert!(text.contains("subsystem=\"nvme-subsys0\""));
        assert!(!text.contains("nvme-subsys1"), "{text}");
    }
}
