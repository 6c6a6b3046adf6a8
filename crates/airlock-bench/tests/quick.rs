//! The benchmark must not rot: `airlock-bench --quick` runs end to end
//! (PostgreSQL, PgBouncer, both airlock configurations, pgbench, idle
//! sessions, masking) and writes a table with every target and a positive
//! TPS for each.

// Test: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `airlock` binary of the same profile, next to the bench binary;
/// built first when missing (`cargo test -p airlock-bench` alone does not
/// build another package's binary).
fn airlock_binary(bench: &Path) -> PathBuf {
    let dir = bench.parent().expect("bench binary folder");
    let airlock = dir.join("airlock");
    if !airlock.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "-p", "airlock", "--target-dir"])
            .arg(dir.parent().expect("target dir"))
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if dir.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build -p airlock");
        assert!(status.success(), "cargo build -p airlock failed");
    }
    assert!(
        airlock.is_file(),
        "no airlock binary at {}",
        airlock.display()
    );
    airlock
}

#[test]
fn quick_run_writes_a_table_with_every_configuration() {
    let bench = Path::new(env!("CARGO_BIN_EXE_airlock-bench"));
    let airlock = airlock_binary(bench);
    let out = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = Command::new(bench)
        .arg("--quick")
        // Two seconds per run: under load (a shared 2-core CI machine), one
        // second can end before eight clients have all connected.
        .args(["--duration", "2"])
        .arg("--out")
        .arg(out.path())
        .arg("--airlock-bin")
        .arg(&airlock)
        .output()
        .expect("run airlock-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "airlock-bench --quick failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    eprintln!("airlock-bench --quick took {:?}", started.elapsed());

    let latest = std::fs::read_to_string(out.path().join("latest.md")).expect("latest.md");
    let dated: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with("-quick.md"))
        .collect();
    assert_eq!(dated.len(), 1, "one dated report: {dated:?}");
    assert_eq!(
        std::fs::read_to_string(out.path().join(&dated[0])).unwrap(),
        latest
    );

    // Every configuration, in both read modes at both client counts and
    // in the write run, has a numeric TPS above zero (the fourth column of
    // the pgbench table); the writes pass the policy (no failed
    // transaction, the last column).
    let runs = [
        ("simple", "1"),
        ("simple", "8"),
        ("prepared", "1"),
        ("prepared", "8"),
        ("tpcb", "8"),
    ];
    for target in [
        "direct",
        "pgbouncer",
        "airlock pass-through",
        "airlock policy+mask",
        "airlock full",
    ] {
        for (mode, clients) in runs {
            let row = latest
                .lines()
                .find(|line| {
                    let cells = cells(line);
                    cells.first() == Some(&target)
                        && cells.get(1) == Some(&mode)
                        && cells.get(2) == Some(&clients)
                })
                .unwrap_or_else(|| panic!("no row for {target} {mode} {clients}:\n{latest}"));
            let tps: f64 = cells(row)[3]
                .parse()
                .unwrap_or_else(|_| panic!("TPS is not a number in {row:?}"));
            assert!(tps > 0.0, "TPS 0 in {row:?}");
            assert_eq!(
                cells(row).last(),
                Some(&"0"),
                "failed transactions in {row:?}"
            );
            // Recording under `sync: full` (the default) syncs the journal,
            // at most once per command: a result rides along with the next
            // command's write instead of costing a sync of its own.
            if target == "airlock full" {
                let syncs: f64 = cells(row)[12]
                    .parse()
                    .unwrap_or_else(|_| panic!("journal syncs/txn is not a number in {row:?}"));
                assert!(syncs > 0.0, "no journal sync in {row:?}");
                if clients == "1" {
                    assert!(syncs <= 1.05, "more than one sync per query in {row:?}");
                }
            }
        }
    }
    // Memory and masking sections are filled in too.
    for target in ["airlock pass-through", "airlock full"] {
        let idle = latest
            .lines()
            .find(|line| cells(line).first() == Some(&target) && line.contains("KiB"))
            .unwrap_or_else(|| panic!("no idle-session row for {target}:\n{latest}"));
        assert_eq!(cells(idle)[1], "100", "{idle}");
    }
    assert!(latest.contains("Masking applied:"), "{latest}");
    assert!(
        latest.contains("| CPU | "),
        "the machine is described:\n{latest}"
    );
    assert!(
        latest.contains("--quick"),
        "the command is recorded:\n{latest}"
    );
}

fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    if !line.starts_with('|') {
        return Vec::new();
    }
    line.trim_matches('|').split('|').map(str::trim).collect()
}
