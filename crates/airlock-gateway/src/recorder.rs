//! The recorder: durable, batched writes of audit events (group commit).
//!
//! Events are appended to this process's write-ahead journal before the
//! command they describe goes upstream. Under `sync: full` sessions hand
//! them to one journal thread, which takes everything queued at that moment
//! and appends it with one write and one `fdatasync`, so many concurrent
//! sessions share one durable write (group commit). Under `sync: normal` a
//! write costs less than a thread hop, so sessions append themselves, and
//! results ride along with the next write. [`Recorder::record`] returns
//! once the events are in the journal: the relay awaits it before a command
//! goes upstream (audit before forward) and refuses the command when it
//! fails (fail closed). [`Recorder::record_later`] takes events whose
//! durability nothing waits on (command results).
//!
//! An index thread copies journaled events into the store's hash-chained
//! event table in large transactions, which is what the audit commands
//! read; [`Recorder::flush`] waits until it has caught up. When the index
//! cannot keep up or cannot be written for [`MAX_INDEX_STALL`], new commands
//! are refused, as if the journal itself had failed: nothing runs unseen for
//! long. See `airlock_store::journal` for the format and crash recovery.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use airlock_store::journal::{self, JournalFile};
use airlock_store::{now_micros, NewEvent, Store};

/// Most jobs folded into one journal write.
const MAX_JOBS_PER_WRITE: usize = 4096;
/// Most events copied into the event table in one transaction.
const MAX_EVENTS_PER_INDEX_COMMIT: usize = 20_000;
/// Deferred results past which the next one writes them at once.
const MAX_DEFERRED: usize = 1024;
/// Least time between two index commits.
const MIN_INDEX_INTERVAL: Duration = Duration::from_millis(5);
/// Queue bound: past it, senders wait (backpressure instead of memory).
const QUEUE_CAPACITY: usize = 65_536;
/// A journal past this size is replaced by a new one (and deleted once
/// copied in full). Under `sync: full` journals are zero-filled to this size
/// when created, so each `fdatasync` flushes data only (see
/// `JournalFile::create`).
const JOURNAL_ROTATE_BYTES: u64 = if cfg!(test) {
    16 * 1024
} else {
    16 * 1024 * 1024
};
/// Events the index may trail the journal by before the journal thread
/// waits for it (backpressure, so memory stays bounded under overload).
const MAX_INDEX_LAG: u64 = 200_000;
/// How long the index may fall behind without progress before commands are
/// refused.
pub const MAX_INDEX_STALL: Duration = Duration::from_secs(2);

/// Bytes to zero-fill a new journal with: only worth it when every write
/// is synced.
fn preallocation(sync: bool) -> u64 {
    if sync {
        JOURNAL_ROTATE_BYTES
    } else {
        0
    }
}

/// Why events could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct RecordError(pub String);

struct Job {
    events: Vec<NewEvent>,
    /// A command waits on these events (refused rather than journaled
    /// while the index fails).
    waits: bool,
    ack: Option<oneshot::Sender<Result<(), RecordError>>>,
}

/// What the journal thread hands the index thread.
enum IndexWork {
    /// Events journaled in `journal`, which now ends at byte `through`.
    Events {
        journal: String,
        through: u64,
        events: Vec<(i64, NewEvent)>,
    },
    /// `journal` is complete: delete it once everything before is copied.
    Retire {
        journal: String,
        path: std::path::PathBuf,
    },
}

/// Progress shared by the two threads and the readers.
#[derive(Default)]
struct Counters {
    journaled: u64,
    indexed: u64,
    /// Since when the index has been behind without making progress.
    stalled_since: Option<Instant>,
    /// The index's last failure, until it succeeds again.
    index_error: Option<String>,
}

#[derive(Default)]
struct Progress {
    counters: Mutex<Counters>,
    changed: Condvar,
    /// The journal writer holds deferred results.
    deferred: AtomicBool,
}

impl Progress {
    /// True when the index trails by more than [`MAX_INDEX_LAG`] events.
    fn lagging(&self) -> bool {
        self.counters
            .lock()
            .map(|counters| counters.journaled.saturating_sub(counters.indexed) > MAX_INDEX_LAG)
            .unwrap_or(false)
    }

