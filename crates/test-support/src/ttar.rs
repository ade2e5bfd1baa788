//! Unpacking `ttar` archives: the plain-text tree format node_exporter keeps its sysfs and
//! udev fixtures in (`Directory:`, `Path:` with `Lines:` of content, `SymlinkTo:`,
//! `Mode:`). Sysfs is mostly symbolic links and files git would mangle, which is why the
//! fixtures travel as text.
//!
//! Content lines follow ttar's escapes: a line ending in `EOF` had no newline, `NULLBYTE`
//! stands for a zero byte, and a backslash keeps either word literal.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// Unpacks `archive` under `into`; paths in the archive are relative to `into`.
pub fn extract(archive: &Path, into: &Path) -> io::Result<()> {
    let text = fs::read_to_string(archive)?;
    let bad = |line: usize, why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}:{line}: {why}", archive.display()),
        )
    };
    let mut lines = text.lines().enumerate().map(|(n, l)| (n + 1, l));
    let mut path = into.to_path_buf();
    while let Some((number, line)) = lines.next() {
        let (key, value) = match line.split_once(": ") {
            Some(pair) => pair,
            None if line.starts_with('#') || line.is_empty() => continue,
            None => return Err(bad(number, "expected `Key: value`")),
        };
        match key {
            "Directory" => {
                path = into.join(value);
                fs::create_dir_all(&path)?;
            }
            "Path" => path = into.join(value),
            "Lines" => {
                let count: usize = value.parse().map_err(|_| bad(number, "bad line count"))?;
                let mut content = Vec::new();
                for _ in 0..count {
                    let (_, line) = lines.next().ok_or_else(|| bad(number, "archive ends"))?;
                    content.extend(unescape(line));
                }
                fs::write(&path, content)?;
            }
            "SymlinkTo" => symlink(value, &path)?,
            "Mode" => {
                let mode = u32::from_str_radix(value, 8).map_err(|_| bad(number, "bad mode"))?;
                // Owner read and write stay, so a test run as any user can clean up.
                let mode = mode | 0o600 | if path.is_dir() { 0o700 } else { 0 };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            }
            _ if key.starts_with('#') => {}
            _ => return Err(bad(number, "unknown keyword")),
        }
    }
    Ok(())
}

/// One content line as bytes: `NULLBYTE` and a trailing unescaped `EOF` decoded, the
/// newline added unless the line ended in `EOF`.
fn unescape(line: &str) -> Vec<u8> {
    let (body, newline) = match line.strip_suffix("EOF") {
        Some(body) if !body.ends_with('\\') => (body, false),
        _ => (line, true),
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    let mut rest = body;
    while let Some(at) = rest.find("NULLBYTE") {
        let (before, after) = rest.split_at(at);
        if let Some(kept) = before.strip_suffix('\\') {
            out.extend(kept.as_bytes());
            out.extend(b"NULLBYTE");
        } else {
            out.extend(before.as_bytes());
            out.push(0);
        }
        rest = &after["NULLBYTE".len()..];
    }
    out.extend(rest.replace("\\EOF", "EOF").as_bytes());
    if newline {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lines_decode_ttar_escapes() {
        assert_eq!(unescape("clean"), b"clean\n");
        assert_eq!(unescape("104857600EOF"), b"104857600");
        assert_eq!(unescape("a\\EOF"), b"aEOF\n");
        assert_eq!(unescape("aNULLBYTEb"), b"a\0b\n");
        assert_eq!(unescape("a\\NULLBYTEb"), b"aNULLBYTEb\n");
    }

    #[test]
    fn unpacks_directories_files_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.ttar");
        fs::write(
            &archive,
            "# Archive created by ttar\nDirectory: t\nMode: 755\n# ttar - - -\n\
             Path: t/f\nLines: 2\none\ntwoEOF\nMode: 444\n# ttar - - -\n\
             Path: t/l\nSymlinkTo: f\n# ttar - - -\nPath: t/empty\nLines: 0\nMode: 644\n",
        )
        .unwrap();
        let out = dir.path().join("out");
        extract(&archive, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("t/f")).unwrap(), "one\ntwo");
        assert_eq!(fs::read_link(out.join("t/l")).unwrap(), Path::new("f"));
        assert_eq!(fs::read_to_string(out.join("t/empty")).unwrap(), "");
        let mode = fs::metadata(out.join("t/f")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
