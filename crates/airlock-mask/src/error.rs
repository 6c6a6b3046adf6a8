//! The crate's one error type, [`MaskError`]: everything that can go wrong
//! while compiling a [`crate::MaskSpec`] into a [`crate::MaskPlan`].
//!
//! Masking itself never fails: once a plan is compiled, `mask_*` are total
//! functions. All validation happens here, at policy-load time.

/// Why a [`crate::MaskSpec`] could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaskError {
    /// A detector name in `detectors` is neither built in nor a custom detector.
    #[error("unknown detector {name:?}; known detectors: {known}")]
    UnknownDetector {
        /// The name as written in the policy.
        name: String,
        /// Comma-separated list of the names that would have been accepted.
        known: String,
    },
    /// A custom detector's regex does not compile.
    #[error("custom detector {name:?}: invalid regex: {source}")]
    InvalidRegex {
        /// The custom detector's name.
        name: String,
        /// The regex compiler's explanation.
        #[source]
        source: regex::Error,
    },
    /// A custom detector's regex matches the empty string, which would mask nothing
    /// useful and makes the scan loop degenerate.
    #[error("custom detector {name:?}: regex matches the empty string")]
    EmptyMatchRegex {
        /// The custom detector's name.
        name: String,
    },
    /// A custom detector has an empty or duplicate name, or reuses a built-in name.
    #[error("custom detector name {name:?} is empty, duplicated or shadows a built-in detector")]
    InvalidCustomName {
        /// The offending name.
        name: String,
    },
    /// A column glob does not parse.
    #[error("invalid column pattern {pattern:?}: {source}")]
    InvalidColumnPattern {
        /// The glob as written in the policy.
        pattern: String,
        /// The glob parser's explanation.
        #[source]
        source: globset::Error,
    },
    /// A built-in pattern failed to compile. This is a bug in this crate; it is
    /// reported rather than panicking so the gateway fails closed at load time.
    #[error("built-in detector {detector:?} failed to compile: {reason}")]
    Builtin {
        /// Built-in detector whose pattern failed.
        detector: &'static str,
        /// Compiler explanation.
        reason: String,
    },
}
