//! airlock's metrics: every family the gateway exports on `GET /metrics`,
//! registered once in an explicit `prometheus-client` registry, and the two
//! text encodings (Prometheus 0.0.4 and OpenMetrics 1.0).
//!
//! Protocol-neutral: the core calls it where it already decides and
//! records (login, admission, the gate, the recorder, reviews), so every
//! protocol counts the same way without code of its own.
//!
//! Labels are bounded: protocol, connection, rule, verdict, reason,
//! detector, outcome (all from configuration, the policy or a fixed set).
//! The identity is a label only when `metrics.identity_labels: true`
//! ([`Metrics::new`]): it is unbounded. No label ever holds a token, a
//! statement, a value or an address.
//!
//! Architecture invariant: the per-command path takes no lock. Looking a
//! label set up in a family takes one, so a session builds its
//! [`CommandMeter`] once (the counters of each verdict, its histograms)
//! and then only adds to atomics ([`Histogram`] is atomics too).

mod histogram;
mod meter;

pub use histogram::{Histogram, FAST_BUCKETS, LONG_BUCKETS, UPSTREAM_BUCKETS};
pub use meter::{ActiveSession, CommandMeter, CommandVerdict, Rejection};

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// A label set: names from this crate, values bounded by configuration.
pub type Labels = Vec<(&'static str, String)>;

type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The `Content-Type` of [`Metrics::encode_prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// The `Content-Type` of [`Metrics::encode_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Values read at scrape time from the parts that already keep them.
#[derive(Debug, Clone, Default)]
pub struct ScrapeValues {
    /// The live policy version (0: none).
    pub policy_version: i64,
    /// Events journaled but not yet in the event table.
    pub index_lag: u64,
    /// Events appended to the journal since start.
    pub journal_appends: u64,
    /// Journal syncs (`fdatasync`) since start.
    pub journal_syncs: u64,
    /// Records refused because recording is unavailable, since start.
    pub recording_refusals: u64,
    /// Pending reviews (commands and access requests).
    pub reviews_pending: u64,
    /// Age of the oldest pending review, in seconds (0: none).
    pub oldest_pending_review_seconds: u64,
    /// Sources and identities locked out now.
    pub active_lockouts: u64,
    /// Age of the oldest live session, in seconds (0: none).
    pub oldest_session_seconds: u64,
    /// Per OIDC issuer: its name, key fetches that succeeded, that failed.
    pub oidc_key_fetches: Vec<(String, u64, u64)>,
}

/// Every family, registered in one registry.
pub struct Metrics {
    registry: Registry,
    identity_labels: bool,
    pub(crate) sessions_active: Gauges,
    sessions_started: Counters,
    sessions_ended: Counters,
    session_duration: Histograms,
    oldest_session: Gauge,
    pub(crate) commands: Counters,
    pub(crate) refusals_by_rule: Counters,
    pub(crate) allowed_by_rule: Counters,
    pub(crate) decision_duration: Histograms,
    pub(crate) upstream_duration: Histograms,
    pub(crate) added_duration: Histograms,
    pub(crate) masked_values: Counters,
    rate_limited: Counters,
    reviews_created: Counters,
    reviews_decided: Counters,
    review_decision_duration: Histogram,
    reviews_pending: Gauge,
    oldest_pending_review: Gauge,
    auth_failures: Counters,
    lockouts: Counters,
    active_lockouts: Gauge,
    journal_appends: Counter,
    journal_syncs: Counter,
    recording_refusals: Counter,
    index_lag: Gauge,
    upstream_connect_failures: Counters,
    oidc_key_refreshes: Counters,
    access_grants: Counters,
    policy_version: Gauge,
    certificate_expiry: Gauge,
    /// Serializes scrapes: counters kept elsewhere are brought up to date
    /// by the difference, which two scrapes at once would count twice.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("identity_labels", &self.identity_labels)
            .finish_non_exhaustive()
    }
}

fn histograms(new: fn() -> Histogram) -> Histograms {
    Family::new_with_constructor(new)
}

impl Metrics {
    /// Every family, registered; `identity_labels` adds the identity to
    /// sessions, commands and authentication failures. `fsync` is the
    /// recorder's journal sync histogram (it observes it itself).
    pub fn new(identity_labels: bool, version: &str, fsync: Histogram) -> Self {
        let metrics = Self {
            registry: Registry::default(),
            identity_labels,
            sessions_active: Gauges::default(),
            sessions_started: Counters::default(),
            sessions_ended: Counters::default(),
            session_duration: histograms(|| Histogram::new(LONG_BUCKETS)),
            oldest_session: Gauge::default(),
            commands: Counters::default(),
            refusals_by_rule: Counters::default(),
            allowed_by_rule: Counters::default(),
            decision_duration: histograms(|| Histogram::new(FAST_BUCKETS)),
            upstream_duration: histograms(|| Histogram::new(UPSTREAM_BUCKETS)),
            added_duration: histograms(|| Histogram::new(FAST_BUCKETS)),
            masked_values: Counters::default(),
            rate_limited: Counters::default(),
            reviews_created: Counters::default(),
            reviews_decided: Counters::default(),
            review_decision_duration: Histogram::new(LONG_BUCKETS),
            reviews_pending: Gauge::default(),
            oldest_pending_review: Gauge::default(),
            auth_failures: Counters::default(),
            lockouts: Counters::default(),
            active_lockouts: Gauge::default(),
            journal_appends: Counter::default(),
            journal_syncs: Counter::default(),
            recording_refusals: Counter::default(),
            index_lag: Gauge::default(),
            upstream_connect_failures: Counters::default(),
            oidc_key_refreshes: Counters::default(),
            access_grants: Counters::default(),
            policy_version: Gauge::default(),
            certificate_expiry: Gauge::default(),
            scrape: Mutex::new(()),
        };
        metrics.register_all(version, fsync)
    }

    fn register_all(mut self, version: &str, fsync: Histogram) -> Self {
        let r = &mut self.registry;
        r.register(
            "airlock_build",
            "The running airlock build (always 1)",
            Info::new(vec![("version", version.to_string())]),
        );
        r.register(
            "airlock_sessions_active",
            "Sessions open now, by protocol and connection",
            self.sessions_active.clone(),
        );
        r.register(
            "airlock_sessions_started",
            "Sessions admitted (session.start recorded)",
            self.sessions_started.clone(),
        );
        r.register(
            "airlock_sessions_ended",
            "Sessions ended, by how they ended (reason: the session.end ended_by)",
            self.sessions_ended.clone(),
        );
        r.register(
            "airlock_session_duration_seconds",
            "How long sessions lasted",
            self.session_duration.clone(),
        );
        r.register(
            "airlock_session_oldest_active_age_seconds",
            "Age of the oldest live session (0: none)",
            self.oldest_session.clone(),
        );
        r.register("airlock_commands", "Commands by verdict: decided by the gate (allow, deny, review, rate_limited, unavailable) or rejected before it (rejected, with a reason: syntax_error, unknown_statement, unsupported, protocol_violation)", self.commands.clone());
        r.register(
            "airlock_command_refusals_by_rule",
            "Commands a rule denied, held for review or rate-limited, by rule and verdict",
            self.refusals_by_rule.clone(),
        );
        r.register(
            "airlock_commands_allowed_by_rule",
            "Commands allowed, by the rule that allowed them (default: no allow rule matched, the policy's default allowed)",
            self.allowed_by_rule.clone(),
        );
        r.register(
            "airlock_decision_duration_seconds",
            "Time the gate took to decide a command",
            self.decision_duration.clone(),
        );
        r.register(
            "airlock_upstream_duration_seconds",
            "Time from a command to the end of the upstream's answer (PostgreSQL: from reading its batch; MySQL: from forwarding it)",
            self.upstream_duration.clone(),
        );
        r.register(
            "airlock_gateway_added_duration_seconds",
            "Time from reading client commands to forwarding them: deciding, recording, waiting for the journal (reviews left out)",
            self.added_duration.clone(),
        );
        r.register(
            "airlock_masked_values",
            "Values masked in results, by detector (column: a column rule)",
            self.masked_values.clone(),
        );
        r.register(
            "airlock_rate_limited",
            "Commands refused by a rate limit, by rule",
            self.rate_limited.clone(),
        );
        r.register(
            "airlock_reviews_created",
            "Reviews created, by kind (command, access), connection and rule",
            self.reviews_created.clone(),
        );
        r.register(
            "airlock_reviews_decided",
            "Review decisions that closed a review, by outcome (approved, denied)",
            self.reviews_decided.clone(),
        );
        r.register(
            "airlock_review_decision_duration_seconds",
            "Time from a review's creation to the decision that closed it",
            self.review_decision_duration.clone(),
        );
        r.register(
            "airlock_reviews_pending",
            "Reviews waiting for a decision",
            self.reviews_pending.clone(),
        );
        r.register(
            "airlock_review_oldest_pending_age_seconds",
            "Age of the oldest pending review (0: none pending)",
            self.oldest_pending_review.clone(),
        );
        r.register(
            "airlock_auth_failures",
            "Failed token checks, by reason (the client is never told which)",
            self.auth_failures.clone(),
        );
        r.register(
            "airlock_auth_lockouts",
            "Lockouts after repeated authentication failures, by scope (source, identity)",
            self.lockouts.clone(),
        );
        r.register(
            "airlock_auth_active_lockouts",
            "Sources and identities locked out now",
            self.active_lockouts.clone(),
        );
        r.register(
            "airlock_journal_appends",
            "Audit events appended to the write-ahead journal",
            self.journal_appends.clone(),
        );
        r.register(
            "airlock_journal_syncs",
            "Journal syncs (fdatasync), group commits included",
            self.journal_syncs.clone(),
        );
        r.register(
            "airlock_journal_fsync_duration_seconds",
            "Time one journal fdatasync took",
            fsync,
        );
        r.register(
            "airlock_recording_refusals",
            "Records refused because recording is unavailable (the command or session was refused)",
            self.recording_refusals.clone(),
        );
        r.register(
            "airlock_audit_index_lag_events",
            "Events journaled but not yet copied into the event table",
            self.index_lag.clone(),
        );
        r.register(
            "airlock_upstream_connect_failures",
            "Upstream connections or logins that failed, by connection",
            self.upstream_connect_failures.clone(),
        );
        r.register(
            "airlock_oidc_key_refreshes",
            "OIDC signing-key fetches, by provider and outcome (ok, failed)",
            self.oidc_key_refreshes.clone(),
        );
        r.register(
            "airlock_access_grants",
            "Access grants issued, by connection and how (policy, review)",
            self.access_grants.clone(),
        );
        r.register(
            "airlock_policy_version",
            "The live policy version (0: none loaded)",
            self.policy_version.clone(),
        );
        r.register(
            "airlock_tls_certificate_expiry_timestamp_seconds",
            "When the listeners' TLS certificate expires (Unix time)",
            self.certificate_expiry.clone(),
        );
        self
    }

    /// Exports the counters alert rules take `increase()` of at zero
    /// before their first event (a series that appears at 1 shows no
    /// increase): lockouts of each protocol and scope, and upstream
    /// failures of each `(protocol, connection)` configured.
    pub fn prepare<'a>(
        &self,
        protocols: &[&str],
        connections: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for protocol in protocols {
            for scope in ["source", "identity"] {
                let labels = vec![
                    ("protocol", (*protocol).to_string()),
                    ("scope", scope.to_string()),
                ];
                drop(self.lockouts.get_or_create(&labels));
            }
        }
        let api = vec![
            ("protocol", "admin_api".to_string()),
            ("scope", "source".to_string()),
        ];
        drop(self.lockouts.get_or_create(&api));
        for (protocol, connection) in connections {
            drop(
                self.upstream_connect_failures
                    .get_or_create(&protocol_connection(protocol, connection)),
            );
        }
    }

    /// Whether identities are labels.
    pub fn identity_labels(&self) -> bool {
        self.identity_labels
    }

    /// `labels`, plus the identity when identity labels are on.
    fn with_identity(&self, mut labels: Labels, identity: &str) -> Labels {
        if self.identity_labels {
            labels.push(("identity", identity.to_string()));
        }
        labels
    }

    /// A session was admitted; the returned guard counts it active until
    /// it is dropped.
    pub fn session_started(
        &self,
        protocol: &str,
        connection: &str,
        identity: &str,
    ) -> ActiveSession {
        let labels = protocol_connection(protocol, connection);
        self.sessions_started
            .get_or_create(&self.with_identity(labels.clone(), identity))
            .inc();
        ActiveSession::new(self.sessions_active.get_or_create_owned(&labels))
    }

    /// A session ended (`reason`: its `session.end` `ended_by`).
    pub fn session_ended(&self, protocol: &str, connection: &str, reason: &str, lasted: Duration) {
        let labels = protocol_connection(protocol, connection);
        self.session_duration.get_or_create(&labels).observe(lasted);
        let mut labels = labels;
        labels.push(("reason", reason.to_string()));
        self.sessions_ended.get_or_create(&labels).inc();
    }

    /// An upstream connection or login failed.
    pub fn upstream_connect_failed(&self, protocol: &str, connection: &str) {
        self.upstream_connect_failures
            .get_or_create(&protocol_connection(protocol, connection))
            .inc();
    }

    /// A token check failed for `reason` (a fixed set of names).
    pub fn auth_failed(&self, protocol: &str, reason: &str, identity: &str) {
        let labels = vec![
            ("protocol", protocol.to_string()),
            ("reason", reason.to_string()),
        ];
        self.auth_failures
            .get_or_create(&self.with_identity(labels, identity))
            .inc();
    }

    /// A source or identity was locked out.
    pub fn locked_out(&self, protocol: &str, scope: &str) {
        self.lockouts
            .get_or_create(&vec![
                ("protocol", protocol.to_string()),
                ("scope", scope.to_string()),
            ])
            .inc();
    }

    /// Values masked in an answer over `protocol`, per detector (zero
    /// counts are skipped). Looks the family up: masking is not the hot
    /// path of a command that masks nothing.
    pub fn values_masked<'a>(
        &self,
        protocol: &str,
        masked: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        for (detector, count) in masked {
            if count == 0 {
                continue;
            }
            let labels = vec![
                ("protocol", protocol.to_string()),
                ("detector", detector.to_string()),
            ];
            self.masked_values.get_or_create(&labels).inc_by(count);
        }
    }

    /// A command was refused by the rate limit of `rule`.
    pub fn rate_limited(&self, rule: &str) {
        self.rate_limited
            .get_or_create(&vec![("rule", rule.to_string())])
            .inc();
    }

    /// A review was created.
    pub fn review_created(&self, kind: &str, connection: &str, rule: &str) {
        let labels = vec![
            ("kind", kind.to_string()),
            ("connection", connection.to_string()),
            ("rule", rule.to_string()),
        ];
        self.reviews_created.get_or_create(&labels).inc();
    }

    /// A decision closed a review (`outcome`: approved or denied) `waited`
    /// after it was created.
    pub fn review_decided(&self, outcome: &str, waited: Duration) {
        self.reviews_decided
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
        self.review_decision_duration.observe(waited);
    }

    /// An access grant was issued on `connection` (`how`: policy, review).
    pub fn access_granted(&self, connection: &str, how: &str) {
        let labels = vec![
            ("connection", connection.to_string()),
            ("how", how.to_string()),
        ];
        self.access_grants.get_or_create(&labels).inc();
    }

    /// The listeners' certificate expires at `unix_seconds`.
    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.certificate_expiry.set(unix_seconds);
    }

    /// Brings the values kept elsewhere up to date and encodes every
    /// family in the Prometheus text format (0.0.4).
    pub fn encode_prometheus(&self, values: &ScrapeValues) -> String {
        let _serialized = self.scrape.lock();
        self.apply(values);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// As [`Metrics::encode_prometheus`], in OpenMetrics 1.0 text.
    pub fn encode_openmetrics(&self, values: &ScrapeValues) -> String {
        let _serialized = self.scrape.lock();
        self.apply(values);
        let mut out = String::new();
        let _ = text::encode(&mut out, &self.registry);
        out
    }

    fn apply(&self, values: &ScrapeValues) {
        self.policy_version.set(values.policy_version);
        self.index_lag.set(saturating_i64(values.index_lag));
        self.reviews_pending
            .set(saturating_i64(values.reviews_pending));
        self.oldest_pending_review
            .set(saturating_i64(values.oldest_pending_review_seconds));
        self.active_lockouts
            .set(saturating_i64(values.active_lockouts));
        self.oldest_session
            .set(saturating_i64(values.oldest_session_seconds));
        catch_up(&self.journal_appends, values.journal_appends);
        catch_up(&self.journal_syncs, values.journal_syncs);
        catch_up(&self.recording_refusals, values.recording_refusals);
        for (provider, ok, failed) in &values.oidc_key_fetches {
            for (outcome, total) in [("ok", *ok), ("failed", *failed)] {
                let labels = vec![
                    ("provider", provider.clone()),
                    ("outcome", outcome.to_string()),
                ];
                catch_up(&self.oidc_key_refreshes.get_or_create(&labels), total);
            }
        }
    }
}

