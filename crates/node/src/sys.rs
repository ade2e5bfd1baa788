//! The calls no safe crate wraps: `adjtimex(2)` for the timex collector, `localtime_r(3)`
//! for the time zone of the time collector. All
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
