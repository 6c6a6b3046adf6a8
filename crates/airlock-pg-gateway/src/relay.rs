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
use std::collections::VecDeque;
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
use airlock_store::NewEvent;

use airlock_policy::RateLimitObligation;
use airlock_sql::SessionEffect;
use airlock_types::StatementClass;
use serde_json::json;

use crate::errors;
use crate::gate::{
    CommandGate, CommandKind, GateDecision, GateVerdict, Object, PreparedView, Refusal,
};
use crate::io::read_more;
use crate::names::{Failed, Lookup, Names, Space, TooMany, MAX_NAMES};
use crate::tracker::{CommandResult, Pending, ResultTracker};
use airlock_core::command_record::{self, RecordScope};
use airlock_core::gate::Rejection;
use airlock_core::recorder::{Effect, Recorder};
use airlock_core::reviews::ReviewRequest;

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
    /// The upstream ended the session with a FATAL error, already relayed
    /// to the client (`pg_terminate_backend`, an idle timeout …).
    UpstreamEndedWithError,
    /// The client sent bytes that are not valid protocol.
    ClientProtocolError(String),
    /// The upstream sent bytes that are not valid protocol.
    UpstreamProtocolError(String),
    /// Its token or access grant was revoked.
    Revoked(String),
    /// Its token or access grant expired.
    Expired(String),
    /// The gateway is shutting down.
    Shutdown,
    /// The gateway ended it for another reason (its client encoding changed).
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
            Self::UpstreamClosed | Self::UpstreamEndedWithError => "upstream_closed",
            Self::ClientProtocolError(_) => "client_protocol_error",
            Self::UpstreamProtocolError(_) => "upstream_protocol_error",
            Self::Revoked(_) => "revoked",
            Self::Expired(_) => "expired",
            Self::Shutdown => "shutdown",
            Self::Killed(_) => "killed",
            Self::Io(_) => "io_error",
        }
    }
}

/// What ends a session at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The token that opened it.
    Token,
    /// The access grant that admitted it (a `jit` connection).
    Grant,
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
    /// The session's metrics: upstream latency and masked values (`None`
    /// under `metrics.enabled: false`).
    pub meter: Option<&'a airlock_metrics::CommandMeter>,
}

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
    /// `ReadyForQuery` messages received (segments answered).
    segments_done: AtomicU64,
    /// The last segment whose `ReadyForQuery` was outside a transaction
    /// block (named portals do not outlive it).
    ended_outside: AtomicU64,
    /// Woken at every `ReadyForQuery`.
    answered: tokio::sync::Notify,
    /// Creations the server rejected or skipped, reported before the
    /// segment's `ReadyForQuery` is counted.
    failures: Mutex<Vec<Failed>>,
    has_failures: AtomicBool,
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
            ended_outside: AtomicU64::new(0),
            answered: tokio::sync::Notify::new(),
            failures: Mutex::new(Vec::new()),
            has_failures: AtomicBool::new(false),
            pending_results: Mutex::new(VecDeque::new()),
            notices: Mutex::new(Vec::new()),
            notice_ready: tokio::sync::Notify::new(),
        }
    }

    fn in_flight(&self) -> bool {
        self.segments_sent.load(Ordering::Acquire) > self.segments_done.load(Ordering::Acquire)
    }
}

/// What the relay needs of its session besides the two connections.
pub struct RelaySession<'a> {
    pub gate: &'a mut CommandGate,
    /// Tells the relay to end the session (a kill switch, a revocation).
    pub kill: &'a mut watch::Receiver<Option<String>>,
    /// When the session expires, and why.
    pub deadline: Option<(tokio::time::Instant, Expiry)>,
    pub stats: &'a RelayStats,
    /// Largest client message accepted.
    pub max_message_bytes: usize,
    pub recording: &'a RecordingContext<'a>,
}

/// Relays until one side ends. The caller turns the [`RelayEnd`] into a
/// client-visible error where one is due.
pub async fn relay<CR, CW, UR, UW>(
    client_read: &mut CR,
    client_buf: BytesMut,
    client_write: &mut CW,
    upstream_read: &mut UR,
    upstream_buf: BytesMut,
    upstream_write: &mut UW,
    session: RelaySession<'_>,
) -> (RelayEnd, bool)
where
    CR: AsyncRead + Unpin + ?Sized,
    CW: AsyncWrite + Unpin + ?Sized,
    UR: AsyncRead + Unpin + ?Sized,
    UW: AsyncWrite + Unpin + ?Sized,
{
    let RelaySession {
        gate,
        kill,
        deadline,
        stats,
        max_message_bytes,
        recording,
    } = session;
    let shared = Shared::new();
    let mut client_half = ClientHalf::new(gate, &shared, recording);
    let mut upstream_half = UpstreamHalf::new(&shared, recording);
    let end = tokio::select! {
        end = client_to_upstream(client_read, client_buf, upstream_write, &mut client_half, stats, max_message_bytes) => end,
        end = upstream_to_client(upstream_read, upstream_buf, client_write, kill, deadline, &mut upstream_half, stats) => end,
    };
    let in_flight = shared.in_flight();
    (end, in_flight)
}

/// What to do with one decoded client frame once the batch is recorded.
enum Action {
    /// Forward the frame as it came.
    Forward,
    /// A command: forward it if the gate allowed it and the record was
    /// written; otherwise substitute a failing statement. `prefix` is sent
    /// before it (a `Describe` the gateway needs for masking).
    Command {
        kind: CommandKind,
        verdict: GateVerdict,
        prefix: Option<Vec<u8>>,
    },
}

/// The decision a parsed statement got, carried to each of its executions.
#[derive(Clone)]
struct Decided {
    version: i64,
    mask: Option<Arc<MaskPlan>>,
    rate_limits: Arc<[RateLimitObligation]>,
    /// Held for review: every execution needs its own approval.
    review: Option<Arc<ReviewRequest>>,
    /// The statement only reads (see `Decision::reads_only`).
    reads_only: bool,
    /// An SQL `EXECUTE` inside: decided again at every execution.
    again: bool,
    effects: Arc<[SessionEffect]>,
    touches_cursors: bool,
    declares: Arc<[(String, StatementClass)]>,
}

