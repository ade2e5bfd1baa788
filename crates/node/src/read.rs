//! Thin readers for procfs and sysfs files, with errors that say which file failed.
//!
//! sysfs attributes are small and often vanish under us (a network device removed while
//! we read it, a sensor driver unbound): the `optional` readers turn such reads into `None`
//! so a collector skips the value instead of failing the whole scrape.
//!
//! A scrape reads a few hundred files. Their text lands in buffers taken from a small
//! per-thread pool and given back when the [`Text`] is dropped, and directories are listed
//! into pooled buffers too ([`Entries`]), so once the collector threads have warmed up,
//! reading a file or a directory allocates nothing.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kiln_registry::CollectError;
use rustix::fs::{Mode, OFlags};

mod pool {
    //! Buffers kept per thread between reads. Collectors run on the runner's blocking
    //! threads, which stay alive between scrapes, so each thread's pool warms up in its
    //! first scrape and is reused from then on. A thread keeps few and small buffers: a
    //! rare large file (`/proc/net/tcp` of a busy host) is read into a buffer that is freed
    //! afterwards, not held for good.

    use std::cell::RefCell;

    /// Buffers kept per thread: more than the reads a collector has open at once.
    const KEEP: usize = 8;
    /// Buffers larger than this are freed rather than kept.
    const KEEP_BYTES: usize = 64 << 10;

    thread_local! {
        static BYTES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        static RANGES: RefCell<Vec<Vec<(u32, u32)>>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty byte buffer, with the capacity it had when it was given back.
    pub(super) fn bytes() -> Vec<u8> {
        BYTES
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Gives a byte buffer back for a later read.
    pub(super) fn give_bytes(buffer: Vec<u8>) {
        give(&BYTES, buffer, buffer_bytes::<u8>);
    }

    /// An empty list of ranges (a directory's names, as offsets into their text).
    pub(super) fn ranges() -> Vec<(u32, u32)> {
        RANGES
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Gives a list of ranges back.
    pub(super) fn give_ranges(ranges: Vec<(u32, u32)>) {
        give(&RANGES, ranges, buffer_bytes::<(u32, u32)>);
    }

    fn buffer_bytes<T>(buffer: &Vec<T>) -> usize {
        buffer.capacity() * size_of::<T>()
    }

    fn give<T: 'static>(
        pool: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>,
        mut buffer: Vec<T>,
        bytes: fn(&Vec<T>) -> usize,
    ) {
        let size = bytes(&buffer);
        if size == 0 || size > KEEP_BYTES {
            return;
        }
        buffer.clear();
        // During thread exit the pool may be gone already; the buffer is then just freed.
        let _ = pool.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut()
                && pool.len() < KEEP
            {
                pool.push(buffer);
            }
        });
    }
}

/// The text of a file, in a pooled buffer that goes back to the pool when this is dropped.
/// Reads as a `&str`.
#[derive(Default)]
pub(crate) struct Text(String);

