//! Syntax errors as PostgreSQL's own grammar reports them.
//!
//! It owns one question, asked only when the fast classifier gave up
//! (`complete: false`): *does this text parse at all?* It runs PostgreSQL's
//! real raw parser (libpg_query, through the `pg_query` crate: PostgreSQL
//! 17's grammar) and, when the text does not parse, returns the parser's
//! message and the position PostgreSQL would report, so the gateway can
//! answer a typo with `42601` instead of a policy refusal. It never decides
//! whether a statement may run, and a text it cannot check is simply "not
//! checked" (the caller keeps its refusal).
//!
//! # Why a dedicated thread
//! Every libpg_query parse redirects the *process's* file descriptor 2 into a
//! pipe for its duration (`dup`/`dup2`): two parses on two threads at once
//! can leave stderr pointing at a closed pipe for good. So every parse runs on
//! one thread, `airlock-sql-parser`, which the first call starts. It also
//! keeps libpg_query's per-thread memory (never freed when a thread exits) to
//! that one thread, and gives it a stack of its own. A caller waits at most
//! [`CHECK_TIMEOUT`] (and gets "not checked" when the thread is busy with a
//! queue of [`MAX_QUEUED_CHECKS`] texts), so a slow parse can never stall a
//! connection for longer than that. Log lines other threads write to stderr
//! while a parse runs (microseconds for typical texts) go into that pipe and
//! are lost: libpg_query's behaviour, not ours.
//!
//! # Bounds (hostile input)
//! The raw parser is bison's table-driven parser: it does not recurse, its
//! stack is on the heap and bounded (10,000 entries; deeper nesting is
//! PostgreSQL's own `memory exhausted` syntax error), so deep nesting cannot
//! overflow the thread's stack. Its time is linear in the text, about 100 ms
//! per MiB of statements, except for one quadratic path: each `GLOBAL` of a
//! `CREATE GLOBAL TEMP TABLE` raises a positioned warning that counts the
//! characters from the text's start (20,000 of them in 680 KB took 21 s).
//! Hence texts over [`MAX_CHECKED_BYTES`], with more than
//! [`MAX_CHECKED_GLOBAL_WORDS`] words `global`, or with a NUL byte (which a
//! Query message cannot carry) are not checked. Parser failures that are not
//! about the text (out of memory, no file descriptor for the pipe) are "not
//! checked" too, never a syntax error.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Texts longer than this (in bytes) are not checked: parsing is about
/// 100 ms per MiB, and a caller should not wait longer than that. The
/// gateway's own Query bound (16 MiB) is larger.
pub const MAX_CHECKED_BYTES: usize = 1024 * 1024;

/// Texts with more words `global` (any case) than this are not checked: each
/// `CREATE GLOBAL TEMP …` costs libpg_query time linear in the text.
pub const MAX_CHECKED_GLOBAL_WORDS: usize = 16;

/// The longest a caller waits for an answer, including the time the parser
/// thread spends on other callers' texts first; after it, "not checked".
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Texts that may wait for the parser thread at once; more are not checked.
pub const MAX_QUEUED_CHECKS: usize = 64;

/// The parser thread's stack. Measured need: deeply nested texts
/// (100,000 `(`, 3,000 nested subqueries) parse on a 256 KiB stack; this is
/// margin.
const PARSER_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Candidates tried when locating an error token that occurs more than once
/// (binary search: 24 prefix parses cover 16 million occurrences).
const MAX_LOCATE_PROBES: usize = 24;

/// A text PostgreSQL's grammar rejects: what the server would answer with
/// SQLSTATE `42601`. The binding gives no SQLSTATE: the few grammar-action
/// errors the server reports with another code (`0A000` for `tables
/// declared WITH OIDS are not supported`) are returned here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// PostgreSQL's message, e.g. `syntax error at or near "form"` or
    /// `unterminated quoted string at or near "'abc"`.
    pub message: String,
    /// Where the error is, as PostgreSQL reports it in the ErrorResponse `P`
    /// field: 1-based, in characters (not bytes) of the whole text; one past
    /// the last character for errors `at end of input`. `None` when the
    /// message names no token (errors raised by grammar actions, such as
    /// `LIMIT #,# syntax is not supported`, whose position the server takes
    /// from a parse-tree node libpg_query does not expose) or when the token
    /// could not be located in time.
    pub position: Option<u32>,
}

