//! The whole decision in the explain playground: the steps a session of
//! the identity would pass now, around the policy. The token named (found,
//! unrevoked, unexpired, scoped to the connection), admission to the
//! connection (a `jit` one needs an access grant or a standing access
//! rule), an MCP tool's pin, and the gate's decision with the rate limits
//! as they stand.
//!
//! Every step calls the code a session runs (`auth::check_token_record`,
//! `GatewayState::connection_admission`, `pins::call_refusal`,
//! `Gate::preview`); this module only gathers their answers and renders
//! them. **Invariant:** nothing here changes state: no rate-limit token is
//! spent, no review is opened, nothing is recorded.

use std::sync::Arc;

use airlock_core::access::Admission;
use airlock_core::auth::{check_token_record, AuthFailure};
use airlock_core::gate::{Gate, Preview, Refusal, Verdict};
use airlock_types::{Command, CommandKind, ConnectionInfo, Identity, McpCall, Protocol};

use crate::errors::WebError;
use crate::html::Html;
use crate::WebState;

/// One step and how it went.
pub struct Step {
    /// `token`, `admission`, `tool`, `rate_limit`.
    pub name: &'static str,
    pub passed: bool,
    /// What the step found, for people.
    pub text: String,
}

/// The steps, and where the walk stopped.
pub struct Walk {
    pub steps: Vec<Step>,
    /// The gate's decision, when the walk reached it.
    pub preview: Option<Preview>,
}

/// The identity a stored token names, checked for `connection` as a login
/// checks it; `Err` when the token does not get in (the step says why).
pub async fn identity_from_token(
    web: &WebState,
    token_id: &str,
    connection: &str,
) -> Result<(Option<Identity>, Step), WebError> {
    let id = token_id.to_string();
    let record = web
        .blocking(move |state| Ok(state.store.token(&id)?))
        .await?;
    let Some(record) = record else {
        return Ok((
            None,
            Step {
                name: "token",
                passed: false,
                text: format!("no token has the id {token_id:?}"),
            },
        ));
    };
    Ok(match check_token_record(&record, connection) {
        Ok(authenticated) => (
            Some(authenticated.identity),
            Step {
                name: "token",
                passed: true,
                text: format!(
                    "token {} of {} is valid and scoped to {connection}",
                    record.id, record.identity
                ),
            },
        ),
        Err(failure) => (
            // What the refusal is about still shows the token's identity.
            None,
            Step {
                name: "token",
                passed: false,
                text: token_refusal(failure, &record.connections, connection),
            },
        ),
    })
}

fn token_refusal(failure: AuthFailure, scopes: &[String], connection: &str) -> String {
    match failure {
        AuthFailure::OutOfScope => format!(
            "the token is not scoped to {connection} (its connections: {}); a login is refused",
            scopes.join(", ")
        ),
        AuthFailure::Revoked => "the token is revoked; a login is refused".into(),
        AuthFailure::Expired => "the token has expired; a login is refused".into(),
        other => format!("the token is refused ({})", other.as_str()),
    }
}

/// Admission, the tool pin and the gate for `identity` on `connection`,
/// stopping at the first step that refuses.
pub async fn walk(
    web: &WebState,
    identity: Identity,
    connection: ConnectionInfo,
    command: &Command,
    mut steps: Vec<Step>,
) -> Result<Walk, WebError> {
    let (name, who) = (connection.name.clone(), identity.clone());
    let admission = web
        .blocking(move |state| {
            let Some(resolved) = state.resolve_connection(&name)? else {
                return Ok(Err(format!("connection {name:?} is not configured")));
            };
            Ok(state
                .connection_admission(&who, &resolved)
                .map_err(|refusal| refusal.to_string()))
        })
        .await?;
    match admission {
        Err(message) => {
            steps.push(Step {
                name: "admission",
                passed: false,
                text: message,
            });
            return Ok(Walk {
                steps,
                preview: None,
            });
        }
        Ok(admitted) => steps.push(Step {
            name: "admission",
            passed: true,
            text: match admitted {
                None => "a standing connection: every token scoped to it gets in".into(),
                Some(Admission::Standing { rule }) => {
                    format!("admitted by the standing access rule {rule:?}")
                }
                Some(Admission::Grant(grant)) => format!(
                    "admitted by access grant {} (rule {:?}) until {}",
                    grant.id,
                    grant.rule,
                    crate::layout::time(grant.expires_at)
                ),
            },
        }),
    }
    if let (
        Protocol::Mcp,
        CommandKind::Mcp(McpCall {
            tool: Some(tool), ..
        }),
    ) = (connection.protocol, &command.kind)
    {
        let held = airlock_mcp::proxy::pins::call_refusal(&web.state, &connection.name, tool).await;
        let refused = held.is_some();
        steps.push(Step {
            name: "tool",
            passed: !refused,
            text: held
                .unwrap_or_else(|| format!("tool {tool:?} has no definition waiting for approval")),
        });
        if refused {
            return Ok(Walk {
                steps,
                preview: None,
            });
        }
    }
    let gate = Gate::new(Arc::clone(&web.state), identity, connection);
    let preview = gate.preview(command, &command.text);
    for limit in &preview.rate_limits {
        steps.push(Step {
            name: "rate_limit",
            passed: limit.left.is_ok(),
            text: match limit.left {
                Ok(left) => format!(
                    "rule {:?}: {left} of {} commands per minute left now",
                    limit.rule, limit.per_minute
                ),
                Err(seconds) => format!(
                    "rule {:?}: no command left of {} per minute; one more in {seconds:.1} s",
                    limit.rule, limit.per_minute
                ),
            },
        });
    }
    Ok(Walk {
        steps,
        preview: Some(preview),
    })
}

