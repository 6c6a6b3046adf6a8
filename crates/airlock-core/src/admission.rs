//! Admission: from an authenticated identity and the connection it named
//! to the one value that lets a protocol crate open an upstream.
//!
//! Every protocol admits a session the same way, in two steps:
//!
//! 1. [`GatewayState::admit_session`] takes a slot among the live sessions
//!    (session limits, before anything is opened upstream), resolves the
//!    connection the client named, checks that it speaks the client's
//!    protocol, and admits the identity to it (a `jit` connection needs a
//!    grant or a standing access rule). The result, [`Admitted`], holds no
//!    credential: the protocol may still refuse (PostgreSQL decides its
//!    startup settings here).
//! 2. [`Admitted::open`] decrypts the connection's stored credential and
//!    records `session.start` (no session without a record: fail closed).
//!    Only it constructs an [`UpstreamLogin`], the credential for the
//!    upstream login, and protocol crates open upstreams from an
//!    [`UpstreamLogin`] only: no upstream without admission.
//!
//! The session then ends through [`AdmittedSession`], which records
//! `session.end` (and `session.upstream_failed` when the login fails) with
//! the same payload for every protocol. Refusals are protocol-neutral
//! [`AdmissionRefusal`]s; each protocol's `errors` module words them in its
//! own dialect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use airlock_store::now_unix;
use airlock_types::{Identity, Protocol, Secret};

use crate::access::Admission;

use crate::auth::Authenticated;
use crate::events::{
    record, AccessRefused, SessionEnd, SessionRefused, SessionStart, SessionUpstreamFailed,
};
use crate::registry::{LimitReached, Registration, SessionLimits, SessionSummary};
use crate::state::{GatewayState, ResolvedConnection};
use crate::tls::UpstreamTls;

/// Who asks to be admitted where, over which protocol.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// The protocol the client speaks (its listener).
    pub protocol: Protocol,
    pub authenticated: &'a Authenticated,
    /// The connection the client named.
    pub connection: &'a str,
    pub session_id: &'a str,
    pub peer: SocketAddr,
    /// Whether the client's connection is encrypted.
    pub tls: bool,
    /// When the client connected (for the session's duration).
    pub started: Instant,
}

/// Why a session was not admitted. Messages name what the client can do
/// and never describe the inside (addresses, the store's errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionRefusal {
    /// A `limits.*` session limit is reached.
    #[error("{message}")]
    SessionLimit { message: String },
    /// No connection has that name.
    #[error("airlock: connection \"{connection}\" is not configured")]
    UnknownConnection { connection: String },
    /// The connection speaks another protocol than the client.
    #[error(
        "airlock: connection \"{connection}\" is a {protocol} connection; connect to the gateway's {protocol} listener"
    )]
    WrongProtocol {
        connection: String,
        protocol: Protocol,
    },
    /// A `jit` connection and no grant.
    #[error(
        "airlock: {identity} has no access grant for connection \"{connection}\"; request one with: \
         airlock access request --connection {connection} --duration 30m --reason \"…\""
    )]
    NoGrant {
        identity: String,
        connection: String,
    },
    /// The store could not be read.
    #[error("airlock: the gateway store is unavailable; try again later")]
    StoreUnavailable,
    /// The connection's credential is not in the vault.
    #[error("airlock: connection \"{connection}\" is not ready: its credential \"{credential}\" is not stored")]
    CredentialMissing {
        connection: String,
        credential: String,
    },
    /// The stored credential does not decrypt (another master key?).
    #[error(
        "airlock: connection \"{connection}\" is not ready: its credential cannot be decrypted"
    )]
    CredentialUnreadable { connection: String },
    /// `session.start` could not be recorded.
    #[error("airlock: the audit log cannot be written; the session is refused")]
    RecordingUnavailable,
}

/// Only this module can make one: the field that keeps [`UpstreamLogin`]
/// from being built elsewhere.
struct AdmissionProof(());

