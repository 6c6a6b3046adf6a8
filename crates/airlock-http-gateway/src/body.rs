//! Response bodies on the way to the client: decompressed when the
//! upstream compressed them (the credential scrubber and the masker must
//! see the plain bytes), scrubbed of the credential always, and masked
//! under the decision's mask plan.
//!
//! Without a mask plan the body streams through chunk by chunk (`/drip`,
//! `/stream/N`, large downloads), in bounded memory. Under a mask plan a
//! JSON or text body is read whole, up to `http.max_masked_body_bytes`
//! after decompression, masked and sent; a larger one, one of another type
//! or one in an encoding the gateway cannot decode is refused, never
//! passed unmasked (fail closed).

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;

use airlock_mask::{MaskPlan, MaskStats};

use crate::json_mask::JsonMasker;
use crate::scrub::Scrubber;

/// How the upstream encoded the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

/// The body's encoding, or why the gateway cannot decode it.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, String> {
    let mut values = headers.get_all(http::header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(Encoding::Identity);
    };
    if values.next().is_some() {
        return Err("several content encodings".into());
    }
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => Err(format!("content encoding {other:?} cannot be decoded")),
    }
}

/// A streaming decoder that never produces more than about a megabyte per
/// step (input is fed in small slices), so a compression bomb cannot fill
/// memory in one go.
pub enum Decoder {
    Identity,
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

const DECODE_SLICE: usize = 1024;

impl Decoder {
    pub fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Identity => Self::Identity,
            Encoding::Gzip => Self::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            Encoding::Deflate => Self::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
        }
    }

    /// Decodes `chunk`, handing each slice's output to `emit`; stops with
    /// `emit`'s error.
    pub fn push(
        &mut self,
        chunk: &[u8],
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        for slice in chunk.chunks(DECODE_SLICE) {
            let output = match self {
                Self::Identity => slice.to_vec(),
                Self::Gzip(decoder) => {
                    decoder
                        .write_all(slice)
                        .map_err(|error| format!("gzip: {error}"))?;
                    std::mem::take(decoder.get_mut())
                }
                Self::Deflate(decoder) => {
                    decoder
                        .write_all(slice)
                        .map_err(|error| format!("deflate: {error}"))?;
                    std::mem::take(decoder.get_mut())
                }
            };
            if !output.is_empty() {
                emit(output)?;
            }
        }
        Ok(())
    }

    /// What the decoder still holds at the end of the body.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            Self::Identity => Ok(Vec::new()),
            Self::Gzip(decoder) => decoder.finish().map_err(|error| format!("gzip: {error}")),
            Self::Deflate(decoder) => decoder
                .finish()
                .map_err(|error| format!("deflate: {error}")),
        }
    }
}

/// What a body's media type lets the masker do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Json,
    Text,
    Other,
}

/// The kind of `Content-Type` (JSON: `application/json`, `*+json`,
/// NDJSON; text: `text/*`, XML, form data).
pub fn media_kind(headers: &HeaderMap) -> MediaKind {
    let value = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if value == "application/json"
        || value.ends_with("+json")
        || value == "application/x-ndjson"
        || value == "application/jsonl"
    {
        MediaKind::Json
    } else if value.starts_with("text/")
        || value == "application/xml"
        || value.ends_with("+xml")
        || value == "application/x-www-form-urlencoded"
        || value == "application/javascript"
    {
        MediaKind::Text
    } else {
        MediaKind::Other
    }
}

/// Reads the whole body, decoded, up to `limit` bytes.
pub async fn read_limited(
    mut incoming: Incoming,
    encoding: Encoding,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut decoder = Decoder::new(encoding);
    let mut whole = Vec::new();
    let too_large =
        || format!("the body is larger than http.max_masked_body_bytes ({limit} bytes)");
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|error| format!("upstream body: {error}"))?;
        if let Ok(data) = frame.into_data() {
            decoder.push(&data, &mut |output| {
                if whole.len() + output.len() > limit {
                    return Err(too_large());
                }
                whole.extend_from_slice(&output);
                Ok(())
            })?;
        }
    }
    let rest = decoder.finish()?;
    if whole.len() + rest.len() > limit {
        return Err(too_large());
    }
    whole.extend_from_slice(&rest);
    Ok(whole)
}

