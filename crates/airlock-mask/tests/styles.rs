//! Table-driven tests of the three styles for every detector, through the
//! public API: what the agent actually receives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::borrow::Cow;

use airlock_mask::{
    CustomDetectorSpec, MaskPlan, MaskSpec, MaskStats, Style, Validator, BUILTIN_DETECTORS,
};

fn plan(style: Style, placeholder: Option<&str>) -> MaskPlan {
    MaskPlan::compile(&MaskSpec {
        detectors: BUILTIN_DETECTORS
            .iter()
            .map(|name| name.to_string())
            .collect(),
        columns: vec!["*password*".into(), "*token*".into()],
        style,
        placeholder: placeholder.map(str::to_owned),
        custom: vec![CustomDetectorSpec {
            name: "employee_id".into(),
            regex: r"\bEMP-\d{6}\b".into(),
            validator: None,
            context: Vec::new(),
            context_window: None,
            style: None,
        }],
    })
    .unwrap()
}

/// (detector, input, partial, full)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "email",
        "mail jane.doe@example.com now",
        "mail j*******@*******.com now",
        "mail ******************** now",
    ),
    (
        "card",
        "card 4111 1111 1111 1111.",
        "card **** **** **** 1111.",
        "card *******************.",
    ),
    (
        "card",
        "card 4111-1111-1111-1111",
        "card ****-****-****-1111",
        "card *******************",
    ),
    (
        "card",
        "amex 378282246310005",
        "amex ***********0005",
        "amex ***************",
    ),
    (
        "iban",
        "to GB82 WEST 1234 5698 7654 32",
        "to GB** **** **** **** **54 32",
        "to ***************************",
    ),
    (
        "ssn",
        "ssn 536-22-1234",
        "ssn ***-**-1234",
        "ssn ***********",
    ),
    (
        "phone",
        "call (415) 555-2671",
        "call (***) ***-**71",
        "call **************",
    ),
    (
        "phone",
        "call +14155552671",
        "call +*********71",
        "call ************",
    ),
    (
        "ip",
        "from 192.168.1.23",
        "from 192.***.*.**",
        "from ************",
    ),
    (
        "ip",
        "from 2001:db8::1",
        "from 2001:***::*",
        "from ***********",
    ),
    (
        "secret",
        "token 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",
        "token ghp_****",
        "token ****************************************",
    ),
    (
        "secret",
        "key AKIAIOSFODNN7EXAMPLE",
        "key AKIA****",
        "key ********************",
    ),
    (
        "secret",
        "postgres://app:s3cret@db/prod",
        "postgres://app:****@db/prod",
        "postgres://app:******@db/prod",
    ),
    (
        "secret",
        "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "stripe sk_live_****",
        "stripe ********************************",
    ),
    (
        "employee_id",
        "owner EMP-123456",
        "owner ***-******",
        "owner **********",
    ),
];

#[test]
fn partial_style() {
    let plan = plan(Style::Partial, None);
    for (detector, input, partial, _) in CASES {
        let mut stats = MaskStats::new();
        assert_eq!(
            plan.mask_text(input, &mut stats),
            *partial,
            "{detector}: {input}"
        );
        assert_eq!(stats.get(detector), 1, "{detector}: {input}: {stats:?}");
        assert_eq!(stats.total(), 1, "{detector}: {input}: {stats:?}");
    }
}

#[test]
fn full_style() {
    let plan = plan(Style::Full, None);
    for (detector, input, _, full) in CASES {
        let mut stats = MaskStats::new();
        let masked = plan.mask_text(input, &mut stats);
        assert_eq!(masked, *full, "{detector}: {input}");
        assert_eq!(
            masked.chars().count(),
            input.chars().count(),
            "{detector}: full keeps the length"
        );
    }
}

#[test]
fn placeholder_style_default_and_templated() {
    let default = plan(Style::Placeholder, None);
    let templated = plan(Style::Placeholder, Some("<masked:{detector}>"));
    for (detector, input, _, _) in CASES {
        let mut stats = MaskStats::new();
        let masked = default.mask_text(input, &mut stats);
        assert!(masked.contains("[REDACTED]"), "{detector}: {masked}");
        let masked = templated.mask_text(input, &mut stats);
        assert!(
            masked.contains(&format!("<masked:{detector}>")),
            "{detector}: {masked}"
        );
    }
    let mut stats = MaskStats::new();
    assert_eq!(
        templated.mask_text("jane@example.com / 536-22-1234", &mut stats),
        "<masked:email> / <masked:ssn>"
    );
    assert_eq!(stats.total(), 2);
}

#[test]
fn pem_block_partial_keeps_only_the_header() {
    let plan = plan(Style::Partial, None);
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpI\n-----END RSA PRIVATE KEY-----";
    let mut stats = MaskStats::new();
    assert_eq!(
        plan.mask_text(&format!("key={pem}\nnext"), &mut stats),
        "key=-----BEGIN RSA PRIVATE KEY-----****\nnext"
    );
}

