//! Route netlink dumps: the kernel's list of network links with their statistics
//! (`RTM_GETLINK`), of interface addresses (`RTM_GETADDR`) and of routes
//! (`RTM_GETROUTE`), as node_exporter reads them.
//!
//! `/proc/net/dev` folds several error counters together and lacks others
//! (`rx_nohandler`); the link dump gives all of them, and it is how node_exporter reads
//! interface statistics by default. A dump that is not complete within [`DEADLINE`] fails.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::{Protocol, Socket, attributes};

/// Longest a dump may take.
const DEADLINE: Duration = Duration::from_secs(2);

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
/// `struct ifinfomsg` and `struct ifaddrmsg`.
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
/// `struct rtmsg`.
const RTMSG: usize = 12;
/// `struct rtnexthop`, each of which heads one path of a multipath route.
const RTNEXTHOP: usize = 8;
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `struct rtnl_link_stats64` (or the 32-bit `rtnl_link_stats`), field for field. Fields
/// an older kernel does not send are 0.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct LinkStats {
    pub(crate) rx_packets: u64,
    pub(crate) tx_packets: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) rx_errors: u64,
    pub(crate) tx_errors: u64,
    pub(crate) rx_dropped: u64,
    pub(crate) tx_dropped: u64,
    pub(crate) multicast: u64,
    pub(crate) collisions: u64,
    pub(crate) rx_length_errors: u64,
    pub(crate) rx_over_errors: u64,
    pub(crate) rx_crc_errors: u64,
    pub(crate) rx_frame_errors: u64,
    pub(crate) rx_fifo_errors: u64,
    pub(crate) rx_missed_errors: u64,
    pub(crate) tx_aborted_errors: u64,
    pub(crate) tx_carrier_errors: u64,
    pub(crate) tx_fifo_errors: u64,
    pub(crate) tx_heartbeat_errors: u64,
    pub(crate) tx_window_errors: u64,
    pub(crate) rx_compressed: u64,
    pub(crate) tx_compressed: u64,
    pub(crate) rx_nohandler: u64,
}

impl LinkStats {
    /// Decodes the attribute's counters, each `width` bytes (8 for `IFLA_STATS64`, 4 for
    /// `IFLA_STATS`), in the kernel's order.
    fn decode(data: &[u8], width: usize) -> Self {
        let mut values = data.chunks_exact(width).map(|c| match width {
            8 => u64::from_ne_bytes(c.try_into().unwrap_or_default()),
            _ => u64::from(u32::from_ne_bytes(c.try_into().unwrap_or_default())),
        });
        let mut next = || values.next().unwrap_or(0);
        Self {
            rx_packets: next(),
            tx_packets: next(),
            rx_bytes: next(),
            tx_bytes: next(),
            rx_errors: next(),
            tx_errors: next(),
            rx_dropped: next(),
            tx_dropped: next(),
            multicast: next(),
            collisions: next(),
            rx_length_errors: next(),
            rx_over_errors: next(),
            rx_crc_errors: next(),
            rx_frame_errors: next(),
            rx_fifo_errors: next(),
            rx_missed_errors: next(),
            tx_aborted_errors: next(),
            tx_carrier_errors: next(),
            tx_fifo_errors: next(),
            tx_heartbeat_errors: next(),
            tx_window_errors: next(),
            rx_compressed: next(),
            tx_compressed: next(),
            rx_nohandler: next(),
        }
    }
}

/// One link of the dump.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub(crate) index: i32,
    pub(crate) name: String,
    /// `None` when the kernel sent no statistics for the link.
    pub(crate) stats: Option<LinkStats>,
    /// What else the message says about the link (netclass's properties).
    pub(crate) properties: LinkProperties,
}