impl Text {
    /// Without trailing white space (the newline sysfs and procfs end a value with).
    fn trimmed(mut self) -> Self {
        let len = self.0.trim_end().len();
        self.0.truncate(len);
        self
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        pool::give_bytes(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Reads a whole file as text. Unlike `std::fs::read_to_string` it does not ask the file's
/// size first: procfs and sysfs report 0 or 4096 for every file, so that `statx` is one
/// system call in four of a scrape and helps nothing.
pub(crate) fn read_text(path: &Path) -> io::Result<Text> {
    read_until(path, End::ZeroRead)
}

/// Reads a sysfs attribute as text. sysfs hands an attribute's whole text (at most a page)
/// to the first read, so a read that leaves the buffer part-empty is the end of the file:
/// one `read` a file instead of two, the second only to learn what the first implied.
/// procfs gives no such promise (a `seq_file` may stop at any record), so procfs files go
/// through [`read_text`].
pub(crate) fn read_attribute(path: &Path) -> io::Result<Text> {
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

/// Room a read asks for at least: more than a page, so a full sysfs attribute still comes
/// back as a short read.
const READ_BYTES: usize = 4096 + 512;

fn read_until(path: &Path, end: End) -> io::Result<Text> {
    // Non-blocking, so a FIFO where a file should be reads as empty instead of waiting for
    // a writer for ever (it has no effect on regular files). rustix turns a path of usual
    // length into a C string on the stack, without allocating.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    read_fd_until(&fd, end, Position::Current)
}

/// Where a read of a file starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// At the file's offset, which a freshly opened file has at its start.
    Current,
    /// At the start, whatever the file's offset (`pread`): for a file read again.
    Start,
}

/// Reads `fd` to its end into a pooled buffer, straight into the buffer's spare room (no
/// copy, no zeroing).
fn read_fd_until(fd: impl AsFd, end: End, from: Position) -> io::Result<Text> {
    let mut bytes = pool::bytes();
    loop {
        if bytes.capacity() - bytes.len() < READ_BYTES {
            bytes.reserve(READ_BYTES);
        }
        let room = bytes.capacity() - bytes.len();
        let before = bytes.len();
        let room_left = rustix::buffer::spare_capacity(&mut bytes);
        let read = match from {
            Position::Current => rustix::io::read(&fd, room_left),
            Position::Start => rustix::io::pread(&fd, room_left, before as u64),
        };
        match read {
            Ok(0) => break,
            Ok(_) if before >= MAX_FILE_BYTES => {
                pool::give_bytes(bytes);
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("longer than {} MiB", MAX_FILE_BYTES >> 20),
                ));
            }
            Ok(read) => {
                if end == End::ShortRead && read < room {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            // A FIFO without a writer: nothing to read.
            Err(rustix::io::Errno::AGAIN) => break,
            Err(error) => {
                pool::give_bytes(bytes);
                return Err(error.into());
            }
        }
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Text(text)),
        Err(error) => {
            let utf8 = error.utf8_error();
            pool::give_bytes(error.into_bytes());
            Err(io::Error::new(io::ErrorKind::InvalidData, utf8))
        }
    }
}

/// Reads a whole file; the error names the file.
pub(crate) fn file(path: &Path) -> Result<Text, CollectError> {
    read_text(path).map_err(|error| failed(path, error))
}

/// Reads a whole file, treating a missing file (or directory) as "nothing here": hardware
/// collectors report [`CollectError::NoData`] then, as node_exporter does.
pub(crate) fn file_or_no_data(path: &Path) -> Result<Text, CollectError> {
    read_text(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => CollectError::NoData,
        _ => failed(path, error),
    })
}

/// A file's content without the trailing newline, or `None` if it cannot be read.
pub(crate) fn optional_trimmed(path: &Path) -> Option<Text> {
    Some(read_text(path).ok()?.trimmed())
}

/// A sysfs attribute without the trailing newline, or `None` if it cannot be read (see
/// [`read_attribute`]).
pub(crate) fn attribute(path: &Path) -> Option<Text> {
    Some(read_attribute(path).ok()?.trimmed())
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
    fd: OwnedFd,
}

impl AttributeDir {
    /// Opens `path`, or `None` if it is missing or not a directory.
    pub(crate) fn open(path: &Path) -> Option<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).ok()?;
        Some(Self { fd })
    }

    /// The directory `parts` joined by `/` below this one (`["cpu0", "cpufreq"]`), or
    /// `None` if it is missing or not a directory.
    pub(crate) fn open_at(&self, parts: &[&str]) -> Option<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = with_relative(parts, |name| {
            rustix::fs::openat(&self.fd, name, flags, Mode::empty()).ok()
        })??;
        Some(Self { fd })
    }

    /// The attribute `name` (which may hold `/`) without its trailing newline, as
    /// [`attribute`] reads it.
    pub(crate) fn attribute(&self, name: &str) -> Option<Text> {
        self.attribute_at(&[name])
    }

    /// The attribute at `parts` joined by `/` (`["eth0", "mtu"]`), as [`attribute`] reads it.
    pub(crate) fn attribute_at(&self, parts: &[&str]) -> Option<Text> {
        Some(self.read(parts, End::ShortRead).ok()?.trimmed())
    }

    /// The attribute `name` holding one number, as [`attribute_value`] reads it.
    pub(crate) fn attribute_value<T: FromStr>(&self, name: &str) -> Option<T> {
        self.attribute_value_at(&[name])
    }

    /// The attribute at `parts` joined by `/` holding one number.
    pub(crate) fn attribute_value_at<T: FromStr>(&self, parts: &[&str]) -> Option<T> {
        self.attribute_at(parts)?.trim().parse().ok()
    }

    /// The whole file at `parts` joined by `/`, read to its end as [`read_text`] does,
    /// without the trailing newline; `None` if it cannot be read.
    pub(crate) fn optional_trimmed_at(&self, parts: &[&str]) -> Option<Text> {
        Some(self.read(parts, End::ZeroRead).ok()?.trimmed())
    }

    fn read(&self, parts: &[&str], end: End) -> io::Result<Text> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = with_relative(parts, |name| {
            rustix::fs::openat(&self.fd, name, flags, Mode::empty())
        })
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))??;
        read_fd_until(&fd, end, Position::Current)
    }

    /// Opens the file at `parts` joined by `/` to be read again and again (see [`KeptFile`]).
    pub(crate) fn keep_open(&self, parts: &[&str]) -> io::Result<KeptFile> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = with_relative(parts, |name| {
            rustix::fs::openat(&self.fd, name, flags, Mode::empty())
        })
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))??;
        Ok(KeptFile { fd })
    }
}

