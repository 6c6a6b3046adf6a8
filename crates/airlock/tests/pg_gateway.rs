//! End-to-end tests of the PostgreSQL gateway core against a real,
//! throwaway PostgreSQL (SCRAM, MD5 and cleartext roles), with real clients:
//! psql, pgbench and tokio-postgres.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::pg_client;
use common::{client, connect, events, eventually, setup, stderr, stdout};
use futures_util::{SinkExt, StreamExt};
use std::process::Command;
use std::time::{Duration, Instant};

/// The README flow: store credentials, issue a token, run psql (TLS and
/// plain on loopback) and pgbench in all three query modes; then check that
/// no upstream password appears in the data dir or the logs.
#[test]
fn readme_flow_with_psql_pgbench_and_no_secret_leak() {
    let (cluster, gateway) = setup("");
    gateway.set_credential("md5", "md5user", &cluster.role_password("md5user"));
    gateway.set_credential("plain", "plainuser", &cluster.role_password("plainuser"));
    let listed = gateway.cli_ok(&["credential", "list"], None);
    assert!(
        listed.contains("app") && listed.contains("md5user"),
        "{listed}"
    );
    let listed_json = gateway.cli_ok(&["credential", "list", "--output", "json"], None);
    let parsed: serde_json::Value = serde_json::from_str(&listed_json).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 3);

    let (_id, token) = gateway.issue_token("agent-7", &["pg-test", "pg-md5", "pg-plain"], "15m");

    // TLS (self-signed certificate generated into the data dir) and plain.
    for sslmode in ["require", "disable"] {
        let output = gateway.psql(
            &token,
            "agent-7",
            "pg-test",
            sslmode,
            "select current_user, 40 + 2",
        );
        assert!(
            output.status.success(),
            "psql {sslmode}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "app|42");
    }
    let tls = gateway.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(tls.status.success());
    assert!(gateway.data_dir().join("tls.crt").exists());

    // MD5 and cleartext upstream authentication.
    for (connection, role) in [("pg-md5", "md5user"), ("pg-plain", "plainuser")] {
        let output = gateway.psql(
            &token,
            "agent-7",
            connection,
            "disable",
            "select current_user",
        );
        assert!(output.status.success(), "{connection}: {}", stderr(&output));
        assert_eq!(stdout(&output), role);
    }

    // pgbench: -i uses COPY FROM STDIN; then the three query modes.
    let pgbench = |args: &[&str]| {
        Command::new(pg_client("pgbench"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &gateway.pg_port.to_string(),
                "-U",
                "agent-7",
            ])
            .args(args)
            .arg("pg-test")
            .env("PGPASSWORD", &token)
            .output()
            .expect("run pgbench")
    };
    let init = pgbench(&["-i", "-s", "1", "-q"]);
    assert!(init.status.success(), "pgbench -i: {}", stderr(&init));
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from pgbench_accounts"),
        "100000"
    );
    for mode in ["simple", "extended", "prepared"] {
        let run = pgbench(&["-M", mode, "-c", "4", "-j", "2", "-t", "50"]);
        assert!(run.status.success(), "pgbench -M {mode}: {}", stderr(&run));
        let text = stdout(&run);
        assert!(
            text.contains("number of transactions actually processed: 200/200"),
            "pgbench -M {mode}: {text}"
        );
        assert!(text.contains("number of failed transactions: 0"), "{text}");
    }

    // Health endpoints.
    assert_eq!(gateway.http_get("/healthz").unwrap().0, 200);
    assert_eq!(gateway.http_get("/readyz").unwrap().0, 200);

    // Nothing secret leaks: no upstream password in any file of the data
    // dir, the gateway's log or any API listing; no token in the log.
    let secrets = [
        cluster.role_password("app"),
        cluster.role_password("md5user"),
        cluster.role_password("plainuser"),
    ];
    for entry in walk(&gateway.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{} holds an upstream password",
                entry.display()
            );
        }
    }
    let log = gateway.log();
    for secret in secrets.iter().chain(std::iter::once(&token)) {
        assert!(
            !log.contains(secret.as_str()),
            "the gateway log holds a secret"
        );
    }
    for path in [
        "/api/v1/credentials",
        "/api/v1/tokens",
        "/api/v1/connections",
    ] {
        let (status, body) = gateway.http_get(path).unwrap();
        assert_eq!(status, 200);
        for secret in secrets.iter().chain(std::iter::once(&token)) {
            assert!(!body.contains(secret.as_str()), "{path} returns a secret");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Wrong, expired, revoked and out-of-scope tokens and a mismatched user
/// are all refused with 28P01 and one generic message; after the threshold
/// the source is locked out even with a good token; all of it is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failures_are_generic_counted_and_lock_out() {
    let (_cluster, gateway) = setup(
        "auth:\n  lockout_threshold: 6\n  lockout_source_threshold: 6\n  lockout_duration: 5m\n",
    );
    let (_good_id, good) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let (_short_id, short) = gateway.issue_token("agent-7", &["pg-test"], "1s");
    let (revoked_id, revoked) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let (_other_id, other_scope) = gateway.issue_token("agent-7", &["pg-other"], "15m");
    gateway.cli_ok(&["token", "revoke", &revoked_id], None);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let attempts = [
        ("agent-7", "alt_wrong-token-value"),
        ("agent-7", short.as_str()),
        ("agent-7", revoked.as_str()),
        ("agent-7", other_scope.as_str()),
        ("agent-8", good.as_str()),
    ];
    let mut messages = Vec::new();
    for (user, token) in attempts {
        let error = match connect(&gateway, user, "pg-test", token).await {
            Ok(_) => panic!("{user} with a bad token was let in"),
            Err(error) => error,
        };
        let db_error = error.as_db_error().expect("a server error");
        assert_eq!(db_error.code().code(), "28P01", "{db_error:?}");
        assert_eq!(db_error.severity(), "FATAL");
        messages.push(db_error.message().replace(user, "USER"));
    }
    // One message for every cause: nothing tells whether the identity or
    // the token exists.
    assert!(
        messages.iter().all(|message| message == &messages[0]),
        "{messages:?}"
    );
    assert!(messages[0].contains("authentication failed"));

    // The good token still works (5 failures < 6) …
    let client = client(&gateway, "agent-7", "pg-test", &good).await;
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    // … until the sixth failure locks this source out.
    assert!(connect(&gateway, "agent-7", "pg-test", "nope")
        .await
        .is_err());
    let locked = match connect(&gateway, "agent-7", "pg-test", &good).await {
        Ok(_) => panic!("a locked-out source was let in"),
        Err(error) => error,
    };
    let locked = locked.as_db_error().expect("a server error");
    assert_eq!(locked.code().code(), "28000");
    assert!(
        locked
            .message()
            .contains("too many failed authentication attempts"),
        "{locked:?}"
    );

    let events = events(&gateway);
    let failures: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "auth.failure")
        .collect();
    assert_eq!(failures.len(), 6);
    let reasons: Vec<_> = failures
        .iter()
        .map(|event| event.data["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "unknown_token",
            "expired",
            "revoked",
            "out_of_scope",
            "identity_mismatch",
            "unknown_token"
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|event| event.kind == "auth.lockout")
            .count(),
        1
    );
    for event in &events {
        let text = event.data.to_string();
        assert!(
            !text.contains(&good) && !text.contains(&revoked),
            "an event holds a token"
        );
    }

    // The admin API refuses a wrong admin token.
    let output = Command::new(common::binary())
        .args(["token", "list"])
        .env(
            "AIRLOCK_URL",
            format!("http://127.0.0.1:{}", gateway.admin_port),
        )
        .env("AIRLOCK_ADMIN_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("valid admin token is required"),
        "{}",
        stderr(&output)
    );
}

