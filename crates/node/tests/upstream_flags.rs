//! Every flag node_exporter 1.12.1 accepts on Linux (`testdata/node_exporter/flags-linux.txt`,
//! derived from its source) is accepted by kiln-node-exporter with kingpin's meaning: a
//! boolean flag as `--x` and `--no-x`, a value flag as `--x=v` and `--x v`, a repeatable
//! one also twice; a flag kingpin does not repeat is refused twice, as kingpin refuses it.
//!
//! Each form runs the binary once with `--check-config`, which parses the command line,
//! builds the enabled collectors (so an option is also checked by the collector that
//! reads it) and exits without listening.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Debug, PartialEq)]
enum Kind {
    Bool,
    Value,
    /// A value flag that may be given more than once (kingpin's `Strings()`).
    Values,
}

#[derive(Debug)]
struct Flag {
    /// Without the leading `--`.
    name: String,
    kind: Kind,
    example: String,
    /// The collector whose flag this is.
    owner: Option<String>,
    /// `default-on` / `default-off` for collector switches, `hidden`, or empty.
    note: String,
}

fn upstream_flags() -> Vec<Flag> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/node_exporter/flags-linux.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            assert!(columns.len() >= 4, "{}: bad line {line:?}", path.display());
            let kind = match columns[1] {
                "bool" => Kind::Bool,
                "value" => Kind::Value,
                "values" => Kind::Values,
                other => panic!("{}: unknown kind {other:?}", path.display()),
            };
            Flag {
                name: columns[0].strip_prefix("--").unwrap().to_owned(),
                kind,
                example: columns[2].to_owned(),
                owner: (columns[3] != "-").then(|| columns[3].to_owned()),
                note: columns.get(4).copied().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// Runs the binary with `--check-config` and `args`; the exit code and stderr.
fn check(args: &[String]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"));
    command.arg("--check-config").args(args);
    kiln_test_support::run_to_exit(command)
}

/// The command lines that give `flag`: each form, with its collector enabled (and only
/// that one) so that the collector is built with the option.
fn forms(flag: &Flag, web_config: &Path) -> Vec<Vec<String>> {
    let mut setup = vec!["--collector.disable-defaults".to_owned()];
    if let Some(owner) = &flag.owner
        && flag.name != format!("collector.{owner}")
    {
        setup.push(format!("--collector.{owner}"));
    }
    let example = match flag.name.as_str() {
        "web.config.file" => web_config.display().to_string(),
        _ => flag.example.clone(),
    };
    let with = |tail: &[String]| {
        let mut args = setup.clone();
        args.extend_from_slice(tail);
        args
    };
    if flag.kind == Kind::Bool {
        if matches!(flag.name.as_str(), "help" | "version") {
            // These print and exit; kingpin's `--no-help` and `--no-version` do nothing
            // useful and are not part of the promise.
            return vec![vec![format!("--{}", flag.name)]];
        }
        vec![
            with(&[format!("--{}", flag.name)]),
            with(&[format!("--no-{}", flag.name)]),
        ]
    } else {
        let mut forms = vec![
            with(&[format!("--{}={example}", flag.name)]),
            with(&[format!("--{}", flag.name), example.clone()]),
        ];
        if flag.kind == Kind::Values {
            let once = format!("--{}={example}", flag.name);
            forms.push(with(&[once.clone(), once]));
        }
        forms
    }
}

#[test]
fn every_upstream_linux_flag_is_accepted() {
    let work = tempfile::tempdir().unwrap();
    let web_config = work.path().join("web-config.yml");
    std::fs::write(&web_config, "").unwrap();

    let mut refused = Vec::new();
    for flag in upstream_flags().iter() {
        for args in forms(flag, &web_config) {
            let (code, log) = check(&args);
            if code != Some(0) {
                refused.push(format!("{}: exit {code:?}\n{log}", args.join(" ")));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "{} command lines refused:\n{}",
        refused.len(),
        refused.join("\n")
    );
}

#[test]
fn collectors_are_on_or_off_by_default_as_upstream() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    // "Enable the <name> collector (default: enabled)." per collector.
    let ours: BTreeMap<&str, &str> = help
        .lines()
        .filter_map(|line| {
            let rest = line.trim().split_once("Enable the ")?.1;
            let (name, rest) = rest.split_once(" collector (default: ")?;
            Some((name, rest.strip_suffix(").")?))
        })
        .collect();
    let mut wrong = Vec::new();
    for flag in upstream_flags()
        .iter()
        .filter(|flag| flag.note.starts_with("default-"))
    {
        let name = flag.owner.as_deref().unwrap();
        let upstream = match flag.note.as_str() {
            "default-on" => "enabled",
            _ => "disabled",
        };
        match ours.get(name) {
            Some(state) if *state == upstream => {}
            state => wrong.push(format!("{name}: upstream {upstream}, ours {state:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_single_value_flag_given_twice_is_refused_as_kingpin_refuses_it() {
    let mut accepted = Vec::new();
    for flag in upstream_flags()
        .iter()
        .filter(|flag| flag.kind == Kind::Value)
    {
        let once = format!("--{}={}", flag.name, flag.example);
        let (code, log) = check(&[
            "--collector.disable-defaults".to_owned(),
            once.clone(),
            once,
        ]);
        if code == Some(0) || !log.contains("cannot be used multiple times") {
            accepted.push(format!("{}: exit {code:?}\n{log}", flag.name));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused as repeated:\n{}",
        accepted.join("\n")
    );
}
