//! Reading the JSON fixtures of node_exporter's qdisc and wifi collectors
//! (`--collector.qdisc.fixtures`, `--collector.wifi.fixtures`) as Go's `encoding/json` fills
//! a struct from them: keys match field names regardless of case, a missing key or `null`
//! leaves the zero value, and byte slices (hardware addresses) are base64 text.

use serde_json::Value;

/// The value of `name` in `object`: the key spelled exactly so, else one that differs only
/// in case.
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name)
        .or_else(|| {
            map.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        })
        .filter(|value| !value.is_null())
}

/// An unsigned number of at most `bits` bits; 0 when absent.
pub(crate) fn uint(object: &Value, name: &str, bits: u32) -> Result<u64, String> {
    let Some(value) = field(object, name) else {
        return Ok(0);
    };
    value
        .as_u64()
        .filter(|&n| bits >= 64 || n < 1 << bits)
        .ok_or_else(|| format!("{name}: {value} is not a uint{bits}"))
}

/// A signed 64-bit number; 0 when absent.
pub(crate) fn int(object: &Value, name: &str) -> Result<i64, String> {
    let Some(value) = field(object, name) else {
        return Ok(0);
    };
    value
        .as_i64()
        .ok_or_else(|| format!("{name}: {value} is not an int64"))
}

/// A string; empty when absent.
pub(crate) fn string(object: &Value, name: &str) -> Result<String, String> {
    let Some(value) = field(object, name) else {
        return Ok(String::new());
    };
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{name}: {value} is not a string"))
}

/// A byte slice, written as standard base64 with padding; empty when absent.
pub(crate) fn bytes(object: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = string(object, name)?;
    base64(&text).ok_or_else(|| format!("{name}: {text:?} is not base64"))
}

/// Decodes standard base64 (`A-Z a-z 0-9 + /`, `=` padding to a multiple of four).
fn base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    // Go's decoder reads past line breaks.
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let quads = clean.len() / 4;
    for (index, quad) in clean.chunks(4).enumerate() {
        let padding = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != quads) {
            return None;
        }
        let mut bits = 0u32;
        for &c in &quad[..4 - padding] {
            bits = bits << 6 | sextet(c)?;
        }
        bits <<= 6 * padding as u32;
        let three = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&three[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_regardless_of_case_and_absent_ones_are_zero() {
        let object: Value =
            serde_json::from_str(r#"{"ifacename": "eth0", "Bytes": 83, "Drops": null}"#).unwrap();
        assert_eq!(string(&object, "IfaceName").unwrap(), "eth0");
        assert_eq!(uint(&object, "Bytes", 64).unwrap(), 83);
        assert_eq!(uint(&object, "Drops", 32).unwrap(), 0);
        assert_eq!(uint(&object, "Qlen", 32).unwrap(), 0);
        assert!(uint(&object, "Bytes", 4).is_err());
        assert!(uint(&object, "IfaceName", 32).is_err());
        assert_eq!(int(&object, "Bytes").unwrap(), 83);
    }

    #[test]
    fn base64_as_go_writes_byte_slices() {
        assert_eq!(
            base64("ABEiM0RV").unwrap(),
            [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert_eq!(
            base64("qrvM3e7/").unwrap(),
            [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        );
        assert_eq!(base64("AQ==").unwrap(), [1]);
        assert_eq!(base64("AQI=").unwrap(), [1, 2]);
        assert_eq!(base64("").unwrap(), Vec::<u8>::new());
        assert_eq!(base64("AQ"), None);
        assert_eq!(base64("AQ==AQ=="), None);
        assert_eq!(base64("A*=="), None);
    }
}
