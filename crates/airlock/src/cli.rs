//! Command-line definition (clap derive). Help texts carry examples: they
//! are the first documentation a user reads.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// airlock: an access gateway between autonomous agents and the databases
/// and APIs they reach. Agents hold short-lived tokens, never backend
/// credentials; every command is checked, recorded and can be masked.
#[derive(Debug, Parser)]
#[command(name = "airlock", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command. They are global: accepted before or
/// after the subcommand, and shown under their own headings in every
/// subcommand's help so that none of them looks required there.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Admin API address.
    #[arg(
        long,
        global = true,
        env = "AIRLOCK_URL",
        default_value = "http://127.0.0.1:8480",
        help_heading = CONNECTION_OPTIONS
    )]
    pub url: String,
    /// Admin token, for admin commands (shown once at first start; usually
    /// set with AIRLOCK_ADMIN_TOKEN).
    #[arg(
        long,
        global = true,
        env = "AIRLOCK_ADMIN_TOKEN",
        hide_env_values = true,
        help_heading = CONNECTION_OPTIONS
    )]
    pub admin_token: Option<String>,
    /// Your own token, for what is personal: approving, denying, MFA
    /// enrolment, access requests (or the one `airlock login` stored).
    #[arg(
        long,
        global = true,
        env = "AIRLOCK_TOKEN",
        hide_env_values = true,
        help_heading = CONNECTION_OPTIONS
    )]
    pub token: Option<String>,
    /// Output format. Under `json`, an error is one JSON object
    /// `{"error": {"message": …, "status": …}}` on standard error.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = OutputFormat::Text,
        help_heading = OUTPUT_OPTIONS
    )]
    pub output: OutputFormat,
}

/// Help heading of the admin API options shared by every command.
const CONNECTION_OPTIONS: &str = "Connection options (global, optional)";
/// Help heading of `--output`.
const OUTPUT_OPTIONS: &str = "Output options (global)";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Text,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    #[command(
        after_help = "Examples:\n  airlock serve --config airlock.yaml\n  AIRLOCK_ADMIN_TOKEN=… AIRLOCK_MASTER_KEY=… airlock serve --config /etc/airlock/airlock.yaml --data-dir /var/lib/airlock"
    )]
    Serve(ServeArgs),
    /// Store and rotate upstream credentials (encrypted at rest; never shown).
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Issue, list and revoke short-lived tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage named upstream connections.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Browse recorded sessions and replay what an agent ran and saw.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Verify and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Apply, inspect and roll back versioned policies; explain decisions offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Decide commands held for human review (with your own token).
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Step-up confirmation for approvers.
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Just-in-time access to connections: request, list, revoke grants.
    #[command(subcommand)]
    Access(AccessCommand),
    /// airlock's own MCP server for a local agent (stdio).
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Authentication lockouts: end them early.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Check a config file and the policy it names, offline.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// What is running: version, readiness, live policy version, live sessions.
    #[command(
        after_help = "Examples:\n  airlock status\n  AIRLOCK_URL=https://airlock.internal:8480 airlock status --output json\nExit status 1 when the gateway cannot be reached or is not ready."
    )]
    Status,
    /// Check a gateway's surroundings offline: upstreams, identity providers,
    /// certificates, data dir permissions.
    ///
    /// From the config file and data dir, without the admin API: each
    /// config-file upstream is reachable (TCP connect), each identity
    /// provider serves its discovery document, certificates are valid and
    /// do not expire within 14 days, the data dir is owner-only (folders
    /// 0700, files 0600). Run-time connections (in the store) are not checked.
    #[command(
        after_help = "Examples:\n  airlock doctor --config /etc/airlock/airlock.yaml --data-dir /var/lib/airlock\n  airlock doctor --output json | jq '.[] | select(.status != \"ok\")'\nRun it as the user the gateway runs as. Exit status 1 when a check fails; warnings do not fail."
    )]
    Doctor(DoctorArgs),
    /// The admin token: rotate it from the host, with access to the data dir.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  airlock completions bash > /etc/bash_completion.d/airlock\n  airlock completions zsh > \"${fpath[1]}/_airlock\"\n  airlock completions fish > ~/.config/fish/completions/airlock.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a kubeconfig for a `protocol: kubernetes` connection: its
    /// server is the gateway, its user runs `airlock token
    /// kubectl-credential`, so no long-lived secret lands in ~/.kube/config.
    #[command(
        after_help = "Examples:\n  airlock kubeconfig --connection k8s-prod --gateway https://gw:18080 --ca-file gateway-ca.pem > ~/.kube/airlock-k8s-prod\n  AIRLOCK_TOKEN=$(airlock token issue --identity agent-7 --connection k8s-prod --output json | jq -r .token) KUBECONFIG=~/.kube/airlock-k8s-prod kubectl get pods"
    )]
    Kubeconfig(KubeconfigArgs),
    /// Sign in with your identity provider (OAuth device flow); later
    /// commands use the token when AIRLOCK_TOKEN is not set.
    #[command(
        after_help = "Example:\n  airlock login --issuer https://login.example.com/ --client-id airlock-cli --resource urn:airlock\nThe token is stored in ~/.config/airlock/token.json (mode 0600; AIRLOCK_CONFIG_DIR overrides the folder)."
    )]
    Login(LoginArgs),
}