/// The syntax error PostgreSQL's grammar reports for `text` (a whole simple
/// Query text or one Parse message's statement), or `None` when the text
/// parses **or was not checked** (see the module docs: too long, too many
/// `GLOBAL`, a NUL byte, the parser thread busy or unavailable, the answer
/// later than [`CHECK_TIMEOUT`]).
///
/// Contract for the caller: call it only for a text the classifier could
/// not classify completely; `Some` means the text must not reach the
/// upstream and the client may be told `42601` with this message and
/// position; `None` means keep the refusal the classifier's result leads to.
/// It parses with `standard_conforming_strings = on` (the classifier's
/// assumption too), PostgreSQL 17's grammar: a text only an older server
/// accepts (rare) gets a syntax error here, one only PostgreSQL 17 accepts
/// (`SELECT 1_000`) parses. It blocks the calling thread for up to
/// [`CHECK_TIMEOUT`]; it never panics.
pub fn syntax_error(text: &str) -> Option<SyntaxError> {
    if !checkable(text) {
        return None;
    }
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let sender = parser_thread()?;
    let (reply, answer) = mpsc::sync_channel(1);
    let request = Request {
        text: text.to_string(),
        deadline,
        reply,
    };
    // Full (the thread is busy) or gone: not checked.
    sender.try_send(request).ok()?;
    answer
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
        .flatten()
}

/// Whether `text` is within the bounds the parser is trusted with.
fn checkable(text: &str) -> bool {
    text.len() <= MAX_CHECKED_BYTES
        && !text.contains('\0')
        && global_words(text) <= MAX_CHECKED_GLOBAL_WORDS
}

/// How many times the word `global` (any case, not part of a longer word)
/// occurs in `text`, quoted or not: an over-count is only a text not checked.
fn global_words(text: &str) -> usize {
    let bytes = text.as_bytes();
    let word_byte = |index: Option<usize>| {
        index
            .and_then(|index| bytes.get(index))
            .is_some_and(|byte| byte.is_ascii_alphanumeric() || *byte == b'_' || *byte >= 0x80)
    };
    let lower = text.to_ascii_lowercase();
    lower
        .match_indices("global")
        .filter(|(start, word)| {
            !word_byte(start.checked_sub(1)) && !word_byte(Some(start + word.len()))
        })
        .count()
}

/// A text waiting for the parser thread.
struct Request {
    text: String,
    /// After it the caller no longer waits: the thread skips the text.
    deadline: Instant,
    reply: SyncSender<Option<SyntaxError>>,
}

/// The parser thread's queue, started on first use; `None` when the thread
/// could not be started (then nothing is checked).
fn parser_thread() -> Option<&'static SyncSender<Request>> {
    static QUEUE: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::sync_channel(MAX_QUEUED_CHECKS);
            std::thread::Builder::new()
                .name("airlock-sql-parser".to_string())
                .stack_size(PARSER_STACK_BYTES)
                .spawn(move || serve(receiver))
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

fn serve(requests: Receiver<Request>) {
    while let Ok(request) = requests.recv() {
        if Instant::now() >= request.deadline {
            continue;
        }
        // A panic inside the binding must not end the thread (every later
        // caller would get "not checked"); it makes this text not checked.
        let answer = std::panic::catch_unwind(|| check(&request.text, request.deadline))
            .ok()
            .flatten();
        // The caller may have given up: nothing to do then.
        let _ = request.reply.send(answer);
    }
}

/// What libpg_query says about a text.
enum Parsed {
    Parses,
    Error(String),
    /// A failure that says nothing about the text.
    NotChecked,
}

/// Messages of parser failures that are about resources, not the text.
const RESOURCE_FAILURES: [&str; 4] = [
    "Failed to open pipe",
    "out of memory",
    "invalid memory alloc request size",
    "stack depth limit exceeded",
];

fn parse(text: &str) -> Parsed {
    // The raw parser only (no parse tree is serialized, which would
    // recurse over deeply nested trees): statement boundaries or the error.
    match pg_query::split_with_parser(text) {
        Ok(_) => Parsed::Parses,
        Err(pg_query::Error::Split(message)) => {
            if RESOURCE_FAILURES
                .iter()
                .any(|failure| message.starts_with(failure))
            {
                Parsed::NotChecked
            } else {
                Parsed::Error(message)
            }
        }
        Err(_) => Parsed::NotChecked,
    }
}

