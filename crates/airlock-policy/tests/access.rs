//! Just-in-time access rules: who may request what, for how long, approved
//! by whom; standing access.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used)]

use airlock_policy::{decide_access, standing_access, AccessDecision, Policy};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
use std::time::Duration;

const POLICY: &str = "version: 1
rules: []
access:
  - name: agents-to-prod
    match:
      identity: {kind: agent}
      connection: {tags: {env: prod}}
    max_duration: 1h
    approvers: [dba]
  - name: quick-looks
    match:
      identity: {groups: [oncall]}
    max_duration: 15m
    auto_approve: true
  - name: dbas-standing
    match:
      identity: {groups: [dba]}
    standing: true
";

fn identity(kind: IdentityKind, groups: &[&str]) -> Identity {
    Identity {
        name: "x".into(),
        kind,
        groups: groups.iter().map(|group| group.to_string()).collect(),
        auth_method: AuthMethod::AirlockToken {
            token_id: "t".into(),
        },
        expires_at: i64::MAX,
    }
}

fn prod() -> ConnectionInfo {
    ConnectionInfo {
        name: "prod-pg".into(),
        protocol: Protocol::Postgres,
        tags: [("env".to_string(), "prod".to_string())].into(),
    }
}

#[test]
fn access_requests_are_decided_by_the_rules() {
    let policy = Policy::from_yaml(POLICY, "p.yaml").unwrap();
    let agent = identity(IdentityKind::Agent, &[]);
    let decision = decide_access(&policy, &agent, &prod(), Duration::from_secs(1800), 0);
    assert_eq!(
        decision,
        AccessDecision::NeedsApproval {
            rule: "agents-to-prod".into(),
            approvers: vec!["dba".into()],
            min_approvals: 1,
            require_mfa: false
        }
    );
    let too_long = decide_access(&policy, &agent, &prod(), Duration::from_secs(7200), 0);
    assert!(
        matches!(too_long, AccessDecision::Denied { message } if message.contains("at most 3600 s"))
    );
    let human = identity(IdentityKind::Human, &[]);
    assert!(matches!(
        decide_access(&policy, &human, &prod(), Duration::from_secs(60), 0),
        AccessDecision::Denied { .. }
    ));
    let oncall = identity(IdentityKind::Agent, &["oncall"]);
    assert_eq!(
        decide_access(&policy, &oncall, &prod(), Duration::from_secs(600), 0),
        AccessDecision::AutoApproved {
            rule: "quick-looks".into()
        }
    );
    assert_eq!(
        standing_access(
            &policy,
            &identity(IdentityKind::Human, &["dba"]),
            &prod(),
            0
        )
        .as_deref(),
        Some("dbas-standing")
    );
    assert_eq!(standing_access(&policy, &agent, &prod(), 0), None);
}

#[test]
fn access_rules_are_validated() {
    let error = Policy::from_yaml(
        "version: 1\nrules: []\naccess:\n  - name: a\n    match: {operations: [select]}\n  - name: a\n    max_duration: soon\n    approvers: dba\n",
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("identity, connection and time only"),
        "{error}"
    );
    assert!(error.contains("max_duration is required"), "{error}");
    assert!(error.contains("approvers are required"), "{error}");
    assert!(error.contains("defined twice"), "{error}");
    assert!(error.contains("\"soon\" is not a duration"), "{error}");
}
