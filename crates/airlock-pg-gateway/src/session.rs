//! One PostgreSQL client session, in named phases:
//!
//! 1. **negotiate**: `SSLRequest` (TLS upgrade), `GSSENCRequest` (refused),
//!    `CancelRequest` (mapped to the upstream's key), `StartupMessage`;
//! 2. **authenticate**: cleartext password inside TLS = the token, checked by
//!    [`authenticate_token`], with credential-spraying protection;
//! 3. **admit** (`admit_session`: session limits), then **open the
//!    upstream** (`open_upstream`: check the startup packet, resolve the
//!    connection, admit to it (JIT grant), decide the startup settings,
//!    decrypt the credential, record `session.start`, log in upstream), and
//!    **greet** the client;
//! 4. **relay** (see [`crate::relay`]) until either side ends;
//! 5. **finish**: the one place where how the session ended becomes a
//!    client-visible error (`client_error`) and a `session.end` event.
//!
//! The phases after authentication share one `SessionContext`.

use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use airlock_pg::backend::{
    encode_auth_cleartext, encode_auth_ok, encode_backend_key_data,
    encode_negotiate_protocol_version, encode_ready_for_query,
};
use airlock_pg::frontend::decode_password;
use airlock_pg::startup::{decode_startup, StartupMessage, StartupRequest};
use airlock_pg::FrameDecoder;
use airlock_store::now_unix;

use crate::errors::{self, fatal, sqlstate};
use crate::gate::CommandGate;
use crate::io::{read_more, BoxedIo};
use crate::relay::{relay, Expiry, RecordingContext, RelayEnd, RelaySession, RelayStats};
use crate::upstream::{self, UpstreamConnection};
use airlock_core::admission::{
    AdmissionRefusal, AdmissionRequest, AdmittedSession, SessionCounts, UpstreamLogin,
};
use airlock_core::auth::Authenticated;
use airlock_core::gate::Rejection;
use airlock_core::login::{LoginAttempt, LoginRefusal};
use airlock_core::registry::{Registration, UpstreamCancel};
use airlock_core::state::{GatewayState, ResolvedConnection};
use airlock_types::Protocol;
use tracing::Instrument;

/// Largest password message accepted (tokens and JWTs are well below).
const MAX_PASSWORD_MESSAGE_BYTES: usize = 16 * 1024;

/// A refusal to send to the client before closing.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// How the client reads a refused login.
fn login_refusal(refusal: &LoginRefusal) -> Refusal {
    let (code, message) = errors::login(refusal);
    refuse(code, message)
}

/// How the client reads a refusal of the core's admission.
fn admission_refusal(refusal: &AdmissionRefusal) -> Refusal {
    let (code, message) = errors::admission(refusal);
    refuse(code, message)
}

/// Result of the negotiate phase.
enum Negotiated {
    /// Nothing more to say: close the connection cleanly.
    Close(BoxedIo),
    Startup {
        stream: BoxedIo,
        buf: BytesMut,
        startup: StartupMessage,
        tls: bool,
    },
    /// A cancel request was handled, or the client went away.
    Done,
    Refused(BoxedIo, Refusal),
}

/// Serves one accepted TCP connection to the end.
pub async fn serve(state: Arc<GatewayState>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    serve_stream(state, Box::new(tcp), peer, false).await;
}

/// Serves a client inside this process (airlock's own MCP server) over an
/// in-memory stream, to the end: the same session, phases and decisions as
/// a TCP client's. The stream never leaves the process, so it counts as
/// encrypted (the plaintext rule is for networks); `peer` is the address of
/// the client the in-process one acts for, so lockouts and records name it.
pub async fn serve_in_process(
    state: Arc<GatewayState>,
    stream: tokio::io::DuplexStream,
    peer: SocketAddr,
) {
    serve_stream(state, Box::new(stream), peer, true).await;
}

