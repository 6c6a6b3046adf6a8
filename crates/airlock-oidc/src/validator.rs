//! [`OidcValidator`]: the one entry point that turns a bearer token into a
//! [`ValidatedToken`] or an [`OidcError`].
//!
//! Order of checks, cheapest and most hostile-input-facing first: shape and
//! size; issuer (selects the provider); algorithm against the configured
//! list; key lookup (may fetch); key/algorithm consistency; signature; then
//! claims. Nothing from the token is trusted before the signature verifies
//! except what selects the provider and key.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_types::Identity;
use serde_json::Value;

use crate::claims::check_claims;
use crate::config::{
    check_issuer_url, trim_one_slash, validate_issuers, IssuerConfig, JwsAlgorithm,
};
use crate::error::{quote_untrusted, OidcError};
use crate::fetch::HttpFetcher;
use crate::jws::{self, CompactJws};
use crate::keys::{candidate_keys, KeySelectionError, PublicKey};
use crate::provider::{IssuerState, ProviderKeys};

/// Tuning knobs that are not part of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcValidatorOptions {
    /// Least time between two key fetches triggered by unknown `kid`s (and
    /// between retries after a failed fetch), per issuer. Default 10 s.
    pub min_key_refresh_interval: Duration,
    /// Connect and total timeout of each discovery or JWKS request.
    /// Default 5 s.
    pub http_timeout: Duration,
}

impl Default for OidcValidatorOptions {
    fn default() -> Self {
        Self {
            min_key_refresh_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
        }
    }
}

/// A token that verified, and who it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    /// The identity: name from `identity_claim`, groups from `groups_claim`,
    /// kind from `agent_client_ids` / `kind_claim` / `kind`, auth method
    /// `Oidc { issuer }`, `expires_at` = `exp`.
    pub identity: Identity,
    /// The configured name of the identity provider that issued it.
    pub issuer_name: String,
    /// All claims of the token (verified), for policy and audit.
    pub claims: Value,
    /// The OAuth client it was issued to (`client_id`, else `azp`).
    pub client_id: Option<String>,
}

/// Validates OIDC JWTs against the configured issuers. `Send + Sync`: share
/// one in an `Arc`; it holds the per-issuer discovery and key caches.
pub struct OidcValidator {
    issuers: Vec<IssuerState>,
    fetcher: HttpFetcher,
}

