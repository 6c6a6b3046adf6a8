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
    // (With a header: the column rules need the column names.)
    let stream = client
        .copy_out("copy customers to stdout with (format text, header)")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut copied = Vec::new();
    while let Some(chunk) = stream.next().await {
        copied.extend_from_slice(&chunk.unwrap());
    }
    let copied = String::from_utf8(copied).unwrap();
    assert_eq!(copied.lines().count(), 3);
    for raw in [EMAIL, CARD, NOTE_EMAIL, PASSWORD] {
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
        .filter_map(|event| event.command_result())
        .find(|result| result["columns"].as_array().is_some_and(|c| c.len() == 8))
        .expect("the psql select's result");
    assert_eq!(select["masked"]["email"], 3, "{select}");
    assert_eq!(select["masked"]["card"], 1, "{select}");
    assert_eq!(select["masked"]["column"], 4, "{select}");
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
            "mask: detectors card, email, secret; columns *password*, ssn; style partial"
        ),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Masking leaks found by attacking the gateway: every value that leaves it
// under a mask obligation is masked by a codec that understands its format,
// or replaced by a documented placeholder (NULL, 0), never passed raw.

/// The raw forms a sensitive value may take in client output: as text, as
/// digits, and hex-encoded (bytea output, binary samples in the recording).
fn raw_forms() -> Vec<String> {
    let hex = |text: &str| {
        text.bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    vec![
        EMAIL.to_string(),
        "jane.doe".to_string(),
        CARD.to_string(),
        "4111111111111111".to_string(),
        NOTE_EMAIL.to_string(),
        hex("jane.doe"),
        hex("4111 1111"),
        hex("4111111111111111"),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for raw in raw_forms() {
        assert!(!text.contains(&raw), "{raw} leaked through {what}: {text}");
    }
}

fn assert_bytes_clean(what: &str, bytes: &[u8]) {
    for raw in [
        EMAIL.as_bytes(),
        b"jane.doe",
        CARD.as_bytes(),
        b"4111111111111111",
    ] {
        assert!(
            !bytes.windows(raw.len()).any(|window| window == raw),
            "{} leaked through {what}: {bytes:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// Every recorded event holds masked data only (samples of binary values
/// are recorded as hex, so the hex forms are checked too).
fn assert_recording_clean(gateway: &airlock_testkit::GatewayProcess) {
    let events = common::events(gateway);
    assert!(
        events.iter().any(|event| event.command_result().is_some()),
        "results are recorded"
    );
    for event in &events {
        assert_clean(
            &format!("the recorded {} event", event.kind),
            &event.data.to_string(),
        );
    }
}

/// Any value, as its wire bytes (for types the driver has no decoder for).
#[derive(Debug)]
struct Raw(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// Extra objects for the attacks: a composite type and card numbers kept as
/// numbers.
fn prepare_attacks(cluster: &airlock_testkit::PgCluster) {
    prepare(cluster);
    cluster.sql_in(
        "appdb",
        "create type contact as (email text, card varchar);
         create table accounts(id int primary key, card_number bigint, card_numeric numeric(20,0), balance numeric(10,2));
         insert into accounts values (1, 4111111111111111, 4111111111111111, 12.50);
         grant all on accounts to app",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_arrays_records_and_numbers_are_masked() {
    let (cluster, gateway) = setup_with_policy("", MASKING);
    prepare_attacks(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    // Binary text[] and varchar[] (asyncpg and tokio-postgres ask for binary).
    let row = client
        .query_one(
            "select array_agg(email order by id), array_agg(card order by id) from customers",
            &[],
        )
        .await
        .unwrap();
    let emails: Vec<String> = row.get(0);
    let cards: Vec<Option<String>> = row.get(1);
    assert_eq!(emails.len(), 2, "the array keeps its elements");
    assert!(
        emails[0].starts_with('j') && emails[0].ends_with(".com"),
        "{emails:?}"
    );
    assert_eq!(emails[1].len(), "x@y.io".len(), "{emails:?}");
    assert_eq!(cards[1], None, "NULL elements stay NULL");
    assert!(
        cards[0]
            .as_deref()
            .is_some_and(|card| card.ends_with("1111")),
        "{cards:?}"
    );
    assert_clean("a binary text[]", &format!("{emails:?} {cards:?}"));

    // Records (anonymous and composite), arrays of records, in binary.
    for sql in [
        "select row(email, card) from customers where id = 1",
        "select row(email, card)::contact from customers where id = 1",
        "select array_agg(row(email, card)) from customers",
        "select row(id, row(notes, array[email])) from customers where id = 1",
        "select email::bytea from customers where id = 1",
        "select email::refcursor from customers where id = 1",
        "select email::tsvector from customers where id = 1",
        "select card_numeric from accounts",
        "select array[card_number] from accounts",
    ] {
        let row = client.query_one(sql, &[]).await.unwrap();
        let value: Option<Raw> = row.get(0);
        if let Some(Raw(bytes)) = value {
            assert_bytes_clean(sql, &bytes);
            // Base-10000 digits of 4111111111111111 in binary numeric.
            let numeric = [0x10, 0x0f, 0x04, 0x57, 0x04, 0x57, 0x04, 0x57];
            assert!(
                !bytes.windows(numeric.len()).any(|window| window == numeric),
                "the card leaked as a binary numeric through {sql}: {bytes:?}"
            );
            // 4111111111111111 as a big-endian int8.
            let int8 = 4_111_111_111_111_111i64.to_be_bytes();
            assert!(
                !bytes.windows(8).any(|window| window == int8),
                "the card leaked as a binary int8 through {sql}: {bytes:?}"
            );
        }
    }

    // A card kept as a number: int8 and float8 in binary.
    let row = client
        .query_one(
            "select card_number, card_number::float8, balance::float8, id from accounts",
            &[],
        )
        .await
        .unwrap();
    let number: Option<i64> = row.get(0);
    let float: Option<f64> = row.get(1);
    assert_ne!(
        number,
        Some(4_111_111_111_111_111),
        "the card leaked as int8"
    );
    assert_ne!(
        float,
        Some(4_111_111_111_111_111.0),
        "the card leaked as float8"
    );
    assert_eq!(
        row.get::<_, f64>(2),
        12.5,
        "numbers that match nothing are untouched"
    );
    assert_eq!(row.get::<_, i32>(3), 1);

    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_records_and_non_text_types_are_masked() {
    let (cluster, gateway) = setup_with_policy("", MASKING);
    prepare_attacks(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    // Another session's last statement, visible in pg_stat_activity.
    let direct = format!(
        "host=127.0.0.1 port={} user=app dbname=appdb password={}",
        cluster.port,
        cluster.role_password("app")
    );
    let (other, connection) = tokio_postgres::connect(&direct, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    other
        .simple_query(&format!("select 'call {EMAIL} now' as note"))
        .await
        .unwrap();

    for sql in [
        "select row(email, card) from customers order by id",
        "select row(email, card)::contact from customers order by id",
        "select array_agg(row(email, card)) from customers",
        "select row(notes) from customers order by id",
        "select row(query) from pg_stat_activity where query like '%call%now%'",
        "select email::bytea from customers order by id",
        "set bytea_output = 'escape'; select email::bytea from customers order by id",
        "select email::tsvector from customers order by id",
        "select email::refcursor from customers order by id",
        "select card_number, card_numeric from accounts",
        "select card_number::float8::text::float8 from accounts",
        "select array[card_number] from accounts",
    ] {
        let output = gateway.psql(&token, "agent-7", "pg-test", "require", sql);
        assert!(output.status.success(), "{sql}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(!text.is_empty(), "{sql} returned rows");
        assert_clean(sql, &text);
    }

    // What matches nothing is untouched, and masked records keep their shape.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select id, balance, row(id, email, card) from customers join accounts using (id)",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("1|12.50|(1,j"), "{text}");
    assert!(text.ends_with("1111\")"), "{text}");

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_payloads_are_masked() {
    let (cluster, gateway) = setup_with_policy("", MASKING);
    prepare(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let (client, mut connection) = common::connect(&gateway, "agent-7", "pg-test", &token)
        .await
        .unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages =
            futures_util::stream::poll_fn(move |context| connection.poll_message(context));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(notification) = message {
                let _ = sender.send((
                    notification.channel().to_string(),
                    notification.payload().to_string(),
                ));
            }
        }
    });
    client.batch_execute("listen ch").await.unwrap();
    // Notified by the session itself: delivered right after its command.
    client
        .query(
            "select pg_notify('ch', (select string_agg(email || ' ' || coalesce(card, ''), ';') from customers))",
            &[],
        )
        .await
        .unwrap();
    let (channel, payload) =
        tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(channel, "ch");
    assert!(
        payload.contains(';') && payload.contains("1111"),
        "{payload}"
    );
    assert_clean("a notification payload", &payload);

    // Notified by another session while this one is idle: the most recent
    // command's mask plan applies.
    cluster.sql_in("appdb", &format!("notify ch, 'mail {EMAIL} card {CARD}'"));
    let (_, payload) = tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(payload.starts_with("mail j"), "{payload}");
    assert_clean("a notification between commands", &payload);

    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

/// Detectors only for `agent-7`; detectors and column rules for
/// `agent-cols`.
const COPY_MASK: &str = "version: 1
default: deny
rules:
  - name: everything
    match: {}
    action: allow
  - name: mask-detectors
    match: {identity: {name: agent-7}}
    mask:
      detectors: [email, card, secret]
      style: partial
  - name: mask-columns
    match: {identity: {name: agent-cols}}
    mask:
      detectors: [email, card]
      columns: ['*password*']
      style: partial
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_with_custom_quote_and_delimiter_is_masked() {
    let (cluster, gateway) = setup_with_policy("", COPY_MASK);
    prepare(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let (_id, columns_token) = gateway.issue_token("agent-cols", &["pg-test"], "15m");
    for sql in [
        "copy (select email from customers order by id) to stdout with (format csv, quote '@')",
        "copy (select email, card from customers order by id) to stdout with (format csv, quote '@', force_quote *)",
        "copy (select email, card, notes from customers order by id) to stdout with (format csv, delimiter '@', header true)",
        "COPY (select email, notes from customers order by id) TO STDOUT (FORMAT 'csv', QUOTE '.', ESCAPE '@', FORCE_QUOTE (email))",
        "copy (select email, card from customers order by id) to stdout with (delimiter '@', null 'jane')",
        "copy (select email, card from customers order by id) to stdout with (format text, delimiter E'\\x40')",
        "copy (select id, email, card, notes from customers order by id) to stdout csv quote as '@'",
        "copy (select email, card from customers order by id) to stdout with csv header delimiter as '.' quote as '@' escape as '1'",
        "copy (select email, card from customers order by id) to stdout delimiter '@' null as 'x'",
        "select 1; copy (select email from customers order by id) to stdout (format csv, quote '@'); copy (select card from customers order by id) to stdout (format csv, delimiter '1')",
    ] {
        let output = gateway.psql(&token, "agent-7", "pg-test", "require", sql);
        assert!(output.status.success(), "{sql}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(text.lines().count() >= 2, "{sql}: {text}");
        assert_clean(sql, &text);
        assert!(
            !text.contains("jane.doe@@example.com") && !text.contains("@jane.doe"),
            "{sql}: {text}"
        );
    }
    // Masked CSV still parses as CSV with the same options.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "copy (select id, email from customers order by id) to stdout with (format csv, quote '@', force_quote *)",
    );
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("@1@,@j") && first.ends_with(".com@"),
        "{first}"
    );

    // Column rules need the column names: without a header, a COPY under a
    // plan with column rules is refused rather than leak them.
    let output = gateway.psql(
        &columns_token,
        "agent-cols",
        "pg-test",
        "require",
        "copy customers to stdout",
    );
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(!stdout(&output).contains(PASSWORD), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("invalid message") || stderr(&output).contains("HEADER"),
        "{}",
        stderr(&output)
    );
    let output = gateway.psql(
        &columns_token,
        "agent-cols",
        "pg-test",
        "require",
        "copy customers to stdout with (format csv, header)",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains("pw2"), "{text}");
    assert_clean("COPY with a header", &text);

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

const TABLE_MASK: &str = "version: 1
default: deny
rules:
  - name: everything
    match: {}
    action: allow
  - name: mask-customers
    match: {tables: [customers]}
    mask:
      detectors: [email]
      columns: ['*']
      style: partial
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_columns_mask_every_column_of_a_table() {
    let (cluster, gateway) = setup_with_policy("", TABLE_MASK);
    prepare(&cluster);
    cluster.sql_in(
        "appdb",
        "create table public_notes(id int, body text); insert into public_notes values (1, 'hello'); grant all on public_notes to app",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    // Content detection cannot see transformed values; a column rule does.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select id, reverse(card), replace(card, ' ', ''), substr(email, 1, 8), amount from customers order by id",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().next().unwrap(), "|****|****|****|", "{text}");
    assert!(!text.contains("1111") && !text.contains("jane"), "{text}");

    let client = client(&gateway, "agent-7", "pg-test", &token).await;
    let row = client
        .query_one(
            "select id, reverse(card), email from customers where id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);
    assert_eq!(row.get::<_, String>(1), "****");
    assert_eq!(row.get::<_, String>(2), "****");

    // Other tables are untouched.
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select * from public_notes",
    );
    assert_eq!(stdout(&output), "1|hello");
    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

/// A raw session through the gateway: every frame the client receives for
/// one simple query, up to its `ReadyForQuery`.
struct RawSession(std::net::TcpStream);

impl RawSession {
    fn open(gateway: &airlock_testkit::GatewayProcess, token: &str) -> Self {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.pg_port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(&airlock_pg::startup::encode_startup(&[
                ("user", "agent-7"),
                ("database", "pg-test"),
            ]))
            .unwrap();
        let mut request = [0u8; 9];
        stream.read_exact(&mut request).unwrap();
        assert_eq!(request[0], b'R');
        let mut password = Vec::new();
        airlock_pg::frontend::encode_password(&mut password, token);
        stream.write_all(&password).unwrap();
        let mut session = RawSession(stream);
        session.until_ready();
        session
    }

    fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        use std::io::Read;
        let decoder = airlock_pg::FrameDecoder::default();
        let mut buf = bytes::BytesMut::new();
        let mut frames = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                frames.push((frame.tag(), frame.body().to_vec()));
                if frame.tag() == b'Z' {
                    return frames;
                }
            }
            let read = self.0.read(&mut chunk).unwrap();
            assert!(read > 0, "the session closed: {frames:?}");
            buf.extend_from_slice(&chunk[..read]);
        }
    }

    fn query(&mut self, sql: &str) -> Vec<(u8, Vec<u8>)> {
        use std::io::Write;
        let mut out = Vec::new();
        airlock_pg::frontend::encode_query(&mut out, sql);
        self.0.write_all(&out).unwrap();
        self.until_ready()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_error_fields_and_column_names_are_masked() {
    let (cluster, gateway) = setup_with_policy("", MASKING);
    prepare(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut session = RawSession::open(&gateway, &token);
    for sql in [
        // Reported back in a ParameterStatus.
        "select 1 from (select set_config('application_name', (select email from customers where id = 1), false)) s",
        // RAISE … USING sets the name fields of an error to any string.
        "do $$ begin raise exception 'no' using column = (select email from customers where id = 1), \
         table = (select card from customers where id = 1), datatype = (select email from customers where id = 1), \
         constraint = (select email from customers where id = 1), schema = (select email from customers where id = 1); end $$",
        "do $$ begin raise notice 'n' using column = (select email from customers where id = 1); end $$",
        // A column named after a value.
        "do $$ begin execute format('create temp view v as select 1 as %I', (select email from customers where id = 1)); end $$",
        "select * from v",
    ] {
        let frames = session.query(sql);
        for (tag, body) in &frames {
            assert_bytes_clean(&format!("a {} message of {sql}", *tag as char), body);
        }
    }
    drop(session);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_recording_clean(&gateway);
}

/// Statements that never run are recorded too, and masked like the ones
/// that do: a denied statement, a rate-limited one, and one that does not
/// parse (whose parser message quotes the text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_statements_are_recorded_masked() {
    let policy = "version: 1
default: allow
rules:
  - name: no-deletes
    match: {operations: [delete]}
    action: deny
  - name: mask-pii
    match: {connection: {tags: {env: dev}}}
    mask:
      detectors: [email]
      style: partial
";
    let (cluster, gateway) = setup_with_policy("", policy);
    prepare(&cluster);
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let client = client(&gateway, "agent-7", "pg-test", &token).await;

    let denied = format!("delete from customers where email = '{EMAIL}'");
    let error = client.simple_query(&denied).await.unwrap_err();
    assert_eq!(
        error.code().map(|code| code.code()),
        Some("42501"),
        "{error}"
    );
    let unparsed = format!("select 'x' from customers where email = '{EMAIL}");
    let error = client.simple_query(&unparsed).await.unwrap_err();
    assert_eq!(
        error.code().map(|code| code.code()),
        Some("42601"),
        "{error}"
    );
    let error = client.query(unparsed.as_str(), &[]).await.unwrap_err();
    assert_eq!(
        error.code().map(|code| code.code()),
        Some("42601"),
        "{error}"
    );
    let rows = client
        .query("select count(*) from customers", &[])
        .await
        .unwrap();
    // Nothing ran upstream: both customers are there, and the server never
    // saw either text.
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    let log = cluster.log();
    assert!(!log.contains("delete from customers"), "{log}");
    assert!(!log.contains("select 'x' from customers"), "{log}");

    let events = common::events(&gateway);
    let refused: Vec<_> = events
        .iter()
        .filter(|event| event.kind == "command" && event.data.to_string().contains("\"refuse\""))
        .collect();
    assert_eq!(refused.len(), 3, "{events:?}");
    assert_recording_clean(&gateway);
}
