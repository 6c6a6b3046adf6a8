//! Rendering of the three styles: what a detected span is replaced with.
//!
//! `full` replaces every character with `*` (one per character, so the
//! output stays valid UTF-8 and keeps the length in characters);
//! `placeholder` writes a fixed text; `partial` keeps the shape and a small,
//! low-risk part of the value, per detector:
//!
//! | detector | partial output |
//! |---|---|
//! | email | first character of the local part, `@`, dots and the top-level domain: `j*******@*******.com` |
//! | card | separators and the last four digits: `**** **** **** 1111` |
//! | ssn | separators and the last four digits: `***-**-6789` |
//! | phone | `+`, parentheses, separators and the last two digits: `(***) ***-**71` |
//! | iban | the country code, separators and the last four characters: `GB** **** **** **** **54 32` |
//! | ip | the first IPv4 octet or IPv6 group: `192.***.*.**`, `2001:***::*` |
//! | secret | the public type prefix, then a fixed `****`: `ghp_****`, `AKIA****`, `****` for passwords |
//! | custom | punctuation, and the last four letters or digits when there are at least twelve |
//!
//! Every partial output is a fixed point of detection: masking it again finds
//! nothing (tested in `tests/properties.rs`).

use crate::Kind;

/// Writes `*` once per character of `region` (once per byte for bytes that
/// are not valid UTF-8).
pub(crate) fn full(region: &[u8], out: &mut Vec<u8>) {
    for chunk in region.utf8_chunks() {
        let stars = chunk.valid().chars().count() + chunk.invalid().len();
        out.resize(out.len() + stars, b'*');
    }
}

/// Writes the partial form of `region`, detected by a `kind` detector.
pub(crate) fn partial(kind: Kind, region: &[u8], keep_prefix: usize, out: &mut Vec<u8>) {
    match kind {
        Kind::Email => email(region, out),
        Kind::Card | Kind::Ssn => keep_last_digits(region, 4, out),
        Kind::Phone => keep_last_digits(region, 2, out),
        Kind::Iban => iban(region, out),
        Kind::Ip => ip(region, out),
        Kind::Secret => {
            let prefix = region
                .get(..keep_prefix.min(region.len()))
                .unwrap_or_default();
            out.extend_from_slice(prefix);
            out.extend_from_slice(b"****");
        }
        Kind::Custom => custom(region, out),
    }
}

fn star_if(condition: bool, byte: u8) -> u8 {
    if condition {
        b'*'
    } else {
        byte
    }
}

fn email(region: &[u8], out: &mut Vec<u8>) {
    let at = region
        .iter()
        .position(|&byte| byte == b'@')
        .unwrap_or(region.len());
    let last_dot = region
        .iter()
        .rposition(|&byte| byte == b'.')
        .unwrap_or(region.len());
    for (index, &byte) in region.iter().enumerate() {
        let keep = index == 0 || index == at || index >= last_dot || (index > at && byte == b'.');
        out.push(star_if(!keep, byte));
    }
}

fn keep_last_digits(region: &[u8], keep: usize, out: &mut Vec<u8>) {
    let digits = region.iter().filter(|byte| byte.is_ascii_digit()).count();
    let mut seen = 0;
    for &byte in region {
        if byte.is_ascii_digit() {
            seen += 1;
            out.push(star_if(seen + keep <= digits, byte));
        } else {
            out.push(byte);
        }
    }
}

fn iban(region: &[u8], out: &mut Vec<u8>) {
    let characters = region
        .iter()
        .filter(|byte| byte.is_ascii_alphanumeric())
        .count();
    let mut seen = 0;
    for &byte in region {
        if byte.is_ascii_alphanumeric() {
            seen += 1;
            out.push(star_if(seen > 2 && seen + 4 <= characters, byte));
        } else {
            out.push(byte);
        }
    }
}

fn ip(region: &[u8], out: &mut Vec<u8>) {
    let first_separator = region
        .iter()
        .position(|&byte| byte == b'.' || byte == b':')
        .unwrap_or(region.len());
    for (index, &byte) in region.iter().enumerate() {
        out.push(star_if(
            index > first_separator && byte.is_ascii_hexdigit(),
            byte,
        ));
    }
}

fn custom(region: &[u8], out: &mut Vec<u8>) {
    let alphanumerics = region
        .iter()
        .filter(|byte| byte.is_ascii_alphanumeric())
        .count();
    let shown_from = if alphanumerics >= 12 {
        alphanumerics - 4
    } else {
        alphanumerics
    };
    let mut seen = 0;
    for chunk in region.utf8_chunks() {
        for character in chunk.valid().chars() {
            if character.is_ascii_alphanumeric() {
                seen += 1;
                if seen > shown_from {
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                } else {
                    out.push(b'*');
                }
            } else if character.is_ascii() {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
            } else {
                out.push(b'*');
            }
        }
        out.resize(out.len() + chunk.invalid().len(), b'*');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(kind: Kind, text: &str, keep_prefix: usize) -> String {
        let mut out = Vec::new();
        partial(kind, text.as_bytes(), keep_prefix, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn partial_shapes() {
        assert_eq!(
            render(Kind::Email, "jane.doe@example.com", 0),
            "j*******@*******.com"
        );
        assert_eq!(
            render(Kind::Email, "a@mail.example.co.uk", 0),
            "a@****.*******.**.uk"
        );
        assert_eq!(
            render(Kind::Card, "4111 1111 1111 1111", 0),
            "**** **** **** 1111"
        );
        assert_eq!(
            render(Kind::Card, "4111-1111-1111-1111", 0),
            "****-****-****-1111"
        );
        assert_eq!(render(Kind::Card, "378282246310005", 0), "***********0005");
        assert_eq!(render(Kind::Ssn, "123-45-6789", 0), "***-**-6789");
        assert_eq!(render(Kind::Phone, "(415) 555-2671", 0), "(***) ***-**71");
        assert_eq!(
            render(Kind::Phone, "+44 20 7946 0958", 0),
            "+** ** **** **58"
        );
        assert_eq!(
            render(Kind::Iban, "GB82 WEST 1234 5698 7654 32", 0),
            "GB** **** **** **** **54 32"
        );
        assert_eq!(
            render(Kind::Iban, "GB82WEST12345698765432", 0),
            "GB****************5432"
        );
        assert_eq!(render(Kind::Ip, "192.168.1.23", 0), "192.***.*.**");
        assert_eq!(render(Kind::Ip, "2001:db8::1", 0), "2001:***::*");
        assert_eq!(render(Kind::Secret, "ghp_abcdef", 4), "ghp_****");
        assert_eq!(render(Kind::Secret, "hunter2", 0), "****");
        assert_eq!(render(Kind::Custom, "EMP-123456", 0), "***-******");
        assert_eq!(
            render(Kind::Custom, "ACCT-1234-5678-9012", 0),
            "****-****-****-9012"
        );
        assert_eq!(render(Kind::Custom, "né-42", 0), "**-**");
    }

    #[test]
    fn full_counts_characters() {
        let mut out = Vec::new();
        full("añb".as_bytes(), &mut out);
        assert_eq!(out, b"***");
        out.clear();
        full(b"a\xffb", &mut out);
        assert_eq!(out, b"***");
    }
}
