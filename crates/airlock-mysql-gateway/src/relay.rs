//! The command relay: one client command at a time, each through the gate
//! before a byte of it goes upstream.
//!
//! MySQL answers commands in order, so the relay reads one command, decides
//! it, records it (audit before forward: a command whose record cannot be
//! written is refused), forwards it and relays the whole answer before it
//! reads the next. Pipelined commands wait in the client's socket buffer:
//! none can slip past its decision, and the buffer holds at most one packet
//! (bounded by the codec). The kill switch and the token's (or grant's)
//! expiry end the session while it waits on either side.
//!
//! What runs SQL is decided: `COM_QUERY`, `COM_STMT_PREPARE` (its
//! executions, bulk ones included, consume rate limits and reviews), `COM_INIT_DB` (as `USE`),
//! `COM_FIELD_LIST` (as `SHOW COLUMNS`). What runs nothing passes
//! (`COM_PING`, `COM_STATISTICS`, `COM_SET_OPTION`, `COM_RESET_CONNECTION`,
//! statement close/reset/long data for ids the gateway knows). Everything
//! else is refused: `COM_CHANGE_USER` (it would change who is logged in
//! upstream), replication, the deprecated server commands, unknown bytes.
//! MariaDB's `COM_STMT_BULK_EXECUTE` is decided as one execution of its
//! prepared statement, where both sides negotiated bulk operations. `KILL` and `COM_PROCESS_KILL` are mapped to the
//! upstream thread of a session of the same identity and connection, or
//! refused ([`crate::kill`]).

use std::sync::Arc;

use serde_json::json;

use airlock_core::gate::{Decision, Limits, Refusal, Rejection, Verdict};
use airlock_core::recorder::{Effect, Recorder};
use airlock_mysql::bulk::{BulkValue, StmtBulkExecute};
use airlock_mysql::command::{Command, StmtExecute};
use airlock_mysql::response::{ResponseKind, ResponseTracker};
use airlock_mysql::translate::Translation;
use airlock_mysql::{Capabilities, ErrPacket};

use crate::answer::{Answer, AnswerError};
use crate::errors;
use crate::gate::{field_list_statement, init_db_statement, MySqlGate};
use crate::io::{PacketStream, StreamError};
use crate::kill::{self, ConnectionIds, Kill, KillKind, KillText};
use crate::masking::render_binary;
use crate::record::{command_event, result_event, CommandEntry, CommandResult, RecordingContext};
use crate::schema::{self, Selection};
use crate::statements::{Prepared, Statements};

/// When and why the session must end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Token,
    Grant,
}

/// Why the relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    ClientQuit,
    ClientVanished,
    ClientProtocolError(ErrPacket),
    UpstreamClosed,
    UpstreamProtocolError(String),
    Killed(String),
    Expired(String),
}

impl RelayEnd {
    /// The stable name `session.end` records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientQuit => "client_terminated",
            Self::ClientVanished => "client_vanished",
            Self::ClientProtocolError(_) => "client_protocol_error",
            Self::UpstreamClosed => "upstream_closed",
            Self::UpstreamProtocolError(_) => "upstream_protocol_error",
            Self::Killed(_) => "killed",
            Self::Expired(_) => "expired",
        }
    }

    /// What the record says of it.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::ClientProtocolError(err) => Some(err.message.clone()),
            Self::UpstreamProtocolError(message)
            | Self::Killed(message)
            | Self::Expired(message) => Some(message.clone()),
            Self::ClientQuit | Self::ClientVanished | Self::UpstreamClosed => None,
        }
    }

    /// The error the client reads, when it is still there to read one.
    pub fn client_error(&self) -> Option<ErrPacket> {
        match self {
            Self::ClientProtocolError(err) => Some(err.clone()),
            Self::UpstreamProtocolError(_) => Some(errors::upstream_protocol()),
            Self::UpstreamClosed => {
                Some(errors::session_ended("the upstream closed the connection"))
            }
            Self::Killed(reason) | Self::Expired(reason) => Some(errors::session_ended(reason)),
            Self::ClientQuit | Self::ClientVanished => None,
        }
    }
}

/// What the relay counts for `session.end`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub commands: u64,
    pub refused: u64,
}

