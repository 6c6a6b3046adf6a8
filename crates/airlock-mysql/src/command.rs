//! Command phase, client → server: every command byte decoded into
//! [`Command`] (unknown bytes kept as [`Command::Unknown`] so the gateway
//! can refuse what it does not understand) and encoded back;
//! `COM_STMT_EXECUTE` parameters decoded once the statement's parameter
//! count (and, for a re-execute, its earlier types) is known.

use crate::buf::{
    check_no_nul, put_lenenc, put_lenenc_bytes, put_nul_bytes, put_u16, put_u32, Reader,
};
use crate::bulk::StmtBulkExecute;
use crate::column::ColumnType;
use crate::row::{bit, decode_value, encode_value, null_bitmap, BinaryValue, ValueType};
use crate::{Capabilities, MySqlCodecError};

/// Most parameters in one statement (a 2-byte count in COM_STMT_PREPARE_OK).
pub const MAX_PARAMETERS: usize = 65_535;

/// Command bytes.
pub mod code {
    pub const SLEEP: u8 = 0x00;
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const CREATE_DB: u8 = 0x05;
    pub const DROP_DB: u8 = 0x06;
    pub const REFRESH: u8 = 0x07;
    pub const SHUTDOWN: u8 = 0x08;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_INFO: u8 = 0x0a;
    pub const CONNECT: u8 = 0x0b;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const DEBUG: u8 = 0x0d;
    pub const PING: u8 = 0x0e;
    pub const TIME: u8 = 0x0f;
    pub const DELAYED_INSERT: u8 = 0x10;
    pub const CHANGE_USER: u8 = 0x11;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const TABLE_DUMP: u8 = 0x13;
    pub const CONNECT_OUT: u8 = 0x14;
    pub const REGISTER_SLAVE: u8 = 0x15;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const DAEMON: u8 = 0x1d;
    pub const BINLOG_DUMP_GTID: u8 = 0x1e;
    pub const RESET_CONNECTION: u8 = 0x1f;
    /// MySQL's `COM_CLONE`.
    pub const CLONE: u8 = 0x20;
    /// MariaDB's `COM_STMT_BULK_EXECUTE`.
    pub const STMT_BULK_EXECUTE: u8 = 0xfa;
}

/// `COM_STMT_EXECUTE` cursor flags.
pub mod cursor {
    pub const NO_CURSOR: u8 = 0x00;
    pub const READ_ONLY: u8 = 0x01;
    pub const FOR_UPDATE: u8 = 0x02;
    pub const SCROLLABLE: u8 = 0x04;
    /// MySQL 8 query attributes: a parameter count precedes the block.
    pub const PARAMETER_COUNT_AVAILABLE: u8 = 0x08;
}

/// Replication commands (all raw: the gateway refuses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationCommand {
    BinlogDump,
    TableDump,
    RegisterSlave,
    BinlogDumpGtid,
}

/// `COM_SET_OPTION` options.
pub mod set_option {
    pub const MULTI_STATEMENTS_ON: u16 = 0;
    pub const MULTI_STATEMENTS_OFF: u16 = 1;
}

