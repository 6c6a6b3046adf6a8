//! The TOTP algorithm (RFC 6238: HOTP of RFC 4226 over 30-second steps
//! counted from the Unix epoch), the enrolment URI and replay-safe
//! verification.
//!
//! Security reasoning kept here, next to the code it constrains:
//! - Codes are compared in constant time, every step of the window is
//!   computed and compared, so timing does not tell which step was close.
//! - A code is single-use: [`verify`] returns the matched step, the caller
//!   records it, and any step at or before it is refused afterwards. That
//!   also refuses an *older* code presented after a newer one.
//! - The skew window is capped ([`MAX_SKEW_STEPS`]) so a configuration
//!   mistake cannot turn a 10^-6 guess into a likely one.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::MfaError;
use crate::secret::TotpSecret;

/// Seconds per time step (RFC 6238 default `X`, what authenticator apps use).
pub const PERIOD_SECONDS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Fewest digits [`code_at_digits`] produces (RFC 4226 R4).
pub const MIN_DIGITS: u32 = 6;
/// Most digits [`code_at_digits`] produces: the truncated HOTP value has 31
/// bits, so a ninth digit would always be 0, 1 or 2.
pub const MAX_DIGITS: u32 = 8;
/// Steps accepted on each side of the current one by default: one step
/// (30 s) of clock drift or typing delay.
pub const DEFAULT_SKEW_STEPS: u64 = 1;
/// The widest skew [`verify`] honours; larger values are clamped to this.
pub const MAX_SKEW_STEPS: u64 = 10;

type HmacSha1 = Hmac<Sha1>;

/// The time step containing `unix_seconds` (RFC 6238 `T` with `T0 = 0`).
pub fn time_step(unix_seconds: u64) -> u64 {
    unix_seconds / PERIOD_SECONDS
}

/// RFC 4226 HOTP: HMAC-SHA1 over the big-endian counter, then dynamic
/// truncation to a 31-bit value. `None` only if the HMAC refused the key,
/// which it never does (HMAC takes keys of any length).
fn hotp_value(key: &[u8], counter: u64) -> Option<u32> {
    let mut mac = HmacSha1::new_from_slice(key).ok()?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.last()? & 0x0f);
    let window: [u8; 4] = digest.get(offset..offset + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(window) & 0x7fff_ffff)
}

fn format_code(value: u32, digits: u32) -> String {
    let modulus = 10u32.pow(digits);
    format!("{:0width$}", value % modulus, width = digits as usize)
}

/// The code for `unix_seconds` with `digits` digits (6 to 8). Exposed for
/// the RFC 6238 test vectors, which use 8 digits.
pub fn code_at_digits(
    secret: &TotpSecret,
    unix_seconds: u64,
    digits: u32,
) -> Result<String, MfaError> {
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
        return Err(MfaError::UnsupportedDigits(digits));
    }
    let value = hotp_value(secret.key(), time_step(unix_seconds))
        .ok_or(MfaError::InvalidSecret("key refused by hmac"))?;
    Ok(format_code(value, digits))
}

/// The 6-digit code for `unix_seconds`.
pub fn code_at(secret: &TotpSecret, unix_seconds: u64) -> String {
    // Cannot fail: `DIGITS` is in range and HMAC accepts every key length.
    // Should it ever, the empty string matches no code ([`verify`] requires
    // six digits and does not go through this function).
    code_at_digits(secret, unix_seconds, DIGITS).unwrap_or_default()
}

