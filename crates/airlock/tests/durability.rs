//! End-to-end tests of the durability of the record (`recording.sync`,
//! README "Durability of the record"): the real gateway binary in front of
//! a real PostgreSQL, checked on the upstream side. Under `writes` (the
//! default) a command with an effect runs only once its record is on disk,
//! a read once its record is in the journal; a SIGKILL loses no record of
//! anything the upstream ran; a journal sync that fails (a real `EIO` from
//! `fdatasync`, injected below the gateway by an `LD_PRELOAD` shim) refuses
//! the write that waited on it, which never reaches the upstream.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, PgCluster};
use common::{client, events, eventually, setup};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The gateway's `/readyz`: status code and body.
fn readyz(gateway: &GatewayProcess) -> (u16, Value) {
    let (status, body) = gateway.http_get("/readyz").unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

/// The statements of every `command` event in the audit log.
fn recorded_statements(gateway: &GatewayProcess) -> HashSet<String> {
    events(gateway)
        .iter()
        .filter(|event| event.kind == "command")
        .filter_map(|event| event.data["statement"].as_str().map(str::to_string))
        .collect()
}

/// Journal syncs so far: (led by commands, led by the timed sync).
fn journal_syncs(gateway: &GatewayProcess) -> (u64, u64) {
    let (status, body) = readyz(gateway);
    assert_eq!(status, 200, "{body}");
    // Two counters of their own: a difference of a total and a part read
    // at two moments could count a sync twice or not at all.
    let led = body["audit_led_journal_syncs"].as_u64().unwrap();
    let timed = body["audit_timed_journal_syncs"].as_u64().unwrap();
    (led, timed)
}

/// Without `recording.sync` the mode is `writes`: each write waits for a
/// journal sync of its own (one client, one command at a time), reads,
/// simple and prepared, lead none (the timed sync makes them durable);
/// under `full` every read leads one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_commands_with_an_effect_wait_for_the_disk() {
    let (cluster, gateway) = setup("");
    assert_eq!(readyz(&gateway).1["audit_sync"], "writes");
    let full = GatewayProcess::start_with_policy(
        common::binary(),
        &common::config(&cluster, "recording:\n  sync: full\n"),
        common::ALLOW_ALL,
    );
    full.set_credential("app", "app", &cluster.role_password("app"));
    assert_eq!(readyz(&full).1["audit_sync"], "full");
    cluster.sql_in(
        "appdb",
        "create table effects(id int primary key); grant all on effects to app",
    );
    let reads = 40;
    let mut read_syncs = Vec::new();
    for (offset, gateway) in [(0, &gateway), (1_000, &full)] {
        let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
        let client = client(gateway, "agent-7", "pg-test", &token).await;
        client.batch_execute("select 1").await.unwrap();

        let (led, timed) = journal_syncs(gateway);
        let before = led + timed;
        for n in 0..reads {
            client
                .batch_execute(&format!("insert into effects values ({})", offset + n))
                .await
                .unwrap();
        }
        // Each write waited for a sync of its own: one it led, or a timed
        // one that started after it was written.
        let (led, timed) = journal_syncs(gateway);
        let write_syncs = led + timed - before;
        assert!(
            write_syncs >= reads,
            "{write_syncs} journal syncs for {reads} writes: a write ran unsynced"
        );

        let (before, timed_before) = journal_syncs(gateway);
        for n in 0..reads {
            client
                .batch_execute(&format!("select 'simple-read-{}'", offset + n))
                .await
                .unwrap();
            let row = client
                .query_one("select $1::text", &[&format!("prepared-read-{n}")])
                .await
                .unwrap();
            assert_eq!(row.get::<_, String>(0), format!("prepared-read-{n}"));
        }
        let (led, timed) = journal_syncs(gateway);
        read_syncs.push((led - before, timed - timed_before));
        let recorded = recorded_statements(gateway);
        for n in 0..reads {
            for statement in [
                format!("insert into effects values ({})", offset + n),
                format!("select 'simple-read-{}'", offset + n),
            ] {
                assert!(recorded.contains(&statement), "no record of {statement}");
            }
        }
    }
    let (led, timed) = read_syncs[0];
    assert_eq!(
        led,
        0,
        "sync: writes: {} reads led {led} journal syncs",
        2 * reads
    );
    assert!(timed >= 1, "sync: writes: the reads were never synced");
    let (led, timed) = read_syncs[1];
    assert!(
        led >= 2 * reads,
        "sync: full: {led} journal syncs led by {} reads",
        2 * reads
    );
    assert_eq!(timed, 0, "sync: full has no timed sync");
}