/// A decoded client command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Quit,
    /// `COM_INIT_DB`: switch the default schema.
    InitDb {
        schema: Vec<u8>,
    },
    /// `COM_QUERY`: the statement text in the connection's charset.
    Query {
        query: Vec<u8>,
    },
    /// `COM_FIELD_LIST` (deprecated): columns of `table` matching `wildcard`.
    FieldList {
        table: Vec<u8>,
        wildcard: Vec<u8>,
    },
    CreateDb {
        schema: Vec<u8>,
    },
    DropDb {
        schema: Vec<u8>,
    },
    /// `COM_REFRESH`: flush with the given sub-command bits.
    Refresh {
        subcommand: u8,
    },
    /// `COM_SHUTDOWN`, with its optional level byte.
    Shutdown {
        level: Option<u8>,
    },
    Statistics,
    ProcessInfo,
    /// `COM_PROCESS_KILL`: kill a connection by id.
    ProcessKill {
        connection_id: u32,
    },
    Debug,
    Ping,
    ChangeUser(Box<ChangeUser>),
    Replication {
        command: ReplicationCommand,
        body: Vec<u8>,
    },
    StmtPrepare {
        query: Vec<u8>,
    },
    StmtExecute(StmtExecute),
    StmtSendLongData {
        statement_id: u32,
        parameter: u16,
        data: Vec<u8>,
    },
    StmtClose {
        statement_id: u32,
    },
    StmtReset {
        statement_id: u32,
    },
    /// `COM_SET_OPTION`: multi-statements on (0) or off (1).
    SetOption {
        option: u16,
    },
    StmtFetch {
        statement_id: u32,
        rows: u32,
    },
    ResetConnection,
    /// MariaDB `COM_STMT_BULK_EXECUTE`, its rows undecoded.
    StmtBulkExecute(StmtBulkExecute),
    /// Any other command byte (including the server-internal ones:
    /// `COM_SLEEP`, `COM_CONNECT`, `COM_TIME`, `COM_DELAYED_INSERT`,
    /// `COM_CONNECT_OUT`, `COM_DAEMON`, `COM_CLONE`), with its body.
    Unknown {
        code: u8,
        body: Vec<u8>,
    },
}

/// `COM_CHANGE_USER`: a re-authentication inside the session.
#[derive(Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub username: String,
    pub auth_response: Vec<u8>,
    pub database: String,
    pub charset: Option<u16>,
    pub auth_plugin_name: Option<String>,
    pub connect_attributes: Vec<(String, String)>,
}

impl std::fmt::Debug for ChangeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeUser")
            .field("username", &self.username)
            .field("auth_response", &"<secret>")
            .field("database", &self.database)
            .field("charset", &self.charset)
            .field("auth_plugin_name", &self.auth_plugin_name)
            .finish()
    }
}

/// `COM_STMT_EXECUTE` with its parameter block undecoded (decoding needs
/// the statement's parameter count: see [`StmtExecute::parameters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtExecute {
    /// MariaDB: `0xFFFFFFFF` means the statement prepared just before.
    pub statement_id: u32,
    /// Cursor flags ([`cursor`]).
    pub flags: u8,
    /// Always 1 on the wire.
    pub iteration_count: u32,
    /// NULL bitmap, new-params-bound flag, types, values.
    pub parameter_block: Vec<u8>,
}

/// Decoded `COM_STMT_EXECUTE` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteParameters {
    /// The types the values were read by.
    pub types: Vec<ValueType>,
    /// Whether this execute sent the types (new-params-bound flag); if
    /// not, they are the previous execute's and the caller supplied them.
    pub types_sent: bool,
    /// One per parameter; `None` for a parameter sent earlier with
    /// `COM_STMT_SEND_LONG_DATA` (its value is not in this packet).
    pub values: Vec<Option<BinaryValue>>,
}

/// The sign flag in a parameter type's second byte.
const PARAMETER_UNSIGNED: u8 = 0x80;

