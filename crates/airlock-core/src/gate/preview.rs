//! What the gate would decide for a command now, without deciding it: the
//! answer of the explain playground.
//!
//! [`Gate::preview`] runs the very decision [`Gate::decide`] runs (the live
//! policy, the mask plan, the review request), and reads the rate limits'
//! buckets instead of spending them ([`airlock_policy::RateLimiter::peek`]):
//! showing what an identity may do must not use up its budget. It counts
//! nothing in the metrics and records nothing.
//!
//! **Invariant:** a preview never changes state; the decision it shows is
//! the one a session of the same identity on the same connection would get
//! at this moment, up to the bucket refilling between the two.

use airlock_policy::RateKey;
use airlock_types::{Access, Command};

use super::{rate_limit_message, Decision, Gate, Limits, Refusal};

/// A rate limit that applies to the command, as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitState {
    /// The rule that sets it.
    pub rule: String,
    pub per_minute: u32,
    /// Whole commands left in the bucket now, or the seconds until one is.
    pub left: Result<u32, f64>,
}

/// What [`Gate::preview`] found.
pub struct Preview {
    /// The decision a session would get now (a rate-limited refusal when a
    /// bucket is empty and the policy allows the command).
    pub decision: Decision,
    /// Every rate limit the command's rules set, with its state.
    pub rate_limits: Vec<RateLimitState>,
}

impl Gate {
    /// The decision [`Gate::decide`] would take for `command` now, with the
    /// rate limits read and not spent (see the module doc).
    pub fn preview(&self, command: &Command, shown: &str) -> Preview {
        // `AtEachExecution` leaves the limits to the caller: spent nowhere.
        let mut decision = self.decide_under_policy(command, Limits::AtEachExecution, shown, false);
        decision.reads_only = command.access() == Access::Read && command.complete();
        let limits = std::mem::take(&mut decision.rate_limits);
        let version = u64::try_from(decision.version).unwrap_or(0);
        let now = self.state.clock_seconds();
        let Ok(limiter) = self.state.rate_limiter.lock() else {
            if decision.forwards() {
                decision = rate_limited(
                    decision,
                    "airlock: command refused: the rate limiter is unavailable".into(),
                );
            }
            return Preview {
                decision,
                rate_limits: Vec::new(),
            };
        };
        let mut refusal = None;
        let mut states = Vec::with_capacity(limits.len());
        for limit in &limits {
            let key = RateKey {
                identity: self.identity.name.clone(),
                connection: self.connection.name.clone(),
                rule: limit.rule.clone(),
            };
            let left = limiter
                .peek(&key, limit.per_minute, now)
                .map_err(|retry| retry.seconds);
            if let (Err(seconds), None) = (&left, &refusal) {
                refusal = Some(rate_limit_message(
                    limit,
                    version,
                    &self.identity.name,
                    &self.connection.name,
                    *seconds,
                ));
            }
            states.push(RateLimitState {
                rule: limit.rule.clone(),
                per_minute: limit.per_minute,
                left,
            });
        }
        drop(limiter);
        if let (Some(message), true) = (refusal, decision.forwards()) {
            decision = rate_limited(decision, message);
        }
        Preview {
            decision,
            rate_limits: states,
        }
    }
}

/// `decision` (an allowed one) turned into the refusal of an empty bucket,
/// as [`Gate::decide`] words it.
fn rate_limited(mut decision: Decision, message: String) -> Decision {
    decision.details.set_verdict("rate_limited");
    decision.verdict = super::Verdict::Refuse(Refusal::RateLimited { message });
    decision
}
