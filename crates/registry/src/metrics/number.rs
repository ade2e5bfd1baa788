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
    if !text.contains(['\\', '\n', '"']) {
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
    use std::fmt::Write as _;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
    } else if value.fract() == 0.0 && value.abs() < 1e6 {
        // Small integers, the most common value, without the float machinery.
        let _ = write!(out, "{}", value as i64);
    } else {
        // Rust's `{:e}` gives the shortest digits that round-trip, as Go's 'g' does; only
        // where the point goes differs. Formatted on the stack: this runs per sample.
        let mut scientific = StackText::default();
        let _ = write!(scientific, "{value:e}");
        let text = scientific.as_str();
        let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if !(-4..6).contains(&exp) {
            out.push_str(mantissa);
            let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
            return;
        }
        let (sign, mantissa) = match mantissa.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", mantissa),
        };
        out.push_str(sign);
        let digits = mantissa.bytes().filter(u8::is_ascii_digit);
        let count = mantissa.bytes().filter(u8::is_ascii_digit).count() as i32;
        if exp < 0 {
            out.push_str("0.");
            (1..-exp).for_each(|_| out.push('0'));
            digits.for_each(|d| out.push(char::from(d)));
        } else {
            for (i, d) in digits.enumerate() {
                if i as i32 == exp + 1 {
                    out.push('.');
                }
                out.push(char::from(d));
            }
            (count..=exp).for_each(|_| out.push('0'));
        }
    }
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

/// A small formatting buffer on the stack (a float in `{:e}` form needs at most 24 bytes).
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let target = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        target.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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
