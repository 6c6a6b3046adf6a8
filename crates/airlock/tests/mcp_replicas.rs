//! airlock's own `/mcp` behind two replicas sharing one PostgreSQL store
//! and master key: a session initialized through replica A is used
//! through replica B (the `Mcp-Session-Id` is self-contained: signed,
//! expiring, bound to the identity; no replica-local state), the `query`
//! reaches the upstream through B; an altered id, or the id used by
//! another identity, is refused (404) and runs nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::GatewayProcess;
use serde_json::{json, Value};
use std::process::Command;

use common::replicas::{clusters, start_replica};

/// POSTs `body` to `/mcp` of `gateway`: (status, headers, JSON body).
fn post(
    gateway: &GatewayProcess,
    token: &str,
    session: Option<&str>,
    body: &Value,
) -> (u16, String, Value) {
    let auth = format!("Authorization: Bearer {token}");
    let session = session.map(|id| format!("Mcp-Session-Id: {id}"));
    let body = body.to_string();
    let mut args = vec![
        "-sS",
        "--max-time",
        "30",
        "-D",
        "/dev/stderr",
        "-o",
        "/dev/stdout",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json",
        "-H",
        auth.as_str(),
        "--data-binary",
        body.as_str(),
    ];
    if let Some(session) = &session {
        args.extend(["-H", session.as_str()]);
    }
    let output = Command::new("curl")
        .args(&args)
        .arg(format!("http://127.0.0.1:{}/mcp", gateway.http_port))
        .output()
        .expect("run curl");
    let head = String::from_utf8_lossy(&output.stderr).to_ascii_lowercase();
    let status = head
        .lines()
        .find(|line| line.starts_with("http/"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (status, head, body)
}

fn query(sql: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "query", "arguments": {"connection": "pg-test", "sql": sql}},
    })
}

#[test]
fn a_session_initialized_on_one_replica_works_on_another_for_its_identity_only() {
    let (store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    let b = start_replica(&config, &store);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let (_, other) = a.issue_token("agent-8", &["pg-test"], "1h");

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    });
    let (status, head, answer) = post(&a, &token, None, &initialize);
    assert_eq!(status, 200, "{answer}");
    let session = head
        .lines()
        .find_map(|line| line.strip_prefix("mcp-session-id: "))
        .expect("a session id")
        .trim()
        .to_string();

    // Through B with A's session id: served, and the upstream ran it.
    let (status, _, answer) = post(
        &b,
        &token,
        Some(&session),
        &query("select 'replica_marker_b', count(*) from items"),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert!(upstream.log().contains("replica_marker_b"));

    // Altered (one hex digit of the tag flipped): refused, nothing runs.
    let mut altered = session.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let (status, _, _) = post(
        &b,
        &token,
        Some(&altered),
        &query("select 'replica_marker_altered'"),
    );
    assert_eq!(status, 404);
    // Its issue time moved: refused.
    let (_, rest) = session.split_once('.').unwrap();
    let moved = format!("9{rest}");
    let (status, _, _) = post(
        &b,
        &token,
        Some(&moved),
        &query("select 'replica_marker_moved'"),
    );
    assert_eq!(status, 404);
    // Another identity's token with agent-7's id: refused on both replicas.
    for replica in [&a, &b] {
        let (status, _, _) = post(
            replica,
            &other,
            Some(&session),
            &query("select 'replica_marker_other'"),
        );
        assert_eq!(status, 404);
    }
    let log = upstream.log();
    for marker in [
        "replica_marker_altered",
        "replica_marker_moved",
        "replica_marker_other",
    ] {
        assert!(!log.contains(marker), "{marker} ran");
    }
}
