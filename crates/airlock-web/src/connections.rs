//! Connections and the metadata of stored credentials, for auditors:
//! names, protocols, addresses, tags, which credential each uses, when a
//! credential was set and rotated. Never a secret: the core's
//! `list_credentials` returns no value, and nothing here asks the vault.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{page, time, Nav};
use crate::sign_ins::Role;
use crate::WebState;

/// `GET /ui/connections` (auditors and admins).
pub async fn list(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "connections are")
        .await?;
    let (connections, credentials) = web
        .blocking(|state| Ok((state.list_connections()?, state.list_credentials()?)))
        .await?;
    let mut body = Html::new();
    body.raw("<h2>Connections</h2>");
    if connections.is_empty() {
        body.raw("<p class=\"muted\">No connection is configured.</p>");
    } else {
        body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Protocol</th><th scope=\"col\">Address</th><th scope=\"col\">Database</th><th scope=\"col\">Credential</th><th scope=\"col\">TLS</th><th scope=\"col\">Tags</th><th scope=\"col\">From</th></tr></thead><tbody>");
        for connection in &connections {
            let tags: Vec<String> = connection
                .tags
                .iter()
                .map(|(key, value)| format!("{key}: {value}"))
                .collect();
            body.raw("<tr data-connection=\"")
                .text(&connection.name)
                .raw("\"><td data-label=\"Name\">")
                .text(&connection.name)
                .raw("</td><td data-label=\"Protocol\">")
                .text(&connection.protocol)
                .raw("</td><td data-label=\"Address\"><code>")
                .text(&connection.address)
                .raw("</code></td><td data-label=\"Database\">")
                .text(&connection.database)
                .raw("</td><td data-label=\"Credential\">")
                .text(&connection.credential)
                .raw("</td><td data-label=\"TLS\">")
                .text(&connection.tls)
                .raw("</td><td data-label=\"Tags\">")
                .text(&tags.join(", "))
                .raw("</td><td data-label=\"From\">")
                .text(&connection.source)
                .raw("</td></tr>");
        }
        body.raw("</tbody></table>");
    }
    body.raw(
        "<h2>Credentials</h2><p>Stored encrypted; only their metadata is shown, never a value.</p>",
    );
    if credentials.is_empty() {
        body.raw("<p class=\"muted\">No credential is stored.</p>");
    } else {
        body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">User name</th><th scope=\"col\">Version</th><th scope=\"col\">Set</th><th scope=\"col\">Rotated</th></tr></thead><tbody>");
        for credential in &credentials {
            body.raw("<tr data-credential=\"")
                .text(&credential.name)
                .raw("\"><td data-label=\"Name\">")
                .text(&credential.name)
                .raw("</td><td data-label=\"User name\">")
                .text(&credential.username)
                .raw("</td><td data-label=\"Version\">")
                .number(credential.version)
                .raw("</td><td data-label=\"Set\">")
                .text(&time(credential.created_at))
                .raw("</td><td data-label=\"Rotated\">")
                .text(&credential.rotated_at.map(time).unwrap_or_default())
                .raw("</td></tr>");
        }
        body.raw("</tbody></table>");
    }
    Ok(page("Connections", Nav::Connections, &viewer, &body))
}
