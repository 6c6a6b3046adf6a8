//! End-to-end tests of authentication lockouts: on the admin API (admin and
//! personal bearer tokens, per source address) and on the PostgreSQL
//! listener (per source and claimed identity, plus a higher per-source
//! limit), and `airlock auth unlock`.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, connect, events, http, issue_for, setup};
use std::time::Duration;

fn retry_after(headers: &[String]) -> Option<u64> {
    headers
        .iter()
        .find_map(|line| line.strip_prefix("retry-after:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Wrong bearer tokens (admin or personal) from one address lock the admin
/// API for that address: even the right admin token gets 429 with
/// Retry-After until the lockout ends; the lockout is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_api_tokens_lock_the_source_out() {
    let (_cluster, gateway) = setup("auth:\n  lockout_threshold: 5\n  lockout_duration: 3s\n");
    let admin = gateway.admin_token.clone();
    let personal = issue_for(&gateway, "pg-test", "alice", "human", &["dba"]);

    // Below the threshold, the right tokens still work.
    for attempt in 0..4 {
        let path = if attempt % 2 == 0 {
            "/api/v1/tokens"
        } else {
            "/api/v1/reviews"
        };
        let (status, _, _) = http(&gateway, "GET", path, &format!("wrong-{attempt}"), None);
        assert_eq!(status, 401, "attempt {attempt}");
    }
    assert_eq!(http(&gateway, "GET", "/api/v1/tokens", &admin, None).0, 200);
    assert_eq!(
        http(&gateway, "GET", "/api/v1/reviews", &personal, None).0,
        200
    );

    // The fifth wrong token locks the address out, whatever token comes next.
    assert_eq!(
        http(&gateway, "GET", "/api/v1/reviews", "wrong-4", None).0,
        401
    );
    for token in [admin.as_str(), personal.as_str(), "wrong-5"] {
        for path in ["/api/v1/tokens", "/api/v1/reviews"] {
            let (status, headers, body) = http(&gateway, "GET", path, token, None);
            assert_eq!(status, 429, "{path}: {body}");
            let seconds = retry_after(&headers).expect("a Retry-After header");
            assert!((1..=3).contains(&seconds), "{seconds}");
            assert!(
                body.contains("too many failed authentication attempts"),
                "{body}"
            );
        }
    }
    // Open routes stay open.
    assert_eq!(gateway.http_get("/healthz").unwrap().0, 200);

    // After the lockout, the admin token works again.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(http(&gateway, "GET", "/api/v1/tokens", &admin, None).0, 200);

    let events = events(&gateway);
    let lockouts: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "auth.lockout")
        .collect();
    assert_eq!(lockouts.len(), 1, "{lockouts:?}");
    assert_eq!(lockouts[0].data["protocol"], "admin_api");
    assert_eq!(lockouts[0].data["client_address"], "127.0.0.1");
    let failures = events
        .iter()
        .filter(|event| event.kind == "auth.failure" && event.data["protocol"] == "admin_api")
        .count();
    assert_eq!(failures, 5);
    for event in &events {
        assert!(
            !event.data.to_string().contains(&admin),
            "an event holds the admin token"
        );
    }
}

/// One agent's wrong passwords lock out that agent from its address, not
/// the other agents behind it; spraying many identities locks the address;
/// `airlock auth unlock` ends both without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_is_per_identity_and_source_and_can_be_lifted() {
    let (_cluster, gateway) = setup(
        "auth:\n  lockout_threshold: 5\n  lockout_source_threshold: 12\n  lockout_duration: 5m\n",
    );
    let (_x_id, agent_x) = gateway.issue_token("agent-x", &["pg-test"], "15m");
    let (_seven_id, agent_7) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    for _ in 0..5 {
        let error = connect(&gateway, "agent-x", "pg-test", "wrong-password")
            .await
            .err()
            .expect("a wrong password is refused");
        assert_eq!(error.as_db_error().unwrap().code().code(), "28P01");
    }
    // agent-x is locked out from this address, even with its good token …
    let error = connect(&gateway, "agent-x", "pg-test", &agent_x)
        .await
        .err()
        .expect("a locked-out identity is refused");
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "28000");
    assert!(
        db_error
            .message()
            .contains("too many failed authentication attempts for user \"agent-x\""),
        "{db_error:?}"
    );
    // … but agent-7 behind the same address is not.
    let seven = client(&gateway, "agent-7", "pg-test", &agent_7).await;
    assert_eq!(
        seven
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );

    // `auth unlock --identity` lifts it.
    let output = gateway.cli_ok(
        &[
            "auth",
            "unlock",
            "--identity",
            "agent-x",
            "--output",
            "json",
        ],
        None,
    );
    let outcome: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(outcome["lockouts_ended"], 1, "{outcome}");
    let x = client(&gateway, "agent-x", "pg-test", &agent_x).await;
    assert_eq!(
        x.query_one("select 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );

    // Spraying identities from one address locks the address as a whole
    // (12 failures: 5 were counted above).
    for attempt in 0..7 {
        let user = format!("sprayed-{attempt}");
        assert!(connect(&gateway, &user, "pg-test", "guess").await.is_err());
    }
    let error = connect(&gateway, "agent-7", "pg-test", &agent_7)
        .await
        .err()
        .expect("a locked-out source is refused");
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "28000");
    assert!(
        db_error
            .message()
            .contains("too many failed authentication attempts from 127.0.0.1"),
        "{db_error:?}"
    );
    let lockouts: Vec<_> = events(&gateway)
        .into_iter()
        .filter(|event| event.kind == "auth.lockout")
        .collect();
    let scopes: Vec<_> = lockouts
        .iter()
        .map(|event| event.data["scope"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(scopes, ["identity", "source"]);

    gateway.cli_ok(&["auth", "unlock", "--source", "127.0.0.1"], None);
    client(&gateway, "agent-7", "pg-test", &agent_7).await;
    assert!(events(&gateway)
        .iter()
        .any(|event| event.kind == "auth.unlock"));

    // A bad address is refused with the reason.
    let output = gateway.cli(&["auth", "unlock", "--source", "not-an-ip"], None);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not an IP address"),
        "{output:?}"
    );
}
