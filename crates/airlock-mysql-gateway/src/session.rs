//! One MySQL client session, in named phases:
//!
//! 1. **negotiate**: the greeting (Handshake v10 offering
//!    `caching_sha2_password` with a random scramble, and TLS), the
//!    SSLRequest and the TLS handshake with the gateway's certificate, the
//!    plaintext rule (`mysql.allow_plaintext`, loopback only by default);
//! 2. **authenticate**: the token is the password. It is stored hashed, so
//!    the gateway needs it in clear: the codec's listener answers
//!    `caching_sha2_password` with "perform full authentication" (switching
//!    clients that start with another plugin), so the client sends it inside
//!    TLS; then the core's lockout check and token check. Every token
//!    failure is the same 1045 `28000`;
//! 3. **admit**: the core's admission (session limits, the connection and
//!    its protocol, JIT grant, credential, `session.start`), then the
//!    upstream login with the `UpstreamLogin` only admission hands out, then
//!    OK to the client;
//! 4. **relay** ([`crate::relay`]) until either side ends;
//! 5. **finish**: the client's last error and `session.end`.
//!
//! Every log line carries the session's id, protocol, client, identity and
//! connection through a `tracing` span.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::Instrument;

use airlock_core::admission::{AdmissionRequest, AdmittedSession, SessionCounts, UpstreamLogin};
use airlock_core::auth::Authenticated;
use airlock_core::login::LoginAttempt;
use airlock_core::state::GatewayState;
use airlock_mysql::listener::{ClientCredentials, ClientLogin, ListenerParams, ListenerStep};
use airlock_mysql::{
    Capabilities, ErrPacket, OkPacket, PacketCodec, ServerStatus, CHARSET_UTF8MB4_GENERAL_CI,
};
use airlock_store::now_unix;
use airlock_types::Protocol;

use crate::errors;
use crate::gate::MySqlGate;
use crate::io::{BoxedIo, PacketStream, Rewound};
use crate::kill::ConnectionIds;
use crate::record::RecordingContext;
use crate::relay::{Counts, Expiry, Relay, RelayEnd};
use crate::upstream::{self, ClientSide, UpstreamConnection};

/// The version clients read in the greeting, marked as the gateway (the
/// greeting names `caching_sha2_password`, which clients then speak
/// unprompted), in the MariaDB form (`5.5.5-` before the version, as MariaDB servers
/// send it): MariaDB Connector/C reads a server's extended capabilities,
/// bulk operations among them, only behind that prefix; MySQL drivers
/// strip it from a version that names MariaDB.
pub const SERVER_VERSION: &str = "5.5.5-10.11.0-MariaDB-airlock";

/// What the greeting offers: the listener's defaults, announced the
/// MariaDB way (`CLIENT_MYSQL` clear, extended capabilities in the filler,
/// as a MariaDB server does; MySQL clients ignore both) so that MariaDB
/// clients can negotiate `COM_STMT_BULK_EXECUTE`. The greeting precedes the
/// choice of upstream: a session whose upstream does not offer bulk
/// operations refuses the command (the relay checks both sides).
/// `CLIENT_LOCAL_FILES` is offered so that a client started with LOCAL
/// INFILE enabled can negotiate it; the server's file requests reach such
/// a client only as `crate::answer` allows.
pub const OFFERED_CAPABILITIES: Capabilities = Capabilities(
    (ListenerParams::DEFAULT_CAPABILITIES.0 & !Capabilities::LONG_PASSWORD.0)
        | Capabilities::LOCAL_FILES.0
        | Capabilities::MARIADB_STMT_BULK_OPERATIONS.0,
);

/// Bound on a client's packets before it is authenticated (a login packet
/// with a JWT is well below).
const LOGIN_MAX_PACKET_BYTES: usize = 64 * 1024;

/// A client that got through the login exchange.
struct LoggedIn {
    client: PacketStream,
    credentials: ClientCredentials,
    authenticated: Authenticated,
    connection: String,
}

/// Serves one accepted TCP connection to the end. `ids` hands out the
/// connection id its client sees and maps `KILL`s ([`crate::kill`]).
pub async fn serve(
    state: Arc<GatewayState>,
    tcp: TcpStream,
    peer: SocketAddr,
    ids: Arc<ConnectionIds>,
) {
    let session_id = new_session_id();
    let span = tracing::info_span!(
        "session",
        session = %session_id,
        protocol = "mysql",
        client = %peer,
        identity = tracing::field::Empty,
        connection = tracing::field::Empty,
    );
    let connection_id = ReservedId::new(ids);
    serve_in_span(state, tcp, peer, session_id, &connection_id)
        .instrument(span)
        .await;
}

