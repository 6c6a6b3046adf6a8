//! The approvals queue, live through server-sent events, a review's
//! detail page with its session's recent commands, and the approve and
//! deny forms.
//!
//! What a viewer sees is what the API shows the same person
//! (`GatewayState::list_reviews` / `show_review`: reviews they requested
//! or may decide; auditors every review), and a decision goes through
//! `GatewayState::decide_review`, the API's own path: approver group, not
//! the requester, `min_approvals`, TOTP when the rule demands MFA, the
//! `review.approve` / `review.deny` records and webhooks. A held client
//! waiting on the review is released by that decision (it polls the
//! store, on any replica).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_store::{now_unix, ReviewRecord};

use crate::errors::WebError;
use crate::html::Html;
use crate::layout::{csrf_field, duration, flash, page, time, Nav};
use crate::sign_in::redirect;
use crate::sign_ins::SignIn;
use crate::{Web, WebState, SESSION_COOKIE};

/// How often a connected queue looks for changes.
const STREAM_POLL: Duration = Duration::from_millis(300);
/// A queue whose reviews did not change is re-sent this often anyway, so
/// its "waiting" times stay current.
const STREAM_REFRESH: Duration = Duration::from_secs(15);
/// At most this many reviews are listed.
const QUEUE_LIMIT: i64 = 200;

/// `GET /ui`.
pub async fn home() -> Response {
    redirect("/ui/approvals", None)
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    review: Option<String>,
}

/// Whether `viewer` may decide `review` (the core checks it again).
fn may_decide(viewer: &SignIn, review: &ReviewRecord) -> bool {
    review.identity != viewer.identity.name
        && viewer
            .identity
            .groups
            .iter()
            .any(|group| review.approvers.contains(group))
}

/// The pending reviews `viewer` sees, oldest first.
async fn pending(web: &Arc<Web>, viewer: &SignIn) -> Result<Vec<ReviewRecord>, WebError> {
    let identity = (!viewer.roles.auditor).then(|| viewer.identity.clone());
    let mut reviews = web
        .blocking(move |state| state.list_reviews(identity.as_ref(), Some("pending"), QUEUE_LIMIT))
        .await?;
    let now = now_unix();
    reviews.retain(|review| review.status == "pending" && review.expires_at > now);
    reviews.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(reviews)
}

/// The description of `rule` in the policy version that asked for the
/// review (the live one, or the stored version it names).
fn rule_description(web: &Web, review: &ReviewRecord) -> Option<String> {
    let live = web.state.policy.current();
    let from_live = |policy: &airlock_policy::Policy| {
        policy
            .rules
            .iter()
            .find(|rule| rule.name == review.rule)
            .and_then(|rule| rule.description.clone())
    };
    if live.version == review.policy_version {
        return live.policy.as_ref().and_then(from_live);
    }
    let record = web
        .state
        .store
        .policy_version(review.policy_version)
        .ok()
        .flatten()?;
    let policy = airlock_policy::Policy::from_yaml(&record.text?, "policy").ok()?;
    from_live(&policy)
}

fn classification(html: &mut Html, review: &ReviewRecord) {
    let value = &review.classification;
    if let Some(access) = value.get("access").and_then(|access| access.as_str()) {
        let class: &'static str = match access {
            "read" => "badge",
            "admin" => "badge admin",
            _ => "badge write",
        };
        html.raw("<span class=\"")
            .raw(class)
            .raw("\">")
            .text(access)
            .raw("</span> ");
    }
    if let Some(operations) = value.get("operations").and_then(|list| list.as_array()) {
        let names: Vec<&str> = operations.iter().filter_map(|op| op.as_str()).collect();
        html.text(&names.join(", "));
    }
    if let Some(tables) = value.get("tables").and_then(|list| list.as_array()) {
        let names: Vec<&str> = tables.iter().filter_map(|table| table.as_str()).collect();
        if !names.is_empty() {
            html.raw(" <span class=\"muted\">on</span> ")
                .text(&names.join(", "));
        }
    }
    if value
        .get("complete")
        .and_then(|complete| complete.as_bool())
        == Some(false)
    {
        html.raw(" <span class=\"badge write\">incomplete</span>");
    }
    if review.kind == "access" {
        html.raw("<span class=\"badge\">access request</span>");
        if let Some(seconds) = review.duration_seconds {
            html.raw(" for ").text(&duration(seconds));
        }
    }
}

