//! Two `airlock serve` replicas on one shared PostgreSQL store (a
//! throwaway cluster of its own) in front of a real upstream PostgreSQL:
//! what one replica writes to the store, the other acts on. A token issued
//! through A works on B; revoked through A, it is refused by B at its next
//! login; a policy applied through A is enforced by B's next command (B
//! is woken by the store's notification, or polls: the test allows ~1 s) and
//! the upstream's table shows the denied statement did not run; `airlock
//! audit verify` passes over one chain holding both replicas' events; a
//! command held for review on B is released by an approval through A
//! (woken by the store's notification).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{pg_client, GatewayProcess, PgCluster};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::replicas::{
    clusters, count, start_replica, start_replica_with_policy, ADMIN_TOKEN, MASTER_KEY,
};

#[test]
fn two_replicas_share_tokens_revocations_policies_and_one_audit_chain() {
    let (store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    let b = start_replica(&config, &store);
    // The credential goes into the shared vault through A only.
    a.set_credential("app", "app", &upstream.role_password("app"));
    for replica in [&a, &b] {
        let log = replica.log();
        assert!(
            !log.contains(&store.superuser_password),
            "store password in the log"
        );
        assert!(!log.contains(MASTER_KEY), "master key in the log");
    }

    // Issued through A, the token works on B (and B decrypts A's credential).
    let (token_id, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let output = b.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select count(*) from items",
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(common::stdout(&output), "5");
    let output = b.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "delete from items where id = 5",
    );
    assert!(
        output.status.success(),
        "allowed before the new policy: {}",
        common::stderr(&output)
    );
    assert_eq!(count(&upstream), "4");

    // Revoked through A: B refuses it at the next login.
    a.cli_ok(&["token", "revoke", &token_id], None);
    let output = b.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(!output.status.success(), "a revoked token logged in on B");
    assert!(!common::stderr(&output).contains(&token));

    // A policy applied through A is enforced by B's next command.
    let (_, token) = b.issue_token("agent-7", &["pg-test"], "1h");
    let policy = "version: 1\ndefault: deny\nrules:\n  - name: reads-only\n    match: {access: read}\n    action: allow\n  - name: no-deletes\n    match: {operations: [delete]}\n    action: deny\n    message: deletes are not allowed\n";
    let file = a.data_dir().join("no-deletes.yaml");
    std::fs::write(&file, policy).unwrap();
    a.cli_ok(&["policy", "apply", file.to_str().unwrap()], None);
    std::thread::sleep(Duration::from_millis(1_100));
    let output = b.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "delete from items where id = 4",
    );
    assert!(
        !output.status.success(),
        "B ran a delete the live policy denies"
    );
    let error = common::stderr(&output);
    assert!(
        error.contains("blocked by rule \"no-deletes\" (policy v2)"),
        "{error}"
    );
    assert_eq!(
        count(&upstream),
        "4",
        "the denied delete reached the upstream"
    );
    let output = b.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select count(*) from items",
    );
    assert_eq!(common::stdout(&output), "4", "{}", common::stderr(&output));

    // One chain over both replicas' events, verified through either.
    std::thread::sleep(Duration::from_millis(500));
    for replica in [&a, &b] {
        let report: serde_json::Value =
            serde_json::from_str(&replica.cli_ok(&["audit", "verify", "--output", "json"], None))
                .unwrap();
        assert_eq!(report["ok"], true, "{report}");
    }
    let sessions = store.sql_in(
        "airlock_state",
        "select count(*) from events where kind = 'session.start'",
    );
    assert!(sessions.trim().parse::<i64>().unwrap() >= 4, "{sessions}");
    let denied = store.sql_in(
        "airlock_state",
        "select count(*) from events where data like '%no-deletes%'",
    );
    assert!(
        denied.trim().parse::<i64>().unwrap() >= 1,
        "B's denial is in the shared chain"
    );
}

