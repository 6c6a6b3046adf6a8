//! Shared helpers for the MySQL end-to-end tests: a real MariaDB behind the
//! real gateway, the `mariadb` command-line client, and a raw protocol
//! client (from the `airlock-mysql` codec) for what drivers never send.

#![allow(dead_code)] // each test file uses a different subset

use airlock_mysql::command::Command as MyCommand;
use airlock_mysql::handshake::{HandshakeResponse, InitialHandshake};
use airlock_mysql::response::{ResponsePacket, ResponseTracker};
use airlock_mysql::{auth, Capabilities, ErrPacket, PacketCodec};
use airlock_testkit::{GatewayProcess, MariaDb};
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The connection every test uses: `shop-mysql`, MariaDB's `app` user on
/// `appdb`.
pub fn config(server: &MariaDb, extra: &str) -> String {
    format!(
        "connections:
  - name: shop-mysql
    protocol: mysql
    address: 127.0.0.1:{port}
    database: appdb
    credential: shop-mysql-app
    tags: {{env: dev}}
{extra}",
        port = server.port
    )
}

/// A MariaDB server and a gateway with `policy`, the credential stored.
pub fn setup(extra: &str, policy: &str) -> (MariaDb, GatewayProcess) {
    let server = MariaDb::start();
    let gateway =
        GatewayProcess::start_with_policy(super::common::binary(), &config(&server, extra), policy);
    gateway.set_credential("shop-mysql-app", "app", &server.password("app"));
    (server, gateway)
}

/// The `mariadb` client through the gateway: `-u identity -p token -D
/// connection`, TLS when `tls` (without checking the gateway's
/// self-signed certificate), batch output.
pub fn mariadb(
    gateway: &GatewayProcess,
    user: &str,
    token: &str,
    database: &str,
    tls: bool,
    sql: &str,
) -> Output {
    let mut command = Command::new("mariadb");
    command
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &gateway.mysql_port.to_string()])
        .args(["-u", user])
        .arg(format!("-p{token}"))
        .args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
    if !database.is_empty() {
        command.args(["-D", database]);
    }
    if tls {
        command.args(["--ssl", "--skip-ssl-verify-server-cert"]);
    } else {
        command.arg("--skip-ssl");
    }
    command.args(["-e", sql]);
    command.output().expect("run mariadb")
}

pub fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

/// A raw client: the handshake by hand (`mysql_clear_password` without
/// TLS, which the gateway allows from loopback by default), then packets
/// as the test writes them.
pub struct Raw {
    stream: TcpStream,
    codec: PacketCodec,
    buf: BytesMut,
    pub capabilities: Capabilities,
    /// The connection id the gateway's greeting gave this client.
    pub connection_id: u32,
}