/// The queue: the part the event stream replaces. Held commands and
/// access requests are listed apart (an access request holds no command:
/// it asks for a grant to a connection for a while).
fn queue_fragment(web: &Web, viewer: &SignIn, reviews: &[ReviewRecord]) -> Html {
    let mut html = Html::new();
    if reviews.is_empty() {
        html.raw("<p class=\"muted\">No review is waiting for you.</p>");
        return html;
    }
    let (requests, commands): (Vec<&ReviewRecord>, Vec<&ReviewRecord>) =
        reviews.iter().partition(|review| review.kind == "access");
    let now = now_unix();
    html.raw("<h2 id=\"held-commands\">Held commands</h2>");
    if commands.is_empty() {
        html.raw("<p class=\"muted\">No command is held for you.</p>");
    } else {
        html.raw("<table class=\"stack\" aria-labelledby=\"held-commands\"><caption class=\"muted\">")
            .number(i64::try_from(commands.len()).unwrap_or(i64::MAX))
            .raw(" waiting</caption><thead><tr><th scope=\"col\">Review</th><th scope=\"col\">Requested by</th><th scope=\"col\">Connection</th><th scope=\"col\">Statement (masked)</th><th scope=\"col\">Classification</th><th scope=\"col\">Rule</th><th scope=\"col\">Waiting</th></tr></thead><tbody>");
        for review in commands {
            review_link(&mut html, viewer, review);
            html.raw("<td data-label=\"Requested by\">")
                .text(&review.identity)
                .raw("</td><td data-label=\"Connection\">")
                .text(&review.connection)
                .raw("</td><td data-label=\"Statement\"><pre class=\"statement\">")
                .text(&review.statement)
                .raw("</pre></td><td data-label=\"Classification\">");
            classification(&mut html, review);
            html.raw("</td>");
            rule_cell(&mut html, web, review);
            html.raw("<td data-label=\"Waiting\">")
                .text(&duration(now - review.created_at))
                .raw("</td></tr>");
        }
        html.raw("</tbody></table>");
    }
    if !requests.is_empty() {
        html.raw("<h2 id=\"access-requests\">Access requests</h2><table class=\"stack\" aria-labelledby=\"access-requests\"><caption class=\"muted\">")
            .number(i64::try_from(requests.len()).unwrap_or(i64::MAX))
            .raw(" waiting</caption><thead><tr><th scope=\"col\">Request</th><th scope=\"col\">Requested by</th><th scope=\"col\">Connection</th><th scope=\"col\">For</th><th scope=\"col\">What is asked</th><th scope=\"col\">Rule</th><th scope=\"col\">Waiting</th></tr></thead><tbody>");
        for review in requests {
            review_link(&mut html, viewer, review);
            html.raw("<td data-label=\"Requested by\">")
                .text(&review.identity)
                .raw("</td><td data-label=\"Connection\">")
                .text(&review.connection)
                .raw("</td><td data-label=\"For\">")
                .text(&review.duration_seconds.map(duration).unwrap_or_default())
                .raw("</td><td data-label=\"What is asked\">")
                .text(&review.statement)
                .raw("</td>");
            rule_cell(&mut html, web, review);
            html.raw("<td data-label=\"Waiting\">")
                .text(&duration(now - review.created_at))
                .raw("</td></tr>");
        }
        html.raw("</tbody></table>");
    }
    html
}

