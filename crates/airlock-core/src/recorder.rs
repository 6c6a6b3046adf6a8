//! The recorder: durable, batched writes of audit events (group commit).
//!
//! Events are appended to this process's write-ahead journal before the
//! command they describe goes upstream: sessions append themselves (one
//! `write` to the page cache under a mutex, no thread hop). Once written,
//! a record survives a crash or SIGKILL of the gateway. When a command must
//! also wait until the journal is synced past its events (under
//! `sync: full` every command; under `sync: writes`, the default, every
//! command with an effect: see [`Effect`]), the first session to need a
//! sync performs it (the leader, one `fdatasync`), every session whose
//! events were written meanwhile waits for that sync or the next, so many
//! concurrent sessions share one durable write (group commit; PostgreSQL's
//! WAL flush works the same way). Under `sync: writes` a timed-sync thread
//! makes whatever was written without a sync (reads, results) durable
//! within [`READ_DURABLE_WITHIN`], even when no write comes to carry it.
//! Command results, which nothing waits on, ride along with the next write
//! instead of costing one of their own. [`Recorder::record`] (effects) and
//! [`Recorder::record_as`] return once the events are as durable as
//! configured: the relay awaits it before a command goes upstream (audit
//! before forward) and refuses the command when it fails (fail closed).
//! [`Recorder::record_later`] takes results.
//!
//! An index thread copies journaled events into the store's hash-chained
//! event table in large transactions, which is what the audit commands
//! read; [`Recorder::flush`] waits until it has caught up. When the index
//! cannot keep up or cannot be written for [`MAX_INDEX_STALL`], new commands
//! are refused, as if the journal itself had failed: nothing runs unseen for
//! long. See `airlock_store::journal` for the format and crash recovery.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use airlock_store::journal::{self, JournalFile};
use airlock_store::prelude::*;
use airlock_store::{now_micros, NewEvent};

/// Most events copied into the event table in one transaction.
const MAX_EVENTS_PER_INDEX_COMMIT: usize = 20_000;
/// Deferred results past which the next one writes them at once.
const MAX_DEFERRED: usize = 1024;
/// Least time between two index commits.
const MIN_INDEX_INTERVAL: Duration = Duration::from_millis(5);
/// A journal past this size is replaced by a new one (and deleted once
/// copied in full). Under `sync: full` and `writes` journals are zero-filled to this size
/// when created, so each `fdatasync` flushes data only (see
/// `JournalFile::create`).
const JOURNAL_ROTATE_BYTES: u64 = if cfg!(test) {
    16 * 1024
} else {
    16 * 1024 * 1024
};
/// Under `sync: writes`, how long a record written without a sync (a
/// read's, a result) may wait before the timed-sync thread starts a sync
/// for it: with a disk that syncs within the rest of
/// [`READ_DURABLE_WITHIN`], it is durable within that.
const READ_SYNC_DELAY: Duration = Duration::from_millis(4);
/// Under `sync: writes`, the longest a read's record stays written but not
/// yet on disk (the sync starting [`READ_SYNC_DELAY`] after it at the
/// latest, and taking the rest on a healthy disk).
pub const READ_DURABLE_WITHIN: Duration = Duration::from_millis(10);
/// How often an idle timed-sync thread looks whether its recorder is gone.
const TIMED_SYNC_IDLE: Duration = Duration::from_millis(200);

/// When a command's record counts as written before the command runs
/// (`recording.sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every command waits until its record is on disk (`fdatasync`).
    Full,
    /// A command with an effect waits until its record is on disk; a read
    /// waits until it is written to the journal, and is on disk within
    /// [`READ_DURABLE_WITHIN`].
    Writes,
    /// Every command waits until its record is written to the journal;
    /// nothing waits for the disk.
    Normal,
}

impl SyncMode {
    /// The mode a `recording.sync` value names, if it names one.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "full" => Some(Self::Full),
            "writes" => Some(Self::Writes),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }

    /// The mode's `recording.sync` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Writes => "writes",
            Self::Normal => "normal",
        }
    }

    /// True when some records wait for the disk (everything but `normal`).
    pub fn syncs(self) -> bool {
        self != Self::Normal
    }
}

/// What the events of a record are about, which decides under
/// `sync: writes` whether the command waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Commands that only read (access `read`, classification complete):
    /// if the gateway host lost power before the next sync, the record of
    /// a read that ran could be lost, never that of a change.
    ReadOnly,
    /// Anything else: a write, an admin command, a command the classifier
    /// is not sure of, or an event that is not a command (session start).
    Effectful,
}

/// Events the index may trail the journal by before writers wait for it
/// (backpressure, so memory stays bounded under overload).
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

/// Says so when the disk had no room to zero-fill a journal under
/// `sync: full`: it still works, each sync costs more.
fn warn_if_not_preallocated(journal: &JournalFile, sync: bool) {
    if preallocation(sync) > journal.preallocated() {
        tracing::warn!(
            journal = %journal.path().display(),
            "no room on the disk to zero-fill the audit journal ahead; journal syncs will be slower"
        );
    }
}

