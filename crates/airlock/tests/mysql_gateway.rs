//! End-to-end tests of the MySQL/MariaDB gateway: a real MariaDB, the real
//! airlock binary, the real `mariadb` client (and a raw protocol client for
//! what drivers never send). Enforcement is checked on the upstream: its
//! general query log and its tables.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;

use airlock_mysql::command::{Command, StmtExecute};
use airlock_mysql::response::ResponsePacket;
use airlock_mysql::row::{decode_binary_row, decode_text_row, BinaryValue, ValueType};
use mysql::{err, error_of, mariadb, out, setup, Raw};

/// Reads and writes allowed, DDL refused with a message, PII masked.
const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update, delete]}
    action: allow
  - name: no-ddl
    match: {operations: [drop, truncate, alter]}
    action: deny
    message: DDL is not allowed through the gateway
  - name: mask-pii
    match: {}
    mask:
      detectors: [email, card]
      columns: ['ssn']
      style: partial
";

const LONG: ValueType = ValueType {
    column_type: airlock_mysql::column::ColumnType::LONG,
    unsigned: false,
};

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111111111111111";

fn prepare_tables(server: &airlock_testkit::MariaDb) {
    server.sql_in(
        "appdb",
        &format!(
            "create table customers(id int primary key, email varchar(64), ssn int, card bigint, note text);
             insert into customers values (1, '{EMAIL}', 123456789, {CARD}, 'mail {EMAIL} today'),
                                          (2, 'nobody', 5, 7, 'plain');
             create table items(id int primary key, name text);"
        ),
    );
}

#[test]
fn mariadb_client_logs_in_with_a_token_and_policy_is_enforced_on_the_upstream() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");

    // Login over TLS with the token, a read.
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "select id from customers order by id; select @@ssl_cipher is null",
    );
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(
        out(&output),
        "1\n2\n1",
        "the upstream leg is plain here; the rows came through"
    );
    let status = mariadb(&gateway, "agent-7", &token, "shop-mysql", true, "status");
    assert!(
        out(&status).contains("Cipher in use"),
        "the client's leg is TLS: {}",
        out(&status)
    );

    // An allowed write reaches the server.
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "insert into items values (1, 'allowed-write-marker')",
    );
    assert!(output.status.success(), "{}", err(&output));
    assert!(server.general_log().contains("allowed-write-marker"));
    assert_eq!(
        server.sql_in("appdb", "select name from items"),
        "allowed-write-marker"
    );

    // A denied statement: the rule's message, 1142, never on the server.
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "drop table items /* denied-drop-marker */",
    );
    assert!(!output.status.success());
    let message = err(&output);
    assert!(message.contains("ERROR 1142 (42000)"), "{message}");
    assert!(
        message.contains("no-ddl") && message.contains("DDL is not allowed"),
        "{message}"
    );
    assert!(!server.general_log().contains("denied-drop-marker"));
    // An executable comment runs on the server: it is classified, not skipped.
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "select 1 /*!32302 ; drop table items */",
    );
    assert!(!output.status.success(), "{}", out(&output));
    assert!(!server.general_log().contains("32302"));
    // A text the classifier cannot read is refused (fail closed).
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "frobnicate the items unclassifiable-marker",
    );
    assert!(!output.status.success());
    assert!(err(&output).contains("ERROR 1142"), "{}", err(&output));
    assert!(!server.general_log().contains("unclassifiable-marker"));
    assert_eq!(
        server.sql_in("appdb", "select count(*) from items"),
        "1",
        "the table is still there"
    );

    // COM_INIT_DB is decided as the USE it is (policy allows `use`? no:
    // default deny), and a client without a database is told to name one.
    let output = mariadb(&gateway, "agent-7", &token, "", true, "select 1");
    assert!(!output.status.success());
    assert!(err(&output).contains("ERROR 1046"), "{}", err(&output));
    assert!(err(&output).contains("connection"), "{}", err(&output));

    // Secrets stay inside: neither the token nor the upstream password is in
    // the gateway's log.
    let log = gateway.log();
    assert!(!log.contains(&token), "the token leaked into the log");
    assert!(
        !log.contains(&server.password("app")),
        "the upstream password leaked into the log"
    );
}