impl Raw {
    pub fn connect(
        gateway: &GatewayProcess,
        user: &str,
        token: &str,
        database: &str,
    ) -> Result<Self, ErrPacket> {
        let stream = TcpStream::connect(("127.0.0.1", gateway.mysql_port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut raw = Self {
            stream,
            // Room for the multi-packet payloads tests send and read.
            codec: PacketCodec::new(64 << 20),
            buf: BytesMut::new(),
            capabilities: Capabilities::empty(),
            connection_id: 0,
        };
        let greeting = InitialHandshake::decode(&raw.read()).unwrap();
        raw.connection_id = greeting.connection_id;
        let capabilities = (Capabilities::LONG_PASSWORD
            | Capabilities::PROTOCOL_41
            | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH
            | Capabilities::TRANSACTIONS
            | Capabilities::MULTI_RESULTS
            | Capabilities::CONNECT_WITH_DB
            | Capabilities::DEPRECATE_EOF)
            & greeting.capabilities;
        let mut token_bytes = token.as_bytes().to_vec();
        token_bytes.push(0);
        let response = HandshakeResponse {
            capabilities,
            max_packet_size: 1 << 26,
            charset: 45,
            username: user.into(),
            auth_response: token_bytes,
            database: Some(database.into()),
            auth_plugin_name: Some(auth::MYSQL_CLEAR_PASSWORD.into()),
            connect_attributes: Vec::new(),
            zstd_compression_level: None,
        };
        raw.write(&response.encode().unwrap());
        let answer = raw.read();
        if answer.first() == Some(&0xFF) {
            return Err(ErrPacket::decode(&answer).unwrap());
        }
        assert_eq!(answer.first(), Some(&0x00), "OK expected: {answer:?}");
        raw.capabilities = capabilities;
        Ok(raw)
    }

    pub fn read(&mut self) -> Vec<u8> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf).unwrap() {
                return packet.payload.to_vec();
            }
            let mut chunk = [0u8; 16384];
            let read = self.stream.read(&mut chunk).unwrap();
            assert!(read > 0, "the gateway closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    pub fn write(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.codec.encode(payload, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    /// Sends a command (sequence 0) and reads its whole answer.
    pub fn run(&mut self, command: &MyCommand) -> Vec<(ResponsePacket, Vec<u8>)> {
        self.codec.reset_sequence();
        self.write(&command.encode(self.capabilities).unwrap());
        let mut tracker = ResponseTracker::new(command, self.capabilities).unwrap();
        let mut packets = Vec::new();
        while !tracker.is_complete() {
            let payload = self.read();
            packets.push((tracker.feed(&payload).unwrap(), payload));
        }
        packets
    }

    pub fn query(&mut self, sql: &str) -> Vec<(ResponsePacket, Vec<u8>)> {
        self.run(&MyCommand::Query {
            query: sql.as_bytes().to_vec(),
        })
    }
}

/// The error an answer ended with, if it did.
pub fn error_of(packets: &[(ResponsePacket, Vec<u8>)]) -> Option<ErrPacket> {
    packets.iter().find_map(|(packet, _)| match packet {
        ResponsePacket::Err(err) => Some(err.clone()),
        _ => None,
    })
}

impl Raw {
    /// Sends a command payload as it is (sequence 0).
    pub fn write_raw_command(&mut self, payload: &[u8]) {
        self.codec.reset_sequence();
        self.write(payload);
    }
}

impl Raw {
    /// Writes bytes as they are (already framed).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next packet whatever its sequence id (answers to pipelined
    /// commands, errors the gateway sends on its own).
    pub fn read_next_answer(&mut self) -> Vec<u8> {
        let mut codec = PacketCodec::default().without_sequence_check();
        loop {
            if let Some(packet) = codec.decode(&mut self.buf).unwrap() {
                return packet.payload.to_vec();
            }
            let mut chunk = [0u8; 16384];
            let read = self.stream.read(&mut chunk).unwrap();
            assert!(read > 0, "the gateway closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }
}

fn python_mysql_dir() -> PathBuf {
    airlock_testkit::repo_file("crates/airlock/tests/python-mysql")
}

/// `tests/python-mysql/requirements.txt` (PyMySQL, MariaDB
/// Connector/Python) installed into its `site/` (git-ignored) on first
/// run; that folder, for `PYTHONPATH`.
fn python_mysql_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-mysql", &["pymysql", "mariadb"])
}

/// Runs `tests/python-mysql/pymysql_client.py` (PyMySQL with its defaults,
/// over TLS) through the gateway; its JSON answer.
pub fn pymysql(
    gateway: &GatewayProcess,
    user: &str,
    token: &str,
    database: &str,
    statements: &[&str],
) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(python_mysql_dir().join("pymysql_client.py"))
        .arg(gateway.mysql_port.to_string())
        .args([user, token, database])
        .args(statements)
        .env("PYTHONPATH", python_mysql_site())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "pymysql_client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pymysql_client.py prints JSON")
}

/// Runs `tests/python-mysql/bulk_client.py` (MariaDB Connector/Python's
/// `executemany`, which sends COM_STMT_BULK_EXECUTE) through the gateway;
/// its JSON answer.
pub fn bulk_insert(
    gateway: &GatewayProcess,
    token: &str,
    statement: &str,
    rows: &serde_json::Value,
) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(python_mysql_dir().join("bulk_client.py"))
        .arg(gateway.mysql_port.to_string())
        .args(["agent-7", token, "shop-mysql", statement])
        .arg(rows.to_string())
        .env("PYTHONPATH", python_mysql_site())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "bulk_client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("bulk_client.py prints JSON")
}
