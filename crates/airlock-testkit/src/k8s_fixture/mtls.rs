//! The fixture behind mutual TLS, as an API server that authenticates its
//! clients by certificate: a TLS front on its own port whose server
//! certificate and accepted client certificates come from a throwaway CA
//! ([`ClientCertificates`]). A connection without a client certificate
//! the CA signed fails its handshake and reaches nothing; an accepted one
//! has its request passed to the fixture marked as certificate-
//! authenticated (a header with a per-fixture secret only the front
//! knows; a client's own copy is removed). Plain requests only (the
//! request head, a `Content-Length` body, the response until the fixture
//! closes): no upgrades.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The header the front adds for a certificate-authenticated request.
pub const CERTIFICATE_HEADER: &str = "x-fixture-client-certificate";

/// The throwaway CA's PEM files: what the fixture trusts and what a
/// client presents.
#[derive(Clone)]
pub struct ClientCertificates {
    /// The CA (it signed the fixture's server certificate too).
    pub ca_pem: String,
    /// A client certificate the fixture accepts, and its key.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    ca: Arc<(rcgen::Certificate, KeyPair)>,
}

impl ClientCertificates {
    fn new() -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kube fixture CA");
        let ca = params.self_signed(&ca_key).expect("the CA certificate");
        let mut certificates = Self {
            ca_pem: ca.pem(),
            client_cert_pem: String::new(),
            client_key_pem: String::new(),
            ca: Arc::new((ca, ca_key)),
        };
        let (cert, key) = certificates.another_client("airlock-gateway");
        certificates.client_cert_pem = cert;
        certificates.client_key_pem = key;
        certificates
    }

    /// Another client certificate the CA signs (a rotation's new one):
    /// (certificate PEM, key PEM).
    pub fn another_client(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("a client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (ca, ca_key) = &*self.ca;
        let cert = params
            .signed_by(&key, ca, ca_key)
            .expect("a client certificate");
        (cert.pem(), key.serialize_pem())
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let (ca, ca_key) = &*self.ca;
        let key = KeyPair::generate().expect("a server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server parameters");
        let cert = params
            .signed_by(&key, ca, ca_key)
            .expect("a server certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("the CA as a root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("a client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("the server certificate");
        Arc::new(config)
    }
}

/// Starts the TLS front for the fixture at `inner` (`host:port`); its port.
pub fn start_front(certificates: &ClientCertificates, inner: String, marker: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fixture's TLS front");
    let port = listener.local_addr().expect("front address").port();
    let config = certificates.server_config();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            let inner = inner.clone();
            let marker = marker.clone();
            std::thread::spawn(move || front(config, stream, &inner, &marker));
        }
    });
    port
}

/// One connection: handshake (a client certificate required), the request
/// passed on marked, the answer passed back.
fn front(config: Arc<rustls::ServerConfig>, tcp: TcpStream, inner: &str, marker: &str) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if received.len() > 64 * 1024 {
            return;
        }
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut out = String::new();
    out.push_str(lines.next().unwrap_or(""));
    out.push_str(&format!("\r\n{CERTIFICATE_HEADER}: {marker}\r\n"));
    let mut length = 0usize;
    for line in lines.filter(|line| !line.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with(CERTIFICATE_HEADER) {
            continue;
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let Ok(mut upstream) = TcpStream::connect(inner) else {
        return;
    };
    let mut body = received[head_end..].to_vec();
    while body.len() < length {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => body.extend_from_slice(&buffer[..read]),
        }
    }
    if upstream.write_all(out.as_bytes()).is_err() || upstream.write_all(&body).is_err() {
        return;
    }
    loop {
        match upstream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if tls
                    .write_all(&buffer[..read])
                    .and_then(|()| tls.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

pub(super) fn certificates() -> ClientCertificates {
    ClientCertificates::new()
}
