//! The command line: the standard web flags, node_exporter's `--path.*` and collector
//! options, and one `--collector.<name>` / `--no-collector.<name>` switch per collector,
//! added from [`collectors::ALL`] so the help lists them all with their defaults.
//!
//! node_exporter parses its flags with kingpin, where every boolean flag `--x` also has a
//! negated form `--no-x`. Here every boolean flag gets that form too, and repeated
//! `--x` / `--no-x` are reduced to the last one before clap sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches, Parser};
use kiln_registry::config::ConfigError;
use kiln_registry::{Collector, Exporter, Runner, WebFlags, build_info};

use crate::collectors::{self, Settings};
use crate::flags::NodeFlags;
use crate::paths::Paths;

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Cli {
    /// `--web.*`, `--log.*`, `--version`, `--check-config`.
    pub web: WebFlags,
    /// `--path.*` and collector options.
    pub node: NodeFlags,
    /// Names of the collectors to run, in name order.
    pub enabled: Vec<&'static str>,
    /// `--web.systemd-socket`: serve the sockets systemd passed (socket activation)
    /// instead of binding `--web.listen-address`.
    pub systemd_socket: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "kiln-node-exporter",
    about = "Prometheus exporter for hardware and OS metrics exposed by the Linux kernel; a drop-in replacement for node_exporter.",
    long_about = None,
)]
struct Args_ {
    #[command(flatten)]
    node: NodeFlags,

    /// Set all collectors to disabled by default; enable them with --collector.<name>.
    #[arg(long = "collector.disable-defaults", help_heading = "Collectors")]
    disable_defaults: bool,

    /// Use systemd socket activation listeners instead of port listeners (the sockets
    /// systemd passes with LISTEN_FDS; --web.listen-address is then not used).
    #[arg(long = "web.systemd-socket", help_heading = "Web and logging")]
    systemd_socket: bool,

    #[command(flatten)]
    web: WebFlags,
}

impl Cli {
    /// The command with every collector switch added.
    pub fn command() -> Command {
        let mut command = Args_::command();
        for spec in collectors::ALL {
            let default = if spec.enabled_by_default {
                "enabled"
            } else {
                "disabled"
            };
            command = command
                .arg(
                    Arg::new(format!("collector.{}", spec.name))
                        .long(format!("collector.{}", spec.name))
                        .action(ArgAction::SetTrue)
                        .help_heading("Collectors")
                        .help(format!(
                            "Enable the {} collector (default: {default}).",
                            spec.name
                        )),
                )
                .arg(
                    Arg::new(format!("no-collector.{}", spec.name))
                        .long(format!("no-collector.{}", spec.name))
                        .action(ArgAction::SetTrue)
                        .hide(true),
                );
        }
        negatable(command)
    }

    /// Parses `args` (the first being the program name); prints help or an error and
    /// exits on bad flags, as clap does.
    pub fn parse_from<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_from(args).unwrap_or_else(|error| error.exit())
    }

    /// Parses `args`, returning clap's error instead of exiting.
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = Self::command();
        let args = last_switch_wins(&command, args.into_iter().map(Into::into).collect());
        let matches = command.try_get_matches_from(args)?;
        let parsed = Args_::from_arg_matches(&matches)?;
        let enabled = collectors::ALL
            .iter()
            .filter(|spec| {
                switch(&matches, spec.name)
                    .unwrap_or(spec.enabled_by_default && !parsed.disable_defaults)
            })
            .map(|spec| spec.name)
            .collect();
        Ok(Self {
            web: parsed.web,
            node: parsed.node,
            enabled,
            systemd_socket: parsed.systemd_socket,
        })
    }

    /// The settings every collector is built from.
    pub fn settings(&self) -> Settings {
        let node = &self.node;
        Settings {
            paths: Paths::new(&node.procfs, &node.sysfs, &node.rootfs, &node.udev_data),
            options: node.options.clone(),
            enabled: self.enabled.clone(),
        }
    }
}

/// The state `--collector.<name>` / `--no-collector.<name>` asked for; the later flag wins.
fn switch(matches: &ArgMatches, name: &str) -> Option<bool> {
    let last_index = |id: &str| {
        matches
            .get_flag(id)
            .then(|| matches.indices_of(id).and_then(Iterator::max))
            .flatten()
    };
    match (
        last_index(&format!("collector.{name}")),
        last_index(&format!("no-collector.{name}")),
    ) {
        (None, None) => None,
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (Some(on), Some(off)) => Some(on > off),
    }
}

