//! Hostile and broken input: garbage, GSSAPI encryption requests, oversized
//! and malformed messages, plaintext where TLS is required, broken config
//! files. The gateway answers each with a clear protocol error and keeps
//! serving everyone else.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_pg::backend::{decode_error_fields, tag};
use airlock_pg::frontend::encode_password;
use airlock_pg::startup::encode_startup;
use airlock_pg::FrameDecoder;
use airlock_testkit::GatewayProcess;
use bytes::BytesMut;
use common::{setup, stderr, stdout};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn raw(gateway: &GatewayProcess) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", gateway.pg_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads frames until an ErrorResponse (returned) or `ReadyForQuery` (None)
/// or the end of the stream (None).
fn read_until_error_or_ready(stream: &mut TcpStream) -> Option<airlock_pg::ErrorFields> {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            match frame.tag() {
                tag::ERROR_RESPONSE => return Some(decode_error_fields(frame.body()).unwrap()),
                tag::READY_FOR_QUERY => return None,
                _ => {}
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(read) => buf.extend_from_slice(&chunk[..read]),
        }
    }
}

fn authenticate(gateway: &GatewayProcess, token: &str) -> TcpStream {
    let mut stream = raw(gateway);
    stream
        .write_all(&encode_startup(&[
            ("user", "agent-7"),
            ("database", "pg-test"),
        ]))
        .unwrap();
    let mut request = [0u8; 9];
    stream.read_exact(&mut request).unwrap();
    assert_eq!(request[0], b'R');
    let mut password = Vec::new();
    encode_password(&mut password, token);
    stream.write_all(&password).unwrap();
    assert!(
        read_until_error_or_ready(&mut stream).is_none(),
        "authentication failed"
    );
    stream
}

fn assert_alive(gateway: &GatewayProcess, token: &str) {
    let output = gateway.psql(token, "agent-7", "pg-test", "disable", "select 'alive'");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "alive");
}

#[test]
fn hostile_bytes_close_only_their_own_session() {
    let (_cluster, gateway) = setup("");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");

    // Garbage as a startup packet, and a Terminate before any startup
    // (which some clients send): closed without a reply, as PostgreSQL
    // itself does (compared on the same bytes).
    for garbage in [
        b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n".as_slice(),
        b"X\0\0\0\x04".as_slice(),
    ] {
        let mut replies = Vec::new();
        for port in [gateway.pg_port, _cluster.port] {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(garbage).unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            replies.push(rest);
        }
        assert!(
            replies[1].is_empty(),
            "PostgreSQL answered {:?}",
            replies[1]
        );
        assert_eq!(replies[0], replies[1], "{garbage:?}");
    }

    // An old protocol version.
    let mut stream = raw(&gateway);
    stream.write_all(b"\0\0\0\x08\0\x02\0\0").unwrap();
    let error = read_until_error_or_ready(&mut stream).expect("an error");
    assert_eq!(error.code, "08P01");

    // GSSAPI encryption is refused with 'N'; the client may go on in clear.
    let mut stream = raw(&gateway);
    stream.write_all(b"\0\0\0\x08\x04\xd2\x16\x30").unwrap();
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"N");

    // A cancel request with an unknown key is ignored.
    let mut stream = raw(&gateway);
    stream
        .write_all(&airlock_pg::startup::encode_cancel(1, 2))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty());

    // After authentication: an oversized message closes the session.
    let mut stream = authenticate(&gateway, &token);
    stream.write_all(b"Q\x7f\xff\xff\xff").unwrap();
    let error = read_until_error_or_ready(&mut stream).expect("an error");
    assert_eq!(error.code, "08P01");
    assert!(
        error.message.contains("outside the allowed range"),
        "{error:?}"
    );

    // A malformed Bind (parameter longer than the message).
    let mut stream = authenticate(&gateway, &token);
    let mut bind = vec![b'B', 0, 0, 0, 0];
    bind.extend_from_slice(b"\0\0\0\0\0\x01\0\0\x03\xe8");
    let length = (bind.len() - 1) as i32;
    bind[1..5].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&bind).unwrap();
    let error = read_until_error_or_ready(&mut stream).expect("an error");
    assert_eq!(error.code, "08P01");

    // An unknown message type and the fastpath interface.
    for message in [&b"\x01\0\0\0\x04"[..], &b"F\0\0\0\x04"[..]] {
        let mut stream = authenticate(&gateway, &token);
        stream.write_all(message).unwrap();
        let error = read_until_error_or_ready(&mut stream).expect("an error");
        assert_eq!(error.code, "08P01", "{error:?}");
    }

    // A half-sent startup packet, then silence: the others are unaffected.
    let mut idle = raw(&gateway);
    idle.write_all(b"\0\0\0\x50").unwrap();

    // A startup packet with too many parameters.
    let mut stream = raw(&gateway);
    let params: Vec<(String, String)> = (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    stream.write_all(&encode_startup(&borrowed)).unwrap();
    let error = read_until_error_or_ready(&mut stream).expect("an error");
    assert_eq!(error.code, "08P01");

    assert_alive(&gateway, &token);
    assert_eq!(gateway.http_get("/healthz").unwrap().0, 200);
}

