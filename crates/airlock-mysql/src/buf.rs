//! Bounds-checked reading and writing of the protocol's basic types:
//! fixed-width little-endian integers, length-encoded integers and strings,
//! NUL-terminated strings. Every accessor returns an error instead of
//! panicking when the payload is shorter than the field.

use crate::MySqlCodecError;

/// The lenenc prefix that means SQL NULL in a text row.
pub(crate) const LENENC_NULL: u8 = 0xFB;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Everything not read yet, consumed.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    pub(crate) fn truncated(&self) -> MySqlCodecError {
        MySqlCodecError::Truncated { what: self.what }
    }

    pub(crate) fn malformed(&self) -> MySqlCodecError {
        MySqlCodecError::Malformed { what: self.what }
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], MySqlCodecError> {
        if count > self.bytes.len() {
            return Err(self.truncated());
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MySqlCodecError> {
        let head = self.take(N)?;
        head.try_into().map_err(|_| self.truncated())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MySqlCodecError> {
        Ok(u8::from_le_bytes(self.array::<1>()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MySqlCodecError> {
        Ok(u16::from_le_bytes(self.array::<2>()?))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, MySqlCodecError> {
        let [a, b, c] = self.array::<3>()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MySqlCodecError> {
        Ok(u32::from_le_bytes(self.array::<4>()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, MySqlCodecError> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }

    /// A length-encoded integer. `Ok(None)` for the NULL marker 0xFB; the
    /// undefined prefix 0xFF is an error.
    pub(crate) fn lenenc_or_null(&mut self) -> Result<Option<u64>, MySqlCodecError> {
        let first = self.u8()?;
        Ok(Some(match first {
            0..=0xFA => u64::from(first),
            LENENC_NULL => return Ok(None),
            0xFC => u64::from(self.u16()?),
            0xFD => u64::from(self.u24()?),
            0xFE => self.u64()?,
            0xFF => return Err(self.malformed()),
        }))
    }

    /// A length-encoded integer that must not be the NULL marker.
    pub(crate) fn lenenc(&mut self) -> Result<u64, MySqlCodecError> {
        self.lenenc_or_null()?.ok_or_else(|| self.malformed())
    }

    /// A length-encoded integer used as a byte count: must fit what is left.
    fn lenenc_len(&mut self) -> Result<usize, MySqlCodecError> {
        let length = self.lenenc()?;
        usize::try_from(length)
            .ok()
            .filter(|&length| length <= self.bytes.len())
            .ok_or_else(|| self.truncated())
    }

    /// A length-encoded string.
    pub(crate) fn lenenc_bytes(&mut self) -> Result<&'a [u8], MySqlCodecError> {
        let length = self.lenenc_len()?;
        self.take(length)
    }

    /// A length-encoded string or NULL (0xFB), as in a text row.
    pub(crate) fn lenenc_bytes_or_null(&mut self) -> Result<Option<&'a [u8]>, MySqlCodecError> {
        if self.peek() == Some(LENENC_NULL) {
            self.take(1)?;
            return Ok(None);
        }
        self.lenenc_bytes().map(Some)
    }

    /// A length-encoded string decoded lossily as UTF-8 (names and messages
    /// the gateway shows; their exact bytes are not re-sent).
    pub(crate) fn lenenc_string(&mut self) -> Result<String, MySqlCodecError> {
        Ok(String::from_utf8_lossy(self.lenenc_bytes()?).into_owned())
    }

    /// A NUL-terminated string's bytes (the NUL consumed, not returned).
    pub(crate) fn nul_bytes(&mut self) -> Result<&'a [u8], MySqlCodecError> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(MySqlCodecError::BadString { what: self.what })?;
        let head = self.take(end)?;
        self.take(1)?;
        Ok(head)
    }

    /// A NUL-terminated string decoded lossily as UTF-8.
    pub(crate) fn nul_string(&mut self) -> Result<String, MySqlCodecError> {
        Ok(String::from_utf8_lossy(self.nul_bytes()?).into_owned())
    }

    /// A NUL-terminated string whose NUL may be missing at the end of the
    /// payload (some servers omit the plugin name's terminator).
    pub(crate) fn nul_or_eof_bytes(&mut self) -> &'a [u8] {
        match self.bytes.iter().position(|&b| b == 0) {
            Some(end) => {
                let (head, tail) = self.bytes.split_at(end);
                self.bytes = tail.get(1..).unwrap_or_default();
                head
            }
            None => self.rest(),
        }
    }
}

pub(crate) fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u24(out: &mut Vec<u8>, value: u32) {
    let [a, b, c, _] = value.to_le_bytes();
    out.extend_from_slice(&[a, b, c]);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a length-encoded integer in its shortest form.
pub(crate) fn put_lenenc(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xFA => out.push(value as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            put_u16(out, value as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            put_u24(out, value as u32);
        }
        _ => {
            out.push(0xFE);
            put_u64(out, value);
        }
    }
}

/// Appends a length-encoded string.
pub(crate) fn put_lenenc_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a NUL-terminated string. A NUL inside `bytes` would end the
/// field early on the other side, so the encoders refuse such input first.
pub(crate) fn put_nul_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.push(0);
}

/// Refuses a value for a NUL-terminated field that contains a NUL.
pub(crate) fn check_no_nul(bytes: &[u8], what: &'static str) -> Result<(), MySqlCodecError> {
    if bytes.contains(&0) {
        return Err(MySqlCodecError::BadString { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_integers_use_the_documented_prefixes() {
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x00]),
            (250, &[0xFA]),
            (251, &[0xFC, 0xFB, 0x00]),
            (0xFFFF, &[0xFC, 0xFF, 0xFF]),
            (0x10000, &[0xFD, 0x00, 0x00, 0x01]),
            (0x100_0000, &[0xFE, 0, 0, 0, 1, 0, 0, 0, 0]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_lenenc(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            let mut reader = Reader::new(bytes, "test");
            assert_eq!(reader.lenenc().unwrap(), value);
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn lenenc_null_and_undefined_prefixes() {
        assert_eq!(Reader::new(&[0xFB], "t").lenenc_or_null().unwrap(), None);
        assert!(Reader::new(&[0xFF], "t").lenenc_or_null().is_err());
        assert!(Reader::new(&[0xFC, 1], "t").lenenc().is_err());
        // A string longer than the payload is truncated, not a panic.
        assert!(Reader::new(&[0x05, b'a'], "t").lenenc_bytes().is_err());
        assert!(
            Reader::new(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "t")
                .lenenc_bytes()
                .is_err()
        );
    }

    #[test]
    fn nul_strings() {
        let mut reader = Reader::new(b"abc\0def", "t");
        assert_eq!(reader.nul_bytes().unwrap(), b"abc");
        assert!(reader.clone_for_test().nul_bytes().is_err());
        assert_eq!(reader.nul_or_eof_bytes(), b"def");
        assert!(reader.is_empty());
    }

    impl<'a> Reader<'a> {
        fn clone_for_test(&self) -> Reader<'a> {
            Reader::new(self.bytes, self.what)
        }
    }
}
