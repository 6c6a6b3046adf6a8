//! The relay: bytes between an authenticated client and its upstream.
//!
//! Two halves run in one task. Client → upstream decodes whole frames and
//! asks the [`CommandGate`] about every `Query` and `Parse`; the commands of
//! one read are recorded in one durable write before any of them is
//! forwarded (audit before forward, fail closed). Upstream → client scans
//! frame headers and forwards whole buffers; the [`ResultTracker`] sees
//! every response frame that matters, masks the ones a command's mask plan
//! covers (the frame is replaced before it is forwarded) and collects each
//! command's outcome for the record. A `DataRow` larger than the buffer is
//! passed on in pieces when nothing in it must be masked.
//!
//! Refusals keep PostgreSQL's own semantics without reimplementing them: a
//! refused command is replaced upstream by a statement that fails to parse
//! (a per-session random marker, no client text), so the upstream itself
//! aborts the pipeline or transaction exactly as it would for a real error,
//! and answers in order. The relay rewrites that error into the refusal
//! message on the way back. Nothing of the refused command reaches the
//! upstream.

use bytes::BytesMut;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_pg::backend::{self, encode_error};
use airlock_pg::frame::peek_frame;
use airlock_pg::frontend::{self, decode_frontend, FrontendMessage};
use airlock_pg::{ErrorFields, FrameDecoder, PgCodecError};
use airlock_store::{EventData, NewEvent};

use crate::gate::{CommandGate, CommandKind, GateDecision, GateVerdict};
use crate::io::read_more;
use crate::recorder::Recorder;
use crate::tracker::{CommandResult, Pending, ResultTracker};

/// Upper bound for one upstream message that must be held whole to be
/// inspected (errors, notices, completions). PostgreSQL's own is 1 GiB.
const MAX_UPSTREAM_INSPECTED_BYTES: usize = 64 * 1024 * 1024;

/// How a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client sent `Terminate`.
    ClientTerminated,
    /// The client's connection closed without `Terminate`.
    ClientVanished { in_flight: bool },
    /// The upstream closed its connection.
    UpstreamClosed,
    /// The client sent bytes that are not valid protocol.
    ClientProtocolError(String),
    /// The upstream sent bytes that are not valid protocol.
    UpstreamProtocolError(String),
    /// The session was ended from outside (token revoked …).
    Killed(String),
    /// A socket error.
    Io(String),
}

impl RelayEnd {
    /// Stable name for audit events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientTerminated => "client_terminated",
            Self::ClientVanished { .. } => "client_vanished",
            Self::UpstreamClosed => "upstream_closed",
            Self::ClientProtocolError(_) => "client_protocol_error",
            Self::UpstreamProtocolError(_) => "upstream_protocol_error",
            Self::Killed(_) => "killed",
            Self::Io(_) => "io_error",
        }
    }
}

/// Byte and command counters of one relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub bytes_from_client: AtomicU64,
    pub bytes_from_upstream: AtomicU64,
    pub commands: AtomicU64,
    pub refused: AtomicU64,
}

/// What the relay records, and for whom.
pub struct RecordingContext<'a> {
    /// `None` when recording is switched off in config.
    pub recorder: Option<&'a Recorder>,
    pub session_id: &'a str,
    pub identity: &'a str,
    pub connection: &'a str,
    pub sample_rows: usize,
    pub sample_bytes: usize,
    pub max_statement_bytes: usize,
}

/// Bound on prepared statements and portals remembered per session.
const MAX_NAMED: usize = 10_000;

struct PendingRefusal {
    /// The `ReadyForQuery` number that closes the refused command's segment.
    segment: u64,
    error: ErrorFields,
}

