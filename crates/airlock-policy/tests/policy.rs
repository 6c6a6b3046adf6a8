//! Policy loading, validation and decision tests, table-driven over the
//! example policy in the repository's `examples/` (which must load
//! unchanged: it is a copy of the project's contract file).

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_policy::{
    decide, explain, DecisionInput, MaskStyle, MatchedAction, Policy, PolicyError, Verdict,
};
use airlock_sql::{classify, Dialect};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
use std::path::PathBuf;
use std::time::Duration;

/// The repository's `examples/` folder. Tests read nothing outside the
/// repository, so the contract files live here as copies.
fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example() -> Policy {
    let mut policy = Policy::from_file(&examples_dir().join("policy.yaml"))
        .unwrap_or_else(|e| panic!("the example policy must load unchanged:\n{e}"));
    policy.version = 7;
    policy
}

/// `examples/` holds the project's contract files (`.ci/run` checks that
/// they are identical to the shared folder's when one is beside the
/// checkout; tests read nothing outside the repository).
#[test]
fn the_contract_examples_are_in_the_repository() {
    for name in [
        "airlock.yaml",
        "policy.yaml",
        "airlock-multi.yaml",
        "policy-multi.yaml",
    ] {
        assert!(
            examples_dir().join(name).is_file(),
            "examples/{name} is missing"
        );
    }
}

fn identity(name: &str, kind: IdentityKind) -> Identity {
    Identity {
        name: name.into(),
        kind,
        groups: vec!["eng".into()],
        auth_method: AuthMethod::AirlockToken {
            token_id: "t-1".into(),
        },
        expires_at: 0,
    }
}

fn connection(name: &str, env: &str) -> ConnectionInfo {
    ConnectionInfo {
        name: name.into(),
        protocol: Protocol::Postgres,
        tags: [("env".to_string(), env.to_string())].into(),
    }
}

fn run(policy: &Policy, kind: IdentityKind, env: &str, sql: &str) -> airlock_policy::Decision {
    let identity = identity("agent-7", kind);
    let connection = connection(&format!("{env}-pg"), env);
    let command = classify(Dialect::Postgres, sql);
    decide(
        policy,
        &DecisionInput {
            identity: &identity,
            connection: &connection,
            command: &command,
            now_unix: 1_700_000_000,
        },
    )
}

#[test]
fn example_and_fixture_load() {
    let shared = example();
    assert_eq!(shared.rules.len(), 8);
    let fixture = Policy::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy.yaml"),
    )
    .unwrap();
    assert_eq!(fixture.rules.len(), shared.rules.len());
    let review = shared.rule("agent-writes-in-prod-need-review").unwrap();
    assert_eq!(review.line, 30);
}

