//! The web UI's sign-in with an identity provider: the OAuth 2.0
//! authorization code flow with PKCE (RFC 7636, method `S256` only) and an
//! OpenID Connect ID token, checked exactly as every other OIDC token
//! (signature against the provider's published keys, issuer, expiry) with
//! the web client as its audience, plus the `nonce` of this sign-in.
//!
//! [`OidcValidator::start_web_login`] makes the random `state`, `nonce` and
//! code verifier and the provider's authorization URL; the caller keeps the
//! [`WebLogin`] (server-side, bound to the browser) until the provider
//! sends the browser back with a code, then calls
//! [`OidcValidator::finish_web_login`], which redeems the code at the token
//! endpoint (with the verifier, and the client secret when one is
//! configured) and validates the ID token. The access token the provider
//! also returns is dropped unread.
//!
//! What this module must never do: log or put into an error a code, a
//! token, a verifier or the client secret; accept an ID token whose nonce
//! differs; follow an endpoint that is neither https nor loopback http.

use std::path::Path;

use airlock_types::Secret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::Value;

use crate::config::{ConfigProblem, IssuerConfig};
use crate::error::OidcError;
use crate::validator::{OidcValidator, ValidatedToken};

/// One sign-in under way: what the callback needs. Keep it on the server;
/// only `state` goes to the browser (and the provider).
#[derive(Debug, Clone)]
pub struct WebLogin {
    /// The configured name of the provider.
    pub provider: String,
    /// The `state` parameter (random, 256 bits).
    pub state: String,
    /// The `nonce` the ID token must carry (random, 256 bits).
    pub nonce: Secret<String>,
    /// The PKCE code verifier (random, 256 bits, base64url: 43 characters).
    pub code_verifier: Secret<String>,
    /// The redirect URI sent, sent again when redeeming the code.
    pub redirect_uri: String,
}

/// Where to send the browser, and what to keep until it comes back.
#[derive(Debug, Clone)]
pub struct WebLoginStart {
    pub authorization_url: String,
    pub login: WebLogin,
}

/// 32 random bytes, base64url without padding.
fn random_value() -> Result<String, OidcError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| OidcError::WebLogin {
            provider: String::new(),
            reason: "the system random source failed".to_owned(),
        })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The `S256` code challenge of a verifier: base64url(SHA-256(verifier)).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Reads the web client's secret named by `web_client_secret_env` or
