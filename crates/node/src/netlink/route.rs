//! Route netlink dumps: the kernel's list of network links with their statistics
//! (`RTM_GETLINK`) and of interface addresses (`RTM_GETADDR`), as node_exporter reads them.
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
/// `struct ifinfomsg` and `struct ifaddrmsg`.
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS: u16 = 7;
const IFLA_STATS64: u16 = 23;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
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
}

/// One interface address of the dump.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Address {
    pub(crate) index: i32,
    pub(crate) address: IpAddr,
    pub(crate) prefix_len: u8,
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

fn parse_link(body: &[u8]) -> Option<Link> {
    let index = i32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let mut name = None;
    let mut stats64 = None;
    let mut stats32 = None;
    for (kind, value) in attributes(body.get(IFINFOMSG..)?) {
        match kind {
            IFLA_IFNAME => {
                let text = value.split(|b| *b == 0).next().unwrap_or_default();
                name = Some(String::from_utf8_lossy(text).into_owned());
            }
            IFLA_STATS64 => stats64 = Some(LinkStats::decode(value, 8)),
            IFLA_STATS => stats32 = Some(LinkStats::decode(value, 4)),
            _ => {}
        }
    }
    Some(Link {
        index,
        name: name?,
        stats: stats64.or(stats32),
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
