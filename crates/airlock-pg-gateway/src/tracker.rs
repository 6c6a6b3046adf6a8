//! The response side of a session, as pure state: matching upstream
//! responses to the requests that caused them, masking what a command's
//! mask plan covers, and collecting each command's outcome for the record.
//!
//! The client half pushes a [`Pending`] for every request that gets a
//! response the gateway must attribute (`Query`, `Parse`, `Describe`,
//! `Execute`, `Sync`); the upstream half feeds whole response frames to
//! [`ResultTracker::on_frame`], which returns a replacement frame when it
//! masked something. PostgreSQL answers in order, so the front of the queue
//! is always the request being answered.
//!
//! Masking needs each column's name, type and format. A simple query's
//! `RowDescription` precedes its rows; in the extended protocol the rows of
//! an `Execute` usually arrive without one, so the tracker keeps the
//! descriptions that `Describe` responses gave per statement and portal.
//!
//! Under a mask plan, `COPY … TO STDOUT` rows are split into fields with
//! the options the statement gave (see [`crate::copy_format`]; the relay
//! reads them from the statement text into the [`Pending`]), each field is
//! masked and the row re-encoded with the same options. A COPY whose
//! options are not known with certainty, a binary COPY, and a COPY without
//! `HEADER` under a plan with column rules (the columns would be unknown)
//! are refused: the session ends rather than pass rows it cannot mask.
//! `NotificationResponse` payloads and channels, `ParameterStatus` values
//! and every text field of errors and notices are masked with the plan of
//! the command being answered, else the most recent one.
//!
//! Architecture invariant: a sample is taken from the masked frame, so the
//! record never holds a value the client did not see masked.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_pg::backend::{self, decode_data_row, decode_row_description, FieldDescription};
use airlock_pg::copy::{decode_copy_row, encode_copy_row, CopyFormat, CopyKind};

use crate::copy_format::CopyOutput;

use crate::names::{Failed, Space};

/// A request awaiting its response.
#[derive(Debug, Clone)]
pub enum Pending {
    /// A simple `Query` (all its statements until `ReadyForQuery`).
    Simple {
        seq: u64,
        started: Instant,
        mask: Option<Arc<MaskPlan>>,
        /// Statements its `PREPARE`s create (name, id): forgotten if the
        /// query fails.
        prepares: Vec<(String, u64)>,
        /// The segment it is (answered by its `ReadyForQuery`).
        segment: u64,
        /// The outputs of its `COPY … TO STDOUT` statements, in order
        /// ([`crate::copy_format::copy_outputs`] of the query text).
        copy: Vec<CopyOutput>,
    },
    /// A `Parse` (answered by `ParseComplete` or an error).
    Parse { name: String, id: u64 },
    /// A `Bind` (answered by `BindComplete` or an error).
    Bind { portal: String, id: u64 },
    /// A `Describe` of a prepared statement.
    DescribeStatement { name: String },
    /// A `Describe` of a portal bound from `statement`. The gateway sends one
    /// itself (`injected`) before an `Execute` whose rows it must mask when
    /// their layout is not known; its answer is not forwarded.
    DescribePortal {
        portal: String,
        statement: String,
        injected: bool,
    },
    /// An `Execute` (until `CommandComplete`, `PortalSuspended`,
    /// `EmptyQueryResponse` or an error).
    Execute {
        seq: u64,
        started: Instant,
        mask: Option<Arc<MaskPlan>>,
        portal: String,
        statement: String,
        result_formats: Vec<i16>,
        /// The output of the statement if it is a `COPY … TO STDOUT`.
        copy: Vec<CopyOutput>,
    },
    /// A `Sync`: the end of extended-protocol segment `segment`.
    Sync { segment: u64 },
    /// The client's `CopyDone` or `CopyFail`: the end of its COPY data.
    /// `Sync`s sent during a COPY FROM STDIN are ignored by the server.
    CopyEnd,
}

pub use airlock_core::command_record::CommandResult;

/// Why a response cannot be relayed (the session must end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError(pub String);

struct Accumulator {
    result: CommandResult,
    started: Instant,
    sample_bytes: usize,
    /// Layout of the rows being returned.
    fields: Option<Arc<Vec<FieldDescription>>>,
    formats: Vec<i16>,
    /// Which columns a column rule masks, matched on the first row.
    column_rules: Option<Vec<bool>>,
    stats: MaskStats,
}

/// Tracks and masks responses for one session.
pub struct ResultTracker {
    current: Option<Accumulator>,
    statements: HashMap<String, Arc<Vec<FieldDescription>>>,
    portals: HashMap<String, Arc<Vec<FieldDescription>>>,
    sample_rows: usize,
    sample_bytes_cap: usize,
    /// The most recent command's mask: applied to notices that arrive
    /// between commands.
    last_mask: Option<Arc<MaskPlan>>,
    /// The most recent mask plan any command of the session had: a
    /// notification raised under one may be delivered at a later `COMMIT`.
    sticky_mask: Option<Arc<MaskPlan>>,
    copy_binary: bool,
    /// Creations the server rejected or skipped, for the request side.
    failed: Vec<Failed>,
    /// The last segment the server answered with `ReadyForQuery`.
    answered: u64,
    /// The server is in COPY FROM STDIN mode.
    copy_in: bool,
    /// COPY outputs of the front command already begun.
    copies_begun: usize,
    /// The COPY being masked.
    copy: Option<CopyState>,
}

/// A `COPY … TO STDOUT` in progress under a mask plan.
struct CopyState {
    format: CopyFormat,
    /// The next row is the header (column names).
    header_pending: bool,
    /// Per field: masked whole by a column rule (from the header).
    column_rules: Vec<bool>,
}

