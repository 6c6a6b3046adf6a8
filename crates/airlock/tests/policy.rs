//! End-to-end tests of policy enforcement through the gateway against a
//! real PostgreSQL: denials never reach the upstream, multi-statement and
//! transaction semantics stay PostgreSQL's, versions go live at once, rate
//! limits and reviews refuse with the rule's name.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, events, setup_with_policy, stderr, stdout};
use std::time::Duration;

/// Reads, writes with a WHERE, no DDL: what a cautious team gives an agent.
const GUARDED: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: bounded-writes
    match:
      operations: [insert, update, delete]
    action: allow
  - name: no-unbounded-writes
    match:
      operations: [update, delete]
      has_where: false
    action: deny
    message: UPDATE and DELETE need a WHERE clause
  - name: no-ddl
    match:
      operations: [drop, truncate, alter, create]
    action: deny
    message: '{operation} is not allowed on {connection}'
  - name: transactions
    match: {operations: [transaction]}
    action: allow
  - name: grants-need-review
    match: {access: admin}
    action: review
    approvers: security
";

fn prepare_table(cluster: &airlock_testkit::PgCluster) {
    cluster.sql_in(
        "appdb",
        "create table items(id int primary key, name text); insert into items values (1, 'a'), (2, 'b'); grant all on items to app",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_commands_never_reach_the_upstream() {
    let (cluster, gateway) = setup_with_policy("", GUARDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    // DROP TABLE: refused with the rule and version; the table stays.
    let error = client.batch_execute("drop table items").await.unwrap_err();
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "42501");
    assert_eq!(
        db_error.message(),
        "blocked by rule \"no-ddl\" (policy v1): DROP is not allowed on pg-test"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");
    assert!(
        !cluster.log().contains("drop table items"),
        "the refused statement reached the upstream"
    );

    // The session stays usable.
    assert_eq!(
        client
            .query_one("select count(*) from items", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );

    // One denied statement in a multi-statement query stops all of it.
    let error = client
        .batch_execute("insert into items values (3, 'c'); delete from items")
        .await
        .unwrap_err();
    assert!(
        error
            .as_db_error()
            .unwrap()
            .message()
            .contains("no-unbounded-writes"),
        "{error}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");

    // A write hidden in a CTE is found.
    let error = client
        .simple_query("with gone as (delete from items returning *) select * from gone")
        .await
        .unwrap_err();
    assert!(
        error
            .as_db_error()
            .unwrap()
            .message()
            .contains("no-unbounded-writes"),
        "{error}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");

    // Extended protocol: decided at Parse.
    let error = client.prepare("truncate items").await.unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "42501");
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");
    let statement = client
        .prepare("update items set name = $1 where id = $2")
        .await
        .unwrap();
    assert_eq!(client.execute(&statement, &[&"z", &1i32]).await.unwrap(), 1);

    // Inside a transaction, a refusal aborts it exactly as PostgreSQL would.
    client.batch_execute("begin").await.unwrap();
    client
        .batch_execute("insert into items values (10, 'tx')")
        .await
        .unwrap();
    assert!(client.batch_execute("drop table items").await.is_err());
    let aborted = client.batch_execute("select 1").await.unwrap_err();
    assert_eq!(
        aborted.as_db_error().unwrap().code().code(),
        "25P02",
        "{aborted}"
    );
    client.batch_execute("rollback").await.unwrap();
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where id = 10"),
        "0"
    );

    // A review rule without `wait` refuses at once, naming the review and
    // how to approve it.
    let error = client
        .batch_execute("grant select on items to public")
        .await
        .unwrap_err();
    let message = error.as_db_error().unwrap().message().to_string();
    assert!(message.starts_with("review r-"), "{message}");
    assert!(
        message.contains(
            "required by rule \"grants-need-review\" (policy v1); approve with: airlock review approve r-"
        ),
        "{message}"
    );

    // psql shows the same, and every decision is recorded with its rule and
    // policy version.
    let output = gateway.psql(&token, "agent-7", "pg-test", "disable", "drop table items");
    assert!(
        stderr(&output).contains("ERROR:  blocked by rule \"no-ddl\" (policy v1)"),
        "{}",
        stderr(&output)
    );
    let events = events(&gateway);
    let refused: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "command" && event.data["decision"] == "refuse")
        .collect();
    assert!(refused.len() >= 6, "{} refusals recorded", refused.len());
    for event in refused {
        assert_eq!(event.data["policy"]["policy_version"], 1, "{}", event.data);
        assert!(event.data["refusal"].as_str().is_some());
    }
    let drop_event = events
        .iter()
        .find(|event| event.kind == "command" && event.data["statement"] == "drop table items")
        .unwrap();
    assert_eq!(drop_event.data["policy"]["rule"], "no-ddl");
    assert_eq!(drop_event.data["policy"]["verdict"], "deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_versions_go_live_at_once_and_roll_back() {
    let (cluster, gateway) = setup_with_policy("", GUARDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    assert!(client
        .batch_execute("insert into items values (5, 'e')")
        .await
        .is_ok());

    // v2: read-only. The open session uses it for its next command.
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("read-only.yaml");
    std::fs::write(
        &read_only,
        "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n",
    )
    .unwrap();
    let applied = gateway.cli_ok(
        &[
            "policy",
            "apply",
            read_only.to_str().unwrap(),
            "--comment",
            "freeze",
        ],
        None,
    );
    assert!(applied.contains("policy v2 is live"), "{applied}");
    let error = client
        .batch_execute("insert into items values (6, 'f')")
        .await
        .unwrap_err();
    assert!(
        error
            .as_db_error()
            .unwrap()
            .message()
            .starts_with("blocked by policy v2"),
        "{error}"
    );
    assert_eq!(
        client
            .query_one("select count(*) from items", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        3
    );

    // An invalid file changes nothing and reports every problem with its line.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "version: 1\ndefault: deny\nrules:\n  - name: a\n    match: {operations: [selekt]}\n    action: allow\n  - name: b\n    match: {access: sometimes}\n    action: allow\n",
    )
    .unwrap();
    let output = gateway.cli(&["policy", "apply", broken.to_str().unwrap()], None);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains(":5:") && text.contains("selekt"), "{text}");
    assert!(text.contains(":8:") && text.contains("sometimes"), "{text}");
    let history = gateway.cli_ok(&["policy", "history", "--output", "json"], None);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["comment"], "freeze");
    // The newest version is marked live.
    let live: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|version| version["live"] == true)
        .map(|version| version["version"].clone())
        .collect();
    assert_eq!(live, vec![serde_json::json!(2)], "{history}");
    let table = gateway.cli_ok(&["policy", "history"], None);
    assert!(table.contains("LIVE") && table.contains("live"), "{table}");

    // show, diff, rollback.
    let shown = gateway.cli_ok(&["policy", "show", "--version", "1"], None);
    assert!(shown.contains("bounded-writes"), "{shown}");
    let diff = gateway.cli_ok(&["policy", "diff", "1", "2"], None);
    assert!(diff.contains("-  - name: bounded-writes"), "{diff}");
    let rolled = gateway.cli_ok(&["policy", "rollback", "1"], None);
    assert!(rolled.contains("policy v3 is live"), "{rolled}");
    client
        .batch_execute("insert into items values (7, 'g')")
        .await
        .unwrap();
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where id = 7"),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_the_excess_and_no_policy_refuses_everything() {
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: agent-rate
    match: {identity: {kind: agent}}
    rate_limit: {per_minute: 3}
";
    let (_cluster, gateway) = setup_with_policy("", policy);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    for _ in 0..3 {
        client.batch_execute("select 1").await.unwrap();
    }
    let error = client.batch_execute("select 1").await.unwrap_err();
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "53400");
    assert!(
        db_error
            .message()
            .contains("rate limit exceeded by rule \"agent-rate\" (policy v1)"),
        "{db_error:?}"
    );
    // The hint names a real wait, never "0.0 s".
    assert!(!db_error.message().contains("retry in 0.0"), "{db_error:?}");
    assert!(
        db_error.message().contains(" ms") || db_error.message().contains(" s"),
        "{db_error:?}"
    );

    // A gateway with no policy at all refuses every command, clearly.
    let cluster = airlock_testkit::PgCluster::start();
    let bare =
        airlock_testkit::GatewayProcess::start(common::binary(), &common::config(&cluster, ""));
    bare.set_credential("app", "app", &cluster.role_password("app"));
    let (_id, token) = bare.issue_token("agent-7", &["pg-test"], "15m");
    let output = bare.psql(&token, "agent-7", "pg-test", "disable", "select 1");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no policy is loaded"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty());
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A statement that EXECUTEs a prepared name is decided from the session's
/// current PREPAREs every time, never from a cached classification: after
/// `p` is re-prepared as a DELETE, the same text is denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_prepared_statements_are_not_decided_from_a_stale_cache() {
    // Preparing a DELETE is allowed; executing one is not.
    let policy = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: prepared-deletes\n    match: {operations: [prepare, delete]}\n    action: allow\n  - name: no-executed-writes\n    match: {operations: [execute], access: write}\n    action: deny\n";
    let (cluster, gateway) = setup_with_policy("", policy);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    // `execute p` sits past the first 64 bytes, behind multibyte text.
    let text = "select 1; /* ééééééééééééééééééééééééééééééééééééééé */ execute p";
    client
        .batch_execute("prepare p as select count(*) from items")
        .await
        .unwrap();
    client.batch_execute(text).await.unwrap();
    client.batch_execute("deallocate p").await.unwrap();
    client
        .batch_execute("prepare p as delete from items")
        .await
        .unwrap();
    let error = client.batch_execute(text).await.unwrap_err();
    assert_eq!(
        error.as_db_error().unwrap().code().code(),
        "42501",
        "{error}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");
}

