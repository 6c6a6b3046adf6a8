//! `NotificationResponse` (`A`): the backend process id, the channel and
//! the payload of a `NOTIFY`, decoded so the payload can be masked like a
//! row value, and encoded back.
//!
//! Architecture invariant: total; a malformed body is an error, never a
//! panic.

use crate::buf::{begin_message, finish_message, put_cstr, BodyReader};
use crate::PgCodecError;

/// The message tag.
pub const TAG: u8 = b'A';

/// A decoded `NotificationResponse` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    pub process_id: i32,
    pub channel: &'a str,
    pub payload: &'a str,
}

/// Decodes the body of a `NotificationResponse`.
pub fn decode_notification(body: &[u8]) -> Result<Notification<'_>, PgCodecError> {
    let mut reader = BodyReader::new(body, "notification");
    let process_id = reader.i32()?;
    let channel = reader.cstr()?;
    let payload = reader.cstr()?;
    if reader.remaining() != 0 {
        return Err(PgCodecError::Malformed {
            what: "notification",
        });
    }
    Ok(Notification {
        process_id,
        channel,
        payload,
    })
}

/// Appends a whole `NotificationResponse` message.
pub fn encode_notification(out: &mut Vec<u8>, notification: &Notification<'_>) {
    let at = begin_message(out, TAG);
    out.extend_from_slice(&notification.process_id.to_be_bytes());
    put_cstr(out, notification.channel);
    put_cstr(out, notification.payload);
    finish_message(out, at);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn notifications_round_trip() {
        let notification = Notification {
            process_id: 7,
            channel: "ch",
            payload: "a;b",
        };
        let mut out = Vec::new();
        encode_notification(&mut out, &notification);
        assert_eq!(out[0], TAG);
        assert_eq!(
            i32::from_be_bytes(out[1..5].try_into().unwrap()) as usize,
            out.len() - 1
        );
        assert_eq!(decode_notification(&out[5..]).unwrap(), notification);
        assert!(decode_notification(&out[5..out.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn hostile_notifications_never_panic(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_notification(&body);
        }
    }
}