/// `web_client_secret_file` (`None` for a public client). `index` locates
/// problems (`identity_providers[index].…`).
pub(crate) fn resolve_web_secret(
    config: &IssuerConfig,
    index: usize,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret<String>>, ConfigProblem> {
    let problem = |field: &str, message: String| ConfigProblem {
        location: format!("identity_providers[{index}].{field}"),
        message,
    };
    let text = match (
        &config.web_client_secret_env,
        &config.web_client_secret_file,
    ) {
        (Some(variable), _) => environment(variable).ok_or_else(|| {
            problem(
                "web_client_secret_env",
                format!("the environment variable {variable} is not set"),
            )
        })?,
        (None, Some(path)) => read_secret_file(path).map_err(|error| {
            problem(
                "web_client_secret_file",
                format!("cannot read {}: {error}", path.display()),
            )
        })?,
        (None, None) => return Ok(None),
    };
    let text = text.trim_end().to_owned();
    if text.is_empty() {
        return Err(problem(
            "web_client_secret_env",
            "the web client secret is empty".to_owned(),
        ));
    }
    Ok(Some(Secret::new(text)))
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749
/// appendix B), for HTTP Basic client authentication.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl OidcValidator {
    /// The names of the providers the web UI can sign people in with (those
    /// with a `web_client_id`), in configuration order.
    pub fn web_providers(&self) -> Vec<String> {
        self.issuer_states()
            .filter(|state| state.config.web_client_id.is_some())
            .map(|state| state.config.name.clone())
            .collect()
    }

    /// Begins a sign-in with `provider`: fetches its discovery document
    /// (cached with its keys) and returns the authorization URL to send the
    /// browser to, with `response_type=code`, the client id, `redirect_uri`,
    /// the scopes, `state`, `nonce` and the S256 code challenge.
    pub async fn start_web_login(
        &self,
        provider: &str,
        redirect_uri: &str,
    ) -> Result<WebLoginStart, OidcError> {
        let state = self.web_state(provider)?;
        let client_id = state.config.web_client_id.clone().unwrap_or_default();
        let keys = state.current_keys(self.fetcher()).await?;
        let mut url = keys
            .authorization_endpoint
            .clone()
            .ok_or_else(|| OidcError::WebLogin {
                provider: provider.to_owned(),
                reason: "its discovery document names no usable authorization_endpoint".to_owned(),
            })?;
        let login = WebLogin {
            provider: provider.to_owned(),
            state: random_value()?,
            nonce: Secret::new(random_value()?),
            code_verifier: Secret::new(random_value()?),
            redirect_uri: redirect_uri.to_owned(),
        };
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(
            state
                .config
                .web_scopes
                .iter()
                .filter(|scope| scope.as_str() != "openid")
                .cloned(),
        );
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &login.state)
            .append_pair("nonce", login.nonce.expose())
            .append_pair(
                "code_challenge",
                &code_challenge(login.code_verifier.expose()),
            )
            .append_pair("code_challenge_method", "S256");
        Ok(WebLoginStart {
            authorization_url: url.to_string(),
            login,
        })
    }

    /// Completes a sign-in: redeems `code` at the provider's token endpoint
    /// with the code verifier (and the client secret, HTTP Basic, when
    /// configured), then validates the ID token it returns as
    /// [`OidcValidator::validate_id_token`] does with the login's nonce.
    pub async fn finish_web_login(
        &self,
        login: &WebLogin,
        code: &str,
    ) -> Result<ValidatedToken, OidcError> {
        let provider = login.provider.as_str();
        let state = self.web_state(provider)?;
        let client_id = state.config.web_client_id.clone().unwrap_or_default();
        let failed = |reason: String| OidcError::WebLogin {
            provider: provider.to_owned(),
            reason,
        };
        let keys = state.current_keys(self.fetcher()).await?;
        let token_endpoint = keys.token_endpoint.clone().ok_or_else(|| {
            failed("its discovery document names no usable token_endpoint".into())
        })?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", login.redirect_uri.clone()),
            ("code_verifier", login.code_verifier.expose().clone()),
        ];
        let basic = match state.web_secret.as_ref() {
            Some(secret) => Some(format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{}:{}",
                    form_encode(&client_id),
                    form_encode(secret.expose())
                ))
            )),
            None => {
                form.push(("client_id", client_id.clone()));
                None
            }
        };
        let answer = self
            .fetcher()
            .post_form(token_endpoint, basic, form)
            .await
            .map_err(|reason| failed(format!("the token endpoint refused the code: {reason}")))?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("the token endpoint returned no id_token".into()))?;
        self.validate_id_token(provider, id_token, login.nonce.expose())
            .await
    }

    /// Validates an ID token of `provider` for the web UI: the very checks
    /// of [`OidcValidator::validate`] (signature with the provider's
    /// published keys, issuer, `exp`/`nbf`/`iat`, identity mapping) with
    /// the audience being the provider's `web_client_id` and the ID-token
    /// rules (`azp`, no `at+jwt`), then its `nonce` must equal `nonce`.
    pub async fn validate_id_token(
        &self,
        provider: &str,
        token: &str,
        nonce: &str,
    ) -> Result<ValidatedToken, OidcError> {
        let state = self.web_state(provider)?;
        let mut config = state.config.clone();
        config.audiences = vec![config.web_client_id.clone().unwrap_or_default()];
        config.use_id_token = true;
        let validated = self.validate_as(state, &config, token).await?;
        // The nonce travelled in the authorization URL: no secret, so a
        // plain comparison.
        let presented = validated.claims.get("nonce").and_then(Value::as_str);
        if presented != Some(nonce) {
            return Err(OidcError::WebLogin {
                provider: provider.to_owned(),
                reason: "the ID token's nonce is not this sign-in's".to_owned(),
            });
        }
        Ok(validated)
    }

    fn web_state(&self, provider: &str) -> Result<&crate::provider::IssuerState, OidcError> {
        self.issuer_states()
            .find(|state| state.config.name == provider && state.config.web_client_id.is_some())
            .ok_or_else(|| OidcError::WebLogin {
                provider: crate::error::quote_untrusted(provider),
                reason: "no identity provider of that name has a web_client_id".to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = random_value().unwrap();
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, random_value().unwrap());
    }

    #[test]
    fn web_secrets_come_from_the_environment_or_a_file() {
        let mut config = IssuerConfig::new("corp", "https://login.example.com", vec!["a".into()]);
        config.web_client_id = Some("airlock-web".into());
        assert!(resolve_web_secret(&config, 0, &|_| None).unwrap().is_none());
        config.web_client_secret_env = Some("WEB_SECRET".into());
        let secret = resolve_web_secret(&config, 0, &|name| {
            (name == "WEB_SECRET").then(|| "s3cret\n".to_owned())
        })
        .unwrap()
        .unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(format!("{secret:?}"), "<secret>");
        let missing = resolve_web_secret(&config, 2, &|_| None).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "identity_providers[2].web_client_secret_env: the environment variable WEB_SECRET is not set"
        );
        let dir = std::env::temp_dir().join(format!("airlock-oidc-secret-{}", std::process::id()));
        std::fs::write(&dir, "from-file\n").unwrap();
        config.web_client_secret_env = None;
        config.web_client_secret_file = Some(dir.clone());
        let secret = resolve_web_secret(&config, 0, &|_| None).unwrap().unwrap();
        assert_eq!(secret.expose(), "from-file");
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn a_validator_is_not_built_without_its_web_secret() {
        let mut config = IssuerConfig::new("corp", "https://login.example.com", vec!["a".into()]);
        config.kind = Some(airlock_types::IdentityKind::Human);
        config.web_client_id = Some("airlock-web".into());
        config.web_client_secret_env = Some("AIRLOCK_OIDC_TEST_NEVER_SET_9F".into());
        let error = OidcValidator::new(vec![config.clone()]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("identity_providers[0].web_client_secret_env: the environment variable AIRLOCK_OIDC_TEST_NEVER_SET_9F is not set"),
            "{error}"
        );
        config.web_client_secret_env = None;
        let validator = OidcValidator::new(vec![config]).unwrap();
        assert_eq!(validator.web_providers(), vec!["corp".to_string()]);
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
