//! `network_route` (off by default): the unicast routes of every routing table and
//! family, from an rtnetlink route dump, as `node_network_route_info` (one series per
//! route, or per next hop of a multipath route) and `node_network_routes` per device.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::sys;

pub(super) fn build(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(NetworkRoute)
}

struct NetworkRoute;

/// `RTN_UNICAST`: the routes reported (not local, broadcast, unreachable, …).
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;

/// One route, or one next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    /// The output interface's index (0 when it has none).
    interface: u32,
    src: String,
    dest: String,
    gateway: String,
    priority: u32,
    proto: &'static str,
    /// The next hop's weight (`rtnh_hops` + 1) for multipath routes, else empty.
    weight: String,
}

/// The routing protocol names node_exporter uses for `rtm_protocol`.
fn protocol(number: u8) -> &'static str {
    match number {
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

/// An address attribute's text; empty when it is not 4 or 16 bytes.
fn address(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => String::new(),
    }
}

fn u32_of(bytes: &[u8]) -> u32 {
    bytes
        .get(..4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The `(type, value)` of each `rtattr` in `bytes` (4-byte aligned); stops at the first
/// malformed one.
fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        if length < 4 || length > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..length]));
        bytes = bytes.get(length.div_ceil(4) * 4..).unwrap_or_default();
    }
    out
}

/// The routes of one `RTM_NEWROUTE` message (`struct rtmsg` and its attributes); none
/// for routes that are not unicast or a message too short to be one.
fn parse(message: &[u8]) -> Vec<Route> {
    if message.len() < 12 || message[7] != RTN_UNICAST {
        return Vec::new();
    }
    let dst_len = message[1];
    let proto = protocol(message[5]);
    let mut dst = &[][..];
    let (mut interface, mut priority) = (0, 0);
    let (mut gateway, mut src) = (String::new(), String::new());
    let mut multipath = None;
    for (kind, value) in attributes(&message[12..]) {
        match kind {
            RTA_DST => dst = value,
            RTA_OIF => interface = u32_of(value),
            RTA_GATEWAY => gateway = address(value),
            RTA_PRIORITY => priority = u32_of(value),
            RTA_PREFSRC => src = address(value),
            RTA_MULTIPATH => multipath = Some(value),
            _ => {}
        }
    }
    let dest = if dst_len == 0 {
        "default".to_owned()
    } else {
        format!("{}/{dst_len}", address(dst))
    };
    let route = Route {
        interface,
        src,
        dest,
        gateway,
        priority,
        proto,
        weight: String::new(),
    };
    let Some(mut hops) = multipath else {
        return vec![route];
    };
    // `struct rtnexthop` (length, flags, hops, ifindex), then its own attributes.
    let mut routes = Vec::new();
    while hops.len() >= 8 {
        let length = usize::from(u16::from_ne_bytes([hops[0], hops[1]]));
        if length < 8 || length > hops.len() {
            break;
        }
        let gateway = attributes(&hops[8..length])
            .into_iter()
            .find(|(kind, _)| *kind == RTA_GATEWAY)
            .map(|(_, value)| address(value))
            .unwrap_or_default();
        routes.push(Route {
            interface: u32_of(&hops[4..8]),
            gateway,
            weight: (u32::from(hops[3]) + 1).to_string(),
            ..route.clone()
        });
        hops = hops.get(length.div_ceil(4) * 4..).unwrap_or_default();
    }
    routes
}

