//! The detectors: each finds candidate spans of one kind of sensitive value
//! in a byte haystack and keeps only those its validator accepts. This module
//! owns what they share: the [`Found`] span, the regex-plus-validator scan
//! loop, and boundary and context helpers.
//!
//! Detectors never allocate unless they find something, never look outside
//! the haystack they are given, and never panic: all slicing goes through
//! `get`.

pub(crate) mod card;
pub(crate) mod custom;
pub(crate) mod email;
pub(crate) mod iban;
pub(crate) mod ip;
pub(crate) mod phone;
pub(crate) mod secret;
pub(crate) mod ssn;

use regex::bytes::{Regex, RegexBuilder};

use crate::MaskError;

/// A detected span `start..end` of the haystack (byte offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    /// For secrets under the partial style: how many leading bytes of the
    /// span are a public type prefix (`ghp_`, `AKIA`) that may be shown.
    pub keep_prefix: usize,
}

impl Found {
    pub fn new(start: usize, end: usize) -> Found {
        Found {
            start,
            end,
            keep_prefix: 0,
        }
    }
}

/// Compiles a built-in pattern: ASCII-only classes (`unicode(false)`), so
/// every match starts and ends on an ASCII byte and therefore on a UTF-8
/// character boundary, and the DFA handles `\b` without falling back.
pub(crate) fn builtin_regex(detector: &'static str, pattern: &str) -> Result<Regex, MaskError> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .map_err(|error| MaskError::Builtin {
            detector,
            reason: error.to_string(),
        })
}

/// Runs `regex` over `haystack[from..]` and pushes every candidate `check`
/// accepts. Bytes before `from` are visible to `\b` and to `check` (context
/// words, boundaries).
///
/// On rejection the search resumes one byte after the candidate's start, so
/// a valid value that overlaps a rejected look-alike (for example a card
/// number right after a longer digit group) is still found. The regex engine
/// is linear-time; candidates are bounded in length by their patterns, so
/// the total work stays linear in practice.
pub(crate) fn scan(
    regex: &Regex,
    haystack: &[u8],
    from: usize,
    mut check: impl FnMut(usize, usize) -> Option<Found>,
    out: &mut Vec<Found>,
) {
    let mut position = from;
    while position <= haystack.len() {
        let Some(candidate) = regex.find_at(haystack, position) else {
            break;
        };
        let (start, end) = (candidate.start(), candidate.end());
        if start == end {
            position = end + 1;
            continue;
        }
        match check(start, end) {
            Some(found) if found.end > found.start => {
                position = found.end.max(start + 1);
                out.push(found);
            }
            _ => position = start + 1,
        }
    }
}

/// ASCII letter, digit or `_`: what `\b` considers a word byte.
pub(crate) fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Whether `start..end` is not glued into a longer dashed or dotted
/// identifier: the byte before is not a word byte, nor a `-`/`.` that follows
/// one; the byte after is not a word byte, nor a `-`/`.` followed by one.
/// Rejects `ORD-415-555-2671`, `1.2.3.4.5`, `123-45-6789-01`.
pub(crate) fn isolated(haystack: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).and_then(|index| haystack.get(index));
    let before_that = start.checked_sub(2).and_then(|index| haystack.get(index));
    let after = haystack.get(end);
    let after_that = haystack.get(end + 1);
    let glued_before = match before {
        Some(&byte) if is_word(byte) => true,
        Some(b'-' | b'.') => before_that.is_some_and(|&byte| is_word(byte)),
        _ => false,
    };
    let glued_after = match after {
        Some(&byte) if is_word(byte) => true,
        Some(b'-' | b'.') => after_that.is_some_and(|&byte| is_word(byte)),
        _ => false,
    };
    !glued_before && !glued_after
}

/// Whether one of `words` (already ASCII-lowercased) occurs, ASCII
/// case-insensitively, within `window` bytes before `start`.
pub(crate) fn context_before(
    haystack: &[u8],
    start: usize,
    window: usize,
    words: &[Box<[u8]>],
) -> bool {
    let from = start.saturating_sub(window);
    let Some(region) = haystack.get(from..start) else {
        return false;
    };
    words.iter().any(|word| {
        !word.is_empty()
            && region
                .windows(word.len())
                .any(|candidate| candidate.eq_ignore_ascii_case(word))
    })
}

/// The ASCII digits of `bytes`, copied into `buffer`; `None` if there are
/// more digits than fit.
pub(crate) fn collect_digits<'b>(bytes: &[u8], buffer: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut count = 0;
    for &byte in bytes.iter().filter(|byte| byte.is_ascii_digit()) {
        *buffer.get_mut(count)? = byte;
        count += 1;
    }
    buffer.get(..count)
}

/// Test support: the substrings of `text` that `find` reports.
#[cfg(test)]
pub(crate) fn matches_in(text: &str, find: impl FnOnce(&[u8], &mut Vec<Found>)) -> Vec<&str> {
    let mut out = Vec::new();
    find(text.as_bytes(), &mut out);
    out.iter()
        .map(|found| &text[found.start..found.end])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation() {
        let text = b"ORD-415-555-2671 and 415-555-2671.";
        assert!(!isolated(text, 4, 16));
        assert!(isolated(text, 21, 33));
        assert!(isolated(b"415", 0, 3));
        assert!(!isolated(b"1.2.3.4.5", 0, 7));
    }

    #[test]
    fn context() {
        let words: Vec<Box<[u8]>> = vec![Box::from(&b"ssn"[..])];
        let text = b"employee SSN: 123456789";
        assert!(context_before(text, 14, 32, &words));
        assert!(!context_before(text, 14, 4, &words));
        assert!(!context_before(b"order 123456789", 6, 32, &words));
    }

    #[test]
    fn digits() {
        let mut buffer = [0u8; 4];
        assert_eq!(collect_digits(b"1-2 3", &mut buffer), Some(&b"123"[..]));
        assert_eq!(collect_digits(b"12345", &mut buffer), None);
    }
}
