//! The gateway configuration file (`airlock.yaml`): model, loading and
//! validation.
//!
//! Loading never stops at the first problem: [`GatewayConfig::load`] parses,
//! then [`GatewayConfig::validate`] collects every problem with its line, so
//! a user fixes the file in one pass. Unknown fields are errors (a typo must
//! not silently drop a setting).

use airlock_types::Protocol;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration::parse_duration;
use crate::recorder::SyncMode;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listener addresses.
    #[serde(default)]
    pub listen: ListenConfig,
    /// `sqlite` for the embedded store under the data directory, or a
    /// `postgres://user@host:port/database` URL for the store several
    /// replicas share (password from `AIRLOCK_STORE_PASSWORD` or the file
    /// named by `AIRLOCK_STORE_PASSWORD_FILE`, never in the URL; `?sslmode=`
    /// `disable`, `require` or `verify-full` with `sslrootcert=FILE`).
    #[serde(default = "default_store")]
    pub store: String,
    /// Certificate and key for client TLS. When absent, a self-signed
    /// certificate is generated into the data directory.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// OIDC issuers whose tokens are accepted (see `airlock_oidc::IssuerConfig`).
    #[serde(default)]
    pub identity_providers: Vec<airlock_oidc::IssuerConfig>,
    /// The policy file loaded as version 1 on first start, relative to this
    /// file.
    #[serde(default)]
    pub policy: Option<String>,
    /// Named upstreams.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// PostgreSQL listener options.
    #[serde(default)]
    pub postgres: PostgresOptions,
    /// MySQL/MariaDB listener options.
    #[serde(default)]
    pub mysql: MysqlOptions,
    /// HTTP listener options (see [`crate::http_config::HttpOptions`]).
    #[serde(default)]
    pub http: crate::http_config::HttpOptions,
    /// Token issuing options.
    #[serde(default)]
    pub tokens: TokenOptions,
    /// Authentication throttling.
    #[serde(default)]
    pub auth: AuthOptions,
    /// Limits on live sessions.
    #[serde(default)]
    pub limits: LimitOptions,
    /// The async runtime the sessions run on.
    #[serde(default)]
    pub runtime: RuntimeOptions,
    /// Session recording and the audit log.
    #[serde(default)]
    pub recording: RecordingOptions,
    /// Human review of commands.
    #[serde(default)]
    pub reviews: ReviewOptions,
    /// Webhooks told about reviews and access requests (see `airlock_notify`).
    #[serde(default)]
    pub notifications: airlock_notify::NotificationsConfig,
    /// `GET /metrics` options.
    #[serde(default)]
    pub metrics: MetricsOptions,
    /// Log output.
    #[serde(default)]
    pub log: LogOptions,
    /// The web UI the admin listener serves at `/ui`.
    #[serde(default)]
    pub ui: UiOptions,
}

/// The web UI (`/ui` on the admin listener, see the `airlock-web` crate).
///
/// Only `human` identities sign in (agents and services never do, nor
/// the admin token). What a person may do follows from their groups:
/// everyone signed in sees and decides the reviews of their approver
/// groups; members of `auditor_groups` read everything (every review,
/// live sessions, policy versions); members of `admin_groups` also
/// manage (end live sessions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiOptions {
    /// Serve the web UI at `/ui` (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Groups whose members manage through the UI (auditors too).
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Groups whose members read everything through the UI.
    #[serde(default)]
    pub auditor_groups: Vec<String>,
    /// How long a sign-in lasts at most (default `12h`); it ends earlier
    /// when the token it was made with expires or is revoked.
    #[serde(default = "default_ui_session_ttl")]
    pub session_ttl: String,
    /// The origin browsers reach the UI at (`https://airlock.example.com`),
    /// used for the OIDC sign-in's redirect URI
    /// (`<public_url>/ui/oidc/callback`). Default: `http://<listen.admin>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

impl Default for UiOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            admin_groups: Vec::new(),
            auditor_groups: Vec::new(),
            session_ttl: default_ui_session_ttl(),
            public_url: None,
        }
    }
}

/// `ui.public_url`: an `http(s)://host[:port]` origin, nothing after it
/// but an optional `/`.
fn check_public_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https:// or http://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
        || authority.chars().any(char::is_control)
    {
        return Err(format!(
            "{url:?} must be an origin only, like https://airlock.example.com"
        ));
    }
    Ok(())
}

impl UiOptions {
    /// The UI's origin without a trailing slash: `ui.public_url`, else
    /// `http://<admin listen address>`; `None` when the admin listener
    /// binds every address (no origin to name).
    pub fn origin(&self, admin_listen: SocketAddr) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.trim_end_matches('/').to_string());
        }
        (!admin_listen.ip().is_unspecified()).then(|| format!("http://{admin_listen}"))
    }
}

fn default_ui_session_ttl() -> String {
    "12h".into()
}

/// `GET /metrics` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsOptions {
    /// Serve `GET /metrics` and count per command (default true). `false`
    /// only to measure what counting costs: the route answers 404 and
    /// sessions take no per-command counters.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Label sessions, commands and authentication failures with the
    /// identity (default false: identities are unbounded, and each one
    /// multiplies the series a Prometheus server keeps).
    #[serde(default)]
    pub identity_labels: bool,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            identity_labels: false,
        }
    }
}

/// Log output. `RUST_LOG` (or `AIRLOCK_LOG`) overrides `level`, and
/// `--log-format` overrides `format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOptions {
    /// `text` (default) or `json` (one JSON object per line, with the
    /// fields of the session's span).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A level (`error`, `warn`, `info` (default), `debug`, `trace`, `off`)
    /// or `tracing` directives such as `info,airlock_pg_gateway=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> String {
    "text".into()
}

fn default_log_level() -> String {
    "info".into()
}

/// True when `level` is a level or a list of `target=level` directives.
fn valid_log_level(level: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    !level.trim().is_empty()
        && level.split(',').all(|directive| {
            let level = directive
                .rsplit_once('=')
                .map_or(
                    directive,
                    |(target, level)| {
                        if target.trim().is_empty() {
                            ""
                        } else {
                            level
                        }
                    },
                );
            LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
        })
}

/// Review options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewOptions {
    /// How long a review waits for decisions before it expires (default `1h`).
    #[serde(default = "default_review_pending_ttl")]
    pub pending_ttl: String,
    /// How long an approval may be used to run the statement (default `15m`).
    #[serde(default = "default_review_validity")]
    pub validity: String,
}

impl Default for ReviewOptions {
    fn default() -> Self {
        Self {
            pending_ttl: default_review_pending_ttl(),
            validity: default_review_validity(),
        }
    }
}

fn default_review_pending_ttl() -> String {
    "1h".into()
}

fn default_review_validity() -> String {
    "15m".into()
}

