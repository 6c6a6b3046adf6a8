//! The upstream's answer to one forwarded command, relayed to the client
//! packet by packet: the codec's response tracker says what each packet is
//! and when the answer is complete; rows are masked under the command's
//! mask plan ([`crate::masking`]), error messages too; every packet is
//! re-framed with the client conversation's sequence ids; what the record
//! keeps (tags, row counts, masked sample rows) is collected on the way.
//!
//! A LOCAL INFILE request reaches the client only for a file that the
//! client's own statement named, in a `LOAD DATA LOCAL INFILE` the gate let
//! through ([`Answer::allowed_infiles`], each name once); the file's
//! packets are then relayed to the server, at most [`MAX_INFILE_BYTES`],
//! and counted for the record. A server that asks for any other file (a
//! malicious upstream) gets an empty file and the client never sees the
//! request, so the server can never read the agent's machine on its own.

use std::sync::Arc;

use bytes::BytesMut;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_mysql::column::ColumnDefinition;
use airlock_mysql::response::{PrepareOk, ResponsePacket, ResponseTracker};
use airlock_mysql::row::{decode_text_row, ValueType};
use airlock_mysql::translate::{Translated, Translation};
use airlock_mysql::{Capabilities, ErrPacket};

use crate::io::{PacketStream, StreamError};
use crate::masking::{column_masks, mask_binary_row, mask_text_row, render_binary, ColumnMask};
use crate::record::{CommandResult, RecordingContext};

/// Most bytes of one LOCAL INFILE relayed to the server; past it the
/// session ends (the server then drops the half-read statement).
pub const MAX_INFILE_BYTES: u64 = 1 << 30;

/// Bytes gathered for the client before they are written.
const WRITE_BATCH: usize = 64 * 1024;

/// Why an answer could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("upstream: {0}")]
    Upstream(StreamError),
    #[error("upstream sent an unexpected packet: {0}")]
    UpstreamProtocol(airlock_mysql::MySqlCodecError),
    #[error("client: {0}")]
    Client(StreamError),
    /// The client's LOCAL INFILE went past [`MAX_INFILE_BYTES`].
    #[error("the LOCAL INFILE exceeds {MAX_INFILE_BYTES} bytes")]
    InfileTooLarge,
}

/// One answer being relayed.
pub struct Answer<'a> {
    tracker: ResponseTracker,
    mask: Option<Arc<MaskPlan>>,
    capabilities: Capabilities,
    recording: &'a RecordingContext<'a>,
    pub result: CommandResult,
    /// The server's COM_STMT_PREPARE_OK, when it sent one.
    pub prepared: Option<PrepareOk>,
    /// The columns of the current (last) result set.
    pub columns: Vec<ColumnDefinition>,
    masks: Option<Vec<ColumnMask>>,
    types: Option<Vec<ValueType>>,
    rows_in_set: u64,
    result_sets: usize,
    /// Whether a LOCAL INFILE request was answered with an empty file.
    pub infile_refused: bool,
    /// The client files the server may ask for (each once): those the
    /// client's decided `LOAD DATA LOCAL INFILE` statements named.
    pub allowed_infiles: Vec<String>,
    /// Bytes of LOCAL INFILE content relayed to the server.
    pub infile_bytes: u64,
    /// The upstream's packets as the client reads them.
    translation: Translation,
}

impl<'a> Answer<'a> {
    /// `columns`: what a `COM_STMT_FETCH` answer's rows are laid out by
    /// (its answer has no column definitions); empty otherwise.
    pub fn new(
        tracker: ResponseTracker,
        mask: Option<Arc<MaskPlan>>,
        capabilities: Capabilities,
        recording: &'a RecordingContext<'a>,
        result: CommandResult,
        columns: Vec<ColumnDefinition>,
    ) -> Self {
        Self {
            tracker,
            mask,
            capabilities,
            recording,
            result,
            prepared: None,
            columns,
            masks: None,
            types: None,
            rows_in_set: 0,
            result_sets: 0,
            infile_refused: false,
            allowed_infiles: Vec::new(),
            infile_bytes: 0,
            translation: Translation::default(),
        }
    }

