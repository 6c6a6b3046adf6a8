//! Custom detectors from the policy: a user regex, an optional checksum
//! (`luhn`, `mod97`) and optional context words that must appear shortly
//! before a match. A capture group named `mask` narrows what is masked.
//!
//! User regexes are compiled by the `regex` crate, so they run in linear
//! time whatever the policy author writes; there is no backtracking engine
//! to blow up.

use regex::bytes::{Regex, RegexBuilder};

use super::{context_before, Found};
use crate::spec::{CustomDetectorSpec, Validator, DEFAULT_CONTEXT_WINDOW};
use crate::validate::{luhn_valid, mod97_valid};
use crate::MaskError;

/// Upper bound on the compiled size of one custom regex, so a policy cannot
/// make the gateway build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;

pub(crate) struct CustomDetector {
    regex: Regex,
    mask_group: Option<usize>,
    validator: Option<Validator>,
    context: Vec<Box<[u8]>>,
    context_window: usize,
}

impl CustomDetector {
    pub fn compile(spec: &CustomDetectorSpec) -> Result<CustomDetector, MaskError> {
        let regex = RegexBuilder::new(&spec.regex)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|source| MaskError::InvalidRegex {
                name: spec.name.clone(),
                source,
            })?;
        if regex.is_match(b"") {
            return Err(MaskError::EmptyMatchRegex {
                name: spec.name.clone(),
            });
        }
        let mask_group = regex.capture_names().position(|name| name == Some("mask"));
        Ok(CustomDetector {
            regex,
            mask_group,
            validator: spec.validator,
            context: spec
                .context
                .iter()
                .filter(|word| !word.is_empty())
                .map(|word| word.to_ascii_lowercase().into_bytes().into_boxed_slice())
                .collect(),
            context_window: spec.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW),
        })
    }

    pub fn find(&self, haystack: &[u8], out: &mut Vec<Found>) {
        let mut position = 0;
        while position <= haystack.len() {
            let span = match self.mask_group {
                None => self
                    .regex
                    .find_at(haystack, position)
                    .map(|whole| (whole.start(), whole.end(), whole.start(), whole.end())),
                Some(group) => self
                    .regex
                    .captures_at(haystack, position)
                    .and_then(|captures| {
                        let whole = captures.get(0)?;
                        let masked = captures.get(group).unwrap_or(whole);
                        Some((whole.start(), whole.end(), masked.start(), masked.end()))
                    }),
            };
            let Some((whole_start, whole_end, start, end)) = span else {
                break;
            };
            if whole_start == whole_end {
                position = whole_end + 1;
                continue;
            }
            if start < end && self.accepts(haystack, whole_start, start, end) {
                out.push(Found::new(start, end));
                position = whole_end;
            } else {
                position = whole_start + 1;
            }
        }
    }

    fn accepts(&self, haystack: &[u8], whole_start: usize, start: usize, end: usize) -> bool {
        let Some(masked) = haystack.get(start..end) else {
            return false;
        };
        // Already masked output (`****`) is not a new finding.
        if masked.iter().all(|&byte| byte == b'*') {
            return false;
        }
        let checksum_ok = match self.validator {
            None | Some(Validator::None) => true,
            Some(Validator::Luhn) => luhn_valid(masked),
            Some(Validator::Mod97) => mod97_valid(masked),
        };
        checksum_ok
            && (self.context.is_empty()
                || context_before(haystack, whole_start, self.context_window, &self.context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(regex: &str) -> CustomDetectorSpec {
        CustomDetectorSpec {
            name: "employee_id".into(),
            regex: regex.into(),
            validator: None,
            context: Vec::new(),
            context_window: None,
            style: None,
        }
    }

    fn found(detector: &CustomDetector, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        detector.find(text.as_bytes(), &mut out);
        out.iter()
            .map(|found| text[found.start..found.end].to_string())
            .collect()
    }

    #[test]
    fn plain_regex() {
        let detector = CustomDetector::compile(&spec(r"\bEMP-\d{6}\b")).unwrap();
        assert_eq!(
            found(&detector, "owner EMP-123456 and EMP-654321"),
            ["EMP-123456", "EMP-654321"]
        );
        assert!(found(&detector, "EMP-12345").is_empty());
    }

    #[test]
    fn validator_and_context() {
        let mut with_luhn = spec(r"\b\d{16}\b");
        with_luhn.validator = Some(Validator::Luhn);
        let detector = CustomDetector::compile(&with_luhn).unwrap();
        assert_eq!(
            found(&detector, "4111111111111111 4111111111111112"),
            ["4111111111111111"]
        );

        let mut with_context = spec(r"\b\d{8}\b");
        with_context.context = vec!["Badge".into()];
        with_context.context_window = Some(10);
        let detector = CustomDetector::compile(&with_context).unwrap();
        assert_eq!(found(&detector, "BADGE no. 12345678"), ["12345678"]);
        assert!(found(&detector, "order 12345678").is_empty());
        assert!(found(&detector, "badge, see the long note about 12345678").is_empty());
    }

    #[test]
    fn mask_group() {
        let detector = CustomDetector::compile(&spec(r"api_key=(?P<mask>\w+)")).unwrap();
        assert_eq!(found(&detector, "x api_key=abc123 y"), ["abc123"]);
        assert!(found(&detector, "x api_key=****** y").is_empty());
    }

    #[test]
    fn rejects_bad_regexes() {
        assert!(matches!(
            CustomDetector::compile(&spec("(")),
            Err(MaskError::InvalidRegex { .. })
        ));
        assert!(matches!(
            CustomDetector::compile(&spec("a*")),
            Err(MaskError::EmptyMatchRegex { .. })
        ));
    }
}