/// Session recording options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingOptions {
    /// Record every command before it runs (default true). Switching it off
    /// is for measuring the recorder's cost only: sessions and
    /// authentication are still recorded, commands are not.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Rows of each result kept for replay (default 20).
    #[serde(default = "default_sample_rows")]
    pub sample_rows: usize,
    /// Bytes of each result kept for replay (default 8192).
    #[serde(default = "default_sample_bytes")]
    pub sample_bytes: usize,
    /// Statement text kept per command; longer text is cut and its SHA-256
    /// recorded (default 65536).
    #[serde(default = "default_max_statement_bytes")]
    pub max_statement_bytes: usize,
    /// How long events are kept (default `90d`).
    #[serde(default = "default_retention")]
    pub retention: String,
    /// How often the pruning job runs (default `1h`).
    #[serde(default = "default_prune_interval")]
    pub prune_interval: String,
    /// When a command's record counts as written, before the command runs:
    /// `writes` (default): a command with an effect (access write or admin,
    /// or a classification that is not complete) waits until its record is
    /// on disk (fdatasync, with its group commit), so it survives a power
    /// loss; a read waits until its record is written to the journal (it
    /// survives a crash or SIGKILL of the gateway) and is on disk within
    /// 10 ms. `full`: every command waits until its record is on disk.
    /// `normal`: every command waits only until its record is written to
    /// the journal; a power loss or kernel crash may lose the last moments
    /// of records, writes' included.
    #[serde(default = "default_sync")]
    pub sync: String,
}

fn default_sync() -> String {
    "writes".into()
}

impl RecordingOptions {
    /// The `sync` mode; `writes` (the default) for a value that names none,
    /// which [`Config::validate`] reports.
    pub fn sync_mode(&self) -> SyncMode {
        SyncMode::parse(&self.sync).unwrap_or(SyncMode::Writes)
    }
}

impl Default for RecordingOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_rows: default_sample_rows(),
            sample_bytes: default_sample_bytes(),
            max_statement_bytes: default_max_statement_bytes(),
            retention: default_retention(),
            prune_interval: default_prune_interval(),
            sync: default_sync(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_sample_rows() -> usize {
    20
}

fn default_sample_bytes() -> usize {
    8192
}

fn default_max_statement_bytes() -> usize {
    65_536
}

fn default_retention() -> String {
    "90d".into()
}

fn default_prune_interval() -> String {
    "1h".into()
}

fn default_store() -> String {
    "sqlite".into()
}

/// Listener addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Admin REST API, `/healthz`, `/readyz` (default `127.0.0.1:8480`).
    #[serde(default = "default_admin_listen")]
    pub admin: String,
    /// PostgreSQL clients (default `0.0.0.0:15432`).
    #[serde(default = "default_postgres_listen")]
    pub postgres: String,
    /// MySQL/MariaDB clients (default `0.0.0.0:13306`). The listener runs
    /// when this is set or when a connection has `protocol: mysql`, so a
    /// PostgreSQL-only gateway opens no MySQL port.
    #[serde(default)]
    pub mysql: Option<String>,
    /// HTTP API clients (default `0.0.0.0:18080`; Kubernetes and MCP
    /// later). The listener runs when this is set or when a connection has
    /// `protocol: http`, so a gateway without HTTP connections opens no
    /// HTTP port.
    #[serde(default)]
    pub http: Option<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            admin: default_admin_listen(),
            postgres: default_postgres_listen(),
            mysql: None,
            http: None,
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:8480".into()
}

fn default_postgres_listen() -> String {
    "0.0.0.0:15432".into()
}

/// The MySQL listener's address when `listen.mysql` is not set.
pub const DEFAULT_MYSQL_LISTEN: &str = "0.0.0.0:13306";

/// PEM files for the client-facing TLS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM), relative to the config file.
    pub cert: String,
    /// Private key (PEM), relative to the config file.
    pub key: String,
}

/// A named upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The name clients use as database name (`prod-pg`).
    pub name: String,
    /// Wire protocol: `postgres`, `mysql` (MySQL and MariaDB), `http`,
    /// `kubernetes` or `mcp`.
    pub protocol: String,
    /// Upstream `host:port` (SQL protocols; an HTTP connection has `url`).
    #[serde(default)]
    pub address: String,
    /// Database on the upstream.
    #[serde(default)]
    pub database: Option<String>,
    /// Name of the stored credential (`airlock credential set NAME …`).
    /// An MCP connection with `command:` may have none (its secrets come
    /// through `env_from_credentials`).
    #[serde(default)]
    pub credential: String,
    /// Labels for policy rules (`env: prod`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// TLS towards the upstream: `disable` (default), `require` (encrypt,
    /// no certificate check, like libpq), `verify-full` (check against
    /// `ca_file` and the host name).
    #[serde(default)]
    pub tls: Option<String>,
    /// CA bundle for `verify-full`, relative to the config file.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// MySQL: the upstream's RSA public key (PEM), relative to the config
    /// file, pinned for `caching_sha2_password` (and `sha256_password`)
    /// full authentication without TLS: the stored password is sent
    /// encrypted with it. Without TLS and without this key such a login
    /// fails: the gateway never trusts a key the server sends over a plain
    /// connection (anyone in the path could send theirs).
    #[serde(default)]
    pub server_public_key: Option<String>,
    /// `standing` (default): any token scoped to the connection gets in.
    /// `jit`: only while an access grant (or a standing access rule of the
    /// policy) admits the identity.
    #[serde(default)]
    pub access: Option<String>,
    /// HTTP: the upstream's base URL (`https://billing.internal:8443`, may
    /// end in a path prefix); MCP: the server's endpoint
    /// (`https://mcp.github.internal/mcp`). `https` verifies the
    /// certificate against the system roots or `ca_file`.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP and MCP `url:`: how the stored credential is sent upstream.
    #[serde(default)]
    pub inject: Option<crate::http_config::InjectConfig>,
    /// HTTP and MCP `url:`: do not verify the upstream's certificate (only
    /// when named explicitly; never the default).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// HTTP: forward the client's `Cookie` header (default false: removed).
    #[serde(default)]
    pub forward_cookies: bool,
    /// HTTP: more request headers to remove before forwarding (beside
    /// `Authorization`, `Proxy-Authorization`, `Cookie`, `Impersonate-*`
    /// and the hop-by-hop headers, always removed).
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// Kubernetes: send `Impersonate-User: <identity>` and one
    /// `Impersonate-Group` per group of the identity, so the cluster's RBAC
    /// and audit log see the agent (the gateway's own service account
    /// needs the `impersonate` verb). The client's own `Impersonate-*`
    /// headers are always removed.
    #[serde(default)]
    pub impersonate: bool,
    /// Kubernetes: the credential is a client certificate and its key
    /// (`airlock credential set NAME --client-cert … --client-key …`),
    /// presented to the API server with mutual TLS instead of a bearer
    /// token; needs an `https` url. Rotating the credential takes effect
    /// for the next request; open streams keep their connection.
    #[serde(default)]
    pub client_certificate: bool,
    /// MCP: the stdio server the gateway starts per agent session
    /// (program and arguments; no shell), instead of a `url`.
    #[serde(default)]
    pub command: Vec<String>,
    /// MCP stdio: environment variables of the child, each the secret of
    /// a stored credential (`{FILES_API_KEY: files-api-key}`), decrypted at
    /// admission; the agent never sees them.
    #[serde(default)]
    pub env_from_credentials: BTreeMap<String, String>,
    /// MCP: tools known to be read-only (`access: read` in the policy);
    /// every other tool call writes.
    #[serde(default)]
    pub read_tools: Vec<String>,
    /// MCP `url:`: how the server is spoken to. `streamable-http` (POST
    /// each message; answers as JSON or an event stream), `sse` (the
    /// legacy HTTP+SSE transport: GET the url for an event stream whose
    /// `endpoint` event names where to POST), or `auto` (default):
    /// Streamable HTTP, falling back to `sse` when the server refuses the
    /// `initialize` POST with 400, 404 or 405, as the MCP specification's
    /// backwards compatibility describes.
    #[serde(default)]
    pub transport: Option<String>,
}

