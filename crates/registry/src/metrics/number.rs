//! Numbers and escaped text as the Go client writes them, so output matches the upstream
//! exporters byte for byte.

/// Appends a label value escaped for the text format (`\`, `"` and newlines), without the
/// quotes; for exporters that write exposition text themselves.
pub fn write_label_value(out: &mut String, value: &str) {
    escape_into(out, value, true);
}

/// Appends HELP text escaped for the text format (`\` and newlines).
pub fn write_help(out: &mut String, help: &str) {
    escape_into(out, help, false);
}

/// Escapes `\` and newlines, and with `quote` also `"`.
pub(super) fn escape_into(out: &mut String, text: &str, quote: bool) {
    // Most text needs no escape; finding that out is one scan, vectorised for long text
    // (label values are mostly a few bytes, where a plain loop is quicker).
    let bytes = text.as_bytes();
    let special = match (bytes.len() < 32, quote) {
        (true, true) => bytes.iter().any(|b| matches!(b, b'\\' | b'\n' | b'"')),
        (true, false) => bytes.iter().any(|b| matches!(b, b'\\' | b'\n')),
        (false, true) => memchr::memchr3(b'\\', b'\n', b'"', bytes).is_some(),
        (false, false) => memchr::memchr2(b'\\', b'\n', bytes).is_some(),
    };
    if !special {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes a number as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does: the shortest
/// digits that round-trip, in exponent form when the exponent is below -4 or at least 6
/// (`1.527808e+06`, `0.28`, `2405`).
pub fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
    } else if value.fract() == 0.0 && value.abs() < 1e6 {
        // Small integers, the most common value, without the float machinery.
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        if value < 0.0 {
            out.push('-');
        }
        // ryu finds the shortest digits that round-trip, as Go's 'g' does. Between 1e-4 and
        // 1e6 both write them as plain decimals, so ryu's text is Go's; elsewhere only where
        // the point goes differs, so the digits are taken out and placed as Go places them.
        let mut shortest = ryu::Buffer::new();
        let text = shortest.format_finite(value.abs());
        if (1e-4..1e6).contains(&value.abs()) {
            out.push_str(text);
        } else {
            let (digits, point) = decimal_digits(text);
            write_go_digits(out, digits.as_slice(), point);
        }
    }
}

/// ASCII on the stack: a float's significant digits (17 at most) or its whole text (at
/// most 24 bytes, `-2.2250738585072014e-308`).
#[derive(Default)]
struct Digits {
    bytes: [u8; 32],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.push(b));
    }
}

/// Splits ryu's text (`123.45`, `1.5e-7`, `1e100`) into significant digits, without
/// leading or trailing zeros, and the position of the decimal point: the value is
/// `0.DIGITS × 10^point`.
fn decimal_digits(text: &str) -> (Digits, i32) {
    let (mantissa, exponent) = match text.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = Digits::default();
    let mut point = whole.len() as i32 + exponent;
    let mut leading = true;
    for &digit in whole.as_bytes().iter().chain(fraction.as_bytes()) {
        if leading && digit == b'0' {
            point -= 1;
            continue;
        }
        leading = false;
        digits.push(digit);
    }
    while digits.len > 1 && digits.bytes[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    (digits, point)
}

/// Writes `0.DIGITS × 10^point` as Go's shortest `'g'` format: `d.ddde±XX` when the
/// exponent is below -4 or at least 6, else plain decimal. The text is put together on the
/// stack and appended once: this runs for every non-integer sample.
fn write_go_digits(out: &mut String, digits: &[u8], point: i32) {
    let mut text = Digits::default();
    let exponent = point - 1;
    if !(-4..6).contains(&exponent) {
        text.extend(&digits[..1]);
        if digits.len() > 1 {
            text.push(b'.');
            text.extend(&digits[1..]);
        }
        text.push(b'e');
        text.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            text.push(b'0');
        }
        text.extend(itoa::Buffer::new().format(magnitude).as_bytes());
    } else if point <= 0 {
        text.extend(b"0.");
        (0..-point).for_each(|_| text.push(b'0'));
        text.extend(digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            text.extend(digits);
            (digits.len()..point).for_each(|_| text.push(b'0'));
        } else {
            text.extend(&digits[..point]);
            text.push(b'.');
            text.extend(&digits[point..]);
        }
    }
    out.push_str(std::str::from_utf8(text.as_slice()).unwrap_or_default());
}

/// Writes a number as the Go client's OpenMetrics encoder does: as [`write_float`], with
/// `.0` after an integer (`1.0`, `+Inf`, `2.5e+06`), OpenMetrics' canonical float form.
pub(super) fn write_openmetrics_float(out: &mut String, value: f64) {
    let start = out.len();
    write_float(out, value);
    if value.is_finite() && !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (2405.0, "2405"),
            (0.28, "0.28"),
            (123456.0, "123456"),
            (1527808.0, "1.527808e+06"),
            (2.70553174016e11, "2.70553174016e+11"),
            (1795252817.710389, "1.795252817710389e+09"),
            (9.223372036854776e18, "9.223372036854776e+18"),
            (0.0001, "0.0001"),
            (0.000013, "1.3e-05"),
            (-1.5, "-1.5"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (123456.5, "123456.5"),
            (100000.5, "100000.5"),
            (0.00123, "0.00123"),
            (-0.05, "-0.05"),
            (12.25, "12.25"),
            (1500.0, "1500"),
            (1e6, "1e+06"),
            (999999.0, "999999"),
            (123456789.0, "1.23456789e+08"),
            (-1234567.0, "-1.234567e+06"),
            (1e21, "1e+21"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1, "0.1"),
            (100.25, "100.25"),
            (-0.0001234, "-0.0001234"),
            (1e-5, "1e-05"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_float(&mut out, value);
            assert_eq!(out, expected, "{value}");
        }
    }

    #[test]
    fn floats_read_back_exactly() {
        let mut value = 1.234_567_890_123e-7;
        while value < 1e12 {
            for v in [value, -value, value * 3.7, 1.0 / value] {
                let mut out = String::new();
                write_float(&mut out, v);
                assert_eq!(out.parse::<f64>().ok(), Some(v), "{v} written as {out}");
            }
            value *= 1.618;
        }
    }
}
