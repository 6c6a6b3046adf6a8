//! What an operator reads in the gateway's logs: every log line of a
//! session carries the session id, protocol, client, identity and
//! connection (a `tracing` span), so one session's lines can be found
//! without knowing which call site wrote which field.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{setup, stderr};
use std::time::Duration;

#[test]
fn every_session_log_line_carries_the_session_span() {
    let (_cluster, mut gateway) = setup("");
    gateway.restart_with_env(&[("AIRLOCK_LOG_FORMAT", "json"), ("AIRLOCK_LOG", "info")]);
    let (_, token) = gateway.issue_token("agent-7", &["pg-test"], "1h");
    let output = gateway.psql(&token, "agent-7", "pg-test", "disable", "select 1");
    assert!(output.status.success(), "{}", stderr(&output));
    // A session refused at admission logs inside its span too.
    let refused = gateway.psql(
        &token,
        "agent-7",
        "no-such-connection",
        "disable",
        "select 1",
    );
    assert!(!refused.status.success());

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let log = gateway.log();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let ended = lines
            .iter()
            .any(|line| line["fields"]["message"] == "session ended");
        if ended || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let session_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| {
            matches!(
                line["fields"]["message"].as_str(),
                Some("session started" | "session ended")
            )
        })
        .collect();
    assert_eq!(session_lines.len(), 2, "{}", gateway.log());
    for line in session_lines {
        let span = &line["span"];
        assert_eq!(span["name"], "session", "{line}");
        assert_eq!(span["protocol"], "postgres", "{line}");
        assert_eq!(span["identity"], "agent-7", "{line}");
        assert_eq!(span["connection"], "pg-test", "{line}");
        assert!(
            span["session"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(
            span["client"]
                .as_str()
                .is_some_and(|client| client.starts_with("127.0.0.1:")),
            "{line}"
        );
    }
    // The refused session's lines name the connection it asked for.
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["connection"] == "no-such-connection"),
        "{}",
        gateway.log()
    );
    // And the token is in no log line.
    assert!(!gateway.log().contains(&token));
}

/// The syntax check (libpg_query) points the process's file descriptor 2
/// at a pipe while it parses; the gateway's log writes to its own duplicate
/// of standard error, so no session's log line is lost to a parse that runs
/// at the same moment in another session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_survive_syntax_checks_running_meanwhile() {
    let (_cluster, mut gateway) = setup("");
    gateway.restart_with_env(&[("AIRLOCK_LOG_FORMAT", "json"), ("AIRLOCK_LOG", "info")]);
    let (_, flooder) = gateway.issue_token("flooder", &["pg-test"], "1h");
    let (_, agent) = gateway.issue_token("agent-8", &["pg-test"], "1h");
    let client = common::client(&gateway, "flooder", "pg-test", &flooder).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let done = std::sync::Arc::clone(&done);
        tokio::spawn(async move {
            let mut checked = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let error = client.simple_query("selec 1").await.unwrap_err();
                assert_eq!(error.code().map(|code| code.code()), Some("42601"));
                checked += 1;
            }
            checked
        })
    };
    const SESSIONS: usize = 25;
    for _ in 0..SESSIONS {
        let output = tokio::task::block_in_place(|| {
            gateway.psql(&agent, "agent-8", "pg-test", "disable", "select 1")
        });
        assert!(output.status.success(), "{}", stderr(&output));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let checked = flood.await.unwrap();
    assert!(checked > 100, "only {checked} syntax checks ran meanwhile");
    let count = |message: &str| {
        gateway
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| {
                line["fields"]["message"] == message && line["span"]["identity"] == "agent-8"
            })
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count("session ended") < SESSIONS && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count("session started"), SESSIONS, "{checked} checks ran");
    assert_eq!(count("session ended"), SESSIONS, "{checked} checks ran");
}
