//! ICMP and ICMPv6 echo messages: building requests and reading replies (RFC 792, RFC 4443).
//!
//! A request's payload starts with a cookie: the process's random token and the send time.
//! A reply carries it back unchanged, so replies to another program that happens to use the
//! same identifier on a raw socket are told apart from ours.

use std::net::IpAddr;

/// Bytes of the cookie at the start of the payload (token, then send time).
pub const COOKIE_LEN: usize = 16;
/// Bytes of the ICMP echo header.
pub const HEADER_LEN: usize = 8;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// IPv4 or IPv6; ICMP differs in its type numbers and in what a raw socket hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// ICMP over IPv4.
    V4,
    /// ICMPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// The `ip_version` label value.
    pub fn version(self) -> &'static str {
        match self {
            Self::V4 => "4",
            Self::V6 => "6",
        }
    }

    /// Index into per-family arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// "IPv4" or "IPv6", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    /// The echo request and reply type numbers.
    pub fn echo_types(self) -> (u8, u8) {
        match self {
            Self::V4 => (ECHO_REQUEST_V4, ECHO_REPLY_V4),
            Self::V6 => (ECHO_REQUEST_V6, ECHO_REPLY_V6),
        }
    }
}

/// Writes an echo request of `payload_len` payload bytes into `out` (cleared first).
///
/// The checksum is filled for ICMPv4; for ICMPv6 the kernel computes it over the
/// pseudo-header, which a sender cannot know before routing. Datagram sockets overwrite
/// the identifier with their own.
pub fn echo_request(
    out: &mut Vec<u8>,
    family: Family,
    identifier: u16,
    sequence: u16,
    token: u64,
    sent_ns: i64,
    payload_len: usize,
) {
    out.clear();
    out.extend_from_slice(&[family.echo_types().0, 0, 0, 0]);
    out.extend_from_slice(&identifier.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    let mut cookie = [0u8; COOKIE_LEN];
    cookie[..8].copy_from_slice(&token.to_le_bytes());
    cookie[8..].copy_from_slice(&sent_ns.to_le_bytes());
    out.extend((0..payload_len).map(|i| cookie.get(i).copied().unwrap_or(i as u8)));
    if family == Family::V4 {
        let sum = checksum(out);
        out[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo reply as read from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// The identifier (a datagram socket's own, on those).
    pub identifier: u16,
    /// The sequence number of the request answered.
    pub sequence: u16,
    /// The payload, starting with our cookie when the request was long enough.
    pub payload: &'a [u8],
    /// The IPv4 TTL, when the IP header was included (raw IPv4 sockets).
    pub ttl: Option<u8>,
}

impl EchoReply<'_> {
    /// The token of the cookie, when the payload carries one.
    pub fn token(&self) -> Option<u64> {
        let bytes = self.payload.get(..8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Reads an echo reply. `with_ip_header` is true for raw IPv4 sockets, which deliver the
/// IP header too. Anything else (requests seen on loopback, errors, other types, short
/// packets) is `None`.
pub fn parse_reply(family: Family, with_ip_header: bool, data: &[u8]) -> Option<EchoReply<'_>> {
    let (icmp, ttl) = if with_ip_header {
        let header_len = usize::from(data.first()? & 0x0f) * 4;
        let ttl = *data.get(8)?;
        (data.get(header_len..)?, Some(ttl))
    } else {
        (data, None)
    };
    if icmp.len() < HEADER_LEN || icmp[0] != family.echo_types().1 || icmp[1] != 0 {
        return None;
    }
    Some(EchoReply {
        identifier: u16::from_be_bytes([icmp[4], icmp[5]]),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: &icmp[HEADER_LEN..],
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_request_has_a_valid_checksum_and_the_cookie() {
        let mut packet = Vec::new();
        echo_request(&mut packet, Family::V4, 0x1234, 7, 0xdead_beef, 42, 56);
        assert_eq!(packet.len(), HEADER_LEN + 56);
        assert_eq!(&packet[..2], &[8, 0]);
        assert_eq!(&packet[4..8], &[0x12, 0x34, 0, 7]);
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&packet), 0);
        assert_eq!(
            u64::from_le_bytes(packet[8..16].try_into().unwrap()),
            0xdead_beef
        );
        assert_eq!(i64::from_le_bytes(packet[16..24].try_into().unwrap()), 42);
        assert_eq!(packet[HEADER_LEN + 20], 20);
    }

    #[test]
    fn short_payloads_carry_part_of_the_cookie() {
        let mut packet = Vec::new();
        echo_request(&mut packet, Family::V6, 1, 2, 3, 4, 0);
        assert_eq!(packet, [128, 0, 0, 0, 0, 1, 0, 2]);
        echo_request(&mut packet, Family::V6, 1, 2, 3, 4, 4);
        assert_eq!(packet.len(), 12);
    }

    #[test]
    fn odd_length_checksum_pads_with_zero() {
        // RFC 1071's example words: 0x0001 0xf203 0xf4f5 0xf6f7 sum to 0xddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn replies_parse_with_and_without_ip_header() {
        let mut request = Vec::new();
        echo_request(&mut request, Family::V4, 9, 300, 77, 0, 16);
        let mut reply = request.clone();
        reply[0] = 0;
        let parsed = parse_reply(Family::V4, false, &reply).unwrap();
        assert_eq!((parsed.identifier, parsed.sequence), (9, 300));
        assert_eq!(parsed.token(), Some(77));
        assert_eq!(parsed.ttl, None);

        let mut with_header = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 61, 1, 0, 0];
        with_header.resize(20, 0);
        with_header.extend_from_slice(&reply);
        let parsed = parse_reply(Family::V4, true, &with_header).unwrap();
        assert_eq!((parsed.sequence, parsed.ttl), (300, Some(61)));

        // Our own request, seen by a raw socket on loopback, is not a reply.
        assert_eq!(parse_reply(Family::V4, false, &request), None);
        assert_eq!(parse_reply(Family::V4, false, &reply[..7]), None);
        assert_eq!(parse_reply(Family::V4, true, &[0x4f, 0, 0]), None);
        let mut v6 = reply.clone();
        v6[0] = 129;
        assert!(parse_reply(Family::V6, false, &v6).is_some());
        assert_eq!(parse_reply(Family::V6, false, &reply), None);
    }
}
