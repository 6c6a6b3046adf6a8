//! airlock's web UI, for the people who supervise agents: the approvals
//! queue (live through server-sent events; held commands and access
//! requests apart), a review's detail with approve and deny, live
//! sessions with their commands so far and a kill switch, policy versions,
//! the diff of two, rollback and the explain playground, session search,
//! a session's timeline, terminal replay and JSON-lines export, access
//! grants, tokens, connections and credential metadata, and the audit
//! chain's status.
//!
//! Served by the admin listener at `/ui` ([`router`], merged beside the
//! admin API by the binary). Pages are rendered on the server by
//! [`html::Html`] (values always escaped); the only scripts are the
//! vendored htmx and its SSE extension, embedded in the binary
//! ([`assets`]), and every action is a plain form with POST and a
//! redirect, so the UI works without JavaScript; htmx only makes the
//! queue live. Every answer carries a strict Content-Security-Policy
//! ([`security`]).
//!
//! Who may do what ([`sign_ins::Roles`]): only `human` identities sign in,
//! through their identity provider ([`oidc_sign_in`]: authorization code
//! with PKCE) or with their own airlock token or an OIDC token pasted into
//! the sign-in form (agents, services and the admin token are refused). Everyone
//! signed in sees and decides the reviews of their approver groups, with
//! the very checks the API applies (`GatewayState::decide_review`: never
//! the requester, an approver group, `min_approvals`, TOTP when the rule
//! demands MFA). `ui.auditor_groups` read everything; `ui.admin_groups`
//! also end live sessions, roll policies back, revoke grants and issue and
//! revoke tokens. Every POST carries the sign-in's CSRF token.
//!
//! **Invariants:** no handler decides a review or ends a session itself:
//! it calls the core's operation as the API does; no page holds or logs a
//! token (a sign-in keeps the token's id only); no markup is built from
//! a string that was not escaped.

pub mod assets;
pub mod errors;
pub mod html;
pub mod layout;
pub mod security;
pub mod sign_ins;

mod approvals;
mod audit;
mod connections;
mod explain;
mod explain_steps;
mod grants;
mod live_sessions;
pub mod oidc_sign_in;
mod policies;
mod sign_in;
mod tokens;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

use airlock_core::GatewayState;
use airlock_store::now_unix;

use crate::errors::WebError;
use crate::sign_ins::{secrets_match, Role, SignIn, SignIns};

/// The cookie that names a sign-in.
pub const SESSION_COOKIE: &str = "airlock_ui";
/// The cookie that binds the sign-in form to the browser that loaded it.
pub const SIGN_IN_COOKIE: &str = "airlock_ui_signin";

/// What the UI's handlers share.
pub struct Web {
    pub state: Arc<GatewayState>,
    pub sign_ins: SignIns,
    /// Identity-provider sign-ins under way.
    pub pending_logins: oidc_sign_in::PendingLogins,
    /// `Secure` on the cookies: unless the admin listener is on loopback
    /// (a browser on the same machine, plain HTTP).
    pub secure_cookies: bool,
}

type WebState = Arc<Web>;

impl Web {
    /// The UI's shared state over the gateway's.
    pub fn new(state: Arc<GatewayState>) -> Self {
        let secure_cookies = !state.settings.admin_listen.ip().is_loopback();
        Self {
            state,
            sign_ins: SignIns::default(),
            pending_logins: oidc_sign_in::PendingLogins::default(),
            secure_cookies,
        }
    }

