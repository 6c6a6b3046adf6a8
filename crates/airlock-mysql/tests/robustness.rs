//! Property tests: no decoder, tracker or state machine panics on any
//! bytes, and what the encoders write decodes back to the same value.

// Test glue outside #[test] functions: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_mysql::auth::{decode_auth_reply, AuthSwitchRequest};
use airlock_mysql::bulk::{BulkValue, StmtBulkExecute};
use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::command::{Command, StmtExecute};
use airlock_mysql::handshake::{decode_client_hello, HandshakeResponse, InitialHandshake};
use airlock_mysql::listener::{ClientLogin, ListenerParams, ListenerStep};
use airlock_mysql::login::{LoginParams, UpstreamLogin};
use airlock_mysql::response::{ResponseKind, ResponseTracker};
use airlock_mysql::row::{
    decode_binary_row, decode_text_row, encode_binary_row, encode_text_row, BinaryValue,
    DateTimeValue, TimeValue, ValueType,
};
use airlock_mysql::rsa::RsaPublicKey;
use airlock_mysql::{Capabilities, EofPacket, ErrPacket, OkPacket, PacketCodec, ServerStatus};
use bytes::BytesMut;
use proptest::prelude::*;

fn capabilities() -> impl Strategy<Value = Capabilities> {
    any::<u64>().prop_map(Capabilities)
}

const KINDS: [ResponseKind; 8] = [
    ResponseKind::None,
    ResponseKind::Simple,
    ResponseKind::Query,
    ResponseKind::Execute,
    ResponseKind::Fetch,
    ResponseKind::Prepare,
    ResponseKind::FieldList,
    ResponseKind::Statistics,
];

const TYPES: [ColumnType; 18] = [
    ColumnType::TINY,
    ColumnType::SHORT,
    ColumnType::YEAR,
    ColumnType::INT24,
    ColumnType::LONG,
    ColumnType::LONGLONG,
    ColumnType::FLOAT,
    ColumnType::DOUBLE,
    ColumnType::DATE,
    ColumnType::DATETIME,
    ColumnType::TIMESTAMP,
    ColumnType::TIME,
    ColumnType::VAR_STRING,
    ColumnType::BLOB,
    ColumnType::NEWDECIMAL,
    ColumnType::JSON,
    ColumnType::NULL,
    ColumnType::BIT,
];

/// A value that fits `value_type`, or NULL.
fn value_for(value_type: ValueType) -> BoxedStrategy<BinaryValue> {
    let value: BoxedStrategy<BinaryValue> = match value_type.column_type {
        ColumnType::NULL => Just(BinaryValue::Null).boxed(),
        ColumnType::TINY if value_type.unsigned => any::<u8>()
            .prop_map(|v| BinaryValue::UInt(v.into()))
            .boxed(),
        ColumnType::TINY => any::<i8>().prop_map(|v| BinaryValue::Int(v.into())).boxed(),
        ColumnType::SHORT | ColumnType::YEAR if value_type.unsigned => any::<u16>()
            .prop_map(|v| BinaryValue::UInt(v.into()))
            .boxed(),
        ColumnType::SHORT | ColumnType::YEAR => any::<i16>()
            .prop_map(|v| BinaryValue::Int(v.into()))
            .boxed(),
        ColumnType::INT24 | ColumnType::LONG if value_type.unsigned => any::<u32>()
            .prop_map(|v| BinaryValue::UInt(v.into()))
            .boxed(),
        ColumnType::INT24 | ColumnType::LONG => any::<i32>()
            .prop_map(|v| BinaryValue::Int(v.into()))
            .boxed(),
        ColumnType::LONGLONG if value_type.unsigned => {
            any::<u64>().prop_map(BinaryValue::UInt).boxed()
        }
        ColumnType::LONGLONG => any::<i64>().prop_map(BinaryValue::Int).boxed(),
        ColumnType::FLOAT => any::<u32>()
            .prop_map(|bits| BinaryValue::Float(f32::from_bits(bits)))
            .boxed(),
        ColumnType::DOUBLE => any::<u64>()
            .prop_map(|bits| BinaryValue::Double(f64::from_bits(bits)))
            .boxed(),
        ColumnType::DATE | ColumnType::DATETIME | ColumnType::TIMESTAMP => (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        )
            .prop_map(|(year, month, day, hour, minute, second, microsecond)| {
                BinaryValue::Date(DateTimeValue {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    microsecond,
                })
            })
            .boxed(),
        ColumnType::TIME => (
            any::<bool>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        )
            .prop_map(|(negative, days, hour, minute, second, microsecond)| {
                let time = TimeValue {
                    negative,
                    days,
                    hour,
                    minute,
                    second,
                    microsecond,
                };
                // The all-zero time is written as length 0, which reads
                // back as not negative.
                BinaryValue::Time(
                    if time
                        == (TimeValue {
                            negative: true,
                            ..TimeValue::default()
                        })
                    {
                        TimeValue::default()
                    } else {
                        time
                    },
                )
            })
            .boxed(),
        _ => proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(BinaryValue::Bytes)
            .boxed(),
    };
    prop_oneof![1 => Just(BinaryValue::Null), 4 => value].boxed()
}