impl StmtExecute {
    /// Decodes the parameter block of a statement with `parameter_count`
    /// parameters. `previous_types` are the types of this statement's last
    /// execute, needed when the client does not resend them;
    /// `long_data` lists parameters sent with `COM_STMT_SEND_LONG_DATA`.
    pub fn parameters(
        &self,
        parameter_count: usize,
        previous_types: Option<&[ValueType]>,
        long_data: &[u16],
    ) -> Result<ExecuteParameters, MySqlCodecError> {
        if parameter_count > MAX_PARAMETERS {
            return Err(MySqlCodecError::TooMany {
                what: "parameters",
                count: parameter_count,
                max: MAX_PARAMETERS,
            });
        }
        if self.flags & cursor::PARAMETER_COUNT_AVAILABLE != 0 {
            return Err(MySqlCodecError::Unsupported {
                what: "query attributes in COM_STMT_EXECUTE",
            });
        }
        let mut reader = Reader::new(&self.parameter_block, "COM_STMT_EXECUTE parameters");
        if parameter_count == 0 {
            return Ok(ExecuteParameters {
                types: Vec::new(),
                types_sent: false,
                values: Vec::new(),
            });
        }
        let bitmap = reader.take(parameter_count.div_ceil(8))?;
        let types_sent = reader.u8()? == 1;
        let types = if types_sent {
            let mut types = Vec::with_capacity(parameter_count.min(reader.remaining() / 2));
            for _ in 0..parameter_count {
                let column_type = ColumnType(reader.u8()?);
                let flags = reader.u8()?;
                types.push(ValueType {
                    column_type,
                    unsigned: flags & PARAMETER_UNSIGNED != 0,
                });
            }
            types
        } else {
            match previous_types {
                Some(types) if types.len() == parameter_count => types.to_vec(),
                _ => {
                    return Err(MySqlCodecError::Malformed {
                        what: "COM_STMT_EXECUTE without parameter types",
                    })
                }
            }
        };
        let mut values = Vec::with_capacity(parameter_count);
        for (index, value_type) in types.iter().enumerate() {
            let long = u16::try_from(index).is_ok_and(|index| long_data.contains(&index));
            if bit(bitmap, index) {
                values.push(Some(BinaryValue::Null));
            } else if long {
                values.push(None);
            } else {
                values.push(Some(decode_value(&mut reader, *value_type)?));
            }
        }
        if !reader.is_empty() {
            return Err(reader.malformed());
        }
        Ok(ExecuteParameters {
            types,
            types_sent,
            values,
        })
    }

    /// Builds an execute with the types sent (new-params-bound = 1).
    pub fn with_parameters(
        statement_id: u32,
        flags: u8,
        types: &[ValueType],
        values: &[BinaryValue],
    ) -> Result<Self, MySqlCodecError> {
        if types.len() != values.len() || types.len() > MAX_PARAMETERS {
            return Err(MySqlCodecError::Malformed {
                what: "COM_STMT_EXECUTE parameters",
            });
        }
        let mut block = Vec::new();
        if !types.is_empty() {
            block.extend_from_slice(&null_bitmap(values));
            block.push(1);
            for value_type in types {
                block.push(value_type.column_type.0);
                block.push(if value_type.unsigned {
                    PARAMETER_UNSIGNED
                } else {
                    0
                });
            }
            for (value_type, value) in types.iter().zip(values) {
                encode_value(&mut block, value, *value_type)?;
            }
        }
        Ok(Self {
            statement_id,
            flags,
            iteration_count: 1,
            parameter_block: block,
        })
    }
}

fn attributes(reader: &mut Reader<'_>) -> Result<Vec<(String, String)>, MySqlCodecError> {
    let block = reader.lenenc_bytes()?;
    let mut attributes = Reader::new(block, "connect attributes");
    let mut out = Vec::new();
    while !attributes.is_empty() {
        if out.len() >= crate::handshake::MAX_CONNECT_ATTRIBUTES {
            return Err(MySqlCodecError::TooMany {
                what: "connect attributes",
                count: out.len() + 1,
                max: crate::handshake::MAX_CONNECT_ATTRIBUTES,
            });
        }
        out.push((attributes.lenenc_string()?, attributes.lenenc_string()?));
    }
    Ok(out)
}

fn strict(bytes: &[u8], what: &'static str) -> Result<String, MySqlCodecError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| MySqlCodecError::BadString { what })
}