/// State shared by the two halves.
struct Shared {
    marker: String,
    pending: Mutex<Vec<PendingRefusal>>,
    has_pending: AtomicBool,
    /// `Query` and `Sync` messages forwarded: each earns one `ReadyForQuery`.
    segments_sent: AtomicU64,
    /// `ReadyForQuery` messages received.
    segments_done: AtomicU64,
    /// Commands awaiting their responses, for result recording.
    pending_results: Mutex<VecDeque<Pending>>,
    /// Notices for the client (a command waiting for review), written by
    /// the upstream half, which owns the client's write side.
    notices: Mutex<Vec<Vec<u8>>>,
    notice_ready: tokio::sync::Notify,
}

impl Shared {
    fn new() -> Self {
        let marker: u64 = rand::thread_rng().gen();
        Self {
            marker: format!("airlock_refused_{marker:016x}"),
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            segments_sent: AtomicU64::new(0),
            segments_done: AtomicU64::new(0),
            pending_results: Mutex::new(VecDeque::new()),
            notices: Mutex::new(Vec::new()),
            notice_ready: tokio::sync::Notify::new(),
        }
    }

    fn in_flight(&self) -> bool {
        self.segments_sent.load(Ordering::Acquire) > self.segments_done.load(Ordering::Acquire)
    }
}

/// Relays until one side ends. The caller turns the [`RelayEnd`] into a
/// client-visible error where one is due.
#[allow(clippy::too_many_arguments)] // the two halves of two streams plus session context
pub async fn relay<CR, CW, UR, UW>(
    client_read: &mut CR,
    client_buf: BytesMut,
    client_write: &mut CW,
    upstream_read: &mut UR,
    upstream_buf: BytesMut,
    upstream_write: &mut UW,
    gate: &mut CommandGate,
    kill: &mut watch::Receiver<Option<String>>,
    deadline: Option<tokio::time::Instant>,
    stats: &RelayStats,
    max_message_bytes: usize,
    recording: &RecordingContext<'_>,
) -> (RelayEnd, bool)
where
    CR: AsyncRead + Unpin + ?Sized,
    CW: AsyncWrite + Unpin + ?Sized,
    UR: AsyncRead + Unpin + ?Sized,
    UW: AsyncWrite + Unpin + ?Sized,
{
    let shared = Shared::new();
    let end = tokio::select! {
        end = client_to_upstream(client_read, client_buf, upstream_write, gate, &shared, stats, max_message_bytes, recording) => end,
        end = upstream_to_client(upstream_read, upstream_buf, client_write, kill, deadline, &shared, stats, recording) => end,
    };
    let in_flight = shared.in_flight();
    (end, in_flight)
}

/// What to do with one decoded client frame once the batch is recorded.
enum Action {
    /// Forward the frame as it came.
    Forward,
    /// A command: forward it if the gate allowed it and the record was
    /// written; otherwise substitute a failing statement.
    Command {
        kind: CommandKind,
        verdict: GateVerdict,
    },
}

/// A prepared statement as the client half remembers it.
struct Prepared {
    text: String,
    mask: Option<Arc<MaskPlan>>,
    /// Each Execute is decided again (see `gate::decided_again_at_execute`).
    decided_again: bool,
}

/// A bound portal as the client half remembers it.
struct Portal {
    statement: String,
    parameters: usize,
    result_formats: Vec<i16>,
}