/// Which clients may connect without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextPolicy {
    /// Only clients on a loopback address (default).
    #[default]
    Loopback,
    /// Any client (tokens then cross the network in clear: avoid).
    Always,
    /// No client: TLS is required.
    Never,
}

impl PlaintextPolicy {
    /// True when a client at `address` may connect without TLS.
    pub fn allows(self, address: std::net::IpAddr) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Loopback => {
                address.is_loopback()
                    || match address {
                        std::net::IpAddr::V6(v6) => {
                            v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                        }
                        std::net::IpAddr::V4(_) => false,
                    }
            }
        }
    }
}

/// PostgreSQL listener options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    /// Who may skip TLS: `loopback` (default), `always`, `never`.
    #[serde(default)]
    pub allow_plaintext: PlaintextPolicy,
    /// Largest message accepted from a client, in bytes (default 16 MiB).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Time allowed for TLS, startup and authentication (default `30s`).
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout: String,
    /// Time allowed to connect and authenticate upstream (default `10s`).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            allow_plaintext: PlaintextPolicy::default(),
            max_message_bytes: default_max_message_bytes(),
            auth_timeout: default_auth_timeout(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

/// MySQL/MariaDB listener options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlOptions {
    /// Who may skip TLS: `loopback` (default), `always`, `never`. Without
    /// TLS the token travels in cleartext (`mysql_clear_password`).
    #[serde(default)]
    pub allow_plaintext: PlaintextPolicy,
    /// Largest packet payload accepted from a client or an upstream, in
    /// bytes (default 16 MiB; multi-packet payloads count whole).
    #[serde(default = "default_mysql_max_packet_bytes")]
    pub max_packet_bytes: usize,
}

impl Default for MysqlOptions {
    fn default() -> Self {
        Self {
            allow_plaintext: PlaintextPolicy::default(),
            max_packet_bytes: default_mysql_max_packet_bytes(),
        }
    }
}

/// The MySQL listener's default packet bound: the codec's own
/// (`airlock_mysql::DEFAULT_MAX_PACKET_BYTES`; a test of
/// `airlock-mysql-gateway` checks they agree).
pub const DEFAULT_MYSQL_MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;

fn default_mysql_max_packet_bytes() -> usize {
    DEFAULT_MYSQL_MAX_PACKET_BYTES
}

/// Connection names the HTTP listener serves itself (airlock's own MCP
/// server at `/mcp`, the OAuth protected-resource metadata under
/// `/.well-known/`), so no connection may take them.
pub const RESERVED_CONNECTION_NAMES: [&str; 2] = ["mcp", ".well-known"];

/// The protocols this build has a gateway for.
pub const SERVED_PROTOCOLS: [Protocol; 5] = [
    Protocol::Postgres,
    Protocol::Mysql,
    Protocol::Http,
    Protocol::Kubernetes,
    Protocol::Mcp,
];

/// Why a connection of `protocol` cannot be served, if it cannot.
pub fn unserved_protocol(protocol: &str) -> Option<String> {
    let served = || {
        SERVED_PROTOCOLS
            .iter()
            .map(|protocol| protocol.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match Protocol::parse(protocol) {
        Some(known) if SERVED_PROTOCOLS.contains(&known) => None,
        Some(_) => Some(format!(
            "protocol {protocol:?} is not supported yet (supported: {})",
            served()
        )),
        None => Some(format!(
            "protocol {protocol:?} is unknown (supported: {})",
            served()
        )),
    }
}

/// The PostgreSQL listener's default message bound: the codec's own
/// (`airlock_pg::DEFAULT_MAX_MESSAGE_BYTES`; a test of `airlock-pg-gateway`
/// checks they agree, so the core needs no PostgreSQL dependency).
pub const DEFAULT_POSTGRES_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

fn default_max_message_bytes() -> usize {
    DEFAULT_POSTGRES_MAX_MESSAGE_BYTES
}

fn default_auth_timeout() -> String {
    "30s".into()
}

fn default_connect_timeout() -> String {
    "10s".into()
}

/// Limits on live sessions, checked when a session is admitted, before its
/// upstream connection is opened: one identity (or one busy connection)
/// cannot take every upstream connection slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOptions {
    /// Live sessions one identity may hold at once, over all connections
    /// (default 20).
    #[serde(default = "default_max_sessions_per_identity")]
    pub max_sessions_per_identity: usize,
    /// Live sessions one connection (upstream) may carry at once, over all
    /// identities (default 100).
    #[serde(default = "default_max_sessions_per_connection")]
    pub max_sessions_per_connection: usize,
}

impl Default for LimitOptions {
    fn default() -> Self {
        Self {
            max_sessions_per_identity: default_max_sessions_per_identity(),
            max_sessions_per_connection: default_max_sessions_per_connection(),
        }
    }
}

fn default_max_sessions_per_identity() -> usize {
    20
}

fn default_max_sessions_per_connection() -> usize {
    100
}

/// The async runtime the sessions run on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeOptions {
    /// Worker threads that run the sessions (default: one per core, at
    /// least two). One worker spends less CPU per command when recording
    /// is off (no wake-ups of another worker, no work stealing), but with
    /// recording on a journal write that waits for the page under
    /// writeback stalls it; more workers use more cores. A command that
    /// leads a journal sync never holds up the others, whatever the
    /// number.
    #[serde(default)]
    pub workers: Option<usize>,
}

/// Most runtime workers.
pub const MAX_RUNTIME_WORKERS: usize = 1024;

impl RuntimeOptions {
    /// The worker threads to start on a machine with `cores` cores.
    pub fn workers(&self, cores: usize) -> usize {
        self.workers.unwrap_or(cores.max(2))
    }
}

/// Token issuing options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenOptions {
    /// Longest TTL a token may be issued with (default `1h`).
    #[serde(default = "default_max_ttl")]
    pub max_ttl: String,
    /// TTL when none is asked for (default `15m`).
    #[serde(default = "default_ttl")]
    pub default_ttl: String,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            max_ttl: default_max_ttl(),
            default_ttl: default_ttl(),
        }
    }
}