/// Bound on remembered descriptions per session.
const MAX_DESCRIPTIONS: usize = 10_000;

impl ResultTracker {
    /// A tracker keeping up to `sample_rows` rows and `sample_bytes` bytes
    /// per command.
    pub fn new(sample_rows: usize, sample_bytes: usize) -> Self {
        Self {
            current: None,
            statements: HashMap::new(),
            portals: HashMap::new(),
            sample_rows,
            sample_bytes_cap: sample_bytes,
            last_mask: None,
            sticky_mask: None,
            copy_binary: false,
            failed: Vec::new(),
            answered: 0,
            copy_in: false,
            copies_begun: 0,
            copy: None,
        }
    }

    /// The last segment the server answered (each `Sync` and `Query` is
    /// one; a `Sync` the server ignored during COPY is skipped).
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// A COPY FROM STDIN ended: the `Sync`s the client sent during it were
    /// ignored by the server and earn no `ReadyForQuery`.
    fn end_copy_in(&mut self, pending: &mut VecDeque<Pending>) {
        if !self.copy_in {
            return;
        }
        self.copy_in = false;
        let Some(end) = pending.iter().position(|p| matches!(p, Pending::CopyEnd)) else {
            return;
        };
        let mut index = 0usize;
        let mut remaining = end;
        while remaining > 0 {
            match pending.get(index) {
                Some(Pending::Sync { .. }) => {
                    pending.remove(index);
                }
                Some(_) => index += 1,
                None => break,
            }
            remaining -= 1;
        }
        if let Some(position) = pending.iter().position(|p| matches!(p, Pending::CopyEnd)) {
            pending.remove(position);
        }
    }

    /// Takes the creations the server rejected or skipped since last asked.
    pub fn take_failed(&mut self) -> Vec<Failed> {
        std::mem::take(&mut self.failed)
    }

    /// Records that the creation at the front failed or was skipped.
    fn fail(&mut self, pending: &Pending) {
        match pending {
            Pending::Parse { name, id } => {
                self.statements.remove(name);
                self.failed.push(Failed {
                    space: Space::Statement,
                    name: name.clone(),
                    id: *id,
                });
            }
            Pending::Bind { portal, id } => {
                self.portals.remove(portal);
                self.failed.push(Failed {
                    space: Space::Portal,
                    name: portal.clone(),
                    id: *id,
                });
            }
            Pending::Simple { prepares, .. } => {
                for (name, id) in prepares {
                    self.statements.remove(name);
                    self.failed.push(Failed {
                        space: Space::Statement,
                        name: name.clone(),
                        id: *id,
                    });
                }
            }
            _ => {}
        }
    }

    /// True when a frame of this tag for the current request may be
    /// forwarded in pieces (nothing to mask in it).
    pub fn may_stream(&self, tag: u8, pending: &VecDeque<Pending>) -> bool {
        if !matches!(tag, backend::tag::DATA_ROW | b'd') {
            return false;
        }
        match pending.front() {
            Some(Pending::Simple { mask, .. }) | Some(Pending::Execute { mask, .. }) => {
                mask.is_none()
            }
            _ => true,
        }
    }

    fn front_mask(pending: &VecDeque<Pending>) -> Option<Arc<MaskPlan>> {
        match pending.front() {
            Some(Pending::Simple { mask, .. }) | Some(Pending::Execute { mask, .. }) => {
                mask.clone()
            }
            _ => None,
        }
    }

    /// The plan for messages not tied to a result (notices, notifications):
    /// the front command's, else the most recent command's, else the most
    /// recent plan of the session.
    fn ambient_mask(&self, pending: &VecDeque<Pending>) -> Option<Arc<MaskPlan>> {
        Self::front_mask(pending)
            .or_else(|| self.last_mask.clone())
            .or_else(|| self.sticky_mask.clone())
    }

    fn front_copies(pending: &VecDeque<Pending>) -> &[CopyOutput] {
        match pending.front() {
            Some(Pending::Simple { copy, .. }) | Some(Pending::Execute { copy, .. }) => copy,
            _ => &[],
        }
    }

    /// A `CopyOutResponse` under `plan`: the options the rows are written
    /// with, or why they cannot be masked.
    fn begin_copy(
        &mut self,
        plan: &MaskPlan,
        pending: &VecDeque<Pending>,
    ) -> Result<(), ResponseError> {
        let output = Self::front_copies(pending).get(self.copies_begun).cloned();
        self.copies_begun += 1;
        if self.copy_binary {
            return Err(ResponseError(
                "binary COPY output cannot be masked; use the text format".into(),
            ));
        }
        let Some(CopyOutput::Known(format)) = output else {
            return Err(ResponseError(
                "the options of this COPY could not be read with certainty, so its rows cannot be masked; write them as plain string constants".into(),
            ));
        };
        if format.kind == CopyKind::Binary {
            return Err(ResponseError(
                "binary COPY output cannot be masked; use the text format".into(),
            ));
        }
        if plan.has_column_rules() && !format.header {
            return Err(ResponseError(
                "a COPY under column mask rules needs the HEADER option so its columns are known"
                    .into(),
            ));
        }
        self.copy = Some(CopyState {
            header_pending: format.header,
            format,
            column_rules: Vec::new(),
        });
        Ok(())
    }

