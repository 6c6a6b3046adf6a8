//! The `phone` detector: telephone numbers in E.164 (`+14155552671`),
//! international (`+44 20 7946 0958`, `+1 (415) 555-2671`, `0044 20 7946 0958`), North American
//! national (`(415) 555-2671`, `415-555-2671`, `415.555.2671`) and
//! trunk-prefix national (`020 7946 0958`, `01 23 45 67 89`) formats.
//!
//! The trunk `0` is followed by 1-9 (`00` starts an international prefix).
//! Numbers must have the right digit count (9-15 for `+` forms, per E.164;
//! 10-11 for national forms). North American numbers must follow the
//! numbering plan (area code and exchange start with 2-9), so `123-456-7890`
//! style placeholders and ranges are not phones. A bare run of ten digits is
//! not a phone (it is far more often an id).

use regex::bytes::Regex;

use super::{builtin_regex, collect_digits, is_word, isolated, scan, Found};
use crate::MaskError;

const PATTERN: &str = concat!(
    // International, `+` or `00` and country code, then up to six groups.
    r"(?:\+|\b00)[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}",
    // North American numbering plan.
    r"|(?:\b1[ .\-])?(?:\(\d{3}\)[ .\-]?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}\b",
    // National with a trunk `0` (UK, DE, …).
    r"|\b0[1-9]\d{0,3}[ \-]\d{3,4}[ \-]?\d{3,4}\b",
    // National in pairs (FR).
    r"|\b0[1-9](?:[ .]\d{2}){4}\b",
);

pub(crate) struct PhoneDetector {
    regex: Regex,
}

impl PhoneDetector {
    pub fn new() -> Result<PhoneDetector, MaskError> {
        Ok(PhoneDetector {
            regex: builtin_regex("phone", PATTERN)?,
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
    let mut buffer = [0u8; 40];
    let digits = collect_digits(candidate, &mut buffer)?;
    if candidate.first() == Some(&b'+') || candidate.starts_with(b"00") {
        return check_international(haystack, start, end);
    }
    match candidate.first()? {
        b'0' => {
            // National with a trunk prefix: `0` then 1-9 (`00` is an
            // international call prefix, `000 000 0000` is not a number).
            let trunk_ok = matches!(candidate.get(1), Some(b'1'..=b'9'));
            (trunk_ok && isolated(haystack, start, end) && (10..=11).contains(&digits.len()))
                .then(|| Found::new(start, end))
        }
        _ => {
            // North American: optional leading 1, then NPA-NXX-XXXX.
            let national = match digits.len() {
                10 => digits,
                11 if digits.first() == Some(&b'1') => digits.get(1..)?,
                _ => return None,
            };
            let area_ok = matches!(national.first(), Some(b'2'..=b'9'));
            let exchange_ok = matches!(national.get(3), Some(b'2'..=b'9'));
            (area_ok && exchange_ok && isolated(haystack, start, end))
                .then(|| Found::new(start, end))
        }
    }
}

fn check_international(haystack: &[u8], start: usize, end: usize) -> Option<Found> {
    let before = start.checked_sub(1).and_then(|index| haystack.get(index));
    if before.is_some_and(|&byte| is_word(byte) || byte == b'+') {
        return None;
    }
    // Try the whole candidate, then without trailing groups, until the
    // digit count fits E.164.
    let mut end = end;
    loop {
        let candidate = haystack.get(start..end)?;
        let mut buffer = [0u8; 40];
        let mut digits = collect_digits(candidate, &mut buffer)?.len();
        if candidate.starts_with(b"00") {
            // The `00` call prefix is not part of the E.164 number.
            digits = digits.saturating_sub(2);
        }
        if digits < 9 {
            return None;
        }
        let glued_after = haystack.get(end).is_some_and(|&byte| is_word(byte));
        if digits <= 15
            && !glued_after
            && candidate
                .last()
                .is_some_and(|byte| byte.is_ascii_digit() || *byte == b')')
        {
            return Some(Found::new(start, end));
        }
        // Drop the last group and its separator.
        let last_separator = candidate
            .iter()
            .rposition(|byte| matches!(byte, b' ' | b'.' | b'-' | b'('))?;
        end = start + last_separator;
        if candidate.get(last_separator) == Some(&b'(') {
            // `+1 (415)`: also drop the separator before the parenthesis.
            let trimmed = haystack.get(start..end)?;
            if trimmed
                .last()
                .is_some_and(|byte| matches!(byte, b' ' | b'.' | b'-'))
            {
                end -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = PhoneDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, 0, out))
    }

    #[test]
    fn catches() {
        for phone in [
            "+14155552671",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "+44 20 7946 0958",
            "+1 (415) 555-2671",
            "+1-415-555-2671",
            "1-415-555-2671",
            "+33 1 23 45 67 89",
            "020 7946 0958",
            "01 23 45 67 89",
            "0044 20 7946 0958",
        ] {
            assert_eq!(found(&format!("call {phone} today")), [phone], "{phone}");
        }
    }

    #[test]
    fn ignores() {
        for text in [
            "123-456-7890",
            "415-155-2671",
            "4155552671",
            "ORD-415-555-2671",
            "2024-03-15 12:34:56",
            "+12345",
            "v2.415.555.2671",
            "192.168.100.200",
            "$ 415 555",
            "amount 000 000 0000",
            "00 44 20 7946 0958 0000",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
