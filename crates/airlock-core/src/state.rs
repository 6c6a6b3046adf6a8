//! [`GatewayState`]: everything a session or an admin call needs, shared by
//! all tasks of one gateway process.

use rustls::ServerConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use airlock_store::prelude::*;
use airlock_store::vault::MasterKey;
use airlock_store::{NewEvent, StoreError};

use crate::auth::SprayGuard;
use crate::config::{relative_to, GatewayConfig, ResolvedSettings};
use crate::live_policy::{LivePolicy, PolicyHolder};
use crate::recorder::{RecordError, Recorder};
use crate::registry::SessionRegistry;
use crate::tls::{encrypting_client_config, verifying_client_config, TlsError, UpstreamTls};

/// A connection resolved from config or from the store.
#[derive(Clone)]
pub struct ResolvedConnection {
    pub name: String,
    pub address: String,
    pub database: String,
    pub credential: String,
    pub tags: BTreeMap<String, String>,
    pub tls: UpstreamTls,
    /// `config` or `store`.
    pub source: &'static str,
    /// `disable`, `require` or `verify-full`.
    pub tls_mode: String,
    /// Sessions need an access grant.
    pub jit: bool,
    /// The wire protocol its clients and upstream speak.
    pub protocol: airlock_types::Protocol,
    /// MCP stdio: environment variable → stored credential, decrypted at
    /// admission (`UpstreamLogin::environment`).
    pub env_from_credentials: BTreeMap<String, String>,
}

/// Shared state of one gateway process.
pub struct GatewayState {
    pub config: GatewayConfig,
    pub settings: ResolvedSettings,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub store: Arc<dyn StoreBackend>,
    pub vault: MasterKey,
    pub sessions: Arc<SessionRegistry>,
    /// Wakes commands held for review when a decision may have been taken
    /// (through any replica; see [`crate::wakeups`]).
    pub review_wakeups: crate::wakeups::ReviewWakeups,
    /// Failed token checks on the PostgreSQL listener.
    pub spray_guard: SprayGuard,
    /// Failed bearer tokens on the admin API (admin and personal tokens),
    /// with the same settings; counted apart from the PostgreSQL listener.
    pub api_guard: SprayGuard,
    pub recorder: Recorder,
    pub policy: PolicyHolder,
    pub rate_limiter: std::sync::Mutex<airlock_policy::RateLimiter>,
    /// Validates OIDC tokens when issuers are configured.
    pub oidc: Option<airlock_oidc::OidcValidator>,
    /// Delivers review and access-request events to webhooks.
    pub notifier: airlock_notify::Notifier,
    /// The metrics `GET /metrics` exports (see [`crate::observe`]).
    pub metrics: Arc<airlock_metrics::Metrics>,
    /// Woken when this process creates or decides a review, so watchers
    /// (the web UI's live queue) look at once instead of at their next
    /// poll. A hint only: reviews of other replicas are found by polling.
    pub reviews_changed: tokio::sync::Notify,
    started: std::time::Instant,
    pub server_tls: Arc<ServerConfig>,
    config_upstream_tls: BTreeMap<String, UpstreamTls>,
}

/// The audit journal directory, inside the data directory.
pub const JOURNAL_DIR: &str = "journal";

/// Why the gateway state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Recorder(#[from] RecordError),
    #[error(transparent)]
    Oidc(#[from] airlock_oidc::OidcError),
}