async fn serve_stream(
    state: Arc<GatewayState>,
    stream: BoxedIo,
    peer: SocketAddr,
    in_process: bool,
) {
    let session_id = new_session_id();
    // Every log line of the session carries its id, protocol, client, and
    // (once known) identity and connection.
    let span = tracing::info_span!(
        "session",
        session = %session_id,
        protocol = "postgres",
        client = %peer,
        identity = tracing::field::Empty,
        connection = tracing::field::Empty,
    );
    serve_in_span(state, stream, peer, session_id, in_process)
        .instrument(span)
        .await;
}

async fn serve_in_span(
    state: Arc<GatewayState>,
    stream: BoxedIo,
    peer: SocketAddr,
    session_id: String,
    in_process: bool,
) {
    let started = Instant::now();
    let handshake = tokio::time::timeout(
        state.settings.auth_timeout,
        negotiate(&state, stream, peer, in_process),
    )
    .await;
    let negotiated = match handshake {
        Ok(Ok(negotiated)) => negotiated,
        Ok(Err(error)) => {
            tracing::debug!(client = %peer, %error, "connection ended during negotiation");
            return;
        }
        Err(_) => {
            tracing::info!(client = %peer, "negotiation timed out");
            return;
        }
    };
    let (mut stream, buf, startup, tls) = match negotiated {
        Negotiated::Startup {
            stream,
            buf,
            startup,
            tls,
        } => (stream, buf, startup, tls),
        Negotiated::Done => return,
        Negotiated::Close(mut stream) => {
            let _ = stream.shutdown().await;
            return;
        }
        Negotiated::Refused(mut stream, refusal) => {
            let _ = stream
                .write_all(&fatal(refusal.code, refusal.message))
                .await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let user = startup.param("user").unwrap_or_default().to_string();
    let database = startup
        .param("database")
        .filter(|database| !database.is_empty())
        .unwrap_or(&user)
        .to_string();
    let span = tracing::Span::current();
    span.record("identity", user.as_str());
    span.record("connection", database.as_str());
    let authenticated = tokio::time::timeout(
        state.settings.auth_timeout,
        authenticate(
            &state,
            &mut stream,
            buf,
            peer,
            &user,
            &database,
            &session_id,
        ),
    )
    .await;
    let (authenticated, buf) = match authenticated {
        Ok(Ok(Some(done))) => done,
        Ok(Ok(None)) => return,
        Ok(Err(refusal)) => {
            let _ = stream
                .write_all(&fatal(refusal.code, refusal.message))
                .await;
            let _ = stream.shutdown().await;
            return;
        }
        Err(_) => {
            let _ = stream
                .write_all(&fatal(
                    sqlstate::CONNECTION_FAILURE,
                    "airlock: authentication timed out",
                ))
                .await;
            return;
        }
    };
    let ctx = SessionContext {
        state: &state,
        startup: &startup,
        authenticated: &authenticated,
        database: &database,
        session_id: &session_id,
        peer,
        tls,
        started,
    };
    if let Err(refusal) = connect_and_relay(&ctx, stream, buf).await {
        tracing::info!(session = %session_id, code = refusal.code, message = %refusal.message, "session refused");
    }
}

fn new_session_id() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("s-{}", hex::encode(bytes))
}

async fn negotiate(
    state: &GatewayState,
    mut stream: BoxedIo,
    peer: SocketAddr,
    in_process: bool,
) -> std::io::Result<Negotiated> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut tls = in_process;
    loop {
        let request = match decode_startup(&mut buf) {
            Ok(Some(request)) => request,
            Ok(None) => {
                if read_more(&mut stream, &mut buf).await? == 0 {
                    return Ok(Negotiated::Done);
                }
                continue;
            }
            Err(
                error @ (airlock_pg::PgCodecError::UnsupportedProtocol { .. }
                | airlock_pg::PgCodecError::TooMany { .. }),
            ) => {
                // A well-formed packet the gateway cannot serve: PostgreSQL
                // answers these with an error, and so does the gateway.
                return Ok(Negotiated::Refused(
                    stream,
                    refuse(sqlstate::PROTOCOL_VIOLATION, format!("airlock: {error}")),
                ));
            }
            Err(error) => {
                // As PostgreSQL does: log it and close, without a reply
                // (clients that write Terminate before starting up rely
                // on it).
                tracing::info!(%error, "invalid startup packet; connection closed");
                return Ok(Negotiated::Done);
            }
        };
        match request {
            StartupRequest::Ssl => {
                if tls {
                    return Ok(Negotiated::Refused(
                        stream,
                        refuse(
                            sqlstate::PROTOCOL_VIOLATION,
                            "airlock: SSLRequest received twice",
                        ),
                    ));
                }
                if !buf.is_empty() {
                    // Bytes sent before the handshake would be processed as if
                    // they came over TLS (CVE-2021-23214): refuse.
                    return Ok(Negotiated::Refused(
                        stream,
                        refuse(
                            sqlstate::PROTOCOL_VIOLATION,
                            "airlock: unencrypted data after SSLRequest",
                        ),
                    ));
                }
                stream.write_all(b"S").await?;
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&state.server_tls));
                // The stream is a boxed TcpStream here; TLS wraps the box.
                let tls_stream = acceptor.accept(stream).await?;
                stream = Box::new(tls_stream);
                tls = true;
            }
            StartupRequest::GssEnc => {
                // GSSAPI encryption is not offered; libpq then falls back to
                // TLS or plain, as the protocol intends.
                stream.write_all(b"N").await?;
            }
            StartupRequest::Cancel {
                process_id,
                secret_key,
            } => {
                if let Some(target) = state.sessions.cancel_target(process_id, secret_key) {
                    if let Err(error) =
                        upstream::send_cancel(&target.address, target.process_id, target.secret_key)
                            .await
                    {
                        tracing::warn!(client = %peer, %error, "forwarding a cancel request failed");
                    } else {
                        tracing::info!(client = %peer, "cancel request forwarded");
                    }
                } else {
                    tracing::info!(client = %peer, "cancel request with an unknown key ignored");
                }
                // Closed cleanly (over TLS with close_notify) once the
                // upstream acted on it.
                return Ok(Negotiated::Close(stream));
            }
            StartupRequest::Startup(startup) => {
                if !tls && !state.config.postgres.allow_plaintext.allows(peer.ip()) {
                    return Ok(Negotiated::Refused(
                        stream,
                        refuse(
                            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                            format!(
                                "airlock: TLS is required for clients at {}: connect with sslmode=require",
                                peer.ip()
                            ),
                        ),
                    ));
                }
                return Ok(Negotiated::Startup {
                    stream,
                    buf,
                    startup,
                    tls,
                });
            }
        }
    }
}

