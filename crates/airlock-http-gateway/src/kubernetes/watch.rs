//! Kubernetes streams under a mask plan, one line at a time: a watch (the
//! API server sends one JSON event per line, `{"type": …, "object": …}\n`;
//! each is masked by the detectors, field rules and Secret values) and a
//! followed log (`pods/log?follow=true`, text; each line masked by the
//! detectors). Each line is scrubbed of the credential on its own and sent
//! as soon as it is complete, instead of the whole body being read first
//! (a watch or `logs -f` may stay open for hours). Memory is bounded by
//! the longest line (`http.max_masked_body_bytes`); a longer one, or a
//! watch line that is not JSON, ends the stream (fail closed: nothing
//! unmasked is sent).

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;

use airlock_mask::{MaskPlan, MaskStats};

use crate::body::{mask_body, Decoder, Encoding, MediaKind, Relayed};
use crate::scrub::Scrubber;

/// What a masked stream needs.
pub struct WatchMask<'a> {
    pub plan: &'a MaskPlan,
    pub fields: &'a [String],
    pub max_event_bytes: usize,
    /// JSON events (a watch) or text lines (a log).
    pub kind: MediaKind,
}

/// The masked, scrubbed form of one event line (with its newline).
fn masked_line(
    line: &[u8],
    mask: &WatchMask<'_>,
    scrubber: &Scrubber,
    stats: &mut MaskStats,
) -> Result<Vec<u8>, String> {
    let mut out = match mask.kind {
        MediaKind::Text => mask.plan.mask_bytes(line, stats).into_owned(),
        _ => mask_body(MediaKind::Json, line, mask.plan, mask.fields, true, stats)?,
    };
    out = scrubber.scrub_all(&out);
    out.push(b'\n');
    Ok(out)
}

/// Streams `incoming` to `sender`, one masked line at a time;
/// `relayed.rows` is the number of lines (watch events).
pub async fn pump_watch(
    mut incoming: Incoming,
    encoding: Encoding,
    scrubber: &Scrubber,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    sample_limit: usize,
    mask: WatchMask<'_>,
) -> (Relayed, MaskStats) {
    let mut relayed = Relayed::default();
    let mut stats = MaskStats::new();
    let mut decoder = Decoder::new(encoding);
    let mut line = Vec::new();
    let mut ready: Vec<Vec<u8>> = Vec::new();
    let fail = |relayed: &mut Relayed, reason: String| {
        relayed.error = Some(reason);
    };
    loop {
        let frame = tokio::select! {
            frame = incoming.frame() => frame,
            () = sender.closed() => {
                relayed.error = Some("the client went away".into());
                return (relayed, stats);
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(error)) => {
                fail(&mut relayed, format!("upstream body: {error}"));
                break;
            }
        };
        let mut problem = None;
        let decoded = decoder.push(&data, &mut |output| {
            for byte_run in output.split_inclusive(|byte| *byte == b'\n') {
                line.extend_from_slice(byte_run);
                if line.len() > mask.max_event_bytes {
                    return Err("a streamed line is larger than http.max_masked_body_bytes".into());
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        match masked_line(&line, &mask, scrubber, &mut stats) {
                            Ok(masked) => ready.push(masked),
                            Err(reason) => {
                                problem = Some(reason.clone());
                                return Err(reason);
                            }
                        }
                    }
                    line.clear();
                }
            }
            Ok(())
        });
        if let Err(reason) = decoded {
            fail(&mut relayed, problem.unwrap_or(reason));
            break;
        }
        for event in ready.drain(..) {
            relayed.keep(&event, sample_limit);
            relayed.rows += 1;
            if sender.send(Ok(Bytes::from(event))).await.is_err() {
                relayed.error = Some("the client went away".into());
                return (relayed, stats);
            }
        }
    }
    if relayed.error.is_none() && !line.iter().all(u8::is_ascii_whitespace) {
        match masked_line(&line, &mask, scrubber, &mut stats) {
            Ok(event) => {
                relayed.keep(&event, sample_limit);
                relayed.rows += 1;
                let _ = sender.send(Ok(Bytes::from(event))).await;
            }
            Err(reason) => fail(&mut relayed, reason),
        }
    }
    if relayed.error.is_some() {
        let _ = sender
            .send(Err(std::io::Error::other("the watch cannot be masked")))
            .await;
    }
    (relayed, stats)
}
