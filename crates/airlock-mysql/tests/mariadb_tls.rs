//! The login's TLS path against a real MariaDB started with a certificate
//! from a CA made for the run: the login asks for TLS after the
//! SSLRequest (`LoginStep::StartTls`), the test runs the TLS handshake
//! with rustls on the same socket, and the login continues inside it with
//! the next sequence id. Both test users log in; the server confirms the
//! session is encrypted. A server without TLS is refused when TLS is
//! required.

// Test glue outside #[test] functions: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_mysql::command::Command;
use airlock_mysql::login::{LoginError, LoginOutcome, LoginParams, LoginStep, UpstreamLogin};
use airlock_mysql::response::{ResponsePacket, ResponseTracker};
use airlock_mysql::row::decode_text_row;
use airlock_mysql::{auth, Capabilities, PacketCodec};
use airlock_testkit::MariaDb;
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

struct Connection {
    tcp: TcpStream,
    stream: Box<dyn ReadWrite>,
    codec: PacketCodec,
    buf: BytesMut,
}

impl Connection {
    fn open(port: u16) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let stream = Box::new(tcp.try_clone().unwrap());
        Self {
            tcp,
            stream,
            codec: PacketCodec::default(),
            buf: BytesMut::new(),
        }
    }

    fn read(&mut self) -> Vec<u8> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf).unwrap() {
                return packet.payload.to_vec();
            }
            let mut chunk = [0u8; 8192];
            let read = self.stream.read(&mut chunk).unwrap();
            assert!(read > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    fn write(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.codec.encode(payload, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
        self.stream.flush().unwrap();
    }

    fn login(
        &mut self,
        params: LoginParams,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<LoginOutcome, LoginError> {
        let mut login = UpstreamLogin::new(params);
        let handshake = self.read();
        let mut step = login.handshake(&handshake)?;
        loop {
            step = match step {
                LoginStep::Send(payload) => {
                    self.write(&payload);
                    let reply = self.read();
                    login.receive(&reply)?
                }
                LoginStep::Wait => {
                    let reply = self.read();
                    login.receive(&reply)?
                }
                LoginStep::StartTls(ssl_request) => {
                    self.write(&ssl_request);
                    assert!(self.buf.is_empty(), "nothing may precede the TLS handshake");
                    let config = tls.clone().expect("a TLS configuration");
                    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                    let client = rustls::ClientConnection::new(config, name).unwrap();
                    let tcp = self.tcp.try_clone().unwrap();
                    self.stream = Box::new(rustls::StreamOwned::new(client, tcp));
                    login.tls_established()?
                }
                LoginStep::Done(outcome) => return Ok(*outcome),
            }
        }
    }

    /// One text cell of a one-row answer to `sql`.
    fn value(&mut self, sql: &str, caps: Capabilities) -> Option<Vec<u8>> {
        let command = Command::Query {
            query: sql.as_bytes().to_vec(),
        };
        self.codec.reset_sequence();
        let payload = command.encode(caps).unwrap();
        self.write(&payload);
        let mut tracker = ResponseTracker::new(&command, caps).unwrap();
        let mut value = None;
        while !tracker.is_complete() {
            let payload = self.read();
            if let ResponsePacket::TextRow { column_count } = tracker.feed(&payload).unwrap() {
                value = decode_text_row(&payload, column_count).unwrap()[column_count - 1]
                    .map(<[u8]>::to_vec);
            }
        }
        value
    }
}

/// A CA, a server certificate for localhost signed by it, and the files
/// mariadbd reads (readable by the `mysql` user when run as root).
fn certificates() -> (tempfile::TempDir, Arc<rustls::ClientConfig>) {
    let dir = tempfile::Builder::new()
        .prefix("airlock-mysql-tls-")
        .tempdir()
        .unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.path().join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    for (mode, path) in [
        ("755", dir.path().to_path_buf()),
        ("644", dir.path().join("server.crt")),
        ("644", dir.path().join("server.key")),
    ] {
        assert!(std::process::Command::new("chmod")
            .arg(mode)
            .arg(path)
            .status()
            .unwrap()
            .success());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (dir, Arc::new(config))
}

#[test]
fn login_over_tls_against_mariadb() {
    let (certs, tls) = certificates();
    let cert = format!("--ssl-cert={}", certs.path().join("server.crt").display());
    let key = format!("--ssl-key={}", certs.path().join("server.key").display());
    let server = MariaDb::start_with_args(&[&cert, &key]);
    for (user, plugin) in [
        ("app", auth::MYSQL_NATIVE_PASSWORD),
        ("eduser", auth::CLIENT_ED25519),
    ] {
        let mut params = LoginParams::new(user, server.password(user).into_bytes());
        params.database = Some("appdb".into());
        params.tls = true;
        let mut connection = Connection::open(server.port);
        let outcome = connection.login(params, Some(tls.clone())).unwrap();
        assert_eq!(outcome.plugin, plugin);
        assert!(outcome.capabilities.contains(Capabilities::SSL));
        let cipher = connection
            .value(
                "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
                outcome.capabilities,
            )
            .unwrap();
        assert!(!cipher.is_empty(), "{user}: the session is not encrypted");
        let database = connection.value("SELECT DATABASE()", outcome.capabilities);
        assert_eq!(database.as_deref(), Some(&b"appdb"[..]));
    }
}

#[test]
fn tls_required_but_not_offered_is_refused() {
    let server = MariaDb::start();
    let mut params = LoginParams::new("app", server.password("app").into_bytes());
    params.tls = true;
    let mut connection = Connection::open(server.port);
    assert_eq!(
        connection.login(params, None),
        Err(LoginError::TlsUnavailable)
    );
}