/// The link's header fields and the attributes that mirror files of
/// `/sys/class/net/<iface>/`. An attribute the kernel did not send is `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LinkProperties {
    /// `ifi_type` (`ARPHRD_*`), sysfs `type`.
    pub(crate) kind: u16,
    /// `ifi_flags`: `dev_get_flags()`, with the runtime bits (`IFF_RUNNING`,
    /// `IFF_LOWER_UP`, `IFF_DORMANT`) that sysfs `flags` lacks.
    pub(crate) flags: u32,
    /// Hardware address and broadcast address; the kernel sends neither when the device
    /// has no address (`addr_len` 0).
    pub(crate) address: Option<Vec<u8>>,
    pub(crate) broadcast: Option<Vec<u8>>,
    pub(crate) mtu: Option<u32>,
    /// `IFLA_LINK`: sent only when the link's `iflink` differs from its index.
    pub(crate) link: Option<u32>,
    pub(crate) tx_queue_len: Option<u32>,
    /// `IF_OPER_*`, already `IF_OPER_DOWN` for a device that is not up.
    pub(crate) operstate: Option<u8>,
    pub(crate) link_mode: Option<u8>,
    /// Sent only when the device has one.
    pub(crate) alias: Option<String>,
    pub(crate) group: Option<u32>,
    pub(crate) carrier: Option<u8>,
    pub(crate) carrier_changes: Option<u32>,
    pub(crate) carrier_up_count: Option<u32>,
    pub(crate) carrier_down_count: Option<u32>,
}

/// One interface address of the dump.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Address {
    pub(crate) index: i32,
    pub(crate) address: IpAddr,
    pub(crate) prefix_len: u8,
}

/// One route of the dump: `struct rtmsg`'s fields and the attributes node_exporter reads.
/// Addresses are as the kernel sent them (4 or 16 bytes), whatever the route's family.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    pub(crate) family: u8,
    /// The prefix length of the destination; 0 for a default route.
    pub(crate) dst_len: u8,
    /// Who installed the route (`RTPROT_*`).
    pub(crate) protocol: u8,
    /// The route's type (`RTN_*`: unicast, local, broadcast, …).
    pub(crate) kind: u8,
    /// The routing table (`RTA_TABLE`, or the header's 8-bit table without it).
    pub(crate) table: u32,
    pub(crate) destination: Option<IpAddr>,
    /// `RTA_PREFSRC`: the source address the kernel prefers for the route.
    pub(crate) preferred_source: Option<IpAddr>,
    pub(crate) gateway: Option<IpAddr>,
    /// `RTA_OIF`; 0 when absent.
    pub(crate) out_interface: u32,
    /// `RTA_PRIORITY` (the route's metric); 0 when absent.
    pub(crate) priority: u32,
    /// The paths of a multipath route (`RTA_MULTIPATH`); empty otherwise.
    pub(crate) next_hops: Vec<NextHop>,
}

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NextHop {
    pub(crate) interface: u32,
    /// `rtnh_hops`, the path's weight less one.
    pub(crate) hops: u8,
    pub(crate) gateway: Option<IpAddr>,
}

/// Every link the kernel knows, with its statistics.
pub(crate) fn links() -> io::Result<Vec<Link>> {
    let mut links = Vec::new();
    dump(RTM_GETLINK, IFINFOMSG, |kind, body| {
        if kind == RTM_NEWLINK
            && let Some(link) = parse_link(body)
        {
            links.push(link);
        }
    })?;
    Ok(links)
}

/// Every IPv4 and IPv6 address of every interface.
pub(crate) fn addresses() -> io::Result<Vec<Address>> {
    let mut addresses = Vec::new();
    dump(RTM_GETADDR, IFADDRMSG, |kind, body| {
        if kind == RTM_NEWADDR
            && let Some(address) = parse_address(body)
        {
            addresses.push(address);
        }
    })?;
    Ok(addresses)
}

/// Every route of every table and family. A message that cannot be decoded (an address
/// of a length no family has) is left out and counted in the second value.
pub(crate) fn routes() -> io::Result<(Vec<Route>, usize)> {
    let mut routes = Vec::new();
    let mut malformed = 0;
    dump(RTM_GETROUTE, RTMSG, |kind, body| {
        if kind == RTM_NEWROUTE {
            match parse_route(body) {
                Some(route) => routes.push(route),
                None => malformed += 1,
            }
        }
    })?;
    Ok((routes, malformed))
}

/// Sends a dump request of type `request` (its family header `header_len` bytes of
/// zeros: all families, all interfaces) and hands each answer's type and body to `each`.
fn dump(request: u16, header_len: usize, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let mut socket = Socket::open(Protocol::Route)?;
    let header = [0u8; IFINFOMSG];
    socket.dump(
        request,
        &header[..header_len],
        Instant::now() + DEADLINE,
        |message| {
            each(message.kind, message.payload);
            Ok(())
        },
    )
}

