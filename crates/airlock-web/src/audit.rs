//! For auditors: session search (identity, connection, since), a
//! session's timeline (statements as recorded, masked; decisions;
//! refusals; result summaries) with the replay of a relayed terminal
//! (`kubectl exec`/`attach`: its `command.stream` transcript, control
//! characters shown escaped), the session's export as JSON lines, and the
//! audit chain's verification status. Read only; the data is what
//! `airlock session` and `airlock audit verify` show, through the same
//! core operations.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use airlock_core::audit::{parse_since, SessionFilter};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{duration, page, time, Nav};
use crate::sign_ins::Role;
use crate::WebState;

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
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "sessions and the audit log are")
        .await?;
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
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "sessions and the audit log are")
        .await?;
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
    body.raw("</dl><p><a href=\"/ui/sessions/")
        .text(&info.session_id)
        .raw("/export\" download>Export this session as JSON lines</a></p><h2>Timeline</h2>");
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
    let streams: Vec<&airlock_store::EventRecord> = detail
        .other_events
        .iter()
        .filter(|event| event.kind == "command.stream")
        .collect();
    if !streams.is_empty() {
        render_transcript(&mut body, &streams);
    }
    let others: Vec<&airlock_store::EventRecord> = detail
        .other_events
        .iter()
        .filter(|event| event.kind != "command.stream")
        .collect();
    if !others.is_empty() {
        body.raw("<h2>Other events</h2><ul>");
        for event in others {
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

/// Text with control characters other than newline and tab shown escaped
/// (`\x1b`), so a recorded escape sequence is read, not obeyed.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\n' | '\t' => out.push(character),
            '\r' => out.push_str("\\r"),
            other if other.is_control() => {
                out.push_str(&format!("\\x{:02x}", u32::from(other)));
            }
            other => out.push(other),
        }
    }
    out
}

/// The terminal transcript of a relayed `exec`/`attach`: every piece with
/// its offset and channel, per command.
fn render_transcript(body: &mut Html, streams: &[&airlock_store::EventRecord]) {
    body.raw("<h2>Terminal replay</h2><p class=\"muted\">What the terminal carried, as recorded (and masked): stdin typed by the agent, stdout and stderr of the command.</p>");
    let mut seqs: Vec<u64> = streams
        .iter()
        .filter_map(|event| event.data.get("seq").and_then(serde_json::Value::as_u64))
        .collect();
    seqs.dedup();
    for seq in seqs {
        body.raw("<section class=\"transcript\" aria-label=\"Transcript of command ")
            .number(i64::try_from(seq).unwrap_or(0))
            .raw("\"><h3>Command #")
            .number(i64::try_from(seq).unwrap_or(0))
            .raw("</h3><div class=\"terminal\" data-transcript>");
        let mut truncated = false;
        for event in streams
            .iter()
            .filter(|event| event.data.get("seq").and_then(serde_json::Value::as_u64) == Some(seq))
        {
            truncated |= event.data.get("truncated") == Some(&serde_json::Value::Bool(true));
            for chunk in event
                .data
                .get("chunks")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                let channel = chunk
                    .get("channel")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let class = match channel {
                    "stdin" => "stdin",
                    "stdout" => "stdout",
                    "stderr" => "stderr",
                    _ => "control",
                };
                let data = chunk
                    .get("data")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let at = chunk
                    .get("at_ms")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0)
                    / 1000.0;
                let text = if channel == "close" && data == "\u{0}" {
                    "(stdin closed)".to_string()
                } else {
                    escaped(data)
                };
                body.raw("<div class=\"")
                    .raw(class)
                    .raw("\"><span class=\"at\">")
                    .text(&format!("+{at:.3}s"))
                    .raw("</span> <span class=\"channel\">")
                    .text(channel)
                    .raw("</span><pre>")
                    .text(&text)
                    .raw("</pre></div>");
            }
        }
        body.raw("</div>");
        if truncated {
            body.raw(
                "<p class=\"muted\">The rest of the stream was not kept (transcript limit).</p>",
            );
        }
        body.raw("</section>");
    }
}

/// `GET /ui/sessions/{id}/export`: the session's events as JSON lines,
/// one stored event (id, time, kind, data, chain hashes) per line.
pub async fn export(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "sessions and the audit log are")
        .await?;
    let session_id = id.clone();
    let events = web
        .blocking(move |state| state.session_events(&session_id))
        .await?;
    let mut lines = String::new();
    for event in &events {
        lines.push_str(&serde_json::to_string(event).unwrap_or_default());
        lines.push('\n');
    }
    // The id goes into a header: only a plain one.
    let file: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    tracing::info!(identity = %viewer.identity.name, session = %file, events = events.len(), "web UI: session exported");
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"session-{file}.jsonl\""),
            ),
        ],
        lines,
    )
        .into_response())
}

/// `GET /ui/audit`: the hash chain, verified now.
pub async fn chain(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "sessions and the audit log are")
        .await?;
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
