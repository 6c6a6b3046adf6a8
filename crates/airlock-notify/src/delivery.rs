//! Delivery: the [`Notifier`] handle, one bounded queue and one thread per
//! webhook, signed POSTs with a timeout, retries with exponential back-off,
//! and counters.
//!
//! Why this shape:
//! - [`Notifier::notify`] is called on the review path, inside async tasks.
//!   It only routes the event and `try_send`s it into each matching
//!   webhook's bounded queue; when a queue is full the event is dropped for
//!   that webhook with a warning. It never blocks and never fails.
//! - One thread per webhook, not one for all: a receiver that hangs (5 s
//!   timeout, up to five attempts) then delays only its own events.
//!   Blocking `ureq` on a plain thread keeps the crate free of an async
//!   runtime; the threads exit once every handle is dropped and their queue
//!   is drained.
//! - Retries: 2xx is delivered; 408, 429, 5xx, timeouts and connection
//!   errors are retried after 0.5 s, 1 s, 2 s, 4 s; other statuses
//!   (including redirects, which are never followed) give up at once.
//! - Every attempt is a `tracing` event (target `airlock_notify`) with the
//!   webhook name, event kind and id, attempt and status, never the URL
//!   (Slack webhook URLs are credentials), the key or the summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_types::Secret;

use crate::config::{validate_webhooks, ResolvedWebhook, WebhookConfig, MIN_SECRET_BYTES};
use crate::error::NotifyError;
use crate::event::NotificationEvent;
use crate::payload;
use crate::signature::{signature_header, EVENT_HEADER, SIGNATURE_HEADER};

/// Tunables for a [`Notifier`]. The defaults are what production uses;
/// tests shorten the back-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierOptions {
    /// Events waiting per webhook before new ones are dropped.
    pub queue_capacity: usize,
    /// Limit for one POST, connect to last byte.
    pub request_timeout: Duration,
    /// Attempts per event and webhook, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            request_timeout: Duration::from_secs(5),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl NotifierOptions {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Delivery counters, for one webhook or summed over all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Events accepted into a queue.
    pub queued: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// POSTs attempted.
    pub attempts: u64,
    /// Attempts that failed in a retryable way and were retried.
    pub retries: u64,
    /// Events a receiver acknowledged with 2xx.
    pub delivered: u64,
    /// Events given up on: a final status, or attempts exhausted.
    pub failed: u64,
}

impl DeliveryStats {
    fn add(self, other: Self) -> Self {
        Self {
            queued: self.queued + other.queued,
            dropped: self.dropped + other.dropped,
            attempts: self.attempts + other.attempts,
            retries: self.retries + other.retries,
            delivered: self.delivered + other.delivered,
            failed: self.failed + other.failed,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Events queued or being delivered, across all webhooks, so
/// [`Notifier::flush`] can wait for zero.
#[derive(Debug, Default)]
struct Pending {
    count: Mutex<u64>,
    drained: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.drained.notify_all();
        }
    }

    fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            count = self
                .drained
                .wait_timeout(count, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Marks one event finished when dropped, even if delivery unwound.
struct PendingGuard<'a>(&'a Pending);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.done();
    }
}

struct Route {
    config: WebhookConfig,
    sender: SyncSender<Arc<NotificationEvent>>,
    counters: Arc<Counters>,
}

struct Inner {
    routes: Vec<Route>,
    pending: Arc<Pending>,
}

/// The handle the review core holds. Cheap to clone; the delivery threads
/// stop after the last clone is dropped and their queues are drained.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhooks", &self.webhook_names())
            .finish()
    }
}

impl Notifier {
    /// Starts delivery for `webhooks` with the default options.
    pub fn start(webhooks: Vec<ResolvedWebhook>) -> Result<Self, NotifyError> {
        Self::start_with(webhooks, NotifierOptions::default())
    }