    /// Waits while the index trails by more than [`MAX_INDEX_LAG`] events,
    /// at most [`MAX_INDEX_STALL`].
    fn wait_for_room(&self) {
        let deadline = Instant::now() + MAX_INDEX_STALL;
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        while counters.journaled.saturating_sub(counters.indexed) > MAX_INDEX_LAG
            && counters.index_error.is_none()
        {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            match self.changed.wait_timeout(counters, deadline - now) {
                Ok((guard, _)) => counters = guard,
                Err(_) => return,
            }
        }
    }

    /// Why new commands must be refused now, if they must.
    fn refusal(&self) -> Option<String> {
        let counters = self.counters.lock().ok()?;
        if let Some(error) = &counters.index_error {
            return Some(format!("the event index cannot be written: {error}"));
        }
        match counters.stalled_since {
            Some(since) if since.elapsed() > MAX_INDEX_STALL => Some(format!(
                "the event index is {} events behind and has not advanced for {} ms",
                counters.journaled.saturating_sub(counters.indexed),
                since.elapsed().as_millis()
            )),
            _ => None,
        }
    }
}

/// Handle to the recorder threads; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    /// Under `sync: full`, the journal thread that batches writes around
    /// one `fdatasync`; under `sync: normal`, `None`: a write costs no more
    /// than handing it to a thread, so sessions write the journal
    /// themselves (no thread hop on the data path).
    sender: Option<mpsc::Sender<Job>>,
    writer: Arc<Mutex<JournalWriter>>,
    progress: Arc<Progress>,
}

impl Recorder {
    /// Replays journals left by a crashed process into `store`, then starts
    /// the journal and index threads, journaling into `journal_dir`.
    /// `sync`: flush every journal write to disk before acknowledging it.
    pub fn start(store: Arc<Store>, journal_dir: &Path, sync: bool) -> Result<Self, RecordError> {
        let recovered = journal::recover(journal_dir, &store)
            .map_err(|error| RecordError(format!("journal recovery failed: {error}")))?;
        if recovered.journals > 0 {
            tracing::warn!(
                journals = recovered.journals,
                events = recovered.events,
                "recovered audit events journaled by a process that stopped before indexing them"
            );
        }
        for damaged in &recovered.damaged {
            tracing::error!(journal = %damaged, "a damaged journal was set aside");
        }
        let journal = JournalFile::create(journal_dir, preallocation(sync)).map_err(|error| {
            RecordError(format!(
                "cannot create a journal in {}: {error}",
                journal_dir.display()
            ))
        })?;
        let (index_sender, index_receiver) = std_mpsc::channel();
        let progress = Arc::new(Progress::default());
        let writer = Arc::new(Mutex::new(JournalWriter {
            file: journal,
            dir: journal_dir.to_path_buf(),
            sync,
            index: index_sender,
            buffer: Vec::new(),
            deferred: Vec::new(),
        }));
        let sender = if sync {
            let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
            let journal_progress = Arc::clone(&progress);
            let journal_writer = Arc::clone(&writer);
            std::thread::Builder::new()
                .name("airlock-journal".into())
                .spawn(move || journal_loop(&journal_writer, receiver, &journal_progress))
                .map_err(|error| {
                    RecordError(format!("cannot start the journal thread: {error}"))
                })?;
            Some(sender)
        } else {
            None
        };
        let index_progress = Arc::clone(&progress);
        let index_writer = Arc::clone(&writer);
        std::thread::Builder::new()
            .name("airlock-index".into())
            .spawn(move || index_loop(&store, &index_receiver, &index_writer, &index_progress))
            .map_err(|error| RecordError(format!("cannot start the index thread: {error}")))?;
        Ok(Self {
            sender,
            writer,
            progress,
        })
    }

    /// Records `events` durably; returns once they are journaled.
    pub async fn record(&self, events: Vec<NewEvent>) -> Result<(), RecordError> {
        let Some(sender) = &self.sender else {
            return self.write_here(events, true);
        };
        let (ack, done) = oneshot::channel();
        sender
            .send(Job {
                events,
                waits: true,
                ack: Some(ack),
            })
            .await
            .map_err(|_| RecordError("the recorder has stopped".into()))?;
        done.await
            .map_err(|_| RecordError("the recorder has stopped".into()))?
    }

