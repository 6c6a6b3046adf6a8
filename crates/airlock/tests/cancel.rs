//! Cancel requests through a real libpq (psycopg 3's binary wheel, from
//! PyPI), compared with the same client directly against the same
//! PostgreSQL: a cancel never hits the statement after it, and a cancel
//! sent over TLS (libpq's new cancel API) is acknowledged cleanly.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, PgCluster};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn python_dir() -> PathBuf {
    airlock_testkit::repo_file("crates/airlock/tests/python")
}

/// `tests/python/requirements.txt` installed into `tests/python/site`
/// (git-ignored) on first run; returns that folder for `PYTHONPATH`.
fn python_site() -> PathBuf {
    airlock_testkit::pip_site(
        "crates/airlock/tests/python",
        &["psycopg", "psycopg_binary"],
    )
}

/// Runs `tests/python/cancel.py` with `args`; its JSON answer.
fn cancel_py(args: &[&str]) -> Value {
    let output = Command::new("python3")
        .arg(python_dir().join("cancel.py"))
        .args(args)
        .env("PYTHONPATH", python_site())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "cancel.py {:?} failed:\n{}\n{}",
        args.first(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "cancel.py printed no JSON ({error}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn direct_dsn(cluster: &PgCluster, sslmode: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=app dbname=appdb password={} sslmode={sslmode} connect_timeout=10",
        cluster.port,
        cluster.role_password("app")
    )
}

fn through_dsn(gateway: &GatewayProcess, token: &str, sslmode: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=agent-7 dbname=pg-test password={token} sslmode={sslmode} connect_timeout=10",
        gateway.pg_port
    )
}

#[test]
fn a_cancel_never_hits_the_next_statement() {
    let (cluster, gateway) = common::setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let rounds = "60";
    let direct = cancel_py(&["next", &direct_dsn(&cluster, "disable"), rounds]);
    let through = cancel_py(&["next", &through_dsn(&gateway, &token, "disable"), rounds]);
    // Directly: every running statement is cancelled, every late cancel is
    // ignored, every next statement succeeds.
    assert_eq!(direct["next_failed"], serde_json::json!([]), "{direct}");
    assert_eq!(direct["cancelled"], 30, "{direct}");
    assert_eq!(
        through,
        direct,
        "through the gateway:\n{through}\ndirectly:\n{direct}\n{}",
        gateway.log()
    );
}

#[test]
fn a_cancel_over_tls_is_acknowledged_cleanly_as_directly() {
    let (_certs, cert, key) = airlock_testkit::server_certificate();
    let cluster = PgCluster::start_with_config(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert.display(),
        key.display()
    ));
    let gateway = GatewayProcess::start_with_policy(
        common::binary(),
        &common::config(&cluster, ""),
        common::ALLOW_ALL,
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut direct = cancel_py(&["tls", &direct_dsn(&cluster, "require")]);
    let mut through = cancel_py(&["tls", &through_dsn(&gateway, &token, "require")]);
    // Directly: over TLS, the statement is cancelled, libpq reports no
    // error for the cancel itself, the session goes on.
    assert_eq!(direct["ssl"], true, "{direct}");
    assert_eq!(direct["statement"], "cancelled", "{direct}");
    assert_eq!(direct["cancel_error"], Value::Null, "{direct}");
    assert_eq!(direct["after"], 42, "{direct}");
    // Timing aside, the same through the gateway (no `SSL error:
    // unexpected eof` from a cancel connection closed without close_notify).
    for result in [&mut direct, &mut through] {
        let seconds = result["seconds"].as_f64().unwrap_or(99.0);
        assert!(seconds < 10.0, "not cancelled in time: {result}");
        result.as_object_mut().unwrap().remove("seconds");
    }
    assert_eq!(
        through,
        direct,
        "through the gateway:\n{through}\ndirectly:\n{direct}\n{}",
        gateway.log()
    );
    assert!(
        gateway.log().contains("cancel request forwarded"),
        "{}",
        gateway.log()
    );
}