/// The authenticate phase: the core's lockout check, the token asked for
/// in clear (inside TLS) and checked by the core, which records failures.
async fn authenticate(
    state: &GatewayState,
    stream: &mut BoxedIo,
    mut buf: BytesMut,
    peer: SocketAddr,
    user: &str,
    database: &str,
    session_id: &str,
) -> Result<Option<(Authenticated, BytesMut)>, Refusal> {
    let io = |_| refuse(sqlstate::CONNECTION_FAILURE, "airlock: connection lost");
    if user.is_empty() {
        return Err(refuse(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "airlock: no user name given (user = your identity name)",
        ));
    }
    let attempt = LoginAttempt {
        protocol: Protocol::Postgres,
        user,
        connection: database,
        session_id,
        peer,
    };
    state
        .check_lockout(&attempt)
        .map_err(|r| login_refusal(&r))?;
    let mut out = Vec::new();
    encode_auth_cleartext(&mut out);
    stream.write_all(&out).await.map_err(io)?;
    let decoder = FrameDecoder::new(MAX_PASSWORD_MESSAGE_BYTES);
    let frame = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => break frame,
            Ok(None) => {
                // A client without a password (psql's first try) closes here:
                // not a failed attempt.
                if read_more(stream, &mut buf).await.map_err(io)? == 0 {
                    return Ok(None);
                }
            }
            Err(error) => {
                return Err(refuse(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("airlock: invalid password message: {error}"),
                ))
            }
        }
    };
    let token = decode_password(&frame)
        .map_err(|error| {
            refuse(
                sqlstate::PROTOCOL_VIOLATION,
                format!("airlock: invalid password message: {error}"),
            )
        })?
        .to_string();
    let authenticated = state
        .log_in(&attempt, token)
        .await
        .map_err(|r| login_refusal(&r))?;
    Ok(Some((authenticated, buf)))
}

