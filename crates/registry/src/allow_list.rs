//! The `allowed_targets` list of the exporters whose `/probe` reaches a target named in the
//! request (ping, JMX): networks, single addresses, and host names with or without a port.
//!
//! One parser and one matcher, so an entry means the same in every exporter's file.

use std::net::IpAddr;

/// What a `/probe?target=` may name. Entries are written as `10.0.0.0/8`, `192.0.2.7`,
/// `[fd00::1]`, `gw.example.com` or `nn1.example.com:9870`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<(IpAddr, u8)>,
    /// Lower-cased host names, each with the one port it is limited to, if any.
    names: Vec<(String, Option<u16>)>,
}

impl AllowList {
    /// Parses the entries as written in a file; the error names the entry at fault.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in entries {
            list.add(entry.as_ref().trim())?;
        }
        Ok(list)
    }

    /// A list allowing one host (and port) only.
    pub fn only(host: &str, port: Option<u16>) -> Self {
        let mut list = Self::default();
        match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(address) if port.is_none() => list.networks.push((address, full_prefix(address))),
            _ => list.names.push((host.to_ascii_lowercase(), port)),
        }
        list
    }

    fn add(&mut self, entry: &str) -> Result<(), String> {
        if let Some((address, bits)) = entry.split_once('/') {
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{entry:?} is not a network (address/bits)"))?;
            let max = full_prefix(address);
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{entry:?}: prefix length must be 0 to {max}"))?;
            self.networks.push((address, bits));
            return Ok(());
        }
        if let Ok(address) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.networks.push((address, full_prefix(address)));
            return Ok(());
        }
        let (host, port) = split_port(entry)?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!(
                "{entry:?} is neither a network, an address nor a host name"
            ));
        }
        self.names.push((host.to_ascii_lowercase(), port));
        Ok(())
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.names.is_empty()
    }

    /// Whether any network or address is listed, so that a name not listed itself is worth
    /// resolving to check its addresses.
    pub fn has_networks(&self) -> bool {
        !self.networks.is_empty()
    }

    /// Whether `host` (on `port`, where the request has one) is listed by name. An entry
    /// without a port allows every port.
    pub fn allows_name(&self, host: &str, port: Option<u16>) -> bool {
        self.names.iter().any(|(name, only)| {
            name.eq_ignore_ascii_case(host) && only.is_none_or(|only| Some(only) == port)
        })
    }

    /// Whether `address` lies in a listed network or is a listed address.
    pub fn allows_address(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks
            .iter()
            .any(|&(network, bits)| in_network(address, canonical(network), bits))
    }
}

/// `host:port`, `[v6]:port` or a bare host; a port must be a number.
fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = || format!("{entry:?}: the port must be a number from 1 to 65535");
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(bad_port)
    };
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("{entry:?}: write [address]:port"))?;
        return Ok((host, Some(parse_port(port)?)));
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, Some(parse_port(port)?))),
        _ => Ok((entry, None)),
    }
}

fn full_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a dual-stack socket reports them) match
/// IPv4 entries.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_addresses_and_names() {
        let list = AllowList::parse(&[
            "10.0.0.0/8",
            "192.0.2.7",
            "[fd00::1]",
            "GW.example.com",
            "nn1.example.com:9870",
            "[fd00::2]:8080",
        ])
        .unwrap();
        assert!(list.allows_address(ip("10.200.3.4")));
        assert!(list.allows_address(ip("::ffff:10.1.1.1")), "mapped IPv4");
        assert!(list.allows_address(ip("192.0.2.7")));
        assert!(!list.allows_address(ip("192.0.2.8")));
        assert!(list.allows_address(ip("fd00::1")));
        assert!(list.allows_name("gw.example.com", None));
        assert!(
            list.allows_name("gw.EXAMPLE.com", Some(22)),
            "no port: any port"
        );
        assert!(list.allows_name("nn1.example.com", Some(9870)));
        assert!(!list.allows_name("nn1.example.com", Some(9871)));
        assert!(!list.allows_name("nn1.example.com", None));
        assert!(list.allows_name("fd00::2", Some(8080)));
        assert!(!list.allows_name("other", None));
        assert!(list.has_networks() && !list.is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        for (entry, expected) in [
            ("10.0.0.0/33", "prefix length must be 0 to 32"),
            ("nonsense/8", "is not a network"),
            ("host:http", "the port must be a number"),
            ("host:0", "the port must be a number"),
            ("two words", "neither a network"),
            ("[fd00::1]8080", "write [address]:port"),
        ] {
            let error = AllowList::parse(&[entry]).unwrap_err();
            assert!(error.contains(entry) && error.contains(expected), "{error}");
        }
    }

    #[test]
    fn only_one_target() {
        let list = AllowList::only("NN1", Some(9870));
        assert!(list.allows_name("nn1", Some(9870)));
        assert!(!list.allows_name("nn1", Some(1)));
        let list = AllowList::only("127.0.0.1", None);
        assert!(list.allows_address(ip("127.0.0.1")));
    }
}
