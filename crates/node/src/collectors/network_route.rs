//! `network_route`: the kernel's unicast routes, every table and family, from an rtnetlink
//! route dump (`RTM_GETROUTE`), with the number of routes through each interface.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::netlink::route::{self, Route};

pub(super) fn build(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(NetworkRoute {
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct NetworkRoute {
    /// Holds back repeats of the warning about route messages that could not be decoded.
    warnings: LogLimiter,
}

/// `RTN_UNICAST`: routes of other types (local, broadcast, unreachable, …) are not
/// reported, as upstream.
const RTN_UNICAST: u8 = 1;

/// The `proto` label: the name the kernel's `rtnetlink.h` gives a route's protocol number,
/// or `unknown`, as upstream names them.
fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        42 => "babel",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        _ => "unknown",
    }
}

/// An address as Go's `net.IP` prints it: an IPv4-mapped IPv6 address in dotted form,
/// otherwise the usual (RFC 5952) text; an absent one is empty.
fn address_text(ip: Option<IpAddr>) -> String {
    match ip {
        None => String::new(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Some(ip) => ip.to_string(),
    }
}

/// The `dest` label: `default` for a zero-length prefix, else `address/length` with the
/// address as sent (not masked). Where upstream's Go network type cannot represent the
/// pair (no address, or an IPv4-mapped address with a prefix longer than 32) it prints
/// `<nil>`, and so does this.
fn destination_text(ip: Option<IpAddr>, length: u8) -> String {
    if length == 0 {
        return "default".to_owned();
    }
    let v4_bits = match ip {
        None => return "<nil>".to_owned(),
        Some(IpAddr::V4(_)) => true,
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some(),
    };
    if (v4_bits && length > 32) || length > 128 {
        return "<nil>".to_owned();
    }
    format!("{}/{length}", address_text(ip))
}

/// The labels of one `node_network_route_info` series, in upstream's order: device,
/// src, dest, gw, priority, proto, weight.
type InfoLabels = [String; 7];

/// Each unicast route's info series (one per path of a multipath route) and the number
/// of routes per interface name. Series whose labels repeat an earlier one's (the same
/// route in two tables) are written once; every route still counts for its interface.
fn route_series(
    routes: &[Route],
    names: &HashMap<u32, String>,
) -> (Vec<InfoLabels>, BTreeMap<String, u32>) {
    let name = |index: u32| names.get(&index).cloned().unwrap_or_default();
    let mut series = Vec::new();
    let mut seen = BTreeSet::new();
    let mut per_device: BTreeMap<String, u32> = BTreeMap::new();
    for route in routes.iter().filter(|r| r.kind == RTN_UNICAST) {
        let source = address_text(route.preferred_source);
        let destination = destination_text(route.destination, route.dst_len);
        let priority = route.priority.to_string();
        let protocol = protocol_name(route.protocol).to_owned();
        let mut emit = |device: String, gateway: String, weight: String| {
            *per_device.entry(device.clone()).or_default() += 1;
            let labels = [
                device,
                source.clone(),
                destination.clone(),
                gateway,
                priority.clone(),
                protocol.clone(),
                weight,
            ];
            if seen.insert(labels.clone()) {
                series.push(labels);
            }
        };
        if route.next_hops.is_empty() {
            emit(
                name(route.out_interface),
                address_text(route.gateway),
                String::new(),
            );
        } else {
            for hop in &route.next_hops {
                emit(
                    name(hop.interface),
                    address_text(hop.gateway),
                    (u32::from(hop.hops) + 1).to_string(),
                );
            }
        }
    }
    (series, per_device)
}

impl Collector for NetworkRoute {
    fn name(&self) -> &str {
        "network_route"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let failed = |e| CollectError::failed("netlink route dump", e);
        // Interface indexes are unsigned in route messages, signed in link messages.
        let names: HashMap<u32, String> = route::links()
            .map_err(failed)?
            .into_iter()
            .map(|link| (link.index as u32, link.name))
            .collect();
        let (routes, malformed) = route::routes().map_err(failed)?;
        if malformed > 0
            && let Some(held_back) = self.warnings.check()
        {
            tracing::warn!(
                collector = "network_route",
                malformed,
                held_back,
                "route messages that could not be decoded were left out"
            );
        }
        let (series, per_device) = route_series(&routes, &names);
        let info = out.gauge(
            "node_network_route_info",
            "network routing table information",
        );
        for labels in &series {
            let names = ["device", "src", "dest", "gw", "priority", "proto", "weight"];
            let pairs: Vec<(&str, &str)> = names
                .iter()
                .copied()
                .zip(labels.iter().map(String::as_str))
                .collect();
            out.sample(info, &pairs, 1.0);
        }
        let count = out.gauge("node_network_routes", "network routes by interface");
        for (device, routes) in &per_device {
            out.sample(count, &[("device", device)], f64::from(*routes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::netlink::route::NextHop;

    fn unicast(destination: Option<IpAddr>, dst_len: u8, interface: u32) -> Route {
        Route {
            family: 2,
            dst_len,
            protocol: 2,
            kind: RTN_UNICAST,
            table: 254,
            destination,
            preferred_source: None,
            gateway: None,
            out_interface: interface,
            priority: 0,
            next_hops: Vec::new(),
        }
    }

    fn strings(labels: &[&str; 7]) -> InfoLabels {
        labels.map(str::to_owned)
    }

    #[test]
    fn addresses_print_as_go_prints_them() {
        assert_eq!(address_text(None), "");
        assert_eq!(address_text(Some(IpAddr::from([10, 0, 0, 1]))), "10.0.0.1");
        let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped();
        assert_eq!(address_text(Some(mapped.into())), "192.0.2.1");
        let v6: Ipv6Addr = "2001:db8:0:0:1:0:0:1".parse().unwrap();
        assert_eq!(address_text(Some(v6.into())), "2001:db8::1:0:0:1");
        assert_eq!(address_text(Some(Ipv6Addr::LOCALHOST.into())), "::1");

        assert_eq!(destination_text(None, 0), "default");
        let net = IpAddr::from([192, 168, 1, 0]);
        assert_eq!(destination_text(Some(net), 24), "192.168.1.0/24");
        // Not masked: the address as the kernel sent it.
        let host = IpAddr::from([192, 168, 1, 7]);
        assert_eq!(destination_text(Some(host), 24), "192.168.1.7/24");
        let v6: Ipv6Addr = "fe80::".parse().unwrap();
        assert_eq!(destination_text(Some(v6.into()), 64), "fe80::/64");
        assert_eq!(destination_text(Some(mapped.into()), 96), "<nil>");
        assert_eq!(destination_text(None, 8), "<nil>");
    }

    #[test]
    fn protocols_are_named_as_in_rtnetlink_h() {
        assert_eq!(protocol_name(2), "kernel");
        assert_eq!(protocol_name(16), "dhcp");
        assert_eq!(protocol_name(186), "bgp");
        assert_eq!(protocol_name(99), "unknown");
    }

    #[test]
    fn unicast_routes_and_each_path_of_a_multipath_route() {
        let names: HashMap<u32, String> = [(2, "eth0".to_owned()), (3, "eth1".to_owned())].into();
        let mut default = unicast(None, 0, 2);
        default.gateway = Some(IpAddr::from([192, 168, 1, 1]));
        default.protocol = 16;
        default.priority = 100;
        let mut subnet = unicast(Some(IpAddr::from([192, 168, 1, 0])), 24, 2);
        subnet.preferred_source = Some(IpAddr::from([192, 168, 1, 10]));
        let mut local = unicast(Some(IpAddr::from([192, 168, 1, 10])), 32, 2);
        local.kind = 2;
        // The same route in another table.
        let mut copy = subnet.clone();
        copy.table = 100;
        let mut multipath = unicast(Some(IpAddr::from([10, 0, 0, 0])), 8, 0);
        multipath.protocol = 186;
        multipath.next_hops = vec![
            NextHop {
                interface: 2,
                hops: 0,
                gateway: Some(IpAddr::from([192, 168, 1, 2])),
            },
            NextHop {
                interface: 3,
                hops: 4,
                gateway: Some(IpAddr::from([172, 16, 0, 1])),
            },
        ];
        // An interface the link dump did not list.
        let orphan = unicast(Some(IpAddr::from([172, 17, 0, 0])), 16, 9);
        let routes = [default, subnet, local, copy, multipath, orphan];
        let (series, per_device) = route_series(&routes, &names);
        assert_eq!(
            series,
            [
                strings(&["eth0", "", "default", "192.168.1.1", "100", "dhcp", ""]),
                strings(&[
                    "eth0",
                    "192.168.1.10",
                    "192.168.1.0/24",
                    "",
                    "0",
                    "kernel",
                    ""
                ]),
                strings(&["eth0", "", "10.0.0.0/8", "192.168.1.2", "0", "bgp", "1"]),
                strings(&["eth1", "", "10.0.0.0/8", "172.16.0.1", "0", "bgp", "5"]),
                strings(&["", "", "172.17.0.0/16", "", "0", "kernel", ""]),
            ]
        );
        let expected: BTreeMap<String, u32> = [
            (String::new(), 1),
            ("eth0".to_owned(), 4),
            ("eth1".to_owned(), 1),
        ]
        .into();
        assert_eq!(per_device, expected);
    }

    /// The IPv4 routes of the main table as `/proc/net/route` lists them:
    /// `(interface, destination, prefix length, gateway, metric)`.
    fn proc_net_route() -> Vec<(String, Ipv4Addr, u8, Option<Ipv4Addr>, u32)> {
        let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        // The file holds addresses as the host's-order print of the network-order value.
        let address = |s: &str| hex(s).map(|v| Ipv4Addr::from(v.to_ne_bytes()));
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let mask = hex(f.get(7)?)?;
                let gateway = address(f[2])?;
                Some((
                    f[0].to_owned(),
                    address(f[1])?,
                    mask.count_ones() as u8,
                    (!gateway.is_unspecified()).then_some(gateway),
                    f.get(6)?.parse().ok()?,
                ))
            })
            .collect()
    }

    #[test]
    fn the_kernels_route_dump_agrees_with_proc_net_route() {
        let names: HashMap<u32, String> = route::links()
            .unwrap()
            .into_iter()
            .map(|l| (l.index as u32, l.name))
            .collect();
        let (routes, malformed) = route::routes().unwrap();
        assert_eq!(malformed, 0);
        let main: Vec<_> = routes
            .iter()
            .filter(|r| r.family == 2 && r.table == 254 && r.next_hops.is_empty())
            .map(|r| {
                let v4 = |ip: Option<IpAddr>| match ip {
                    Some(IpAddr::V4(v4)) => Some(v4),
                    _ => None,
                };
                (
                    names.get(&r.out_interface).cloned().unwrap_or_default(),
                    v4(r.destination).unwrap_or(Ipv4Addr::UNSPECIFIED),
                    r.dst_len,
                    v4(r.gateway),
                    r.priority,
                )
            })
            .collect();
        for expected in proc_net_route() {
            assert!(main.contains(&expected), "{expected:?} not in {main:?}");
        }
    }
}
