//! When a PEM certificate expires: the `notAfter` of its first
//! certificate, read with a minimal bounded DER walk (Certificate →
//! TBSCertificate → Validity), for `airlock_tls_certificate_expiry_timestamp_seconds`.
//! It validates nothing: rustls checks the certificate; this only reads a
//! date off it, and any surprise answers `None`.

use std::path::Path;

/// The first certificate's `notAfter` in `path`, as Unix seconds.
pub fn certificate_expiry(path: &Path) -> Option<i64> {
    let pem = std::fs::read(path).ok()?;
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    validity(der.as_ref()).map(|(_, not_after)| not_after)
}

/// One DER element: its tag, its contents and what follows it.
fn element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, rest) = rest.split_at(count);
        let length = digits
            .iter()
            .fold(0usize, |length, digit| (length << 8) | usize::from(*digit));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, after) = rest.split_at(length);
    Some((tag, contents, after))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `notBefore` and `notAfter` of an X.509 certificate (Unix seconds):
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE {
/// notBefore, notAfter } … } … }`.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (tag, not_before, after_not_before) = element(validity)?;
    let not_before = der_time(tag, not_before)?;
    let (tag, not_after, _) = element(after_not_before)?;
    Some((not_before, der_time(tag, not_after)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn der_time(tag: u8, time: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(time).ok()?;
    match tag {
        UTC_TIME => {
            let year: i64 = text.get(0..2)?.parse().ok()?;
            let year = if year >= 50 { 1900 + year } else { 2000 + year };
            unix_time(year, text.get(2..)?)
        }
        GENERALIZED_TIME => unix_time(text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => None,
    }
}

/// `MMDDHHMMSSZ` of `year` as Unix seconds.
fn unix_time(year: i64, rest: &str) -> Option<i64> {
    if rest.len() != 11 || !rest.ends_with('Z') {
        return None;
    }
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_expiry_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            validity(cert.der().as_ref()).map(|(_, not_after)| not_after),
            Some(1_930_348_800)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.crt");
        std::fs::write(&path, cert.pem()).unwrap();
        assert_eq!(certificate_expiry(&path), Some(1_930_348_800));
    }

    #[test]
    fn dates_and_garbage() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(unix_time(2000, "0301000000Z"), Some(951_868_800));
        assert_eq!(validity(&[0x30, 0x82, 0xff]), None);
        assert_eq!(validity(&[]), None);
    }
}
