//! The store's listener: one connection of its own, outside the pool,
//! that `LISTEN`s on [`CHANNEL`] and hands every notification to the
//! store's [`ChangeFeed`] as a hint, and the `NOTIFY` the writing methods
//! send inside their own transaction (so a hint is delivered only once
//! what it names is committed).
//!
//! The feed is live only while the listener is connected and answers a
//! heartbeat; a broken or silent connection is dropped and opened again
//! after [`RECONNECT_DELAY`], and going live again publishes a resync
//! (what changed meanwhile must be re-read). Receivers poll as well, so a
//! hint lost between a commit and a reconnect only delays.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::GenericClient;

use super::pool::db_error;
use crate::changes::{ChangeFeed, StoreChange, CHANNEL};
use crate::StoreError;

/// Wait between a lost listener connection and the next attempt.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// How often the listener checks its connection still answers (a store
/// host that vanished without closing the socket).
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a heartbeat or the `LISTEN` may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// Keeps a listening connection open for as long as the store lives (the
/// store's runtime ends this task).
pub(super) async fn run(shared: Arc<super::Shared>, feed: Arc<ChangeFeed>) {
    loop {
        if let Ok((client, mut ended)) = shared.pool.connect_listening(Arc::clone(&feed)).await {
            let statement = format!("LISTEN {CHANNEL}");
            let listen = client.batch_execute(&statement);
            if matches!(
                tokio::time::timeout(ANSWER_TIMEOUT, listen).await,
                Ok(Ok(()))
            ) {
                feed.set_live(true);
                loop {
                    tokio::select! {
                        _ = &mut ended => break,
                        () = tokio::time::sleep(HEARTBEAT) => {
                            let beat = client.simple_query("SELECT 1");
                            if !matches!(tokio::time::timeout(ANSWER_TIMEOUT, beat).await, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                feed.set_live(false);
                tracing::warn!("the shared store's listener connection was lost; reconnecting");
            }
            ended.abort();
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Sends `change` to every replica's listener when the surrounding
/// transaction (or, outside one, this statement) commits.
pub(super) async fn notify(
    client: &impl GenericClient,
    change: &StoreChange,
) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &change.payload()])
        .await
        .map_err(db_error)?;
    Ok(())
}