/// A file opened once and read from its start at every scrape, for files that cost more to
/// open than to read. Opening a cgroup file walks its path and sets up the kernel's reader,
/// several times the cost of reading it again (`pread` at offset 0 makes the kernel show
/// the current figures afresh). Its text is read as [`read_attribute`] reads: capped,
/// non-blocking, done at the first short read.
pub(crate) struct KeptFile {
    fd: OwnedFd,
}

impl KeptFile {
    /// The file's text as it is now. A cgroup removed since the file was opened fails with
    /// `ENODEV`.
    pub(crate) fn read_whole(&self) -> io::Result<Text> {
        read_fd_until(&self.fd, End::ShortRead, Position::Start)
    }
}

/// Calls `with` with `parts` joined by `/` as a C string built on the stack, or returns
/// `None` if they do not fit (longer than any sysfs name) or hold a NUL.
fn with_relative<R>(parts: &[&str], with: impl FnOnce(&CStr) -> R) -> Option<R> {
    let mut buffer = [0u8; 256];
    let mut len = 0;
    for (index, part) in parts.iter().enumerate() {
        let separator = usize::from(index > 0);
        let end = len + separator + part.len();
        if end >= buffer.len() {
            return None;
        }
        if separator == 1 {
            buffer[len] = b'/';
        }
        buffer[len + separator..end].copy_from_slice(part.as_bytes());
        len = end;
    }
    let name = CStr::from_bytes_with_nul(&buffer[..=len]).ok()?;
    Some(with(name))
}

