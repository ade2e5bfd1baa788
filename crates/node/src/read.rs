//! Thin readers for procfs and sysfs files, with errors that say which file failed.
//!
//! sysfs attributes are small and often vanish under us (a network device removed while
//! we read it, a sensor driver unbound): the `optional` readers turn such reads into `None`
//! so a collector skips the value instead of failing the whole scrape.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kiln_registry::CollectError;

/// Reads a whole file as text. Unlike `std::fs::read_to_string` it does not ask the file's
/// size first: procfs and sysfs report 0 or 4096 for every file, so that `statx` is one
/// system call in four of a scrape and helps nothing.
pub(crate) fn read_text(path: &Path) -> io::Result<String> {
    read_until(path, End::ZeroRead)
}

/// Reads a sysfs attribute as text. sysfs hands an attribute's whole text (at most a page)
/// to the first read, so a read that leaves the buffer part-empty is the end of the file:
/// one `read` a file instead of two, the second only to learn what the first implied.
/// procfs gives no such promise (a `seq_file` may stop at any record), so procfs files go
/// through [`read_text`].
pub(crate) fn read_attribute(path: &Path) -> io::Result<String> {
    read_until(path, End::ShortRead)
}

/// What tells a reader it has reached the end of a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// A read that returns nothing (every file).
    ZeroRead,
    /// A read that returns less than asked for (sysfs attributes).
    ShortRead,
}

/// The most a procfs or sysfs file is read: far beyond any real one (`/proc/net/tcp` of a
/// host with 100 000 connections is about 15 MiB), so a file that never ends, or a pipe
/// put in its place, costs a bounded read and a failed collector, not all memory.
pub(crate) const MAX_FILE_BYTES: usize = 64 << 20;

fn read_until(path: &Path, end: End) -> io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Non-blocking, so a FIFO where a file should be reads as empty instead of waiting for
    // a writer for ever (it has no effect on regular files).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    read_file_until(file, end)
}

fn read_file_until(mut file: std::fs::File, end: End) -> io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    // Larger than a page, so a full sysfs attribute still comes back as a short read.
    let mut chunk = [0u8; 4096 + 512];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(_) if bytes.len() >= MAX_FILE_BYTES => {
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("longer than {} MiB", MAX_FILE_BYTES >> 20),
                ));
            }
            Ok(read) => {
                bytes.extend_from_slice(&chunk[..read]);
                if end == End::ShortRead && read < chunk.len() {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // A FIFO without a writer: nothing to read.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    String::from_utf8(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// Reads a whole file; the error names the file.
pub(crate) fn file(path: &Path) -> Result<String, CollectError> {
    read_text(path).map_err(|error| failed(path, error))
}

/// Reads a whole file, treating a missing file (or directory) as "nothing here": hardware
/// collectors report [`CollectError::NoData`] then, as node_exporter does.
pub(crate) fn file_or_no_data(path: &Path) -> Result<String, CollectError> {
    read_text(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => CollectError::NoData,
        _ => failed(path, error),
    })
}

/// A file's content without the trailing newline, or `None` if it cannot be read.
pub(crate) fn optional_trimmed(path: &Path) -> Option<String> {
    trimmed(read_text(path).ok()?)
}

/// A sysfs attribute without the trailing newline, or `None` if it cannot be read (see
/// [`read_attribute`]).
pub(crate) fn attribute(path: &Path) -> Option<String> {
    trimmed(read_attribute(path).ok()?)
}

/// A sysfs attribute holding one number, or `None` if it is missing, unreadable or not a
/// number (sysfs answers `EINVAL` for, say, the speed of a link that is down).
pub(crate) fn attribute_value<T: FromStr>(path: &Path) -> Option<T> {
    attribute(path)?.trim().parse().ok()
}

/// A sysfs directory opened once, its attributes then opened relative to it: the kernel
/// walks the path (and follows the `/sys/class/...` symlink) once per device instead of
/// once per attribute, which for a network interface's forty-odd files was most of the
/// kernel's share of a scrape.
pub(crate) struct AttributeDir {
    fd: std::os::fd::OwnedFd,
}

impl AttributeDir {
    /// Opens `path`, or `None` if it is missing or not a directory.
    pub(crate) fn open(path: &Path) -> Option<Self> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).ok()?;
        Some(Self { fd })
    }

    /// The attribute `name` without its trailing newline, as [`attribute`] reads it.
    pub(crate) fn attribute(&self, name: &str) -> Option<String> {
        trimmed(self.read(name).ok()?)
    }

    /// The whole of `name` (a path relative to this directory), read as [`read_attribute`]
    /// reads: capped, non-blocking, done at the first short read. Fit for cgroup files too,
    /// which, like sysfs attributes, hand over their whole text to the first read.
    pub(crate) fn read(&self, name: &str) -> io::Result<String> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        read_file_until(std::fs::File::from(fd), End::ShortRead)
    }
}

fn trimmed(mut text: String) -> Option<String> {
    let trimmed_len = text.trim_end().len();
    text.truncate(trimmed_len);
    Some(text)
}

/// The entries of a directory whose names match `accept`, sorted by name; a missing
/// directory is [`CollectError::NoData`].
pub(crate) fn dir_entries(
    dir: &Path,
    accept: impl Fn(&str) -> bool,
) -> Result<Vec<(String, PathBuf)>, CollectError> {
    let entries = std::fs::read_dir(dir).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => CollectError::NoData,
        _ => failed(dir, error),
    })?;
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            accept(&name).then(|| (name, entry.path()))
        })
        .collect();
    found.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(found)
}

/// The error for a failed read of `path`.
pub(crate) fn failed(
    path: &Path,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> CollectError {
    CollectError::failed(format!("reading {}", path.display()), error)
}

/// The error for a file whose content could not be understood.
pub(crate) fn malformed(path: &Path, what: impl std::fmt::Display) -> CollectError {
    CollectError::failed(format!("parsing {}", path.display()), what.to_string())
}

/// Orders `cpu2` before `cpu10`: names compare by their text, with digit runs compared as
/// numbers, so per-device output has the order a person expects.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order.is_ne() {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_never_ends_is_cut_at_the_cap() {
        let error = read_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn a_fifo_in_place_of_a_file_reads_as_empty_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("diskstats");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        assert_eq!(read_text(&fifo).unwrap(), "");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut names = vec!["cpu10", "cpu2", "cpu1", "eth0", "cpu"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["cpu", "cpu1", "cpu2", "cpu10", "eth0"]);
    }
}
