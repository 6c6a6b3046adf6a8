//! The upstream login with the stored credential: TCP, the server's
//! greeting, TLS when the connection says so (`require` / `verify-full`,
//! started where the codec's login says: right after the SSLRequest), then
//! whatever plugin the server asks for, driven by the codec's sans-IO
//! [`UpstreamLogin`](airlock_mysql::login::UpstreamLogin).
//! `caching_sha2_password` full authentication sends the password inside
//! TLS, or without TLS encrypted with the connection's pinned
//! `server_public_key`; a key the server offers on a plain connection is
//! never asked for.
//!
//! Security: the decrypted password is used for the handshake only and is
//! never logged; the codec refuses to send it in cleartext unless TLS is
//! active, whatever the server asks.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use airlock_core::admission::UpstreamLogin;
use airlock_core::tls::UpstreamTls;
use airlock_mysql::login::{
    LoginError, LoginOutcome, LoginParams, LoginStep, UpstreamLogin as Login,
};
use airlock_mysql::translate::Translation;
use airlock_mysql::{Capabilities, PacketCodec};

use crate::errors::UpstreamProblem;
use crate::io::{BoxedIo, PacketStream, StreamError};

/// Why the upstream login failed. The message is for the log and the
/// audit record (it may describe the inside), never for the client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {address}: {error}")]
    Connect {
        address: String,
        error: std::io::Error,
    },
    #[error("TLS handshake with {address} failed: {error}")]
    Tls {
        address: String,
        error: std::io::Error,
    },
    #[error("upstream login: {0}")]
    Login(#[from] LoginError),
    #[error("upstream connection: {0}")]
    Stream(#[from] StreamError),
    #[error("client and upstream disagree on capabilities {0:#x}")]
    Capabilities(u64),
    #[error("cannot read the server_public_key {path}: {error}")]
    PublicKey { path: String, error: std::io::Error },
}

impl UpstreamError {
    /// What the client may hear of it.
    pub fn problem(&self) -> UpstreamProblem {
        match self {
            Self::Connect { .. } => UpstreamProblem::Unreachable,
            Self::Tls { .. } | Self::Login(LoginError::TlsUnavailable) => UpstreamProblem::Tls,
            Self::Login(LoginError::Server(err)) if err.code == 1045 => UpstreamProblem::Rejected,
            Self::Login(LoginError::PublicKeyUnavailable { .. }) | Self::PublicKey { .. } => {
                UpstreamProblem::Incompatible(
                    "its login needs TLS or the connection's server_public_key",
                )
            }
            Self::Capabilities(_) => {
                UpstreamProblem::Incompatible("they do not agree on the protocol's capabilities")
            }
            _ => UpstreamProblem::Refused,
        }
    }
}

/// A logged-in upstream connection.
pub struct UpstreamConnection {
    pub stream: PacketStream,
    pub outcome: LoginOutcome,
    /// How its answers are translated for the client (an upstream without
    /// `CLIENT_DEPRECATE_EOF` for a client with it).
    pub translation: Translation,
}

/// What the client asked for that the upstream login follows.
pub struct ClientSide {
    pub capabilities: Capabilities,
    pub charset: u8,
    pub max_packet_size: u32,
    pub connect_attributes: Vec<(String, String)>,
    pub max_packet_bytes: usize,
}

/// The connection's pinned RSA public key (`server_public_key`, relative
/// to the config file), read for each login so a replaced file counts.
pub async fn pinned_public_key(
    state: &airlock_core::state::GatewayState,
    connection: &str,
) -> Result<Option<Vec<u8>>, UpstreamError> {
    let Some(file) = state
        .config
        .connection(connection)
        .and_then(|connection| connection.server_public_key.as_deref())
    else {
        return Ok(None);
    };
    let path = airlock_core::config::relative_to(&state.config_path, file);
    tokio::fs::read(&path)
        .await
        .map(Some)
        .map_err(|error| UpstreamError::PublicKey {
            path: path.display().to_string(),
            error,
        })
}

/// Connects and logs in with the admitted session's credential.
pub async fn connect(
    login: &UpstreamLogin,
    client: ClientSide,
    server_public_key: Option<Vec<u8>>,
) -> Result<UpstreamConnection, UpstreamError> {
    let tcp = TcpStream::connect(&login.address)
        .await
        .map_err(|error| UpstreamError::Connect {
            address: login.address.clone(),
            error,
        })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = PacketStream::new(Box::new(tcp), PacketCodec::new(client.max_packet_bytes));
    // What the gateway never lets a client have upstream: compression and
    // the layouts the codec does not parse (cut by the login to
    // `SUPPORTED`). LOCAL INFILE only for a client that negotiated it: the
    // relay passes the server's file requests only for the file a decided
    // `LOAD DATA LOCAL INFILE` of the client named (`crate::answer`).
    let wanted = client.capabilities & !(Capabilities::SSL | Capabilities::CONNECT_WITH_DB);
    let mut params = LoginParams::new(
        login.username.clone(),
        login.password.expose().as_bytes().to_vec(),
    );
    params.database = (!login.database.is_empty()).then(|| login.database.clone());
    params.tls = matches!(login.tls, UpstreamTls::Enabled(_));
    params.capabilities = wanted;
    params.charset = client.charset;
    params.max_packet_size = client.max_packet_size;
    params.connect_attributes = client.connect_attributes;
    // Full authentication without TLS encrypts with the pinned key only;
    // a key the server sends over a plain connection is never trusted.
    params.server_public_key = server_public_key;
    params.request_public_key = false;
    params.rsa_oaep_seed = rand::random();
    let mut machine = Login::new(params);
    let greeting = stream.read().await?;
    let mut step = machine.handshake(&greeting.payload)?;
    let outcome = loop {
        step = match step {
            LoginStep::Send(payload) => {
                stream.write(&payload).await?;
                machine.receive(&stream.read().await?.payload)?
            }
            LoginStep::Wait => machine.receive(&stream.read().await?.payload)?,
            LoginStep::StartTls(request) => {
                stream.write(&request).await?;
                start_tls(&mut stream, login).await?;
                machine.tls_established()?
            }
            LoginStep::Done(outcome) => break *outcome,
        };
    };
    // Layout capabilities must agree, or differ only where the relay
    // translates (see `airlock_mysql::translate`).
    let translation = Translation::between(client.capabilities, outcome.capabilities)
        .map_err(UpstreamError::Capabilities)?;
    Ok(UpstreamConnection {
        stream,
        outcome,
        translation,
    })
}

/// Wraps the upstream's stream in TLS (the sequence count goes on).
async fn start_tls(stream: &mut PacketStream, login: &UpstreamLogin) -> Result<(), UpstreamError> {
    let UpstreamTls::Enabled(config) = &login.tls else {
        return Ok(());
    };
    let address = &login.address;
    let host = address
        .rsplit_once(':')
        .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(address);
    let server_name = ServerName::try_from(host.to_string()).map_err(|_| UpstreamError::Tls {
        address: address.clone(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid server name"),
    })?;
    let plain: BoxedIo = std::mem::replace(&mut stream.stream, Box::new(tokio::io::duplex(1).0));
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(server_name, plain)
        .await
        .map_err(|error| UpstreamError::Tls {
            address: address.clone(),
            error,
        })?;
    stream.stream = Box::new(tls);
    Ok(())
}
