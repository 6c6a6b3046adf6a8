//! For auditors: session search (identity, connection, since), a
//! session's timeline (statements as recorded, masked; decisions;
//! refusals; result summaries), and the audit chain's verification
//! status. Read only; the data is what `airlock session` and `airlock
//! audit verify` show, through the same core operations.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use airlock_core::audit::{parse_since, SessionFilter};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{duration, page, time, Nav};
use crate::sign_ins::SignIn;
use crate::WebState;

fn require_auditor(viewer: &SignIn) -> Result<(), WebError> {
    if viewer.roles.auditor {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "sessions and the audit log are for auditors and admins (ui.auditor_groups, ui.admin_groups)".into(),
        ))
    }
}

#[derive(Deserialize)]
pub struct Search {
    identity: Option<String>,
    connection: Option<String>,
    since: Option<String>,
}

fn filled(text: Option<&String>) -> Option<String> {
    text.map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

fn search_field(html: &mut Html, name: &'static str, label: &'static str, value: Option<&str>) {
    html.raw("<label>")
        .raw(label)
        .raw(" <input type=\"text\" name=\"")
        .raw(name)
        .raw("\" value=\"")
        .text(value.unwrap_or(""))
        .raw("\"></label>");
}

/// `GET /ui/sessions?identity=&connection=&since=`.
pub async fn sessions(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    require_auditor(&viewer)?;
    let identity = filled(search.identity.as_ref());
    let connection = filled(search.connection.as_ref());
    let since = filled(search.since.as_ref());
    let since_micros = since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(WebError::BadRequest)?;
    let filter = SessionFilter {
        identity: identity.clone(),
        connection: connection.clone(),
        since_micros,
        limit: 100,
    };
    let list = web
        .blocking(move |state| state.list_sessions(&filter))
        .await?;
    let mut body = Html::new();
    body.raw("<form class=\"inline\" method=\"get\" action=\"/ui/sessions\">");
    search_field(&mut body, "identity", "Identity", identity.as_deref());
    search_field(&mut body, "connection", "Connection", connection.as_deref());
    search_field(
        &mut body,
        "since",
        "Since (1h, 7d, RFC 3339)",
        since.as_deref(),
    );
    body.raw("<button type=\"submit\">Search</button></form>");
    if list.is_empty() {
        body.raw("<p class=\"muted\">No session matches.</p>");
        return Ok(page("Sessions", Nav::Sessions, &viewer, &body));
    }
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Identity</th><th scope=\"col\">Connection</th><th scope=\"col\">Started</th><th scope=\"col\">Length</th><th scope=\"col\">Commands</th><th scope=\"col\">Ended by</th></tr></thead><tbody>");
    for session in &list {
        body.raw("<tr><td data-label=\"Session\"><a href=\"/ui/sessions/")
            .text(&session.session_id)
            .raw("\">")
            .text(&session.session_id)
            .raw("</a>")
            .raw(if session.live {
                " <span class=\"badge\">live</span>"
            } else {
                ""
            })
            .raw("</td><td data-label=\"Identity\">")
            .text(&session.identity)
            .raw("</td><td data-label=\"Connection\">")
            .text(&session.connection)
            .raw("</td><td data-label=\"Started\">")
            .text(&time(session.started_at))
            .raw("</td><td data-label=\"Length\">")
            .text(
                &session
                    .duration_ms
                    .map(|ms| duration(i64::try_from(ms / 1000).unwrap_or(i64::MAX)))
                    .unwrap_or_default(),
            )
            .raw("</td><td data-label=\"Commands\">")
            .number(
                session
                    .commands
                    .and_then(|count| i64::try_from(count).ok())
                    .unwrap_or(0),
            )
            .raw("</td><td data-label=\"Ended by\">")
            .text(session.ended_by.as_deref().unwrap_or(""))
            .raw("</td></tr>");
    }
    body.raw("</tbody></table>");
    Ok(page("Sessions", Nav::Sessions, &viewer, &body))
}

