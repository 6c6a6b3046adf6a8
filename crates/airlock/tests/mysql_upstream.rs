//! The gateway's upstream login paths, end to end: the real airlock binary
//! logs in upstream with the stored credential by whatever the server asks.
//!
//! - Upstream TLS `require` and `verify-full` against a real MariaDB
//!   started with a certificate from a CA made for the run; the upstream
//!   user is `REQUIRE SSL`, so only a TLS login gets in (a `disable`
//!   connection is refused by the server itself), and `verify-full`
//!   against another CA never gets as far as the login.
//! - A MariaDB `client_ed25519` user: the stored credential logs in with
//!   ed25519, with and without TLS.
//! - `caching_sha2_password`: no MySQL server is packaged here (MariaDB does
//!   not implement the plugin), so these cases run against a scripted
//!   server in this file that speaks the documented packet exchange: the
//!   fast path (the scramble checked with SHA-256 computed here), full
//!   authentication over TLS (the password inside TLS), full
//!   authentication over RSA with the connection's pinned
//!   `server_public_key` (decrypted by the `openssl` command line tool,
//!   OAEP), and a plain connection without a pinned key, which must fail
//!   without the password or a key request ever reaching the server.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;

use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::handshake::{HandshakeResponse, InitialHandshake};
use airlock_mysql::row::{decode_text_row, encode_text_row};
use airlock_mysql::{auth, Capabilities, ErrPacket, OkPacket, ServerStatus};
use airlock_testkit::{GatewayProcess, MariaDb};
use mysql::{err, out, Raw};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
";

/// A CA and a certificate for 127.0.0.1/localhost signed by it, in files
/// mariadbd can read: (dir, CA PEM path).
fn certificates(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
    let ca_path = dir.join(format!("{name}-ca.crt"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), server.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), server_key.serialize_pem()).unwrap();
    ca_path
}

fn chmod(mode: &str, path: &std::path::Path) {
    assert!(Command::new("chmod")
        .arg(mode)
        .arg(path)
        .status()
        .unwrap()
        .success());
}

fn mariadb_client(gateway: &GatewayProcess, token: &str, connection: &str, sql: &str) -> String {
    let output = mysql::mariadb(gateway, "agent-7", token, connection, true, sql);
    assert!(
        output.status.success(),
        "{connection}: {sql}: {}",
        err(&output)
    );
    out(&output)
}

