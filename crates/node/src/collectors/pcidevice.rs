//! `pcidevice`: each PCI device's identity, link speed and width, power state, SR-IOV
//! settings and NUMA node, from `/sys/bus/pci/devices/`; with
//! `--collector.pcidevice.names`, vendor, device and class names from a `pci.ids` file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::go_text::int_any_base;
use crate::read;

/// The pcidevice collector's options.
#[derive(Debug, Clone, clap::Args)]
// Without a group of its own: every collector's options struct is called `Options`.
#[group(skip)]
pub struct Options {
    /// The pci.ids file to name devices from [default: /usr/share/misc/pci.ids, else
    /// /usr/share/hwdata/pci.ids].
    #[arg(long = "collector.pcidevice.idsfile", value_name = "FILE")]
    pub idsfile: Option<PathBuf>,
    /// Add vendor, device, subsystem and class names to node_pcidevice_info (needs a
    /// pci.ids file).
    #[arg(
        long = "collector.pcidevice.names",
        overrides_with = "no_pcidevice_names"
    )]
    pub names: bool,
    #[arg(long = "no-collector.pcidevice.names", hide = true)]
    pub no_pcidevice_names: bool,
}

/// Where pci.ids usually is, in the order tried.
const DEFAULT_IDS_FILES: [&str; 2] = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.pcidevice;
    let names = (options.names && !options.no_pcidevice_names).then(|| {
        let candidates: Vec<PathBuf> = match &options.idsfile {
            Some(file) => vec![file.clone()],
            None => DEFAULT_IDS_FILES.iter().map(PathBuf::from).collect(),
        };
        for path in &candidates {
            match read::read_text(path) {
                Ok(text) => return PciIds::parse(&text),
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "pci.ids not readable");
                }
            }
        }
        tracing::warn!("no pci.ids file could be read; PCI devices are named by their IDs");
        PciIds::default()
    });
    boxed(Pcidevice {
        root: settings.paths.sys("bus/pci/devices"),
        names,
    })
}

struct Pcidevice {
    /// `/sys/bus/pci/devices`.
    root: PathBuf,
    /// The names to add to the info series, when asked for.
    names: Option<PciIds>,
}

/// Segment, bus, device and function, as the labels write them.
#[derive(Debug, Clone, PartialEq)]
struct Location([String; 4]);