impl Decided {
    fn of(decision: &GateDecision, text: &str) -> Self {
        Self {
            version: decision.core.version,
            mask: decision.core.mask.clone(),
            rate_limits: decision.core.rate_limits.clone().into(),
            review: decision.core.review.clone().map(Arc::new),
            reads_only: decision.core.reads_only,
            again: crate::gate::decided_again_at_execute(text),
            effects: decision.effects.clone().into(),
            touches_cursors: decision.touches_cursors,
            declares: decision.declares.clone().into(),
        }
    }
}

/// A prepared statement as the client half knows it.
struct Prepared {
    text: Arc<str>,
    /// Its classification, for SQL `EXECUTE name` (SQL `PREPARE`s only).
    class: Option<StatementClass>,
    /// The decision of its `Parse`; `None` for an SQL `PREPARE`, decided at
    /// each use.
    decided: Option<Arc<Decided>>,
    /// A `Describe` of it (or of a portal bound from it) was sent.
    described: bool,
}

/// A bound portal as the client half knows it.
struct Portal {
    statement: String,
    text: Arc<str>,
    decided: Option<Arc<Decided>>,
    /// The `Bind` body, for the values bound (recorded masked, shown to
    /// reviewers).
    bind: Vec<u8>,
    parameters: usize,
    result_formats: Vec<i16>,
    /// Its layout will be known to the tracker when it runs.
    described: bool,
}

type SessionNames = Names<Prepared, Portal>;

/// The session's SQL cursors and what their queries read (for `FETCH`).
type Cursors = std::collections::HashMap<String, StatementClass>;

/// The segment counters as of now, with every creation the server rejected
/// in those segments already forgotten.
fn answered_view(names: &mut SessionNames, shared: &Shared) -> (u64, u64) {
    let answered = shared.segments_done.load(Ordering::Acquire);
    let ended_outside = shared.ended_outside.load(Ordering::Acquire);
    if shared.has_failures.load(Ordering::Acquire) {
        if let Ok(mut failures) = shared.failures.lock() {
            for failure in failures.drain(..) {
                names.failed(&failure);
            }
            shared.has_failures.store(false, Ordering::Release);
        }
    }
    (answered, ended_outside)
}

/// Waits until the upstream has answered `segment` segments.
async fn wait_answered(shared: &Shared, segment: u64) {
    loop {
        let notified = shared.answered.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.segments_done.load(Ordering::Acquire) >= segment {
            return;
        }
        notified.await;
    }
}

/// The session's SQL-prepared statements usable from `segment`, for
/// classifying an SQL `EXECUTE`.
fn prepared_view(
    names: &SessionNames,
    cursors: &Cursors,
    segment: u64,
    answered: u64,
) -> PreparedView {
    let mut view = PreparedView {
        cursors: cursors.clone(),
        ..PreparedView::default()
    };
    for (name, prepared) in names.ready_statements(segment, answered) {
        if let Some(class) = &prepared.class {
            view.statements.insert(
                name.to_string(),
                (class.clone(), Arc::clone(&prepared.text)),
            );
        }
    }
    view
}