/// The detector name Secret values masked in a Kubernetes response count
/// under (`airlock_k8s::secrets`).
pub const KUBERNETES_SECRET_DETECTOR: &str = "kubernetes_secret";

/// Masks a whole body of `kind` under `plan` and the field rules; with
/// `kubernetes`, every Secret value in a JSON body too
/// (`airlock_k8s::secrets`).
pub fn mask_body(
    kind: MediaKind,
    body: &[u8],
    plan: &MaskPlan,
    fields: &[String],
    kubernetes: bool,
    stats: &mut MaskStats,
) -> Result<Vec<u8>, String> {
    let mask_json =
        |value: &mut serde_json::Value, masker: &JsonMasker<'_>, stats: &mut MaskStats| {
            masker.mask(value, stats);
            if kubernetes {
                // Counted like a detector's matches (records, metrics).
                let secrets = airlock_k8s::secrets::mask_secret_values(value);
                if secrets > 0 {
                    stats.record(KUBERNETES_SECRET_DETECTOR, secrets);
                }
            }
        };
    match kind {
        MediaKind::Other if body.is_empty() => Ok(Vec::new()),
        MediaKind::Other => Err("a response of this content type cannot be masked".into()),
        MediaKind::Text => Ok(plan.mask_bytes(body, stats).into_owned()),
        MediaKind::Json => {
            let masker = JsonMasker::new(plan, fields)?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(body.to_vec());
            }
            if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) {
                mask_json(&mut value, &masker, stats);
                return serde_json::to_vec(&value).map_err(|error| error.to_string());
            }
            // JSON lines (`/stream/N`): each line a document.
            let mut out = Vec::with_capacity(body.len());
            for line in body.split(|byte| *byte == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    out.extend_from_slice(line);
                } else {
                    let mut value: serde_json::Value =
                        serde_json::from_slice(line).map_err(|_| {
                            "a JSON response that does not parse cannot be masked".to_string()
                        })?;
                    mask_json(&mut value, &masker, stats);
                    out.extend(serde_json::to_vec(&value).map_err(|error| error.to_string())?);
                }
                out.push(b'\n');
            }
            // One newline was pushed per part; the parts are one more than
            // the newlines.
            out.pop();
            Ok(out)
        }
    }
}

/// What a relayed body amounted to, for the result record.
#[derive(Debug, Default)]
pub struct Relayed {
    /// Bytes sent to the client.
    pub bytes: u64,
    /// The first bytes the client got (masked and scrubbed), as text.
    pub sample: Vec<u8>,
    /// Why the body ended early, if it did.
    pub error: Option<String>,
    /// Events relayed (a Kubernetes watch under a mask plan), else 0.
    pub rows: u64,
    /// Line ends relayed (a watch's event count when it is not masked).
    pub newlines: u64,
}

impl Relayed {
    pub fn keep(&mut self, bytes: &[u8], sample_limit: usize) {
        self.bytes += bytes.len() as u64;
        self.newlines += bytes.iter().filter(|byte| **byte == b'\n').count() as u64;
        let room = sample_limit.saturating_sub(self.sample.len());
        self.sample
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
    }
}

/// A client body fed from a channel by [`pump`].
pub struct ChannelBody(pub mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(context)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}