    /// Translates the upstream's packets for the client (the tracker given
    /// to [`Self::new`] reads them with the upstream's capabilities).
    pub fn translated(mut self, translation: Translation) -> Self {
        self.translation = translation;
        self
    }

    /// Relays the whole answer.
    pub async fn relay(
        &mut self,
        upstream: &mut PacketStream,
        client: &mut PacketStream,
    ) -> Result<(), AnswerError> {
        let mut out = BytesMut::with_capacity(8192);
        while !self.tracker.is_complete() {
            let packet = upstream.read().await.map_err(AnswerError::Upstream)?;
            let kind = self
                .tracker
                .feed(&packet.payload)
                .map_err(AnswerError::UpstreamProtocol)?;
            if let ResponsePacket::LocalInfileRequest { filename } = kind {
                let allowed = self
                    .allowed_infiles
                    .iter()
                    .position(|name| name.as_bytes() == filename.as_slice());
                match allowed {
                    Some(index) => {
                        self.allowed_infiles.swap_remove(index);
                        client
                            .frame(&packet.payload, &mut out)
                            .map_err(AnswerError::Client)?;
                        client.send(&out).await.map_err(AnswerError::Client)?;
                        out.clear();
                        self.relay_infile(upstream, client).await?;
                    }
                    None => {
                        // An empty packet: the end of an empty file.
                        self.infile_refused = true;
                        upstream.write(&[]).await.map_err(AnswerError::Upstream)?;
                    }
                }
                continue;
            }
            let translated = self.translation.to_client(&kind, &packet.payload);
            let replaced = self.on_packet(kind, &packet.payload);
            let payload = match &translated {
                Translated::Dropped => continue,
                Translated::Replaced(payload) => payload.as_slice(),
                Translated::Same => replaced.as_deref().unwrap_or(&packet.payload),
            };
            client
                .frame(payload, &mut out)
                .map_err(AnswerError::Client)?;
            if out.len() >= WRITE_BATCH {
                client.send(&out).await.map_err(AnswerError::Client)?;
                out.clear();
            }
        }
        if !out.is_empty() {
            client.send(&out).await.map_err(AnswerError::Client)?;
        }
        Ok(())
    }

    /// The client's file, packet by packet up to its empty last packet, to
    /// the server; bounded by [`MAX_INFILE_BYTES`].
    async fn relay_infile(
        &mut self,
        upstream: &mut PacketStream,
        client: &mut PacketStream,
    ) -> Result<(), AnswerError> {
        loop {
            let packet = client.read().await.map_err(AnswerError::Client)?;
            self.infile_bytes += packet.payload.len() as u64;
            if self.infile_bytes > MAX_INFILE_BYTES {
                return Err(AnswerError::InfileTooLarge);
            }
            upstream
                .write(&packet.payload)
                .await
                .map_err(AnswerError::Upstream)?;
            if packet.payload.is_empty() {
                return Ok(());
            }
        }
    }

    /// Takes note of one packet; the payload to send in its place, if any.
    fn on_packet(&mut self, kind: ResponsePacket, payload: &[u8]) -> Option<Vec<u8>> {
        match kind {
            ResponsePacket::Ok(ok) => {
                self.result.rows += ok.affected_rows;
                self.result.tags.push(format!("OK {}", ok.affected_rows));
                None
            }
            ResponsePacket::Err(err) => self.on_error(err),
            ResponsePacket::ResultSetHeader { .. } => {
                self.columns.clear();
                self.masks = None;
                self.types = None;
                self.rows_in_set = 0;
                None
            }
            ResponsePacket::Column(column) => {
                if self.result_sets == 0 {
                    self.result.columns.push(column.name_str().into_owned());
                }
                self.columns.push(*column);
                None
            }
            ResponsePacket::TextRow { column_count } => self.on_text_row(payload, column_count),
            ResponsePacket::BinaryRow { column_count } => {
                // A fetch's rows come without a header: the tracker cannot
                // count their columns, the execution's definitions do.
                let column_count = if column_count == 0 {
                    self.columns.len()
                } else {
                    column_count
                };
                self.on_binary_row(payload, column_count)
            }
            ResponsePacket::ResultSetEnd(_) => {
                self.result
                    .tags
                    .push(format!("SELECT {}", self.rows_in_set));
                self.result_sets += 1;
                None
            }
            ResponsePacket::PrepareOk(prepared) => {
                self.prepared = Some(prepared);
                None
            }
            ResponsePacket::ColumnsEnd(_)
            | ResponsePacket::LocalInfileRequest { .. }
            | ResponsePacket::Parameter(_)
            | ResponsePacket::ParametersEnd(_)
            | ResponsePacket::Statistics(_) => None,
        }
    }

