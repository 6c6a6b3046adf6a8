//! Bypasses found by attacking the gateway, each checked on the upstream
//! (its tables and its `log_statement = all` log), not only on the answer:
//! multibyte client encodings, executions of statements and portals the
//! gateway never decided, redefinitions the server rejected, approvals
//! reused, policy changes under parsed statements, rate limits of
//! executions, and masking of rows whose layout the client never asked for.
//! Raw protocol messages where a driver would not produce them.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, PgCluster};
use common::wire::{bind, describe, execute, parse, pipeline, sync, Wire};
use common::{setup_with_policy, stderr};
use serde_json::Value;
use std::time::Duration;

fn describe_portal(name: &str) -> Vec<u8> {
    describe(b'P', name)
}

fn rows_of(cluster: &PgCluster, table: &str) -> String {
    cluster.sql_in(
        "appdb",
        &format!("select string_agg(id::text, ',' order by id) from {table}"),
    )
}

fn prepare_table(cluster: &PgCluster) {
    cluster.sql_in(
        "appdb",
        "create table t(id int primary key, email text, password_hash text);
         insert into t select g, 'user' || g || '@example.com', 'hash-' || g from generate_series(1, 7) g;
         grant all on t to app",
    );
}

/// Reads freely, writes with a WHERE clause, no DDL, PII masked.
const BOUNDED: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: bounded-writes
    match: {operations: [insert, update, delete]}
    action: allow
  - name: no-unbounded-writes
    match: {operations: [update, delete], has_where: false}
    action: deny
    message: UPDATE and DELETE need a WHERE clause
  - name: transactions
    match: {operations: [transaction]}
    action: allow
  - name: mask-pii
    match: {}
    mask:
      detectors: [email]
      columns: ['*password*']
      style: full
";