/// A shared store that cannot be reached stops `airlock serve` at start-up
/// with a clear error naming the store without its password.
#[test]
fn an_unreachable_shared_store_stops_start_up_without_printing_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = airlock_testkit::free_port();
    let config = dir.path().join("airlock.yaml");
    std::fs::write(
        &config,
        format!(
            "listen:\n  admin: 127.0.0.1:{}\n  postgres: 127.0.0.1:{}\nstore: postgres://airlock@127.0.0.1:{port}/state\n",
            airlock_testkit::free_port(),
            airlock_testkit::free_port()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(common::binary())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("AIRLOCK_STORE_PASSWORD", "hunter2-store-secret")
        .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = common::stderr(&output);
    let stdout = common::stdout(&output);
    assert!(
        stderr.contains(&format!(
            "cannot open the shared store: postgres://airlock@127.0.0.1:{port}/state: "
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stdout.contains("hunter2"),
        "{stderr}"
    );
}

const REVIEW_POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
    wait: 20s
";

/// The agent's DELETE waits on B; Alice approves it through A; B runs it
/// once, within a second of the approval.
#[test]
fn a_command_held_on_one_replica_is_released_by_an_approval_through_the_other() {
    let (store, upstream, config) = clusters();
    let a = start_replica_with_policy(&config, &store, REVIEW_POLICY);
    let b = start_replica_with_policy(&config, &store, REVIEW_POLICY);
    // A third replica with another master key is refused at start-up.
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("airlock.yaml");
    std::fs::write(
        &config_path,
        format!(
            "listen:\n  admin: 127.0.0.1:{}\n  postgres: 127.0.0.1:{}\n{config}",
            airlock_testkit::free_port(),
            airlock_testkit::free_port()
        ),
    )
    .unwrap();
    let other_key = Command::new(common::binary())
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("AIRLOCK_STORE_PASSWORD", &store.superuser_password)
        .env("AIRLOCK_MASTER_KEY", "11".repeat(32))
        .output()
        .unwrap();
    assert!(
        !other_key.status.success(),
        "a replica with another master key started"
    );
    let error = common::stderr(&other_key);
    assert!(
        error.contains("not the master key the other replicas"),
        "{error}"
    );
    a.set_credential("app", "app", &upstream.role_password("app"));
    let agent = common::issue_for(&a, "pg-test", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&a, "pg-test", "alice", "human", &["dba"]);

    let mut waiting = Command::new(pg_client("psql"))
        .arg(b.conninfo("agent-7", "pg-test", "disable"))
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "delete from items where id = 1",
        ])
        .env("PGPASSWORD", &agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let review = loop {
        let list: serde_json::Value =
            serde_json::from_str(&a.cli_ok(&["review", "list", "--output", "json"], None)).unwrap();
        if let Some(review) = list.as_array().and_then(|list| list.first()) {
            break review.clone();
        }
        assert!(Instant::now() < deadline, "no pending review:\n{}", b.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = review["id"].as_str().unwrap().to_string();
    assert_eq!(review["statement"], "delete from items where id = 1");
    assert_eq!(count(&upstream), "5", "it ran before approval");

    let approved = common::as_person(&a, &alice, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let approved_at = Instant::now();
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        assert!(
            approved_at.elapsed() < Duration::from_secs(3),
            "B did not release the command after the approval through A"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let released_after = approved_at.elapsed();
    let output = waiting.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "released {} ms after the approval",
        released_after.as_millis()
    );
    assert!(
        released_after < Duration::from_secs(1),
        "{released_after:?}"
    );
    assert_eq!(count(&upstream), "4");
    let shown: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["review", "show", &id, "--output", "json"], None))
            .unwrap();
    assert_eq!(shown["status"], "used", "{shown}");
    assert_eq!(
        upstream
            .log()
            .matches("delete from items where id = 1")
            .count(),
        1,
        "run once"
    );
}

/// The store cluster stops while a replica runs: `/readyz` turns 503 and
/// new logins are refused (their tokens cannot be looked up); once the
/// store runs again the replica recovers on its own (ready, logins work)
/// and the chain, with what was recorded before the outage, verifies.
#[test]
fn a_store_outage_fails_closed_and_the_replica_recovers_on_its_own() {
    let (mut store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let output = a.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select count(*) from items",
    );
    assert_eq!(common::stdout(&output), "5", "{}", common::stderr(&output));
    let ready = |replica: &GatewayProcess| replica.http_get("/readyz").map(|(status, _)| status);
    assert_eq!(ready(&a), Some(200));

    store.stop();
    let stopped_at = Instant::now();
    while ready(&a) != Some(503) {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(15),
            "/readyz still ready with the store down"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "not ready {} ms after the store stopped",
        stopped_at.elapsed().as_millis()
    );
    let output = a.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(
        !output.status.success(),
        "a login succeeded with the store down"
    );
    assert!(!common::stderr(&output).contains(&store.superuser_password));
    assert_eq!(count(&upstream), "5");

    store.start_again();
    let started_at = Instant::now();
    while ready(&a) != Some(200) {
        assert!(
            started_at.elapsed() < Duration::from_secs(15),
            "/readyz not ready again after the store came back:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "ready {} ms after the store started",
        started_at.elapsed().as_millis()
    );
    let output = a.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select count(*) from items",
    );
    assert_eq!(common::stdout(&output), "5", "{}", common::stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&a.cli_ok(&["audit", "verify", "--output", "json"], None)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        !a.log().contains(&store.superuser_password),
        "store password in the log"
    );
}

/// The store over TLS: `sslmode=verify-full` against the CA (host name
/// checked) for `serve`, `sslmode=require` for the CLI, and a certificate
/// the given CA did not sign stops start-up. The store cluster is the
/// upstream too here: one server with `ssl = on`.
#[test]
fn the_store_connection_is_encrypted_and_verified() {
    let (certs, cert, key) = airlock_testkit::server_certificate();
    let cluster = PgCluster::start_with_config(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert.display(),
        key.display()
    ));
    cluster.sql("CREATE DATABASE airlock_state");
    let url = |query: &str| {
        format!(
            "postgres://postgres@localhost:{}/airlock_state?{query}",
            cluster.port
        )
    };
    let verified = url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        cert.display()
    ));
    let config = common::config(&cluster, &format!("store: {verified}\n"));
    let a = start_replica(&config, &cluster);
    a.set_credential("app", "app", &cluster.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let output = a.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let plain = cluster.sql_in(
        "airlock_state",
        "select count(*) from pg_stat_activity join pg_stat_ssl using (pid) \
         where application_name = 'airlock' and datname = 'airlock_state' and not ssl",
    );
    let encrypted = cluster.sql_in(
        "airlock_state",
        "select count(*) from pg_stat_activity join pg_stat_ssl using (pid) \
         where application_name = 'airlock' and datname = 'airlock_state' and ssl",
    );
    assert_eq!(plain.trim(), "0");
    assert!(encrypted.trim().parse::<i64>().unwrap() >= 1, "{encrypted}");

    // The CLI on `require` (encrypted, certificate not checked).
    let rotated = Command::new(common::binary())
        .args(["admin-token", "rotate", "--output", "json", "--store"])
        .arg(url("sslmode=require"))
        .arg("--data-dir")
        .arg(a.data_dir())
        .env("AIRLOCK_STORE_PASSWORD", &cluster.superuser_password)
        .env("AIRLOCK_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", common::stderr(&rotated));

    // A CA that did not sign the server's certificate: refused at start-up.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let wrong_ca = certs.path().join("other-ca.crt");
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("airlock.yaml");
    std::fs::write(
        &config_path,
        format!(
            "listen:\n  admin: 127.0.0.1:{}\n  postgres: 127.0.0.1:{}\nstore: {}\n",
            airlock_testkit::free_port(),
            airlock_testkit::free_port(),
            url(&format!(
                "sslmode=verify-full&sslrootcert={}",
                wrong_ca.display()
            ))
        ),
    )
    .unwrap();
    let refused = Command::new(common::binary())
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("AIRLOCK_STORE_PASSWORD", &cluster.superuser_password)
        .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a store with an unknown CA was accepted"
    );
    let error = common::stderr(&refused);
    assert!(error.contains("cannot open the shared store"), "{error}");
    assert!(!error.contains(&cluster.superuser_password), "{error}");
}

