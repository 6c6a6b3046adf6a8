//! Binary `numeric` (`numeric_send`: digit count, weight, sign, display
//! scale, then base-10000 digits): rendered as decimal text so its digits
//! can be checked, and the zero value used in place of a masked number.
//!
//! Architecture invariant: total and bounded (digit count checked against
//! the bytes present); hostile bytes give an error, never a panic.

use crate::buf::BodyReader;
use crate::PgCodecError;

const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const POSITIVE_INFINITY: u16 = 0xD000;
const NEGATIVE_INFINITY: u16 = 0xF000;

/// Renders a binary `numeric` as PostgreSQL's text output does.
pub fn binary_numeric_to_text(bytes: &[u8]) -> Result<String, PgCodecError> {
    const WHAT: &str = "binary numeric";
    let malformed = PgCodecError::Malformed { what: WHAT };
    let mut reader = BodyReader::new(bytes, WHAT);
    let digit_count = usize::try_from(reader.i16()?).map_err(|_| malformed.clone())?;
    let weight = i32::from(reader.i16()?);
    let sign = u16::from_be_bytes(reader.i16()?.to_be_bytes());
    let scale = usize::try_from(reader.i16()?).map_err(|_| malformed.clone())?;
    if digit_count * 2 != reader.remaining() {
        return Err(malformed);
    }
    match sign {
        NAN => return Ok("NaN".into()),
        POSITIVE_INFINITY => return Ok("Infinity".into()),
        NEGATIVE_INFINITY => return Ok("-Infinity".into()),
        0 | NEGATIVE => {}
        _ => return Err(malformed),
    }
    let mut digits = Vec::with_capacity(digit_count);
    for _ in 0..digit_count {
        let digit = reader.i16()?;
        if !(0..10_000).contains(&digit) {
            return Err(malformed);
        }
        digits.push(digit);
    }
    let digit_at = |position: i32| -> i16 {
        usize::try_from(position)
            .ok()
            .and_then(|position| digits.get(position).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == NEGATIVE {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for position in 0..=weight {
            let digit = digit_at(position);
            if position == 0 {
                text.push_str(&digit.to_string());
            } else {
                text.push_str(&format!("{digit:04}"));
            }
        }
    }
    if scale > 0 {
        text.push('.');
        let mut fraction = String::with_capacity(scale + 4);
        let mut position = weight + 1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", digit_at(position)));
            position += 1;
        }
        text.push_str(fraction.get(..scale).unwrap_or(&fraction));
    }
    Ok(text)
}

/// The binary `numeric` zero, with the display scale of `like` (when it is
/// a readable numeric) so the client shows the same number of decimals.
pub fn binary_numeric_zero(like: &[u8]) -> Vec<u8> {
    let scale = like.get(6..8).unwrap_or(&[0, 0]);
    let mut out = vec![0, 0, 0, 0, 0, 0];
    out.extend_from_slice(scale);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn numeric(weight: i16, sign: u16, scale: i16, digits: &[i16]) -> Vec<u8> {
        let mut out = (digits.len() as i16).to_be_bytes().to_vec();
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&scale.to_be_bytes());
        for digit in digits {
            out.extend_from_slice(&digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_render_as_postgres_prints_them() {
        let cases = [
            (
                numeric(3, 0, 0, &[4111, 1111, 1111, 1111]),
                "4111111111111111",
            ),
            (numeric(0, 0, 2, &[12, 5000]), "12.50"),
            (numeric(-1, NEGATIVE, 3, &[50]), "-0.005"),
            (numeric(1, 0, 0, &[1]), "10000"),
            (numeric(0, 0, 0, &[]), "0"),
            (numeric(0, NAN, 0, &[]), "NaN"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(binary_numeric_to_text(&bytes).unwrap(), expected);
        }
        assert_eq!(
            binary_numeric_to_text(&binary_numeric_zero(&numeric(0, 0, 2, &[12, 5000]))).unwrap(),
            "0.00"
        );
        assert!(binary_numeric_to_text(&numeric(0, 0, 0, &[10_000])).is_err());
    }

    proptest! {
        #[test]
        fn hostile_numerics_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = binary_numeric_to_text(&bytes);
        }
    }
}
