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
