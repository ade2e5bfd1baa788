//! Resolving target names: through the system resolver (getaddrinfo, so /etc/hosts and
//! nsswitch apply, as for `ping`), or through one DNS server given by `--dns.nameserver`
//! (whose answers are cached for their TTL). Every lookup has a time limit, so a hung
//! resolver delays only its own target's refresh.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;

use crate::config::DnsSettings;
use crate::icmp::Family;

/// The first address of each family, by [`Family::index`].
pub type Addresses = [Option<IpAddr>; 2];

/// A name resolver.
pub enum Resolver {
    /// getaddrinfo(3).
    System {
        /// Limit of one lookup.
        timeout: Duration,
    },
    /// One DNS server.
    Nameserver {
        /// The resolver.
        resolver: Box<TokioResolver>,
        /// Limit of one lookup.
        timeout: Duration,
    },
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System { .. } => f.write_str("Resolver::System"),
            Self::Nameserver { .. } => f.write_str("Resolver::Nameserver"),
        }
    }
}

impl Resolver {
    /// The resolver `settings` ask for.
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        let timeout = settings.timeout;
        let Some(server) = &settings.nameserver else {
            return Ok(Self::System { timeout });
        };
        let address = parse_nameserver(server)?;
        let group = NameServerConfigGroup::from_ips_clear(&[address.ip()], address.port(), true);
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = 2;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Go's resolver, which upstream uses with a name server, reads /etc/hosts first.
        options.use_hosts_file = ResolveHosts::Always;
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(options)
                .build();
        Ok(Self::Nameserver {
            resolver: Box::new(resolver),
            timeout,
        })
    }

    /// The first address of each wanted family that `host` has.
    pub async fn resolve(&self, host: &str, wanted: [bool; 2]) -> Result<Addresses, String> {
        let addresses: Vec<IpAddr> = match self {
            Self::System { timeout } => {
                let lookup = tokio::net::lookup_host((host, 0));
                tokio::time::timeout(*timeout, lookup)
                    .await
                    .map_err(|_| format!("no answer within {timeout:?}"))?
                    .map_err(|e| e.to_string())?
                    .map(|address| address.ip())
                    .collect()
            }
            Self::Nameserver { resolver, timeout } => {
                // The resolver has its own per-query limit; this bounds retries as well.
                let lookup = resolver.lookup_ip(host);
                tokio::time::timeout(*timeout * 3, lookup)
                    .await
                    .map_err(|_| format!("no answer within {:?}", *timeout * 3))?
                    .map_err(|e| e.to_string())?
                    .iter()
                    .collect()
            }
        };
        let mut found: Addresses = [None, None];
        for address in addresses {
            let slot = &mut found[Family::of(address).index()];
            if slot.is_none() {
                *slot = Some(address);
            }
        }
        for (slot, wanted) in found.iter_mut().zip(wanted) {
            if !wanted {
                *slot = None;
            }
        }
        if found == [None, None] {
            return Err("no address of an enabled family".into());
        }
        Ok(found)
    }
}

/// `1.1.1.1`, `1.1.1.1:5353`, `::1`, `[::1]:5353`.
fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("--dns.nameserver {text:?} is not an address (with an optional port)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_spellings() {
        assert_eq!(
            parse_nameserver("1.1.1.1").unwrap(),
            "1.1.1.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("::1").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("[::1]:54").unwrap(),
            "[::1]:54".parse().unwrap()
        );
        assert!(parse_nameserver("dns.example").is_err());
    }

    #[tokio::test]
    async fn system_resolver_reads_literals_and_hosts() {
        let resolver = Resolver::System {
            timeout: Duration::from_secs(5),
        };
        let found = resolver.resolve("127.0.0.1", [true, true]).await.unwrap();
        assert_eq!(found, [Some("127.0.0.1".parse().unwrap()), None]);
        let found = resolver.resolve("localhost", [true, false]).await.unwrap();
        assert_eq!(found[1], None);
        assert!(found[0].is_some_and(|a| a.is_loopback()));
        assert!(resolver.resolve("::1", [true, false]).await.is_err());
    }
}
