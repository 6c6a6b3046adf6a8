//! What the core hands the metrics at scrape time: the values other parts
//! already keep (the recorder's counts, the live policy version, pending
//! reviews, active lockouts), read once per `GET /metrics` rather than
//! counted on the traffic path. The families themselves live in
//! `airlock-metrics`; the hooks that count events sit where the core
//! decides and records (login, admission, the gate, reviews, the
//! recorder).

use airlock_metrics::ScrapeValues;
use airlock_store::now_unix;

use crate::state::GatewayState;

impl GatewayState {
    /// The scrape-time values (blocking: asks the store for the pending
    /// reviews' count and oldest, one aggregate however many there are).
    pub fn scrape_values(&self) -> ScrapeValues {
        let now = now_unix();
        let pending = self.store.pending_reviews().unwrap_or_default();
        let oldest = pending
            .oldest_created_at
            .map_or(0, |created| now.saturating_sub(created));
        let oldest_session = self
            .sessions
            .list()
            .iter()
            .map(|session| session.started_at)
            .min()
            .map_or(0, |started| now.saturating_sub(started));
        // The store's lockouts are every replica's; this process's own
        // count stands in when the store cannot answer.
        let lockouts = (self.spray_guard.active_lockouts() + self.api_guard.active_lockouts())
            .max(self.store.active_login_lockouts().unwrap_or(0));
        ScrapeValues {
            policy_version: self.policy.current_version(),
            index_lag: self.recorder.index_lag(),
            journal_appends: self.recorder.journaled(),
            journal_syncs: self.recorder.journal_syncs(),
            recording_refusals: self.recorder.refusals(),
            reviews_pending: pending.count,
            oldest_pending_review_seconds: u64::try_from(oldest).unwrap_or(0),
            active_lockouts: u64::try_from(lockouts).unwrap_or(u64::MAX),
            oldest_session_seconds: u64::try_from(oldest_session).unwrap_or(0),
            oidc_key_fetches: self
                .oidc
                .as_ref()
                .map(airlock_oidc::OidcValidator::key_fetches)
                .unwrap_or_default(),
        }
    }
}
