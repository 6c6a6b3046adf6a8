//! `airlock config check` accepts the multi-protocol example policy
//! (`examples/policy-multi.yaml`, unchanged) and still refuses a rule that
//! mixes two protocols' conditions, with its line.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn config_check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["config", "check"])
        .arg(dir.join("airlock.yaml"))
        .args(args)
        .env_remove("AIRLOCK_URL")
        .env_remove("AIRLOCK_ADMIN_TOKEN")
        .env_remove("AIRLOCK_TOKEN")
        .env("AIRLOCK_CONFIG_DIR", dir)
        .output()
        .expect("run airlock")
}

#[test]
fn config_check_accepts_the_multi_protocol_policy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("airlock.yaml"),
        "policy: policy-multi.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy-multi.yaml"),
        airlock_testkit::repo_text("examples/policy-multi.yaml"),
    )
    .unwrap();
    let output = config_check(dir.path(), &["--output", "json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["files"][1]["kind"], "policy", "{report}");
    assert_eq!(report["files"][1]["ok"], true, "{report}");
    let text = config_check(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("policy-multi.yaml (11 rules, default deny)"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("policy-multi.yaml"),
        "version: 1\nrules:\n  - name: mixed\n    match:\n      http: {methods: [GET]}\n      kubernetes: {verbs: [get]}\n    action: allow\n",
    )
    .unwrap();
    let output = config_check(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("policy-multi.yaml:6: rule \"mixed\": match: `http` and `kubernetes`"),
        "{stdout}"
    );
}