/// The driver's simple and extended protocol, pipelining, errors, COPY in
/// and out, a 100,000-row result, cancellation, notices and notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_protocol_features_pass_through() {
    let (cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    // Simple protocol, several statements in one Query.
    let messages = client
        .simple_query("create table items(id int primary key, name text); insert into items values (1, 'a'), (2, 'b'); select count(*) from items")
        .await
        .unwrap();
    let counts: Vec<_> = messages
        .iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(counts, ["2"]);

    // Extended protocol with parameters, prepared statements, pipelining.
    let statement = client
        .prepare("select name from items where id = $1")
        .await
        .unwrap();
    let futures = (1..=2).map(|id| {
        let client = &client;
        let statement = &statement;
        async move { client.query_one(statement, &[&id]).await }
    });
    let rows = futures_util::future::join_all(futures).await;
    let names: Vec<String> = rows.into_iter().map(|row| row.unwrap().get(0)).collect();
    assert_eq!(names, ["a", "b"]);

    // An error leaves the session usable.
    let error = client.query_one("select 1/0", &[]).await.unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "22012");
    assert_eq!(
        client
            .query_one("select 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );

    // COPY in and out.
    let sink = client.copy_in("copy items from stdin").await.unwrap();
    futures_util::pin_mut!(sink);
    let mut data = String::new();
    for id in 3..=1002 {
        data.push_str(&format!("{id}\tname-{id}\n"));
    }
    sink.send(bytes_of(&data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1000);
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items"),
        "1002"
    );
    let stream = client.copy_out("copy items to stdout").await.unwrap();
    futures_util::pin_mut!(stream);
    let mut copied = Vec::new();
    while let Some(chunk) = stream.next().await {
        copied.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(copied.iter().filter(|&&byte| byte == b'\n').count(), 1002);

    // A 100,000-row result streams through.
    let rows = client
        .query(
            "select g, md5(g::text) from generate_series(1, 100000) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows[99_999].get::<_, i32>(0), 100_000);

    // Cancel: the gateway maps its own key to the upstream's.
    let cancel = client.cancel_token();
    let started = Instant::now();
    let sleeper = {
        let query = client.query("select pg_sleep(30)", &[]);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel_query(tokio_postgres::NoTls).await
        });
        query.await
    };
    let error = sleeper.unwrap_err();
    assert_eq!(
        error.as_db_error().unwrap().code().code(),
        "57014",
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        client
            .query_one("select 8", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        8
    );

    // Notices and notifications reach the client.
    let (listener, mut connection) = connect(&gateway, "agent-7", "pg-test", &token)
        .await
        .unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages =
            futures_util::stream::poll_fn(move |context| connection.poll_message(context));
        while let Some(Ok(message)) = messages.next().await {
            let _ = sender.send(message);
        }
    });
    listener
        .batch_execute(
            "listen airlock_test; do $$ begin raise notice 'hello from upstream'; end $$",
        )
        .await
        .unwrap();
    client
        .batch_execute("notify airlock_test, 'payload-1'")
        .await
        .unwrap();
    let mut saw_notice = false;
    let mut saw_notification = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !(saw_notice && saw_notification) {
        match tokio::time::timeout(Duration::from_secs(1), receiver.recv()).await {
            Ok(Some(tokio_postgres::AsyncMessage::Notice(notice))) => {
                saw_notice |= notice.message() == "hello from upstream";
            }
            Ok(Some(tokio_postgres::AsyncMessage::Notification(notification))) => {
                saw_notification |= notification.channel() == "airlock_test"
                    && notification.payload() == "payload-1";
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
        // Notifications are delivered between commands.
        let _ = listener.simple_query("select 1").await;
    }
    assert!(saw_notice, "the notice did not arrive");
    assert!(saw_notification, "the notification did not arrive");
}

fn bytes_of(text: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(text.as_bytes())
}

/// Revocation closes live sessions; credential rotation leaves open
/// sessions alone and new ones use the new secret; an unreachable upstream
/// gives a clear error and the gateway keeps serving; a client vanishing
/// mid-query releases its upstream backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifecycle() {
    let (cluster, gateway) = setup("");

    // Revocation.
    let (revoke_id, revoke_token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let doomed = client(&gateway, "agent-7", "pg-test", &revoke_token).await;
    assert_eq!(
        doomed
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    let live = gateway.http_get("/api/v1/sessions/live").unwrap().1;
    assert!(live.contains(&revoke_id), "{live}");
    let revoked = gateway.cli_ok(&["token", "revoke", &revoke_id, "--output", "json"], None);
    let revoked: serde_json::Value = serde_json::from_str(&revoked).unwrap();
    assert_eq!(revoked["sessions_closed"], 1);
    let closed = eventually(5, || doomed.is_closed()).await;
    assert!(closed, "the revoked token's session is still open");
    assert!(connect(&gateway, "agent-7", "pg-test", &revoke_token)
        .await
        .is_err());

    // Rotation while a session is open.
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let before = client(&gateway, "agent-7", "pg-test", &token).await;
    let new_password = format!("{}-rotated", cluster.role_password("app"));
    cluster.sql(&format!("alter role app password '{new_password}'"));
    let rotated = gateway.cli_ok(
        &[
            "credential",
            "rotate",
            "app",
            "--password-stdin",
            "--output",
            "json",
        ],
        Some(&new_password),
    );
    let rotated: serde_json::Value = serde_json::from_str(&rotated).unwrap();
    assert_eq!(rotated["version"], 2);
    assert_eq!(
        before
            .query_one("select 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    let after = client(&gateway, "agent-7", "pg-test", &token).await;
    assert_eq!(
        after
            .query_one("select current_user::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "app"
    );
    assert!(!gateway.log().contains(&new_password));

    // Upstream down: a clear error, and the gateway still serves others.
    let (_down_id, down_token) = gateway.issue_token("agent-7", &["pg-down", "pg-test"], "15m");
    let error = match connect(&gateway, "agent-7", "pg-down", &down_token).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(error) => error,
    };
    let db_error = error.as_db_error().expect("a server error");
    assert_eq!(db_error.code().code(), "08001");
    assert!(
        db_error
            .message()
            .contains("cannot reach the upstream of connection \"pg-down\""),
        "{db_error:?}"
    );
    let still = client(&gateway, "agent-7", "pg-test", &down_token).await;
    assert_eq!(
        still
            .query_one("select 3", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        3
    );

    // A client vanishing mid-query: the upstream backend is released.
    let (vanishing, connection) = connect(&gateway, "agent-7", "pg-test", &token)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let query = tokio::spawn(async move { vanishing.query("select pg_sleep(60)", &[]).await });
    let sleeping = "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'";
    assert!(
        eventually(5, || cluster.sql(sleeping) == "1").await,
        "the query never started"
    );
    query.abort();
    driver.abort();
    let _ = query.await;
    let _ = driver.await;
    let gone = "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)'";
    assert!(
        eventually(10, || cluster.sql(gone) == "0").await,
        "the upstream backend kept running after the client vanished"
    );

    // Sessions are recorded start to end.
    let events = events(&gateway);
    let starts = events
        .iter()
        .filter(|event| event.kind == "session.start")
        .count();
    assert!(starts >= 6, "{starts} session starts");
    let ended_by: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "session.end")
        .map(|event| event.data["ended_by"].as_str().unwrap().to_string())
        .collect();
    assert!(ended_by.contains(&"revoked".to_string()), "{ended_by:?}");
    assert!(
        ended_by.contains(&"client_vanished".to_string()),
        "{ended_by:?}"
    );
    // The session whose upstream could not be reached is recorded as ended.
    assert!(
        ended_by.contains(&"upstream_failed".to_string()),
        "{ended_by:?}"
    );
    let listed: serde_json::Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "session",
            "list",
            "--connection",
            "pg-down",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(
        listed
            .iter()
            .all(|session| session["ended_by"] == "upstream_failed"),
        "{listed:?}"
    );
}