/// A gateway under `sync: writes` (the default) killed with SIGKILL under a
/// mixed load of writes and reads: after the restart, every statement the
/// upstream ran (its statement log, `log_statement = all`, and the table
/// the writes filled) has its `command` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_mixed_load_loses_no_record_under_sync_writes() {
    let (cluster, mut gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    cluster.sql_in(
        "appdb",
        "create table effects(id int primary key); grant all on effects to app",
    );
    let mut workers = Vec::new();
    for worker in 0..4i64 {
        let client = client(&gateway, "agent-7", "pg-test", &token).await;
        workers.push(tokio::spawn(async move {
            for n in 0..100_000i64 {
                let id = worker * 1_000_000 + n;
                // Workers 0 and 1 alternate writes and reads; 2 and 3 read.
                let statement = if worker < 2 && n % 2 == 0 {
                    format!("insert into effects values ({id})")
                } else {
                    format!("select 'read-{id}'")
                };
                if client.batch_execute(&statement).await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateway.kill();
    for worker in workers {
        let _ = worker.await;
    }
    gateway.restart();
    assert!(
        eventually(10, || gateway.log().contains("recovered audit events")).await,
        "the restart did not replay the dead process's journal:\n{}",
        gateway.log()
    );

    // What the upstream ran: the rows written, and every statement in its
    // log (reads leave nothing else behind).
    let mut executed: Vec<String> = cluster
        .sql_in("appdb", "select id from effects order by id")
        .lines()
        .map(|id| format!("insert into effects values ({id})"))
        .collect();
    let writes = executed.len();
    let log = cluster.log();
    for line in log.lines() {
        let Some((_, statement)) = line.split_once("statement: ") else {
            continue;
        };
        if statement.starts_with("select 'read-")
            || statement.starts_with("insert into effects values (")
        {
            executed.push(statement.trim().to_string());
        }
    }
    let reads = executed
        .iter()
        .filter(|statement| statement.starts_with("select"))
        .count();
    assert!(
        writes > 20 && reads > 20,
        "too little load: {writes} writes, {reads} reads"
    );
    let recorded = recorded_statements(&gateway);
    let missing: Vec<&String> = executed
        .iter()
        .filter(|statement| !recorded.contains(*statement))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} statements the upstream ran have no record: {:?}",
        missing.len(),
        executed.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Builds the `fdatasync` shim (`tests/fixtures/fail_journal_sync.c`) into
/// `dir`; returns the library.
fn failing_sync_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fail_journal_sync.c");
    let library = dir.join("libfail_journal_sync.so");
    let output = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(
        output.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    library
}

/// A gateway (default `sync: writes`) whose journal syncs fail with `EIO`
/// once `flag` exists.
struct FailingDisk {
    cluster: PgCluster,
    gateway: GatewayProcess,
    flag: PathBuf,
    token: String,
    _dir: tempfile::TempDir,
}

fn on_a_disk_whose_syncs_can_fail() -> FailingDisk {
    let dir = tempfile::tempdir().unwrap();
    let library = failing_sync_shim(dir.path());
    let flag = dir.path().join("fail-journal-syncs");
    let cluster = PgCluster::start();
    let gateway = GatewayProcess::start_with_policy_and_env(
        common::binary(),
        &common::config(&cluster, ""),
        common::ALLOW_ALL,
        &[
            ("LD_PRELOAD", library.to_str().unwrap()),
            ("AIRLOCK_TEST_FAIL_SYNC", flag.to_str().unwrap()),
        ],
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    cluster.sql_in(
        "appdb",
        "create table effects(id int primary key); grant all on effects to app",
    );
    FailingDisk {
        cluster,
        gateway,
        flag,
        token,
        _dir: dir,
    }
}

/// The refusal of a command whose record could not be made durable.
fn assert_refused_for_the_sync(error: &tokio_postgres::Error) {
    let db_error = error.as_db_error().expect("a server error");
    assert_eq!(db_error.code().code(), "58030", "{db_error:?}");
    assert!(
        db_error.message().contains("audit log cannot be written")
            && db_error.message().contains("cannot be synced to disk"),
        "{db_error:?}"
    );
}

/// No `command.result` with status `ok` for `statement`: it was not
/// recorded as if it ran.
fn assert_never_ran_in_the_record(gateway: &GatewayProcess, statement: &str) {
    let all = events(gateway);
    for command in all
        .iter()
        .filter(|event| event.kind == "command" && event.data["statement"] == statement)
    {
        assert!(
            !all.iter()
                .any(|event| event.session_id == command.session_id
                    && event.command_result().is_some_and(|result| {
                        result["seq"] == command.data["seq"] && result["status"] == "ok"
                    })),
            "{statement} is recorded as if it ran"
        );
    }
}

/// A write whose journal sync fails is refused with a clear error and never
/// reaches the upstream; so is every command after it, reads included,
/// until the gateway restarts on a healthy disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_sync_fails_is_refused_and_never_reaches_the_upstream() {
    let FailingDisk {
        cluster,
        mut gateway,
        flag,
        token,
        _dir,
    } = on_a_disk_whose_syncs_can_fail();
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    client
        .batch_execute("insert into effects values (1)")
        .await
        .unwrap();
    assert_eq!(cluster.sql_in("appdb", "select count(*) from effects"), "1");
    tokio::time::sleep(Duration::from_millis(200)).await;

    std::fs::write(&flag, b"").unwrap();
    let error = client
        .batch_execute("insert into effects values (2)")
        .await
        .unwrap_err();
    assert_refused_for_the_sync(&error);
    let error = client
        .batch_execute("select 'read-after-the-failure'")
        .await
        .unwrap_err();
    assert_refused_for_the_sync(&error);
    // Checked upstream: neither arrived.
    assert_eq!(cluster.sql_in("appdb", "select count(*) from effects"), "1");
    let log = cluster.log();
    assert!(log.contains("insert into effects values (1)"));
    assert!(
        !log.contains("insert into effects values (2)"),
        "the write ran"
    );
    assert!(!log.contains("read-after-the-failure"), "the read ran");
    let (status, body) = readyz(&gateway);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be synced to disk"),
        "{body}"
    );

    // The disk heals: still refused (what the failed sync dropped is not
    // known) until the gateway restarts.
    std::fs::remove_file(&flag).unwrap();
    let error = client
        .batch_execute("insert into effects values (3)")
        .await
        .unwrap_err();
    assert_refused_for_the_sync(&error);
    assert!(!cluster.log().contains("insert into effects values (3)"));
    gateway.restart();
    let client = common::client(&gateway, "agent-7", "pg-test", &token).await;
    client
        .batch_execute("insert into effects values (4)")
        .await
        .unwrap();
    assert_eq!(
        cluster.sql_in("appdb", "select id from effects order by id"),
        "1\n4"
    );
    let recorded = recorded_statements(&gateway);
    assert!(recorded.contains("insert into effects values (1)"));
    assert!(recorded.contains("insert into effects values (4)"));
    assert!(!recorded.contains("insert into effects values (3)"));
    assert_never_ran_in_the_record(&gateway, "insert into effects values (2)");
}

/// A read is forwarded once its record is in the journal, before any sync:
/// on a disk whose syncs fail it still runs, its record is in the audit log
/// (the journal holds it), and the timed sync that fails soon after refuses
/// every command from then on: the next write never reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_runs_once_journaled_and_its_failed_sync_refuses_what_follows() {
    let FailingDisk {
        cluster,
        gateway,
        flag,
        token,
        _dir,
    } = on_a_disk_whose_syncs_can_fail();
    // The session's start is recorded (and synced) before the disk fails.
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    client.batch_execute("select 1").await.unwrap();
    // Its result's timed sync too.
    tokio::time::sleep(Duration::from_millis(200)).await;

    std::fs::write(&flag, b"").unwrap();
    let started = Instant::now();
    client
        .batch_execute("select 'read-on-a-failing-disk'")
        .await
        .unwrap();
    assert!(cluster.log().contains("select 'read-on-a-failing-disk'"));
    // No command comes: the timed sync finds the failure by itself.
    let mut noticed = None;
    while started.elapsed() < Duration::from_secs(10) {
        let (status, body) = readyz(&gateway);
        if status == 503 {
            assert!(
                body["reason"]
                    .as_str()
                    .unwrap()
                    .contains("cannot be synced to disk"),
                "{body}"
            );
            noticed = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let noticed = noticed.expect("the read's sync never ran");
    eprintln!("the failed timed sync was noticed {noticed:?} after the read");
    let error = client
        .batch_execute("insert into effects values (7)")
        .await
        .unwrap_err();
    assert_refused_for_the_sync(&error);
    assert_eq!(cluster.sql_in("appdb", "select count(*) from effects"), "0");
    assert!(!cluster.log().contains("insert into effects values (7)"));
    // The read that ran is in the record.
    let recorded = recorded_statements(&gateway);
    assert!(recorded.contains("select 'read-on-a-failing-disk'"));
    assert!(!recorded.contains("insert into effects values (7)"));
}