#[test]
fn custom_style_override_and_validator() {
    let plan = MaskPlan::compile(&MaskSpec {
        detectors: vec!["email".into()],
        style: Style::Partial,
        custom: vec![CustomDetectorSpec {
            name: "loyalty".into(),
            regex: r"\bLOY\d{10}\b".into(),
            validator: Some(Validator::Luhn),
            context: vec!["loyalty".into()],
            context_window: Some(20),
            style: Some(Style::Placeholder),
        }],
        ..MaskSpec::default()
    })
    .unwrap();
    let mut stats = MaskStats::new();
    // LOY0000000018: digits pass Luhn.
    assert_eq!(
        plan.mask_text("Loyalty card LOY0000000018, mail a@b.io", &mut stats),
        "Loyalty card [REDACTED], mail a@*.io"
    );
    assert_eq!(stats.get("loyalty"), 1);
    // Wrong checksum, or no context word: untouched.
    assert!(matches!(
        plan.mask_text("Loyalty card LOY0000000019", &mut stats),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        plan.mask_text("ref LOY0000000018", &mut stats),
        Cow::Borrowed(_)
    ));
}

#[test]
fn mask_whole_per_style() {
    assert_eq!(plan(Style::Partial, None).mask_whole("hunter2"), "****");
    assert_eq!(plan(Style::Partial, None).mask_whole(""), "****");
    assert_eq!(plan(Style::Full, None).mask_whole("hünter2"), "*******");
    assert_eq!(
        plan(Style::Placeholder, None).mask_whole("hunter2"),
        "[REDACTED]"
    );
    assert_eq!(
        plan(Style::Placeholder, Some("<masked:{detector}>")).mask_whole("x"),
        "<masked:column>"
    );
    let plan = plan(Style::Partial, None);
    assert!(plan.column_masked("User_Password"));
    assert!(plan.column_masked("api_token"));
    assert!(!plan.column_masked("email"));
}

#[test]
fn mask_bytes_keeps_invalid_utf8_and_masks_around_it() {
    let plan = plan(Style::Partial, None);
    let mut stats = MaskStats::new();
    let input = b"\xff\xfejane@example.com\x80 card 4111111111111111\xc3";
    let masked = plan.mask_bytes(input, &mut stats);
    assert_eq!(
        &*masked,
        &b"\xff\xfej***@*******.com\x80 card ************1111\xc3"[..]
    );
    assert_eq!(stats.total(), 2);
    let clean = b"\xff\xfe plain \x80";
    assert!(matches!(
        plan.mask_bytes(clean, &mut stats),
        Cow::Borrowed(_)
    ));
}

#[test]
fn text_with_several_detections_and_multibyte_neighbours() {
    let plan = plan(Style::Partial, None);
    let mut stats = MaskStats::new();
    let masked = plan.mask_text("Zoë → jane@example.com ✓ 415-555-2671 €", &mut stats);
    assert_eq!(masked, "Zoë → j***@*******.com ✓ ***-***-**71 €");
    assert_eq!(stats.get("email"), 1);
    assert_eq!(stats.get("phone"), 1);
}

#[test]
fn example_policy_mask_block_compiles() {
    // The `mask-pii-in-prod` rule of examples/policy.yaml.
    let spec = MaskSpec {
        detectors: ["email", "card", "iban", "ssn", "phone", "secret"]
            .map(String::from)
            .to_vec(),
        columns: vec!["*password*".into(), "*token*".into()],
        style: Style::Partial,
        ..MaskSpec::default()
    };
    let plan = MaskPlan::compile(&spec).unwrap();
    assert!(plan.column_masked("reset_token"));
    let mut stats = MaskStats::new();
    assert_eq!(
        plan.mask_text("from 10.0.0.1", &mut stats),
        "from 10.0.0.1",
        "ip is not enabled"
    );
}

#[test]
fn spec_deserialises_from_policy_shape() {
    let spec: MaskSpec = serde_json::from_str(
        r#"{"detectors": ["email", "card"], "columns": ["*password*"], "style": "placeholder",
            "placeholder": "<masked:{detector}>",
            "custom": [{"name": "badge", "regex": "B\\d{6}", "validator": "luhn", "context": ["badge"], "style": "full"}]}"#,
    )
    .unwrap();
    assert_eq!(spec.style, Style::Placeholder);
    assert_eq!(spec.custom[0].validator, Some(Validator::Luhn));
    assert_eq!(spec.custom[0].style, Some(Style::Full));
    MaskPlan::compile(&spec).unwrap();
    let minimal: MaskSpec = serde_json::from_str(r#"{"detectors": ["ssn"]}"#).unwrap();
    assert_eq!(minimal.style, Style::Partial);
    assert!(serde_json::from_str::<MaskSpec>(r#"{"detectors": [], "colour": "red"}"#).is_err());
    assert!(serde_json::from_str::<MaskSpec>(r#"{"style": "blurred"}"#).is_err());
}