/// What every phase after authentication knows about the session: passed
/// by reference to each of them instead of a long argument list.
struct SessionContext<'a> {
    state: &'a Arc<GatewayState>,
    startup: &'a StartupMessage,
    authenticated: &'a Authenticated,
    /// The connection the client named (its `database` parameter).
    database: &'a str,
    session_id: &'a str,
    peer: SocketAddr,
    tls: bool,
    started: Instant,
}

impl SessionContext<'_> {
    /// What the core's admission needs to know.
    fn admission_request(&self) -> AdmissionRequest<'_> {
        AdmissionRequest {
            protocol: Protocol::Postgres,
            authenticated: self.authenticated,
            connection: self.database,
            session_id: self.session_id,
            peer: self.peer,
            tls: self.tls,
            started: self.started,
        }
    }
}

/// The upstream opened for an admitted session.
struct OpenedUpstream {
    upstream: UpstreamConnection,
    session: AdmittedSession,
}

/// The phases after authentication: admit, open the upstream, greet the
/// client, relay, finish.
async fn connect_and_relay(
    ctx: &SessionContext<'_>,
    mut stream: BoxedIo,
    client_buf: BytesMut,
) -> Result<(), Refusal> {
    let opened = match open_upstream(ctx).await {
        Ok(opened) => opened,
        Err(refusal) => return Err(refuse_client(&mut stream, refusal).await),
    };
    let OpenedUpstream { upstream, session } = opened;
    let backend_key = upstream.backend_key;
    let address = session.connection.address.clone();
    let greeted = greet(
        ctx,
        &mut stream,
        &session.registration,
        &upstream.greeting,
        backend_key,
        &address,
    );
    if greeted.await.is_err() {
        session
            .record_end("client_vanished", None, SessionCounts::default())
            .await;
        return Ok(());
    }
    let connection_name = session.connection.name.clone();
    tracing::info!(
        session = %ctx.session_id, identity = %ctx.authenticated.identity.name,
        connection = %connection_name, client = %ctx.peer, tls = ctx.tls, "session started"
    );

    let state = ctx.state;
    let stats = RelayStats::default();
    let mut gate = CommandGate::new(
        Arc::clone(state),
        ctx.authenticated.identity.clone(),
        state.connection_info(&session.connection),
    );
    let deadline = session_deadline(ctx, session.grant_expires_at);
    let mut kill = session.registration.kill.clone();
    let (mut client_read, mut client_write) = tokio::io::split(stream);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream.stream);
    let meter = gate.core().meter().cloned();
    let (end, in_flight) = relay(
        &mut client_read,
        client_buf,
        &mut client_write,
        &mut upstream_read,
        upstream.leftover,
        &mut upstream_write,
        RelaySession {
            gate: &mut gate,
            kill: &mut kill,
            deadline,
            stats: &stats,
            max_message_bytes: state.config.postgres.max_message_bytes,
            recording: &RecordingContext {
                recorder: state.config.recording.enabled.then_some(&state.recorder),
                session_id: ctx.session_id,
                identity: &ctx.authenticated.identity.name,
                connection: &connection_name,
                sample_rows: state.config.recording.sample_rows,
                sample_bytes: state.config.recording.sample_bytes,
                max_statement_bytes: state.config.recording.max_statement_bytes,
                meter: meter.as_ref(),
            },
        },
    )
    .await;

    // Finish: the one place where the end of a session becomes a client
    // error and an audit event.
    if matches!(end, RelayEnd::ClientProtocolError(_)) {
        gate.core().rejected(Rejection::ProtocolViolation);
    }
    if let Some(error) = client_error(&end) {
        let _ = client_write.write_all(&error).await;
        let _ = client_write.shutdown().await;
    }
    if matches!(end, RelayEnd::ClientVanished { .. } | RelayEnd::Io(_)) && in_flight {
        // The client is gone mid-query: stop the upstream's work before the
        // connection is dropped, rather than let it run to completion.
        if let Some((process_id, secret_key)) = backend_key {
            let _ = upstream::send_cancel(&address, process_id, secret_key).await;
        }
    }
    let _ = upstream_write.shutdown().await;
    let detail = match &end {
        RelayEnd::ClientProtocolError(message)
        | RelayEnd::UpstreamProtocolError(message)
        | RelayEnd::Killed(message)
        | RelayEnd::Revoked(message)
        | RelayEnd::Expired(message)
        | RelayEnd::Io(message) => Some(message.clone()),
        _ => None,
    };
    let counts = SessionCounts {
        bytes_from_client: stats.bytes_from_client.load(Ordering::Relaxed),
        bytes_from_upstream: stats.bytes_from_upstream.load(Ordering::Relaxed),
        commands: stats.commands.load(Ordering::Relaxed),
        refused: stats.refused.load(Ordering::Relaxed),
    };
    session.record_end(end.as_str(), detail, counts).await;
    tracing::info!(session = %ctx.session_id, ended_by = end.as_str(), "session ended");
    Ok(())
}

