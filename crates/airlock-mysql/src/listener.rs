//! The client-facing login, sans-IO: the gateway as a MySQL server
//! receiving an agent's airlock token. It greets, upgrades to TLS when the
//! client asks ([`ListenerStep::StartTls`]), and steers every client to a
//! plugin that hands over the token itself:
//! - `caching_sha2_password` (what MySQL 8 clients and libmariadb speak
//!   unprompted): the gateway answers "perform full authentication", and a
//!   client on TLS then sends its password (the token) in cleartext;
//! - `mysql_clear_password`, when the client chose it, or when plaintext
//!   connections are allowed and there is no TLS (a client must opt in to
//!   send cleartext without TLS).
//!
//! Clients that started with another plugin (native, ed25519) are switched
//! to `caching_sha2_password`. The step ends with [`ClientCredentials`]:
//! checking the token, and answering OK or ERR, is the gateway's.
//!
//! Security invariant: without TLS, and unless the caller allowed
//! plaintext, no step asks the client for its token; the greeting's
//! scramble is only used for the switch, never checked (the token is
//! checked by the core instead).

use crate::auth::{self, AuthSwitchRequest};
use crate::handshake::{decode_client_hello, ClientHello, HandshakeResponse, InitialHandshake};
use crate::{Capabilities, MySqlCodecError, ServerStatus};

/// What the listener announces and allows.
#[derive(Debug, Clone)]
pub struct ListenerParams {
    /// The version string clients see (e.g. `8.0.36-airlock`).
    pub server_version: String,
    pub connection_id: u32,
    /// 20 random bytes, none of them NUL (the caller's entropy).
    pub scramble: [u8; 20],
    /// Capabilities offered; cut to [`Capabilities::SUPPORTED`].
    pub capabilities: Capabilities,
    /// Whether TLS can be started (a certificate is configured).
    pub tls_available: bool,
    /// Whether a client may log in without TLS (the token then travels in
    /// cleartext: development setups only).
    pub plaintext_allowed: bool,
    pub charset: u8,
    pub status: ServerStatus,
}

impl ListenerParams {
    /// What the listener offers by default: a 4.1+ server with plugin
    /// authentication, multi-results and `CLIENT_DEPRECATE_EOF`.
    pub const DEFAULT_CAPABILITIES: Capabilities = Capabilities(
        Capabilities::LONG_PASSWORD.0
            | Capabilities::FOUND_ROWS.0
            | Capabilities::LONG_FLAG.0
            | Capabilities::CONNECT_WITH_DB.0
            | Capabilities::PROTOCOL_41.0
            | Capabilities::TRANSACTIONS.0
            | Capabilities::SECURE_CONNECTION.0
            | Capabilities::MULTI_STATEMENTS.0
            | Capabilities::MULTI_RESULTS.0
            | Capabilities::PS_MULTI_RESULTS.0
            | Capabilities::PLUGIN_AUTH.0
            | Capabilities::CONNECT_ATTRS.0
            | Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA.0
            | Capabilities::DEPRECATE_EOF.0,
    );
}

/// Who the client says it is, and its token. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub username: String,
    /// The password the client typed: the airlock token.
    pub token: Vec<u8>,
    pub database: Option<String>,
    /// The capabilities in force with this client (its own cut to ours).
    pub capabilities: Capabilities,
    pub charset: u8,
    pub max_packet_size: u32,
    pub connect_attributes: Vec<(String, String)>,
    /// Whether the token arrived over TLS.
    pub over_tls: bool,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("username", &self.username)
            .field("token", &"<secret>")
            .field("database", &self.database)
            .field("capabilities", &self.capabilities)
            .field("over_tls", &self.over_tls)
            .finish_non_exhaustive()
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStep {
    /// Send this payload, then feed the client's next packet.
    Send(Vec<u8>),
    /// The client sent an SSLRequest: run the TLS server handshake, call
    /// [`ClientLogin::tls_established`], then feed the next packet.
    StartTls,
    /// The client's token: authenticate it, then send OK or ERR.
    Credentials(Box<ClientCredentials>),
}

