//! Signing in with an identity provider: the authorization code flow with
//! PKCE (S256) against the `identity_providers` that have a
//! `web_client_id`.
//!
//! `GET /ui/signin/oidc/{provider}` makes a sign-in under way (random
//! `state`, `nonce` and code verifier, kept here, in memory, by the
//! SHA-256 of the state) and binds it to the browser with a random value in
//! a cookie (`SameSite=Lax`, the one cookie the provider's redirect back
//! must carry); the browser goes to the provider. `GET /ui/oidc/callback`
//! takes the sign-in by its state (once: a state is never accepted twice),
//! checks the binding cookie (so nobody can make a browser finish a
//! sign-in they started: login CSRF), redeems the code with the verifier
//! and checks the ID token as the gateway checks every OIDC token
//! (`airlock_oidc`: signature, issuer, the web client as audience, expiry)
//! plus its nonce. Then the same rules as the token form: only `human`
//! identities, roles from groups. Codes, tokens, verifiers and the client
//! secret are never logged nor shown.

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use airlock_oidc::WebLogin;
use airlock_store::now_unix;

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::bare_page;
use crate::sign_in::{redirect, set_cookie, source};
use crate::sign_ins::{random_token, secrets_match};
use crate::WebState;

/// The cookie that binds a sign-in under way to the browser that began it.
pub const OIDC_COOKIE: &str = "airlock_ui_oidc";
/// The path of the redirect URI, under the UI's origin.
pub const CALLBACK_PATH: &str = "/ui/oidc/callback";
/// How long a sign-in may stay at the provider.
const PENDING_SECONDS: i64 = 600;
/// At most this many sign-ins under way at once (older than
/// [`PENDING_SECONDS`] are dropped first); more are refused.
const MAX_PENDING: usize = 10_000;

struct Pending {
    login: WebLogin,
    /// The binding cookie's value.
    binding: String,
    expires_at: i64,
}

/// The sign-ins under way, by the SHA-256 of their state.
#[derive(Default)]
pub struct PendingLogins {
    entries: Mutex<HashMap<[u8; 32], Pending>>,
}

