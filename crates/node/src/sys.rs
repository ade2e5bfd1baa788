//! The calls no safe crate wraps: `adjtimex(2)` for the timex collector, `localtime_r(3)`
//! for the time zone of the time collector, the `SIOCETHTOOL` ioctl for the ethtool
//! collector, `getifaddrs(3)` for netdev's address info, the rtnetlink route dump of the
//! network_route collector, and taking over the sockets of systemd socket activation. All
//! unsafe code of the node exporter is here, each block with the reason it is sound.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

/// The kernel clock discipline state, as `adjtimex(2)` reports it with `modes = 0`
/// (read only; nothing is changed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timex {
    /// The clock state the call returned (`TIME_OK` … `TIME_ERROR`).
    pub(crate) state: i32,
    pub(crate) offset: i64,
    pub(crate) freq: i64,
    pub(crate) maxerror: i64,
    pub(crate) esterror: i64,
    pub(crate) status: i32,
    pub(crate) constant: i64,
    pub(crate) tick: i64,
    pub(crate) ppsfreq: i64,
    pub(crate) jitter: i64,
    pub(crate) shift: i32,
    pub(crate) stabil: i64,
    pub(crate) jitcnt: i64,
    pub(crate) calcnt: i64,
    pub(crate) errcnt: i64,
    pub(crate) stbcnt: i64,
    pub(crate) tai: i32,
}

/// Reads the clock discipline state.
// The fields are `c_long`, 32 bits wide on 32-bit targets: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn adjtimex() -> io::Result<Timex> {
    // SAFETY: `timex` is a plain C struct for which all-zero bytes are a valid value, and
    // `modes = 0` asks the kernel only to fill it in. The pointer is to a local that lives
    // for the whole call.
    let (state, t) = unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        (libc::adjtimex(&mut t), t)
    };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Timex {
        state,
        offset: t.offset as i64,
        freq: t.freq as i64,
        maxerror: t.maxerror as i64,
        esterror: t.esterror as i64,
        status: t.status,
        constant: t.constant as i64,
        tick: t.tick as i64,
        ppsfreq: t.ppsfreq as i64,
        jitter: t.jitter as i64,
        shift: t.shift,
        stabil: t.stabil as i64,
        jitcnt: t.jitcnt as i64,
        calcnt: t.calcnt as i64,
        errcnt: t.errcnt as i64,
        stbcnt: t.stbcnt as i64,
        tai: t.tai,
    })
}

/// The local time zone's abbreviation and offset from UTC in seconds at `unix_seconds`.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn local_zone(unix_seconds: i64) -> Option<(String, i64)> {
    let time = unix_seconds as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are valid; `localtime_r`
    // writes only into it (it is the thread-safe variant) and returns null on failure.
    // `tm_zone` then points into libc's static zone table, valid for the process's life;
    // it is copied out at once.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&time, &mut tm).is_null() {
            return None;
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        };
        Some((zone, tm.tm_gmtoff as i64))
    }
}

/// `SIOCETHTOOL` from `<linux/sockios.h>`.
const SIOCETHTOOL: u32 = 0x8946;
/// Commands of `<linux/ethtool.h>`.
const ETHTOOL_GSET: u32 = 0x01;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
/// The string set of the NIC statistics.
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// Most statistics read from one device; a driver with more is refused rather than let
/// it size an allocation.
pub(crate) const ETHTOOL_MAX_STATS: u32 = 1 << 16;

/// `struct ifreq` with the `ifr_data` member of its union, padded to the union's full
/// size (the kernel copies the whole structure in and out).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    padding: [u8; 24],
}