/// A queue row's first cell: the link to the review.
fn review_link(html: &mut Html, viewer: &SignIn, review: &ReviewRecord) {
    html.raw("<tr data-review=\"")
        .text(&review.id)
        .raw("\" data-kind=\"")
        .text(&review.kind)
        .raw("\"><td data-label=\"Review\"><a href=\"/ui/reviews/")
        .text(&review.id)
        .raw("\">")
        .text(&review.id)
        .raw("</a>");
    if may_decide(viewer, review) {
        html.raw(" <span class=\"badge\">yours to decide</span>");
    }
    html.raw("</td>");
}

fn rule_cell(html: &mut Html, web: &Web, review: &ReviewRecord) {
    html.raw("<td data-label=\"Rule\"><code>")
        .text(&review.rule)
        .raw("</code>");
    if let Some(description) = rule_description(web, review) {
        html.raw("<br><span class=\"muted\">")
            .text(&description)
            .raw("</span>");
    }
    if review.require_mfa {
        html.raw(" <span class=\"badge\">MFA</span>");
    }
    html.raw("</td>");
}

/// `GET /ui/approvals`.
pub async fn queue_page(
    State(web): State<WebState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    let reviews = pending(&web, &viewer).await?;
    let mut body = Html::new();
    flash(&mut body, done.done.as_deref(), done.review.as_deref());
    body.raw("<p class=\"muted\">Commands held for review that you may decide")
        .raw(if viewer.roles.auditor {
            " (as an auditor you see every pending review)"
        } else {
            ""
        })
        .raw(". The list updates by itself; <noscript>without JavaScript, reload the page to see new ones; </noscript>open a review to approve or deny it.</p>")
        .raw("<div id=\"queue\" aria-live=\"polite\" hx-ext=\"sse\" sse-connect=\"/ui/approvals/stream\" sse-swap=\"queue\">")
        .append(&queue_fragment(&web, &viewer, &reviews))
        .raw("</div>");
    Ok(page("Approvals", Nav::Approvals, &viewer, &body))
}

