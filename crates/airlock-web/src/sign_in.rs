//! Signing in by pasting a token, and signing out; [`begin_session`] is
//! where every sign-in (this form's, or the identity provider's in
//! `oidc_sign_in`) becomes a session, under one set of rules.
//!
//! The sign-in form is bound to the browser that loaded it (a random
//! value in a `SameSite=Strict` cookie and in the form, which must match),
//! so another site cannot sign a browser in as someone else. Wrong tokens
//! count against the source address with the admin API's spray guard, so
//! the form is no faster a guessing oracle than the API. The token is
//! checked like the API's bearer tokens (an airlock token, or an OIDC
//! token from a configured issuer) and then forgotten: the sign-in keeps
//! the identity and the token's id. Only `human` identities sign in; the
//! admin token, agents and services are refused.

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use airlock_core::events::{record, ApiAuthFailed, LockedOut, UiSignedIn, UiSignedOut};
use airlock_store::now_unix;
use airlock_types::{AuthMethod, Identity, IdentityKind};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::bare_page;
use crate::sign_ins::{random_token, secrets_match, Roles, SignIn};
use crate::{WebState, SESSION_COOKIE, SIGN_IN_COOKIE};

/// The spray guard's identity key: a pasted token claims no identity.
const GUARD_IDENTITY: &str = "";
/// How long a loaded sign-in form may be submitted.
const FORM_SECONDS: i64 = 900;

pub(crate) fn source(connect: Option<ConnectInfo<SocketAddr>>) -> IpAddr {
    connect.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// `GET /ui/signin`.
pub async fn form(State(web): State<WebState>, headers: HeaderMap) -> Response {
    if web.viewer(&headers).await.is_ok() {
        return redirect("/ui/approvals", None);
    }
    let nonce = random_token();
    let mut body = Html::new();
    body.raw("<p>Paste a token issued to you, a person (<code>airlock token issue --identity NAME --kind human --group GROUP</code>), or an OIDC token of a configured identity provider. Agents and services cannot sign in.</p>")
        .raw("<form method=\"post\" action=\"/ui/signin\">")
        .raw("<input type=\"hidden\" name=\"csrf\" value=\"")
        .text(&nonce)
        .raw("\"><label for=\"token\">Token</label>")
        .raw("<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>")
        .raw("<button type=\"submit\">Sign in</button></form>");
    let providers = web
        .state
        .oidc
        .as_ref()
        .map(airlock_oidc::OidcValidator::web_providers)
        .unwrap_or_default();
    if !providers.is_empty() {
        body.raw("<h2>Or sign in with your identity provider</h2><ul class=\"providers\">");
        for provider in &providers {
            body.raw("<li><a class=\"button\" href=\"/ui/signin/oidc/")
                .text(&crate::oidc_sign_in::provider_path(provider))
                .raw("\">Sign in with ")
                .text(provider)
                .raw("</a></li>");
        }
        body.raw("</ul>");
    }
    let mut response = bare_page("Sign in", &body);
    set_cookie(
        &mut response,
        &web.cookie(SIGN_IN_COOKIE, &nonce, FORM_SECONDS),
    );
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: Option<String>,
    token: Option<String>,
}

/// `POST /ui/signin`.
pub async fn submit(
    State(web): State<WebState>,
    connect: Option<ConnectInfo<SocketAddr>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let expected = crate::sign_ins::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !secrets_match(&expected, form.csrf.as_deref().unwrap_or_default()) {
        return Err(WebError::Csrf);
    }
    let source = source(connect);
    if let Err(locked) = web.state.api_guard.check(source, GUARD_IDENTITY) {
        return Err(WebError::LockedOut(locked.remaining.as_secs().max(1)));
    }
    let token = form.token.unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(WebError::BadRequest("paste a token to sign in".into()));
    }
    let Some(identity) = resolve(&web, token).await? else {
        record_failure(&web, source, "unknown_token", true).await;
        return Err(WebError::SignInRefused(
            "the token was not accepted (unknown, expired or revoked)".into(),
        ));
    };
    let cookie = begin_session(&web, source, identity, "token").await?;
    let mut response = redirect("/ui/approvals", None);
    set_cookie(&mut response, &cookie);
    set_cookie(&mut response, &web.cookie(SIGN_IN_COOKIE, "", 0));
    Ok(response)
}

