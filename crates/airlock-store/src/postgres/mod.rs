//! [`PgStore`]: the shared PostgreSQL backend, one module per domain like
//! the SQLite store, so several gateway replicas on several machines share
//! one state.
//!
//! How a synchronous trait method reaches an asynchronous client: the
//! traits are synchronous and are called from async code on the gateway's
//! tokio workers, where the blocking `postgres` crate panics (it starts a
//! runtime of its own) and `Runtime::block_on` panics too. So the store owns
//! a dedicated thread that drives a current-thread tokio runtime with a
//! small pool of `tokio-postgres` connections ([`pool`]); each method sends
//! its work there and blocks the calling thread on a channel for the answer,
//! just as the SQLite store blocks on the disk. The work is bounded by
//! [`OPERATION_TIMEOUT`], so a store that stops answering fails the call
//! (closed) instead of hanging a session. A broken connection is dropped
//! and the next call connects again, so the store recovers on its own when
//! the database returns.
//!
//! Cross-process guarantees come from PostgreSQL itself, never from a lock
//! in this process: conflict checks and their writes share one transaction
//! serialised by a transaction-scoped advisory lock ([`locks`]), an approval
//! is used by one `UPDATE … WHERE uses_left > 0` (re-checked by PostgreSQL
//! after a concurrent update), and the event chain's head is one row read
//! `FOR UPDATE` in the appending transaction ([`events`]).
//!
//! This module owns opening (connecting, migrating), the handle's settings
//! and the clock; the domains implement the traits of [`crate::backend`]:
//! [`credentials`], [`tokens`], [`connections`], [`policies`], [`events`],
//! [`journal_index`], [`reviews`] (reviews, grants, MFA secrets) and
//! [`tool_pins`] (pinned MCP tool definitions); [`listen`] keeps the
//! `LISTEN` connection whose notifications wake the other replicas.

mod connections;
mod credentials;
mod events;
mod journal_index;
mod listen;
mod lockouts;
mod migrations;
mod policies;
mod pool;
mod reviews;
mod tokens;
mod tool_pins;
mod url;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::StoreBackend;
use crate::clock::{Clock, SystemClock};
use crate::StoreError;
pub use url::{PgSslMode, PgStoreUrl};

/// How long one store operation may take, connecting included, before it
/// fails: a session waits at most this long on an unreachable store.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections kept open to the store.
const POOL_SIZE: usize = 8;

/// Keys of the transaction-scoped advisory locks that serialise the
/// conflict checks spanning rows (`pg_advisory_xact_lock`).
pub(crate) mod locks {
    /// Schema migrations (replicas starting at once).
    pub const MIGRATIONS: i64 = 0x6169_726c_0001;
    /// Policy version numbers.
    pub const POLICY_VERSIONS: i64 = 0x6169_726c_0002;
    /// Credentials against the connections that use them.
    pub const CREDENTIAL_USE: i64 = 0x6169_726c_0003;
    /// Pending reviews of one statement (with a hash of it as second key).
    pub const REVIEWS: i32 = 0x6169_7203;
    /// Failed logins of one (realm, source) (with a hash of them as second
    /// key).
    pub const LOGINS: i32 = 0x6169_7204;
}

/// What every operation running on the store's thread shares.
pub(crate) struct Shared {
    pool: pool::Pool,
    /// Key of the event chain's HMAC, when set.
    chain_key: Mutex<Option<ring::hmac::Key>>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn chain_key(&self) -> Result<Option<ring::hmac::Key>, StoreError> {
        self.chain_key
            .lock()
            .map(|key| key.clone())
            .map_err(|_| StoreError::Poisoned)
    }
}

/// The shared PostgreSQL store: implements every trait of
/// [`crate::backend`] (bring them into scope with
/// `use airlock_store::prelude::*;`).
pub struct PgStore {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    /// Dropped with the store: ends the store's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The URL without its password, for messages.
    display: String,
    /// Hints from the listener, started by the first
    /// [`StoreBackend::change_feed`] call (a CLI command never needs one).
    feed: Arc<crate::ChangeFeed>,
    listening: std::sync::Once,
}