#[allow(clippy::too_many_arguments)] // the relay's context, passed down once
async fn client_to_upstream<CR, UW>(
    client_read: &mut CR,
    mut buf: BytesMut,
    upstream_write: &mut UW,
    gate: &mut CommandGate,
    shared: &Shared,
    stats: &RelayStats,
    max_message_bytes: usize,
    recording: &RecordingContext<'_>,
) -> RelayEnd
where
    CR: AsyncRead + Unpin + ?Sized,
    UW: AsyncWrite + Unpin + ?Sized,
{
    let decoder = FrameDecoder::new(max_message_bytes);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut frames = Vec::new();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // Statement texts and masks by prepared-statement name, and bindings by
    // portal, so each Execute is recorded with what it runs and its rows are
    // masked as its Parse was decided.
    let mut statements: HashMap<String, Prepared> = HashMap::new();
    let mut portals: HashMap<String, Portal> = HashMap::new();
    let mut seq: u64 = 0;
    loop {
        out.clear();
        frames.clear();
        events.clear();
        pending.clear();
        let mut terminate = false;
        let now = Instant::now();
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return RelayEnd::ClientProtocolError(error.to_string()),
            };
            let action = {
                let message = match decode_frontend(&frame) {
                    Ok(message) => message,
                    Err(error) => return RelayEnd::ClientProtocolError(error.to_string()),
                };
                match message {
                    FrontendMessage::Query { text } => {
                        seq += 1;
                        let decision = gate.check(CommandKind::SimpleQuery, text);
                        let decision = gate
                            .resolve(decision, recording.session_id, |text| {
                                send_notice(shared, &text)
                            })
                            .await;
                        if recording.recorder.is_some() {
                            events.push(command_event(
                                recording,
                                seq,
                                "query",
                                text,
                                0,
                                &decision,
                                decision.mask.as_deref(),
                            ));
                        }
                        pending.push(Pending::Simple {
                            seq,
                            started: now,
                            mask: decision.mask.clone(),
                            copy: crate::copy_format::copy_outputs(text),
                        });
                        Action::Command {
                            kind: CommandKind::SimpleQuery,
                            verdict: decision.verdict,
                        }
                    }
                    FrontendMessage::Parse { name, query, .. } => {
                        seq += 1;
                        let decision = gate.check(CommandKind::Parse, query);
                        let decision = gate
                            .resolve(decision, recording.session_id, |text| {
                                send_notice(shared, &text)
                            })
                            .await;
                        if recording.recorder.is_some() {
                            events.push(command_event(
                                recording,
                                seq,
                                "parse",
                                query,
                                0,
                                &decision,
                                decision.mask.as_deref(),
                            ));
                        }
                        if decision.verdict == GateVerdict::Forward {
                            if statements.len() >= MAX_NAMED && !statements.contains_key(name) {
                                return RelayEnd::ClientProtocolError(format!(
                                    "more than {MAX_NAMED} prepared statements in one session"
                                ));
                            }
                            statements.insert(
                                name.to_string(),
                                Prepared {
                                    text: query.to_string(),
                                    mask: decision.mask.clone(),
                                    decided_again: crate::gate::decided_again_at_execute(query),
                                },
                            );
                            pending.push(Pending::Parse {
                                name: name.to_string(),
                            });
                        } else {
                            statements.remove(name);
                        }
                        Action::Command {
                            kind: CommandKind::Parse,
                            verdict: decision.verdict,
                        }
                    }
                    FrontendMessage::Bind {
                        portal,
                        statement,
                        parameters,
                        result_formats,
                    } => {
                        if portals.len() >= MAX_NAMED && !portals.contains_key(portal) {
                            return RelayEnd::ClientProtocolError(format!(
                                "more than {MAX_NAMED} portals in one session"
                            ));
                        }
                        portals.insert(
                            portal.to_string(),
                            Portal {
                                statement: statement.to_string(),
                                parameters,
                                result_formats,
                            },
                        );
                        Action::Forward
                    }
                    FrontendMessage::Describe { kind, name } => {
                        pending.push(if kind == b'S' {
                            Pending::DescribeStatement {
                                name: name.to_string(),
                            }
                        } else {
                            Pending::DescribePortal {
                                portal: name.to_string(),
                            }
                        });
                        Action::Forward
                    }
                    FrontendMessage::Execute { portal, .. } => {
                        seq += 1;
                        let bound = portals.get(portal);
                        let statement_name = bound
                            .map(|bound| bound.statement.clone())
                            .unwrap_or_default();
                        let prepared = statements.get(&statement_name);
                        let text = prepared
                            .map(|prepared| prepared.text.as_str())
                            .unwrap_or("");
                        let decision = match prepared {
                            Some(prepared) if !prepared.decided_again => GateDecision::inherited(),
                            _ => gate.check(CommandKind::Execute, text),
                        };
                        let decision = gate
                            .resolve(decision, recording.session_id, |text| {
                                send_notice(shared, &text)
                            })
                            .await;
                        // A re-decided Execute (an SQL EXECUTE inside) brings its
                        // own mask; otherwise the Parse's applies.
                        let mask = decision
                            .mask
                            .clone()
                            .or_else(|| prepared.and_then(|prepared| prepared.mask.clone()));
                        if recording.recorder.is_some() {
                            events.push(command_event(
                                recording,
                                seq,
                                "execute",
                                text,
                                bound.map(|bound| bound.parameters).unwrap_or(0),
                                &decision,
                                mask.as_deref(),
                            ));
                        }
                        pending.push(Pending::Execute {
                            seq,
                            started: now,
                            mask,
                            portal: portal.to_string(),
                            statement: statement_name,
                            result_formats: bound
                                .map(|bound| bound.result_formats.clone())
                                .unwrap_or_default(),
                            copy: crate::copy_format::copy_outputs(text),
                        });
                        Action::Command {
                            kind: CommandKind::Execute,
                            verdict: decision.verdict,
                        }
                    }
                    FrontendMessage::Close { kind, name } => {
                        if kind == b'S' {
                            statements.remove(name);
                        } else {
                            portals.remove(name);
                        }
                        Action::Forward
                    }
                    FrontendMessage::Sync => {
                        pending.push(Pending::Sync);
                        // The unnamed portal does not outlive its segment.
                        portals.remove("");
                        Action::Forward
                    }
                    FrontendMessage::Terminate => {
                        terminate = true;
                        Action::Forward
                    }
                    FrontendMessage::FunctionCall => {
                        // The fastpath interface calls functions by OID and
                        // bypasses statement classification: refuse it.
                        return RelayEnd::ClientProtocolError(
                            "the function call (fastpath) protocol is not allowed through airlock"
                                .into(),
                        );
                    }
                    FrontendMessage::PasswordOrSasl => {
                        return RelayEnd::ClientProtocolError(
                            "unexpected authentication message".into(),
                        );
                    }
                    _ => Action::Forward,
                }
            };
            frames.push((frame, action));
            if terminate {
                break;
            }
        }

        // Audit before forward: one durable write for the whole batch. If it
        // fails, every command of the batch is refused (fail closed).
        let mut audit_failure: Option<String> = None;
        if let Some(recorder) = recording.recorder {
            if !events.is_empty() {
                if let Err(error) = recorder.record(std::mem::take(&mut events)).await {
                    tracing::error!(session = recording.session_id, %error, "refusing commands: audit write failed");
                    audit_failure = Some(error.to_string());
                }
            }
        }
        if !pending.is_empty() {
            if let Ok(mut queue) = shared.pending_results.lock() {
                queue.extend(pending.drain(..));
            }
        }

        for (frame, action) in frames.drain(..) {
            let (kind, verdict) = match action {
                Action::Forward => {
                    if frame.tag() == frontend::tag::SYNC {
                        shared.segments_sent.fetch_add(1, Ordering::AcqRel);
                    }
                    out.extend_from_slice(frame.as_bytes());
                    continue;
                }
                Action::Command { kind, verdict } => match (&audit_failure, verdict) {
                    (Some(failure), _) => (
                        kind,
                        GateVerdict::Refuse(ErrorFields {
                            severity: "ERROR".into(),
                            code: "58030".into(),
                            message: format!("airlock: command refused: {failure}"),
                            detail: None,
                            hint: Some(
                                "the gateway records every command before it runs; retry when the audit store is writable"
                                    .into(),
                            ),
                        }),
                    ),
                    (None, verdict) => (kind, verdict),
                },
            };
            stats.commands.fetch_add(1, Ordering::Relaxed);
            match (kind, verdict) {
                (CommandKind::SimpleQuery, GateVerdict::Forward) => {
                    shared.segments_sent.fetch_add(1, Ordering::AcqRel);
                    out.extend_from_slice(frame.as_bytes());
                }
                (CommandKind::SimpleQuery, GateVerdict::Refuse(error)) => {
                    let segment = shared.segments_sent.fetch_add(1, Ordering::AcqRel) + 1;
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    queue_refusal(shared, segment, error);
                    frontend::encode_query(&mut out, &shared.marker);
                }
                (_, GateVerdict::Forward) => out.extend_from_slice(frame.as_bytes()),
                (_, GateVerdict::Refuse(error)) => {
                    // The segment ends at the next Sync. A Parse that fails
                    // creates nothing, so the marker name is harmless.
                    let segment = shared.segments_sent.load(Ordering::Acquire) + 1;
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    queue_refusal(shared, segment, error);
                    frontend::encode_parse(&mut out, &shared.marker, &shared.marker);
                }
            }
        }
        if !out.is_empty() {
            if let Err(error) = upstream_write.write_all(&out).await {
                return RelayEnd::Io(error.to_string());
            }
        }
        if terminate {
            let _ = upstream_write.flush().await;
            return RelayEnd::ClientTerminated;
        }
        match read_more(client_read, &mut buf).await {
            Ok(0) => {
                return RelayEnd::ClientVanished {
                    in_flight: shared.in_flight(),
                }
            }
            Ok(read) => {
                stats
                    .bytes_from_client
                    .fetch_add(read as u64, Ordering::Relaxed);
            }
            Err(error) => return RelayEnd::Io(error.to_string()),
        }
    }
}

