//! Shared helpers for the end-to-end tests.

#![allow(dead_code)] // each test file uses a different subset

pub mod replicas;
pub mod wire;

use airlock_testkit::{GatewayProcess, PgCluster};
use std::path::Path;
use std::process::Output;

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_airlock"))
}

/// Config for connections `pg-test` (SCRAM role `app` on `appdb`), `pg-md5`,
/// `pg-plain`, `pg-other` and `pg-down` (nothing listens there), plus `extra`.
pub fn config(cluster: &PgCluster, extra: &str) -> String {
    let down = airlock_testkit::free_port();
    format!(
        "connections:
  - name: pg-test
    protocol: postgres
    address: 127.0.0.1:{port}
    database: appdb
    credential: app
    tags: {{env: dev}}
  - name: pg-md5
    protocol: postgres
    address: 127.0.0.1:{port}
    database: appdb
    credential: md5
  - name: pg-plain
    protocol: postgres
    address: 127.0.0.1:{port}
    database: appdb
    credential: plain
  - name: pg-other
    protocol: postgres
    address: 127.0.0.1:{port}
    database: postgres
    credential: app
  - name: pg-down
    protocol: postgres
    address: 127.0.0.1:{down}
    database: appdb
    credential: app
{extra}",
        port = cluster.port
    )
}

/// A policy that allows everything, unclassifiable statements included:
/// for tests of the gateway core, not of policy.
pub const ALLOW_ALL: &str = "version: 1
default: deny
rules:
  - name: allow-everything-in-tests
    match: {}
    action: allow
  - name: allow-unclassified-in-tests
    match: {complete: false}
    action: allow
";

/// A cluster and a gateway (allow-all policy) with the `app` credential
/// stored.
pub fn setup(extra: &str) -> (PgCluster, GatewayProcess) {
    setup_with_policy(extra, ALLOW_ALL)
}

/// A cluster and a gateway with `policy`, the `app` credential stored.
pub fn setup_with_policy(extra: &str, policy: &str) -> (PgCluster, GatewayProcess) {
    let cluster = PgCluster::start();
    let gateway = GatewayProcess::start_with_policy(binary(), &config(&cluster, extra), policy);
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    (cluster, gateway)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

/// tokio-postgres connection through the gateway (plaintext on loopback).
pub async fn connect(
    gateway: &GatewayProcess,
    user: &str,
    connection: &str,
    token: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    tokio_postgres::Error,
> {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={user} dbname={connection} password={token} sslmode=disable connect_timeout=10",
        gateway.pg_port
    );
    tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await
}

/// Connects and drives the connection in the background.
pub async fn client(
    gateway: &GatewayProcess,
    user: &str,
    connection: &str,
    token: &str,
) -> tokio_postgres::Client {
    let (client, connection) = connect(gateway, user, connection, token)
        .await
        .unwrap_or_else(|error| panic!("connect through the gateway: {error}\n{}", gateway.log()));
    tokio::spawn(connection);
    client
}

/// Every event in the gateway's store (opened read-side while it runs).
pub fn events(gateway: &GatewayProcess) -> Vec<airlock_store::EventRecord> {
    // Through the admin API, as an operator reads them: the read waits for
    // the event index to catch up with the write-ahead journal.
    gateway
        .cli_ok(&["audit", "export", "--format", "jsonl"], None)
        .lines()
        .map(|line| serde_json::from_str(line).expect("an exported event"))
        .collect()
}

/// Waits until `condition` holds, up to `seconds`.
pub async fn eventually(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    condition()
}

/// Issues a token for `identity` of `kind` with `groups`, scoped to
/// `connection`; returns the token.
pub fn issue_for(
    gateway: &GatewayProcess,
    connection: &str,
    identity: &str,
    kind: &str,
    groups: &[&str],
) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--identity",
        identity,
        "--kind",
        kind,
        "--connection",
        connection,
        "--output",
        "json",
    ];
    for group in groups {
        args.push("--group");
        args.push(group);
    }
    let issued: serde_json::Value =
        serde_json::from_str(&gateway.cli_ok(&args, None)).expect("token JSON");
    issued["token"].as_str().expect("token").to_string()
}

/// Runs a personal CLI command (with `AIRLOCK_TOKEN`, without the admin
/// token) against `gateway`.
pub fn as_person(gateway: &GatewayProcess, token: &str, args: &[&str]) -> Output {
    std::process::Command::new(binary())
        .args(args)
        .env(
            "AIRLOCK_URL",
            format!("http://127.0.0.1:{}", gateway.admin_port),
        )
        .env("AIRLOCK_TOKEN", token)
        .env_remove("AIRLOCK_ADMIN_TOKEN")
        .output()
        .expect("run airlock")
}

/// A raw HTTP request to the admin API with `token` as bearer:
/// (status, lowercased header lines, body).
pub fn http(
    gateway: &GatewayProcess,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Vec<String>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.admin_port))
        .expect("connect to the API");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines.map(str::to_ascii_lowercase).collect();
    (status, headers, body.to_string())
}
