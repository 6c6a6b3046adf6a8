//! The `card` detector: payment card numbers of the major brands (Visa,
//! Mastercard incl. the 2-series, American Express, Discover, JCB, Diners
//! Club, UnionPay), compact or grouped with spaces or dashes, that pass both
//! the brand prefix/length table and the Luhn checksum.
//!
//! Grouped numbers use one separator kind throughout (`4111 1111 1111 1111`,
//! `4111-1111-1111-1111`, Amex `3782 822463 10005`). When a candidate has
//! trailing groups that are not part of the card (`4111 1111 1111 1111 2025`),
//! shorter prefixes of whole groups are tried.

use regex::bytes::Regex;

use super::{builtin_regex, collect_digits, isolated, scan, Found};
use crate::validate::{card_brand_valid, luhn_valid};
use crate::MaskError;

const PATTERN: &str = r"\b(?:\d{4}(?:-\d{4}){2,3}(?:-\d{1,4})?|\d{4}(?: \d{4}){2,3}(?: \d{1,4})?|\d{4}-\d{6}-\d{4,5}|\d{4} \d{6} \d{4,5}|\d{13,19})\b";

/// Most groups the pattern can produce.
const MAX_GROUPS: usize = 5;

pub(crate) struct CardDetector {
    regex: Regex,
}

impl CardDetector {
    pub fn new() -> Result<CardDetector, MaskError> {
        Ok(CardDetector {
            regex: builtin_regex("card", PATTERN)?,
        })
    }

    pub fn find(&self, haystack: &[u8], from: usize, out: &mut Vec<Found>) {
        scan(
            &self.regex,
            haystack,
            from,
            |start, end| check(haystack, start, end),
            out,
        );
    }
}

fn check(haystack: &[u8], start: usize, end: usize) -> Option<Found> {
    let candidate = haystack.get(start..end)?;
    // End offsets (relative to `start`) of each digit group.
    let mut group_ends = [0usize; MAX_GROUPS];
    let mut groups = 0;
    for (index, &byte) in candidate.iter().enumerate() {
        let next_is_digit = candidate.get(index + 1).is_some_and(u8::is_ascii_digit);
        if byte.is_ascii_digit() && !next_is_digit {
            *group_ends.get_mut(groups)? = index + 1;
            groups += 1;
        }
    }
    let before_glued = start
        .checked_sub(1)
        .and_then(|index| haystack.get(index))
        .is_some_and(|&byte| byte == b'-' || byte == b'.')
        && start
            .checked_sub(2)
            .and_then(|index| haystack.get(index))
            .is_some_and(u8::is_ascii_alphanumeric);
    if before_glued {
        return None;
    }
    for used in (1..=groups).rev() {
        let length = *group_ends.get(used - 1)?;
        let prefix = candidate.get(..length)?;
        let mut buffer = [0u8; 19];
        let Some(digits) = collect_digits(prefix, &mut buffer) else {
            continue;
        };
        if digits.len() < 13 {
            break;
        }
        // The full candidate must not be glued to a following word; a
        // shortened one ends at a separator by construction.
        if used == groups && !isolated(haystack, start, end) {
            continue;
        }
        if card_brand_valid(digits) && luhn_valid(digits) {
            return Some(Found::new(start, start + length));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = CardDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, 0, out))
    }

    #[test]
    fn catches_brands_and_formats() {
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555 5555 5555 4444",
            "2223 0031 2200 3222",
            "378282246310005",
            "3782 822463 10005",
            "6011 1111 1111 1117",
            "3530 1113 3330 0000",
            "30569309025904",
            "3056 930902 5904",
            "6200 0000 0000 0005",
            "4222222222222",
        ] {
            assert_eq!(found(&format!("paid with {card}.")), [card], "{card}");
        }
    }

    #[test]
    fn trailing_group_is_dropped() {
        assert_eq!(found("4111 1111 1111 1111 2025"), ["4111 1111 1111 1111"]);
        assert_eq!(
            found("ref 1234 4111 1111 1111 1111"),
            ["4111 1111 1111 1111"]
        );
    }

    #[test]
    fn ignores_look_alikes() {
        for text in [
            "4111111111111112",
            "1234567812345678",
            "4111 1111-1111 1111",
            "order 41111111111111110",
            "x4111111111111111",
            "ID-4111-1111-1111-1111",
            "5655 5555 5555 4444",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
