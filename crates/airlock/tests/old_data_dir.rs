//! An old data directory still opens: a copy of
//! `tests/fixtures/data-dir-v1` (written by an earlier airlock, see its
//! README: never regenerated) is served by the binary under test, and what
//! the CLI says about it must equal what the binary that wrote it said
//! (`tests/fixtures/data-dir-v1/golden/`): the hash chain verifies, the
//! audit export, policy history, connections, credentials, reviews, session
//! list, timelines and replays are unchanged. This guards the store schema
//! (migrations must carry old files forward) and the audit JSON (the event
//! data is hashed as stored, so an old event must read back as it was).
//!
//! Normalised, and only this: JSON outputs are compared as parsed values
//! (key order and whitespace are not part of the API, and serialization
//! may move to typed structs), the JSON Lines export line by line the same
//! way. Text outputs are compared byte for byte. Nothing else differs
//! between the runs: every time shown comes from the stored events, and
//! serving the copy appends no event.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_testkit::{free_port, repo_file};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The admin token stored (hashed) in the fixture; a test value.
const FIXTURE_ADMIN_TOKEN: &str = "fixture-v1-admin-token-not-a-secret";

/// The files of the fixture a gateway needs to open it again.
const FIXTURE_FILES: &[&str] = &["airlock.db", "master.key"];

/// The recorded sessions of the fixture (its `session list`).
const SESSIONS: &[&str] = &[
    "s-26d6c9d3f3580670",
    "s-421e3e127ee5d066",
    "s-181a4e2a19a09f60",
    "s-5275df74b7a15962",
];

fn fixture(relative: &str) -> PathBuf {
    repo_file(&format!(
        "crates/airlock/tests/fixtures/data-dir-v1/{relative}"
    ))
}

/// `airlock serve` on a copy of the fixture, killed when dropped.
struct OldDataGateway {
    child: Child,
    admin_port: u16,
    log_path: PathBuf,
    _work: tempfile::TempDir,
}

