//! `kernel_hung`: how many tasks the kernel's hung-task detector has reported since boot,
//! from `/proc/sys/kernel/hung_task_detect_count` (kernels with `CONFIG_DETECT_HUNG_TASK`).

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(KernelHung {
        path: settings.paths.proc("sys/kernel/hung_task_detect_count"),
    })
}

struct KernelHung {
    path: PathBuf,
}

/// The count in the file's text: one unsigned number.
fn parse(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

impl Collector for KernelHung {
    fn name(&self) -> &str {
        "kernel_hung"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without the detector the file is absent: nothing to report, not a failure.
        let text = read::file_or_no_data(&self.path)?;
        let count = parse(&text)
            .ok_or_else(|| read::malformed(&self.path, "expected an unsigned number"))?;
        out.counter_value(
            "node_kernel_hung_tasks_total",
            "Total number of tasks that have been detected as hung since the system booted.",
            count as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_number() {
        assert_eq!(super::parse("42\n"), Some(42));
        assert_eq!(super::parse("-1\n"), None);
        assert_eq!(super::parse(""), None);
    }
}
