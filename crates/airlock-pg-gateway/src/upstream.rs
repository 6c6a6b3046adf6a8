//! Connecting to an upstream PostgreSQL and authenticating with the stored
//! credential (SCRAM-SHA-256, MD5 or cleartext), optionally over TLS.
//!
//! The decrypted password lives in a [`Secret`] for the duration of the
//! handshake only; it is never logged and never part of an error.

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use airlock_pg::backend::{self, AuthRequest};
use airlock_pg::frontend;
use airlock_pg::startup::{encode_ssl_request, encode_startup};
use airlock_pg::{ErrorFields, FrameDecoder, PgCodecError};

use airlock_core::admission::UpstreamLogin;
use airlock_core::tls::UpstreamTls;

use crate::io::{read_more, BoxedIo};

/// An authenticated upstream connection, ready for queries.
pub struct UpstreamConnection {
    pub stream: BoxedIo,
    /// Bytes read past `ReadyForQuery` (normally none).
    pub leftover: BytesMut,
    /// `ParameterStatus` and `NoticeResponse` messages to replay to the
    /// client, already encoded.
    pub greeting: Vec<u8>,
    /// The upstream's backend key, for cancels.
    pub backend_key: Option<(i32, i32)>,
}

/// Why the upstream could not be reached or refused us. Messages never hold
/// the password.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {address}: {error}")]
    Connect {
        address: String,
        error: std::io::Error,
    },
    #[error("the upstream at {address} does not accept TLS")]
    TlsRefused { address: String },
    #[error("TLS handshake with {address} failed: {error}")]
    Tls {
        address: String,
        error: std::io::Error,
    },
    #[error("the upstream refused the session: {} (SQLSTATE {})", .0.message, .0.code)]
    Refused(ErrorFields),
    #[error("the upstream asked for an unsupported authentication method (code {0})")]
    UnsupportedAuth(i32),
    #[error("SCRAM exchange with the upstream failed: {0}")]
    Scram(String),
    #[error("upstream protocol error: {0}")]
    Protocol(#[from] PgCodecError),
    #[error("upstream closed the connection during start-up")]
    Closed,
    #[error("the upstream session's client_encoding is {0}, which the gateway does not support")]
    UnsafeEncoding(String),
    #[error("upstream i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl UpstreamError {
    /// True when the stored credential was rejected (not a network problem).
    pub fn is_auth_rejection(&self) -> bool {
        matches!(self, Self::Refused(fields) if fields.code.starts_with("28"))
    }
}

/// Connects and authenticates.
pub async fn connect(
    target: &UpstreamLogin,
    client_parameters: &[(String, String)],
    max_message_bytes: usize,
) -> Result<UpstreamConnection, UpstreamError> {
    let tcp =
        TcpStream::connect(&target.address)
            .await
            .map_err(|error| UpstreamError::Connect {
                address: target.address.clone(),
                error,
            })?;
    let _ = tcp.set_nodelay(true);
    let mut stream: BoxedIo = match &target.tls {
        UpstreamTls::Disable => Box::new(tcp),
        UpstreamTls::Enabled(config) => {
            Box::new(start_tls(tcp, &target.address, config.clone()).await?)
        }
    };

    let mut params: Vec<(&str, &str)> =
        vec![("user", &target.username), ("database", &target.database)];
    // Decided by the caller (`startup_params`): every one is forwarded.
    for (key, value) in client_parameters {
        if key != "user" && key != "database" {
            params.push((key, value));
        }
    }
    stream.write_all(&encode_startup(&params)).await?;

    let decoder = FrameDecoder::new(max_message_bytes);
    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramSha256> = None;
    let mut greeting = Vec::new();
    let mut backend_key = None;
    loop {
        let Some(frame) = decoder.decode(&mut buf)? else {
            if read_more(&mut stream, &mut buf).await? == 0 {
                return Err(UpstreamError::Closed);
            }
            continue;
        };
        match frame.tag() {
            backend::tag::AUTHENTICATION => {
                let mut out = Vec::new();
                let request = backend::decode_auth_request(frame.body())?;
                answer_auth(request, target, &mut scram, &mut out).map_err(|error| *error)?;
                if !out.is_empty() {
                    stream.write_all(&out).await?;
                }
            }
            backend::tag::ERROR_RESPONSE => {
                return Err(UpstreamError::Refused(backend::decode_error_fields(
                    frame.body(),
                )?));
            }
            backend::tag::BACKEND_KEY_DATA => {
                backend_key = Some(backend::decode_backend_key_data(frame.body())?);
            }
            backend::tag::PARAMETER_STATUS => {
                // A role or database setting can choose the encoding too:
                // the gateway must read statements as the server will.
                let mut parts = frame.body().split(|byte| *byte == 0);
                if parts.next() == Some(b"client_encoding".as_slice()) {
                    let value = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    if !airlock_pg::encoding::is_ascii_safe_encoding(&value) {
                        return Err(UpstreamError::UnsafeEncoding(value.into_owned()));
                    }
                }
                greeting.extend_from_slice(frame.as_bytes());
            }
            backend::tag::NOTICE_RESPONSE => {
                greeting.extend_from_slice(frame.as_bytes());
            }
            backend::tag::NEGOTIATE_PROTOCOL_VERSION => {}
            backend::tag::READY_FOR_QUERY => {
                return Ok(UpstreamConnection {
                    stream,
                    leftover: buf,
                    greeting,
                    backend_key,
                });
            }
            other => {
                return Err(UpstreamError::Protocol(PgCodecError::UnexpectedTag {
                    tag: char::from(other),
                }))
            }
        }
    }
}