impl GatewayState {
    /// Builds the state: TLS material, upstream TLS configs, spray guard.
    #[allow(clippy::too_many_arguments)] // called once at start-up with the loaded parts
    pub fn new(
        config: GatewayConfig,
        settings: ResolvedSettings,
        config_path: PathBuf,
        data_dir: PathBuf,
        store: Arc<dyn StoreBackend>,
        vault: MasterKey,
        policy: LivePolicy,
        notifier: airlock_notify::Notifier,
    ) -> Result<Self, StartError> {
        let tls_files = config.tls.as_ref().map(|files| {
            (
                relative_to(&config_path, &files.cert),
                relative_to(&config_path, &files.key),
            )
        });
        let server_tls = crate::tls::server_config(
            tls_files
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path())),
            &data_dir,
        )?;
        let mut config_upstream_tls = BTreeMap::new();
        for connection in &config.connections {
            let tls = upstream_tls(
                connection.tls.as_deref(),
                connection
                    .ca_file
                    .as_ref()
                    .map(|ca| relative_to(&config_path, ca)),
            )?;
            config_upstream_tls.insert(connection.name.clone(), tls);
        }
        let spray_guard = SprayGuard::new(
            config.auth.lockout_threshold,
            config.auth.source_threshold(),
            settings.lockout_window,
            settings.lockout_duration,
        );
        let api_guard = SprayGuard::new(
            config.auth.lockout_threshold,
            config.auth.source_threshold(),
            settings.lockout_window,
            settings.lockout_duration,
        );
        // The event chain is keyed with a key derived from the master key, so
        // the chain cannot be recomputed by someone who only has the store.
        if let Err(error) = store.set_chain_key(vault.derive_key("audit-chain")) {
            tracing::error!(%error, "cannot key the audit chain");
        }
        let recorder = Recorder::start(
            Arc::clone(&store),
            &data_dir.join(JOURNAL_DIR),
            config.recording.sync_mode(),
        )?;
        let metrics = Arc::new(airlock_metrics::Metrics::new(
            config.metrics.identity_labels,
            env!("CARGO_PKG_VERSION"),
            recorder.fsync_histogram(),
        ));
        metrics.prepare(
            &["postgres", "mysql", "http"],
            config
                .connections
                .iter()
                .map(|connection| (connection.protocol.as_str(), connection.name.as_str())),
        );
        if let Some(expiry) = tls_files.as_ref().map_or_else(
            || crate::cert_expiry::certificate_expiry(&data_dir.join(crate::tls::GENERATED_CERT)),
            |(cert, _)| crate::cert_expiry::certificate_expiry(cert),
        ) {
            metrics.set_certificate_expiry(expiry);
        }
        let oidc = if config.identity_providers.is_empty() {
            None
        } else {
            // The config validated; what can still fail is reading a web
            // client's secret (`web_client_secret_env` / `_file`): the
            // gateway does not start without it.
            Some(airlock_oidc::OidcValidator::new(
                config.identity_providers.clone(),
            )?)
        };
        Ok(Self {
            policy: PolicyHolder::new(policy),
            notifier,
            metrics,
            rate_limiter: std::sync::Mutex::new(airlock_policy::RateLimiter::new()),
            oidc,
            reviews_changed: tokio::sync::Notify::new(),
            started: std::time::Instant::now(),
            config,
            settings,
            config_path,
            data_dir,
            store,
            vault,
            sessions: Arc::new(SessionRegistry::default()),
            review_wakeups: crate::wakeups::ReviewWakeups::default(),
            spray_guard,
            api_guard,
            recorder,
            server_tls,
            config_upstream_tls,
        })
    }

    /// Seconds since the gateway started (the rate limiter's clock).
    pub fn clock_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// What the policy engine knows about a connection.
    pub fn connection_info(
        &self,
        connection: &ResolvedConnection,
    ) -> airlock_types::ConnectionInfo {
        airlock_types::ConnectionInfo {
            name: connection.name.clone(),
            protocol: connection.protocol,
            tags: connection.tags.clone(),
        }
    }

    /// Finds a connection by name: config first, then the store.
    pub fn resolve_connection(&self, name: &str) -> Result<Option<ResolvedConnection>, StoreError> {
        if let Some(connection) = self.config.connection(name) {
            let tls = self
                .config_upstream_tls
                .get(name)
                .cloned()
                .unwrap_or(UpstreamTls::Disable);
            return Ok(Some(ResolvedConnection {
                name: connection.name.clone(),
                address: connection.address.clone(),
                database: connection
                    .database
                    .clone()
                    .unwrap_or_else(|| connection.name.clone()),
                credential: connection.credential.clone(),
                tags: connection.tags.clone(),
                tls,
                source: "config",
                tls_mode: connection.tls.clone().unwrap_or_else(|| "disable".into()),
                jit: connection.access.as_deref() == Some("jit"),
                // Validated at load: only served protocols pass.
                protocol: airlock_types::Protocol::parse(&connection.protocol)
                    .unwrap_or(airlock_types::Protocol::Postgres),
                env_from_credentials: connection.env_from_credentials.clone(),
            }));
        }
        let stored = self.store.connections()?;
        let Some(record) = stored.into_iter().find(|record| record.name == name) else {
            return Ok(None);
        };
        let tls = upstream_tls(Some(&record.tls), None).unwrap_or(UpstreamTls::Disable);
        Ok(Some(ResolvedConnection {
            name: record.name,
            address: record.address,
            database: record.database,
            credential: record.credential,
            tags: record.tags,
            tls,
            source: "store",
            tls_mode: record.tls,
            jit: false,
            // Run-time connections are PostgreSQL (the API refuses others).
            protocol: airlock_types::Protocol::Postgres,
            env_from_credentials: BTreeMap::new(),
        }))
    }

    /// Every connection, config ones first.
    pub fn all_connections(&self) -> Result<Vec<ResolvedConnection>, StoreError> {
        let mut names: Vec<String> = self
            .config
            .connections
            .iter()
            .map(|c| c.name.clone())
            .collect();
        for record in self.store.connections()? {
            if !names.contains(&record.name) {
                names.push(record.name);
            }
        }
        let mut out = Vec::new();
        for name in names {
            if let Some(connection) = self.resolve_connection(&name)? {
                out.push(connection);
            }
        }
        Ok(out)
    }

    /// Records an audit event durably (through the group-commit recorder).
    pub async fn audit(&self, event: NewEvent) -> Result<(), RecordError> {
        self.recorder.record(vec![event]).await
    }
}

/// Builds the upstream TLS setting for a mode.
pub fn upstream_tls(mode: Option<&str>, ca_file: Option<PathBuf>) -> Result<UpstreamTls, TlsError> {
    match mode {
        None | Some("disable") => Ok(UpstreamTls::Disable),
        Some("require") => Ok(UpstreamTls::Enabled(encrypting_client_config()?)),
        Some(_) => match ca_file {
            Some(ca) => Ok(UpstreamTls::Enabled(verifying_client_config(&ca)?)),
            None => Ok(UpstreamTls::Enabled(encrypting_client_config()?)),
        },
    }
}
