//! [`MaskPlan`]: a [`MaskSpec`] compiled once (regexes, prefix automaton,
//! column globs, rendered placeholders) and then shared, read-only, by every
//! session that the policy rule applies to.
//!
//! The masking path for one value: prefilter signals → only the gated
//! detectors' regexes → validators on candidates → overlap resolution →
//! rendering. A value with no detection is returned borrowed, without any
//! allocation.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::detect::card::CardDetector;
use crate::detect::custom::CustomDetector;
use crate::detect::email::EmailDetector;
use crate::detect::iban::IbanDetector;
use crate::detect::ip::IpDetector;
use crate::detect::phone::PhoneDetector;
use crate::detect::secret::SecretDetector;
use crate::detect::ssn::SsnDetector;
use crate::detect::Found;
use crate::spec::DEFAULT_PLACEHOLDER;
use crate::{prefilter, render, Kind, MaskError, MaskSpec, MaskStats, Style, BUILTIN_DETECTORS};

/// Name used for `{detector}` in placeholders written by [`MaskPlan::mask_whole`].
const COLUMN_DETECTOR_NAME: &str = "column";

/// Output of the partial style for a whole column value: nothing of the
/// value, not even its length, is kept.
const WHOLE_PARTIAL: &str = "****";

/// A compiled [`MaskSpec`]. Immutable, `Send + Sync`; build it once per
/// policy version and share it in an `Arc`.
pub struct MaskPlan {
    style: Style,
    /// Per detector id: name, kind, effective style, rendered placeholder.
    detectors: Vec<DetectorEntry>,
    email: Option<(usize, EmailDetector)>,
    card: Option<(usize, CardDetector)>,
    iban: Option<(usize, IbanDetector)>,
    ssn: Option<(usize, SsnDetector)>,
    phone: Option<(usize, PhoneDetector)>,
    ip: Option<(usize, IpDetector)>,
    secret: Option<(usize, SecretDetector)>,
    custom: Vec<(usize, CustomDetector)>,
    /// Whether any prefilter-gated built-in is enabled.
    needs_prefilter: bool,
    columns: Option<GlobSet>,
    column_placeholder: String,
}

impl std::fmt::Debug for MaskPlan {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MaskPlan")
            .field("style", &self.style)
            .field(
                "detectors",
                &self
                    .detectors
                    .iter()
                    .map(|entry| &*entry.name)
                    .collect::<Vec<_>>(),
            )
            .field("columns", &self.columns.as_ref().map_or(0, GlobSet::len))
            .finish_non_exhaustive()
    }
}

/// One detection reported by [`MaskPlan::detections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection<'p> {
    /// Name of the detector that found it.
    pub detector: &'p str,
    /// Byte range in the text (on character boundaries).
    pub range: std::ops::Range<usize>,
}

struct DetectorEntry {
    name: Arc<str>,
    kind: Kind,
    style: Style,
    placeholder: Box<[u8]>,
}

/// One detection, in haystack byte offsets.
#[derive(Debug, Clone, Copy)]
struct Match {
    start: usize,
    end: usize,
    detector: usize,
    keep_prefix: usize,
    priority: Kind,
    /// The uncovered remainder of a detection that lost an overlap: always
    /// rendered as `full` and not counted (its detection's winner was).
    fragment: bool,
}

