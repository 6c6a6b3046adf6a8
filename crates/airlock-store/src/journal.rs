//! The write-ahead journal of audit events.
//!
//! Recording a command before it is forwarded must be durable and cheap:
//! the recorder appends each batch of events to a journal file of its own
//! with one `write` (plus an `fdatasync` under `sync: full`, shared by
//! every write made while the previous one ran) and only then lets the
//! commands through. A second thread copies journaled events into
//! the store's hash-chained event table in large transactions, noting in the
//! same transaction how far it copied ([`JournalIndex::append_journaled`]); the
//! journal is deleted once copied in full. After a crash, [`recover`] copies
//! whatever a dead process journaled but had not yet copied.
//!
//! Each process writes its own journal (`<micros>-<pid>.journal`) and holds
//! an exclusive lock on it while it lives, so recovery never touches the
//! journal of a process that is still running.
//!
//! Format: one JSON object per line, `{"ts":…,"kind":…,"session_id":…,
//! "identity":…,"data":{…}}`. A last line without its newline is a write
//! that a crash cut short; it was never acknowledged (no command ran on it)
//! and is ignored.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::JournalIndex;
use crate::events::{EventData, NewEvent};
use crate::{now_micros, Store, StoreError};

/// Journal file name suffix.
pub const JOURNAL_SUFFIX: &str = ".journal";
/// Events copied per transaction during recovery.
const RECOVERY_CHUNK: usize = 10_000;

/// A journal this process appends to.
#[derive(Debug)]
pub struct JournalFile {
    /// Shared with whoever syncs it ([`JournalFile::sync_handle`]); the
    /// lock lasts while any handle is open.
    file: Arc<File>,
    path: PathBuf,
    name: String,
    len: u64,
    /// Bytes zero-filled ahead at creation.
    preallocated: u64,
}

impl JournalFile {
    /// Creates a new journal in `dir` (created if missing) and locks it.
    ///
    /// With `preallocate > 0` the file is first filled with that many zero
    /// bytes and synced: appends then overwrite blocks that already exist,
    /// so an `fdatasync` flushes data only, not the file's size and extents
    /// (about half the cost per sync on ext4; PostgreSQL zero-fills its WAL
    /// segments for the same reason). Zeros after the last line read as an
    /// unfinished tail and are ignored.
    pub fn create(dir: &Path, preallocate: u64) -> std::io::Result<Self> {
        crate::private::create_private_dir(dir)?;
        let name = format!("{}-{}{JOURNAL_SUFFIX}", now_micros(), std::process::id());
        let path = dir.join(&name);
        let mut file = crate::private::private_options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.try_lock().map_err(|error| match error {
            TryLockError::Error(error) => error,
            TryLockError::WouldBlock => std::io::Error::other("the new journal is locked"),
        })?;
        let preallocated = match zero_fill(&mut file, preallocate) {
            Ok(()) => preallocate,
            // Not enough room for the zeros: a journal that grows as it is
            // written serves as well, only each sync costs more.
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                0
            }
            Err(error) => return Err(error),
        };
        Ok(Self {
            file: Arc::new(file),
            path,
            name,
            len: 0,
            preallocated,
        })
    }

    /// Bytes zero-filled ahead at creation (less than asked for when the
    /// disk had no room for them: then none).
    pub fn preallocated(&self) -> u64 {
        self.preallocated
    }

    /// The journal's file name (its key in the store's progress table).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A handle for `fdatasync` without holding the journal: a sync makes
    /// everything appended before it durable, so one sync serves every
    /// append made while the previous one ran (group commit).
    pub fn sync_handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Appends encoded records with one write at the end of what was
    /// written (to the page cache: [`JournalFile::sync_handle`] makes them
    /// durable). Returns the journal's new length.
    pub fn append(&mut self, records: &[u8]) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        if let Err(error) = self.file.write_all_at(records, self.len) {
            // A partial write leaves a torn line: blank it out (zeros read
            // as an unfinished tail), or cut it off past the preallocated
            // part, so the next append starts on a line of its own.
            let end = self.len + records.len() as u64;
            if end <= self.preallocated {
                let _ = self.file.write_all_at(&vec![0u8; records.len()], self.len);
            } else {
                let _ = self.file.set_len(self.len.max(self.preallocated));
            }
            return Err(error);
        }
        self.len += records.len() as u64;
        Ok(self.len)
    }
}

/// Writes `bytes` zeros at the start of `file` and syncs them.
fn zero_fill(file: &mut File, bytes: u64) -> std::io::Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < bytes {
        let chunk =
            usize::try_from((bytes - written).min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all(zeros.get(..chunk).unwrap_or_default())?;
        written += chunk as u64;
    }
    file.sync_all()
}

