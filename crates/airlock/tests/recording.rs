//! End-to-end tests of session recording and the tamper-evident audit log,
//! against a real PostgreSQL with psql and tokio-postgres.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, events, eventually, setup, stderr, stdout};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// `audit_journal_syncs` of the gateway's `/readyz`.
fn journal_syncs(gateway: &airlock_testkit::GatewayProcess) -> u64 {
    let (status, body) = gateway.http_get("/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["audit_journal_syncs"]
        .as_u64()
        .unwrap()
}

fn store_file(gateway: &airlock_testkit::GatewayProcess) -> std::path::PathBuf {
    gateway.data_dir().join("airlock.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_recorded_in_order_and_replayable() {
    recorded_in_order_and_replayable("").await;
}

/// The same with `sync: full`: every command waits for a journal sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_recorded_in_order_and_replayable_with_sync_full() {
    recorded_in_order_and_replayable("recording:\n  sync: full\n").await;
}

/// The same with `sync: normal`: sessions write the journal themselves and
/// results ride along with the next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_recorded_in_order_and_replayable_with_sync_normal() {
    recorded_in_order_and_replayable("recording:\n  sync: normal\n").await;
}

async fn recorded_in_order_and_replayable(config: &str) {
    let (_cluster, gateway) = setup(config);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    // A psql script: each statement is its own Query.
    let script = "create table people(id int primary key, email text);\n\
                  insert into people select g, 'user' || g || '@example.com' from generate_series(1, 30) g;\n\
                  select id, email from people order by id;\n\
                  insert into people values (1, 'dup@example.com');\n\
                  select count(*) from people;\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let syncs_before = journal_syncs(&gateway);
    let output = Command::new(airlock_testkit::pg_client("psql"))
        .arg(gateway.conninfo("agent-7", "pg-test", "require"))
        .args(["-X", "-q", "-f"])
        .arg(file.path())
        .env("PGPASSWORD", &token)
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("duplicate key"),
        "{}",
        stderr(&output)
    );
    // `/readyz` counts the journal syncs: under `sync: full` the psql
    // session's records were synced (one sync per command at most: a
    // result needs none of its own), under `sync: writes` (the default)
    // those of its writes, the reads' and results' with a timed sync,
    // under `sync: normal` none are.
    let syncs = journal_syncs(&gateway) - syncs_before;
    if config.contains("normal") {
        assert_eq!(syncs, 0);
    } else {
        // Session start, 5 statements, session end (maybe not yet); under
        // `writes` a few timed syncs besides.
        assert!((1..=10).contains(&syncs), "{syncs} syncs");
    }

    // The extended protocol: Parse + Execute with bound parameters.
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    let rows = client
        .query(
            "select email from people where id between $1 and $2",
            &[&3i32, &4i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let events = events(&gateway);
    let commands: Vec<&Value> = events
        .iter()
        .filter(|event| event.kind == "command")
        .map(|event| &event.data)
        .collect();
    let statements: Vec<&str> = commands
        .iter()
        .map(|c| c["statement"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = script.lines().map(str::trim).collect();
    let script_positions: Vec<usize> = expected
        .iter()
        .map(|line| {
            statements
                .iter()
                .position(|statement| statement.trim() == line.trim_end_matches('\n'))
                .unwrap_or_else(|| panic!("{line:?} was not recorded: {statements:?}"))
        })
        .collect();
    assert!(
        script_positions.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order: {statements:?}"
    );

    // A result is folded into its command's row when both were indexed
    // together, an event of its own otherwise.
    let result_of = |statement: &str| -> &Value {
        let command = events
            .iter()
            .find(|event| event.kind == "command" && event.data["statement"] == statement)
            .unwrap();
        command
            .command_result()
            .or_else(|| {
                events
                    .iter()
                    .find(|event| {
                        event.kind == "command.result"
                            && event.session_id == command.session_id
                            && event.data["seq"] == command.data["seq"]
                    })
                    .map(|event| &event.data)
            })
            .unwrap_or_else(|| panic!("no result for {statement}"))
    };
    // One row per command: a result indexed with its command is folded
    // into that command's row and never stored a second time.
    let folded: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "command" && event.data.get("result").is_some())
        .collect();
    // Whether a result is folded depends on whether the index thread
    // picked up its command before the result was journaled: timing, not
    // a guarantee (asserting that some result was folded failed in CI on
    // a loaded machine, in every sync mode). Folding itself is tested
    // deterministically by `airlock_store`'s `fold_results` unit tests;
    // here every mode must find each result in one form or the other
    // (`result_of`) and never store one twice (below).
    for command in folded {
        assert_eq!(command.data["result"]["seq"], command.data["seq"]);
        assert!(
            !events.iter().any(|event| event.kind == "command.result"
                && event.session_id == command.session_id
                && event.data["seq"] == command.data["seq"]),
            "a result is stored twice: {}",
            command.data
        );
    }
    let select = result_of("select id, email from people order by id;");
    assert_eq!(select["status"], "ok");
    assert_eq!(select["rows"], 30);
    assert_eq!(select["tags"][0], "SELECT 30");
    assert_eq!(select["columns"], serde_json::json!(["id", "email"]));
    assert_eq!(
        select["sample"].as_array().unwrap().len(),
        20,
        "default sample is 20 rows"
    );
    assert_eq!(select["sample"][0][1], "user1@example.com");
    assert_eq!(select["sample_truncated"], true);
    let insert = result_of(
        "insert into people select g, 'user' || g || '@example.com' from generate_series(1, 30) g;",
    );
    assert_eq!(insert["rows"], 30);
    let duplicate = result_of("insert into people values (1, 'dup@example.com');");
    assert_eq!(duplicate["status"], "error");
    assert_eq!(duplicate["error_code"], "23505");

    let execute = commands
        .iter()
        .find(|c| c["message"] == "execute")
        .expect("an execute was recorded");
    assert_eq!(
        execute["statement"],
        "select email from people where id between $1 and $2"
    );
    assert_eq!(execute["parameters"], 2);
    assert!(commands
        .iter()
        .any(|c| c["message"] == "parse" && c["statement"] == execute["statement"]));

    // Browsing: list, show, replay, export.
    let list = gateway.cli_ok(
        &[
            "session",
            "list",
            "--identity",
            "agent-7",
            "--output",
            "json",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let session_id = list[0]["session_id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["connection"], "pg-test");
    assert_eq!(list[0]["tls"], true);
    assert_eq!(list[0]["ended_by"], "client_terminated");
    let none = gateway.cli_ok(
        &[
            "session",
            "list",
            "--connection",
            "pg-other",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(none.trim(), "[]");
    let show = gateway.cli_ok(&["session", "show", &session_id], None);
    assert!(show.contains("SELECT 30 · 30 rows"), "{show}");
    assert!(show.contains("ERROR 23505"), "{show}");
    let replay = gateway.cli_ok(&["session", "replay", &session_id], None);
    assert!(replay.contains("user20@example.com"), "{replay}");
    assert!(!replay.contains("user21@example.com"), "{replay}");
    assert!(replay.contains("more rows not kept"), "{replay}");
    let export = gateway.cli_ok(
        &["audit", "export", "--since", "1h", "--format", "jsonl"],
        None,
    );
    let exported: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(exported.len(), events.len());
    assert!(exported
        .iter()
        .all(|event| event["hash"].as_str().unwrap().len() == 64));

    // Tamper evidence: verify passes, then fails at an edited event …
    let verified = gateway.cli_ok(&["audit", "verify"], None);
    assert!(verified.starts_with("OK:"), "{verified}");
    let target = events
        .iter()
        .find(|event| event.kind == "command")
        .unwrap()
        .id;
    let connection = rusqlite::Connection::open(store_file(&gateway)).unwrap();
    connection
        .execute(
            "UPDATE events SET data = replace(data, 'people', 'nobody') WHERE id = ?1",
            [target],
        )
        .unwrap();
    let broken = gateway.cli(&["audit", "verify"], None);
    assert!(!broken.status.success());
    assert!(
        stdout(&broken).contains(&format!("BROKEN at event {target}:")),
        "{}",
        stdout(&broken)
    );
    assert!(stdout(&broken).contains("modified"), "{}", stdout(&broken));
}

#[test]
fn deletions_and_reordering_break_the_chain() {
    let (_cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    for n in 0..3 {
        let output = gateway.psql(
            &token,
            "agent-7",
            "pg-test",
            "disable",
            &format!("select {n}"),
        );
        assert!(output.status.success());
    }
    let events = events(&gateway);
    let middle = events[events.len() / 2].id;
    let connection = rusqlite::Connection::open(store_file(&gateway)).unwrap();
    connection
        .execute("DELETE FROM events WHERE id = ?1", [middle])
        .unwrap();
    let broken = gateway.cli(&["audit", "verify", "--output", "json"], None);
    let report: Value = serde_json::from_str(&stdout(&broken)).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken"]["event_id"], middle + 1);

    let (_cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    assert!(gateway
        .psql(&token, "agent-7", "pg-test", "disable", "select 1")
        .status
        .success());
    let connection = rusqlite::Connection::open(store_file(&gateway)).unwrap();
    connection
        .execute("UPDATE events SET id = -1 WHERE id = 2", [])
        .unwrap();
    connection
        .execute("UPDATE events SET id = 2 WHERE id = 3", [])
        .unwrap();
    connection
        .execute("UPDATE events SET id = 3 WHERE id = -1", [])
        .unwrap();
    let broken = gateway.cli(&["audit", "verify", "--output", "json"], None);
    let report: Value = serde_json::from_str(&stdout(&broken)).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken"]["event_id"], 2);
}

/// With the event store locked by another writer, commands stop being
/// admitted within seconds (the write-ahead journal may hold a few more
/// meanwhile) and a refused command never reaches the upstream. Once the
/// store is writable again, commands run, and every command that ran is in
/// the record with its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_fails_closed() {
    let (cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    cluster.sql_in(
        "appdb",
        "create table effects(id int primary key); grant all on effects to app",
    );
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );

    let locker = rusqlite::Connection::open(store_file(&gateway)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (ran, refused) = insert_until_refused(
        &client,
        4_242_000,
        "the event index",
        Duration::from_millis(50),
    )
    .await;
    // The gateway says it is not ready, and why.
    let (status, body) = gateway.http_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("event index"), "{body}");
    assert_refused_never_arrived(&cluster, &ran, refused);

    locker.execute_batch("ROLLBACK").unwrap();
    assert!(
        runs_again(&client, 4343).await,
        "commands are still refused with the store writable"
    );
    assert_eq!(gateway.http_get("/readyz").unwrap().0, 200);
    let ran: Vec<i64> = ran.into_iter().chain([4343]).collect();
    assert_recorded_with_outcomes(&gateway, &ran, refused).await;
}

/// The whole data dir on a full disk (default `sync: writes`): the journal was
/// zero-filled ahead, so its writes still succeed; the event index cannot
/// grow the store, and commands are refused from its first failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_closed() {
    let log = full_disk_fails_closed("", "", 40 << 20, "the event index cannot be written").await;
    assert!(log.contains("audit index write failed"), "{log}");
}

/// The journal's own disk full under `sync: writes` (zero-filled ahead as
/// under `full`): too small to zero-fill
/// a journal ahead (the gateway says so and starts anyway), and the first
/// journal write that finds no room refuses its command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_fails_closed() {
    let log = full_disk_fails_closed("", "journal", 1 << 20, "No space left on device").await;
    assert!(log.contains("no room on the disk to zero-fill"), "{log}");
    assert!(log.contains("audit journal write failed"), "{log}");
}

/// The same under `sync: normal`, where the journal is never zero-filled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_fails_closed_with_sync_normal() {
    let log = full_disk_fails_closed(
        "recording:\n  sync: normal\n",
        "journal",
        1 << 20,
        "No space left on device",
    )
    .await;
    assert!(log.contains("audit journal write failed"), "{log}");
}

/// `mount` (a folder of the data dir, `""` for all of it) on a small
/// filesystem of its own, filled up: commands stop being admitted at once,
/// with `reason` in the error, and a refused command never reaches the
/// upstream. Once space is freed, commands run again, and every command
/// that ran is in the record with its outcome. Returns the gateway's log.
async fn full_disk_fails_closed(extra: &str, mount: &str, disk_bytes: u64, reason: &str) -> String {
    let cluster = airlock_testkit::PgCluster::start();
    let gateway = airlock_testkit::GatewayProcess::start_on_small_disk(
        common::binary(),
        &common::config(&cluster, extra),
        common::ALLOW_ALL,
        mount,
        disk_bytes,
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    cluster.sql_in(
        "appdb",
        "create table effects(id int primary key); grant all on effects to app",
    );
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    client.batch_execute("select 1").await.unwrap();

    // Fill the gateway's filesystem until a write fails.
    let filler = gateway
        .data_dir_as_seen_by_gateway()
        .join(mount)
        .join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5au8; 1 << 16];
        let error = loop {
            if let Err(error) = file.write_all(&block) {
                break error;
            }
        };
        assert_eq!(error.raw_os_error(), Some(28), "{error}"); // ENOSPC
    }
    let (ran, refused) =
        insert_until_refused(&client, 5_151_000, reason, Duration::from_millis(0)).await;
    assert_refused_never_arrived(&cluster, &ran, refused);

    std::fs::remove_file(&filler).unwrap();
    assert!(
        runs_again(&client, 5252).await,
        "commands are still refused with space freed"
    );
    // A result whose write met the full disk is kept for the next write.
    let ran: Vec<i64> = ran.into_iter().chain([5252]).collect();
    assert_recorded_with_outcomes(&gateway, &ran, refused).await;
    gateway.log()
}

/// Inserts rows into `effects` with ids from `first_id` until one is
/// refused with 58030 and `reason` in its message (at most 30 s, `pause`
/// between inserts); returns the ids that ran and the refused one.
async fn insert_until_refused(
    client: &tokio_postgres::Client,
    first_id: i64,
    reason: &str,
    pause: Duration,
) -> (Vec<i64>, i64) {
    let started = Instant::now();
    let mut ran = Vec::new();
    loop {
        let id = first_id + i64::try_from(ran.len()).unwrap();
        match client
            .batch_execute(&format!("insert into effects values ({id})"))
            .await
        {
            Ok(()) => ran.push(id),
            Err(error) => {
                let db_error = error.as_db_error().expect("a server error");
                assert_eq!(db_error.code().code(), "58030", "{db_error:?}");
                assert!(
                    db_error.message().contains("audit log cannot be written")
                        && db_error.message().contains(reason),
                    "{db_error:?}"
                );
                return (ran, id);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "commands kept running for 30 s ({} ran)",
            ran.len()
        );
        tokio::time::sleep(pause).await;
    }
}

/// Checked on the upstream side: `effects` holds exactly the rows that ran
/// and the refused statement never reached the upstream's statement log.
fn assert_refused_never_arrived(cluster: &airlock_testkit::PgCluster, ran: &[i64], refused: i64) {
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from effects"),
        ran.len().to_string()
    );
    assert!(
        !cluster.log().contains(&refused.to_string()),
        "the refused statement reached the upstream"
    );
}

/// Retries inserting `id` for up to 10 s; true once it runs.
async fn runs_again(client: &tokio_postgres::Client, id: i64) -> bool {
    for _ in 0..100 {
        let insert = format!("insert into effects values ({id})");
        if client.batch_execute(&insert).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Every insert in `ran` has its `command` record and an `ok` outcome
/// (waiting up to 10 s for the index to catch up), and the `refused` one
/// was not recorded as if it ran.
async fn assert_recorded_with_outcomes(
    gateway: &airlock_testkit::GatewayProcess,
    ran: &[i64],
    refused: i64,
) {
    let mut missing = Vec::new();
    let complete = eventually(10, || {
        let all = events(gateway);
        missing = ran
            .iter()
            .map(|id| format!("insert into effects values ({id})"))
            .filter(|statement| {
                let Some(command) = all.iter().find(|event| {
                    event.kind == "command" && event.data["statement"] == statement.as_str()
                }) else {
                    return true;
                };
                !all.iter().any(|event| {
                    event.session_id == command.session_id
                        && event.command_result().is_some_and(|result| {
                            result["seq"] == command.data["seq"] && result["status"] == "ok"
                        })
                })
            })
            .collect();
        missing.is_empty()
    })
    .await;
    assert!(complete, "ran without a record or an outcome: {missing:?}");
    assert!(
        !events(gateway).iter().any(|event| event.kind == "command"
            && event.data["statement"]
                .as_str()
                .is_some_and(|statement| statement.contains(&refused.to_string()))),
        "the refused command was recorded as if it ran"
    );
}

/// A gateway killed with SIGKILL under load: every command the upstream
/// executed has its record (default `sync: writes`: group commit; the
/// mixed read and write load is in `durability.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_record_of_an_executed_command() {
    sigkill_mid_load("").await;
}

/// The same with `sync: full`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_record_with_sync_full() {
    sigkill_mid_load("recording:\n  sync: full\n").await;
}

/// The same with `sync: normal`, where sessions write the journal
/// themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_record_with_sync_normal() {
    sigkill_mid_load("recording:\n  sync: normal\n").await;
}

async fn sigkill_mid_load(config: &str) {
    let (cluster, mut gateway) = setup(config);
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
                if client
                    .batch_execute(&format!("insert into effects values ({id})"))
                    .await
                    .is_err()
                {
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
    // The next start copies what the killed process journaled but had not
    // yet indexed.
    gateway.restart();
    assert!(
        eventually(10, || gateway.log().contains("recovered audit events")).await,
        "the restart did not replay the dead process's journal:\n{}",
        gateway.log()
    );
    let executed: Vec<String> = cluster
        .sql_in("appdb", "select id from effects order by id")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        executed.len() > 20,
        "too little load: {} rows",
        executed.len()
    );
    let recorded: std::collections::HashSet<String> = events(&gateway)
        .iter()
        .filter(|event| event.kind == "command")
        .filter_map(|event| {
            event.data["statement"]
                .as_str()
                .and_then(|text| text.strip_prefix("insert into effects values ("))
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::to_string)
        })
        .collect();
    let missing: Vec<&String> = executed
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} executed commands have no record: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Every file and folder under `dir` with its permission bits.
fn modes_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            let mode = metadata.permissions().mode() & 0o777;
            if metadata.is_dir() {
                pending.push(entry.path());
            }
            found.push((entry.path(), metadata.is_dir(), mode));
        }
    }
    found
}

