//! Administrative operations behind the admin API: credentials, tokens,
//! connections, the admin token. Each validates its input, writes the store
//! and records an audit event; none returns a secret it did not just create.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use airlock_store::prelude::*;
use airlock_store::{hash_token, now_unix, ConnectionRecord, StoreError, TokenRecord};
use airlock_types::IdentityKind;

use crate::duration::{format_duration, parse_duration};
use crate::state::GatewayState;

pub use crate::error::AdminError;
use crate::events::{
    self, record as record_event, AuthUnlocked, ConnectionAdded, CredentialRotated, CredentialSet,
    TokenIssued, TokenRevoked,
};

/// What `auth unlock` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnlockOutcome {
    /// The source address the unlock was limited to, if any.
    pub source: Option<String>,
    /// The identity the unlock was limited to, if any.
    pub identity: Option<String>,
    /// Active lockouts that ended.
    pub lockouts_ended: usize,
}

/// A credential's metadata: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub name: String,
    pub username: String,
    /// `password` or `client_certificate` (what the secret is, never the
    /// secret).
    #[serde(default = "default_credential_kind")]
    pub kind: String,
    pub version: i64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

fn default_credential_kind() -> String {
    airlock_store::credential_kind::PASSWORD.into()
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueTokenRequest {
    pub identity: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The connections the token may reach; may be empty only for a
    /// `human` (a person's token for the admin API's personal routes).
    #[serde(default)]
    pub connections: Vec<String>,
    /// `15m`, `1h` …; the configured default when absent.
    #[serde(default)]
    pub ttl: Option<String>,
}

fn default_kind() -> String {
    "agent".into()
}

/// The answer to issuing a token: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
    pub identity: String,
    pub kind: String,
    pub groups: Vec<String>,
    pub connections: Vec<String>,
    pub expires_at: i64,
    pub ttl: String,
}

/// `POST /api/v1/connections`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddConnectionRequest {
    pub name: String,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    pub address: String,
    pub database: String,
    pub credential: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub tls: Option<String>,
}

fn default_protocol() -> String {
    "postgres".into()
}

/// A connection as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub name: String,
    pub protocol: String,
    pub address: String,
    pub database: String,
    pub credential: String,
    pub tags: BTreeMap<String, String>,
    pub tls: String,
    pub source: String,
}

/// What `DELETE /api/v1/connections/NAME` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRemoved {
    pub removed: String,
    /// Live sessions on the connection that were told to close.
    pub sessions_closed: usize,
}

/// What `DELETE /api/v1/credentials/NAME` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialDeleted {
    pub deleted: String,
}

/// Identity and credential names: letters, digits and `-_.@:`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
}

fn random_token(prefix: &str, bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn random_id(prefix: &str) -> String {
    let mut raw = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("{prefix}{}", hex::encode(raw))
}

/// What start-up found of the admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenStart {
    /// Generated here on first start: show it once.
    Generated(String),
    /// Stored from `AIRLOCK_ADMIN_TOKEN` on first start.
    FromEnvironment,
    /// A token was stored before; `AIRLOCK_ADMIN_TOKEN` is not set or is
    /// that token.
    Stored,
    /// A token was stored before and `AIRLOCK_ADMIN_TOKEN` is another one:
    /// commands using it will get 401.
    EnvironmentDiffers,
}

/// Creates the admin token on first start, or checks the environment's
/// against the stored one.
pub fn bootstrap_admin_token(
    store: &dyn StoreBackend,
    from_env: Option<&str>,
) -> Result<AdminTokenStart, StoreError> {
    let from_env = from_env.filter(|token| !token.is_empty());
    if store.has_admin_token()? {
        return Ok(match from_env {
            Some(token) if !store.admin_token_valid(&hash_token(token))? => {
                AdminTokenStart::EnvironmentDiffers
            }
            _ => AdminTokenStart::Stored,
        });
    }
    match from_env {
        Some(token) => {
            store.insert_admin_token(&random_id("adm_"), &hash_token(token))?;
            Ok(AdminTokenStart::FromEnvironment)
        }
        None => {
            let token = random_token("aladm_", 32);
            store.insert_admin_token(&random_id("adm_"), &hash_token(&token))?;
            Ok(AdminTokenStart::Generated(token))
        }
    }
}

