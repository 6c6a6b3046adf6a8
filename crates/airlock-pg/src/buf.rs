//! A bounds-checked reader over a message body. Every accessor returns an
//! error instead of panicking when the body is shorter than the field.

use crate::PgCodecError;

pub(crate) struct BodyReader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn truncated(&self) -> PgCodecError {
        PgCodecError::Truncated { what: self.what }
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], PgCodecError> {
        if count > self.bytes.len() {
            return Err(self.truncated());
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, PgCodecError> {
        let head = self.take(1)?;
        head.first().copied().ok_or_else(|| self.truncated())
    }

    pub(crate) fn i16(&mut self) -> Result<i16, PgCodecError> {
        let head = self.take(2)?;
        let array: [u8; 2] = head.try_into().map_err(|_| self.truncated())?;
        Ok(i16::from_be_bytes(array))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, PgCodecError> {
        let head = self.take(4)?;
        let array: [u8; 4] = head.try_into().map_err(|_| self.truncated())?;
        Ok(i32::from_be_bytes(array))
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, PgCodecError> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(PgCodecError::BadString { what: self.what })?;
        let head = self.take(end)?;
        self.take(1)?;
        std::str::from_utf8(head).map_err(|_| PgCodecError::BadString { what: self.what })
    }

    /// A NUL-terminated string; bytes that are not UTF-8 become U+FFFD.
    pub(crate) fn cstr_lossy(&mut self) -> Result<std::borrow::Cow<'a, str>, PgCodecError> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(PgCodecError::BadString { what: self.what })?;
        let head = self.take(end)?;
        self.take(1)?;
        Ok(String::from_utf8_lossy(head))
    }

    /// A count that must be non-negative and at most `max`.
    pub(crate) fn count16(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<usize, PgCodecError> {
        let raw = self.i16()?;
        let count =
            usize::try_from(raw).map_err(|_| PgCodecError::Malformed { what: self.what })?;
        if count > max {
            return Err(PgCodecError::TooMany { what, count, max });
        }
        Ok(count)
    }
}

/// Appends a NUL-terminated string.
pub(crate) fn put_cstr(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// Starts a tagged message; returns the offset of its length field, to be
/// patched by [`finish_message`].
pub(crate) fn begin_message(out: &mut Vec<u8>, tag: u8) -> usize {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

/// Patches the length field of a message started with [`begin_message`].
pub(crate) fn finish_message(out: &mut [u8], at: usize) {
    let length = out.len().saturating_sub(at);
    let length = i32::try_from(length).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&length.to_be_bytes());
    }
}
