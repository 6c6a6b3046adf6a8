//! End-to-end tests of MariaDB's `COM_STMT_BULK_EXECUTE` through the real
//! binary: MariaDB Connector/Python (PyPI `mariadb`, built against
//! Debian's libmariadb) sends one bulk packet for `executemany`, the
//! gateway decides it as an execution of the prepared statement, records
//! it with its row count and relays it. Enforcement is checked on the
//! server: its tables and general log.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;

use mysql::{bulk_insert, setup};
use serde_json::json;

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: session-settings
    match: {operations: [set], access: write}
    action: allow
  - name: item-writes
    match: {operations: [insert], tables: [items]}
    action: allow
  - name: no-audit-writes
    match: {tables: [audit_trail]}
    action: deny
    message: the audit trail is append-only through the application
";

fn prepare_tables(server: &airlock_testkit::MariaDb) {
    server.sql_in(
        "appdb",
        "create table items(id int primary key, name text, price int default 7);
         create table audit_trail(id int primary key, note text);",
    );
}

#[test]
fn executemany_sends_one_bulk_execute_that_is_decided_recorded_and_relayed() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let rows = json!([
        [1, "bulk-one", 10],
        [2, "bulk-two", null],
        [3, "bulk-three", 30]
    ]);
    let answer = bulk_insert(
        &gateway,
        &token,
        "insert into items (id, name, price) values (?, ?, ?)",
        &rows,
    );
    // The gateway announced bulk operations (its upstream offers them).
    assert_eq!(answer["bulk"], true, "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(answer["rowcount"], 3, "{answer}");
    assert_eq!(
        server.sql_in(
            "appdb",
            "select group_concat(id, ':', name, ':', coalesce(price, 'null') order by id) from items"
        ),
        "1:bulk-one:10,2:bulk-two:null,3:bulk-three:30"
    );

    // The record: one bulk execution with its row count and first row,
    // forwarded; no per-row executions.
    let events = common::events(&gateway);
    let bulk: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "command" && event.data["message"] == "bulk_execute")
        .collect();
    assert_eq!(bulk.len(), 1, "{events:#?}");
    let data = &bulk[0].data;
    assert_eq!(data["decision"], "forward", "{data}");
    assert!(
        data["statement"]
            .as_str()
            .unwrap()
            .starts_with("insert into items"),
        "{data}"
    );
    assert_eq!(data["policy"]["bulk_rows"], 3, "{data}");
    assert_eq!(data["values"], json!(["1", "bulk-one", "10"]), "{data}");
    assert!(
        !events
            .iter()
            .any(|event| event.kind == "command" && event.data["message"] == "execute"),
        "executemany fell back to one execution per row"
    );
}

#[test]
fn a_denied_bulk_insert_never_reaches_the_server() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let rows = json!([[1, "bulk-denied-marker-1"], [2, "bulk-denied-marker-2"]]);
    let answer = bulk_insert(
        &gateway,
        &token,
        "insert into audit_trail (id, note) values (?, ?)",
        &rows,
    );
    assert_eq!(answer["bulk"], true, "{answer}");
    assert_eq!(answer["error"], 1142, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("no-audit-writes"),
        "{answer}"
    );
    // The table is unchanged and the values never reached the server.
    assert_eq!(
        server.sql_in("appdb", "select count(*) from audit_trail"),
        "0"
    );
    assert!(!server.general_log().contains("bulk-denied-marker"));
    // The connector pipelines the prepare and the bulk execution of the
    // statement prepared last: the prepare is refused by the rule, and the
    // bulk execution, of a statement that was never prepared, too.
    let events = common::events(&gateway);
    let recorded = |message: &str| {
        events
            .iter()
            .find(|event| event.kind == "command" && event.data["message"] == message)
            .unwrap_or_else(|| panic!("no {message} recorded: {events:#?}"))
            .data
            .clone()
    };
    let prepare = recorded("prepare");
    assert_eq!(prepare["decision"], "refuse", "{prepare}");
    assert_eq!(prepare["policy"]["rule"], "no-audit-writes", "{prepare}");
    let bulk = recorded("bulk_execute");
    assert_eq!(bulk["decision"], "refuse", "{bulk}");
}
