//! The one place a failure becomes what the browser shows: a status and a
//! small HTML page (or, without a sign-in, the way to the sign-in page).
//! Messages are the core's own (they name no secret); a store failure is
//! shown without its details.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use airlock_core::error::AdminError;

use crate::html::Html;

/// Why a request of the UI failed.
#[derive(Debug)]
pub enum WebError {
    /// No (live) sign-in: go to the sign-in page.
    SignIn,
    /// A POST without the sign-in's CSRF token, or with another.
    Csrf,
    /// Signed in, but this is not for you.
    Forbidden(String),
    /// Nothing to show (or nothing you may see).
    NotFound(String),
    /// The form is incomplete or wrong.
    BadRequest(String),
    /// The token was not accepted at sign-in.
    SignInRefused(String),
    /// Too many wrong tokens from this address.
    LockedOut(u64),
    /// The store or the identity provider cannot answer.
    Unavailable(String),
    /// A bug or a lost worker.
    Internal,
}

impl From<AdminError> for WebError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid(message) | AdminError::Conflict(message) => {
                Self::BadRequest(message)
            }
            AdminError::NotFound(message) => Self::NotFound(message),
            AdminError::Forbidden(message) => Self::Forbidden(message),
            AdminError::Store(error) => {
                tracing::warn!(%error, "web UI: the store failed");
                Self::Unavailable("the store cannot answer; try again".into())
            }
        }
    }
}

impl WebError {
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            Self::SignIn => (StatusCode::UNAUTHORIZED, "sign in first".into()),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "the form is missing its CSRF token or carries another one: reload the page and try again".into(),
            ),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, message.clone()),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone()),
            Self::SignInRefused(message) => (StatusCode::UNAUTHORIZED, message.clone()),
            Self::LockedOut(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed sign-ins from this address; try again in {seconds} s"),
            ),
            Self::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message.clone()),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if matches!(self, Self::SignIn) {
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/ui/signin")],
                "sign in first",
            )
                .into_response();
        }
        let (status, message) = self.status_and_message();
        let mut body = Html::new();
        body.raw("<div class=\"error\" role=\"alert\"><p>")
            .text(&message)
            .raw("</p></div><p><a href=\"/ui/approvals\">Back to the approvals</a></p>");
        let page = crate::layout::bare_page(status_title(status), &body);
        (status, page).into_response()
    }
}

fn status_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Cannot do that",
        StatusCode::UNAUTHORIZED => "Sign-in refused",
        StatusCode::TOO_MANY_REQUESTS => "Locked out",
        _ => "Unavailable",
    }
}