/// Appends one event, journaled at `ts_micros`, as a line to `out`.
pub fn encode(out: &mut Vec<u8>, ts_micros: i64, event: &NewEvent) {
    let text = |value: &str| serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
    let optional = |value: Option<&str>| value.map_or_else(|| "null".to_string(), text);
    out.extend_from_slice(b"{\"ts\":");
    out.extend_from_slice(ts_micros.to_string().as_bytes());
    out.extend_from_slice(b",\"kind\":");
    out.extend_from_slice(text(&event.kind).as_bytes());
    out.extend_from_slice(b",\"session_id\":");
    out.extend_from_slice(optional(event.session_id.as_deref()).as_bytes());
    out.extend_from_slice(b",\"identity\":");
    out.extend_from_slice(optional(event.identity.as_deref()).as_bytes());
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(event.data.as_str().as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Decoded journal lines: each event with its journal time and the byte
/// offset just past its line.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<(u64, i64, NewEvent)>,
    /// A line in the middle that does not parse (the journal was damaged):
    /// its offset and why. Decoding stops there.
    pub damaged: Option<(u64, String)>,
}

/// Decodes the complete lines of `bytes`, which start at journal offset
/// `start`.
pub fn decode(bytes: &[u8], start: u64) -> Decoded {
    let mut decoded = Decoded::default();
    let mut offset = 0usize;
    while let Some(newline) = bytes
        .get(offset..)
        .and_then(|rest| rest.iter().position(|byte| *byte == b'\n'))
    {
        let line = bytes.get(offset..offset + newline).unwrap_or_default();
        let end = start + (offset + newline + 1) as u64;
        match decode_line(line) {
            Ok((ts, event)) => decoded.events.push((end, ts, event)),
            Err(problem) => {
                decoded.damaged = Some((start + offset as u64, problem));
                return decoded;
            }
        }
        offset += newline + 1;
    }
    decoded
}

fn decode_line(line: &[u8]) -> Result<(i64, NewEvent), String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|error| format!("not JSON: {error}"))?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let ts = value
        .get("ts")
        .and_then(serde_json::Value::as_i64)
        .ok_or("no ts")?;
    let kind = text("kind").ok_or("no kind")?;
    let data = value.get("data").cloned().ok_or("no data")?;
    Ok((
        ts,
        NewEvent {
            kind,
            session_id: text("session_id"),
            identity: text("identity"),
            data: EventData::from(data),
        },
    ))
}

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journals of dead processes found and copied.
    pub journals: usize,
    /// Events copied from them into the event table.
    pub events: usize,
    /// Damaged journals, kept under a `.damaged` name for inspection.
    pub damaged: Vec<String>,
}

/// Copies what dead processes journaled but did not copy into the event
/// table, then deletes their journals. Journals locked by a live process
/// are left alone.
pub fn recover(dir: &Path, store: &Store) -> Result<RecoveryReport, StoreError> {
    recover_into(dir, store)
}

/// [`recover`] into any backend's event log.
pub fn recover_into(dir: &Path, store: &dyn JournalIndex) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(error) => return Err(io_error(dir, &error)),
    };
    let mut journals: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(JOURNAL_SUFFIX))
        })
        .collect();
    // Names start with their creation time: replay oldest first.
    journals.sort();
    for path in journals {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_string();
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // Another process starting at the same time recovered it first.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io_error(&path, &error)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue, // a live process owns it
            Err(TryLockError::Error(error)) => return Err(io_error(&path, &error)),
        }
        // Still the journal under that name? A concurrent recovery may have
        // copied and deleted it (and forgotten its progress) between our
        // open and our lock: replaying it again would store its events twice.
        if !same_file(&file, &path) {
            continue;
        }
        let through = store.journal_progress(&name)?;
        file.seek(SeekFrom::Start(through))
            .map_err(|error| io_error(&path, &error))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|error| io_error(&path, &error))?;
        let decoded = decode(&bytes, through);
        for chunk in decoded.events.chunks(RECOVERY_CHUNK) {
            let Some((end, _, _)) = chunk.last() else {
                continue;
            };
            let events: Vec<(i64, NewEvent)> = chunk
                .iter()
                .map(|(_, ts, event)| (*ts, event.clone()))
                .collect();
            report.events += events.len();
            store.append_journaled(&crate::fold_results(events), &name, *end)?;
        }
        report.journals += 1;
        if let Some((offset, problem)) = decoded.damaged {
            let kept = format!("{name}.damaged");
            keep_aside(&path, &dir.join(&kept));
            report
                .damaged
                .push(format!("{kept}: unreadable from byte {offset}: {problem}"));
        } else {
            std::fs::remove_file(&path).map_err(|error| io_error(&path, &error))?;
        }
        store.forget_journal(&name)?;
    }
    Ok(report)
}