fn key(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

impl PendingLogins {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, login: WebLogin, binding: String, now: i64) -> bool {
        let mut entries = self.entries();
        entries.retain(|_, pending| pending.expires_at > now);
        if entries.len() >= MAX_PENDING {
            return false;
        }
        entries.insert(
            key(&login.state),
            Pending {
                login,
                binding,
                expires_at: now + PENDING_SECONDS,
            },
        );
        true
    }

    /// Takes the sign-in of `state` (it cannot be used again).
    fn take(&self, state: &str, now: i64) -> Option<Pending> {
        self.entries()
            .remove(&key(state))
            .filter(|pending| pending.expires_at > now)
    }

    /// Sign-ins under way (for tests).
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when none is under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The path segment of a provider name (its bytes percent-encoded except
/// unreserved characters), for the sign-in buttons' links.
pub fn provider_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The redirect URI of this UI, or why there is none.
fn redirect_uri(web: &WebState) -> Result<String, WebError> {
    web.state
        .config
        .ui
        .origin(web.state.settings.admin_listen)
        .map(|origin| format!("{origin}{CALLBACK_PATH}"))
        .ok_or_else(|| {
            WebError::Unavailable(
                "set ui.public_url: the admin listener binds every address, so the UI cannot name its own origin for the identity provider".into(),
            )
        })
}

fn binding_cookie(web: &WebState, value: &str, max_age: i64) -> String {
    let secure = if web.secure_cookies { "; Secure" } else { "" };
    // Lax, not Strict: the provider sends the browser back with a
    // cross-site top-level GET, which must carry this cookie.
    format!(
        "{OIDC_COOKIE}={value}; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.max(0)
    )
}

/// `GET /ui/signin/oidc/{provider}`: off to the identity provider.
pub async fn start(
    State(web): State<WebState>,
    Path(provider): Path<String>,
) -> Result<Response, WebError> {
    let validator = web
        .state
        .oidc
        .as_ref()
        .filter(|validator| validator.web_providers().contains(&provider))
        .ok_or_else(|| {
            WebError::NotFound("no identity provider of that name signs in to the web UI".into())
        })?;
    let redirect_uri = redirect_uri(&web)?;
    let started = validator
        .start_web_login(&provider, &redirect_uri)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "web UI: cannot begin an OIDC sign-in");
            WebError::Unavailable(format!(
                "the identity provider {provider} cannot be reached; try again, or paste a token"
            ))
        })?;
    let binding = random_token();
    if !web
        .pending_logins
        .insert(started.login, binding.clone(), now_unix())
    {
        return Err(WebError::Unavailable(
            "too many sign-ins are under way; try again later".into(),
        ));
    }
    let mut response = redirect(&started.authorization_url, None);
    set_cookie(
        &mut response,
        &binding_cookie(&web, &binding, PENDING_SECONDS),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /ui/oidc/callback?code=…&state=…`: back from the provider.
pub async fn callback(
    State(web): State<WebState>,
    connect: Option<ConnectInfo<SocketAddr>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, WebError> {
    let source = source(connect);
    let refused = |message: &str| WebError::SignInRefused(message.to_string());
    let state = query.state.unwrap_or_default();
    let pending = web
        .pending_logins
        .take(&state, now_unix())
        .ok_or_else(|| refused("this sign-in is unknown, used or expired: sign in again"))?;
    let binding = crate::sign_ins::cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    if !secrets_match(&pending.binding, &binding) {
        tracing::warn!(client = %source, "web UI: an OIDC callback without its browser's binding cookie was refused");
        return Err(refused(
            "this sign-in was begun in another browser: sign in again",
        ));
    }
    if let Some(error) = query.error {
        // The provider's code word only (it said no, or the person did).
        let word: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return Err(refused(&format!(
            "the identity provider did not sign you in ({word})"
        )));
    }
    let code = query
        .code
        .filter(|code| !code.is_empty() && code.len() <= 4096)
        .ok_or_else(|| refused("the identity provider sent no code"))?;
    let validator = web.state.oidc.as_ref().ok_or(WebError::Internal)?;
    let validated = match validator.finish_web_login(&pending.login, &code).await {
        Ok(validated) => validated,
        Err(error) if error.is_provider_failure() => {
            tracing::warn!(%error, "web UI: the identity provider failed an OIDC sign-in");
            return Err(WebError::Unavailable(
                "the identity provider cannot be reached to finish the sign-in".into(),
            ));
        }
        Err(error) => {
            tracing::warn!(%error, client = %source, "web UI: an OIDC sign-in was refused");
            crate::sign_in::record_failure(&web, source, "oidc_refused", false).await;
            return Err(refused(&format!(
                "the identity provider's answer was refused: {error}"
            )));
        }
    };
    let cookie =
        crate::sign_in::begin_session(&web, source, validated.identity, "oidc_code").await?;
    // The provider's redirect made this a cross-site navigation, on which
    // the browser would not send the new SameSite=Strict cookie; a page of
    // our own that moves on is a same-site navigation (no script needed).
    let mut body = Html::new();
    body.raw("<meta http-equiv=\"refresh\" content=\"0;url=/ui/approvals\">")
        .raw("<p>You are signed in. <a href=\"/ui/approvals\">Continue to the approvals</a></p>");
    let mut response = bare_page("Signed in", &body);
    set_cookie(&mut response, &cookie);
    set_cookie(&mut response, &binding_cookie(&web, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_path_safe() {
        assert_eq!(provider_path("corp"), "corp");
        assert_eq!(provider_path("a b/../c"), "a%20b%2F..%2Fc");
    }

    #[test]
    fn a_state_is_taken_once_and_expires() {
        let pending = PendingLogins::default();
        let login = |state: &str| WebLogin {
            provider: "corp".into(),
            state: state.into(),
            nonce: airlock_types::Secret::new("n".into()),
            code_verifier: airlock_types::Secret::new("v".into()),
            redirect_uri: "http://127.0.0.1/ui/oidc/callback".into(),
        };
        assert!(pending.insert(login("s1"), "b".into(), 100));
        assert!(pending.take("s2", 101).is_none());
        assert!(pending.take("s1", 101).is_some());
        assert!(pending.take("s1", 101).is_none(), "a state is used once");
        assert!(pending.insert(login("s3"), "b".into(), 100));
        assert!(pending.take("s3", 100 + PENDING_SECONDS).is_none());
    }
}