/// One session's relay state.
pub struct Relay<'a> {
    pub gate: MySqlGate,
    pub statements: Statements,
    pub recorder: Option<&'a Recorder>,
    pub recording: RecordingContext<'a>,
    /// The capabilities in force with the client.
    pub capabilities: Capabilities,
    /// The upstream's: its answers are read by them, then translated for
    /// the client ([`Translation`]).
    pub upstream_capabilities: Capabilities,
    pub translation: Translation,
    pub counts: Counts,
    /// The gateway's connection ids, to map `KILL`s; without them every
    /// `KILL` is refused.
    pub kills: Option<Arc<ConnectionIds>>,
    /// The connection's upstream database: `COM_INIT_DB` of the
    /// connection's own name selects it.
    pub database: String,
    seq: u64,
    /// When the command being relayed was read (the start of the
    /// gateway-added latency).
    read_at: std::time::Instant,
    /// The command being relayed was held for review: its time is
    /// people's, left out of the gateway-added latency. (An atomic only
    /// because [`Relay::resolve`] takes `&self`; one task touches it.)
    reviewed: std::sync::atomic::AtomicBool,
}

/// What to do after a command.
enum Next {
    Continue,
    End(RelayEnd),
}

impl From<AnswerError> for Next {
    fn from(error: AnswerError) -> Self {
        Next::End(match error {
            AnswerError::Upstream(StreamError::Closed) => RelayEnd::UpstreamClosed,
            AnswerError::Upstream(other) => RelayEnd::UpstreamProtocolError(other.to_string()),
            AnswerError::UpstreamProtocol(error) => {
                RelayEnd::UpstreamProtocolError(error.to_string())
            }
            AnswerError::Client(_) => RelayEnd::ClientVanished,
            AnswerError::InfileTooLarge => RelayEnd::ClientProtocolError(errors::unsupported(
                "LOAD DATA LOCAL INFILE",
                "the file is larger than the gateway relays",
            )),
        })
    }
}