impl fmt::Debug for OidcValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcValidator")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|state| state.config.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl OidcValidator {
    /// A validator for `issuers` with default options. Fails with every
    /// configuration problem at once. Fetches nothing.
    pub fn new(issuers: Vec<IssuerConfig>) -> Result<Self, OidcError> {
        Self::with_options(issuers, OidcValidatorOptions::default())
    }

    /// A validator with explicit options.
    pub fn with_options(
        issuers: Vec<IssuerConfig>,
        options: OidcValidatorOptions,
    ) -> Result<Self, OidcError> {
        let problems = validate_issuers(&issuers);
        if !problems.is_empty() {
            return Err(OidcError::Config(problems));
        }
        let mut states = Vec::with_capacity(issuers.len());
        for (index, config) in issuers.into_iter().enumerate() {
            let problem = |message: String| {
                OidcError::Config(vec![crate::config::ConfigProblem {
                    location: format!("identity_providers[{index}].issuer"),
                    message,
                }])
            };
            let url = check_issuer_url(&config.issuer).map_err(problem)?;
            let web_secret = crate::web_login::resolve_web_secret(&config, index, &|name| {
                std::env::var(name).ok()
            })
            .map_err(|problem| OidcError::Config(vec![problem]))?;
            let mut state = IssuerState::new(config, &url, options.min_key_refresh_interval)
                .map_err(problem)?;
            state.web_secret = web_secret;
            states.push(state);
        }
        Ok(Self {
            issuers: states,
            fetcher: HttpFetcher::new(options.http_timeout),
        })
    }

    /// Cheap check that `token` has the shape of a JWT (three base64url
    /// segments): lets the gateway tell OIDC tokens from airlock's own
    /// without decoding anything.
    pub fn looks_like_jwt(token: &str) -> bool {
        jws::looks_like_jwt(token)
    }

    /// Per issuer: its name, key fetches that succeeded and that failed.
    pub fn key_fetches(&self) -> Vec<(String, u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.issuers
            .iter()
            .map(|state| {
                let [ok, failed] = &state.fetches;
                (
                    state.config.name.clone(),
                    ok.load(Relaxed),
                    failed.load(Relaxed),
                )
            })
            .collect()
    }

    /// The configured issuers, in order.
    pub fn issuers(&self) -> impl Iterator<Item = &IssuerConfig> {
        self.issuers.iter().map(|state| &state.config)
    }

    /// Validates `token`: signature against the issuer's published keys
    /// (fetched and cached as needed), issuer, audience, lifetime; then maps
    /// its claims to an [`Identity`]. Refuses when the provider cannot be
    /// reached and no fresh keys are cached.
    pub async fn validate(&self, token: &str) -> Result<ValidatedToken, OidcError> {
        let jws = jws::parse(token)?;
        let issuer_claim = issuer_claim(&jws)?;
        let state = self
            .issuers
            .iter()
            .find(|state| state.config.issuer_key() == trim_one_slash(issuer_claim))
            .ok_or_else(|| OidcError::UnknownIssuer {
                issuer: quote_untrusted(issuer_claim),
            })?;
        self.verify_and_check(state, &state.config, &jws).await
    }

    /// [`OidcValidator::validate`] against one provider's keys, with
    /// `config` (the provider's, or a variant of it: the web UI's ID tokens
    /// have the web client as audience) deciding algorithms and claims.
    pub(crate) async fn validate_as(
        &self,
        state: &IssuerState,
        config: &IssuerConfig,
        token: &str,
    ) -> Result<ValidatedToken, OidcError> {
        let jws = jws::parse(token)?;
        let issuer_claim = issuer_claim(&jws)?;
        if state.config.issuer_key() != trim_one_slash(issuer_claim) {
            return Err(OidcError::UnknownIssuer {
                issuer: quote_untrusted(issuer_claim),
            });
        }
        self.verify_and_check(state, config, &jws).await
    }

    /// The configured issuers' states (for the web sign-in).
    pub(crate) fn issuer_states(&self) -> impl Iterator<Item = &IssuerState> {
        self.issuers.iter()
    }

    pub(crate) fn fetcher(&self) -> &HttpFetcher {
        &self.fetcher
    }

    async fn verify_and_check(
        &self,
        state: &IssuerState,
        config: &IssuerConfig,
        jws: &CompactJws<'_>,
    ) -> Result<ValidatedToken, OidcError> {
        let algorithm = allowed_algorithm(config, &jws.header.algorithm)?;
        if jws.signature.is_empty() {
            return Err(OidcError::BadSignature {
                provider: config.name.clone(),
            });
        }

        let keys = state.current_keys(&self.fetcher).await?;
        let keys = match self.verify_with(state, &keys, algorithm, jws)? {
            Verification::Verified => keys,
            Verification::KeyNotFound => {
                let Some(newer) = state.refresh_for_unknown_key(&keys, &self.fetcher).await? else {
                    return Err(unknown_key(config, jws));
                };
                match self.verify_with(state, &newer, algorithm, jws)? {
                    Verification::Verified => newer,
                    Verification::KeyNotFound => return Err(unknown_key(config, jws)),
                }
            }
        };

        let now = unix_now().ok_or_else(|| OidcError::InvalidClaims {
            provider: config.name.clone(),
            reason: "system clock is before 1970".to_owned(),
        })?;
        let checked = check_claims(config, &keys.issuer, &jws.header, &jws.claims, now)?;
        tracing::debug!(
            provider = %config.name,
            identity = %checked.identity.name,
            kind = %checked.identity.kind,
            "oidc token accepted"
        );
        Ok(ValidatedToken {
            identity: checked.identity,
            issuer_name: config.name.clone(),
            claims: Value::Object(jws.claims.clone()),
            client_id: checked.client_id,
        })
    }

    fn verify_with(
        &self,
        state: &IssuerState,
        keys: &ProviderKeys,
        algorithm: JwsAlgorithm,
        jws: &CompactJws<'_>,
    ) -> Result<Verification, OidcError> {
        let candidates: Vec<&PublicKey> =
            match candidate_keys(&keys.keys, algorithm, jws.header.key_id.as_deref()) {
                Ok(candidates) => candidates,
                Err(KeySelectionError::NotFound) => return Ok(Verification::KeyNotFound),
                Err(KeySelectionError::AlgorithmMismatch(reason)) => {
                    return Err(OidcError::DisallowedAlgorithm {
                        provider: state.config.name.clone(),
                        algorithm: quote_untrusted(&jws.header.algorithm),
                        reason,
                    })
                }
            };
        let message = jws.signing_input.as_bytes();
        if candidates
            .iter()
            .any(|key| key.verify(algorithm, message, &jws.signature))
        {
            Ok(Verification::Verified)
        } else {
            Err(OidcError::BadSignature {
                provider: state.config.name.clone(),
            })
        }
    }
}

fn issuer_claim<'t>(jws: &'t CompactJws<'_>) -> Result<&'t str, OidcError> {
    match jws.claims.get("iss") {
        Some(Value::String(issuer)) => Ok(issuer.as_str()),
        _ => Err(OidcError::malformed(
            "claim `iss` is missing or not a string",
        )),
    }
}