impl MaskPlan {
    /// Compiles `spec`. Fails on unknown detector names (the error lists the
    /// known ones), invalid or empty-matching custom regexes, bad custom
    /// names and invalid column globs.
    pub fn compile(spec: &MaskSpec) -> Result<MaskPlan, MaskError> {
        let mut custom_names: Vec<&str> = Vec::with_capacity(spec.custom.len());
        for custom in &spec.custom {
            let name = custom.name.as_str();
            if name.trim().is_empty()
                || BUILTIN_DETECTORS.contains(&name)
                || custom_names.contains(&name)
            {
                return Err(MaskError::InvalidCustomName {
                    name: name.to_owned(),
                });
            }
            custom_names.push(name);
        }
        for name in &spec.detectors {
            if !BUILTIN_DETECTORS.contains(&name.as_str()) && !custom_names.contains(&name.as_str())
            {
                let known: Vec<&str> = BUILTIN_DETECTORS
                    .iter()
                    .copied()
                    .chain(custom_names.iter().copied())
                    .collect();
                return Err(MaskError::UnknownDetector {
                    name: name.clone(),
                    known: known.join(", "),
                });
            }
        }
        let enabled = |builtin: &str| spec.detectors.iter().any(|name| name == builtin);
        let template = spec.placeholder.as_deref().unwrap_or(DEFAULT_PLACEHOLDER);
        let mut detectors = Vec::new();
        let mut register = |name: &str, kind: Kind, style: Style| -> usize {
            detectors.push(DetectorEntry {
                name: Arc::from(name),
                kind,
                style,
                placeholder: template
                    .replace("{detector}", name)
                    .into_bytes()
                    .into_boxed_slice(),
            });
            detectors.len() - 1
        };

        let email = if enabled("email") {
            Some((
                register("email", Kind::Email, spec.style),
                EmailDetector::new()?,
            ))
        } else {
            None
        };
        let card = if enabled("card") {
            Some((
                register("card", Kind::Card, spec.style),
                CardDetector::new()?,
            ))
        } else {
            None
        };
        let iban = if enabled("iban") {
            Some((
                register("iban", Kind::Iban, spec.style),
                IbanDetector::new()?,
            ))
        } else {
            None
        };
        let ssn = if enabled("ssn") {
            Some((register("ssn", Kind::Ssn, spec.style), SsnDetector::new()?))
        } else {
            None
        };
        let phone = if enabled("phone") {
            Some((
                register("phone", Kind::Phone, spec.style),
                PhoneDetector::new()?,
            ))
        } else {
            None
        };
        let ip = if enabled("ip") {
            Some((register("ip", Kind::Ip, spec.style), IpDetector::new()?))
        } else {
            None
        };
        let secret = if enabled("secret") {
            Some((
                register("secret", Kind::Secret, spec.style),
                SecretDetector::new()?,
            ))
        } else {
            None
        };
        let mut custom = Vec::with_capacity(spec.custom.len());
        for custom_spec in &spec.custom {
            let detector = CustomDetector::compile(custom_spec)?;
            let id = register(
                &custom_spec.name,
                Kind::Custom,
                custom_spec.style.unwrap_or(spec.style),
            );
            custom.push((id, detector));
        }

        let columns = if spec.columns.is_empty() {
            None
        } else {
            let mut builder = GlobSetBuilder::new();
            for pattern in &spec.columns {
                let glob = GlobBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .map_err(|source| MaskError::InvalidColumnPattern {
                        pattern: pattern.clone(),
                        source,
                    })?;
                builder.add(glob);
            }
            Some(
                builder
                    .build()
                    .map_err(|source| MaskError::InvalidColumnPattern {
                        pattern: spec.columns.join(", "),
                        source,
                    })?,
            )
        };

        let needs_prefilter = email.is_some()
            || card.is_some()
            || iban.is_some()
            || ssn.is_some()
            || phone.is_some()
            || ip.is_some();
        Ok(MaskPlan {
            style: spec.style,
            detectors,
            email,
            card,
            iban,
            ssn,
            phone,
            ip,
            secret,
            custom,
            needs_prefilter,
            columns,
            column_placeholder: template.replace("{detector}", COLUMN_DETECTOR_NAME),
        })
    }

    /// Whether a column rule masks the column `column_name` as a whole
    /// (case-insensitive glob match).
    pub fn column_masked(&self, column_name: &str) -> bool {
        self.columns
            .as_ref()
            .is_some_and(|columns| columns.is_match(column_name))
    }

    /// Whether the plan has column rules at all (a result whose column names
    /// are unknown cannot honour them).
    pub fn has_column_rules(&self) -> bool {
        self.columns.is_some()
    }

