//! Fuzzes the value codecs the masker rewrites through (arrays, records,
//! bytea, numeric, COPY rows, notifications) and the bound-parameter and
//! encoding checks: errors, never panics, on any bytes; what decodes
//! re-encodes without panicking too.
#![no_main]

use airlock_pg::copy::{decode_copy_row, encode_copy_row, CopyFormat, CopyKind};
use airlock_pg::{array, bytea, encoding, frontend, notification, numeric, record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = array::decode_binary_array(data) {
        let elements: Vec<Option<&[u8]>> = decoded.elements.clone();
        let mut out = Vec::new();
        array::encode_binary_array(&mut out, &decoded, &elements);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = array::rewrite_text_array(text, ',', |_| Some(Some("x".into())));
        if let Ok(fields) = record::decode_text_record(text) {
            let _ = record::encode_text_record(&fields);
        }
        let _ = encoding::is_ascii_safe_encoding(text);
    }
    if let Ok(fields) = record::decode_binary_record(data) {
        let mut out = Vec::new();
        record::encode_binary_record(&mut out, &fields);
    }
    if let Ok((bytes, output)) = bytea::decode_text_bytea(data) {
        let _ = bytea::encode_text_bytea(&bytes, output);
    }
    let _ = numeric::binary_numeric_to_text(data);
    for kind in [CopyKind::Text, CopyKind::Csv] {
        let format = CopyFormat::new(kind);
        if let Ok((fields, line_end)) = decode_copy_row(&format, data) {
            let mut out = Vec::new();
            encode_copy_row(&format, &fields, line_end, &mut out);
        }
    }
    if let Ok(decoded) = notification::decode_notification(data) {
        let mut out = Vec::new();
        notification::encode_notification(&mut out, &decoded);
    }
    let _ = frontend::bind_parameters(data);
});