/// Why the client login failed; the gateway answers with an ERR (access
/// denied, `08004` for a missing TLS) and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    #[error(transparent)]
    Codec(#[from] MySqlCodecError),
    /// The client did not start TLS and plaintext is not allowed.
    #[error("TLS is required")]
    TlsRequired,
    /// The client asked for TLS and none is configured.
    #[error("TLS is not available")]
    TlsUnavailable,
    /// Asked for the RSA public key: the gateway does not decrypt RSA.
    #[error("RSA key exchange is not supported: connect with TLS")]
    RsaUnsupported,
    #[error("unexpected {0} from the client")]
    Unexpected(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    AwaitHello,
    AwaitTls,
    AwaitResponseOverTls,
    /// Switched to caching_sha2_password: its scramble comes next.
    AwaitSwitchResponse,
    /// Switched to mysql_clear_password: the token comes next.
    AwaitClearPassword,
    /// Asked for full authentication: the token (NUL-terminated) next.
    AwaitFullAuthentication,
    Finished,
}

/// The client-facing login state machine.
#[derive(Debug)]
pub struct ClientLogin {
    params: ListenerParams,
    offered: Capabilities,
    state: State,
    tls_active: bool,
    response: Option<HandshakeResponse>,
}

impl ClientLogin {
    pub fn new(params: ListenerParams) -> Self {
        let mut offered = (params.capabilities & Capabilities::SUPPORTED)
            | Capabilities::PROTOCOL_41
            | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH;
        offered = offered & !Capabilities::SSL;
        if params.tls_available {
            offered = offered | Capabilities::SSL;
        }
        // Without TLS a client must never be invited to send LOCAL files
        // or anything else: the capability set is only what we follow.
        Self {
            params,
            offered,
            state: State::Greeting,
            tls_active: false,
            response: None,
        }
    }

    /// The capabilities offered in the greeting.
    pub fn offered(&self) -> Capabilities {
        self.offered
    }

    /// The Initial Handshake to send first.
    pub fn greeting(&mut self) -> Result<Vec<u8>, ListenerError> {
        if self.state != State::Greeting {
            return Err(self.fail(ListenerError::Unexpected("greeting call")));
        }
        if self.params.scramble.contains(&0) {
            return Err(self.fail(MySqlCodecError::Malformed { what: "scramble" }.into()));
        }
        let handshake = InitialHandshake {
            server_version: self.params.server_version.clone(),
            connection_id: self.params.connection_id,
            auth_plugin_data: self.params.scramble.to_vec(),
            capabilities: self.offered,
            charset: self.params.charset,
            status: self.params.status,
            auth_plugin_name: Some(auth::CACHING_SHA2_PASSWORD.to_owned()),
        };
        self.state = State::AwaitHello;
        handshake.encode().map_err(|error| self.fail(error.into()))
    }

    /// Tells the login that the TLS handshake completed.
    pub fn tls_established(&mut self) -> Result<(), ListenerError> {
        if self.state != State::AwaitTls {
            return Err(self.fail(ListenerError::Unexpected("TLS")));
        }
        self.tls_active = true;
        self.state = State::AwaitResponseOverTls;
        Ok(())
    }

    /// Feeds the client's next packet.
    pub fn receive(&mut self, payload: &[u8]) -> Result<ListenerStep, ListenerError> {
        let result = self.step(payload);
        match &result {
            Err(_) | Ok(ListenerStep::Credentials(_)) => self.state = State::Finished,
            Ok(_) => {}
        }
        result
    }

    fn fail(&mut self, error: ListenerError) -> ListenerError {
        self.state = State::Finished;
        error
    }

    fn step(&mut self, payload: &[u8]) -> Result<ListenerStep, ListenerError> {
        match self.state {
            State::AwaitHello => match decode_client_hello(payload)? {
                ClientHello::SslRequest(_) => {
                    if !self.params.tls_available {
                        return Err(ListenerError::TlsUnavailable);
                    }
                    self.state = State::AwaitTls;
                    Ok(ListenerStep::StartTls)
                }
                ClientHello::Response(response) => self.on_response(response),
            },
            State::AwaitResponseOverTls => {
                let response = HandshakeResponse::decode(payload)?;
                self.on_response(response)
            }
            State::AwaitSwitchResponse => {
                // The caching_sha2 scramble of the token: not checkable
                // here; ask for the token itself (TLS is active).
                self.state = State::AwaitFullAuthentication;
                Ok(ListenerStep::Send(auth::encode_auth_more_data(&[
                    auth::CACHING_SHA2_PERFORM_FULL_AUTHENTICATION,
                ])))
            }
            State::AwaitFullAuthentication => {
                if payload == [auth::CACHING_SHA2_REQUEST_PUBLIC_KEY] {
                    return Err(ListenerError::RsaUnsupported);
                }
                self.credentials(payload)
            }
            State::AwaitClearPassword => self.credentials(payload),
            State::Greeting | State::AwaitTls | State::Finished => {
                Err(ListenerError::Unexpected("packet"))
            }
        }
    }

    fn on_response(&mut self, response: HandshakeResponse) -> Result<ListenerStep, ListenerError> {
        if !self.tls_active && !self.params.plaintext_allowed {
            return Err(ListenerError::TlsRequired);
        }
        let plugin = response.auth_plugin_name.clone().unwrap_or_default();
        let first = response.auth_response.clone();
        self.response = Some(response);
        if plugin == auth::MYSQL_CLEAR_PASSWORD {
            return self.credentials(&first);
        }
        if !self.tls_active {
            // Plaintext allowed: only the cleartext plugin hands over the
            // token without TLS (or RSA, which the gateway does not do).
            self.state = State::AwaitClearPassword;
            return self.switch_to(auth::MYSQL_CLEAR_PASSWORD, Vec::new());
        }
        if plugin == auth::CACHING_SHA2_PASSWORD {
            self.state = State::AwaitFullAuthentication;
            return Ok(ListenerStep::Send(auth::encode_auth_more_data(&[
                auth::CACHING_SHA2_PERFORM_FULL_AUTHENTICATION,
            ])));
        }
        self.state = State::AwaitSwitchResponse;
        let mut data = self.params.scramble.to_vec();
        data.push(0);
        self.switch_to(auth::CACHING_SHA2_PASSWORD, data)
    }

    fn switch_to(&self, plugin: &str, data: Vec<u8>) -> Result<ListenerStep, ListenerError> {
        let switch = AuthSwitchRequest {
            plugin_name: plugin.to_owned(),
            plugin_data: data,
        };
        Ok(ListenerStep::Send(switch.encode()?))
    }

    fn credentials(&mut self, token: &[u8]) -> Result<ListenerStep, ListenerError> {
        let response = self
            .response
            .take()
            .ok_or(ListenerError::Unexpected("token before the handshake"))?;
        let token = token.strip_suffix(&[0]).unwrap_or(token).to_vec();
        let capabilities = Capabilities(response.capabilities.0 & self.offered.0);
        Ok(ListenerStep::Credentials(Box::new(ClientCredentials {
            username: response.username,
            token,
            database: response.database,
            capabilities,
            charset: response.charset,
            max_packet_size: response.max_packet_size,
            connect_attributes: response.connect_attributes,
            over_tls: self.tls_active,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::SslRequest;

    fn params(tls_available: bool, plaintext_allowed: bool) -> ListenerParams {
        ListenerParams {
            server_version: "8.0.36-airlock".into(),
            connection_id: 3,
            scramble: *b"abcdefghijklmnopqrst",
            capabilities: ListenerParams::DEFAULT_CAPABILITIES,
            tls_available,
            plaintext_allowed,
            charset: 45,
            status: ServerStatus::AUTOCOMMIT,
        }
    }

    fn response(plugin: &str, auth_response: &[u8], ssl: bool) -> Vec<u8> {
        let mut capabilities = ListenerParams::DEFAULT_CAPABILITIES;
        if ssl {
            capabilities = capabilities | Capabilities::SSL;
        }
        HandshakeResponse {
            capabilities,
            max_packet_size: 1 << 24,
            charset: 45,
            username: "agent".into(),
            auth_response: auth_response.to_vec(),
            database: Some("appdb".into()),
            auth_plugin_name: Some(plugin.into()),
            connect_attributes: Vec::new(),
            zstd_compression_level: None,
        }
        .encode()
        .unwrap()
    }

    fn sent(step: ListenerStep) -> Vec<u8> {
        match step {
            ListenerStep::Send(bytes) => bytes,
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn credentials(step: ListenerStep) -> ClientCredentials {
        match step {
            ListenerStep::Credentials(credentials) => *credentials,
            other => panic!("expected Credentials, got {other:?}"),
        }
    }

    fn ssl_request() -> Vec<u8> {
        SslRequest {
            capabilities: ListenerParams::DEFAULT_CAPABILITIES,
            max_packet_size: 1 << 24,
            charset: 45,
        }
        .encode()
    }

    #[test]
    fn caching_sha2_client_over_tls_hands_over_its_token() {
        let mut login = ClientLogin::new(params(true, false));
        let greeting = InitialHandshake::decode(&login.greeting().unwrap()).unwrap();
        assert_eq!(
            greeting.auth_plugin_name.as_deref(),
            Some(auth::CACHING_SHA2_PASSWORD)
        );
        assert!(greeting.capabilities.contains(Capabilities::SSL));
        assert_eq!(greeting.auth_plugin_data, b"abcdefghijklmnopqrst");
        assert_eq!(
            login.receive(&ssl_request()).unwrap(),
            ListenerStep::StartTls
        );
        login.tls_established().unwrap();
        let scramble = auth::caching_sha2_scramble(b"tok", b"abcdefghijklmnopqrst");
        let more = sent(
            login
                .receive(&response(auth::CACHING_SHA2_PASSWORD, &scramble, true))
                .unwrap(),
        );
        assert_eq!(more, [0x01, 0x04]);
        let credentials = credentials(login.receive(b"tok\0").unwrap());
        assert_eq!(credentials.username, "agent");
        assert_eq!(credentials.token, b"tok");
        assert_eq!(credentials.database.as_deref(), Some("appdb"));
        assert!(credentials.over_tls);
        assert!(!format!("{credentials:?}").contains("tok\""));
        assert!(login.receive(b"again").is_err());
    }

    #[test]
    fn other_plugins_are_switched_to_caching_sha2() {
        let mut login = ClientLogin::new(params(true, false));
        login.greeting().unwrap();
        login.receive(&ssl_request()).unwrap();
        login.tls_established().unwrap();
        let switch = sent(
            login
                .receive(&response(auth::MYSQL_NATIVE_PASSWORD, &[1; 20], true))
                .unwrap(),
        );
        let switch = AuthSwitchRequest::decode(&switch).unwrap();
        assert_eq!(switch.plugin_name, auth::CACHING_SHA2_PASSWORD);
        assert_eq!(switch.plugin_data, b"abcdefghijklmnopqrst\0");
        assert_eq!(sent(login.receive(&[9; 32]).unwrap()), [0x01, 0x04]);
        assert_eq!(credentials(login.receive(b"t\0").unwrap()).token, b"t");
    }

    #[test]
    fn without_tls_the_token_is_never_asked_for_unless_allowed() {
        let mut login = ClientLogin::new(params(true, false));
        login.greeting().unwrap();
        assert_eq!(
            login.receive(&response(auth::CACHING_SHA2_PASSWORD, &[], false)),
            Err(ListenerError::TlsRequired)
        );
        let mut login = ClientLogin::new(params(false, false));
        let greeting = InitialHandshake::decode(&login.greeting().unwrap()).unwrap();
        assert!(!greeting.capabilities.contains(Capabilities::SSL));
        assert_eq!(
            login.receive(&ssl_request()),
            Err(ListenerError::TlsUnavailable)
        );
        // Plaintext allowed: the cleartext plugin, by switch or by choice.
        let mut login = ClientLogin::new(params(false, true));
        login.greeting().unwrap();
        let switch = sent(
            login
                .receive(&response(auth::CACHING_SHA2_PASSWORD, &[], false))
                .unwrap(),
        );
        assert_eq!(
            AuthSwitchRequest::decode(&switch).unwrap().plugin_name,
            auth::MYSQL_CLEAR_PASSWORD
        );
        let plain = credentials(login.receive(b"tok\0").unwrap());
        assert!(!plain.over_tls);
        let mut login = ClientLogin::new(params(false, true));
        login.greeting().unwrap();
        let chosen = credentials(
            login
                .receive(&response(auth::MYSQL_CLEAR_PASSWORD, b"tok\0", false))
                .unwrap(),
        );
        assert_eq!(chosen.token, b"tok");
        // An RSA key request after full authentication is refused.
        let mut login = ClientLogin::new(params(true, false));
        login.greeting().unwrap();
        login.receive(&ssl_request()).unwrap();
        login.tls_established().unwrap();
        login
            .receive(&response(auth::CACHING_SHA2_PASSWORD, &[1; 32], true))
            .unwrap();
        assert_eq!(login.receive(&[0x02]), Err(ListenerError::RsaUnsupported));
    }

    #[test]
    fn a_scramble_with_nul_is_refused() {
        let mut bad = params(true, false);
        bad.scramble[3] = 0;
        assert!(ClientLogin::new(bad).greeting().is_err());
    }
}