    /// Records `events` that nothing waits on (command results).
    pub async fn record_later(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        let Some(sender) = &self.sender else {
            self.defer(events);
            return;
        };
        let job = Job {
            events,
            waits: false,
            ack: None,
        };
        if sender.send(job).await.is_err() {
            tracing::error!("the recorder has stopped; events lost");
        }
    }

    /// Keeps results for the next journal write (`sync: normal`), so a
    /// command and the result before it share one write.
    fn defer(&self, events: Vec<NewEvent>) {
        let ts = now_micros();
        let Ok(mut writer) = self.writer.lock() else {
            tracing::error!("the journal lock is poisoned; events lost");
            return;
        };
        writer
            .deferred
            .extend(events.into_iter().map(|event| (ts, event)));
        self.progress.deferred.store(true, Ordering::Release);
        if writer.deferred.len() >= MAX_DEFERRED {
            if let Err(error) = writer.write(&mut [], &self.progress) {
                tracing::error!(%error, "events lost");
            }
        }
    }

    /// Writes the journal from the calling task (`sync: normal`): a write
    /// to the page cache, shorter than two thread wake-ups.
    fn write_here(&self, events: Vec<NewEvent>, waits: bool) -> Result<(), RecordError> {
        if self.progress.lagging() {
            // Overload: let the index catch up (bounded) before adding more,
            // telling a multi-threaded runtime that this task blocks.
            let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
                handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            });
            if multi_thread {
                tokio::task::block_in_place(|| self.progress.wait_for_room());
            } else {
                self.progress.wait_for_room();
            }
        }
        let mut jobs = [Job {
            events,
            waits,
            ack: None,
        }];
        match self.writer.lock() {
            Ok(mut writer) => writer.write(&mut jobs, &self.progress),
            Err(_) => Err(RecordError("the journal lock is poisoned".into())),
        }
    }

    /// Why new commands are refused now (the event index failing or
    /// stalled), if they are.
    pub fn problem(&self) -> Option<String> {
        self.progress.refusal()
    }

    /// Events journaled but not yet in the event table.
    pub fn index_lag(&self) -> u64 {
        self.progress
            .counters
            .lock()
            .map(|counters| counters.journaled.saturating_sub(counters.indexed))
            .unwrap_or(0)
    }

    /// Waits (blocking, up to `timeout`) until every event journaled so far
    /// is in the event table, so a read sees everything recorded before it.
    /// Returns false on time-out.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        write_deferred(&self.writer, &self.progress);
        let Ok(mut counters) = self.progress.counters.lock() else {
            return false;
        };
        let target = counters.journaled;
        while counters.indexed < target {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.progress.changed.wait_timeout(counters, deadline - now) {
                Ok((guard, _)) => counters = guard,
                Err(_) => return false,
            }
        }
        true
    }
}

/// The journal and what goes with writing it.
struct JournalWriter {
    file: JournalFile,
    dir: PathBuf,
    sync: bool,
    index: std_mpsc::Sender<IndexWork>,
    buffer: Vec<u8>,
    /// Results nothing waits on (`sync: normal`), with the time they were
    /// recorded: they ride along with the next write, or the index thread
    /// writes them within [`MIN_INDEX_INTERVAL`].
    deferred: Vec<(i64, NewEvent)>,
}

impl JournalWriter {
    /// Journals the events of `jobs` with one write. Commands waiting on
    /// their record are refused while the index is failing or stalled;
    /// their events are not journaled (they never run). Results of commands
    /// that already ran still are.
    fn write(&mut self, jobs: &mut [Job], progress: &Progress) -> Result<(), RecordError> {
        let refusal = progress.refusal();
        let ts = now_micros();
        self.buffer.clear();
        let mut events = Vec::new();
        for (at, event) in self.deferred.drain(..) {
            journal::encode(&mut self.buffer, at, &event);
            events.push((at, event));
        }
        progress.deferred.store(false, Ordering::Release);
        for job in jobs.iter_mut() {
            if refusal.is_some() && job.waits {
                continue;
            }
            for event in job.events.drain(..) {
                journal::encode(&mut self.buffer, ts, &event);
                events.push((ts, event));
            }
        }
        let written = if events.is_empty() {
            Ok(self.file.len())
        } else {
            self.file.append(&self.buffer, self.sync)
        };
        let result = match (&written, &refusal) {
            (Err(error), _) => Err(RecordError(format!(
                "the journal {} cannot be written: {error}",
                self.file.path().display()
            ))),
            (Ok(_), Some(refusal)) => Err(RecordError(refusal.clone())),
            (Ok(_), None) => Ok(()),
        };
        match &written {
            Err(error) => {
                tracing::error!(%error, events = events.len(), "audit journal write failed")
            }
            Ok(through) if !events.is_empty() => {
                if let Ok(mut counters) = progress.counters.lock() {
                    counters.journaled += events.len() as u64;
                    if counters.stalled_since.is_none() {
                        counters.stalled_since = Some(Instant::now());
                    }
                }
                let _ = self.index.send(IndexWork::Events {
                    journal: self.file.name().to_string(),
                    through: *through,
                    events,
                });
            }
            Ok(_) => {}
        }
        if let Some(refusal) = &refusal {
            tracing::error!(%refusal, "refusing commands: the audit index is not keeping up");
        }
        if self.file.len() >= JOURNAL_ROTATE_BYTES {
            self.rotate();
        }
        result
    }

