//! Limits across two replicas on one shared PostgreSQL store, in front of a
//! real upstream PostgreSQL: lockout counters live in the store (wrong
//! tokens through both replicas add up, and the lockout holds on both,
//! for the PostgreSQL listener and for the admin API), while rate limits
//! are each replica's own (a `per_minute: 3` rule allows three commands
//! per minute on each replica, as the README says). Checked on the
//! upstream's table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::replicas::{clusters_with, count, start_replica, start_replica_with_policy};

/// Three wrong tokens for agent-7, spread over A and B (neither sees
/// three itself), lock agent-7 out on both: even the right token is
/// refused and its INSERT never reaches the upstream; agent-8 from the
/// same address is not locked; `airlock auth unlock` through A lifts it
/// on B. The admin API likewise: wrong tokens on A and B lock the
/// address out of B's API.
#[test]
fn failed_logins_through_two_replicas_are_counted_once() {
    let (store, upstream, config) = clusters_with(&[
        "auth:\n  lockout_threshold: 3\n  lockout_source_threshold: 10\n  lockout_duration: 60s\n",
    ]);
    let a = start_replica(&config, &store);
    let b = start_replica(&config, &store);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let (_, other) = a.issue_token("agent-8", &["pg-test"], "1h");
    let insert = |replica: &airlock_testkit::GatewayProcess, user: &str, token: &str, id: i32| {
        replica.psql(
            token,
            user,
            "pg-test",
            "require",
            &format!("insert into items values ({id}, 'x')"),
        )
    };

    for (n, replica) in [&a, &b, &a].into_iter().enumerate() {
        let output = insert(replica, "agent-7", &format!("wrong-token-{n}"), 100);
        assert!(!output.status.success());
        let error = common::stderr(&output);
        assert!(error.contains("authentication failed"), "{error}");
    }
    for replica in [&b, &a] {
        let output = insert(replica, "agent-7", &token, 101);
        assert!(!output.status.success(), "a locked-out identity logged in");
        let error = common::stderr(&output);
        assert!(
            error.contains("too many failed authentication attempts for user \"agent-7\""),
            "{error}"
        );
    }
    assert_eq!(
        count(&upstream),
        "5",
        "a locked-out login reached the upstream"
    );
    let output = insert(&b, "agent-8", &other, 102);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(count(&upstream), "6");
    let lockouts = store.sql_in(
        "airlock_state",
        "select count(*) from login_lockouts where realm = 'login' and identity = 'agent-7'",
    );
    assert_eq!(lockouts.trim(), "1");

    a.cli_ok(&["auth", "unlock", "--identity", "agent-7"], None);
    let output = insert(&b, "agent-7", &token, 103);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(count(&upstream), "7");

    // The admin API: two wrong tokens on A, one on B; then B refuses even
    // the admin token from this address.
    for (replica, wrong) in [
        (&a, "wrong-api-1"),
        (&b, "wrong-api-2"),
        (&a, "wrong-api-3"),
    ] {
        let (status, _, _) = common::http(replica, "GET", "/api/v1/tokens", wrong, None);
        assert_eq!(status, 401);
    }
    let (status, _, body) = common::http(&b, "GET", "/api/v1/tokens", &b.admin_token, None);
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("too many failed authentication attempts"),
        "{body}"
    );
}

/// Rate limits are per replica: `per_minute: 3` lets three INSERTs through
/// A and three more through B within the minute; the fourth on each is
/// refused, and the upstream holds exactly six new rows.
#[test]
fn rate_limits_are_counted_by_each_replica() {
    let (store, upstream, config) = clusters_with(&[]);
    let policy = "version: 1\ndefault: deny\nrules:\n  - name: everything\n    match: {}\n    action: allow\n  - name: slow\n    match: {}\n    rate_limit: {per_minute: 3}\n";
    let a = start_replica_with_policy(&config, &store, policy);
    let b = start_replica_with_policy(&config, &store, policy);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let mut id = 100;
    for replica in [&a, &b] {
        let mut allowed = 0;
        for _ in 0..4 {
            id += 1;
            let output = replica.psql(
                &token,
                "agent-7",
                "pg-test",
                "require",
                &format!("insert into items values ({id}, 'x')"),
            );
            if output.status.success() {
                allowed += 1;
            } else {
                let error = common::stderr(&output);
                assert!(error.contains("rate limit"), "{error}");
            }
        }
        assert_eq!(allowed, 3, "three per minute on each replica");
    }
    assert_eq!(count(&upstream), "11");
}
