//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (disk full, read-only, corrupt, locked …).
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared PostgreSQL store failed or could not be reached. The
    /// message never holds the store's password.
    #[error("shared store: {0}")]
    Postgres(String),
    /// A record that must exist does not.
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    /// A record that must be unique already exists.
    #[error("{what} {name:?} already exists")]
    AlreadyExists { what: &'static str, name: String },
    /// The operation conflicts with the record's state.
    #[error("{0}")]
    Conflict(String),
    /// Encryption or decryption failed (wrong master key, tampered row).
    #[error("vault error: {0}")]
    Vault(String),
    /// The master key could not be loaded or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// Stored JSON did not parse.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A write-ahead journal could not be read or written.
    #[error("journal: {0}")]
    Journal(String),
    /// The store's files could not be created or made owner-only.
    #[error("store file permissions: {0}")]
    Permissions(std::io::Error),
    /// The store lock was poisoned by a panic elsewhere.
    #[error("store lock poisoned")]
    Poisoned,
}
