//! The `email` detector: `local@domain.tld` addresses inside free text.
//!
//! ASCII addresses only (internationalised addresses are not detected). The
//! domain needs at least one dot and an alphabetic top-level label of 2-24
//! letters, so `user@localhost` and `pkg@1.2.3` are not addresses. Retina
//! asset names such as `icon@2x.png` are rejected.

use regex::bytes::Regex;

use super::{builtin_regex, scan, Found};
use crate::MaskError;

/// The local part alternates letters/digits with single punctuation bytes
/// (no `--`, `..`), so `KEY-----jane@x.io` yields `jane@x.io`.
const PATTERN: &str = r"\b[A-Za-z0-9](?:[._%+'\-]?[A-Za-z0-9]){0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b";

pub(crate) struct EmailDetector {
    regex: Regex,
}

impl EmailDetector {
    pub fn new() -> Result<EmailDetector, MaskError> {
        Ok(EmailDetector {
            regex: builtin_regex("email", PATTERN)?,
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
    let at = candidate.iter().position(|&byte| byte == b'@')?;
    let domain = candidate.get(at + 1..)?;
    let first_label = domain.split(|&byte| byte == b'.').next()?;
    // `icon@2x.png`, `logo@3X.webp`: image density suffixes, not mailboxes.
    if let Some((&last, digits)) = first_label.split_last() {
        if last.eq_ignore_ascii_case(&b'x')
            && !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
    }
    Some(Found::new(start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = EmailDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, 0, out))
    }

    #[test]
    fn catches() {
        assert_eq!(found("jane.doe@example.com"), ["jane.doe@example.com"]);
        assert_eq!(
            found("mail <j.o+tag@mail.example.co.uk>, ok"),
            ["j.o+tag@mail.example.co.uk"]
        );
        assert_eq!(found("a@b.io and c@d.org"), ["a@b.io", "c@d.org"]);
    }

    #[test]
    fn ignores() {
        assert!(found("user@localhost").is_empty());
        assert!(found("left-pad@1.2.3").is_empty());
        assert!(found("icon@2x.png").is_empty());
        assert!(found("@handle and a@").is_empty());
        assert!(found("no at sign here").is_empty());
    }
}
