//! Property tests: no decoder panics on arbitrary bytes, and framing
//! round-trips whatever a valid encoder produced.

use airlock_pg::backend::{
    decode_auth_request, decode_data_row, decode_error_fields, decode_row_description,
};
use airlock_pg::frontend::{decode_frontend, decode_password, encode_query};
use airlock_pg::startup::decode_startup;
use airlock_pg::FrameDecoder;
use bytes::BytesMut;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frontend_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            let _ = decode_frontend(&frame);
            let _ = decode_password(&frame);
            let _ = decode_auth_request(frame.body());
            let _ = decode_error_fields(frame.body());
            let _ = decode_data_row(frame.body());
            let _ = decode_row_description(frame.body());
        }
    }

    #[test]
    fn startup_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_startup(&mut buf);
    }

    #[test]
    fn tagged_bodies_never_panic(tag in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&(i32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        bytes.extend_from_slice(&body);
        let frame = FrameDecoder::default().decode(&mut BytesMut::from(&bytes[..])).unwrap().unwrap();
        let _ = decode_frontend(&frame);
    }

    #[test]
    fn queries_round_trip(text in "[^\u{0}]{0,200}") {
        let mut out = Vec::new();
        encode_query(&mut out, &text);
        let frame = FrameDecoder::default().decode(&mut BytesMut::from(&out[..])).unwrap().unwrap();
        prop_assert_eq!(decode_frontend(&frame).unwrap(), airlock_pg::frontend::FrontendMessage::Query { text: std::borrow::Cow::Borrowed(&text) });
    }
}
