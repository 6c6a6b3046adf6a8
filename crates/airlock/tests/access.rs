//! End-to-end tests of just-in-time access: a `jit` connection admits an
//! identity only under a grant (or a standing access rule); grants come
//! from requests that the policy decides and approvers approve; sessions
//! end when their grant does.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::GatewayProcess;
use common::{client, connect, eventually, stderr, stdout};
use serde_json::Value;

/// Continues the `connections:` list of the common config.
const JIT_CONNECTION: &str = "  - name: pg-jit
    protocol: postgres
    address: 127.0.0.1:{PORT}
    database: appdb
    credential: app
    access: jit
";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
access:
  - name: agents-ask
    match:
      identity: {kind: agent}
      connection: {name: pg-jit}
    max_duration: 1h
    approvers: dba
  - name: oncall-quick
    match:
      identity: {groups: [oncall]}
    max_duration: 10m
    auto_approve: true
  - name: dbas-standing
    match:
      identity: {groups: [dba]}
    standing: true
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_standing_access_until_a_grant_and_sessions_end_with_it() {
    let cluster = airlock_testkit::PgCluster::start();
    let extra = JIT_CONNECTION.replace("{PORT}", &cluster.port.to_string());
    let config = common::config(&cluster, &extra);
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let agent = common::issue_for(&gateway, "pg-jit", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&gateway, "pg-jit", "alice", "human", &["dba"]);

    // No grant: refused, with how to ask.
    let output = gateway.psql(&agent, "agent-7", "pg-jit", "disable", "select 1");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("has no access grant for connection \"pg-jit\""),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("airlock access request --connection pg-jit"),
        "{}",
        stderr(&output)
    );

    // Too long a request is refused by the policy.
    let too_long = common::as_person(
        &gateway,
        &agent,
        &[
            "access",
            "request",
            "--connection",
            "pg-jit",
            "--duration",
            "2h",
            "--reason",
            "x",
        ],
    );
    assert!(!too_long.status.success());
    assert!(
        stderr(&too_long).contains("at most 3600 s"),
        "{}",
        stderr(&too_long)
    );

    // The agent asks for itself; a DBA approves; the agent gets in.
    let requested = common::as_person(
        &gateway,
        &agent,
        &[
            "access",
            "request",
            "--connection",
            "pg-jit",
            "--duration",
            "4s",
            "--reason",
            "INC-1: look at orders",
            "--output",
            "json",
        ],
    );
    assert!(requested.status.success(), "{}", stderr(&requested));
    let requested: Value = serde_json::from_str(&stdout(&requested)).unwrap();
    assert_eq!(requested["status"], "pending");
    let request_id = requested["request_id"].as_str().unwrap();
    let listed: Value =
        serde_json::from_str(&gateway.cli_ok(&["access", "list", "--output", "json"], None))
            .unwrap();
    assert_eq!(listed["requests"][0]["id"], request_id);
    let approved = common::as_person(&gateway, &alice, &["review", "approve", request_id]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let session = client(&gateway, "agent-7", "pg-jit", &agent).await;
    assert_eq!(
        session
            .query_one("select 41 + 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        42
    );

    // The grant expires: the live session is cut, new ones are refused.
    assert!(
        eventually(10, || session.is_closed()).await,
        "the session outlived its grant"
    );
    assert!(connect(&gateway, "agent-7", "pg-jit", &agent)
        .await
        .is_err());
    // The record says the grant ended it, not the token.
    let ended = common::events(&gateway)
        .into_iter()
        .filter(|event| event.kind == "session.end" && event.data["connection"] == "pg-jit")
        .map(|event| (event.data["ended_by"].clone(), event.data["detail"].clone()))
        .collect::<Vec<_>>();
    assert!(
        ended.iter().any(|(by, detail)| by == "expired"
            && detail.as_str().is_some_and(|d| d.contains("access grant"))),
        "{ended:?}"
    );

    // Auto-approved access for on-call, then revoked with its session.
    let oncall = common::issue_for(&gateway, "pg-jit", "agent-9", "agent", &["oncall"]);
    let granted = common::as_person(
        &gateway,
        &oncall,
        &[
            "access",
            "request",
            "--connection",
            "pg-jit",
            "--duration",
            "5m",
            "--reason",
            "pager",
            "--output",
            "json",
        ],
    );
    let granted: Value = serde_json::from_str(&stdout(&granted)).unwrap();
    assert_eq!(granted["status"], "granted");
    let grant_id = granted["grant_id"].as_str().unwrap();
    let on_call_session = client(&gateway, "agent-9", "pg-jit", &oncall).await;
    assert_eq!(
        on_call_session
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    let revoked: Value = serde_json::from_str(
        &gateway.cli_ok(&["access", "revoke", grant_id, "--output", "json"], None),
    )
    .unwrap();
    assert_eq!(revoked["sessions_closed"], 1);
    assert!(eventually(5, || on_call_session.is_closed()).await);

    // Standing access: a DBA needs no grant.
    let output = gateway.psql(&alice, "alice", "pg-jit", "disable", "select 'standing'");
    assert!(output.status.success(), "{}", stderr(&output));

    // Connections without `access: jit` are unaffected.
    let (_id, plain) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    assert!(gateway
        .psql(&plain, "agent-7", "pg-test", "disable", "select 1")
        .status
        .success());

    let events = common::events(&gateway);
    for kind in [
        "access.refused",
        "access.request",
        "access.grant",
        "access.revoke",
        "access.denied",
    ] {
        assert!(
            events.iter().any(|event| event.kind == kind),
            "no {kind} event"
        );
    }
}
