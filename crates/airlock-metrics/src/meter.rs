//! Handles a session takes once so that its per-command path only adds to
//! atomics: [`CommandMeter`] (one counter per verdict, the decision and
//! upstream histograms of its protocol and connection, the counters of the
//! rules that allowed its commands) and [`ActiveSession`] (the
//! active-sessions gauge, decremented on drop, so a session that ends any
//! way at all stops counting).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::{Histogram, Labels, Metrics};

/// What the gate answered for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandVerdict {
    Allow,
    Deny,
    Review,
    RateLimited,
    /// No policy, or an obligation that cannot be carried out.
    Unavailable,
}

impl CommandVerdict {
    /// Every verdict, in [`CommandVerdict::index`] order.
    pub const ALL: [CommandVerdict; 5] = [
        Self::Allow,
        Self::Deny,
        Self::Review,
        Self::RateLimited,
        Self::Unavailable,
    ];

    /// The `verdict` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Review => "review",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Allow => 0,
            Self::Deny => 1,
            Self::Review => 2,
            Self::RateLimited => 3,
            Self::Unavailable => 4,
        }
    }
}

/// Why a command was refused before the gate decided it (the `reason`
/// label of `airlock_commands_total{verdict="rejected"}`): a fixed set, so
/// the label stays bounded whatever the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The server's grammar does not accept the text (PostgreSQL: the
    /// gateway answers the server's own syntax error).
    SyntaxError,
    /// A prepared statement or portal the gateway never saw prepared.
    UnknownStatement,
    /// A command the gateway does not relay (replication, change user,
    /// bulk execute, an unknown command byte, a `KILL` of another session).
    Unsupported,
    /// A message the protocol does not allow here; the session ends.
    ProtocolViolation,
}

impl Rejection {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyntaxError => "syntax_error",
            Self::UnknownStatement => "unknown_statement",
            Self::Unsupported => "unsupported",
            Self::ProtocolViolation => "protocol_violation",
        }
    }
}

/// A session's allow counters, by rule name.
type RuleCounters = Vec<(Box<str>, Counter)>;

/// Rules a session caches the allow counter of; a policy with more allow
/// rules than this counts the rest by a family lookup.
const ALLOW_RULES_CACHED: usize = 64;

/// Counts one live session in `airlock_sessions_active` until dropped.
#[derive(Debug)]
pub struct ActiveSession {
    gauge: Gauge,
}

impl ActiveSession {
    pub(crate) fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self { gauge }
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One session's command counters, taken when its gate is built.
#[derive(Debug, Clone)]
pub struct CommandMeter {
    metrics: Arc<Metrics>,
    protocol: &'static str,
    connection: String,
    verdicts: [Counter; 5],
    decision: Histogram,
    upstream: Histogram,
    added: Histogram,
    /// The `airlock_commands_allowed_by_rule` counters this session has
    /// used, by rule: read without a lock (`ArcSwap::load`), replaced
    /// (rarely: the first command a rule allows) by copy.
    allowed: Arc<ArcSwap<RuleCounters>>,
}

impl CommandMeter {
    /// The handles of `identity`'s session on `connection` over `protocol`.
    pub fn new(
        metrics: &Arc<Metrics>,
        protocol: &'static str,
        connection: &str,
        identity: &str,
    ) -> Self {
        let base: Labels = vec![
            ("protocol", protocol.to_string()),
            ("connection", connection.to_string()),
        ];
        let verdicts = CommandVerdict::ALL.map(|verdict| {
            let mut labels = base.clone();
            labels.push(("verdict", verdict.as_str().to_string()));
            metrics
                .commands
                .get_or_create_owned(&metrics.with_identity(labels, identity))
        });
        let decision = metrics
            .decision_duration
            .get_or_create_owned(&vec![("protocol", protocol.to_string())]);
        let upstream = metrics.upstream_duration.get_or_create_owned(&base);
        let added = metrics
            .added_duration
            .get_or_create_owned(&vec![("protocol", protocol.to_string())]);
        Self {
            metrics: Arc::clone(metrics),
            protocol,
            connection: connection.to_string(),
            verdicts,
            decision,
            upstream,
            added,
            allowed: Arc::new(ArcSwap::from_pointee(Vec::new())),
        }
    }

    /// A command allowed by `rule` (`None`: no allow rule matched, the
    /// policy's default allowed it, counted as `default`). The session's
    /// cached counter when it has one: an atomic load and add.
    pub fn allowed_by(&self, rule: Option<&str>) {
        let rule = rule.unwrap_or("default");
        let cached = self.allowed.load();
        if let Some((_, counter)) = cached.iter().find(|(name, _)| &**name == rule) {
            counter.inc();
            return;
        }
        let labels = vec![
            ("protocol", self.protocol.to_string()),
            ("connection", self.connection.clone()),
            ("rule", rule.to_string()),
        ];
        let counter = self.metrics.allowed_by_rule.get_or_create_owned(&labels);
        counter.inc();
        if cached.len() < ALLOW_RULES_CACHED {
            let mut grown = Vec::with_capacity(cached.len() + 1);
            grown.extend(cached.iter().cloned());
            grown.push((Box::from(rule), counter));
            self.allowed.store(Arc::new(grown));
        }
    }