#[test]
fn upstream_tls_and_ed25519_logins_against_mariadb() {
    let certs = tempfile::Builder::new()
        .prefix("airlock-mysql-upstream-")
        .tempdir()
        .unwrap();
    let ca = certificates(certs.path(), "server");
    let other_ca = certificates(certs.path(), "other");
    chmod("755", certs.path());
    for file in ["server.crt", "server.key"] {
        chmod("644", &certs.path().join(file));
    }
    let cert = format!("--ssl-cert={}", certs.path().join("server.crt").display());
    let key = format!("--ssl-key={}", certs.path().join("server.key").display());
    let server = MariaDb::start_with_args(&[&cert, &key]);
    // Only a TLS login gets in as `app`: the server enforces it.
    server.sql("ALTER USER 'app'@'%' REQUIRE SSL");
    let connection = |name: &str, credential: &str, tls: &str| {
        format!(
            "  - name: {name}
    protocol: mysql
    address: 127.0.0.1:{port}
    database: appdb
    credential: {credential}
{tls}",
            port = server.port
        )
    };
    let verify = |ca: &std::path::Path| {
        format!(
            "    tls: verify-full\n    ca_file: {}\n",
            ca.to_str().unwrap()
        )
    };
    let config = format!(
        "connections:\n{}{}{}{}{}{}",
        connection("maria-require", "app", "    tls: require\n"),
        connection("maria-verify", "app", &verify(&ca)),
        connection("maria-wrong-ca", "app", &verify(&other_ca)),
        connection("maria-plain", "app", ""),
        connection("maria-ed", "ed", ""),
        connection("maria-ed-tls", "ed", &verify(&ca)),
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("app", "app", &server.password("app"));
    gateway.set_credential("ed", "eduser", &server.password("eduser"));
    let names = [
        "maria-require",
        "maria-verify",
        "maria-wrong-ca",
        "maria-plain",
        "maria-ed",
        "maria-ed-tls",
    ];
    let (_id, token) = gateway.issue_token("agent-7", &names, "15m");

    let cipher = "show session status like 'Ssl_version'";
    for name in ["maria-require", "maria-verify"] {
        assert_eq!(
            mariadb_client(&gateway, &token, name, "select current_user()"),
            "app@%",
            "{name}"
        );
        let version = mariadb_client(&gateway, &token, name, cipher);
        assert!(
            version.starts_with("Ssl_version\tTLSv1."),
            "{name}: {version:?}"
        );
    }
    // verify-full against a CA that did not sign the server's certificate:
    // the TLS handshake fails, the stored password is never sent.
    let refused = mysql::mariadb(
        &gateway,
        "agent-7",
        &token,
        "maria-wrong-ca",
        true,
        "select 1",
    );
    assert!(!refused.status.success());
    assert!(
        err(&refused).contains("TLS handshake with the upstream"),
        "{}",
        err(&refused)
    );
    // Without TLS the server itself refuses `app` (REQUIRE SSL): the TLS
    // above was real.
    let refused = mysql::mariadb(&gateway, "agent-7", &token, "maria-plain", true, "select 1");
    assert!(!refused.status.success());
    assert!(
        err(&refused).contains("rejected the stored credential"),
        "{}",
        err(&refused)
    );

    // The ed25519 user, without and with TLS: MariaDB's client_ed25519.
    assert_eq!(
        mariadb_client(&gateway, &token, "maria-ed", "select current_user()"),
        "eduser@%"
    );
    assert_eq!(
        mariadb_client(&gateway, &token, "maria-ed-tls", "select current_user()"),
        "eduser@%"
    );
    let version = mariadb_client(&gateway, &token, "maria-ed-tls", cipher);
    assert!(version.starts_with("Ssl_version\tTLSv1."), "{version:?}");
    let plugin = server.sql("select plugin from mysql.user where user = 'eduser'");
    assert_eq!(
        plugin, "ed25519",
        "the upstream user authenticates by ed25519"
    );
    // A wrong stored password is the server's refusal, for ed25519 too.
    gateway.set_credential("ed", "eduser", "not-the-password");
    let refused = mysql::mariadb(&gateway, "agent-7", &token, "maria-ed", true, "select 1");
    assert!(!refused.status.success());
    assert!(
        err(&refused).contains("rejected the stored credential"),
        "{}",
        err(&refused)
    );
    let secrets = [server.password("app"), server.password("eduser")];
    for secret in &secrets {
        assert!(!gateway.log().contains(secret.as_str()));
    }
}

// ---------------------------------------------------------------------------
// A scripted caching_sha2_password server.

/// How the scripted server answers the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The scramble matches: fast-auth-success, OK.
    Fast,
    /// perform-full-authentication: the password must come inside TLS, or
    /// RSA-encrypted with the server's key.
    Full,
}

const SCRIPTED_USER: &str = "shauser";
const SCRIPTED_PASSWORD: &str = "sha2 correct horse battery staple";

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// One side of a scripted conversation: whole packets, read exactly (so
/// nothing past an SSLRequest is consumed before TLS starts).
struct Wire {
    stream: Box<dyn ReadWrite>,
    seq: u8,
}

impl Wire {
    fn read(&mut self) -> Option<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        self.seq = header[3].wrapping_add(1);
        let mut payload = vec![0u8; length];
        self.stream.read_exact(&mut payload).ok()?;
        Some(payload)
    }

    fn write(&mut self, payload: &[u8]) {
        let length = u32::try_from(payload.len()).unwrap().to_le_bytes();
        let mut packet = vec![length[0], length[1], length[2], self.seq];
        packet.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        let _ = self.stream.write_all(&packet);
        let _ = self.stream.flush();
    }
}

struct Scripted {
    port: u16,
    /// What the server saw, in order, per connection.
    seen: Arc<Mutex<Vec<String>>>,
}

struct ScriptedKeys {
    dir: tempfile::TempDir,
    public_pem: std::path::PathBuf,
    tls: Arc<rustls::ServerConfig>,
}

