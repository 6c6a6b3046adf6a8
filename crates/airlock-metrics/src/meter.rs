//! Handles a session takes once so that its per-command path only adds to
//! atomics: [`CommandMeter`] (one counter per verdict, the decision and
//! upstream histograms of its protocol and connection) and
//! [`ActiveSession`] (the active-sessions gauge, decremented on drop, so
//! a session that ends any way at all stops counting).

use std::sync::Arc;
use std::time::Duration;

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
        }
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
        for (detector, count) in masked {
            if count == 0 {
                continue;
            }
            let labels = vec![
                ("protocol", self.protocol.to_string()),
                ("detector", detector.to_string()),
            ];
            self.metrics
                .masked_values
                .get_or_create(&labels)
                .inc_by(count);
        }
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
}