/// Why events could not be recorded (and so why commands are refused).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The journals of an earlier run could not be copied into the store.
    #[error("the audit log cannot be written: journal recovery failed: {0}")]
    Recovery(String),
    /// The journal file could not be created.
    #[error("the audit log cannot be written: cannot create a journal in {dir}: {reason}")]
    Create { dir: String, reason: String },
    /// A recorder thread could not be started.
    #[error("the audit log cannot be written: cannot start the {thread} thread: {reason}")]
    Thread {
        thread: &'static str,
        reason: String,
    },
    /// A panic elsewhere left the journal's state unknown.
    #[error("the audit log cannot be written: the {0} lock is poisoned")]
    Poisoned(&'static str),
    /// Writing or syncing the journal failed.
    #[error("the audit log cannot be written: {0}")]
    Journal(String),
    /// The recorder refuses new commands (the index failing or stalled, a
    /// sync failed earlier).
    #[error("the audit log cannot be written: {0}")]
    Refused(String),
    /// The gateway is shutting down.
    #[error(
        "the audit log cannot be written: the gateway is shutting down: nothing more is recorded"
    )]
    Closed,
}

/// What the journal writer hands the index thread.
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

/// Progress shared by the writers, the index thread and the readers.
#[derive(Default)]
struct Counters {
    journaled: u64,
    indexed: u64,
    /// Since when the index has been behind without making progress.
    stalled_since: Option<Instant>,
    /// The index's last failure, until it succeeds again.
    index_error: Option<String>,
    /// A journal sync failed: what was written may not be on disk, and the
    /// kernel may not say so again (a failed `fsync` can drop the dirty
    /// pages), so commands are refused until the gateway restarts and
    /// recovers from what the journal really holds. PostgreSQL stops for
    /// the same reason.
    sync_error: Option<String>,
}

#[derive(Default)]
struct Progress {
    counters: Mutex<Counters>,
    changed: Condvar,
    /// Results nothing waits on, with the time they were recorded: they
    /// ride along with the next journal write, or the index thread writes
    /// them within [`MIN_INDEX_INTERVAL`]. Their own lock, held only to
    /// push or take, so handing one over never waits behind a write.
    deferred: Mutex<Vec<(i64, NewEvent)>>,
    /// `deferred` is not empty.
    has_deferred: AtomicBool,
    /// Records refused because recording is unavailable.
    refusals: AtomicU64,
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
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
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
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(error) = &counters.sync_error {
            return Some(error.clone());
        }
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

/// Group commit under `sync: full` and `writes`: how far the journal is
/// known to be on disk, and whether a session is syncing it now.
#[derive(Default)]
struct Durability {
    state: Mutex<SyncState>,
    /// Wakes the sessions waiting for a sync when one ends.
    synced: Notify,
    /// Wakes the timed-sync thread (`sync: writes`): something was written
    /// without a sync, or a sync ended.
    wake: Condvar,
    /// A timed-sync thread waits on `wake` (`sync: writes`).
    timed: bool,
    /// Syncs led by sessions (group commits).
    syncs: AtomicU64,
    /// Syncs the timed-sync thread led. Two counters, never one total and
    /// a part of it: a reader of both never sees one sync counted twice
    /// or not at all in a difference.
    timed_syncs: AtomicU64,
    /// How long each led sync took (`airlock_journal_fsync_duration_seconds`).
    fsync: airlock_metrics::Histogram,
    /// Makes the next led sync fail, as a failing disk would.
    #[cfg(test)]
    fail_next_sync: AtomicBool,
    /// Makes every led sync take this many more milliseconds, as a slow
    /// disk would.
    #[cfg(test)]
    slow_sync_ms: AtomicU64,
}

/// Who led a journal sync.
#[derive(Debug, Clone, Copy)]
enum Leader {
    /// A session whose command waited for it.
    Session,
    /// The timed-sync thread (`sync: writes`).
    Timed,
}

impl Durability {
    /// Notes how a sync of the journal through byte `end`, started at
    /// `started` (before `end` was read), went: on disk that far, or (when
    /// it failed) every command refused from now on. `leader`: the sync was
    /// led by a session or the timed-sync thread, which others wait for.
    fn settle(
        &self,
        outcome: Result<u64, String>,
        started: Instant,
        progress: &Progress,
        leader: Option<Leader>,
    ) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &outcome {
                Ok(end) => {
                    state.durable = state.durable.max(*end);
                    // What the sync did not cover was written after it
                    // started.
                    state.unsynced_since = (state.durable < state.written).then(|| {
                        state
                            .unsynced_since
                            .map_or(started, |since| since.max(started))
                    });
                }
                Err(error) => {
                    fail_sync(progress, error);
                    state.unsynced_since = None;
                }
            }
            if leader.is_some() {
                state.syncing = false;
            }
        }
        if let Some(leader) = leader {
            self.fsync.observe(started.elapsed());
            match leader {
                Leader::Session => self.syncs.fetch_add(1, Ordering::Relaxed),
                Leader::Timed => self.timed_syncs.fetch_add(1, Ordering::Relaxed),
            };
            self.synced.notify_waiters();
            if self.timed {
                self.wake.notify_one();
            }
        }
    }

    /// Notes that the journal was written through byte `end`: the
    /// timed-sync thread makes it durable if no command's sync does first.
    fn written(&self, end: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.written = state.written.max(end);
        if state.durable < end && state.unsynced_since.is_none() {
            state.unsynced_since = Some(Instant::now());
            if self.timed {
                self.wake.notify_one();
            }
        }
    }
}