impl<'a> Relay<'a> {
    pub fn new(
        gate: MySqlGate,
        recorder: Option<&'a Recorder>,
        recording: RecordingContext<'a>,
        capabilities: Capabilities,
    ) -> Self {
        Self {
            gate,
            statements: Statements::default(),
            recorder,
            recording,
            capabilities,
            upstream_capabilities: capabilities,
            translation: Translation::default(),
            counts: Counts::default(),
            kills: None,
            database: String::new(),
            seq: 0,
            read_at: std::time::Instant::now(),
            reviewed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Relays until either side ends, the kill switch fires or the
    /// session expires. A client protocol violation that ends it is
    /// counted as a command rejected before the gate.
    pub async fn run(
        &mut self,
        client: &mut PacketStream,
        upstream: &mut PacketStream,
        kill: &mut tokio::sync::watch::Receiver<Option<String>>,
        deadline: Option<(tokio::time::Instant, Expiry)>,
    ) -> RelayEnd {
        let end = self.relay(client, upstream, kill, deadline).await;
        if matches!(end, RelayEnd::ClientProtocolError(_)) {
            self.gate.core().rejected(Rejection::ProtocolViolation);
        }
        end
    }

    async fn relay(
        &mut self,
        client: &mut PacketStream,
        upstream: &mut PacketStream,
        kill: &mut tokio::sync::watch::Receiver<Option<String>>,
        deadline: Option<(tokio::time::Instant, Expiry)>,
    ) -> RelayEnd {
        loop {
            client.codec.reset_sequence();
            let read = tokio::select! {
                read = client.read() => read,
                end = ended(kill, deadline) => return end,
            };
            self.read_at = std::time::Instant::now();
            self.reviewed
                .store(false, std::sync::atomic::Ordering::Relaxed);
            let packet = match read {
                Ok(packet) => packet,
                Err(StreamError::Codec(error)) => {
                    return RelayEnd::ClientProtocolError(errors::client_protocol(&error))
                }
                Err(StreamError::Closed | StreamError::Io(_)) => return RelayEnd::ClientVanished,
            };
            let command = match Command::decode(&packet.payload, self.capabilities) {
                Ok(command) => command,
                Err(error) => {
                    return RelayEnd::ClientProtocolError(errors::client_protocol(&error))
                }
            };
            let next = tokio::select! {
                next = self.command(command, &packet.payload, client, upstream) => next,
                end = ended(kill, deadline) => return end,
            };
            if let Next::End(end) = next {
                return end;
            }
        }
    }

    /// One client command.
    async fn command(
        &mut self,
        command: Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        match command {
            Command::Quit => {
                upstream.codec.reset_sequence();
                let _ = upstream.write(payload).await;
                Next::End(RelayEnd::ClientQuit)
            }
            Command::Ping | Command::Statistics | Command::SetOption { .. } => {
                self.pass(&command, payload, client, upstream).await
            }
            Command::ResetConnection => {
                self.statements.clear();
                self.gate.reset();
                self.pass(&command, payload, client, upstream).await
            }
            Command::Query { ref query } => {
                self.query(query, &command, payload, client, upstream).await
            }
            Command::ProcessKill { connection_id } => {
                let kill = Kill {
                    kind: KillKind::Connection,
                    id: connection_id.into(),
                };
                let text = format!("(COM_PROCESS_KILL {connection_id})");
                self.kill(kill, &text, client, upstream).await
            }
            Command::InitDb { ref schema } => {
                self.init_db(schema, &command, payload, client, upstream)
                    .await
            }
            Command::FieldList { ref table, .. } => {
                let text = field_list_statement(table);
                self.statement("field_list", &text, &command, payload, client, upstream)
                    .await
            }
            Command::StmtPrepare { ref query } => {
                let text = String::from_utf8_lossy(query).into_owned();
                self.prepare(&text, &command, payload, client, upstream)
                    .await
            }
            Command::StmtExecute(ref execute) => {
                self.execute(execute, &command, payload, client, upstream)
                    .await
            }
            Command::StmtBulkExecute(ref bulk) => {
                self.bulk_execute(bulk, &command, payload, client, upstream)
                    .await
            }
            Command::StmtFetch { statement_id, .. } => {
                self.fetch(statement_id, &command, payload, client, upstream)
                    .await
            }
            Command::StmtSendLongData {
                statement_id,
                parameter,
                ..
            } => {
                self.send_long_data(statement_id, parameter, payload, upstream)
                    .await
            }
            Command::StmtClose { statement_id } => {
                self.stmt_close(statement_id, payload, upstream).await
            }
            Command::StmtReset { statement_id } => {
                self.stmt_reset(statement_id, &command, payload, client, upstream)
                    .await
            }
            other => self.unsupported(&other, client).await,
        }
    }

    /// `COM_QUERY`: a `KILL` statement, or a statement to decide.
    async fn query(
        &mut self,
        query: &[u8],
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let text = String::from_utf8_lossy(query).into_owned();
        if let Some(name) = schema::lone_use(&text) {
            if let Some(selection) = self.own_schema(&name) {
                let forwarded = match selection {
                    Selection::Own => command.clone(),
                    Selection::OwnByConnectionName { database } => Command::Query {
                        query: init_db_statement(database.as_bytes()).into_bytes(),
                    },
                };
                return self
                    .select_own("query", &text, &forwarded, client, upstream)
                    .await;
            }
        }
        match kill::kill_text(&text) {
            KillText::None => {
                self.statement("query", &text, command, payload, client, upstream)
                    .await
            }
            KillText::One(kill) => self.kill(kill, &text, client, upstream).await,
            KillText::Other => {
                let err = errors::kill_refused(None);
                self.refuse_text("query", &text, &err, Rejection::Unsupported, client)
                    .await
            }
        }
    }

    /// `COM_INIT_DB`: the connection's own database (or its name, which
    /// selects that database) is a read; any other is decided as the `USE`
    /// it is (`admin`, see [`crate::schema`]).
    async fn init_db(
        &mut self,
        schema: &[u8],
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let text = init_db_statement(schema);
        match self.own_schema(schema) {
            Some(Selection::Own) => {
                self.select_own("init_db", &text, command, client, upstream)
                    .await
            }
            Some(Selection::OwnByConnectionName { database }) => {
                let command = Command::InitDb {
                    schema: database.into_bytes(),
                };
                self.select_own("init_db", &text, &command, client, upstream)
                    .await
            }
            None => {
                self.statement("init_db", &text, command, payload, client, upstream)
                    .await
            }
        }
    }

    /// Whether `name` is the connection's own database (or its name).
    fn own_schema(&self, name: &[u8]) -> Option<Selection> {
        schema::selection(name, &self.database, self.recording.connection)
    }

    /// Selects the connection's own database: decided as a read, recorded
    /// as the client wrote it, `forwarded` (naming the upstream database)
    /// sent upstream.
    async fn select_own(
        &mut self,
        message: &str,
        text: &str,
        forwarded: &Command,
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let Ok(payload) = forwarded.encode(self.capabilities) else {
            return Next::End(RelayEnd::UpstreamProtocolError(format!(
                "cannot encode {message}"
            )));
        };
        let decided = self.gate.decide_own_use(text);
        let decision = self.resolve(decided.decision).await;
        let (next, _) = self
            .run_decided(
                Entry::new(message, text, &[]),
                decision,
                Forwarding::new(ResponseKind::for_command(forwarded), &payload),
                client,
                upstream,
            )
            .await;
        next
    }

    /// `COM_STMT_SEND_LONG_DATA`: forwarded for a known statement, no answer.
    async fn send_long_data(
        &mut self,
        statement_id: u32,
        parameter: u16,
        payload: &[u8],
        upstream: &mut PacketStream,
    ) -> Next {
        // No answer either way: an unknown id's data is dropped (its
        // execution is refused anyway).
        if let Some(statement) = self.statements.get_mut(statement_id) {
            statement.long_data.push(parameter);
            upstream.codec.reset_sequence();
            if upstream.write(payload).await.is_err() {
                return Next::End(RelayEnd::UpstreamClosed);
            }
        }
        Next::Continue
    }

    /// `COM_STMT_CLOSE`: forwarded for a known statement, no answer.
    async fn stmt_close(
        &mut self,
        statement_id: u32,
        payload: &[u8],
        upstream: &mut PacketStream,
    ) -> Next {
        if self.statements.close(statement_id) {
            upstream.codec.reset_sequence();
            if upstream.write(payload).await.is_err() {
                return Next::End(RelayEnd::UpstreamClosed);
            }
        }
        Next::Continue
    }

    /// `COM_STMT_RESET`: passed for a known statement, refused otherwise.
    async fn stmt_reset(
        &mut self,
        statement_id: u32,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        match self.statements.get_mut(statement_id) {
            Some(statement) => {
                statement.long_data.clear();
                self.pass(command, payload, client, upstream).await
            }
            None => {
                let err = errors::unknown_statement(statement_id, "COM_STMT_RESET");
                self.refuse_unsupported("stmt_reset", &err, Rejection::UnknownStatement, client)
                    .await
            }
        }
    }

    /// A command the gateway does not relay: refused with its reason.
    async fn unsupported(&mut self, other: &Command, client: &mut PacketStream) -> Next {
        let err = match other {
            Command::ChangeUser(_) => errors::unsupported(
                "COM_CHANGE_USER",
                "it would change who is logged in upstream; connect again with the other identity's token",
            ),
            Command::Replication { .. } => errors::unsupported(
                "replication",
                "the gateway relays client sessions only",
            ),
            Command::Unknown { code, .. } => errors::unknown_command(*code),
            _ => errors::unsupported(other.name(), "use the SQL statement instead"),
        };
        self.refuse_unsupported(other.name(), &err, Rejection::Unsupported, client)
            .await
    }

    /// Forwards a command that runs nothing and relays its answer.
    async fn pass(
        &mut self,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let Some(tracker) = ResponseTracker::new(command, self.upstream_capabilities) else {
            let err = errors::unsupported(command.name(), "its answer cannot be followed");
            return self
                .refuse_unsupported(command.name(), &err, Rejection::Unsupported, client)
                .await;
        };
        self.observe_added();
        if let Err(end) = forward(upstream, payload).await {
            return Next::End(end);
        }
        let recording = &self.recording;
        let mut answer = Answer::new(
            tracker,
            None,
            self.capabilities,
            recording,
            CommandResult::new(0, "ok"),
            Vec::new(),
        )
        .translated(self.translation);
        match answer.relay(upstream, client).await {
            Ok(()) => Next::Continue,
            Err(error) => error.into(),
        }
    }

    /// A command that amounts to a statement text: decided, recorded,
    /// forwarded, its answer masked and recorded.
    async fn statement(
        &mut self,
        message: &str,
        text: &str,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let decided = self.gate.decide_analyzed(text, Limits::Now);
        let decision = self.resolve(decided.decision).await;
        let forwarded = decision.forwards();
        let mut forwarding = Forwarding::new(ResponseKind::for_command(command), payload);
        if forwarded
            && matches!(command, Command::Query { .. })
            && self.capabilities.contains(Capabilities::LOCAL_FILES)
        {
            // The files this text's decided LOAD DATA LOCAL INFILE
            // statements name: the only ones the server may ask for.
            forwarding.infiles = airlock_sql::mysql_local_infile_names(text);
        }
        let (next, answered) = self
            .run_decided(
                Entry::new(message, text, &[]),
                decision,
                forwarding,
                client,
                upstream,
            )
            .await;
        if let (true, Some(analyzed)) = (forwarded, decided.analyzed) {
            // Forwarded: the server may have run it (even when the client
            // vanished meanwhile), so its PREPAREs count.
            let failed = answered.as_ref().is_none_or(|answered| answered.failed);
            self.gate.ran(&analyzed, failed);
        }
        next
    }

    /// Records, then forwards or refuses; relays the answer when forwarded.
    /// Gives back the answer's prepare confirmation and result columns.
    async fn run_decided(
        &mut self,
        entry: Entry<'_>,
        mut decision: Decision,
        forwarding: Forwarding<'_>,
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> (Next, Option<Answered>) {
        let Entry {
            message,
            text,
            values,
        } = entry;
        let Forwarding {
            kind,
            payload,
            fetch_columns,
            infiles,
        } = forwarding;
        self.seq += 1;
        self.counts.commands += 1;
        let Some(kind) = kind else {
            decision = Decision::refuse(
                Refusal::Unavailable {
                    message: format!("airlock: {message} cannot be relayed"),
                },
                decision.details.clone(),
            );
            return (
                self.refuse(message, text, values, &decision, client).await,
                None,
            );
        };
        if decision.forwards() {
            if let Err(refused) = self.record(message, text, values, &decision).await {
                decision = refused;
            }
        }
        if !decision.forwards() {
            return (
                self.refuse(message, text, values, &decision, client).await,
                None,
            );
        }
        self.observe_added();
        if let Err(end) = forward(upstream, payload).await {
            return (Next::End(end), None);
        }
        let started = std::time::Instant::now();
        let tracker = ResponseTracker::for_kind(kind, self.upstream_capabilities);
        let recording = &self.recording;
        let mut answer = Answer::new(
            tracker,
            decision.mask.clone(),
            self.capabilities,
            recording,
            CommandResult::new(self.seq, "ok"),
            fetch_columns,
        )
        .translated(self.translation);
        answer.allowed_infiles = infiles;
        let relayed = answer.relay(upstream, client).await;
        answer.result.duration_us =
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if answer.infile_refused {
            answer.result.tags.push("LOCAL INFILE refused".into());
        }
        if answer.infile_bytes > 0 {
            answer
                .result
                .tags
                .push(format!("LOCAL INFILE {} bytes", answer.infile_bytes));
        }
        if let Some(meter) = self.gate.core().meter() {
            let masked = answer.result.masked.iter();
            meter.answered(
                started.elapsed(),
                masked.map(|(name, count)| (name.as_str(), *count)),
            );
        }
        if let Some(recorder) = self.recorder {
            recorder
                .record_later(vec![result_event(&self.recording, &answer.result)])
                .await;
        }
        let answered = Answered {
            prepared: answer.prepared,
            columns: std::mem::take(&mut answer.columns),
            failed: answer.result.status == "error",
        };
        match relayed {
            Ok(()) => (Next::Continue, Some(answered)),
            Err(error) => (error.into(), None),
        }
    }

    /// Audit before forward: the refusal to answer with when the record
    /// cannot be written.
    async fn record(
        &self,
        message: &str,
        text: &str,
        values: &[Option<String>],
        decision: &Decision,
    ) -> Result<(), Decision> {
        let Some(recorder) = self.recorder else {
            return Ok(());
        };
        let event = command_event(
            &self.recording,
            &CommandEntry {
                seq: self.seq,
                message,
                text,
                values,
                decision,
            },
        );
        // A complete read need not wait for the disk under `sync: writes`
        // (its record is journaled first); everything else does.
        let effect = if decision.reads_only {
            Effect::ReadOnly
        } else {
            Effect::Effectful
        };
        recorder.record_as(vec![event], effect).await.map_err(|error| {
            tracing::error!(session = self.recording.session_id, %error, "refusing a command: audit write failed");
            Decision::refuse(
                Refusal::RecordingUnavailable {
                    message: "airlock: command refused: the audit log cannot be written".into(),
                },
                json!({"verdict": "recording_unavailable"}),
            )
        })
    }

    /// Records a refused command and answers the client with its error; the
    /// command never reaches the upstream.
    async fn refuse(
        &mut self,
        message: &str,
        text: &str,
        values: &[Option<String>],
        decision: &Decision,
        client: &mut PacketStream,
    ) -> Next {
        self.counts.refused += 1;
        let _ = self.record(message, text, values, decision).await;
        let err = match &decision.verdict {
            Verdict::Refuse(refusal) => errors::refusal(refusal),
            Verdict::Forward => errors::unsupported(message, "refused"),
        };
        tracing::info!(session = self.recording.session_id, code = err.code, message = %err.message, "command refused");
        match client.write(&err.encode()).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::End(RelayEnd::ClientVanished),
        }
    }

    /// Refuses a command the gateway does not relay (with its own error).
    async fn refuse_unsupported(
        &mut self,
        name: &str,
        err: &ErrPacket,
        reason: Rejection,
        client: &mut PacketStream,
    ) -> Next {
        self.refuse_text(name, &format!("({name})"), err, reason, client)
            .await
    }

    /// Refuses a command with the gateway's own error, recording `text`;
    /// counted as rejected before the gate for `reason`.
    async fn refuse_text(
        &mut self,
        name: &str,
        text: &str,
        err: &ErrPacket,
        reason: Rejection,
        client: &mut PacketStream,
    ) -> Next {
        self.gate.core().rejected(reason);
        self.seq += 1;
        self.counts.commands += 1;
        self.counts.refused += 1;
        let decision = Decision::refuse(
            Refusal::Denied {
                message: err.message.clone(),
            },
            json!({"verdict": "unsupported"}),
        );
        let _ = self.record(name, text, &[], &decision).await;
        match client.write(&err.encode()).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::End(RelayEnd::ClientVanished),
        }
    }

    /// What the gateway added to the command about to be forwarded, from
    /// reading it (deciding, recording, waiting for the journal); a
    /// command held for review is left out, as for PostgreSQL.
    fn observe_added(&self) {
        if let Some(meter) = self.gate.core().meter() {
            if !self.reviewed.load(std::sync::atomic::Ordering::Relaxed) {
                meter.added(self.read_at.elapsed());
            }
        }
    }

    /// Holds a command a rule sends for review until it is resolved.
    async fn resolve(&self, decision: Decision) -> Decision {
        if decision.review.is_none() {
            return decision;
        }
        self.reviewed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let session_id = self.recording.session_id;
        self.gate
            .core()
            .resolve(decision, session_id, |notice| {
                // MySQL has no asynchronous notices: the client waits, and
                // reads the review id in the error if it is not approved.
                tracing::info!(session = session_id, %notice, "command held for review");
            })
            .await
    }

    /// A `KILL` of one id: sent upstream for the upstream thread of a
    /// session of the same identity and connection, refused otherwise (see
    /// [`crate::kill`]).
    async fn kill(
        &mut self,
        kill: Kill,
        text: &str,
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let thread = self.kills.as_ref().and_then(|ids| {
            ids.upstream_thread(kill.id, self.recording.identity, self.recording.connection)
        });
        let Some(thread) = thread else {
            let err = errors::kill_refused(Some(kill.id));
            return self
                .refuse_text("kill", text, &err, Rejection::Unsupported, client)
                .await;
        };
        let command = Command::Query {
            query: kill::upstream_statement(kill.kind, thread).into_bytes(),
        };
        let Ok(payload) = command.encode(self.capabilities) else {
            return Next::End(RelayEnd::UpstreamProtocolError("cannot encode KILL".into()));
        };
        let mut decision = Decision::forward();
        decision.details =
            json!({"verdict": "kill", "gateway_id": kill.id, "upstream_thread": thread}).into();
        decision.version = self.gate.core().live_version();
        self.run_decided(
            Entry::new("kill", text, &[]),
            decision,
            Forwarding::new(ResponseKind::for_command(&command), &payload),
            client,
            upstream,
        )
        .await
        .0
    }

    /// `COM_STMT_PREPARE`: the text is decided now; rate limits and reviews
    /// apply at each execution.
    async fn prepare(
        &mut self,
        text: &str,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let decided = self.gate.decide(text, Limits::AtEachExecution);
        // A statement held for review is prepared (preparing runs nothing)
        // and each execution is reviewed with its values.
        let mut forwarded = decided.clone();
        if decided.review.is_some() {
            forwarded.verdict = Verdict::Forward;
        }
        if self.statements.is_full() {
            forwarded = Decision::refuse(
                Refusal::Denied {
                    message: "airlock: too many prepared statements in this session; close some"
                        .into(),
                },
                decided.details.clone(),
            );
        }
        let kind = ResponseKind::for_command(command);
        let (next, answered) = self
            .run_decided(
                Entry::new("prepare", text, &[]),
                forwarded,
                Forwarding::new(kind, payload),
                client,
                upstream,
            )
            .await;
        match answered.and_then(|answered| answered.prepared) {
            Some(ok) => self.statements.prepared(
                ok.statement_id,
                Prepared {
                    text: Arc::from(text),
                    decision: decided,
                    parameter_count: ok.parameter_count,
                    types: None,
                    long_data: Vec::new(),
                    columns: Vec::new(),
                },
            ),
            None => self.statements.prepare_failed(),
        }
        next
    }

    /// `COM_STMT_EXECUTE`: only statements prepared through the gateway,
    /// under the decision taken then, with this execution's rate limits
    /// and review.
    async fn execute(
        &mut self,
        execute: &StmtExecute,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        // Borrowed, not cloned: a clone copied the decision (its JSON
        // details, review template, rate limits) and the result columns at
        // every execution.
        let Some(statement) = self.statements.get(execute.statement_id) else {
            let err = errors::unknown_statement(execute.statement_id, "COM_STMT_EXECUTE");
            return self
                .refuse_unsupported("execute", &err, Rejection::UnknownStatement, client)
                .await;
        };
        let parameters = execute.parameters(
            usize::from(statement.parameter_count),
            statement.types.as_deref(),
            &statement.long_data,
        );
        let (values, types) = match parameters {
            Ok(parameters) => (
                parameters
                    .values
                    .iter()
                    .map(|value| value.as_ref().and_then(render_binary))
                    .collect::<Vec<_>>(),
                parameters.types,
            ),
            Err(error) => {
                let err = errors::unsupported(
                    "COM_STMT_EXECUTE",
                    &format!("its parameters cannot be read ({error})"),
                );
                return self
                    .refuse_unsupported("execute", &err, Rejection::ProtocolViolation, client)
                    .await;
            }
        };
        let text = Arc::clone(&statement.text);
        let decision = self.execution_decision(statement, &values, None).await;
        if let Some(stored) = self.statements.get_mut(execute.statement_id) {
            stored.types = Some(types);
            stored.long_data.clear();
        }
        let kind = ResponseKind::for_command(command);
        let (next, answered) = self
            .run_decided(
                Entry::new("execute", &text, &values),
                decision,
                Forwarding::new(kind, payload),
                client,
                upstream,
            )
            .await;
        if let (Some(answered), Some(stored)) =
            (answered, self.statements.get_mut(execute.statement_id))
        {
            if !answered.columns.is_empty() {
                stored.columns = answered.columns;
            }
        }
        next
    }

    /// MariaDB's `COM_STMT_BULK_EXECUTE`: decided as one execution of the
    /// prepared statement (its classification, this execution's rate
    /// limits and review), recorded with its row count and first row,
    /// relayed only where both sides negotiated bulk operations.
    async fn bulk_execute(
        &mut self,
        bulk: &StmtBulkExecute,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let negotiated = Capabilities::MARIADB_STMT_BULK_OPERATIONS;
        if !self.capabilities.contains(negotiated)
            || !self.upstream_capabilities.contains(negotiated)
        {
            let err = errors::unsupported(
                "COM_STMT_BULK_EXECUTE",
                "the upstream does not offer bulk operations; execute the statement once per row",
            );
            return self
                .refuse_unsupported("bulk_execute", &err, Rejection::Unsupported, client)
                .await;
        }
        let Some(statement) = self.statements.get(bulk.statement_id) else {
            let err = errors::unknown_statement(bulk.statement_id, "COM_STMT_BULK_EXECUTE");
            return self
                .refuse_unsupported("bulk_execute", &err, Rejection::UnknownStatement, client)
                .await;
        };
        // Long data belongs to one execution; a bulk carries its values
        // inline, and the server would mix the two.
        let decoded = if statement.long_data.is_empty() {
            bulk.rows(
                usize::from(statement.parameter_count),
                statement.types.as_deref(),
                1,
            )
        } else {
            Err(airlock_mysql::MySqlCodecError::Unsupported {
                what: "long data before COM_STMT_BULK_EXECUTE",
            })
        };
        let rows = match decoded {
            Ok(rows) => rows,
            Err(error) => {
                let err = errors::unsupported(
                    "COM_STMT_BULK_EXECUTE",
                    &format!("its rows cannot be read ({error})"),
                );
                return self
                    .refuse_unsupported("bulk_execute", &err, Rejection::ProtocolViolation, client)
                    .await;
            }
        };
        let values: Vec<Option<String>> = rows
            .rows
            .first()
            .map(|row| row.iter().map(render_bulk).collect())
            .unwrap_or_default();
        let text = Arc::clone(&statement.text);
        let mut decision = self
            .execution_decision(statement, &values, Some(rows.count))
            .await;
        let count = u64::try_from(rows.count).unwrap_or(u64::MAX);
        decision.details = std::mem::take(&mut decision.details).with("bulk_rows", count);
        if let Some(stored) = self.statements.get_mut(bulk.statement_id) {
            stored.types = Some(rows.types);
        }
        let kind = ResponseKind::for_command(command);
        self.run_decided(
            Entry::new("bulk_execute", &text, &values),
            decision,
            Forwarding::new(kind, payload),
            client,
            upstream,
        )
        .await
        .0
    }

    /// The decision for one execution of a prepared statement.
    /// `bulk_rows`: the row count of a bulk execution, whose `values` are
    /// its first row (the reviewer sees both).
    async fn execution_decision(
        &self,
        statement: &Prepared,
        values: &[Option<String>],
        bulk_rows: Option<usize>,
    ) -> Decision {
        let decided = &statement.decision;
        // The decision taken at prepare, without what this execution
        // consumes itself (the review template, the rate limits): those are
        // not copied only to be dropped.
        let decision = Decision {
            verdict: decided.verdict.clone(),
            details: decided.details.clone(),
            mask: decided.mask.clone(),
            mask_fields: decided.mask_fields.clone(),
            review: None,
            version: decided.version,
            rate_limits: Vec::new(),
            reads_only: decided.reads_only,
        };
        if let Some(template) = &decided.review {
            let mut shown = statement.text.to_string();
            if let Some(rows) = bulk_rows {
                shown.push_str(&format!(
                    "\n-- bulk execution of {rows} rows, the first shown"
                ));
            }
            if !values.is_empty() {
                let rendered: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(index, value)| match value {
                        Some(value) => format!("?{} = '{}'", index + 1, value.replace('\'', "''")),
                        None => format!("?{} = NULL", index + 1),
                    })
                    .collect();
                shown.push_str(&format!("\n-- with {}", rendered.join(", ")));
            }
            let review =
                self.gate
                    .core()
                    .review_execution(template, shown, decided.mask.as_deref());
            let mut resolved = self.resolve(review).await;
            resolved.mask = decided.mask.clone();
            return resolved;
        }
        if decision.forwards() {
            if let Some(limited) = self
                .gate
                .core()
                .admit(&decided.rate_limits, decided.version)
            {
                return Decision {
                    mask: decided.mask.clone(),
                    ..limited
                };
            }
        }
        decision
    }