/// This session's gateway connection id, released when the session ends.
struct ReservedId {
    ids: Arc<ConnectionIds>,
    id: u32,
}

impl ReservedId {
    fn new(ids: Arc<ConnectionIds>) -> Self {
        let id = ids.allocate();
        Self { ids, id }
    }
}

impl Drop for ReservedId {
    fn drop(&mut self) {
        self.ids.release(self.id);
    }
}

fn new_session_id() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("s-{}", hex::encode(bytes))
}

async fn serve_in_span(
    state: Arc<GatewayState>,
    tcp: TcpStream,
    peer: SocketAddr,
    session_id: String,
    connection_id: &ReservedId,
) {
    let _ = tcp.set_nodelay(true);
    let started = Instant::now();
    let client = PacketStream::new(Box::new(tcp), PacketCodec::new(LOGIN_MAX_PACKET_BYTES));
    let login = tokio::time::timeout(
        state.settings.auth_timeout,
        negotiate_and_authenticate(&state, client, peer, &session_id, connection_id.id),
    )
    .await;
    let logged_in = match login {
        Ok(Some(logged_in)) => logged_in,
        Ok(None) => return,
        Err(_) => {
            tracing::info!("authentication timed out");
            return;
        }
    };
    admit_and_relay(&state, logged_in, peer, &session_id, started, connection_id).await;
}

/// Sends `err` (continuing the conversation's count) and closes.
async fn refuse(client: &mut PacketStream, err: &ErrPacket) {
    tracing::info!(code = err.code, message = %err.message, "session refused");
    let _ = client.write(&err.encode()).await;
    client.shutdown().await;
}

/// Phases 1 and 2: greeting, TLS, the token, the core's checks.
async fn negotiate_and_authenticate(
    state: &Arc<GatewayState>,
    mut client: PacketStream,
    peer: SocketAddr,
    session_id: &str,
    connection_id: u32,
) -> Option<LoggedIn> {
    let credentials = match negotiate(state, &mut client, peer, connection_id).await {
        Ok(Some(credentials)) => credentials,
        Ok(None) => return None,
        Err(err) => {
            refuse(&mut client, &err).await;
            return None;
        }
    };
    let (user, connection) = identity_and_connection(&credentials);
    let span = tracing::Span::current();
    span.record("identity", user.as_str());
    span.record("connection", connection.as_str());
    if user.is_empty() {
        refuse(&mut client, &errors::no_user()).await;
        return None;
    }
    if connection.is_empty() {
        refuse(&mut client, &errors::no_connection_named(&user)).await;
        return None;
    }
    if !crate::charset::is_ascii_safe(credentials.charset) {
        let err = errors::unsupported(
            "this character set",
            "the gateway and the server could read one statement differently in it; use utf8mb4",
        );
        refuse(&mut client, &err).await;
        return None;
    }
    let attempt = LoginAttempt {
        protocol: Protocol::Mysql,
        user: &user,
        connection: &connection,
        session_id,
        peer,
    };
    if let Err(refusal) = state.check_lockout(&attempt) {
        refuse(&mut client, &errors::login(&refusal)).await;
        return None;
    }
    // A token is ASCII; other bytes cannot match one (and fail as any wrong
    // token does).
    let token = String::from_utf8_lossy(&credentials.token).into_owned();
    match state.log_in(&attempt, token).await {
        Ok(authenticated) => Some(LoggedIn {
            client,
            credentials,
            authenticated,
            connection,
        }),
        Err(refusal) => {
            refuse(&mut client, &errors::login(&refusal)).await;
            None
        }
    }
}

