//! The kernel's side of the wifi collector: nl80211 over generic netlink. The family's id
//! is looked up by name, then its interfaces, each interface's BSS (from the scan results,
//! the entry that carries a status) and its stations are dumped, and their attributes read
//! as node_exporter's wifi library reads them.

use std::io;
use std::time::Instant;

use super::{Bss, Interface, Station};
use crate::netlink::{self, Protocol, Socket, attributes, uint};

/// `GENL_ID_CTRL`, `CTRL_CMD_GETFAMILY` and the controller's attributes.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_VERSION: u16 = 3;
/// `sizeof(struct genlmsghdr)`: command, version, two reserved bytes.
const GENL_HEADER: usize = 4;

/// nl80211 commands.
const CMD_GET_INTERFACE: u8 = 5;
const CMD_GET_STATION: u8 = 17;
const CMD_GET_SCAN: u8 = 32;
/// nl80211 attributes of a message.
const ATTR_IFINDEX: u16 = 3;
const ATTR_IFNAME: u16 = 4;
const ATTR_MAC: u16 = 6;
const ATTR_STA_INFO: u16 = 21;
const ATTR_WIPHY_FREQ: u16 = 38;
const ATTR_BSS: u16 = 47;
/// Attributes nested in `ATTR_BSS`.
const BSS_BSSID: u16 = 1;
const BSS_INFORMATION_ELEMENTS: u16 = 6;
const BSS_STATUS: u16 = 9;
/// Attributes nested in `ATTR_STA_INFO`.
const STA_INACTIVE_TIME: u16 = 1;
const STA_RX_BYTES: u16 = 2;
const STA_TX_BYTES: u16 = 3;
const STA_SIGNAL: u16 = 7;
const STA_TX_BITRATE: u16 = 8;
const STA_RX_PACKETS: u16 = 9;
const STA_TX_PACKETS: u16 = 10;
const STA_TX_RETRIES: u16 = 11;
const STA_TX_FAILED: u16 = 12;
const STA_RX_BITRATE: u16 = 14;
const STA_CONNECTED_TIME: u16 = 16;
const STA_BEACON_LOSS: u16 = 18;
const STA_RX_BYTES64: u16 = 23;
const STA_TX_BYTES64: u16 = 24;
/// Attributes nested in a bitrate: units of 100 kbit/s, 16 or 32 bits wide.
const RATE_BITRATE: u16 = 1;
const RATE_BITRATE32: u16 = 5;
/// The SSID information element.
const IE_SSID: u8 = 0;

/// An nl80211 connection.
#[derive(Debug)]
pub(super) struct Client {
    socket: Socket,
    family: u16,
    version: u8,
}

impl Client {
    /// Connects, or `None` where the kernel has no nl80211 (cfg80211 not loaded: no
    /// wireless devices).
    pub(super) fn open(deadline: Instant) -> io::Result<Option<Self>> {
        let mut socket = Socket::open(Protocol::Generic)?;
        Ok(
            family(&mut socket, "nl80211", deadline)?.map(|(family, version)| Self {
                socket,
                family,
                version,
            }),
        )
    }

