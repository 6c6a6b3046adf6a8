//! Live sessions: who is connected where, since when, how many commands
//! so far (the `command` records of the session), and (for admins) the
//! kill switch, which ends a session with a reason through the core's
//! `GatewayState::end_session` (recorded as `session.kill` before the
//! session is told). Sessions are those of this gateway process.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use airlock_store::now_unix;

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{csrf_field, duration, flash, page, time, Nav};
use crate::sign_ins::Role;
use crate::WebState;

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    session: Option<String>,
}

/// `GET /ui/sessions/live` (auditors and admins).
pub async fn list(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "live sessions are")
        .await?;
    let sessions = web.state.sessions.list();
    let ids: Vec<String> = sessions
        .iter()
        .map(|session| session.session_id.clone())
        .collect();
    let counts = web
        .blocking(move |state| state.commands_so_far(&ids))
        .await?;
    let now = now_unix();
    let mut body = Html::new();
    flash(&mut body, done.done.as_deref(), done.session.as_deref());
    if sessions.is_empty() {
        body.raw("<p class=\"muted\">No session is live on this gateway.</p>");
        return Ok(page("Live sessions", Nav::LiveSessions, &viewer, &body));
    }
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Identity</th><th scope=\"col\">Connection</th><th scope=\"col\">Client</th><th scope=\"col\">Since</th><th scope=\"col\">Commands</th>");
    if viewer.roles.admin {
        body.raw("<th scope=\"col\">End it</th>");
    }
    body.raw("</tr></thead><tbody>");
    for session in &sessions {
        body.raw("<tr data-session=\"")
            .text(&session.session_id)
            .raw("\"><td data-label=\"Session\"><code>")
            .text(&session.session_id)
            .raw("</code></td><td data-label=\"Identity\">")
            .text(&session.identity)
            .raw("</td><td data-label=\"Connection\">")
            .text(&session.connection)
            .raw("</td><td data-label=\"Client\">")
            .text(&session.client_address)
            .raw(if session.tls { " (TLS)" } else { "" })
            .raw("</td><td data-label=\"Since\">")
            .text(&time(session.started_at))
            .raw(" (")
            .text(&duration(now - session.started_at))
            .raw(")</td><td data-label=\"Commands\" data-commands>")
            .number(
                counts
                    .get(&session.session_id)
                    .and_then(|count| i64::try_from(*count).ok())
                    .unwrap_or(0),
            )
            .raw("</td>");
        if viewer.roles.admin {
            body.raw("<td data-label=\"End it\"><form class=\"inline\" method=\"post\" action=\"/ui/sessions/live/")
                .text(&session.session_id)
                .raw("/end\">");
            csrf_field(&mut body, &viewer);
            body.raw("<label>Reason <input type=\"text\" name=\"reason\" required maxlength=\"300\"></label>")
                .raw("<button type=\"submit\" class=\"danger\">End session</button></form></td>");
        }
        body.raw("</tr>");
    }
    body.raw("</tbody></table>");
    Ok(page("Live sessions", Nav::LiveSessions, &viewer, &body))
}

#[derive(Deserialize)]
pub struct EndForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// `POST /ui/sessions/live/{id}/end` (admins).
pub async fn end(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EndForm>,
) -> Result<Response, WebError> {
    let reason = form.reason.unwrap_or_default();
    let session_id = id.clone();
    web.admin_action(
        &headers,
        form.csrf.as_deref(),
        "ending a session is",
        move |state, by| state.end_session(&session_id, &reason, by),
        &format!("session {id} ended"),
        &format!("/ui/sessions/live?done=ended&session={id}"),
    )
    .await
}