fn default_max_ttl() -> String {
    "1h".into()
}

fn default_ttl() -> String {
    "15m".into()
}

/// Credential-spraying protection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthOptions {
    /// Failed attempts within `lockout_window` by one claimed identity from
    /// one source address that lock that identity out from that address
    /// (default 5). Other identities behind the same address are not
    /// affected. On the admin API, which has no claimed identity, it is the
    /// limit per source address.
    #[serde(default = "default_lockout_threshold")]
    pub lockout_threshold: u32,
    /// Failed attempts within `lockout_window` from one source address,
    /// whatever identities were claimed, that lock the whole address out
    /// (default four times `lockout_threshold`; at least
    /// `lockout_threshold`).
    #[serde(default)]
    pub lockout_source_threshold: Option<u32>,
    /// The counting window (default `1m`).
    #[serde(default = "default_lockout_window")]
    pub lockout_window: String,
    /// How long a locked-out source is refused (default `5m`).
    #[serde(default = "default_lockout_duration")]
    pub lockout_duration: String,
    /// Let sessions run past the expiry of the token that opened them
    /// (default false: at expiry the session is closed).
    #[serde(default)]
    pub sessions_outlive_tokens: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            lockout_threshold: default_lockout_threshold(),
            lockout_source_threshold: None,
            lockout_window: default_lockout_window(),
            lockout_duration: default_lockout_duration(),
            sessions_outlive_tokens: false,
        }
    }
}

fn default_lockout_threshold() -> u32 {
    5
}

impl AuthOptions {
    /// The per-source limit: as configured, or four times the per-identity
    /// one.
    pub fn source_threshold(&self) -> u32 {
        self.lockout_source_threshold
            .unwrap_or_else(|| self.lockout_threshold.saturating_mul(4))
    }
}

fn default_lockout_window() -> String {
    "1m".into()
}

fn default_lockout_duration() -> String {
    "5m".into()
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub source_name: String,
    /// The problems, in file order where known.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "{} has {count} problem{}:",
            self.source_name,
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            match problem.line {
                Some(line) => writeln!(f, "  {}:{line}: {}", self.source_name, problem.message)?,
                None => writeln!(f, "  {}: {}", self.source_name, problem.message)?,
            }
        }
        Ok(())
    }
}

/// Settings derived from the file once it validated.
#[derive(Debug, Clone)]
pub struct ResolvedSettings {
    pub admin_listen: SocketAddr,
    pub postgres_listen: SocketAddr,
    /// The MySQL listener, when one runs (see [`ListenConfig::mysql`]).
    pub mysql_listen: Option<SocketAddr>,
    /// The HTTP listener, when one runs (see [`ListenConfig::http`]).
    pub http_listen: Option<SocketAddr>,
    pub max_ttl: Duration,
    pub default_ttl: Duration,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    pub auth_timeout: Duration,
    pub connect_timeout: Duration,
    pub retention: Duration,
    pub prune_interval: Duration,
    pub review_pending_ttl: Duration,
    pub review_validity: Duration,
    /// The longest a web UI sign-in lasts (`ui.session_ttl`).
    pub ui_session_ttl: Duration,
}

