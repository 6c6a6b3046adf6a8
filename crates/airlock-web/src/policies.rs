//! Policy versions (source, author, time, comment) and the line diff of
//! any two, for auditors and admins. Read only: applying and rolling back
//! stay with the admin API for now.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{page, time, Nav};
use crate::sign_ins::SignIn;
use crate::WebState;

/// Policy texts longer than this are not diffed (the diff is quadratic in
/// the worst case).
const MAX_DIFF_BYTES: usize = 1 << 20;

fn require_auditor(viewer: &SignIn) -> Result<(), WebError> {
    if viewer.roles.auditor {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "policies are for auditors and admins (ui.auditor_groups, ui.admin_groups)".into(),
        ))
    }
}

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
async fn versions_body(web: &WebState) -> Result<Html, WebError> {
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
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">Version</th><th scope=\"col\">Author</th><th scope=\"col\">Applied</th><th scope=\"col\">Comment</th><th scope=\"col\">SHA-256</th></tr></thead><tbody>");
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
            .raw("</code></td></tr>");
    }
    body.raw("</tbody></table>");
    Ok(body)
}

/// `GET /ui/policies`.
pub async fn list(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    require_auditor(&viewer)?;
    let body = versions_body(&web).await?;
    Ok(page_of("Policies", &viewer, &body))
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
    let viewer = web.viewer(&headers).await?;
    require_auditor(&viewer)?;
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
