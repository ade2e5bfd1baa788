//! Numbers read exactly as graphite_exporter reads them (Go's `strconv.ParseFloat`), so a
//! line it accepts is accepted here and a line it rejects is rejected here.
//!
//! Go accepts more than Rust's `f64::from_str` in some ways (digit-separating underscores,
//! hexadecimal floats) and less in others (no sign on `NaN`, overflow is an error rather
//! than infinity), so the syntax is checked here and only the decimal conversion itself is
//! left to the standard library.

/// Parses `text` as Go's `strconv.ParseFloat(text, 64)` does; `None` where Go returns an
/// error (bad syntax, or a finite literal too large for an `f64`).
pub fn parse_float(text: &str) -> Option<f64> {
    if let Some(special) = special(text) {
        return Some(special);
    }
    let bytes = text.as_bytes();
    let (negative, body) = match bytes.first()? {
        b'+' => (false, &bytes[1..]),
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let value = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        hexadecimal(&body[2..])?
    } else {
        decimal(body)?
    };
    Some(if negative { -value } else { value })
}

/// `Inf`, `+Infinity`, `-inf`, `NaN` in any case; a sign is allowed on infinities only.
fn special(text: &str) -> Option<f64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1.0, &text[1..]),
        b'-' => (-1.0, &text[1..]),
        _ => (1.0, text),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    (rest.len() == text.len() && rest.eq_ignore_ascii_case("nan")).then_some(f64::NAN)
}

/// A decimal literal without its sign: digits with at most one point, then an optional
/// exponent; underscores only between digits.
fn decimal(body: &[u8]) -> Option<f64> {
    let mut digits = 0;
    let mut seen_point = false;
    let mut index = 0;
    while index < body.len() {
        match body[index] {
            b'0'..=b'9' => digits += 1,
            b'_' => {}
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        index += 1;
    }
    if digits == 0 {
        return None;
    }
    if index < body.len() {
        index += 1;
        if let Some(b'+' | b'-') = body.get(index) {
            index += 1;
        }
        let exponent = &body[index..];
        if !exponent.iter().any(u8::is_ascii_digit)
            || !exponent.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        {
            return None;
        }
    }
    // The syntax is Go's; what is left is what Rust reads the same way (once any
    // underscores, which Rust does not take, are checked and removed).
    let value: f64 = if body.contains(&b'_') {
        if !underscores_separate_digits(body, false) {
            return None;
        }
        let cleaned: String = body
            .iter()
            .filter(|c| **c != b'_')
            .map(|c| char::from(*c))
            .collect();
        cleaned.parse().ok()?
    } else {
        std::str::from_utf8(body).ok()?.parse().ok()?
    };
    // Go reports a finite literal that rounds to infinity as out of range.
    value.is_finite().then_some(value)
}

/// A hexadecimal literal after `0x`: hex digits with at most one point, then a mandatory
/// binary exponent `p±N`.
fn hexadecimal(body: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut seen_point = false;
    let mut index = 0;
    while index < body.len() {
        let c = body[index];
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'_' => {
                index += 1;
                continue;
            }
            b'.' if !seen_point => {
                seen_point = true;
                index += 1;
                continue;
            }
            b'p' | b'P' => break,
            _ => return None,
        };
        digits += 1;
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | u64::from(digit);
            if seen_point {
                exponent -= 4;
            }
        } else if !seen_point {
            // Digits beyond what a u64 holds only scale the value.
            exponent += 4;
        }
        index += 1;
    }
    if digits == 0 || index >= body.len() {
        return None;
    }
    index += 1;
    let negative_exponent = match body.get(index) {
        Some(b'-') => {
            index += 1;
            true
        }
        Some(b'+') => {
            index += 1;
            false
        }
        _ => false,
    };
    let mut binary: i64 = 0;
    let mut exponent_digits = 0;
    for &c in &body[index..] {
        match c {
            b'0'..=b'9' => {
                exponent_digits += 1;
                binary = (binary * 10 + i64::from(c - b'0')).min(100_000);
            }
            b'_' => {}
            _ => return None,
        }
    }
    if exponent_digits == 0 {
        return None;
    }
    if body.contains(&b'_') && !underscores_separate_digits(body, true) {
        return None;
    }
    let scale = exponent + if negative_exponent { -binary } else { binary };
    let value = mantissa as f64 * 2f64.powi(scale.clamp(-2000, 2000) as i32);
    value.is_finite().then_some(value)
}

/// Go's rule for underscores in number literals: each one sits between two digits (or
/// after the base prefix, which `after_prefix` says was there).
fn underscores_separate_digits(body: &[u8], after_prefix: bool) -> bool {
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let mut saw = if after_prefix { Saw::Digit } else { Saw::Start };
    for &c in body {
        let is_digit = c.is_ascii_digit() || (after_prefix && c.is_ascii_hexdigit());
        if is_digit {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else {
            if saw == Saw::Underscore {
                return false;
            }
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_go_accepts() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-3", 0.0025),
            ("1_000", 1000.0),
            ("1_000.000_1", 1000.0001),
            ("0x1p-2", 0.25),
            ("0X1.8P1", 3.0),
            ("0x_1p0", 1.0),
            ("12.00", 12.0),
            ("0.34", 0.34),
            ("1e-400", 0.0),
            ("007", 7.0),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_float(text), Some(want), "{text}");
        }
    }

    #[test]
    fn specials_follow_go() {
        for text in ["Inf", "+Inf", "inf", "INFINITY", "+infinity", "Infinity"] {
            assert_eq!(parse_float(text), Some(f64::INFINITY), "{text}");
        }
        for text in ["-Inf", "-inf", "-Infinity"] {
            assert_eq!(parse_float(text), Some(f64::NEG_INFINITY), "{text}");
        }
        for text in ["NaN", "nan", "NAN"] {
            assert!(parse_float(text).is_some_and(f64::is_nan), "{text}");
        }
        for text in ["+NaN", "-nan", "infin", "infinityy", "nana"] {
            assert_eq!(parse_float(text), None, "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in [
            "",
            "+",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1,5",
            "0x",
            "0x1",
            "0x1.8",
            "0xp1",
            "_1",
            "1_",
            "1__0",
            "1_.5",
            "1._5",
            "1e_5",
            "abc",
            "1 ",
            " 1",
            "1e400",
            "-1e400",
            "0x1p99999",
            "1f",
            "--1",
        ] {
            assert_eq!(parse_float(text), None, "{text:?}");
        }
    }
}