fn scripted_keys() -> ScriptedKeys {
    let dir = tempfile::Builder::new()
        .prefix("airlock-mysql-sha2-")
        .tempdir()
        .unwrap();
    let key = dir.path().join("key.pem");
    let public_pem = dir.path().join("public.pem");
    let run = |args: &[&std::ffi::OsStr]| {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "RSA".as_ref(),
        "-pkeyopt".as_ref(),
        "rsa_keygen_bits:2048".as_ref(),
        "-out".as_ref(),
        key.as_os_str(),
    ]);
    run(&[
        "pkey".as_ref(),
        "-pubout".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        public_pem.as_os_str(),
    ]);
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certified.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into()),
        )
        .unwrap();
    ScriptedKeys {
        dir,
        public_pem,
        tls: Arc::new(tls),
    }
}

/// RSAES-OAEP-DECRYPT (SHA-1), as the server does, by openssl.
fn openssl_decrypt(keys_dir: &std::path::Path, cipher: &[u8]) -> Option<Vec<u8>> {
    let input = tempfile::NamedTempFile::new_in(keys_dir).unwrap();
    std::fs::write(input.path(), cipher).unwrap();
    let output = Command::new("openssl")
        .args([
            "pkeyutl",
            "-decrypt",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-inkey",
        ])
        .arg(keys_dir.join("key.pem"))
        .arg("-in")
        .arg(input.path())
        .output()
        .unwrap();
    output.status.success().then_some(output.stdout)
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}

/// The documented fast-path scramble: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce).
fn expected_scramble(nonce: &[u8]) -> Vec<u8> {
    let stage1 = sha256(&[SCRIPTED_PASSWORD.as_bytes()]);
    let stage2 = sha256(&[&stage1]);
    let mix = sha256(&[&stage2, nonce]);
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

fn start_scripted(mode: Mode, keys: &ScriptedKeys) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&seen);
    let tls = Arc::clone(&keys.tls);
    let keys_dir = keys.dir.path().to_path_buf();
    std::thread::spawn(move || {
        for (index, tcp) in listener.incoming().enumerate() {
            let Ok(tcp) = tcp else { return };
            let seen = Arc::clone(&shared);
            let tls = Arc::clone(&tls);
            let keys_dir = keys_dir.clone();
            std::thread::spawn(move || serve(tcp, index as u32 + 1, mode, &tls, &keys_dir, &seen));
        }
    });
    Scripted { port, seen }
}

const SERVER_CAPABILITIES: Capabilities = Capabilities(0xFFFF_FFFF & !Capabilities::COMPRESS.0);