/// The `command` event recorded before a command goes upstream. The
/// statement text passes through the command's mask plan: literals in it
/// are data too.
/// The recorded form of a command, serialized by the session itself.
#[derive(Debug, serde::Serialize)]
struct CommandRecord<'a> {
    seq: u64,
    connection: &'a str,
    message: &'a str,
    statement: &'a str,
    parameters: usize,
    /// `forward` or `refuse`.
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_masked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

fn command_event(
    recording: &RecordingContext<'_>,
    seq: u64,
    message: &str,
    text: &str,
    parameters: usize,
    decision: &GateDecision,
    mask: Option<&MaskPlan>,
) -> NewEvent {
    let (statement, truncated) = cut(text, recording.max_statement_bytes);
    let mut masked = MaskStats::new();
    let statement = match mask {
        Some(plan) => plan.mask_text(statement, &mut masked).into_owned(),
        None => statement.to_string(),
    };
    let refusal = match &decision.verdict {
        GateVerdict::Forward => None,
        GateVerdict::Refuse(error) => Some(error.message.as_str()),
    };
    let record = CommandRecord {
        seq,
        connection: recording.connection,
        message,
        statement: &statement,
        parameters,
        decision: if refusal.is_some() {
            "refuse"
        } else {
            "forward"
        },
        policy: (!decision.details.is_null()).then_some(&decision.details),
        statement_masked: (!masked.is_empty()).then(|| masked.total()),
        statement_truncated: truncated.then_some(true),
        statement_sha256: truncated.then(|| hex::encode(Sha256::digest(text.as_bytes()))),
        refusal,
    };
    let data = EventData::from_serialize(&record);
    NewEvent {
        kind: "command".into(),
        session_id: Some(recording.session_id.to_string()),
        identity: Some(recording.identity.to_string()),
        data,
    }
}