/// Replaces the admin token: with `token`, or a generated one (returned to
/// show once). Every earlier admin token stops working at once.
pub fn rotate_admin_token(
    store: &dyn StoreBackend,
    token: Option<&str>,
) -> Result<Option<String>, StoreError> {
    match token.filter(|token| !token.is_empty()) {
        Some(token) => {
            store.replace_admin_tokens(&random_id("adm_"), &hash_token(token))?;
            Ok(None)
        }
        None => {
            let token = random_token("aladm_", 32);
            store.replace_admin_tokens(&random_id("adm_"), &hash_token(&token))?;
            Ok(Some(token))
        }
    }
}

/// The user name the CLI and admin API use to ask for a client-certificate
/// credential: its secret is a PEM bundle (the certificate chain, then the
/// private key), which a Kubernetes connection with `client_certificate:
/// true` presents upstream with mutual TLS. The store records it as
/// `kind: client_certificate`; the kind, not the name, decides afterwards.
pub const CLIENT_CERTIFICATE_USER: &str = "client-certificate";

/// A client-certificate credential's secret: at least one certificate and
/// exactly one private key, PEM. The problem otherwise (no secret shown).
pub fn check_client_certificate(bundle: &str) -> Result<(), AdminError> {
    crate::tls::client_identity(bundle)
        .map(|_| ())
        .map_err(|error| AdminError::Invalid(format!("client certificate: {error}")))
}

