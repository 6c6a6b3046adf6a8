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
