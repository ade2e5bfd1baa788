//! Log output in the two formats Prometheus exporters use: logfmt and JSON, one event a line,
//! `time`, `level`, `source`, `msg` first and the event's fields after.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::flags::{LogFormat, LogLevel};

/// Installs the global logger. Later calls (tests starting several exporters) are no-ops.
pub fn init(level: LogLevel, format: LogFormat) {
    // Fails only when a logger is already set, which is fine.
    let _ = tracing::subscriber::set_global_default(subscriber(level, format, std::io::stderr));
}

/// The logger [`init`] installs, writing to `writer`.
fn subscriber<W>(level: LogLevel, format: LogFormat, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let max = match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    };
    tracing_subscriber::fmt()
        .with_max_level(max)
        .with_writer(writer)
        .event_format(LineFormat { format })
        .finish()
        .with(OtherCratesLimit::default())
}

/// How often one call site in a library we use may log.
const OTHER_CRATES_INTERVAL: Duration = Duration::from_secs(60);

/// Lets each call site outside Kiln's own crates log at most once per
/// [`OTHER_CRATES_INTERVAL`]. Our own messages are rate-limited where they are logged; a
/// library's are not (a DNS resolver warns about every malformed answer it receives, which a
/// hostile name server can send as fast as it likes), so they are limited here.
#[derive(Debug, Default)]
struct OtherCratesLimit {
    last: Mutex<HashMap<Identifier, Instant>>,
}

impl OtherCratesLimit {
    fn allow(&self, meta: &Metadata<'_>, now: Instant) -> bool {
        if meta.target().starts_with("kiln") {
            return true;
        }
        // Call sites are static, so this table holds at most one entry per one of them.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(&meta.callsite()) {
            Some(&at) if now.saturating_duration_since(at) < OTHER_CRATES_INTERVAL => false,
            _ => {
                last.insert(meta.callsite(), now);
                true
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for OtherCratesLimit {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        self.allow(event.metadata(), Instant::now())
    }
}

/// Formats one event as a logfmt or JSON line.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    format: LogFormat,
}

impl LineFormat {
    /// A formatter for `format`.
    pub const fn new(format: LogFormat) -> Self {
        Self { format }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let level = meta.level().as_str().to_ascii_lowercase();
        let time = rfc3339_millis(SystemTime::now());
        let pairs = [
            ("time", time.as_str()),
            ("level", level.as_str()),
            ("source", meta.target()),
            ("msg", fields.message.as_str()),
        ];
        let all = pairs
            .iter()
            .copied()
            .chain(fields.rest.iter().map(|(k, v)| (*k, v.as_str())));
        let mut line = String::with_capacity(160);
        match self.format {
            LogFormat::Logfmt => {
                for (i, (key, value)) in all.enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(key);
                    line.push('=');
                    push_logfmt_value(&mut line, value);
                }
            }
            LogFormat::Json => {
                line.push('{');
                for (i, (key, value)) in all.enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&serde_json::Value::from(key).to_string());
                    line.push(':');
                    line.push_str(&serde_json::Value::from(value).to_string());
                }
                line.push('}');
            }
        }
        writeln!(writer, "{line}")
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.rest.push((field.name(), value));
        }
    }
}

/// Quotes a value when logfmt needs it: empty, or containing space, `=`, `"` or control characters.
fn push_logfmt_value(out: &mut String, value: &str) {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// UTC time as `2006-01-02T15:04:05.000Z`.
fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339_millis(leap)[..10], "2000-02-29");
    }

    /// Collects what the logger writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_librarys_repeated_warning_is_logged_once_a_minute_and_ours_every_time() {
        let captured = Captured::default();
        let writer = captured.clone();
        let logger = subscriber(LogLevel::Info, LogFormat::Logfmt, move || writer.clone());
        tracing::subscriber::with_default(logger, || {
            for _ in 0..50 {
                // As a resolver reports each malformed answer a name server sends.
                tracing::warn!(target: "hickory_proto::udp::udp_client_stream", "malformed DNS message");
                tracing::warn!(target: "kiln_ping::dns", "resolving failed");
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("malformed DNS message").count(), 1, "{text}");
        assert_eq!(text.matches("resolving failed").count(), 50);
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        let mut s = String::new();
        push_logfmt_value(&mut s, "plain");
        s.push(' ');
        push_logfmt_value(&mut s, "two words \"q\"\n");
        s.push(' ');
        push_logfmt_value(&mut s, "");
        assert_eq!(s, r#"plain "two words \"q\"\n" """#);
    }
}
