//! [`AdminError`]: how an admin operation fails, for the API (which maps
//! each variant to an HTTP status) and the CLI. A leaf module: the
//! operations in `admin`, `policies`, `reviews`, `access` and `audit` use it
//! without importing each other.

use airlock_store::StoreError;

/// An admin operation that failed, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is invalid; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or its state forbids the change.
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed.
    #[error("store unavailable: {0}")]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::NotFound(error.to_string()),
            StoreError::AlreadyExists { .. } | StoreError::Conflict(_) => {
                Self::Conflict(error.to_string())
            }
            other => Self::Store(other),
        }
    }
}
