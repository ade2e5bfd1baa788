//! `kiln`: run this host's exporters, watch a fleet live, and scrape and check Prometheus
//! exporters.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kiln::safe_text::{for_terminal, json_for_terminal};
use kiln::{lint, pretty, source, top, up};
use kiln_registry::duration::parse_go_duration;
use kiln_registry::{LogFormat, LogLevel};

/// Kiln's command-line tool.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run this host's exporters in one process on their standard ports: node, GPU (where
    /// an NVIDIA driver is loaded), ping (the default gateway and --ping.target), the
    /// Graphite bridge, and the JMX proxy (with --jmx.config-file).
    Up {
        #[command(flatten)]
        flags: Box<up::UpFlags>,
        /// Only log messages with this severity or above.
        #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Warn)]
        log_level: LogLevel,
    },
    /// Watch many hosts live: CPU, memory, disk, network and ping per host, and
    /// utilisation, memory, temperature, power, throttling and XID errors per GPU.
    Top {
        #[command(flatten)]
        flags: Box<top::TopFlags>,
    },
    /// Fetch an exporter's metrics and print them readably, or as prom2json's JSON.
    Scrape {
        /// An http(s):// URL, a file, or - for standard input.
        location: String,
        /// Print prom2json's JSON instead.
        #[arg(long)]
        json: bool,
        /// How long the scrape may take.
        #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
        timeout: Duration,
    },
    /// Lint exposition text as `promtool check metrics` does: naming, units, HELP,
    /// counters. Exits 3 when there is a problem and 1 when the text cannot be read, as
    /// promtool does.
    Check {
        /// An http(s):// URL, a file, or - for standard input.
        location: String,
        /// How long the scrape may take.
        #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    kiln_registry::process_policy::apply();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kiln: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Up { flags, log_level } => {
            kiln_registry::logging::init(log_level, LogFormat::Logfmt);
            let _entered = runtime.enter();
            let planned = up::plan(&flags);
            let display = if std::io::stdout().is_terminal() {
                up::Display::Live
            } else {
                up::Display::Summaries(flags.summary_interval)
            };
            if runtime.block_on(up::run(planned, display)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Top { flags } => runtime.block_on(watch(&flags)),
        Command::Scrape {
            location,
            json,
            timeout,
        } => runtime.block_on(scrape(&location, json, timeout)),
        Command::Check { location, timeout } => runtime.block_on(check(&location, timeout)),
    }
}

async fn watch(flags: &top::TopFlags) -> ExitCode {
    let settings = top::Settings::new(flags.refresh, flags.timeout);
    // A query over a whole fleet may take longer than a refresh; the next read waits for it.
    let feed = match flags.prometheus.source(flags.timeout) {
        Ok(Some(source)) => top::terminal::Feed::Prometheus(Box::new(source)),
        Ok(None) => match top::targets::resolve(&flags.targets, flags.file.as_deref()) {
            Ok(hosts) => top::terminal::Feed::Exporters(hosts),
            Err(error) => return fail(&error),
        },
        Err(error) => return fail(&error),
    };
    let interactive = !flags.once && std::io::stdout().is_terminal();
    if interactive {
        return match top::terminal::run(feed, settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&error),
        };
    }
    match top::terminal::once(feed, settings, flags.width).await {
        Ok(lines) => {
            // Host and GPU names come from the targets: escaped like scraped text.
            let screen: Vec<_> = lines.iter().map(|line| for_terminal(line)).collect();
            print_quietly(&(screen.join("\n") + "\n"));
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

async fn scrape(location: &str, json: bool, timeout: Duration) -> ExitCode {
    let text = match source::load(location, timeout).await {
        Ok(text) => text,
        Err(error) => return fail(&error),
    };
    let parsed = kiln_scraper::parse_with(&text.body, text.format);
    for violation in &parsed.violations {
        eprintln!("{}: {}", text.origin, for_terminal(&violation.to_string()));
    }
    let output = if json {
        let json = format!("{:#}\n", pretty::json(&parsed.exposition));
        json_for_terminal(&json).into_owned()
    } else {
        pretty::human(&parsed.exposition)
    };
    print_quietly(&output);
    ExitCode::SUCCESS
}

async fn check(location: &str, timeout: Duration) -> ExitCode {
    let text = match source::load(location, timeout).await {
        Ok(text) => text,
        Err(error) => return fail(&error),
    };
    let parsed = kiln_scraper::parse_with(&text.body, text.format);
    let mut problems = lint::from_violations(&parsed.violations);
    problems.extend(lint::lint(&parsed.exposition, text.format));
    problems.sort_by_key(|p| p.line);
    let report: String = problems
        .iter()
        .map(|p| format!("{}: {}\n", text.origin, for_terminal(&p.to_string())))
        .collect();
    print_quietly(&report);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(LINT_PROBLEMS)
    }
}

/// promtool's exit code for lint problems.
const LINT_PROBLEMS: u8 = 3;

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("kiln: {error:#}");
    ExitCode::FAILURE
}

/// Writes to standard output, ignoring a reader that went away (`kiln scrape … | head`).
fn print_quietly(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