    /// A `Set-Cookie` value for the UI's paths.
    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            max_age.max(0)
        )
    }

    /// The signed-in viewer of a request: a live sign-in whose token is
    /// still valid (an airlock token revoked or expired since ends the
    /// sign-in at once).
    pub async fn viewer(self: &Arc<Self>, headers: &HeaderMap) -> Result<Arc<SignIn>, WebError> {
        let cookie = sign_ins::cookie(headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
        let sign_in = self
            .sign_ins
            .get(&cookie, now_unix())
            .ok_or(WebError::SignIn)?;
        if let Some(token_id) = sign_in.token_id.clone() {
            let state = Arc::clone(&self.state);
            let record = tokio::task::spawn_blocking(move || state.store.token(&token_id))
                .await
                .map_err(|_| WebError::Internal)?
                .map_err(|error| {
                    tracing::warn!(%error, "web UI: cannot check a sign-in's token");
                    WebError::Unavailable("the store cannot answer; try again".into())
                })?;
            let valid = record.is_some_and(|record| {
                record.revoked_at.is_none() && record.expires_at > now_unix()
            });
            if !valid {
                self.sign_ins.remove(&cookie);
                return Err(WebError::SignIn);
            }
        }
        Ok(sign_in)
    }

    /// The viewer of a POST, whose form must carry the sign-in's CSRF
    /// token. Checked before anything else is read or done.
    pub async fn poster(
        self: &Arc<Self>,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<Arc<SignIn>, WebError> {
        let viewer = self.viewer(headers).await?;
        if !secrets_match(&viewer.csrf, csrf.unwrap_or_default()) {
            tracing::warn!(identity = %viewer.identity.name, "web UI: a POST without the right CSRF token was refused");
            return Err(WebError::Csrf);
        }
        Ok(viewer)
    }

    /// [`Web::viewer`], who must hold `role`: the preamble of every page
    /// for auditors. `what` names the page in the refusal ("tokens are").
    pub async fn viewer_as(
        self: &Arc<Self>,
        headers: &HeaderMap,
        role: Role,
        what: &str,
    ) -> Result<Arc<SignIn>, WebError> {
        let viewer = self.viewer(headers).await?;
        role.check(viewer.roles, what)?;
        Ok(viewer)
    }

    /// [`Web::poster`] (the CSRF token checked first), who must hold
    /// `role`: the preamble of every admin action.
    pub async fn poster_as(
        self: &Arc<Self>,
        headers: &HeaderMap,
        csrf: Option<&str>,
        role: Role,
        what: &str,
    ) -> Result<Arc<SignIn>, WebError> {
        let viewer = self.poster(headers, csrf).await?;
        role.check(viewer.roles, what)?;
        Ok(viewer)
    }

    /// An admin's action from a form, the one shape of them all: the
    /// poster (CSRF token first) must be an admin; `operation` runs off the
    /// async workers with the admin's name, which the core records as the
    /// actor; the answer is a redirect to `done_to`. `done` is logged.
    pub async fn admin_action<T, F>(
        self: &Arc<Self>,
        headers: &HeaderMap,
        csrf: Option<&str>,
        what: &str,
        operation: F,
        done: &str,
        done_to: &str,
    ) -> Result<axum::response::Response, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&GatewayState, &str) -> Result<T, airlock_core::error::AdminError>
            + Send
            + 'static,
    {
        let viewer = self.poster_as(headers, csrf, Role::Admin, what).await?;
        let by = viewer.identity.name.clone();
        self.blocking(move |state| operation(state, &by)).await?;
        tracing::info!(identity = %viewer.identity.name, "web UI: {done}");
        Ok(sign_in::redirect(done_to, None))
    }

    /// Runs a blocking core operation off the async workers.
    pub async fn blocking<T, F>(&self, operation: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&GatewayState) -> Result<T, airlock_core::error::AdminError> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || operation(&state))
            .await
            .map_err(|_| WebError::Internal)?
            .map_err(WebError::from)
    }
}

/// The UI's routes, all under `/ui`, with the security headers on every
/// answer. Empty when `ui.enabled` is false.
pub fn router(state: Arc<GatewayState>) -> Router {
    if !state.config.ui.enabled {
        return Router::new();
    }
    let web = Arc::new(Web::new(state));
    router_with(web)
}

/// [`router`] over a given [`Web`] (tests look at its sign-ins).
pub fn router_with(web: Arc<Web>) -> Router {
    Router::new()
        .route("/ui", get(approvals::home))
        .route("/ui/", get(approvals::home))
        .route("/ui/assets/:name", get(assets::serve))
        .route("/ui/signin", get(sign_in::form).post(sign_in::submit))
        .route("/ui/signout", post(sign_in::sign_out))
        .route("/ui/signin/oidc/:provider", get(oidc_sign_in::start))
        .route(oidc_sign_in::CALLBACK_PATH, get(oidc_sign_in::callback))
        .route("/ui/approvals", get(approvals::queue_page))
        .route("/ui/approvals/stream", get(approvals::stream))
        .route("/ui/reviews/:id", get(approvals::review_page))
        .route("/ui/reviews/:id/approve", post(approvals::approve))
        .route("/ui/reviews/:id/deny", post(approvals::deny))
        .route("/ui/sessions/live", get(live_sessions::list))
        .route("/ui/sessions/live/:id/end", post(live_sessions::end))
        .route("/ui/sessions", get(audit::sessions))
        .route("/ui/sessions/:id", get(audit::session))
        .route("/ui/sessions/:id/export", get(audit::export))
        .route("/ui/audit", get(audit::chain))
        .route("/ui/access", get(grants::list))
        .route("/ui/access/:id/revoke", post(grants::revoke))
        .route("/ui/tokens", get(tokens::list).post(tokens::issue))
        .route("/ui/tokens/:id/revoke", post(tokens::revoke))
        .route("/ui/connections", get(connections::list))
        .route("/ui/policies", get(policies::list))
        .route("/ui/policies/diff", get(policies::diff))
        .route("/ui/policies/rollback", post(policies::rollback))
        .route(
            "/ui/policies/explain",
            get(explain::form).post(explain::run),
        )
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(web)
}