/// The final verdict's name (`data-verdict`) and the CSS class of its
/// badge.
pub fn final_verdict(walk: &Walk) -> (&'static str, &'static str) {
    let Some(preview) = &walk.preview else {
        let step = walk
            .steps
            .iter()
            .find(|step| !step.passed)
            .map_or("admission", |step| step.name);
        return match step {
            "token" => ("refused_token", "deny"),
            "tool" => ("refused_tool", "deny"),
            _ => ("refused_admission", "deny"),
        };
    };
    match &preview.decision.verdict {
        Verdict::Forward => ("allow", "allow"),
        Verdict::Refuse(Refusal::Denied { .. }) => ("deny", "deny"),
        Verdict::Refuse(Refusal::Review { .. }) => ("review", "review"),
        Verdict::Refuse(Refusal::RateLimited { .. }) => ("rate_limited", "deny"),
        Verdict::Refuse(_) => ("unavailable", "deny"),
    }
}

/// The decision heading, what the client would see, and the steps.
pub fn render(body: &mut Html, walk: &Walk, version: i64) {
    let (verdict, class) = final_verdict(walk);
    body.raw("<section class=\"decision\" aria-labelledby=\"decision\" data-verdict=\"")
        .raw(verdict)
        .raw("\"><h2 id=\"decision\">Decision: <span class=\"verdict ")
        .raw(class)
        .raw("\">")
        .raw(match verdict {
            "refused_token" => "refused at login",
            "refused_admission" => "refused at admission",
            "refused_tool" => "tool held",
            "rate_limited" => "rate limited",
            other => other,
        })
        .raw("</span></h2><dl class=\"facts\"><dt>Policy</dt><dd>v")
        .number(version)
        .raw("</dd>");
    let message = match &walk.preview {
        Some(preview) => match &preview.decision.verdict {
            Verdict::Refuse(refusal) => Some(refusal.message().to_string()),
            Verdict::Forward => None,
        },
        None => walk
            .steps
            .iter()
            .find(|step| !step.passed)
            .map(|step| step.text.clone()),
    };
    if let Some(message) = message {
        body.raw("<dt>The client would see</dt><dd><code data-message>")
            .text(&message)
            .raw("</code></dd>");
    }
    if let Some(review) = walk
        .preview
        .as_ref()
        .and_then(|preview| preview.decision.review.as_ref())
    {
        body.raw("<dt>Approvers</dt><dd>")
            .text(&review.approvers.join(", "))
            .raw(if review.require_mfa {
                " (with TOTP)"
            } else {
                ""
            })
            .raw(", ")
            .number(i64::from(review.min_approvals))
            .raw(" approval(s)</dd>");
    }
    body.raw("</dl><h3>Steps</h3><ol class=\"steps\">");
    for step in &walk.steps {
        body.raw("<li data-step=\"")
            .raw(step.name)
            .raw("\" data-passed=\"")
            .raw(if step.passed { "yes" } else { "no" })
            .raw("\">")
            .raw(if step.passed {
                "<span class=\"held\">passes</span> "
            } else {
                "<span class=\"failed\">refuses</span> "
            })
            .text(&step.text)
            .raw("</li>");
    }
    if walk.preview.is_some() {
        body.raw("<li data-step=\"policy\">the live policy, rule by rule below</li>");
    }
    body.raw("</ol></section>");
}