/// The long names of `command`'s boolean flags (those that take no value), aliases
/// included, without the `no-` forms.
fn boolean_flags(command: &Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter(|arg| matches!(arg.get_action(), ArgAction::SetTrue))
        .flat_map(|arg| {
            arg.get_long()
                .into_iter()
                .chain(arg.get_all_aliases().unwrap_or_default())
        })
        .filter(|long| !long.starts_with("no-"))
        .map(str::to_owned)
        .collect()
}

/// Adds a hidden `--no-x` to every boolean `--x` that has none, as kingpin has for every
/// boolean flag. After [`last_switch_wins`] at most one of the two is left, so `--x`
/// reads true and `--no-x` false whatever the default; flags whose default is true have
/// their own `no_` field.
fn negatable(mut command: Command) -> Command {
    let existing: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .map(str::to_owned)
        .collect();
    for long in boolean_flags(&command) {
        let negated = format!("no-{long}");
        if !existing.contains(&negated) {
            command = command.arg(
                Arg::new(negated.clone())
                    .long(negated)
                    .action(ArgAction::SetTrue)
                    .hide(true),
            );
        }
    }
    command
}

/// Keeps only the last of each boolean flag's `--x` and `--no-x` in `args` (program name
/// first), in its place. kingpin refuses a flag given twice; accepting the repeat with
/// the last one winning lets a wrapper script override a unit file's flag.
fn last_switch_wins(command: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let booleans = boolean_flags(command);
    let takes_value: BTreeSet<&str> = command
        .get_arguments()
        .filter(|arg| arg.get_action().takes_values())
        .flat_map(|arg| {
            arg.get_long()
                .into_iter()
                .chain(arg.get_all_aliases().unwrap_or_default())
        })
        .collect();
    // The flag each argument switches, or None for everything else (values, `--`, ...).
    let mut switched: Vec<Option<&str>> = Vec::with_capacity(args.len());
    let mut skip_value = false;
    let mut done = false;
    for (index, arg) in args.iter().enumerate() {
        let name = arg.to_str().and_then(|a| a.strip_prefix("--"));
        let flag = match name {
            _ if index == 0 || done || std::mem::take(&mut skip_value) => None,
            Some("") => {
                done = true;
                None
            }
            Some(name) if takes_value.contains(name) => {
                skip_value = true;
                None
            }
            Some(name) => {
                let base = name.strip_prefix("no-").unwrap_or(name);
                booleans.get(base).map(String::as_str)
            }
            None => None,
        };
        switched.push(flag);
    }
    let last: BTreeMap<&str, usize> = switched
        .iter()
        .enumerate()
        .filter_map(|(index, flag)| flag.map(|flag| (flag, index)))
        .collect();
    args.into_iter()
        .zip(switched.iter())
        .enumerate()
        .filter(|(index, (_, flag))| flag.is_none_or(|flag| last[flag] == *index))
        .map(|(_, (arg, _))| arg)
        .collect()
}

/// The enabled collectors, built and ready to register.
pub struct CollectorSet {
    collectors: Vec<Box<dyn Collector>>,
    budget: std::time::Duration,
    parallelism: usize,
}

impl std::fmt::Debug for CollectorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorSet")
            .field(
                "collectors",
                &self.collectors.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field("budget", &self.budget)
            .finish()
    }
}

