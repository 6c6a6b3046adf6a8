//! The `iban` detector: International Bank Account Numbers, compact
//! (`GB82WEST12345698765432`) or in the printed groups of four
//! (`GB82 WEST 1234 5698 7654 32`), in either letter case, whose length matches the
//! country's registry length and whose MOD 97-10 checksum holds.

use regex::bytes::Regex;

use super::{builtin_regex, scan, Found};
use crate::validate::{iban_length, mod97_valid};
use crate::MaskError;

const PATTERN: &str =
    r"(?i)\b[A-Z]{2}\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|[A-Z0-9]{11,30})\b";

pub(crate) struct IbanDetector {
    regex: Regex,
}

impl IbanDetector {
    pub fn new() -> Result<IbanDetector, MaskError> {
        Ok(IbanDetector {
            regex: builtin_regex("iban", PATTERN)?,
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
    let country = [
        candidate.first()?.to_ascii_uppercase(),
        candidate.get(1)?.to_ascii_uppercase(),
    ];
    let expected = iban_length(country)?;
    let spaced = candidate.contains(&b' ');
    // Byte length of the candidate's first `expected` alphanumerics.
    let mut seen = 0;
    let mut length = None;
    for (index, byte) in candidate.iter().enumerate() {
        if byte.is_ascii_alphanumeric() {
            seen += 1;
            if seen == expected {
                length = Some(index + 1);
                break;
            }
        }
    }
    let length = length?;
    if length != candidate.len() {
        // Longer than the country allows: only a spaced IBAN followed by an
        // unrelated group may be shortened, and only at a group boundary.
        if !spaced || candidate.get(length) != Some(&b' ') {
            return None;
        }
    }
    let iban = candidate.get(..length)?;
    mod97_valid(iban).then(|| Found::new(start, start + length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = IbanDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, 0, out))
    }

    #[test]
    fn catches() {
        for iban in [
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89 3704 0044 0532 0130 00",
            "NL91ABNA0417164300",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NO93 8601 1117 947",
            "BE68 5390 0754 7034",
            "gb82west12345698765432",
        ] {
            assert_eq!(found(&format!("pay to {iban}, thanks")), [iban], "{iban}");
        }
        assert_eq!(found("BE68 5390 0754 7034 EUR"), ["BE68 5390 0754 7034"]);
    }

    #[test]
    fn ignores() {
        for text in [
            "GB82WEST12345698765433",
            "GB82 WEST 1234 5698 7654 33",
            "US12345678901234567890",
            "GB82WEST1234569876543",
            "XGB82WEST12345698765432",
            "AB12 CDEF GHIJ KLMN",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