/// A string attribute, up to its terminating NUL.
fn string(value: &[u8]) -> String {
    let text = value.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

fn parse_link(body: &[u8]) -> Option<Link> {
    let header = body.get(..IFINFOMSG)?;
    let index = i32::from_ne_bytes(header[4..8].try_into().ok()?);
    let mut properties = LinkProperties {
        kind: u16::from_ne_bytes([header[2], header[3]]),
        flags: u32_value(&header[8..12])?,
        ..LinkProperties::default()
    };
    let mut name = None;
    let mut stats64 = None;
    let mut stats32 = None;
    let p = &mut properties;
    for (kind, value) in attributes(&body[IFINFOMSG..]) {
        match kind {
            IFLA_IFNAME => name = Some(string(value)),
            IFLA_STATS64 => stats64 = Some(LinkStats::decode(value, 8)),
            IFLA_STATS => stats32 = Some(LinkStats::decode(value, 4)),
            IFLA_ADDRESS => p.address = Some(value.to_vec()),
            IFLA_BROADCAST => p.broadcast = Some(value.to_vec()),
            IFLA_MTU => p.mtu = u32_value(value),
            IFLA_LINK => p.link = u32_value(value),
            IFLA_TXQLEN => p.tx_queue_len = u32_value(value),
            IFLA_OPERSTATE => p.operstate = value.first().copied(),
            IFLA_LINKMODE => p.link_mode = value.first().copied(),
            IFLA_IFALIAS => p.alias = Some(string(value)),
            IFLA_GROUP => p.group = u32_value(value),
            IFLA_CARRIER => p.carrier = value.first().copied(),
            IFLA_CARRIER_CHANGES => p.carrier_changes = u32_value(value),
            IFLA_CARRIER_UP_COUNT => p.carrier_up_count = u32_value(value),
            IFLA_CARRIER_DOWN_COUNT => p.carrier_down_count = u32_value(value),
            _ => {}
        }
    }
    Some(Link {
        index,
        name: name?,
        stats: stats64.or(stats32),
        properties,
    })
}

/// An address message. For IPv4 the local address is the interface's own (on a
/// point-to-point link `IFA_ADDRESS` is the peer's), as Go's `net` package takes it.
fn parse_address(body: &[u8]) -> Option<Address> {
    let family = *body.first()?;
    let prefix_len = *body.get(1)?;
    let index = i32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let mut address = None;
    let mut local = None;
    for (kind, value) in attributes(body.get(IFADDRMSG..)?) {
        // Labels, flags and cache times are other attributes of the message.
        if kind != IFA_ADDRESS && kind != IFA_LOCAL {
            continue;
        }
        let ip = match family {
            AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value.get(..4)?).ok()?)),
            AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value.get(..16)?).ok()?)),
            _ => return None,
        };
        if kind == IFA_LOCAL {
            local = Some(ip);
        } else {
            address = Some(ip);
        }
    }
    Some(Address {
        index,
        address: local.or(address)?,
        prefix_len,
    })
}

/// An address attribute: 4 bytes are IPv4, 16 IPv6; any other length is malformed.
fn ip(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(value).ok()?,
        ))),
        _ => None,
    }
}

