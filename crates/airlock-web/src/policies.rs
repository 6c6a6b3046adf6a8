//! Policy versions (source, author, time, comment) and the line diff of
//! any two, for auditors and admins; rollback to an earlier version for
//! admins (a POST with the CSRF token, through the core's
//! `rollback_policy_as`: a new version with the old text, live at once,
//! recorded as `policy.apply` by the person, whose name the version's
//! comment keeps). Applying a new text stays with the admin API.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{csrf_field, flash, page, time, Nav};
use crate::sign_in::redirect;
use crate::sign_ins::{Role, SignIn};
use crate::WebState;

/// Policy texts longer than this are not diffed (the diff is quadratic in
/// the worst case).
const MAX_DIFF_BYTES: usize = 1 << 20;

/// Who made a version: the admin API (the admin token) or the config file.
fn author(source: &str) -> &'static str {
    match source {
        "config" => "config file (first start)",
        "rollback" => "admin (rollback)",
        _ => "admin (admin API)",
    }
}

fn version_select(
    html: &mut Html,
    name: &'static str,
    label: &'static str,
    versions: &[i64],
    chosen: i64,
) {
    html.raw("<label>")
        .raw(label)
        .raw(" <select name=\"")
        .raw(name)
        .raw("\">");
    for version in versions {
        html.raw("<option value=\"").number(*version).raw("\"");
        if *version == chosen {
            html.raw(" selected");
        }
        html.raw(">v").number(*version).raw("</option>");
    }
    html.raw("</select></label>");
}

/// The versions table and the diff form.
async fn versions_body(web: &WebState, viewer: &SignIn) -> Result<Html, WebError> {
    let versions = web
        .blocking(|state| Ok(state.store.policy_versions()?))
        .await?;
    let live = web.state.policy.current_version();
    let mut body = Html::new();
    if versions.is_empty() {
        body.raw("<p class=\"muted\">No policy has been applied.</p>");
        return Ok(body);
    }
    let numbers: Vec<i64> = versions.iter().map(|version| version.version).collect();
    let newest = numbers.iter().copied().max().unwrap_or(1);
    let previous = numbers
        .iter()
        .copied()
        .filter(|version| *version < newest)
        .max()
        .unwrap_or(newest);
    body.raw("<form class=\"inline\" method=\"get\" action=\"/ui/policies/diff\">");
    version_select(&mut body, "from", "From", &numbers, previous);
    version_select(&mut body, "to", "To", &numbers, newest);
    body.raw("<button type=\"submit\">Show the diff</button></form>");
    body.raw("<p><a href=\"/ui/policies/explain\">Explain a decision</a> of the live policy.</p>");
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Version</th><th scope=\"col\">Author</th><th scope=\"col\">Applied</th><th scope=\"col\">Comment</th><th scope=\"col\">SHA-256</th>");
    if viewer.roles.admin {
        body.raw("<th scope=\"col\">Roll back</th>");
    }
    body.raw("</tr></thead><tbody>");
    for version in versions.iter().rev() {
        body.raw("<tr><td data-label=\"Version\">v")
            .number(version.version);
        if version.version == live {
            body.raw(" <span class=\"badge\">live</span>");
        }
        body.raw("</td><td data-label=\"Author\">")
            .raw(author(&version.source))
            .raw("</td><td data-label=\"Applied\">")
            .text(&time(version.created_at))
            .raw("</td><td data-label=\"Comment\">")
            .text(version.comment.as_deref().unwrap_or(""))
            .raw("</td><td data-label=\"SHA-256\"><code>")
            .text(version.sha256.get(..12).unwrap_or(&version.sha256))
            .raw("</code></td>");
        if viewer.roles.admin {
            body.raw("<td data-label=\"Roll back\">");
            if version.version != live {
                body.raw(
                    "<form class=\"inline\" method=\"post\" action=\"/ui/policies/rollback\">",
                );
                csrf_field(&mut body, viewer);
                body.raw("<input type=\"hidden\" name=\"version\" value=\"")
                    .number(version.version)
                    .raw("\"><label>Why <input type=\"text\" name=\"note\" maxlength=\"300\"></label><button type=\"submit\" class=\"danger\">Roll back to v")
                    .number(version.version)
                    .raw("</button></form>");
            }
            body.raw("</td>");
        }
        body.raw("</tr>");
    }
    body.raw("</tbody></table>");
    Ok(body)
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    version: Option<String>,
}

