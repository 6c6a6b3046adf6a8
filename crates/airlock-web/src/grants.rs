//! Access grants (just-in-time access to a connection, from an approved
//! access request) for auditors, with revocation for admins: a POST with
//! the CSRF token through the core's `revoke_grant_as`, which closes the
//! sessions the grant admitted and records `access.revoke` by the person.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use airlock_store::now_unix;

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{flash, page, state_and_revoke_cells, time, Nav};
use crate::sign_ins::Role;
use crate::WebState;

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    grant: Option<String>,
}

/// `GET /ui/access` (auditors and admins).
pub async fn list(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "access grants are")
        .await?;
    let grants = web.blocking(|state| Ok(state.store.grants(false)?)).await?;
    let now = now_unix();
    let mut body = Html::new();
    flash(&mut body, done.done.as_deref(), done.grant.as_deref());
    body.raw("<p>Just-in-time access to connections, granted by approved access requests (<code>airlock access request</code>). Pending requests wait in the <a href=\"/ui/approvals\">approvals</a>.</p>");
    if grants.is_empty() {
        body.raw("<p class=\"muted\">No access has been granted.</p>");
        return Ok(page("Access grants", Nav::Access, &viewer, &body));
    }
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Grant</th><th scope=\"col\">Identity</th><th scope=\"col\">Connection</th><th scope=\"col\">Rule</th><th scope=\"col\">Review</th><th scope=\"col\">Granted</th><th scope=\"col\">Until</th><th scope=\"col\">State</th>");
    if viewer.roles.admin {
        body.raw("<th scope=\"col\">Revoke</th>");
    }
    body.raw("</tr></thead><tbody>");
    for grant in grants.iter().rev() {
        let active = grant.revoked_at.is_none() && grant.expires_at > now;
        body.raw("<tr data-grant=\"")
            .text(&grant.id)
            .raw("\"><td data-label=\"Grant\"><code>")
            .text(&grant.id)
            .raw("</code></td><td data-label=\"Identity\">")
            .text(&grant.identity)
            .raw("</td><td data-label=\"Connection\">")
            .text(&grant.connection)
            .raw("</td><td data-label=\"Rule\">")
            .text(&grant.rule)
            .raw("</td><td data-label=\"Review\">");
        if let Some(review) = &grant.review_id {
            body.raw("<a href=\"/ui/reviews/")
                .text(review)
                .raw("\">")
                .text(review)
                .raw("</a>");
        }
        body.raw("</td><td data-label=\"Granted\">")
            .text(&time(grant.created_at))
            .raw("</td><td data-label=\"Until\">")
            .text(&time(grant.expires_at))
            .raw("</td>");
        let revoke_to = format!("/ui/access/{}/revoke", grant.id);
        state_and_revoke_cells(&mut body, &viewer, grant.revoked_at, active, &revoke_to);
        body.raw("</tr>");
    }
    body.raw("</tbody></table>");
    Ok(page("Access grants", Nav::Access, &viewer, &body))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

/// `POST /ui/access/{id}/revoke` (admins).
pub async fn revoke(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, WebError> {
    let grant = id.clone();
    web.admin_action(
        &headers,
        form.csrf.as_deref(),
        "revoking access is",
        move |state, by| state.revoke_grant_as(&grant, by),
        &format!("access grant {id} revoked"),
        &format!("/ui/access?done=revoked&grant={id}"),
    )
    .await
}