/// The greeting and the login exchange up to the client's token; `None`
/// when the client went away.
async fn negotiate(
    state: &Arc<GatewayState>,
    client: &mut PacketStream,
    peer: SocketAddr,
    connection_id: u32,
) -> Result<Option<ClientCredentials>, ErrPacket> {
    let mut login = ClientLogin::new(ListenerParams {
        server_version: SERVER_VERSION.into(),
        connection_id,
        scramble: scramble(),
        capabilities: OFFERED_CAPABILITIES,
        tls_available: true,
        plaintext_allowed: state.config.mysql.allow_plaintext.allows(peer.ip()),
        charset: CHARSET_UTF8MB4_GENERAL_CI,
        status: ServerStatus::AUTOCOMMIT,
    });
    let listener_error = |error| errors::listener(&error, peer.ip());
    let greeting = login.greeting().map_err(listener_error)?;
    if client.write(&greeting).await.is_err() {
        return Ok(None);
    }
    loop {
        let Ok(packet) = client.read().await else {
            return Ok(None);
        };
        match login.receive(&packet.payload).map_err(listener_error)? {
            ListenerStep::Send(payload) => {
                if client.write(&payload).await.is_err() {
                    return Ok(None);
                }
            }
            ListenerStep::StartTls => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&state.server_tls));
                let socket: BoxedIo =
                    std::mem::replace(&mut client.stream, Box::new(tokio::io::duplex(1).0));
                // What was read past the SSLRequest is the start of the TLS
                // handshake, and goes to the TLS layer as such.
                let plain: BoxedIo =
                    Box::new(Rewound::new(std::mem::take(&mut client.buf), socket));
                let Ok(tls) = acceptor.accept(plain).await else {
                    return Ok(None);
                };
                client.stream = Box::new(tls);
                login.tls_established().map_err(listener_error)?;
            }
            ListenerStep::Credentials(credentials) => return Ok(Some(*credentials)),
        }
    }
}

/// Who logs in where: user = identity, database = connection. A client
/// that cannot name a database at login (`mysqldump` connects without one
/// and selects it later) may write `identity#connection` as its user.
fn identity_and_connection(credentials: &ClientCredentials) -> (String, String) {
    let user = credentials.username.clone();
    match credentials.database.as_deref() {
        Some(database) if !database.is_empty() => (user, database.to_string()),
        _ => match user.rsplit_once('#') {
            Some((identity, connection)) if !identity.is_empty() => {
                (identity.to_string(), connection.to_string())
            }
            _ => (user, String::new()),
        },
    }
}

/// 20 random bytes without NUL (the greeting carries them NUL-terminated).
fn scramble() -> [u8; 20] {
    let mut bytes: [u8; 20] = rand::random();
    for byte in &mut bytes {
        *byte = 1 + (*byte % 127);
    }
    bytes
}

/// Phases 3 to 5: admission, the upstream login, OK, the relay, the end.
async fn admit_and_relay(
    state: &Arc<GatewayState>,
    logged_in: LoggedIn,
    peer: SocketAddr,
    session_id: &str,
    started: Instant,
    connection_id: &ReservedId,
) {
    let LoggedIn {
        mut client,
        credentials,
        authenticated,
        connection,
    } = logged_in;
    let request = AdmissionRequest {
        protocol: Protocol::Mysql,
        authenticated: &authenticated,
        connection: &connection,
        session_id,
        peer,
        tls: credentials.over_tls,
        started,
    };
    let admitted = match state.admit_session(&request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(&mut client, &errors::admission(&refusal)).await,
    };
    let program = credentials
        .connect_attributes
        .iter()
        .find(|(key, _)| key == "program_name")
        .map(|(_, value)| value.as_str());
    let (session, login) = match admitted.open(state, &request, program).await {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&mut client, &errors::admission(&refusal)).await,
    };
    let max_packet_bytes = state.config.mysql.max_packet_bytes;
    let mut attributes = credentials.connect_attributes.clone();
    attributes.push(("airlock_session".into(), session_id.to_string()));
    let side = ClientSide {
        capabilities: credentials.capabilities,
        charset: credentials.charset,
        max_packet_size: credentials.max_packet_size,
        connect_attributes: attributes,
        max_packet_bytes,
    };
    let Some((session, upstream)) = login_upstream(state, &mut client, session, login, side).await
    else {
        return;
    };
    let ok = OkPacket {
        status: upstream.outcome.ok.status,
        ..OkPacket::default()
    };
    if client
        .write(&ok.encode(credentials.capabilities))
        .await
        .is_err()
    {
        session
            .record_end("client_vanished", None, SessionCounts::default())
            .await;
        return;
    }
    client.codec.set_max_packet_bytes(max_packet_bytes);
    tracing::info!(tls = credentials.over_tls, plugin = %upstream.outcome.plugin, "session started");
    let context = RelayContext {
        state,
        authenticated: &authenticated,
        capabilities: credentials.capabilities,
        session_id,
        connection_id,
    };
    relay_and_finish(&context, session, client, upstream).await;
}

