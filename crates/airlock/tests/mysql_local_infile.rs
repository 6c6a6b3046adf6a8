//! End-to-end tests of `LOAD DATA LOCAL INFILE` through the real binary
//! with the real `mariadb` client (`--local-infile=1`) against a real
//! MariaDB: relayed when a policy rule allows `copy_from`, and then only
//! for the file the client's statement named; refused otherwise. Checked
//! on the server: its tables and general log.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;

use std::process::{Command, Output};

use airlock_testkit::GatewayProcess;
use mysql::{err, setup};

const ALLOW_COPY_FROM: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: loads
    match: {operations: [copy_from], tables: [items]}
    action: allow
";

const DEFAULT_POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update, delete]}
    action: allow
";

/// `mariadb --local-infile=1 -e sql` over TLS through the gateway.
fn load(gateway: &GatewayProcess, token: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &gateway.mysql_port.to_string()])
        .args(["-u", "agent-7"])
        .arg(format!("-p{token}"))
        .args(["-D", "shop-mysql", "--ssl", "--skip-ssl-verify-server-cert"])
        .arg("--local-infile=1")
        .args(["-e", sql])
        .output()
        .expect("run mariadb")
}

fn prepare(server: &airlock_testkit::MariaDb) -> tempfile::TempDir {
    server.sql_in("appdb", "create table items(id int primary key, name text)");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(
        scratch.path().join("rows.tsv"),
        "1\tinfile-one\n2\tinfile-two\n3\tinfile-three\n",
    )
    .unwrap();
    scratch
}

#[test]
fn an_allowed_load_data_local_infile_relays_the_named_file() {
    let (server, gateway) = setup("", ALLOW_COPY_FROM);
    let scratch = prepare(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let file = scratch.path().join("rows.tsv");
    let output = load(
        &gateway,
        &token,
        &format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE items",
            file.display()
        ),
    );
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(
        server.sql_in(
            "appdb",
            "select group_concat(id, ':', name order by id) from items"
        ),
        "1:infile-one,2:infile-two,3:infile-three"
    );
    // The record: the statement forwarded, its result counting the bytes.
    let events = common::events(&gateway);
    let command = events
        .iter()
        .find(|event| {
            event.kind == "command"
                && event.data["statement"]
                    .as_str()
                    .is_some_and(|text| text.starts_with("LOAD DATA"))
        })
        .expect("the LOAD DATA is recorded");
    assert_eq!(command.data["decision"], "forward", "{:?}", command.data);
    let size = std::fs::metadata(&file).unwrap().len();
    let tag = format!("LOCAL INFILE {size} bytes");
    assert!(
        events
            .iter()
            .any(|event| event.kind == "command.result" && event.data.to_string().contains(&tag)),
        "no {tag:?} in {events:#?}"
    );

    // A name the gateway cannot read as the server does (an escape: the
    // server asks for `rows.tsv`, the text says `rows\.tsv`): the server
    // gets an empty file, the client is never asked, nothing is loaded.
    server.sql_in("appdb", "delete from items");
    let escaped = format!("{}/rows\\.tsv", scratch.path().display());
    let output = load(
        &gateway,
        &token,
        &format!("LOAD DATA LOCAL INFILE '{escaped}' INTO TABLE items"),
    );
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(server.sql_in("appdb", "select count(*) from items"), "0");
    let events = common::events(&gateway);
    assert!(
        events.iter().any(|event| event.kind == "command.result"
            && event.data.to_string().contains("LOCAL INFILE refused")),
        "{events:#?}"
    );
}

#[test]
fn without_a_copy_from_rule_load_data_local_infile_never_reaches_the_server() {
    let (server, gateway) = setup("", DEFAULT_POLICY);
    let scratch = prepare(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let output = load(
        &gateway,
        &token,
        &format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE items /* infile-denied-marker */",
            scratch.path().join("rows.tsv").display()
        ),
    );
    assert!(!output.status.success());
    assert!(err(&output).contains("ERROR 1142"), "{}", err(&output));
    assert!(!server.general_log().contains("infile-denied-marker"));
    assert_eq!(server.sql_in("appdb", "select count(*) from items"), "0");
}