/// `struct ethtool_drvinfo`.
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ethtool_cmd`, the settings `ETHTOOL_GSET` reads.
#[repr(C)]
struct EthtoolCmd {
    cmd: u32,
    supported: u32,
    advertising: u32,
    speed: u16,
    duplex: u8,
    port: u8,
    phy_address: u8,
    transceiver: u8,
    autoneg: u8,
    mdio_support: u8,
    maxtxpkt: u32,
    maxrxpkt: u32,
    speed_hi: u16,
    eth_tp_mdix: u8,
    eth_tp_mdix_ctrl: u8,
    lp_advertising: u32,
    reserved: [u32; 2],
}

/// A device's driver, as `ethtool -i` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DriverInfo {
    pub(crate) driver: String,
    pub(crate) version: String,
    pub(crate) firmware_version: String,
    pub(crate) bus_info: String,
    pub(crate) expansion_rom_version: String,
    /// How many NIC statistics the driver has.
    pub(crate) n_stats: u32,
}

/// The legacy link settings: bit masks of `ETHTOOL_LINK_MODE_*_BIT` below 32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkSettings {
    pub(crate) supported: u32,
    pub(crate) advertising: u32,
    pub(crate) autoneg: u8,
}

/// A socket to ask network drivers through `SIOCETHTOOL`.
#[derive(Debug)]
pub(crate) struct EthtoolSocket(std::os::fd::OwnedFd);

impl EthtoolSocket {
    /// Opens a datagram socket; any socket reaches every device of its network namespace.
    pub(crate) fn open() -> io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system call with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Self(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Runs one ethtool command on `device`. `command` points to a structure that
    /// starts with the command number and is as large as that command reads and writes.
    ///
    /// # Safety
    /// `command` must be valid for reads and writes of the size the kernel uses for the
    /// command in it, for the duration of the call.
    unsafe fn call(&self, device: &str, command: *mut libc::c_void) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let name = device.as_bytes();
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a network device name",
            ));
        }
        let mut request = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: command,
            padding: [0; 24],
        };
        request.name[..name.len()].copy_from_slice(name);
        // SAFETY: `request` is a complete `struct ifreq` on this stack frame; the caller
        // vouches for the buffer it points to.
        let result = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                SIOCETHTOOL as _,
                &mut request as *mut IfReq,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `ETHTOOL_GDRVINFO`.
    pub(crate) fn driver_info(&self, device: &str) -> io::Result<DriverInfo> {
        // SAFETY: all-zero bytes are a valid `DrvInfo` (integers and byte arrays).
        let mut info: DrvInfo = unsafe { std::mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        // SAFETY: the kernel reads and writes exactly one `struct ethtool_drvinfo`.
        unsafe { self.call(device, (&raw mut info).cast())? };
        Ok(DriverInfo {
            driver: c_text(&info.driver),
            version: c_text(&info.version),
            firmware_version: c_text(&info.fw_version),
            bus_info: c_text(&info.bus_info),
            expansion_rom_version: c_text(&info.erom_version),
            n_stats: info.n_stats,
        })
    }

    /// `ETHTOOL_GSET`: the link modes (first 32) a device supports and advertises.
    pub(crate) fn link_settings(&self, device: &str) -> io::Result<LinkSettings> {
        // SAFETY: all-zero bytes are a valid `EthtoolCmd`.
        let mut cmd: EthtoolCmd = unsafe { std::mem::zeroed() };
        cmd.cmd = ETHTOOL_GSET;
        // SAFETY: the kernel reads and writes exactly one `struct ethtool_cmd`.
        unsafe { self.call(device, (&raw mut cmd).cast())? };
        Ok(LinkSettings {
            supported: cmd.supported,
            advertising: cmd.advertising,
            autoneg: cmd.autoneg,
        })
    }

    /// The NIC statistics (`ethtool -S`): names and values in the driver's order.
    /// `count` is [`DriverInfo::n_stats`].
    pub(crate) fn stats(&self, device: &str, count: u32) -> io::Result<Vec<(String, u64)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > ETHTOOL_MAX_STATS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{count} statistics, more than {ETHTOOL_MAX_STATS}"),
            ));
        }
        // The kernel writes as many entries as the driver has at the time of each call,
        // which may have grown since `count` was read (queues added): room for more,
        // and a check that what came back fits, keep that from overrunning the buffers.
        let room = count as usize + count as usize / 4 + 16;

        // `struct ethtool_gstrings`: cmd, string_set, len, then the strings.
        let header = 3 * size_of::<u32>();
        let mut strings = vec![0u32; (header + room * ETH_GSTRING_LEN).div_ceil(4)];
        strings[0] = ETHTOOL_GSTRINGS;
        strings[1] = ETH_SS_STATS;
        strings[2] = count;
        // SAFETY: the buffer holds the header and `room` strings, more than the kernel
        // writes unless the driver grew by a quarter between two calls (checked below
        // only after the fact, which is why the margin is wide).
        unsafe { self.call(device, strings.as_mut_ptr().cast())? };
        let names_len = strings[2] as usize;

        // `struct ethtool_stats`: cmd, n_stats, then the values.
        let mut values = vec![0u64; 1 + room];
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
        head[4..].copy_from_slice(&count.to_ne_bytes());
        values[0] = u64::from_ne_bytes(head);
        // SAFETY: as above, with room for `room` values after the 8-byte header.
        unsafe { self.call(device, values.as_mut_ptr().cast())? };
        let head = values[0].to_ne_bytes();
        let values_len = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if names_len > room || values_len > room || names_len != values_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{names_len} statistic names but {values_len} values"),
            ));
        }
        let bytes: Vec<u8> = strings.iter().flat_map(|word| word.to_ne_bytes()).collect();
        let names = bytes[header..header + names_len * ETH_GSTRING_LEN].chunks(ETH_GSTRING_LEN);
        Ok(names
            .map(c_text)
            .zip(values[1..=values_len].iter().copied())
            .collect())
    }
}

/// A NUL-terminated string in a fixed-size field.
fn c_text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The listening sockets systemd passed to this process (`LISTEN_PID`, `LISTEN_FDS`, as
/// `sd_listen_fds(3)` reads them), for `--web.systemd-socket`. An error says why there
/// are none.
pub fn activated_listeners() -> Result<Vec<std::net::TcpListener>, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let pid: u32 = var("LISTEN_PID")?
        .parse()
        .map_err(|_| "LISTEN_PID is not a number".to_owned())?;
    if pid != std::process::id() {
        return Err(format!(
            "LISTEN_PID is {pid}, not this process ({}): the sockets are another process's",
            std::process::id()
        ));
    }
    let count: i32 = var("LISTEN_FDS")?
        .parse()
        .map_err(|_| "LISTEN_FDS is not a number".to_owned())?;
    if count < 1 {
        return Err("no socket activation file descriptors found".to_owned());
    }
    let mut listeners = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START.saturating_add(count) {
        // SAFETY: `fstat` writes only into the local `stat`, all-zero bytes being a valid
        // value; a descriptor that is not open makes it fail with EBADF.
        let is_socket = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK
        };
        if !is_socket {
            return Err(format!("descriptor {fd} of LISTEN_FDS is not a socket"));
        }
        // SAFETY: F_SETFD on a descriptor just checked to be open; keeps the socket from
        // leaking into processes this one starts.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: systemd handed the descriptor to this process, and this is the only
        // place that takes it (each number once): the listener owns it from here.
        listeners
            .push(unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
    Ok(listeners)
}

/// One address of a network interface, as `getifaddrs(3)` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceAddress {
    pub(crate) device: String,
    pub(crate) address: std::net::IpAddr,
    /// The netmask's length in bits.
    pub(crate) prefix: u32,
}

/// The IPv4 and IPv6 addresses of this network namespace's interfaces.
pub(crate) fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// The address in a `sockaddr` of family AF_INET or AF_INET6.
    ///
    /// # Safety
    /// `sockaddr` must be null or point to a `sockaddr` as large as its family says.
    unsafe fn ip(sockaddr: *const libc::sockaddr) -> Option<IpAddr> {
        if sockaddr.is_null() {
            return None;
        }
        // SAFETY: non-null and, per the caller, a valid sockaddr of the family it names.
        unsafe {
            match i32::from((*sockaddr).sa_family) {
                libc::AF_INET => {
                    let v4 = &*sockaddr.cast::<libc::sockaddr_in>();
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
                }
                libc::AF_INET6 => {
                    let v6 = &*sockaddr.cast::<libc::sockaddr_in6>();
                    Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        }
    }

    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `getifaddrs` fills `list` with a linked list it allocated, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list `getifaddrs` returned, alive until
        // `freeifaddrs`; its name is a NUL-terminated string and its address and
        // netmask are null or sockaddrs of the family they name.
        unsafe {
            let node = &*entry;
            if let (Some(address), Some(mask)) = (ip(node.ifa_addr), ip(node.ifa_netmask))
                && !node.ifa_name.is_null()
            {
                let prefix = match mask {
                    IpAddr::V4(mask) => u32::from(mask).count_ones(),
                    IpAddr::V6(mask) => u128::from(mask).count_ones(),
                };
                addresses.push(InterfaceAddress {
                    device: CStr::from_ptr(node.ifa_name).to_string_lossy().into_owned(),
                    address,
                    prefix,
                });
            }
            entry = node.ifa_next;
        }
    }
    // SAFETY: the list `getifaddrs` returned, freed once, after its last use.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

/// Most bytes of route messages read in one dump; a routing table larger than this (a
/// full BGP table) is cut off there rather than let it size the memory.
pub(crate) const ROUTE_DUMP_MAX_BYTES: usize = 64 << 20;

/// The raw messages of an rtnetlink `RTM_GETROUTE` dump of every family and table: each
/// item is one `struct rtmsg` with its attributes (without the `nlmsghdr`).
pub(crate) fn route_dump() -> io::Result<Vec<Vec<u8>>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    // SAFETY: plain system call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };

    // nlmsghdr (16 bytes) + rtmsg (12 bytes), family AF_UNSPEC: every family.
    const SEQUENCE: u32 = 1;
    let mut request = [0u8; 28];
    request[0..4].copy_from_slice(&28u32.to_ne_bytes());
    request[4..6].copy_from_slice(&libc::RTM_GETROUTE.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    request[6..8].copy_from_slice(&flags.to_ne_bytes());
    request[8..12].copy_from_slice(&SEQUENCE.to_ne_bytes());
    // SAFETY: `request` is a readable buffer of the length given; the kernel is the
    // destination of an unconnected netlink socket by default.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }

    let mut messages = Vec::new();
    let mut total = 0usize;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buffer` is writable for its whole length.
        let received = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut rest = &buffer[..received as usize];
        while rest.len() >= 16 {
            let length = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if length < 16 || length > rest.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated netlink message",
                ));
            }
            match i32::from(kind) {
                libc::NLMSG_DONE => return Ok(messages),
                libc::NLMSG_ERROR => {
                    let code = rest
                        .get(16..20)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    return Err(io::Error::from_raw_os_error(-code));
                }
                _ if kind == libc::RTM_NEWROUTE => {
                    total += length;
                    if total > ROUTE_DUMP_MAX_BYTES {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("route dump larger than {ROUTE_DUMP_MAX_BYTES} bytes"),
                        ));
                    }
                    messages.push(rest[16..length].to_vec());
                }
                _ => {}
            }
            // Messages are aligned to 4 bytes.
            let advance = length.div_ceil(4) * 4;
            rest = rest.get(advance..).unwrap_or_default();
        }
    }
}