#[test]
fn tls_can_be_required_and_replication_is_refused() {
    let (_cluster, gateway) = setup("postgres:\n  allow_plaintext: never\n");
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let plain = gateway.psql(&token, "agent-7", "pg-test", "disable", "select 1");
    assert!(!plain.status.success());
    assert!(
        stderr(&plain).contains("TLS is required"),
        "{}",
        stderr(&plain)
    );
    let tls = gateway.psql(&token, "agent-7", "pg-test", "require", "select 1");
    assert!(tls.status.success(), "{}", stderr(&tls));

    let replication = std::process::Command::new(airlock_testkit::pg_client("psql"))
        .arg(format!(
            "{} replication=database",
            gateway.conninfo("agent-7", "pg-test", "require")
        ))
        .args(["-X", "-c", "IDENTIFY_SYSTEM"])
        .env("PGPASSWORD", &token)
        .output()
        .unwrap();
    assert!(!replication.status.success());
    assert!(
        stderr(&replication).contains("replication connections are not supported"),
        "{}",
        stderr(&replication)
    );
}

#[test]
fn config_errors_stop_start_up_with_every_problem_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlock.yaml");
    std::fs::write(
        &config,
        "listen:\n  admin: not-an-address\nconnections:\n  - name: a\n    protocol: mqtt\n    address: nohost\n    credential: c\ntokens:\n  max_ttl: 5x\n",
    )
    .unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("has 4 problems"), "{text}");
    assert!(text.contains("airlock.yaml:2: listen.admin"), "{text}");
    assert!(
        text.contains("airlock.yaml:5: connections[0] \"a\": protocol \"mqtt\""),
        "{text}"
    );
    assert!(
        text.contains("airlock.yaml:6: connections[0] \"a\": address \"nohost\""),
        "{text}"
    );
    assert!(text.contains("airlock.yaml:9: tokens.max_ttl"), "{text}");
    assert!(
        !dir.path().join("data").exists(),
        "a bad config must not create state"
    );

    // A parser problem names its line once; a missing policy file names
    // the file, with no line 0.
    std::fs::write(
        &config,
        "listen:\n  admin: 127.0.0.1:0\n  postgres: 127.0.0.1:0\npolicy: nothere.yaml\nconnections:\n  - name: a\n    protocol: postgres\n    credential: c\n",
    )
    .unwrap();
    let run = |config: &std::path::Path| {
        std::process::Command::new(common::binary())
            .args(["serve", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    };
    let text = stderr(&run(&config));
    assert!(
        text.contains("connections[0] \"a\": address is missing"),
        "{text}"
    );
    assert!(!text.contains("column"), "{text}");
    std::fs::write(
        &config,
        "listen:\n  admin: 127.0.0.1:0\n  postgres: 127.0.0.1:0\npolicy: nothere.yaml\n",
    )
    .unwrap();
    let text = stderr(&run(&config));
    assert!(
        text.contains("nothere.yaml: cannot read policy file"),
        "{text}"
    );
    assert!(!text.contains(":0:"), "{text}");

    let empty = tempfile::tempdir().unwrap();
    let missing = std::process::Command::new(common::binary())
        .arg("serve")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("pass --config FILE or create ./airlock.yaml"),
        "{}",
        stderr(&missing)
    );

    // A data dir where the audit journal cannot be created: the gateway
    // does not start (it could record nothing) and says why.
    let blocked = tempfile::tempdir().unwrap();
    let good = blocked.path().join("airlock.yaml");
    std::fs::write(
        &good,
        "listen:\n  admin: 127.0.0.1:0\n  postgres: 127.0.0.1:0\n",
    )
    .unwrap();
    let data = blocked.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("journal"),
        b"a file where the journal directory goes",
    )
    .unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--config"])
        .arg(&good)
        .arg("--data-dir")
        .arg(&data)
        .env(
            "AIRLOCK_ADMIN_TOKEN",
            "admin-token-for-this-test-0123456789",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("cannot start the gateway: the audit log cannot be written")
            && text.contains("data/journal"),
        "{text}"
    );
}

