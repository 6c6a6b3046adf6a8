//! The client-facing login against a real client: the `mariadb` command
//! line client (libmariadb) logs in to a listener built from this codec,
//! over TLS (rustls on the listener side). The listener receives the token
//! through caching_sha2_password's full authentication (or after switching
//! a client that started with mysql_native_password), answers with OK or
//! ERR, then answers COM_QUERY with a result set built by the encoders
//! (echoing the statement), which the client prints.

// Test glue outside #[test] functions: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::command::Command;
use airlock_mysql::generic::EOF_HEADER;
use airlock_mysql::listener::{ClientCredentials, ClientLogin, ListenerParams, ListenerStep};
use airlock_mysql::row::encode_text_row;
use airlock_mysql::{Capabilities, EofPacket, ErrPacket, OkPacket, PacketCodec, ServerStatus};
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "alk_test_token_42";

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

struct Session {
    stream: Box<dyn ReadWrite>,
    codec: PacketCodec,
    buf: BytesMut,
}

impl Session {
    fn read(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(packet.payload.to_vec());
            }
            let mut chunk = [0u8; 8192];
            let read = self.stream.read(&mut chunk).ok()?;
            if read == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    fn write(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.codec.encode(payload, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
        self.stream.flush().unwrap();
    }
}

/// Serves one client: the login, then queries until COM_QUIT.
fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, seen: Arc<Mutex<Vec<String>>>) {
    let mut session = Session {
        stream: Box::new(tcp.try_clone().unwrap()),
        codec: PacketCodec::default(),
        buf: BytesMut::new(),
    };
    let mut login = ClientLogin::new(ListenerParams {
        server_version: "8.0.36-airlock".into(),
        connection_id: 1,
        scramble: *b"Zq3pXw9LmN2bVc7KdR5t",
        capabilities: ListenerParams::DEFAULT_CAPABILITIES,
        tls_available: true,
        plaintext_allowed: false,
        charset: 45,
        status: ServerStatus::AUTOCOMMIT,
    });
    let greeting = login.greeting().unwrap();
    session.write(&greeting);
    let credentials: ClientCredentials = loop {
        let Some(packet) = session.read() else { return };
        match login.receive(&packet) {
            Ok(ListenerStep::Send(payload)) => session.write(&payload),
            Ok(ListenerStep::StartTls) => {
                let server = rustls::ServerConnection::new(tls.clone()).unwrap();
                session.stream =
                    Box::new(rustls::StreamOwned::new(server, tcp.try_clone().unwrap()));
                login.tls_established().unwrap();
            }
            Ok(ListenerStep::Credentials(credentials)) => break *credentials,
            Err(error) => {
                seen.lock().unwrap().push(format!("refused: {error}"));
                let err = ErrPacket::new(3159, *b"08004", error.to_string());
                session.write(&err.encode());
                return;
            }
        }
    };
    let caps = credentials.capabilities;
    seen.lock().unwrap().push(format!(
        "login {} db={:?} tls={} plugin-token-ok={}",
        credentials.username,
        credentials.database,
        credentials.over_tls,
        credentials.token == TOKEN.as_bytes()
    ));
    if credentials.token != TOKEN.as_bytes() {
        let err = ErrPacket::new(
            1045,
            *b"28000",
            format!("Access denied for user '{}'", credentials.username),
        );
        session.write(&err.encode());
        return;
    }
    let ok = OkPacket {
        status: ServerStatus::AUTOCOMMIT,
        ..OkPacket::default()
    };
    session.write(&ok.encode(caps));
    loop {
        session.codec.reset_sequence();
        let Some(packet) = session.read() else { return };
        match Command::decode(&packet, caps).unwrap() {
            Command::Quit => return,
            Command::Ping | Command::InitDb { .. } => session.write(&ok.encode(caps)),
            Command::Query { query } => {
                seen.lock()
                    .unwrap()
                    .push(format!("query {}", String::from_utf8_lossy(&query)));
                session.write(&[0x01]);
                let column = ColumnDefinition::new("echo", ColumnType::VAR_STRING);
                session.write(&column.encode(caps));
                let eof = EofPacket {
                    warnings: 0,
                    status: ServerStatus::AUTOCOMMIT,
                };
                if !caps.contains(Capabilities::DEPRECATE_EOF) {
                    session.write(&eof.encode(caps));
                }
                session.write(&encode_text_row([Some(&query[..])]));
                if caps.contains(Capabilities::DEPRECATE_EOF) {
                    session.write(&ok.encode_with_header(EOF_HEADER, caps));
                } else {
                    session.write(&eof.encode(caps));
                }
            }
            other => {
                let err = ErrPacket::new(1047, *b"08S01", format!("{} refused", other.name()));
                session.write(&err.encode());
            }
        }
    }
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

/// Runs the `mariadb` client against a fresh listener; returns its exit
/// status, output and what the listener saw.
fn client(args: &[&str]) -> (bool, String, Vec<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tls = tls_config();
    let thread_seen = seen.clone();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        serve(tcp, tls, thread_seen);
    });
    let output = std::process::Command::new("mariadb")
        .arg("--no-defaults")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-u",
            "agent",
            "-D",
            "appdb",
        ])
        .args(["--batch", "--skip-column-names", "--connect-timeout=10"])
        .args(args)
        .output()
        .expect("run the mariadb client (install mariadb-client)");
    server.join().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = seen.lock().unwrap().clone();
    (output.status.success(), text, seen)
}

#[test]
fn mariadb_client_hands_its_token_over_tls() {
    let password = format!("-p{TOKEN}");
    // The client follows the greeting's caching_sha2_password.
    let (ok, output, seen) = client(&["--ssl", &password, "-e", "SELECT 'hello'"]);
    assert!(ok, "{output}\n{seen:?}");
    assert_eq!(output.trim(), "SELECT 'hello'");
    assert_eq!(
        seen[0],
        "login agent db=Some(\"appdb\") tls=true plugin-token-ok=true"
    );
    // A client that starts with mysql_native_password is switched.
    let (ok, output, seen) = client(&[
        "--ssl",
        "--default-auth=mysql_native_password",
        &password,
        "-e",
        "SELECT 2",
    ]);
    assert!(ok, "{output}\n{seen:?}");
    assert_eq!(output.trim(), "SELECT 2");
    assert!(
        seen[0].ends_with("tls=true plugin-token-ok=true"),
        "{seen:?}"
    );
}

#[test]
fn wrong_tokens_and_plaintext_are_refused() {
    let (ok, output, seen) = client(&["--ssl", "-pwrong", "-e", "SELECT 1"]);
    assert!(!ok);
    assert!(
        output.contains("Access denied for user 'agent'"),
        "{output}"
    );
    assert!(seen[0].ends_with("plugin-token-ok=false"), "{seen:?}");
    let password = format!("-p{TOKEN}");
    let (ok, output, seen) = client(&["--skip-ssl", &password, "-e", "SELECT 1"]);
    assert!(!ok);
    assert!(output.contains("TLS is required"), "{output}");
    assert_eq!(seen, ["refused: TLS is required"]);
}