/// Signs `identity` in, whichever way it proved itself (`flow`: `token`
/// for a pasted token, `oidc_code` for the identity provider's sign-in):
/// only people, roles from groups, recorded as `ui.sign_in`. Returns the
/// session cookie to set.
pub(crate) async fn begin_session(
    web: &Arc<crate::Web>,
    source: IpAddr,
    identity: Identity,
    flow: &'static str,
) -> Result<String, WebError> {
    if identity.kind != IdentityKind::Human {
        record_failure(web, source, "not_a_person", false).await;
        return Err(WebError::Forbidden(format!(
            "{} is {} {}: only people (kind human) sign in to the web UI",
            identity.name,
            if identity.kind == IdentityKind::Agent {
                "an"
            } else {
                "a"
            },
            identity.kind
        )));
    }
    let now = now_unix();
    let longest = i64::try_from(web.state.settings.ui_session_ttl.as_secs()).unwrap_or(43_200);
    let expires_at = identity.expires_at.min(now.saturating_add(longest));
    let roles = Roles::of(&identity, &web.state.config.ui);
    let token_id = match &identity.auth_method {
        AuthMethod::AirlockToken { token_id } => Some(token_id.clone()),
        AuthMethod::Oidc { .. } => None,
    };
    let method = match (&identity.auth_method, flow) {
        (AuthMethod::AirlockToken { .. }, _) => "airlock_token".to_string(),
        (AuthMethod::Oidc { issuer }, "oidc_code") => format!("oidc_code:{issuer}"),
        (AuthMethod::Oidc { issuer }, _) => format!("oidc:{issuer}"),
    };
    let signed_in = UiSignedIn {
        client_address: source.to_string(),
        groups: identity.groups.clone(),
        method,
        roles: roles.names(),
        token_id: token_id.clone(),
    };
    let name = identity.name.clone();
    web.blocking(move |state| {
        state
            .store
            .append_event(record(None, Some(&name), &signed_in))?;
        Ok(())
    })
    .await?;
    tracing::info!(identity = %identity.name, client = %source, flow, "web UI sign-in");
    let sign_in = SignIn {
        identity,
        roles,
        token_id,
        csrf: random_token(),
        expires_at,
    };
    let cookie = web.sign_ins.create(sign_in, now).ok_or_else(|| {
        WebError::Unavailable("too many people are signed in; try again later".into())
    })?;
    Ok(web.cookie(SESSION_COOKIE, &cookie, expires_at - now))
}

/// An airlock token or an OIDC token (the admin token is not a person's).
async fn resolve(web: &Arc<crate::Web>, token: String) -> Result<Option<Identity>, WebError> {
    if let (Some(validator), true) = (
        &web.state.oidc,
        airlock_oidc::OidcValidator::looks_like_jwt(&token),
    ) {
        return match validator.validate(&token).await {
            Ok(validated) => Ok(Some(validated.identity)),
            Err(error) if error.is_provider_failure() => Err(WebError::Unavailable(
                "the identity provider cannot be reached to check the token".into(),
            )),
            Err(_) => Ok(None),
        };
    }
    let admin = web
        .blocking({
            let token = token.clone();
            move |state| Ok(state.admin_token_valid(&token))
        })
        .await?;
    if admin {
        return Err(WebError::Forbidden(
            "the admin token cannot sign in: sign in with your own token (airlock token issue --kind human)".into(),
        ));
    }
    web.blocking(move |state| state.identity_for_token(&token))
        .await
}

/// Records a refused sign-in; a wrong token also counts against the
/// source (and may lock it out).
pub(crate) async fn record_failure(
    web: &Arc<crate::Web>,
    source: IpAddr,
    reason: &'static str,
    count: bool,
) {
    let mut source_failures = 0;
    let mut locked = false;
    if count {
        let outcome = web.state.api_guard.record_failure(source, GUARD_IDENTITY);
        source_failures = outcome.source_failures;
        locked = outcome.locked_now.is_some();
        web.state
            .metrics
            .auth_failed("web_ui", reason, GUARD_IDENTITY);
    }
    tracing::warn!(client = %source, reason, "web UI sign-in refused");
    let mut events = vec![record(
        None,
        None,
        &ApiAuthFailed {
            client_address: source.to_string(),
            protocol: "web_ui",
            reason,
            source_failures,
        },
    )];
    if locked {
        web.state.metrics.locked_out("web_ui", "source");
        events.push(record(
            None,
            None,
            &LockedOut {
                client_address: source.to_string(),
                lockout_seconds: web.state.api_guard.lockout().as_secs(),
                protocol: "web_ui",
                scope: "source",
            },
        ));
    }
    if let Err(error) = web.state.recorder.record(events).await {
        tracing::error!(%error, "could not record a refused web UI sign-in");
    }
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// `POST /ui/signout`.
pub async fn sign_out(
    State(web): State<WebState>,
    connect: Option<ConnectInfo<SocketAddr>>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response, WebError> {
    let viewer = web.poster(&headers, form.csrf.as_deref()).await?;
    if let Some(cookie) = crate::sign_ins::cookie(&headers, SESSION_COOKIE) {
        web.sign_ins.remove(&cookie);
    }
    let signed_out = UiSignedOut {
        client_address: source(connect).to_string(),
    };
    let name = viewer.identity.name.clone();
    web.blocking(move |state| {
        state
            .store
            .append_event(record(None, Some(&name), &signed_out))?;
        Ok(())
    })
    .await?;
    let mut response = redirect("/ui/signin", None);
    set_cookie(&mut response, &web.cookie(SESSION_COOKIE, "", 0));
    Ok(response)
}

/// A `303 See Other` (the POST/redirect/GET step).
pub fn redirect(location: &str, cookie: Option<&str>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response();
    if let Some(cookie) = cookie {
        set_cookie(&mut response, cookie);
    }
    response
}

pub(crate) fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = header::HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
