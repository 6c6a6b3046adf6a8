//! Server-sent events as an MCP server writes them (a Streamable HTTP
//! answer stream, the standalone GET stream, the legacy HTTP+SSE stream),
//! decoded sans-IO: bytes in, whole events out.
//!
//! Only what MCP uses is kept: `event` (the type; `message` when absent),
//! `data` (lines joined by `\n`) and `id`; comments and `retry` are
//! skipped. An event longer than the decoder's bound (data, the line being
//! read, or both) is an error, after which the stream must be dropped: a
//! server cannot grow the gateway's memory by never ending an event. Never
//! panics, whatever the bytes.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (`message` when the server named none).
    pub event: String,
    pub data: String,
    /// `id:`, if the event carried one.
    pub id: Option<String>,
}

/// An event over the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event of the MCP server's stream exceeds {0} bytes")]
pub struct EventTooLarge(pub usize);

/// The decoder of one stream.
#[derive(Debug)]
pub struct SseDecoder {
    max_event_bytes: usize,
    /// The line being read (no terminator yet).
    line: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` opening the next belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// The stream's first bytes are still to come (a BOM is skipped).
    at_start: bool,
}

impl SseDecoder {
    /// A decoder refusing events over `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            id: None,
            at_start: true,
        }
    }

    /// The events `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        let mut chunk = chunk;
        if self.at_start && !chunk.is_empty() {
            self.at_start = false;
            chunk = chunk.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(chunk);
        }
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() + self.data.len() >= self.max_event_bytes {
                        return Err(EventTooLarge(self.max_event_bytes));
                    }
                    self.line.push(byte);
                }
            }
        }
        if self.data.len() > self.max_event_bytes {
            return Err(EventTooLarge(self.max_event_bytes));
        }
        Ok(events)
    }

    /// One complete line: a field, a comment, or the blank line that
    /// dispatches the event.
    fn line_done(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.first() == Some(&b':') {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // An id with a NUL is ignored, as the specification says.
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let had_data = std::mem::replace(&mut self.has_data, false);
        let id = self.id.take();
        if !had_data {
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (event, data, id) of an expected event.
    type Expected<'a> = (&'a str, &'a str, Option<&'a str>);

    fn all(bytes: &[u8]) -> Vec<SseEvent> {
        SseDecoder::new(1024).push(bytes).unwrap()
    }

    #[test]
    fn events_as_servers_write_them() {
        let cases: [(&[u8], Vec<Expected>); 6] = [
            (
                b"event: message\ndata: {\"a\":1}\n\n",
                vec![("message", "{\"a\":1}", None)],
            ),
            (
                b"event: endpoint\r\ndata: /message?sessionId=x\r\n\r\n",
                vec![("endpoint", "/message?sessionId=x", None)],
            ),
            (
                b"id: 7\ndata: a\ndata: b\n\n: keep-alive\n\n",
                vec![("message", "a\nb", Some("7"))],
            ),
            (
                b"\xEF\xBB\xBFdata:x\r\rdata:y\n\n",
                vec![("message", "x", None), ("message", "y", None)],
            ),
            // An event without data dispatches nothing; a last event
            // without its blank line is not dispatched.
            (b"event: ping\n\nretry: 10\n\ndata: open", vec![]),
            (b"data\n\n", vec![("message", "", None)]),
        ];
        for (bytes, expected) in cases {
            let got: Vec<(String, String, Option<String>)> = all(bytes)
                .into_iter()
                .map(|event| (event.event, event.data, event.id))
                .collect();
            let expected: Vec<(String, String, Option<String>)> = expected
                .into_iter()
                .map(|(e, d, i)| (e.to_string(), d.to_string(), i.map(str::to_string)))
                .collect();
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_crlf_split_across_chunks_is_one_line_end() {
        let mut decoder = SseDecoder::new(1024);
        assert!(decoder.push(b"data: a\r").unwrap().is_empty());
        assert!(decoder.push(b"\n").unwrap().is_empty());
        let events = decoder.push(b"\r\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a");
    }

    #[test]
    fn an_event_over_the_bound_is_an_error() {
        let mut decoder = SseDecoder::new(16);
        assert!(decoder.push(b"data: 0123456789\n").is_ok());
        assert_eq!(decoder.push(b"data: 0123456789\n"), Err(EventTooLarge(16)));
        let mut endless = SseDecoder::new(16);
        assert!(endless.push(&[b'x'; 40]).is_err(), "a line never ended");
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut decoder = SseDecoder::new(128);
            for chunk in chunks {
                match decoder.push(&chunk) {
                    Ok(events) => {
                        for event in events {
                            prop_assert!(event.data.len() <= 128 * 4);
                        }
                    }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn chunking_does_not_change_the_events(split in 0usize..60) {
            let stream = b"event: message\r\ndata: {\"id\":1}\r\n\r\nid: 2\ndata: x\n\n";
            let split = split.min(stream.len());
            let mut decoder = SseDecoder::new(1024);
            let (first, second) = stream.split_at(split);
            let mut events = decoder.push(first).unwrap();
            events.extend(decoder.push(second).unwrap());
            prop_assert_eq!(events, all(stream));
        }
    }
}