/// Tells the client about a refusal and closes; gives the refusal back.
async fn refuse_client(stream: &mut BoxedIo, refusal: Refusal) -> Refusal {
    let _ = stream
        .write_all(&fatal(refusal.code, refusal.message.clone()))
        .await;
    let _ = stream.shutdown().await;
    refusal
}

/// Tells the client it is in: AuthenticationOk, the upstream's parameters,
/// our own cancel key (mapped to the upstream's), ReadyForQuery.
async fn greet(
    ctx: &SessionContext<'_>,
    stream: &mut BoxedIo,
    registration: &Registration,
    greeting: &[u8],
    backend_key: Option<(i32, i32)>,
    upstream_address: &str,
) -> std::io::Result<()> {
    let mut client_process_id = registration.process_id;
    if let Some((process_id, secret_key)) = backend_key {
        client_process_id = ctx.state.sessions.set_upstream(
            registration.process_id,
            UpstreamCancel {
                address: upstream_address.to_string(),
                process_id,
                secret_key,
            },
        );
    }
    let startup = ctx.startup;
    let mut hello = Vec::with_capacity(greeting.len() + 64);
    if startup.minor_version > 0
        || startup
            .params
            .iter()
            .any(|(key, _)| key.starts_with("_pq_."))
    {
        let unrecognised: Vec<&str> = startup
            .params
            .iter()
            .filter(|(key, _)| key.starts_with("_pq_."))
            .map(|(key, _)| key.as_str())
            .collect();
        encode_negotiate_protocol_version(&mut hello, 0, &unrecognised);
    }
    encode_auth_ok(&mut hello);
    hello.extend_from_slice(greeting);
    encode_backend_key_data(&mut hello, client_process_id, registration.secret_key);
    encode_ready_for_query(&mut hello, b'I');
    stream.write_all(&hello).await
}

