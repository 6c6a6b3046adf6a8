//! The explain playground (auditors and admins): pick an identity (a
//! token by its id, or a name, kind and groups) and a connection, paste a
//! statement or a request, and see what the gateway would decide for it
//! now, step by step, with every rule and condition of the live policy.
//!
//! Nothing here decides: the command is built by the code each protocol
//! builds it with (`airlock_sql::classify` in the connection's dialect,
//! `airlock_k8s::parse_request` for Kubernetes, `airlock_mcp::proxy::
//! message::command` for MCP, `HttpRequest` for HTTP); the steps around
//! the policy (token scope, JIT admission, tool pins, rate limits) are the
//! session's own checks ([`crate::explain_steps`]); the decision is the
//! gate's (`Gate::preview`, the `decide` of every session with the rate
//! limits read, not spent), and the rule table is `airlock_policy::
//! explain`, which runs the same `evaluate`. A POST with the CSRF token
//! (the pasted text stays out of URLs and the logs); it changes nothing.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use airlock_policy::{explain, DecisionInput, Explanation, Verdict};
use airlock_types::{AuthMethod, Command, ConnectionInfo, Identity, IdentityKind, Protocol};
use airlock_types::{CommandKind, HttpRequest};

use crate::errors::WebError;
use crate::explain_steps;
use crate::html::Html;
use crate::layout::{csrf_field, page, Nav};
use crate::sign_ins::{Role, SignIn};
use crate::WebState;

/// Longest text explained.
const MAX_TEXT_BYTES: usize = 64 * 1024;

#[derive(Deserialize, Default)]
pub struct ExplainForm {
    csrf: Option<String>,
    /// A token's id: the identity, groups and scope are the token's.
    token: Option<String>,
    identity: Option<String>,
    kind: Option<String>,
    groups: Option<String>,
    connection: Option<String>,
    text: Option<String>,
}

/// `GET /ui/policies/explain`.
pub async fn form(State(web): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let viewer = web
        .viewer_as(&headers, Role::Auditor, "the explain playground is")
        .await?;
    let connections = connections(&web).await?;
    let body = form_html(&viewer, &connections, &ExplainForm::default());
    Ok(page("Explain a decision", Nav::Policies, &viewer, &body))
}