fn typed_values() -> impl Strategy<Value = (Vec<ValueType>, Vec<BinaryValue>)> {
    proptest::collection::vec((0..TYPES.len(), any::<bool>()), 0..24).prop_flat_map(|picks| {
        let types: Vec<ValueType> = picks
            .iter()
            .map(|&(index, unsigned)| ValueType {
                column_type: TYPES[index],
                unsigned,
            })
            .collect();
        let values: Vec<BoxedStrategy<BinaryValue>> = types.iter().map(|t| value_for(*t)).collect();
        (Just(types), values)
    })
}

/// Types and 1 to 5 rows of bulk values (indicators included).
fn bulk_rows() -> impl Strategy<Value = (Vec<ValueType>, Vec<Vec<BulkValue>>)> {
    proptest::collection::vec((0..TYPES.len(), any::<bool>()), 1..8).prop_flat_map(|picks| {
        let types: Vec<ValueType> = picks
            .iter()
            .map(|&(index, unsigned)| ValueType {
                column_type: TYPES[index],
                unsigned,
            })
            .collect();
        let row: Vec<BoxedStrategy<BulkValue>> = types
            .iter()
            .map(|t| {
                prop_oneof![
                    6 => value_for(*t).prop_map(|value| match value {
                        BinaryValue::Null => BulkValue::Null,
                        value => BulkValue::Value(value),
                    }),
                    1 => Just(BulkValue::Default),
                    1 => Just(BulkValue::Ignore),
                ]
                .boxed()
            })
            .collect();
        (Just(types), proptest::collection::vec(row, 1..6))
    })
}

fn same_bulk(a: &[BulkValue], b: &[BulkValue]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (BulkValue::Value(x), BulkValue::Value(y)) => {
                same(std::slice::from_ref(x), std::slice::from_ref(y))
            }
            (x, y) => x == y,
        })
}