fn serve(
    tcp: TcpStream,
    connection_id: u32,
    mode: Mode,
    tls: &Arc<rustls::ServerConfig>,
    keys_dir: &std::path::Path,
    seen: &Mutex<Vec<String>>,
) {
    let note = |what: String| seen.lock().unwrap().push(what);
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut wire = Wire {
        stream: Box::new(tcp.try_clone().unwrap()),
        seq: 0,
    };
    // Printable, never NUL: the nonce as servers make it.
    let nonce: Vec<u8> = (0..20u8)
        .map(|index| b'A' + (index * 7 + connection_id as u8) % 50)
        .collect();
    let greeting = InitialHandshake {
        server_version: "8.4.3-scripted".into(),
        connection_id,
        auth_plugin_data: nonce.clone(),
        capabilities: SERVER_CAPABILITIES,
        charset: 255,
        status: ServerStatus::AUTOCOMMIT,
        auth_plugin_name: Some(auth::CACHING_SHA2_PASSWORD.into()),
    };
    wire.write(&greeting.encode().unwrap());
    let Some(mut first) = wire.read() else { return };
    let mut over_tls = false;
    if first.len() == 32 {
        // An SSLRequest: TLS on the same socket, the count goes on.
        note("ssl request".into());
        let connection = rustls::ServerConnection::new(Arc::clone(tls)).unwrap();
        let seq = wire.seq;
        wire = Wire {
            stream: Box::new(rustls::StreamOwned::new(connection, tcp)),
            seq,
        };
        over_tls = true;
        let Some(response) = wire.read() else { return };
        first = response;
    }
    let response = HandshakeResponse::decode(&first).unwrap();
    note(format!(
        "login user={} database={:?} plugin={:?}",
        response.username, response.database, response.auth_plugin_name
    ));
    let capabilities = response.capabilities & SERVER_CAPABILITIES;
    let denied = ErrPacket::new(1045, *b"28000", "Access denied for user").encode();
    if response.username != SCRIPTED_USER
        || response.auth_plugin_name.as_deref() != Some(auth::CACHING_SHA2_PASSWORD)
        || response.auth_response != expected_scramble(&nonce)
    {
        note("scramble wrong".into());
        wire.write(&denied);
        return;
    }
    note("scramble right".into());
    match mode {
        Mode::Fast => wire.write(&[0x01, auth::CACHING_SHA2_FAST_AUTH_SUCCESS]),
        Mode::Full => {
            wire.write(&[0x01, auth::CACHING_SHA2_PERFORM_FULL_AUTHENTICATION]);
            let Some(mut answer) = wire.read() else {
                note("closed before full authentication".into());
                return;
            };
            let mut cleartext = SCRIPTED_PASSWORD.as_bytes().to_vec();
            cleartext.push(0);
            if answer == [auth::CACHING_SHA2_REQUEST_PUBLIC_KEY] {
                note("public key requested".into());
                let mut more = vec![0x01];
                more.extend_from_slice(&std::fs::read(keys_dir.join("public.pem")).unwrap());
                wire.write(&more);
                let Some(next) = wire.read() else { return };
                answer = next;
            }
            let right = if over_tls {
                note("password over tls".into());
                answer == cleartext
            } else {
                note(format!("rsa {} bytes", answer.len()));
                assert!(
                    !answer
                        .windows(SCRIPTED_PASSWORD.len())
                        .any(|window| window == SCRIPTED_PASSWORD.as_bytes()),
                    "the password in cleartext on a plain connection"
                );
                let expected: Vec<u8> = cleartext
                    .iter()
                    .enumerate()
                    .map(|(index, byte)| byte ^ nonce[index % nonce.len()])
                    .collect();
                openssl_decrypt(keys_dir, &answer) == Some(expected)
            };
            if !right {
                note("password wrong".into());
                wire.write(&denied);
                return;
            }
            note("password right".into());
        }
    }
    let ok = OkPacket {
        status: ServerStatus::AUTOCOMMIT,
        ..OkPacket::default()
    };
    wire.write(&ok.encode(capabilities));
    note("logged in".into());
    // Commands: every query gets one row naming how the session logged in.
    while let Some(command) = wire.read() {
        match command.first() {
            Some(0x01) => return,
            Some(0x03) => {
                note(format!("query {}", String::from_utf8_lossy(&command[1..])));
                let value = format!("scripted {mode:?} tls={over_tls}");
                wire.write(&[0x01]);
                wire.write(
                    &ColumnDefinition::new("v", ColumnType::VAR_STRING).encode(capabilities),
                );
                let eof = [0xFE, 0, 0, 0x02, 0];
                if !capabilities.contains(Capabilities::DEPRECATE_EOF) {
                    wire.write(&eof);
                }
                wire.write(&encode_text_row([Some(value.as_bytes())]));
                if capabilities.contains(Capabilities::DEPRECATE_EOF) {
                    wire.write(&ok.encode_with_header(0xFE, capabilities));
                } else {
                    wire.write(&eof);
                }
            }
            _ => wire.write(&ok.encode(capabilities)),
        }
    }
}

fn value_of(raw: &mut Raw, sql: &str) -> String {
    let packets = raw.query(sql);
    assert!(mysql::error_of(&packets).is_none(), "{packets:?}");
    let row = packets
        .iter()
        .find_map(|(packet, payload)| match packet {
            airlock_mysql::response::ResponsePacket::TextRow { .. } => {
                Some(decode_text_row(payload, 1).unwrap()[0].unwrap().to_vec())
            }
            _ => None,
        })
        .expect("a row");
    String::from_utf8(row).unwrap()
}

