//! The cgroup files the yarn collector reads, one parser each. Every parser refuses text
//! that is not the kernel's shape (`None`), so a damaged file is skipped and counted rather
//! than read as a wrong figure.

/// A file holding one unsigned number (`cpuacct.usage`, `memory.usage_in_bytes`,
/// `memory.max_usage_in_bytes`, `memory.current`, `memory.peak`).
pub(super) fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `usage_usec` of a v2 `cpu.stat`: user plus system time, in microseconds.
pub(super) fn cpu_usage_usec(text: &str) -> Option<u64> {
    let mut usage = None;
    for line in text.lines() {
        let (key, value) = line.split_once(' ')?;
        if key == "usage_usec" {
            usage = Some(value.trim().parse().ok()?);
        }
    }
    usage
}

/// Bytes read and written, summed over devices, from a v1 `blkio.throttle.io_service_bytes`:
///
/// ```text
/// 254:0 Read 4718592
/// 254:0 Write 2097152
/// 254:0 Sync 6815744
/// 254:0 Async 0
/// 254:0 Discard 0
/// 254:0 Total 6815744
/// Total 6815744
/// ```
pub(super) fn blkio_service_bytes(text: &str) -> Option<(u64, u64)> {
    let (mut read, mut written) = (0u64, 0u64);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields[..] {
            ["Total", total] => {
                total.parse::<u64>().ok()?;
            }
            [device, operation, bytes] => {
                if !is_device(device) {
                    return None;
                }
                let bytes: u64 = bytes.parse().ok()?;
                match operation {
                    "Read" => read = read.checked_add(bytes)?,
                    "Write" => written = written.checked_add(bytes)?,
                    "Sync" | "Async" | "Discard" | "Total" => {}
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some((read, written))
}

/// Bytes read and written, summed over devices, from a v2 `io.stat`:
///
/// ```text
/// 259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
/// ```
pub(super) fn io_stat_bytes(text: &str) -> Option<(u64, u64)> {
    let (mut read, mut written) = (0u64, 0u64);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace();
        if !is_device(fields.next()?) {
            return None;
        }
        for field in fields {
            // Other keys (`rios`, `cost.usage`, …) come and go with the kernel's options.
            let (key, value) = field.split_once('=')?;
            match key {
                "rbytes" => read = read.checked_add(value.parse().ok()?)?,
                "wbytes" => written = written.checked_add(value.parse().ok()?)?,
                _ => {}
            }
        }
    }
    Some((read, written))
}

/// `major:minor`.
fn is_device(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    text.split_once(':')
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_numbers_are_read_and_junk_is_refused() {
        assert_eq!(number("345677085\n"), Some(345_677_085));
        assert_eq!(number(""), None);
        assert_eq!(number("-1\n"), None);
        assert_eq!(number("12 kB\n"), None);
    }

    #[test]
    fn cpu_stat_gives_usage_usec() {
        let text = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n";
        assert_eq!(cpu_usage_usec(text), Some(2_500_000));
        assert_eq!(cpu_usage_usec("user_usec 5\n"), None);
        assert_eq!(cpu_usage_usec("usage_usec lots\n"), None);
        assert_eq!(cpu_usage_usec("garbage\n"), None);
    }

    #[test]
    fn blkio_sums_reads_and_writes_over_devices() {
        let text = "254:0 Read 4718592\n254:0 Write 2097152\n254:0 Sync 6815744\n254:0 Async 0\n\
                    254:0 Discard 0\n254:0 Total 6815744\n259:1 Read 10\n259:1 Write 20\n\
                    259:1 Total 30\nTotal 6815774\n";
        assert_eq!(blkio_service_bytes(text), Some((4_718_602, 2_097_172)));
        // A container that has done no I/O.
        assert_eq!(blkio_service_bytes("Total 0\n"), Some((0, 0)));
        assert_eq!(blkio_service_bytes("254:0 Read -4\n"), None);
        assert_eq!(blkio_service_bytes("254:0 Peek 4\n"), None);
        assert_eq!(blkio_service_bytes("sda Read 4\n"), None);
        assert_eq!(blkio_service_bytes("254:0 Read\n"), None);
    }

    #[test]
    fn io_stat_sums_rbytes_and_wbytes_over_devices() {
        let text = "259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
                    8:16 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0 cost.vrate=100.00\n";
        assert_eq!(io_stat_bytes(text), Some((1_459_300, 314_773_704)));
        assert_eq!(io_stat_bytes(""), Some((0, 0)));
        assert_eq!(io_stat_bytes("259:0 rbytes=x wbytes=1\n"), None);
        assert_eq!(io_stat_bytes("259:0 rbytes 1\n"), None);
        assert_eq!(io_stat_bytes("nvme0 rbytes=1\n"), None);
        assert_eq!(
            io_stat_bytes(&format!("1:0 rbytes={}\n1:1 rbytes=1\n", u64::MAX)),
            None
        );
    }
}
