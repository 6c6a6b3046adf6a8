//! Webhook notifications for airlock reviews and access requests.
//!
//! When a risky command waits for a human, or an access request is filed or
//! decided, the review core calls [`Notifier::notify`] with a
//! [`NotificationEvent`]. This crate owns everything after that call:
//!
//! - [`config`]: the `notifications: { webhooks: [...] }` section of the
//!   gateway configuration, its validation (every problem with its location)
//!   and resolving each webhook's HMAC key from an environment variable or a
//!   file.
//! - [`event`]: the event model and its kinds.
//! - [`payload`]: the request bodies, plain JSON or a Slack message naming
//!   the exact `airlock review approve|deny` commands.
//! - [`signature`]: `X-Airlock-Signature: t=<unix>,v1=<hex hmac-sha256>` and
//!   [`verify_signature`] for receivers.
//! - [`delivery`]: the [`Notifier`] handle. `notify` never blocks: one
//!   bounded queue and one delivery thread per webhook, so a slow receiver
//!   delays only itself; POSTs time out and are retried with exponential
//!   back-off; outcomes are counted and traced.
//!
//! What this crate must never do: decide anything about a review (it only
//! reports), block or fail the caller, follow redirects, or log a webhook
//! secret or an event's summary (which may hold a statement).

pub mod config;
pub mod delivery;
pub mod event;
pub mod payload;
pub mod signature;

mod error;

pub use config::{
    ConfigProblem, NotificationsConfig, ResolvedWebhook, WebhookConfig, WebhookFormat,
    MIN_SECRET_BYTES,
};
pub use delivery::{DeliveryStats, Notifier, NotifierOptions};
pub use error::NotifyError;
pub use event::NotificationEvent;
pub use signature::{signature_header, verify_signature, EVENT_HEADER, SIGNATURE_HEADER};