fn protocol_connection(protocol: &str, connection: &str) -> Labels {
    vec![
        ("protocol", protocol.to_string()),
        ("connection", connection.to_string()),
    ]
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Raises a counter kept elsewhere to `total` (counters never go down).
fn catch_up(counter: &Counter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(false, "0.1.0", Histogram::default())
    }

    #[test]
    fn counters_get_the_total_suffix_in_both_formats() {
        let metrics = metrics();
        let _active = metrics.session_started("postgres", "app", "agent");
        metrics.auth_failed("postgres", "expired", "agent");
        let prometheus = metrics.encode_prometheus(&ScrapeValues::default());
        assert!(prometheus.contains("# TYPE airlock_sessions_started_total counter"));
        assert!(prometheus.contains(
            "airlock_sessions_started_total{protocol=\"postgres\",connection=\"app\"} 1"
        ));
        assert!(prometheus
            .contains("airlock_sessions_active{protocol=\"postgres\",connection=\"app\"} 1"));
        assert!(prometheus
            .contains("airlock_auth_failures_total{protocol=\"postgres\",reason=\"expired\"} 1"));
        assert!(!prometheus.contains("identity"));
        assert!(!prometheus.contains("# EOF"));
        let openmetrics = metrics.encode_openmetrics(&ScrapeValues::default());
        assert!(openmetrics.ends_with("# EOF\n"));
        assert!(openmetrics.contains("airlock_build_info{version=\"0.1.0\"} 1"));
    }

    #[test]
    fn identity_labels_only_when_asked() {
        let metrics = Metrics::new(true, "0.1.0", Histogram::default());
        metrics.auth_failed("mysql", "revoked", "agent-7");
        let out = metrics.encode_prometheus(&ScrapeValues::default());
        assert!(out.contains(
            "airlock_auth_failures_total{protocol=\"mysql\",reason=\"revoked\",identity=\"agent-7\"} 1"
        ));
    }

    #[test]
    fn an_active_session_is_counted_until_dropped() {
        let metrics = metrics();
        let active = metrics.session_started("http", "api", "agent");
        drop(active);
        metrics.session_ended("http", "api", "client", Duration::from_secs(2));
        let out = metrics.encode_prometheus(&ScrapeValues::default());
        assert!(out.contains("airlock_sessions_active{protocol=\"http\",connection=\"api\"} 0"));
        assert!(out.contains(
            "airlock_sessions_ended_total{protocol=\"http\",connection=\"api\",reason=\"client\"} 1"
        ));
        // A 2 s session: in the 10 s bucket (Go float formatting: "10").
        let bucket = out
            .lines()
            .find(|line| {
                line.starts_with("airlock_session_duration_seconds_bucket{")
                    && line.contains("le=\"10\"")
            })
            .unwrap_or_default();
        assert!(
            bucket.contains("connection=\"api\"") && bucket.ends_with(" 1"),
            "{out}"
        );
    }

    #[test]
    fn scrape_values_catch_counters_up_without_counting_twice() {
        let metrics = metrics();
        let values = ScrapeValues {
            journal_appends: 5,
            policy_version: 3,
            oidc_key_fetches: vec![("corp".into(), 2, 1)],
            ..ScrapeValues::default()
        };
        metrics.encode_prometheus(&values);
        metrics.access_granted("app", "review");
        let out = metrics.encode_prometheus(&values);
        assert!(out.contains("airlock_journal_appends_total 5"));
        assert!(out.contains("airlock_policy_version 3"));
        assert!(
            out.contains("airlock_oidc_key_refreshes_total{provider=\"corp\",outcome=\"ok\"} 2")
        );
        assert!(out
            .contains("airlock_oidc_key_refreshes_total{provider=\"corp\",outcome=\"failed\"} 1"));
        assert!(out.contains("airlock_access_grants_total{connection=\"app\",how=\"review\"} 1"));
    }
}
