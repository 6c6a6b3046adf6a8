//! The `ssn` detector: US Social Security numbers in valid ranges (area not
//! 000, 666 or 900-999; group not 00; serial not 0000; the two numbers the
//! SSA voided after they were printed in advertising are excluded).
//!
//! The dashed form `123-45-6789` is detected anywhere. The undashed
//! `123456789` and spaced `123 45 6789` forms are nine digits like any order
//! number, so they count only with a context word (`ssn`, `social security`,
//! …) within 40 bytes before them.

use regex::bytes::Regex;

use super::{builtin_regex, collect_digits, context_before, isolated, scan, Found};
use crate::validate::{parse_digits, ssn_ranges_valid};
use crate::MaskError;

const PATTERN: &str = r"\b(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9})\b";

/// How far before an undashed candidate a context word may be.
const CONTEXT_WINDOW: usize = 40;

const CONTEXT_WORDS: &[&[u8]] = &[
    b"ssn",
    b"social security",
    b"soc sec",
    b"ss#",
    b"ss no",
    b"ss num",
];

pub(crate) struct SsnDetector {
    regex: Regex,
    context: Vec<Box<[u8]>>,
}

impl SsnDetector {
    pub fn new() -> Result<SsnDetector, MaskError> {
        Ok(SsnDetector {
            regex: builtin_regex("ssn", PATTERN)?,
            context: CONTEXT_WORDS.iter().map(|word| Box::from(*word)).collect(),
        })
    }

    pub fn find(&self, haystack: &[u8], from: usize, out: &mut Vec<Found>) {
        scan(
            &self.regex,
            haystack,
            from,
            |start, end| self.check(haystack, start, end),
            out,
        );
    }

    fn check(&self, haystack: &[u8], start: usize, end: usize) -> Option<Found> {
        if !isolated(haystack, start, end) {
            return None;
        }
        let candidate = haystack.get(start..end)?;
        let mut buffer = [0u8; 9];
        let digits = collect_digits(candidate, &mut buffer)?;
        let area = parse_digits(digits.get(0..3)?)?;
        let group = parse_digits(digits.get(3..5)?)?;
        let serial = parse_digits(digits.get(5..9)?)?;
        if !ssn_ranges_valid(area, group, serial)
            || matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999))
        {
            return None;
        }
        let dashed = candidate.contains(&b'-');
        if !dashed && !context_before(haystack, start, CONTEXT_WINDOW, &self.context) {
            return None;
        }
        Some(Found::new(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = SsnDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, 0, out))
    }

    #[test]
    fn catches() {
        assert_eq!(found("ssn 123-45-6789."), ["123-45-6789"]);
        assert_eq!(found("on file: 536-22-1234"), ["536-22-1234"]);
        assert_eq!(found("SSN: 536221234"), ["536221234"]);
        assert_eq!(found("Social Security No. 536 22 1234"), ["536 22 1234"]);
    }

    #[test]
    fn ignores() {
        for text in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
            "order 536221234",
            "078-05-1120",
            "A-536-22-1234",
            "536-22-1234-99",
            "2024-03-15",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
