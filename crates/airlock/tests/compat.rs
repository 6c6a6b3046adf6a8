//! Driver compatibility: what a client sees through the gateway is what it
//! sees directly from the same PostgreSQL, in the same test.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::wire::Wire;
use common::{client, setup};
use std::time::Duration;

async fn direct(cluster: &airlock_testkit::PgCluster) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=app dbname=appdb password={} sslmode=disable",
        cluster.port,
        cluster.role_password("app")
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `Ok(messages)` or the SQLSTATE.
async fn outcome_simple(client: &tokio_postgres::Client, sql: &str) -> Result<usize, String> {
    client
        .simple_query(sql)
        .await
        .map(|messages| messages.len())
        .map_err(|error| {
            error
                .code()
                .map(|code| code.code().to_string())
                .unwrap_or_default()
        })
}

async fn outcome_extended(client: &tokio_postgres::Client, sql: &str) -> Result<usize, String> {
    client
        .query(sql, &[])
        .await
        .map(|rows| rows.len())
        .map_err(|error| {
            error
                .code()
                .map(|code| code.code().to_string())
                .unwrap_or_default()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_queries_are_answered_as_postgres_answers_them() {
    let (cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let through = client(&gateway, "agent-7", "pg-test", &token).await;
    let straight = direct(&cluster).await;
    for sql in ["", " ", ";", " ; ;\n"] {
        assert_eq!(
            outcome_simple(&through, sql).await,
            outcome_simple(&straight, sql).await,
            "simple {sql:?}"
        );
        assert_eq!(
            outcome_extended(&through, sql).await,
            outcome_extended(&straight, sql).await,
            "extended {sql:?}"
        );
    }
    // On the wire: EmptyQueryResponse, then ReadyForQuery.
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    let reply = wire.query(" ");
    assert_eq!(reply.frames, b"IZ", "{reply:?}");
    assert!(reply.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_sends_one_fatal_error() {
    let (cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    let reply = wire.query("select 1");
    assert!(reply.errors.is_empty(), "{reply:?}");
    // The session's backend is the only one of role app on appdb.
    let terminated = cluster.sql(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = 'app' and datname = 'appdb'",
    );
    assert_eq!(terminated, "1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest = wire.until_ready();
    assert!(!rest.ready, "the session should have ended: {rest:?}");
    assert_eq!(
        rest.errors.len(),
        1,
        "one FATAL, the server's: {:?}",
        rest.errors
    );
    assert_eq!(rest.errors[0].code, "57P01");
    assert_eq!(rest.errors[0].severity, "FATAL");
    assert!(
        !rest.errors[0].message.starts_with("airlock"),
        "{:?}",
        rest.errors[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_see_the_servers_backend_pid_and_cancel_still_works() {
    let (_cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    let (pid, _key) = wire.backend_key.expect("BackendKeyData");
    let reply = wire.query("select pg_backend_pid()");
    assert_eq!(reply.text(), pid.to_string(), "{reply:?}");
    // Notifications carry the sender's pid: the same number.
    let mut listener = Wire::connect(&gateway, &token, &[]).unwrap();
    assert!(listener.query("listen compat").errors.is_empty());
    let reply = wire.query("notify compat, 'x'");
    assert!(reply.errors.is_empty(), "{reply:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heard = listener.query("select 1");
    assert_eq!(heard.notifications, vec![pid], "{heard:?}");
    // Cancel through the gateway with what the client was told.
    let sleeper = client(&gateway, "agent-7", "pg-test", &token).await;
    let cancel = sleeper.cancel_token();
    let started = std::time::Instant::now();
    let query = sleeper.query("select pg_sleep(20)", &[]);
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel_query(tokio_postgres::NoTls).await
    });
    let error = query.await.unwrap_err();
    assert_eq!(
        error.code().map(|code| code.code()),
        Some("57014"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_byte_client_encodings_work_as_directly() {
    let (cluster, gateway) = setup("");
    cluster.sql_in(
        "appdb",
        "create table words(id int primary key, word text); grant all on words to app",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    for (id, encoding) in ["LATIN9", "WIN1252", "LATIN1"].into_iter().enumerate() {
        let mut wire = Wire::connect(&gateway, &token, &[("client_encoding", encoding)]).unwrap();
        // "café" in these encodings: 0xE9 is é.
        let reply = wire.query_bytes(b"select 'caf\xe9' as word");
        assert!(reply.errors.is_empty(), "{encoding}: {reply:?}");
        assert_eq!(
            reply.rows[0][0].as_deref(),
            Some(b"caf\xe9".as_slice()),
            "{encoding}"
        );
        // "naïve": 0xEF is ï.
        let mut insert = format!("insert into words values ({id}, 'na").into_bytes();
        insert.extend_from_slice(b"\xefve')");
        let reply = wire.query_bytes(&insert);
        assert!(reply.errors.is_empty(), "{encoding}: {reply:?}");
    }
    // The server stored them as the text they are.
    assert_eq!(
        cluster.sql_in(
            "appdb",
            "select string_agg(word, ',' order by id) from words"
        ),
        "naïve,naïve,naïve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_names_in_a_single_byte_encoding_pass_and_fall_under_column_rules() {
    // Found by psycopg's own suite (`test_name_encode[latin9]`): a column
    // name that is not UTF-8 ended the session.
    let policy = "version: 1
default: allow
rules:
  - name: secret-columns
    match: {connection: {name: pg-test}}
    mask: {columns: ['s*cret'], style: full}
";
    let (_cluster, gateway) = common::setup_with_policy("", policy);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test", "pg-other"], "15m");
    // Without column rules the name and its value pass unchanged.
    let mut plain = Wire::connect_to(
        &gateway,
        "pg-other",
        &token,
        &[("client_encoding", "LATIN9")],
    )
    .unwrap();
    // "€" is 0xA4 in LATIN9.
    let reply = plain.query_bytes(b"select 1 as \"\xa4\", 'visible' as plain");
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_eq!(reply.rows[0][0].as_deref(), Some(b"1".as_slice()));
    assert_eq!(reply.rows[0][1].as_deref(), Some(b"visible".as_slice()));
    let mut wire = Wire::connect(&gateway, &token, &[("client_encoding", "LATIN9")]).unwrap();
    // A name the gateway cannot read exactly could be a masked one ("s\xe9cret"
    // is not "secret", but "s\xa4cret" might be anything): it is masked.
    let reply = wire.query_bytes(b"select 'hidden' as \"s\xa4cret\", 'visible' as plain");
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_ne!(reply.rows[0][0].as_deref(), Some(b"hidden".as_slice()));
    assert_eq!(reply.rows[0][1].as_deref(), Some(b"visible".as_slice()));
}

/// The SQLSTATE, message and position of a failed statement.
async fn syntax_outcome(
    client: &tokio_postgres::Client,
    sql: &str,
    extended: bool,
) -> (String, String, Option<u32>) {
    let error = if extended {
        client.query(sql, &[]).await.err()
    } else {
        client.simple_query(sql).await.err()
    }
    .unwrap_or_else(|| panic!("{sql:?} must fail"));
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql:?}: {error}"));
    let position = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(at)) => Some(*at),
        _ => None,
    };
    (
        db.code().code().to_string(),
        db.message().to_string(),
        position,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_come_back_as_the_servers_and_never_reach_it() {
    // Under a policy that refuses what it cannot classify (the default of a
    // real deployment) and under one that allows it: either way the client
    // gets PostgreSQL's own 42601 with its message and position, and the
    // text never reaches the upstream.
    let strict = "version: 1
default: allow
rules: []
";
    for policy in [strict, common::ALLOW_ALL] {
        let (cluster, gateway) = common::setup_with_policy("", policy);
        let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
        let through = client(&gateway, "agent-7", "pg-test", &token).await;
        let direct = direct(&cluster).await;
        // With whether the gateway answers it itself: a text the classifier
        // reads as a complete read (`select * form x` is a select list and an
        // alias to it) is forwarded like any read, and the server answers.
        let typos = [
            ("selec 1 as syntax_probe_a", true),
            ("select * form syntax_probe_b", false),
            ("select 'syntax_probe_c", true),
            ("select 1 as syntax_probe_d,", false),
            ("select 1; selec 2 as syntax_probe_e", true),
            ("select 'ü' as é, frm syntax_probe_f where", false),
            // Multibyte characters before the error: the position counts
            // characters, as the server's does.
            ("select 'ü' as é; selec 1 as syntax_probe_g", true),
            ("select 'ü€' as é, (select 1 as syntax_probe_h", true),
        ];
        for (template, answered_here) in typos {
            for extended in [false, true] {
                if extended && template.contains(';') {
                    continue; // one statement per Parse
                }
                let round = if extended {
                    "syntax_probe_x"
                } else {
                    "syntax_probe_s"
                };
                let sql = &template.replace("syntax_probe", round);
                let probe: String = sql[sql.find(round).unwrap()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let probe = probe.as_str();
                // Through the gateway first: the server's log must not see it.
                let got = syntax_outcome(&through, sql, extended).await;
                assert_eq!(
                    cluster.log().contains(probe),
                    !answered_here,
                    "{sql}: reached the upstream through the gateway?"
                );
                let expected = syntax_outcome(&direct, sql, extended).await;
                assert_eq!(expected.0, "42601", "{sql}");
                assert_eq!(got, expected, "{sql} (extended: {extended})");
                // Directly, the server saw it (the log check above can fail).
                assert!(cluster.log().contains(probe), "{sql}");
            }
        }
        // The session goes on.
        assert_eq!(outcome_simple(&through, "select 1").await, Ok(3));
        // A statement that parses but cannot be classified stays a policy
        // matter (42501 under the strict policy).
        if policy == strict {
            assert_eq!(
                outcome_simple(&through, "do $$ begin perform 1; end $$").await,
                Err("42501".into())
            );
        }
    }
}

async fn connect_with(conninfo: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_settings_are_decided_like_set_and_never_dropped() {
    // Writes allowed (plain settings are `write`), admin settings not.
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: settings
    match: {operations: [set], access: write}
    action: allow
";
    let (cluster, gateway) = common::setup_with_policy("", policy);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let options = "options='-c statement_timeout=1234 --lock-timeout=2s'";
    let through = connect_with(&format!(
        "host=127.0.0.1 port={} user=agent-7 dbname=pg-test password={token} sslmode=disable {options}",
        gateway.pg_port
    ))
    .await
    .unwrap();
    let straight = connect_with(&format!(
        "host=127.0.0.1 port={} user=app dbname=appdb password={} sslmode=disable {options}",
        cluster.port,
        cluster.role_password("app")
    ))
    .await
    .unwrap();
    for setting in ["statement_timeout", "lock_timeout"] {
        let show = format!("show {setting}");
        let via: String = through.query_one(show.as_str(), &[]).await.unwrap().get(0);
        let direct: String = straight.query_one(show.as_str(), &[]).await.unwrap().get(0);
        assert_eq!(via, direct, "{setting}");
    }
    // A setting the policy does not allow refuses the connection, naming it,
    // before anything is opened upstream (no session starts).
    let starts = || {
        common::events(&gateway)
            .iter()
            .filter(|event| event.kind == "session.start")
            .count()
    };
    let before = starts();
    let refused = match connect_with(&format!(
        "host=127.0.0.1 port={} user=agent-7 dbname=pg-test password={token} sslmode=disable options='-c search_path=evil,public'",
        gateway.pg_port
    ))
    .await
    {
        Ok(_) => panic!("a session with a forbidden setting was opened"),
        Err(error) => error,
    };
    let message = refused
        .as_db_error()
        .expect("a server error")
        .message()
        .to_string();
    assert!(message.contains("search_path=evil,public"), "{message}");
    assert_eq!(
        starts(),
        before,
        "a session started with the forbidden setting"
    );
    // Other switches than settings are refused, not dropped.
    let refused = match connect_with(&format!(
        "host=127.0.0.1 port={} user=agent-7 dbname=pg-test password={token} sslmode=disable options='-D /tmp'",
        gateway.pg_port
    ))
    .await
    {
        Ok(_) => panic!("options with a switch were accepted"),
        Err(error) => error,
    };
    assert!(
        refused
            .as_db_error()
            .is_some_and(|error| error.message().contains("only -c name=value")),
        "{refused}"
    );
}
