//! The upstream login, sans-IO: the gateway as a client logging in to a
//! MySQL or MariaDB server. Fed the server's packets, it says what to send
//! next ([`LoginStep`]) until the server's OK or an error.
//!
//! Plugins: `mysql_native_password`, `caching_sha2_password` (fast path;
//! full authentication sends the password in cleartext over TLS only,
//! else RSA-encrypted with the server's public key: the one the caller
//! pinned, or, only when the caller allows it, the one the server sends
//! when asked), `sha256_password` (the same two ways), MariaDB
//! `client_ed25519`, and `mysql_clear_password` over TLS only; auth
//! switches between them.
//!
//! Security invariant: the password leaves in cleartext only when the
//! caller said TLS is active; a server (or anyone in the path) asking for
//! a cleartext password on a plain connection gets an error, never the
//! password. A public key the server sends on a plain connection is
//! not trusted unless the caller says so ([`LoginParams::request_public_key`]):
//! whoever is in the path could send theirs and decrypt the password.
//! Framing (sequence ids) is the caller's [`crate::PacketCodec`],
//! which continues the handshake's count.

use crate::auth::{self, AuthReply, AuthSwitchRequest};
use crate::handshake::{HandshakeResponse, InitialHandshake, SslRequest};
use crate::rsa::RsaPublicKey;
use crate::{Capabilities, ErrPacket, MySqlCodecError, OkPacket};

/// At most this many AuthSwitchRequests are followed in one login (a
/// server that keeps switching is broken or hostile).
const MAX_AUTH_SWITCHES: usize = 2;

/// What the login needs. `Debug` never shows the password.
#[derive(Clone)]
pub struct LoginParams {
    pub username: String,
    pub password: Vec<u8>,
    /// The schema to connect to (`CLIENT_CONNECT_WITH_DB`).
    pub database: Option<String>,
    /// Whether the caller will run TLS on this connection: the login then
    /// sends an SSLRequest and hands back [`LoginStep::StartTls`].
    pub tls: bool,
    /// Capabilities the gateway wants (usually its client's); the login
    /// keeps those the server has and this crate supports, and adds what
    /// the login itself needs.
    pub capabilities: Capabilities,
    pub charset: u8,
    pub max_packet_size: u32,
    pub connect_attributes: Vec<(String, String)>,
    /// The server's RSA public key (PEM), if configured (pinned): full
    /// authentication on a plain connection encrypts the password with it.
    pub server_public_key: Option<Vec<u8>>,
    /// Without a pinned key on a plain connection: ask the server for its
    /// key and trust what comes back (MySQL's `--get-server-public-key`).
    /// Off by default: anyone in the path could answer with their own key
    /// and decrypt the password; the login then fails with
    /// [`LoginError::PublicKeyUnavailable`] instead.
    pub request_public_key: bool,
    /// 20 random bytes for RSA-OAEP (the codec has no entropy source).
    pub rsa_oaep_seed: [u8; 20],
}