    /// Masks every detection in `text` and counts them in `stats`. Returns
    /// `text` borrowed, without allocating, when nothing is detected.
    pub fn mask_text<'a>(&self, text: &'a str, stats: &mut MaskStats) -> Cow<'a, str> {
        let matches = self.find(text.as_bytes(), Some(text));
        if matches.is_empty() {
            return Cow::Borrowed(text);
        }
        let rendered = self.render(text.as_bytes(), &matches, stats);
        // Rendering copies untouched text verbatim and replaces whole
        // characters, so this is always valid; the fallback only keeps this
        // function total.
        match String::from_utf8(rendered) {
            Ok(masked) => Cow::Owned(masked),
            Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
        }
    }

    /// Masks every detection in `bytes`, a wire value that may not be valid
    /// UTF-8. Detection runs on the raw bytes: built-in detectors only match
    /// ASCII, so invalid sequences simply separate candidates and are copied
    /// through unchanged. Returns `bytes` borrowed when nothing is detected.
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8], stats: &mut MaskStats) -> Cow<'a, [u8]> {
        let matches = self.find(bytes, None);
        if matches.is_empty() {
            return Cow::Borrowed(bytes);
        }
        Cow::Owned(self.render(bytes, &matches, stats))
    }

    /// Masks a whole value for a column rule, in the plan's style: `full`
    /// gives one `*` per character, `partial` a fixed `****` (column rules
    /// target secrets, so not even the length is kept), `placeholder` the
    /// placeholder text with `{detector}` = `column`.
    pub fn mask_whole(&self, value: &str) -> String {
        match self.style {
            Style::Full => "*".repeat(value.chars().count()),
            Style::Partial => WHOLE_PARTIAL.to_owned(),
            Style::Placeholder => self.column_placeholder.clone(),
        }
    }

    /// True when the plan masks nothing: no detectors, no custom detectors,
    /// no column rules.
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty() && self.columns.is_none()
    }

    /// The plan's style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// What [`MaskPlan::mask_text`] would mask in `text`, without masking:
    /// each detection's detector name and byte range, in text order. For
    /// tests, `explain` output and tuning; allocates.
    pub fn detections(&self, text: &str) -> Vec<Detection<'_>> {
        self.find(text.as_bytes(), Some(text))
            .into_iter()
            .filter_map(|detection| {
                let entry = self.detectors.get(detection.detector)?;
                Some(Detection {
                    detector: &entry.name,
                    range: detection.start..detection.end,
                })
            })
            .collect()
    }

    /// Names of the enabled detectors, built-in then custom.
    pub fn detector_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.detectors.iter().map(|entry| &*entry.name)
    }

    /// All detections in `haystack`, sorted and non-overlapping. With
    /// `text`, spans are widened to character boundaries (custom regexes may
    /// use byte classes).
    fn find(&self, haystack: &[u8], text: Option<&str>) -> Vec<Match> {
        self.find_gated(haystack, text, true)
    }

    /// [`MaskPlan::find`], with the prefilters optionally bypassed (every
    /// enabled detector runs over the whole haystack): tests compare both to
    /// prove the prefilters never hide a detection.
    fn find_gated(&self, haystack: &[u8], text: Option<&str>, gated: bool) -> Vec<Match> {
        let mut matches: Vec<Match> = Vec::new();
        let mut found: Vec<Found> = Vec::new();
        let detectors = &self.detectors;
        let mut collect = |found: &mut Vec<Found>, detector: usize, priority: Kind| {
            // A span that is exactly this detector's placeholder is earlier
            // output (`postgres://app:[REDACTED]@db`), not a new finding.
            let placeholder = detectors
                .get(detector)
                .map(|entry| &*entry.placeholder)
                .unwrap_or_default();
            matches.extend(
                found
                    .drain(..)
                    .filter(|found| haystack.get(found.start..found.end) != Some(placeholder))
                    .map(|found| Match {
                        start: found.start,
                        end: found.end,
                        detector,
                        keep_prefix: found.keep_prefix,
                        priority,
                        fragment: false,
                    }),
            );
        };

        let quick = prefilter::quick(haystack);
        let each_segment = |emit: &mut dyn FnMut(usize, usize, prefilter::Signals)| {
            if gated {
                prefilter::scan_segments(haystack, emit);
            } else {
                emit(0, haystack.len(), prefilter::Signals::all());
            }
        };
        if self.needs_prefilter && (quick.numeric_possible() || !gated) {
            each_segment(&mut |segment_start, segment_end, signals| {
                // Search only the segment, with everything before it visible
                // to boundaries and context words.
                let window = haystack.get(..segment_end).unwrap_or_default();
                let from = segment_start;
                if let (true, Some((id, detector))) = (signals.email, &self.email) {
                    detector.find(window, from, &mut found);
                    collect(&mut found, *id, Kind::Email);
                }
                if let (true, Some((id, detector))) = (signals.card, &self.card) {
                    detector.find(window, from, &mut found);
                    collect(&mut found, *id, Kind::Card);
                }
                if let (true, Some((id, detector))) = (signals.iban, &self.iban) {
                    detector.find(window, from, &mut found);
                    collect(&mut found, *id, Kind::Iban);
                }
                if let (true, Some((id, detector))) = (signals.ssn, &self.ssn) {
                    detector.find(window, from, &mut found);
                    collect(&mut found, *id, Kind::Ssn);
                }
                if let (true, Some((id, detector))) = (signals.phone, &self.phone) {
                    detector.find(window, from, &mut found);
                    collect(&mut found, *id, Kind::Phone);
                }
                if let Some((id, detector)) = &self.ip {
                    if signals.ipv4 {
                        detector.find_v4(window, from, &mut found);
                    }
                    if signals.ipv6 {
                        detector.find_v6(window, from, &mut found);
                    }
                    collect(&mut found, *id, Kind::Ip);
                }
            });
        }
        if let (true, Some((id, detector))) = (quick.secret_possible() || !gated, &self.secret) {
            detector.find(haystack, &mut found);
            collect(&mut found, *id, Kind::Secret);
        }
        for (id, detector) in &self.custom {
            detector.find(haystack, &mut found);
            collect(&mut found, *id, Kind::Custom);
        }

        if let Some(text) = text {
            for detection in &mut matches {
                while detection.start > 0 && !text.is_char_boundary(detection.start) {
                    detection.start -= 1;
                }
                while detection.end < text.len() && !text.is_char_boundary(detection.end) {
                    detection.end += 1;
                }
            }
        }
        if matches.len() > 1 {
            matches.sort_unstable_by_key(|detection| (detection.start, Reverse(detection.end)));
            let overlapping = matches.windows(2).any(|pair| match pair {
                [first, second] => second.start < first.end,
                _ => false,
            });
            if overlapping {
                matches = resolve_overlaps(matches);
            }
        }
        matches
    }

    fn render(&self, haystack: &[u8], matches: &[Match], stats: &mut MaskStats) -> Vec<u8> {
        let mut out = Vec::with_capacity(haystack.len() + 16);
        let mut cursor = 0;
        for detection in matches {
            let Some(entry) = self.detectors.get(detection.detector) else {
                continue;
            };
            out.extend_from_slice(haystack.get(cursor..detection.start).unwrap_or_default());
            let region = haystack
                .get(detection.start..detection.end)
                .unwrap_or_default();
            if detection.fragment {
                render::full(region, &mut out);
            } else {
                match entry.style {
                    Style::Full => render::full(region, &mut out),
                    Style::Partial => {
                        render::partial(entry.kind, region, detection.keep_prefix, &mut out)
                    }
                    Style::Placeholder => out.extend_from_slice(&entry.placeholder),
                }
                stats.record_shared(&entry.name);
            }
            cursor = detection.end;
        }
        out.extend_from_slice(haystack.get(cursor..).unwrap_or_default());
        out
    }
}

