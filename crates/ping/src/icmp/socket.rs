//! One ICMP socket per address family, shared by every target.
//!
//! Unprivileged datagram ("ping") sockets are tried first: the kernel hands each one only
//! the replies to its own requests. They need the process's group inside
//! `net.ipv4.ping_group_range` (which also governs IPv6). Raw sockets are the fallback;
//! they need CAP_NET_RAW and see every ICMP packet of the host, so a BPF program keeps
//! only echo replies carrying our identifier.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::packet::Family;
use crate::sys;

/// How a socket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP[V6]`: unprivileged, filtered by the kernel.
    Datagram,
    /// `SOCK_RAW`: needs CAP_NET_RAW.
    Raw,
}

impl SocketKind {
    /// The `type` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Datagram => "dgram",
            Self::Raw => "raw",
        }
    }
}

/// Which kinds to try, from `--ping.socket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SocketPreference {
    /// Datagram where allowed, raw otherwise.
    #[default]
    Auto,
    /// Datagram only.
    Dgram,
    /// Raw only.
    Raw,
}

/// Socket options from the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketOptions {
    /// Which kinds to try.
    pub preference: SocketPreference,
    /// `SO_MARK` for policy routing (`--ping.fw-mark`); 0 leaves it unset.
    pub mark: u32,
    /// The identifier of our requests on raw sockets.
    pub identifier: u16,
}

/// Why no ICMP socket could be opened for a family.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The kernel has no such family (IPv6 disabled): the family is skipped, not fatal.
    #[error("{family} is not available on this host ({source})")]
    Unsupported {
        /// The family.
        family: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Neither kind was permitted.
    #[error("{}", permission_message(family, datagram.as_ref(), raw.as_ref()))]
    Denied {
        /// The family.
        family: &'static str,
        /// Why the datagram socket failed, when tried.
        datagram: Option<io::Error>,
        /// Why the raw socket failed, when tried.
        raw: Option<io::Error>,
    },
}

fn permission_message(
    family: &str,
    datagram: Option<&io::Error>,
    raw: Option<&io::Error>,
) -> String {
    let mut message = format!("cannot open an ICMP socket for {family}:");
    if let Some(error) = datagram {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
            .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        let gid = rustix::process::getegid().as_raw();
        message.push_str(&format!(
            " an unprivileged (datagram) socket was refused ({error}): group {gid} is outside \
             net.ipv4.ping_group_range \"{range}\";"
        ));
    }
    if let Some(error) = raw {
        message.push_str(&format!(
            " a raw socket was refused ({error}): it needs CAP_NET_RAW;"
        ));
    }
    message.push_str(
        " grant CAP_NET_RAW (AmbientCapabilities=CAP_NET_RAW in the systemd unit, or \
         setcap cap_net_raw+ep on the binary), or allow unprivileged ICMP with \
         sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (this one sysctl covers IPv6 too)",
    );
    message
}

/// An open ICMP socket.
#[derive(Debug)]
pub struct IcmpSocket {
    socket: Socket,
    family: Family,
    kind: SocketKind,
    /// Whether the kernel stamps receptions.
    kernel_timestamps: bool,
    /// The identifier of our requests (raw sockets; datagram sockets use their own).
    identifier: u16,
}

/// Receive buffer asked for: room for bursts of replies when thousands of targets share it.
const RECEIVE_BUFFER: usize = 4 << 20;

impl IcmpSocket {
    /// Opens a socket for `family`, datagram first unless told otherwise.
    pub fn open(family: Family, options: SocketOptions) -> Result<Self, OpenError> {
        let mut datagram_error = None;
        let mut raw_error = None;
        let kinds: &[SocketKind] = match options.preference {
            SocketPreference::Auto => &[SocketKind::Datagram, SocketKind::Raw],
            SocketPreference::Dgram => &[SocketKind::Datagram],
            SocketPreference::Raw => &[SocketKind::Raw],
        };
        for &kind in kinds {
            match create(family, kind) {
                Ok(socket) => return Self::configure(socket, family, kind, options),
                Err(error) if is_unsupported(&error) => {
                    return Err(OpenError::Unsupported {
                        family: family.name(),
                        source: error,
                    });
                }
                Err(error) => match kind {
                    SocketKind::Datagram => datagram_error = Some(error),
                    SocketKind::Raw => raw_error = Some(error),
                },
            }
        }
        Err(OpenError::Denied {
            family: family.name(),
            datagram: datagram_error,
            raw: raw_error,
        })
    }