/// `GET /ui/approvals/stream`: the queue as server-sent events (`queue`),
/// sent when its reviews change (and every [`STREAM_REFRESH`]); ends when
/// the sign-in does.
pub async fn stream(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    let cookie = crate::sign_ins::cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    struct Cursor {
        web: WebState,
        viewer: Arc<SignIn>,
        cookie: String,
        last_key: Option<String>,
        last_sent: Instant,
    }
    let start = Cursor {
        web,
        viewer,
        cookie,
        last_key: None,
        last_sent: Instant::now(),
    };
    let events = futures_util::stream::unfold(start, |mut cursor| async move {
        loop {
            // Woken at once when this process creates or decides a review
            // from here on (registered before the store is read, so none is
            // missed between the read and the wait).
            let web = Arc::clone(&cursor.web);
            let changed = web.state.reviews_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // The sign-in ended (signed out, expired, token revoked): stop.
            cursor.web.viewer_by_cookie(&cursor.cookie).await?;
            if let Ok(reviews) = pending(&cursor.web, &cursor.viewer).await {
                let key: String = reviews
                    .iter()
                    .map(|review| format!("{}:{};", review.id, review.status))
                    .collect();
                let changed = cursor.last_key.as_deref() != Some(key.as_str());
                if changed || cursor.last_sent.elapsed() >= STREAM_REFRESH {
                    let first = cursor.last_key.is_none();
                    cursor.last_key = Some(key);
                    cursor.last_sent = Instant::now();
                    // The page already shows the queue as it was loaded;
                    // the first look only sets the baseline, unless it
                    // is already different from an empty one.
                    if !first || !reviews.is_empty() {
                        let fragment = queue_fragment(&cursor.web, &cursor.viewer, &reviews);
                        let event = Event::default()
                            .event("queue")
                            .data(fragment.into_string().replace('\n', " "));
                        return Some((Ok::<Event, std::convert::Infallible>(event), cursor));
                    }
                }
            }
            // The next poll finds what other replicas did.
            tokio::select! {
                () = tokio::time::sleep(STREAM_POLL) => {}
                () = &mut changed => {}
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

impl Web {
    /// The sign-in a cookie names, checked as on every request.
    async fn viewer_by_cookie(self: &Arc<Self>, cookie: &str) -> Option<Arc<SignIn>> {
        let mut headers = HeaderMap::new();
        let value = format!("{SESSION_COOKIE}={cookie}");
        headers.insert(axum::http::header::COOKIE, value.parse().ok()?);
        self.viewer(&headers).await.ok()
    }
}

/// `GET /ui/reviews/{id}`.
pub async fn review_page(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let viewer = web.viewer(&headers).await?;
    let identity = (!viewer.roles.auditor).then(|| viewer.identity.clone());
    let review_id = id.clone();
    let review = web
        .blocking(move |state| state.show_review(identity.as_ref(), &review_id))
        .await?;
    let now = now_unix();
    let mut body = Html::new();
    body.raw("<dl class=\"facts\"><dt>Status</dt><dd data-status=\"")
        .text(&review.status)
        .raw("\">")
        .text(&review.status)
        .raw("</dd><dt>Requested by</dt><dd>")
        .text(&review.identity)
        .raw("</dd><dt>Connection</dt><dd>")
        .text(&review.connection)
        .raw("</dd><dt>Classification</dt><dd>");
    classification(&mut body, &review);
    body.raw("</dd><dt>Rule</dt><dd><code>")
        .text(&review.rule)
        .raw("</code> (policy v")
        .number(review.policy_version)
        .raw(")");
    if let Some(description) = rule_description(&web, &review) {
        body.raw(": ").text(&description);
    }
    body.raw("</dd><dt>Approvers</dt><dd>")
        .text(&review.approvers.join(", "))
        .raw(" · ")
        .number(review.min_approvals)
        .raw(" approval(s) needed")
        .raw(if review.require_mfa {
            " · with MFA"
        } else {
            ""
        })
        .raw("</dd><dt>Requested</dt><dd>")
        .text(&time(review.created_at))
        .raw(" (")
        .text(&duration(now - review.created_at))
        .raw(" ago)</dd><dt>Expires</dt><dd>")
        .text(&time(review.expires_at))
        .raw("</dd>");
    if let Some(session) = &review.session_id {
        body.raw("<dt>Session</dt><dd><code>")
            .text(session)
            .raw("</code></dd>");
    }
    for decision in &review.decisions {
        body.raw("<dt>Decision</dt><dd>")
            .text(&serde_json::to_string(decision).unwrap_or_default())
            .raw("</dd>");
    }
    if let Some(reason) = &review.reason {
        body.raw("<dt>Reason</dt><dd>").text(reason).raw("</dd>");
    }
    body.raw("</dl><h2>Statement (masked)</h2><pre class=\"statement\">")
        .text(&review.statement)
        .raw("</pre>");
    if review.status == "pending" && may_decide(&viewer, &review) {
        decision_forms(&mut body, &viewer, &review);
    } else if review.status == "pending" {
        body.raw("<p class=\"muted\">You cannot decide this review: ")
            .raw(if review.identity == viewer.identity.name {
                "you requested it."
            } else {
                "you are in none of its approver groups."
            })
            .raw("</p>");
    }
    if let Some(session) = review.session_id.clone() {
        recent_commands(&web, &mut body, session).await;
    }
    Ok(page(
        &format!("Review {}", review.id),
        Nav::Approvals,
        &viewer,
        &body,
    ))
}

fn decision_forms(body: &mut Html, viewer: &SignIn, review: &ReviewRecord) {
    body.raw("<h2>Decide</h2><form class=\"decide\" method=\"post\" action=\"/ui/reviews/")
        .text(&review.id)
        .raw("/approve\">");
    csrf_field(body, viewer);
    body.raw("<label for=\"comment\">Comment (optional)</label><input id=\"comment\" name=\"comment\" type=\"text\" maxlength=\"500\">");
    if review.require_mfa {
        body.raw("<label for=\"totp\">TOTP code (this rule requires MFA)</label><input id=\"totp\" name=\"totp\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" maxlength=\"6\" required>");
    }
    body.raw("<button type=\"submit\">Approve</button></form>")
        .raw("<form class=\"decide\" method=\"post\" action=\"/ui/reviews/")
        .text(&review.id)
        .raw("/deny\">");
    csrf_field(body, viewer);
    body.raw("<label for=\"reason\">Reason for denying</label><input id=\"reason\" name=\"reason\" type=\"text\" maxlength=\"500\" required>")
        .raw("<button type=\"submit\" class=\"danger\">Deny</button></form>");
}

/// The last commands of the review's session (masked, as recorded).
async fn recent_commands(web: &Arc<Web>, body: &mut Html, session: String) {
    let Ok(detail) = web
        .blocking(move |state| state.session_detail(&session))
        .await
    else {
        return;
    };
    body.raw("<h2>Recent commands in this session</h2>");
    let skip = detail.timeline.len().saturating_sub(10);
    let entries: Vec<_> = detail.timeline.iter().skip(skip).collect();
    if entries.is_empty() {
        body.raw("<p class=\"muted\">None recorded yet.</p>");
        return;
    }
    body.raw("<table class=\"stack\"><thead><tr><th scope=\"col\">At</th><th scope=\"col\">Statement</th><th scope=\"col\">Decision</th></tr></thead><tbody>");
    for entry in entries {
        body.raw("<tr><td data-label=\"At\">")
            .text(&format!("+{:.0} ms", entry.offset_ms))
            .raw("</td><td data-label=\"Statement\"><pre class=\"statement\">")
            .text(&entry.statement)
            .raw("</pre></td><td data-label=\"Decision\">")
            .text(&entry.decision);
        if let Some(refusal) = &entry.refusal {
            body.raw(": ").text(refusal);
        }
        body.raw("</td></tr>");
    }
    body.raw("</tbody></table>");
}

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: Option<String>,
    comment: Option<String>,
    totp: Option<String>,
}

fn filled(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

/// `POST /ui/reviews/{id}/approve`.
pub async fn approve(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Result<Response, WebError> {
    let viewer = web.poster(&headers, form.csrf.as_deref()).await?;
    let approver = viewer.identity.clone();
    let comment = filled(form.comment);
    let totp = filled(form.totp);
    let review_id = id.clone();
    let outcome = web
        .blocking(move |state| {
            state.decide_review(
                &approver,
                &review_id,
                true,
                comment.as_deref(),
                totp.as_deref(),
            )
        })
        .await?;
    tracing::info!(identity = %viewer.identity.name, review = %id, "web UI: review approved");
    let status = outcome
        .get("status")
        .and_then(|status| status.as_str())
        .unwrap_or("approved");
    if status == "pending" {
        // More approvals are needed: back to the review.
        return Ok(redirect(&format!("/ui/reviews/{id}"), None));
    }
    Ok(redirect(
        &format!("/ui/approvals?done=approved&review={id}"),
        None,
    ))
}

#[derive(Deserialize)]
pub struct DenyForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// `POST /ui/reviews/{id}/deny`.
pub async fn deny(
    State(web): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DenyForm>,
) -> Result<Response, WebError> {
    let viewer = web.poster(&headers, form.csrf.as_deref()).await?;
    let Some(reason) = filled(form.reason) else {
        return Err(WebError::BadRequest("a denial needs a reason".into()));
    };
    let approver = viewer.identity.clone();
    let review_id = id.clone();
    web.blocking(move |state| {
        state.decide_review(&approver, &review_id, false, Some(&reason), None)
    })
    .await?;
    tracing::info!(identity = %viewer.identity.name, review = %id, "web UI: review denied");
    Ok(redirect(
        &format!("/ui/approvals?done=denied&review={id}"),
        None,
    ))
}