    /// `COM_STMT_FETCH`: more rows of an execution decided before, masked
    /// by its statement's plan.
    async fn fetch(
        &mut self,
        statement_id: u32,
        command: &Command,
        payload: &[u8],
        client: &mut PacketStream,
        upstream: &mut PacketStream,
    ) -> Next {
        let Some(statement) = self.statements.get(statement_id).cloned() else {
            let err = errors::unknown_statement(statement_id, "COM_STMT_FETCH");
            return self
                .refuse_unsupported("fetch", &err, Rejection::UnknownStatement, client)
                .await;
        };
        // Rows of an execution decided (and reviewed) at its execute; a
        // statement refused at prepare has no execution to fetch from.
        let mut decision = statement.decision.clone();
        if decision.review.take().is_some() {
            decision.verdict = Verdict::Forward;
        }
        decision.rate_limits = Vec::new();
        let kind = ResponseKind::for_command(command);
        let forwarding = Forwarding {
            kind,
            payload,
            fetch_columns: statement.columns,
            infiles: Vec::new(),
        };
        self.run_decided(
            Entry::new("fetch", &statement.text, &[]),
            decision,
            forwarding,
            client,
            upstream,
        )
        .await
        .0
    }
}

/// What an answer told the relay.
struct Answered {
    prepared: Option<airlock_mysql::response::PrepareOk>,
    columns: Vec<airlock_mysql::column::ColumnDefinition>,
    /// The answer held an error.
    failed: bool,
}

