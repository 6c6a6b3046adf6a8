//! OIDC token validation for airlock.
//!
//! This crate owns one question: *is this bearer token a valid JWT from one of
//! the configured identity providers, and whom does it name?* It answers with
//! a [`ValidatedToken`] carrying an [`airlock_types::Identity`], or an
//! [`OidcError`] saying why not.
//!
//! - [`IssuerConfig`] is the `identity_providers` entry of `airlock.yaml`;
//!   [`validate_issuers`] reports every problem at once.
//! - [`OidcValidator`] fetches each provider's discovery document and JWKS
//!   lazily, caches them, refreshes on schedule and on unknown `kid`s
//!   (rate-limited), and fails closed when a provider is unreachable.
//! - The web UI signs people in with the authorization code flow and PKCE
//!   ([`OidcValidator::start_web_login`], `finish_web_login`): the ID token
//!   goes through the same checks, with the web client as its audience.
//! - Signatures are verified with `ring` (RS256, ES256, EdDSA/Ed25519); the
//!   key, not the token, decides the algorithm; `none` and HMAC are refused.
//!
//! What this crate must never do: decide what an identity may do (that is the
//! policy engine's job), log or echo a token, or fetch keys from a location a
//! token names (`jku`, `x5u`).

mod claims;
mod config;
mod error;
mod fetch;
mod jws;
mod keys;
mod provider;
mod validator;
mod web_login;

pub use config::{
    default_algorithms, validate_issuers, ConfigProblem, IssuerConfig, JwsAlgorithm,
    MAX_JWKS_REFRESH_SECONDS, MAX_LEEWAY_SECONDS,
};
pub use error::OidcError;
pub use jws::MAX_TOKEN_BYTES;
pub use validator::{OidcValidator, OidcValidatorOptions, ValidatedToken};
pub use web_login::{code_challenge, WebLogin, WebLoginStart};
