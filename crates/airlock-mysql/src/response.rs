//! Command phase, server → client: [`ResponseTracker`] follows the answer
//! to one command packet by packet, says what each packet is
//! ([`ResponsePacket`]) and when the answer is complete, following
//! `SERVER_MORE_RESULTS_EXISTS` through multi-result sets and keeping the
//! last server status (in transaction, autocommit).
//!
//! The tracker decodes metadata (OK, ERR, EOF, column definitions,
//! COM_STMT_PREPARE_OK) but not rows: a row is reported with the column
//! count, and the caller decodes it with [`crate::row`] only when it must
//! (masking), so relaying rows costs no allocation here.

use crate::buf::Reader;
use crate::column::ColumnDefinition;
use crate::command::{code, cursor, Command};
use crate::generic::{is_result_set_end, EOF_HEADER, ERR_HEADER, OK_HEADER};
use crate::row::MAX_COLUMNS;
use crate::{Capabilities, EofPacket, ErrPacket, MySqlCodecError, OkPacket, ServerStatus};

/// First byte of a LOCAL INFILE request.
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// `COM_STMT_PREPARE_OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub column_count: u16,
    pub parameter_count: u16,
    pub warnings: u16,
}

impl PrepareOk {
    /// Decodes `0x00 id:u32 columns:u16 params:u16 0x00 [warnings:u16]`.
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "COM_STMT_PREPARE_OK");
        let header = reader.u8()?;
        if header != OK_HEADER {
            return Err(MySqlCodecError::Unexpected {
                what: "COM_STMT_PREPARE_OK",
                header,
            });
        }
        let statement_id = reader.u32()?;
        let column_count = reader.u16()?;
        let parameter_count = reader.u16()?;
        let mut warnings = 0;
        if !reader.is_empty() {
            reader.u8()?;
            if reader.remaining() >= 2 {
                warnings = reader.u16()?;
            }
        }
        Ok(Self {
            statement_id,
            column_count,
            parameter_count,
            warnings,
        })
    }

    /// Encodes the 12-byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![OK_HEADER];
        out.extend_from_slice(&self.statement_id.to_le_bytes());
        out.extend_from_slice(&self.column_count.to_le_bytes());
        out.extend_from_slice(&self.parameter_count.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&self.warnings.to_le_bytes());
        out
    }
}

/// What one server packet is.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsePacket {
    Ok(OkPacket),
    Err(ErrPacket),
    /// A result set starts with this many columns.
    ResultSetHeader {
        column_count: u64,
    },
    /// A result set's column (or `COM_FIELD_LIST`'s field).
    Column(Box<ColumnDefinition>),
    /// The EOF after the column definitions (without `CLIENT_DEPRECATE_EOF`).
    ColumnsEnd(EofPacket),
    /// A text-protocol row of `column_count` cells ([`crate::row::decode_text_row`]).
    TextRow {
        column_count: usize,
    },
    /// A binary-protocol row ([`crate::row::decode_binary_row`]).
    BinaryRow {
        column_count: usize,
    },
    /// A result set ended (EOF, or the OK with header 0xFE); its status
    /// says whether another result follows.
    ResultSetEnd(OkPacket),
    /// The server asks the client for a local file (`LOAD DATA LOCAL`).
    LocalInfileRequest {
        filename: Vec<u8>,
    },
    PrepareOk(PrepareOk),
    /// A prepared statement's parameter definition.
    Parameter(Box<ColumnDefinition>),
    /// The EOF after the parameter definitions.
    ParametersEnd(EofPacket),
    /// `COM_STATISTICS`'s text.
    Statistics(Vec<u8>),
}

/// How a command is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// No answer (`COM_QUIT`, `COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`).
    None,
    /// OK, EOF or ERR.
    Simple,
    /// Result sets with text rows, or OK/ERR, or LOCAL INFILE.
    Query,
    /// Result sets with binary rows, or OK/ERR.
    Execute,
    /// Binary rows of an open cursor.
    Fetch,
    /// COM_STMT_PREPARE_OK and its definitions, or ERR.
    Prepare,
    /// Column definitions, or ERR.
    FieldList,
    /// One text packet.
    Statistics,
}