/// The stored credential of an admitted session's connection, decrypted
/// for the upstream login only. Only [`Admitted::open`] constructs it: code
/// outside this module cannot build one, so it cannot open an upstream
/// without admission.
///
/// ```compile_fail
/// use airlock_core::admission::UpstreamLogin;
/// let login = UpstreamLogin {
///     address: "db:5432".into(),
///     database: "app".into(),
///     username: "app".into(),
///     password: airlock_types::Secret::new(String::new()),
///     tls: airlock_core::tls::UpstreamTls::Disable,
///     credential_version: 1,
///     environment: Vec::new(),
/// };
/// ```
pub struct UpstreamLogin {
    /// The upstream's address (`host:port`).
    pub address: String,
    /// The upstream database (or schema) to log in to.
    pub database: String,
    pub username: String,
    pub password: Secret<String>,
    pub tls: UpstreamTls,
    /// The credential's version, as recorded in `session.start`.
    pub credential_version: i64,
    /// MCP stdio: the child's environment from `env_from_credentials`
    /// (variable, the credential's secret).
    pub environment: Vec<(String, Secret<String>)>,
    _proof: AdmissionProof,
}

/// Step 1 passed: a slot among the live sessions, the connection, the
/// grant. No credential yet.
pub struct Admitted {
    pub registration: Registration,
    pub connection: ResolvedConnection,
    /// When the JIT grant the session was admitted under expires.
    pub grant_expires_at: Option<i64>,
    identity: String,
    session_id: String,
    started: Instant,
}

/// A session whose `session.start` is recorded: it records how it ended.
pub struct AdmittedSession {
    pub registration: Registration,
    pub connection: ResolvedConnection,
    pub grant_expires_at: Option<i64>,
    state: Arc<GatewayState>,
    identity: String,
    session_id: String,
    started: Instant,
    protocol: Protocol,
    /// Counts the session in `airlock_sessions_active` until it is dropped.
    _active: airlock_metrics::ActiveSession,
}

/// What a session did, for its `session.end` record.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCounts {
    pub bytes_from_client: u64,
    pub bytes_from_upstream: u64,
    pub commands: u64,
    pub refused: u64,
}

impl GatewayState {
    /// Step 1 of admission (see the module doc). A refusal is recorded
    /// (`session.refused`, `access.refused`) where it is one of policy.
    pub async fn admit_session(
        &self,
        request: &AdmissionRequest<'_>,
    ) -> Result<Admitted, AdmissionRefusal> {
        let registration = self.register_session(request).await?;
        let connection = self
            .resolve_connection(request.connection)
            .map_err(|_| AdmissionRefusal::StoreUnavailable)?
            .ok_or_else(|| AdmissionRefusal::UnknownConnection {
                connection: request.connection.to_string(),
            })?;
        if connection.protocol != request.protocol {
            return Err(AdmissionRefusal::WrongProtocol {
                connection: connection.name.clone(),
                protocol: connection.protocol,
            });
        }
        let grant_expires_at = self.admit_to_connection(request, &connection).await?;
        if let Some(expires_at) = grant_expires_at {
            self.sessions
                .set_granted(registration.process_id, expires_at);
        }
        Ok(Admitted {
            registration,
            connection,
            grant_expires_at,
            identity: request.authenticated.identity.name.clone(),
            session_id: request.session_id.to_string(),
            started: request.started,
        })
    }

    /// Registers the session among the live ones unless a session limit is
    /// reached.
    async fn register_session(
        &self,
        request: &AdmissionRequest<'_>,
    ) -> Result<Registration, AdmissionRefusal> {
        let limits = SessionLimits {
            per_identity: self.config.limits.max_sessions_per_identity,
            per_connection: self.config.limits.max_sessions_per_connection,
        };
        let identity = &request.authenticated.identity.name;
        let summary = SessionSummary {
            session_id: request.session_id.to_string(),
            identity: identity.clone(),
            token_id: request.authenticated.token_id.clone(),
            connection: request.connection.to_string(),
            client_address: request.peer.to_string(),
            tls: request.tls,
            started_at: now_unix(),
        };
        let reached = match self.sessions.try_register(summary, limits) {
            Ok(registration) => return Ok(registration),
            Err(reached) => reached,
        };
        let connection = request.connection;
        let message = match reached {
            LimitReached::PerIdentity(limit) => format!(
                "airlock: too many sessions for identity \"{identity}\": at most {limit} live \
                 sessions per identity ({})",
                reached.setting()
            ),
            LimitReached::PerConnection(limit) => format!(
                "airlock: too many sessions on connection \"{connection}\": at most {limit} live \
                 sessions per connection ({})",
                reached.setting()
            ),
        };
        tracing::warn!(session = %request.session_id, identity = %identity, connection = %connection,
            setting = reached.setting(), limit = reached.limit(), "session refused: limit reached");
        let refused = SessionRefused {
            client_address: request.peer.to_string(),
            connection: connection.to_string(),
            limit: reached.limit(),
            reason: "session_limit",
            setting: reached.setting(),
        };
        let entry = record(Some(request.session_id), Some(identity), &refused);
        if let Err(error) = self.audit(entry).await {
            tracing::error!(%error, "could not record a refused session");
        }
        Err(AdmissionRefusal::SessionLimit { message })
    }