/// `airlock kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// The `protocol: kubernetes` connection.
    #[arg(long)]
    pub connection: String,
    /// The gateway's HTTP listener as clients reach it.
    #[arg(
        long,
        env = "AIRLOCK_GATEWAY_URL",
        default_value = "https://127.0.0.1:18080"
    )]
    pub gateway: String,
    /// PEM of the CA that signed the gateway's certificate, embedded in the
    /// kubeconfig (the data dir's `tls/cert.pem` for the self-signed one).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The namespace of the context.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The airlock executable kubectl runs (default: this one).
    #[arg(long)]
    pub airlock_command: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Replace the admin token in the store: with AIRLOCK_ADMIN_TOKEN when
    /// it is set, otherwise with a new one printed once. Every earlier
    /// admin token stops working at once, also on a running gateway.
    #[command(
        after_help = "Examples:\n  # make the exported token the admin token (e.g. after a first start without it)\n  AIRLOCK_ADMIN_TOKEN=$(openssl rand -hex 24) airlock admin-token rotate --data-dir ./airlock-data\n  # a new random one, printed once\n  env -u AIRLOCK_ADMIN_TOKEN airlock admin-token rotate --data-dir /var/lib/airlock\nRun it on the gateway's host as the user that owns the data dir."
    )]
    Rotate {
        /// The gateway's data directory.
        #[arg(long, default_value = "./airlock-data")]
        data_dir: PathBuf,
        /// The gateway's `store:` setting, for a shared PostgreSQL store
        /// (`postgres://user@host/db`; password from AIRLOCK_STORE_PASSWORD
        /// or AIRLOCK_STORE_PASSWORD_FILE). Default: the SQLite store in
        /// the data dir.
        #[arg(long, env = "AIRLOCK_STORE", default_value = "sqlite")]
        store: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and the policy file it names; no server needed.
    /// Exit status 1 when there is a problem.
    #[command(
        after_help = "Examples:\n  airlock config check\n  airlock config check /etc/airlock/airlock.yaml\n  airlock config check airlock.yaml --output json"
    )]
    Check {
        /// The config file [default: ./airlock.yaml].
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Gateway config file (its connections, identity providers and TLS files).
    #[arg(long, short, default_value = "airlock.yaml")]
    pub config: PathBuf,
    /// The gateway's data directory (permissions, generated certificate).
    #[arg(long, default_value = "./airlock-data")]
    pub data_dir: PathBuf,
    /// Seconds to wait for each upstream and identity provider.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The identity provider's issuer URL.
    #[arg(long, env = "AIRLOCK_OIDC_ISSUER")]
    pub issuer: String,
    /// The public client registered for the airlock CLI.
    #[arg(long, env = "AIRLOCK_OIDC_CLIENT_ID", default_value = "airlock-cli")]
    pub client_id: String,
    /// Scopes to ask for.
    #[arg(long, default_value = "openid")]
    pub scope: String,
    /// Resource indicator (RFC 8707) for the access token, e.g. urn:airlock.
    #[arg(long)]
    pub resource: Option<String>,
    /// Audience parameter, for providers that use one instead of `resource`.
    #[arg(long)]
    pub audience: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Ask for time-bound access to a connection (AIRLOCK_TOKEN: your own token).
    #[command(
        after_help = "Example:\n  AIRLOCK_TOKEN=$TOKEN airlock access request --connection prod-pg --duration 30m --reason \"INC-4711: check stuck orders\"\nApprovers decide with `airlock review approve <request id>`."
    )]
    Request {
        #[arg(long)]
        connection: String,
        /// How long, e.g. 30m (at most what the policy's access rule allows).
        #[arg(long)]
        duration: String,
        /// Why: shown to approvers and kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// List active grants and pending requests.
    List {
        /// Include expired and revoked grants.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a grant: its sessions are closed at once (admin token).
    #[command(
        after_help = "Examples:\n  airlock access list   # the GRANT column\n  airlock access revoke <grant id>"
    )]
    Revoke { id: String },
    /// Approve an access request (same as `airlock review approve`).
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        totp: Option<String>,
    },
    /// Deny an access request (same as `airlock review deny`).
    Deny {
        id: String,
        #[arg(long, required = true)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// End lockouts after failed authentications without a restart (admin
    /// token). With no option every lockout ends; `--source` ends those of an
    /// address (every identity from it, and the address as a whole);
    /// `--identity` ends those of an identity from every address (not an
    /// address locked as a whole); both end that one pair.
    #[command(
        after_help = "Examples:\n  airlock auth unlock --source 10.1.2.3\n  airlock auth unlock --identity agent-7\n  airlock auth unlock --source 10.1.2.3 --identity agent-7"
    )]
    Unlock {
        /// A client IP address.
        #[arg(long)]
        source: Option<String>,
        /// An identity (the PostgreSQL user name it connected with).
        #[arg(long)]
        identity: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List reviews (default: pending ones).
    List {
        /// pending, approved, denied, expired, used, or all.
        #[arg(long, default_value = "pending")]
        status: String,
    },
    /// Show a review: the (masked) statement, who asked, the rule, decisions.
    Show { id: String },
    /// Approve a review (AIRLOCK_TOKEN: your own token; you must be in an approver group).
    #[command(
        after_help = "Examples:\n  AIRLOCK_TOKEN=$MY_TOKEN airlock review approve r-3f9c --comment \"checked the WHERE clause\"\n  airlock review approve r-3f9c --totp 123456   # when the rule requires MFA"
    )]
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        /// A TOTP code from your authenticator (rules with require_mfa).
        #[arg(long)]
        totp: Option<String>,
    },
    /// Deny a review; the waiting command fails with your reason.
    Deny {
        id: String,
        #[arg(long, required = true)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Enroll your (human) identity for TOTP; prints an otpauth:// URI once.
    #[command(
        after_help = "Examples:\n  AIRLOCK_TOKEN=$MY_TOKEN airlock mfa enroll\n  AIRLOCK_TOKEN=$MY_TOKEN airlock mfa enroll | qrencode -t ansiutf8   # scan it with an authenticator app\nAn admin issues the token with `airlock token issue --identity alice --kind human --group dba`."
    )]
    Enroll,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate FILE and make it the next version, live on every session at once.
    #[command(
        after_help = "Examples:\n  airlock policy apply policy.yaml --dry-run\n  airlock policy apply policy.yaml --comment \"block DDL in prod\""
    )]
    Apply {
        /// The policy file (YAML).
        file: std::path::PathBuf,
        /// Why, for the history.
        #[arg(long)]
        comment: Option<String>,
        /// Show what would change against the live version (rules added,
        /// removed and changed, by name; the default); apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List policy versions.
    History,
    /// Print a policy version (default: the live one).
    Show {
        #[arg(long)]
        version: Option<i64>,
    },
    /// Show what changed between two versions.
    Diff { from: i64, to: i64 },
    /// Make version N live again (recorded as a new version).
    #[command(
        after_help = "Examples:\n  airlock policy history\n  airlock policy diff 3 4\n  airlock policy rollback 3   # v3's content becomes the next version"
    )]
    Rollback { version: i64 },
    /// Explain the decision for a statement: offline from files, or with
    /// `--live` against the server's live policy and connections.
    #[command(
        after_help = "Examples:\n  airlock policy explain --config airlock.yaml --policy policy.yaml --identity agent-7 --kind agent --group agents --connection prod-pg --sql \"DELETE FROM t\"\n  echo 'select * from users' | airlock policy explain --config airlock.yaml --policy policy.yaml --identity agent-7 --connection prod-pg --sql - --output json\n  airlock policy explain --live --identity agent-7 --group agents --connection prod-pg --sql \"DELETE FROM t\""
    )]
    Explain {
        /// Use the live server's policy version and connections (admin
        /// token) instead of files.
        #[arg(long, conflicts_with_all = ["config", "policy"])]
        live: bool,
        /// Gateway config (for the connection's tags).
        #[arg(long, required_unless_present = "live")]
        config: Option<std::path::PathBuf>,
        /// Policy file.
        #[arg(long, required_unless_present = "live")]
        policy: Option<std::path::PathBuf>,
        /// Identity name.
        #[arg(long)]
        identity: String,
        /// Identity kind: agent, human or service.
        #[arg(long, default_value = "agent")]
        kind: String,
        /// Groups (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Connection name (from the config).
        #[arg(long)]
        connection: String,
        /// The SQL, or - to read it from standard input.
        #[arg(long)]
        sql: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file [default: ./airlock.yaml].
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where the embedded store, master key and generated TLS certificate live.
    #[arg(long, default_value = "./airlock-data")]
    pub data_dir: PathBuf,
    /// Log format (default: `log.format` of the config file, else text).
    #[arg(long, value_enum, env = "AIRLOCK_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Store (or replace) a credential. The password is read from standard
    /// input; a Kubernetes client certificate and its key from PEM files.
    #[command(
        after_help = "Examples:\n  printf '%s' \"$DB_PASSWORD\" | airlock credential set prod-pg-app --username app --password-stdin\n  airlock credential set k8s-prod-cert --client-cert gateway.crt --client-key gateway.key"
    )]
    Set {
        /// Credential name, referenced by connections.
        name: String,
        /// Upstream user name.
        #[arg(
            long,
            required_unless_present = "client_cert",
            conflicts_with = "client_cert"
        )]
        username: Option<String>,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(
            long,
            required_unless_present = "client_cert",
            conflicts_with = "client_cert"
        )]
        password_stdin: bool,
        /// A client certificate (PEM, chain allowed) for a Kubernetes
        /// connection with `client_certificate: true`; stored encrypted
        /// with its key, user name `client-certificate`.
        #[arg(long, requires = "client_key")]
        client_cert: Option<std::path::PathBuf>,
        /// The client certificate's private key (PEM).
        #[arg(long, requires = "client_cert")]
        client_key: Option<std::path::PathBuf>,
    },
    /// Replace a credential's password; open sessions are not disturbed.
    #[command(
        after_help = "Example:\n  printf '%s' \"$NEW_PASSWORD\" | airlock credential rotate prod-pg-app --password-stdin"
    )]
    Rotate {
        name: String,
        /// Read the new password from standard input.
        #[arg(
            long,
            required_unless_present = "client_cert",
            conflicts_with = "client_cert"
        )]
        password_stdin: bool,
        /// A client-certificate credential's new certificate (PEM).
        #[arg(long, requires = "client_key")]
        client_cert: Option<std::path::PathBuf>,
        /// Its new private key (PEM).
        #[arg(long, requires = "client_cert")]
        client_key: Option<std::path::PathBuf>,
    },
    /// List credentials (names, user names, versions; never secrets).
    List,
    /// Delete a credential; refused while a connection uses it.
    #[command(
        after_help = "Example:\n  airlock connection remove reports-pg && airlock credential delete reports-ro"
    )]
    Delete {
        /// Credential name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; it is printed once and stored only as a hash.
    #[command(
        after_help = "Examples:\n  airlock token issue --identity agent-7 --kind agent --group agents --connection pg-test --ttl 15m\n  airlock token issue --identity alice --kind human --group dba --ttl 8h   # an approver's own token\n  TOKEN=$(airlock token issue --identity agent-7 --connection pg-test --output json | jq -r .token)\n  PGPASSWORD=$TOKEN psql \"host=127.0.0.1 port=15432 user=agent-7 dbname=pg-test\""
    )]
    Issue {
        /// Identity name: the PostgreSQL user name the client must connect as.
        #[arg(long)]
        identity: String,
        /// agent, human or service.
        #[arg(long, default_value = "agent")]
        kind: String,
        /// Group memberships for policy rules (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Connections the token may reach (repeatable; at least one, except
        /// for --kind human: a person's token for approvals, MFA and access
        /// requests may reach no database).
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Lifetime, e.g. 15m or 1h (at most the configured tokens.max_ttl).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List tokens (ids, scopes, expiry; never token values).
    List,
    /// kubectl's exec credential plugin: print an ExecCredential
    /// (client.authentication.k8s.io/v1) with your token (AIRLOCK_TOKEN or
    /// the one `airlock login` stored). `airlock kubeconfig` writes the
    /// kubeconfig that runs it.
    #[command(
        name = "kubectl-credential",
        after_help = "Example:\n  AIRLOCK_TOKEN=… airlock token kubectl-credential --connection k8s-prod   # kubectl runs this (see airlock kubeconfig)"
    )]
    KubectlCredential {
        /// The connection the kubeconfig is for (informational: the token's
        /// scope decides what it reaches).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Revoke a token: new connections fail at once and live sessions are closed.
    #[command(
        after_help = "Examples:\n  airlock token list\n  airlock token revoke tok_3f9c2a7b1d04"
    )]
    Revoke {
        /// Token id (tok_…).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection at run time (config-file connections are listed too).
    #[command(
        after_help = "Example:\n  airlock connection add reports-pg --address db.internal:5432 --database reports --credential reports-ro --tag env=prod"
    )]
    Add {
        name: String,
        /// Upstream host:port.
        #[arg(long)]
        address: String,
        /// Database on the upstream.
        #[arg(long)]
        database: String,
        /// Stored credential name.
        #[arg(long)]
        credential: String,
        /// Tags as key=value (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// TLS towards the upstream: disable or require.
        #[arg(long)]
        tls: Option<String>,
    },
    /// List connections.
    List,
    /// Remove a run-time connection (config-file ones are removed from the
    /// file); its live sessions are closed.
    #[command(after_help = "Example:\n  airlock connection remove reports-pg")]
    Remove {
        /// Connection name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List recorded sessions (live ones included), oldest first.
    #[command(
        after_help = "Examples:\n  airlock session list --identity agent-7 --since 1h\n  airlock session list --connection prod-pg --since 2026-11-25T00:00:00Z --output json"
    )]
    List {
        /// Only this identity.
        #[arg(long)]
        identity: Option<String>,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only sessions started since: RFC 3339, Unix seconds, or a duration back (1h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show a session: metadata and a timeline of its commands.
    Show {
        /// Session id (s-…).
        id: String,
    },
    /// Replay a session as a terminal transcript, with the result samples.
    #[command(
        after_help = "Examples:\n  airlock session list --identity agent-7 --since 1h\n  airlock session replay s-8c1f0e2d9a7b | less -R\n  airlock session replay s-8c1f0e2d9a7b --output json | jq '.timeline[].statement'"
    )]
    Replay {
        /// Session id (s-…).
        id: String,
    },
    /// List live sessions.
    #[command(
        after_help = "Examples:\n  airlock session live\n  airlock session live --output json | jq length"
    )]
    Live,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit status 1 and the first broken link if it does not hold.
    #[command(
        after_help = "Examples:\n  airlock audit verify\n  airlock audit verify --output json | jq .events_checked"
    )]
    Verify,
    /// Write events for a SIEM, one JSON object per line.
    #[command(
        after_help = "Example:\n  airlock audit export --since 24h --format jsonl > airlock-events.jsonl"
    )]
    Export {
        /// Only events since: RFC 3339, Unix seconds, or a duration back (1h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Prune events past the retention period now (the server also does it on a schedule).
    Prune,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

/// `airlock mcp …`.
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve airlock's MCP server over standard input and output for a
    /// local agent: each JSON-RPC message is relayed to the gateway's
    /// `/mcp` endpoint with your token, so the gateway authenticates,
    /// decides, masks and records exactly as for Streamable HTTP clients.
    #[command(
        after_help = "Examples:\n  AIRLOCK_TOKEN=$TOKEN airlock mcp serve --stdio\n  airlock mcp serve --stdio --gateway https://gw.internal:18080\nIn an MCP client's configuration: {\"command\": \"airlock\", \"args\": [\"mcp\", \"serve\", \"--stdio\"], \"env\": {\"AIRLOCK_TOKEN\": \"…\"}}"
    )]
    Serve(McpServeArgs),
    /// The tool definitions the MCP proxy pinned for a connection (rug-pull
    /// defence): a tool whose definition changed is hidden and refused
    /// until approved here.
    #[command(subcommand)]
    Tools(McpToolsCommand),
}

