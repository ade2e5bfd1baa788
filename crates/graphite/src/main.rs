//! kiln-graphite-exporter: Graphite plaintext in, Prometheus metrics out.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use kiln_graphite::Cli;
use kiln_graphite::mapping::Mapper;
use kiln_registry::{bootstrap, build_info};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if let Some(target) = &cli.dump_fsm {
        return dump_fsm(&cli, target);
    }
    let info = build_info!("kiln-graphite-exporter");
    bootstrap::main(info, &cli.web, || kiln_graphite::build(&cli, info))
}

/// `--debug.dump-fsm`: writes the glob state machine and exits, as upstream.
fn dump_fsm(cli: &Cli, target: &std::path::Path) -> ExitCode {
    let Some(file) = &cli.mapping_config else {
        eprintln!("--debug.dump-fsm needs --graphite.mapping-config");
        return ExitCode::from(bootstrap::EXIT_CONFIG);
    };
    let mapper = match Mapper::load(file) {
        Ok(mapper) => mapper,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(bootstrap::EXIT_CONFIG);
        }
    };
    let Some(dot) = mapper.dump_fsm() else {
        eprintln!(
            "{}: no glob rules, so there is no state machine to dump",
            file.display()
        );
        return ExitCode::FAILURE;
    };
    match std::fs::write(target, dot) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot write {}: {error}", target.display());
            ExitCode::FAILURE
        }
    }
}