    /// Whether `identity` may use `connection` now: always a standing
    /// connection; a `jit` one only under a grant or a standing access rule
    /// (`Some` then says which). Records nothing: the one check both
    /// admission and the explain playground ([`crate::preview`]) run.
    pub fn connection_admission(
        &self,
        identity: &Identity,
        connection: &ResolvedConnection,
    ) -> Result<Option<Admission>, AdmissionRefusal> {
        if !connection.jit {
            return Ok(None);
        }
        match self.admit(identity, connection) {
            Ok(Some(admission)) => Ok(Some(admission)),
            Ok(None) => Err(AdmissionRefusal::NoGrant {
                identity: identity.name.clone(),
                connection: connection.name.clone(),
            }),
            Err(_) => Err(AdmissionRefusal::StoreUnavailable),
        }
    }

    /// Just-in-time connections admit an identity only under a grant (or a
    /// standing access rule); answers when the grant expires. A session
    /// refused for want of a grant is recorded (`access.refused`).
    async fn admit_to_connection(
        &self,
        request: &AdmissionRequest<'_>,
        connection: &ResolvedConnection,
    ) -> Result<Option<i64>, AdmissionRefusal> {
        let identity = &request.authenticated.identity;
        match self.connection_admission(identity, connection) {
            Ok(Some(Admission::Grant(grant))) => Ok(Some(grant.expires_at)),
            Ok(Some(Admission::Standing { .. }) | None) => Ok(None),
            Err(refusal @ AdmissionRefusal::NoGrant { .. }) => {
                let refused = AccessRefused {
                    client_address: request.peer.to_string(),
                    connection: connection.name.clone(),
                };
                let entry = record(Some(request.session_id), Some(&identity.name), &refused);
                let _ = self.audit(entry).await;
                Err(refusal)
            }
            Err(refusal) => Err(refusal),
        }
    }
}

impl Admitted {
    /// Step 2 of admission: the credential decrypted, `session.start`
    /// recorded with `details` (what the protocol knows of the client, such
    /// as PostgreSQL's `application_name`).
    pub async fn open(
        self,
        state: &Arc<GatewayState>,
        request: &AdmissionRequest<'_>,
        application_name: Option<&str>,
    ) -> Result<(AdmittedSession, UpstreamLogin), AdmissionRefusal> {
        let login = decrypt_credential(state, &self.connection).await?;
        let authenticated = request.authenticated;
        let start = SessionStart {
            application_name: application_name.map(str::to_string),
            client_address: request.peer.to_string(),
            connection: self.connection.name.clone(),
            credential_version: login.credential_version,
            groups: authenticated.identity.groups.clone(),
            identity_kind: authenticated.identity.kind,
            protocol: request.protocol.as_str(),
            tls: request.tls,
            token_id: authenticated.token_id.clone(),
        };
        let entry = record(Some(&self.session_id), Some(&self.identity), &start);
        state.audit(entry).await.map_err(|error| {
            tracing::error!(%error, "cannot record session start; refusing the session");
            AdmissionRefusal::RecordingUnavailable
        })?;
        let active = state.metrics.session_started(
            request.protocol.as_str(),
            &self.connection.name,
            &self.identity,
        );
        let session = AdmittedSession {
            protocol: request.protocol,
            _active: active,
            registration: self.registration,
            connection: self.connection,
            grant_expires_at: self.grant_expires_at,
            state: Arc::clone(state),
            identity: self.identity,
            session_id: self.session_id,
            started: self.started,
        };
        Ok((session, login))
    }
}