/// The name of the interface with index `index`, if there is one.
pub(crate) fn interface_name(index: u32) -> Option<String> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes `if_indextoname` may write.
    let found = unsafe { libc::if_indextoname(index, name.as_mut_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Some(
        unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_has_its_address() {
        let addresses = super::interface_addresses().unwrap();
        assert!(
            addresses.iter().any(|a| a.device == "lo"
                && a.address == std::net::IpAddr::from([127, 0, 0, 1])
                && a.prefix == 8),
            "{addresses:?}"
        );
    }

    #[test]
    fn ethtool_structures_have_the_kernel_sizes() {
        assert_eq!(size_of::<super::DrvInfo>(), 196);
        assert_eq!(size_of::<super::EthtoolCmd>(), 44);
        assert!(size_of::<super::IfReq>() >= 40);
    }

    #[test]
    fn ethtool_on_loopback_answers_or_says_why_not() {
        let socket = super::EthtoolSocket::open().unwrap();
        // Loopback has no ethtool driver information on most kernels; either way the
        // call returns instead of failing the process.
        match socket.driver_info("lo") {
            Ok(info) => assert!(info.n_stats <= super::ETHTOOL_MAX_STATS),
            Err(error) => assert!(error.raw_os_error().is_some(), "{error}"),
        }
        let error = socket.driver_info("no/such\0device").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn ethtool_statistics_of_this_hosts_devices_come_with_their_names() {
        let socket = super::EthtoolSocket::open().unwrap();
        for entry in std::fs::read_dir("/sys/class/net").unwrap() {
            let device = entry.unwrap().file_name().into_string().unwrap();
            // Devices whose driver has no ethtool support are skipped.
            let Ok(info) = socket.driver_info(&device) else {
                continue;
            };
            let stats = socket.stats(&device, info.n_stats).unwrap();
            assert_eq!(stats.len(), info.n_stats as usize, "{device}");
            assert!(stats.iter().all(|(name, _)| !name.is_empty()), "{device}");
        }
    }

    #[test]
    fn reads_the_clock_state() {
        let timex = super::adjtimex().unwrap_or_else(|e| panic!("adjtimex: {e}"));
        // The kernel's tick is 1e6 / HZ microseconds: 1 000 to 10 000.
        assert!(
            (1_000..=10_000).contains(&timex.tick),
            "tick {}",
            timex.tick
        );
        let (_, offset) = super::local_zone(0).unwrap_or_default();
        assert!(offset.abs() <= 14 * 3600);
    }
}
