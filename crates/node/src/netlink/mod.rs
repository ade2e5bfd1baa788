//! Just enough netlink for the collectors that ask the kernel rather than read files
//! (netdev's links and addresses in [`route`], qdisc's rtnetlink dump, wifi's nl80211): one
//! socket, one request at a time, replies read until the kernel says done, with a deadline
//! and a cap on what is read, so a kernel that answers slowly or without end costs a failed
//! collector, never a hung scrape.

pub(crate) mod route;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink, sockopt};

/// `NLM_F_REQUEST`.
const REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
const ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const DUMP: u16 = 0x300;
/// `NLMSG_NOOP`, `NLMSG_ERROR`, `NLMSG_DONE`.
const NOOP: u16 = 1;
const ERROR: u16 = 2;
const DONE: u16 = 3;
/// `sizeof(struct nlmsghdr)`.
const HEADER: usize = 16;
/// Most bytes one exchange reads: far beyond any real dump (a host's qdiscs, a wireless
/// interface's stations), small enough that a runaway answer is cut off.
const MAX_BYTES: usize = 16 << 20;

/// The netlink protocol a socket speaks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Protocol {
    /// `NETLINK_ROUTE` (rtnetlink).
    Route,
    /// `NETLINK_GENERIC` (generic netlink, nl80211's carrier).
    Generic,
}

/// A netlink socket.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: OwnedFd,
    sequence: u32,
}

/// One message of a reply: its type and what follows its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) payload: &'a [u8],
}

impl Socket {
    /// Opens a socket of `protocol`, bound to an address the kernel picks.
    pub(crate) fn open(protocol: Protocol) -> io::Result<Self> {
        let protocol = match protocol {
            // NETLINK_ROUTE is protocol number 0.
            Protocol::Route => None,
            Protocol::Generic => Some(netlink::GENERIC),
        };
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            protocol,
        )?;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))?;
        Ok(Self { fd, sequence: 0 })
    }

    /// The socket, for ioctls that any socket answers (an interface's name by index).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends a dump request of `kind` with `payload` after the header, and hands every
    /// message of the answer to `each` until the kernel is done or `deadline` passes.
    pub(crate) fn dump(
        &mut self,
        kind: u16,
        payload: &[u8],
        deadline: Instant,
        each: impl FnMut(Message<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.exchange(kind, REQUEST | DUMP, payload, deadline, each)
    }

    /// Sends a plain request and hands its answer to `each`.
    pub(crate) fn request(
        &mut self,
        kind: u16,
        payload: &[u8],
        deadline: Instant,
        each: impl FnMut(Message<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.exchange(kind, REQUEST | ACK, payload, deadline, each)
    }

    fn exchange(
        &mut self,
        kind: u16,
        flags: u16,
        payload: &[u8],
        deadline: Instant,
        mut each: impl FnMut(Message<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut message = Vec::with_capacity(HEADER + payload.len());
        let length = u32::try_from(HEADER + payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request too long"))?;
        message.extend_from_slice(&length.to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&flags.to_ne_bytes());
        message.extend_from_slice(&sequence.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes());
        message.extend_from_slice(payload);
        rustix::net::send(&self.fd, &message, SendFlags::empty())?;

        let mut buffer = vec![0u8; 64 << 10];
        let mut read = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(late());
            }
            // A zero timeout would mean "wait for ever".
            let wait = left.max(Duration::from_millis(1));
            sockopt::set_socket_timeout(&self.fd, sockopt::Timeout::Recv, Some(wait))?;
            // A link with many virtual functions can be one message larger than the buffer:
            // peek at the next datagram's size first and grow to fit it.
            let Some((_, next)) = self.receive(&mut buffer, RecvFlags::PEEK | RecvFlags::TRUNC)?
            else {
                continue;
            };
            if read + next > MAX_BYTES {
                return Err(too_long());
            }
            if next > buffer.len() {
                buffer.resize(next, 0);
            }
            let Some((got, _)) = self.receive(&mut buffer, RecvFlags::empty())? else {
                continue;
            };
            read += got;
            for message in messages(&buffer[..got]) {
                let (header, message) = message?;
                if header.sequence != sequence {
                    continue;
                }
                match message.kind {
                    NOOP => {}
                    DONE => return Ok(()),
                    ERROR => {
                        let code = message
                            .payload
                            .get(..4)
                            .and_then(|b| b.try_into().ok())
                            .map(i32::from_ne_bytes)
                            .ok_or_else(|| malformed("short error message"))?;
                        if code == 0 {
                            // The acknowledgement that ends a plain request.
                            return Ok(());
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        each(message)?;
                        // A plain request's answer is one message and its acknowledgement;
                        // only dumps are multi-part.
                    }
                }
            }
        }
    }
}

impl Socket {
    /// One `recv`: `None` when a signal interrupted it (try again).
    fn receive(&self, buffer: &mut [u8], flags: RecvFlags) -> io::Result<Option<(usize, usize)>> {
        match rustix::net::recv(&self.fd, buffer, flags) {
            Ok(sizes) => Ok(Some(sizes)),
            Err(rustix::io::Errno::INTR) => Ok(None),
            // The receive timeout, set to what is left before the deadline, ran out.
            Err(rustix::io::Errno::AGAIN) => Err(late()),
            Err(error) => Err(error.into()),
        }
    }
}

fn late() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "netlink answer not complete by the deadline",
    )
}

fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("netlink answer longer than {} MiB", MAX_BYTES >> 20),
    )
}

/// A message header's fields beyond the type.
struct Header {
    sequence: u32,
}

/// The messages of one datagram.
fn messages(mut data: &[u8]) -> impl Iterator<Item = io::Result<(Header, Message<'_>)>> {
    std::iter::from_fn(move || {
        if data.len() < HEADER {
            return None;
        }
        let length = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if length < HEADER || length > data.len() {
            data = &[];
            return Some(Err(malformed("message length beyond the datagram")));
        }
        let kind = u16::from_ne_bytes(data[4..6].try_into().ok()?);
        let sequence = u32::from_ne_bytes(data[8..12].try_into().ok()?);
        let payload = &data[HEADER..length];
        data = data.get(align(length)..).unwrap_or_default();
        Some(Ok((Header { sequence }, Message { kind, payload })))
    })
}

/// Netlink aligns messages and attributes to four bytes.
fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"))
}

/// The attributes in `data`: `(type, value)`, the type without its nested and byte-order
/// flags. A truncated attribute ends the list.
pub(crate) fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let length = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if length < 4 || length > data.len() {
            data = &[];
            return None;
        }
        let value = &data[4..length];
        data = data.get(align(length)..).unwrap_or_default();
        Some((kind, value))
    })
}

/// Appends an attribute to a request being built.
pub(crate) fn push_attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = 4 + value.len();
    out.extend_from_slice(&(length as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

/// A native-endian unsigned number of 1, 2, 4 or 8 bytes, as an attribute holds one.
pub(crate) fn uint(value: &[u8]) -> Option<u64> {
    Some(match value.len() {
        1 => u64::from(value[0]),
        2 => u64::from(u16::from_ne_bytes(value.try_into().ok()?)),
        4 => u64::from(u32::from_ne_bytes(value.try_into().ok()?)),
        8 => u64::from_ne_bytes(value.try_into().ok()?),
        _ => return None,
    })
}

/// A NUL-terminated string attribute.
pub(crate) fn string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_stop_at_truncation() {
        let mut data = Vec::new();
        push_attribute(&mut data, 1, b"fq\0");
        push_attribute(&mut data, 0x8000 | 7, &42u32.to_ne_bytes());
        let found: Vec<(u16, Vec<u8>)> = attributes(&data).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(string(&found[0].1), "fq");
        assert_eq!((found[1].0, uint(&found[1].1)), (7, Some(42)));
        data.truncate(data.len() - 2);
        assert_eq!(attributes(&data).count(), 1);
    }

    #[test]
    fn a_route_dump_of_links_ends() {
        // RTM_GETLINK with an empty ifinfomsg: every host has at least `lo`.
        let mut socket = Socket::open(Protocol::Route).unwrap();
        let mut links = 0;
        socket
            .dump(
                18,
                &[0u8; 16],
                Instant::now() + Duration::from_secs(5),
                |message| {
                    assert_eq!(message.kind, 16, "RTM_NEWLINK");
                    links += 1;
                    Ok(())
                },
            )
            .unwrap();
        assert!(links >= 1);
    }
}