/// The longest prefix of `text` within `max` bytes, on a char boundary.
fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (text.get(..end).unwrap_or(""), true)
}

fn result_event(recording: &RecordingContext<'_>, result: &CommandResult) -> NewEvent {
    NewEvent {
        kind: "command.result".into(),
        session_id: Some(recording.session_id.to_string()),
        identity: Some(recording.identity.to_string()),
        data: EventData::from_serialize(result),
    }
}

/// Queues a NoticeResponse for the client.
fn send_notice(shared: &Shared, text: &str) {
    let mut notice = Vec::new();
    backend::encode_notice(
        &mut notice,
        &ErrorFields {
            severity: "NOTICE".into(),
            code: "00000".into(),
            message: text.to_string(),
            detail: None,
            hint: None,
        },
    );
    if let Ok(mut notices) = shared.notices.lock() {
        notices.push(notice);
    }
    shared.notice_ready.notify_one();
}

fn queue_refusal(shared: &Shared, segment: u64, error: ErrorFields) {
    if let Ok(mut pending) = shared.pending.lock() {
        pending.push(PendingRefusal { segment, error });
        shared.has_pending.store(true, Ordering::Release);
    }
}

#[allow(clippy::too_many_arguments)] // the relay's context, passed down once
async fn upstream_to_client<UR, CW>(
    upstream_read: &mut UR,
    mut buf: BytesMut,
    client_write: &mut CW,
    kill: &mut watch::Receiver<Option<String>>,
    deadline: Option<tokio::time::Instant>,
    shared: &Shared,
    stats: &RelayStats,
    recording: &RecordingContext<'_>,
) -> RelayEnd
where
    UR: AsyncRead + Unpin + ?Sized,
    CW: AsyncWrite + Unpin + ?Sized,
{
    // Bytes of a frame already partly forwarded that still pass unparsed.
    let mut passthrough: usize = 0;
    let mut out: Vec<u8> = Vec::new();
    let mut tracker = ResultTracker::new(recording.sample_rows, recording.sample_bytes);
    let mut finished: Vec<CommandResult> = Vec::new();
    let expiry = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        if !buf.is_empty() {
            let mut position = passthrough.min(buf.len());
            passthrough -= position;
            let mut copied_until = 0usize;
            out.clear();
            while position < buf.len() {
                let rest = buf.get(position..).unwrap_or_default();
                let (tag, total) = match peek_frame(rest, MAX_UPSTREAM_INSPECTED_BYTES) {
                    Ok(Some(header)) => header,
                    Ok(None) => break,
                    Err(error) => return RelayEnd::UpstreamProtocolError(error.to_string()),
                };
                if rest.len() < total {
                    let streamable = shared
                        .pending_results
                        .lock()
                        .map(|queue| tracker.may_stream(tag, &queue))
                        .unwrap_or(false);
                    if streamable {
                        // Stream a large row or COPY chunk on without holding it.
                        passthrough = total - rest.len();
                        position = buf.len();
                    }
                    break;
                }
                let frame_end = position + total;
                let frame = rest.get(..total).unwrap_or_default();
                let mut replacement: Option<Vec<u8>> = None;
                match tag {
                    backend::tag::READY_FOR_QUERY => {
                        let done = shared.segments_done.fetch_add(1, Ordering::AcqRel) + 1;
                        if shared.has_pending.load(Ordering::Acquire) {
                            drop_finished_refusals(shared, done);
                        }
                    }
                    backend::tag::ERROR_RESPONSE if shared.has_pending.load(Ordering::Acquire) => {
                        if let Some(error) =
                            take_refusal(shared, frame.get(5..).unwrap_or_default())
                        {
                            let mut refusal = Vec::new();
                            encode_error(&mut refusal, &error);
                            replacement = Some(refusal);
                        }
                    }
                    _ => {}
                }
                if tracked(tag) {
                    let Ok(mut queue) = shared.pending_results.lock() else {
                        return RelayEnd::UpstreamProtocolError("internal state poisoned".into());
                    };
                    let seen = replacement.as_deref().unwrap_or(frame);
                    match tracker.on_frame(seen, &mut queue, &mut finished) {
                        Ok(Some(masked)) => replacement = Some(masked),
                        Ok(None) => {}
                        Err(error) => return RelayEnd::UpstreamProtocolError(error.0),
                    }
                }
                if let Some(replacement) = replacement {
                    out.extend_from_slice(buf.get(copied_until..position).unwrap_or_default());
                    out.extend_from_slice(&replacement);
                    copied_until = frame_end;
                }
                position = frame_end;
            }
            let forwarded = position;
            let write_result = if out.is_empty() {
                client_write
                    .write_all(buf.get(..forwarded).unwrap_or_default())
                    .await
            } else {
                out.extend_from_slice(buf.get(copied_until..forwarded).unwrap_or_default());
                client_write.write_all(&out).await
            };
            if let Err(error) = write_result {
                return RelayEnd::Io(error.to_string());
            }
            FrameDecoder::advance(&mut buf, forwarded);
            if !finished.is_empty() {
                if let Some(recorder) = recording.recorder {
                    let events = finished
                        .drain(..)
                        .map(|result| result_event(recording, &result))
                        .collect();
                    recorder.record_later(events).await;
                } else {
                    finished.clear();
                }
            }
        }
        tokio::select! {
            biased;
            changed = kill.changed() => {
                let reason = kill.borrow().clone();
                match (changed, reason) {
                    (Ok(()), Some(reason)) => return RelayEnd::Killed(reason),
                    (Ok(()), None) => continue,
                    // The registry is gone: the gateway is shutting down.
                    (Err(_), _) => return RelayEnd::Killed("the gateway is shutting down".into()),
                }
            }
            () = &mut expiry => return RelayEnd::Killed("the token that opened this session expired".into()),
            () = shared.notice_ready.notified() => {
                let notices = shared.notices.lock().map(|mut notices| std::mem::take(&mut *notices)).unwrap_or_default();
                for notice in notices {
                    if let Err(error) = client_write.write_all(&notice).await {
                        return RelayEnd::Io(error.to_string());
                    }
                }
                let _ = client_write.flush().await;
            }
            read = read_more(upstream_read, &mut buf) => match read {
                Ok(0) => return RelayEnd::UpstreamClosed,
                Ok(read) => {
                    stats.bytes_from_upstream.fetch_add(read as u64, Ordering::Relaxed);
                }
                Err(error) => return RelayEnd::Io(error.to_string()),
            }
        }
    }
}

