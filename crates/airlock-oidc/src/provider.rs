//! Per-issuer state: the discovery document and signing keys, fetched lazily
//! and cached, and the rules for refreshing them.
//!
//! Refresh rules (all per issuer):
//! - Lazy: nothing is fetched until the first token from the issuer arrives.
//! - Scheduled: keys older than `jwks_refresh_seconds` are not used; they are
//!   fetched again first. A key removed at the provider is therefore refused
//!   within that period.
//! - On an unknown `kid`: fetched again at once, but at most once per
//!   `min_key_refresh_interval`, so a flood of tokens naming random keys
//!   cannot turn airlock into a load generator against the provider.
//! - Fail closed: when keys are due and cannot be fetched, tokens are
//!   refused. Failures are remembered for `min_key_refresh_interval` so that,
//!   while the provider is down, refusals are immediate instead of each
//!   waiting for a timeout.
//!
//! Fetches are serialized by an async mutex; readers of fresh keys never
//! wait for it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use crate::config::{check_fetch_url, trim_one_slash, IssuerConfig};
use crate::error::OidcError;
use crate::fetch::HttpFetcher;
use crate::keys::{parse_jwks, PublicKey};

/// What one successful fetch learned about a provider.
#[derive(Debug)]
pub(crate) struct ProviderKeys {
    /// The issuer exactly as the discovery document states it; token `iss`
    /// must equal it.
    pub issuer: String,
    /// Usable signing keys from the JWKS.
    pub keys: Vec<PublicKey>,
    /// When they were fetched.
    pub fetched_at: Instant,
    /// The discovery document's `authorization_endpoint` and
    /// `token_endpoint` (checked like `jwks_uri`: https, or http on
    /// loopback), for the web UI's sign-in; `None` when absent or unusable.
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_failure: Option<String>,
}

/// One configured issuer and its caches.
pub(crate) struct IssuerState {
    pub config: IssuerConfig,
    discovery_url: Url,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    cache: RwLock<Option<Arc<ProviderKeys>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Key fetches that succeeded and that failed (for the metrics).
    pub fetches: [std::sync::atomic::AtomicU64; 2],
    /// The web client's secret (`web_client_secret_env` / `_file`), read
    /// once when the validator is built.
    pub web_secret: Option<airlock_types::Secret<String>>,
}

impl IssuerState {
    /// State for a validated issuer configuration.
    pub fn new(
        config: IssuerConfig,
        issuer_url: &Url,
        min_refresh_interval: Duration,
    ) -> Result<Self, String> {
        let discovery_url = discovery_url(issuer_url)?;
        Ok(Self {
            refresh_interval: Duration::from_secs(config.jwks_refresh_seconds),
            config,
            discovery_url,
            min_refresh_interval,
            cache: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            fetches: Default::default(),
            web_secret: None,
        })
    }

    fn cached(&self) -> Option<Arc<ProviderKeys>> {
        // A poisoned lock only means a writer panicked between two plain
        // assignments; the value is still a valid Option.
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn is_fresh(&self, keys: &ProviderKeys) -> bool {
        keys.fetched_at.elapsed() < self.refresh_interval
    }

    /// Keys that are not older than `jwks_refresh_seconds`, fetching them
    /// when needed.
    pub async fn current_keys(
        &self,
        fetcher: &HttpFetcher,
    ) -> Result<Arc<ProviderKeys>, OidcError> {
        if let Some(keys) = self.cached().filter(|keys| self.is_fresh(keys)) {
            return Ok(keys);
        }
        let mut state = self.refresh.lock().await;
        // Another task may have fetched while this one waited for the lock.
        if let Some(keys) = self.cached().filter(|keys| self.is_fresh(keys)) {
            return Ok(keys);
        }
        if let (Some(at), Some(reason)) = (state.last_attempt, state.last_failure.as_ref()) {
            if at.elapsed() < self.min_refresh_interval {
                return Err(self.fetch_failed(format!("{reason} (not retried yet)")));
            }
        }
        self.fetch_locked(&mut state, fetcher).await
    }

    /// Called when a token names a key that `seen` does not have. Returns
    /// newer keys, or `None` when a fetch happened too recently to try again.
    pub async fn refresh_for_unknown_key(
        &self,
        seen: &ProviderKeys,
        fetcher: &HttpFetcher,
    ) -> Result<Option<Arc<ProviderKeys>>, OidcError> {
        let mut state = self.refresh.lock().await;
        if let Some(keys) = self.cached() {
            if keys.fetched_at > seen.fetched_at {
                return Ok(Some(keys));
            }
        }
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.min_refresh_interval)
        {
            tracing::debug!(
                provider = %self.config.name,
                "unknown signing key; key refresh rate-limited"
            );
            return Ok(None);
        }
        tracing::info!(provider = %self.config.name, "unknown signing key; refreshing keys");
        self.fetch_locked(&mut state, fetcher).await.map(Some)
    }