/// The same through the extended protocol: a parsed `execute p` is decided
/// again at every Execute, against the session's PREPAREs at that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executes_of_a_parsed_sql_execute_are_decided_each_time() {
    // Preparing a DELETE is allowed; executing one is not.
    let policy = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: prepared-deletes\n    match: {operations: [prepare, delete]}\n    action: allow\n  - name: no-executed-writes\n    match: {operations: [execute], access: write}\n    action: deny\n";
    let (cluster, gateway) = setup_with_policy("", policy);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    client
        .batch_execute("prepare p as select count(*) from items")
        .await
        .unwrap();
    let statement = client.prepare("execute p").await.unwrap();
    assert_eq!(client.query(&statement, &[]).await.unwrap().len(), 1);
    client.batch_execute("deallocate p").await.unwrap();
    client
        .batch_execute("prepare p as delete from items")
        .await
        .unwrap();
    let error = client.query(&statement, &[]).await.unwrap_err();
    assert_eq!(
        error.as_db_error().map(|e| e.code().code()),
        Some("42501"),
        "{error}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");
    // The session stays usable.
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

/// The shipped starting policy: `DELETE … WHERE true` is as unbounded as a
/// DELETE without WHERE, and is refused before it reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_where_clauses_are_unbounded_writes() {
    let policy = airlock_testkit::repo_text("examples/local-policy.yaml");
    let (cluster, gateway) = setup_with_policy("", &policy);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    for statement in [
        "delete from items where true",
        "delete from items where 1=1 or id = 1",
        "update items set name = 'x' where id = id",
        "delete from items where (not false)",
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        let db_error = error.as_db_error().unwrap();
        assert_eq!(db_error.code().code(), "42501", "{statement}: {error}");
        assert!(
            db_error.message().contains("no-unbounded-writes"),
            "{statement}: {error}"
        );
        assert!(
            !cluster.log().contains(statement),
            "{statement} reached the upstream"
        );
    }
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where name = 'x'"),
        "0"
    );

    // A real bound still runs.
    client
        .batch_execute("delete from items where id = 1")
        .await
        .unwrap();
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "1");
}