impl Location {
    /// `0000:00:02.1`.
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let (Some(segment), Some(bus), Some(rest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (device, function) = rest.split_once('.')?;
        if function.contains('.') {
            return None;
        }
        let hex = |t: &str| i32::from_str_radix(t, 16).ok().filter(|n| *n >= 0);
        let (segment, bus, device, function) =
            (hex(segment)?, hex(bus)?, hex(device)?, hex(function)?);
        Some(Self([
            format!("{segment:04x}"),
            format!("{bus:02x}"),
            format!("{device:02x}"),
            format!("{function:x}"),
        ]))
    }

    fn labels(&self) -> [(&'static str, &str); 4] {
        [
            ("segment", self.0[0].as_str()),
            ("bus", self.0[1].as_str()),
            ("device", self.0[2].as_str()),
            ("function", self.0[3].as_str()),
        ]
    }
}

/// What is read of one device.
#[derive(Debug, PartialEq)]
struct Device {
    location: Location,
    /// `None` when the parent is a host bridge (`pci0000:00`), not a device.
    parent: Option<Location>,
    /// class, vendor, device, subsystem vendor, subsystem device, revision.
    ids: [u32; 6],
    numa_node: Option<i32>,
    max_link_speed: Option<f64>,
    max_link_width: Option<f64>,
    current_link_speed: Option<f64>,
    current_link_width: Option<f64>,
    sriov_drivers_autoprobe: Option<bool>,
    sriov_numvfs: Option<u32>,
    sriov_totalvfs: Option<u32>,
    sriov_vf_total_msix: Option<u64>,
    d3cold_allowed: Option<bool>,
    power_state: Option<String>,
}

/// The identity files, in the order of [`Device::ids`].
const ID_FILES: [&str; 6] = [
    "class",
    "vendor",
    "device",
    "subsystem_vendor",
    "subsystem_device",
    "revision",
];

/// A link speed, `8.0 GT/s PCIe`, in GT/s; `None` for `Unknown` or another unit.
fn link_speed(text: &str) -> Option<f64> {
    let (number, unit) = text.split_once(' ')?;
    if unit != "GT/s PCIe" {
        return None;
    }
    number.trim().parse().ok()
}

impl Device {
    /// Reads a device from its directory `dir`; `target` is where its entry in
    /// `/sys/bus/pci/devices` links to in the device tree (`../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0`). `None` if its
    /// location or an identity file cannot be read.
    fn read(dir: &read::AttributeDir, target: &Path) -> Option<Self> {
        let location = Location::parse(target.file_name()?.to_str()?)?;
        let parent_name = target.parent()?.file_name()?.to_str()?;
        let parent = if parent_name.starts_with("pci") {
            None
        } else {
            Some(Location::parse(parent_name)?)
        };
        let mut ids = [0; 6];
        for (slot, file) in ids.iter_mut().zip(ID_FILES) {
            let value = int_any_base(dir.attribute(file)?.trim())?;
            *slot = u32::try_from(value).ok()?;
        }
        // An empty or `Unknown…` value is a link the kernel cannot describe.
        let known = |file: &str| {
            dir.attribute(file)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty() && !t.starts_with("Unknown"))
        };
        let text = |file: &str| {
            dir.attribute(file)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        };
        let flag = |file: &str| text(file)?.parse::<i32>().ok().map(|n| n != 0);
        Some(Self {
            location,
            parent,
            ids,
            numa_node: known("numa_node").and_then(|t| t.parse().ok()),
            max_link_speed: known("max_link_speed").and_then(|t| link_speed(&t)),
            max_link_width: known("max_link_width")
                .and_then(|t| t.parse::<i64>().ok())
                .map(|n| n as f64),
            current_link_speed: known("current_link_speed").and_then(|t| link_speed(&t)),
            current_link_width: known("current_link_width")
                .and_then(|t| t.parse::<i64>().ok())
                .map(|n| n as f64),
            sriov_drivers_autoprobe: flag("sriov_drivers_autoprobe"),
            sriov_numvfs: text("sriov_numvfs").and_then(|t| t.parse().ok()),
            sriov_totalvfs: text("sriov_totalvfs").and_then(|t| t.parse().ok()),
            sriov_vf_total_msix: text("sriov_vf_total_msix").and_then(|t| t.parse().ok()),
            d3cold_allowed: flag("d3cold_allowed"),
            power_state: text("power_state"),
        })
    }
}

/// Names from a `pci.ids` file: vendors, devices, subsystems and classes by their hex IDs
/// (lower case, no `0x`).
#[derive(Debug, Default)]
struct PciIds {
    vendors: HashMap<String, String>,
    /// By vendor, then device.
    devices: HashMap<String, HashMap<String, String>>,
    /// By `vendor:device`, then `subvendor:subdevice`.
    subsystems: HashMap<String, HashMap<String, String>>,
    /// Base classes (`06`), subclasses (`0604`) and programming interfaces (`010802`).
    classes: HashMap<String, String>,
    subclasses: HashMap<String, String>,
    interfaces: HashMap<String, String>,
}

impl PciIds {
    /// Reads the file's layout: `vendor  name`, then `\tdevice  name`, then
    /// `\t\tsubvendor subdevice  name`; and `C class  name`, `\tsubclass  name`,
    /// `\t\tinterface  name`. An ID is separated from its name by two spaces.
    fn parse(text: &str) -> Self {
        let mut ids = Self::default();
        let (mut vendor, mut device) = (String::new(), String::new());
        let (mut class, mut subclass) = (String::new(), String::new());
        let mut in_classes = false;
        let split = |line: &str| {
            line.split_once("  ")
                .map(|(id, name)| (id.trim().to_string(), name.trim().to_string()))
        };
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("C ") {
                if let Some((id, name)) = split(rest) {
                    ids.classes.insert(id.clone(), name);
                    class = id;
                    in_classes = true;
                }
                continue;
            }
            let tabs = line.len() - line.trim_start_matches('\t').len();
            let body = &line[tabs.min(2)..];
            match (tabs, in_classes) {
                (1, true) => {
                    if let Some((id, name)) = split(body)
                        && !class.is_empty()
                    {
                        subclass = format!("{class}{id}");
                        ids.subclasses.insert(subclass.clone(), name);
                    }
                }
                (2, true) => {
                    if let Some((id, name)) = split(body)
                        && !subclass.is_empty()
                    {
                        ids.interfaces.insert(format!("{subclass}{id}"), name);
                    }
                }
                (0, _) => {
                    if let Some((id, name)) = split(body) {
                        ids.vendors.insert(id.clone(), name);
                        vendor = id;
                        device.clear();
                        in_classes = false;
                    }
                }
                (1, false) => {
                    if let Some((id, name)) = split(body)
                        && !vendor.is_empty()
                    {
                        ids.devices
                            .entry(vendor.clone())
                            .or_default()
                            .insert(id.clone(), name);
                        device = id;
                    }
                }
                (_, false) if tabs >= 2 => {
                    if let Some((id, name)) = split(body)
                        && !vendor.is_empty()
                        && !device.is_empty()
                    {
                        let parts: Vec<&str> = id.split_whitespace().collect();
                        if let [subvendor, subdevice] = parts[..] {
                            ids.subsystems
                                .entry(format!("{vendor}:{device}"))
                                .or_default()
                                .insert(format!("{subvendor}:{subdevice}"), name);
                        }
                    }
                }
                _ => {}
            }
        }
        ids
    }

