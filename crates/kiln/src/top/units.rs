//! Numbers as `kiln top` prints them: short, fixed-width friendly, SI for rates and IEC for
//! memory (as `free -h` and nvidia-smi do).

/// `37%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

/// `12.3 MB/s`.
pub fn rate(bytes_per_second: f64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut value = bytes_per_second;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `49.0 GiB`.
pub fn bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `0.42 ms`, `12 ms`.
pub fn millis(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `2s`, `1.5s`, `250ms`, as Prometheus writes durations.
pub fn duration(duration: std::time::Duration) -> String {
    if duration < std::time::Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// A bar of `width` cells, `█` for the filled share and `░` for the rest.
pub fn bar(ratio: f64, width: usize) -> String {
    let ratio = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = ((ratio * width as f64).round() as usize).min(width);
    let mut bar = "█".repeat(filled);
    bar.push_str(&"░".repeat(width - filled));
    bar
}

/// At most `width` characters, with `…` where it was cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(percent(0.374), "37%");
        assert_eq!(rate(512.0), "512 B/s");
        assert_eq!(rate(12_345_678.0), "12.3 MB/s");
        assert_eq!(rate(999_990.0), "1.0 MB/s");
        assert_eq!(bytes(52_613_349_376.0), "49.0 GiB");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(millis(0.000_42), "0.42 ms");
        assert_eq!(millis(0.0123), "12 ms");
        assert_eq!(duration(std::time::Duration::from_millis(500)), "500ms");
        assert_eq!(duration(std::time::Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(std::time::Duration::from_secs(2)), "2s");
        assert_eq!(bar(0.87, 10), "█████████░");
        assert_eq!(bar(f64::NAN, 4), "░░░░");
        assert_eq!(fit("NVIDIA A100-SXM4-40GB", 10), "NVIDIA A1…");
    }
}