/// `GET /ui/policies`.
pub async fn list(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "policies are")
        .await?;
    let mut body = Html::new();
    flash(&mut body, done.done.as_deref(), done.version.as_deref());
    body.append(&versions_body(&web, &viewer).await?);
    Ok(page_of("Policies", &viewer, &body))
}

#[derive(Deserialize)]
pub struct RollbackForm {
    csrf: Option<String>,
    version: Option<i64>,
    note: Option<String>,
}

/// `POST /ui/policies/rollback` (admins).
pub async fn rollback(
    State(web): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<RollbackForm>,
) -> Result<Response, WebError> {
    let viewer = web
        .poster_as(
            &headers,
            form.csrf.as_deref(),
            Role::Admin,
            "rolling a policy back is",
        )
        .await?;
    let version = form
        .version
        .ok_or_else(|| WebError::BadRequest("choose the version to roll back to".into()))?;
    let by = viewer.identity.name.clone();
    let note = form.note.unwrap_or_default();
    let applied = web
        .blocking(move |state| state.rollback_policy_as(version, &by, Some(&note)))
        .await?;
    tracing::info!(identity = %viewer.identity.name, to = version, new_version = applied.version, "web UI: policy rolled back");
    Ok(redirect(
        &format!("/ui/policies?done=rolled_back&version=v{}", applied.version),
        None,
    ))
}

fn page_of(title: &str, viewer: &SignIn, body: &Html) -> Response {
    page(title, Nav::Policies, viewer, body)
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// The diff of two texts, one `div` per line.
pub fn render_diff(old: &str, new: &str) -> Html {
    let mut html = Html::new();
    html.raw("<div class=\"diff\" role=\"region\" aria-label=\"Diff\">");
    let diff = TextDiff::from_lines(old, new);
    for change in diff.iter_all_changes() {
        let (class, label): (&'static str, &'static str) = match change.tag() {
            ChangeTag::Delete => ("del", "removed: "),
            ChangeTag::Insert => ("ins", "added: "),
            ChangeTag::Equal => ("same", ""),
        };
        html.raw("<div class=\"")
            .raw(class)
            .raw("\"><span class=\"skip\">")
            .raw(label)
            .raw("</span>")
            .text(change.value().trim_end_matches('\n'))
            .raw("</div>");
    }
    html.raw("</div>");
    html
}

/// `GET /ui/policies/diff?from=A&to=B`.
pub async fn diff(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<DiffQuery>,
) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "policies are")
        .await?;
    let (Some(from), Some(to)) = (query.from, query.to) else {
        return Err(WebError::BadRequest(
            "choose two versions (from, to)".into(),
        ));
    };
    let (old, new) = web
        .blocking(move |state| {
            let load = |version: i64| -> Result<String, airlock_core::error::AdminError> {
                state
                    .store
                    .policy_version(version)?
                    .and_then(|record| record.text)
                    .ok_or_else(|| {
                        airlock_core::error::AdminError::NotFound(format!(
                            "policy version {version} not found"
                        ))
                    })
            };
            Ok((load(from)?, load(to)?))
        })
        .await?;
    if old.len() > MAX_DIFF_BYTES || new.len() > MAX_DIFF_BYTES {
        return Err(WebError::BadRequest(
            "these versions are too long to diff here".into(),
        ));
    }
    let mut body = Html::new();
    body.raw("<p><a href=\"/ui/policies\">All versions</a></p>")
        .append(&render_diff(&old, &new));
    Ok(page_of(&format!("Policy v{from} → v{to}"), &viewer, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_lines_and_escapes_them() {
        let html = render_diff("a: 1\nb: <2>\n", "a: 1\nb: 3\n").into_string();
        assert!(
            html.contains("<div class=\"same\"><span class=\"skip\"></span>a: 1</div>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<div class=\"del\"><span class=\"skip\">removed: </span>b: &lt;2&gt;</div>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"ins\"><span class=\"skip\">added: </span>b: 3</div>"),
            "{html}"
        );
    }
}
