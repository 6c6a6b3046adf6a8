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
use serde_json::json;
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
use airlock_store::prelude::*;
use airlock_store::{now_unix, NewEvent};

use crate::errors::{fatal, sqlstate};
use crate::gate::CommandGate;
use crate::io::{read_more, BoxedIo};
use crate::relay::{relay, Expiry, RecordingContext, RelayEnd, RelaySession, RelayStats};
use crate::upstream::{self, UpstreamConnection, UpstreamTarget};
use airlock_core::auth::{authenticate_token, AuthFailure, Authenticated, LockScope};
use airlock_core::registry::{
    LimitReached, Registration, SessionLimits, SessionSummary, UpstreamCancel,
};
use airlock_core::state::{GatewayState, ResolvedConnection};
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
    serve_in_span(state, tcp, peer, session_id)
        .instrument(span)
        .await;
}

async fn serve_in_span(
    state: Arc<GatewayState>,
    tcp: TcpStream,
    peer: SocketAddr,
    session_id: String,
) {
    let _ = tcp.set_nodelay(true);
    let started = Instant::now();
    let handshake =
        tokio::time::timeout(state.settings.auth_timeout, negotiate(&state, tcp, peer)).await;
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
    tcp: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<Negotiated> {
    let mut stream: BoxedIo = Box::new(tcp);
    let mut buf = BytesMut::with_capacity(1024);
    let mut tls = false;
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

/// Checks a presented token: an OIDC JWT when issuers are configured and it
/// looks like one, an airlock token otherwise.
async fn authenticate_any(
    state: &GatewayState,
    token: String,
    user: &str,
    database: &str,
) -> Result<Result<Authenticated, AuthFailure>, Refusal> {
    if let (Some(validator), true) = (
        &state.oidc,
        airlock_oidc::OidcValidator::looks_like_jwt(&token),
    ) {
        return Ok(match validator.validate(&token).await {
            Ok(validated) if validated.identity.name == user => Ok(Authenticated {
                token_id: format!("oidc:{}", validated.issuer_name),
                identity: validated.identity,
            }),
            Ok(_) => Err(AuthFailure::IdentityMismatch),
            Err(error) => {
                tracing::info!(%error, "OIDC token refused");
                Err(if error.is_provider_failure() {
                    AuthFailure::OidcUnavailable
                } else {
                    AuthFailure::OidcInvalid
                })
            }
        });
    }
    let store = Arc::clone(&state.store);
    let (lookup_user, lookup_database) = (user.to_string(), database.to_string());
    tokio::task::spawn_blocking(move || {
        authenticate_token(&store, &token, &lookup_user, &lookup_database)
    })
    .await
    .map_err(|_| {
        refuse(
            sqlstate::SYSTEM_ERROR,
            "airlock: internal error during authentication",
        )
    })?
    .map_err(|error| {
        tracing::error!(%error, "store unavailable during authentication");
        refuse(
            sqlstate::SYSTEM_ERROR,
            "airlock: the gateway store is unavailable; try again later",
        )
    })
}

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
    if let Err(locked) = state.spray_guard.check(peer.ip(), user) {
        let whom = match locked.scope {
            LockScope::Source => String::new(),
            LockScope::Identity => format!(" for user \"{user}\""),
        };
        return Err(refuse(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            format!(
                "airlock: too many failed authentication attempts{whom} from {}; try again in {} s",
                peer.ip(),
                locked.remaining.as_secs().max(1)
            ),
        ));
    }
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
    let checked = authenticate_any(state, token, user, database).await?;
    match checked {
        Ok(authenticated) => Ok(Some((authenticated, buf))),
        Err(failure) => {
            let outcome = state.spray_guard.record_failure(peer.ip(), user);
            tracing::warn!(
                client = %peer, identity = %user, connection = %database, reason = failure.as_str(),
                source_failures = outcome.source_failures, "authentication failed"
            );
            let mut events = vec![NewEvent {
                kind: airlock_core::events::EventKind::AuthFailure.into(),
                session_id: Some(session_id.to_string()),
                identity: Some(user.to_string()),
                data: json!({
                    "protocol": "postgres",
                    "client_address": peer.to_string(),
                    "connection": database,
                    "reason": failure.as_str(),
                    "source_failures": outcome.source_failures,
                    "identity_failures": outcome.identity_failures,
                })
                .into(),
            }];
            if let Some(scope) = outcome.locked_now {
                tracing::warn!(client = %peer, identity = %user, scope = scope.as_str(), "locked out after repeated authentication failures");
                events.push(NewEvent {
                    kind: airlock_core::events::EventKind::AuthLockout.into(),
                    session_id: Some(session_id.to_string()),
                    identity: Some(user.to_string()),
                    data: json!({
                        "protocol": "postgres",
                        "client_address": peer.ip().to_string(),
                        "scope": scope.as_str(),
                        "lockout_seconds": state.settings.lockout_duration.as_secs(),
                    })
                    .into(),
                });
            }
            if let Err(error) = state.recorder.record(events).await {
                tracing::error!(%error, "could not record an authentication failure");
            }
            Err(refuse(
                sqlstate::INVALID_PASSWORD,
                format!(
                    "airlock: authentication failed for user \"{user}\" on connection \"{database}\": \
                     the token is invalid, expired, revoked or not valid for this connection"
                ),
            ))
        }
    }
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

/// The upstream opened for an admitted session, and what the later phases
/// need of its connection.
struct OpenedUpstream {
    upstream: UpstreamConnection,
    /// The upstream's address, for cancel requests.
    address: String,
    connection_name: String,
    connection_info: airlock_types::ConnectionInfo,
    /// When the JIT grant the session was admitted under expires.
    grant_expires_at: Option<i64>,
}

/// The phases after authentication: admit, open the upstream, greet the
/// client, relay, finish.
async fn connect_and_relay(
    ctx: &SessionContext<'_>,
    mut stream: BoxedIo,
    client_buf: BytesMut,
) -> Result<(), Refusal> {
    // Admit: take a slot among the live sessions before anything is opened
    // upstream, so one identity cannot take every upstream connection.
    let registration = match admit_session(ctx).await {
        Ok(registration) => registration,
        Err(refusal) => return Err(refuse_client(&mut stream, refusal).await),
    };
    let opened = match open_upstream(ctx).await {
        Ok(opened) => opened,
        Err(refusal) => return Err(refuse_client(&mut stream, refusal).await),
    };
    let backend_key = opened.upstream.backend_key;
    let greeted = greet(
        ctx,
        &mut stream,
        &registration,
        &opened.upstream.greeting,
        backend_key,
        &opened.address,
    );
    if greeted.await.is_err() {
        return Ok(());
    }
    tracing::info!(
        session = %ctx.session_id, identity = %ctx.authenticated.identity.name,
        connection = %opened.connection_name, client = %ctx.peer, tls = ctx.tls, "session started"
    );

    let state = ctx.state;
    let stats = RelayStats::default();
    let mut gate = CommandGate::new(
        Arc::clone(state),
        ctx.authenticated.identity.clone(),
        opened.connection_info,
    );
    let deadline = session_deadline(ctx, opened.grant_expires_at);
    let mut kill = registration.kill.clone();
    let (mut client_read, mut client_write) = tokio::io::split(stream);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(opened.upstream.stream);
    let (end, in_flight) = relay(
        &mut client_read,
        client_buf,
        &mut client_write,
        &mut upstream_read,
        opened.upstream.leftover,
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
                connection: &opened.connection_name,
                sample_rows: state.config.recording.sample_rows,
                sample_bytes: state.config.recording.sample_bytes,
                max_statement_bytes: state.config.recording.max_statement_bytes,
            },
        },
    )
    .await;

    // Finish: the one place where the end of a session becomes a client
    // error and an audit event.
    if let Some(error) = client_error(&end) {
        let _ = client_write.write_all(&error).await;
        let _ = client_write.shutdown().await;
    }
    if matches!(end, RelayEnd::ClientVanished { .. } | RelayEnd::Io(_)) && in_flight {
        // The client is gone mid-query: stop the upstream's work before the
        // connection is dropped, rather than let it run to completion.
        if let Some((process_id, secret_key)) = backend_key {
            let _ = upstream::send_cancel(&opened.address, process_id, secret_key).await;
        }
    }
    let _ = upstream_write.shutdown().await;
    drop(registration);
    record_session_end(ctx, &opened.connection_name, &end, &stats).await;
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

/// Records the `session.end` event of a relayed session.
async fn record_session_end(
    ctx: &SessionContext<'_>,
    connection_name: &str,
    end: &RelayEnd,
    stats: &RelayStats,
) {
    let detail = match end {
        RelayEnd::ClientProtocolError(message)
        | RelayEnd::UpstreamProtocolError(message)
        | RelayEnd::Killed(message)
        | RelayEnd::Revoked(message)
        | RelayEnd::Expired(message)
        | RelayEnd::Io(message) => Some(message.clone()),
        _ => None,
    };
    let event = NewEvent {
        kind: airlock_core::events::EventKind::SessionEnd.into(),
        session_id: Some(ctx.session_id.to_string()),
        identity: Some(ctx.authenticated.identity.name.clone()),
        data: json!({
            "connection": connection_name,
            "ended_by": end.as_str(),
            "detail": detail,
            "duration_ms": u64::try_from(ctx.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "bytes_from_client": stats.bytes_from_client.load(Ordering::Relaxed),
            "bytes_from_upstream": stats.bytes_from_upstream.load(Ordering::Relaxed),
            "commands": stats.commands.load(Ordering::Relaxed),
            "refused": stats.refused.load(Ordering::Relaxed),
        })
        .into(),
    };
    if let Err(error) = ctx.state.audit(event).await {
        tracing::error!(session = %ctx.session_id, %error, "could not record the end of a session");
    }
}

/// Registers the session among the live ones unless a session limit
/// (`limits.*`) is reached: then `53300 too_many_connections` naming the
/// limit and its setting, and a `session.refused` event.
async fn admit_session(ctx: &SessionContext<'_>) -> Result<Registration, Refusal> {
    let (state, authenticated, connection) = (ctx.state, ctx.authenticated, ctx.database);
    let (session_id, peer, tls) = (ctx.session_id, ctx.peer, ctx.tls);
    let limits = SessionLimits {
        per_identity: state.config.limits.max_sessions_per_identity,
        per_connection: state.config.limits.max_sessions_per_connection,
    };
    let summary = SessionSummary {
        session_id: session_id.to_string(),
        identity: authenticated.identity.name.clone(),
        token_id: authenticated.token_id.clone(),
        connection: connection.to_string(),
        client_address: peer.to_string(),
        tls,
        started_at: now_unix(),
    };
    let reached = match state.sessions.try_register(summary, limits) {
        Ok(registration) => return Ok(registration),
        Err(reached) => reached,
    };
    let identity = &authenticated.identity.name;
    let message = match reached {
        LimitReached::PerIdentity(limit) => format!(
            "airlock: too many sessions for identity \"{identity}\": at most {limit} live sessions \
             per identity ({})",
            reached.setting()
        ),
        LimitReached::PerConnection(limit) => format!(
            "airlock: too many sessions on connection \"{connection}\": at most {limit} live \
             sessions per connection ({})",
            reached.setting()
        ),
    };
    tracing::warn!(session = %session_id, identity = %identity, connection = %connection,
        setting = reached.setting(), limit = reached.limit(), "session refused: limit reached");
    let event = NewEvent {
        kind: airlock_core::events::EventKind::SessionRefused.into(),
        session_id: Some(session_id.to_string()),
        identity: Some(identity.clone()),
        data: json!({
            "connection": connection,
            "client_address": peer.to_string(),
            "reason": "session_limit",
            "setting": reached.setting(),
            "limit": reached.limit(),
        })
        .into(),
    };
    if let Err(error) = state.audit(event).await {
        tracing::error!(%error, "could not record a refused session");
    }
    Err(refuse(sqlstate::TOO_MANY_CONNECTIONS, message))
}

/// Admission and upstream login: the startup packet checked, the
/// connection resolved, the identity admitted to it, the startup settings
/// decided, the credential decrypted, `session.start` recorded, then the
/// upstream opened. Every step refuses rather than fall back.
async fn open_upstream(ctx: &SessionContext<'_>) -> Result<OpenedUpstream, Refusal> {
    let requested = check_startup_packet(ctx.startup)?;
    let connection = resolve_connection(ctx)?;
    let grant_expires_at = admit_to_connection(ctx, &connection).await?;
    let forwarded = decide_startup_settings(ctx, &connection, requested)?;
    let (target, credential_version) = decrypt_credential(ctx, &connection).await?;
    // Record the start before any byte goes upstream: no session without a
    // record (fail closed).
    record_session_start(ctx, &connection, credential_version).await?;
    let upstream = connect_upstream(ctx, &connection, &target, &forwarded).await?;
    Ok(OpenedUpstream {
        upstream,
        address: connection.address.clone(),
        connection_name: connection.name.clone(),
        connection_info: ctx.state.connection_info(&connection),
        grant_expires_at,
    })
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

/// The connection the client named; an unknown one is an error.
fn resolve_connection(ctx: &SessionContext<'_>) -> Result<ResolvedConnection, Refusal> {
    let database = ctx.database;
    ctx.state
        .resolve_connection(database)
        .map_err(|_| {
            refuse(
                sqlstate::SYSTEM_ERROR,
                "airlock: the gateway store is unavailable; try again later",
            )
        })?
        .ok_or_else(|| {
            refuse(
                sqlstate::INVALID_CATALOG_NAME,
                format!("airlock: connection \"{database}\" is not configured"),
            )
        })
}

/// Just-in-time connections admit an identity only under a grant (or a
/// standing access rule); answers when the grant expires.
async fn admit_to_connection(
    ctx: &SessionContext<'_>,
    connection: &ResolvedConnection,
) -> Result<Option<i64>, Refusal> {
    if !connection.jit {
        return Ok(None);
    }
    let identity = &ctx.authenticated.identity;
    match ctx.state.admit(identity, connection) {
        Ok(Some(airlock_core::access::Admission::Grant(grant))) => Ok(Some(grant.expires_at)),
        Ok(Some(airlock_core::access::Admission::Standing { .. })) => Ok(None),
        Ok(None) => {
            let event = NewEvent {
                kind: airlock_core::events::EventKind::AccessRefused.into(),
                session_id: Some(ctx.session_id.to_string()),
                identity: Some(identity.name.clone()),
                data:
                    json!({"connection": connection.name, "client_address": ctx.peer.to_string()})
                        .into(),
            };
            let _ = ctx.state.audit(event).await;
            Err(refuse(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                format!(
                    "airlock: {} has no access grant for connection \"{}\"; request one with: \
                     airlock access request --connection {} --duration 30m --reason \"…\"",
                    identity.name, connection.name, connection.name
                ),
            ))
        }
        Err(_) => Err(refuse(
            sqlstate::SYSTEM_ERROR,
            "airlock: the gateway store is unavailable; try again later",
        )),
    }
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

/// The upstream login: the connection's stored credential, decrypted for
/// the handshake only, and the credential's version for the record.
async fn decrypt_credential(
    ctx: &SessionContext<'_>,
    connection: &ResolvedConnection,
) -> Result<(UpstreamTarget, i64), Refusal> {
    let store = Arc::clone(&ctx.state.store);
    let credential_name = connection.credential.clone();
    let record = tokio::task::spawn_blocking(move || store.credential(&credential_name))
        .await
        .map_err(|_| refuse(sqlstate::SYSTEM_ERROR, "airlock: internal error"))?
        .map_err(|_| {
            refuse(
                sqlstate::SYSTEM_ERROR,
                "airlock: the gateway store is unavailable; try again later",
            )
        })?
        .ok_or_else(|| {
            refuse(
                sqlstate::SERVER_REJECTED_CONNECTION,
                format!(
                    "airlock: connection \"{}\" is not ready: its credential \"{}\" is not stored",
                    connection.name, connection.credential
                ),
            )
        })?;
    let password = ctx
        .state
        .vault
        .decrypt(
            &record.name,
            &record.username,
            &record.nonce,
            &record.ciphertext,
        )
        .map_err(|error| {
            tracing::error!(credential = %record.name, %error, "credential does not decrypt");
            refuse(
                sqlstate::SERVER_REJECTED_CONNECTION,
                format!(
                    "airlock: connection \"{}\" is not ready: its credential cannot be decrypted",
                    connection.name
                ),
            )
        })?;
    let target = UpstreamTarget {
        address: connection.address.clone(),
        database: connection.database.clone(),
        username: record.username,
        password,
        tls: connection.tls.clone(),
    };
    Ok((target, record.version))
}

/// Records `session.start`; a session whose start cannot be recorded is
/// refused.
async fn record_session_start(
    ctx: &SessionContext<'_>,
    connection: &ResolvedConnection,
    credential_version: i64,
) -> Result<(), Refusal> {
    let authenticated = ctx.authenticated;
    let start_event = NewEvent {
        kind: airlock_core::events::EventKind::SessionStart.into(),
        session_id: Some(ctx.session_id.to_string()),
        identity: Some(authenticated.identity.name.clone()),
        data: json!({
            "protocol": "postgres",
            "token_id": authenticated.token_id,
            "identity_kind": authenticated.identity.kind,
            "groups": authenticated.identity.groups,
            "connection": connection.name,
            "client_address": ctx.peer.to_string(),
            "tls": ctx.tls,
            "application_name": ctx.startup.param("application_name"),
            "credential_version": credential_version,
        })
        .into(),
    };
    ctx.state.audit(start_event).await.map_err(|error| {
        tracing::error!(%error, "cannot record session start; refusing the session");
        refuse(
            sqlstate::IO_ERROR,
            "airlock: the audit log cannot be written; the session is refused",
        )
    })
}

/// Logs in upstream. A failure is recorded (`session.upstream_failed`, then
/// `session.end`, since the start was recorded) and refused with words that
/// do not describe the inside.
async fn connect_upstream(
    ctx: &SessionContext<'_>,
    connection: &ResolvedConnection,
    target: &UpstreamTarget,
    forwarded: &[(String, String)],
) -> Result<UpstreamConnection, Refusal> {
    let state = ctx.state;
    let connected = tokio::time::timeout(
        state.settings.connect_timeout,
        upstream::connect(target, forwarded, state.config.postgres.max_message_bytes),
    )
    .await;
    let refusal = match connected {
        Ok(Ok(upstream)) => return Ok(upstream),
        Ok(Err(error)) => {
            tracing::warn!(session = %ctx.session_id, connection = %connection.name, %error, "upstream connection failed");
            let event = NewEvent {
                kind: airlock_core::events::EventKind::SessionUpstreamFailed.into(),
                session_id: Some(ctx.session_id.to_string()),
                identity: Some(ctx.authenticated.identity.name.clone()),
                data: json!({"connection": connection.name, "error": error.to_string()}).into(),
            };
            let _ = state.audit(event).await;
            upstream_refusal(&error, &connection.name)
        }
        Err(_) => refuse(
            sqlstate::UNABLE_TO_CONNECT,
            format!(
                "airlock: connecting to the upstream of connection \"{}\" timed out",
                connection.name
            ),
        ),
    };
    // The session was recorded as started: record that it ended.
    let event = NewEvent {
        kind: airlock_core::events::EventKind::SessionEnd.into(),
        session_id: Some(ctx.session_id.to_string()),
        identity: Some(ctx.authenticated.identity.name.clone()),
        data: json!({
            "connection": connection.name,
            "ended_by": "upstream_failed",
            "detail": refusal.message,
            "duration_ms": 0,
            "bytes_from_client": 0,
            "bytes_from_upstream": 0,
            "commands": 0,
            "refused": 0,
        })
        .into(),
    };
    let _ = state.audit(event).await;
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