impl Collector for NetworkRoute {
    fn name(&self) -> &str {
        "network_route"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let messages =
            sys::route_dump().map_err(|e| CollectError::failed("dumping routes (rtnetlink)", e))?;
        let info = out.gauge(
            "node_network_route_info",
            "network routing table information",
        );
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut per_device: BTreeMap<String, f64> = BTreeMap::new();
        for route in messages.iter().flat_map(|message| parse(message)) {
            let device = names
                .entry(route.interface)
                .or_insert_with(|| sys::interface_name(route.interface).unwrap_or_default())
                .clone();
            let priority = route.priority.to_string();
            out.sample(
                info,
                &[
                    ("device", &device),
                    ("src", &route.src),
                    ("dest", &route.dest),
                    ("gw", &route.gateway),
                    ("priority", &priority),
                    ("proto", route.proto),
                    ("weight", &route.weight),
                ],
                1.0,
            );
            *per_device.entry(device).or_default() += 1.0;
        }
        let routes = out.gauge("node_network_routes", "network routes by interface");
        for (device, count) in &per_device {
            out.sample(routes, &[("device", device)], *count);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    /// A `struct rtmsg` of family, destination length, protocol and type.
    fn rtmsg(family: u8, dst_len: u8, proto: u8, kind: u8) -> Vec<u8> {
        vec![family, dst_len, 0, 0, 254, proto, 0, kind, 0, 0, 0, 0]
    }

    #[test]
    fn a_default_route_and_a_connected_network() {
        let mut default = rtmsg(2, 0, 4, RTN_UNICAST);
        default.extend(attribute(RTA_GATEWAY, &[192, 0, 2, 1]));
        default.extend(attribute(RTA_OIF, &7u32.to_ne_bytes()));
        default.extend(attribute(RTA_PRIORITY, &100u32.to_ne_bytes()));
        assert_eq!(
            parse(&default),
            [Route {
                interface: 7,
                src: String::new(),
                dest: "default".to_owned(),
                gateway: "192.0.2.1".to_owned(),
                priority: 100,
                proto: "static",
                weight: String::new(),
            }]
        );

        let mut connected = rtmsg(10, 64, 2, RTN_UNICAST);
        let mut fe80 = [0u8; 16];
        fe80[0] = 0xfe;
        fe80[1] = 0x80;
        connected.extend(attribute(RTA_DST, &fe80));
        connected.extend(attribute(RTA_OIF, &3u32.to_ne_bytes()));
        let route = &parse(&connected)[0];
        assert_eq!(route.dest, "fe80::/64");
        assert_eq!(route.proto, "kernel");
    }

    #[test]
    fn multipath_routes_give_one_series_per_next_hop() {
        let mut message = rtmsg(2, 8, 186, RTN_UNICAST);
        message.extend(attribute(RTA_DST, &[10, 0, 0, 0]));
        let mut hops = Vec::new();
        for (ifindex, hop_count, gateway) in [(2u32, 0u8, [10, 1, 0, 1]), (3, 4, [10, 2, 0, 1])] {
            let gateway = attribute(RTA_GATEWAY, &gateway);
            hops.extend_from_slice(&((8 + gateway.len()) as u16).to_ne_bytes());
            hops.push(0);
            hops.push(hop_count);
            hops.extend_from_slice(&ifindex.to_ne_bytes());
            hops.extend(gateway);
        }
        message.extend(attribute(RTA_MULTIPATH, &hops));
        let routes = parse(&message);
        assert_eq!(routes.len(), 2);
        assert_eq!(
            (
                routes[0].interface,
                routes[0].gateway.as_str(),
                routes[0].weight.as_str()
            ),
            (2, "10.1.0.1", "1")
        );
        assert_eq!(
            (
                routes[1].interface,
                routes[1].gateway.as_str(),
                routes[1].weight.as_str()
            ),
            (3, "10.2.0.1", "5")
        );
        assert_eq!(routes[1].dest, "10.0.0.0/8");
        assert_eq!(routes[1].proto, "bgp");
    }

    #[test]
    fn only_unicast_routes_and_whole_messages_count() {
        // RTN_LOCAL (2) and a message shorter than `struct rtmsg`.
        assert!(parse(&rtmsg(2, 32, 2, 2)).is_empty());
        assert!(parse(&[2, 0, 0]).is_empty());
        // A truncated attribute ends the attributes, not the route.
        let mut message = rtmsg(2, 0, 3, RTN_UNICAST);
        message.extend_from_slice(&[200, 0, 5, 0, 1, 2]);
        assert_eq!(parse(&message).len(), 1);
    }

    #[test]
    fn this_hosts_ipv4_main_table_is_in_the_dump() {
        // Every route of /proc/net/route (the IPv4 main table) is among the dumped ones.
        let routes: Vec<(String, String)> = sys::route_dump()
            .unwrap()
            .iter()
            .flat_map(|message| parse(message))
            .map(|route| {
                (
                    sys::interface_name(route.interface).unwrap_or_default(),
                    route.dest,
                )
            })
            .collect();
        let table = std::fs::read_to_string("/proc/net/route").unwrap();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let hex = |field: &str| u32::from_str_radix(field, 16).unwrap().to_ne_bytes();
            let (device, destination, mask) = (fields[0], hex(fields[1]), hex(fields[7]));
            let prefix = u32::from_ne_bytes(mask).count_ones();
            let dest = if prefix == 0 {
                "default".to_owned()
            } else {
                format!("{}/{prefix}", std::net::Ipv4Addr::from(destination))
            };
            assert!(
                routes.contains(&(device.to_owned(), dest.clone())),
                "{device} {dest} missing from {routes:?}"
            );
        }
    }
}