/// `COM_CHANGE_USER`'s body, shaped by the session's `capabilities`.
fn decode_change_user(
    reader: &mut Reader<'_>,
    capabilities: Capabilities,
) -> Result<ChangeUser, MySqlCodecError> {
    let username = strict(reader.nul_bytes()?, "username")?;
    let auth_response = if capabilities.contains(Capabilities::SECURE_CONNECTION) {
        let length = reader.u8()?;
        reader.take(usize::from(length))?.to_vec()
    } else {
        reader.nul_bytes()?.to_vec()
    };
    let database = strict(reader.nul_or_eof_bytes(), "database")?;
    let mut change = ChangeUser {
        username,
        auth_response,
        database,
        charset: None,
        auth_plugin_name: None,
        connect_attributes: Vec::new(),
    };
    if !reader.is_empty() {
        change.charset = Some(reader.u16()?);
    }
    if capabilities.contains(Capabilities::PLUGIN_AUTH) && !reader.is_empty() {
        change.auth_plugin_name = Some(strict(reader.nul_or_eof_bytes(), "plugin name")?);
    }
    if capabilities.contains(Capabilities::CONNECT_ATTRS) && !reader.is_empty() {
        change.connect_attributes = attributes(reader)?;
    }
    Ok(change)
}

/// The replication command of a replication command byte.
fn replication_kind(command: u8) -> ReplicationCommand {
    match command {
        code::BINLOG_DUMP => ReplicationCommand::BinlogDump,
        code::TABLE_DUMP => ReplicationCommand::TableDump,
        code::REGISTER_SLAVE => ReplicationCommand::RegisterSlave,
        _ => ReplicationCommand::BinlogDumpGtid,
    }
}

/// `COM_STMT_EXECUTE`'s fixed header; the parameter block stays raw.
fn decode_stmt_execute(reader: &mut Reader<'_>) -> Result<StmtExecute, MySqlCodecError> {
    let statement_id = reader.u32()?;
    let flags = reader.u8()?;
    let iteration_count = reader.u32()?;
    Ok(StmtExecute {
        statement_id,
        flags,
        iteration_count,
        parameter_block: reader.rest().to_vec(),
    })
}

/// `COM_STMT_SEND_LONG_DATA`: statement, parameter and the data chunk.
fn decode_send_long_data(reader: &mut Reader<'_>) -> Result<Command, MySqlCodecError> {
    let statement_id = reader.u32()?;
    let parameter = reader.u16()?;
    Ok(Command::StmtSendLongData {
        statement_id,
        parameter,
        data: reader.rest().to_vec(),
    })
}

