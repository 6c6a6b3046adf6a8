//! airlock tokens: the list (never a token's value: the store keeps only
//! its hash) for auditors, and for admins issuing and revoking, POSTs with
//! the CSRF token through the core's `issue_token_as` / `revoke_token_as`
//! (revoking ends the token's live sessions). A newly issued token is
//! shown once, in the answer to the POST itself (never in a redirect, a
//! URL or a log), which is not cached.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use airlock_core::admin::{IssueTokenRequest, IssuedToken};
use airlock_store::now_unix;

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{csrf_field, flash, page, state_and_revoke_cells, time, Nav};
use crate::sign_ins::{Role, SignIn};
use crate::WebState;

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    token: Option<String>,
}

/// `GET /ui/tokens`.
pub async fn list(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let viewer = web.viewer_as(&headers, Role::Auditor, "tokens are").await?;
    let mut body = Html::new();
    flash(&mut body, done.done.as_deref(), done.token.as_deref());
    body.append(&tokens_body(&web, &viewer).await?);
    Ok(page("Tokens", Nav::Tokens, &viewer, &body))
}

async fn tokens_body(web: &WebState, viewer: &SignIn) -> Result<Html, WebError> {
    let (tokens, connections) = web
        .blocking(|state| Ok((state.list_tokens()?, state.list_connections()?)))
        .await?;
    let now = now_unix();
    let mut body = Html::new();
    if viewer.roles.admin {
        body.raw("<details class=\"issue\"><summary>Issue a token</summary><form method=\"post\" action=\"/ui/tokens\">");
        csrf_field(&mut body, viewer);
        body.raw("<div class=\"fields\"><label>Identity <input type=\"text\" name=\"identity\" required maxlength=\"128\"></label>")
            .raw("<label>Kind <select name=\"kind\"><option>agent</option><option>human</option><option>service</option></select></label>")
            .raw("<label>Groups <input type=\"text\" name=\"groups\" maxlength=\"1000\" placeholder=\"dba, ops\"></label>")
            .raw("<label>Lifetime <input type=\"text\" name=\"ttl\" maxlength=\"20\" placeholder=\"1h\"></label></div>")
            .raw("<fieldset><legend>Connections it may reach</legend>");
        for connection in &connections {
            body.raw(
                "<label class=\"check\"><input type=\"checkbox\" name=\"connection\" value=\"",
            )
            .text(&connection.name)
            .raw("\"> ")
            .text(&connection.name)
            .raw("</label>");
        }
        body.raw("</fieldset><button type=\"submit\">Issue</button></form></details>");
    }
    if tokens.is_empty() {
        body.raw("<p class=\"muted\">No token has been issued.</p>");
        return Ok(body);
    }
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Token</th><th scope=\"col\">Identity</th><th scope=\"col\">Kind</th><th scope=\"col\">Groups</th><th scope=\"col\">Connections</th><th scope=\"col\">Issued</th><th scope=\"col\">Expires</th><th scope=\"col\">State</th>");
    if viewer.roles.admin {
        body.raw("<th scope=\"col\">Revoke</th>");
    }
    body.raw("</tr></thead><tbody>");
    for token in tokens.iter().rev() {
        let active = token.revoked_at.is_none() && token.expires_at > now;
        body.raw("<tr data-token=\"")
            .text(&token.id)
            .raw("\"><td data-label=\"Token\"><code>")
            .text(&token.id)
            .raw("</code></td><td data-label=\"Identity\">")
            .text(&token.identity)
            .raw("</td><td data-label=\"Kind\">")
            .text(&token.kind)
            .raw("</td><td data-label=\"Groups\">")
            .text(&token.groups.join(", "))
            .raw("</td><td data-label=\"Connections\">")
            .text(&token.connections.join(", "))
            .raw("</td><td data-label=\"Issued\">")
            .text(&time(token.created_at))
            .raw("</td><td data-label=\"Expires\">")
            .text(&time(token.expires_at))
            .raw("</td>");
        let revoke_to = format!("/ui/tokens/{}/revoke", token.id);
        state_and_revoke_cells(&mut body, viewer, token.revoked_at, active, &revoke_to);
        body.raw("</tr>");
    }
    body.raw("</tbody></table>");
    Ok(body)
}