fn apply_policy(gateway: &GatewayProcess, policy: &str) {
    let file = gateway
        .data_dir()
        .join(format!("policy-{}.yaml", rand_suffix()));
    std::fs::write(&file, policy).unwrap();
    let output = gateway.cli(&["policy", "apply", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn multibyte_client_encodings_are_refused_at_startup() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    for encoding in [
        "SJIS",
        "GBK",
        "BIG5",
        "shift_jis_2004",
        "gb18030",
        "uhc",
        "johab",
    ] {
        let refused = Wire::connect(&gateway, &token, &[("client_encoding", encoding)])
            .err()
            .unwrap_or_else(|| panic!("{encoding} was accepted"));
        assert_eq!(refused.code, "22023", "{encoding}: {refused:?}");
        assert!(
            refused.message.contains("client_encoding"),
            "{}",
            refused.message
        );
    }
    // The attack itself, had the session started: in SJIS the backslash is
    // the second byte of a character, and the quote after it ends the
    // string for the server.
    let mut wire = Wire::connect(&gateway, &token, &[("client_encoding", "UTF8")]).unwrap();
    assert!(wire.query("select 1").errors.is_empty());
    // Changing it inside the session is refused as well.
    for change in [
        "set client_encoding to 'SJIS'",
        "set names 'GBK'",
        "select set_config('client_encoding', 'SJIS', false)",
    ] {
        let reply = wire.query(change);
        assert_eq!(reply.codes(), ["42501"], "{change}: {reply:?}");
    }
    assert_eq!(rows_of(&cluster, "t"), "1,2,3,4,5,6,7");
    let log = cluster.log();
    assert!(
        !log.contains("SJIS"),
        "a change of encoding reached the server"
    );
    // So is one asked for in `options`.
    let refused = Wire::connect(&gateway, &token, &[("options", "-c client_encoding=SJIS")])
        .err()
        .expect("client_encoding in options was accepted");
    assert_eq!(refused.code, "22023", "{refused:?}");
    // A role setting chooses the encoding too: the session is refused.
    cluster.sql("alter role app set client_encoding = 'SJIS'");
    let refused = Wire::connect(&gateway, &token, &[])
        .err()
        .expect("a session in a multibyte encoding was accepted");
    assert_eq!(refused.code, "22023", "{refused:?}");
    assert!(refused.message.contains("SJIS"), "{}", refused.message);
    cluster.sql("alter role app reset client_encoding");
    assert!(Wire::connect(&gateway, &token, &[]).is_ok());
}

#[test]
fn statements_and_portals_the_gateway_never_decided_do_not_run() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();

    // PREPARE is decided on its body.
    let reply = wire.query("PREPARE p AS DELETE FROM t");
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    // Not through the protocol either.
    wire.send(&pipeline(&[bind("", "p", &[], 0), execute(""), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["26000"], "{reply:?}");

    // A statement the server holds but the gateway does not know (here one
    // whose Parse the server rejected) cannot be bound.
    wire.send(&pipeline(&[
        parse("s9", "select from nowhere_at_all"),
        sync(),
    ]));
    assert_eq!(wire.until_ready().codes(), ["42P01"]);
    wire.send(&pipeline(&[bind("", "s9", &[], 0), execute(""), sync()]));
    assert_eq!(wire.until_ready().codes(), ["26000"]);

    // An SQL cursor is not a protocol portal: Execute("cur") is refused,
    // and no row of it reaches the client raw.
    assert!(wire.query("begin").errors.is_empty());
    let reply = wire.query("declare cur cursor for select email, password_hash from t");
    assert!(reply.errors.is_empty(), "{reply:?}");
    wire.send(&pipeline(&[execute("cur"), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["34000"], "{reply:?}");
    assert!(reply.rows.is_empty());
    assert!(wire.query("rollback").errors.is_empty());

    // A portal bound in a finished transaction cannot be reached through a
    // cursor of the same name declared later.
    wire.send(&pipeline(&[
        parse("ok", "select id from t where id = 1"),
        bind("c2", "ok", &[], 0),
        sync(),
    ]));
    assert!(wire.until_ready().errors.is_empty());
    assert!(wire.query("begin").errors.is_empty());
    assert!(wire
        .query("declare c2 cursor for select email, password_hash from t")
        .errors
        .is_empty());
    wire.send(&pipeline(&[execute("c2"), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["34000"], "{reply:?}");
    assert!(!reply.text().contains("@example.com"), "{}", reply.text());
    assert!(wire.query("rollback").errors.is_empty());

    assert_eq!(rows_of(&cluster, "t"), "1,2,3,4,5,6,7");
    let log = cluster.log();
    assert!(
        !log.to_lowercase().contains("prepare p as delete"),
        "the PREPARE reached the server"
    );
    assert!(!log.contains("execute cur"), "the cursor ran as a portal");
}

#[test]
fn a_redefinition_the_server_rejected_is_not_believed() {
    let everything = "version: 1
default: allow
rules:
  - name: unclassified
    match: {complete: false}
    action: allow
";
    let (cluster, gateway) = setup_with_policy("", everything);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    // Under v1 deletes are allowed: the server holds two deleting statements.
    assert!(wire
        .query("PREPARE p AS DELETE FROM t WHERE id = 1")
        .errors
        .is_empty());
    wire.send(&pipeline(&[
        parse("s", "delete from t where id = 2"),
        sync(),
    ]));
    assert!(wire.until_ready().errors.is_empty());
    // v2 denies deletes.
    apply_policy(
        &gateway,
        "version: 1
default: allow
rules:
  - name: no-deletes
    match: {operations: [delete]}
    action: deny
",
    );
    let reply = wire.query("EXECUTE p");
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    // Redefining fails on the server (the names exist) ...
    let reply = wire.query("PREPARE p AS SELECT 1");
    assert_eq!(reply.codes(), ["42P05"], "{reply:?}");
    // ... so the old statements are still what the names run. Pipelined,
    // so the Bind is read before the server answered the Parse.
    wire.send(&pipeline(&[
        parse("s", "select 1"),
        sync(),
        bind("", "s", &[], 0),
        execute(""),
        sync(),
    ]));
    let first = wire.until_ready();
    assert_eq!(first.codes(), ["42P05"], "{first:?}");
    let second = wire.until_ready();
    assert_eq!(second.codes(), ["26000"], "{second:?}");
    let reply = wire.query("EXECUTE p");
    assert!(!reply.errors.is_empty(), "{reply:?}");
    assert_eq!(rows_of(&cluster, "t"), "1,2,3,4,5,6,7");
    let log = cluster.log();
    assert_eq!(log.matches("statement: EXECUTE p").count(), 0, "{log}");
}

/// The gate shares one analysis among texts that differ only in their
/// constants. Constants the classifier compares (`id + 7 = id + 7` does
/// not bound a DELETE, `id + 1 = id + 2` does) must not be shared, nor
/// may a shared analysis carry over another text's masking: checked on the
/// table after each statement, in one session so the cache is warm.
#[test]
fn texts_that_differ_only_in_constants_are_each_decided_as_themselves() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    for id in [1, 2] {
        let reply = wire.query(&format!("delete from t where id = {id}"));
        assert!(reply.errors.is_empty(), "{reply:?}");
    }
    assert_eq!(rows_of(&cluster, "t"), "3,4,5,6,7");
    let bounded = wire.query("delete from t where id + 1 = id + 2");
    assert!(bounded.errors.is_empty(), "{bounded:?}");
    for unbounded in [
        "delete from t where id + 7 = id + 7",
        "delete from t where 'a' = 'a'",
        "DELETE FROM t WHERE id + 01 = id + 01",
    ] {
        let reply = wire.query(unbounded);
        assert_eq!(reply.codes(), ["42501"], "{unbounded}: {reply:?}");
        assert!(
            reply.errors[0].message.contains("WHERE clause"),
            "{reply:?}"
        );
    }
    assert_eq!(rows_of(&cluster, "t"), "3,4,5,6,7");
    for id in [3, 4, 5] {
        let reply = wire.query(&format!("select email from t where id = {id}"));
        assert!(reply.errors.is_empty(), "{reply:?}");
        assert_eq!(reply.rows.len(), 1, "{reply:?}");
        assert!(!reply.text().contains("@example.com"), "{reply:?}");
    }
    let log = cluster.log();
    assert!(!log.contains("id + 7 = id + 7"), "{log}");
    assert!(log.contains("delete from t where id = 2"), "{log}");
}

#[test]
fn statements_parsed_before_a_policy_change_obey_the_new_one() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    wire.send(&pipeline(&[
        parse("d", "delete from t where id = $1"),
        bind("", "d", &["1"], 0),
        execute(""),
        sync(),
    ]));
    let reply = wire.until_ready();
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_eq!(rows_of(&cluster, "t"), "2,3,4,5,6,7");
    apply_policy(
        &gateway,
        &BOUNDED.replace(
            "  - name: bounded-writes\n    match: {operations: [insert, update, delete]}",
            "  - name: bounded-writes\n    match: {operations: [insert, update]}",
        ),
    );
    wire.send(&pipeline(&[bind("", "d", &["2"], 0), execute(""), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    assert_eq!(rows_of(&cluster, "t"), "2,3,4,5,6,7");
}

#[test]
fn every_execution_counts_against_rate_limits() {
    let policy =
        format!("{BOUNDED}  - name: slow\n    match: {{}}\n    rate_limit: {{per_minute: 3}}\n");
    let (cluster, gateway) = setup_with_policy("", &policy);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    wire.send(&pipeline(&[
        parse("r", "select id from t where id = $1"),
        sync(),
    ]));
    assert!(wire.until_ready().errors.is_empty());
    let mut refused = 0;
    for id in 1..=5 {
        wire.send(&pipeline(&[
            bind("", "r", &[&id.to_string()], 0),
            execute(""),
            sync(),
        ]));
        let reply = wire.until_ready();
        if reply.codes() == ["53400"] {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 2,
        "one Parse, five executions, three allowed per minute"
    );
    let log = cluster.log();
    assert_eq!(
        log.matches("execute r: select id from t").count(),
        3,
        "{log}"
    );
}

fn reviewed_policy() -> &'static str {
    "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update, delete, prepare]}
    action: allow
  - name: deletes-need-review
    match: {operations: [delete, execute]}
    action: review
    approvers: dba
"
}

fn pending_reviews(gateway: &GatewayProcess) -> Vec<Value> {
    let list: Value =
        serde_json::from_str(&gateway.cli_ok(&["review", "list", "--output", "json"], None))
            .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|review| review["status"] == "pending")
        .cloned()
        .collect()
}

fn approve_only_pending(gateway: &GatewayProcess, approver: &str, contains: &str) -> String {
    let pending = pending_reviews(gateway);
    assert_eq!(pending.len(), 1, "{pending:?}");
    let statement = pending[0]["statement"].as_str().unwrap();
    assert!(
        statement.contains(contains),
        "the reviewer sees {statement:?}"
    );
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let output = common::as_person(gateway, approver, &["review", "approve", &id]);
    assert!(output.status.success(), "{}", stderr(&output));
    id
}

#[test]
fn one_approval_runs_one_execution_with_the_values_the_approver_saw() {
    let (cluster, gateway) = setup_with_policy("", reviewed_policy());
    prepare_table(&cluster);
    let token = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba"]);
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    wire.send(&pipeline(&[
        parse("d1", "delete from t where id = $1"),
        sync(),
    ]));
    assert!(
        wire.until_ready().errors.is_empty(),
        "preparing runs nothing"
    );
    let run = |wire: &mut Wire, id: &str| {
        wire.send(&pipeline(&[bind("", "d1", &[id], 0), execute(""), sync()]));
        wire.until_ready()
    };
    let reply = run(&mut wire, "2");
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    approve_only_pending(&gateway, &alice, "$1 = '2'");
    assert!(run(&mut wire, "2").errors.is_empty());
    assert_eq!(rows_of(&cluster, "t"), "1,3,4,5,6,7");
    // Other values, or the same again: a new review each.
    for id in ["3", "4", "5", "2"] {
        let reply = run(&mut wire, id);
        assert_eq!(reply.codes(), ["42501"], "{id}: {reply:?}");
    }
    assert_eq!(rows_of(&cluster, "t"), "1,3,4,5,6,7");
    let log = cluster.log();
    assert_eq!(log.matches("execute d1: delete from t").count(), 1, "{log}");
}

#[test]
fn an_approval_binds_the_statement_an_execute_runs() {
    let (cluster, gateway) = setup_with_policy("", reviewed_policy());
    prepare_table(&cluster);
    let token = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba"]);
    let mut first = Wire::connect(&gateway, &token, &[]).unwrap();
    assert!(first.query("PREPARE p AS SELECT 1").errors.is_empty());
    assert_eq!(first.query("EXECUTE p").codes(), ["42501"]);
    approve_only_pending(&gateway, &alice, "EXECUTE p runs: SELECT 1");
    // Another session gives the name another body: the approval does not
    // cover it.
    let mut second = Wire::connect(&gateway, &token, &[]).unwrap();
    let reply = second.query("PREPARE p AS DELETE FROM t WHERE id > 0");
    assert!(reply.errors.is_empty(), "{reply:?}");
    let reply = second.query("EXECUTE p");
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    assert!(reply.errors[0].message.contains("review"), "{reply:?}");
    assert_eq!(rows_of(&cluster, "t"), "1,2,3,4,5,6,7");
    // The approved one still runs once.
    let reply = first.query("EXECUTE p");
    assert!(reply.errors.is_empty(), "{reply:?}");
    let pending = pending_reviews(&gateway);
    assert!(
        pending.iter().any(|review| review["statement"]
            .as_str()
            .unwrap()
            .contains("runs: DELETE FROM t")),
        "{pending:?}"
    );
}

#[test]
fn rows_are_masked_by_column_when_the_client_never_asked_for_their_layout() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    // Binary results without a Describe: the gateway learns the layout.
    wire.send(&pipeline(&[
        parse("", "select email, password_hash from t where id = 1"),
        bind("", "", &[], 1),
        execute(""),
        sync(),
    ]));
    let reply = wire.until_ready();
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_eq!(
        reply.descriptions, 0,
        "the gateway's own Describe is not forwarded"
    );
    assert_eq!(reply.rows.len(), 1);
    let text = reply.text();
    assert!(
        !text.contains("user1@example.com") && !text.contains("hash-1"),
        "{text}"
    );
    // A portal described once, then bound to another statement.
    wire.send(&pipeline(&[
        parse("safe", "select 'nothing here'::text as note"),
        parse("secret", "select password_hash from t where id = 2"),
        bind("p", "safe", &[], 0),
        describe_portal("p"),
        execute("p"),
        sync(),
    ]));
    assert!(wire.until_ready().errors.is_empty());
    assert!(wire.query("begin").errors.is_empty());
    wire.send(&pipeline(&[
        bind("p", "safe", &[], 1),
        describe_portal("p"),
        execute("p"),
        bind("p", "secret", &[], 1),
        execute("p"),
        sync(),
    ]));
    let reply = wire.until_ready();
    // PostgreSQL refuses to bind a second portal "p" in one transaction
    // (unnamed would replace it): either way no raw value arrives.
    assert!(!reply.text().contains("hash-2"), "{}", reply.text());
    assert!(wire.query("rollback").errors.is_empty());
    wire.send(&pipeline(&[
        bind("", "safe", &[], 1),
        describe_portal(""),
        execute(""),
        bind("", "secret", &[], 1),
        execute(""),
        sync(),
    ]));
    let reply = wire.until_ready();
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_eq!(reply.rows.len(), 2, "{reply:?}");
    assert!(!reply.text().contains("hash-2"), "{}", reply.text());
    // And the recording holds masked values only.
    let exported = gateway.cli_ok(&["audit", "export", "--format", "jsonl"], None);
    assert!(!exported.contains("hash-2") && !exported.contains("user1@example.com"));
}

#[test]
fn rows_fetched_from_a_cursor_are_masked_as_its_query() {
    // The mask rule names the table: a FETCH must count as reading it.
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: transactions
    match: {operations: [transaction]}
    action: allow
  - name: mask-t
    match: {tables: [t]}
    mask:
      detectors: [email]
      columns: ['*password*']
      style: full
";
    let (cluster, gateway) = setup_with_policy("", policy);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    assert!(wire.query("begin").errors.is_empty());
    let reply = wire.query("declare c cursor for select email, password_hash from t");
    assert!(reply.errors.is_empty(), "{reply:?}");
    let reply = wire.query("fetch all from c");
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert_eq!(reply.rows.len(), 7, "{reply:?}\n{}", gateway.log());
    let text = reply.text();
    assert!(
        !text.contains("@example.com") && !text.contains("hash-"),
        "{text}"
    );
    // A cursor the gateway did not see declared is not read.
    let reply = wire.query("fetch all from \"<unnamed portal 1>\"");
    assert_eq!(reply.codes(), ["42501"], "{reply:?}");
    assert!(wire.query("commit").errors.is_empty());
    // The record names what ran, masked.
    let exported = gateway.cli_ok(&["audit", "export", "--format", "jsonl"], None);
    assert!(exported.contains("fetch all from c"));
    assert!(!exported.contains("user1@example.com") && !exported.contains("hash-1"));
}

#[test]
fn executions_are_recorded_with_the_statement_and_values_that_ran() {
    let (cluster, gateway) = setup_with_policy("", BOUNDED);
    prepare_table(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    wire.send(&pipeline(&[
        parse("u", "update t set email = $1 where id = $2"),
        bind("", "u", &["new.address@example.org", "3"], 0),
        execute(""),
        sync(),
    ]));
    assert!(wire.until_ready().errors.is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cluster
        .log()
        .contains("execute u: update t set email = $1 where id = $2")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = cluster.log();
    assert!(
        log.contains("execute u: update t set email = $1 where id = $2"),
        "{log}"
    );
    let events = common::events(&gateway);
    let execute = events
        .iter()
        .find(|event| event.kind == "command" && event.data["message"] == "execute")
        .expect("an execute record");
    assert_eq!(
        execute.data["statement"],
        "update t set email = $1 where id = $2"
    );
    let values = execute.data["values"].as_array().expect("recorded values");
    assert_eq!(values.len(), 2);
    assert_eq!(values[1], "3");
    let email = values[0].as_str().unwrap();
    assert!(
        !email.contains("new.address"),
        "values are recorded masked: {email}"
    );
    let parse = events
        .iter()
        .find(|event| event.kind == "command" && event.data["message"] == "parse")
        .unwrap();
    assert_eq!(parse.data["policy"]["tables"], serde_json::json!(["t"]));
}