/// Checks a 6-digit `code` at `unix_seconds`.
///
/// Accepts the current step and `skew_steps` steps either side
/// ([`DEFAULT_SKEW_STEPS`] is the usual choice; clamped to
/// [`MAX_SKEW_STEPS`]). Returns the matched step, which the caller must store
/// and pass back as `last_used_step` on the next verification: any step at or
/// before it is refused as [`MfaError::Reused`].
///
/// The code must be exactly six ASCII digits, no spaces
/// ([`MfaError::Malformed`]); the caller may strip separators first.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    skew_steps: u64,
    last_used_step: Option<u64>,
) -> Result<u64, MfaError> {
    let presented = code.as_bytes();
    if presented.len() != DIGITS as usize || !presented.iter().all(u8::is_ascii_digit) {
        return Err(MfaError::Malformed);
    }
    let skew = skew_steps.min(MAX_SKEW_STEPS);
    let current = time_step(unix_seconds);
    let mut fresh_match = None;
    let mut used_match = false;
    for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
        let Some(value) = hotp_value(secret.key(), step) else {
            return Err(MfaError::Invalid);
        };
        let expected = format_code(value, DIGITS);
        if constant_time_eq(expected.as_bytes(), presented) {
            if last_used_step.is_some_and(|used| step <= used) {
                used_match = true;
            } else {
                // Later steps overwrite earlier ones: the newest match wins,
                // which retires the most codes.
                fresh_match = Some(step);
            }
        }
    }
    match (fresh_match, used_match) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(MfaError::Reused),
        (None, false) => Err(MfaError::Invalid),
    }
}

/// Equality whose running time depends on the lengths only.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |accumulated, (a, b)| accumulated | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// The `otpauth://` enrolment URI (Google Authenticator key URI format):
/// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`,
/// with issuer and account percent-encoded (everything but RFC 3986
/// unreserved characters).
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECONDS}",
        account = percent_encode(account),
        secret = secret.to_base32(),
    )
}