/// When the session must close: sessions follow their token (unless
/// configured otherwise) and their access grant, whichever ends first.
fn session_deadline(
    ctx: &SessionContext<'_>,
    grant_expires_at: Option<i64>,
) -> Option<(tokio::time::Instant, Expiry)> {
    let identity = &ctx.authenticated.identity;
    let token_end = (!ctx.state.config.auth.sessions_outlive_tokens).then_some(identity.expires_at);
    [
        token_end.map(|end| (end, Expiry::Token)),
        grant_expires_at.map(|end| (end, Expiry::Grant)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(end, _)| *end)
    .map(|(end, what)| {
        let remaining = end.saturating_sub(now_unix()).max(0);
        (
            tokio::time::Instant::now()
                + std::time::Duration::from_secs(u64::try_from(remaining).unwrap_or(0)),
            what,
        )
    })
}

/// The error the client reads when the relay ended, if it is still there
/// to read one.
fn client_error(end: &RelayEnd) -> Option<Vec<u8>> {
    match end {
        RelayEnd::ClientProtocolError(message) => Some(fatal(
            sqlstate::PROTOCOL_VIOLATION,
            format!("airlock: {message}"),
        )),
        RelayEnd::UpstreamProtocolError(_) => Some(fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "airlock: the upstream sent an invalid message; session closed",
        )),
        RelayEnd::UpstreamClosed => Some(fatal(
            sqlstate::ADMIN_SHUTDOWN,
            "airlock: the upstream closed the connection",
        )),
        RelayEnd::Killed(reason) | RelayEnd::Revoked(reason) | RelayEnd::Expired(reason) => {
            Some(fatal(
                sqlstate::ADMIN_SHUTDOWN,
                format!("airlock: terminating connection: {reason}"),
            ))
        }
        RelayEnd::Shutdown => Some(fatal(
            sqlstate::ADMIN_SHUTDOWN,
            "airlock: terminating connection: the gateway is shutting down",
        )),
        RelayEnd::ClientTerminated
        | RelayEnd::ClientVanished { .. }
        | RelayEnd::Io(_)
        | RelayEnd::UpstreamEndedWithError => None,
    }
}

/// Admission and upstream login: the identity admitted to the connection
/// by the core (session limits, the connection, its protocol, the JIT
/// grant), the startup packet checked and its settings decided, the
/// credential decrypted and `session.start` recorded (the core again), then
/// the upstream opened with the login only admission hands out. Every step
/// refuses rather than fall back.
async fn open_upstream(ctx: &SessionContext<'_>) -> Result<OpenedUpstream, Refusal> {
    let request = ctx.admission_request();
    let admitted = ctx
        .state
        .admit_session(&request)
        .await
        .map_err(|refusal| admission_refusal(&refusal))?;
    let requested = check_startup_packet(ctx.startup)?;
    let forwarded = decide_startup_settings(ctx, &admitted.connection, requested)?;
    let application_name = ctx.startup.param("application_name");
    let (session, login) = admitted
        .open(ctx.state, &request, application_name)
        .await
        .map_err(|refusal| admission_refusal(&refusal))?;
    connect_upstream(ctx, session, &login, &forwarded).await
}

/// Refuses what the startup packet asks that the gateway does not serve
/// (replication, an encoding the classifier cannot read) and sorts its
/// parameters, `options` included, into passed ones and settings.
fn check_startup_packet(
    startup: &StartupMessage,
) -> Result<crate::startup_params::Requested, Refusal> {
    if let Some(replication) = startup.param("replication") {
        if !matches!(replication, "false" | "off" | "no" | "0") {
            return Err(refuse(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                "airlock: replication connections are not supported through the gateway",
            ));
        }
    }
    // Settings in the startup packet, its `options` included.
    let requested = crate::startup_params::requested(&startup.params).map_err(|reason| {
        refuse(
            sqlstate::PROTOCOL_VIOLATION,
            format!("airlock: startup packet: {reason}"),
        )
    })?;
    for (_, encoding) in requested
        .passed
        .iter()
        .filter(|(name, _)| name == "client_encoding")
    {
        if !airlock_pg::encoding::is_ascii_safe_encoding(encoding) {
            return Err(refuse(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!(
                    "airlock: client_encoding \"{encoding}\" is not supported through the gateway: \
                     in it the gateway and the server could read one statement differently; \
                     use UTF8 (or another server encoding)"
                ),
            ));
        }
    }
    Ok(requested)
}