/// The issue form: `connection` repeats, one per checked box.
pub struct IssueForm {
    csrf: Option<String>,
    identity: Option<String>,
    kind: Option<String>,
    groups: Option<String>,
    ttl: Option<String>,
    connection: Vec<String>,
}

/// `POST /ui/tokens` (admins): issues, and shows the token this once.
pub async fn issue(
    State(web): State<WebState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    // Repeated fields (`connection=a&connection=b`) are read by hand:
    // axum's Form cannot gather them into a list.
    let form = parse_issue_form(&body);
    let viewer = web
        .poster_as(
            &headers,
            form.csrf.as_deref(),
            Role::Admin,
            "issuing and revoking tokens is",
        )
        .await?;
    let request = IssueTokenRequest {
        identity: form.identity.unwrap_or_default().trim().to_string(),
        kind: form.kind.unwrap_or_else(|| "agent".into()),
        groups: form
            .groups
            .unwrap_or_default()
            .split([',', ' '])
            .map(str::trim)
            .filter(|group| !group.is_empty())
            .map(str::to_string)
            .collect(),
        connections: form.connection,
        ttl: form
            .ttl
            .map(|ttl| ttl.trim().to_string())
            .filter(|ttl| !ttl.is_empty()),
    };
    let by = viewer.identity.name.clone();
    let issued = web
        .blocking(move |state| state.issue_token_as(&request, Some(&by)))
        .await?;
    tracing::info!(identity = %viewer.identity.name, token = %issued.id, "web UI: token issued");
    let mut body = Html::new();
    shown_once(&mut body, &issued);
    body.append(&tokens_body(&web, &viewer).await?);
    Ok(page("Tokens", Nav::Tokens, &viewer, &body))
}

fn parse_issue_form(body: &[u8]) -> IssueForm {
    let mut form = IssueForm {
        csrf: None,
        identity: None,
        kind: None,
        groups: None,
        ttl: None,
        connection: Vec::new(),
    };
    for (name, value) in form_pairs(body) {
        match name.as_str() {
            "csrf" => form.csrf = Some(value),
            "identity" => form.identity = Some(value),
            "kind" => form.kind = Some(value),
            "groups" => form.groups = Some(value),
            "ttl" => form.ttl = Some(value),
            "connection" if form.connection.len() < 256 => form.connection.push(value),
            _ => {}
        }
    }
    form
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

fn shown_once(body: &mut Html, issued: &IssuedToken) {
    body.raw("<div class=\"notice\" role=\"status\"><p>Token <code>")
        .text(&issued.id)
        .raw("</code> for ")
        .text(&issued.identity)
        .raw(" (")
        .text(&issued.kind)
        .raw("), valid for ")
        .text(&issued.ttl)
        .raw(". Copy it now: it is shown this once and airlock keeps only its hash.</p>")
        .raw("<label for=\"issued-token\">The new token</label><input id=\"issued-token\" class=\"secret\" type=\"text\" readonly value=\"")
        .text(&issued.token)
        .raw("\"></div>");
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

/// `POST /ui/tokens/{id}/revoke` (admins).
pub async fn revoke(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, WebError> {
    let token = id.clone();
    web.admin_action(
        &headers,
        form.csrf.as_deref(),
        "issuing and revoking tokens is",
        move |state, by| state.revoke_token_as(&token, by),
        &format!("token {id} revoked"),
        &format!("/ui/tokens?done=revoked&token={id}"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_connections_are_all_read() {
        let form =
            parse_issue_form(b"csrf=x&identity=bot&connection=a&connection=b%20c&kind=agent");
        assert_eq!(form.connection, vec!["a".to_string(), "b c".to_string()]);
        assert_eq!(form.identity.as_deref(), Some("bot"));
        assert_eq!(form.csrf.as_deref(), Some("x"));
    }
}
