//! Replacing every echo of the injected credential in a response (headers
//! and body), in a stream of chunks. Pure.
//!
//! An upstream that echoes what it received (httpbin's `/headers`, many
//! error pages) would hand the agent the credential the gateway exists to
//! keep from it. Every form [`crate::headers::echo_forms`] lists is replaced
//! by [`REPLACEMENT`], also when it is split across chunks: the scrubber
//! holds back, of the last `longest form − 1` bytes of each chunk, those
//! from the first byte where a form could begin, until the next chunk (or
//! the end) shows whether they start a match. Memory is bounded by the
//! chunk size plus that tail.

use aho_corasick::{AhoCorasick, MatchKind};

/// What an echoed credential becomes.
pub const REPLACEMENT: &[u8] = b"[airlock:credential]";

/// The compiled forms of one credential.
#[derive(Debug, Clone)]
pub struct Scrubber {
    matcher: Option<AhoCorasick>,
    longest: usize,
    forms: Vec<Vec<u8>>,
}

impl Scrubber {
    /// A scrubber for these forms (an empty list scrubs nothing).
    pub fn new(forms: &[Vec<u8>]) -> Self {
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(forms)
            .ok()
            .filter(|_| !forms.is_empty());
        Self {
            matcher,
            longest,
            forms: forms.to_vec(),
        }
    }

    /// True when `bytes` holds a form whole.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        self.matcher
            .as_ref()
            .is_some_and(|matcher| matcher.is_match(bytes))
    }

    /// `bytes` with every form replaced.
    pub fn scrub_all(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        let mut out = stream.push(bytes);
        out.extend(stream.finish());
        out
    }

    /// A stream over one body.
    pub fn stream(&self) -> ScrubStream<'_> {
        ScrubStream {
            scrubber: self,
            carry: Vec::new(),
        }
    }
}

/// The scrubbing state of one body.
#[derive(Debug)]
pub struct ScrubStream<'a> {
    scrubber: &'a Scrubber,
    carry: Vec<u8>,
}

impl ScrubStream<'_> {
    /// The bytes of `chunk` (after those held back) that are final now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(matcher) = &self.scrubber.matcher else {
            return chunk.to_vec();
        };
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let hold = self.scrubber.longest.saturating_sub(1);
        let safe_end = data.len().saturating_sub(hold);
        let mut out = Vec::with_capacity(data.len());
        let mut position = 0;
        for found in matcher.find_iter(&data) {
            // A match starting before `safe_end` is whole: the longest form
            // starting there fits in `data`.
            if found.start() >= safe_end {
                break;
            }
            out.extend_from_slice(data.get(position..found.start()).unwrap_or(&[]));
            out.extend_from_slice(REPLACEMENT);
            position = found.end();
        }
        let emit_to = self.first_held(&data, safe_end.max(position));
        out.extend_from_slice(data.get(position..emit_to).unwrap_or(&[]));
        self.carry = data.get(emit_to..).unwrap_or(&[]).to_vec();
        out
    }

    /// Where the held-back tail must start: the first position from
    /// `from` at which a form could begin (the rest is a prefix of a form,
    /// or a form starts there). Bytes before it are final now, so a stream
    /// of small messages (watch events) is not delayed by a tail that
    /// cannot be a credential.
    fn first_held(&self, data: &[u8], from: usize) -> usize {
        (from..data.len())
            .find(|&index| {
                let rest = data.get(index..).unwrap_or(&[]);
                self.scrubber
                    .forms
                    .iter()
                    .any(|form| form.starts_with(rest) || rest.starts_with(form))
            })
            .unwrap_or(data.len())
    }

    /// The rest, at the end of the body.
    pub fn finish(&mut self) -> Vec<u8> {
        let carry = std::mem::take(&mut self.carry);
        let Some(matcher) = &self.scrubber.matcher else {
            return carry;
        };
        let mut out = Vec::with_capacity(carry.len());
        matcher.replace_all_with_bytes(&carry, &mut out, |_, _, dst| {
            dst.extend_from_slice(REPLACEMENT);
            true
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replaces_whole_and_split_echoes() {
        let scrubber = Scrubber::new(&[b"s3cr3t-key".to_vec(), b"czNjcjN0LWtleQ==".to_vec()]);
        assert_eq!(
            scrubber.scrub_all(b"{\"X-Api-Key\": \"s3cr3t-key\"}"),
            b"{\"X-Api-Key\": \"[airlock:credential]\"}".to_vec()
        );
        let mut stream = scrubber.stream();
        let mut out = stream.push(b"abc s3cr");
        out.extend(stream.push(b"3t-k"));
        out.extend(stream.push(b"ey and czNjcjN0LWtleQ== end"));
        out.extend(stream.finish());
        assert_eq!(
            out,
            b"abc [airlock:credential] and [airlock:credential] end".to_vec()
        );
        assert_eq!(Scrubber::new(&[]).scrub_all(b"same"), b"same".to_vec());
    }

    /// A chunk whose tail cannot start a form is final at once (a watch
    /// event is not held back); a tail that may is held.
    #[test]
    fn holds_back_only_what_may_start_a_form() {
        let scrubber = Scrubber::new(&[b"s3cr3t-key".to_vec()]);
        let mut stream = scrubber.stream();
        assert_eq!(
            stream.push(b"{\"type\":\"ADDED\"}\n"),
            b"{\"type\":\"ADDED\"}\n".to_vec()
        );
        assert_eq!(stream.push(b"x s3cr"), b"x ".to_vec());
        assert_eq!(stream.push(b"3t-key!"), b"[airlock:credential]!".to_vec());
        assert_eq!(stream.finish(), Vec::<u8>::new());
    }

    proptest! {
        /// However the body is cut into chunks, no form survives and the
        /// result equals the one-piece result.
        #[test]
        fn chunking_never_lets_a_form_through(
            parts in proptest::collection::vec(
                prop_oneof![Just(b"TOKEN123".to_vec()), Just(b"TOK".to_vec()), "[a-zT]{0,9}".prop_map(String::into_bytes)],
                0..12,
            ),
            cuts in proptest::collection::vec(0usize..40, 0..6),
        ) {
            let scrubber = Scrubber::new(&[b"TOKEN123".to_vec()]);
            let body: Vec<u8> = parts.concat();
            let whole = scrubber.scrub_all(&body);
            let mut stream = scrubber.stream();
            let mut out = Vec::new();
            let mut start = 0;
            let mut points: Vec<usize> = cuts.iter().map(|cut| cut.min(&body.len()).to_owned()).collect();
            points.sort_unstable();
            for point in points {
                out.extend(stream.push(&body[start..point.max(start)]));
                start = point.max(start);
            }
            out.extend(stream.push(&body[start..]));
            out.extend(stream.finish());
            prop_assert_eq!(&out, &whole);
            prop_assert!(!scrubber.finds(&out));
        }
    }
}