    /// Masks one COPY row; `None` when nothing changed.
    fn mask_copy_row(
        state: &mut CopyState,
        plan: &MaskPlan,
        row: &[u8],
        stats: &mut MaskStats,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let (mut fields, line_end) = decode_copy_row(&state.format, row).map_err(|error| {
            ResponseError(format!("a COPY row could not be read for masking: {error}"))
        })?;
        if state.header_pending {
            state.header_pending = false;
            state.column_rules = fields
                .iter()
                .map(|field| {
                    field
                        .value
                        .as_deref()
                        .is_some_and(|name| plan.column_masked(&String::from_utf8_lossy(name)))
                })
                .collect();
            return Ok(None);
        }
        let mut changed = false;
        for (index, field) in fields.iter_mut().enumerate() {
            let Some(value) = &field.value else { continue };
            if state.column_rules.get(index).copied().unwrap_or(false) {
                stats.record("column", 1);
                field.value = Some(
                    plan.mask_whole(&String::from_utf8_lossy(value))
                        .into_bytes(),
                );
                changed = true;
            } else if let std::borrow::Cow::Owned(masked) = plan.mask_bytes(value, stats) {
                field.value = Some(masked);
                changed = true;
            }
        }
        if !changed {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(row.len() + 16);
        encode_copy_row(&state.format, &fields, line_end, &mut data);
        Ok(Some(data))
    }

    /// Starts the accumulator for the command at the front, if it is one.
    fn begin(&mut self, pending: &VecDeque<Pending>) -> bool {
        if self.current.is_some() {
            return true;
        }
        match pending.front() {
            Some(Pending::Simple { seq, started, .. }) => {
                self.current = Some(Accumulator {
                    result: CommandResult::new(*seq, "ok"),
                    started: *started,
                    sample_bytes: 0,
                    fields: None,
                    formats: Vec::new(),
                    column_rules: None,
                    stats: MaskStats::new(),
                });
                true
            }
            Some(Pending::Execute {
                seq,
                started,
                portal,
                statement,
                result_formats,
                ..
            }) => {
                let fields = self
                    .portals
                    .get(portal)
                    .cloned()
                    .or_else(|| self.statements.get(statement).cloned());
                self.current = Some(Accumulator {
                    result: CommandResult::new(*seq, "ok"),
                    started: *started,
                    sample_bytes: 0,
                    fields,
                    formats: result_formats.clone(),
                    column_rules: None,
                    stats: MaskStats::new(),
                });
                true
            }
            _ => false,
        }
    }

    /// Finishes the front command and pops it.
    fn finish_front(&mut self, pending: &mut VecDeque<Pending>, finished: &mut Vec<CommandResult>) {
        if let Some(mut accumulator) = self.current.take() {
            accumulator.result.duration_us =
                u64::try_from(accumulator.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            for (detector, count) in accumulator.stats.iter() {
                accumulator
                    .result
                    .masked
                    .insert(detector.to_string(), count);
            }
            finished.push(accumulator.result);
        } else if let Some(Pending::Simple { seq, .. }) | Some(Pending::Execute { seq, .. }) =
            pending.front()
        {
            finished.push(CommandResult::new(*seq, "ok"));
        }
        if let Some(Pending::Simple { mask, .. } | Pending::Execute { mask, .. }) =
            pending.pop_front()
        {
            if mask.is_some() {
                self.sticky_mask = mask.clone();
            }
            self.last_mask = mask;
        }
        self.copies_begun = 0;
        self.copy = None;
    }

    /// Pops everything up to (not including) the next `Sync`: after an
    /// error the upstream skips those requests.
    fn skip_segment(&mut self, pending: &mut VecDeque<Pending>, finished: &mut Vec<CommandResult>) {
        while let Some(front) = pending.front() {
            match front {
                Pending::Sync { .. } => break,
                Pending::Execute { seq, .. } => finished.push(CommandResult::new(*seq, "skipped")),
                Pending::Simple { seq, .. } => {
                    finished.push(CommandResult::new(*seq, "skipped"));
                    let front = front.clone();
                    self.fail(&front);
                }
                Pending::Parse { .. } | Pending::Bind { .. } => {
                    let front = front.clone();
                    self.fail(&front);
                }
                _ => {}
            }
            pending.pop_front();
        }
    }

    /// Feeds one whole response frame (`frame` includes the 5-byte header).
    /// Returns the frame to send instead when something was masked.
    pub fn on_frame(
        &mut self,
        frame: &[u8],
        pending: &mut VecDeque<Pending>,
        finished: &mut Vec<CommandResult>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let tag = frame.first().copied().unwrap_or(0);
        let body = frame.get(5..).unwrap_or_default();
        match tag {
            b'1' => Ok(self.on_parse_complete(pending)),
            b'2' => Ok(self.on_bind_complete(pending)),
            backend::tag::ROW_DESCRIPTION => self.on_row_description(frame, body, pending),
            b'n' => Ok(Self::on_no_data(pending)),
            backend::tag::DATA_ROW => self.on_data_row(body, pending),
            backend::tag::COPY_IN_RESPONSE => {
                self.copy_in = true;
                Ok(None)
            }
            backend::tag::COPY_OUT_RESPONSE => self.on_copy_out_response(body, pending),
            backend::tag::NOTIFICATION_RESPONSE => self.on_notification(frame, body, pending),
            backend::tag::PARAMETER_STATUS => self.on_parameter_status(frame, body, pending),
            b'd' => self.on_copy_data(body, pending),
            backend::tag::COMMAND_COMPLETE | backend::tag::EMPTY_QUERY_RESPONSE | b's' => {
                Ok(self.on_completion(tag, body, pending, finished))
            }
            backend::tag::ERROR_RESPONSE | backend::tag::NOTICE_RESPONSE => {
                self.on_error_or_notice(tag, body, pending, finished)
            }
            backend::tag::READY_FOR_QUERY => Ok(self.on_ready_for_query(pending, finished)),
            _ => Ok(None),
        }
    }

    /// `ParseComplete`: the statement's old layout no longer applies.
    fn on_parse_complete(&mut self, pending: &mut VecDeque<Pending>) -> Option<Vec<u8>> {
        if let Some(Pending::Parse { name, .. }) = pending.front() {
            self.statements.remove(name);
            pending.pop_front();
        }
        None
    }

    /// `BindComplete`: a portal bound anew, its old layout no longer applies.
    fn on_bind_complete(&mut self, pending: &mut VecDeque<Pending>) -> Option<Vec<u8>> {
        if let Some(Pending::Bind { portal, .. }) = pending.front() {
            self.portals.remove(portal);
            pending.pop_front();
        }
        None
    }

    /// `RowDescription`: the layout of the rows to come (kept for the
    /// statement or portal described), its column names masked.
    fn on_row_description(
        &mut self,
        frame: &[u8],
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let fields =
            Arc::new(decode_row_description(body).map_err(|e| ResponseError(e.to_string()))?);
        // Column names can carry data too (a view created by dynamic SQL
        // with `%I` of a value): the client sees them masked. Column rules
        // still match the real names.
        let mask = self.ambient_mask(pending);
        let shown = mask.as_deref().and_then(|plan| masked_names(plan, &fields));
        let replacement = shown.as_ref().map(|shown| {
            let mut out = Vec::with_capacity(frame.len() + 16);
            backend::encode_row_description(&mut out, shown);
            out
        });
        match pending.front() {
            Some(Pending::DescribeStatement { name }) => {
                if self.statements.len() < MAX_DESCRIPTIONS || self.statements.contains_key(name) {
                    self.statements.insert(name.clone(), fields);
                }
                pending.pop_front();
            }
            Some(Pending::DescribePortal {
                portal,
                statement,
                injected,
            }) => {
                let injected = *injected;
                if self.portals.len() < MAX_DESCRIPTIONS || self.portals.contains_key(portal) {
                    self.portals.insert(portal.clone(), Arc::clone(&fields));
                }
                // Later portals of the same statement have this layout.
                if self.statements.len() < MAX_DESCRIPTIONS
                    || self.statements.contains_key(statement)
                {
                    self.statements.insert(statement.clone(), fields);
                }
                pending.pop_front();
                if injected {
                    return Ok(Some(Vec::new()));
                }
            }
            Some(Pending::Simple { .. }) => {
                self.begin(pending);
                if let Some(accumulator) = self.current.as_mut() {
                    if accumulator.result.columns.is_empty() && accumulator.result.tags.is_empty() {
                        accumulator.result.columns = shown
                            .as_deref()
                            .unwrap_or(&fields)
                            .iter()
                            .map(|field| field.name.clone())
                            .collect();
                    }
                    accumulator.formats = fields.iter().map(|field| field.format).collect();
                    accumulator.fields = Some(fields);
                    accumulator.column_rules = None;
                }
            }
            _ => {}
        }
        Ok(replacement)
    }

    /// `NoData`: a described statement or portal returns no rows (the
    /// answer to a `Describe` the gateway sent itself is not forwarded).
    fn on_no_data(pending: &mut VecDeque<Pending>) -> Option<Vec<u8>> {
        let injected = matches!(
            pending.front(),
            Some(Pending::DescribePortal { injected: true, .. })
        );
        if matches!(
            pending.front(),
            Some(Pending::DescribeStatement { .. }) | Some(Pending::DescribePortal { .. })
        ) {
            pending.pop_front();
        }
        injected.then(Vec::new)
    }

    /// `DataRow`: masked under the command's plan, counted and sampled.
    fn on_data_row(
        &mut self,
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        if !self.begin(pending) {
            return Ok(None);
        }
        let mask = Self::front_mask(pending);
        let (rows_cap, bytes_cap) = (self.sample_rows, self.sample_bytes_cap);
        let Some(accumulator) = self.current.as_mut() else {
            return Ok(None);
        };
        if accumulator.result.columns.is_empty() && accumulator.result.tags.is_empty() {
            if let Some(fields) = &accumulator.fields {
                let shown = mask.as_deref().and_then(|plan| masked_names(plan, fields));
                accumulator.result.columns = shown
                    .as_deref()
                    .unwrap_or(fields)
                    .iter()
                    .map(|field| field.name.clone())
                    .collect();
            }
        }
        let replacement = match &mask {
            Some(plan) => crate::masking::mask_data_row(
                plan,
                accumulator.fields.as_deref().map(Vec::as_slice),
                &accumulator.formats,
                accumulator.fields.as_deref().map(|fields| {
                    accumulator
                        .column_rules
                        .get_or_insert_with(|| crate::masking::column_rules(plan, fields))
                        .as_slice()
                }),
                body,
                &mut accumulator.stats,
            )
            .map_err(|e| ResponseError(e.to_string()))?,
            None => None,
        };
        accumulator.result.rows += 1;
        let first_set = accumulator.result.tags.is_empty();
        if first_set
            && accumulator.result.sample.len() < rows_cap
            && accumulator.sample_bytes < bytes_cap
        {
            let shown = replacement
                .as_deref()
                .and_then(|row| row.get(5..))
                .unwrap_or(body);
            if let Ok(values) = decode_data_row(shown) {
                let row: Vec<Option<String>> = values
                    .iter()
                    .enumerate()
                    .map(|(index, value)| {
                        value.map(|bytes| {
                            render_value(bytes, format_of(&accumulator.formats, index) == 1)
                        })
                    })
                    .collect();
                accumulator.sample_bytes += row.iter().flatten().map(String::len).sum::<usize>();
                accumulator.result.sample.push(row);
            }
        } else if first_set {
            accumulator.result.sample_truncated = true;
        }
        Ok(replacement)
    }

    /// `CopyOutResponse`: a COPY to the client begins, masked under the
    /// command's plan.
    fn on_copy_out_response(
        &mut self,
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        self.copy_binary = body.first() == Some(&1);
        self.copy = None;
        if let Some(plan) = Self::front_mask(pending) {
            self.begin_copy(&plan, pending)?;
        }
        Ok(None)
    }

    /// `NotificationResponse`: channel and payload masked under the
    /// ambient plan.
    fn on_notification(
        &mut self,
        frame: &[u8],
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let Some(plan) = self.ambient_mask(pending) else {
            return Ok(None);
        };
        let notification = airlock_pg::notification::decode_notification(body)
            .map_err(|e| ResponseError(e.to_string()))?;
        let mut stats = MaskStats::new();
        let channel = plan.mask_text(notification.channel, &mut stats);
        let payload = plan.mask_text(notification.payload, &mut stats);
        if let Some(accumulator) = self.current.as_mut() {
            accumulator.stats.merge(&stats);
        }
        if matches!(channel, std::borrow::Cow::Owned(_))
            || matches!(payload, std::borrow::Cow::Owned(_))
        {
            let mut out = Vec::with_capacity(frame.len() + 8);
            airlock_pg::notification::encode_notification(
                &mut out,
                &airlock_pg::notification::Notification {
                    process_id: notification.process_id,
                    channel: &channel,
                    payload: &payload,
                },
            );
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// `ParameterStatus`: `set_config('application_name', (select email
    /// …), false)` reports the value back in one, masked under the ambient
    /// plan.
    fn on_parameter_status(
        &mut self,
        frame: &[u8],
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let Some(plan) = self.ambient_mask(pending) else {
            return Ok(None);
        };
        let (name, value) =
            backend::decode_parameter_status(body).map_err(|e| ResponseError(e.to_string()))?;
        let mut stats = MaskStats::new();
        if let std::borrow::Cow::Owned(masked) = plan.mask_text(value, &mut stats) {
            if let Some(accumulator) = self.current.as_mut() {
                accumulator.stats.merge(&stats);
            }
            let mut out = Vec::with_capacity(frame.len() + 8);
            backend::encode_parameter_status(&mut out, name, &masked);
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// `CopyData`: a COPY row (or, outside a COPY this tracker began, the
    /// raw chunk) masked under the command's plan.
    fn on_copy_data(
        &mut self,
        body: &[u8],
        pending: &mut VecDeque<Pending>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        let Some(plan) = Self::front_mask(pending) else {
            return Ok(None);
        };
        self.begin(pending);
        let Some(accumulator) = self.current.as_mut() else {
            return Ok(None);
        };
        let masked = match self.copy.as_mut() {
            Some(state) => Self::mask_copy_row(state, &plan, body, &mut accumulator.stats)?
                .map(std::borrow::Cow::Owned)
                .unwrap_or(std::borrow::Cow::Borrowed(body)),
            // Not a COPY OUT this tracker began (CopyBoth): the detectors
            // over the raw chunk.
            None => plan.mask_bytes(body, &mut accumulator.stats),
        };
        if let std::borrow::Cow::Owned(data) = masked {
            let mut out = Vec::with_capacity(data.len() + 5);
            out.push(b'd');
            let length = i32::try_from(data.len() + 4).unwrap_or(i32::MAX);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&data);
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// `CommandComplete`, `EmptyQueryResponse`, `PortalSuspended`: one
    /// statement's tag; an extended-protocol command is finished.
    fn on_completion(
        &mut self,
        tag: u8,
        body: &[u8],
        pending: &mut VecDeque<Pending>,
        finished: &mut Vec<CommandResult>,
    ) -> Option<Vec<u8>> {
        self.copy = None;
        if !self.begin(pending) {
            return None;
        }
        let tag_text = match tag {
            backend::tag::COMMAND_COMPLETE => backend::decode_command_complete(body)
                .unwrap_or("")
                .to_string(),
            backend::tag::EMPTY_QUERY_RESPONSE => "EMPTY".to_string(),
            _ => "SUSPENDED".to_string(),
        };
        let is_simple = matches!(pending.front(), Some(Pending::Simple { .. }));
        if self.copy_in {
            let front = pending.pop_front();
            self.end_copy_in(pending);
            if let Some(front) = front {
                pending.push_front(front);
            }
        }
        if let Some(accumulator) = self.current.as_mut() {
            if !tag_text.starts_with("SELECT") && !tag_text.starts_with("FETCH") {
                if let Some(count) = backend::rows_from_command_tag(&tag_text) {
                    accumulator.result.rows += count;
                }
            }
            accumulator.result.tags.push(tag_text);
            accumulator.fields = None;
            accumulator.column_rules = None;
        }
        if !is_simple {
            self.finish_front(pending, finished);
        }
        None
    }

    /// `ErrorResponse` and `NoticeResponse`: every text field masked under
    /// the ambient plan; an error fails the command (and, in the extended
    /// protocol, skips the rest of its segment).
    fn on_error_or_notice(
        &mut self,
        tag: u8,
        body: &[u8],
        pending: &mut VecDeque<Pending>,
        finished: &mut Vec<CommandResult>,
    ) -> Result<Option<Vec<u8>>, ResponseError> {
        if tag == backend::tag::ERROR_RESPONSE {
            self.copy = None;
        }
        let mask = self.ambient_mask(pending);
        let mut stats = MaskStats::new();
        let replacement = match &mask {
            Some(plan) => backend::rewrite_error_fields(tag, body, |code, value| {
                // Every text field: `RAISE … USING COLUMN = …, TABLE = …,
                // DATATYPE = …, CONSTRAINT = …, SCHEMA = …` set the name
                // fields to any string. Severity and SQLSTATE cannot carry
                // a value.
                if !matches!(code, b'S' | b'V' | b'C') {
                    match plan.mask_text(value, &mut stats) {
                        std::borrow::Cow::Owned(masked) => Some(masked),
                        std::borrow::Cow::Borrowed(_) => None,
                    }
                } else {
                    None
                }
            })
            .map_err(|e| ResponseError(e.to_string()))?,
            None => None,
        };
        if tag == backend::tag::NOTICE_RESPONSE {
            return Ok(replacement);
        }
        let shown = replacement
            .as_deref()
            .and_then(|frame| frame.get(5..))
            .unwrap_or(body);
        let fields = backend::decode_error_fields(shown).unwrap_or_default();
        self.on_error(fields, stats, pending, finished);
        Ok(replacement)
    }

    /// An error (its fields as the client sees them): the front command
    /// failed; in the extended protocol the server skips to the `Sync`.
    fn on_error(
        &mut self,
        fields: airlock_pg::ErrorFields,
        stats: MaskStats,
        pending: &mut VecDeque<Pending>,
        finished: &mut Vec<CommandResult>,
    ) {
        let is_simple = matches!(pending.front(), Some(Pending::Simple { .. }));
        if self.copy_in {
            let front = pending.pop_front();
            self.end_copy_in(pending);
            if let Some(front) = front {
                pending.push_front(front);
            }
        }
        if let Some(front) = pending.front() {
            if matches!(front, Pending::Simple { .. }) {
                let front = front.clone();
                self.fail(&front);
            }
        }
        if self.begin(pending) {
            if let Some(accumulator) = self.current.as_mut() {
                accumulator.result.status = "error";
                accumulator.result.error_code = Some(fields.code);
                accumulator.result.error_message = Some(fields.message);
                accumulator.stats.merge(&stats);
            }
            if !is_simple {
                self.finish_front(pending, finished);
            }
        }
        if !is_simple {
            self.skip_segment(pending, finished);
        }
    }

    /// `ReadyForQuery`: a segment (a simple query, or up to a `Sync`) is
    /// answered.
    fn on_ready_for_query(
        &mut self,
        pending: &mut VecDeque<Pending>,
        finished: &mut Vec<CommandResult>,
    ) -> Option<Vec<u8>> {
        self.end_copy_in(pending);
        while matches!(pending.front(), Some(Pending::CopyEnd)) {
            pending.pop_front();
        }
        if let Some(Pending::Simple { segment, .. }) = pending.front() {
            self.answered = self.answered.max(*segment);
            self.finish_front(pending, finished);
            return None;
        }
        self.current = None;
        self.copy = None;
        self.copies_begun = 0;
        self.skip_segment(pending, finished);
        if let Some(Pending::Sync { segment }) = pending.front() {
            self.answered = self.answered.max(*segment);
            pending.pop_front();
        }
        // Unnamed portals end with the transaction segment.
        self.portals.remove("");
        None
    }
}

/// `fields` with their names masked, when any name changed.
fn masked_names(plan: &MaskPlan, fields: &[FieldDescription]) -> Option<Vec<FieldDescription>> {
    let mut stats = MaskStats::new();
    let mut changed = false;
    let shown = fields
        .iter()
        .map(|field| {
            let mut field = field.clone();
            if let std::borrow::Cow::Owned(name) = plan.mask_text(&field.name, &mut stats) {
                field.name = name;
                changed = true;
            }
            field
        })
        .collect();
    changed.then_some(shown)
}

fn format_of(formats: &[i16], index: usize) -> i16 {
    match formats {
        [] => 0,
        [single] => *single,
        many => many.get(index).copied().unwrap_or(0),
    }
}

/// Renders a wire value for a sample: text values as text (invalid UTF-8
/// replaced), binary ones as `\x` hex; long values cut at 256 characters.
fn render_value(bytes: &[u8], binary: bool) -> String {
    const MAX: usize = 256;
    if binary {
        let shown = bytes.get(..MAX / 2).unwrap_or(bytes);
        let mut text = String::with_capacity(2 + shown.len() * 2);
        text.push_str("\\x");
        for byte in shown {
            text.push_str(&format!("{byte:02x}"));
        }
        if shown.len() < bytes.len() {
            text.push('…');
        }
        return text;
    }
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > MAX {
        let mut cut: String = text.chars().take(MAX).collect();
        cut.push('…');
        cut
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_pg::backend::encode_data_row;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn command_complete(tag: &str) -> Vec<u8> {
        let mut body = tag.as_bytes().to_vec();
        body.push(0);
        message(b'C', &body)
    }

    fn row_description(columns: &[(&str, i32)], format: i16) -> Vec<u8> {
        let mut body = (columns.len() as i16).to_be_bytes().to_vec();
        for (name, oid) in columns {
            body.extend_from_slice(name.as_bytes());
            body.push(0);
            body.extend_from_slice(&[0; 6]);
            body.extend_from_slice(&oid.to_be_bytes());
            body.extend_from_slice(&(-1i16).to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&format.to_be_bytes());
        }
        message(b'T', &body)
    }

    fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_data_row(&mut out, values);
        out
    }

    fn error(code: &str, message_text: &str, detail: &str) -> Vec<u8> {
        let mut out = Vec::new();
        airlock_pg::backend::encode_error(
            &mut out,
            &airlock_pg::ErrorFields {
                severity: "ERROR".into(),
                code: code.into(),
                message: message_text.into(),
                detail: Some(detail.into()),
                hint: None,
                position: None,
            },
        );
        out
    }

    fn plan() -> Arc<MaskPlan> {
        Arc::new(
            MaskPlan::compile(&airlock_mask::MaskSpec {
                detectors: vec!["email".into(), "card".into()],
                columns: vec!["*password*".into()],
                ..Default::default()
            })
            .unwrap(),
        )
    }

    #[test]
    fn a_simple_query_with_two_statements_is_one_result() {
        let mut tracker = ResultTracker::new(2, 1000);
        let mut pending = VecDeque::from([Pending::Simple {
            seq: 1,
            started: Instant::now(),
            mask: None,
            prepares: Vec::new(),
            segment: 1,
            copy: vec![],
        }]);
        let mut done = Vec::new();
        tracker
            .on_frame(&row_description(&[("n", 25)], 0), &mut pending, &mut done)
            .unwrap();
        for value in ["1", "2", "3"] {
            tracker
                .on_frame(
                    &data_row(&[Some(value.as_bytes())]),
                    &mut pending,
                    &mut done,
                )
                .unwrap();
        }
        tracker
            .on_frame(&command_complete("SELECT 3"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&command_complete("INSERT 0 5"), &mut pending, &mut done)
            .unwrap();
        assert!(done.is_empty());
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        assert_eq!(done.len(), 1);
        let result = &done[0];
        assert_eq!(result.tags, ["SELECT 3", "INSERT 0 5"]);
        assert_eq!(result.rows, 8);
        assert_eq!(result.columns, ["n"]);
        assert_eq!(
            result.sample,
            vec![vec![Some("1".to_string())], vec![Some("2".to_string())]]
        );
        assert!(result.sample_truncated);
        assert!(pending.is_empty());
    }

    #[test]
    fn an_error_in_a_pipeline_skips_the_rest_of_the_segment() {
        let mut tracker = ResultTracker::new(20, 1000);
        let now = Instant::now();
        let execute = |seq| Pending::Execute {
            seq,
            started: now,
            mask: None,
            portal: String::new(),
            statement: String::new(),
            result_formats: vec![],
            copy: vec![],
        };
        let mut pending = VecDeque::from([
            execute(1),
            execute(2),
            execute(3),
            Pending::Sync { segment: 1 },
            execute(4),
            Pending::Sync { segment: 1 },
        ]);
        let mut done = Vec::new();
        tracker
            .on_frame(&command_complete("UPDATE 1"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&error("23505", "duplicate", "x"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&command_complete("SELECT 1"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        let statuses: Vec<_> = done.iter().map(|r| (r.seq, r.status)).collect();
        assert_eq!(
            statuses,
            [(1, "ok"), (2, "error"), (3, "skipped"), (4, "ok")]
        );
        assert_eq!(done[0].rows, 1);
        assert_eq!(done[1].error_code.as_deref(), Some("23505"));
        assert!(pending.is_empty());
    }

    #[test]
    fn extended_rows_are_masked_with_the_described_layout() {
        let mut tracker = ResultTracker::new(20, 10_000);
        let now = Instant::now();
        let mut pending = VecDeque::from([
            Pending::Parse {
                name: "s1".into(),
                id: 1,
            },
            Pending::DescribeStatement { name: "s1".into() },
            Pending::Sync { segment: 1 },
            Pending::Execute {
                seq: 7,
                started: now,
                mask: Some(plan()),
                portal: String::new(),
                statement: "s1".into(),
                result_formats: vec![1],
                copy: vec![],
            },
            Pending::Sync { segment: 1 },
        ]);
        let mut done = Vec::new();
        tracker
            .on_frame(&message(b'1', b""), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(
                &row_description(&[("id", 23), ("email", 25), ("password_hash", 25)], 0),
                &mut pending,
                &mut done,
            )
            .unwrap();
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&message(b'2', b""), &mut pending, &mut done)
            .unwrap();
        let id = 42i32.to_be_bytes();
        let replaced = tracker
            .on_frame(
                &data_row(&[Some(&id), Some(b"jane.doe@example.com"), Some(b"s3cr3t")]),
                &mut pending,
                &mut done,
            )
            .unwrap()
            .expect("the row was masked");
        let values = decode_data_row(&replaced[5..]).unwrap();
        assert_eq!(values[0], Some(&id[..]), "a binary int is left alone");
        let email = std::str::from_utf8(values[1].unwrap()).unwrap();
        assert!(
            !email.contains("jane.doe") && email.ends_with(".com"),
            "{email}"
        );
        assert_ne!(values[2], Some(&b"s3cr3t"[..]));
        tracker
            .on_frame(&command_complete("SELECT 1"), &mut pending, &mut done)
            .unwrap();
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        assert_eq!(done.len(), 1);
        let sample = format!("{:?}", done[0].sample);
        assert!(
            !sample.contains("jane.doe") && !sample.contains("s3cr3t"),
            "{sample}"
        );
        assert_eq!(done[0].masked.get("email"), Some(&1));
        assert_eq!(done[0].masked.get("column"), Some(&1));
        assert_eq!(done[0].columns, ["id", "email", "password_hash"]);
    }

    #[test]
    fn errors_are_masked() {
        let mut tracker = ResultTracker::new(20, 1000);
        let mut pending = VecDeque::from([Pending::Simple {
            seq: 1,
            started: Instant::now(),
            mask: Some(plan()),
            prepares: Vec::new(),
            segment: 1,
            copy: vec![],
        }]);
        let mut done = Vec::new();
        let replaced = tracker
            .on_frame(
                &error(
                    "23505",
                    "duplicate key",
                    "Key (email)=(jane@x.com) already exists.",
                ),
                &mut pending,
                &mut done,
            )
            .unwrap()
            .expect("masked");
        let fields = airlock_pg::backend::decode_error_fields(&replaced[5..]).unwrap();
        assert!(!fields.detail.unwrap().contains("jane@x.com"));
        assert_eq!(fields.code, "23505");
    }

    fn simple(mask: Option<Arc<MaskPlan>>, text: &str) -> VecDeque<Pending> {
        VecDeque::from([Pending::Simple {
            seq: 1,
            started: Instant::now(),
            mask,
            copy: crate::copy_format::copy_outputs(text),
            prepares: Vec::new(),
            segment: 1,
        }])
    }

    #[test]
    fn notifications_are_masked_during_and_between_commands() {
        let mut tracker = ResultTracker::new(20, 1000);
        let mut pending = simple(Some(plan()), "select 1");
        let mut done = Vec::new();
        let mut notification = Vec::new();
        airlock_pg::notification::encode_notification(
            &mut notification,
            &airlock_pg::notification::Notification {
                process_id: 9,
                channel: "ch",
                payload: "jane@x.com;4111 1111 1111 1111",
            },
        );
        for _ in 0..2 {
            let replaced = tracker
                .on_frame(&notification, &mut pending, &mut done)
                .unwrap()
                .expect("masked");
            let decoded = airlock_pg::notification::decode_notification(&replaced[5..]).unwrap();
            assert_eq!((decoded.process_id, decoded.channel), (9, "ch"));
            assert!(!decoded.payload.contains("jane@") && !decoded.payload.contains("4111 1111"));
            // Then the command ends: the next one arrives between commands.
            tracker
                .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
                .unwrap();
        }
    }

    #[test]
    fn copy_rows_are_masked_with_the_statement_options() {
        let spec = airlock_mask::MaskSpec {
            detectors: vec!["email".into()],
            ..Default::default()
        };
        let plan = Arc::new(MaskPlan::compile(&spec).unwrap());
        let text = "copy (select email) to stdout with (format csv, quote '@', force_quote *)";
        let mut tracker = ResultTracker::new(20, 1000);
        let mut pending = simple(Some(plan.clone()), text);
        let mut done = Vec::new();
        tracker
            .on_frame(&message(b'H', &[0, 0, 1, 0, 0]), &mut pending, &mut done)
            .unwrap();
        let replaced = tracker
            .on_frame(
                &message(b'd', b"@jane.doe@@example.com@\n"),
                &mut pending,
                &mut done,
            )
            .unwrap()
            .expect("masked");
        let row = std::str::from_utf8(&replaced[5..]).unwrap();
        assert!(
            row.starts_with("@j") && row.ends_with(".com@\n") && !row.contains("jane"),
            "{row}"
        );

        // Options that cannot be read, binary, or column rules without a
        // header: refused.
        // (`plan()` has the column rule `*password*`.)
        let with_columns = self::plan();
        for (plan, text, binary) in [
            (plan.clone(), "copy t to stdout (delimiter '\\t')", 0),
            (plan.clone(), "copy t to stdout (format binary)", 1),
            (plan.clone(), "select 1", 0),
            (with_columns, "copy t to stdout csv", 0),
        ] {
            let mut tracker = ResultTracker::new(20, 1000);
            let mut pending = simple(Some(plan), text);
            let response = message(b'H', &[binary, 0, 0]);
            assert!(
                tracker
                    .on_frame(&response, &mut pending, &mut done)
                    .is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn copy_headers_give_the_column_rules() {
        let mut tracker = ResultTracker::new(20, 1000);
        let mut pending = simple(Some(plan()), "copy t to stdout (format csv, header)");
        let mut done = Vec::new();
        tracker
            .on_frame(
                &message(b'H', &[0, 0, 2, 0, 0, 0, 0]),
                &mut pending,
                &mut done,
            )
            .unwrap();
        let header = tracker
            .on_frame(
                &message(b'd', b"id,password_hash\n"),
                &mut pending,
                &mut done,
            )
            .unwrap();
        assert!(header.is_none(), "the header passes");
        let replaced = tracker
            .on_frame(&message(b'd', b"1,hunter2\n"), &mut pending, &mut done)
            .unwrap()
            .expect("masked");
        assert_eq!(&replaced[5..], b"1,****\n");
    }

    #[test]
    fn error_name_fields_parameter_status_and_column_names_are_masked() {
        let mut tracker = ResultTracker::new(20, 1000);
        let mut pending = simple(Some(plan()), "select 1");
        let mut done = Vec::new();
        let mut body = Vec::new();
        for (code, value) in [
            (b'S', "ERROR"),
            (b'C', "P0001"),
            (b'M', "no"),
            (b'c', "jane@x.com"),
        ] {
            body.push(code);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let replaced = tracker
            .on_frame(&message(b'N', &body), &mut pending, &mut done)
            .unwrap()
            .expect("masked");
        assert!(!String::from_utf8_lossy(&replaced).contains("jane@"));

        let mut status = Vec::new();
        airlock_pg::backend::encode_parameter_status(&mut status, "application_name", "jane@x.com");
        let replaced = tracker
            .on_frame(&status, &mut pending, &mut done)
            .unwrap()
            .expect("masked");
        let (name, value) = airlock_pg::backend::decode_parameter_status(&replaced[5..]).unwrap();
        assert_eq!(name, "application_name");
        assert!(!value.contains("jane@"), "{value}");

        let replaced = tracker
            .on_frame(
                &row_description(&[("jane@x.com", 25), ("id", 23)], 0),
                &mut pending,
                &mut done,
            )
            .unwrap()
            .expect("masked");
        let fields = decode_row_description(&replaced[5..]).unwrap();
        assert!(!fields[0].name.contains("jane@"));
        assert_eq!(fields[1].name, "id");
        tracker
            .on_frame(&message(b'Z', b"I"), &mut pending, &mut done)
            .unwrap();
        assert!(
            !done[0].columns[0].contains("jane@"),
            "{:?}",
            done[0].columns
        );
    }

    #[test]
    fn binary_values_render_as_hex_and_long_ones_are_cut() {
        assert_eq!(render_value(&[0, 255], true), "\\x00ff");
        assert_eq!(render_value(&[b'a'; 300], false).chars().count(), 257);
    }
}