impl Command {
    /// Decodes a command packet's payload. `capabilities` are the
    /// session's (they shape `COM_CHANGE_USER`).
    pub fn decode(payload: &[u8], capabilities: Capabilities) -> Result<Self, MySqlCodecError> {
        let (&command, body) = payload
            .split_first()
            .ok_or(MySqlCodecError::Truncated { what: "command" })?;
        let mut reader = Reader::new(body, "command");
        let done = |reader: &Reader<'_>, command: Command| {
            if reader.is_empty() {
                Ok(command)
            } else {
                Err(reader.malformed())
            }
        };
        Ok(match command {
            code::QUIT => Self::Quit,
            code::INIT_DB => Self::InitDb {
                schema: body.to_vec(),
            },
            code::QUERY => Self::Query {
                query: body.to_vec(),
            },
            code::FIELD_LIST => {
                let table = reader.nul_or_eof_bytes().to_vec();
                Self::FieldList {
                    table,
                    wildcard: reader.rest().to_vec(),
                }
            }
            code::CREATE_DB => Self::CreateDb {
                schema: body.to_vec(),
            },
            code::DROP_DB => Self::DropDb {
                schema: body.to_vec(),
            },
            code::REFRESH => {
                let subcommand = reader.u8()?;
                return done(&reader, Self::Refresh { subcommand });
            }
            code::SHUTDOWN => Self::Shutdown {
                level: body.first().copied(),
            },
            code::STATISTICS => Self::Statistics,
            code::PROCESS_INFO => Self::ProcessInfo,
            code::PROCESS_KILL => {
                let connection_id = reader.u32()?;
                return done(&reader, Self::ProcessKill { connection_id });
            }
            code::DEBUG => Self::Debug,
            code::PING => Self::Ping,
            code::CHANGE_USER => {
                Self::ChangeUser(Box::new(decode_change_user(&mut reader, capabilities)?))
            }
            code::BINLOG_DUMP
            | code::TABLE_DUMP
            | code::REGISTER_SLAVE
            | code::BINLOG_DUMP_GTID => Self::Replication {
                command: replication_kind(command),
                body: body.to_vec(),
            },
            code::STMT_PREPARE => Self::StmtPrepare {
                query: body.to_vec(),
            },
            code::STMT_EXECUTE => Self::StmtExecute(decode_stmt_execute(&mut reader)?),
            code::STMT_SEND_LONG_DATA => decode_send_long_data(&mut reader)?,
            code::STMT_CLOSE => {
                let statement_id = reader.u32()?;
                return done(&reader, Self::StmtClose { statement_id });
            }
            code::STMT_RESET => {
                let statement_id = reader.u32()?;
                return done(&reader, Self::StmtReset { statement_id });
            }
            code::SET_OPTION => {
                let option = reader.u16()?;
                return done(&reader, Self::SetOption { option });
            }
            code::STMT_FETCH => {
                let statement_id = reader.u32()?;
                let rows = reader.u32()?;
                return done(&reader, Self::StmtFetch { statement_id, rows });
            }
            code::RESET_CONNECTION => Self::ResetConnection,
            code::STMT_BULK_EXECUTE => Self::StmtBulkExecute(StmtBulkExecute::decode(body)?),
            other => Self::Unknown {
                code: other,
                body: body.to_vec(),
            },
        })
    }

    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Self::Quit => code::QUIT,
            Self::InitDb { .. } => code::INIT_DB,
            Self::Query { .. } => code::QUERY,
            Self::FieldList { .. } => code::FIELD_LIST,
            Self::CreateDb { .. } => code::CREATE_DB,
            Self::DropDb { .. } => code::DROP_DB,
            Self::Refresh { .. } => code::REFRESH,
            Self::Shutdown { .. } => code::SHUTDOWN,
            Self::Statistics => code::STATISTICS,
            Self::ProcessInfo => code::PROCESS_INFO,
            Self::ProcessKill { .. } => code::PROCESS_KILL,
            Self::Debug => code::DEBUG,
            Self::Ping => code::PING,
            Self::ChangeUser(_) => code::CHANGE_USER,
            Self::Replication { command, .. } => match command {
                ReplicationCommand::BinlogDump => code::BINLOG_DUMP,
                ReplicationCommand::TableDump => code::TABLE_DUMP,
                ReplicationCommand::RegisterSlave => code::REGISTER_SLAVE,
                ReplicationCommand::BinlogDumpGtid => code::BINLOG_DUMP_GTID,
            },
            Self::StmtPrepare { .. } => code::STMT_PREPARE,
            Self::StmtExecute(_) => code::STMT_EXECUTE,
            Self::StmtSendLongData { .. } => code::STMT_SEND_LONG_DATA,
            Self::StmtClose { .. } => code::STMT_CLOSE,
            Self::StmtReset { .. } => code::STMT_RESET,
            Self::SetOption { .. } => code::SET_OPTION,
            Self::StmtFetch { .. } => code::STMT_FETCH,
            Self::ResetConnection => code::RESET_CONNECTION,
            Self::StmtBulkExecute(_) => code::STMT_BULK_EXECUTE,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// The command's protocol name, for logs and audit records.
    pub fn name(&self) -> &'static str {
        match self.code() {
            code::SLEEP => "COM_SLEEP",
            code::QUIT => "COM_QUIT",
            code::INIT_DB => "COM_INIT_DB",
            code::QUERY => "COM_QUERY",
            code::FIELD_LIST => "COM_FIELD_LIST",
            code::CREATE_DB => "COM_CREATE_DB",
            code::DROP_DB => "COM_DROP_DB",
            code::REFRESH => "COM_REFRESH",
            code::SHUTDOWN => "COM_SHUTDOWN",
            code::STATISTICS => "COM_STATISTICS",
            code::PROCESS_INFO => "COM_PROCESS_INFO",
            code::CONNECT => "COM_CONNECT",
            code::PROCESS_KILL => "COM_PROCESS_KILL",
            code::DEBUG => "COM_DEBUG",
            code::PING => "COM_PING",
            code::TIME => "COM_TIME",
            code::DELAYED_INSERT => "COM_DELAYED_INSERT",
            code::CHANGE_USER => "COM_CHANGE_USER",
            code::BINLOG_DUMP => "COM_BINLOG_DUMP",
            code::TABLE_DUMP => "COM_TABLE_DUMP",
            code::CONNECT_OUT => "COM_CONNECT_OUT",
            code::REGISTER_SLAVE => "COM_REGISTER_SLAVE",
            code::STMT_PREPARE => "COM_STMT_PREPARE",
            code::STMT_EXECUTE => "COM_STMT_EXECUTE",
            code::STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
            code::STMT_CLOSE => "COM_STMT_CLOSE",
            code::STMT_RESET => "COM_STMT_RESET",
            code::SET_OPTION => "COM_SET_OPTION",
            code::STMT_FETCH => "COM_STMT_FETCH",
            code::DAEMON => "COM_DAEMON",
            code::BINLOG_DUMP_GTID => "COM_BINLOG_DUMP_GTID",
            code::RESET_CONNECTION => "COM_RESET_CONNECTION",
            code::CLONE => "COM_CLONE",
            code::STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
            _ => "COM_UNKNOWN",
        }
    }

    /// Encodes the command's payload.
    pub fn encode(&self, capabilities: Capabilities) -> Result<Vec<u8>, MySqlCodecError> {
        let mut out = vec![self.code()];
        match self {
            Self::Quit
            | Self::Statistics
            | Self::ProcessInfo
            | Self::Debug
            | Self::Ping
            | Self::ResetConnection => {}
            Self::InitDb { schema } | Self::CreateDb { schema } | Self::DropDb { schema } => {
                out.extend_from_slice(schema)
            }
            Self::Query { query } | Self::StmtPrepare { query } => out.extend_from_slice(query),
            Self::FieldList { table, wildcard } => {
                check_no_nul(table, "table name")?;
                put_nul_bytes(&mut out, table);
                out.extend_from_slice(wildcard);
            }
            Self::Refresh { subcommand } => out.push(*subcommand),
            Self::Shutdown { level } => out.extend(level.iter()),
            Self::ProcessKill { connection_id } => put_u32(&mut out, *connection_id),
            Self::ChangeUser(change) => {
                check_no_nul(change.username.as_bytes(), "username")?;
                put_nul_bytes(&mut out, change.username.as_bytes());
                if capabilities.contains(Capabilities::SECURE_CONNECTION) {
                    let length = u8::try_from(change.auth_response.len()).map_err(|_| {
                        MySqlCodecError::Malformed {
                            what: "auth response length",
                        }
                    })?;
                    out.push(length);
                    out.extend_from_slice(&change.auth_response);
                } else {
                    check_no_nul(&change.auth_response, "auth response")?;
                    put_nul_bytes(&mut out, &change.auth_response);
                }
                check_no_nul(change.database.as_bytes(), "database")?;
                put_nul_bytes(&mut out, change.database.as_bytes());
                if let Some(charset) = change.charset {
                    put_u16(&mut out, charset);
                    let attributes = capabilities.contains(Capabilities::CONNECT_ATTRS)
                        && !change.connect_attributes.is_empty();
                    if capabilities.contains(Capabilities::PLUGIN_AUTH)
                        && (change.auth_plugin_name.is_some() || attributes)
                    {
                        let name = change.auth_plugin_name.as_deref().unwrap_or_default();
                        check_no_nul(name.as_bytes(), "plugin name")?;
                        put_nul_bytes(&mut out, name.as_bytes());
                    }
                    if attributes {
                        let mut block = Vec::new();
                        for (key, value) in &change.connect_attributes {
                            put_lenenc_bytes(&mut block, key.as_bytes());
                            put_lenenc_bytes(&mut block, value.as_bytes());
                        }
                        put_lenenc(&mut out, block.len() as u64);
                        out.extend_from_slice(&block);
                    }
                }
            }
            Self::Replication { body, .. } | Self::Unknown { body, .. } => {
                out.extend_from_slice(body)
            }
            Self::StmtBulkExecute(bulk) => bulk.encode_into(&mut out),
            Self::StmtExecute(execute) => {
                put_u32(&mut out, execute.statement_id);
                out.push(execute.flags);
                put_u32(&mut out, execute.iteration_count);
                out.extend_from_slice(&execute.parameter_block);
            }
            Self::StmtSendLongData {
                statement_id,
                parameter,
                data,
            } => {
                put_u32(&mut out, *statement_id);
                put_u16(&mut out, *parameter);
                out.extend_from_slice(data);
            }
            Self::StmtClose { statement_id } | Self::StmtReset { statement_id } => {
                put_u32(&mut out, *statement_id)
            }
            Self::SetOption { option } => put_u16(&mut out, *option),
            Self::StmtFetch { statement_id, rows } => {
                put_u32(&mut out, *statement_id);
                put_u32(&mut out, *rows);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Capabilities = Capabilities(
        Capabilities::PROTOCOL_41.0
            | Capabilities::SECURE_CONNECTION.0
            | Capabilities::PLUGIN_AUTH.0
            | Capabilities::CONNECT_ATTRS.0,
    );

    fn round_trip(bytes: &[u8]) -> Command {
        let command = Command::decode(bytes, CAPS).unwrap();
        assert_eq!(command.encode(CAPS).unwrap(), bytes, "{command:?}");
        command
    }

    #[test]
    fn simple_commands_from_the_documentation() {
        assert_eq!(round_trip(b"\x01"), Command::Quit);
        assert_eq!(round_trip(b"\x0e"), Command::Ping);
        assert_eq!(round_trip(b"\x09"), Command::Statistics);
        assert_eq!(round_trip(b"\x1f"), Command::ResetConnection);
        assert_eq!(
            round_trip(b"\x03select @@version_comment limit 1"),
            Command::Query {
                query: b"select @@version_comment limit 1".to_vec()
            }
        );
        assert_eq!(
            round_trip(b"\x02appdb"),
            Command::InitDb {
                schema: b"appdb".to_vec()
            }
        );
        assert_eq!(
            round_trip(b"\x04t\0%"),
            Command::FieldList {
                table: b"t".to_vec(),
                wildcard: b"%".to_vec()
            }
        );
        assert_eq!(
            round_trip(b"\x0c\x2a\x00\x00\x00"),
            Command::ProcessKill { connection_id: 42 }
        );
        assert_eq!(
            round_trip(b"\x1b\x01\x00"),
            Command::SetOption {
                option: set_option::MULTI_STATEMENTS_OFF
            }
        );
        assert_eq!(
            round_trip(b"\x16SELECT ?"),
            Command::StmtPrepare {
                query: b"SELECT ?".to_vec()
            }
        );
        assert_eq!(
            round_trip(b"\x19\x01\x00\x00\x00"),
            Command::StmtClose { statement_id: 1 }
        );
        assert_eq!(
            round_trip(b"\x1a\x01\x00\x00\x00"),
            Command::StmtReset { statement_id: 1 }
        );
        assert_eq!(
            round_trip(b"\x1c\x01\x00\x00\x00\x0a\x00\x00\x00"),
            Command::StmtFetch {
                statement_id: 1,
                rows: 10
            }
        );
        assert_eq!(
            round_trip(b"\x18\x01\x00\x00\x00\x02\x00data"),
            Command::StmtSendLongData {
                statement_id: 1,
                parameter: 2,
                data: b"data".to_vec()
            }
        );
        assert!(matches!(
            round_trip(b"\x12\x04\x00\x00\x00\x00\x00\x02\x00\x00\x00"),
            Command::Replication {
                command: ReplicationCommand::BinlogDump,
                ..
            }
        ));
        let unknown = round_trip(b"\x63abc");
        assert_eq!(unknown.name(), "COM_UNKNOWN");
        assert_eq!(unknown.code(), 0x63);
        assert_eq!(round_trip(b"\x0f").name(), "COM_TIME");
    }

    #[test]
    fn refuses_short_and_overlong_fixed_commands() {
        assert!(Command::decode(b"", CAPS).is_err());
        assert!(Command::decode(b"\x0c\x01", CAPS).is_err());
        assert!(Command::decode(b"\x19\x01\x00\x00\x00\x00", CAPS).is_err());
        assert!(Command::decode(b"\x17\x01\x00", CAPS).is_err());
    }

    #[test]
    fn change_user() {
        let mut bytes = b"\x11bob\0\x03abcappdb\0\x2d\x00mysql_native_password\0".to_vec();
        bytes.extend_from_slice(b"\x0a\x03_os\x05Linux");
        let command = round_trip(&bytes);
        let Command::ChangeUser(change) = &command else {
            panic!("{command:?}")
        };
        assert_eq!(change.username, "bob");
        assert_eq!(change.auth_response, b"abc");
        assert_eq!(change.database, "appdb");
        assert_eq!(change.charset, Some(45));
        assert_eq!(
            change.connect_attributes,
            vec![("_os".into(), "Linux".into())]
        );
        assert!(!format!("{change:?}").contains("abc"));
    }

    #[test]
    fn execute_parameters_with_types_nulls_and_long_data() {
        // COM_STMT_EXECUTE id 1, no cursor, 1 iteration, 3 params:
        // NULL bitmap 0b010 (param 1 NULL), types sent: LONGLONG, VAR_STRING,
        // TINY unsigned; values 5 and 'ab'... param 2 comes by long data.
        let bytes = b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x02\x01\
            \x08\x00\xfd\x00\x01\x80\
            \x05\x00\x00\x00\x00\x00\x00\x00";
        let command = round_trip(bytes);
        let Command::StmtExecute(execute) = &command else {
            panic!("{command:?}")
        };
        assert_eq!(execute.statement_id, 1);
        assert_eq!(execute.flags, cursor::NO_CURSOR);
        let parameters = execute.parameters(3, None, &[2]).unwrap();
        assert!(parameters.types_sent);
        assert_eq!(
            parameters.values,
            vec![Some(BinaryValue::Int(5)), Some(BinaryValue::Null), None]
        );
        assert!(parameters.types[2].unsigned);
        // Without long data the third value is missing: truncated.
        assert!(execute.parameters(3, None, &[]).is_err());
        // Types not resent need the earlier ones.
        let again = StmtExecute::with_parameters(
            1,
            0,
            &parameters.types[..2],
            &[BinaryValue::Int(7), BinaryValue::Bytes(b"xy".to_vec())],
        )
        .unwrap();
        let mut block = again.parameter_block.clone();
        // Drop the types: bitmap (1) + flag (1) + 4 type bytes.
        block.drain(2..6);
        block[1] = 0;
        let resent = StmtExecute {
            parameter_block: block,
            ..again.clone()
        };
        assert!(resent.parameters(2, None, &[]).is_err());
        let decoded = resent
            .parameters(2, Some(&parameters.types[..2]), &[])
            .unwrap();
        assert!(!decoded.types_sent);
        assert_eq!(
            decoded.values,
            vec![
                Some(BinaryValue::Int(7)),
                Some(BinaryValue::Bytes(b"xy".to_vec()))
            ]
        );
        assert_eq!(
            again.parameters(2, None, &[]).unwrap().values,
            decoded.values
        );
    }
}
