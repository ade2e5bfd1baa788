//! `netstat`: the network protocol statistics of `/proc/net/netstat`, `/proc/net/snmp`
//! and `/proc/net/snmp6` whose `<Protocol>_<Field>` names match `--collector.netstat.fields`.

use std::path::PathBuf;
use std::sync::Mutex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Netstat {
        netstat: settings.paths.proc("net/netstat"),
        snmp: settings.paths.proc("net/snmp"),
        snmp6: settings.paths.proc("net/snmp6"),
        fields: filter::regex("collector.netstat.fields", &settings.options.netstat_fields)?,
        state: Mutex::default(),
    })
}

struct Netstat {
    /// `/proc/net/netstat`.
    netstat: PathBuf,
    /// `/proc/net/snmp`.
    snmp: PathBuf,
    /// `/proc/net/snmp6`, missing when IPv6 is off.
    snmp6: PathBuf,
    fields: Regex,
    /// Buffers kept from scrape to scrape.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `<Protocol>_<Field>`.
    key: String,
    /// What `fields` said of each name last time.
    remembered: filter::Remembered,
}

/// `/proc/net/netstat` and `/proc/net/snmp` come in line pairs: `Tcp: Names…` then
/// `Tcp: values…`. Yields `(protocol, field, value)`.
fn parse_pairs(text: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    let mut lines = text.lines();
    std::iter::from_fn(move || {
        loop {
            let (names, values) = (lines.next()?, lines.next()?);
            if let (Some((protocol, names)), Some((_, values))) =
                (names.split_once(':'), values.split_once(':'))
            {
                return Some((protocol, names, values));
            }
        }
    })
    .flat_map(|(protocol, names, values)| {
        names
            .split_ascii_whitespace()
            .zip(values.split_ascii_whitespace())
            .map(move |(name, value)| (protocol, name, value))
    })
}

/// `/proc/net/snmp6` has one `Ip6InReceives   123` per line; the protocol ends at the `6`.
fn parse_snmp6(text: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    text.lines().filter_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (key, value) = (fields.next()?, fields.next()?);
        let six = key.find('6')?;
        Some((&key[..=six], &key[six + 1..], value))
    })
}

impl Collector for Netstat {
    fn name(&self) -> &str {
        "netstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let netstat = read::file(&self.netstat)?;
        let snmp = read::file(&self.snmp)?;
        // snmp6 is missing when IPv6 is disabled.
        let snmp6 = read::optional_trimmed(&self.snmp6).unwrap_or_default();
        let stats = parse_pairs(&netstat)
            .chain(parse_pairs(&snmp))
            .chain(parse_snmp6(&snmp6));
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let State { key, remembered } = &mut *state;
        remembered.restart();
        for (protocol, field, value) in stats {
            key.clear();
            key.push_str(protocol);
            key.push('_');
            key.push_str(field);
            if !remembered.is_match(key, &self.fields) {
                continue;
            }
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            {
                let family = out.family_fmt(
                    format_args!("node_netstat_{key}"),
                    format_args!("Statistic {protocol}{field}."),
                    MetricType::Untyped,
                );
                out.sample(family, &[], value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_snmp6() {
        let pairs =
            parse_pairs("Tcp: RtoAlgorithm ActiveOpens\nTcp: 1 42\nUdp: InDatagrams\nUdp: 7\n")
                .collect::<Vec<_>>();
        assert_eq!(
            pairs,
            [
                ("Tcp", "RtoAlgorithm", "1"),
                ("Tcp", "ActiveOpens", "42"),
                ("Udp", "InDatagrams", "7")
            ]
        );
        let six = parse_snmp6(
            "Ip6InOctets                     204\nUdpLite6InErrors 0\nIcmp6OutType133 3\n",
        )
        .collect::<Vec<_>>();
        assert_eq!(
            six,
            [
                ("Ip6", "InOctets", "204"),
                ("UdpLite6", "InErrors", "0"),
                ("Icmp6", "OutType133", "3")
            ]
        );
    }
}