impl std::fmt::Debug for LoginParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginParams")
            .field("username", &self.username)
            .field("password", &"<secret>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl LoginParams {
    /// What a 4.1+ client asks for by default.
    pub const DEFAULT_CAPABILITIES: Capabilities = Capabilities(
        Capabilities::LONG_PASSWORD.0
            | Capabilities::LONG_FLAG.0
            | Capabilities::PROTOCOL_41.0
            | Capabilities::TRANSACTIONS.0
            | Capabilities::SECURE_CONNECTION.0
            | Capabilities::MULTI_RESULTS.0
            | Capabilities::PS_MULTI_RESULTS.0
            | Capabilities::PLUGIN_AUTH.0
            | Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA.0
            | Capabilities::CONNECT_ATTRS.0
            | Capabilities::DEPRECATE_EOF.0,
    );

    /// Parameters with the default capabilities and utf8mb4.
    pub fn new(username: impl Into<String>, password: impl Into<Vec<u8>>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            database: None,
            tls: false,
            capabilities: Self::DEFAULT_CAPABILITIES,
            charset: crate::CHARSET_UTF8MB4_GENERAL_CI,
            max_packet_size: crate::DEFAULT_MAX_PACKET_BYTES as u32,
            connect_attributes: Vec::new(),
            server_public_key: None,
            request_public_key: false,
            rsa_oaep_seed: [0; 20],
        }
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this payload as the next packet, then wait for the server.
    Send(Vec<u8>),
    /// Send this SSLRequest, run the TLS handshake on the connection, then
    /// call [`UpstreamLogin::tls_established`].
    StartTls(Vec<u8>),
    /// Nothing to send; feed the server's next packet.
    Wait,
    /// Logged in.
    Done(Box<LoginOutcome>),
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The capabilities in force on this connection.
    pub capabilities: Capabilities,
    /// The server's handshake (version, connection id, status).
    pub server: InitialHandshake,
    /// The plugin that authenticated.
    pub plugin: String,
    pub ok: OkPacket,
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Codec(#[from] MySqlCodecError),
    /// The server refused (wrong password, unknown user, too many
    /// connections …).
    #[error("server refused the login: {} ({}) {}", .0.code, .0.sql_state_str(), .0.message)]
    Server(ErrPacket),
    #[error("TLS was required but the server does not offer it")]
    TlsUnavailable,
    #[error("the server does not speak protocol 4.1")]
    OldServer,
    #[error("unsupported authentication plugin {0:?}")]
    UnsupportedPlugin(String),
    /// A cleartext password was asked for on a connection without TLS.
    #[error("{plugin} would send the password in cleartext without TLS")]
    CleartextWithoutTls { plugin: &'static str },
    #[error("unexpected {0} during login")]
    Unexpected(&'static str),
    #[error("too many authentication plugin switches")]
    TooManySwitches,
    /// Full authentication on a plain connection without a pinned public
    /// key (and fetching the server's was not allowed).
    #[error("{plugin} needs full authentication: without TLS that needs the server's RSA public key, and none is configured")]
    PublicKeyUnavailable { plugin: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    Native,
    CachingSha2,
    Sha256,
    Ed25519,
    Clear,
}

impl Plugin {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            auth::MYSQL_NATIVE_PASSWORD => Self::Native,
            auth::CACHING_SHA2_PASSWORD => Self::CachingSha2,
            auth::SHA256_PASSWORD => Self::Sha256,
            auth::CLIENT_ED25519 => Self::Ed25519,
            auth::MYSQL_CLEAR_PASSWORD => Self::Clear,
            _ => return None,
        })
    }

    /// The challenge bytes the plugin uses from the server's data: the
    /// 20-byte scramble (without its NUL), or MariaDB's 32-byte nonce.
    fn nonce_length(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            _ => 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Native => auth::MYSQL_NATIVE_PASSWORD,
            Self::CachingSha2 => auth::CACHING_SHA2_PASSWORD,
            Self::Sha256 => auth::SHA256_PASSWORD,
            Self::Ed25519 => auth::CLIENT_ED25519,
            Self::Clear => auth::MYSQL_CLEAR_PASSWORD,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHandshake,
    AwaitTls,
    /// Waiting for OK / ERR / switch / more data.
    AwaitReply,
    /// Asked for the RSA public key.
    AwaitPublicKey,
    Finished,
}

/// The upstream login state machine.
#[derive(Debug)]
pub struct UpstreamLogin {
    params: LoginParams,
    state: State,
    tls_active: bool,
    capabilities: Capabilities,
    server: Option<InitialHandshake>,
    plugin: Plugin,
    nonce: Vec<u8>,
    switches: usize,
}

impl UpstreamLogin {
    pub fn new(params: LoginParams) -> Self {
        Self {
            params,
            state: State::AwaitHandshake,
            tls_active: false,
            capabilities: Capabilities::empty(),
            server: None,
            plugin: Plugin::Native,
            nonce: Vec::new(),
            switches: 0,
        }
    }

    /// The capabilities agreed (after the handshake).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Whether the login has ended (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Feeds the server's first packet (its Initial Handshake).
    pub fn handshake(&mut self, payload: &[u8]) -> Result<LoginStep, LoginError> {
        self.guarded(State::AwaitHandshake, |login| login.on_handshake(payload))
    }

    /// Tells the login that the TLS handshake completed.
    pub fn tls_established(&mut self) -> Result<LoginStep, LoginError> {
        self.guarded(State::AwaitTls, |login| {
            login.tls_active = true;
            login.handshake_response()
        })
    }

    /// Feeds the server's next packet during authentication.
    pub fn receive(&mut self, payload: &[u8]) -> Result<LoginStep, LoginError> {
        let state = self.state;
        if !matches!(state, State::AwaitReply | State::AwaitPublicKey) {
            self.state = State::Finished;
            return Err(LoginError::Unexpected("packet"));
        }
        self.guarded(state, |login| login.on_reply(payload))
    }

    /// Runs `step` in `expected` state; any error finishes the login.
    fn guarded(
        &mut self,
        expected: State,
        step: impl FnOnce(&mut Self) -> Result<LoginStep, LoginError>,
    ) -> Result<LoginStep, LoginError> {
        if self.state != expected {
            self.state = State::Finished;
            return Err(LoginError::Unexpected("call"));
        }
        let result = step(self);
        if result.is_err() || matches!(result, Ok(LoginStep::Done(_))) {
            self.state = State::Finished;
        }
        result
    }

    fn on_handshake(&mut self, payload: &[u8]) -> Result<LoginStep, LoginError> {
        if payload.first() == Some(&crate::generic::ERR_HEADER) {
            return Err(LoginError::Server(ErrPacket::decode(payload)?));
        }
        let handshake = InitialHandshake::decode(payload)?;
        let server = handshake.capabilities;
        if !server.contains(Capabilities::PROTOCOL_41) {
            return Err(LoginError::OldServer);
        }
        let required = Capabilities::PROTOCOL_41 | Capabilities::SECURE_CONNECTION;
        let mut wanted = self.params.capabilities | required | Capabilities::PLUGIN_AUTH;
        // Only what the session configured: no database means no flag.
        wanted = wanted & !(Capabilities::CONNECT_WITH_DB | Capabilities::SSL);
        if self.params.database.is_some() {
            wanted = wanted | Capabilities::CONNECT_WITH_DB;
        }
        if self.params.tls {
            if !server.contains(Capabilities::SSL) {
                return Err(LoginError::TlsUnavailable);
            }
            wanted = wanted | Capabilities::SSL;
        }
        let mut agreed = wanted & server & Capabilities::SUPPORTED;
        if !server.contains(Capabilities::LONG_PASSWORD) {
            // A MariaDB server: extended capabilities count only if we
            // announce ourselves the MariaDB way too (CLIENT_MYSQL clear).
            if wanted.contains(Capabilities::LONG_PASSWORD) {
                agreed = Capabilities(agreed.0 & 0xFFFF_FFFF);
            }
        } else {
            agreed = agreed | (wanted & Capabilities::LONG_PASSWORD);
        }
        self.capabilities = agreed;
        self.nonce = handshake.auth_plugin_data.clone();
        self.plugin = handshake
            .auth_plugin_name
            .as_deref()
            .and_then(Plugin::from_name)
            // An unknown default plugin: answer with ours; the server
            // switches us if it needs another.
            .unwrap_or(Plugin::Native);
        if self.plugin == Plugin::Clear && !self.params.tls {
            // Do not even start: the first response would be cleartext.
            self.plugin = Plugin::Native;
        }
        self.server = Some(handshake);
        if self.params.tls {
            self.state = State::AwaitTls;
            let request = SslRequest {
                capabilities: agreed,
                max_packet_size: self.params.max_packet_size,
                charset: self.params.charset,
            };
            return Ok(LoginStep::StartTls(request.encode()));
        }
        self.handshake_response()
    }

    fn handshake_response(&mut self) -> Result<LoginStep, LoginError> {
        let auth_response = self.first_response()?;
        let capabilities = self.capabilities;
        let response = HandshakeResponse {
            capabilities,
            max_packet_size: self.params.max_packet_size,
            charset: self.params.charset,
            username: self.params.username.clone(),
            auth_response,
            database: self.params.database.clone(),
            auth_plugin_name: Some(self.plugin.name().to_owned()),
            connect_attributes: if capabilities.contains(Capabilities::CONNECT_ATTRS) {
                self.params.connect_attributes.clone()
            } else {
                Vec::new()
            },
            zstd_compression_level: None,
        };
        self.state = if self.state == State::AwaitPublicKey {
            State::AwaitPublicKey
        } else {
            State::AwaitReply
        };
        Ok(LoginStep::Send(response.encode()?))
    }

    /// The response to the current plugin's challenge (`self.nonce`).
    fn first_response(&mut self) -> Result<Vec<u8>, LoginError> {
        let password = &self.params.password;
        let nonce = &self.nonce;
        Ok(match self.plugin {
            Plugin::Native => auth::native_password_scramble(password, nonce),
            Plugin::CachingSha2 => auth::caching_sha2_scramble(password, nonce),
            Plugin::Ed25519 => auth::ed25519_signature(password, nonce).to_vec(),
            Plugin::Clear => {
                if !self.tls_active {
                    return Err(LoginError::CleartextWithoutTls {
                        plugin: auth::MYSQL_CLEAR_PASSWORD,
                    });
                }
                let mut bytes = password.clone();
                bytes.push(0);
                bytes
            }
            Plugin::Sha256 => {
                if password.is_empty() {
                    vec![0]
                } else {
                    match self.full_authentication()? {
                        Some(bytes) => bytes,
                        None => vec![auth::SHA256_REQUEST_PUBLIC_KEY],
                    }
                }
            }
        })
    }

    /// The password for full authentication: cleartext over TLS, RSA with
    /// a known key; `None` (after moving to `AwaitPublicKey`) when the key
    /// must be requested first.
    fn full_authentication(&mut self) -> Result<Option<Vec<u8>>, LoginError> {
        if self.tls_active {
            let mut bytes = self.params.password.clone();
            bytes.push(0);
            return Ok(Some(bytes));
        }
        match self.params.server_public_key.clone() {
            Some(pem) => self.encrypt_with(&pem).map(Some),
            None if self.params.request_public_key => {
                self.state = State::AwaitPublicKey;
                Ok(None)
            }
            None => Err(LoginError::PublicKeyUnavailable {
                plugin: self.plugin.name(),
            }),
        }
    }

    fn encrypt_with(&self, pem: &[u8]) -> Result<Vec<u8>, LoginError> {
        let key = RsaPublicKey::from_pem(pem)?;
        let message = auth::xor_password_with_nonce(&self.params.password, &self.nonce);
        Ok(key.encrypt_oaep(&message, &self.params.rsa_oaep_seed)?)
    }

    fn on_reply(&mut self, payload: &[u8]) -> Result<LoginStep, LoginError> {
        if self.state == State::AwaitPublicKey {
            if let Some(&crate::generic::ERR_HEADER) = payload.first() {
                return Err(LoginError::Server(ErrPacket::decode(payload)?));
            }
            let pem = auth::decode_auth_more_data(payload)?;
            let encrypted = self.encrypt_with(pem)?;
            self.state = State::AwaitReply;
            return Ok(LoginStep::Send(encrypted));
        }
        match auth::decode_auth_reply(payload, self.capabilities)? {
            AuthReply::Ok(ok) => {
                let server = self
                    .server
                    .clone()
                    .ok_or(LoginError::Unexpected("OK before the handshake"))?;
                Ok(LoginStep::Done(Box::new(LoginOutcome {
                    capabilities: self.capabilities,
                    server,
                    plugin: self.plugin.name().to_owned(),
                    ok,
                })))
            }
            AuthReply::Err(err) => Err(LoginError::Server(err)),
            AuthReply::Switch(switch) => self.on_switch(switch),
            AuthReply::MoreData(data) => self.on_more_data(&data),
        }
    }

    fn on_switch(&mut self, switch: AuthSwitchRequest) -> Result<LoginStep, LoginError> {
        self.switches += 1;
        if self.switches > MAX_AUTH_SWITCHES {
            return Err(LoginError::TooManySwitches);
        }
        let plugin = Plugin::from_name(&switch.plugin_name)
            .ok_or_else(|| LoginError::UnsupportedPlugin(switch.plugin_name.clone()))?;
        self.plugin = plugin;
        let mut nonce = switch.plugin_data;
        nonce.truncate(plugin.nonce_length());
        self.nonce = nonce;
        // sha256_password without a key moves to AwaitPublicKey here.
        Ok(LoginStep::Send(self.first_response()?))
    }

    fn on_more_data(&mut self, data: &[u8]) -> Result<LoginStep, LoginError> {
        match (self.plugin, data) {
            (Plugin::CachingSha2, [auth::CACHING_SHA2_FAST_AUTH_SUCCESS]) => Ok(LoginStep::Wait),
            (Plugin::CachingSha2, [auth::CACHING_SHA2_PERFORM_FULL_AUTHENTICATION]) => {
                match self.full_authentication()? {
                    Some(bytes) => Ok(LoginStep::Send(bytes)),
                    None => Ok(LoginStep::Send(vec![auth::CACHING_SHA2_REQUEST_PUBLIC_KEY])),
                }
            }
            _ => Err(LoginError::Unexpected("auth more data")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::OK_HEADER;

    fn server_handshake(plugin: &str, capabilities: Capabilities) -> Vec<u8> {
        InitialHandshake {
            server_version: "8.0.36".into(),
            connection_id: 7,
            auth_plugin_data: b"ABCDEFGHIJKLMNOPQRST".to_vec(),
            capabilities,
            charset: 45,
            status: crate::ServerStatus::AUTOCOMMIT,
            auth_plugin_name: Some(plugin.into()),
        }
        .encode()
        .unwrap()
    }

    const SERVER: Capabilities = Capabilities(0xFFFF_FFFF & !Capabilities::COMPRESS.0);
    const OK: &[u8] = &[OK_HEADER, 0, 0, 2, 0, 0, 0];

    fn params() -> LoginParams {
        let mut params = LoginParams::new("app", b"secret".to_vec());
        params.database = Some("appdb".into());
        params
    }

    fn sent(step: LoginStep) -> Vec<u8> {
        match step {
            LoginStep::Send(bytes) => bytes,
            other => panic!("expected Send, got {other:?}"),
        }
    }

    #[test]
    fn native_password_login() {
        let mut login = UpstreamLogin::new(params());
        let response = sent(
            login
                .handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, SERVER))
                .unwrap(),
        );
        let response = HandshakeResponse::decode(&response).unwrap();
        assert_eq!(response.username, "app");
        assert_eq!(response.database.as_deref(), Some("appdb"));
        assert_eq!(
            response.auth_response,
            auth::native_password_scramble(b"secret", b"ABCDEFGHIJKLMNOPQRST")
        );
        assert!(!response.capabilities.contains(Capabilities::SSL));
        assert!(!response.capabilities.contains(Capabilities::COMPRESS));
        let LoginStep::Done(outcome) = login.receive(OK).unwrap() else {
            panic!()
        };
        assert_eq!(outcome.plugin, auth::MYSQL_NATIVE_PASSWORD);
        assert_eq!(outcome.server.connection_id, 7);
        assert!(login.is_finished());
        assert!(login.receive(OK).is_err());
    }

    #[test]
    fn tls_is_started_after_the_ssl_request() {
        let mut p = params();
        p.tls = true;
        let mut login = UpstreamLogin::new(p);
        let step = login
            .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
            .unwrap();
        let LoginStep::StartTls(request) = step else {
            panic!("{step:?}")
        };
        assert!(SslRequest::decode(&request)
            .unwrap()
            .capabilities
            .contains(Capabilities::SSL));
        assert!(login.receive(OK).is_err(), "no packet before TLS is up");
        let mut p = params();
        p.tls = true;
        let mut login = UpstreamLogin::new(p);
        login
            .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
            .unwrap();
        let response = sent(login.tls_established().unwrap());
        assert!(HandshakeResponse::decode(&response)
            .unwrap()
            .capabilities
            .contains(Capabilities::SSL));
        // Full authentication over TLS: the password, NUL-terminated.
        assert_eq!(sent(login.receive(b"\x01\x04").unwrap()), b"secret\0");
        assert!(matches!(login.receive(OK), Ok(LoginStep::Done(_))));
        // A server without TLS cannot be asked for it.
        let mut p = params();
        p.tls = true;
        let no_ssl = Capabilities(SERVER.0 & !Capabilities::SSL.0);
        assert_eq!(
            UpstreamLogin::new(p).handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, no_ssl)),
            Err(LoginError::TlsUnavailable)
        );
    }

    #[test]
    fn caching_sha2_fast_path() {
        let mut login = UpstreamLogin::new(params());
        let response = sent(
            login
                .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
                .unwrap(),
        );
        assert_eq!(
            HandshakeResponse::decode(&response).unwrap().auth_response,
            auth::caching_sha2_scramble(b"secret", b"ABCDEFGHIJKLMNOPQRST")
        );
        assert_eq!(login.receive(b"\x01\x03").unwrap(), LoginStep::Wait);
        assert!(matches!(login.receive(OK), Ok(LoginStep::Done(_))));
    }

    #[test]
    fn cleartext_is_refused_without_tls() {
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, SERVER))
            .unwrap();
        let switch = AuthSwitchRequest {
            plugin_name: auth::MYSQL_CLEAR_PASSWORD.into(),
            plugin_data: Vec::new(),
        };
        assert_eq!(
            login.receive(&switch.encode().unwrap()),
            Err(LoginError::CleartextWithoutTls {
                plugin: auth::MYSQL_CLEAR_PASSWORD
            })
        );
        // caching_sha2 full authentication without TLS and without a
        // pinned key: nothing is sent, the login fails.
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
            .unwrap();
        assert_eq!(
            login.receive(b"\x01\x04"),
            Err(LoginError::PublicKeyUnavailable {
                plugin: auth::CACHING_SHA2_PASSWORD
            })
        );
        // Allowed to ask: it asks for the key, never sends the password.
        let mut p = params();
        p.request_public_key = true;
        let mut login = UpstreamLogin::new(p);
        login
            .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
            .unwrap();
        assert_eq!(sent(login.receive(b"\x01\x04").unwrap()), vec![0x02]);
        assert!(login.receive(b"\x01not a pem").is_err());
    }

    #[test]
    fn switch_to_ed25519_and_switch_limits() {
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, SERVER))
            .unwrap();
        // A nonce ending in a zero byte is used whole.
        let mut nonce = [7u8; 32];
        nonce[31] = 0;
        let switch = AuthSwitchRequest {
            plugin_name: auth::CLIENT_ED25519.into(),
            plugin_data: nonce.to_vec(),
        };
        let signature = sent(login.receive(&switch.encode().unwrap()).unwrap());
        assert_eq!(
            signature,
            auth::ed25519_signature(b"secret", &nonce).to_vec()
        );
        let again = sent(login.receive(&switch.encode().unwrap()).unwrap());
        assert_eq!(again, signature);
        assert_eq!(
            login.receive(&switch.encode().unwrap()),
            Err(LoginError::TooManySwitches)
        );
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, SERVER))
            .unwrap();
        let unknown = AuthSwitchRequest {
            plugin_name: "dialog".into(),
            plugin_data: Vec::new(),
        };
        assert_eq!(
            login.receive(&unknown.encode().unwrap()),
            Err(LoginError::UnsupportedPlugin("dialog".into()))
        );
    }

    #[test]
    fn switch_to_native_uses_the_scramble_without_its_nul() {
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::CACHING_SHA2_PASSWORD, SERVER))
            .unwrap();
        // As servers send it: plugin name NUL, 20-byte scramble, NUL.
        let switch = b"\xfemysql_native_password\0zyxwvutsrqponmlkjihg\0";
        assert_eq!(
            sent(login.receive(switch).unwrap()),
            auth::native_password_scramble(b"secret", b"zyxwvutsrqponmlkjihg")
        );
        assert!(
            matches!(login.receive(OK), Ok(LoginStep::Done(outcome)) if outcome.plugin == auth::MYSQL_NATIVE_PASSWORD)
        );
    }

    #[test]
    fn server_errors_end_the_login() {
        let mut login = UpstreamLogin::new(params());
        assert!(matches!(
            login.handshake(b"\xff\x10\x04Too many connections"),
            Err(LoginError::Server(ErrPacket { code: 1040, .. }))
        ));
        let mut login = UpstreamLogin::new(params());
        login
            .handshake(&server_handshake(auth::MYSQL_NATIVE_PASSWORD, SERVER))
            .unwrap();
        let denied = ErrPacket::new(1045, *b"28000", "Access denied").encode();
        let error = login.receive(&denied).unwrap_err();
        assert!(error.to_string().contains("1045 (28000) Access denied"));
        assert!(!format!("{:?}", LoginParams::new("app", "pa55word")).contains("pa55word"));
    }
}