/// Whether `file` is the file now at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

fn keep_aside(from: &Path, to: &Path) {
    // Best effort: a journal that cannot be renamed stays where it is and
    // is found again (and reported again) on the next start.
    let _ = std::fs::rename(from, to);
}

fn io_error(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Journal(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::EventStore;
    use serde_json::json;

    fn event(n: u64) -> NewEvent {
        NewEvent {
            kind: "command".into(),
            session_id: Some("s-1".into()),
            identity: Some("agent \"7\"\n".into()),
            data: json!({"n": n, "statement": "select '\u{e9}\n'"}).into(),
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_tail_is_ignored() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 11, &event(1));
        encode(&mut bytes, 12, &event(2));
        let whole = bytes.len() as u64;
        encode(&mut bytes, 13, &event(3));
        bytes.truncate(bytes.len() - 5); // a write cut short by a crash
        let decoded = decode(&bytes, 100);
        assert!(decoded.damaged.is_none());
        assert_eq!(decoded.events.len(), 2);
        assert_eq!(decoded.events[1].0, 100 + whole);
        assert_eq!(decoded.events[0].1, 11);
        assert_eq!(decoded.events[1].2.data, event(2).data);
        assert_eq!(
            decoded.events[1].2.identity.as_deref(),
            Some("agent \"7\"\n")
        );
        assert_eq!(decoded.events[1].2.session_id.as_deref(), Some("s-1"));
    }

    /// What keeps two processes starting at once from replaying one
    /// journal twice: a handle to a journal that was since deleted (or
    /// replaced under its name) is recognised as stale.
    #[test]
    fn a_journal_deleted_or_replaced_after_opening_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.journal");
        std::fs::write(&path, b"x").unwrap();
        let file = File::open(&path).unwrap();
        assert!(same_file(&file, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!same_file(&file, &path));
        std::fs::write(&path, b"y").unwrap();
        assert!(!same_file(&file, &path));
    }

    #[test]
    fn a_damaged_line_stops_decoding_where_it_is() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 1, &event(1));
        let at = bytes.len() as u64;
        bytes.extend_from_slice(b"{not json}\n");
        encode(&mut bytes, 2, &event(2));
        let decoded = decode(&bytes, 0);
        assert_eq!(decoded.events.len(), 1);
        assert_eq!(decoded.damaged.as_ref().map(|d| d.0), Some(at));
    }

    #[test]
    fn recovery_copies_exactly_what_was_not_copied_and_spares_live_journals() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let journals = dir.path().join("journal");

        // A dead process's journal, half copied before it died.
        // Zero-filled ahead, as under `sync: full`: the zeros after the last
        // line are an unfinished tail, not damage.
        let mut dead = JournalFile::create(&journals, 64 * 1024).unwrap();
        let mut first = Vec::new();
        encode(&mut first, 1, &event(1));
        encode(&mut first, 2, &event(2));
        let copied = dead.append(&first).unwrap();
        let mut rest = Vec::new();
        encode(&mut rest, 3, &event(3));
        dead.append(&rest).unwrap();
        store
            .append_journaled(&[(1, event(1)), (2, event(2))], dead.name(), copied)
            .unwrap();
        let dead_name = dead.name().to_string();
        let dead_path = dead.path().to_path_buf();
        drop(dead); // the process is gone: its lock with it

        // A live process's journal must not be touched.
        let mut live = JournalFile::create(&journals, 0).unwrap();
        let mut live_bytes = Vec::new();
        encode(&mut live_bytes, 9, &event(9));
        live.append(&live_bytes).unwrap();

        let report = recover(&journals, &store).unwrap();
        assert_eq!(report.journals, 1);
        assert_eq!(report.events, 1, "only the uncopied event");
        assert!(!dead_path.exists());
        assert!(live.path().exists());
        assert_eq!(store.journal_progress(&dead_name).unwrap(), 0);
        let events = store.events_after(0, 100).unwrap();
        let numbers: Vec<i64> = events
            .iter()
            .map(|e| e.data["n"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, vec![1, 2, 3]);
        assert_eq!(events[2].ts_micros, 3, "the journal time is kept");
        assert!(store.verify_chain().unwrap().ok);
        // Nothing left to do the second time.
        drop(live);
        let again = recover(&journals, &store).unwrap();
        assert_eq!(
            again.events, 1,
            "the live journal, once its process is gone"
        );
        assert_eq!(store.events_after(0, 100).unwrap().len(), 4);
    }
}