#[test]
fn token_failures_are_one_generic_error_and_lock_out() {
    let (_server, gateway) = setup(
        "auth:\n  lockout_threshold: 3\n  lockout_duration: 5m\n",
        POLICY,
    );
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let wrong = mariadb(
        &gateway,
        "agent-7",
        "not-the-token",
        "shop-mysql",
        true,
        "select 1",
    );
    assert!(!wrong.status.success());
    let wrong_message = err(&wrong);
    assert!(
        wrong_message.contains("ERROR 1045 (28000)"),
        "{wrong_message}"
    );
    let unknown = mariadb(&gateway, "nobody", &token, "shop-mysql", true, "select 1");
    let unknown_message = err(&unknown);
    assert!(
        unknown_message.contains("ERROR 1045 (28000)"),
        "{unknown_message}"
    );
    // The same words whoever asks: no hint whether the identity exists.
    assert_eq!(
        wrong_message.replace("agent-7", "X"),
        unknown_message.replace("nobody", "X")
    );
    assert!(!wrong_message.contains("not-the-token"));
    mariadb(
        &gateway,
        "agent-7",
        "wrong-2",
        "shop-mysql",
        true,
        "select 1",
    );
    mariadb(
        &gateway,
        "agent-7",
        "wrong-3",
        "shop-mysql",
        true,
        "select 1",
    );
    // Locked out: even the right token is refused now.
    let locked = mariadb(&gateway, "agent-7", &token, "shop-mysql", true, "select 1");
    assert!(!locked.status.success());
    assert!(
        err(&locked).contains("too many failed authentication attempts"),
        "{}",
        err(&locked)
    );
    assert!(err(&locked).contains("ERROR 1045"), "{}", err(&locked));
}

#[test]
fn plaintext_is_allowed_from_loopback_only_as_configured() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    // Loopback, no TLS: the default policy allows it (mysql_clear_password).
    let plain = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        false,
        "select count(*) from customers",
    );
    assert!(plain.status.success(), "{}", err(&plain));
    assert_eq!(out(&plain), "2");
    drop(gateway);

    let (_server2, gateway) = setup("mysql:\n  allow_plaintext: never\n", POLICY);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let plain = mariadb(&gateway, "agent-7", &token, "shop-mysql", false, "select 1");
    assert!(!plain.status.success());
    assert!(err(&plain).contains("TLS is required"), "{}", err(&plain));
    let tls = mariadb(&gateway, "agent-7", &token, "shop-mysql", true, "select 1");
    assert!(tls.status.success(), "{}", err(&tls));
}