/// A short text formatted on the stack, for file names built from numbers (`b8:0`)
/// without a `String` each.
pub(crate) struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl StackText {
    /// `args` formatted, or `None` if longer than 64 bytes.
    pub(crate) fn format(args: std::fmt::Arguments<'_>) -> Option<Self> {
        let mut text = Self {
            bytes: [0; 64],
            len: 0,
        };
        std::fmt::Write::write_fmt(&mut text, args).ok()?;
        Some(text)
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole `str`s are written, so this is always valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The entries of a directory whose names match `accept`, sorted by name (see
/// [`natural_cmp`]) unless listed unordered, with the directory kept open to read below them. Names and their
/// order live in pooled buffers.
pub(crate) struct Entries {
    dir: AttributeDir,
    names: Text,
    ranges: Vec<(u32, u32)>,
}

impl Entries {
    /// Lists `path`; a missing directory is [`CollectError::NoData`], another failure an
    /// error that names it.
    pub(crate) fn list(path: &Path, accept: impl Fn(&str) -> bool) -> Result<Self, CollectError> {
        Self::try_list(path, accept, true).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => CollectError::NoData,
            _ => failed(path, error),
        })
    }

    /// Lists `path` as [`Entries::list`] does, but leaves the names in the directory's own
    /// order: for a caller that finds its names in a table of its own and sorts only when
    /// they change.
    pub(crate) fn list_unordered(
        path: &Path,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Self, CollectError> {
        Self::try_list(path, accept, false).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => CollectError::NoData,
            _ => failed(path, error),
        })
    }

    fn try_list(path: &Path, accept: impl Fn(&str) -> bool, sorted: bool) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = pool::bytes();
        let mut ranges = pool::ranges();
        // getdents64 writes into this; 8 KiB holds a couple of hundred sysfs entries, so
        // most directories take one call and one more that says there is no more.
        let mut buffer = [MaybeUninit::<u8>::uninit(); 8192];
        let mut raw = rustix::fs::RawDir::new(&fd, &mut buffer);
        while let Some(entry) = raw.next() {
            // A failing `getdents` ends the listing with what it gave so far, as
            // `std::fs::read_dir` did.
            let Ok(entry) = entry else {
                break;
            };
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." || !accept(name) {
                continue;
            }
            let (Ok(start), Ok(end)) = (
                u32::try_from(names.len()),
                u32::try_from(names.len() + name.len()),
            ) else {
                break;
            };
            names.extend_from_slice(name.as_bytes());
            ranges.push((start, end));
        }
        // Names are whole UTF-8 strings end to end, so this never fails.
        let names = match String::from_utf8(names) {
            Ok(names) => Text(names),
            Err(error) => {
                pool::give_bytes(error.into_bytes());
                Text::default()
            }
        };
        let text = &*names;
        let name = |&(start, end): &(u32, u32)| &text[start as usize..end as usize];
        // Names in one directory are unique; the byte order breaks ties of `natural_cmp`
        // (`cpu01` and `cpu1`) so the order never depends on the directory's.
        if sorted {
            ranges.sort_unstable_by(|a, b| {
                natural_cmp(name(a), name(b)).then_with(|| name(a).cmp(name(b)))
            });
        }
        Ok(Self {
            dir: AttributeDir { fd },
            names,
            ranges,
        })
    }

    /// The names, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.ranges
            .iter()
            .map(|&(start, end)| &self.names[start as usize..end as usize])
    }

    /// Whether `name` is one of the entries (a scan: for the rare question).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names().any(|entry| entry == name)
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The listed directory, to open or read what is below its entries.
    pub(crate) fn dir(&self) -> &AttributeDir {
        &self.dir
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        pool::give_ranges(std::mem::take(&mut self.ranges));
    }
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
    fn a_dropped_text_gives_its_buffer_to_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meminfo");
        std::fs::write(&path, "MemTotal: 1 kB\n").unwrap();
        let first = read_text(&path).unwrap();
        let buffer = first.as_ptr();
        drop(first);
        let second = read_text(&path).unwrap();
        assert_eq!(second.as_ptr(), buffer, "the pooled buffer is reused");
        assert_eq!(second, "MemTotal: 1 kB\n");
    }

    #[test]
    fn entries_come_sorted_and_are_read_below() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cpu10", "cpu2", "cpu1", "other"] {
            std::fs::create_dir_all(dir.path().join(name).join("topology")).unwrap();
            std::fs::write(
                dir.path().join(name).join("topology/core_id"),
                format!("{name}\n"),
            )
            .unwrap();
        }
        let entries = Entries::list(dir.path(), |name| name.starts_with("cpu")).unwrap();
        let names: Vec<&str> = entries.names().collect();
        assert_eq!(names, ["cpu1", "cpu2", "cpu10"]);
        let core = entries.dir().attribute_at(&["cpu10", "topology/core_id"]);
        assert_eq!(core.as_deref(), Some("cpu10"));
        let cpu2 = entries.dir().open_at(&["cpu2"]).unwrap();
        assert_eq!(cpu2.attribute("topology/core_id").as_deref(), Some("cpu2"));
        assert!(entries.dir().open_at(&["cpu3"]).is_none());
        assert!(matches!(
            Entries::list(&dir.path().join("missing"), |_| true),
            Err(CollectError::NoData)
        ));
    }

    #[test]
    fn stack_text_holds_short_names_only() {
        let name = StackText::format(format_args!("b{}:{}", 259, 0)).unwrap();
        assert_eq!(name.as_str(), "b259:0");
        assert!(StackText::format(format_args!("{}", "x".repeat(65))).is_none());
    }

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut names = vec!["cpu10", "cpu2", "cpu1", "eth0", "cpu"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["cpu", "cpu1", "cpu2", "cpu10", "eth0"]);
    }
}