    /// The server's error, its message masked (it can quote data).
    fn on_error(&mut self, err: ErrPacket) -> Option<Vec<u8>> {
        self.result.status = "error";
        self.result.error_code = Some(err.code.to_string());
        let masked = match self.mask.as_deref() {
            Some(plan) => plan
                .mask_text(&err.message, &mut MaskStats::new())
                .into_owned(),
            None => err.message.clone(),
        };
        let changed = masked != err.message;
        self.result.error_message = Some(masked.clone());
        changed.then(|| {
            ErrPacket {
                message: masked,
                ..err
            }
            .encode()
        })
    }

    fn column_masks(&mut self, plan: &MaskPlan, column_count: usize) -> &[ColumnMask] {
        let columns = &self.columns;
        self.masks.get_or_insert_with(|| {
            let mut masks = column_masks(plan, columns);
            // Rows wider than their definitions: the extra cells are masked
            // as text whole (never passed raw).
            masks.resize(
                column_count,
                ColumnMask {
                    whole: true,
                    kind: crate::masking::ValueKind::Text,
                },
            );
            masks
        })
    }

    fn on_text_row(&mut self, payload: &[u8], column_count: usize) -> Option<Vec<u8>> {
        self.rows_in_set += 1;
        self.result.rows += 1;
        let mut replaced = None;
        if let Some(plan) = self.mask.clone() {
            let mut stats = MaskStats::new();
            let masks = self.column_masks(&plan, column_count).to_vec();
            replaced = mask_text_row(&plan, &masks, payload, &mut stats);
            self.result.count_masked(&stats);
        }
        if self.wants_sample() {
            let shown = replaced.as_deref().unwrap_or(payload);
            let row = decode_text_row(shown, column_count)
                .map(|cells| {
                    cells
                        .into_iter()
                        .map(|cell| cell.map(crate::masking::render_bytes))
                        .collect()
                })
                .unwrap_or_default();
            self.result.sample_row(row, self.recording);
        }
        replaced
    }

    fn on_binary_row(&mut self, payload: &[u8], column_count: usize) -> Option<Vec<u8>> {
        self.rows_in_set += 1;
        self.result.rows += 1;
        let columns = &self.columns;
        let types = self
            .types
            .get_or_insert_with(|| columns.iter().map(ValueType::from).collect())
            .clone();
        let plan = self.mask.clone();
        if plan.is_none() && !self.wants_sample() {
            return None;
        }
        let (replaced, values) = match plan {
            Some(plan) => {
                let mut stats = MaskStats::new();
                let masks = self.column_masks(&plan, column_count).to_vec();
                let masked = mask_binary_row(&plan, &masks, &types, payload, &mut stats);
                self.result.count_masked(&stats);
                masked
            }
            None => (
                None,
                airlock_mysql::row::decode_binary_row(payload, &types).unwrap_or_default(),
            ),
        };
        if self.wants_sample() {
            let row = values.iter().map(render_binary).collect();
            self.result.sample_row(row, self.recording);
        }
        replaced
    }

    fn wants_sample(&self) -> bool {
        self.result.sample.len() < self.recording.sample_rows && !self.result.sample_truncated
    }

    /// The capabilities in force with the client.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
}
