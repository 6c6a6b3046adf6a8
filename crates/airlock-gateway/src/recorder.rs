//! The recorder: durable, batched writes of audit events (group commit).
//!
//! Sessions hand events to one writer thread. The writer takes everything
//! queued at that moment and appends it in a single SQLite transaction, so
//! many concurrent sessions share one durable write. [`Recorder::record`]
//! returns only after the transaction committed: the relay awaits it before
//! a command goes upstream (audit before forward), and refuses the command
//! when it fails (fail closed). [`Recorder::record_later`] queues events
//! whose durability nothing waits on (command results).

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use airlock_store::{NewEvent, Store};

/// Most jobs folded into one transaction.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// Queue bound: past it, senders wait (backpressure instead of memory).
const QUEUE_CAPACITY: usize = 65_536;

/// Why events could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct RecordError(pub String);

struct Job {
    events: Vec<NewEvent>,
    ack: Option<oneshot::Sender<Result<(), RecordError>>>,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<Store>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("airlock-recorder".into())
            .spawn(move || write_loop(&store, receiver))
            .map(|_| ())
            .unwrap_or_else(|error| tracing::error!(%error, "cannot start the recorder thread"));
        Self { sender }
    }

    /// Records `events` durably; returns once they are committed.
    pub async fn record(&self, events: Vec<NewEvent>) -> Result<(), RecordError> {
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Job {
                events,
                ack: Some(ack),
            })
            .await
            .map_err(|_| RecordError("the recorder has stopped".into()))?;
        done.await
            .map_err(|_| RecordError("the recorder has stopped".into()))?
    }

    /// Queues `events` without waiting for the commit.
    pub async fn record_later(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        if self.sender.send(Job { events, ack: None }).await.is_err() {
            tracing::error!("the recorder has stopped; events lost");
        }
    }
}

fn write_loop(store: &Store, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        for job in &mut jobs {
            events.append(&mut job.events);
        }
        let result = store
            .append_events(&events)
            .map(|_| ())
            .map_err(|error| RecordError(error.to_string()));
        if let Err(error) = &result {
            tracing::error!(%error, events = events.len(), "audit write failed");
        }
        for job in jobs {
            if let Some(ack) = job.ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}