#[derive(Default)]
struct SyncState {
    /// Journal bytes (counted over every journal this process wrote) known
    /// to be on disk.
    durable: u64,
    /// A session is syncing (the leader); others wait for it to finish.
    syncing: bool,
    /// Journal bytes written (counted as `durable` is).
    written: u64,
    /// Since when bytes written are not known to be on disk: the oldest
    /// such write happened at this time or later.
    unsynced_since: Option<Instant>,
}

/// What a session waiting for the journal to be on disk does next.
enum Next {
    /// A sync is under way: wait for it to end.
    Wait,
    /// Give other ready sessions one turn to write first.
    Yield,
    /// Sync the journal (this session leads).
    Lead,
}

/// Handle to the recorder; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    writer: Arc<Mutex<JournalWriter>>,
    progress: Arc<Progress>,
    /// `Some` under `sync: full` and `writes`.
    durability: Option<Arc<Durability>>,
    mode: SyncMode,
}

impl Recorder {
    /// Replays journals left by a crashed process into `store`, then starts
    /// the index thread (and under `sync: writes` the timed-sync thread),
    /// journaling into `journal_dir`. `mode`: which commands wait until
    /// their events are on disk (`fdatasync`), not just written.
    pub fn start(
        store: Arc<dyn StoreBackend>,
        journal_dir: &Path,
        mode: SyncMode,
    ) -> Result<Self, RecordError> {
        let sync = mode.syncs();
        let recovered = journal::recover_into(journal_dir, &*store)
            .map_err(|error| RecordError::Recovery(error.to_string()))?;
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
            RecordError::Create {
                dir: journal_dir.display().to_string(),
                reason: error.to_string(),
            }
        })?;
        warn_if_not_preallocated(&journal, sync);
        let (index_sender, index_receiver) = std_mpsc::channel();
        let progress = Arc::new(Progress::default());
        let durability = sync.then(|| {
            Arc::new(Durability {
                timed: mode == SyncMode::Writes,
                ..Durability::default()
            })
        });
        let writer = Arc::new(Mutex::new(JournalWriter {
            file: journal,
            earlier_journals: 0,
            dir: journal_dir.to_path_buf(),
            durability: durability.clone(),
            mode,
            index: index_sender,
            buffer: Vec::new(),
            closed: false,
        }));
        let index_progress = Arc::clone(&progress);
        let index_writer = Arc::clone(&writer);
        std::thread::Builder::new()
            .name("airlock-index".into())
            .spawn(move || index_loop(&*store, &index_receiver, &index_writer, &index_progress))
            .map_err(|error| RecordError::Thread {
                thread: "index",
                reason: error.to_string(),
            })?;
        if let Some(durability) = durability.as_ref().filter(|durability| durability.timed) {
            let writer = Arc::downgrade(&writer);
            let durability = Arc::clone(durability);
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name("airlock-journal-sync".into())
                .spawn(move || timed_sync_loop(&writer, &durability, &progress))
                .map_err(|error| RecordError::Thread {
                    thread: "journal sync",
                    reason: error.to_string(),
                })?;
        }
        Ok(Self {
            writer,
            progress,
            durability,
            mode,
        })
    }

    /// Records `events` of a command with an effect (or of no command):
    /// returns once they are journaled and, unless `sync: normal`, on disk.
    pub async fn record(&self, events: Vec<NewEvent>) -> Result<(), RecordError> {
        self.record_as(events, Effect::Effectful).await
    }

    /// Records `events` about commands with `effect`; returns once they are
    /// as durable as the mode asks before those commands run: journaled,
    /// and on disk under `sync: full`, or under `sync: writes` when they
    /// are [`Effect::Effectful`].
    pub async fn record_as(
        &self,
        events: Vec<NewEvent>,
        effect: Effect,
    ) -> Result<(), RecordError> {
        let end = self
            .write_here(events, true)
            .inspect_err(|_| self.note_refusal())?;
        let waits_for_disk = match self.mode {
            SyncMode::Full => true,
            SyncMode::Writes => effect == Effect::Effectful,
            SyncMode::Normal => false,
        };
        match &self.durability {
            Some(durability) if waits_for_disk => self
                .wait_until_durable(durability, end)
                .await
                .inspect_err(|_| self.note_refusal()),
            _ => Ok(()),
        }
    }

    fn note_refusal(&self) {
        self.progress.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Records refused so far because recording is unavailable.
    pub fn refusals(&self) -> u64 {
        self.progress.refusals.load(Ordering::Relaxed)
    }

    /// Events journaled so far by this process.
    pub fn journaled(&self) -> u64 {
        self.progress
            .counters
            .lock()
            .map_or(0, |counters| counters.journaled)
    }

    /// The journal sync latency histogram (empty under `sync: normal`).
    pub fn fsync_histogram(&self) -> airlock_metrics::Histogram {
        self.durability
            .as_ref()
            .map(|durability| durability.fsync.clone())
            .unwrap_or_default()
    }

    /// The `recording.sync` mode this recorder runs under.
    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    /// Waits until the journal is on disk through byte `end`: syncs it
    /// when no session is syncing, or waits for the sync under way (which
    /// may not cover `end`: then the next round does). One `fdatasync`
    /// serves every write made before it started.
    async fn wait_until_durable(
        &self,
        durability: &Durability,
        end: u64,
    ) -> Result<(), RecordError> {
        let mut yielded = false;
        loop {
            let notified = durability.synced.notified();
            tokio::pin!(notified);
            // Registered before the state is read, so a sync ending in
            // between still wakes this session.
            notified.as_mut().enable();
            let next = {
                let mut state = durability
                    .state
                    .lock()
                    .map_err(|_| RecordError::Poisoned("journal sync"))?;
                if let Some(error) = self.sync_error() {
                    return Err(RecordError::Journal(error));
                }
                if state.durable >= end {
                    return Ok(());
                }
                if state.syncing {
                    Next::Wait
                } else if !yielded {
                    // Let sessions that are ready to run write first, so
                    // this sync carries them too. Costs nothing when no
                    // other session is ready (one client).
                    Next::Yield
                } else {
                    state.syncing = true;
                    Next::Lead
                }
            };
            match next {
                Next::Wait => notified.await,
                Next::Yield => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                // No await between claiming the sync and releasing it, so it
                // cannot be abandoned half-way. The worker's other sessions
                // move to another thread meanwhile (`block_in_place`), so
                // one sync never stops the runtime, even with one worker.
                Next::Lead => {
                    let lead =
                        || lead_sync(&self.writer, durability, &self.progress, Leader::Session);
                    if multi_threaded() {
                        tokio::task::block_in_place(lead);
                    } else {
                        lead();
                    }
                }
            }
        }
    }

    /// Journal syncs led by commands or the timed-sync thread so far
    /// (`sync: full` or `writes`; 0 under `normal`): with many concurrent
    /// sessions, far fewer than commands.
    pub fn journal_syncs(&self) -> u64 {
        self.led_journal_syncs() + self.timed_journal_syncs()
    }

    /// Of [`Recorder::journal_syncs`], those led by commands that waited
    /// for them.
    pub fn led_journal_syncs(&self) -> u64 {
        self.durability
            .as_ref()
            .map_or(0, |durability| durability.syncs.load(Ordering::Relaxed))
    }

    /// Of [`Recorder::journal_syncs`], those the timed-sync thread led
    /// (`sync: writes`): the rest were led by commands that waited for them.
    pub fn timed_journal_syncs(&self) -> u64 {
        self.durability.as_ref().map_or(0, |durability| {
            durability.timed_syncs.load(Ordering::Relaxed)
        })
    }

    fn sync_error(&self) -> Option<String> {
        self.progress
            .counters
            .lock()
            .ok()
            .and_then(|counters| counters.sync_error.clone())
    }

    /// Records `events` that nothing waits on (command results): they ride
    /// along with the next journal write, so a result costs no write (and
    /// no `fdatasync`) of its own.
    pub async fn record_later(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        if self.defer(events) {
            // Enough waiting: write them now.
            write_deferred(&self.writer, &self.progress, false);
        }
    }

    /// Keeps results for the next journal write, so a command and the
    /// result before it share one write. True when enough are waiting that
    /// they should be written now.
    fn defer(&self, events: Vec<NewEvent>) -> bool {
        let ts = now_micros();
        let Ok(mut deferred) = self.progress.deferred.lock() else {
            tracing::error!("the deferred results' lock is poisoned; events lost");
            return false;
        };
        deferred.extend(events.into_iter().map(|event| (ts, event)));
        self.progress.has_deferred.store(true, Ordering::Release);
        deferred.len() >= MAX_DEFERRED
    }

    /// Writes the journal from the calling task: a write to the page cache,
    /// shorter than two thread wake-ups. Returns where the journal ends
    /// after it.
    fn write_here(&self, events: Vec<NewEvent>, waits: bool) -> Result<u64, RecordError> {
        if self.progress.lagging() {
            // Overload: let the index catch up (bounded) before adding more,
            // telling a multi-threaded runtime that this task blocks.
            if multi_threaded() {
                tokio::task::block_in_place(|| self.progress.wait_for_room());
            } else {
                self.progress.wait_for_room();
            }
        }
        match self.writer.lock() {
            Ok(mut writer) => writer.write(events, waits, &self.progress),
            Err(_) => Err(RecordError::Poisoned("journal")),
        }
    }
    /// Why new commands are refused now (the event index failing or
    /// stalled, a journal sync failed), if they are.
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

    /// Ends recording at a clean shutdown: waits (up to `timeout`) until
    /// every journaled event is in the event table, makes that durable, and
    /// deletes the journal, so the next start has nothing to recover. Later
    /// writes are refused. Returns false (the journal is kept, and the next
    /// start recovers it) when the index did not catch up in time.
    pub fn close(&self, store: &dyn StoreBackend, timeout: Duration) -> bool {
        if !self.flush(timeout) {
            return false;
        }
        // A poisoned journal is left for the next start to recover.
        let Ok(mut writer) = self.writer.lock() else {
            return false;
        };
        // Results that came in since the flush: copied by the next start.
        if self.progress.has_deferred.load(Ordering::Acquire) {
            return false;
        }
        writer.closed = true;
        let name = writer.file.name().to_string();
        let path = writer.file.path().to_path_buf();
        if let Err(error) = store.journal_barrier(&name) {
            tracing::warn!(%error, "cannot make the journal's events durable at shutdown; keeping it");
            return false;
        }
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(%error, path = %path.display(), "cannot delete the journal at shutdown");
            return false;
        }
        if let Err(error) = store.forget_journal(&name) {
            tracing::warn!(%error, "cannot forget the journal at shutdown");
        }
        true
    }

    /// Waits (blocking, up to `timeout`) until every event journaled so far
    /// is in the event table, so a read sees everything recorded before it.
    /// Returns false on time-out.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        write_deferred(&self.writer, &self.progress, false);
        let mut counters = self
            .progress
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
    /// Bytes written to the journals before `file`.
    earlier_journals: u64,
    dir: PathBuf,
    durability: Option<Arc<Durability>>,
    mode: SyncMode,
    index: std_mpsc::Sender<IndexWork>,
    buffer: Vec<u8>,
    /// Set by [`Recorder::close`]: the journal is gone, nothing more is
    /// written.
    closed: bool,
}

