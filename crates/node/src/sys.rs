//! The calls no safe crate wraps: `adjtimex(2)` for the timex collector, `localtime_r(3)`
//! for the time zone of the time collector, the Btrfs device ioctls for the btrfs
//! collector. All
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