    async fn fetch_locked(
        &self,
        state: &mut RefreshState,
        fetcher: &HttpFetcher,
    ) -> Result<Arc<ProviderKeys>, OidcError> {
        state.last_attempt = Some(Instant::now());
        let fetched = self.fetch(fetcher).await;
        if let Some(count) = self.fetches.get(usize::from(fetched.is_err())) {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match fetched {
            Ok(keys) => {
                state.last_failure = None;
                let keys = Arc::new(keys);
                *self
                    .cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&keys));
                Ok(keys)
            }
            Err(reason) => {
                tracing::warn!(provider = %self.config.name, %reason, "fetching signing keys failed");
                state.last_failure = Some(reason.clone());
                Err(self.fetch_failed(reason))
            }
        }
    }

    async fn fetch(&self, fetcher: &HttpFetcher) -> Result<ProviderKeys, String> {
        let discovery = fetcher.get_json(self.discovery_url.clone()).await?;
        let issuer = discovery
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or("discovery document has no `issuer`")?;
        // OIDC Discovery §4.3 wants an exact match; airlock forgives one
        // trailing slash in its own configuration, then holds tokens to the
        // provider's exact form.
        if trim_one_slash(issuer) != self.config.issuer_key() {
            return Err(format!(
                "discovery document names issuer {issuer:?}, configured is {:?}",
                self.config.issuer
            ));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("discovery document has no `jwks_uri`")?;
        let jwks_url =
            Url::parse(jwks_uri).map_err(|error| format!("`jwks_uri` {jwks_uri:?}: {error}"))?;
        check_fetch_url(&jwks_url).map_err(|message| format!("`jwks_uri` {message}"))?;

        let jwks = fetcher.get_json(jwks_url).await?;
        let (keys, skipped) = parse_jwks(&jwks)?;
        for reason in &skipped {
            tracing::debug!(provider = %self.config.name, %reason, "JWKS key skipped");
        }
        tracing::info!(
            provider = %self.config.name,
            keys = keys.len(),
            skipped = skipped.len(),
            "fetched signing keys"
        );
        Ok(ProviderKeys {
            issuer: issuer.to_owned(),
            keys,
            fetched_at: Instant::now(),
            authorization_endpoint: endpoint(&discovery, "authorization_endpoint"),
            token_endpoint: endpoint(&discovery, "token_endpoint"),
        })
    }

    fn fetch_failed(&self, reason: String) -> OidcError {
        OidcError::FetchFailed {
            provider: self.config.name.clone(),
            reason,
        }
    }
}

/// An endpoint of the discovery document that airlock may send a browser
/// or a request to: `https`, or `http` on loopback.
fn endpoint(discovery: &Value, name: &str) -> Option<Url> {
    let url = Url::parse(discovery.get(name)?.as_str()?).ok()?;
    check_fetch_url(&url).ok()?;
    Some(url)
}

/// `<issuer without trailing slash>/.well-known/openid-configuration`
/// (OIDC Discovery §4.1).
fn discovery_url(issuer: &Url) -> Result<Url, String> {
    let text = format!(
        "{}/.well-known/openid-configuration",
        trim_one_slash(issuer.as_str())
    );
    Url::parse(&text).map_err(|error| format!("discovery URL {text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_is_trailing_slash_aware() {
        let table = [
            (
                "https://login.example.com/",
                "https://login.example.com/.well-known/openid-configuration",
            ),
            (
                "https://login.example.com",
                "https://login.example.com/.well-known/openid-configuration",
            ),
            (
                "https://login.example.com/realms/corp/",
                "https://login.example.com/realms/corp/.well-known/openid-configuration",
            ),
            (
                "http://127.0.0.1:9000/tenant",
                "http://127.0.0.1:9000/tenant/.well-known/openid-configuration",
            ),
        ];
        for (issuer, expected) in table {
            let url = Url::parse(issuer).unwrap();
            assert_eq!(discovery_url(&url).unwrap().as_str(), expected, "{issuer}");
        }
    }
}