impl ResponseKind {
    /// How `command` is answered; `None` for commands whose answer the
    /// tracker cannot follow (`COM_CHANGE_USER`'s auth exchange,
    /// replication streams, bulk execute, unknown commands): the gateway
    /// refuses those or handles them itself.
    pub fn for_command(command: &Command) -> Option<Self> {
        Self::for_code(command.code(), command)
    }

    fn for_code(command_code: u8, command: &Command) -> Option<Self> {
        Some(match command_code {
            code::QUIT | code::STMT_CLOSE | code::STMT_SEND_LONG_DATA => Self::None,
            code::INIT_DB
            | code::PING
            | code::PROCESS_KILL
            | code::RESET_CONNECTION
            | code::REFRESH
            | code::SET_OPTION
            | code::DEBUG
            | code::SHUTDOWN
            | code::CREATE_DB
            | code::DROP_DB
            | code::STMT_RESET => Self::Simple,
            code::QUERY | code::PROCESS_INFO => Self::Query,
            code::STMT_EXECUTE => {
                if let Command::StmtExecute(execute) = command {
                    if execute.flags & cursor::PARAMETER_COUNT_AVAILABLE != 0 {
                        return None;
                    }
                }
                Self::Execute
            }
            // OK or ERR as the server sends them (a result set would be
            // read as an execution's: binary rows).
            code::STMT_BULK_EXECUTE => Self::Execute,
            code::STMT_FETCH => Self::Fetch,
            code::STMT_PREPARE => Self::Prepare,
            code::FIELD_LIST => Self::FieldList,
            code::STATISTICS => Self::Statistics,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first packet of a (next) result.
    Start,
    Columns {
        remaining: u64,
        total: usize,
    },
    ColumnsEof {
        total: usize,
    },
    Rows {
        total: usize,
    },
    /// After a LOCAL INFILE request: the client sends the file, then the
    /// server answers OK or ERR.
    AfterInfile,
    Parameters {
        remaining: u16,
        columns: u16,
    },
    ParametersEof {
        columns: u16,
    },
    PrepareColumns {
        remaining: u16,
    },
    PrepareColumnsEof,
    /// COM_FIELD_LIST: definitions until EOF.
    Fields,
    Complete,
}

/// Follows the answer to one command.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    kind: ResponseKind,
    capabilities: Capabilities,
    state: State,
    status: ServerStatus,
    binary: bool,
}

fn unexpected(header: u8) -> MySqlCodecError {
    MySqlCodecError::Unexpected {
        what: "response",
        header,
    }
}

impl ResponseTracker {
    /// A tracker for the answer to `command`, or `None` when the tracker
    /// cannot follow it (see [`ResponseKind::for_command`]).
    pub fn new(command: &Command, capabilities: Capabilities) -> Option<Self> {
        ResponseKind::for_command(command).map(|kind| Self::for_kind(kind, capabilities))
    }

    /// A tracker for a response of `kind`.
    pub fn for_kind(kind: ResponseKind, capabilities: Capabilities) -> Self {
        Self {
            kind,
            capabilities,
            state: if kind == ResponseKind::None {
                State::Complete
            } else if kind == ResponseKind::Fetch {
                State::Rows { total: 0 }
            } else if kind == ResponseKind::FieldList {
                State::Fields
            } else {
                State::Start
            },
            status: ServerStatus::default(),
            binary: matches!(kind, ResponseKind::Execute | ResponseKind::Fetch),
        }
    }

    /// Whether the answer is complete (the next server packet belongs to
    /// the next command).
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// The last server status seen in this answer.
    pub fn status(&self) -> ServerStatus {
        self.status
    }

    /// The kind of answer followed.
    pub fn kind(&self) -> ResponseKind {
        self.kind
    }

    /// Classifies the next server packet of the answer.
    pub fn feed(&mut self, payload: &[u8]) -> Result<ResponsePacket, MySqlCodecError> {
        let header = payload.first().copied().ok_or(MySqlCodecError::Truncated {
            what: "response packet",
        })?;
        let caps = self.capabilities;
        // An ERR ends the answer wherever it comes (but inside rows a text
        // cell never starts with 0xFF: it is not a valid length prefix).
        if header == ERR_HEADER && self.state != State::Complete {
            self.state = State::Complete;
            return ErrPacket::decode(payload).map(ResponsePacket::Err);
        }
        match self.state {
            State::Complete => Err(unexpected(header)),
            State::Start => self.start(header, payload),
            State::AfterInfile => {
                if header != OK_HEADER {
                    return Err(unexpected(header));
                }
                let ok = OkPacket::decode(payload, caps)?;
                self.after_result(ok.status);
                Ok(ResponsePacket::Ok(ok))
            }
            State::Columns { remaining, total } => {
                let column = ColumnDefinition::decode(payload, caps)?;
                let remaining = remaining.saturating_sub(1);
                self.state = if remaining > 0 {
                    State::Columns { remaining, total }
                } else if caps.contains(Capabilities::DEPRECATE_EOF) {
                    State::Rows { total }
                } else {
                    State::ColumnsEof { total }
                };
                Ok(ResponsePacket::Column(Box::new(column)))
            }
            State::ColumnsEof { total } => {
                let eof = EofPacket::decode(payload, caps)?;
                self.status = eof.status;
                // An execute that opened a cursor sends no rows now.
                self.state = if self.binary && eof.status.contains(ServerStatus::CURSOR_EXISTS) {
                    State::Complete
                } else {
                    State::Rows { total }
                };
                Ok(ResponsePacket::ColumnsEnd(eof))
            }
            State::Rows { total } => {
                if is_result_set_end(payload, caps) {
                    let end = crate::generic::decode_result_set_end(payload, caps)?;
                    self.after_result(end.status);
                    return Ok(ResponsePacket::ResultSetEnd(end));
                }
                if self.binary {
                    if header != crate::row::BINARY_ROW_HEADER {
                        return Err(unexpected(header));
                    }
                    Ok(ResponsePacket::BinaryRow {
                        column_count: total,
                    })
                } else {
                    Ok(ResponsePacket::TextRow {
                        column_count: total,
                    })
                }
            }
            State::Parameters { remaining, columns } => {
                let parameter = ColumnDefinition::decode(payload, caps)?;
                let remaining = remaining.saturating_sub(1);
                self.state = if remaining > 0 {
                    State::Parameters { remaining, columns }
                } else if caps.contains(Capabilities::DEPRECATE_EOF) {
                    Self::prepare_columns(columns, caps)
                } else {
                    State::ParametersEof { columns }
                };
                Ok(ResponsePacket::Parameter(Box::new(parameter)))
            }
            State::ParametersEof { columns } => {
                let eof = EofPacket::decode(payload, caps)?;
                self.status = eof.status;
                self.state = Self::prepare_columns(columns, caps);
                Ok(ResponsePacket::ParametersEnd(eof))
            }
            State::PrepareColumns { remaining } => {
                let column = ColumnDefinition::decode(payload, caps)?;
                let remaining = remaining.saturating_sub(1);
                self.state = if remaining > 0 {
                    State::PrepareColumns { remaining }
                } else if caps.contains(Capabilities::DEPRECATE_EOF) {
                    State::Complete
                } else {
                    State::PrepareColumnsEof
                };
                Ok(ResponsePacket::Column(Box::new(column)))
            }
            State::PrepareColumnsEof => {
                let eof = EofPacket::decode(payload, caps)?;
                self.status = eof.status;
                self.state = State::Complete;
                Ok(ResponsePacket::ColumnsEnd(eof))
            }
            State::Fields => {
                if is_result_set_end(payload, caps) {
                    let end = crate::generic::decode_result_set_end(payload, caps)?;
                    self.status = end.status;
                    self.state = State::Complete;
                    return Ok(ResponsePacket::ResultSetEnd(end));
                }
                let column = ColumnDefinition::decode(payload, caps)?;
                Ok(ResponsePacket::Column(Box::new(column)))
            }
        }
    }

    fn prepare_columns(columns: u16, caps: Capabilities) -> State {
        if columns > 0 {
            State::PrepareColumns { remaining: columns }
        } else {
            let _ = caps;
            State::Complete
        }
    }

    /// After a whole result: another one follows, or the answer is done.
    fn after_result(&mut self, status: ServerStatus) {
        self.status = status;
        self.state = if status.more_results() {
            State::Start
        } else {
            State::Complete
        };
    }

    fn start(&mut self, header: u8, payload: &[u8]) -> Result<ResponsePacket, MySqlCodecError> {
        let caps = self.capabilities;
        match self.kind {
            ResponseKind::Statistics => {
                self.state = State::Complete;
                Ok(ResponsePacket::Statistics(payload.to_vec()))
            }
            ResponseKind::Prepare => {
                let prepare = PrepareOk::decode(payload)?;
                let columns = prepare.column_count;
                self.state = if prepare.parameter_count > 0 {
                    State::Parameters {
                        remaining: prepare.parameter_count,
                        columns,
                    }
                } else {
                    Self::prepare_columns(columns, caps)
                };
                Ok(ResponsePacket::PrepareOk(prepare))
            }
            ResponseKind::Simple => {
                let ok = if header == EOF_HEADER && payload.len() < 9 {
                    crate::generic::decode_result_set_end(payload, caps)
                        .or_else(|_| OkPacket::decode(payload, caps))?
                } else if header == OK_HEADER {
                    OkPacket::decode(payload, caps)?
                } else {
                    return Err(unexpected(header));
                };
                self.status = ok.status;
                self.state = State::Complete;
                Ok(ResponsePacket::Ok(ok))
            }
            ResponseKind::Query | ResponseKind::Execute => match header {
                OK_HEADER => {
                    let ok = OkPacket::decode(payload, caps)?;
                    self.after_result(ok.status);
                    Ok(ResponsePacket::Ok(ok))
                }
                LOCAL_INFILE_HEADER if self.kind == ResponseKind::Query => {
                    self.state = State::AfterInfile;
                    Ok(ResponsePacket::LocalInfileRequest {
                        filename: payload.get(1..).unwrap_or_default().to_vec(),
                    })
                }
                _ => {
                    let mut reader = Reader::new(payload, "result set header");
                    let column_count = reader.lenenc()?;
                    if !reader.is_empty() {
                        return Err(MySqlCodecError::Unsupported {
                            what: "result set metadata flag",
                        });
                    }
                    let total = usize::try_from(column_count)
                        .ok()
                        .filter(|&count| (1..=MAX_COLUMNS).contains(&count))
                        .ok_or(MySqlCodecError::TooMany {
                            what: "columns",
                            count: usize::try_from(column_count).unwrap_or(usize::MAX),
                            max: MAX_COLUMNS,
                        })?;
                    self.state = State::Columns {
                        remaining: column_count,
                        total,
                    };
                    Ok(ResponsePacket::ResultSetHeader { column_count })
                }
            },
            // Fetch and FieldList never start in `Start`; None is complete.
            ResponseKind::Fetch | ResponseKind::FieldList | ResponseKind::None => {
                Err(unexpected(header))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::ColumnType;
    use crate::row::encode_text_row;

    const CAPS: Capabilities =
        Capabilities(Capabilities::PROTOCOL_41.0 | Capabilities::TRANSACTIONS.0);

    fn query() -> Command {
        Command::Query {
            query: b"select 1".to_vec(),
        }
    }

    fn column() -> Vec<u8> {
        ColumnDefinition::new("1", ColumnType::LONGLONG).encode(CAPS)
    }

    fn eof(status: u16) -> Vec<u8> {
        EofPacket {
            warnings: 0,
            status: ServerStatus(status),
        }
        .encode(CAPS)
    }

    #[test]
    fn text_result_set_with_eof() {
        let mut tracker = ResponseTracker::new(&query(), CAPS).unwrap();
        assert_eq!(
            tracker.feed(&[0x01]).unwrap(),
            ResponsePacket::ResultSetHeader { column_count: 1 }
        );
        assert!(matches!(
            tracker.feed(&column()).unwrap(),
            ResponsePacket::Column(_)
        ));
        assert!(matches!(
            tracker.feed(&eof(2)).unwrap(),
            ResponsePacket::ColumnsEnd(_)
        ));
        let row = encode_text_row([Some(&b"1"[..])]);
        assert_eq!(
            tracker.feed(&row).unwrap(),
            ResponsePacket::TextRow { column_count: 1 }
        );
        assert!(!tracker.is_complete());
        assert!(matches!(
            tracker.feed(&eof(3)).unwrap(),
            ResponsePacket::ResultSetEnd(_)
        ));
        assert!(tracker.is_complete());
        assert!(tracker.status().in_transaction());
        assert!(tracker.feed(&eof(2)).is_err());
    }

    #[test]
    fn multi_results_with_deprecate_eof() {
        let caps = CAPS | Capabilities::DEPRECATE_EOF;
        let mut tracker = ResponseTracker::new(&query(), caps).unwrap();
        // First result: an OK with MORE_RESULTS (e.g. an INSERT).
        let more = OkPacket {
            status: ServerStatus(0x000a),
            affected_rows: 1,
            ..OkPacket::default()
        };
        assert!(matches!(
            tracker.feed(&more.encode(caps)).unwrap(),
            ResponsePacket::Ok(_)
        ));
        assert!(!tracker.is_complete());
        // Second: a result set, rows, and the OK 0xFE end.
        tracker.feed(&[0x01]).unwrap();
        tracker.feed(&column()).unwrap();
        assert!(matches!(
            tracker.feed(b"\x01x").unwrap(),
            ResponsePacket::TextRow { .. }
        ));
        let end = OkPacket {
            status: ServerStatus::AUTOCOMMIT,
            ..OkPacket::default()
        };
        assert!(matches!(
            tracker
                .feed(&end.encode_with_header(EOF_HEADER, caps))
                .unwrap(),
            ResponsePacket::ResultSetEnd(_)
        ));
        assert!(tracker.is_complete());
        assert!(tracker.status().autocommit());
    }

    #[test]
    fn error_mid_rows_and_local_infile() {
        let mut tracker = ResponseTracker::new(&query(), CAPS).unwrap();
        tracker.feed(&[0x01]).unwrap();
        tracker.feed(&column()).unwrap();
        tracker.feed(&eof(2)).unwrap();
        let err = ErrPacket::new(1317, *b"70100", "Query execution was interrupted").encode();
        assert!(matches!(
            tracker.feed(&err).unwrap(),
            ResponsePacket::Err(_)
        ));
        assert!(tracker.is_complete());
        let mut tracker = ResponseTracker::new(&query(), CAPS).unwrap();
        assert_eq!(
            tracker.feed(b"\xfb/etc/passwd").unwrap(),
            ResponsePacket::LocalInfileRequest {
                filename: b"/etc/passwd".to_vec()
            }
        );
        assert!(!tracker.is_complete());
        tracker.feed(&[0, 0, 0, 2, 0, 0, 0]).unwrap();
        assert!(tracker.is_complete());
    }

    #[test]
    fn prepare_with_parameters_and_columns() {
        let prepare = Command::StmtPrepare {
            query: b"select ?, ?".to_vec(),
        };
        let mut tracker = ResponseTracker::new(&prepare, CAPS).unwrap();
        let ok = PrepareOk {
            statement_id: 1,
            column_count: 1,
            parameter_count: 2,
            warnings: 0,
        };
        assert_eq!(ok.encode().len(), 12);
        assert_eq!(
            tracker.feed(&ok.encode()).unwrap(),
            ResponsePacket::PrepareOk(ok)
        );
        assert!(matches!(
            tracker.feed(&column()).unwrap(),
            ResponsePacket::Parameter(_)
        ));
        tracker.feed(&column()).unwrap();
        assert!(matches!(
            tracker.feed(&eof(2)).unwrap(),
            ResponsePacket::ParametersEnd(_)
        ));
        assert!(matches!(
            tracker.feed(&column()).unwrap(),
            ResponsePacket::Column(_)
        ));
        assert!(!tracker.is_complete());
        tracker.feed(&eof(2)).unwrap();
        assert!(tracker.is_complete());
        // No parameters, no columns: the PREPARE_OK alone.
        let mut tracker = ResponseTracker::new(&prepare, CAPS).unwrap();
        tracker
            .feed(
                &PrepareOk {
                    column_count: 0,
                    parameter_count: 0,
                    ..ok
                }
                .encode(),
            )
            .unwrap();
        assert!(tracker.is_complete());
    }

    #[test]
    fn binary_rows_cursor_and_fetch() {
        let execute = Command::StmtExecute(crate::command::StmtExecute {
            statement_id: 1,
            flags: cursor::READ_ONLY,
            iteration_count: 1,
            parameter_block: Vec::new(),
        });
        let mut tracker = ResponseTracker::new(&execute, CAPS).unwrap();
        tracker.feed(&[0x01]).unwrap();
        tracker.feed(&column()).unwrap();
        tracker.feed(&eof(0x0042)).unwrap();
        assert!(tracker.is_complete(), "cursor opened: rows come by fetch");
        let fetch = Command::StmtFetch {
            statement_id: 1,
            rows: 10,
        };
        let mut tracker = ResponseTracker::new(&fetch, CAPS).unwrap();
        assert_eq!(
            tracker.feed(&[0x00, 0x00, 1, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            ResponsePacket::BinaryRow { column_count: 0 }
        );
        assert!(tracker.feed(&[0x05]).is_err(), "not a binary row");
        let mut tracker = ResponseTracker::new(&fetch, CAPS).unwrap();
        tracker.feed(&eof(0x00C2)).unwrap();
        assert!(tracker.is_complete());
    }

    #[test]
    fn simple_statistics_none_and_untrackable() {
        let caps = CAPS;
        let mut ping = ResponseTracker::new(&Command::Ping, caps).unwrap();
        ping.feed(&[0, 0, 0, 2, 0, 0, 0]).unwrap();
        assert!(ping.is_complete());
        let mut option = ResponseTracker::new(&Command::SetOption { option: 0 }, caps).unwrap();
        assert!(matches!(
            option.feed(&eof(2)).unwrap(),
            ResponsePacket::Ok(_)
        ));
        let mut statistics = ResponseTracker::new(&Command::Statistics, caps).unwrap();
        assert_eq!(
            statistics.feed(b"Uptime: 5").unwrap(),
            ResponsePacket::Statistics(b"Uptime: 5".to_vec())
        );
        assert!(
            ResponseTracker::new(&Command::StmtClose { statement_id: 1 }, caps)
                .unwrap()
                .is_complete()
        );
        let fields = Command::FieldList {
            table: b"t".to_vec(),
            wildcard: Vec::new(),
        };
        let mut tracker = ResponseTracker::new(&fields, caps).unwrap();
        tracker.feed(&column()).unwrap();
        tracker.feed(&eof(2)).unwrap();
        assert!(tracker.is_complete());
        for command in [
            Command::Unknown {
                code: 0x63,
                body: Vec::new(),
            },
            Command::Replication {
                command: crate::command::ReplicationCommand::BinlogDump,
                body: Vec::new(),
            },
        ] {
            assert!(ResponseTracker::new(&command, caps).is_none());
        }
    }
}