fn assert_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let own = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(own, 0o700, "{} is {own:o}", dir.display());
    let found = modes_under(dir);
    for name in [
        "airlock.db",
        "airlock.db-wal",
        "airlock.db-shm",
        "master.key",
        "journal",
    ] {
        assert!(
            found.iter().any(|(path, _, _)| path.ends_with(name)),
            "{name} is missing: {found:?}"
        );
    }
    for (path, is_dir, mode) in found {
        let wanted = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, wanted, "{} is {mode:o}", path.display());
    }
}

/// The data dir holds the store (credentials, token hashes, audit log), the
/// master key, the journal and the TLS key: nothing in it is readable by
/// anyone but the gateway's user, after start, traffic and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_in_the_data_dir_is_private() {
    let (_cluster, mut gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let first = client(&gateway, "agent-7", "pg-test", &token).await;
    first
        .batch_execute("create table t(id int); insert into t values (1); select * from t")
        .await
        .unwrap();
    drop(first);
    events(&gateway);
    let psql = gateway.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(psql.status.success(), "{}", stderr(&psql));
    assert_private(&gateway.data_dir());

    gateway.restart();
    let second = client(&gateway, "agent-7", "pg-test", &token).await;
    second.batch_execute("select 2").await.unwrap();
    events(&gateway);
    assert_private(&gateway.data_dir());
}