fn percent_encode(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            output.push(char::from(byte));
        } else {
            output.push_str(&format!("%{byte:02X}"));
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    /// RFC 6238 Appendix B, SHA1 column.
    const RFC6238_SHA1: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = rfc_secret();
        for (time, expected) in RFC6238_SHA1 {
            assert_eq!(
                code_at_digits(&secret, time, 8).unwrap(),
                expected,
                "t={time}"
            );
            assert_eq!(
                code_at(&secret, time),
                expected[2..],
                "6 digits at t={time}"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            let value = hotp_value(b"12345678901234567890", counter as u64).unwrap();
            assert_eq!(value % 1_000_000, code, "counter {counter}");
        }
    }

    #[test]
    fn digits_out_of_range_are_refused() {
        let secret = rfc_secret();
        assert_eq!(
            code_at_digits(&secret, 59, 5),
            Err(MfaError::UnsupportedDigits(5))
        );
        assert_eq!(
            code_at_digits(&secret, 59, 9),
            Err(MfaError::UnsupportedDigits(9))
        );
        assert_eq!(code_at_digits(&secret, 59, 7).unwrap(), "4287082");
    }

    #[test]
    fn codes_are_zero_padded() {
        // 07081804 at 1111111109: the 8-digit code keeps its leading zero.
        assert_eq!(
            code_at_digits(&rfc_secret(), 1_111_111_109, 8)
                .unwrap()
                .len(),
            8
        );
        assert_eq!(format_code(42, 6), "000042");
    }

    #[test]
    fn current_step_is_accepted_and_returned() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let code = code_at(&secret, now);
        assert_eq!(
            verify(&secret, &code, now, DEFAULT_SKEW_STEPS, None),
            Ok(now / 30)
        );
        // Any second within the same step.
        let step_start = now / 30 * 30;
        assert_eq!(verify(&secret, &code, step_start, 0, None), Ok(now / 30));
        assert_eq!(
            verify(&secret, &code, step_start + 29, 0, None),
            Ok(now / 30)
        );
        assert_eq!(
            verify(&secret, &code, step_start + 30, 0, None),
            Err(MfaError::Invalid)
        );
    }

    #[test]
    fn skew_window_edges() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = now / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code_time = (now as i64 + offset * 30) as u64;
            let code = code_at(&secret, code_time);
            let result = verify(&secret, &code, now, 1, None);
            if accepted {
                assert_eq!(result, Ok((step as i64 + offset) as u64), "offset {offset}");
            } else {
                assert_eq!(result, Err(MfaError::Invalid), "offset {offset}");
            }
        }
        // With skew 0 only the current step.
        let previous = code_at(&secret, now - 30);
        assert_eq!(
            verify(&secret, &previous, now, 0, None),
            Err(MfaError::Invalid)
        );
        // An absurd skew is clamped rather than honoured.
        let far = code_at(&secret, now - 30 * (MAX_SKEW_STEPS + 1));
        assert_eq!(
            verify(&secret, &far, now, u64::MAX, None),
            Err(MfaError::Invalid)
        );
        let edge = code_at(&secret, now - 30 * MAX_SKEW_STEPS);
        assert_eq!(
            verify(&secret, &edge, now, u64::MAX, None),
            Ok(step - MAX_SKEW_STEPS)
        );
    }

    #[test]
    fn skew_near_the_epoch_does_not_underflow() {
        let secret = rfc_secret();
        let code = code_at(&secret, 0);
        assert_eq!(verify(&secret, &code, 10, 1, None), Ok(0));
    }

    #[test]
    fn the_same_code_is_refused_the_second_time() {
        let secret = rfc_secret();
        let now = 2_000_000_000;
        let code = code_at(&secret, now);
        let step = verify(&secret, &code, now, 1, None).unwrap();
        assert_eq!(
            verify(&secret, &code, now, 1, Some(step)),
            Err(MfaError::Reused)
        );
        // Still refused a step later, while it is inside the skew window.
        assert_eq!(
            verify(&secret, &code, now + 30, 1, Some(step)),
            Err(MfaError::Reused)
        );
        // The next step's code is fine.
        let next = code_at(&secret, now + 30);
        assert_eq!(
            verify(&secret, &next, now + 30, 1, Some(step)),
            Ok(step + 1)
        );
    }

    #[test]
    fn an_older_code_after_a_newer_one_is_refused() {
        let secret = rfc_secret();
        let now = 2_000_000_000;
        let newer = code_at(&secret, now + 30);
        let older = code_at(&secret, now);
        // The newer (clock-ahead) code is used first.
        let used = verify(&secret, &newer, now, 1, None).unwrap();
        assert_eq!(used, now / 30 + 1);
        assert_eq!(
            verify(&secret, &older, now, 1, Some(used)),
            Err(MfaError::Reused)
        );
    }

    #[test]
    fn wrong_codes_are_invalid() {
        let secret = rfc_secret();
        let now = 1_111_111_111;
        let code = code_at(&secret, now);
        let mut wrong = code.clone().into_bytes();
        wrong[5] = if wrong[5] == b'9' { b'0' } else { wrong[5] + 1 };
        let wrong = String::from_utf8(wrong).unwrap();
        assert_eq!(
            verify(&secret, &wrong, now, 1, None),
            Err(MfaError::Invalid)
        );
        let other = TotpSecret::generate();
        // A different secret's code for the same time (1 in 10^6 collision
        // per step; three steps compared: the odds are negligible).
        assert_ne!(verify(&other, &code, now, 1, None), Ok(now / 30));
    }

    #[test]
    fn malformed_codes() {
        let secret = rfc_secret();
        let now = 59;
        for code in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 12345",
            "123 456",
            "１２３４５６",
            "+12345",
            "-12345",
        ] {
            assert_eq!(
                verify(&secret, code, now, 1, None),
                Err(MfaError::Malformed),
                "{code:?}"
            );
        }
        // Malformed wins over everything else (checked before the window).
        assert_eq!(
            verify(&secret, "abc", now, 1, Some(u64::MAX)),
            Err(MfaError::Malformed)
        );
    }

    #[test]
    fn constant_time_eq_semantics() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
    }

    #[test]
    fn otpauth_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            otpauth_uri(&secret, "airlock", "alice"),
            "otpauth://totp/airlock:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=airlock&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri(&secret, "Airlock Corp", "alice@example.com"),
            "otpauth://totp/Airlock%20Corp:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Airlock%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        // Separators inside names cannot forge label or query structure.
        let tricky = otpauth_uri(&secret, "a:b&c=d", "x?y#z/é");
        assert!(
            tricky.starts_with("otpauth://totp/a%3Ab%26c%3Dd:x%3Fy%23z%2F%C3%A9?secret="),
            "{tricky}"
        );
        assert!(tricky.contains("&issuer=a%3Ab%26c%3Dd&"), "{tricky}");
    }
}
