//! The calls no safe crate wraps: `adjtimex(2)` for the timex collector, `localtime_r(3)`
//! for the time zone of the time collector, the Btrfs device ioctls for the btrfs
//! collector, `perf_event_open(2)` for the perf collector, the `SIOCETHTOOL` ioctl for the
//! ethtool collector, and taking over the sockets of systemd socket activation. All
//! unsafe code of the node exporter is here, each block with the reason it is sound.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

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

/// The Btrfs ioctls' magic number (`BTRFS_IOCTL_MAGIC` of `linux/btrfs.h`).
const BTRFS_IOCTL_MAGIC: u32 = 0x94;

/// `struct btrfs_ioctl_fs_info_args`: 1024 bytes.
#[repr(C)]
struct BtrfsFsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    csum_type: u16,
    csum_size: u16,
    flags: u64,
    generation: u64,
    metadata_uuid: [u8; 16],
    reserved: [u8; 944],
}

/// `struct btrfs_ioctl_dev_info_args`: 4096 bytes.
#[repr(C)]
struct BtrfsDevInfoArgs {
    devid: u64,
    uuid: [u8; 16],
    bytes_used: u64,
    total_bytes: u64,
    fsid: [u8; 16],
    unused: [u64; 377],
    path: [u8; 1024],
}

/// `struct btrfs_ioctl_get_dev_stats`: 1032 bytes.
#[repr(C)]
struct BtrfsDevStatsArgs {
    devid: u64,
    nr_items: u64,
    flags: u64,
    values: [u64; BTRFS_DEV_STATS],
    unused: [u64; 128 - 2 - BTRFS_DEV_STATS],
}

/// The error counters the kernel keeps per device: write, read, flush, corruption and
/// generation errors (`BTRFS_DEV_STAT_VALUES_MAX`).
pub(crate) const BTRFS_DEV_STATS: usize = 5;

const _: () = {
    assert!(size_of::<BtrfsFsInfoArgs>() == 1024);
    assert!(size_of::<BtrfsDevInfoArgs>() == 4096);
    assert!(size_of::<BtrfsDevStatsArgs>() == 1032);
};

/// What `BTRFS_IOC_FS_INFO` says of a mounted filesystem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BtrfsFsInfo {
    /// The highest device id in use.
    pub(crate) max_id: u64,
    pub(crate) num_devices: u64,
    pub(crate) fsid: [u8; 16],
}

/// What `BTRFS_IOC_DEV_INFO` says of one member device.
#[derive(Debug, Clone)]
pub(crate) struct BtrfsDevInfo {
    pub(crate) uuid: [u8; 16],
    pub(crate) bytes_used: u64,
    pub(crate) total_bytes: u64,
    /// The device's path as the kernel knows it (`/dev/sda`).
    pub(crate) path: String,
}

