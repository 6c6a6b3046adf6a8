//! RFC 4648 base32 (the `A-Z2-7` alphabet) without padding, as used by
//! `otpauth://` URIs and authenticator apps.
//!
//! Small enough to own rather than depend on. The decoder is lenient only in
//! ways people type secrets (lower case, spaces, dashes, trailing `=`); any
//! other character, an impossible length or non-zero trailing bits is
//! refused rather than guessed at.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes bytes as unpadded upper-case base32.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut output = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            output.push(symbol((buffer >> bits) & 0x1f));
        }
        // Keep only the bits not yet emitted so the buffer never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        output.push(symbol((buffer << (5 - bits)) & 0x1f));
    }
    output
}

fn symbol(index: u32) -> char {
    ALPHABET
        .get(index as usize)
        .map_or('A', |&byte| char::from(byte))
}

/// Decodes base32 text, ignoring case, spaces, dashes and trailing `=`.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
    let trimmed = text.trim_end_matches(|c: char| c == '=' || c.is_ascii_whitespace());
    let mut output = Vec::with_capacity(trimmed.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    let mut symbols = 0usize;
    for character in trimmed.chars() {
        if character == ' ' || character == '-' {
            continue;
        }
        let value = match character.to_ascii_uppercase() {
            upper @ 'A'..='Z' => u32::from(upper) - u32::from('A'),
            digit @ '2'..='7' => u32::from(digit) - u32::from('2') + 26,
            _ => return Err("not base32 (expected letters A-Z and digits 2-7)"),
        };
        symbols += 1;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            output.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // 1, 3 or 6 symbols in the last group cannot come from whole bytes.
    if matches!(symbols % 8, 1 | 3 | 6) {
        return Err("impossible base32 length");
    }
    if buffer != 0 {
        return Err("non-zero trailing bits in base32");
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        // RFC 4648 section 10, without padding.
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded, "encode {plain:?}");
            assert_eq!(
                decode(encoded).unwrap(),
                plain.as_bytes(),
                "decode {encoded:?}"
            );
        }
    }

    #[test]
    fn decode_is_lenient_about_typing_only() {
        assert_eq!(decode("mzxw 6ytb-oi").unwrap(), b"foobar");
        assert_eq!(decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert!(decode("MZXW6YTB0I").is_err(), "zero is not base32");
        assert!(decode("MZXW6YTBO1").is_err(), "one is not base32");
        assert!(decode("M").is_err(), "one symbol is not a byte");
        assert!(decode("MZ=X").is_err(), "padding only at the end");
        assert_eq!(decode("MY").unwrap(), b"f");
        assert!(decode("MZ").is_err(), "trailing bits must be zero");
    }

    #[test]
    fn round_trip_every_length() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for length in 0..40 {
            let slice = &bytes[length..length * 2];
            assert_eq!(decode(&encode(slice)).unwrap(), slice);
        }
    }
}
