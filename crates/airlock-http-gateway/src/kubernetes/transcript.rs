//! The transcript of one relayed terminal stream (`exec`, `attach`): what
//! each channel carried, in order, with offsets from the stream's start,
//! gathered into `command.stream` payloads for the core's recorder. Pure.
//!
//! Bounded: a session keeps at most its budget of bytes; after that the
//! next payload says `truncated` and later data is only counted. Adjacent
//! pieces of one channel within one payload are joined (the first one's
//! offset kept), so a flood of small frames does not become a flood of
//! records. The exit status is read from the error channel's `Status`.

use airlock_core::events::{CommandStream, StreamChunk};

/// The channel protocol's channel names (`v4`/`v5.channel.k8s.io`).
pub fn channel_name(channel: u8) -> Option<&'static str> {
    Some(match channel {
        0 => "stdin",
        1 => "stdout",
        2 => "stderr",
        3 => "error",
        4 => "resize",
        255 => "close",
        _ => return None,
    })
}

/// Largest error-channel text read for the exit status.
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// A transcript being gathered.
#[derive(Debug)]
pub struct Transcript {
    connection: String,
    budget: usize,
    kept: usize,
    truncated: bool,
    /// `truncated` was recorded already.
    told: bool,
    pending: Vec<StreamChunk>,
    status: Vec<u8>,
}

impl Transcript {
    /// A transcript of at most `budget` bytes.
    pub fn new(connection: &str, budget: usize) -> Self {
        Self {
            connection: connection.to_string(),
            budget,
            kept: 0,
            truncated: false,
            told: false,
            pending: Vec::new(),
            status: Vec::new(),
        }
    }

    /// `data` on `channel` at `at_ms`.
    pub fn add(&mut self, at_ms: u64, channel: &'static str, data: &[u8]) {
        if channel == "error" && self.status.len() < MAX_STATUS_BYTES {
            let room = MAX_STATUS_BYTES - self.status.len();
            self.status
                .extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
        }
        if data.is_empty() || self.truncated {
            return;
        }
        let room = self.budget.saturating_sub(self.kept);
        let kept = data.get(..room.min(data.len())).unwrap_or(&[]);
        self.kept += kept.len();
        if kept.len() < data.len() {
            self.truncated = true;
        }
        if kept.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(kept);
        match self.pending.last_mut() {
            Some(last) if last.channel == channel => last.data.push_str(&text),
            _ => self.pending.push(StreamChunk {
                at_ms,
                channel,
                data: text.into_owned(),
            }),
        }
    }

    /// Bytes waiting to be recorded.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(|chunk| chunk.data.len()).sum()
    }

    /// The payload of what gathered since the last one, if anything did.
    pub fn take(&mut self) -> Option<CommandStream> {
        let tell = self.truncated && !self.told;
        if self.pending.is_empty() && !tell {
            return None;
        }
        self.told |= tell;
        Some(CommandStream {
            chunks: std::mem::take(&mut self.pending),
            connection: self.connection.clone(),
            seq: 1,
            truncated: self.truncated,
        })
    }

    /// The process's exit code from the error channel: 0 for `Success`,
    /// the `ExitCode` cause of a `NonZeroExitCode` failure; `None` when no
    /// status arrived or it says neither.
    pub fn exit_code(&self) -> Option<i64> {
        let status: serde_json::Value = serde_json::from_slice(&self.status).ok()?;
        if status["status"] == "Success" {
            return Some(0);
        }
        status["details"]["causes"]
            .as_array()?
            .iter()
            .find(|cause| cause["reason"] == "ExitCode")
            .and_then(|cause| cause["message"].as_str())
            .and_then(|code| code.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_joined_bounded_and_the_exit_code_read() {
        let mut transcript = Transcript::new("k8s-dev", 10);
        transcript.add(1, "stdin", b"ec");
        transcript.add(2, "stdin", b"ho");
        transcript.add(3, "stdout", b"hi\n");
        let first = transcript.take().unwrap();
        assert_eq!(first.chunks.len(), 2);
        assert_eq!(first.chunks[0].data, "echo");
        assert_eq!(first.chunks[0].at_ms, 1);
        assert!(!first.truncated);
        assert!(transcript.take().is_none());
        transcript.add(4, "stdout", b"abcdef");
        let second = transcript.take().unwrap();
        assert_eq!(second.chunks[0].data, "abc");
        assert!(second.truncated);
        transcript.add(5, "stdout", b"more");
        assert!(transcript.take().is_none());
        assert_eq!(transcript.exit_code(), None);
        transcript.add(
            6,
            "error",
            br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        );
        assert_eq!(transcript.exit_code(), Some(3));
        let mut ok = Transcript::new("k8s-dev", 100);
        ok.add(1, "error", br#"{"metadata":{},"status":"Success"}"#);
        assert_eq!(ok.exit_code(), Some(0));
    }
}