impl GatewayConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<(Self, ResolvedSettings), ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            source_name: source_name.clone(),
            problems: vec![ConfigProblem {
                line: None,
                message: format!("cannot read the file: {error}"),
            }],
        })?;
        Self::parse(&text, &source_name)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str, source_name: &str) -> Result<(Self, ResolvedSettings), ConfigError> {
        let config: GatewayConfig = serde_saphyr::from_str(text).map_err(|error| ConfigError {
            source_name: source_name.to_string(),
            problems: vec![ConfigProblem {
                line: error
                    .location()
                    .and_then(|location| usize::try_from(location.line()).ok()),
                message: first_line(&error.to_string()),
            }],
        })?;
        let settings = config.validate(text).map_err(|problems| ConfigError {
            source_name: source_name.to_string(),
            problems,
        })?;
        Ok((config, settings))
    }

    /// Checks every field; returns all problems at once.
    pub fn validate(&self, text: &str) -> Result<ResolvedSettings, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |needle: &str, message: String| {
            // `name: X/field:` locates `field:` within the block of `name: X`.
            let line = match needle.split_once('/') {
                Some((block, field)) => {
                    locate_in_block(text, block, field).or_else(|| locate(text, block))
                }
                None => locate(text, needle),
            };
            problems.push(ConfigProblem { line, message });
        };
        let admin_listen = self.listen.admin.parse::<SocketAddr>().map_err(|_| ()).ok();
        if admin_listen.is_none() {
            problem(
                "admin:",
                format!(
                    "listen.admin: {:?} is not an address like 127.0.0.1:8480",
                    self.listen.admin
                ),
            );
        }
        if let Some(public_url) = &self.ui.public_url {
            if let Err(message) = check_public_url(public_url) {
                problem("public_url:", format!("ui.public_url: {message}"));
            }
        }
        let postgres_listen = self.listen.postgres.parse::<SocketAddr>().ok();
        if postgres_listen.is_none() {
            problem(
                "postgres:",
                format!(
                    "listen.postgres: {:?} is not an address like 0.0.0.0:15432",
                    self.listen.postgres
                ),
            );
        }
        let wants_mysql = self.listen.mysql.is_some()
            || self
                .connections
                .iter()
                .any(|connection| connection.protocol == Protocol::Mysql.as_str());
        let mysql_text = self.listen.mysql.as_deref().unwrap_or(DEFAULT_MYSQL_LISTEN);
        let mysql_listen = mysql_text.parse::<SocketAddr>().ok();
        if wants_mysql && mysql_listen.is_none() {
            problem(
                "mysql:",
                format!("listen.mysql: {mysql_text:?} is not an address like 0.0.0.0:13306"),
            );
        }
        let mysql_listen = mysql_listen.filter(|_| wants_mysql);
        if self.mysql.max_packet_bytes < 1024 {
            problem(
                "max_packet_bytes:",
                "mysql.max_packet_bytes: must be at least 1024".into(),
            );
        }
        let http_listen = self.validate_http(&mut problem);
        if self.store != "sqlite" {
            if self.store.starts_with("postgres://") || self.store.starts_with("postgresql://") {
                // The parser's messages never repeat the URL (it could hold
                // a password).
                if let Err(error) = airlock_store::PgStoreUrl::parse(&self.store) {
                    problem("store:", format!("store: {error}"));
                }
            } else {
                problem(
                    "store:",
                    format!(
                        "store: {:?} is neither `sqlite` nor a postgres:// URL",
                        self.store
                    ),
                );
            }
        }
        let mut durations = Vec::new();
        let mut durations_valid = true;
        for (field, value) in [
            ("tokens.max_ttl", &self.tokens.max_ttl),
            ("tokens.default_ttl", &self.tokens.default_ttl),
            ("auth.lockout_window", &self.auth.lockout_window),
            ("auth.lockout_duration", &self.auth.lockout_duration),
            ("postgres.auth_timeout", &self.postgres.auth_timeout),
            ("postgres.connect_timeout", &self.postgres.connect_timeout),
            ("recording.retention", &self.recording.retention),
            ("recording.prune_interval", &self.recording.prune_interval),
            ("reviews.pending_ttl", &self.reviews.pending_ttl),
            ("reviews.validity", &self.reviews.validity),
            ("ui.session_ttl", &self.ui.session_ttl),
        ] {
            match parse_duration(value) {
                Ok(duration) if duration.is_zero() => {
                    durations_valid = false;
                    let key = field.rsplit('.').next().unwrap_or(field);
                    problem(
                        &format!("{key}:"),
                        format!("{field}: must be longer than zero"),
                    );
                    durations.push(Duration::from_secs(1));
                }
                Ok(duration) => durations.push(duration),
                Err(error) => {
                    durations_valid = false;
                    let key = field.rsplit('.').next().unwrap_or(field);
                    problem(&format!("{key}:"), format!("{field}: {error}"));
                    durations.push(Duration::from_secs(1));
                }
            }
        }
        if let (Some(max), Some(default)) = (durations.first(), durations.get(1)) {
            if durations_valid && default > max {
                problem(
                    "default_ttl:",
                    "tokens.default_ttl: longer than tokens.max_ttl".into(),
                );
            }
        }
        if self.auth.lockout_threshold == 0 {
            problem(
                "lockout_threshold:",
                "auth.lockout_threshold: must be at least 1".into(),
            );
        }
        for (key, value) in [
            (
                "max_sessions_per_identity",
                self.limits.max_sessions_per_identity,
            ),
            (
                "max_sessions_per_connection",
                self.limits.max_sessions_per_connection,
            ),
        ] {
            if value == 0 {
                problem(
                    &format!("{key}:"),
                    format!("limits.{key}: must be at least 1"),
                );
            }
        }
        if let Some(workers) = self.runtime.workers {
            if workers == 0 || workers > MAX_RUNTIME_WORKERS {
                problem(
                    "workers:",
                    format!("runtime.workers: must be between 1 and {MAX_RUNTIME_WORKERS}"),
                );
            }
        }
        if let Some(source_threshold) = self.auth.lockout_source_threshold {
            if source_threshold < self.auth.lockout_threshold {
                problem(
                    "lockout_source_threshold:",
                    "auth.lockout_source_threshold: must be at least auth.lockout_threshold".into(),
                );
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problem(
                "log:/format:",
                format!("log.format: {:?} is not text or json", self.log.format),
            );
        }
        if !valid_log_level(&self.log.level) {
            problem(
                "log:/level:",
                format!(
                    "log.level: {:?} is not a level (error, warn, info, debug, trace, off) or target=level directives",
                    self.log.level
                ),
            );
        }
        if SyncMode::parse(&self.recording.sync).is_none() {
            problem(
                "sync:",
                format!(
                    "recording.sync: {:?} is not writes, full or normal",
                    self.recording.sync
                ),
            );
        }
        if self.recording.max_statement_bytes < 64 {
            problem(
                "max_statement_bytes:",
                "recording.max_statement_bytes: must be at least 64".into(),
            );
        }
        if self.postgres.max_message_bytes < 1024 {
            problem(
                "max_message_bytes:",
                "postgres.max_message_bytes: must be at least 1024".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (index, connection) in self.connections.iter().enumerate() {
            let needle = format!("name: {}", connection.name);
            let at = format!("connections[{index}] {:?}", connection.name);
            if connection.name.trim().is_empty() {
                problem(
                    "connections:",
                    format!("connections[{index}]: name is empty"),
                );
            } else if !seen.insert(connection.name.clone()) {
                problem(&needle, format!("{at}: duplicate connection name"));
            } else if RESERVED_CONNECTION_NAMES.contains(&connection.name.as_str()) {
                problem(
                    &needle,
                    format!(
                        "{at}: the name is reserved: https://gw:18080/{}/ is airlock's own (the MCP server at /mcp, OAuth metadata at /.well-known/); choose another name",
                        connection.name
                    ),
                );
            }
            if let Some(problem_text) = unserved_protocol(&connection.protocol) {
                problem(
                    &format!("{needle}/protocol:"),
                    format!("{at}: {problem_text}"),
                );
            }
            for (field, message) in crate::http_config::connection_problems(connection)
                .into_iter()
                .chain(crate::mcp_config::connection_problems(connection))
            {
                problem(&format!("{needle}/{field}:"), format!("{at}: {message}"));
            }
            let over_http = crate::http_config::over_http(&connection.protocol)
                || crate::mcp_config::is_mcp(connection);
            if !over_http && connection.address.is_empty() {
                problem(
                    &format!("{needle}:"),
                    format!("{at}: address is missing (host:port of the upstream)"),
                );
            } else if !over_http && !valid_host_port(&connection.address) {
                problem(
                    &format!("{needle}/address:"),
                    format!("{at}: address {:?} is not host:port", connection.address),
                );
            }
            if connection.credential.trim().is_empty()
                && !crate::mcp_config::credential_optional(connection)
            {
                problem(
                    &format!("{needle}/credential:"),
                    format!("{at}: credential is empty"),
                );
            }
            if !matches!(
                connection.access.as_deref(),
                None | Some("standing") | Some("jit")
            ) {
                problem(
                    &format!("{needle}/access:"),
                    format!(
                        "{at}: access {:?} is not standing or jit",
                        connection.access.as_deref().unwrap_or("")
                    ),
                );
            }
            if connection.server_public_key.is_some() && connection.protocol != "mysql" {
                problem(
                    &format!("{needle}/server_public_key:"),
                    format!("{at}: server_public_key is for protocol mysql only"),
                );
            }
            match connection.tls.as_deref() {
                None | Some("disable") | Some("require") => {}
                Some("verify-full") => {
                    if connection.ca_file.is_none() {
                        problem(&needle, format!("{at}: tls verify-full needs ca_file"));
                    }
                }
                Some(other) => problem(
                    &format!("{needle}/tls:"),
                    format!("{at}: tls {other:?} is not one of disable, require, verify-full"),
                ),
            }
        }
        for notify_problem in self.notifications.validate() {
            let field = notify_problem
                .location
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_string();
            problem(
                &format!("{field}:"),
                format!("{}: {}", notify_problem.location, notify_problem.message),
            );
        }
        for oidc_problem in airlock_oidc::validate_issuers(&self.identity_providers) {
            // `identity_providers[1].issuer` → the `issuer:` line of that entry.
            let index: Option<usize> = oidc_problem
                .location
                .strip_prefix("identity_providers[")
                .and_then(|rest| rest.split(']').next())
                .and_then(|index| index.parse().ok());
            let field = oidc_problem
                .location
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_string();
            let needle = match index.and_then(|index| self.identity_providers.get(index)) {
                Some(provider) if !field.is_empty() && !field.contains('[') => {
                    format!("name: {}/{field}:", provider.name)
                }
                Some(provider) => format!("name: {}", provider.name),
                None => "identity_providers:".to_string(),
            };
            problem(
                &needle,
                format!("{}: {}", oidc_problem.location, oidc_problem.message),
            );
        }
        problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        match (admin_listen, postgres_listen, problems.is_empty()) {
            (Some(admin_listen), Some(postgres_listen), true) => {
                let get = |index: usize| {
                    durations
                        .get(index)
                        .copied()
                        .unwrap_or(Duration::from_secs(1))
                };
                Ok(ResolvedSettings {
                    admin_listen,
                    postgres_listen,
                    mysql_listen,
                    http_listen,
                    max_ttl: get(0),
                    default_ttl: get(1),
                    lockout_window: get(2),
                    lockout_duration: get(3),
                    auth_timeout: get(4),
                    connect_timeout: get(5),
                    retention: get(6),
                    prune_interval: get(7),
                    review_pending_ttl: get(8),
                    review_validity: get(9),
                    ui_session_ttl: get(10),
                })
            }
            _ => Err(problems),
        }
    }

    /// The HTTP listener's address (when one runs) and the `http:`
    /// options' problems.
    fn validate_http(&self, problem: &mut impl FnMut(&str, String)) -> Option<SocketAddr> {
        let wants_http = self.listen.http.is_some()
            || self.connections.iter().any(|connection| {
                crate::http_config::over_http(&connection.protocol)
                    || crate::mcp_config::is_mcp(connection)
            });
        let text = self
            .listen
            .http
            .as_deref()
            .unwrap_or(crate::http_config::DEFAULT_HTTP_LISTEN);
        let address = text.parse::<SocketAddr>().ok();
        if wants_http && address.is_none() {
            problem(
                "http:",
                format!("listen.http: {text:?} is not an address like 0.0.0.0:18080"),
            );
        }
        for (field, message) in crate::http_config::options_problems(&self.http) {
            problem(&format!("{field}:"), message);
        }
        address.filter(|_| wants_http)
    }

    /// The connection named `name`.
    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections
            .iter()
            .find(|connection| connection.name == name)
    }
}