/// Phase 3, upstream login: connects with `login` (dropped right after);
/// a failure is recorded and refused to the client (`None`).
async fn login_upstream(
    state: &Arc<GatewayState>,
    client: &mut PacketStream,
    session: AdmittedSession,
    login: UpstreamLogin,
    side: ClientSide,
) -> Option<(AdmittedSession, UpstreamConnection)> {
    let connect = async {
        let key = upstream::pinned_public_key(state, &session.connection.name).await?;
        upstream::connect(&login, side, key).await
    };
    let connected = tokio::time::timeout(state.settings.connect_timeout, connect).await;
    drop(login);
    let connection_name = session.connection.name.clone();
    match connected {
        Ok(Ok(upstream)) => Some((session, upstream)),
        Ok(Err(error)) => {
            tracing::warn!(%error, "upstream connection failed");
            let err = errors::upstream(&connection_name, error.problem());
            session
                .record_upstream_failure(Some(error.to_string()), &err.message)
                .await;
            refuse(client, &err).await;
            None
        }
        Err(_) => {
            let err = errors::upstream(&connection_name, errors::UpstreamProblem::TimedOut);
            session.record_upstream_failure(None, &err.message).await;
            refuse(client, &err).await;
            None
        }
    }
}

/// What the relay phase needs of the session beyond its two streams.
struct RelayContext<'a> {
    state: &'a Arc<GatewayState>,
    authenticated: &'a Authenticated,
    /// The client's capabilities.
    capabilities: Capabilities,
    session_id: &'a str,
    connection_id: &'a ReservedId,
}

/// Phases 4 and 5: the relay until either side ends, then the finish.
async fn relay_and_finish(
    context: &RelayContext<'_>,
    session: AdmittedSession,
    mut client: PacketStream,
    mut upstream: UpstreamConnection,
) {
    let RelayContext {
        state,
        authenticated,
        capabilities,
        session_id,
        connection_id,
    } = *context;
    let connection_name = session.connection.name.clone();
    let recording = RecordingContext {
        session_id,
        identity: &authenticated.identity.name,
        connection: &connection_name,
        sample_rows: state.config.recording.sample_rows,
        sample_bytes: state.config.recording.sample_bytes,
        max_statement_bytes: state.config.recording.max_statement_bytes,
    };
    let gate = MySqlGate::new(
        Arc::clone(state),
        authenticated.identity.clone(),
        state.connection_info(&session.connection),
    );
    let recorder = state.config.recording.enabled.then_some(&state.recorder);
    connection_id.ids.relaying(
        connection_id.id,
        &authenticated.identity.name,
        &connection_name,
        upstream.outcome.server.connection_id,
    );
    let mut relay = Relay::new(gate, recorder, recording, capabilities);
    relay.upstream_capabilities = upstream.outcome.capabilities;
    relay.translation = upstream.translation;
    relay.kills = Some(Arc::clone(&connection_id.ids));
    relay.database = session.connection.database.clone();
    let deadline = session_deadline(state, authenticated, session.grant_expires_at);
    let mut kill = session.registration.kill.clone();
    let end = relay
        .run(&mut client, &mut upstream.stream, &mut kill, deadline)
        .await;
    finish(
        session,
        &mut client,
        &mut upstream.stream,
        &end,
        &relay.counts,
    )
    .await;
}

/// Phase 5, finish: the client's last error and `session.end`.
async fn finish(
    session: AdmittedSession,
    client: &mut PacketStream,
    upstream: &mut PacketStream,
    end: &RelayEnd,
    relay_counts: &Counts,
) {
    if let Some(err) = end.client_error() {
        // Mid-command the count goes on; idle, the client's next command
        // (sequence 0) reads its answer as sequence 1.
        if client.codec.sequence_id() == 0 {
            client.codec.set_sequence_id(1);
        }
        let _ = client.write(&err.encode()).await;
    }
    client.shutdown().await;
    upstream.shutdown().await;
    let counts = SessionCounts {
        bytes_from_client: client.bytes_in,
        bytes_from_upstream: upstream.bytes_in,
        commands: relay_counts.commands,
        refused: relay_counts.refused,
    };
    tracing::info!(ended_by = end.as_str(), "session ended");
    session.record_end(end.as_str(), end.detail(), counts).await;
}

/// When the session must close: with its token (unless configured
/// otherwise) or its access grant, whichever ends first.
fn session_deadline(
    state: &GatewayState,
    authenticated: &Authenticated,
    grant_expires_at: Option<i64>,
) -> Option<(tokio::time::Instant, Expiry)> {
    let identity = &authenticated.identity;
    let token_end = (!state.config.auth.sessions_outlive_tokens).then_some(identity.expires_at);
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
