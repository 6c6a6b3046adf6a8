//! Property tests: masking is total (never panics, on any string or bytes),
//! leaves clean text borrowed and identical, produces valid UTF-8 from
//! text, and is a fixed point: masking masked output finds nothing new.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::borrow::Cow;
use std::sync::LazyLock;

use airlock_mask::{
    CustomDetectorSpec, MaskPlan, MaskSpec, MaskStats, Style, Validator, BUILTIN_DETECTORS,
};
use proptest::prelude::*;

/// Plans compiled once per style and shared by every case.
static PLANS: LazyLock<[MaskPlan; 3]> = LazyLock::new(|| {
    [
        compile(Style::Partial),
        compile(Style::Full),
        compile(Style::Placeholder),
    ]
});

fn plan(style: Style) -> &'static MaskPlan {
    match style {
        Style::Partial => &PLANS[0],
        Style::Full => &PLANS[1],
        Style::Placeholder => &PLANS[2],
    }
}

fn compile(style: Style) -> MaskPlan {
    MaskPlan::compile(&MaskSpec {
        detectors: BUILTIN_DETECTORS
            .iter()
            .map(|name| name.to_string())
            .collect(),
        style,
        custom: vec![CustomDetectorSpec {
            name: "account".into(),
            // Byte-level and Unicode classes, to exercise boundary widening.
            regex: r"(?:ACCT|Konto)[-:]\s?(?P<mask>\w{4,12})".into(),
            validator: Some(Validator::None),
            context: Vec::new(),
            context_window: None,
            style: None,
        }],
        ..MaskSpec::default()
    })
    .unwrap()
}

/// Fragments that detectors react to, to build PII-rich strings.
const FRAGMENTS: &[&str] = &[
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "378282246310005",
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "536-22-1234",
    "SSN 536221234",
    "(415) 555-2671",
    "+44 20 7946 0958",
    "192.168.1.23",
    "2001:db8::1",
    "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",
    "AKIAIOSFODNN7EXAMPLE",
    "postgres://app:s3cret@db/prod",
    "password=hunter2",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "ACCT-12345678",
    "Konto: ÄÖÜäöü12",
    "é",
    "—",
    " ",
    "-",
    ".",
    ":",
    "@",
    "0",
    "9",
    "x",
    "\n",
];

fn pii_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<String>(),
            1 => "[0-9 .:@+()-]{0,24}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// PII fragments and noise joined by delimiters, as values appear in text.
/// (Values glued to each other, `a@b.io+14155552671`, are context-dependent:
/// masking one can create the word boundary another needs, so a second pass
/// may mask more, never less. That case is covered by the never-panics
/// properties, not by the fixed-point one.)
fn delimited_pii_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                4 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
                1 => "[A-Za-z0-9 ]{0,12}",
            ],
            prop::sample::select(&[" ", ", ", "\n", "; ", " | "][..]),
        ),
        0..10,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(part, delimiter)| part + delimiter)
            .collect()
    })
}

proptest! {
    // Failures are reproduced as named tests below rather than persisted
    // into the source tree.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mask_text_never_panics_and_is_utf8(text in pii_text()) {
        for style in [Style::Partial, Style::Full, Style::Placeholder] {
            let mut stats = MaskStats::new();
            let masked = plan(style).mask_text(&text, &mut stats);
            // A `Cow<str>` is UTF-8 by construction; check the counts agree
            // with whether anything changed.
            prop_assert_eq!(matches!(masked, Cow::Borrowed(_)), stats.total() == 0);
        }
    }

    #[test]
    fn mask_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), text in pii_text()) {
        let plan = plan(Style::Partial);
        let mut stats = MaskStats::new();
        let _ = plan.mask_bytes(&bytes, &mut stats);
        // Invalid UTF-8 spliced into PII-rich text.
        let mut mixed = text.into_bytes();
        let middle = mixed.len() / 2;
        mixed.splice(middle..middle, bytes.iter().copied().take(3));
        let masked = plan.mask_bytes(&mixed, &mut stats);
        if matches!(masked, Cow::Borrowed(_)) {
            prop_assert_eq!(&*masked, &mixed[..]);
        }
    }

    #[test]
    fn clean_text_is_borrowed_and_identical(text in "[A-Za-z ,]{0,200}") {
        let plan = plan(Style::Partial);
        let mut stats = MaskStats::new();
        let masked = plan.mask_text(&text, &mut stats);
        prop_assert!(matches!(masked, Cow::Borrowed(_)));
        prop_assert_eq!(&*masked, &text[..]);
        prop_assert!(stats.is_empty());
    }

    #[test]
    fn masking_is_a_fixed_point(text in delimited_pii_text()) {
        for style in [Style::Partial, Style::Full, Style::Placeholder] {
            let plan = plan(style);
            let mut stats = MaskStats::new();
            let once = plan.mask_text(&text, &mut stats).into_owned();
            let mut again = MaskStats::new();
            let twice = plan.mask_text(&once, &mut again);
            prop_assert!(
                matches!(twice, Cow::Borrowed(_)),
                "style {:?}: masking {:?} again changed it: {:?} -> {:?} ({:?})",
                style, text, once, twice, again
            );
        }
    }

    #[test]
    fn full_style_preserves_character_count(text in pii_text()) {
        let mut stats = MaskStats::new();
        let masked = plan(Style::Full).mask_text(&text, &mut stats);
        prop_assert_eq!(masked.chars().count(), text.chars().count());
    }
}

#[test]
fn regression_placeholder_password_is_not_found_again() {
    let plan = plan(Style::Placeholder);
    let mut stats = MaskStats::new();
    let once = plan
        .mask_text(
            "AKIAIOSFODNN7EXAMPLEpostgres://app:s3cret@db/prod",
            &mut stats,
        )
        .into_owned();
    assert_eq!(
        once,
        "AKIAIOSFODNN7EXAMPLEpostgres://app:[REDACTED]@db/prod"
    );
    let mut again = MaskStats::new();
    assert!(
        matches!(plan.mask_text(&once, &mut again), Cow::Borrowed(_)),
        "{again:?}"
    );
}

#[test]
fn pathological_inputs_are_fast_enough() {
    // Linear-time engines and bounded candidates: long runs of look-alike
    // bytes must not blow up (this would take minutes with backtracking).
    let plan = plan(Style::Partial);
    let inputs = [
        "1".repeat(200_000),
        "1 ".repeat(100_000),
        "1-".repeat(100_000),
        "a@".repeat(100_000),
        "a.".repeat(100_000),
        ":".repeat(200_000),
        "1:".repeat(100_000),
        "1.".repeat(100_000),
        "AKIA".repeat(50_000),
        "-----BEGIN PRIVATE KEY-----".repeat(5_000),
        "eyJ".repeat(60_000),
        "x://".repeat(50_000),
        "GB82 ".repeat(40_000),
        "+1 ".repeat(60_000),
    ];
    let started = std::time::Instant::now();
    for input in &inputs {
        let mut stats = MaskStats::new();
        let _ = plan.mask_text(input, &mut stats);
    }
    let elapsed = started.elapsed();
    // Generous bound for an unoptimised build on a shared machine.
    assert!(
        elapsed.as_secs() < 60,
        "pathological inputs took {elapsed:?}"
    );
    println!("pathological inputs: {elapsed:?}");
}