impl JournalWriter {
    /// Where the journal ends, counted over every journal written.
    fn end(&self) -> u64 {
        self.earlier_journals + self.file.len()
    }

    /// Journals `events` and the deferred results with one write; returns
    /// where the journal ends after it. Events a command waits on
    /// (`waits`) are refused while the index is failing or stalled: they
    /// are not journaled (the command never runs). Results of commands that
    /// already ran still are.
    fn write(
        &mut self,
        new: Vec<NewEvent>,
        waits: bool,
        progress: &Progress,
    ) -> Result<u64, RecordError> {
        if self.closed {
            return Err(RecordError::Closed);
        }
        let refusal = if waits { progress.refusal() } else { None };
        let ts = now_micros();
        self.buffer.clear();
        let mut events = match progress.deferred.lock() {
            Ok(mut deferred) => {
                progress.has_deferred.store(false, Ordering::Release);
                std::mem::take(&mut *deferred)
            }
            Err(_) => Vec::new(),
        };
        let results = events.len();
        if refusal.is_none() {
            events.extend(new.into_iter().map(|event| (ts, event)));
        }
        for (at, event) in &events {
            journal::encode(&mut self.buffer, *at, event);
        }
        let written = if events.is_empty() {
            Ok(self.file.len())
        } else {
            self.file.append(&self.buffer)
        };
        match &written {
            Err(error) => {
                tracing::error!(%error, events = events.len(), "audit journal write failed");
                // The results belong to commands that ran: keep them for the
                // next write. The new events are dropped: their commands
                // are refused and never run.
                events.truncate(results);
                {
                    let mut deferred = progress
                        .deferred
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let later = std::mem::replace(&mut *deferred, events);
                    deferred.extend(later);
                    progress
                        .has_deferred
                        .store(!deferred.is_empty(), Ordering::Release);
                }
            }
            Ok(through) if !events.is_empty() => {
                if let Some(durability) = &self.durability {
                    durability.written(self.earlier_journals + *through);
                }
                {
                    let mut counters = progress
                        .counters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
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
        let end = self.end();
        if self.file.len() >= JOURNAL_ROTATE_BYTES {
            self.rotate(progress);
        }
        match (written, refusal) {
            (Err(error), _) => Err(RecordError::Journal(format!(
                "the journal {} cannot be written: {error}",
                self.file.path().display()
            ))),
            (Ok(_), Some(refusal)) => {
                tracing::error!(%refusal, "refusing commands: the audit index is not keeping up");
                Err(RecordError::Refused(refusal))
            }
            (Ok(_), None) => Ok(end),
        }
    }

    /// Starts a new journal; the index deletes the old one once copied.
    /// Under `sync: full` and `writes` the old one is synced first, so "on
    /// disk through byte N" only ever needs the current journal synced.
    fn rotate(&mut self, progress: &Progress) {
        let sync = self.durability.is_some();
        match JournalFile::create(&self.dir, preallocation(sync)) {
            Ok(next) => {
                warn_if_not_preallocated(&next, sync);
                if let Some(durability) = &self.durability {
                    let started = Instant::now();
                    let end = self.end();
                    let outcome = self.file.sync_handle().sync_data().map(|()| end);
                    durability.settle(
                        outcome.map_err(|error| error.to_string()),
                        started,
                        progress,
                        None,
                    );
                }
                self.earlier_journals += self.file.len();
                let done = std::mem::replace(&mut self.file, next);
                let _ = self.index.send(IndexWork::Retire {
                    journal: done.name().to_string(),
                    path: done.path().to_path_buf(),
                });
                // `done` drops here: its lock goes once no sync holds it,
                // and the index deletes it.
            }
            Err(error) => {
                tracing::error!(%error, "cannot start a new journal; the current one keeps growing")
            }
        }
    }
}

/// Whether the caller runs on a multi-threaded runtime, where
/// `block_in_place` hands the worker's other tasks to another thread.
fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Refuses every command from now on: see [`Counters::sync_error`].
fn fail_sync(progress: &Progress, error: &str) {
    tracing::error!(%error, "the audit journal cannot be synced to disk; refusing every command until restart");
    {
        let mut counters = progress
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counters.sync_error.get_or_insert_with(|| {
            format!("the journal cannot be synced to disk ({error}); restart the gateway once the disk is healthy")
        });
    }
}

/// The leader's part of group commit: one `fdatasync` covering everything
/// written so far. The caller has claimed the sync (`syncing`).
fn lead_sync(
    writer: &Mutex<JournalWriter>,
    durability: &Durability,
    progress: &Progress,
    leader: Leader,
) {
    let started = Instant::now();
    let outcome = match writer.lock() {
        Ok(writer) => Ok((writer.file.sync_handle(), writer.end())),
        Err(_) => Err("the journal lock is poisoned".to_string()),
    }
    .and_then(|(file, end)| {
        file.sync_data()
            .map(|()| end)
            .map_err(|error| error.to_string())
    });
    #[cfg(test)]
    std::thread::sleep(Duration::from_millis(
        durability.slow_sync_ms.load(Ordering::Acquire),
    ));
    #[cfg(test)]
    let outcome = if durability.fail_next_sync.swap(false, Ordering::AcqRel) {
        Err("Input/output error (os error 5)".to_string())
    } else {
        outcome
    };
    durability.settle(outcome, started, progress, Some(leader));
}

/// The timed-sync thread (`sync: writes`): whatever was written without a
/// sync (reads' records, results) is synced [`READ_SYNC_DELAY`] after the
/// oldest such write at the latest, so it is on disk within
/// [`READ_DURABLE_WITHIN`] even when no command with an effect comes to
/// sync it. It leads its syncs as a session would: sessions that need one
/// meanwhile wait for it. Ends once the recorder is gone.
fn timed_sync_loop(
    writer: &std::sync::Weak<Mutex<JournalWriter>>,
    durability: &Durability,
    progress: &Progress,
) {
    let mut state = durability
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    loop {
        let wait = match state.unsynced_since {
            None => TIMED_SYNC_IDLE,
            Some(since) => {
                let due = since + READ_SYNC_DELAY;
                let now = Instant::now();
                if now < due {
                    due - now
                } else if state.syncing {
                    // A session's sync is under way: it ends with a wake-up.
                    TIMED_SYNC_IDLE
                } else {
                    state.syncing = true;
                    drop(state);
                    match writer.upgrade() {
                        Some(writer) => lead_sync(&writer, durability, progress, Leader::Timed),
                        None => return,
                    }
                    state = match durability.state.lock() {
                        Ok(state) => state,
                        Err(_) => return,
                    };
                    continue;
                }
            }
        };
        if writer.strong_count() == 0 {
            return;
        }
        state = match durability.wake.wait_timeout(state, wait) {
            Ok((state, _)) => state,
            Err(_) => return,
        };
    }
}

/// Journals deferred results now; with `sync` (the index thread's job
/// when no command came to carry them), under `sync: full` also syncs them
/// (under `writes` the timed-sync thread does).
fn write_deferred(writer: &Mutex<JournalWriter>, progress: &Progress, sync: bool) {
    if !progress.has_deferred.load(Ordering::Acquire) {
        return;
    }
    let started = Instant::now();
    let target = match writer.lock() {
        Ok(mut writer) => {
            if let Err(error) = writer.write(Vec::new(), false, progress) {
                tracing::error!(%error, "events lost");
                return;
            }
            let durability = writer
                .durability
                .clone()
                .filter(|_| sync && writer.mode == SyncMode::Full);
            durability.map(|durability| (durability, writer.file.sync_handle(), writer.end()))
        }
        Err(_) => return,
    };
    if let Some((durability, file, end)) = target {
        let outcome = file.sync_data().map(|()| end);
        durability.settle(
            outcome.map_err(|error| error.to_string()),
            started,
            progress,
            None,
        );
    }
}

fn index_loop(
    store: &dyn StoreBackend,
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
                let received = if progress.has_deferred.load(Ordering::Acquire) {
                    match receiver.recv_timeout(MIN_INDEX_INTERVAL) {
                        Ok(work) => Ok(work),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {
                            write_deferred(writer, progress, true);
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
                // One row per command: results that came in this batch
                // with their command are folded into it.
                let journaled = events.len() as u64;
                let rows = airlock_store::fold_results(events);
                index_with_retry(store, &journal, through, &rows, journaled, progress);
            }
        }
    }
}

/// Copies one batch, retrying until it succeeds: the journal holds the
/// events meanwhile, and new commands are refused while this fails.
fn index_with_retry(
    store: &dyn StoreBackend,
    journal: &str,
    through: u64,
    events: &[(i64, NewEvent)],
    journaled: u64,
    progress: &Progress,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        match store.append_journaled(events, journal, through) {
            Ok(_) => {
                {
                    let mut counters = progress
                        .counters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    counters.indexed += journaled;
                    counters.index_error = None;
                    counters.stalled_since =
                        (counters.indexed < counters.journaled).then(Instant::now);
                }
                progress.changed.notify_all();
                return;
            }
            Err(error) => {
                tracing::error!(%error, events = events.len(), "audit index write failed; retrying");
                {
                    let mut counters = progress
                        .counters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
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
            kind: crate::events::EventKind::Command.into(),
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
        for sync in [SyncMode::Normal, SyncMode::Writes, SyncMode::Full] {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn StoreBackend> =
                Arc::new(airlock_store::Store::open(dir.path()).unwrap());
            let journal_dir = dir.path().join("journal");
            let recorder = Recorder::start(Arc::clone(&store), &journal_dir, sync).unwrap();
            let first = journals(&journal_dir);
            for n in 0..600 {
                if n % 3 == 0 {
                    recorder.record_later(vec![event(n)]).await;
                } else if n % 3 == 1 {
                    recorder
                        .record_as(vec![event(n)], Effect::ReadOnly)
                        .await
                        .unwrap();
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
            assert_eq!(numbers, (0..600).collect::<Vec<u64>>(), "sync {sync:?}");
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
            assert_eq!(left.len(), 1, "sync {sync:?}: {left:?}");
            assert_ne!(left, first, "sync {sync:?}: the journal never rotated");
        }
    }

    /// Under `sync: full`, concurrent commands share syncs (group commit),
    /// and every one of them is recorded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commands_share_journal_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal"),
            SyncMode::Full,
        )
        .unwrap();
        let commands = 256;
        let tasks: Vec<_> = (0..commands)
            .map(|n| {
                let recorder = recorder.clone();
                tokio::spawn(async move { recorder.record(vec![event(n)]).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let syncs = recorder.journal_syncs();
        assert!(syncs >= 1, "no sync under sync: full");
        assert!(
            syncs <= commands as u64 / 4,
            "{syncs} syncs for {commands} concurrent commands: no group commit"
        );
        assert!(recorder.flush(Duration::from_secs(10)));
        assert_eq!(store.events_after(0, 10_000).unwrap().len(), commands);
    }

    /// A failed journal sync refuses the commands waiting on it and every
    /// command after it (the kernel may have dropped what it could not
    /// write), and says so through `problem()` (`/readyz`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_refuses_commands_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal"),
            SyncMode::Full,
        )
        .unwrap();
        recorder.record(vec![event(0)]).await.unwrap();
        assert!(recorder.problem().is_none());
        recorder
            .durability
            .as_ref()
            .unwrap()
            .fail_next_sync
            .store(true, Ordering::Release);
        let error = recorder.record(vec![event(1)]).await.unwrap_err();
        assert!(error.to_string().contains("cannot be synced"), "{error}");
        let error = recorder.record(vec![event(2)]).await.unwrap_err();
        assert!(error.to_string().contains("cannot be synced"), "{error}");
        let problem = recorder.problem().unwrap();
        assert!(problem.contains("restart the gateway"), "{problem}");
        // Under `sync: normal` nothing is synced and nothing is counted.
        let normal =
            Recorder::start(store, &dir.path().join("journal-normal"), SyncMode::Normal).unwrap();
        normal.record(vec![event(3)]).await.unwrap();
        assert_eq!(normal.journal_syncs(), 0);
    }

    /// With one runtime worker, a session leading a slow journal sync does
    /// not stop the others: another session's task keeps running while the
    /// sync lasts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_sync_never_stops_the_only_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        // No timed-sync thread under `full`: the command leads the sync.
        let recorder = Recorder::start(store, &dir.path().join("journal"), SyncMode::Full).unwrap();
        recorder
            .durability
            .as_ref()
            .unwrap()
            .slow_sync_ms
            .store(800, Ordering::Release);
        let write = {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                recorder.record(vec![event(0)]).await.unwrap();
                started.elapsed()
            })
        };
        // Let the command claim and start its sync.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let other = tokio::spawn(async move {
            let started = Instant::now();
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            started.elapsed()
        });
        let other_took = other.await.unwrap();
        assert!(!write.is_finished(), "the sync was not slow");
        let write_took = write.await.unwrap();
        assert!(write_took >= Duration::from_millis(800), "{write_took:?}");
        assert!(
            other_took < Duration::from_millis(500),
            "another session waited for the sync: {other_took:?}"
        );
    }

    /// The journal bytes known to be on disk, and those written.
    fn synced_and_written(recorder: &Recorder) -> (u64, u64) {
        let durability = recorder.durability.as_ref().unwrap();
        let state = durability.state.lock().unwrap();
        (state.durable, recorder.writer.lock().unwrap().end())
    }

    /// Under `sync: writes` a command with an effect returns only once its
    /// record is on disk; a read returns once it is written, and the
    /// timed-sync thread puts it on disk soon after though no write comes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_sync_writes_only_effects_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal"),
            SyncMode::Writes,
        )
        .unwrap();
        for n in 0..20 {
            recorder.record(vec![event(n)]).await.unwrap();
            let (synced, written) = synced_and_written(&recorder);
            assert!(synced >= written, "a write returned before its sync");
        }
        // Let any timed sync still due run, so the count below is the
        // reads' own.
        tokio::time::sleep(READ_DURABLE_WITHIN * 5).await;
        let before = recorder.journal_syncs();
        let started = Instant::now();
        recorder
            .record_as(vec![event(20)], Effect::ReadOnly)
            .await
            .unwrap();
        let (synced, written) = synced_and_written(&recorder);
        assert!(written > synced, "the read waited for a sync");
        // Durable with no further command, by the timed sync alone.
        let mut durable_after = None;
        while started.elapsed() < Duration::from_secs(5) {
            let (synced, now_written) = synced_and_written(&recorder);
            assert_eq!(now_written, written);
            if synced >= written {
                durable_after = Some(started.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let durable_after = durable_after.expect("the read's record was never synced");
        eprintln!("a read's record was on disk {durable_after:?} after it was written");
        assert_eq!(recorder.journal_syncs(), before + 1);
        // The bound is the thread's (READ_SYNC_DELAY) plus one sync; a
        // loaded test machine may stretch it, a tenfold miss is a bug.
        assert!(
            durable_after < READ_DURABLE_WITHIN * 10,
            "a read's record took {durable_after:?} to reach the disk"
        );
        assert_eq!(recorder.timed_journal_syncs(), 1);
        // Reads never lead a sync: however slowly they come, every sync
        // meanwhile is a timed one.
        let before = recorder.journal_syncs() - recorder.timed_journal_syncs();
        for n in 21..221 {
            recorder
                .record_as(vec![event(n)], Effect::ReadOnly)
                .await
                .unwrap();
        }
        let led = recorder.journal_syncs() - recorder.timed_journal_syncs();
        assert_eq!(led, before, "a read led a sync");
        assert!(recorder.flush(Duration::from_secs(10)));
        assert_eq!(store.events_after(0, 1_000).unwrap().len(), 221);
        // Under `sync: full` a read waits for the disk too.
        let full = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal-full"),
            SyncMode::Full,
        )
        .unwrap();
        full.record_as(vec![event(300)], Effect::ReadOnly)
            .await
            .unwrap();
        let (synced, written) = synced_and_written(&full);
        assert!(synced >= written, "sync: full let a read through unsynced");
    }

    /// Under `sync: writes`, a command with an effect whose sync fails is
    /// refused (the relay never forwards it), and so is every command
    /// after it; a read already let through is in the journal, and the
    /// failure of its timed sync refuses every later command.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_sync_writes_a_failed_sync_refuses_the_write_and_everything_after() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal"),
            SyncMode::Writes,
        )
        .unwrap();
        recorder.record(vec![event(0)]).await.unwrap();
        let fail_next_sync = |recorder: &Recorder| {
            recorder
                .durability
                .as_ref()
                .unwrap()
                .fail_next_sync
                .store(true, Ordering::Release);
        };
        fail_next_sync(&recorder);
        let error = recorder.record(vec![event(1)]).await.unwrap_err();
        assert!(error.to_string().contains("cannot be synced"), "{error}");
        let error = recorder
            .record_as(vec![event(2)], Effect::ReadOnly)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("cannot be synced"), "{error}");
        // What it journaled reaches the event table before the next
        // recorder writes to the same store.
        assert!(recorder.flush(Duration::from_secs(10)));