fn text_rows(packets: &[(ResponsePacket, Vec<u8>)]) -> Vec<Vec<Option<String>>> {
    packets
        .iter()
        .filter_map(|(packet, payload)| match packet {
            ResponsePacket::TextRow { column_count } => Some(
                decode_text_row(payload, *column_count)
                    .unwrap()
                    .into_iter()
                    .map(|cell| cell.map(|cell| String::from_utf8_lossy(cell).into_owned()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn pii_is_masked_in_text_and_binary_results_and_in_the_record() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");

    // Text protocol, through the mariadb client.
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "select id, email, ssn, card, note from customers order by id",
    );
    assert!(output.status.success(), "{}", err(&output));
    let text = out(&output);
    for raw in [EMAIL, CARD, "123456789"] {
        assert!(!text.contains(raw), "{raw} leaked: {text}");
    }
    let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[0], "1");
    assert_eq!(
        first[2], "NULL",
        "a number under a column rule becomes NULL"
    );
    assert_eq!(first[3], "0", "a number a detector matches becomes 0");
    assert!(
        first[4].starts_with("mail ") && first[4].ends_with(" today"),
        "{}",
        first[4]
    );

    // Binary protocol: a prepared statement with a parameter.
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    let prepared = raw.run(&Command::StmtPrepare {
        query: b"select id, email, ssn, card from customers where id = ?".to_vec(),
    });
    let (statement_id, ok) = prepared
        .iter()
        .find_map(|(packet, _)| match packet {
            ResponsePacket::PrepareOk(ok) => Some((ok.statement_id, *ok)),
            _ => None,
        })
        .expect("prepared");
    assert_eq!(ok.parameter_count, 1);
    let execute =
        StmtExecute::with_parameters(statement_id, 0, &[LONG], &[BinaryValue::Int(1)]).unwrap();
    let packets = raw.run(&Command::StmtExecute(execute));
    let columns: Vec<ValueType> = packets
        .iter()
        .filter_map(|(packet, _)| match packet {
            ResponsePacket::Column(column) => Some(ValueType::from(column.as_ref())),
            _ => None,
        })
        .collect();
    let rows: Vec<Vec<BinaryValue>> = packets
        .iter()
        .filter_map(|(packet, payload)| match packet {
            ResponsePacket::BinaryRow { .. } => Some(decode_binary_row(payload, &columns).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], BinaryValue::Int(1));
    match &rows[0][1] {
        BinaryValue::Bytes(email) => assert!(
            !String::from_utf8_lossy(email).contains("jane.doe"),
            "{email:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(rows[0][2], BinaryValue::Null);
    assert_eq!(rows[0][3], BinaryValue::Int(0));
    assert!(
        server.general_log().contains("where id = 1")
            || server.general_log().contains("where id = ?")
    );

    // The record: statements and sample rows, masked; never the raw values.
    let export = gateway.cli_ok(&["audit", "export", "--format", "jsonl"], None);
    for raw_value in [EMAIL, CARD, "123456789"] {
        assert!(!export.contains(raw_value), "{raw_value} in the audit log");
    }
    let events: Vec<serde_json::Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Results folded into their command's row, or events of their own.
    let results: Vec<&serde_json::Value> = events
        .iter()
        .filter_map(|event| match event["kind"].as_str() {
            Some("command.result") => Some(&event["data"]),
            Some("command") => event["data"].get("result"),
            _ => None,
        })
        .collect();
    assert!(
        results.iter().any(|result| result["sample"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty())
            && result["masked"]["column"].as_u64().unwrap_or(0) > 0),
        "{results:?}"
    );
    let commands: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["kind"] == "command")
        .collect();
    assert!(
        commands
            .iter()
            .any(|event| event["data"]["message"] == "execute"),
        "{commands:?}"
    );
    let session = events
        .iter()
        .find(|event| event["kind"] == "session.start")
        .unwrap();
    assert_eq!(session["data"]["protocol"], "mysql");
    let shown = gateway.cli_ok(
        &["session", "show", session["session_id"].as_str().unwrap()],
        None,
    );
    assert!(shown.contains("select id, email"), "{shown}");
}

#[test]
fn prepared_statements_are_decided_at_prepare_and_unknown_ids_are_refused() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();

    // A DROP is refused at prepare: the server never sees it.
    let refused = raw.run(&Command::StmtPrepare {
        query: b"drop table items /* prepared-drop-marker */".to_vec(),
    });
    let error = error_of(&refused).expect("refused");
    assert_eq!(error.code, 1142, "{error:?}");
    assert!(!server.general_log().contains("prepared-drop-marker"));
    // MariaDB's "the statement prepared just before" cannot reach an older
    // statement after a refused prepare.
    let execute = StmtExecute::with_parameters(u32::MAX, 0, &[], &[]).unwrap();
    let refused = raw.run(&Command::StmtExecute(execute));
    assert_eq!(error_of(&refused).expect("refused").code, 1243);

    // An id never prepared through the gateway is refused, whatever the
    // server holds.
    for id in [1, 2, 77] {
        let execute = StmtExecute::with_parameters(id, 0, &[], &[]).unwrap();
        let refused = raw.run(&Command::StmtExecute(execute));
        assert_eq!(error_of(&refused).expect("refused").code, 1243, "id {id}");
    }

    // An allowed insert, prepared once and executed twice: both rows land.
    let prepared = raw.run(&Command::StmtPrepare {
        query: b"insert into items values (?, 'prepared-insert')".to_vec(),
    });
    let statement_id = prepared
        .iter()
        .find_map(|(packet, _)| match packet {
            ResponsePacket::PrepareOk(ok) => Some(ok.statement_id),
            _ => None,
        })
        .expect("prepared");
    for id in [10, 11] {
        let execute =
            StmtExecute::with_parameters(statement_id, 0, &[LONG], &[BinaryValue::Int(id)])
                .unwrap();
        let packets = raw.run(&Command::StmtExecute(execute));
        assert!(error_of(&packets).is_none(), "{packets:?}");
    }
    assert_eq!(
        server.sql_in(
            "appdb",
            "select count(*) from items where name = 'prepared-insert'"
        ),
        "2"
    );

    // COM_CHANGE_USER would change who is logged in upstream: refused, and
    // the session goes on.
    raw.write_raw_command(&[0x11, b'r', b'o', b'o', b't', 0, 0, 0]);
    let answer = raw.read();
    let error = airlock_mysql::ErrPacket::decode(&answer).unwrap();
    assert_eq!(error.code, 1235, "{error:?}");
    let rows = text_rows(&raw.query("select count(*) from items"));
    assert_eq!(rows, vec![vec![Some("2".to_string())]]);
}

/// Deletes held for review (no wait): the client reads the review id.
const HOLD_DELETES: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: inserts
    match: {operations: [insert]}
    action: allow
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
";

#[test]
fn reviews_hold_statements_and_executions_until_approved() {
    let (server, gateway) = setup("", HOLD_DELETES);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let output = mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "delete from customers where id = 2 /* held-delete-marker */",
    );
    assert!(!output.status.success());
    let message = err(&output);
    assert!(message.contains("ERROR 1142 (42000)"), "{message}");
    assert!(message.contains("airlock review approve r-"), "{message}");
    assert!(!server.general_log().contains("held-delete-marker"));

    // A prepared delete: preparing runs nothing; each execution is
    // reviewed with its values.
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    let prepared = raw.run(&Command::StmtPrepare {
        query: b"delete from customers where id = ?".to_vec(),
    });
    let statement_id = prepared
        .iter()
        .find_map(|(packet, _)| match packet {
            ResponsePacket::PrepareOk(ok) => Some(ok.statement_id),
            _ => None,
        })
        .expect("prepared");
    let execute =
        StmtExecute::with_parameters(statement_id, 0, &[LONG], &[BinaryValue::Int(2)]).unwrap();
    let held = raw.run(&Command::StmtExecute(execute));
    let error = error_of(&held).expect("held");
    assert_eq!(error.code, 1142);
    assert!(
        error.message.contains("airlock review approve r-"),
        "{error:?}"
    );
    assert_eq!(
        server.sql_in("appdb", "select count(*) from customers"),
        "2"
    );
    let reviews = gateway.cli_ok(&["review", "list", "--output", "json"], None);
    assert!(
        reviews.contains("-- with ?1 = '2'"),
        "the reviewer sees the bound value: {reviews}"
    );
}

#[test]
fn pipelined_and_oversized_packets_cannot_slip_past_the_gate() {
    let (server, gateway) = setup("mysql:\n  max_packet_bytes: 65536\n", POLICY);
    prepare_tables(&server);
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    // Three commands in one write: each is decided on its own, in order.
    let mut burst = Vec::new();
    for sql in [
        "drop table items /* pipelined-drop-marker */",
        "insert into items values (5, 'pipelined-insert')",
        "truncate table customers /* pipelined-truncate-marker */",
    ] {
        let payload = Command::Query {
            query: sql.as_bytes().to_vec(),
        }
        .encode(raw.capabilities)
        .unwrap();
        let mut framed = vec![0u8; 4];
        framed[..3].copy_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        framed.extend_from_slice(&payload);
        burst.extend_from_slice(&framed);
    }
    raw.send_bytes(&burst);
    let first = airlock_mysql::ErrPacket::decode(&raw.read_next_answer()).unwrap();
    assert_eq!(first.code, 1142);
    let second = raw.read_next_answer();
    assert_eq!(second.first(), Some(&0x00), "the insert's OK");
    let third = airlock_mysql::ErrPacket::decode(&raw.read_next_answer()).unwrap();
    assert_eq!(third.code, 1142);
    let log = server.general_log();
    assert!(!log.contains("pipelined-drop-marker") && !log.contains("pipelined-truncate-marker"));
    assert!(log.contains("pipelined-insert"));
    assert_eq!(
        server.sql_in("appdb", "select count(*) from customers"),
        "2"
    );

    // A packet over the bound ends the session before it is buffered.
    raw.send_bytes(&[0xff, 0xff, 0xff, 0x00, 0x03]);
    let error = airlock_mysql::ErrPacket::decode(&raw.read_next_answer()).unwrap();
    assert_eq!(error.code, 1153, "{error:?}");
}

#[test]
fn revoking_the_token_ends_the_live_session() {
    let (server, gateway) = setup("", POLICY);
    prepare_tables(&server);
    let (id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    assert_eq!(
        text_rows(&raw.query("select 1")),
        vec![vec![Some("1".to_string())]]
    );
    gateway.cli_ok(&["token", "revoke", &id], None);
    let error = airlock_mysql::ErrPacket::decode(&raw.read_next_answer()).unwrap();
    assert_eq!(error.code, 1927, "{error:?}");
    assert!(
        error.message.contains("terminating connection"),
        "{error:?}"
    );
    // And new logins with it fail like any bad token.
    let again = mariadb(&gateway, "agent-7", &token, "shop-mysql", true, "select 1");
    assert!(err(&again).contains("ERROR 1045"), "{}", err(&again));
}

/// What drivers do beyond plain executes, through the gateway against the
/// real server: a read-only cursor fetched row by row (rows masked as the
/// query's), a parameter sent in pieces by `COM_STMT_SEND_LONG_DATA`, a
/// 17 MiB statement and a 17 MiB row (multi-packet payloads both ways,
/// re-framed after masking), and `LOAD DATA LOCAL INFILE` refused before
/// the server (and so before it could ask the agent's machine for a file).
#[test]
fn cursors_long_data_large_payloads_and_local_infile() {
    let server = airlock_testkit::MariaDb::start_with_args(&["--max-allowed-packet=64M"]);
    let gateway = airlock_testkit::GatewayProcess::start_with_policy(
        common::binary(),
        &mysql::config(&server, "mysql:\n  max_packet_bytes: 67108864\n"),
        POLICY,
    );
    gateway.set_credential("shop-mysql-app", "app", &server.password("app"));
    prepare_tables(&server);
    server.sql_in(
        "appdb",
        "create table big(id int primary key, body longtext); insert into customers values (3, 'x3@example.org', 3, 3, 'n')",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    let prepare = |raw: &mut Raw, sql: &str| {
        let packets = raw.run(&Command::StmtPrepare {
            query: sql.as_bytes().to_vec(),
        });
        packets
            .iter()
            .find_map(|(packet, _)| match packet {
                ResponsePacket::PrepareOk(ok) => Some(ok.statement_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{sql}: {packets:?}"))
    };

    // A cursor: metadata at execute, rows by COM_STMT_FETCH, masked.
    let select = prepare(
        &mut raw,
        "select id, email from customers where id >= ? order by id",
    );
    let execute = StmtExecute::with_parameters(
        select,
        airlock_mysql::command::cursor::READ_ONLY,
        &[LONG],
        &[BinaryValue::Int(1)],
    )
    .unwrap();
    let packets = raw.run(&Command::StmtExecute(execute));
    assert!(error_of(&packets).is_none(), "{packets:?}");
    let types: Vec<ValueType> = packets
        .iter()
        .filter_map(|(packet, _)| match packet {
            ResponsePacket::Column(column) => Some(ValueType::from(&**column)),
            _ => None,
        })
        .collect();
    assert_eq!(types.len(), 2);
    assert!(!packets
        .iter()
        .any(|(packet, _)| matches!(packet, ResponsePacket::BinaryRow { .. })));
    let mut fetched = Vec::new();
    for _ in 0..5 {
        let packets = raw.run(&Command::StmtFetch {
            statement_id: select,
            rows: 2,
        });
        for (packet, payload) in &packets {
            if let ResponsePacket::BinaryRow { .. } = packet {
                fetched.push(decode_binary_row(payload, &types).unwrap());
            }
        }
        let Some((ResponsePacket::ResultSetEnd(end), _)) = packets.last() else {
            panic!("{packets:?}")
        };
        if end
            .status
            .contains(airlock_mysql::ServerStatus::LAST_ROW_SENT)
        {
            break;
        }
    }
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    for row in &fetched {
        let BinaryValue::Bytes(email) = &row[1] else {
            panic!("{row:?}")
        };
        let email = String::from_utf8_lossy(email);
        assert!(
            email != EMAIL && !email.contains("x3@example.org"),
            "a fetched row is not masked: {email}"
        );
    }
    assert!(server.general_log().contains("where id >= ?"));

    // Long data in two pieces for parameter 1, then the execute that
    // leaves it out of the block.
    let insert = prepare(&mut raw, "insert into items values (?, ?)");
    for piece in [&b"long-data-"[..], b"marker"] {
        let long = Command::StmtSendLongData {
            statement_id: insert,
            parameter: 1,
            data: piece.to_vec(),
        };
        raw.write_raw_command(&long.encode(raw.capabilities).unwrap());
    }
    let mut block = vec![0x00, 0x01, LONG.column_type.0, 0, 0xfc, 0];
    block.extend_from_slice(&30i32.to_le_bytes());
    let execute = StmtExecute {
        statement_id: insert,
        flags: 0,
        iteration_count: 1,
        parameter_block: block,
    };
    let packets = raw.run(&Command::StmtExecute(execute));
    assert!(error_of(&packets).is_none(), "{packets:?}");
    assert_eq!(
        server.sql_in("appdb", "select name from items where id = 30"),
        "long-data-marker"
    );

    // 17 MiB each way: a statement over the 16 MiB packet limit of the
    // wire (three packets), and the row back as text and binary, masked.
    let size = 17 * 1024 * 1024;
    let mut body = "y".repeat(size);
    body.push_str(" mail jane.doe@example.com end");
    let packets = raw.query(&format!("insert into big values (1, '{body}')"));
    assert!(error_of(&packets).is_none(), "{packets:?}");
    assert_eq!(
        server.sql_in("appdb", "select length(body) from big where id = 1"),
        body.len().to_string()
    );
    let packets = raw.query("select body from big where id = 1");
    let row = packets
        .iter()
        .find_map(|(packet, payload)| match packet {
            ResponsePacket::TextRow { .. } => {
                Some(decode_text_row(payload, 1).unwrap()[0].unwrap().to_vec())
            }
            _ => None,
        })
        .expect("the big row");
    assert!(row.len() > size, "{}", row.len());
    assert!(row.starts_with(b"yyyy") && row.ends_with(b" end"));
    assert!(!String::from_utf8_lossy(&row).contains(EMAIL), "not masked");
    let read = prepare(&mut raw, "select body from big where id = ?");
    let execute = StmtExecute::with_parameters(read, 0, &[LONG], &[BinaryValue::Int(1)]).unwrap();
    let packets = raw.run(&Command::StmtExecute(execute));
    let text = ValueType {
        column_type: airlock_mysql::column::ColumnType::BLOB,
        unsigned: false,
    };
    let row = packets
        .iter()
        .find_map(|(packet, payload)| match packet {
            ResponsePacket::BinaryRow { .. } => Some(decode_binary_row(payload, &[text]).unwrap()),
            _ => None,
        })
        .expect("the big binary row");
    let BinaryValue::Bytes(value) = &row[0] else {
        panic!()
    };
    assert!(value.len() > size && value.ends_with(b" end"));
    assert!(
        !String::from_utf8_lossy(value).contains(EMAIL),
        "not masked"
    );
    drop(raw);

    // LOAD DATA LOCAL INFILE: refused by the policy (no copy_from rule);
    // the server never sees it, so it can never ask for the file.
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("rows.tsv");
    std::fs::write(&file, "50\tlocal-infile-marker\n").unwrap();
    let output = std::process::Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &gateway.mysql_port.to_string()])
        .args(["-u", "agent-7"])
        .arg(format!("-p{token}"))
        .args(["-D", "shop-mysql", "--ssl", "--skip-ssl-verify-server-cert"])
        .arg("--local-infile=1")
        .arg("-e")
        .arg(format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE items",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(err(&output).contains("ERROR 1142"), "{}", err(&output));
    assert!(!server.general_log().contains("LOAD DATA"));
    assert_eq!(
        server.sql_in("appdb", "select count(*) from items where id = 50"),
        "0"
    );
}