/// Floats compare by bits (NaN).
fn same(a: &[BinaryValue], b: &[BinaryValue]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (BinaryValue::Float(x), BinaryValue::Float(y)) => x.to_bits() == y.to_bits(),
            (BinaryValue::Double(x), BinaryValue::Double(y)) => x.to_bits() == y.to_bits(),
            (x, y) => x == y,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), caps in capabilities(), count in 0usize..40) {
        let _ = InitialHandshake::decode(&bytes);
        let _ = decode_client_hello(&bytes);
        let _ = HandshakeResponse::decode(&bytes);
        let _ = OkPacket::decode(&bytes, caps);
        let _ = ErrPacket::decode(&bytes);
        let _ = EofPacket::decode(&bytes, caps);
        let _ = AuthSwitchRequest::decode(&bytes);
        let _ = decode_auth_reply(&bytes, caps);
        let _ = ColumnDefinition::decode(&bytes, caps);
        let _ = decode_text_row(&bytes, count);
        let _ = RsaPublicKey::from_spki_der(&bytes);
        let _ = RsaPublicKey::from_pem(&bytes);
        let types: Vec<ValueType> = (0..count).map(|i| ValueType { column_type: TYPES[i % TYPES.len()], unsigned: i % 2 == 0 }).collect();
        let _ = decode_binary_row(&bytes, &types);
        if let Ok(command) = Command::decode(&bytes, caps) {
            if let Ok(encoded) = command.encode(caps) {
                prop_assert_eq!(Command::decode(&encoded, caps).unwrap(), command.clone());
            }
            if let Command::StmtExecute(execute) = &command {
                let _ = execute.parameters(count, Some(&types), &[0, 3]);
                let _ = execute.parameters(count, None, &[]);
            }
            if let Command::StmtBulkExecute(bulk) = &command {
                // Whatever it holds, never more rows kept than asked for.
                if let Ok(rows) = bulk.rows(count, Some(&types), 2) {
                    prop_assert!(rows.rows.len() <= 2 && rows.rows.len() <= rows.count);
                }
                let _ = bulk.rows(count, None, usize::MAX);
            }
        }
        let mut codec = PacketCodec::new(4096);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        let mut lenient = PacketCodec::new(4096).without_sequence_check();
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = lenient.decode(&mut buf) {}
    }

    #[test]
    fn tracker_and_login_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16), caps in capabilities(), kind in 0..KINDS.len()) {
        let mut tracker = ResponseTracker::for_kind(KINDS[kind], caps);
        for packet in &packets {
            let _ = tracker.feed(packet);
        }
        for (tls_available, plaintext_allowed) in [(true, false), (false, true)] {
            let mut listener = ClientLogin::new(ListenerParams {
                server_version: "8.0.36-airlock".into(),
                connection_id: 1,
                scramble: [b'x'; 20],
                capabilities: caps,
                tls_available,
                plaintext_allowed,
                charset: 45,
                status: ServerStatus::AUTOCOMMIT,
            });
            let _ = listener.greeting();
            for packet in &packets {
                if let Ok(ListenerStep::StartTls) = listener.receive(packet) {
                    let _ = listener.tls_established();
                }
            }
        }
        let mut params = LoginParams::new("u", b"p".to_vec());
        // Every path, the key request included.
        params.request_public_key = kind % 2 == 0;
        let mut login = UpstreamLogin::new(params);
        let mut packets = packets.iter();
        if let Some(first) = packets.next() {
            let _ = login.handshake(first);
        }
        for packet in packets {
            let _ = login.receive(packet);
        }
    }

    #[test]
    fn framing_round_trips(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..8), split in any::<prop::sample::Index>()) {
        let mut writer = PacketCodec::default();
        let mut wire = BytesMut::new();
        for payload in &payloads {
            writer.encode(payload, &mut wire).unwrap();
        }
        // Delivered in two arbitrary pieces.
        let cut = split.index(wire.len() + 1);
        let mut reader = PacketCodec::default();
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut decoded = Vec::new();
        while let Some(packet) = reader.decode(&mut buf).unwrap() {
            decoded.push(packet.payload.to_vec());
        }
        buf.extend_from_slice(&wire[cut..]);
        while let Some(packet) = reader.decode(&mut buf).unwrap() {
            decoded.push(packet.payload.to_vec());
        }
        prop_assert_eq!(decoded, payloads);
        prop_assert!(buf.is_empty());
        prop_assert_eq!(reader.sequence_id(), writer.sequence_id());
    }

    #[test]
    fn text_rows_round_trip(cells in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400)), 0..20)) {
        let encoded = encode_text_row(cells.iter().map(|cell| cell.as_deref()));
        let decoded = decode_text_row(&encoded, cells.len()).unwrap();
        let decoded: Vec<Option<Vec<u8>>> = decoded.into_iter().map(|c| c.map(<[u8]>::to_vec)).collect();
        prop_assert_eq!(decoded, cells);
    }

    #[test]
    fn binary_rows_and_parameters_round_trip((types, values) in typed_values()) {
        let row = encode_binary_row(&types, &values).unwrap();
        let decoded = decode_binary_row(&row, &types).unwrap();
        prop_assert!(same(&decoded, &values), "{:?} != {:?}", decoded, values);
        let execute = StmtExecute::with_parameters(7, 0, &types, &values).unwrap();
        let command = Command::StmtExecute(execute.clone());
        let bytes = command.encode(Capabilities::PROTOCOL_41).unwrap();
        let Command::StmtExecute(back) = Command::decode(&bytes, Capabilities::PROTOCOL_41).unwrap() else {
            panic!()
        };
        prop_assert_eq!(&back, &execute);
        let parameters = back.parameters(types.len(), None, &[]).unwrap();
        prop_assert_eq!(&parameters.types, &types);
        let values_back: Vec<BinaryValue> = parameters.values.into_iter().map(|v| v.unwrap()).collect();
        prop_assert!(same(&values_back, &values));
    }

    #[test]
    fn bulk_rows_round_trip((types, rows) in bulk_rows(), keep in 0usize..6) {
        let bulk = StmtBulkExecute::with_rows(9, &types, &rows).unwrap();
        let command = Command::StmtBulkExecute(bulk.clone());
        let bytes = command.encode(Capabilities::PROTOCOL_41).unwrap();
        let Command::StmtBulkExecute(back) = Command::decode(&bytes, Capabilities::PROTOCOL_41).unwrap() else {
            panic!()
        };
        prop_assert_eq!(&back, &bulk);
        let decoded = back.rows(types.len(), None, keep).unwrap();
        prop_assert_eq!(&decoded.types, &types);
        prop_assert_eq!(decoded.count, rows.len());
        prop_assert_eq!(decoded.rows.len(), keep.min(rows.len()));
        for (got, sent) in decoded.rows.iter().zip(&rows) {
            prop_assert!(same_bulk(got, sent), "{:?} != {:?}", got, sent);
        }
        // A cut packet is an error, never a shorter bulk read as whole.
        if let Some((_, shorter)) = bytes.split_last() {
            if let Ok(Command::StmtBulkExecute(cut)) = Command::decode(shorter, Capabilities::PROTOCOL_41) {
                if let Ok(read) = cut.rows(types.len(), None, usize::MAX) {
                    prop_assert!(read.count < rows.len());
                }
            }
        }
    }

    #[test]
    fn handshake_response_and_ok_round_trip(
        caps in capabilities(),
        username in "[a-z_]{0,32}",
        auth in proptest::collection::vec(any::<u8>(), 0..255),
        database in proptest::option::of("[a-z0-9_]{1,16}"),
        attributes in proptest::collection::vec(("[a-z_]{1,8}", "[ -~]{0,20}"), 0..5),
        affected in any::<u64>(),
        insert_id in any::<u64>(),
        status in any::<u16>(),
        info in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut caps = caps | Capabilities::PROTOCOL_41;
        caps = Capabilities(caps.0 & !Capabilities::ZSTD_COMPRESSION_ALGORITHM.0);
        if !caps.contains(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) && !caps.contains(Capabilities::SECURE_CONNECTION) {
            // NUL-terminated auth data cannot carry NULs.
            caps = caps | Capabilities::SECURE_CONNECTION;
        }
        if caps.0 & 1 == 1 {
            caps = Capabilities(caps.0 & 0xFFFF_FFFF);
        }
        let response = HandshakeResponse {
            capabilities: caps,
            max_packet_size: 1 << 24,
            charset: 45,
            username,
            auth_response: auth,
            database: if caps.contains(Capabilities::CONNECT_WITH_DB) { Some(database.unwrap_or_default()) } else { None },
            auth_plugin_name: caps.contains(Capabilities::PLUGIN_AUTH).then(|| "mysql_native_password".to_owned()),
            connect_attributes: if caps.contains(Capabilities::CONNECT_ATTRS) { attributes } else { Vec::new() },
            zstd_compression_level: None,
        };
        let bytes = response.encode().unwrap();
        if bytes.len() != 32 {
            prop_assert_eq!(HandshakeResponse::decode(&bytes).unwrap(), response);
        }
        let ok = OkPacket {
            affected_rows: affected,
            last_insert_id: insert_id,
            status: ServerStatus(status & !ServerStatus::SESSION_STATE_CHANGED.0),
            warnings: 3,
            info: if caps.contains(Capabilities::SESSION_TRACK) || !info.is_empty() { info } else { Vec::new() },
            session_state_changes: None,
        };
        let ok_caps = caps | Capabilities::PROTOCOL_41;
        prop_assert_eq!(OkPacket::decode(&ok.encode(ok_caps), ok_caps).unwrap(), ok);
    }
}