/// `POST /ui/policies/explain`.
pub async fn run(
    State(web): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<ExplainForm>,
) -> Result<Response, WebError> {
    let viewer = web
        .poster_as(
            &headers,
            form.csrf.as_deref(),
            Role::Auditor,
            "the explain playground is",
        )
        .await?;
    let connections = connections(&web).await?;
    let token = form.token.as_deref().unwrap_or("").trim().to_string();
    let name = form.identity.as_deref().unwrap_or("").trim().to_string();
    if name.is_empty() && token.is_empty() {
        return Err(WebError::BadRequest("name the identity or a token".into()));
    }
    let kind = IdentityKind::parse(form.kind.as_deref().unwrap_or("agent"))
        .ok_or_else(|| WebError::BadRequest("kind is agent, human or service".into()))?;
    let text = form.text.as_deref().unwrap_or("");
    if text.trim().is_empty() {
        return Err(WebError::BadRequest(
            "paste a statement or a request".into(),
        ));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(WebError::BadRequest(format!(
            "the text is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    let chosen = form.connection.as_deref().unwrap_or("");
    let connection = connections
        .iter()
        .find(|connection| connection.name == chosen)
        .cloned()
        .ok_or_else(|| WebError::BadRequest("choose a connection".into()))?;
    let read_tools = web
        .state
        .config
        .connection(&connection.name)
        .map(|config| config.read_tools.clone())
        .unwrap_or_default();
    let command = command_for(connection.protocol, text, &read_tools)?;
    let (identity, steps) = if token.is_empty() {
        (
            Some(typed_identity(name, kind, form.groups.as_deref())),
            Vec::new(),
        )
    } else {
        let (identity, step) =
            explain_steps::identity_from_token(&web, &token, &connection.name).await?;
        (identity, vec![step])
    };
    let live = web.state.policy.current();
    let mut body = form_html(&viewer, &connections, &form);
    let walk = match &identity {
        Some(identity) => {
            explain_steps::walk(&web, identity.clone(), connection.clone(), &command, steps).await?
        }
        None => explain_steps::Walk {
            steps,
            preview: None,
        },
    };
    explain_steps::render(&mut body, &walk, live.version);
    match (&live.policy, &identity) {
        (None, _) => {
            body.raw("<div class=\"error\" role=\"alert\"><p>No policy is live, so every command is refused: ")
                .text(live.problem.as_deref().unwrap_or("none was applied"))
                .raw("</p></div>");
        }
        (Some(policy), Some(identity)) => {
            let explanation = explain(
                policy,
                &DecisionInput {
                    identity,
                    connection: &connection,
                    command: &command,
                    now_unix: airlock_store::now_unix(),
                },
            );
            render(&mut body, &explanation);
        }
        (Some(_), None) => {}
    }
    Ok(page("Explain a decision", Nav::Policies, &viewer, &body))
}

/// The identity typed into the form (no token: its scope is not checked).
fn typed_identity(name: String, kind: IdentityKind, groups: Option<&str>) -> Identity {
    Identity {
        name,
        kind,
        groups: groups
            .unwrap_or("")
            .split([',', ' '])
            .map(str::trim)
            .filter(|group| !group.is_empty())
            .map(str::to_string)
            .collect(),
        auth_method: AuthMethod::AirlockToken {
            token_id: "explain".into(),
        },
        expires_at: i64::MAX,
    }
}

/// The connections to choose from, as the policy sees them.
async fn connections(web: &WebState) -> Result<Vec<ConnectionInfo>, WebError> {
    web.blocking(|state| {
        Ok(state
            .all_connections()?
            .iter()
            .map(|connection| state.connection_info(connection))
            .collect())
    })
    .await
}

/// The command a protocol would build of `text`.
pub fn command_for(
    protocol: Protocol,
    text: &str,
    read_tools: &[String],
) -> Result<Command, WebError> {
    match protocol {
        Protocol::Postgres => Ok(airlock_sql::classify(airlock_sql::Dialect::Postgres, text)),
        Protocol::Mysql => Ok(airlock_sql::classify(airlock_sql::Dialect::Mysql, text)),
        Protocol::Http | Protocol::Kubernetes => {
            let line = text.lines().next().unwrap_or("").trim();
            let (method, target) = line.split_once(' ').ok_or_else(|| {
                WebError::BadRequest(
                    "write the request as METHOD /path, e.g. GET /api/v1/pods".into(),
                )
            })?;
            let method = method.trim().to_ascii_uppercase();
            let target = target.trim();
            let target = target.strip_suffix("HTTP/1.1").unwrap_or(target).trim_end();
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (target, None),
            };
            if protocol == Protocol::Http {
                return Ok(Command::new(
                    format!("{method} {path}"),
                    CommandKind::Http(HttpRequest::new(&method, path)),
                ));
            }
            let info = airlock_k8s::parse_request(&method, path, query)
                .map_err(|error| WebError::BadRequest(error.to_string()))?;
            Ok(Command::new(
                format!("{method} {path}"),
                CommandKind::Kubernetes(info.into_request(false)),
            ))
        }
        Protocol::Mcp => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                WebError::BadRequest(
                    "write the MCP request as JSON-RPC: {\"method\": \"tools/call\", \"params\": {\"name\": …, \"arguments\": {…}}}".into(),
                )
            })?;
            let method = value
                .get("method")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| WebError::BadRequest("the request has no method".into()))?;
            let empty = serde_json::Map::new();
            let params = value
                .get("params")
                .and_then(serde_json::Value::as_object)
                .unwrap_or(&empty);
            Ok(airlock_mcp::proxy::message::command(
                method, params, read_tools,
            ))
        }
    }
}

fn form_html(viewer: &SignIn, connections: &[ConnectionInfo], form: &ExplainForm) -> Html {
    let mut body = Html::new();
    body.raw("<p>What the gateway would decide for a command now: the token's scope, admission (access grants), an MCP tool's pin, the live policy rule by rule and the rate limits as they stand (read, not spent). Name a token to check its identity, groups and scope; without one the identity below is taken as typed.</p>")
        .raw("<form class=\"explain\" method=\"post\" action=\"/ui/policies/explain\">");
    csrf_field(&mut body, viewer);
    body.raw("<div class=\"fields\"><label>Token id <input type=\"text\" name=\"token\" maxlength=\"255\" value=\"")
        .text(form.token.as_deref().unwrap_or(""))
        .raw("\"></label><label>Identity <input type=\"text\" name=\"identity\" maxlength=\"255\" value=\"")
        .text(form.identity.as_deref().unwrap_or(""))
        .raw("\"></label><label>Kind <select name=\"kind\">");
    let kind = form.kind.as_deref().unwrap_or("agent");
    for option in ["agent", "human", "service"] {
        body.raw("<option");
        if option == kind {
            body.raw(" selected");
        }
        body.raw(">").raw(option).raw("</option>");
    }
    body.raw("</select></label><label>Groups <input type=\"text\" name=\"groups\" maxlength=\"1000\" value=\"")
        .text(form.groups.as_deref().unwrap_or(""))
        .raw("\"></label><label>Connection <select name=\"connection\" required>");
    for connection in connections {
        body.raw("<option value=\"")
            .text(&connection.name)
            .raw("\"");
        if form.connection.as_deref() == Some(connection.name.as_str()) {
            body.raw(" selected");
        }
        body.raw(">")
            .text(&connection.name)
            .raw(" (")
            .text(connection.protocol.as_str())
            .raw(")</option>");
    }
    body.raw("</select></label></div><label for=\"explain-text\">Statement or request (SQL; <code>METHOD /path</code> for HTTP and Kubernetes; JSON-RPC for MCP)</label>")
        .raw("<textarea id=\"explain-text\" name=\"text\" rows=\"5\" required>")
        .text(form.text.as_deref().unwrap_or(""))
        .raw("</textarea><button type=\"submit\">Explain</button></form>");
    body
}

