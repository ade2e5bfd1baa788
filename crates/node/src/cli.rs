//! The command line: the standard web flags, node_exporter's `--path.*` and collector
//! options, and one `--collector.<name>` / `--no-collector.<name>` switch per collector,
//! added from [`collectors::ALL`] so the help lists them all with their defaults.

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
        command
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
        let matches = Self::command().try_get_matches_from(args)?;
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