fn u32_value(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

/// A route message; `None` when its header is short or an attribute is malformed.
fn parse_route(body: &[u8]) -> Option<Route> {
    let header = body.get(..RTMSG)?;
    let mut route = Route {
        family: header[0],
        dst_len: header[1],
        protocol: header[5],
        kind: header[7],
        table: u32::from(header[4]),
        destination: None,
        preferred_source: None,
        gateway: None,
        out_interface: 0,
        priority: 0,
        next_hops: Vec::new(),
    };
    for (kind, value) in attributes(&body[RTMSG..]) {
        match kind {
            RTA_DST => route.destination = Some(ip(value)?),
            RTA_PREFSRC => route.preferred_source = Some(ip(value)?),
            RTA_GATEWAY => route.gateway = Some(ip(value)?),
            RTA_OIF => route.out_interface = u32_value(value)?,
            RTA_PRIORITY => route.priority = u32_value(value)?,
            RTA_TABLE => route.table = u32_value(value)?,
            RTA_MULTIPATH => route.next_hops = parse_next_hops(value)?,
            _ => {}
        }
    }
    Some(route)
}

/// `RTA_MULTIPATH`: a `struct rtnexthop` per path, each followed by its own attributes
/// (the path's gateway) up to the length it gives, aligned to four bytes.
fn parse_next_hops(mut data: &[u8]) -> Option<Vec<NextHop>> {
    let mut hops = Vec::new();
    while data.len() >= RTNEXTHOP {
        let length = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        if length < RTNEXTHOP || length > data.len() {
            return None;
        }
        let mut hop = NextHop {
            interface: u32_value(&data[4..8])?,
            hops: data[3],
            gateway: None,
        };
        for (kind, value) in attributes(&data[RTNEXTHOP..length]) {
            if kind == RTA_GATEWAY {
                hop.gateway = Some(ip(value)?);
            }
        }
        hops.push(hop);
        data = data.get((length + 3) & !3..).unwrap_or_default();
    }
    Some(hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::push_attribute(&mut out, kind, value);
        out
    }

    #[test]
    fn link_messages() {
        let mut body = vec![0u8; IFINFOMSG];
        body[4..8].copy_from_slice(&7i32.to_ne_bytes());
        body.extend(attribute(IFLA_IFNAME, b"eth0\0"));
        let counters: Vec<u8> = (1..=24u64).flat_map(u64::to_ne_bytes).collect();
        body.extend(attribute(IFLA_STATS64, &counters));
        let link = parse_link(&body).unwrap();
        assert_eq!((link.index, link.name.as_str()), (7, "eth0"));
        let stats = link.stats.unwrap();
        assert_eq!((stats.rx_packets, stats.rx_nohandler), (1, 24));

        // An old kernel's 32-bit statistics, without rx_nohandler.
        let mut body = vec![0u8; IFINFOMSG];
        body.extend(attribute(IFLA_IFNAME, b"lo\0"));
        let counters: Vec<u8> = (1..=23u32).flat_map(u32::to_ne_bytes).collect();
        body.extend(attribute(IFLA_STATS, &counters));
        let stats = parse_link(&body).unwrap().stats.unwrap();
        assert_eq!((stats.tx_compressed, stats.rx_nohandler), (23, 0));
    }

    #[test]
    fn link_messages_carry_sysfs_properties() {
        let mut body = vec![0u8; IFINFOMSG];
        body[2..4].copy_from_slice(&1u16.to_ne_bytes());
        body[4..8].copy_from_slice(&2i32.to_ne_bytes());
        body[8..12].copy_from_slice(&0x11043u32.to_ne_bytes());
        body.extend(attribute(IFLA_IFNAME, b"eth0\0"));
        body.extend(attribute(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
        body.extend(attribute(IFLA_BROADCAST, &[0xff; 6]));
        body.extend(attribute(IFLA_MTU, &1500u32.to_ne_bytes()));
        body.extend(attribute(IFLA_TXQLEN, &1000u32.to_ne_bytes()));
        body.extend(attribute(IFLA_OPERSTATE, &[6]));
        body.extend(attribute(IFLA_LINKMODE, &[0]));
        body.extend(attribute(IFLA_IFALIAS, b"uplink\0"));
        body.extend(attribute(IFLA_GROUP, &0u32.to_ne_bytes()));
        body.extend(attribute(IFLA_CARRIER, &[1]));
        body.extend(attribute(IFLA_CARRIER_CHANGES, &3u32.to_ne_bytes()));
        body.extend(attribute(IFLA_CARRIER_UP_COUNT, &2u32.to_ne_bytes()));
        body.extend(attribute(IFLA_CARRIER_DOWN_COUNT, &1u32.to_ne_bytes()));
        let link = parse_link(&body).unwrap();
        assert_eq!(link.stats, None);
        assert_eq!(
            link.properties,
            LinkProperties {
                kind: 1,
                flags: 0x11043,
                address: Some(vec![2, 0, 0, 0, 0, 1]),
                broadcast: Some(vec![0xff; 6]),
                mtu: Some(1500),
                link: None,
                tx_queue_len: Some(1000),
                operstate: Some(6),
                link_mode: Some(0),
                alias: Some("uplink".into()),
                group: Some(0),
                carrier: Some(1),
                carrier_changes: Some(3),
                carrier_up_count: Some(2),
                carrier_down_count: Some(1),
            }
        );
    }

    #[test]
    fn address_messages_prefer_the_local_address() {
        let mut body = vec![AF_INET, 24, 0, 0];
        body.extend_from_slice(&3i32.to_ne_bytes());
        body.extend(attribute(IFA_ADDRESS, &[10, 0, 0, 2]));
        body.extend(attribute(IFA_LOCAL, &[10, 0, 0, 1]));
        body.extend(attribute(3, b"lo\0"));
        let address = parse_address(&body).unwrap();
        assert_eq!(address.address, IpAddr::from([10, 0, 0, 1]));
        assert_eq!((address.index, address.prefix_len), (3, 24));
    }

    fn route_header(family: u8, dst_len: u8, protocol: u8, kind: u8) -> Vec<u8> {
        // family, dst_len, src_len, tos, table (main), protocol, scope, type, flags.
        let mut body = vec![family, dst_len, 0, 0, 254, protocol, 0, kind];
        body.extend_from_slice(&0u32.to_ne_bytes());
        body
    }

    #[test]
    fn route_messages() {
        let mut body = route_header(AF_INET, 24, 2, 1);
        body.extend(attribute(RTA_TABLE, &254u32.to_ne_bytes()));
        body.extend(attribute(RTA_DST, &[192, 168, 1, 0]));
        body.extend(attribute(RTA_PREFSRC, &[192, 168, 1, 10]));
        body.extend(attribute(RTA_OIF, &3u32.to_ne_bytes()));
        body.extend(attribute(RTA_PRIORITY, &100u32.to_ne_bytes()));
        let route = parse_route(&body).unwrap();
        assert_eq!(
            route,
            Route {
                family: AF_INET,
                dst_len: 24,
                protocol: 2,
                kind: 1,
                table: 254,
                destination: Some(IpAddr::from([192, 168, 1, 0])),
                preferred_source: Some(IpAddr::from([192, 168, 1, 10])),
                gateway: None,
                out_interface: 3,
                priority: 100,
                next_hops: Vec::new(),
            }
        );

        // An address of a length no family has spoils the message.
        let mut bad = route_header(AF_INET, 0, 4, 1);
        bad.extend(attribute(RTA_GATEWAY, &[10, 0, 0]));
        assert_eq!(parse_route(&bad), None);
        assert_eq!(parse_route(&body[..RTMSG - 1]), None);
    }

    #[test]
    fn multipath_routes_list_each_path() {
        let mut paths = Vec::new();
        for (interface, hops, gateway) in [(2u32, 0u8, [10, 0, 0, 1]), (5, 3, [10, 0, 1, 1])] {
            let gateway = attribute(RTA_GATEWAY, &gateway);
            let length = (RTNEXTHOP + gateway.len()) as u16;
            paths.extend_from_slice(&length.to_ne_bytes());
            paths.extend_from_slice(&[0, hops]);
            paths.extend_from_slice(&interface.to_ne_bytes());
            paths.extend(gateway);
        }
        let mut body = route_header(AF_INET, 0, 186, 1);
        body.extend(attribute(RTA_MULTIPATH, &paths));
        let route = parse_route(&body).unwrap();
        assert_eq!(
            route.next_hops,
            [
                NextHop {
                    interface: 2,
                    hops: 0,
                    gateway: Some(IpAddr::from([10, 0, 0, 1])),
                },
                NextHop {
                    interface: 5,
                    hops: 3,
                    gateway: Some(IpAddr::from([10, 0, 1, 1])),
                },
            ]
        );
        // A path that claims more than there is spoils the message.
        let last = paths.len() - (RTNEXTHOP + 8);
        paths[last..last + 2].copy_from_slice(&200u16.to_ne_bytes());
        let mut body = route_header(AF_INET, 0, 186, 1);
        body.extend(attribute(RTA_MULTIPATH, &paths));
        assert_eq!(parse_route(&body), None);
    }

    #[test]
    fn the_kernel_lists_the_loopback_link() {
        // Every network namespace has `lo`.
        let links = links().unwrap();
        assert!(
            links.iter().any(|l| l.name == "lo" && l.stats.is_some()),
            "{links:?}"
        );
    }
}