/// What an upcoming message needs the upstream to have answered before it
/// can be decided: the segment to wait for, if any.
fn must_wait(
    message: &FrontendMessage<'_>,
    names: &mut SessionNames,
    segment: u64,
    shared: &Shared,
) -> Option<u64> {
    let (answered, ended_outside) = answered_view(names, shared);
    match message {
        FrontendMessage::Query { text } | FrontendMessage::Parse { query: text, .. } => {
            if crate::gate::decided_again_at_execute(text) {
                names.unanswered_statements(segment, answered)
            } else {
                None
            }
        }
        FrontendMessage::Bind { statement, .. } => {
            match names.statement(statement, segment, answered) {
                Lookup::Wait(until) => Some(until),
                _ => None,
            }
        }
        FrontendMessage::Execute { portal, .. } => {
            let again = match names.portal(portal, segment, answered, ended_outside) {
                Lookup::Wait(until) => return Some(until),
                Lookup::Missing => return None,
                Lookup::Ready(bound) => bound.decided.as_ref().is_none_or(|decided| decided.again),
            };
            if again {
                names.unanswered_statements(segment, answered)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Applies what a forwarded command does to the session's names.
fn apply_effects(
    names: &mut SessionNames,
    cursors: &mut Cursors,
    effects: &[SessionEffect],
    touches_cursors: bool,
    prepares: Vec<airlock_sql::PreparedDefinition>,
    declares: &[(String, StatementClass)],
    segment: u64,
) -> Result<Vec<(String, u64)>, RelayEnd> {
    let mut created = Vec::new();
    let mut declared = declares.iter();
    let mut definitions = prepares.into_iter();
    for effect in effects {
        match effect {
            SessionEffect::Prepare(name) => {
                // The name now means the new body on the server (or, if the
                // PREPARE fails, nothing the gateway can vouch for).
                names.close_statement(name);
                if let Some(definition) = definitions.by_ref().find(|d| &d.name == name) {
                    let prepared = Prepared {
                        text: definition.body.into(),
                        class: Some(definition.statement),
                        decided: None,
                        described: false,
                    };
                    let id = names
                        .define_statement(name, prepared, segment)
                        .map_err(too_many)?;
                    created.push((name.clone(), id));
                }
            }
            SessionEffect::Deallocate(name) => names.close_statement(name),
            // MySQL-only effects: the PostgreSQL dialect never yields them.
            SessionEffect::UseDatabase(_) | SessionEffect::SetUserVariable(_) => {}
            SessionEffect::DeallocateAll => names.clear_statements(),
            SessionEffect::DiscardAll => {
                names.clear_statements();
                names.clear_portals();
                cursors.clear();
            }
            SessionEffect::Close(name) => {
                names.close_portal(name);
                cursors.remove(name);
            }
            SessionEffect::Declare(name) => {
                names.close_portal(name);
                cursors.remove(name);
                if let Some((_, class)) = declared.by_ref().find(|(declared, _)| declared == name) {
                    if cursors.len() < MAX_NAMES {
                        cursors.insert(name.clone(), class.clone());
                    }
                }
            }
            SessionEffect::CloseAll => {
                names.clear_portals();
                cursors.clear();
            }
            SessionEffect::Execute(_) => {}
        }
    }
    if touches_cursors {
        names.clear_portals();
        cursors.clear();
    }
    Ok(created)
}

fn too_many(full: TooMany) -> RelayEnd {
    let what = match full.0 {
        Space::Statement => "prepared statements",
        Space::Portal => "portals",
    };
    RelayEnd::ClientProtocolError(format!("more than {MAX_NAMES} {what} in one session"))
}

/// The refusal of a message naming something the gateway cannot vouch for.
fn unknown_name(object: Object, message: String) -> GateDecision {
    GateDecision::refuse(
        Refusal::UnknownObject { object, message },
        json!({"verdict": "deny", "reason": "unknown name"}),
    )
}

/// The values bound by a `Bind`, rendered for the record and reviewers:
/// text as text, other binary values as `\x` hex (of their first 128
/// bytes). The record masks and bounds them
/// ([`command_record::mask_values`]).
fn bound_values(bind: &[u8]) -> Vec<Option<String>> {
    const HEX_BYTES: usize = command_record::MAX_VALUE_CHARS / 2;
    let Ok(values) = frontend::bind_parameters(bind) else {
        return Vec::new();
    };
    values
        .into_iter()
        .map(|(format, value)| {
            let bytes = value?;
            Some(match std::str::from_utf8(bytes) {
                Ok(text) if format == 0 || !text.chars().any(char::is_control) => text.to_string(),
                _ => {
                    let mut hex = String::from("\\x");
                    for byte in bytes.iter().take(HEX_BYTES) {
                        hex.push_str(&format!("{byte:02x}"));
                    }
                    hex
                }
            })
        })
        .collect()
}

/// The client half's session state: what the handler of each frontend
/// message reads and updates. One per relay; the per-batch lists are
/// cleared between batches, not reallocated.
struct ClientHalf<'a, 'r> {
    gate: &'a mut CommandGate,
    shared: &'a Shared,
    recording: &'a RecordingContext<'r>,
    /// What the server holds under each statement and portal name, as far
    /// as the gateway can vouch for it (see `names`).
    names: SessionNames,
    cursors: Cursors,
    /// Segment-ending messages (`Query`, `Sync`) decoded so far: a message
    /// belongs to segment `ends + 1`.
    ends: u64,
    /// The number of the last command, for the record.
    seq: u64,
    /// The batch's `command` events, recorded before it is forwarded.
    events: Vec<NewEvent>,
    /// What the batch's commands do: only reads, or something more (which
    /// under `recording.sync: writes` waits for the disk).
    effect: Effect,
    /// What the batch's messages await from the upstream (the tracker's).
    pending: Vec<Pending>,
    /// When the batch was read.
    now: Instant,
    /// A command of the batch was held for review: the batch's time is
    /// people's, not the gateway's (left out of the added latency).
    reviewed: bool,
}

/// A bound portal as an `Execute` of it finds it.
struct Execution {
    text: Arc<str>,
    decided: Option<Arc<Decided>>,
    statement_name: String,
    result_formats: Vec<i16>,
    parameters: usize,
    described: bool,
}

impl<'a, 'r> ClientHalf<'a, 'r> {
    fn new(
        gate: &'a mut CommandGate,
        shared: &'a Shared,
        recording: &'a RecordingContext<'r>,
    ) -> Self {
        Self {
            gate,
            shared,
            recording,
            names: SessionNames::new(),
            cursors: Cursors::new(),
            ends: 0,
            seq: 0,
            events: Vec::new(),
            effect: Effect::ReadOnly,
            pending: Vec::new(),
            now: Instant::now(),
            reviewed: false,
        }
    }

    /// Decides one frontend message of segment `segment` (`Terminate`
    /// aside): what to do with its frame once the batch is recorded.
    async fn on_message(
        &mut self,
        message: FrontendMessage<'_>,
        frame: &airlock_pg::Frame,
        segment: u64,
    ) -> Result<Action, RelayEnd> {
        match message {
            FrontendMessage::Query { text } => self.on_query(&text, segment).await,
            FrontendMessage::Parse { name, query, .. } => self.on_parse(name, &query, segment),
            FrontendMessage::Bind {
                portal,
                statement,
                parameters,
                result_formats,
            } => self.on_bind(
                portal,
                statement,
                parameters,
                result_formats,
                frame,
                segment,
            ),
            FrontendMessage::Describe { kind, name } => {
                self.on_describe(kind, name);
                Ok(Action::Forward)
            }
            FrontendMessage::Execute { portal, .. } => self.on_execute(portal, segment).await,
            FrontendMessage::Close { kind, name } => {
                if kind == b'S' {
                    self.names.close_statement(name);
                } else {
                    self.names.close_portal(name);
                }
                Ok(Action::Forward)
            }
            FrontendMessage::Sync => {
                self.ends += 1;
                self.pending.push(Pending::Sync { segment });
                // The unnamed portal does not outlive its segment.
                self.names.close_portal("");
                Ok(Action::Forward)
            }
            FrontendMessage::CopyDone | FrontendMessage::CopyFail => {
                self.pending.push(Pending::CopyEnd);
                Ok(Action::Forward)
            }
            FrontendMessage::FunctionCall => {
                // The fastpath interface calls functions by OID and
                // bypasses statement classification: refuse it.
                Err(RelayEnd::ClientProtocolError(
                    "the function call (fastpath) protocol is not allowed through airlock".into(),
                ))
            }
            FrontendMessage::PasswordOrSasl => Err(RelayEnd::ClientProtocolError(
                "unexpected authentication message".into(),
            )),
            _ => Ok(Action::Forward),
        }
    }

    /// Asks the gate about the text of a `Query` or `Parse`, with the
    /// session's SQL-prepared statements when the text runs one of them.
    fn check_statement(&mut self, kind: CommandKind, text: &str, segment: u64) -> GateDecision {
        let view = if crate::gate::decided_again_at_execute(text) {
            let (answered, _) = answered_view(&mut self.names, self.shared);
            prepared_view(&self.names, &self.cursors, segment, answered)
        } else {
            PreparedView::default()
        };
        self.gate.check(kind, text, &view)
    }

    /// Adds the current command's `command` event to the batch (when
    /// recording is on).
    fn record(
        &mut self,
        message: &str,
        text: &str,
        bound: Option<(usize, &[Option<String>])>,
        decision: &GateDecision,
        mask: Option<&MaskPlan>,
    ) {
        if self.recording.recorder.is_some() {
            if !decision.core.reads_only {
                self.effect = Effect::Effectful;
            }
            let event = command_event(
                self.recording,
                self.seq,
                message,
                text,
                bound,
                decision,
                mask,
            );
            self.events.push(event);
        }
    }

    /// A simple `Query`: decided (and reviewed) as a whole; its session
    /// effects apply when it is forwarded.
    async fn on_query(&mut self, text: &str, segment: u64) -> Result<Action, RelayEnd> {
        self.seq += 1;
        self.ends += 1;
        // A simple query drops the unnamed statement and portal.
        self.names.close_statement("");
        self.names.close_portal("");
        let decision = self.check_statement(CommandKind::SimpleQuery, text, segment);
        self.reviewed |= decision.core.review.is_some();
        let shared = self.shared;
        let mut decision = self
            .gate
            .resolve(decision, self.recording.session_id, |text| {
                send_notice(shared, &text)
            })
            .await;
        self.record(
            "query",
            text,
            None,
            &decision,
            decision.core.mask.as_deref(),
        );
        let prepares = if decision.core.verdict == GateVerdict::Forward {
            let definitions = std::mem::take(&mut decision.prepares);
            apply_effects(
                &mut self.names,
                &mut self.cursors,
                &decision.effects,
                decision.touches_cursors,
                definitions,
                &decision.declares,
                segment,
            )?
        } else {
            Vec::new()
        };
        self.pending.push(Pending::Simple {
            seq: self.seq,
            started: self.now,
            mask: decision.core.mask.clone(),
            prepares,
            segment,
            copy: crate::copy_format::copy_outputs(text),
        });
        Ok(Action::Command {
            kind: CommandKind::SimpleQuery,
            verdict: decision.core.verdict,
            prefix: None,
        })
    }

    /// A `Parse`: decided now, its decision carried to each execution.
    fn on_parse(&mut self, name: &str, query: &str, segment: u64) -> Result<Action, RelayEnd> {
        self.seq += 1;
        let mut decision = self.check_statement(CommandKind::Parse, query, segment);
        // Preparing runs nothing: a statement held for review is prepared,
        // and each execution reviewed with the values bound to it.
        if decision.core.review.is_some() {
            decision.core.verdict = GateVerdict::Forward;
        }
        self.record(
            "parse",
            query,
            None,
            &decision,
            decision.core.mask.as_deref(),
        );
        if decision.core.verdict == GateVerdict::Forward {
            let prepared = Prepared {
                text: query.into(),
                class: None,
                decided: Some(Arc::new(Decided::of(&decision, query))),
                described: false,
            };
            let id = self
                .names
                .define_statement(name, prepared, segment)
                .map_err(too_many)?;
            self.pending.push(Pending::Parse {
                name: name.to_string(),
                id,
            });
        } else {
            self.names.close_statement(name);
        }
        Ok(Action::Command {
            kind: CommandKind::Parse,
            verdict: decision.core.verdict,
            prefix: None,
        })
    }

    /// A `Bind`: forwarded when it binds a statement the gateway knows;
    /// refused otherwise.
    fn on_bind(
        &mut self,
        portal: &str,
        statement: &str,
        parameters: usize,
        result_formats: Vec<i16>,
        frame: &airlock_pg::Frame,
        segment: u64,
    ) -> Result<Action, RelayEnd> {
        let (answered, _) = answered_view(&mut self.names, self.shared);
        let recorded = self.recording.recorder.is_some();
        let bound = match self.names.statement(statement, segment, answered) {
            Lookup::Ready(prepared) => Some(Portal {
                statement: statement.to_string(),
                text: Arc::clone(&prepared.text),
                decided: prepared.decided.clone(),
                // Kept only where the values are recorded or reviewed.
                bind: if recorded || prepared.decided.as_ref().is_none_or(|d| d.review.is_some()) {
                    frame.as_bytes().get(5..).unwrap_or_default().to_vec()
                } else {
                    Vec::new()
                },
                parameters,
                result_formats,
                described: prepared.described,
            }),
            Lookup::Wait(_) | Lookup::Missing => None,
        };
        if let Some(value) = bound {
            self.cursors.remove(portal);
            let id = self
                .names
                .bind_portal(portal, value, segment)
                .map_err(too_many)?;
            self.pending.push(Pending::Bind {
                portal: portal.to_string(),
                id,
            });
            return Ok(Action::Forward);
        }
        self.names.close_portal(portal);
        self.seq += 1;
        self.gate.core().rejected(Rejection::UnknownStatement);
        let decision = unknown_name(
            Object::PreparedStatement,
            format!(
                "airlock: prepared statement \"{statement}\" is not known to the gateway: \
                 prepare it with Parse (or PREPARE) through airlock, and check that it was not \
                 rejected or closed"
            ),
        );
        self.record("bind", statement, None, &decision, None);
        Ok(Action::Command {
            kind: CommandKind::Execute,
            verdict: decision.core.verdict,
            prefix: None,
        })
    }

    /// A `Describe`: its answer gives the layout of the rows to mask.
    fn on_describe(&mut self, kind: u8, name: &str) {
        if kind == b'S' {
            if let Some(prepared) = self.names.statement_mut(name) {
                prepared.described = true;
            }
            self.pending.push(Pending::DescribeStatement {
                name: name.to_string(),
            });
            return;
        }
        let statement = match self.names.portal_mut(name) {
            Some(bound) => {
                bound.described = true;
                bound.statement.clone()
            }
            // Matches no statement (names have no NUL).
            None => "\0".to_string(),
        };
        if let Some(prepared) = self.names.statement_mut(&statement) {
            prepared.described = true;
        }
        self.pending.push(Pending::DescribePortal {
            portal: name.to_string(),
            statement,
            injected: false,
        });
    }

    /// An `Execute`: runs under its statement's decision (decided again
    /// when that is due), its own rate limits and its own review.
    async fn on_execute(&mut self, portal: &str, segment: u64) -> Result<Action, RelayEnd> {
        self.seq += 1;
        let (answered, ended_outside) = answered_view(&mut self.names, self.shared);
        let live = self.gate.live_version();
        let found = match self.names.portal(portal, segment, answered, ended_outside) {
            Lookup::Ready(bound) => Some(Execution {
                text: Arc::clone(&bound.text),
                decided: bound.decided.clone(),
                statement_name: bound.statement.clone(),
                result_formats: bound.result_formats.clone(),
                parameters: bound.parameters,
                described: bound.described,
            }),
            Lookup::Wait(_) | Lookup::Missing => None,
        };
        let Some(mut execution) = found else {
            return Ok(self.unknown_portal(portal));
        };
        let (decision, decided) =
            self.decide_execution(&mut execution, portal, segment, answered, live);
        // The values bound: recorded (masked by the record); shown to a
        // reviewer.
        let (values, unmasked) = match self.names.portal_mut(portal) {
            Some(bound) => (
                if self.recording.recorder.is_some() {
                    bound_values(&bound.bind)
                } else {
                    Vec::new()
                },
                if decided.review.is_some() {
                    command_record::mask_values(
                        &bound_values(&bound.bind),
                        None,
                        usize::MAX,
                        &mut MaskStats::new(),
                    )
                } else {
                    Vec::new()
                },
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut decision = self
            .admit_execution(decision, &decided, &execution.text, &unmasked)
            .await;
        // It runs the statement decided: what that does, whichever of its
        // decisions (inherited, reviewed, refused) this is.
        decision.core.reads_only = decided.reads_only;
        let mask = decision.core.mask.clone().or_else(|| decided.mask.clone());
        let bound = Some((execution.parameters, values.as_slice()));
        self.record(
            "execute",
            &execution.text,
            bound,
            &decision,
            mask.as_deref(),
        );
        let mut prefix = None;
        if decision.core.verdict == GateVerdict::Forward {
            if mask.is_some() && !execution.described {
                // The rows must be masked by column: learn their layout
                // first (the answer is not forwarded).
                let mut describe = Vec::new();
                frontend::encode_describe(&mut describe, b'P', portal);
                prefix = Some(describe);
                self.pending.push(Pending::DescribePortal {
                    portal: portal.to_string(),
                    statement: execution.statement_name.clone(),
                    injected: true,
                });
                if let Some(bound) = self.names.portal_mut(portal) {
                    bound.described = true;
                }
            }
            apply_effects(
                &mut self.names,
                &mut self.cursors,
                &decided.effects,
                decided.touches_cursors,
                Vec::new(),
                &decided.declares,
                segment,
            )?;
        }
        self.pending.push(Pending::Execute {
            seq: self.seq,
            started: self.now,
            mask,
            portal: portal.to_string(),
            statement: execution.statement_name,
            result_formats: execution.result_formats,
            copy: crate::copy_format::copy_outputs(&execution.text),
        });
        Ok(Action::Command {
            kind: CommandKind::Execute,
            verdict: decision.core.verdict,
            prefix,
        })
    }

    /// The refusal of an `Execute` of a portal the gateway cannot vouch for.
    fn unknown_portal(&mut self, portal: &str) -> Action {
        self.gate.core().rejected(Rejection::UnknownStatement);
        let decision = unknown_name(
            Object::Portal,
            format!(
                "airlock: portal \"{portal}\" was not bound through the gateway in this \
                 transaction: bind it with Bind; SQL cursors are read with FETCH"
            ),
        );
        self.record("execute", portal, None, &decision, None);
        self.pending.push(Pending::Execute {
            seq: self.seq,
            started: self.now,
            mask: None,
            portal: portal.to_string(),
            statement: String::new(),
            result_formats: Vec::new(),
            copy: Vec::new(),
        });
        Action::Command {
            kind: CommandKind::Execute,
            verdict: decision.core.verdict,
            prefix: None,
        }
    }

    /// The decision an execution runs under: its statement's, or a new one
    /// when the policy version changed or the statement runs an SQL
    /// `EXECUTE` (decided as a `Parse`: rate limits and reviews then apply
    /// to this execution in [`Self::admit_execution`]).
    fn decide_execution(
        &mut self,
        execution: &mut Execution,
        portal: &str,
        segment: u64,
        answered: u64,
        live: i64,
    ) -> (GateDecision, Arc<Decided>) {
        let redecide = match &execution.decided {
            None => true,
            Some(decided) => decided.again || decided.version != live,
        };
        if !redecide {
            let decided = execution
                .decided
                .take()
                .unwrap_or_else(|| Arc::new(Decided::of(&GateDecision::inherited(), "")));
            let mut decision = GateDecision::inherited();
            decision.core.mask = decided.mask.clone();
            decision.core.version = decided.version;
            return (decision, decided);
        }
        let text = &execution.text;
        let again = execution
            .decided
            .as_ref()
            .is_none_or(|decided| decided.again);
        let view = if again {
            prepared_view(&self.names, &self.cursors, segment, answered)
        } else {
            PreparedView::default()
        };
        let mut decision = self.gate.check(CommandKind::Parse, text, &view);
        if decision.core.review.is_some() {
            decision.core.verdict = GateVerdict::Forward;
        }
        let fresh = Arc::new(Decided::of(&decision, text));
        if !again && decision.core.verdict == GateVerdict::Forward {
            // Remember the new decision for later executions.
            if let Some(prepared) = self.names.statement_mut(&execution.statement_name) {
                if Arc::ptr_eq(&prepared.text, text) {
                    prepared.decided = Some(Arc::clone(&fresh));
                }
            }
            if let Some(bound) = self.names.portal_mut(portal) {
                bound.decided = Some(Arc::clone(&fresh));
            }
        }
        (decision, fresh)
    }

    /// Consumes the execution's rate limits, then holds it for review when
    /// its statement is reviewed (shown with the values bound).
    async fn admit_execution(
        &mut self,
        mut decision: GateDecision,
        decided: &Decided,
        text: &str,
        unmasked: &[Option<String>],
    ) -> GateDecision {
        if decision.core.verdict == GateVerdict::Forward {
            if let Some(refusal) = self.gate.admit(&decided.rate_limits, decided.version) {
                decision = refusal;
            }
        }
        if decision.core.verdict == GateVerdict::Forward {
            if let Some(template) = &decided.review {
                let review =
                    self.gate
                        .review_execution(template, text, unmasked, decided.mask.as_deref());
                let shared = self.shared;
                self.reviewed = true;
                let mut resolved = self
                    .gate
                    .resolve(review, self.recording.session_id, |text| {
                        send_notice(shared, &text)
                    })
                    .await;
                resolved.core.mask = decided.mask.clone();
                decision = resolved;
            }
        }
        decision
    }

    /// Audit before forward: one durable write for the whole batch. Gives
    /// the failure when it could not be written (every command of the batch
    /// is then refused: fail closed); hands the batch's pending responses
    /// to the tracker.
    async fn record_batch(&mut self) -> Option<String> {
        let mut audit_failure: Option<String> = None;
        if let Some(recorder) = self.recording.recorder {
            if !self.events.is_empty() {
                let effect = std::mem::replace(&mut self.effect, Effect::ReadOnly);
                if let Err(error) = recorder
                    .record_as(std::mem::take(&mut self.events), effect)
                    .await
                {
                    tracing::error!(session = self.recording.session_id, %error, "refusing commands: audit write failed");
                    audit_failure = Some(error.to_string());
                }
            }
        }
        if !self.pending.is_empty() {
            if let Ok(mut queue) = self.shared.pending_results.lock() {
                queue.extend(self.pending.drain(..));
            }
        }
        audit_failure
    }
}

/// Writes the recorded batch into `out`: each frame as it came, or, for a
/// refused command (every command when the record failed), the failing
/// statement in its place, with the refusal queued for the way back.
fn forward_batch(
    out: &mut Vec<u8>,
    frames: &mut Vec<(airlock_pg::Frame, Action)>,
    audit_failure: Option<&str>,
    shared: &Shared,
    stats: &RelayStats,
) {
    for (frame, action) in frames.drain(..) {
        let (kind, verdict) = match action {
            Action::Forward => {
                if frame.tag() == frontend::tag::SYNC {
                    shared.segments_sent.fetch_add(1, Ordering::AcqRel);
                }
                out.extend_from_slice(frame.as_bytes());
                continue;
            }
            Action::Command {
                kind,
                verdict,
                prefix,
            } => {
                if let Some(prefix) = prefix {
                    out.extend_from_slice(&prefix);
                }
                match (audit_failure, verdict) {
                    (Some(failure), _) => (
                        kind,
                        GateVerdict::Refuse(Refusal::RecordingUnavailable {
                            message: format!("airlock: command refused: {failure}"),
                        }),
                    ),
                    (None, verdict) => (kind, verdict),
                }
            }
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
                queue_refusal(shared, segment, errors::refusal(&error));
                frontend::encode_query(out, &shared.marker);
            }
            (_, GateVerdict::Forward) => out.extend_from_slice(frame.as_bytes()),
            (_, GateVerdict::Refuse(error)) => {
                // The segment ends at the next Sync. A Parse that fails
                // creates nothing, so the marker name is harmless.
                let segment = shared.segments_sent.load(Ordering::Acquire) + 1;
                stats.refused.fetch_add(1, Ordering::Relaxed);
                queue_refusal(shared, segment, errors::refusal(&error));
                frontend::encode_parse(out, &shared.marker, &shared.marker);
            }
        }
    }
}

/// The client half: decodes whole frames, decides each batch (see
/// [`ClientHalf`]), records it, then forwards it.
async fn client_to_upstream<CR, UW>(
    client_read: &mut CR,
    mut buf: BytesMut,
    upstream_write: &mut UW,
    half: &mut ClientHalf<'_, '_>,
    stats: &RelayStats,
    max_message_bytes: usize,
) -> RelayEnd
where
    CR: AsyncRead + Unpin + ?Sized,
    UW: AsyncWrite + Unpin + ?Sized,
{
    let shared = half.shared;
    let decoder = FrameDecoder::new(max_message_bytes);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut frames = Vec::new();
    // A frame taken off the buffer that must wait for the upstream's answer
    // to earlier segments before it can be decided.
    let mut held: Option<airlock_pg::Frame> = None;
    loop {
        out.clear();
        frames.clear();
        half.events.clear();
        half.pending.clear();
        half.reviewed = false;
        let mut terminate = false;
        half.now = Instant::now();
        loop {
            let frame = match held.take() {
                Some(frame) => frame,
                None => match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(error) => return RelayEnd::ClientProtocolError(error.to_string()),
                },
            };
            let segment = half.ends + 1;
            let action = {
                let message = match decode_frontend(&frame) {
                    Ok(message) => message,
                    Err(error) => return RelayEnd::ClientProtocolError(error.to_string()),
                };
                if let Some(until) = must_wait(&message, &mut half.names, segment, shared) {
                    if frames.is_empty() {
                        // Everything before it is forwarded: wait here.
                        wait_answered(shared, until).await;
                        held = Some(frame);
                        continue;
                    }
                    // Forward what came before it first.
                    held = Some(frame);
                    break;
                }
                match message {
                    FrontendMessage::Terminate => {
                        terminate = true;
                        Action::Forward
                    }
                    message => match half.on_message(message, &frame, segment).await {
                        Ok(action) => action,
                        Err(end) => return end,
                    },
                }
            };
            frames.push((frame, action));
            if terminate {
                break;
            }
        }

        let audit_failure = half.record_batch().await;
        forward_batch(
            &mut out,
            &mut frames,
            audit_failure.as_deref(),
            shared,
            stats,
        );
        if !out.is_empty() {
            if let (Some(meter), false) = (half.recording.meter, half.reviewed) {
                meter.added(half.now.elapsed());
            }
            if let Err(error) = upstream_write.write_all(&out).await {
                return RelayEnd::Io(error.to_string());
            }
        }
        if terminate {
            let _ = upstream_write.flush().await;
            return RelayEnd::ClientTerminated;
        }
        if held.is_some() {
            // A frame waits for the upstream's answer to what was just
            // forwarded: decide it before reading more.
            continue;
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

impl RecordingContext<'_> {
    /// Who, where and the bounds, for the core's records.
    fn scope(&self) -> RecordScope<'_> {
        RecordScope {
            session_id: self.session_id,
            identity: self.identity,
            connection: self.connection,
            sample_rows: self.sample_rows,
            sample_bytes: self.sample_bytes,
            max_statement_bytes: self.max_statement_bytes,
        }
    }
}

/// The `command` event recorded before a command goes upstream (the core's
/// record: the statement, the values and a refusal's message masked).
fn command_event(
    recording: &RecordingContext<'_>,
    seq: u64,
    message: &str,
    text: &str,
    bound: Option<(usize, &[Option<String>])>,
    decision: &GateDecision,
    mask: Option<&MaskPlan>,
) -> NewEvent {
    command_record::command_event(
        &recording.scope(),
        &command_record::CommandEntry {
            seq,
            message,
            text,
            parameters: bound.map(|(count, _)| count).unwrap_or(0),
            values: bound.map(|(_, values)| values).unwrap_or_default(),
            decision: &decision.core,
            mask,
            request: None,
            kubernetes: None,
        },
    )
}

/// Queues a NoticeResponse for the client.
fn send_notice(shared: &Shared, text: &str) {
    let mut notice = Vec::new();
    backend::encode_notice(&mut notice, &errors::notice(text));
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

/// The upstream half's state across reads: the tracker, the results it
/// finished, and whether the upstream's last word was a FATAL error.
struct UpstreamHalf<'a, 'r> {
    shared: &'a Shared,
    recording: &'a RecordingContext<'r>,
    tracker: ResultTracker,
    finished: Vec<CommandResult>,
    /// The upstream's last word was a FATAL error, relayed as it came: the
    /// client needs no second one from the gateway when the connection
    /// ends.
    fatal_relayed: bool,
}

impl<'a, 'r> UpstreamHalf<'a, 'r> {
    fn new(shared: &'a Shared, recording: &'a RecordingContext<'r>) -> Self {
        Self {
            shared,
            recording,
            tracker: ResultTracker::new(recording.sample_rows, recording.sample_bytes),
            finished: Vec::new(),
            fatal_relayed: false,
        }
    }

    /// Scans the whole frames at the start of `buf` (after `passthrough`
    /// bytes of a frame already partly forwarded), collecting in `out` what
    /// to forward where a frame is replaced. Answers how far `buf` is
    /// forwarded and from where `out` lacks its rest.
    fn scan(
        &mut self,
        buf: &[u8],
        passthrough: &mut usize,
        out: &mut Vec<u8>,
    ) -> Result<(usize, usize), RelayEnd> {
        let mut position = (*passthrough).min(buf.len());
        *passthrough -= position;
        let mut copied_until = 0usize;
        while position < buf.len() {
            let rest = buf.get(position..).unwrap_or_default();
            let (tag, total) = match peek_frame(rest, MAX_UPSTREAM_INSPECTED_BYTES) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(error) => return Err(RelayEnd::UpstreamProtocolError(error.to_string())),
            };
            if rest.len() < total {
                let streamable = self
                    .shared
                    .pending_results
                    .lock()
                    .map(|queue| self.tracker.may_stream(tag, &queue))
                    .unwrap_or(false);
                if streamable {
                    // Stream a large row or COPY chunk on without holding it.
                    *passthrough = total - rest.len();
                    position = buf.len();
                }
                break;
            }
            let frame_end = position + total;
            let frame = rest.get(..total).unwrap_or_default();
            if let Some(replacement) = self.on_frame(tag, frame)? {
                out.extend_from_slice(buf.get(copied_until..position).unwrap_or_default());
                out.extend_from_slice(&replacement);
                copied_until = frame_end;
            }
            position = frame_end;
        }
        Ok((position, copied_until))
    }

    /// Inspects one whole frame: what to forward in its place, if anything
    /// (a refusal's error, a masked row).
    fn on_frame(&mut self, tag: u8, frame: &[u8]) -> Result<Option<Vec<u8>>, RelayEnd> {
        let shared = self.shared;
        let mut replacement: Option<Vec<u8>> = None;
        match tag {
            backend::tag::PARAMETER_STATUS => {
                if let Some(encoding) = reported_client_encoding(frame) {
                    if !airlock_pg::encoding::is_ascii_safe_encoding(encoding) {
                        // However it was changed, the gateway would no
                        // longer read statements as the server does.
                        return Err(RelayEnd::Killed(format!(
                            "the session's client_encoding became \"{encoding}\", which the gateway does not support"
                        )));
                    }
                }
            }
            backend::tag::ERROR_RESPONSE if shared.has_pending.load(Ordering::Acquire) => {
                if let Some(error) = take_refusal(shared, frame.get(5..).unwrap_or_default()) {
                    let mut refusal = Vec::new();
                    encode_error(&mut refusal, &error);
                    replacement = Some(refusal);
                }
            }
            _ => {}
        }
        if tag == backend::tag::ERROR_RESPONSE && replacement.is_none() {
            self.fatal_relayed = is_fatal(frame);
        }
        if tracked(tag) {
            let Ok(mut queue) = shared.pending_results.lock() else {
                return Err(RelayEnd::UpstreamProtocolError(
                    "internal state poisoned".into(),
                ));
            };
            let seen = replacement.as_deref().unwrap_or(frame);
            match self.tracker.on_frame(seen, &mut queue, &mut self.finished) {
                Ok(Some(masked)) => replacement = Some(masked),
                Ok(None) => {}
                Err(error) => return Err(RelayEnd::UpstreamProtocolError(error.0)),
            }
        }
        if tag == backend::tag::READY_FOR_QUERY {
            self.segment_answered(frame);
        }
        Ok(replacement)
    }

    /// A `ReadyForQuery`: counted only after the tracker reported what the
    /// segment's server rejected (the request side reads the count, then
    /// the failures).
    fn segment_answered(&mut self, frame: &[u8]) {
        let shared = self.shared;
        let failed = self.tracker.take_failed();
        if !failed.is_empty() {
            if let Ok(mut failures) = shared.failures.lock() {
                failures.extend(failed);
                shared.has_failures.store(true, Ordering::Release);
            }
        }
        let done = self.tracker.answered();
        if frame.get(5).copied() != Some(b'T') {
            shared.ended_outside.store(done, Ordering::Release);
        }
        shared.segments_done.store(done, Ordering::Release);
        shared.answered.notify_waiters();
        if shared.has_pending.load(Ordering::Acquire) {
            drop_finished_refusals(shared, done);
        }
    }

    /// Records the results finished so far (they ride along with the next
    /// journal write).
    async fn record_finished(&mut self) {
        if self.finished.is_empty() {
            return;
        }
        if let Some(meter) = self.recording.meter {
            for result in &self.finished {
                meter.answered(
                    std::time::Duration::from_micros(result.duration_us),
                    result
                        .masked
                        .iter()
                        .map(|(detector, count)| (detector.as_str(), *count)),
                );
            }
        }
        if let Some(recorder) = self.recording.recorder {
            let recording = self.recording;
            let events = self
                .finished
                .drain(..)
                .map(|result| result.event(&recording.scope()))
                .collect();
            recorder.record_later(events).await;
        } else {
            self.finished.clear();
        }
    }
}

/// The upstream half: scans frame headers and forwards whole buffers, with
/// the frames that must change (see [`UpstreamHalf::on_frame`]) replaced;
/// writes the notices the client half queues; ends the session when it is
/// killed, revoked or expires.
async fn upstream_to_client<UR, CW>(
    upstream_read: &mut UR,
    mut buf: BytesMut,
    client_write: &mut CW,
    kill: &mut watch::Receiver<Option<String>>,
    deadline: Option<(tokio::time::Instant, Expiry)>,
    half: &mut UpstreamHalf<'_, '_>,
    stats: &RelayStats,
) -> RelayEnd
where
    UR: AsyncRead + Unpin + ?Sized,
    CW: AsyncWrite + Unpin + ?Sized,
{
    let shared = half.shared;
    // Bytes of a frame already partly forwarded that still pass unparsed.
    let mut passthrough: usize = 0;
    let mut out: Vec<u8> = Vec::new();
    let expiry = async {
        match deadline {
            Some((deadline, _)) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        if !buf.is_empty() {
            out.clear();
            let (forwarded, copied_until) = match half.scan(&buf, &mut passthrough, &mut out) {
                Ok(scanned) => scanned,
                Err(end) => return end,
            };
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
            half.record_finished().await;
        }
        tokio::select! {
            biased;
            changed = kill.changed() => {
                let reason = kill.borrow().clone();
                match (changed, reason) {
                    (Ok(()), Some(reason)) => return RelayEnd::Revoked(reason),
                    (Ok(()), None) => continue,
                    // The registry is gone: the gateway is shutting down.
                    (Err(_), _) => return RelayEnd::Shutdown,
                }
            }
            () = &mut expiry => return RelayEnd::Expired(match deadline.map(|(_, what)| what) {
                Some(Expiry::Grant) => "the access grant that admitted this session expired".into(),
                _ => "the token that opened this session expired".into(),
            }),
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
                Ok(0) if half.fatal_relayed => return RelayEnd::UpstreamEndedWithError,
                Ok(0) => return RelayEnd::UpstreamClosed,
                Ok(read) => {
                    stats.bytes_from_upstream.fetch_add(read as u64, Ordering::Relaxed);
                }
                Err(error) => return RelayEnd::Io(error.to_string()),
            }
        }
    }
}

/// True for an `ErrorResponse` frame of severity FATAL or PANIC.
fn is_fatal(frame: &[u8]) -> bool {
    backend::decode_error_fields(frame.get(5..).unwrap_or_default())
        .is_ok_and(|fields| matches!(fields.severity.as_str(), "FATAL" | "PANIC"))
}

/// The value of a `ParameterStatus` frame reporting `client_encoding`.
fn reported_client_encoding(frame: &[u8]) -> Option<&str> {
    let body = frame.get(5..)?;
    let mut parts = body.split(|byte| *byte == 0);
    let name = parts.next()?;
    if name != b"client_encoding" {
        return None;
    }
    std::str::from_utf8(parts.next()?).ok()
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
            | backend::tag::COPY_IN_RESPONSE
            | backend::tag::NOTIFICATION_RESPONSE
            | backend::tag::PARAMETER_STATUS
            | b'1'
            | b'2'
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

/// Maps a codec error to the message a client sees.
pub fn protocol_error_message(error: &PgCodecError) -> String {
    format!("airlock: invalid protocol message: {error}")
}
