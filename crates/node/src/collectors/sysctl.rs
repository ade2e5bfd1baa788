//! `sysctl`: chosen kernel parameters from `/proc/sys/`, numbers as untyped series and
//! text as `node_sysctl_info`.
//!
//! `--collector.sysctl.include=fs.file-nr` gives one series per value (with an `index`
//! label when there are several); `fs.file-nr:total,current,max` names the values instead,
//! one family each. `--collector.sysctl.include-info` reports text values as labels.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::flag_error;
use crate::go_text::{int_any_base, sanitize_metric_name};
use crate::read;

/// The sysctl collector's options.
#[derive(Debug, Clone, clap::Args)]
// Without a group of its own: every collector's options struct is called `Options`.
#[group(skip)]
pub struct Options {
    /// A sysctl to report as numbers (`fs.file-nr`), optionally naming its values
    /// (`fs.file-nr:total,current,max`); repeatable.
    #[arg(long = "collector.sysctl.include", value_name = "SYSCTL")]
    pub include: Vec<String>,
    /// A sysctl to report as text in node_sysctl_info; repeatable.
    #[arg(long = "collector.sysctl.include-info", value_name = "SYSCTL")]
    pub include_info: Vec<String>,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.sysctl;
    let mut sysctls = Vec::new();
    for (flag, values, numeric) in [
        ("collector.sysctl.include", &options.include, true),
        (
            "collector.sysctl.include-info",
            &options.include_info,
            false,
        ),
    ] {
        for text in values {
            let sysctl = Sysctl::parse(text, numeric).map_err(|e| flag_error(flag, e))?;
            // The same sysctl twice would be the same series twice.
            if !sysctls.contains(&sysctl) {
                sysctls.push(sysctl);
            }
        }
    }
    boxed(SysctlCollector {
        root: settings.paths.proc("sys"),
        sysctls,
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct SysctlCollector {
    /// `/proc/sys`.
    root: PathBuf,
    sysctls: Vec<Sysctl>,
    warnings: LogLimiter,
}

/// One sysctl asked for.
#[derive(Debug, PartialEq)]
struct Sysctl {
    /// Dotted, as given (`fs.file-nr`).
    name: String,
    /// Names for its values, one family each, if given.
    keys: Vec<String>,
    /// Numbers (`include`) or text (`include-info`).
    numeric: bool,
}

impl Sysctl {
    fn parse(text: &str, numeric: bool) -> Result<Self, String> {
        let (name, keys) = match text.split_once(':') {
            Some((name, keys)) => (name, keys.split(',').map(str::to_string).collect()),
            None => (text, Vec::new()),
        };
        if name.is_empty() || name.split('.').any(|part| part.is_empty() || part == "..") {
            return Err(format!("{text:?} is not a sysctl name"));
        }
        if !numeric && !keys.is_empty() {
            return Err(format!("{text:?}: text sysctls cannot name their values"));
        }
        Ok(Self {
            name: name.to_string(),
            keys,
            numeric,
        })
    }

    /// Its file: the dots of the name are directories.
    fn path(&self, root: &Path) -> PathBuf {
        root.join(self.name.replace('.', "/"))
    }

    /// Writes its series for the file's `text`, or says why it cannot.
    fn write(&self, text: &str, out: &mut MetricSet) -> Result<(), String> {
        let values: Vec<&str> = text.split_whitespace().collect();
        if values.is_empty() {
            return Err("has no values".into());
        }
        if !self.numeric {
            let family = out.gauge("node_sysctl_info", "sysctl info");
            for (index, value) in values.iter().enumerate() {
                let index = index.to_string();
                let labels = [
                    ("name", self.name.as_str()),
                    ("value", value),
                    ("index", index.as_str()),
                ];
                out.sample(family, &labels, 1.0);
            }
            return Ok(());
        }
        let numbers = values
            .iter()
            .map(|v| int_any_base(v).ok_or_else(|| format!("{v:?} is not an integer")))
            .collect::<Result<Vec<i64>, String>>()?;
        let metric = sanitize_metric_name(&self.name);
        if numbers.len() == 1 {
            if !self.keys.is_empty() {
                return Err(format!("has one value, but {} names", self.keys.len()));
            }
            let family = out.untyped(
                &format!("node_sysctl_{metric}"),
                &format!("sysctl {}", self.name),
            );
            out.sample(family, &[], numbers[0] as f64);
        } else if self.keys.is_empty() {
            let family = out.untyped(
                &format!("node_sysctl_{metric}"),
                &format!("sysctl {}", self.name),
            );
            for (index, number) in numbers.iter().enumerate() {
                let index = index.to_string();
                out.sample(family, &[("index", index.as_str())], *number as f64);
            }
        } else if self.keys.len() != numbers.len() {
            return Err(format!(
                "has {} values, but {} names",
                numbers.len(),
                self.keys.len()
            ));
        } else {
            for (index, (key, number)) in self.keys.iter().zip(&numbers).enumerate() {
                let family = out.untyped(
                    &format!("node_sysctl_{metric}_{key}"),
                    &format!("sysctl {}, field {index}", self.name),
                );
                out.sample(family, &[], *number as f64);
            }
        }
        Ok(())
    }
}

impl Collector for SysctlCollector {
    fn name(&self) -> &str {
        "sysctl"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut failed = None;
        for sysctl in &self.sysctls {
            let path = sysctl.path(&self.root);
            let problem = match read::read_text(&path) {
                Ok(text) => {
                    let checkpoint = out.checkpoint();
                    let written = sysctl.write(&text, out);
                    if written.is_err() {
                        out.rollback(checkpoint);
                    }
                    written.err()
                }
                Err(error) => Some(error.to_string()),
            };
            // One sysctl that cannot be read does not hide the others; the scrape still
            // reports the collector as failed.
            if let Some(problem) = problem {
                if let Some(held_back) = self.warnings.check() {
                    tracing::warn!(sysctl = %sysctl.name, %problem, held_back, "sysctl not reported");
                }
                failed = Some(read::malformed(&path, problem));
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::series;

    #[test]
    fn flag_syntax() {
        let plain = Sysctl::parse("kernel.threads-max", true).unwrap();
        assert!(plain.keys.is_empty());
        let keyed = Sysctl::parse("fs.file-nr:total,current,max", true).unwrap();
        assert_eq!(keyed.name, "fs.file-nr");
        assert_eq!(keyed.keys, ["total", "current", "max"]);
        assert_eq!(
            keyed.path(Path::new("/proc/sys")),
            Path::new("/proc/sys/fs/file-nr")
        );
        assert!(Sysctl::parse("", true).is_err());
        assert!(Sysctl::parse("fs..x", true).is_err());
        assert!(Sysctl::parse("a.b:x", false).is_err());
    }

    #[test]
    fn numbers_indexed_named_and_single() {
        let mut out = MetricSet::default();
        let file_nr = "1024\t0\t1631329\n";
        Sysctl::parse("fs.file-nr", true)
            .unwrap()
            .write(file_nr, &mut out)
            .unwrap();
        Sysctl::parse("fs.file-nr:total,current,max", true)
            .unwrap()
            .write(file_nr, &mut out)
            .unwrap();
        Sysctl::parse("kernel.threads-max", true)
            .unwrap()
            .write("7801\n", &mut out)
            .unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_sysctl_fs_file_nr{index=0} 1024",
                "node_sysctl_fs_file_nr{index=1} 0",
                "node_sysctl_fs_file_nr{index=2} 1631329",
                "node_sysctl_fs_file_nr_total{} 1024",
                "node_sysctl_fs_file_nr_current{} 0",
                "node_sysctl_fs_file_nr_max{} 1631329",
                "node_sysctl_kernel_threads_max{} 7801",
            ]
        );
    }

    #[test]
    fn text_values_become_info_labels() {
        let mut out = MetricSet::default();
        Sysctl::parse("kernel.seccomp.actions_avail", false)
            .unwrap()
            .write("kill_process trap\n", &mut out)
            .unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_sysctl_info{index=0,name=kernel.seccomp.actions_avail,value=kill_process} 1",
                "node_sysctl_info{index=1,name=kernel.seccomp.actions_avail,value=trap} 1",
            ]
        );
    }

    #[test]
    fn mismatches_are_errors() {
        let mut out = MetricSet::default();
        let keyed = Sysctl::parse("fs.file-nr:total,current", true).unwrap();
        assert!(keyed.write("1 2 3", &mut out).is_err());
        assert!(keyed.write("1", &mut out).is_err());
        let plain = Sysctl::parse("kernel.x", true).unwrap();
        assert!(plain.write("", &mut out).is_err());
        assert!(plain.write("abc", &mut out).is_err());
    }

    #[test]
    fn flags_repeat_and_keep_their_order() {
        let flags = crate::flags::NodeFlags::parse_from([
            "kiln-node-exporter",
            "--collector.sysctl.include=fs.file-nr",
            "--collector.sysctl.include=fs.file-nr:total,current,max",
            "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
        ]);
        let options = &flags.options.sysctl;
        assert_eq!(
            options.include,
            ["fs.file-nr", "fs.file-nr:total,current,max"]
        );
        assert_eq!(options.include_info, ["kernel.seccomp.actions_avail"]);
    }
}