/// What the record of one command says: its kind, text and values.
struct Entry<'e> {
    message: &'e str,
    text: &'e str,
    values: &'e [Option<String>],
}

impl<'e> Entry<'e> {
    fn new(message: &'e str, text: &'e str, values: &'e [Option<String>]) -> Self {
        Self {
            message,
            text,
            values,
        }
    }
}

/// What forwarding one command takes: the answer to follow, the packet,
/// and for a fetch the columns of the execution it continues.
struct Forwarding<'p> {
    kind: Option<ResponseKind>,
    payload: &'p [u8],
    fetch_columns: Vec<airlock_mysql::column::ColumnDefinition>,
    /// The client files the server may ask for while answering.
    infiles: Vec<String>,
}

impl<'p> Forwarding<'p> {
    fn new(kind: Option<ResponseKind>, payload: &'p [u8]) -> Self {
        Self {
            kind,
            payload,
            fetch_columns: Vec::new(),
            infiles: Vec::new(),
        }
    }
}

/// One bulk value as the record shows it: a value as an execution's, the
/// indicators by name.
fn render_bulk(value: &BulkValue) -> Option<String> {
    match value {
        BulkValue::Value(value) => render_binary(value),
        BulkValue::Null => None,
        BulkValue::Default => Some("DEFAULT".into()),
        BulkValue::Ignore => Some("IGNORE".into()),
    }
}

/// Sends a command upstream (sequence id 0).
async fn forward(upstream: &mut PacketStream, payload: &[u8]) -> Result<(), RelayEnd> {
    upstream.codec.reset_sequence();
    upstream.write(payload).await.map_err(|error| match error {
        StreamError::Codec(error) => RelayEnd::ClientProtocolError(errors::client_protocol(&error)),
        _ => RelayEnd::UpstreamClosed,
    })
}

/// Resolves when the kill switch fires or the session expires.
async fn ended(
    kill: &mut tokio::sync::watch::Receiver<Option<String>>,
    deadline: Option<(tokio::time::Instant, Expiry)>,
) -> RelayEnd {
    let expiry = async move {
        match deadline {
            Some((at, what)) => {
                tokio::time::sleep_until(at).await;
                what
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        what = expiry => RelayEnd::Expired(match what {
            Expiry::Token => "the token expired".into(),
            Expiry::Grant => "the access grant expired".into(),
        }),
        reason = wait_for_kill(kill) => RelayEnd::Killed(reason),
    }
}

/// Resolves with the reason when the session's kill switch fires.
async fn wait_for_kill(kill: &mut tokio::sync::watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = kill.borrow_and_update().clone() {
            return reason;
        }
        if kill.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
