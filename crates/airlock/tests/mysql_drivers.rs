//! A real Rust driver through the MySQL gateway: `mysql_async` (rustls)
//! logs in with its default `caching_sha2_password` over TLS, runs text
//! queries and prepared statements (binary protocol), and never sees a
//! masked value raw; a statement the policy denies never reaches MariaDB.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;

use mysql::setup;
use mysql_async::prelude::*;

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
    match: {operations: [drop]}
    action: deny
    message: DDL is not allowed through the gateway
  - name: mask-pii
    match: {}
    mask:
      detectors: [email]
      columns: ['ssn']
      style: partial
";

fn options(port: u16, token: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("agent-7"))
        .pass(Some(token))
        .db_name(Some("shop-mysql"))
        // The gateway's development certificate is self-signed.
        .ssl_opts(Some(
            mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true),
        ))
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_text_and_binary_protocol_through_the_gateway() {
    let (server, gateway) = setup("", POLICY);
    server.sql_in(
        "appdb",
        "create table people(id int primary key, email varchar(64), ssn bigint, note text);
         insert into people values (1, 'jane.doe@example.com', 123456789, 'n1'), (2, 'x', 2, 'n2');",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut conn = mysql_async::Conn::new(options(gateway.mysql_port, &token))
        .await
        .unwrap();

    // Text protocol.
    let rows: Vec<(i32, Option<String>, Option<i64>)> = conn
        .query("select id, email, ssn from people order by id")
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1);
    assert!(
        !rows[0].1.as_deref().unwrap().contains("jane.doe"),
        "{rows:?}"
    );
    assert_eq!(rows[0].2, None, "ssn under a column rule");

    // Binary protocol: a prepared statement executed twice.
    let statement = conn
        .prep("select id, email, ssn from people where id = ?")
        .await
        .unwrap();
    for id in [1, 2] {
        let row: Option<(i32, Option<String>, Option<i64>)> =
            conn.exec_first(&statement, (id,)).await.unwrap();
        let (got, email, ssn) = row.unwrap();
        assert_eq!(got, id);
        assert!(!email.unwrap().contains("jane.doe"));
        assert_eq!(ssn, None);
    }
    conn.exec_drop(
        "insert into people values (?, ?, ?, ?)",
        (3, "y", 3, "driver-insert-marker"),
    )
    .await
    .unwrap();
    assert!(server.general_log().contains("driver-insert-marker"));

    // A denied statement: the driver gets the error, the server nothing.
    let error = conn
        .query_drop("drop table people /* driver-drop-marker */")
        .await
        .unwrap_err();
    match error {
        mysql_async::Error::Server(server_error) => {
            assert_eq!(server_error.code, 1142, "{server_error:?}");
            assert!(server_error.message.contains("no-ddl"), "{server_error:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!server.general_log().contains("driver-drop-marker"));
    // The session goes on after a refusal.
    let count: Option<i64> = conn
        .query_first("select count(*) from people")
        .await
        .unwrap();
    assert_eq!(count, Some(3));
    conn.disconnect().await.unwrap();
}