/// Response messages the result tracker needs to see.
fn tracked(tag: u8) -> bool {
    matches!(
        tag,
        backend::tag::ROW_DESCRIPTION
            | backend::tag::DATA_ROW
            | backend::tag::COMMAND_COMPLETE
            | backend::tag::EMPTY_QUERY_RESPONSE
            | backend::tag::ERROR_RESPONSE
            | backend::tag::NOTICE_RESPONSE
            | backend::tag::READY_FOR_QUERY
            | backend::tag::COPY_OUT_RESPONSE
            | backend::tag::NOTIFICATION_RESPONSE
            | backend::tag::PARAMETER_STATUS
            | b'1'
            | b'n'
            | b's'
            | b'd'
    )
}

/// The refusal whose marker this upstream error names, if any.
fn take_refusal(shared: &Shared, body: &[u8]) -> Option<ErrorFields> {
    let fields = backend::decode_error_fields(body).ok()?;
    if !fields.message.contains(&shared.marker) {
        return None;
    }
    let mut pending = shared.pending.lock().ok()?;
    if pending.is_empty() {
        return None;
    }
    let refusal = pending.remove(0);
    shared
        .has_pending
        .store(!pending.is_empty(), Ordering::Release);
    Some(refusal.error)
}

/// Forgets refusals whose segment ended without their marker error (an
/// earlier error in the same pipeline made the upstream skip them).
fn drop_finished_refusals(shared: &Shared, done: u64) {
    if let Ok(mut pending) = shared.pending.lock() {
        pending.retain(|refusal| refusal.segment > done);
        shared
            .has_pending
            .store(!pending.is_empty(), Ordering::Release);
    }
}

/// Encodes a FATAL error for the client.
pub fn fatal(code: &str, message: impl Into<String>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_error(
        &mut out,
        &ErrorFields {
            severity: "FATAL".into(),
            code: code.into(),
            message: message.into(),
            detail: None,
            hint: None,
        },
    );
    out
}

/// Maps a codec error to the message a client sees.
pub fn protocol_error_message(error: &PgCodecError) -> String {
    format!("airlock: invalid protocol message: {error}")
}