    /// Vendor, device, subsystem vendor, subsystem device and class names of a device
    /// with these `ids` (as [`Device::ids`]); an ID stands in for a name not found.
    fn names(&self, ids: &[u32; 6]) -> [String; 5] {
        let [class, vendor, device, subvendor, subdevice, _] = *ids;
        let (class, vendor, device) = (
            format!("{class:06x}"),
            format!("{vendor:04x}"),
            format!("{device:04x}"),
        );
        let (subvendor, subdevice) = (format!("{subvendor:04x}"), format!("{subdevice:04x}"));
        let vendor_name = |id: &str| self.vendors.get(id).cloned().unwrap_or(id.to_string());
        let device_name = self
            .devices
            .get(&vendor)
            .and_then(|d| d.get(&device))
            .cloned()
            .unwrap_or(device.clone());
        let subsystem_name = self
            .subsystems
            .get(&format!("{vendor}:{device}"))
            .and_then(|s| s.get(&format!("{subvendor}:{subdevice}")))
            .cloned()
            .unwrap_or(subdevice.clone());
        let class_name = self
            .interfaces
            .get(&class[..6])
            .or_else(|| self.subclasses.get(&class[..4]))
            .or_else(|| self.classes.get(&class[..2]))
            .cloned()
            .unwrap_or_else(|| format!("Unknown class ({class})"));
        [
            vendor_name(&vendor),
            device_name,
            vendor_name(&subvendor),
            subsystem_name,
            class_name,
        ]
    }
}

/// The power states `node_pcidevice_power_state` has a series for.
const POWER_STATES: [&str; 7] = ["D0", "D1", "D2", "D3hot", "D3cold", "unknown", "error"];

impl Pcidevice {
    fn devices(&self) -> Result<Vec<Device>, CollectError> {
        let entries = read::Entries::list(&self.root, |_| true)?;
        let mut devices: Vec<Device> = Vec::new();
        for name in entries.names() {
            // Each entry links to the device's place in the device tree, which says
            // where it hangs.
            let Ok(target) = std::fs::read_link(self.root.join(name)) else {
                continue;
            };
            let Some(dir) = entries.dir().open_at(&[name]) else {
                continue;
            };
            let Some(device) = Device::read(&dir, &target) else {
                tracing::debug!(device = name, "PCI device without readable identity");
                continue;
            };
            if !devices.iter().any(|d| d.location == device.location) {
                devices.push(device);
            }
        }
        Ok(devices)
    }
}

