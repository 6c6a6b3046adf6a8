//! Checksums and range checks that turn regex candidates into detections:
//! Luhn, ISO 7064 MOD 97-10, the IBAN country length table, payment-card
//! brand prefixes, US SSN ranges, and a small base64url decoder for JWT
//! headers. Pure functions over bytes; they run only on candidates, never on
//! whole values.

/// Luhn (mod 10) check over the ASCII digits of `text`; other bytes are
/// ignored. Fewer than two digits never passes.
pub fn luhn_valid(text: &[u8]) -> bool {
    let mut sum: u32 = 0;
    let mut count: usize = 0;
    for &byte in text.iter().rev() {
        if !byte.is_ascii_digit() {
            continue;
        }
        let mut digit = u32::from(byte - b'0');
        if count % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
        count += 1;
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// ISO 7064 MOD 97-10 over the ASCII alphanumerics of `text` (other bytes
/// ignored): the first four move to the end, letters count as 10..=35, and
/// the remainder must be 1. Fewer than five alphanumerics never pass.
pub fn mod97_valid(text: &[u8]) -> bool {
    let alphanumerics = || text.iter().copied().filter(u8::is_ascii_alphanumeric);
    if alphanumerics().count() < 5 {
        return false;
    }
    let mut remainder: u32 = 0;
    for byte in alphanumerics().skip(4).chain(alphanumerics().take(4)) {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            b'A'..=b'Z' => u32::from(byte - b'A') + 10,
            _ => u32::from(byte.to_ascii_uppercase().wrapping_sub(b'A')) + 10,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// IBAN length (in characters, without spaces) for an ISO 3166 country code,
/// from the SWIFT IBAN registry. `None` for countries without IBAN.
pub fn iban_length(country: [u8; 2]) -> Option<usize> {
    let length = match &country {
        b"AD" => 24,
        b"AE" => 23,
        b"AL" => 28,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BI" => 27,
        b"BR" => 29,
        b"BY" => 28,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DJ" => 27,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FK" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HN" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IQ" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LC" => 32,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"LY" => 25,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MN" => 20,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NI" => 28,
        b"NL" => 18,
        b"NO" => 15,
        b"OM" => 23,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"RU" => 33,
        b"SA" => 24,
        b"SC" => 31,
        b"SD" => 18,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"SO" => 23,
        b"ST" => 25,
        b"SV" => 28,
        b"TL" => 23,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VA" => 22,
        b"VG" => 24,
        b"XK" => 20,
        b"YE" => 30,
        _ => return None,
    };
    Some(length)
}

/// Whether `digits` (ASCII digits only, no separators) has the prefix and
/// length of a major card brand: Visa, Mastercard (51-55 and 2221-2720),
/// American Express, Discover, JCB, Diners Club, UnionPay.
pub fn card_brand_valid(digits: &[u8]) -> bool {
    let length = digits.len();
    let prefix = |count: usize| -> u32 {
        digits.iter().take(count).fold(0u32, |acc, &digit| {
            acc * 10 + u32::from(digit.wrapping_sub(b'0'))
        })
    };
    if length < 4 {
        return false;
    }
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let sixteen_to_nineteen = (16..=19).contains(&length);
    // Visa
    (p1 == 4 && matches!(length, 13 | 16 | 19))
        // Mastercard
        || ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && length == 16
        // American Express
        || (p2 == 34 || p2 == 37) && length == 15
        // Discover
        || (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) && sixteen_to_nineteen
        // JCB
        || (3528..=3589).contains(&p4) && sixteen_to_nineteen
        // Diners Club (International 14 digits; 16-19 for the co-branded ranges)
        || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39)
            && (14..=19).contains(&length)
        // UnionPay
        || p2 == 62 && sixteen_to_nineteen
}

/// US Social Security number ranges: area not 000, 666 or 900-999; group not
/// 00; serial not 0000.
pub fn ssn_ranges_valid(area: u16, group: u16, serial: u16) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Parses up to `N` ASCII digits as a number; `None` if any byte is not a digit.
pub fn parse_digits(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    digits.iter().try_fold(0u16, |acc, &digit| {
        digit
            .is_ascii_digit()
            .then(|| acc * 10 + u16::from(digit - b'0'))
    })
}

/// Decodes unpadded base64url (RFC 4648 §5). `None` on any invalid byte or
/// impossible length. Used only on JWT headers, which are short.
pub fn base64url_decode(input: &[u8]) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        match byte {
            b'A'..=b'Z' => Some(u32::from(byte - b'A')),
            b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    }
    if input.len() % 4 == 1 {
        return None;
    }
    let mut output = Vec::with_capacity(input.len() / 4 * 3 + 2);
    for chunk in input.chunks(4) {
        let mut accumulator: u32 = 0;
        for &byte in chunk {
            accumulator = (accumulator << 6) | value(byte)?;
        }
        let bytes = accumulator.to_be_bytes();
        match chunk.len() {
            4 => output.extend_from_slice(bytes.get(1..4)?),
            3 => {
                let shifted = (accumulator << 6).to_be_bytes();
                output.extend_from_slice(shifted.get(1..3)?);
            }
            2 => {
                let shifted = (accumulator << 12).to_be_bytes();
                output.push(*shifted.get(1)?);
            }
            _ => return None,
        }
    }
    Some(output)
}

/// Whether a JWT header segment decodes to a JSON object with an `"alg"` key.
/// A structural check (braces and key), not a full JSON parse: enough to tell
/// a JOSE header from an arbitrary dotted base64 string.
pub fn jwt_header_valid(segment: &[u8]) -> bool {
    let Some(decoded) = base64url_decode(segment) else {
        return false;
    };
    let trimmed = decoded.trim_ascii();
    trimmed.first() == Some(&b'{')
        && trimmed.last() == Some(&b'}')
        && trimmed.windows(5).any(|window| window == b"\"alg\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"4111 1111 1111 1111"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b"0"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn mod97() {
        assert!(mod97_valid(b"GB82WEST12345698765432"));
        assert!(mod97_valid(b"GB82 WEST 1234 5698 7654 32"));
        assert!(mod97_valid(b"DE89370400440532013000"));
        assert!(!mod97_valid(b"GB82WEST12345698765433"));
        assert!(!mod97_valid(b"GB8"));
    }

    #[test]
    fn iban_lengths() {
        assert_eq!(iban_length(*b"GB"), Some(22));
        assert_eq!(iban_length(*b"NO"), Some(15));
        assert_eq!(iban_length(*b"US"), None);
    }

    #[test]
    fn card_brands() {
        for number in [
            "4111111111111111",
            "4222222222222",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
        ] {
            assert!(card_brand_valid(number.as_bytes()), "{number}");
        }
        for number in [
            "1234567812345678",
            "5655555555554444",
            "411111111111111",
            "99",
        ] {
            assert!(!card_brand_valid(number.as_bytes()), "{number}");
        }
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn_ranges_valid(123, 45, 6789));
        assert!(!ssn_ranges_valid(0, 45, 6789));
        assert!(!ssn_ranges_valid(666, 45, 6789));
        assert!(!ssn_ranges_valid(900, 45, 6789));
        assert!(!ssn_ranges_valid(123, 0, 6789));
        assert!(!ssn_ranges_valid(123, 45, 0));
        assert_eq!(parse_digits(b"0123"), Some(123));
        assert_eq!(parse_digits(b"12a"), None);
        assert_eq!(parse_digits(b"12345"), None);
    }

    #[test]
    fn base64url() {
        assert_eq!(
            base64url_decode(b"eyJhbGciOiJIUzI1NiJ9").unwrap(),
            b"{\"alg\":\"HS256\"}"
        );
        assert_eq!(base64url_decode(b"YQ").unwrap(), b"a");
        assert_eq!(base64url_decode(b"YWI").unwrap(), b"ab");
        assert!(base64url_decode(b"Y").is_none());
        assert!(base64url_decode(b"Y+==").is_none());
        assert!(jwt_header_valid(b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
        assert!(!jwt_header_valid(b"eyJ0eXAiOiJKV1QifQ"));
    }
}