/// `airlock mcp tools …`.
#[derive(Debug, Subcommand)]
pub enum McpToolsCommand {
    /// Every pinned tool of a connection, and which wait for approval.
    List {
        /// The `protocol: mcp` connection.
        #[arg(long)]
        connection: String,
    },
    /// What changed in a tool's definition: the pinned one and the one
    /// waiting, line by line.
    Diff {
        #[arg(long)]
        connection: String,
        /// The tool's name.
        tool: String,
    },
    /// Approves the waiting definition of a tool (it is offered and may be
    /// called again).
    #[command(
        after_help = "Example:\n  airlock mcp tools diff --connection files-mcp fetch_notes\n  airlock mcp tools approve --connection files-mcp fetch_notes --fingerprint 3f2a…"
    )]
    Approve {
        #[arg(long)]
        connection: String,
        tool: String,
        /// The fingerprint `diff` showed: approve only that definition.
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

/// Options of `airlock mcp serve`.
#[derive(Debug, Args)]
pub struct McpServeArgs {
    /// Serve over standard input and output (newline-delimited JSON-RPC).
    #[arg(long)]
    pub stdio: bool,
    /// The gateway's HTTP listener (`listen.http`), where `/mcp` is served.
    #[arg(
        long,
        env = "AIRLOCK_GATEWAY_URL",
        default_value = "http://127.0.0.1:18080"
    )]
    pub gateway: String,
}
