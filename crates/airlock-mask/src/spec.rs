//! The plain-data description of what to mask ([`MaskSpec`]), as it appears in
//! a policy's `mask:` block. Deserialisable, validated only by
//! [`crate::MaskPlan::compile`]; holds no compiled state.

use serde::Deserialize;

/// What to mask and how, as written in a policy rule's `mask:` block.
///
/// ```yaml
/// mask:
///   detectors: [email, card, iban, ssn, phone, secret]
///   columns: ["*password*", "*token*"]
///   style: partial
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// Built-in detectors to run over every text value (see
    /// [`crate::BUILTIN_DETECTORS`]). Custom detector names may also be listed;
    /// custom detectors run whether listed or not.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Column-name globs (`*`, `?`, `[abc]`, `{a,b}`), matched case-insensitively
    /// against the result column name. A matching column is masked whole,
    /// whatever its content.
    #[serde(default)]
    pub columns: Vec<String>,
    /// How a detected value is rewritten.
    #[serde(default)]
    pub style: Style,
    /// Replacement text for [`Style::Placeholder`]. `{detector}` inside it is
    /// replaced by the detector name (`column` for column rules). Default
    /// [`DEFAULT_PLACEHOLDER`].
    #[serde(default)]
    pub placeholder: Option<String>,
    /// Site-specific detectors.
    #[serde(default)]
    pub custom: Vec<CustomDetectorSpec>,
}

/// The placeholder used when [`MaskSpec::placeholder`] is not set.
pub const DEFAULT_PLACEHOLDER: &str = "[REDACTED]";

/// A site-specific detector: a regex, an optional checksum and optional
/// context words.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetectorSpec {
    /// Name used in statistics and `{detector}` placeholders. Must not be a
    /// built-in name.
    pub name: String,
    /// Rust `regex` syntax (linear time, no look-around or back-references).
    /// The whole match is masked, unless the regex has a capture group named
    /// `mask`, in which case only that group is.
    pub regex: String,
    /// Checksum the digits (or alphanumerics, for `mod97`) of the match must pass.
    #[serde(default)]
    pub validator: Option<Validator>,
    /// If non-empty, a match counts only when one of these words appears
    /// (ASCII case-insensitively) within `context_window` bytes before it.
    #[serde(default)]
    pub context: Vec<String>,
    /// How far before the match to look for a context word, in bytes.
    /// Default [`DEFAULT_CONTEXT_WINDOW`].
    #[serde(default)]
    pub context_window: Option<usize>,
    /// Style for this detector only; defaults to the spec's style.
    #[serde(default)]
    pub style: Option<Style>,
}

/// Default look-behind window for context words, in bytes.
pub const DEFAULT_CONTEXT_WINDOW: usize = 32;

/// How a detected value is rewritten.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Keep the shape and a small, low-risk part of the value (card last four,
    /// email first letter and top-level domain, IBAN country and last four,
    /// secret type prefix). See the crate documentation for each detector.
    #[default]
    Partial,
    /// Replace every character of the match with `*` (length-preserving, in
    /// characters). Reveals the length and nothing else.
    Full,
    /// Replace the match with the placeholder text.
    Placeholder,
}

/// A checksum a custom detector's match must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// Luhn (mod 10) over the digits of the match; other characters ignored.
    Luhn,
    /// ISO 7064 MOD 97-10 as used by IBAN: alphanumerics of the match, first
    /// four moved to the end, letters as 10..35, remainder must be 1.
    Mod97,
    /// No checksum (same as leaving the field out).
    None,
}