fn refused_code_and_message(error: tokio_postgres::Error) -> (String, String) {
    let db_error = error.as_db_error().expect("a server error");
    (
        db_error.code().code().to_string(),
        db_error.message().to_string(),
    )
}

fn upstream_sessions(cluster: &airlock_testkit::PgCluster) -> String {
    cluster.sql_in(
        "appdb",
        "select count(*) from pg_stat_activity where usename = 'app'",
    )
}

/// One identity cannot take every upstream connection: the session past
/// `limits.max_sessions_per_identity` is refused with 53300 before anything
/// is opened upstream, and other identities still connect, up to
/// `limits.max_sessions_per_connection`. When the upstream itself refuses,
/// its own words are not passed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limits_per_identity_and_connection() {
    let (cluster, gateway) =
        setup("limits:\n  max_sessions_per_identity: 3\n  max_sessions_per_connection: 5\n");
    let (_id7, agent_7) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(common::client(&gateway, "agent-7", "pg-test", &agent_7).await);
    }
    let (code, message) = refused_code_and_message(
        common::connect(&gateway, "agent-7", "pg-test", &agent_7)
            .await
            .err()
            .expect("the fourth session of one identity is refused"),
    );
    assert_eq!(code, "53300", "{message}");
    assert!(
        message.contains("at most 3 live sessions per identity (limits.max_sessions_per_identity)"),
        "{message}"
    );
    assert_eq!(
        upstream_sessions(&cluster),
        "3",
        "the refused session reached the upstream"
    );

    // Another identity still connects …
    let mut others = Vec::new();
    for name in ["agent-8", "agent-9"] {
        let (_id, token) = gateway.issue_token(name, &["pg-test"], "15m");
        let other = common::client(&gateway, name, "pg-test", &token).await;
        assert_eq!(
            other
                .query_one("select 1", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            1
        );
        others.push(other);
    }
    // … until the connection carries its limit.
    let (_id10, agent_10) = gateway.issue_token("agent-10", &["pg-test"], "15m");
    let (code, message) = refused_code_and_message(
        common::connect(&gateway, "agent-10", "pg-test", &agent_10)
            .await
            .err()
            .expect("the sixth session on one connection is refused"),
    );
    assert_eq!(code, "53300", "{message}");
    assert!(
        message.contains("(limits.max_sessions_per_connection)"),
        "{message}"
    );
    assert_eq!(upstream_sessions(&cluster), "5");
    assert!(common::events(&gateway)
        .iter()
        .any(|event| event.kind == "session.refused"
            && event.data["setting"] == "limits.max_sessions_per_identity"));

    // A session that ends frees its slot.
    drop(held.pop());
    assert!(
        common::eventually(10, || upstream_sessions(&cluster) == "4").await,
        "the closed session's upstream stayed open"
    );
    let mut again = None;
    for _ in 0..50 {
        if let Ok((client, connection)) =
            common::connect(&gateway, "agent-7", "pg-test", &agent_7).await
        {
            tokio::spawn(connection);
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the freed slot was not reused");
    drop(again);
    drop(held);
    drop(others);

    // The upstream refuses (a role connection limit): the client hears that
    // it refused, not the upstream's own message.
    cluster.sql_in("appdb", "alter role app connection limit 0");
    let (_id11, agent_11) = gateway.issue_token("agent-11", &["pg-test"], "15m");
    let (code, message) = refused_code_and_message(
        common::connect(&gateway, "agent-11", "pg-test", &agent_11)
            .await
            .err()
            .expect("the upstream refuses"),
    );
    assert_eq!(code, "08001", "{message}");
    assert_eq!(
        message,
        "airlock: the upstream of connection \"pg-test\" refused the connection"
    );
    assert!(
        gateway.log().contains("too many connections for role"),
        "the detail is logged"
    );
}