    /// Dumps `command`, for one interface when `index` is given; each message's attributes
    /// (after the generic netlink header) go to `each`. `None` when the kernel answers
    /// that there is no such thing (`ENOENT`).
    fn dump(
        &mut self,
        command: u8,
        index: Option<u32>,
        deadline: Instant,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<Option<()>> {
        let mut request = vec![command, self.version, 0, 0];
        if let Some(index) = index {
            netlink::push_attribute(&mut request, ATTR_IFINDEX, &index.to_ne_bytes());
        }
        let dumped = self
            .socket
            .dump(self.family, &request, deadline, |message| {
                if let Some(data) = message.payload.get(GENL_HEADER..) {
                    each(data);
                }
                Ok(())
            });
        match dumped {
            Ok(()) => Ok(Some(())),
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The wireless interfaces.
    pub(super) fn interfaces(&mut self, deadline: Instant) -> io::Result<Vec<Interface>> {
        let mut interfaces = Vec::new();
        self.dump(CMD_GET_INTERFACE, None, deadline, |data| {
            interfaces.push(parse_interface(data));
        })?;
        Ok(interfaces)
    }

    /// The BSS the interface is in: the scan result that carries a status. `None` when
    /// there is none (not connected, or not a station).
    pub(super) fn bss(&mut self, index: u32, deadline: Instant) -> io::Result<Option<Bss>> {
        let mut bss = None;
        self.dump(CMD_GET_SCAN, Some(index), deadline, |data| {
            if bss.is_none() {
                bss = parse_scan_result(data);
            }
        })?;
        Ok(bss)
    }

    /// The stations the interface talks to; `None` when the kernel has none to give, or
    /// a message lacks station information (as node_exporter's library treats it).
    pub(super) fn stations(
        &mut self,
        index: u32,
        deadline: Instant,
    ) -> io::Result<Option<Vec<Station>>> {
        let mut stations = Some(Vec::new());
        let dumped = self.dump(CMD_GET_STATION, Some(index), deadline, |data| {
            match (parse_station(data), stations.as_mut()) {
                (Some(station), Some(list)) => list.push(station),
                _ => stations = None,
            }
        })?;
        Ok(dumped.and(stations))
    }
}

/// The id and version of the generic netlink family `name`, or `None` if the kernel has
/// no such family.
fn family(socket: &mut Socket, name: &str, deadline: Instant) -> io::Result<Option<(u16, u8)>> {
    let mut request = vec![CTRL_CMD_GETFAMILY, 1, 0, 0];
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    netlink::push_attribute(&mut request, CTRL_ATTR_FAMILY_NAME, &value);
    let mut found = None;
    let asked = socket.request(GENL_ID_CTRL, &request, deadline, |message| {
        let mut family = None;
        let mut version = 1;
        for (kind, value) in attributes(message.payload.get(GENL_HEADER..).unwrap_or_default()) {
            match kind {
                CTRL_ATTR_FAMILY_ID => family = uint(value).map(|id| id as u16),
                CTRL_ATTR_VERSION => version = uint(value).unwrap_or(1) as u8,
                _ => {}
            }
        }
        found = family.map(|family| (family, version));
        Ok(())
    });
    match asked {
        Ok(()) => Ok(found),
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(error) => Err(error),
    }
}

fn parse_interface(data: &[u8]) -> Interface {
    let mut interface = Interface::default();
    for (kind, value) in attributes(data) {
        match kind {
            ATTR_IFINDEX => interface.index = uint(value).unwrap_or(0) as u32,
            ATTR_IFNAME => interface.name = netlink::string(value),
            ATTR_WIPHY_FREQ => interface.frequency = uint(value).unwrap_or(0) as i64,
            _ => {}
        }
    }
    interface
}

/// One scan result: its BSS, if the kernel gave it a status (the one the interface is
/// authenticated with, associated with or has joined).
fn parse_scan_result(data: &[u8]) -> Option<Bss> {
    let nested = attributes(data).find(|(kind, _)| *kind == ATTR_BSS)?.1;
    if !attributes(nested).any(|(kind, _)| kind == BSS_STATUS) {
        return None;
    }
    let mut bss = Bss::default();
    for (kind, value) in attributes(nested) {
        match kind {
            BSS_BSSID => bss.bssid = value.to_vec(),
            BSS_STATUS => bss.status = uint(value).unwrap_or(0) as i64,
            BSS_INFORMATION_ELEMENTS => {
                if let Some(ssid) = information_element(value, IE_SSID) {
                    bss.ssid = go_string(ssid);
                }
            }
            _ => {}
        }
    }
    Some(bss)
}

/// The data of the first information element `id`: elements are an id byte, a length byte
/// and that many bytes. A truncated element ends the list.
fn information_element(mut data: &[u8], id: u8) -> Option<&[u8]> {
    while let [element, length, rest @ ..] = data {
        let body = rest.get(..usize::from(*length))?;
        if *element == id {
            return Some(body);
        }
        data = &rest[body.len()..];
    }
    None
}

/// Bytes as Go turns them into a string rune by rune: each byte of an invalid sequence
/// becomes U+FFFD.
fn go_string(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for _ in chunk.invalid() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    text
}

/// A bitrate attribute in bits per second.
fn bitrate(data: &[u8]) -> i64 {
    let mut wide = None;
    let mut narrow = None;
    for (kind, value) in attributes(data) {
        match kind {
            RATE_BITRATE32 => wide = uint(value),
            RATE_BITRATE => narrow = uint(value),
            _ => {}
        }
    }
    let units = wide.filter(|&rate| rate != 0).or(narrow).unwrap_or(0);
    units as i64 * 100 * 1000
}

fn parse_station(data: &[u8]) -> Option<Station> {
    let mut mac = Vec::new();
    for (kind, value) in attributes(data) {
        match kind {
            ATTR_MAC => mac = value.to_vec(),
            ATTR_STA_INFO => {
                let mut station = parse_station_info(value);
                station.mac = mac;
                return Some(station);
            }
            _ => {}
        }
    }
    None
}

fn parse_station_info(data: &[u8]) -> Station {
    let mut station = Station::default();
    let (mut rx32, mut tx32, mut rx64, mut tx64) = (None, None, None, None);
    let number = |value: &[u8]| uint(value).unwrap_or(0) as i64;
    for (kind, value) in attributes(data) {
        match kind {
            STA_CONNECTED_TIME => station.connected = number(value) * 1_000_000_000,
            STA_INACTIVE_TIME => station.inactive = number(value) * 1_000_000,
            STA_RX_BYTES => rx32 = Some(number(value)),
            STA_TX_BYTES => tx32 = Some(number(value)),
            STA_RX_BYTES64 => rx64 = Some(number(value)),
            STA_TX_BYTES64 => tx64 = Some(number(value)),
            STA_SIGNAL => station.signal = value.first().map_or(0, |&b| i64::from(b as i8)),
            STA_RX_PACKETS => station.received_packets = number(value),
            STA_TX_PACKETS => station.transmitted_packets = number(value),
            STA_TX_RETRIES => station.transmit_retries = number(value),
            STA_TX_FAILED => station.transmit_failed = number(value),
            STA_BEACON_LOSS => station.beacon_loss = number(value),
            STA_RX_BITRATE => station.receive_bitrate = bitrate(value),
            STA_TX_BITRATE => station.transmit_bitrate = bitrate(value),
            _ => {}
        }
    }
    // The 64-bit byte counters where the kernel gives them, else the 32-bit ones.
    station.received_bytes = rx64.or(rx32).unwrap_or(0);
    station.transmitted_bytes = tx64.or(tx32).unwrap_or(0);
    station
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::push_attribute;

    fn nested(attributes: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (kind, value) in attributes {
            push_attribute(&mut data, *kind, value);
        }
        data
    }

    #[test]
    fn an_interface_message() {
        let data = nested(&[
            (ATTR_IFINDEX, 3u32.to_ne_bytes().to_vec()),
            (ATTR_IFNAME, b"wlan0\0".to_vec()),
            (ATTR_MAC, vec![1, 2, 3, 4, 5, 6]),
            (ATTR_WIPHY_FREQ, 5180u32.to_ne_bytes().to_vec()),
        ]);
        let interface = parse_interface(&data);
        assert_eq!(
            (
                interface.index,
                interface.name.as_str(),
                interface.frequency
            ),
            (3, "wlan0", 5180)
        );
    }

    #[test]
    fn the_scan_result_with_a_status_is_the_bss() {
        let ies = [&[0u8, 7][..], b"Example", &[1, 2, 0x82, 0x84]].concat();
        let with_status = nested(&[(
            ATTR_BSS,
            nested(&[
                (BSS_BSSID, vec![0, 0x11, 0x22, 0x33, 0x44, 0x55]),
                (BSS_INFORMATION_ELEMENTS, ies),
                (BSS_STATUS, 1u32.to_ne_bytes().to_vec()),
            ]),
        )]);
        let bss = parse_scan_result(&with_status).unwrap();
        assert_eq!(bss.ssid, "Example");
        assert_eq!(bss.bssid, [0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(bss.status, 1);
        let without = nested(&[(ATTR_BSS, nested(&[(BSS_BSSID, vec![1; 6])]))]);
        assert_eq!(parse_scan_result(&without), None);
    }

    #[test]
    fn information_elements_and_ssids_as_go_reads_them() {
        assert_eq!(
            information_element(&[3, 1, 6, 0, 2, b'h', b'i'], 0),
            Some(&b"hi"[..])
        );
        assert_eq!(information_element(&[0, 5, b'h'], 0), None);
        assert_eq!(go_string(b"caf\xc3\xa9"), "café");
        assert_eq!(go_string(b"a\xff\xfeb"), "a\u{fffd}\u{fffd}b");
    }

    #[test]
    fn a_station_message() {
        let rate = |units32: u32, units16: u16| {
            nested(&[
                (RATE_BITRATE, units16.to_ne_bytes().to_vec()),
                (RATE_BITRATE32, units32.to_ne_bytes().to_vec()),
            ])
        };
        let info = nested(&[
            (STA_INACTIVE_TIME, 400u32.to_ne_bytes().to_vec()),
            (STA_RX_BYTES, 7u32.to_ne_bytes().to_vec()),
            (STA_TX_BYTES, 8u32.to_ne_bytes().to_vec()),
            (STA_SIGNAL, vec![(-52i8) as u8]),
            (STA_TX_BITRATE, rate(1640, 1640)),
            (STA_RX_BITRATE, rate(0, 1280)),
            (STA_TX_RETRIES, 10u32.to_ne_bytes().to_vec()),
            (STA_TX_FAILED, 2u32.to_ne_bytes().to_vec()),
            (STA_CONNECTED_TIME, 30u32.to_ne_bytes().to_vec()),
            (STA_BEACON_LOSS, 1u32.to_ne_bytes().to_vec()),
            (STA_RX_BYTES64, (5u64 << 32).to_ne_bytes().to_vec()),
        ]);
        let data = nested(&[
            (ATTR_IFINDEX, 3u32.to_ne_bytes().to_vec()),
            (ATTR_MAC, vec![0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            (ATTR_STA_INFO, info),
        ]);
        let station = parse_station(&data).unwrap();
        assert_eq!(station.mac, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(station.connected, 30_000_000_000);
        assert_eq!(station.inactive, 400_000_000);
        assert_eq!(station.signal, -52);
        assert_eq!(station.transmit_bitrate, 164_000_000);
        assert_eq!(station.receive_bitrate, 128_000_000);
        assert_eq!(station.received_bytes, 5 << 32);
        assert_eq!(station.transmitted_bytes, 8);
        assert_eq!(
            (
                station.transmit_retries,
                station.transmit_failed,
                station.beacon_loss
            ),
            (10, 2, 1)
        );
        let no_info = nested(&[(ATTR_MAC, vec![1; 6])]);
        assert_eq!(parse_station(&no_info), None);
    }

    #[test]
    fn generic_netlink_families_are_found_by_name() {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut socket = Socket::open(Protocol::Generic).unwrap();
        // The controller itself always has id 16.
        let (id, _) = family(&mut socket, "nlctrl", deadline).unwrap().unwrap();
        assert_eq!(id, GENL_ID_CTRL);
        assert_eq!(
            family(&mut socket, "no-such-family", deadline).unwrap(),
            None
        );
    }

    #[test]
    fn nl80211_is_looked_up_without_error() {
        // Either answer is right: it depends on whether cfg80211 is loaded here.
        let client = Client::open(Instant::now() + std::time::Duration::from_secs(5)).unwrap();
        if let Some(mut client) = client {
            client
                .interfaces(Instant::now() + std::time::Duration::from_secs(5))
                .unwrap();
        }
    }
}
