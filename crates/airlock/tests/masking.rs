//! End-to-end tests of inline masking against a real PostgreSQL: rows in
//! text and binary format, errors, COPY, and the recording.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, setup_with_policy, stderr, stdout};
use futures_util::StreamExt;

const MASKING: &str = "version: 1
default: deny
rules:
  - name: everything
    match: {}
    action: allow
  - name: mask-pii
    match: {connection: {tags: {env: dev}}}
    mask:
      detectors: [email, card, secret]
      columns: ['*password*', 'ssn']
      style: partial
";

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const NOTE_EMAIL: &str = "bob.smith@corp.example";
const PASSWORD: &str = "hunter2-very-secret";

fn prepare(cluster: &airlock_testkit::PgCluster) {
    cluster.sql_in(
        "appdb",
        &format!(
            "create table customers(id int primary key, email text unique, card varchar(32), notes text, \
             amount numeric(10,2), created date, password_hash text, ssn int);
             insert into customers values
               (1, '{EMAIL}', '{CARD}', 'call {NOTE_EMAIL} after 5pm', 12.50, '2026-01-02', '{PASSWORD}', 123456789),
               (2, 'x@y.io', null, 'no pii here', 99.99, '2026-02-03', 'pw2', 987654321);
             grant all on customers to app"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_values_never_leave_unmasked() {
    let (cluster, gateway) = setup_with_policy("", MASKING);
    prepare(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    // Text format, through psql.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select * from customers order by id",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for raw in [EMAIL, CARD, NOTE_EMAIL, PASSWORD, "123456789"] {
        assert!(!text.contains(raw), "{raw} leaked in text format: {text}");
    }
    let rows: Vec<Vec<&str>> = text.lines().map(|line| line.split('|').collect()).collect();
    assert_eq!(rows.len(), 2, "masking changed the row count");
    assert!(
        rows.iter().all(|row| row.len() == 8),
        "masking changed the column count"
    );
    assert_eq!(rows[0][0], "1");
    assert_eq!(rows[0][4], "12.50", "numbers are untouched");
    assert_eq!(rows[0][5], "2026-01-02", "dates are untouched");
    assert!(
        rows[0][1].ends_with(".com") && rows[0][1].starts_with('j'),
        "{}",
        rows[0][1]
    );
    assert!(rows[0][2].ends_with("1111"), "{}", rows[0][2]);
    assert!(
        rows[0][3].starts_with("call ") && rows[0][3].ends_with(" after 5pm"),
        "{}",
        rows[0][3]
    );
    assert_eq!(
        rows[0][7], "",
        "a non-text column under a column rule becomes NULL"
    );

    // Binary format, through the driver (extended protocol).
    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    let rows = client
        .query(
            "select id, email, card, notes, password_hash, ssn from customers where id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row.get::<_, i32>(0), 1);
    let email: String = row.get(1);
    let card: String = row.get(2);
    let notes: String = row.get(3);
    let password: String = row.get(4);
    let ssn: Option<i32> = row.get(5);
    assert!(
        !email.contains("jane.doe") && email.ends_with(".com"),
        "{email}"
    );
    assert!(
        !card.contains("4111 1111 1111") && card.ends_with("1111"),
        "{card}"
    );
    assert!(!notes.contains(NOTE_EMAIL), "{notes}");
    assert_ne!(password, PASSWORD);
    assert_eq!(ssn, None);

    // A unique violation carrying an email in its detail.
    let error = client
        .execute("insert into customers(id, email) values (3, $1)", &[&EMAIL])
        .await
        .unwrap_err();
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "23505");
    let detail = db_error.detail().unwrap_or_default();
    assert!(detail.contains("already exists"), "{detail}");
    assert!(
        !detail.contains(EMAIL),
        "the error leaked the email: {detail}"
    );

    // COPY … TO STDOUT.
    let stream = client.copy_out("copy customers to stdout").await.unwrap();
    futures_util::pin_mut!(stream);
    let mut copied = Vec::new();
    while let Some(chunk) = stream.next().await {
        copied.extend_from_slice(&chunk.unwrap());
    }
    let copied = String::from_utf8(copied).unwrap();
    assert_eq!(copied.lines().count(), 2);
    for raw in [EMAIL, CARD, NOTE_EMAIL] {
        assert!(!copied.contains(raw), "{raw} leaked through COPY: {copied}");
    }
    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The recording holds only masked values, and counts what was masked.
    let bytes = std::fs::read(gateway.data_dir().join("airlock.db")).unwrap();
    let wal = std::fs::read(gateway.data_dir().join("airlock.db-wal")).unwrap_or_default();
    // … and so does the write-ahead journal the recorder appends to first.
    let mut journals = Vec::new();
    for entry in std::fs::read_dir(gateway.data_dir().join("journal")).unwrap() {
        journals.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!journals.is_empty(), "the journal holds the recent events");
    for raw in [EMAIL, CARD, NOTE_EMAIL, PASSWORD] {
        for store in [&bytes, &wal, &journals] {
            assert!(
                !store
                    .windows(raw.len())
                    .any(|window| window == raw.as_bytes()),
                "{raw} is in the store"
            );
        }
    }
    let events = common::events(&gateway);
    let select = events
        .iter()
        .find(|event| {
            event.kind == "command.result"
                && event.data["columns"]
                    .as_array()
                    .is_some_and(|c| c.len() == 8)
        })
        .expect("the psql select's result");
    assert_eq!(select.data["masked"]["email"], 3, "{}", select.data);
    assert_eq!(select.data["masked"]["card"], 1, "{}", select.data);
    assert_eq!(select.data["masked"]["column"], 4, "{}", select.data);
    let insert = events
        .iter()
        .find(|event| {
            event.kind == "command"
                && event.data["statement"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("insert into customers"))
        })
        .unwrap();
    assert_eq!(insert.data["parameters"], 0);
}

#[test]
fn explain_shows_the_mask_plan() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, MASKING).unwrap();
    let config = dir.path().join("airlock.yaml");
    std::fs::write(
        &config,
        "connections:\n  - name: pg-test\n    protocol: postgres\n    address: 127.0.0.1:5432\n    database: appdb\n    credential: app\n    tags: {env: dev}\n",
    )
    .unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["policy", "explain", "--config"])
        .arg(&config)
        .arg("--policy")
        .arg(&policy)
        .args([
            "--identity",
            "agent-7",
            "--connection",
            "pg-test",
            "--sql",
            "select * from customers",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("decision: allow"), "{text}");
    assert!(
        text.contains(
            "mask: detectors [card, email, secret] columns [*password*, ssn] style Partial"
        ),
        "{text}"
    );
}