enum Verification {
    Verified,
    KeyNotFound,
}

/// The token's `alg`, if airlock supports it and this issuer allows it.
fn allowed_algorithm(config: &IssuerConfig, algorithm: &str) -> Result<JwsAlgorithm, OidcError> {
    let refuse = |reason: &str| OidcError::DisallowedAlgorithm {
        provider: config.name.clone(),
        algorithm: quote_untrusted(algorithm),
        reason: reason.to_owned(),
    };
    match JwsAlgorithm::parse(algorithm) {
        Some(parsed) if config.algorithms.contains(&parsed) => Ok(parsed),
        Some(_) => Err(refuse("not in this identity provider's `algorithms`")),
        None if algorithm.eq_ignore_ascii_case("none") => {
            Err(refuse("unsigned tokens are never accepted"))
        }
        None if algorithm.starts_with("HS") => Err(refuse(
            "symmetric (HMAC) algorithms are never accepted from an identity provider",
        )),
        None => Err(refuse("airlock verifies only RS256, ES256 and EdDSA")),
    }
}

fn unknown_key(config: &IssuerConfig, jws: &CompactJws<'_>) -> OidcError {
    OidcError::UnknownKey {
        provider: config.name.clone(),
        kid: jws
            .header
            .key_id
            .as_deref()
            .map_or_else(|| "(no kid)".to_owned(), quote_untrusted),
    }
}

fn unix_now() -> Option<i64> {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(elapsed.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_types::IdentityKind;

    fn corp() -> IssuerConfig {
        let mut config = IssuerConfig::new(
            "corp",
            "https://login.example.com/",
            vec!["airlock".to_owned()],
        );
        config.kind = Some(IdentityKind::Agent);
        config
    }

    #[test]
    fn validator_is_send_sync_and_reports_config_problems() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<OidcValidator>();
        assert_send_sync::<ValidatedToken>();
        assert_send_sync::<OidcError>();

        let validator = OidcValidator::new(vec![corp()]).unwrap();
        assert_eq!(
            format!("{validator:?}"),
            "OidcValidator { issuers: [\"corp\"], .. }"
        );

        let mut plain_http = corp();
        plain_http.issuer = "http://login.example.com/".to_owned();
        let error = OidcValidator::new(vec![plain_http]).unwrap_err();
        assert!(
            matches!(&error, OidcError::Config(problems) if problems.len() == 1),
            "{error}"
        );
        assert!(error.to_string().contains("must use https"), "{error}");
    }

    #[test]
    fn algorithm_gate() {
        let mut config = corp();
        config.algorithms = vec![JwsAlgorithm::ES256];
        assert_eq!(allowed_algorithm(&config, "ES256"), Ok(JwsAlgorithm::ES256));
        for (algorithm, reason) in [
            ("RS256", "not in this identity provider"),
            ("none", "unsigned"),
            ("NONE", "unsigned"),
            ("HS256", "symmetric"),
            ("PS256", "only RS256"),
            ("es256", "only RS256"),
        ] {
            match allowed_algorithm(&config, algorithm) {
                Err(OidcError::DisallowedAlgorithm { reason: actual, .. }) => {
                    assert!(actual.contains(reason), "{algorithm}: {actual}");
                }
                other => panic!("{algorithm}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn tokens_are_refused_before_any_fetch_when_issuer_or_alg_is_wrong() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let validator = OidcValidator::new(vec![corp()]).unwrap();
        let token = |header: &str, claims: &str| {
            format!(
                "{}.{}.c2ln",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            )
        };
        // login.example.com is never contacted: these fail before a fetch.
        let unknown_issuer = validator
            .validate(&token(
                r#"{"alg":"RS256"}"#,
                r#"{"iss":"https://evil.example/"}"#,
            ))
            .await;
        assert!(
            matches!(unknown_issuer, Err(OidcError::UnknownIssuer { issuer }) if issuer == "\"https://evil.example/\"")
        );
        let hs256 = validator
            .validate(&token(
                r#"{"alg":"HS256"}"#,
                r#"{"iss":"https://login.example.com"}"#,
            ))
            .await;
        assert!(
            matches!(hs256, Err(OidcError::DisallowedAlgorithm { .. })),
            "{hs256:?}"
        );
        let no_iss = validator.validate(&token(r#"{"alg":"RS256"}"#, "{}")).await;
        assert!(matches!(no_iss, Err(OidcError::Malformed { .. })));
        let garbage = validator.validate("not-a-token").await;
        assert!(matches!(garbage, Err(OidcError::Malformed { .. })));
    }
}
