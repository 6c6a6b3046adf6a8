//! The keep-alive pool of upstream HTTP/1.1 connections of `protocol:
//! http` and `kubernetes` connections: idle connections kept by
//! [`PoolKey`] (the airlock connection and the credential version its
//! requests carry), bounded in number per key (`http.upstream_max_idle`)
//! and in time (`http.upstream_idle_timeout`, swept in the background).
//!
//! Architecture invariants: a pooled connection is only ever reused for
//! the key it was opened for, so it never carries a request of another
//! credential or presents another TLS client certificate (a
//! client-certificate connection's TLS identity is fixed by the
//! credential version); a rotation (a new version) makes the next request
//! open a new connection and closes the old version's idle ones; a
//! connection goes back to the pool only once its response was read to
//! the end (hyper's `ready`), never after an upgrade (streams never enter
//! the pool). This module never decides whether a request may be sent
//! again after a failure: `upstream` does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

use crate::upstream::UpstreamBody;

/// What a pooled connection is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The airlock connection's name (one upstream, one TLS config).
    pub connection: String,
    /// The version of the credential injected on (or presented by) the
    /// connection.
    pub credential_version: i64,
}

/// The sending half of an upstream connection, as the pool keeps it.
pub type UpstreamSender = SendRequest<UpstreamBody>;

struct Idle {
    sender: UpstreamSender,
    since: Instant,
}

#[derive(Default)]
struct Slots {
    idle: HashMap<PoolKey, Vec<Idle>>,
    sweeping: bool,
}

/// Idle upstream connections, shared by every request of the listener.
pub struct UpstreamPool {
    slots: Arc<Mutex<Slots>>,
    idle_timeout: Duration,
    max_idle: usize,
    opened: AtomicU64,
    reused: AtomicU64,
}

impl UpstreamPool {
    /// A pool keeping at most `max_idle` idle connections per key, each
    /// for at most `idle_timeout`; either zero disables pooling.
    pub fn new(idle_timeout: Duration, max_idle: usize) -> Self {
        Self {
            slots: Arc::default(),
            idle_timeout,
            max_idle,
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        !self.idle_timeout.is_zero() && self.max_idle > 0
    }

    /// Upstream connections opened and idle ones reused so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.opened.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// A new upstream connection was opened.
    pub fn note_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// The most recently used idle connection of `key` that is still open
    /// and ready; expired and closed ones met on the way are dropped.
    pub fn take(&self, key: &PoolKey) -> Option<UpstreamSender> {
        if !self.enabled() {
            return None;
        }
        let mut slots = self.slots.lock().ok()?;
        let list = slots.idle.get_mut(key)?;
        let mut found = None;
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < self.idle_timeout
                && !idle.sender.is_closed()
                && idle.sender.is_ready()
            {
                found = Some(idle.sender);
                break;
            }
        }
        if list.is_empty() {
            slots.idle.remove(key);
        }
        if found.is_some() {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps `sender` for `key` once the response it carries has been read
    /// to the end and the connection can take another request; a
    /// connection that closes meanwhile (or that the upstream asked to
    /// close) is dropped.
    pub fn keep_when_ready(&self, key: PoolKey, mut sender: UpstreamSender) {
        if !self.enabled() {
            return;
        }
        let slots = Arc::downgrade(&self.slots);
        let (idle_timeout, max_idle) = (self.idle_timeout, self.max_idle);
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let Some(strong) = slots.upgrade() else {
                return;
            };
            let start_sweeper = {
                let Ok(mut guard) = strong.lock() else {
                    return;
                };
                // A rotation: the old version's idle connections go.
                guard.idle.retain(|other, _| {
                    other.connection != key.connection
                        || other.credential_version >= key.credential_version
                });
                if guard.idle.keys().any(|other| {
                    other.connection == key.connection
                        && other.credential_version > key.credential_version
                }) {
                    // This connection carried an older credential.
                    return;
                }
                let list = guard.idle.entry(key).or_default();
                list.push(Idle {
                    sender,
                    since: Instant::now(),
                });
                if list.len() > max_idle {
                    let excess = list.len() - max_idle;
                    list.drain(..excess);
                }
                !std::mem::replace(&mut guard.sweeping, true)
            };
            if start_sweeper {
                tokio::spawn(sweep(slots, idle_timeout));
            }
        });
    }
}

/// Drops expired and closed idle connections until the pool is gone.
async fn sweep(slots: Weak<Mutex<Slots>>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(period).await;
        let Some(strong) = slots.upgrade() else {
            return;
        };
        let Ok(mut guard) = strong.lock() else {
            return;
        };
        for list in guard.idle.values_mut() {
            list.retain(|idle| idle.since.elapsed() < idle_timeout && !idle.sender.is_closed());
        }
        guard.idle.retain(|_, list| !list.is_empty());
    }
}