    fn configure(
        socket: Socket,
        family: Family,
        kind: SocketKind,
        options: SocketOptions,
    ) -> Result<Self, OpenError> {
        let fail = |source| OpenError::Denied {
            family: family.name(),
            datagram: None,
            raw: Some(source),
        };
        socket.set_nonblocking(true).map_err(fail)?;
        if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
            tracing::debug!(err = %error, "Cannot enlarge the ICMP receive buffer.");
        }
        if options.mark != 0 {
            socket
                .set_mark(options.mark)
                .map_err(|source| OpenError::Denied {
                    family: family.name(),
                    datagram: None,
                    raw: Some(io::Error::new(
                        source.kind(),
                        format!(
                            "setting SO_MARK {} ({source}; it needs CAP_NET_ADMIN)",
                            options.mark
                        ),
                    )),
                })?;
        }
        if kind == SocketKind::Raw
            && let Err(error) = socket.attach_filter(&echo_reply_filter(family, options.identifier))
        {
            tracing::warn!(err = %error, "Cannot attach the ICMP filter; every ICMP packet of the host will wake the receiver.");
        }
        let kernel_timestamps = sys::enable_receive_timestamps(socket.as_fd()).is_ok();
        if let Err(error) = sys::enable_hop_limits(socket.as_fd(), family == Family::V6) {
            tracing::debug!(err = %error, "Replies' hop limits are not available.");
        }
        Ok(Self {
            socket,
            family,
            kind,
            kernel_timestamps,
            identifier: options.identifier,
        })
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// How it was opened.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Whether receptions carry kernel timestamps.
    pub fn kernel_timestamps(&self) -> bool {
        self.kernel_timestamps
    }

    /// Whether a reply with this identifier can answer one of our requests: on datagram
    /// sockets the kernel has already checked; on raw ones it must be ours.
    pub fn is_ours(&self, identifier: u16) -> bool {
        self.kind == SocketKind::Datagram || identifier == self.identifier
    }

    /// Whether received datagrams start with the IP header (raw IPv4 only).
    pub fn includes_ip_header(&self) -> bool {
        self.kind == SocketKind::Raw && self.family == Family::V4
    }

    /// Sends one datagram to `address`, without blocking.
    pub fn send_to(&self, packet: &[u8], address: IpAddr) -> io::Result<usize> {
        self.socket
            .send_to(packet, &SocketAddr::new(address, 0).into())
    }

    /// Reads one datagram, without blocking.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<sys::Received> {
        sys::recv(self.socket.as_fd(), buf)
    }
}

impl AsFd for IcmpSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

fn create(family: Family, kind: SocketKind) -> io::Result<Socket> {
    let (domain, protocol) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let kind = match kind {
        SocketKind::Datagram => Type::DGRAM,
        SocketKind::Raw => Type::RAW,
    };
    Socket::new(domain, kind, Some(protocol))
}

fn is_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)
    )
}

/// A classic BPF program accepting only echo replies with `identifier`.
///
/// IPv4 raw sockets see the IP header first, whose length is in its first byte; IPv6 raw
/// sockets start at the ICMPv6 header.
fn echo_reply_filter(family: Family, identifier: u16) -> Vec<SockFilter> {
    const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const LD_B_IND: u16 = 0x50; // BPF_LD | BPF_B | BPF_IND
    const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LD_H_IND: u16 = 0x48; // BPF_LD | BPF_H | BPF_IND
    const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH: x = 4 * ([k] & 0xf)
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let reply = u32::from(family.echo_types().1);
    let identifier = u32::from(identifier);
    match family {
        Family::V4 => vec![
            SockFilter::new(LDX_B_MSH, 0, 0, 0),
            SockFilter::new(LD_B_IND, 0, 0, 0),
            SockFilter::new(JEQ_K, 0, 3, reply),
            SockFilter::new(LD_H_IND, 0, 0, 4),
            SockFilter::new(JEQ_K, 0, 1, identifier),
            SockFilter::new(RET_K, 0, 0, u32::MAX),
            SockFilter::new(RET_K, 0, 0, 0),
        ],
        Family::V6 => vec![
            SockFilter::new(LD_B_ABS, 0, 0, 0),
            SockFilter::new(JEQ_K, 0, 3, reply),
            SockFilter::new(LD_H_ABS, 0, 0, 4),
            SockFilter::new(JEQ_K, 0, 1, identifier),
            SockFilter::new(RET_K, 0, 0, u32::MAX),
            SockFilter::new(RET_K, 0, 0, 0),
        ],
    }
}