/// Answers one authentication request of the upstream into `out` (nothing
/// for `AuthenticationOk` and SCRAM's final message), with the stored
/// credential: cleartext, MD5 or SCRAM-SHA-256 (`scram` carries the
/// exchange across its messages). The error is boxed: it is rare, and
/// `UpstreamError` is large.
fn answer_auth(
    request: AuthRequest<'_>,
    target: &UpstreamLogin,
    scram: &mut Option<ScramSha256>,
    out: &mut Vec<u8>,
) -> Result<(), Box<UpstreamError>> {
    match request {
        AuthRequest::Ok => {}
        AuthRequest::Cleartext => frontend::encode_password(out, target.password.expose()),
        AuthRequest::Md5 { salt } => {
            let hashed = md5_hash(
                target.username.as_bytes(),
                target.password.expose().as_bytes(),
                salt,
            );
            frontend::encode_password(out, &hashed);
        }
        AuthRequest::Sasl { mechanisms } => {
            if !mechanisms.contains(&SCRAM_SHA_256) {
                return Err(Box::new(UpstreamError::Scram(format!(
                    "no supported SASL mechanism offered ({})",
                    mechanisms.join(", ")
                ))));
            }
            // No channel binding ("n"): telling a server that offers
            // SCRAM-SHA-256-PLUS that we support binding but think it does
            // not ("y") is a downgrade it rightly refuses. The TLS leg is
            // authenticated by `verify-full` instead.
            let binding = ChannelBinding::unsupported();
            let client = ScramSha256::new(target.password.expose().as_bytes(), binding);
            frontend::encode_sasl_initial_response(out, SCRAM_SHA_256, client.message());
            *scram = Some(client);
        }
        AuthRequest::SaslContinue { data } => {
            let client = scram
                .as_mut()
                .ok_or_else(|| Box::new(UpstreamError::Scram("unexpected SASL continue".into())))?;
            client
                .update(data)
                .map_err(|error| Box::new(UpstreamError::Scram(error.to_string())))?;
            frontend::encode_sasl_response(out, client.message());
        }
        AuthRequest::SaslFinal { data } => {
            let mut client = scram
                .take()
                .ok_or_else(|| Box::new(UpstreamError::Scram("unexpected SASL final".into())))?;
            client
                .finish(data)
                .map_err(|error| Box::new(UpstreamError::Scram(error.to_string())))?;
        }
        AuthRequest::Unsupported { code } => {
            return Err(Box::new(UpstreamError::UnsupportedAuth(code)))
        }
    }
    Ok(())
}

async fn start_tls(
    mut tcp: TcpStream,
    address: &str,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, UpstreamError> {
    use tokio::io::AsyncReadExt;
    tcp.write_all(&encode_ssl_request()).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    if answer != *b"S" {
        return Err(UpstreamError::TlsRefused {
            address: address.to_string(),
        });
    }
    let host = address
        .rsplit_once(':')
        .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(address);
    let server_name = ServerName::try_from(host.to_string()).map_err(|_| UpstreamError::Tls {
        address: address.to_string(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid server name"),
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|error| UpstreamError::Tls {
            address: address.to_string(),
            error,
        })
}

/// Sends a `CancelRequest` for an upstream backend (plain TCP, as libpq
/// does; the server accepts cancels before authentication).
pub async fn send_cancel(address: &str, process_id: i32, secret_key: i32) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(address).await?;
    tcp.write_all(&airlock_pg::startup::encode_cancel(process_id, secret_key))
        .await?;
    tcp.shutdown().await?;
    // The server closes the connection once it has acted on the request:
    // the client's cancel connection ends only then, as it would directly,
    // so its next statement cannot be the one cancelled.
    let mut rest = [0u8; 64];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        while tcp.read(&mut rest).await.unwrap_or(0) > 0 {}
    })
    .await;
    Ok(())
}
