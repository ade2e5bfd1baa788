//! Hands back, at the end of start-up, the pages of code and constants that only start-up
//! needed.
//!
//! Start-up runs a lot of code once: argument parsing, regex and config compilation, the
//! loader's relocation pass. The kernel maps program text around each page touched (in
//! 64 KiB blocks, "fault-around"), so by the time an exporter listens it has most of its
//! executable and of libc mapped, though a scrape uses about a third of it. Those pages are
//! clean copies of files: dropping them from the process loses nothing, and whatever a
//! scrape needs is mapped again from the page cache on first use (a minor fault, no I/O).
//! The pages stay cached, shared with every other process that maps the same files.
//!
//! Only read-only private file mappings without a single anonymous page are dropped: a
//! mapping that was written to (relocated data, `RELRO`) holds copies that exist nowhere
//! else, and is left alone.
#![allow(unsafe_code)]

/// One `/proc/self/smaps` entry that may be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Droppable {
    start: usize,
    end: usize,
    resident_kib: u64,
}

/// Drops the mappings described above and returns how many KiB were resident in them.
///
/// Call it once start-up is over and before serving, from the thread that did the start-up,
/// while no other thread loads or unloads a shared library: between reading the mapping list
/// and dropping a range, the loader could otherwise have put writable data there.
pub(crate) fn release() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    droppable(&smaps)
        .filter(|mapping| drop_range(mapping.start, mapping.end))
        .map(|mapping| mapping.resident_kib)
        .sum()
}

fn drop_range(start: usize, end: usize) -> bool {
    // SAFETY: the range is exactly one mapping that /proc/self/smaps showed as private,
    // not writable, backed by a file and without anonymous (copied-on-write) pages, so every
    // page in it equals the file's content. MADV_DONTNEED removes those pages from this
    // process only; the next access maps them again from the page cache, so no memory the
    // program refers to changes. See `release` for why no other thread remaps it meanwhile.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) == 0 }
}

/// The mappings of an smaps text that may be dropped.
fn droppable(smaps: &str) -> impl Iterator<Item = Droppable> + '_ {
    let mut current: Option<Droppable> = None;
    let mut anonymous = None;
    let mut lines = smaps.lines();
    std::iter::from_fn(move || {
        for line in lines.by_ref() {
            if let Some(mapping) = header(line) {
                current = mapping;
                anonymous = None;
                continue;
            }
            let Some(mapping) = current.as_mut() else {
                continue;
            };
            let (key, rest) = line.split_once(':').unwrap_or((line, ""));
            let kib = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok();
            match key {
                "Rss" => mapping.resident_kib = kib.unwrap_or(0),
                "Anonymous" => anonymous = kib,
                // The last field of an entry: decide now.
                "VmFlags" => {
                    let found = current.take().filter(|_| anonymous == Some(0));
                    if found.is_some() {
                        return found;
                    }
                }
                _ => {}
            }
        }
        None
    })
}

/// Parses an entry's first line; `Some(None)` for a mapping that is never dropped.
fn header(line: &str) -> Option<Option<Droppable>> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("");
    let keep = perms.len() != 4
        || perms[1] == b'w'
        || perms[3] != b'p'
        || inode == "0"
        || !path.starts_with('/');
    Some((!keep && end > start).then_some(Droppable {
        start,
        end,
        resident_kib: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55cd30d9f000-55cd30f67000 r--p 00000000 fe:00 5491145                    /usr/bin/kiln-node-exporter
Size:               1824 kB
Rss:                 836 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
55cd30f67000-55cd31551000 r-xp 001c7000 fe:00 5491145                    /usr/bin/kiln-node-exporter
Size:               6056 kB
Rss:                3908 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
55cd31551000-55cd3158e000 r--p 007b0000 fe:00 5491145                    /usr/bin/kiln-node-exporter
Size:                244 kB
Rss:                 244 kB
Anonymous:           244 kB
VmFlags: rd mr mw me ac sd
55cd3158e000-55cd31593000 rw-p 007ec000 fe:00 5491145                    /usr/bin/kiln-node-exporter
Rss:                  20 kB
Anonymous:            20 kB
VmFlags: rd wr mr mw me ac sd
55cd3269b000-55cd32800000 rw-p 00000000 00:00 0                          [heap]
Rss:                1600 kB
Anonymous:          1600 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000100000 r-xs 00000000 00:05 17                         /dev/shm/shared
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd ex sh mr mw me ms sd
7ffdab05b000-7ffdab05d000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me de sd
";

    #[test]
    fn only_clean_read_only_private_file_mappings_are_chosen() {
        let chosen: Vec<_> = droppable(SMAPS).collect();
        assert_eq!(
            chosen,
            [
                Droppable {
                    start: 0x55cd30d9f000,
                    end: 0x55cd30f67000,
                    resident_kib: 836
                },
                Droppable {
                    start: 0x55cd30f67000,
                    end: 0x55cd31551000,
                    resident_kib: 3908
                },
            ],
            "relocated data, writable, shared and anonymous mappings are kept"
        );
    }

    #[test]
    fn an_entry_cut_short_is_not_chosen() {
        let cut =
            "55cd30f67000-55cd31551000 r-xp 001c7000 fe:00 5491145 /usr/bin/x\nRss: 3908 kB\n";
        assert_eq!(droppable(cut).count(), 0);
    }

    fn resident_file_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_ascii_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn the_process_keeps_working_with_fewer_pages() {
        let before = resident_file_kib();
        let released = release();
        let after = resident_file_kib();
        assert!(released > 0, "nothing was released");
        assert!(after < before, "RssFile {before} KiB -> {after} KiB");
        // Code, constants and the loader's data are all there still: formatting a float and
        // starting a thread run code whose pages were just dropped.
        let text = format!("{:e}", std::hint::black_box(1527808.0_f64));
        let matched = std::thread::spawn(move || text == "1.527808e6")
            .join()
            .unwrap();
        assert!(matched);
    }
}
