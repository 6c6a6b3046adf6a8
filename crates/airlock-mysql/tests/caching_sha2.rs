//! caching_sha2_password and sha256_password have no server here (MariaDB
//! does not implement them), so the login is driven with server packets
//! built by hand and its output checked against values computed in the
//! test from the documented formulas: the fast-path scramble with SHA-256,
//! and the RSA path decrypted by an independent implementation (the
//! `openssl` command line tool, OAEP padding) with a key made for the run.

// Test glue outside #[test] functions: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_mysql::auth::{self, AuthSwitchRequest};
use airlock_mysql::handshake::{HandshakeResponse, InitialHandshake};
use airlock_mysql::login::{LoginError, LoginParams, LoginStep, UpstreamLogin};
use airlock_mysql::rsa::RsaPublicKey;
use airlock_mysql::{Capabilities, ServerStatus};
use sha2::{Digest, Sha256};
use std::process::Command;

const NONCE: &[u8; 20] = b"0123456789abcdefghij";
const OK: &[u8] = &[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

fn handshake(plugin: &str) -> Vec<u8> {
    InitialHandshake {
        server_version: "8.4.3".into(),
        connection_id: 9,
        auth_plugin_data: NONCE.to_vec(),
        capabilities: Capabilities(0xFFFF_FFFF & !Capabilities::COMPRESS.0),
        charset: 255,
        status: ServerStatus::AUTOCOMMIT,
        auth_plugin_name: Some(plugin.into()),
    }
    .encode()
    .unwrap()
}

fn sent(step: LoginStep) -> Vec<u8> {
    match step {
        LoginStep::Send(bytes) => bytes,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// An RSA key pair made by openssl for this run: (dir, public PEM).
fn key_pair() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let public = dir.path().join("public.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success());
    let status = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(status.success());
    let pem = std::fs::read(&public).unwrap();
    (dir, pem)
}

/// RSAES-OAEP-DECRYPT (SHA-1) by openssl.
fn openssl_decrypt(dir: &tempfile::TempDir, cipher: &[u8]) -> Vec<u8> {
    let input = dir.path().join("cipher.bin");
    std::fs::write(&input, cipher).unwrap();
    let output = Command::new("openssl")
        .args([
            "pkeyutl",
            "-decrypt",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-inkey",
        ])
        .arg(dir.path().join("key.pem"))
        .arg("-in")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The documented plaintext: `(password + NUL) XOR nonce`, repeating.
fn expected_plaintext(password: &[u8]) -> Vec<u8> {
    let mut bytes = password.to_vec();
    bytes.push(0);
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte ^= NONCE[index % NONCE.len()];
    }
    bytes
}

#[test]
fn fast_path_scramble_is_the_documented_formula() {
    let password = b"p@ss-w0rd";
    // XOR(SHA256(password), SHA256(SHA256(SHA256(password)), nonce))
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(NONCE);
    let mask = hasher.finalize();
    let expected: Vec<u8> = stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
    assert_eq!(auth::caching_sha2_scramble(password, NONCE), expected);

    let mut login = UpstreamLogin::new(LoginParams::new("app", password.to_vec()));
    let response = sent(
        login
            .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
            .unwrap(),
    );
    let response = HandshakeResponse::decode(&response).unwrap();
    assert_eq!(response.auth_response, expected);
    assert_eq!(
        response.auth_plugin_name.as_deref(),
        Some(auth::CACHING_SHA2_PASSWORD)
    );
    assert_eq!(login.receive(b"\x01\x03").unwrap(), LoginStep::Wait);
    let LoginStep::Done(outcome) = login.receive(OK).unwrap() else {
        panic!()
    };
    assert_eq!(outcome.plugin, auth::CACHING_SHA2_PASSWORD);
}

#[test]
fn full_authentication_requests_the_key_and_encrypts_with_it() {
    let (dir, pem) = key_pair();
    let password = b"correct horse battery staple";
    let mut params = LoginParams::new("app", password.to_vec());
    params.rsa_oaep_seed = [0x5a; 20];
    params.request_public_key = true;
    let mut login = UpstreamLogin::new(params);
    login
        .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
        .unwrap();
    // perform-full-authentication on a plain connection: ask for the key.
    assert_eq!(sent(login.receive(b"\x01\x04").unwrap()), [0x02]);
    let mut more_data = vec![0x01];
    more_data.extend_from_slice(&pem);
    let cipher = sent(login.receive(&more_data).unwrap());
    assert_eq!(cipher.len(), 256);
    assert!(!cipher.windows(password.len()).any(|w| w == password));
    assert_eq!(openssl_decrypt(&dir, &cipher), expected_plaintext(password));
    assert!(matches!(login.receive(OK), Ok(LoginStep::Done(_))));

    // A configured key: no request, the encrypted password right away.
    let mut params = LoginParams::new("app", password.to_vec());
    params.server_public_key = Some(pem.clone());
    params.rsa_oaep_seed = [0x11; 20];
    let mut login = UpstreamLogin::new(params);
    login
        .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
        .unwrap();
    let cipher = sent(login.receive(b"\x01\x04").unwrap());
    assert_eq!(openssl_decrypt(&dir, &cipher), expected_plaintext(password));

    // OAEP is randomised: another seed, another ciphertext, same plaintext.
    let key = RsaPublicKey::from_pem(&pem).unwrap();
    let message = expected_plaintext(password);
    let first = key.encrypt_oaep(&message, &[1; 20]).unwrap();
    let second = key.encrypt_oaep(&message, &[2; 20]).unwrap();
    assert_ne!(first, second);
    assert_eq!(openssl_decrypt(&dir, &second), message);
    // The longest message a 2048-bit key takes with OAEP-SHA1: 214 bytes.
    assert!(key.encrypt_oaep(&[7; 214], &[3; 20]).is_ok());
    assert!(key.encrypt_oaep(&[7; 215], &[3; 20]).is_err());
}

#[test]
fn sha256_password_switch_requests_the_key() {
    let (dir, pem) = key_pair();
    let mut params = LoginParams::new("app", b"pw".to_vec());
    params.request_public_key = true;
    let mut login = UpstreamLogin::new(params);
    login
        .handshake(&handshake(auth::MYSQL_NATIVE_PASSWORD))
        .unwrap();
    let switch = AuthSwitchRequest {
        plugin_name: auth::SHA256_PASSWORD.into(),
        plugin_data: NONCE.to_vec(),
    };
    assert_eq!(
        sent(login.receive(&switch.encode().unwrap()).unwrap()),
        [0x01]
    );
    let mut more_data = vec![0x01];
    more_data.extend_from_slice(&pem);
    let cipher = sent(login.receive(&more_data).unwrap());
    assert_eq!(openssl_decrypt(&dir, &cipher), expected_plaintext(b"pw"));
    assert!(matches!(login.receive(OK), Ok(LoginStep::Done(_))));
}

#[test]
fn a_server_cannot_get_the_password_in_cleartext_without_tls() {
    let mut login = UpstreamLogin::new(LoginParams::new("app", b"pw".to_vec()));
    login
        .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
        .unwrap();
    let switch = AuthSwitchRequest {
        plugin_name: auth::MYSQL_CLEAR_PASSWORD.into(),
        plugin_data: Vec::new(),
    };
    assert!(matches!(
        login.receive(&switch.encode().unwrap()),
        Err(LoginError::CleartextWithoutTls { .. })
    ));
    // Nor by announcing mysql_clear_password as the default plugin.
    let mut login = UpstreamLogin::new(LoginParams::new("app", b"pw".to_vec()));
    let response = sent(
        login
            .handshake(&handshake(auth::MYSQL_CLEAR_PASSWORD))
            .unwrap(),
    );
    let response = HandshakeResponse::decode(&response).unwrap();
    assert_eq!(
        response.auth_plugin_name.as_deref(),
        Some(auth::MYSQL_NATIVE_PASSWORD)
    );
    assert_ne!(response.auth_response, b"pw\0");
    // Without a pinned key, and not allowed to ask for the server's, full
    // authentication sends nothing.
    let mut login = UpstreamLogin::new(LoginParams::new("app", b"pw".to_vec()));
    login
        .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
        .unwrap();
    assert!(matches!(
        login.receive(b"\x01\x04"),
        Err(LoginError::PublicKeyUnavailable { .. })
    ));
    // A bad key in AuthMoreData is an error, not a cleartext fallback.
    let mut params = LoginParams::new("app", b"pw".to_vec());
    params.request_public_key = true;
    let mut login = UpstreamLogin::new(params);
    login
        .handshake(&handshake(auth::CACHING_SHA2_PASSWORD))
        .unwrap();
    login.receive(b"\x01\x04").unwrap();
    assert!(login
        .receive(b"\x01-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        .is_err());
    assert!(login.is_finished());
}