        // A read first: let through once written, then its timed sync fails.
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal-2"),
            SyncMode::Writes,
        )
        .unwrap();
        recorder.record(vec![event(10)]).await.unwrap();
        fail_next_sync(&recorder);
        recorder
            .record_as(vec![event(11)], Effect::ReadOnly)
            .await
            .unwrap();
        let started = Instant::now();
        while recorder.problem().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the timed sync never ran"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(recorder.problem().unwrap().contains("restart the gateway"));
        let error = recorder.record(vec![event(12)]).await.unwrap_err();
        assert!(error.to_string().contains("cannot be synced"), "{error}");
        assert!(recorder.flush(Duration::from_secs(10)));
        let numbers: Vec<u64> = store
            .events_after(0, 100)
            .unwrap()
            .iter()
            .map(|event| event.data["n"].as_u64().unwrap())
            .collect();
        // 1 was written before its sync failed (its command was refused:
        // the relay records the refusal as its outcome); 2 and 12, refused
        // once the failure was known, were not written. 11 ran: recorded.
        assert_eq!(numbers, vec![0, 1, 10, 11]);
    }

    /// A recorder over a store that cannot be written refuses commands
    /// within the stall limit, and admits them again once it can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_index_refuses_commands_until_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StoreBackend> =
            Arc::new(airlock_store::Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(
            Arc::clone(&store),
            &dir.path().join("journal"),
            SyncMode::Normal,
        )
        .unwrap();
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