/// Makes `matches` non-overlapping. Higher-priority kinds win (a card
/// number inside a PEM block is part of the secret), then longer spans. The
/// parts of a losing detection that no winner covers are still masked, as
/// `full` fragments, so an overlap never leaves sensitive text visible.
/// Returns the spans sorted by start.
fn resolve_overlaps(mut matches: Vec<Match>) -> Vec<Match> {
    matches.sort_unstable_by_key(|detection| {
        (
            detection.priority,
            Reverse(detection.end - detection.start),
            detection.start,
        )
    });
    // Accepted spans, disjoint, keyed by start.
    let mut accepted: BTreeMap<usize, Match> = BTreeMap::new();
    for detection in matches {
        // Accepted spans that overlap `detection`, in order.
        let first_start = accepted
            .range(..=detection.start)
            .next_back()
            .filter(|(_, previous)| previous.end > detection.start)
            .map_or(detection.start, |(start, _)| *start);
        let covering: Vec<(usize, usize)> = accepted
            .range(first_start..detection.end)
            .map(|(_, winner)| (winner.start, winner.end))
            .filter(|(start, end)| *end > detection.start && *start < detection.end)
            .collect();
        if covering.is_empty() {
            accepted.insert(detection.start, detection);
            continue;
        }
        let mut cursor = detection.start;
        let mut pieces = Vec::new();
        for (start, end) in covering {
            if start > cursor {
                pieces.push((cursor, start));
            }
            cursor = cursor.max(end);
        }
        if cursor < detection.end {
            pieces.push((cursor, detection.end));
        }
        for (start, end) in pieces {
            accepted.insert(
                start,
                Match {
                    start,
                    end,
                    fragment: true,
                    ..detection
                },
            );
        }
    }
    accepted.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CustomDetectorSpec;
    use proptest::prelude::*;

    fn all_builtins() -> &'static MaskPlan {
        static PLAN: std::sync::LazyLock<MaskPlan> =
            std::sync::LazyLock::new(|| MaskPlan::compile(&spec(BUILTIN_DETECTORS)).unwrap());
        &PLAN
    }

    fn spans(matches: Vec<Match>) -> Vec<(usize, usize, usize, bool)> {
        matches
            .into_iter()
            .map(|detection| {
                (
                    detection.start,
                    detection.end,
                    detection.detector,
                    detection.fragment,
                )
            })
            .collect()
    }

    /// The prefilters are an optimisation only: on every corpus line,
    /// joined lines, and random PII-like text, gated and ungated detection
    /// agree exactly.
    #[test]
    fn prefilter_never_hides_a_detection_on_the_corpus() {
        let plan = all_builtins();
        let corpus = include_str!("../tests/corpus/labelled.tsv");
        let texts: Vec<String> = corpus
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split('\t').nth(1))
            .map(|text| text.replace("\\n", "\n"))
            .collect();
        let joined = texts.join("\t");
        for text in texts.iter().chain([&joined]) {
            assert_eq!(
                spans(plan.find_gated(text.as_bytes(), Some(text), true)),
                spans(plan.find_gated(text.as_bytes(), Some(text), false)),
                "{text:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn prefilter_never_hides_a_detection(text in "([0-9]{1,5}|[ .:+()@_-]|[a-fA-F]{1,3}|SSN |2024-03-15|GB82 WEST |jane@x.io|\\t|,){0,24}") {
            let plan = all_builtins();
            prop_assert_eq!(
                spans(plan.find_gated(text.as_bytes(), Some(&text), true)),
                spans(plan.find_gated(text.as_bytes(), Some(&text), false))
            );
        }
    }

    fn spec(detectors: &[&str]) -> MaskSpec {
        MaskSpec {
            detectors: detectors.iter().map(|name| name.to_string()).collect(),
            ..MaskSpec::default()
        }
    }

    #[test]
    fn plan_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MaskPlan>();
        assert_send_sync::<Arc<MaskPlan>>();
    }

    #[test]
    fn unknown_detector_lists_known() {
        let error = MaskPlan::compile(&spec(&["email", "passport"])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"passport\""), "{message}");
        for name in BUILTIN_DETECTORS {
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn custom_name_rules() {
        let custom = |name: &str| CustomDetectorSpec {
            name: name.into(),
            regex: "x+y".into(),
            validator: None,
            context: Vec::new(),
            context_window: None,
            style: None,
        };
        for bad in [
            vec![custom("email")],
            vec![custom("")],
            vec![custom("a"), custom("a")],
        ] {
            let spec = MaskSpec {
                custom: bad,
                ..MaskSpec::default()
            };
            assert!(matches!(
                MaskPlan::compile(&spec),
                Err(MaskError::InvalidCustomName { .. })
            ));
        }
        let spec = MaskSpec {
            detectors: vec!["badge".into()],
            custom: vec![custom("badge")],
            ..MaskSpec::default()
        };
        let plan = MaskPlan::compile(&spec).unwrap();
        assert_eq!(plan.detector_names().collect::<Vec<_>>(), ["badge"]);
    }

    #[test]
    fn invalid_column_glob() {
        let spec = MaskSpec {
            columns: vec!["[abc".into()],
            ..MaskSpec::default()
        };
        assert!(matches!(
            MaskPlan::compile(&spec),
            Err(MaskError::InvalidColumnPattern { .. })
        ));
    }

    #[test]
    fn columns_are_case_insensitive_globs() {
        let spec = MaskSpec {
            columns: vec!["*password*".into(), "ssn".into(), "card_number".into()],
            ..MaskSpec::default()
        };
        let plan = MaskPlan::compile(&spec).unwrap();
        for column in [
            "password",
            "user_password_hash",
            "PASSWORD",
            "Ssn",
            "card_number",
            "CARD_NUMBER",
        ] {
            assert!(plan.column_masked(column), "{column}");
        }
        for column in ["ssn_last4", "pass", "card_number_hint", "email"] {
            assert!(!plan.column_masked(column), "{column}");
        }
        assert!(!plan.is_empty());
        assert!(MaskPlan::compile(&MaskSpec::default()).unwrap().is_empty());
    }

    #[test]
    fn overlap_prefers_priority_then_length() {
        let plan = MaskPlan::compile(&spec(&["secret", "card", "phone"])).unwrap();
        let mut stats = MaskStats::new();
        // The digits inside the URI password are a card number, but the
        // password rule owns the whole span.
        assert_eq!(
            plan.mask_text("postgres://app:4111111111111111@db/x", &mut stats),
            "postgres://app:****@db/x"
        );
        // A losing detection's uncovered part is still masked.
        let mut stats = MaskStats::new();
        assert_eq!(
            plan.mask_text("password=hunter2-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----", &mut stats),
            "password=*******-----BEGIN PRIVATE KEY-----****"
        );
        assert_eq!(stats.get("secret"), 1);
        let mut stats = MaskStats::new();
        let text = "postgres://app:4111111111111111@db/x";
        assert_eq!(plan.mask_text(text, &mut stats), "postgres://app:****@db/x");
        assert_eq!(stats.get("secret"), 1);
        assert_eq!(stats.get("card"), 0);
    }
}