impl OldDataGateway {
    fn start() -> Self {
        let work = tempfile::Builder::new()
            .prefix("airlock-old-data-")
            .tempdir()
            .unwrap();
        let data = work.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for file in FIXTURE_FILES {
            std::fs::copy(fixture(file), data.join(file)).unwrap();
        }
        let log_path = work.path().join("gateway.log");
        for _attempt in 0..6 {
            let admin_port = free_port();
            let config = work.path().join("airlock.yaml");
            std::fs::write(
                &config,
                format!(
                    "listen:\n  admin: 127.0.0.1:{admin_port}\n  postgres: 127.0.0.1:{}\n",
                    free_port()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .env("AIRLOCK_ADMIN_TOKEN", FIXTURE_ADMIN_TOKEN)
                .env_remove("AIRLOCK_MASTER_KEY")
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // A port picked by `free_port` was taken meanwhile.
                    assert!(
                        log.contains("Address already in use"),
                        "airlock serve on the old data dir exited with {status}:\n{log}"
                    );
                    break;
                }
                if TcpStream::connect(("127.0.0.1", admin_port)).is_ok() {
                    return Self {
                        child,
                        admin_port,
                        log_path,
                        _work: work,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "airlock serve did not become ready:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("no free ports for airlock serve");
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .env(
                "AIRLOCK_URL",
                format!("http://127.0.0.1:{}", self.admin_port),
            )
            .env("AIRLOCK_ADMIN_TOKEN", FIXTURE_ADMIN_TOKEN)
            .env_remove("AIRLOCK_TOKEN")
            .env_remove("AIRLOCK_OUTPUT")
            .output()
            .unwrap()
    }

    /// Runs a CLI command that must succeed; its standard output.
    fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "airlock {args:?} failed: {}\n{}\ngateway log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout),
            std::fs::read_to_string(&self.log_path).unwrap_or_default()
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for OldDataGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn golden(name: &str) -> String {
    let path = fixture(&format!("golden/{name}"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse(what: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{what}: {error}:\n{text}"))
}

/// Each golden file with the command (CLI arguments) that printed it.
fn golden_commands() -> Vec<(String, String)> {
    let mut commands: Vec<(String, String)> = [
        ("audit-verify.txt", "audit verify"),
        ("audit-verify.json", "audit verify --output json"),
        ("policy-history.json", "policy history --output json"),
        ("policy-show-1.yaml", "policy show --version 1"),
        ("policy-show-2.yaml", "policy show --version 2"),
        ("connection-list.json", "connection list --output json"),
        ("credential-list.json", "credential list --output json"),
        ("review-list.json", "review list --status all --output json"),
        ("session-list.txt", "session list"),
        ("session-list.json", "session list --output json"),
    ]
    .into_iter()
    .map(|(file, command)| (file.to_string(), command.to_string()))
    .collect();
    for session in SESSIONS {
        for verb in ["show", "replay"] {
            commands.push((
                format!("session-{verb}-{session}.txt"),
                format!("session {verb} {session}"),
            ));
            commands.push((
                format!("session-{verb}-{session}.json"),
                format!("session {verb} {session} --output json"),
            ));
        }
    }
    commands
}

#[test]
fn an_old_data_dir_opens_verifies_and_reads_back_unchanged() {
    let gateway = OldDataGateway::start();

    // The chain written by the old binary verifies, every event of it.
    let verify = parse(
        "audit verify",
        &gateway.cli_ok(&["audit", "verify", "--output", "json"]),
    );
    assert_eq!(verify["ok"], Value::Bool(true), "{verify}");
    assert_eq!(verify["events_checked"], 28, "{verify}");

    for (file, command) in golden_commands() {
        let args: Vec<&str> = command.split(' ').collect();
        let actual = gateway.cli_ok(&args);
        let expected = golden(&file);
        if file.ends_with(".json") {
            assert_eq!(
                parse(&command, &actual),
                parse(&file, &expected),
                "`airlock {command}` differs from golden/{file}"
            );
        } else {
            assert_eq!(
                actual, expected,
                "`airlock {command}` differs from golden/{file}"
            );
        }
    }

    // The export, event by event (one JSON object per line).
    let exported = gateway.cli_ok(&["audit", "export", "--format", "jsonl"]);
    let expected = golden("audit-export.jsonl");
    let exported: Vec<Value> = exported
        .lines()
        .map(|line| parse("audit export", line))
        .collect();
    let expected: Vec<Value> = expected
        .lines()
        .map(|line| parse("golden/audit-export.jsonl", line))
        .collect();
    assert_eq!(expected.len(), 28);
    assert_eq!(exported.len(), expected.len(), "event count of the export");
    for (actual, expected) in exported.iter().zip(&expected) {
        assert_eq!(actual, expected, "exported event {}", expected["id"]);
    }
    // The fixture covers the kinds the schema and audit JSON must keep.
    let kinds: std::collections::BTreeSet<&str> = expected
        .iter()
        .filter_map(|event| event["kind"].as_str())
        .collect();
    for kind in [
        "credential.set",
        "connection.add",
        "policy.apply",
        "token.issue",
        "token.revoke",
        "session.start",
        "command",
        "command.result",
        "session.end",
        "auth.failure",
        "review.created",
        "review.approve",
    ] {
        assert!(kinds.contains(kind), "the fixture lost {kind}: {kinds:?}");
    }
}

/// Every golden file is checked: one that no command compares against
/// would guard nothing.
#[test]
fn every_golden_file_is_checked() {
    let mut listed: Vec<String> = golden_commands()
        .into_iter()
        .map(|(file, _)| file)
        .chain(["audit-export.jsonl".to_string()])
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(fixture("golden"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(listed, present);
    assert!(Path::new(&fixture("README.md")).exists());
}