/// Resolves a path from the config file relative to the file's folder.
pub fn relative_to(config_path: &Path, value: &str) -> PathBuf {
    let path = Path::new(value);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    config_path
        .parent()
        .map(|folder| folder.join(path))
        .unwrap_or_else(|| path.to_path_buf())
}

fn valid_host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && port.parse::<u16>().map(|port| port > 0).unwrap_or(false)
        }
        None => false,
    }
}

/// The first line (1-based) containing `needle`, ignoring comments.
fn locate(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let code = line.split('#').next().unwrap_or("");
            code.contains(needle)
        })
        .map(|index| index + 1)
}

/// The line of `key` in the list item that starts at the line holding
/// `block` (stops at the next list item).
fn locate_in_block(text: &str, block: &str, key: &str) -> Option<usize> {
    let start = locate(text, block)?;
    for (offset, line) in text.lines().enumerate().skip(start) {
        let code = line.split('#').next().unwrap_or("");
        if code.trim_start().starts_with("- ") {
            return None;
        }
        if code.trim_start().starts_with(key) {
            return Some(offset + 1);
        }
    }
    None
}

/// The first line of a parser message, without the parser's own
/// `line N column M: ` prefix (the problem carries the line already).
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let without_location = line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(location, _)| {
            location
                .split(" column ")
                .all(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, message)| message);
    without_location.unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_workers_default_to_the_cores_and_are_bounded() {
        let (defaults, _) = GatewayConfig::parse("{}\n", "empty.yaml").unwrap();
        assert_eq!(defaults.runtime.workers(1), 2);
        assert_eq!(defaults.runtime.workers(8), 8);
        let (one, _) = GatewayConfig::parse("runtime:\n  workers: 1\n", "one.yaml").unwrap();
        assert_eq!(one.runtime.workers(8), 1);
        for workers in ["0", "1025"] {
            let text = format!("runtime:\n  workers: {workers}\n");
            let rendered = GatewayConfig::parse(&text, "bad.yaml")
                .unwrap_err()
                .to_string();
            assert!(
                rendered.contains("bad.yaml:2: runtime.workers: must be between 1 and 1024"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn log_and_metrics_options_are_validated_with_their_lines() {
        let text = "\
metrics:
  identity_labels: true
log:
  format: xml
  level: loud
";
        let error = GatewayConfig::parse(text, "test.yaml").unwrap_err();
        let rendered = error.to_string();
        assert_eq!(error.problems.len(), 2, "{rendered}");
        assert!(
            rendered.contains("test.yaml:4: log.format: \"xml\" is not text or json"),
            "{rendered}"
        );
        assert!(
            rendered.contains("test.yaml:5: log.level: \"loud\""),
            "{rendered}"
        );
        let (config, _) = GatewayConfig::parse(
            "metrics:\n  identity_labels: true\nlog:\n  format: json\n  level: info,airlock_core=debug\n",
            "ok.yaml",
        )
        .unwrap();
        assert!(config.metrics.identity_labels);
        assert_eq!(config.log.format, "json");
        let (defaults, _) = GatewayConfig::parse("{}\n", "empty.yaml").unwrap();
        assert!(!defaults.metrics.identity_labels);
        assert_eq!(
            (defaults.log.format.as_str(), defaults.log.level.as_str()),
            ("text", "info")
        );
        for level in ["warn", "off", "airlock_pg_gateway=trace", "info,hyper=warn"] {
            assert!(valid_log_level(level), "{level}");
        }
        for level in ["", "loud", "=debug", "info,"] {
            assert!(!valid_log_level(level), "{level}");
        }
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let text = "\
listen:
  admin: nowhere
store: mysql://x
connections:
  - name: a
    protocol: mysql
    address: nohost
    credential: ''
  - name: a
    protocol: postgres
    address: h:5432
    credential: c
    tls: maybe
tokens:
  max_ttl: 10x
";
        let error = GatewayConfig::parse(text, "test.yaml").unwrap_err();
        let lines: Vec<_> = error.problems.iter().map(|problem| problem.line).collect();
        assert_eq!(error.problems.len(), 7, "{error}");
        assert!(lines.contains(&Some(2)), "{error}");
        assert!(lines.contains(&Some(3)), "{error}");
        assert!(lines.contains(&Some(15)), "{error}");
        let rendered = error.to_string();
        assert!(rendered.contains("test.yaml:2: listen.admin"), "{rendered}");
        assert!(rendered.contains("duplicate connection name"), "{rendered}");
        assert!(rendered.contains("tls \"maybe\""), "{rendered}");
    }

    #[test]
    fn the_mcp_server_paths_are_not_connection_names() {
        for name in RESERVED_CONNECTION_NAMES {
            let text = format!(
                "connections:\n  - name: {name}\n    protocol: postgres\n    address: h:5432\n    credential: c\n"
            );
            let error = GatewayConfig::parse(&text, "c.yaml").unwrap_err();
            let rendered = error.to_string();
            assert!(rendered.contains("the name is reserved"), "{rendered}");
            assert_eq!(error.problems[0].line, Some(2), "{rendered}");
        }
    }

    #[test]
    fn a_parser_problem_names_its_location_once() {
        let error = GatewayConfig::parse(
            "connections:\n  - name: a\n    protocol: postgres\n",
            "c.yaml",
        )
        .unwrap_err();
        let shown = error.to_string();
        assert!(!shown.contains("column"), "{shown}");
        assert_eq!(
            shown.matches(":2:").count() + shown.matches(":3:").count(),
            1,
            "{shown}"
        );
        assert_eq!(
            first_line("line 3 column 5: missing field `address`"),
            "missing field `address`"
        );
        assert_eq!(first_line("line of sight: no"), "line of sight: no");
    }

    #[test]
    fn unknown_fields_are_refused_with_a_location() {
        let error = GatewayConfig::parse("listen:\n  admn: 1.2.3.4:5\n", "t.yaml").unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].line, Some(2), "{error}");
    }

    /// The repository's `examples/` folder (tests read nothing outside the
    /// repository).
    fn examples_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
    }

    #[test]
    fn the_example_config_loads_unchanged() {
        let path = examples_dir().join("airlock.yaml");
        let (config, _) = GatewayConfig::load(&path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.connections.len(), 2);
        assert_eq!(config.identity_providers.len(), 1);
        assert_eq!(config.policy.as_deref(), Some("policy.yaml"));
        let local = examples_dir().join("local.yaml");
        let (config, _) = GatewayConfig::load(&local).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.policy.as_deref(), Some("local-policy.yaml"));
    }

    /// `examples/airlock-multi.yaml` with only the connections whose
    /// protocol is one of `protocols` (blocks of `connections:` kept whole).
    fn multi_example_with(protocols: &[&str]) -> String {
        let text = std::fs::read_to_string(examples_dir().join("airlock-multi.yaml")).unwrap();
        let keep = |block: &str| {
            protocols.iter().any(|protocol| {
                block.contains(&format!("protocol: {protocol} "))
                    || block.contains(&format!("protocol: {protocol}\n"))
            })
        };
        let mut kept = String::new();
        let mut block = String::new();
        let mut in_connections = false;
        for line in text.lines() {
            if in_connections && line.starts_with("  - name:") {
                if keep(&block) {
                    kept.push_str(&block);
                }
                block.clear();
            }
            if in_connections {
                block.push_str(line);
                block.push('\n');
            } else {
                kept.push_str(line);
                kept.push('\n');
            }
            in_connections |= line == "connections:";
        }
        if keep(&block) {
            kept.push_str(&block);
        }
        kept
    }

    /// The multi-protocol example is the contract: every protocol is
    /// served now, so the whole file loads unchanged.
    #[test]
    fn only_served_protocols_pass_and_unknown_ones_are_named() {
        assert_eq!(unserved_protocol("postgres"), None);
        assert_eq!(unserved_protocol("mysql"), None);
        assert_eq!(unserved_protocol("http"), None);
        assert_eq!(unserved_protocol("kubernetes"), None);
        assert_eq!(unserved_protocol("mcp"), None);
        let problem = unserved_protocol("postgresql").unwrap();
        assert!(
            problem.contains("is unknown (supported: postgres, mysql, http, kubernetes, mcp)"),
            "{problem}"
        );
    }

    #[test]
    fn plaintext_policies_decide_by_address() {
        use std::net::IpAddr;
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(PlaintextPolicy::Loopback.allows(loopback));
        assert!(PlaintextPolicy::Loopback.allows(mapped));
        assert!(!PlaintextPolicy::Loopback.allows(remote));
        assert!(PlaintextPolicy::Always.allows(remote));
        assert!(!PlaintextPolicy::Never.allows(loopback));
    }

    #[test]
    fn the_multi_protocol_example_loads_unchanged() {
        let (config, _) = GatewayConfig::load(&examples_dir().join("airlock-multi.yaml"))
            .unwrap_or_else(|error| panic!("{error}"));
        let files = config.connection("files-mcp").unwrap();
        assert_eq!(files.command[0], "npx");
        assert_eq!(files.env_from_credentials["FILES_API_KEY"], "files-api-key");
        assert!(files.credential.is_empty());
        let github = config.connection("github-mcp").unwrap();
        assert!(github.inject.as_ref().is_some_and(|inject| inject.bearer));

        let with_kubernetes = multi_example_with(&["postgres", "kubernetes"]);
        let (config, settings) = GatewayConfig::parse(&with_kubernetes, "airlock-multi.yaml")
            .unwrap_or_else(|error| panic!("{error}"));
        let k8s = &config.connections[1];
        assert_eq!(
            (k8s.name.as_str(), k8s.protocol.as_str()),
            ("k8s-prod", "kubernetes")
        );
        assert_eq!(k8s.url.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(k8s.ca_file.as_deref(), Some("/etc/airlock/k8s-prod-ca.crt"));
        assert_eq!(k8s.credential, "k8s-prod-gateway");
        assert!(k8s.impersonate);
        assert!(k8s.inject.is_none());
        assert_eq!(
            settings.http_listen.map(|address| address.to_string()),
            Some("0.0.0.0:18080".into())
        );

        let with_mysql = multi_example_with(&["postgres", "mysql"]);
        let (config, settings) = GatewayConfig::parse(&with_mysql, "airlock-multi.yaml")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.connections.len(), 2);
        let shop = &config.connections[1];
        assert_eq!(
            (shop.name.as_str(), shop.protocol.as_str()),
            ("shop-mysql", "mysql")
        );
        assert_eq!(shop.database.as_deref(), Some("shop"));
        assert_eq!(shop.tls.as_deref(), Some("require"));
        assert_eq!(
            settings.mysql_listen.map(|address| address.to_string()),
            Some("0.0.0.0:13306".into())
        );
        assert_eq!(config.mysql.allow_plaintext, PlaintextPolicy::Loopback);

        let with_http = multi_example_with(&["postgres", "http"]);
        let (config, settings) = GatewayConfig::parse(&with_http, "airlock-multi.yaml")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.connections.len(), 2);
        let billing = &config.connections[1];
        assert_eq!(
            (billing.name.as_str(), billing.protocol.as_str()),
            ("billing-api", "http")
        );
        assert_eq!(
            billing.url.as_deref(),
            Some("https://billing.internal:8443")
        );
        assert_eq!(billing.credential, "billing-api-key");
        assert_eq!(
            billing
                .inject
                .as_ref()
                .and_then(|inject| inject.header.as_deref()),
            Some("X-Api-Key")
        );
        assert!(!billing.insecure_skip_verify);
        assert_eq!(
            settings.http_listen.map(|address| address.to_string()),
            Some("0.0.0.0:18080".into())
        );

        let postgres_only = multi_example_with(&["postgres"]);
        let (config, settings) = GatewayConfig::parse(&postgres_only, "airlock-multi.yaml")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.connections.len(), 1);
        assert_eq!(config.connections[0].name, "prod-pg");
        assert_eq!(config.listen.mysql.as_deref(), Some("0.0.0.0:13306"));
        assert_eq!(config.identity_providers.len(), 1);
        assert_eq!(config.policy.as_deref(), Some("policy-multi.yaml"));
        assert_eq!(settings.postgres_listen.to_string(), "0.0.0.0:15432");
    }

    #[test]
    fn a_postgres_store_url_is_accepted_and_a_password_in_it_refused_unrepeated() {
        for url in [
            "postgres://airlock@db.internal:5432/airlock",
            "postgresql://airlock@db/airlock?sslmode=require",
            "postgres://airlock@db/airlock?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        ] {
            let (config, _) = GatewayConfig::parse(&format!("store: {url}\n"), "t.yaml")
                .unwrap_or_else(|error| panic!("{url}: {error}"));
            assert_eq!(config.store, url);
        }
        let error =
            GatewayConfig::parse("store: postgres://airlock:hunter2@db/airlock\n", "t.yaml")
                .unwrap_err()
                .to_string();
        assert!(error.contains("AIRLOCK_STORE_PASSWORD"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn defaults_apply() {
        let (config, settings) = GatewayConfig::parse("{}", "t.yaml").unwrap();
        assert_eq!(config.store, "sqlite");
        assert_eq!(settings.admin_listen.to_string(), "127.0.0.1:8480");
        assert_eq!(settings.postgres_listen.to_string(), "0.0.0.0:15432");
        assert_eq!(settings.max_ttl.as_secs(), 3600);
        assert_eq!(config.postgres.allow_plaintext, PlaintextPolicy::Loopback);
        assert_eq!(
            settings.mysql_listen, None,
            "no MySQL port unless asked for"
        );
        assert_eq!(
            config.mysql.max_packet_bytes,
            DEFAULT_MYSQL_MAX_PACKET_BYTES
        );
        assert_eq!(settings.http_listen, None, "no HTTP port unless asked for");
        assert_eq!(config.http.allow_plaintext, PlaintextPolicy::Loopback);
    }

    #[test]
    fn a_mysql_connection_starts_the_mysql_listener_on_its_default_port() {
        let text = "connections:\n  - name: m\n    protocol: mysql\n    address: db:3306\n    credential: c\n";
        let (_, settings) = GatewayConfig::parse(text, "t.yaml").unwrap();
        assert_eq!(
            settings.mysql_listen.map(|address| address.to_string()),
            Some(DEFAULT_MYSQL_LISTEN.into())
        );
        let text = "listen:\n  mysql: 127.0.0.1:3307\nmysql:\n  allow_plaintext: never\n";
        let (config, settings) = GatewayConfig::parse(text, "t.yaml").unwrap();
        assert_eq!(settings.mysql_listen.unwrap().port(), 3307);
        assert_eq!(config.mysql.allow_plaintext, PlaintextPolicy::Never);
        let error = GatewayConfig::parse("listen:\n  mysql: nowhere\n", "t.yaml").unwrap_err();
        assert!(
            error.to_string().contains("t.yaml:2: listen.mysql"),
            "{error}"
        );
    }

    #[test]
    fn http_connections_are_validated_with_their_lines() {
        let text = "\
connections:
  - name: api
    protocol: http
    url: https://api.internal
    credential: api-key
    inject: {bearer: true}
  - name: bad
    protocol: http
    url: ftp://x
    address: h:1
    credential: k
    inject: {bearer: true, basic: true}
  - name: noinject
    protocol: http
    url: http://127.0.0.1:9/v1
    credential: k
    insecure_skip_verify: true
    ca_file: ca.pem
  - name: pg
    protocol: postgres
    address: h:5432
    credential: c
    inject: {bearer: true}
http:
  upstream_timeout: 0s
";
        let error = GatewayConfig::parse(text, "t.yaml").unwrap_err();
        let shown = error.to_string();
        for expected in [
            "t.yaml:9: connections[1] \"bad\": url \"ftp://x\" must start with http:// or https://",
            "t.yaml:10: connections[1] \"bad\": address is not used by http connections",
            "t.yaml:12: connections[1] \"bad\": inject: give exactly one of header, bearer, basic",
            "connections[2] \"noinject\": an http connection needs inject",
            "t.yaml:17: connections[2] \"noinject\": insecure_skip_verify and ca_file exclude each other",
            "t.yaml:23: connections[3] \"pg\": inject is for protocol http connections",
            "t.yaml:25: http.upstream_timeout: must be longer than zero",
        ] {
            assert!(shown.contains(expected), "{expected}\n{shown}");
        }
        assert_eq!(error.problems.len(), 7, "{shown}");
        let (config, settings) = GatewayConfig::parse(
            "listen:\n  http: 127.0.0.1:8081\nhttp:\n  allow_plaintext: never\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(settings.http_listen.unwrap().port(), 8081);
        assert_eq!(config.http.allow_plaintext, PlaintextPolicy::Never);
        let error = GatewayConfig::parse("listen:\n  http: nowhere\n", "t.yaml").unwrap_err();
        assert!(
            error.to_string().contains("t.yaml:2: listen.http"),
            "{error}"
        );
    }

    #[test]
    fn kubernetes_connections_are_validated_with_their_lines() {
        let text = "\
connections:
  - name: k8s
    protocol: kubernetes
    url: https://10.0.0.1:6443
    credential: sa-token
    impersonate: true
  - name: k8s-bad
    protocol: kubernetes
    credential: sa-token
    inject: {bearer: true}
    address: h:1
  - name: api
    protocol: http
    url: http://127.0.0.1:9
    credential: k
    inject: {bearer: true}
    impersonate: true
";
        let error = GatewayConfig::parse(text, "t.yaml").unwrap_err();
        let shown = error.to_string();
        for expected in [
            "connections[1] \"k8s-bad\": a kubernetes connection needs a url",
            "t.yaml:10: connections[1] \"k8s-bad\": inject is for protocol http connections",
            "t.yaml:11: connections[1] \"k8s-bad\": address is not used by kubernetes connections",
            "t.yaml:17: connections[2] \"api\": impersonate is for protocol kubernetes connections",
        ] {
            assert!(shown.contains(expected), "{expected}\n{shown}");
        }
        assert_eq!(error.problems.len(), 4, "{shown}");
        let (config, settings) = GatewayConfig::parse(
            "connections:\n  - name: k\n    protocol: kubernetes\n    url: http://127.0.0.1:1\n    credential: c\n",
            "t.yaml",
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(!config.connections[0].impersonate);
        assert!(
            settings.http_listen.is_some(),
            "kubernetes is served on the http listener"
        );
    }
}