/// `GET /ui/sessions/{id}`: the session's timeline.
pub async fn session(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    require_auditor(&viewer)?;
    let detail = web.blocking(move |state| state.session_detail(&id)).await?;
    let info = &detail.session;
    let mut body = Html::new();
    body.raw("<dl class=\"facts\"><dt>Identity</dt><dd>")
        .text(&info.identity)
        .raw("</dd><dt>Connection</dt><dd>")
        .text(&info.connection)
        .raw("</dd><dt>Client</dt><dd>")
        .text(&info.client_address)
        .raw(if info.tls { " (TLS)" } else { "" })
        .raw("</dd><dt>Token</dt><dd><code>")
        .text(&info.token_id)
        .raw("</code></dd><dt>Started</dt><dd>")
        .text(&time(info.started_at))
        .raw("</dd>");
    if let Some(ended) = info.ended_at {
        body.raw("<dt>Ended</dt><dd>")
            .text(&time(ended))
            .raw(" (")
            .text(info.ended_by.as_deref().unwrap_or("?"))
            .raw(")</dd>");
    }
    body.raw("</dl><h2>Timeline</h2>");
    if detail.timeline.is_empty() {
        body.raw("<p class=\"muted\">No command was recorded.</p>");
    } else {
        body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">At</th><th scope=\"col\">Message</th><th scope=\"col\">Statement (masked)</th><th scope=\"col\">Decision</th><th scope=\"col\">Result</th></tr></thead><tbody>");
        for entry in &detail.timeline {
            body.raw("<tr><td data-label=\"At\">")
                .text(&format!("+{:.1} ms", entry.offset_ms))
                .raw("</td><td data-label=\"Message\">")
                .text(&entry.message)
                .raw("</td><td data-label=\"Statement\"><pre class=\"statement\">")
                .text(&entry.statement)
                .raw("</pre></td><td data-label=\"Decision\">")
                .text(&entry.decision);
            if let Some(refusal) = &entry.refusal {
                body.raw(": ").text(refusal);
            }
            body.raw("</td><td data-label=\"Result\"><code>")
                .text(
                    &entry
                        .result
                        .as_ref()
                        .map(|result| result.to_string())
                        .unwrap_or_default(),
                )
                .raw("</code></td></tr>");
        }
        body.raw("</tbody></table>");
    }
    if !detail.other_events.is_empty() {
        body.raw("<h2>Other events</h2><ul>");
        for event in &detail.other_events {
            body.raw("<li><code>")
                .text(&event.kind)
                .raw("</code> ")
                .text(&event.data.to_string())
                .raw("</li>");
        }
        body.raw("</ul>");
    }
    Ok(page(
        &format!("Session {}", info.session_id),
        Nav::Sessions,
        &viewer,
        &body,
    ))
}

/// `GET /ui/audit`: the hash chain, verified now.
pub async fn chain(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    require_auditor(&viewer)?;
    let report = web.blocking(|state| state.verify_audit()).await?;
    let mut body = Html::new();
    if report.ok {
        body.raw("<div class=\"notice\" role=\"status\" data-chain=\"ok\">The audit chain verifies: every event commits to the one before it.</div>");
    } else {
        body.raw("<div class=\"error\" role=\"alert\" data-chain=\"broken\">The audit chain is broken.</div>");
    }
    body.raw("<dl class=\"facts\"><dt>Events checked</dt><dd>")
        .number(i64::try_from(report.events_checked).unwrap_or(i64::MAX))
        .raw("</dd><dt>Last verified event</dt><dd>")
        .text(
            &report
                .last_id
                .map(|id| format!("#{id}"))
                .unwrap_or_else(|| "none".into()),
        )
        .raw("</dd>");
    if let Some(checkpoint) = report.checkpoint_through_id {
        body.raw("<dt>From the pruning checkpoint</dt><dd>#")
            .number(checkpoint)
            .raw("</dd>");
    }
    if let Some(broken) = &report.first_broken {
        body.raw("<dt>First broken link</dt><dd>")
            .text(&serde_json::to_string(broken).unwrap_or_default())
            .raw("</dd>");
    }
    body.raw("</dl>");
    Ok(page("Audit", Nav::Audit, &viewer, &body))
}
