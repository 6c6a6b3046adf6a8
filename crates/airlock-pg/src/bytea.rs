//! `bytea` in text format: the `hex` output (`\x6a61…`, the default) and the
//! `escape` output (printable ASCII as is, `\\`, `\nnn` octal), decoded to
//! the bytes they stand for and encoded back in the same form.
//!
//! Architecture invariant: total; malformed input is an error, never a
//! panic.

use crate::PgCodecError;

/// Which `bytea_output` produced a text `bytea` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteaOutput {
    Hex,
    Escape,
}

/// Decodes a text-format `bytea` value.
pub fn decode_text_bytea(text: &[u8]) -> Result<(Vec<u8>, ByteaOutput), PgCodecError> {
    let malformed = PgCodecError::Malformed { what: "bytea" };
    if let Some(hex) = text.strip_prefix(b"\\x") {
        let digits: Vec<u8> = hex
            .iter()
            .copied()
            .filter(|byte| !byte.is_ascii_whitespace())
            .collect();
        if !digits.len().is_multiple_of(2) {
            return Err(malformed);
        }
        let mut bytes = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks_exact(2) {
            let high = hex_value(pair.first().copied()).ok_or(malformed.clone())?;
            let low = hex_value(pair.get(1).copied()).ok_or(malformed.clone())?;
            bytes.push((high << 4) | low);
        }
        return Ok((bytes, ByteaOutput::Hex));
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'\\' {
            bytes.push(byte);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', after @ ..] => {
                bytes.push(b'\\');
                rest = after;
            }
            [a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', after @ ..] => {
                bytes.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                rest = after;
            }
            _ => return Err(malformed),
        }
    }
    Ok((bytes, ByteaOutput::Escape))
}

fn hex_value(digit: Option<u8>) -> Option<u8> {
    match digit? {
        digit @ b'0'..=b'9' => Some(digit - b'0'),
        digit @ b'a'..=b'f' => Some(digit - b'a' + 10),
        digit @ b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Encodes `bytes` as a text-format `bytea` value in `output` form.
pub fn encode_text_bytea(bytes: &[u8], output: ByteaOutput) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2 + 2);
    match output {
        ByteaOutput::Hex => {
            out.extend_from_slice(b"\\x");
            for byte in bytes {
                out.extend(HEX.get(usize::from(byte >> 4)));
                out.extend(HEX.get(usize::from(byte & 0x0f)));
            }
        }
        ByteaOutput::Escape => {
            for &byte in bytes {
                match byte {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    0x20..=0x7e => out.push(byte),
                    _ => {
                        out.push(b'\\');
                        out.push(b'0' + (byte >> 6));
                        out.push(b'0' + ((byte >> 3) & 7));
                        out.push(b'0' + (byte & 7));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_outputs_decode() {
        assert_eq!(
            decode_text_bytea(b"\\x6a41").unwrap(),
            (b"jA".to_vec(), ByteaOutput::Hex)
        );
        assert_eq!(
            decode_text_bytea(b"a\\\\b\\000\\377").unwrap(),
            (b"a\\b\x00\xff".to_vec(), ByteaOutput::Escape)
        );
        assert!(decode_text_bytea(b"\\x6").is_err());
        assert!(decode_text_bytea(b"a\\9").is_err());
    }

    proptest! {
        #[test]
        fn bytea_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40), hex in any::<bool>()) {
            let output = if hex { ByteaOutput::Hex } else { ByteaOutput::Escape };
            let text = encode_text_bytea(&bytes, output);
            prop_assert_eq!(decode_text_bytea(&text).unwrap(), (bytes, output));
        }

        #[test]
        fn hostile_bytea_never_panics(text in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_text_bytea(&text);
        }
    }
}