/// Runs a Btrfs ioctl that reads and writes `arg`, a zero-initialised `repr(C)` struct
/// of the exact size the request number encodes.
///
/// # Safety
/// `T` must be one of the argument structs above, matching `request`.
unsafe fn btrfs_ioctl<T>(fd: BorrowedFd<'_>, request: libc::Ioctl, arg: &mut T) -> io::Result<()> {
    // SAFETY: the caller passes the struct the request is defined with (its size is in
    // the request number and asserted above); the kernel writes at most that many bytes
    // into it, and the pointer is to a live, exclusively borrowed value.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg as *mut T) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `BTRFS_IOC_FS_INFO` on a directory of a mounted Btrfs filesystem.
pub(crate) fn btrfs_fs_info(fd: BorrowedFd<'_>) -> io::Result<BtrfsFsInfo> {
    // SAFETY: all-zero bytes are a valid value of this plain integer struct.
    let mut arg: BtrfsFsInfoArgs = unsafe { std::mem::zeroed() };
    let request = libc::_IOR::<BtrfsFsInfoArgs>(BTRFS_IOCTL_MAGIC, 31);
    // SAFETY: the request is BTRFS_IOC_FS_INFO, defined with this struct.
    unsafe { btrfs_ioctl(fd, request, &mut arg)? };
    Ok(BtrfsFsInfo {
        max_id: arg.max_id,
        num_devices: arg.num_devices,
        fsid: arg.fsid,
    })
}

/// `BTRFS_IOC_DEV_INFO` for device `devid`; `ENODEV` where no device has that id (ids
/// need not be contiguous).
pub(crate) fn btrfs_dev_info(fd: BorrowedFd<'_>, devid: u64) -> io::Result<BtrfsDevInfo> {
    // SAFETY: all-zero bytes are a valid value of this plain integer struct.
    let mut arg: BtrfsDevInfoArgs = unsafe { std::mem::zeroed() };
    arg.devid = devid;
    let request = libc::_IOWR::<BtrfsDevInfoArgs>(BTRFS_IOCTL_MAGIC, 30);
    // SAFETY: the request is BTRFS_IOC_DEV_INFO, defined with this struct.
    unsafe { btrfs_ioctl(fd, request, &mut arg)? };
    let end = arg
        .path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(arg.path.len());
    Ok(BtrfsDevInfo {
        uuid: arg.uuid,
        bytes_used: arg.bytes_used,
        total_bytes: arg.total_bytes,
        path: String::from_utf8_lossy(&arg.path[..end]).into_owned(),
    })
}

/// `BTRFS_IOC_GET_DEV_STATS` for device `devid`, without resetting the counters.
pub(crate) fn btrfs_dev_stats(
    fd: BorrowedFd<'_>,
    devid: u64,
) -> io::Result<[u64; BTRFS_DEV_STATS]> {
    // SAFETY: all-zero bytes are a valid value of this plain integer struct.
    let mut arg: BtrfsDevStatsArgs = unsafe { std::mem::zeroed() };
    arg.devid = devid;
    arg.nr_items = BTRFS_DEV_STATS as u64;
    let request = libc::_IOWR::<BtrfsDevStatsArgs>(BTRFS_IOCTL_MAGIC, 52);
    // SAFETY: the request is BTRFS_IOC_GET_DEV_STATS, defined with this struct.
    unsafe { btrfs_ioctl(fd, request, &mut arg)? };
    Ok(arg.values)
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

#[cfg(test)]
mod tests {
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

/// `struct perf_event_attr` as its first published layout (`PERF_ATTR_SIZE_VER0`, 64
/// bytes): every kernel since 2.6.31 accepts it, and the perf collector needs none of the
/// later fields.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct PerfEventAttr {
    /// `PERF_TYPE_*`.
    pub(crate) kind: u32,
    /// The size of this struct, which tells the kernel which layout it is.
    pub(crate) size: u32,
    /// The event within its type.
    pub(crate) config: u64,
    pub(crate) sample_period: u64,
    pub(crate) sample_type: u64,
    /// `PERF_FORMAT_*`: what a `read(2)` of the counter returns.
    pub(crate) read_format: u64,
    /// The bit field of flags (`disabled`, `inherit`, … `exclude_hv` is bit 6).
    pub(crate) flags: u64,
    pub(crate) wakeup_events: u32,
    pub(crate) bp_type: u32,
    pub(crate) config1: u64,
}

/// Opens a counter of `attr` for every process (`pid = -1`) on `cpu`, without a group,
/// closed on exec.
pub(crate) fn perf_event_open(
    mut attr: PerfEventAttr,
    cpu: i32,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // SAFETY: the kernel reads `attr.size` bytes from the pointer, which is the struct's
    // own size (set just above), and the local outlives the call. The other arguments are
    // plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("file descriptor out of range"))?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// How many CPUs this process may run on (its affinity mask): Go's `runtime.NumCPU`.
pub(crate) fn affinity_cpu_count() -> io::Result<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero bytes are valid; the
    // kernel writes at most `size_of::<cpu_set_t>()` bytes into the local, and CPU_COUNT
    // only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(libc::CPU_COUNT(&set)).unwrap_or(0))
    }
}