impl PgStore {
    /// Connects to the store at `url` (its password, if any, given apart:
    /// `password`), migrates it and returns the handle. `tls` is the client
    /// config for `sslmode=require` or `verify-full` (see
    /// [`PgStoreUrl::ssl_mode`]); `None` for `disable`.
    pub fn open(
        url: &PgStoreUrl,
        password: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, StoreError> {
        Self::open_with_clock(url, password, tls, Arc::new(SystemClock))
    }

    /// Like [`PgStore::open`], reading time from `clock`.
    pub fn open_with_clock(
        url: &PgStoreUrl,
        password: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        if url.ssl_mode() != PgSslMode::Disable && tls.is_none() {
            return Err(StoreError::Postgres(format!(
                "{}: sslmode={} needs a TLS client config",
                url.redacted(),
                url.ssl_mode().as_str()
            )));
        }
        let config = url.client_config(password, OPERATION_TIMEOUT);
        let (started, ready) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("airlock-pg-store".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                // Runs the spawned operations until the store is dropped.
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|error| {
                StoreError::Postgres(format!("cannot start the store thread: {error}"))
            })?;
        let runtime = ready
            .recv()
            .map_err(|_| StoreError::Postgres("the store thread did not start".into()))?
            .map_err(|error| {
                StoreError::Postgres(format!("cannot start the store runtime: {error}"))
            })?;
        let store = Self {
            shared: Arc::new(Shared {
                pool: pool::Pool::new(config, tls, POOL_SIZE),
                chain_key: Mutex::new(None),
                clock,
            }),
            runtime,
            _stop: stop,
            display: url.redacted(),
            feed: crate::ChangeFeed::new(),
            listening: std::sync::Once::new(),
        };
        store
            .run(|shared| async move { migrations::migrate(&shared.pool).await })
            .map_err(|error| store.context(error))?;
        Ok(store)
    }

    /// Where the store is, without its password.
    pub fn redacted_url(&self) -> &str {
        &self.display
    }

    /// The clock this store reads.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    /// Keys the event chain with HMAC-SHA-256 under `key`; every process
    /// sharing the store must use the same key.
    pub fn set_chain_key(&self, key: [u8; 32]) -> Result<(), StoreError> {
        let mut slot = self
            .shared
            .chain_key
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        *slot = Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key));
        Ok(())
    }

    fn context(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Postgres(message) => {
                StoreError::Postgres(format!("{}: {message}", self.display))
            }
            other => other,
        }
    }

    /// Runs `work` on the store's thread and waits for its answer, at most
    /// [`OPERATION_TIMEOUT`].
    pub(crate) fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let shared = Arc::clone(&self.shared);
        self.runtime.spawn(async move {
            let result = match tokio::time::timeout(OPERATION_TIMEOUT, work(shared)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Postgres(format!(
                    "the store did not answer within {} s",
                    OPERATION_TIMEOUT.as_secs()
                ))),
            };
            let _ = answer.send(result);
        });
        answered
            .recv_timeout(OPERATION_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| StoreError::Postgres("the store thread did not answer".into()))?
    }
}

impl StoreBackend for PgStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.run(|shared| async move {
            let client = shared.pool.get().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(pool::db_error)?;
            Ok(())
        })
    }

    fn set_chain_key(&self, key: [u8; 32]) -> Result<(), StoreError> {
        PgStore::set_chain_key(self, key)
    }

    fn claim_key_check(&self, check: &str) -> Result<bool, StoreError> {
        let check = check.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('master_key_check', $1) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&check],
                )
                .await
                .map_err(pool::db_error)?;
            let row = client
                .query_one("SELECT value FROM meta WHERE key = 'master_key_check'", &[])
                .await
                .map_err(pool::db_error)?;
            let recorded: String = pool::get(&row, 0)?;
            Ok(recorded == check)
        })
    }

    fn change_feed(&self) -> Option<Arc<crate::ChangeFeed>> {
        self.listening.call_once(|| {
            self.runtime.spawn(listen::run(
                Arc::clone(&self.shared),
                Arc::clone(&self.feed),
            ));
        });
        Some(Arc::clone(&self.feed))
    }
}