fn verdict_badge(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "<span class=\"verdict allow\">allow</span>",
        Verdict::Deny { .. } => "<span class=\"verdict deny\">deny</span>",
        Verdict::Review { .. } => "<span class=\"verdict review\">review</span>",
    }
}

fn render(body: &mut Html, explanation: &Explanation) {
    let decision = &explanation.decision;
    body.raw(
        "<section aria-labelledby=\"policy-alone\"><h2 id=\"policy-alone\">The policy alone: ",
    )
    .raw(verdict_badge(&decision.verdict))
    .raw("</h2><dl class=\"facts\">");
    body.raw("<dt>Matching rules</dt><dd data-matched>");
    let matched: Vec<&str> = decision
        .matched_rules
        .iter()
        .map(|rule| rule.name.as_str())
        .collect();
    body.text(&if matched.is_empty() {
        "none (the default applies)".to_string()
    } else {
        matched.join(", ")
    })
    .raw("</dd>");
    if let Some(mask) = &decision.mask {
        body.raw("<dt>Masked in results</dt><dd><code>")
            .text(&serde_json::to_string(mask).unwrap_or_default())
            .raw("</code></dd>");
    }
    body.raw("</dl></section><h2>Statements</h2><table class=\"stack\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Classification</th><th scope=\"col\">Verdict</th><th scope=\"col\">Rules</th></tr></thead><tbody>");
    for statement in &explanation.statements {
        let classification = match (&statement.classification, &statement.request) {
            (Some(class), _) => serde_json::to_string(class).unwrap_or_default(),
            (None, Some(request)) => serde_json::to_string(request).unwrap_or_default(),
            (None, None) => String::new(),
        };
        body.raw("<tr><td data-label=\"#\">")
            .number(i64::try_from(statement.index).unwrap_or(0) + 1)
            .raw("</td><td data-label=\"Classification\"><code>")
            .text(&classification)
            .raw("</code></td><td data-label=\"Verdict\">")
            .raw(verdict_badge(&statement.verdict))
            .raw("</td><td data-label=\"Rules\">")
            .text(&statement.matched_rules.join(", "))
            .raw("</td></tr>");
    }
    body.raw("</tbody></table><h2>Rules</h2><table class=\"stack rules\"><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Action</th><th scope=\"col\">Matched</th><th scope=\"col\">Conditions</th></tr></thead><tbody>");
    for rule in &explanation.rules {
        body.raw("<tr");
        if rule.matched {
            body.raw(" class=\"matched\" data-matched-rule=\"")
                .text(&rule.name)
                .raw("\"");
        }
        body.raw("><td data-label=\"Rule\">")
            .text(&rule.name)
            .raw(" <span class=\"muted\">line ")
            .number(i64::try_from(rule.line).unwrap_or(0))
            .raw("</span></td><td data-label=\"Action\">")
            .text(&rule.action)
            .raw("</td><td data-label=\"Matched\">")
            .raw(if rule.matched { "yes" } else { "no" })
            .raw("</td><td data-label=\"Conditions\"><ul class=\"conditions\">");
        for condition in &rule.conditions {
            body.raw("<li>")
                .raw(if condition.held {
                    "<span class=\"held\">holds</span> "
                } else {
                    "<span class=\"failed\">fails</span> "
                })
                .text(&condition.text)
                .raw("</li>");
        }
        body.raw("</ul></td></tr>");
    }
    body.raw("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_types::Access;

    #[test]
    fn each_protocol_builds_its_own_command() {
        let sql = command_for(Protocol::Postgres, "delete from items where id = 1", &[]).unwrap();
        assert_eq!(sql.access(), Access::Write);
        let http = command_for(Protocol::Http, "get /status?x=1", &[]).unwrap();
        assert_eq!(http.text, "GET /status");
        assert_eq!(http.access(), Access::Read);
        let pods = command_for(
            Protocol::Kubernetes,
            "DELETE /api/v1/namespaces/a/pods/b",
            &[],
        )
        .unwrap();
        assert_eq!(pods.access(), Access::Write);
        let exec = command_for(
            Protocol::Kubernetes,
            "POST /api/v1/namespaces/a/pods/b/exec?command=sh",
            &[],
        )
        .unwrap();
        assert_eq!(exec.access(), Access::Admin);
        let tool = command_for(
            Protocol::Mcp,
            r#"{"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}}"#,
            &["read_file".to_string()],
        )
        .unwrap();
        assert_eq!(tool.access(), Access::Read);
        assert!(command_for(Protocol::Mcp, "not json", &[]).is_err());
        assert!(command_for(Protocol::Http, "GET", &[]).is_err());
    }
}