/// The connection's stored credential, decrypted, and the credentials of
/// its `env_from_credentials`. A connection without a credential (an MCP
/// stdio server, validated at load) logs in with an empty one.
async fn decrypt_credential(
    state: &Arc<GatewayState>,
    connection: &ResolvedConnection,
) -> Result<UpstreamLogin, AdmissionRefusal> {
    let mut environment = Vec::new();
    for (variable, credential) in &connection.env_from_credentials {
        let (_, secret, _) = decrypt_named(state, connection, credential).await?;
        environment.push((variable.clone(), secret));
    }
    let (username, password, credential_version) = if connection.credential.is_empty() {
        (String::new(), Secret::new(String::new()), 0)
    } else {
        decrypt_named(state, connection, &connection.credential).await?
    };
    Ok(UpstreamLogin {
        address: connection.address.clone(),
        database: connection.database.clone(),
        username,
        password,
        tls: connection.tls.clone(),
        credential_version,
        environment,
        _proof: AdmissionProof(()),
    })
}

/// One stored credential, decrypted: (username, secret, version).
async fn decrypt_named(
    state: &Arc<GatewayState>,
    connection: &ResolvedConnection,
    credential: &str,
) -> Result<(String, Secret<String>, i64), AdmissionRefusal> {
    let store = Arc::clone(&state.store);
    let credential_name = credential.to_string();
    let record = tokio::task::spawn_blocking(move || store.credential(&credential_name))
        .await
        .map_err(|_| AdmissionRefusal::StoreUnavailable)?
        .map_err(|_| AdmissionRefusal::StoreUnavailable)?
        .ok_or_else(|| AdmissionRefusal::CredentialMissing {
            connection: connection.name.clone(),
            credential: credential.to_string(),
        })?;
    let password = state
        .vault
        .decrypt(
            &record.name,
            &record.username,
            &record.nonce,
            &record.ciphertext,
        )
        .map_err(|error| {
            tracing::error!(credential = %record.name, %error, "credential does not decrypt");
            AdmissionRefusal::CredentialUnreadable {
                connection: connection.name.clone(),
            }
        })?;
    Ok((record.username, password, record.version))
}

impl AdmittedSession {
    /// The session's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The admitted identity's name.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Records that the upstream login failed (`session.upstream_failed`
    /// with the inside's words, when there are any, then `session.end`):
    /// the start was recorded, so the end is too.
    pub async fn record_upstream_failure(self, error: Option<String>, told_client: &str) {
        let (protocol, connection) = (self.protocol.as_str(), self.connection.name.as_str());
        self.state
            .metrics
            .upstream_connect_failed(protocol, connection);
        self.state.metrics.session_ended(
            protocol,
            connection,
            "upstream_failed",
            self.started.elapsed(),
        );
        if let Some(error) = error {
            let failed = SessionUpstreamFailed {
                connection: self.connection.name.clone(),
                error,
            };
            let entry = record(Some(&self.session_id), Some(&self.identity), &failed);
            let _ = self.state.audit(entry).await;
        }
        let end = SessionEnd {
            bytes_from_client: 0,
            bytes_from_upstream: 0,
            commands: 0,
            connection: self.connection.name.clone(),
            detail: Some(told_client.to_string()),
            duration_ms: 0,
            ended_by: "upstream_failed",
            refused: 0,
        };
        let entry = record(Some(&self.session_id), Some(&self.identity), &end);
        let _ = self.state.audit(entry).await;
    }

    /// Records `session.end`: how the session ended (`ended_by`, a stable
    /// name), with what detail, and what it did. The slot among the live
    /// sessions is released first.
    pub async fn record_end(
        self,
        ended_by: &'static str,
        detail: Option<String>,
        counts: SessionCounts,
    ) {
        let Self {
            registration,
            connection,
            state,
            identity,
            session_id,
            started,
            protocol,
            ..
        } = self;
        drop(registration);
        state.metrics.session_ended(
            protocol.as_str(),
            &connection.name,
            ended_by,
            started.elapsed(),
        );
        let end = SessionEnd {
            bytes_from_client: counts.bytes_from_client,
            bytes_from_upstream: counts.bytes_from_upstream,
            commands: counts.commands,
            connection: connection.name,
            detail,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ended_by,
            refused: counts.refused,
        };
        let entry = record(Some(&session_id), Some(&identity), &end);
        if let Err(error) = state.audit(entry).await {
            tracing::error!(session = %session_id, %error, "could not record the end of a session");
        }
    }
}
