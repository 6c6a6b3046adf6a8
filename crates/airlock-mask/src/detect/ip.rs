//! The `ip` detector: IPv4 dotted quads with every octet 0-255 and no
//! leading zeros, and IPv6 addresses that `std::net::Ipv6Addr` parses
//! (compressed `::` forms and embedded IPv4 included).
//!
//! Version strings are the known ambiguity: `1.2.3` and `v1.2.3.4` are never
//! addresses (three parts; glued to `v`), `1.2.3.4.5` is not either, and a
//! quad right after a version keyword (`version 1.2.3.4`, `build: 10.0.0.1`)
//! is treated as a version. A bare `1.2.3.4` elsewhere is a valid address
//! and is masked.

use std::net::Ipv6Addr;

use regex::bytes::Regex;

use super::{builtin_regex, is_word, isolated, scan, Found};
use crate::MaskError;

const IPV4_PATTERN: &str = r"\b(?:\d{1,3}\.){3}\d{1,3}\b";
const IPV6_PATTERN: &str = r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,8}(?:\.\d{1,3}){0,3}";

/// Words after which a dotted quad is a version number, not an address.
const VERSION_WORDS: &[&[u8]] = &[
    b"version",
    b"ver",
    b"release",
    b"build",
    b"firmware",
    b"fw",
    b"rev",
    b"v",
];

pub(crate) struct IpDetector {
    ipv4: Regex,
    ipv6: Regex,
}

impl IpDetector {
    pub fn new() -> Result<IpDetector, MaskError> {
        Ok(IpDetector {
            ipv4: builtin_regex("ip", IPV4_PATTERN)?,
            ipv6: builtin_regex("ip", IPV6_PATTERN)?,
        })
    }

    pub fn find_v4(&self, haystack: &[u8], from: usize, out: &mut Vec<Found>) {
        scan(
            &self.ipv4,
            haystack,
            from,
            |start, end| check_v4(haystack, start, end),
            out,
        );
    }

    pub fn find_v6(&self, haystack: &[u8], from: usize, out: &mut Vec<Found>) {
        scan(
            &self.ipv6,
            haystack,
            from,
            |start, end| check_v6(haystack, start, end),
            out,
        );
    }
}

fn check_v4(haystack: &[u8], start: usize, end: usize) -> Option<Found> {
    if !isolated(haystack, start, end) || after_version_word(haystack, start) {
        return None;
    }
    let candidate = haystack.get(start..end)?;
    let octets_ok = candidate.split(|&byte| byte == b'.').all(|octet| {
        let value = octet.iter().fold(0u32, |acc, &digit| {
            acc * 10 + u32::from(digit.wrapping_sub(b'0'))
        });
        !octet.is_empty() && value <= 255 && !(octet.len() > 1 && octet.first() == Some(&b'0'))
    });
    octets_ok.then(|| Found::new(start, end))
}

/// Whether the word just before `start` (skipping spaces, `:`, `=`) is a
/// version keyword.
fn after_version_word(haystack: &[u8], start: usize) -> bool {
    let Some(before) = haystack.get(..start) else {
        return false;
    };
    let trimmed_end = before
        .iter()
        .rposition(|&byte| !matches!(byte, b' ' | b':' | b'=' | b'\t'))
        .map_or(0, |index| index + 1);
    let Some(trimmed) = before.get(..trimmed_end) else {
        return false;
    };
    let word_start = trimmed
        .iter()
        .rposition(|&byte| !byte.is_ascii_alphabetic())
        .map_or(0, |index| index + 1);
    let Some(word) = trimmed.get(word_start..) else {
        return false;
    };
    VERSION_WORDS
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

fn check_v6(haystack: &[u8], start: usize, end: usize) -> Option<Found> {
    let before = start.checked_sub(1).and_then(|index| haystack.get(index));
    if before.is_some_and(|&byte| is_word(byte) || byte == b':' || byte == b'.') {
        return None;
    }
    let after = haystack.get(end);
    if after.is_some_and(|&byte| is_word(byte) || byte == b':') {
        return None;
    }
    let candidate = haystack.get(start..end)?;
    if !candidate.iter().any(u8::is_ascii_hexdigit) {
        return None;
    }
    let text = std::str::from_utf8(candidate).ok()?;
    text.parse::<Ipv6Addr>().ok()?;
    Some(Found::new(start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = IpDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| {
            detector.find_v4(bytes, 0, out);
            detector.find_v6(bytes, 0, out);
        })
    }

    #[test]
    fn catches() {
        for ip in [
            "192.168.1.23",
            "10.0.0.1",
            "255.255.255.255",
            "1.2.3.4",
            "2001:db8::1",
            "::1",
            "fe80::1ff:fe23:4567:890a",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        ] {
            assert_eq!(found(&format!("from {ip}, ok")), [ip], "{ip}");
        }
        assert_eq!(found("[2001:db8::1]:443"), ["2001:db8::1"]);
        // The embedded quad is found too; the plan keeps the longer span.
        assert_eq!(found("::ffff:192.0.2.1"), ["192.0.2.1", "::ffff:192.0.2.1"]);
    }

    #[test]
    fn ignores() {
        for text in [
            "1.2.3",
            "v1.2.3",
            "v1.2.3.4",
            "1.2.3.4.5",
            "version 1.2.3.4",
            "build: 10.0.0.1",
            "256.1.1.1",
            "01.02.03.04",
            "12:34:56",
            "std::net",
            "00:1a:2b:3c:4d:5e",
            "a::b::c",
            "::",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
        // `server` ends in `ver` but is not a version keyword.
        assert_eq!(found("server 10.0.0.1"), ["10.0.0.1"]);
    }
}
