//! Probe targets: `host:port` and nothing else. The module fixes the scheme and path, so a
//! caller of `/probe` cannot turn the exporter into a relay for arbitrary URLs.

use std::fmt;
use std::net::IpAddr;

/// A checked `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Target {
    /// Parses `host:port`, `1.2.3.4:port` or `[::1]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| "an IPv6 target is written [address]:port".to_owned())?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
            (host, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| "the target must be host:port".to_owned())?;
            if host.contains(':') {
                return Err("an IPv6 target is written [address]:port".into());
            }
            (host, port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{port:?} is not a port"))?;
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid_name && host.parse::<IpAddr>().is_err() {
            return Err(format!("{host:?} is not a host name or address"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// The address literal, if the host is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_only() {
        let ok = |text: &str| Target::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(ok("nn1:9870").to_string(), "nn1:9870");
        assert_eq!(
            ok("10.0.0.5:9864").address(),
            Some(IpAddr::from([10, 0, 0, 5]))
        );
        assert_eq!(ok("[::1]:8778").to_string(), "[::1]:8778");
        assert_eq!(
            ok("ip-10-0-0-5.ec2.internal:8088").host,
            "ip-10-0-0-5.ec2.internal"
        );
        for bad in [
            "nn1",
            "nn1:0",
            "nn1:99999",
            "http://nn1:9870",
            "nn1:9870/jmx",
            "user@nn1:9870",
            "nn1:9870?qry=x",
            "nn1 :9870",
            "::1:8778",
            "[nope]:1",
            ":9870",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
