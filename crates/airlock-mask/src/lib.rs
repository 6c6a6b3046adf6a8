//! `airlock-mask`: finds sensitive values (PII, secrets) in query results
//! and rewrites them before they reach the agent, the recording or the log.
//!
//! A policy rule's `mask:` block deserialises into a [`MaskSpec`];
//! [`MaskPlan::compile`] turns it into an immutable, shareable plan; the
//! gateway then calls, per result value, [`MaskPlan::mask_text`] (or
//! [`MaskPlan::mask_bytes`] for wire bytes that may not be UTF-8), and for
//! columns matched by [`MaskPlan::column_masked`], [`MaskPlan::mask_whole`].
//!
//! This crate owns detection and rendering only. It never performs I/O,
//! never blocks, never panics on any input, and never allocates for a value
//! in which nothing is found. What to do with non-text column types (NULL,
//! placeholder) under a column rule is the gateway's concern.
//!
//! # Detectors
//!
//! See [`BUILTIN_DETECTORS`] and the module documentation of each detector:
//! `email`, `card` (brand table + Luhn), `iban` (country lengths + MOD 97),
//! `ssn` (valid ranges; undashed only with a context word), `phone` (E.164,
//! international, NANP, trunk-0 national), `ip` (IPv4, IPv6), `secret`
//! (cloud keys, GitHub/Slack/Stripe tokens, JWTs, PEM private keys,
//! passwords in connection URIs and `password=` pairs), plus custom regex
//! detectors with an optional checksum and context words.
//!
//! Detectors find values inside free text, not only whole cells. When
//! detections overlap, secrets win over custom detectors, then card, IBAN,
//! SSN, phone, email and IP; within a kind the longer span wins.
//!
//! # Limit: content, not provenance
//!
//! Detectors recognise values by their content. A value transformed by the
//! query (`reverse(card)`, `replace(ssn, '-', '')`, `substr(email, 1, 5)`,
//! arithmetic on a card number, a value split over columns) no longer looks
//! like what it was and is not detected. The answer is the column rule:
//! [`MaskPlan::column_masked`] matches result column names, and the glob
//! `*` matches every column, so a policy rule `match: {tables: [t]}` with
//! `columns: ['*']` masks every column of the statements that read `t`
//! (table-level masking), whatever the expressions compute. What reads the
//! value's format (arrays, records, `bytea`, numbers, COPY rows) is the
//! gateway's concern (`airlock-pg-gateway`'s `masking` module): this crate sees
//! only text and bytes.
//!
//! # Styles
//!
//! - [`Style::Partial`] keeps the shape and a small, low-risk part (see the
//!   table in the `render` module: card last four, email first letter and
//!   top-level domain, secret type prefix + a fixed `****`, …).
//! - [`Style::Full`] replaces every character of the match with `*`
//!   (length-preserving, so the length is revealed).
//! - [`Style::Placeholder`] writes [`MaskSpec::placeholder`] (default
//!   `[REDACTED]`); `{detector}` in it becomes the detector name, so
//!   `<masked:{detector}>` gives `<masked:email>`.
//!
//! # Speed
//!
//! All regexes are Rust `regex` automata: linear time, no backtracking, for
//! built-in and policy-supplied patterns alike. Before any regex runs:
//!
//! 1. a branch-free pass counts digits and notes a dozen marker bytes; a
//!    value without two digits, `@` or `:` skips the numeric/email/IP
//!    detectors, and one without any secret prefix's marker bytes skips the
//!    secret scan (names, statuses, timestamps, UUIDs, amounts stop here);
//! 2. otherwise a pass with a 256-entry byte class table splits the value
//!    into segments (at tab, newline, `,`, `;`, …, which no such pattern can
//!    span) and computes per segment which detectors could match (an `@`,
//!    a long enough digit span, a dotted quad, `LLDD` at a word start, …);
//!    only those detectors' regexes run, and only over that segment;
//! 3. secret rules are gated by one Aho-Corasick scan for their literal
//!    prefixes.
//!
//! The gates are conservative: unit tests check that gated and ungated
//! detection agree on the whole corpus and on random PII-like text.
//! Validators (Luhn, MOD 97, SSN ranges, IP parsing, JWT header decoding)
//! run only on regex candidates.

#![deny(clippy::indexing_slicing)]

mod detect;
mod error;
pub mod json;
mod plan;
mod prefilter;
mod render;
mod spec;
mod stats;
mod validate;

pub use error::MaskError;
pub use plan::{Detection, MaskPlan};
pub use spec::{
    CustomDetectorSpec, MaskSpec, Style, Validator, DEFAULT_CONTEXT_WINDOW, DEFAULT_PLACEHOLDER,
};
pub use stats::MaskStats;

/// Names of the built-in detectors, as written in a policy's `detectors:` list.
pub const BUILTIN_DETECTORS: &[&str] = &["email", "card", "iban", "ssn", "phone", "ip", "secret"];

/// The kind of a detector; declaration order is the priority when
/// detections overlap (earlier wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Secret,
    Custom,
    Card,
    Iban,
    Ssn,
    Phone,
    Email,
    Ip,
}