/// The store stops under an open session: once the index cannot extend
/// the chain, that session's next commands are refused with a clear error
/// and never reach the upstream (the gateway fails closed rather than run
/// commands it cannot index); what ran before the refusal is kept in the
/// journal. When the store is back, the same session runs commands again,
/// every row the upstream holds has its recorded INSERT, none twice, and
/// the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_session_fails_closed_while_the_store_is_down_and_recovers() {
    let (mut store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let client = common::client(&a, "agent-7", "pg-test", &token).await;
    client
        .simple_query("insert into items values (100, 'before')")
        .await
        .unwrap();

    store.stop();
    let stopped_at = Instant::now();
    let mut id = 200;
    let refusal = loop {
        match client
            .simple_query(&format!("insert into items values ({id}, 'during')"))
            .await
        {
            Ok(_) => {
                assert!(
                    stopped_at.elapsed() < Duration::from_secs(15),
                    "commands still run {} ms after the store stopped",
                    stopped_at.elapsed().as_millis()
                );
                id += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => break error,
        }
    };
    let refused_after = stopped_at.elapsed();
    let message = refusal
        .as_db_error()
        .map(|error| error.message().to_string())
        .unwrap_or_else(|| refusal.to_string());
    assert!(
        message.contains("index") || message.contains("store"),
        "{message}"
    );
    assert!(!message.contains(&store.superuser_password));
    // The refused INSERT never ran, nor does the next one.
    let refused_id = id;
    assert!(client
        .simple_query("insert into items values (999, 'refused')")
        .await
        .is_err());
    assert_eq!(
        upstream.sql_in(
            "appdb",
            &format!("select count(*) from items where id in ({refused_id}, 999)")
        ),
        "0"
    );

    store.start_again();
    let started_at = Instant::now();
    loop {
        match client
            .simple_query("insert into items values (300, 'after')")
            .await
        {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    started_at.elapsed() < Duration::from_secs(20),
                    "the open session did not recover after the store came back: {error}\n{}",
                    a.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let recovered_after = started_at.elapsed();
    eprintln!(
        "refused {} ms after the store stopped ({} INSERTs ran meanwhile); \
         the session ran commands again {} ms after it started",
        refused_after.as_millis(),
        id - 200,
        recovered_after.as_millis()
    );
    drop(client);

    // Every row the upstream holds beyond the seed has its recorded INSERT,
    // once; the chain verifies over all of it.
    let rows: Vec<String> = upstream
        .sql_in("appdb", "select id from items where id >= 100 order by id")
        .lines()
        .map(str::to_string)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let exported = a.cli_ok(&["audit", "export", "--format", "jsonl"], None);
        let ran: Vec<serde_json::Value> = exported
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|event| event["kind"] == "command")
            .filter(|event| event["data"]["decision"] == "forward")
            .collect();
        let missing: Vec<&String> = rows
            .iter()
            .filter(|row| {
                let text = format!("insert into items values ({row},");
                ran.iter().all(|event| {
                    !event["data"]["statement"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(&text)
                })
            })
            .collect();
        if missing.is_empty() {
            for row in &rows {
                let text = format!("insert into items values ({row},");
                let times = ran
                    .iter()
                    .filter(|event| {
                        event["data"]["statement"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with(&text)
                    })
                    .count();
                assert_eq!(
                    times, 1,
                    "the INSERT of row {row} is recorded {times} times"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows without their recorded INSERT: {missing:?}\n{exported}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let report: serde_json::Value =
        serde_json::from_str(&a.cli_ok(&["audit", "verify", "--output", "json"], None)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
}