impl CollectorSet {
    /// Builds the enabled collectors; a bad option is a [`ConfigError`] naming the flag.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let settings = cli.settings();
        let collectors = cli
            .enabled
            .iter()
            .filter_map(|name| collectors::spec(name))
            .map(|spec| spec.build(&settings))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            collectors,
            budget: settings.options.time_budget,
            parallelism: settings.options.parallelism,
        })
    }

    /// Builds from flags as a command line would give them (without the program name).
    pub fn from_flags(flags: &NodeFlags) -> Result<Self, ConfigError> {
        let cli = Cli {
            // `from_args` takes the flags only, without a program name.
            web: WebFlags::from_args(std::iter::empty::<&str>())
                .map_err(|e| ConfigError::file("command line".as_ref(), e.to_string()))?,
            node: flags.clone(),
            enabled: collectors::ALL
                .iter()
                .filter(|s| s.enabled_by_default)
                .map(|s| s.name)
                .collect(),
            systemd_socket: false,
        };
        Self::from_cli(&cli)
    }

    /// Adds the collectors of `other`, which may have been built with other settings: for
    /// benchmarks that read one collector's files from a fixture tree and the rest from the
    /// host.
    pub fn append(&mut self, other: CollectorSet) {
        self.collectors.extend(other.collectors);
    }

    /// The collectors.
    pub fn collectors(&self) -> impl Iterator<Item = &dyn Collector> {
        self.collectors.iter().map(|c| c.as_ref())
    }

    /// A runner over these collectors, as the exporter uses it.
    pub fn into_runner(self) -> Runner {
        let mut runner = Runner::new("node");
        runner.set_collector_budget(self.budget);
        runner.set_parallelism(self.parallelism);
        for collector in self.collectors {
            runner.register_boxed(collector);
        }
        runner
    }

    /// The exporter serving these collectors.
    pub fn into_exporter(self, web: WebFlags) -> Exporter {
        let mut exporter = Exporter::new(build_info!("kiln-node-exporter"), "node", web)
            .description("Node Exporter: hardware and OS metrics of this host")
            .default_listen_address(":9100")
            .handler_error_metrics()
            .collector_budget(self.budget)
            .collector_parallelism(self.parallelism);
        for collector in self.collectors {
            exporter = exporter.boxed_collector(collector);
        }
        exporter
    }
}

impl NodeFlags {
    /// Parses only the node flags from `args` (program name first), with defaults for
    /// everything not given: for tests and benchmarks.
    pub fn parse_from<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::parse_from(args).node
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;

    fn parse(args: &[&str]) -> Cli {
        let argv = std::iter::once("kiln-node-exporter").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap()
    }

    #[test]
    fn every_boolean_flag_has_a_negated_form() {
        let cli = parse(&[
            "--no-collector.stat.softirq",
            "--no-web.disable-exporter-metrics",
            "--no-collector.disable-defaults",
            "--no-collector.systemd.enable-task-metrics",
        ]);
        assert!(!cli.node.options.stat_softirq);
        assert!(!cli.web.disable_exporter_metrics);
        assert!(cli.enabled.contains(&"cpu"));
        assert!(!cli.node.options.systemd_tasks);
    }

    #[test]
    fn the_last_of_a_flag_and_its_negation_wins() {
        let on = parse(&["--no-collector.stat.softirq", "--collector.stat.softirq"]);
        assert!(on.node.options.stat_softirq);
        let off = parse(&["--collector.stat.softirq", "--no-collector.stat.softirq"]);
        assert!(!off.node.options.stat_softirq);

        let guest = parse(&["--collector.cpu.guest", "--no-collector.cpu.guest"]);
        assert!(!guest.node.options.cpu_guest());
        let guest = parse(&["--no-collector.cpu.guest", "--collector.cpu.guest"]);
        assert!(guest.node.options.cpu_guest());

        let cpu = parse(&[
            "--no-collector.cpu",
            "--collector.cpu",
            "--no-collector.cpu",
        ]);
        assert!(!cpu.enabled.contains(&"cpu"));
        let defaults = parse(&[
            "--collector.disable-defaults",
            "--no-collector.disable-defaults",
        ]);
        assert!(defaults.enabled.contains(&"cpu"));
    }

    #[test]
    fn the_word_after_a_value_flag_is_its_value_not_a_switch() {
        let args = [
            "kiln-node-exporter",
            "--collector.textfile.directory",
            "--no-collector.stat.softirq",
            "--collector.stat.softirq",
            "--",
            "--collector.stat.softirq",
        ];
        let kept = super::last_switch_wins(
            &Cli::command(),
            args.iter().map(std::ffi::OsString::from).collect(),
        );
        assert_eq!(kept, args.map(std::ffi::OsString::from));
    }

    #[test]
    fn a_boolean_flag_takes_no_value_as_in_kingpin() {
        let argv = ["kiln-node-exporter", "--collector.stat.softirq=true"];
        assert!(Cli::try_parse_from(argv).is_err());
        let argv = ["kiln-node-exporter", "--no-collector.arp.device-include"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn systemd_socket_is_accepted() {
        assert!(parse(&["--web.systemd-socket"]).systemd_socket);
        assert!(!parse(&["--no-web.systemd-socket"]).systemd_socket);
    }
}