    /// A notifier with no webhooks: `notify` does nothing.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                routes: Vec::new(),
                pending: Arc::new(Pending::default()),
            }),
        }
    }

    /// Starts one delivery thread per webhook. Refuses an invalid
    /// configuration (every problem listed) and keys shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn start_with(
        webhooks: Vec<ResolvedWebhook>,
        options: NotifierOptions,
    ) -> Result<Self, NotifyError> {
        let configs: Vec<WebhookConfig> = webhooks.iter().map(|w| w.config.clone()).collect();
        let problems = validate_webhooks(&configs, "notifications.webhooks");
        if !problems.is_empty() {
            return Err(NotifyError::Config(problems));
        }
        if let Some(weak) = webhooks
            .iter()
            .find(|webhook| webhook.secret.expose().len() < MIN_SECRET_BYTES)
        {
            return Err(NotifyError::WeakSecret {
                webhook: weak.config.name.clone(),
                minimum: MIN_SECRET_BYTES,
            });
        }

        let pending = Arc::new(Pending::default());
        let agent = ureq::AgentBuilder::new()
            .timeout(options.request_timeout)
            .redirects(0)
            .user_agent(concat!("airlock-notify/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut routes = Vec::with_capacity(webhooks.len());
        for webhook in webhooks {
            let (sender, receiver) = mpsc::sync_channel(options.queue_capacity.max(1));
            let counters = Arc::new(Counters::default());
            let worker = Worker {
                name: webhook.config.name.clone(),
                url: webhook.config.url.clone(),
                format: webhook.config.format,
                review_url: webhook.config.review_url.clone(),
                secret: webhook.secret,
                agent: agent.clone(),
                options: options.clone(),
                counters: Arc::clone(&counters),
                pending: Arc::clone(&pending),
            };
            thread::Builder::new()
                .name(format!("notify-{}", webhook.config.name))
                .spawn(move || worker.run(receiver))
                .map_err(|source| NotifyError::Spawn {
                    webhook: webhook.config.name.clone(),
                    source,
                })?;
            routes.push(Route {
                config: webhook.config,
                sender,
                counters,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner { routes, pending }),
        })
    }

    /// Queues `event` for every webhook whose approver groups match. Never
    /// blocks: a full queue drops the event for that webhook with a warning.
    pub fn notify(&self, event: NotificationEvent) {
        let event = Arc::new(event);
        let mut matched = false;
        for route in &self.inner.routes {
            if !route.config.wants_group(&event.approver_group) {
                continue;
            }
            matched = true;
            self.inner.pending.add();
            match route.sender.try_send(Arc::clone(&event)) {
                Ok(()) => Counters::bump(&route.counters.queued),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.inner.pending.done();
                    Counters::bump(&route.counters.dropped);
                    tracing::warn!(
                        target: "airlock_notify",
                        webhook = %route.config.name,
                        event = %event.kind,
                        id = %event.id,
                        "notification queue full, event dropped"
                    );
                }
            }
        }
        if !matched {
            tracing::debug!(
                target: "airlock_notify",
                event = %event.kind,
                id = %event.id,
                approver_group = %event.approver_group,
                "no webhook for this approver group"
            );
        }
    }

    /// Waits until every queued event has been delivered or given up on, at
    /// most `timeout`. Returns whether the queues drained. Blocks: for tests
    /// and shutdown (from async code, call it in `spawn_blocking`).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.pending.wait_drained(timeout)
    }

    /// Counters summed over every webhook.
    pub fn stats(&self) -> DeliveryStats {
        self.inner
            .routes
            .iter()
            .map(|route| route.counters.snapshot())
            .fold(DeliveryStats::default(), DeliveryStats::add)
    }

    /// Counters of one webhook, by name.
    pub fn webhook_stats(&self, name: &str) -> Option<DeliveryStats> {
        self.inner
            .routes
            .iter()
            .find(|route| route.config.name == name)
            .map(|route| route.counters.snapshot())
    }

    /// The configured webhook names, in configuration order.
    pub fn webhook_names(&self) -> Vec<String> {
        self.inner
            .routes
            .iter()
            .map(|route| route.config.name.clone())
            .collect()
    }
}

/// What one POST taught us.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered(u16),
    Retry(String),
    GiveUp(String),
}

fn classify_status(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => Outcome::Retry(format!("status {status}")),
        300..=399 => Outcome::GiveUp(format!("status {status} (redirects are not followed)")),
        _ => Outcome::GiveUp(format!("status {status}")),
    }
}

