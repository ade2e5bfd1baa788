//! `--collector.pcidevice.names` with upstream's sample `pci.ids`: the PCI series of the
//! vendored fixture tree are those of upstream's sample output with names turned on
//! (`pcidevice-names-output.txt`), labels and values alike.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::Running;

/// `name{labels sorted}` → value of every `node_pcidevice_*` series in `text`.
fn pci_series(text: &str) -> BTreeMap<String, f64> {
    let parsed = kiln_scraper::parse(text).unwrap();
    parsed
        .families
        .iter()
        .filter(|f| f.name.starts_with("node_pcidevice_"))
        .flat_map(|f| f.samples.iter())
        .map(|s| {
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", s.name, labels.join(",")), s.value)
        })
        .collect()
}

#[test]
fn names_come_from_the_ids_file() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/node_exporter/fixtures");
    let work = tempfile::tempdir().unwrap();
    kiln_test_support::ttar::extract(&fixtures.join("sys.ttar"), work.path()).unwrap();
    let args = vec![
        "--collector.disable-defaults".to_string(),
        "--collector.pcidevice".to_string(),
        "--collector.pcidevice.names".to_string(),
        format!(
            "--collector.pcidevice.idsfile={}",
            fixtures.join("pci.ids").display()
        ),
        format!("--path.sysfs={}", work.path().join("sys").display()),
    ];
    let exporter = Running::kiln(&args);
    let ours = pci_series(&exporter.scrape());
    let expected_text =
        std::fs::read_to_string(fixtures.join("pcidevice-names-output.txt")).unwrap();
    let expected = pci_series(&expected_text);
    assert!(!expected.is_empty());
    for (series, value) in &expected {
        assert_eq!(ours.get(series), Some(value), "{series}");
    }
    // The sample shows the info series and a few others; every info series is in it.
    let info = |map: &BTreeMap<String, f64>| {
        map.keys()
            .filter(|k| k.starts_with("node_pcidevice_info{"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(info(&ours), info(&expected));
}