/// Settings in the startup packet are decided as the SETs they are: the
/// parameters to send upstream, or the refusal of the first one not
/// allowed.
fn decide_startup_settings(
    ctx: &SessionContext<'_>,
    connection: &ResolvedConnection,
    requested: crate::startup_params::Requested,
) -> Result<Vec<(String, String)>, Refusal> {
    let mut forwarded = requested.passed;
    if requested.settings.is_empty() {
        return Ok(forwarded);
    }
    let state = ctx.state;
    let mut gate = CommandGate::new(
        Arc::clone(state),
        ctx.authenticated.identity.clone(),
        state.connection_info(connection),
    );
    for (name, value) in requested.settings {
        let statement = crate::startup_params::as_set_statement(&name, &value);
        let decision = gate.check(
            crate::gate::CommandKind::SimpleQuery,
            &statement,
            &crate::gate::PreparedView::default(),
        );
        match decision.core.verdict {
            crate::gate::GateVerdict::Forward if decision.core.review.is_none() => {
                forwarded.push((name, value));
            }
            crate::gate::GateVerdict::Forward | crate::gate::GateVerdict::Refuse(_) => {
                let reason = match decision.core.verdict {
                    crate::gate::GateVerdict::Refuse(error) => error.message().to_string(),
                    crate::gate::GateVerdict::Forward => "it needs a review".into(),
                };
                return Err(refuse(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    format!(
                        "airlock: the startup parameter {name}={value} is not allowed ({statement}): {reason}"
                    ),
                ));
            }
        }
    }
    Ok(forwarded)
}

/// Logs in upstream. A failure is recorded (`session.upstream_failed`, then
/// `session.end`, since the start was recorded) and refused with words that
/// do not describe the inside.
async fn connect_upstream(
    ctx: &SessionContext<'_>,
    session: AdmittedSession,
    login: &UpstreamLogin,
    forwarded: &[(String, String)],
) -> Result<OpenedUpstream, Refusal> {
    let state = ctx.state;
    let connected = tokio::time::timeout(
        state.settings.connect_timeout,
        upstream::connect(login, forwarded, state.config.postgres.max_message_bytes),
    )
    .await;
    let connection = session.connection.name.clone();
    let (refusal, inside) = match connected {
        Ok(Ok(upstream)) => return Ok(OpenedUpstream { upstream, session }),
        Ok(Err(error)) => {
            tracing::warn!(session = %ctx.session_id, connection = %connection, %error, "upstream connection failed");
            (
                upstream_refusal(&error, &connection),
                Some(error.to_string()),
            )
        }
        Err(_) => (
            refuse(
                sqlstate::UNABLE_TO_CONNECT,
                format!(
                    "airlock: connecting to the upstream of connection \"{connection}\" timed out"
                ),
            ),
            None,
        ),
    };
    session
        .record_upstream_failure(inside, &refusal.message)
        .await;
    Err(refusal)
}

/// What the client reads when the upstream login failed.
fn upstream_refusal(error: &upstream::UpstreamError, connection: &str) -> Refusal {
    if error.is_auth_rejection() {
        refuse(
            sqlstate::SERVER_REJECTED_CONNECTION,
            format!("airlock: the upstream of connection \"{connection}\" rejected the stored credential"),
        )
    } else if matches!(error, upstream::UpstreamError::Connect { .. }) {
        // The upstream's address and the OS error stay in the log and the
        // audit event: they describe the inside.
        refuse(
            sqlstate::UNABLE_TO_CONNECT,
            format!("airlock: cannot reach the upstream of connection \"{connection}\""),
        )
    } else if matches!(
        error,
        upstream::UpstreamError::Tls { .. } | upstream::UpstreamError::TlsRefused { .. }
    ) {
        refuse(
            sqlstate::UNABLE_TO_CONNECT,
            format!(
                "airlock: the TLS handshake with the upstream of connection \"{connection}\" failed"
            ),
        )
    } else if let upstream::UpstreamError::UnsafeEncoding(encoding) = error {
        refuse(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!(
                "airlock: the upstream of connection \"{connection}\" sets client_encoding \"{encoding}\" \
                 (a role or database setting), which the gateway does not support; use UTF8"
            ),
        )
    } else {
        // The upstream's own words (too many clients, its version, its
        // settings) are not the client's to read.
        refuse(
            sqlstate::UNABLE_TO_CONNECT,
            format!("airlock: the upstream of connection \"{connection}\" refused the connection"),
        )
    }
}