/// Runs on the parser thread.
fn check(text: &str, deadline: Instant) -> Option<SyntaxError> {
    match parse(text) {
        Parsed::Parses | Parsed::NotChecked => None,
        Parsed::Error(message) => {
            // Half the time left for the position, so the message still
            // arrives in time when locating it is slow.
            let now = Instant::now();
            let position = locate(
                text,
                &message,
                now + deadline.saturating_duration_since(now) / 2,
            );
            Some(SyntaxError { message, position })
        }
    }
}

const AT_OR_NEAR: &str = " at or near \"";
const AT_END_OF_INPUT: &str = " at end of input";

/// The position PostgreSQL reports for `message` about `text`.
///
/// PostgreSQL's lexer and grammar errors say where they are in their text:
/// `… at end of input` (position one past the last character) or
/// `… at or near "TOKEN"`, TOKEN being the text of the token the error is
/// at, from its first byte. When TOKEN occurs more than once, the error is
/// at the first token the grammar cannot accept: the last occurrence (as
/// whole tokens) before which the text is still a valid beginning (a prefix
/// that parses or ends in an error `at end of input`); that property is
/// monotone, so a binary search finds it.
fn locate(text: &str, message: &str, deadline: Instant) -> Option<u32> {
    // An `at or near` message ends with the token's closing quote.
    if message.ends_with(AT_END_OF_INPUT) {
        return character_position(text, text.len());
    }
    let (_, near) = message.split_once(AT_OR_NEAR)?;
    let near = near.strip_suffix('"')?;
    if near.is_empty() {
        return None;
    }
    let occurrences: Vec<usize> = text.match_indices(near).map(|(start, _)| start).collect();
    let candidates = match occurrences.as_slice() {
        [] => return None,
        [only] => return character_position(text, *only),
        _ => {
            // Occurrences that are whole tokens (`1a` is two of ours,
            // one of PostgreSQL's: a run of tokens), not parts of one.
            let tokens = crate::lexer::tokenize(text);
            let token_ends: Vec<usize> = tokens.iter().map(|token| token.end).collect();
            let token_starts: Vec<usize> = tokens
                .iter()
                .map(|token| token.start)
                .filter(|start| occurrences.binary_search(start).is_ok())
                .filter(|start| token_ends.binary_search(&(start + near.len())).is_ok())
                .collect();
            if token_starts.is_empty() {
                occurrences
            } else {
                token_starts
            }
        }
    };
    if let [only] = candidates.as_slice() {
        return character_position(text, *only);
    }
    // Binary search for the first candidate before which the text is no
    // longer a valid beginning; the error is at the candidate before it.
    // The message without a position is better than no answer: stop when
    // the next probe (at most as long as the longest so far) would end
    // after the caller stopped waiting.
    let (mut low, mut high) = (0, candidates.len());
    let (mut probes, mut longest_probe) = (0, Duration::ZERO);
    while low < high {
        probes += 1;
        let started = Instant::now();
        if probes > MAX_LOCATE_PROBES || started + longest_probe >= deadline {
            return None;
        }
        let middle = low + (high - low) / 2;
        let cut = *candidates.get(middle)?;
        let valid = valid_beginning(text.get(..cut)?)?;
        longest_probe = longest_probe.max(started.elapsed());
        if valid {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    character_position(text, *candidates.get(low.checked_sub(1)?)?)
}

/// Whether `prefix` can be continued into a text that parses; `None` when
/// the parser did not say.
fn valid_beginning(prefix: &str) -> Option<bool> {
    match parse(prefix) {
        Parsed::Parses => Some(true),
        Parsed::Error(message) => Some(message.ends_with(AT_END_OF_INPUT)),
        Parsed::NotChecked => None,
    }
}

/// PostgreSQL's error position for byte offset `offset` of `text`: 1-based,
/// in characters.
fn character_position(text: &str, offset: usize) -> Option<u32> {
    let characters = text.get(..offset)?.chars().count();
    u32::try_from(characters).ok()?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_words_counts_whole_words_only() {
        assert_eq!(global_words("create GLOBAL temp table t()"), 1);
        assert_eq!(global_words("select global_id, xglobal, \"Global\""), 1);
        assert_eq!(global_words("global;global"), 2);
    }

    #[test]
    fn positions_are_characters_from_one() {
        assert_eq!(character_position("héllo", 0), Some(1));
        assert_eq!(character_position("héllo", 3), Some(3));
        assert_eq!(character_position("héllo", 2), None);
    }
}