impl Collector for Pcidevice {
    fn name(&self) -> &str {
        "pcidevice"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let devices = self.devices()?;
        let info = out.gauge(
            "node_pcidevice_info",
            "Non-numeric data from /sys/bus/pci/devices/<location>, value is always 1.",
        );
        let max_speed = out.gauge(
            "node_pcidevice_max_link_transfers_per_second",
            "Value of maximum link's transfers per second (T/s)",
        );
        let max_width = out.gauge(
            "node_pcidevice_max_link_width",
            "Value of maximum link's width (number of lanes)",
        );
        let current_speed = out.gauge(
            "node_pcidevice_current_link_transfers_per_second",
            "Value of current link's transfers per second (T/s)",
        );
        let current_width = out.gauge(
            "node_pcidevice_current_link_width",
            "Value of current link's width (number of lanes)",
        );
        let d3cold = out.gauge(
            "node_pcidevice_d3cold_allowed",
            "Whether the PCIe device supports D3cold power state (0/1).",
        );
        let autoprobe = out.gauge(
            "node_pcidevice_sriov_drivers_autoprobe",
            "Whether SR-IOV drivers autoprobe is enabled for the device (0/1).",
        );
        let numvfs = out.gauge(
            "node_pcidevice_sriov_numvfs",
            "Number of Virtual Functions (VFs) currently enabled for SR-IOV.",
        );
        let totalvfs = out.gauge(
            "node_pcidevice_sriov_totalvfs",
            "Total number of Virtual Functions (VFs) supported by the device.",
        );
        let msix = out.gauge(
            "node_pcidevice_sriov_vf_total_msix",
            "Total number of MSI-X vectors for Virtual Functions.",
        );
        let power = out.gauge(
            "node_pcidevice_power_state",
            "PCIe device power state, one of: D0, D1, D2, D3hot, D3cold, unknown or error.",
        );
        let numa = out.gauge(
            "node_pcidevice_numa_node",
            "NUMA node number for the PCI device. -1 indicates unknown or not available.",
        );
        for device in &devices {
            let location = device.location.labels();
            let unknown = Location(["*", "*", "*", "*"].map(String::from));
            let parent = device.parent.as_ref().unwrap_or(&unknown).labels();
            let [class, vendor, id, subvendor, subdevice, revision] = device.ids;
            let hex = [
                format!("0x{class:06x}"),
                format!("0x{vendor:04x}"),
                format!("0x{id:04x}"),
                format!("0x{subvendor:04x}"),
                format!("0x{subdevice:04x}"),
                format!("0x{revision:02x}"),
            ];
            let mut labels: Vec<(&str, &str)> = location.to_vec();
            let parent_names = [
                "parent_segment",
                "parent_bus",
                "parent_device",
                "parent_function",
            ];
            for (name, (_, value)) in parent_names.iter().zip(parent) {
                labels.push((name, value));
            }
            let id_labels = [
                "class_id",
                "vendor_id",
                "device_id",
                "subsystem_vendor_id",
                "subsystem_device_id",
                "revision",
            ];
            for (name, value) in id_labels.iter().zip(&hex) {
                labels.push((name, value.as_str()));
            }
            let names = self.names.as_ref().map(|ids| ids.names(&device.ids));
            if let Some(names) = &names {
                let name_labels = [
                    "vendor_name",
                    "device_name",
                    "subsystem_vendor_name",
                    "subsystem_device_name",
                    "class_name",
                ];
                for (name, value) in name_labels.iter().zip(names) {
                    labels.push((name, value.as_str()));
                }
            }
            out.sample(info, &labels, 1.0);

            // As node_exporter: a link the kernel does not describe is -1; a device
            // without SR-IOV or power management reports 0 for those.
            let or_unknown = |value: Option<f64>| value.unwrap_or(-1.0);
            let speed = |value: Option<f64>| value.map_or(-1.0, |gts| gts * 1e9);
            let bit = |value: Option<bool>| f64::from(u8::from(value.unwrap_or(false)));
            let values = [
                (max_speed, speed(device.max_link_speed)),
                (max_width, or_unknown(device.max_link_width)),
                (current_speed, speed(device.current_link_speed)),
                (current_width, or_unknown(device.current_link_width)),
                (d3cold, bit(device.d3cold_allowed)),
                (autoprobe, bit(device.sriov_drivers_autoprobe)),
                (numvfs, f64::from(device.sriov_numvfs.unwrap_or(0))),
                (totalvfs, f64::from(device.sriov_totalvfs.unwrap_or(0))),
                (msix, device.sriov_vf_total_msix.unwrap_or(0) as f64),
            ];
            for (family, value) in values {
                out.sample(family, &location, value);
            }
            if let Some(state) = &device.power_state {
                for candidate in POWER_STATES {
                    let mut labels = location.to_vec();
                    labels.push(("state", candidate));
                    out.sample(power, &labels, f64::from(u8::from(state == candidate)));
                }
            }
            if let Some(node) = device.numa_node.filter(|n| *n != -1) {
                out.sample(numa, &location, f64::from(node));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/node_exporter/fixtures"
    );

    #[test]
    fn locations() {
        let location = Location::parse("0000:00:02.1").unwrap();
        assert_eq!(location.0, ["0000", "00", "02", "1"]);
        assert_eq!(
            Location::parse("0000:0A:1f.7").unwrap().0,
            ["0000", "0a", "1f", "7"]
        );
        assert!(Location::parse("pci0000:00").is_none());
        assert!(Location::parse("0000:00:02").is_none());
        assert!(Location::parse("0000:00:02.1.2").is_none());
    }

    #[test]
    fn link_speeds() {
        assert_eq!(link_speed("8.0 GT/s PCIe"), Some(8.0));
        assert_eq!(link_speed("2.5 GT/s PCIe"), Some(2.5));
        assert_eq!(link_speed("Unknown"), None);
        assert_eq!(link_speed("8.0 GB/s"), None);
    }

    /// The names of the fixture's three devices are those of upstream's sample output
    /// with names turned on.
    #[test]
    fn names_from_the_fixture_pci_ids() {
        let text = std::fs::read_to_string(format!("{FIXTURES}/pci.ids")).unwrap();
        let ids = PciIds::parse(&text);
        let expected =
            std::fs::read_to_string(format!("{FIXTURES}/pcidevice-names-output.txt")).unwrap();
        let devices: [[u32; 6]; 3] = [
            [0x060400, 0x1022, 0x1634, 0x17aa, 0x5095, 0],
            [0x010802, 0xc0a9, 0x540a, 0xc0a9, 0x5021, 1],
            [0x020000, 0x8086, 0x1521, 0x8086, 0x00a3, 1],
        ];
        for device in devices {
            let [vendor, name, subvendor, subsystem, class] = ids.names(&device);
            let device_id = format!("device_id=\"0x{:04x}\"", device[2]);
            let line = expected
                .lines()
                .find(|l| l.starts_with("node_pcidevice_info{") && l.contains(&device_id))
                .unwrap();
            for (label, value) in [
                ("vendor_name", vendor),
                ("device_name", name),
                ("subsystem_vendor_name", subvendor),
                ("subsystem_device_name", subsystem),
                ("class_name", class),
            ] {
                assert!(
                    line.contains(&format!("{label}=\"{value}\"")),
                    "{label}={value:?} in {line}"
                );
            }
        }
        // Not in the file: the IDs stand in.
        let unknown = ids.names(&[0xff0000, 0x1234, 0x5678, 0x1234, 0x0001, 0]);
        assert_eq!(
            unknown,
            ["1234", "5678", "1234", "0001", "Unknown class (ff0000)"].map(String::from)
        );
    }

    #[test]
    fn a_device_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("class", "0x010802\n"),
            ("vendor", "0xc0a9\n"),
            ("device", "0x540a\n"),
            ("subsystem_vendor", "0xc0a9\n"),
            ("subsystem_device", "0x5021\n"),
            ("revision", "0x01\n"),
            ("max_link_speed", "16.0 GT/s PCIe\n"),
            ("max_link_width", "4\n"),
            ("current_link_speed", "Unknown\n"),
            ("numa_node", "-1\n"),
            ("power_state", "D0\n"),
            ("d3cold_allowed", "1\n"),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let attributes = read::AttributeDir::open(dir.path()).unwrap();
        let target = Path::new("../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0");
        let device = Device::read(&attributes, target).unwrap();
        assert_eq!(device.location.0, ["0000", "01", "00", "0"]);
        assert_eq!(device.parent.unwrap().0, ["0000", "00", "02", "1"]);
        assert_eq!(device.ids, [0x010802, 0xc0a9, 0x540a, 0xc0a9, 0x5021, 1]);
        assert_eq!(device.max_link_speed, Some(16.0));
        assert_eq!(device.max_link_width, Some(4.0));
        assert_eq!(device.current_link_speed, None);
        assert_eq!(device.numa_node, Some(-1));
        assert_eq!(device.power_state.as_deref(), Some("D0"));
        assert_eq!(device.d3cold_allowed, Some(true));
        assert_eq!(device.sriov_numvfs, None);
        let root = Path::new("../../../devices/pci0000:00/0000:00:02.1");
        assert!(Device::read(&attributes, root).unwrap().parent.is_none());
        std::fs::remove_file(dir.path().join("revision")).unwrap();
        assert!(Device::read(&attributes, target).is_none());
    }
}