/// `SET SCHEMA` changes `search_path`: under a policy that allows writes but
/// not admin, it is refused and never reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_schema_is_as_privileged_as_search_path() {
    const READ_WRITE: &str = "version: 1
default: deny
rules:
  - name: reads-and-writes
    match: {access: [read, write]}
    action: allow
";
    let (cluster, gateway) = setup_with_policy("", READ_WRITE);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    // An ordinary setting is a write and runs.
    client
        .batch_execute("set statement_timeout = '5s'")
        .await
        .unwrap();
    for statement in [
        "SET SCHEMA 'pg_catalog'",
        "SET LOCAL schema 'pg_catalog'",
        "SET SESSION SCHEMA 'pg_catalog'",
        "RESET search_path",
        "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)",
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            error.as_db_error().unwrap().code().code(),
            "42501",
            "{statement}: {error}"
        );
        assert!(
            !cluster.log().contains(statement),
            "{statement} reached the upstream"
        );
    }
    let search_path = client.query_one("show search_path", &[]).await.unwrap();
    assert_eq!(search_path.get::<_, String>(0), "\"$user\", public");
}

/// psql's own catalog queries (`\d`, `\df`, `\dt` …) are reads under the
/// Quick start's policy; a statement that counts as a write only because
/// it calls an unknown function is refused naming that function.
#[test]
fn psql_meta_commands_are_reads_and_unknown_functions_are_named() {
    let policy = airlock_testkit::repo_text("examples/local-policy.yaml");
    let (cluster, gateway) = setup_with_policy("", &policy);
    prepare_table(&cluster);
    cluster.sql_in(
        "appdb",
        "create function shout(t text) returns text language sql as $$ select upper(t) $$; \
         grant execute on function shout(text) to app",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    for meta in [
        "\\d items",
        "\\d+ items",
        "\\dt",
        "\\df",
        "\\df shout",
        "\\dn",
        "\\du",
        "\\l",
        "\\dv",
        "\\di",
        "\\dx",
        "\\dT",
        "\\ds",
        "\\dp",
        "\\do",
        "\\dD",
        "\\dy",
        "\\sf shout",
    ] {
        let output = gateway.psql(&token, "agent-7", "pg-test", "disable", meta);
        assert!(
            output.status.success(),
            "{meta}: {}\n{}",
            stderr(&output),
            stdout(&output)
        );
    }
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "disable",
        "select shout(name) from items",
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("it calls shout()"), "{text}");
    assert!(text.contains("unknown_functions"), "{text}");
    // A schema-qualified user operator stays an unknown call.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "disable",
        "select 1 OPERATOR(public.+) 1",
    );
    assert!(!output.status.success(), "{}", stdout(&output));
}
