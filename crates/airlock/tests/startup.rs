//! What start-up tells an operator who changed something the gateway does
//! not read again: an `AIRLOCK_ADMIN_TOKEN` other than the stored admin
//! token, a policy file edited after its first load.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{setup_with_policy, stderr, ALLOW_ALL};
use std::time::Duration;

fn wait_for_log(gateway: &airlock_testkit::GatewayProcess, text: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if gateway.log().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn start_up_warns_about_a_different_admin_token_and_an_edited_policy_file() {
    let (_cluster, mut gateway) = setup_with_policy("", ALLOW_ALL);
    assert!(!gateway.log().contains("warning:"), "{}", gateway.log());

    // Another admin token in the environment than the one stored.
    gateway.restart_with_env(&[("AIRLOCK_ADMIN_TOKEN", "not-the-stored-one")]);
    assert!(
        wait_for_log(
            &gateway,
            "warning: AIRLOCK_ADMIN_TOKEN is not the admin token stored in"
        ),
        "{}",
        gateway.log()
    );
    assert!(gateway
        .log()
        .contains("airlock admin-token rotate --data-dir"));
    assert!(
        !gateway.log().contains("not-the-stored-one"),
        "the token is never logged"
    );
    // The exported token is refused until it is made the admin token.
    let as_admin = |token: &str| {
        std::process::Command::new(common::binary())
            .args(["connection", "list"])
            .env(
                "AIRLOCK_URL",
                format!("http://127.0.0.1:{}", gateway.admin_port),
            )
            .env("AIRLOCK_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    assert!(!as_admin("not-the-stored-one").status.success());
    let rotated = std::process::Command::new(common::binary())
        .args(["admin-token", "rotate", "--data-dir"])
        .arg(gateway.data_dir())
        .env("AIRLOCK_ADMIN_TOKEN", "not-the-stored-one")
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(common::stdout(&rotated).contains("AIRLOCK_ADMIN_TOKEN is now the admin token"));
    let output = as_admin("not-the-stored-one");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !as_admin(&gateway.admin_token).status.success(),
        "the old token stops working"
    );
    // Back to the token the test kit uses.
    let back = std::process::Command::new(common::binary())
        .args(["admin-token", "rotate", "--data-dir"])
        .arg(gateway.data_dir())
        .env("AIRLOCK_ADMIN_TOKEN", &gateway.admin_token)
        .output()
        .unwrap();
    assert!(back.status.success(), "{}", stderr(&back));

    // The policy file edited after its first load.
    let file = gateway.config_dir().join("policy.yaml");
    std::fs::write(
        &file,
        ALLOW_ALL.replace("allow-everything-in-tests", "edited"),
    )
    .unwrap();
    gateway.restart_with_env(&[]);
    assert!(
        wait_for_log(&gateway, "differs from the live policy v1"),
        "{}",
        gateway.log()
    );
    assert!(gateway
        .log()
        .contains(&format!("airlock policy apply {}", file.display())));
    // Once applied, the warning is gone.
    let output = gateway.cli(&["policy", "apply", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = gateway
        .log()
        .matches("differs from the live policy")
        .count();
    gateway.restart_with_env(&[]);
    assert!(wait_for_log(&gateway, "airlock listening"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        gateway
            .log()
            .matches("differs from the live policy")
            .count(),
        before
    );
}

#[test]
fn a_clean_shutdown_leaves_no_journal_to_recover() {
    let (_cluster, mut gateway) = setup_with_policy("", ALLOW_ALL);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "disable",
        "select 'before shutdown'",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let pid = gateway.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|stat| !stat.contains(") Z "))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        wait_for_log(&gateway, "audit journal indexed and removed"),
        "{}",
        gateway.log()
    );
    let journals: Vec<_> = std::fs::read_dir(gateway.data_dir().join("journal"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(journals.is_empty(), "{journals:?}");
    gateway.restart_with_env(&[]);
    assert!(wait_for_log(&gateway, "airlock listening"));
    assert!(
        !gateway.log().contains("recovered audit events"),
        "{}",
        gateway.log()
    );
    let exported = gateway.cli_ok(&["audit", "export", "--format", "jsonl"], None);
    assert!(exported.contains("select 'before shutdown'"));
}