#[test]
fn caching_sha2_upstream_fast_path_full_authentication_over_tls_and_rsa() {
    let keys = scripted_keys();
    let fast = start_scripted(Mode::Fast, &keys);
    let full = start_scripted(Mode::Full, &keys);
    let connection = |name: &str, port: u16, extra: &str| {
        format!(
            "  - name: {name}
    protocol: mysql
    address: 127.0.0.1:{port}
    database: shadb
    credential: sha
{extra}"
        )
    };
    let config = format!(
        "connections:\n{}{}{}{}{}",
        connection("sha-fast", fast.port, ""),
        connection("sha-fast-tls", fast.port, "    tls: require\n"),
        connection("sha-full-tls", full.port, "    tls: require\n"),
        connection(
            "sha-rsa",
            full.port,
            &format!(
                "    server_public_key: {}\n",
                keys.public_pem.to_str().unwrap()
            )
        ),
        connection("sha-no-key", full.port, ""),
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("sha", SCRIPTED_USER, SCRIPTED_PASSWORD);
    let names = [
        "sha-fast",
        "sha-fast-tls",
        "sha-full-tls",
        "sha-rsa",
        "sha-no-key",
    ];
    let (_id, token) = gateway.issue_token("agent-7", &names, "15m");
    let take = |server: &Scripted| std::mem::take(&mut *server.seen.lock().unwrap());

    // Fast path: the scramble (checked above with SHA-256) is enough.
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "sha-fast").unwrap();
    assert_eq!(value_of(&mut raw, "select v"), "scripted Fast tls=false");
    drop(raw);
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "sha-fast-tls").unwrap();
    assert_eq!(value_of(&mut raw, "select v"), "scripted Fast tls=true");
    drop(raw);
    let seen = take(&fast);
    assert_eq!(
        seen.iter().filter(|line| *line == "scramble right").count(),
        2,
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|line| line.contains("database=Some(\"shadb\")")),
        "{seen:?}"
    );

    // Full authentication inside TLS: the password, NUL-terminated.
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "sha-full-tls").unwrap();
    assert_eq!(value_of(&mut raw, "select v"), "scripted Full tls=true");
    drop(raw);
    let seen = take(&full);
    for step in [
        "ssl request",
        "scramble right",
        "password over tls",
        "password right",
        "logged in",
    ] {
        assert!(seen.iter().any(|line| line == step), "{step}: {seen:?}");
    }

    // Full authentication over RSA with the pinned key: no key request,
    // the ciphertext decrypts (openssl) to the documented plaintext.
    let mut raw = Raw::connect(&gateway, "agent-7", &token, "sha-rsa").unwrap();
    assert_eq!(value_of(&mut raw, "select v"), "scripted Full tls=false");
    drop(raw);
    let seen = take(&full);
    for step in [
        "scramble right",
        "rsa 256 bytes",
        "password right",
        "logged in",
    ] {
        assert!(seen.iter().any(|line| line == step), "{step}: {seen:?}");
    }
    assert!(
        !seen.iter().any(|line| line == "public key requested"),
        "{seen:?}"
    );

    // Plain, no pinned key: the gateway neither asks for the server's key
    // (anyone in the path could answer) nor sends the password; the client
    // hears why.
    let refused = Raw::connect(&gateway, "agent-7", &token, "sha-no-key")
        .err()
        .unwrap();
    assert!(
        refused
            .message
            .contains("needs TLS or the connection's server_public_key"),
        "{refused:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let seen = take(&full);
    assert!(
        seen.iter()
            .any(|line| line == "closed before full authentication"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|line| line.starts_with("rsa") || line == "public key requested"),
        "{seen:?}"
    );

    // A wrong stored password fails on the scramble, for each path.
    gateway.set_credential("sha", SCRIPTED_USER, "wrong");
    for name in ["sha-fast", "sha-full-tls"] {
        let refused = Raw::connect(&gateway, "agent-7", &token, name)
            .err()
            .unwrap();
        assert!(
            refused.message.contains("rejected the stored credential"),
            "{refused:?}"
        );
    }
    assert!(!gateway.log().contains(SCRIPTED_PASSWORD));
}