    /// Starts a new journal; the index deletes the old one once copied.
    fn rotate(&mut self) {
        match JournalFile::create(&self.dir, preallocation(self.sync)) {
            Ok(next) => {
                let done = std::mem::replace(&mut self.file, next);
                let _ = self.index.send(IndexWork::Retire {
                    journal: done.name().to_string(),
                    path: done.path().to_path_buf(),
                });
                // `done` drops here: its lock goes, the index deletes it.
            }
            Err(error) => {
                tracing::error!(%error, "cannot start a new journal; the current one keeps growing")
            }
        }
    }
}

/// The journal thread of `sync: full`: one write and one `fdatasync` for
/// everything queued while the previous one ran (group commit).
fn journal_loop(
    writer: &Mutex<JournalWriter>,
    mut receiver: mpsc::Receiver<Job>,
    progress: &Progress,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_WRITE {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        progress.wait_for_room();
        let result = match writer.lock() {
            Ok(mut writer) => writer.write(&mut jobs, progress),
            Err(_) => Err(RecordError("the journal lock is poisoned".into())),
        };
        for job in jobs {
            if let Some(ack) = job.ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

/// Journals deferred results now.
fn write_deferred(writer: &Mutex<JournalWriter>, progress: &Progress) {
    if !progress.deferred.load(Ordering::Acquire) {
        return;
    }
    if let Ok(mut writer) = writer.lock() {
        if let Err(error) = writer.write(&mut [], progress) {
            tracing::error!(%error, "events lost");
        }
    }
}

fn index_loop(
    store: &Store,
    receiver: &std_mpsc::Receiver<IndexWork>,
    writer: &Mutex<JournalWriter>,
    progress: &Progress,
) {
    let mut backlog: Option<IndexWork> = None;
    let mut last_commit = Instant::now();
    loop {
        let first = match backlog.take() {
            Some(work) => work,
            None => {
                // Deferred results wait at most one interval for a write to
                // carry them.
                let received = if progress.deferred.load(Ordering::Acquire) {
                    match receiver.recv_timeout(MIN_INDEX_INTERVAL) {
                        Ok(work) => Ok(work),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {
                            write_deferred(writer, progress);
                            continue;
                        }
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(()),
                    }
                } else {
                    receiver.recv().map_err(|_| ())
                };
                match received {
                    Ok(work) => work,
                    Err(()) => return,
                }
            }
        };
        // Let a few milliseconds' worth of events gather: one commit of
        // many events costs far less per event (pages written, syscalls,
        // wake-ups) than many small ones, and nothing on the data path
        // waits for the index.
        if let Some(pause) = MIN_INDEX_INTERVAL.checked_sub(last_commit.elapsed()) {
            std::thread::sleep(pause);
        }
        last_commit = Instant::now();
        match first {
            IndexWork::Retire { journal, path } => {
                if let Err(error) = store.journal_barrier(&journal) {
                    // Keep the journal: the next start copies it again from
                    // its recorded progress.
                    tracing::warn!(%error, "cannot make a copied journal's events durable; keeping it");
                    continue;
                }
                if let Err(error) = std::fs::remove_file(&path) {
                    tracing::warn!(%error, path = %path.display(), "cannot delete a copied journal");
                }
                if let Err(error) = store.forget_journal(&journal) {
                    tracing::warn!(%error, "cannot forget a copied journal");
                }
            }
            IndexWork::Events {
                journal,
                mut through,
                mut events,
            } => {
                // Fold in everything else already waiting for the same journal.
                while events.len() < MAX_EVENTS_PER_INDEX_COMMIT {
                    match receiver.try_recv() {
                        Ok(IndexWork::Events {
                            journal: next_journal,
                            through: next_through,
                            events: mut more,
                        }) if next_journal == journal => {
                            events.append(&mut more);
                            through = next_through;
                        }
                        Ok(other) => {
                            backlog = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                index_with_retry(store, &journal, through, &events, progress);
            }
        }
    }
}

/// Copies one batch, retrying until it succeeds: the journal holds the
/// events meanwhile, and new commands are refused while this fails.
fn index_with_retry(
    store: &Store,
    journal: &str,
    through: u64,
    events: &[(i64, NewEvent)],
    progress: &Progress,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        match store.append_journaled(events, journal, through) {
            Ok(_) => {
                if let Ok(mut counters) = progress.counters.lock() {
                    counters.indexed += events.len() as u64;
                    counters.index_error = None;
                    counters.stalled_since =
                        (counters.indexed < counters.journaled).then(Instant::now);
                }
                progress.changed.notify_all();
                return;
            }
            Err(error) => {
                tracing::error!(%error, events = events.len(), "audit index write failed; retrying");
                if let Ok(mut counters) = progress.counters.lock() {
                    counters.index_error = Some(error.to_string());
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: usize) -> NewEvent {
        NewEvent {
            kind: "command".into(),
            session_id: Some("s-1".into()),
            identity: Some("agent-7".into()),
            data: json!({"n": n, "statement": "select 1"}).into(),
        }
    }

    fn journals(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Both write paths: journals rotate, copied journals are deleted only
    /// once their events are in the chained table, and every event lands
    /// there exactly once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journals_rotate_and_every_event_is_indexed_once() {
        for sync in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let journal_dir = dir.path().join("journal");
            let recorder = Recorder::start(Arc::clone(&store), &journal_dir, sync).unwrap();
            let first = journals(&journal_dir);
            for n in 0..600 {
                if n % 3 == 0 {
                    recorder.record_later(vec![event(n)]).await;
                } else {
                    recorder.record(vec![event(n)]).await.unwrap();
                }
            }
            assert!(recorder.flush(Duration::from_secs(10)));
            let events = store.events_after(0, 10_000).unwrap();
            let numbers: Vec<u64> = events
                .iter()
                .map(|event| event.data["n"].as_u64().unwrap())
                .collect();
            assert_eq!(numbers, (0..600).collect::<Vec<u64>>(), "sync {sync}");
            assert!(store.verify_chain().unwrap().ok);
            // 600 lines of ~150 bytes rotate a 16 KiB journal several times;
            // the retired ones are deleted once copied.
            let mut left = journals(&journal_dir);
            for _ in 0..50 {
                if left.len() == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                left = journals(&journal_dir);
            }
            assert_eq!(left.len(), 1, "sync {sync}: {left:?}");
            assert_ne!(left, first, "sync {sync}: the journal never rotated");
        }
    }

    /// A recorder over a store that cannot be written refuses commands
    /// within the stall limit, and admits them again once it can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_index_refuses_commands_until_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let recorder =
            Recorder::start(Arc::clone(&store), &dir.path().join("journal"), false).unwrap();
        recorder.record(vec![event(0)]).await.unwrap();
        let locker = rusqlite::Connection::open(dir.path().join("airlock.db")).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let started = Instant::now();
        let mut admitted = 1;
        loop {
            match recorder.record(vec![event(admitted)]).await {
                Ok(()) => admitted += 1,
                Err(error) => {
                    assert!(error.to_string().contains("event index"), "{error}");
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never refused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        locker.execute_batch("ROLLBACK").unwrap();
        let mut recovered = false;
        for _ in 0..200 {
            if recorder.record(vec![event(admitted)]).await.is_ok() {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(recovered);
        assert!(recorder.flush(Duration::from_secs(10)));
        // Everything admitted is recorded; the refused events are not.
        let events = store.events_after(0, 10_000).unwrap();
        assert_eq!(events.len(), admitted + 1);
    }
}