fn classify_transport(error: &ureq::Transport) -> Outcome {
    use ureq::ErrorKind;
    // The transport error's own Display includes the URL: describe it by kind.
    let reason = match error.message() {
        Some(message) => format!("{}: {message}", error.kind()),
        None => error.kind().to_string(),
    };
    match error.kind() {
        ErrorKind::Dns
        | ErrorKind::ConnectionFailed
        | ErrorKind::Io
        | ErrorKind::BadStatus
        | ErrorKind::BadHeader
        | ErrorKind::ProxyConnect => Outcome::Retry(reason),
        _ => Outcome::GiveUp(reason),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

struct Worker {
    name: String,
    url: String,
    format: crate::config::WebhookFormat,
    review_url: Option<String>,
    secret: Secret<Vec<u8>>,
    agent: ureq::Agent,
    options: NotifierOptions,
    counters: Arc<Counters>,
    pending: Arc<Pending>,
}

impl Worker {
    fn run(self, receiver: Receiver<Arc<NotificationEvent>>) {
        while let Ok(event) = receiver.recv() {
            let _finished = PendingGuard(&self.pending);
            self.deliver(&event);
        }
    }

    fn deliver(&self, event: &NotificationEvent) {
        let body = match payload::render(self.format, event, self.review_url.as_deref()) {
            Ok(body) => body,
            Err(error) => {
                Counters::bump(&self.counters.failed);
                tracing::error!(
                    target: "airlock_notify",
                    webhook = %self.name, event = %event.kind, id = %event.id,
                    %error, "cannot render notification"
                );
                return;
            }
        };
        let max_attempts = self.options.max_attempts.max(1);
        for attempt in 1..=max_attempts {
            Counters::bump(&self.counters.attempts);
            match self.attempt(event, &body) {
                Outcome::Delivered(status) => {
                    Counters::bump(&self.counters.delivered);
                    tracing::info!(
                        target: "airlock_notify",
                        webhook = %self.name, event = %event.kind, id = %event.id,
                        attempt, status, "notification delivered"
                    );
                    return;
                }
                Outcome::GiveUp(reason) => {
                    Counters::bump(&self.counters.failed);
                    tracing::warn!(
                        target: "airlock_notify",
                        webhook = %self.name, event = %event.kind, id = %event.id,
                        attempt, %reason, "notification refused, not retrying"
                    );
                    return;
                }
                Outcome::Retry(reason) if attempt < max_attempts => {
                    let delay = self.options.backoff_after(attempt);
                    Counters::bump(&self.counters.retries);
                    tracing::warn!(
                        target: "airlock_notify",
                        webhook = %self.name, event = %event.kind, id = %event.id,
                        attempt, %reason, retry_in_ms = delay.as_millis() as u64,
                        "notification attempt failed, retrying"
                    );
                    thread::sleep(delay);
                }
                Outcome::Retry(reason) => {
                    Counters::bump(&self.counters.failed);
                    tracing::warn!(
                        target: "airlock_notify",
                        webhook = %self.name, event = %event.kind, id = %event.id,
                        attempt, %reason, "notification failed, attempts exhausted"
                    );
                }
            }
        }
    }

    fn attempt(&self, event: &NotificationEvent, body: &[u8]) -> Outcome {
        // Signed per attempt, so a retry after back-off is still fresh for
        // receivers that enforce a timestamp tolerance.
        let Some(signature) = signature_header(self.secret.expose(), unix_now(), body) else {
            return Outcome::GiveUp("cannot compute signature".to_owned());
        };
        let request = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .set(SIGNATURE_HEADER, &signature)
            .set(EVENT_HEADER, &event.kind);
        match request.send_bytes(body) {
            Ok(response) => classify_status(response.status()),
            Err(ureq::Error::Status(status, _)) => classify_status(status),
            Err(ureq::Error::Transport(transport)) => classify_transport(&transport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_schedule() {
        let options = NotifierOptions::default();
        let delays: Vec<u128> = (1..=5)
            .map(|n| options.backoff_after(n).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 4000]);
        assert_eq!(options.backoff_after(u32::MAX), options.max_backoff);
    }

    #[test]
    fn status_classification() {
        assert_eq!(classify_status(200), Outcome::Delivered(200));
        assert_eq!(classify_status(204), Outcome::Delivered(204));
        for retry in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(classify_status(retry), Outcome::Retry(_)),
                "{retry}"
            );
        }
        for give_up in [301, 302, 400, 401, 403, 404, 410, 422] {
            assert!(
                matches!(classify_status(give_up), Outcome::GiveUp(_)),
                "{give_up}"
            );
        }
    }

    #[test]
    fn pending_waits_and_times_out() {
        let pending = Arc::new(Pending::default());
        assert!(pending.wait_drained(Duration::ZERO));
        pending.add();
        assert!(!pending.wait_drained(Duration::from_millis(20)));
        let other = Arc::clone(&pending);
        let finisher = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            other.done();
        });
        assert!(pending.wait_drained(Duration::from_secs(5)));
        finisher.join().unwrap();
    }

    #[test]
    fn disabled_notifier_accepts_events_and_is_drained() {
        let notifier = Notifier::disabled();
        notifier.notify(NotificationEvent {
            kind: "review.created".to_owned(),
            id: "r".to_owned(),
            approver_group: "dba".to_owned(),
            identity: "i".to_owned(),
            connection: "c".to_owned(),
            summary: "s".to_owned(),
            rule: None,
            policy_version: None,
            expires_at: None,
            url: None,
        });
        assert!(notifier.flush(Duration::ZERO));
        assert_eq!(notifier.stats(), DeliveryStats::default());
    }
}