impl GatewayState {
    /// Stores (or replaces) a credential.
    pub fn set_credential(
        &self,
        name: &str,
        username: &str,
        password: &str,
    ) -> Result<CredentialInfo, AdminError> {
        if !valid_name(name) {
            return Err(AdminError::Invalid(format!(
                "credential name {name:?} must be 1-128 letters, digits or -_.@:"
            )));
        }
        if username.is_empty() {
            return Err(AdminError::Invalid("username is empty".into()));
        }
        if password.is_empty() {
            return Err(AdminError::Invalid("password is empty".into()));
        }
        let kind = if username == CLIENT_CERTIFICATE_USER {
            check_client_certificate(password)?;
            airlock_store::credential_kind::CLIENT_CERTIFICATE
        } else {
            airlock_store::credential_kind::PASSWORD
        };
        let (nonce, ciphertext) = self.vault.encrypt(name, username, password)?;
        let version = self
            .store
            .set_credential(name, username, kind, &nonce, &ciphertext)?;
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &CredentialSet {
                credential: name.to_string(),
                username: username.to_string(),
                version,
            },
        ))?;
        self.credential_info(name)
    }

    /// Replaces a credential's secret. Sessions already open keep running.
    pub fn rotate_credential(
        &self,
        name: &str,
        password: &str,
    ) -> Result<CredentialInfo, AdminError> {
        if password.is_empty() {
            return Err(AdminError::Invalid("password is empty".into()));
        }
        let record = self
            .store
            .credential(name)?
            .ok_or_else(|| AdminError::NotFound(format!("credential {name:?} not found")))?;
        if record.kind == airlock_store::credential_kind::CLIENT_CERTIFICATE {
            check_client_certificate(password)?;
        }
        let (nonce, ciphertext) = self.vault.encrypt(name, &record.username, password)?;
        let version = self.store.rotate_credential(name, &nonce, &ciphertext)?;
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &CredentialRotated {
                credential: name.to_string(),
                version,
            },
        ))?;
        self.credential_info(name)
    }

    fn credential_info(&self, name: &str) -> Result<CredentialInfo, AdminError> {
        let record = self
            .store
            .credential(name)?
            .ok_or_else(|| AdminError::NotFound(format!("credential {name:?} not found")))?;
        Ok(CredentialInfo {
            name: record.name,
            username: record.username,
            kind: record.kind,
            version: record.version,
            created_at: record.created_at,
            rotated_at: record.rotated_at,
        })
    }

    /// Lists credentials (metadata only).
    pub fn list_credentials(&self) -> Result<Vec<CredentialInfo>, AdminError> {
        Ok(self
            .store
            .credentials()?
            .into_iter()
            .map(|record| CredentialInfo {
                name: record.name,
                username: record.username,
                kind: record.kind,
                version: record.version,
                created_at: record.created_at,
                rotated_at: record.rotated_at,
            })
            .collect())
    }

    /// Issues a token. The token is returned here and nowhere else.
    pub fn issue_token(&self, request: &IssueTokenRequest) -> Result<IssuedToken, AdminError> {
        self.issue_token_as(request, None)
    }

    /// [`GatewayState::issue_token`], recorded as issued by `issued_by`
    /// (a person of the web UI).
    pub fn issue_token_as(
        &self,
        request: &IssueTokenRequest,
        issued_by: Option<&str>,
    ) -> Result<IssuedToken, AdminError> {
        let mut problems = Vec::new();
        if !valid_name(&request.identity) {
            problems.push(format!(
                "identity {:?} must be 1-128 letters, digits or -_.@:",
                request.identity
            ));
        }
        if IdentityKind::parse(&request.kind).is_none() {
            problems.push(format!(
                "kind {:?} is not agent, human or service",
                request.kind
            ));
        }
        for group in &request.groups {
            if !valid_name(group) {
                problems.push(format!(
                    "group {group:?} must be 1-128 letters, digits or -_.@:"
                ));
            }
        }
        // A person approving or enrolling MFA reaches no database: their
        // token may have no connection, and then authenticates to the admin
        // API only (the PostgreSQL listener refuses a token for every
        // connection outside its scope, so for every connection).
        if request.connections.is_empty() && request.kind != "human" {
            problems.push(
                "at least one connection is required (the token's scope; only --kind human may have none)"
                    .into(),
            );
        }
        for connection in &request.connections {
            if self.resolve_connection(connection)?.is_none() {
                problems.push(format!("connection {connection:?} is not configured"));
            }
        }
        let ttl = match &request.ttl {
            None => self.settings.default_ttl,
            Some(text) => match parse_duration(text) {
                Ok(ttl) => ttl,
                Err(error) => {
                    problems.push(format!("ttl: {error}"));
                    Duration::ZERO
                }
            },
        };
        if request.ttl.is_some() && ttl.is_zero() && problems.is_empty() {
            problems.push("ttl must be longer than zero".into());
        }
        if ttl > self.settings.max_ttl {
            problems.push(format!(
                "ttl {} exceeds the maximum of {} (tokens.max_ttl)",
                format_duration(ttl),
                format_duration(self.settings.max_ttl)
            ));
        }
        if !problems.is_empty() {
            return Err(AdminError::Invalid(problems.join("; ")));
        }
        let token = random_token("alt_", 32);
        let now = now_unix();
        let record = TokenRecord {
            id: random_id("tok_"),
            hash: hash_token(&token),
            identity: request.identity.clone(),
            kind: request.kind.clone(),
            groups: request.groups.clone(),
            connections: request.connections.clone(),
            created_at: now,
            expires_at: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            revoked_at: None,
        };
        self.store.insert_token(&record)?;
        self.store.append_event(record_event(
            None,
            Some(&record.identity),
            &TokenIssued {
                connections: record.connections.clone(),
                expires_at: record.expires_at,
                groups: record.groups.clone(),
                issued_by: issued_by.map(str::to_string),
                kind: record.kind.clone(),
                token_id: record.id.clone(),
            },
        ))?;
        Ok(IssuedToken {
            id: record.id,
            token,
            identity: record.identity,
            kind: record.kind,
            groups: record.groups,
            connections: record.connections,
            expires_at: record.expires_at,
            ttl: format_duration(ttl),
        })
    }

    /// Exchanges a validated OIDC identity for an airlock token scoped to one
    /// connection (RFC 8693). Its lifetime is the shortest of the request,
    /// `tokens.max_ttl` and what is left of the subject token.
    pub fn exchange_token(
        &self,
        identity: &airlock_types::Identity,
        connection: &str,
        ttl: Option<&str>,
    ) -> Result<IssuedToken, AdminError> {
        let remaining = identity.expires_at.saturating_sub(now_unix()).max(0);
        let requested = match ttl {
            Some(text) => parse_duration(text).map_err(AdminError::Invalid)?,
            None => self.settings.default_ttl,
        };
        let ttl = requested
            .min(self.settings.max_ttl)
            .min(Duration::from_secs(u64::try_from(remaining).unwrap_or(0)));
        if ttl.is_zero() {
            return Err(AdminError::Invalid("the subject token has expired".into()));
        }
        let issued = self.issue_token(&IssueTokenRequest {
            identity: identity.name.clone(),
            kind: identity.kind.as_str().to_string(),
            groups: identity
                .groups
                .iter()
                .filter(|group| valid_name(group))
                .cloned()
                .collect(),
            connections: vec![connection.to_string()],
            ttl: Some(format!("{}s", ttl.as_secs())),
        })?;
        Ok(issued)
    }

    /// Lists tokens (never their values).
    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, AdminError> {
        Ok(self.store.tokens()?)
    }

    /// Revokes a token and ends its live sessions. Returns how many sessions
    /// were told to close.
    pub fn revoke_token(&self, id: &str) -> Result<(bool, usize), AdminError> {
        self.revoke_token_as(id, "admin")
    }

    /// [`GatewayState::revoke_token`], recorded as done by `actor`.
    pub fn revoke_token_as(&self, id: &str, actor: &str) -> Result<(bool, usize), AdminError> {
        let changed = self.store.revoke_token(id)?;
        let closed = self.sessions.kill_token(id, "the token was revoked");
        self.store.append_event(record_event(
            None,
            Some(actor),
            &TokenRevoked {
                already_revoked: !changed,
                sessions_closed: closed,
                token_id: id.to_string(),
            },
        ))?;
        Ok((changed, closed))
    }

    /// Ends one live session of this process (the kill switch), recording
    /// who ended it and why (`session.kill`) before the session is told.
    /// `NotFound` when no such session is live here.
    pub fn end_session(
        &self,
        session_id: &str,
        reason: &str,
        ended_by: &str,
    ) -> Result<(), AdminError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AdminError::Invalid(
                "ending a session needs a reason".into(),
            ));
        }
        let summary = self
            .sessions
            .list()
            .into_iter()
            .find(|session| session.session_id == session_id)
            .ok_or_else(|| AdminError::NotFound(format!("no live session {session_id}")))?;
        self.store.append_event(record_event(
            Some(session_id),
            Some(&summary.identity),
            &events::SessionKilled {
                connection: summary.connection.clone(),
                ended_by: ended_by.to_string(),
                reason: reason.to_string(),
            },
        ))?;
        let told = self
            .sessions
            .kill_session(session_id, &format!("ended by {ended_by}: {reason}"));
        if !told {
            return Err(AdminError::NotFound(format!(
                "session {session_id} ended meanwhile"
            )));
        }
        Ok(())
    }

    /// Adds a run-time connection.
    pub fn add_connection(
        &self,
        request: &AddConnectionRequest,
    ) -> Result<ConnectionInfo, AdminError> {
        let mut problems = Vec::new();
        if !valid_name(&request.name) {
            problems.push(format!(
                "name {:?} must be 1-128 letters, digits or -_.@:",
                request.name
            ));
        }
        if let Some(problem) = crate::config::unserved_protocol(&request.protocol) {
            problems.push(problem);
        }
        if !request.address.contains(':') {
            problems.push(format!("address {:?} is not host:port", request.address));
        }
        if request.database.is_empty() {
            problems.push("database is empty".into());
        }
        if !valid_name(&request.credential) {
            problems.push(format!(
                "credential {:?} is not a valid name",
                request.credential
            ));
        } else if self.store.credential(&request.credential)?.is_none() {
            problems.push(format!(
                "credential {name:?} is not stored: store it first with `airlock credential set {name} --username USER --password-stdin`",
                name = request.credential
            ));
        }
        let tls = request.tls.clone().unwrap_or_else(|| "disable".into());
        if !matches!(tls.as_str(), "disable" | "require") {
            problems.push(format!(
                "tls {tls:?} is not disable or require (verify-full needs a CA file: set it in the config file)"
            ));
        }
        if self.config.connection(&request.name).is_some() {
            return Err(AdminError::Conflict(format!(
                "connection {:?} is defined in the config file",
                request.name
            )));
        }
        if !problems.is_empty() {
            return Err(AdminError::Invalid(problems.join("; ")));
        }
        let record = ConnectionRecord {
            name: request.name.clone(),
            protocol: request.protocol.clone(),
            address: request.address.clone(),
            database: request.database.clone(),
            credential: request.credential.clone(),
            tags: request.tags.clone(),
            tls,
            created_at: now_unix(),
        };
        self.store.add_connection(&record)?;
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &ConnectionAdded {
                address: record.address.clone(),
                connection: record.name.clone(),
                database: record.database.clone(),
            },
        ))?;
        Ok(ConnectionInfo {
            name: record.name,
            protocol: record.protocol,
            address: record.address,
            database: record.database,
            credential: record.credential,
            tags: record.tags,
            tls: record.tls,
            source: "store".into(),
        })
    }

    /// Lists connections from config and store.
    pub fn list_connections(&self) -> Result<Vec<ConnectionInfo>, AdminError> {
        Ok(self
            .all_connections()?
            .into_iter()
            .map(|connection| ConnectionInfo {
                name: connection.name,
                protocol: "postgres".into(),
                address: connection.address,
                database: connection.database,
                credential: connection.credential,
                tags: connection.tags,
                tls: connection.tls_mode,
                source: connection.source.into(),
            })
            .collect())
    }

    /// Removes a run-time connection and closes its live sessions. A
    /// connection from the config file cannot be removed here.
    pub fn remove_connection(&self, name: &str) -> Result<ConnectionRemoved, AdminError> {
        if self.config.connection(name).is_some() {
            return Err(AdminError::Conflict(format!(
                "connection {name:?} is defined in the config file: remove it there and restart"
            )));
        }
        self.store.remove_connection(name)?;
        let mut identities: Vec<String> = self
            .sessions
            .list()
            .into_iter()
            .filter(|session| session.connection == name)
            .map(|session| session.identity)
            .collect();
        identities.sort();
        identities.dedup();
        let sessions_closed: usize = identities
            .iter()
            .map(|identity| {
                self.sessions
                    .kill_where(identity, name, "the connection was removed")
            })
            .sum();
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &events::ConnectionRemoved {
                connection: name.to_string(),
                sessions_closed,
            },
        ))?;
        Ok(ConnectionRemoved {
            removed: name.to_string(),
            sessions_closed,
        })
    }

    /// Deletes a credential, refused while a connection (config file or
    /// run-time) names it.
    pub fn delete_credential(&self, name: &str) -> Result<CredentialDeleted, AdminError> {
        let in_config: Vec<&str> = self
            .config
            .connections
            .iter()
            .filter(|connection| connection.credential == name)
            .map(|connection| connection.name.as_str())
            .collect();
        if !in_config.is_empty() {
            return Err(AdminError::Conflict(format!(
                "credential {name:?} is used by connection{} {} in the config file",
                if in_config.len() == 1 { "" } else { "s" },
                in_config.join(", ")
            )));
        }
        self.store.delete_credential(name)?;
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &events::CredentialDeleted {
                credential: name.to_string(),
            },
        ))?;
        Ok(CredentialDeleted {
            deleted: name.to_string(),
        })
    }

    /// The identity an airlock token names, when the token is valid now
    /// (for people acting with their own token: approvals, MFA).
    pub fn identity_for_token(
        &self,
        token: &str,
    ) -> Result<Option<airlock_types::Identity>, AdminError> {
        let Some(record) = self.store.token_by_hash(&hash_token(token))? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() || record.expires_at <= now_unix() {
            return Ok(None);
        }
        let Some(kind) = IdentityKind::parse(&record.kind) else {
            return Ok(None);
        };
        Ok(Some(airlock_types::Identity {
            name: record.identity,
            kind,
            groups: record.groups,
            auth_method: airlock_types::AuthMethod::AirlockToken {
                token_id: record.id,
            },
            expires_at: record.expires_at,
        }))
    }

    /// Ends authentication lockouts early (see
    /// [`crate::auth::SprayGuard::unlock`] for which ones a filter matches),
    /// on the PostgreSQL listener and, for a source or no filter, the admin
    /// API; records an `auth.unlock` event.
    pub fn unlock_authentication(
        &self,
        source: Option<&str>,
        identity: Option<&str>,
    ) -> Result<UnlockOutcome, AdminError> {
        let source = source.map(str::trim).filter(|source| !source.is_empty());
        let identity = identity.filter(|identity| !identity.is_empty());
        let address = source
            .map(|text| {
                text.parse::<std::net::IpAddr>().map_err(|_| {
                    AdminError::Invalid(format!("source {text:?} is not an IP address"))
                })
            })
            .transpose()?;
        let mut lockouts_ended = self.spray_guard.unlock(address, identity);
        if identity.is_none() {
            // The admin API counts per source only.
            lockouts_ended += self.api_guard.unlock(address, None);
        }
        // The store's counts are every replica's: unlocked there, unlocked
        // everywhere (the same lock counted here and there is one).
        let shared = self.store.unlock_logins(
            address.map(|address| address.to_string()).as_deref(),
            identity,
        )?;
        let lockouts_ended = lockouts_ended.max(shared);
        self.store.append_event(record_event(
            None,
            Some("admin"),
            &AuthUnlocked {
                identity: identity.map(str::to_string),
                lockouts_ended,
                source: address.map(|address| address.to_string()),
            },
        ))?;
        Ok(UnlockOutcome {
            source: address.map(|address| address.to_string()),
            identity: identity.map(str::to_string),
            lockouts_ended,
        })
    }

    /// True when `token` is a valid admin token.
    pub fn admin_token_valid(&self, token: &str) -> bool {
        !token.is_empty()
            && self
                .store
                .admin_token_valid(&hash_token(token))
                .unwrap_or(false)
    }
}
