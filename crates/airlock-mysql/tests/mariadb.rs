//! Against a real MariaDB (the test kit's fixture): the login state machine
//! for `mysql_native_password` and `ed25519` users, a COM_QUERY with its
//! text result set (multi-results too), and a prepared statement with
//! binary rows, all over a plain `TcpStream` driven by the codec. Every
//! row the server sends is decoded and re-encoded to the same bytes.

// Test glue outside #[test] functions: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::command::{Command, StmtExecute};
use airlock_mysql::login::{LoginError, LoginOutcome, LoginParams, LoginStep, UpstreamLogin};
use airlock_mysql::response::{ResponsePacket, ResponseTracker};
use airlock_mysql::row::{
    decode_binary_row, decode_text_row, encode_binary_row, encode_text_row, BinaryValue,
    DateTimeValue, ValueType,
};
use airlock_mysql::{auth, Capabilities, PacketCodec};
use airlock_testkit::MariaDb;
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::TcpStream;

struct Connection {
    stream: TcpStream,
    codec: PacketCodec,
    buf: BytesMut,
}

impl Connection {
    fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        Self {
            stream,
            codec: PacketCodec::default(),
            buf: BytesMut::new(),
        }
    }

    fn read(&mut self) -> Vec<u8> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf).unwrap() {
                return packet.payload.to_vec();
            }
            let mut chunk = [0u8; 8192];
            let read = self.stream.read(&mut chunk).unwrap();
            assert!(read > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    fn write(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.codec.encode(payload, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    /// Sends a command (sequence id 0).
    fn command(&mut self, command: &Command, capabilities: Capabilities) {
        self.codec.reset_sequence();
        let payload = command.encode(capabilities).unwrap();
        self.write(&payload);
    }

    fn login(&mut self, params: LoginParams) -> Result<LoginOutcome, LoginError> {
        let mut login = UpstreamLogin::new(params);
        let handshake = self.read();
        let mut step = login.handshake(&handshake)?;
        loop {
            step = match step {
                LoginStep::Send(payload) => {
                    self.write(&payload);
                    let reply = self.read();
                    login.receive(&reply)?
                }
                LoginStep::Wait => {
                    let reply = self.read();
                    login.receive(&reply)?
                }
                LoginStep::StartTls(_) => panic!("no TLS in this test"),
                LoginStep::Done(outcome) => return Ok(*outcome),
            }
        }
    }

    /// Runs a command to completion: every packet classified.
    fn run(
        &mut self,
        command: &Command,
        capabilities: Capabilities,
    ) -> Vec<(ResponsePacket, Vec<u8>)> {
        self.command(command, capabilities);
        let mut tracker = ResponseTracker::new(command, capabilities).unwrap();
        let mut packets = Vec::new();
        while !tracker.is_complete() {
            let payload = self.read();
            let packet = tracker.feed(&payload).unwrap();
            packets.push((packet, payload));
        }
        packets
    }
}

fn query(sql: &str) -> Command {
    Command::Query {
        query: sql.as_bytes().to_vec(),
    }
}

fn params(server: &MariaDb, user: &str, capabilities: Capabilities) -> LoginParams {
    let mut params = LoginParams::new(user, server.password(user).into_bytes());
    params.database = Some("appdb".into());
    params.capabilities = capabilities;
    params.connect_attributes = vec![("program_name".into(), "airlock-mysql-test".into())];
    params
}

fn simple_ok(connection: &mut Connection, sql: &str, capabilities: Capabilities) {
    let packets = connection.run(&query(sql), capabilities);
    assert!(
        matches!(packets.last(), Some((ResponsePacket::Ok(_), _))),
        "{sql}: {packets:?}"
    );
}

#[test]
fn login_query_and_prepared_statement_against_mariadb() {
    let server = MariaDb::start();
    // MySQL-style without and with DEPRECATE_EOF, then MariaDB-style
    // (CLIENT_MYSQL clear) with extended metadata in column definitions.
    for (variant, deprecate_eof, mariadb) in [(0, false, false), (1, true, false), (2, true, true)]
    {
        let mut capabilities = LoginParams::DEFAULT_CAPABILITIES | Capabilities::MULTI_STATEMENTS;
        if !deprecate_eof {
            capabilities = Capabilities(capabilities.0 & !Capabilities::DEPRECATE_EOF.0);
        }
        if mariadb {
            capabilities = Capabilities(capabilities.0 & !Capabilities::LONG_PASSWORD.0)
                | Capabilities::MARIADB_EXTENDED_METADATA;
        }
        let mut connection = Connection::open(server.port);
        let outcome = connection
            .login(params(&server, "app", capabilities))
            .unwrap();
        assert_eq!(outcome.plugin, auth::MYSQL_NATIVE_PASSWORD);
        assert!(outcome.server.server_version.contains("MariaDB"));
        let caps = outcome.capabilities;
        assert_eq!(caps.contains(Capabilities::DEPRECATE_EOF), deprecate_eof);
        assert!(caps.contains(Capabilities::CONNECT_WITH_DB));
        assert_eq!(
            caps.contains(Capabilities::MARIADB_EXTENDED_METADATA),
            mariadb
        );

        let table = format!("t{variant}");
        simple_ok(
            &mut connection,
            &format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20), note TEXT NULL, \
                 amount DECIMAL(10,2), created DATETIME, big BIGINT UNSIGNED)"
            ),
            caps,
        );
        simple_ok(
            &mut connection,
            &format!(
                "INSERT INTO {table} VALUES (1, 'alice', NULL, 12.50, '2026-12-01 22:40:05', 18446744073709551615), \
                 (2, 'bob', 'n', -3.00, '2020-01-02 00:00:00', 0)"
            ),
            caps,
        );

        // A text result set: metadata, rows decoded and re-encoded.
        let packets = connection.run(&query(&format!("SELECT * FROM {table} ORDER BY id")), caps);
        assert_eq!(
            packets[0].0,
            ResponsePacket::ResultSetHeader { column_count: 6 }
        );
        let columns: Vec<ColumnDefinition> = packets
            .iter()
            .filter_map(|(packet, _)| match packet {
                ResponsePacket::Column(column) => Some((**column).clone()),
                _ => None,
            })
            .collect();
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        assert_eq!(names, ["id", "name", "note", "amount", "created", "big"]);
        assert_eq!(columns[0].column_type, ColumnType::LONG);
        assert_eq!(columns[1].column_type, ColumnType::VAR_STRING);
        assert_eq!(columns[3].column_type, ColumnType::NEWDECIMAL);
        assert_eq!(columns[3].decimals, 2);
        assert_eq!(columns[4].column_type, ColumnType::DATETIME);
        assert!(columns[5].is_unsigned());
        assert_eq!(columns[0].org_table_str(), table.as_str());
        assert_eq!(columns[0].schema_str(), "appdb");
        for (_, payload) in packets
            .iter()
            .filter(|(p, _)| matches!(p, ResponsePacket::Column(_)))
        {
            assert_eq!(
                &ColumnDefinition::decode(payload, caps)
                    .unwrap()
                    .encode(caps),
                payload
            );
        }
        assert_eq!(
            packets
                .iter()
                .any(|(p, _)| matches!(p, ResponsePacket::ColumnsEnd(_))),
            !deprecate_eof
        );
        let rows: Vec<Vec<Option<Vec<u8>>>> = packets
            .iter()
            .filter_map(|(packet, payload)| match packet {
                ResponsePacket::TextRow { column_count } => {
                    let cells = decode_text_row(payload, *column_count).unwrap();
                    assert_eq!(&encode_text_row(cells.iter().copied()), payload);
                    Some(cells.iter().map(|c| c.map(<[u8]>::to_vec)).collect())
                }
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1].as_deref(), Some(&b"alice"[..]));
        assert_eq!(rows[0][2], None);
        assert_eq!(rows[0][3].as_deref(), Some(&b"12.50"[..]));
        assert_eq!(rows[0][5].as_deref(), Some(&b"18446744073709551615"[..]));
        let ResponsePacket::ResultSetEnd(end) = &packets.last().unwrap().0 else {
            panic!("{packets:?}")
        };
        assert!(end.status.autocommit() && !end.status.more_results());

        // Multi-results: two result sets and the transaction flag.
        let packets = connection.run(&query("BEGIN; SELECT 1; SELECT 'x', NULL"), caps);
        let ends: Vec<bool> = packets
            .iter()
            .filter_map(|(packet, _)| match packet {
                ResponsePacket::Ok(ok) | ResponsePacket::ResultSetEnd(ok) => {
                    Some(ok.status.more_results())
                }
                _ => None,
            })
            .collect();
        assert_eq!(ends, [true, true, false]);
        let ResponsePacket::ResultSetEnd(last) = &packets.last().unwrap().0 else {
            panic!()
        };
        assert!(last.status.in_transaction());
        simple_ok(&mut connection, "COMMIT", caps);

        // An error.
        let packets = connection.run(&query("SELECT * FROM missing_table"), caps);
        let ResponsePacket::Err(err) = &packets[0].0 else {
            panic!("{packets:?}")
        };
        assert_eq!(err.code, 1146);
        assert_eq!(err.sql_state_str(), "42S02");

        // A prepared statement with two parameters and binary rows.
        let sql = format!("SELECT id, name, note, amount, created, big FROM {table} WHERE id >= ? AND name <> ? ORDER BY id");
        let packets = connection.run(
            &Command::StmtPrepare {
                query: sql.as_bytes().to_vec(),
            },
            caps,
        );
        let ResponsePacket::PrepareOk(prepared) = packets[0].0 else {
            panic!("{packets:?}")
        };
        assert_eq!((prepared.parameter_count, prepared.column_count), (2, 6));
        let parameters = packets
            .iter()
            .filter(|(p, _)| matches!(p, ResponsePacket::Parameter(_)))
            .count();
        assert_eq!(parameters, 2);
        let types = [
            ValueType {
                column_type: ColumnType::LONGLONG,
                unsigned: false,
            },
            ValueType {
                column_type: ColumnType::VAR_STRING,
                unsigned: false,
            },
        ];
        let execute = StmtExecute::with_parameters(
            prepared.statement_id,
            0,
            &types,
            &[BinaryValue::Int(1), BinaryValue::Bytes(b"bob".to_vec())],
        )
        .unwrap();
        // The gateway's view of the same execute, decoded back.
        let decoded = execute.parameters(2, None, &[]).unwrap();
        assert_eq!(decoded.values[1], Some(BinaryValue::Bytes(b"bob".to_vec())));
        let packets = connection.run(&Command::StmtExecute(execute), caps);
        let columns: Vec<ValueType> = packets
            .iter()
            .filter_map(|(packet, _)| match packet {
                ResponsePacket::Column(column) => Some(ValueType::from(&**column)),
                _ => None,
            })
            .collect();
        assert_eq!(columns.len(), 6);
        let rows: Vec<Vec<BinaryValue>> = packets
            .iter()
            .filter_map(|(packet, payload)| match packet {
                ResponsePacket::BinaryRow { column_count } => {
                    assert_eq!(*column_count, 6);
                    let values = decode_binary_row(payload, &columns).unwrap();
                    assert_eq!(&encode_binary_row(&columns, &values).unwrap(), payload);
                    Some(values)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            rows,
            vec![vec![
                BinaryValue::Int(1),
                BinaryValue::Bytes(b"alice".to_vec()),
                BinaryValue::Null,
                BinaryValue::Bytes(b"12.50".to_vec()),
                BinaryValue::Date(DateTimeValue {
                    year: 2026,
                    month: 12,
                    day: 1,
                    hour: 22,
                    minute: 40,
                    second: 5,
                    microsecond: 0
                }),
                BinaryValue::UInt(u64::MAX),
            ]]
        );
        assert!(matches!(
            packets.last().unwrap().0,
            ResponsePacket::ResultSetEnd(_)
        ));
        // Close (no answer), then ping proves the stream is still in step.
        connection.command(
            &Command::StmtClose {
                statement_id: prepared.statement_id,
            },
            caps,
        );
        let packets = connection.run(&Command::Ping, caps);
        assert!(matches!(packets[0].0, ResponsePacket::Ok(_)));
        let packets = connection.run(&Command::Statistics, caps);
        let ResponsePacket::Statistics(text) = &packets[0].0 else {
            panic!()
        };
        assert!(text.starts_with(b"Uptime"));
        connection.command(&Command::Quit, caps);
    }
    let log = server.general_log();
    assert!(log.contains("SELECT * FROM t0 ORDER BY id"), "{log}");
    assert!(log.contains("Execute\tSELECT id, name, note, amount, created, big FROM t1 WHERE id >= 1 AND name <> 'bob'"), "{log}");
}

#[test]
fn ed25519_login_and_refused_passwords_against_mariadb() {
    let server = MariaDb::start();
    let caps = LoginParams::DEFAULT_CAPABILITIES;
    // MariaDB announces mysql_native_password, then switches to ed25519.
    let mut connection = Connection::open(server.port);
    let outcome = connection.login(params(&server, "eduser", caps)).unwrap();
    assert_eq!(outcome.plugin, auth::CLIENT_ED25519);
    let packets = connection.run(&query("SELECT CURRENT_USER()"), outcome.capabilities);
    let row = packets
        .iter()
        .find_map(|(packet, payload)| match packet {
            ResponsePacket::TextRow { column_count } => {
                Some(decode_text_row(payload, *column_count).unwrap()[0].map(<[u8]>::to_vec))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(row.as_deref(), Some(&b"eduser@%"[..]));

    for user in ["app", "eduser"] {
        let mut connection = Connection::open(server.port);
        let mut wrong = params(&server, user, caps);
        wrong.password = b"wrong".to_vec();
        match connection.login(wrong) {
            Err(LoginError::Server(err)) => {
                assert_eq!(err.code, 1045, "{user}: {err:?}");
                assert_eq!(err.sql_state_str(), "28000");
            }
            other => panic!("{user}: {other:?}"),
        }
    }
    // A database the user may not use.
    let mut connection = Connection::open(server.port);
    let mut elsewhere = params(&server, "app", caps);
    elsewhere.database = Some("mysql".into());
    assert!(matches!(
        connection.login(elsewhere),
        Err(LoginError::Server(err)) if err.code == 1044
    ));
}

#[test]
fn cursors_fetch_long_data_and_resent_types_against_mariadb() {
    let server = MariaDb::start();
    for deprecate_eof in [false, true] {
        let mut capabilities = LoginParams::DEFAULT_CAPABILITIES;
        if !deprecate_eof {
            capabilities = Capabilities(capabilities.0 & !Capabilities::DEPRECATE_EOF.0);
        }
        let mut connection = Connection::open(server.port);
        let caps = connection
            .login(params(&server, "app", capabilities))
            .unwrap()
            .capabilities;
        let table = format!("c{}", u8::from(deprecate_eof));
        simple_ok(
            &mut connection,
            &format!("CREATE TABLE {table} (id INT, body TEXT)"),
            caps,
        );
        simple_ok(
            &mut connection,
            &format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
            caps,
        );
        let packets = connection.run(
            &Command::StmtPrepare {
                query: format!("SELECT id, body FROM {table} WHERE id >= ? ORDER BY id")
                    .into_bytes(),
            },
            caps,
        );
        let ResponsePacket::PrepareOk(prepared) = packets[0].0 else {
            panic!("{packets:?}")
        };
        let types = [ValueType {
            column_type: ColumnType::LONG,
            unsigned: false,
        }];
        // A read-only cursor: metadata now, rows by COM_STMT_FETCH.
        let execute = StmtExecute::with_parameters(
            prepared.statement_id,
            airlock_mysql::command::cursor::READ_ONLY,
            &types,
            &[BinaryValue::Int(2)],
        )
        .unwrap();
        let packets = connection.run(&Command::StmtExecute(execute), caps);
        assert!(
            !packets
                .iter()
                .any(|(p, _)| matches!(p, ResponsePacket::BinaryRow { .. })),
            "{packets:?}"
        );
        let column_types: Vec<ValueType> = packets
            .iter()
            .filter_map(|(packet, _)| match packet {
                ResponsePacket::Column(column) => Some(ValueType::from(&**column)),
                _ => None,
            })
            .collect();
        assert_eq!(column_types.len(), 2);
        let mut fetched = Vec::new();
        loop {
            let packets = connection.run(
                &Command::StmtFetch {
                    statement_id: prepared.statement_id,
                    rows: 1,
                },
                caps,
            );
            for (packet, payload) in &packets {
                if let ResponsePacket::BinaryRow { .. } = packet {
                    fetched.push(decode_binary_row(payload, &column_types).unwrap());
                }
            }
            let Some((ResponsePacket::ResultSetEnd(end), _)) = packets.last() else {
                panic!("{packets:?}")
            };
            if end
                .status
                .contains(airlock_mysql::ServerStatus::LAST_ROW_SENT)
            {
                break;
            }
            assert!(fetched.len() < 5, "the cursor does not end");
        }
        assert_eq!(
            fetched,
            vec![
                vec![BinaryValue::Int(2), BinaryValue::Bytes(b"b".to_vec())],
                vec![BinaryValue::Int(3), BinaryValue::Bytes(b"c".to_vec())],
            ]
        );
        let packets = connection.run(
            &Command::StmtReset {
                statement_id: prepared.statement_id,
            },
            caps,
        );
        assert!(matches!(packets[0].0, ResponsePacket::Ok(_)), "{packets:?}");

        // Types not resent: the block is bitmap, flag 0, value.
        let execute = StmtExecute {
            statement_id: prepared.statement_id,
            flags: 0,
            iteration_count: 1,
            parameter_block: vec![0x00, 0x00, 3, 0, 0, 0],
        };
        let decoded = execute.parameters(1, Some(&types), &[]).unwrap();
        assert_eq!(decoded.values, vec![Some(BinaryValue::Int(3))]);
        let packets = connection.run(&Command::StmtExecute(execute), caps);
        let rows = packets
            .iter()
            .filter(|(p, _)| matches!(p, ResponsePacket::BinaryRow { .. }))
            .count();
        assert_eq!(rows, 1);

        // A parameter sent as long data (no answer), then executed.
        let insert = connection.run(
            &Command::StmtPrepare {
                query: format!("INSERT INTO {table} VALUES (?, ?)").into_bytes(),
            },
            caps,
        );
        let ResponsePacket::PrepareOk(insert) = insert[0].0 else {
            panic!()
        };
        connection.command(
            &Command::StmtSendLongData {
                statement_id: insert.statement_id,
                parameter: 1,
                data: b"long body".to_vec(),
            },
            caps,
        );
        let insert_types = [
            types[0],
            ValueType {
                column_type: ColumnType::BLOB,
                unsigned: false,
            },
        ];
        // The long-data parameter's value is left out of the block.
        let mut block = vec![0x00, 0x01];
        for value_type in &insert_types {
            block.extend_from_slice(&[value_type.column_type.0, 0]);
        }
        block.extend_from_slice(&9i32.to_le_bytes());
        let execute = StmtExecute {
            statement_id: insert.statement_id,
            flags: 0,
            iteration_count: 1,
            parameter_block: block,
        };
        assert_eq!(
            execute.parameters(2, None, &[1]).unwrap().values,
            vec![Some(BinaryValue::Int(9)), None]
        );
        let packets = connection.run(&Command::StmtExecute(execute), caps);
        assert!(matches!(packets[0].0, ResponsePacket::Ok(_)), "{packets:?}");
        let packets = connection.run(
            &query(&format!("SELECT body FROM {table} WHERE id = 9")),
            caps,
        );
        let body = packets
            .iter()
            .find_map(|(packet, payload)| match packet {
                ResponsePacket::TextRow { column_count } => {
                    decode_text_row(payload, *column_count).unwrap()[0].map(<[u8]>::to_vec)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(body, b"long body");
    }
}