    /// A command refused before the gate decided it, for `reason`: counted
    /// in `airlock_commands_total` as `verdict="rejected"`. Not the hot
    /// path: the counter is looked up here.
    pub fn rejected(&self, reason: Rejection) {
        let labels = vec![
            ("protocol", self.protocol.to_string()),
            ("connection", self.connection.clone()),
            ("verdict", "rejected".to_string()),
            ("reason", reason.as_str().to_string()),
        ];
        self.metrics.commands.get_or_create(&labels).inc();
    }

    /// What the gateway added before forwarding commands it read (deciding,
    /// recording, waiting for the journal), reviews left out: atomics only.
    pub fn added(&self, took: Duration) {
        self.added.observe(took);
    }

    /// A command decided as `verdict` in `took`: atomics only.
    pub fn decided(&self, verdict: CommandVerdict, took: Duration) {
        if let Some(counter) = self.verdicts.get(verdict.index()) {
            counter.inc();
        }
        self.decision.observe(took);
    }

    /// A command refused by `rule` (deny, review, rate limit): refusals are
    /// not the hot path, so the rule's counter is looked up here.
    pub fn refused_by_rule(&self, rule: &str, verdict: CommandVerdict) {
        let labels = vec![
            ("protocol", self.protocol.to_string()),
            ("connection", self.connection.clone()),
            ("rule", rule.to_string()),
            ("verdict", verdict.as_str().to_string()),
        ];
        self.metrics.refusals_by_rule.get_or_create(&labels).inc();
    }

    /// The upstream answered a forwarded command in `took`, and `masked`
    /// values were masked in the answer, per detector.
    pub fn answered<'a>(&self, took: Duration, masked: impl IntoIterator<Item = (&'a str, u64)>) {
        self.upstream.observe(took);
        self.metrics.values_masked(self.protocol, masked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScrapeValues;

    #[test]
    fn a_meter_counts_verdicts_rules_and_masking() {
        let metrics = Arc::new(Metrics::new(false, "0.1.0", Histogram::default()));
        let meter = CommandMeter::new(&metrics, "postgres", "app", "agent");
        meter.decided(CommandVerdict::Allow, Duration::from_micros(20));
        meter.decided(CommandVerdict::Allow, Duration::from_micros(20));
        meter.decided(CommandVerdict::Deny, Duration::from_micros(20));
        meter.refused_by_rule("no-drop", CommandVerdict::Deny);
        meter.answered(Duration::from_millis(2), [("email", 3), ("ssn", 0)]);
        let out = metrics.encode_prometheus(&ScrapeValues::default());
        assert!(out.contains(
            "airlock_commands_total{protocol=\"postgres\",connection=\"app\",verdict=\"allow\"} 2"
        ));
        assert!(out.contains(
            "airlock_commands_total{protocol=\"postgres\",connection=\"app\",verdict=\"review\"} 0"
        ));
        assert!(out.contains("airlock_command_refusals_by_rule_total{protocol=\"postgres\",connection=\"app\",rule=\"no-drop\",verdict=\"deny\"} 1"));
        assert!(
            out.contains("airlock_masked_values_total{protocol=\"postgres\",detector=\"email\"} 3")
        );
        assert!(!out.contains("detector=\"ssn\""));
    }

    #[test]
    fn allowed_commands_count_by_rule_and_rejections_by_reason() {
        let metrics = Arc::new(Metrics::new(false, "0.1.0", Histogram::default()));
        let meter = CommandMeter::new(&metrics, "mysql", "shop", "agent");
        meter.allowed_by(Some("reads"));
        meter.allowed_by(Some("reads"));
        meter.allowed_by(None);
        let clone = meter.clone();
        clone.allowed_by(Some("reads"));
        meter.rejected(Rejection::UnknownStatement);
        meter.rejected(Rejection::UnknownStatement);
        meter.rejected(Rejection::ProtocolViolation);
        let out = metrics.encode_prometheus(&ScrapeValues::default());
        assert!(out.contains("airlock_commands_allowed_by_rule_total{protocol=\"mysql\",connection=\"shop\",rule=\"reads\"} 3"), "{out}");
        assert!(out.contains("airlock_commands_allowed_by_rule_total{protocol=\"mysql\",connection=\"shop\",rule=\"default\"} 1"));
        assert!(out.contains("airlock_commands_total{protocol=\"mysql\",connection=\"shop\",verdict=\"rejected\",reason=\"unknown_statement\"} 2"));
        assert!(out.contains("airlock_commands_total{protocol=\"mysql\",connection=\"shop\",verdict=\"rejected\",reason=\"protocol_violation\"} 1"));
    }

    #[test]
    fn a_session_caches_a_bounded_number_of_rules() {
        let metrics = Arc::new(Metrics::new(false, "0.1.0", Histogram::default()));
        let meter = CommandMeter::new(&metrics, "postgres", "app", "agent");
        for round in 0..2 {
            for rule in 0..(ALLOW_RULES_CACHED + 5) {
                meter.allowed_by(Some(&format!("rule-{rule}")));
            }
            assert_eq!(
                meter.allowed.load().len(),
                ALLOW_RULES_CACHED,
                "round {round}"
            );
        }
        let out = metrics.encode_prometheus(&ScrapeValues::default());
        let last = ALLOW_RULES_CACHED + 4;
        assert!(out.contains(&format!("rule=\"rule-{last}\"}} 2")), "{out}");
        assert!(out.contains("rule=\"rule-0\"} 2"));
    }
}
