//! [`OidcError`]: why a token was refused, or why the validator could not be
//! built.
//!
//! Messages are safe to show to the client and to log: they never contain the
//! token, its signature or its payload. Values copied from an unverified token
//! (an `iss`, a `kid`) are truncated and quoted with escapes, so a hostile
//! token cannot inject text into logs.

use std::fmt;

use crate::config::ConfigProblem;

/// Why a token was refused, or why the validator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The identity provider configuration is unusable.
    #[error("invalid identity provider configuration: {}", ConfigProblems(.0))]
    Config(Vec<ConfigProblem>),
    /// Not a well-formed JWS compact token, or its header or claims have the
    /// wrong shape.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The token's `iss` is not a configured identity provider (or does not
    /// exactly match the issuer the provider's discovery document names).
    #[error("token issuer {issuer} is not a configured identity provider")]
    UnknownIssuer {
        /// The token's `iss`, quoted and truncated.
        issuer: String,
    },
    /// The token's `alg` is not accepted from this provider, or does not
    /// match the key it names (algorithm confusion).
    #[error("token algorithm {algorithm} refused for identity provider {provider:?}: {reason}")]
    DisallowedAlgorithm {
        /// The identity provider's configured name.
        provider: String,
        /// The token's `alg`, quoted and truncated.
        algorithm: String,
        /// Why.
        reason: String,
    },
    /// The provider does not publish the key the token names, even after the
    /// key set was refreshed (or a refresh was rate-limited).
    #[error("token signing key {kid} is not published by identity provider {provider:?}")]
    UnknownKey {
        /// The identity provider's configured name.
        provider: String,
        /// The token's `kid`, quoted and truncated, or `(none)`.
        kid: String,
    },
    /// The signature does not verify with the provider's key.
    #[error("token signature is not valid for identity provider {provider:?}")]
    BadSignature {
        /// The identity provider's configured name.
        provider: String,
    },
    /// `exp` has passed (beyond the leeway).
    #[error("token from identity provider {provider:?} expired at {expired_at} (now {now})")]
    Expired {
        /// The identity provider's configured name.
        provider: String,
        /// The token's `exp`, Unix seconds.
        expired_at: i64,
        /// The validator's clock, Unix seconds.
        now: i64,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token from identity provider {provider:?} is not valid yet: {reason}")]
    NotYetValid {
        /// The identity provider's configured name.
        provider: String,
        /// Which claim, and when.
        reason: String,
    },
    /// No `aud` value is an accepted audience.
    #[error("token audience is not accepted by identity provider {provider:?}")]
    WrongAudience {
        /// The identity provider's configured name.
        provider: String,
    },
    /// The token verified but its claims do not describe a usable identity
    /// (no identity claim, unknown kind, wrong token type…).
    #[error("token from identity provider {provider:?} refused: {reason}")]
    InvalidClaims {
        /// The identity provider's configured name.
        provider: String,
        /// Why.
        reason: String,
    },
    /// The web UI's sign-in (authorization code with PKCE) could not be
    /// completed: no such provider for the web UI, the provider's token
    /// endpoint refused the code, no ID token, a nonce that differs.
    #[error("web sign-in with identity provider {provider:?} failed: {reason}")]
    WebLogin {
        /// The identity provider's configured name.
        provider: String,
        /// Why (never a code, token or secret).
        reason: String,
    },
    /// The discovery document or key set could not be fetched or was
    /// unusable. Tokens are refused: airlock fails closed.
    #[error("cannot get signing keys of identity provider {provider:?}: {reason}")]
    FetchFailed {
        /// The identity provider's configured name.
        provider: String,
        /// Why, including the URL (never a token).
        reason: String,
    },
}

impl OidcError {
    /// True when the refusal is airlock's or the provider's fault rather than
    /// the token's (provider unreachable, bad discovery document): worth an
    /// operator's attention and a "try again later" rather than "bad token".
    pub fn is_provider_failure(&self) -> bool {
        matches!(self, Self::FetchFailed { .. } | Self::Config(_))
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}

/// Longest piece of untrusted token text quoted in an error.
const MAX_QUOTED_CHARS: usize = 64;

/// Quotes untrusted text for an error message: escaped, at most
/// [`MAX_QUOTED_CHARS`] characters, with `…` when cut.
pub(crate) fn quote_untrusted(text: &str) -> String {
    let mut cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

struct ConfigProblems<'a>(&'a [ConfigProblem]);

impl fmt::Display for ConfigProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped_and_truncated() {
        assert_eq!(quote_untrusted("corp"), "\"corp\"");
        assert_eq!(quote_untrusted("a\nb\u{1b}[31m"), "\"a\\nb\\u{1b}[31m\"");
        let long = "x".repeat(500);
        let quoted = quote_untrusted(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 3);
        assert!(quoted.ends_with("…\""));
    }

    #[test]
    fn config_errors_list_every_problem() {
        let error = OidcError::Config(vec![
            ConfigProblem {
                location: "identity_providers[0].issuer".to_owned(),
                message: "must use https".to_owned(),
            },
            ConfigProblem {
                location: "identity_providers[0].audiences".to_owned(),
                message: "must list at least one audience".to_owned(),
            },
        ]);
        assert_eq!(
            error.to_string(),
            "invalid identity provider configuration: identity_providers[0].issuer: must use https; \
             identity_providers[0].audiences: must list at least one audience"
        );
        assert!(error.is_provider_failure());
    }
}