/// (identity kind, env, sql, expected verdict, deciding rule)
const DECISIONS: &[(IdentityKind, &str, &str, &str, Option<&str>)] = &[
    (
        IdentityKind::Agent,
        "prod",
        "UPDATE accounts SET balance = 0",
        "deny",
        Some("no-unbounded-writes"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "DELETE FROM accounts",
        "deny",
        Some("no-unbounded-writes"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "INSERT INTO accounts VALUES (1)",
        "review",
        Some("agent-writes-in-prod-need-review"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "UPDATE accounts SET a = 1 WHERE id = 1",
        "review",
        Some("agent-writes-in-prod-need-review"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "DROP TABLE accounts",
        "deny",
        Some("no-destructive-ddl-in-prod"),
    ),
    (
        IdentityKind::Human,
        "prod",
        "TRUNCATE accounts",
        "deny",
        Some("no-destructive-ddl-in-prod"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "SELECT * FROM accounts",
        "allow",
        None,
    ),
    (
        IdentityKind::Agent,
        "prod",
        "GRANT SELECT ON accounts TO bob",
        "review",
        Some("grants-need-mfa"),
    ),
    (
        IdentityKind::Agent,
        "dev",
        "INSERT INTO accounts VALUES (1)",
        "allow",
        None,
    ),
    (
        IdentityKind::Agent,
        "dev",
        "CREATE TABLE t (a int)",
        "allow",
        None,
    ),
    (
        IdentityKind::Agent,
        "prod",
        "CREATE TABLE t (a int)",
        "deny",
        None,
    ),
    (
        IdentityKind::Agent,
        "dev",
        "FROBNICATE everything",
        "deny",
        None,
    ),
    (
        IdentityKind::Agent,
        "dev",
        "DO $$ BEGIN DELETE FROM t; END $$",
        "deny",
        None,
    ),
    (
        IdentityKind::Agent,
        "prod",
        "select 1; drop table t",
        "deny",
        Some("no-destructive-ddl-in-prod"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "deny",
        Some("no-unbounded-writes"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "select pg_terminate_backend(1)",
        "review",
        Some("grants-need-mfa"),
    ),
    (
        IdentityKind::Agent,
        "prod",
        "select my_function(1)",
        "deny",
        None,
    ),
    (IdentityKind::Agent, "dev", "", "deny", None),
];

#[test]
fn decisions_on_example_policy() {
    let policy = example();
    for (kind, env, sql, expected, rule) in DECISIONS {
        let decision = run(&policy, *kind, env, sql);
        assert_eq!(
            decision.verdict.name(),
            *expected,
            "{sql} on {env}: {decision:#?}"
        );
        match (&decision.verdict, rule) {
            (Verdict::Deny { rule: got, .. }, _) => assert_eq!(got.as_deref(), *rule, "{sql}"),
            (Verdict::Review { rule: got, .. }, Some(rule)) => assert_eq!(got, rule, "{sql}"),
            _ => {}
        }
        assert_eq!(decision.policy_version, 7);
    }
}

#[test]
fn obligations_and_review_details() {
    let policy = example();
    let decision = run(
        &policy,
        IdentityKind::Agent,
        "prod",
        "SELECT email FROM users",
    );
    assert_eq!(decision.verdict, Verdict::Allow);
    let mask = decision.mask.expect("prod reads are masked");
    assert_eq!(
        mask.detectors,
        vec!["card", "email", "iban", "phone", "secret", "ssn"]
    );
    assert_eq!(mask.columns, vec!["*password*", "*token*"]);
    assert_eq!(mask.style, MaskStyle::Partial);
    assert_eq!(decision.rate_limits.len(), 1);
    assert_eq!(decision.rate_limits[0].per_minute, 600);
    assert!(decision
        .matched_rules
        .iter()
        .any(|m| m.name == "mask-pii-in-prod" && m.action == MatchedAction::Obligation));

    let decision = run(
        &policy,
        IdentityKind::Agent,
        "prod",
        "INSERT INTO t VALUES (1)",
    );
    match &decision.verdict {
        Verdict::Review {
            approvers,
            wait,
            require_mfa,
            ..
        } => {
            assert_eq!(approvers, &vec!["dba".to_string()]);
            assert_eq!(*wait, Some(Duration::from_secs(30)));
            assert!(!require_mfa);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decision.client_message().unwrap(),
        "review required by rule \"agent-writes-in-prod-need-review\" (policy v7)"
    );
    assert_eq!(
        decision.review_message("r-3f9c").unwrap(),
        "review r-3f9c required by rule \"agent-writes-in-prod-need-review\" (policy v7); approve with: airlock review approve r-3f9c"
    );

    let decision = run(&policy, IdentityKind::Agent, "prod", "GRANT ALL ON t TO x");
    assert!(matches!(
        decision.verdict,
        Verdict::Review {
            require_mfa: true,
            ..
        }
    ));

    let decision = run(&policy, IdentityKind::Agent, "prod", "DROP TABLE t");
    assert_eq!(
        decision.client_message().unwrap(),
        "blocked by rule \"no-destructive-ddl-in-prod\" (policy v7): destructive DDL is blocked in production"
    );
}

#[test]
fn incomplete_needs_explicit_allow_even_with_default_allow() {
    let yaml = "version: 1\ndefault: allow\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n";
    let policy = Policy::from_yaml(yaml, "p.yaml").unwrap();
    let decision = run(&policy, IdentityKind::Human, "dev", "DO $$ BEGIN END $$");
    assert!(
        matches!(decision.verdict, Verdict::Deny { rule: None, .. }),
        "{decision:?}"
    );
    assert!(decision
        .client_message()
        .unwrap()
        .contains("could not be classified"));
    let decision = run(
        &policy,
        IdentityKind::Human,
        "dev",
        "INSERT INTO t VALUES (1)",
    );
    assert_eq!(
        decision.verdict,
        Verdict::Allow,
        "default allow for complete statements"
    );

    let yaml = "version: 1\nrules:\n  - name: humans-may-do\n    match: {identity: {kind: human}, complete: false}\n    action: allow\n";
    let policy = Policy::from_yaml(yaml, "p.yaml").unwrap();
    assert_eq!(
        run(&policy, IdentityKind::Human, "dev", "DO $$ BEGIN END $$").verdict,
        Verdict::Allow
    );
    assert!(matches!(
        run(&policy, IdentityKind::Agent, "dev", "DO $$ BEGIN END $$").verdict,
        Verdict::Deny { .. }
    ));
}

#[test]
fn allow_lists_must_cover_the_statement() {
    let yaml = r#"version: 1
rules:
  - name: selects-on-public
    match: {operations: [select], tables: ["public.*"]}
    action: allow
  - name: nextval-ok
    match: {functions: [nextval, count]}
    action: allow
"#;
    let policy = Policy::from_yaml(yaml, "p.yaml").unwrap();
    let cases = [
        ("SELECT * FROM public.a", "allow"),
        ("SELECT * FROM public.a JOIN private.b ON true", "deny"),
        (
            "WITH d AS (DELETE FROM public.a RETURNING *) SELECT * FROM d",
            "deny",
        ),
        ("SELECT 1", "deny"),
        ("DROP ROLE bob", "deny"),
        ("SELECT nextval('s')", "allow"),
        ("SELECT nextval('s'), pg_terminate_backend(1)", "deny"),
    ];
    for (sql, expected) in cases {
        let decision = run(&policy, IdentityKind::Agent, "dev", sql);
        assert_eq!(decision.verdict.name(), expected, "{sql}: {decision:?}");
    }
}

#[test]
fn command_level_conditions() {
    let yaml = r#"version: 1
rules:
  - name: office-hours
    match: {identity: {name: "agent-*", groups: [eng]}, connection: {name: "*-pg"}, statements: {max: 1}, time: {days: [mon-fri], from: "08:00", to: "18:00", timezone: UTC}}
    action: allow
"#;
    let policy = Policy::from_yaml(yaml, "p.yaml").unwrap();
    let identity = identity("agent-7", IdentityKind::Agent);
    let connection = connection("dev-pg", "dev");
    let single = classify(Dialect::Postgres, "SELECT 1");
    let double = classify(Dialect::Postgres, "SELECT 1; SELECT 2");
    // 2023-11-14 (Tuesday) 22:13 UTC, and the same day at 10:00 UTC.
    let evening = 1_700_000_000;
    let morning = 1_699_956_000;
    let verdict = |command, now_unix| {
        decide(
            &policy,
            &DecisionInput {
                identity: &identity,
                connection: &connection,
                command,
                now_unix,
            },
        )
        .verdict
        .name()
    };
    assert_eq!(verdict(&single, morning), "allow");
    assert_eq!(verdict(&single, evening), "deny");
    assert_eq!(verdict(&double, morning), "deny");
    // Saturday 2023-11-18 10:00 UTC.
    assert_eq!(verdict(&single, morning + 4 * 86_400), "deny");
}

#[test]
fn validation_reports_every_problem_with_lines() {
    let yaml = r#"version: 1
default: deny
detectors:
  - name: employee_id
    regex: "E[0-9]{6}"
    validator: luhn
rules:
  - name: reads
    match: {access: reed}
    action: allow
  - name: reads
    match:
      operations: [select, selekt]
      tables: ["a[b"]
    action: allow
  - name: needs-someone
    match: {access: write}
    action: review
    wait: soon
  - name: masks
    mask:
      detectors: [email, employee_id, passport]
      style: blurry
  - name: limited
    rate_limit: {per_minute: 0}
  - name: lonely
    match: {access: write}
"#;
    let error: PolicyError = Policy::from_yaml(yaml, "policy.yaml").unwrap_err();
    let text = error.to_string();
    let expected = [
        "policy.yaml:9: rule \"reads\": match.access: unknown access \"reed\"",
        "policy.yaml:11: rule \"reads\": name: duplicate rule name",
        "policy.yaml:13: rule \"reads\": match.operations: unknown operation \"selekt\"",
        "policy.yaml:14: rule \"reads\": match.tables: bad glob \"a[b\"",
        "policy.yaml:16: rule \"needs-someone\": approvers: a review rule needs approvers",
        "policy.yaml:19: rule \"needs-someone\": wait: \"soon\" is not a duration",
        "policy.yaml:22: rule \"masks\": mask.detectors: unknown detector \"passport\"",
        "policy.yaml:23: rule \"masks\": mask.style: unknown mask style \"blurry\"",
        "policy.yaml:25: rule \"limited\": rate_limit.per_minute: must be at least 1",
        "policy.yaml:26: rule \"lonely\": rule does nothing",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(error.problems.len(), expected.len(), "{text}");
    assert_eq!(text.lines().count(), expected.len());
}

#[test]
fn structural_errors_are_reported_per_rule() {
    let yaml = r#"version: 1
rules:
  - name: typo
    match: {acess: read}
    action: allow
  - name: fine-but-bad-op
    match: {operations: [explode]}
    action: deny
  - name: also-typo
    actoin: deny
"#;
    let error = Policy::from_yaml(yaml, "policy.yaml").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("policy.yaml:3: rule \"typo\": "), "{text}");
    assert!(text.contains("acess"), "{text}");
    assert!(
        text.contains("rule \"fine-but-bad-op\": match.operations: unknown operation \"explode\""),
        "{text}"
    );
    assert!(text.contains("policy.yaml:9: rule \"also-typo\""), "{text}");
    assert_eq!(error.problems.len(), 3, "{text}");

    let error = Policy::from_yaml("version: 1\nrules: [\n", "policy.yaml").unwrap_err();
    assert_eq!(error.problems.len(), 1);
    let error = Policy::from_yaml("version: 2\nrules: []\n", "policy.yaml").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("policy.yaml:1: version: unsupported"),
        "{error}"
    );
}

#[test]
fn explain_matches_decision() {
    let policy = example();
    let identity = identity("agent-7", IdentityKind::Agent);
    let connection = connection("prod-pg", "prod");
    let command = classify(
        Dialect::Postgres,
        "SELECT * FROM users; UPDATE users SET a = 1",
    );
    let input = DecisionInput {
        identity: &identity,
        connection: &connection,
        command: &command,
        now_unix: 0,
    };
    let explanation = explain(&policy, &input);
    assert_eq!(explanation.decision, decide(&policy, &input));
    assert_eq!(explanation.statements.len(), 2);
    assert_eq!(explanation.statements[0].verdict, Verdict::Allow);
    assert_eq!(explanation.statements[1].verdict.name(), "deny");
    let text = explanation.to_text();
    assert!(text.contains("decision: deny (policy v7"), "{text}");
    assert!(
        text.contains("rule \"no-unbounded-writes\" (line 23, deny): matched"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&explanation.to_json()).unwrap();
    assert_eq!(json["decision"]["verdict"]["verdict"], "deny");
    assert_eq!(json["statements"][1]["classification"]["has_where"], false);
}