/// Streams `incoming` to `sender`: decoded, scrubbed, chunk by chunk.
/// Trailers are dropped (they could echo the credential). Returns what was
/// relayed once the body ended or the client went away.
pub async fn pump(
    mut incoming: Incoming,
    encoding: Encoding,
    scrubber: &Scrubber,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    sample_limit: usize,
) -> Relayed {
    let mut relayed = Relayed::default();
    let mut decoder = Decoder::new(encoding);
    let mut stream = scrubber.stream();
    let mut pending: Vec<Vec<u8>> = Vec::new();
    loop {
        // A client that went away ends the relay at once, also while the
        // upstream is silent (a watch may send nothing for minutes).
        let frame = tokio::select! {
            frame = incoming.frame() => frame,
            () = sender.closed() => {
                relayed.error = Some("the client went away".into());
                return relayed;
            }
        };
        let Some(frame) = frame else {
            break;
        };
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Err(error) => {
                relayed.error = Some(format!("upstream body: {error}"));
                let _ = sender
                    .send(Err(std::io::Error::other("upstream body failed")))
                    .await;
                return relayed;
            }
        };
        let decoded = decoder.push(&data, &mut |output| {
            pending.push(stream.push(&output));
            Ok(())
        });
        if let Err(error) = decoded {
            relayed.error = Some(error);
            let _ = sender
                .send(Err(std::io::Error::other("undecodable body")))
                .await;
            return relayed;
        }
        for chunk in pending.drain(..) {
            if chunk.is_empty() {
                continue;
            }
            relayed.keep(&chunk, sample_limit);
            if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                relayed.error = Some("the client went away".into());
                return relayed;
            }
        }
    }
    let mut tail = match decoder.finish() {
        Ok(rest) => stream.push(&rest),
        Err(error) => {
            relayed.error = Some(error);
            let _ = sender
                .send(Err(std::io::Error::other("undecodable body")))
                .await;
            return relayed;
        }
    };
    tail.extend(stream.finish());
    if !tail.is_empty() {
        relayed.keep(&tail, sample_limit);
        let _ = sender.send(Ok(Bytes::from(tail))).await;
    }
    relayed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_gzip_in_bounded_steps() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b'a'; 4 * 1024 * 1024]).unwrap();
        let compressed = encoder.finish().unwrap();
        let mut decoder = Decoder::new(Encoding::Gzip);
        let mut largest = 0;
        let mut total = 0;
        decoder
            .push(&compressed, &mut |output| {
                largest = largest.max(output.len());
                total += output.len();
                Ok(())
            })
            .unwrap();
        total += decoder.finish().unwrap().len();
        assert_eq!(total, 4 * 1024 * 1024);
        assert!(largest <= 2 * 1024 * 1024, "{largest}");
    }

    #[test]
    fn encodings_and_kinds() {
        let mut headers = HeaderMap::new();
        assert_eq!(encoding(&headers), Ok(Encoding::Identity));
        headers.insert("content-encoding", "br".parse().unwrap());
        assert!(encoding(&headers).is_err());
        headers.insert("content-encoding", "GZIP".parse().unwrap());
        assert_eq!(encoding(&headers), Ok(Encoding::Gzip));
        headers.insert(
            "content-type",
            "application/problem+json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(media_kind(&headers), MediaKind::Json);
        headers.insert("content-type", "image/png".parse().unwrap());
        assert_eq!(media_kind(&headers), MediaKind::Other);
    }

    #[test]
    fn masks_json_lines_and_refuses_unknown_types() {
        let plan = MaskPlan::compile(&airlock_mask::MaskSpec {
            detectors: vec!["email".into()],
            ..airlock_mask::MaskSpec::default()
        })
        .unwrap();
        let mut stats = MaskStats::new();
        let out = mask_body(
            MediaKind::Json,
            b"{\"a\":\"x@example.com\"}\n{\"b\":1}\n",
            &plan,
            &[],
            false,
            &mut stats,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("x@example.com"), "{text}");
        assert_eq!(text.lines().count(), 2);
        assert!(mask_body(MediaKind::Other, b"\x89PNG", &plan, &[], false, &mut stats).is_err());
        assert!(mask_body(MediaKind::Json, b"{nope", &plan, &[], false, &mut stats).is_err());
        // Kubernetes: Secret values are masked, one watch event per line.
        let events = b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Secret\",\"data\":{\"k\":\"c2VjcmV0\"}}}\n";
        let out = mask_body(MediaKind::Json, events, &plan, &[], true, &mut stats).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        let out = mask_body(MediaKind::Json, events, &plan, &[], false, &mut stats).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("c2VjcmV0"));
    }
}
