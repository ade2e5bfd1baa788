//! `processes` (off by default): process and thread counts by state, and the kernel's
//! PID and thread limits, from `/proc/[pid]/stat` and `/proc/[pid]/task/*/stat`.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Processes {
        paths: settings.paths.clone(),
    })
}

struct Processes {
    paths: Paths,
}

/// The state letter and thread count of a `stat` line. The command name is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // num_threads is field 20; the state is field 3.
    let threads = fields.nth(16)?.parse().ok()?;
    Some((state, threads))
}

fn numeric_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path())
        .collect()
}

impl Collector for Processes {
    fn name(&self) -> &str {
        "processes"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut states: BTreeMap<char, u64> = BTreeMap::new();
        let mut thread_states: BTreeMap<char, u64> = BTreeMap::new();
        let (mut pids, mut threads) = (0u64, 0u64);
        for process in numeric_dirs(&self.paths.proc("")) {
            if ctx.expired() {
                break;
            }
            // A process that exited since the listing is simply gone.
            let Some((state, count)) = crate::read::read_text(&process.join("stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            else {
                continue;
            };
            pids += 1;
            threads += count;
            *states.entry(state).or_default() += 1;
            for task in numeric_dirs(&process.join("task")) {
                if let Some((state, _)) = crate::read::read_text(&task.join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(parse_stat)
                {
                    *thread_states.entry(state).or_default() += 1;
                }
            }
        }
        let limit = |file: &str| -> Result<f64, CollectError> {
            let path = self.paths.proc(file);
            read::file(&path)?
                .trim()
                .parse()
                .map_err(|e| read::malformed(&path, e))
        };
        let state_family = out.gauge("node_processes_state", "Number of processes in each state.");
        for (state, count) in &states {
            out.sample(
                state_family,
                &[("state", &state.to_string())],
                *count as f64,
            );
        }
        let thread_family = out.gauge(
            "node_processes_threads_state",
            "Number of threads in each state.",
        );
        for (state, count) in &thread_states {
            out.sample(
                thread_family,
                &[("thread_state", &state.to_string())],
                *count as f64,
            );
        }
        let max_threads = limit("sys/kernel/threads-max")?;
        let max_processes = limit("sys/kernel/pid_max")?;
        out.gauge_value(
            "node_processes_threads",
            "Allocated threads in system",
            threads as f64,
        );
        out.gauge_value(
            "node_processes_max_threads",
            "Limit of threads in the system",
            max_threads,
        );
        out.gauge_value(
            "node_processes_max_processes",
            "Number of max PIDs limit",
            max_processes,
        );
        out.gauge_value("node_processes_pids", "Number of PIDs", pids as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_lines_with_odd_names() {
        let line = "1234 (tmux: server (x)) S 1 1234 1234 0 -1 4194560 2467 0 0 0 14 6 0 0 20 0 3 0 1230 11000000 900 18446744073709551615\n";
        assert_eq!(super::parse_stat(line), Some(('S', 3)));
        assert_eq!(super::parse_stat("garbage"), None);
    }
}
