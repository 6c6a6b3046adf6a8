//! [`NotifyError`]: why notifications could not be set up.
//!
//! Delivery failures are not errors to the caller: `notify` never fails.
//! They are counted ([`crate::DeliveryStats`]) and traced instead. This type
//! covers start-up only: configuration, secrets, threads.

use std::path::PathBuf;

use crate::config::ConfigProblem;

/// A failure to configure or start webhook notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The webhook configuration is invalid; every problem is listed.
    #[error("invalid notifications configuration: {}", join_problems(.0))]
    Config(Vec<ConfigProblem>),
    /// The environment variable holding a webhook's key is unset or not
    /// valid UTF-8.
    #[error("webhook {webhook:?}: environment variable {variable} is not set")]
    SecretEnvMissing {
        /// The webhook name.
        webhook: String,
        /// The variable named by `secret_env`.
        variable: String,
    },
    /// The file holding a webhook's key could not be read.
    #[error("webhook {webhook:?}: cannot read secret file {}: {source}", path.display())]
    SecretFile {
        /// The webhook name.
        webhook: String,
        /// The file named by `secret_file`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key is shorter than [`crate::MIN_SECRET_BYTES`].
    #[error("webhook {webhook:?}: secret must be at least {minimum} bytes")]
    WeakSecret {
        /// The webhook name.
        webhook: String,
        /// The minimum length.
        minimum: usize,
    },
    /// A delivery thread could not be started.
    #[error("cannot start delivery thread for webhook {webhook:?}: {source}")]
    Spawn {
        /// The webhook name.
        webhook: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn join_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
