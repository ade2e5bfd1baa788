//! `os`: the distribution from `/etc/os-release` (or `/usr/lib/os-release`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Os {
        primary: settings.paths.root("/etc/os-release"),
        fallback: settings.paths.root("/usr/lib/os-release"),
        last: Mutex::default(),
    })
}

struct Os {
    /// `/etc/os-release`.
    primary: PathBuf,
    /// `/usr/lib/os-release`, read where the former is missing.
    fallback: PathBuf,
    /// The file as last read and its fields: parsed again only when the text changes.
    last: Mutex<Release>,
}

#[derive(Default)]
struct Release {
    text: String,
    fields: HashMap<String, String>,
}

/// `node_os_info` labels and the os-release keys they come from.
const INFO_LABELS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// `KEY=value` lines, values unquoted as a shell would (os-release(5)).
fn parse(text: &str) -> HashMap<&str, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            Some((key.trim(), unquote(value.trim())))
        })
        .collect()
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        let inner = &value[1..value.len() - 1];
        if bytes[0] == b'\'' {
            return inner.to_owned();
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        return out;
    }
    value.to_owned()
}

/// The leading `major[.minor]` of `VERSION_ID` as a number.
fn version_number(version_id: &str) -> f64 {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(version_id);
    if major == 0 {
        return 0.0;
    }
    let mut end = major;
    if version_id[major..].starts_with('.') {
        end += 1 + digits(&version_id[major + 1..]);
    }
    version_id[..end]
        .trim_end_matches('.')
        .parse()
        .unwrap_or(0.0)
}

impl Collector for Os {
    fn name(&self) -> &str {
        "os"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = match read::optional_trimmed(&self.primary) {
            Some(text) => text,
            None => read::file(&self.fallback)?,
        };
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.text != *text {
            last.fields = parse(&text)
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect();
            last.text.clear();
            last.text.push_str(&text);
        }
        let release = &last.fields;
        let get = |key: &str| release.get(key).map(String::as_str).unwrap_or_default();
        let info = INFO_LABELS.map(|(label, key)| (label, get(key)));
        let family = out.gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        );
        out.sample(family, &info, 1.0);
        let family = out.gauge(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
        );
        out.sample(
            family,
            &[
                ("id", get("ID")),
                ("id_like", get("ID_LIKE")),
                ("name", get("NAME")),
            ],
            version_number(get("VERSION_ID")),
        );
        if let Some(end) = release.get("SUPPORT_END").and_then(|d| support_end(d)) {
            out.gauge_value(
                "node_os_support_end_timestamp_seconds",
                "Metric containing the end-of-life date timestamp of the OS.",
                end,
            );
        }
        Ok(())
    }
}

/// `SUPPORT_END=YYYY-MM-DD` as a Unix timestamp (midnight UTC).
fn support_end(date: &str) -> Option<f64> {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let release = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nNAME='Quoted'\n# comment\nX=\"a\\\"b\"\n",
        );
        assert_eq!(release["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(release["ID"], "debian");
        assert_eq!(release["NAME"], "Quoted");
        assert_eq!(release["X"], "a\"b");
    }

    #[test]
    fn versions_keep_major_and_minor() {
        assert_eq!(version_number("12"), 12.0);
        assert_eq!(version_number("22.04"), 22.04);
        assert_eq!(version_number("2023.1.20230912"), 2023.1);
        assert_eq!(version_number("rolling"), 0.0);
        assert_eq!(support_end("2028-06-30"), Some(1_845_936_000.0));
    }
}
