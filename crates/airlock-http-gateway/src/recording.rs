//! What the audit log keeps of one HTTP request: the `command` event
//! (recorded before the request is forwarded, or with its refusal) and the
//! `command.result` event (status, duration, bytes, a masked sample of
//! the response). The shapes follow the SQL records (`seq`, `message`,
//! `statement`, `decision`, `refusal`; `status`, `tags`, `rows`,
//! `duration_us`, `sample`, `masked`) so `airlock session show`, `replay`
//! and `export` read them unchanged. The statement is `METHOD path?query`
//! through the mask plan; the request's headers and body are not kept
//! (they may carry secrets of their own). A Kubernetes request's record
//! (`message: kubernetes`) also carries its verb, group, version,
//! resource, subresource, namespace and name.

use std::collections::BTreeMap;

use serde_json::Value;

use airlock_core::events::{event, EventKind};
use airlock_core::gate::{Decision, Verdict};
use airlock_mask::{MaskPlan, MaskStats};
use airlock_store::NewEvent;
use airlock_types::command::CommandKind;
use airlock_types::{Command, KubernetesRequest};

/// Who, where: the context every record of a request carries.
pub struct RecordContext<'a> {
    pub session_id: &'a str,
    pub identity: &'a str,
    pub connection: &'a str,
}

#[derive(Debug, serde::Serialize)]
struct CommandRecord<'a> {
    seq: u64,
    connection: &'a str,
    /// `http`, the message kind of this protocol.
    message: &'static str,
    statement: &'a str,
    method: &'a str,
    path: &'a str,
    parameters: u64,
    /// `forward` or `refuse`.
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    /// A Kubernetes request: what it was, as the gate saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<KubernetesRecord<'a>>,
}

/// The Kubernetes side of a `command` record: verb, resource, namespace
/// and name (the last two through the mask plan, like the path).
#[derive(Debug, serde::Serialize)]
struct KubernetesRecord<'a> {
    verb: &'static str,
    group: &'a str,
    version: &'a str,
    resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subresource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    access: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    impersonates: bool,
}

fn kubernetes_record<'a>(
    request: &'a KubernetesRequest,
    mask: Option<&MaskPlan>,
) -> KubernetesRecord<'a> {
    KubernetesRecord {
        verb: request.verb.as_str(),
        group: &request.group,
        version: &request.version,
        resource: &request.resource,
        subresource: request.subresource.as_deref(),
        namespace: request
            .namespace
            .as_deref()
            .map(|text| masked(mask, text).into_owned()),
        name: request
            .name
            .as_deref()
            .map(|text| masked(mask, text).into_owned()),
        access: request.effective_access().as_str(),
        dry_run: request.dry_run,
        impersonates: request.impersonates,
    }
}

fn masked<'t>(mask: Option<&MaskPlan>, text: &'t str) -> std::borrow::Cow<'t, str> {
    match mask {
        Some(plan) => plan.mask_text(text, &mut MaskStats::new()),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The longest prefix of `text` within `max` bytes, on a char boundary
/// (`recording.max_statement_bytes`: a reviewed request's body is part of
/// what is shown).
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// The `command` event of a request with this decision.
pub fn command_event(
    context: &RecordContext<'_>,
    command: &Command,
    path: &str,
    shown: &str,
    decision: &Decision,
    max_statement_bytes: usize,
) -> NewEvent {
    let mask = decision.mask.as_deref();
    let statement = masked(mask, cut(shown, max_statement_bytes));
    let masked_path = masked(mask, path);
    let refusal = match &decision.verdict {
        Verdict::Forward => None,
        Verdict::Refuse(refusal) => Some(masked(mask, refusal.message())),
    };
    let method = command.text.split(' ').next().unwrap_or("");
    let kubernetes = match &command.kind {
        CommandKind::Kubernetes(request) => Some(kubernetes_record(request, mask)),
        _ => None,
    };
    let record = CommandRecord {
        seq: 1,
        connection: context.connection,
        message: if kubernetes.is_some() {
            "kubernetes"
        } else {
            "http"
        },
        statement: &statement,
        method,
        path: &masked_path,
        parameters: 0,
        decision: if refusal.is_some() {
            "refuse"
        } else {
            "forward"
        },
        policy: (!decision.details.is_null()).then_some(&decision.details),
        refusal: refusal.as_deref(),
        kubernetes,
    };
    event(
        EventKind::Command,
        Some(context.session_id),
        Some(context.identity),
        &record,
    )
}

/// The outcome of a forwarded request.
#[derive(Debug, serde::Serialize)]
pub struct ResultRecord {
    pub seq: u64,
    /// `ok` (the upstream answered; any status), or `error` (no answer, or
    /// the body could not be relayed).
    pub status: &'static str,
    /// `HTTP 200` and the like, as SQL results carry their command tags.
    pub tags: Vec<String>,
    pub rows: u64,
    pub http_status: Option<u16>,
    pub duration_us: u64,
    /// Bytes of the response body sent to the client.
    pub bytes: u64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub columns: Vec<String>,
    /// The first bytes of the body as the client got them (masked, the
    /// credential scrubbed), as text.
    pub body_sample: String,
    pub sample: Vec<Vec<Option<String>>>,
    pub sample_truncated: bool,
    /// Values masked, per detector (`field` for field rules).
    pub masked: BTreeMap<String, u64>,
}

impl ResultRecord {
    /// A result for a response with `status`.
    pub fn answered(http_status: u16, duration_us: u64) -> Self {
        Self {
            seq: 1,
            status: "ok",
            tags: vec![format!("HTTP {http_status}")],
            rows: 0,
            http_status: Some(http_status),
            duration_us,
            bytes: 0,
            error_code: None,
            error_message: None,
            columns: Vec::new(),
            body_sample: String::new(),
            sample: Vec::new(),
            sample_truncated: false,
            masked: BTreeMap::new(),
        }
    }

    /// A result for a request that failed (`code` is the HTTP status the
    /// client got).
    pub fn failed(code: u16, message: String, duration_us: u64) -> Self {
        let mut record = Self::answered(code, duration_us);
        record.status = "error";
        record.tags.clear();
        record.http_status = None;
        record.error_code = Some(code.to_string());
        record.error_message = Some(message);
        record
    }

    /// Fills in what the body amounted to.
    pub fn with_body(mut self, bytes: u64, sample: &[u8], limit: usize, stats: &MaskStats) -> Self {
        self.bytes = bytes;
        self.body_sample = String::from_utf8_lossy(sample).into_owned();
        self.sample_truncated = bytes > limit as u64;
        if !self.body_sample.is_empty() {
            self.columns = vec!["body".into()];
            self.sample = vec![vec![Some(self.body_sample.clone())]];
        }
        self.masked = stats
            .iter()
            .map(|(detector, count)| (detector.to_string(), count))
            .collect();
        self
    }

    /// The `command.result` event.
    pub fn event(&self, context: &RecordContext<'_>) -> NewEvent {
        event(
            EventKind::CommandResult,
            Some(context.session_id),
            Some(context.identity),
            self,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_statement_within_bounds_and_mask_it() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
        let mut decision = Decision::forward();
        decision.mask = Some(std::sync::Arc::new(
            MaskPlan::compile(&airlock_mask::MaskSpec {
                detectors: vec!["email".into()],
                ..airlock_mask::MaskSpec::default()
            })
            .unwrap(),
        ));
        let context = RecordContext {
            session_id: "s-1",
            identity: "agent-7",
            connection: "api",
        };
        let shown = "POST /v1/users\n\n{\"email\": \"ann@example.com\"}";
        let command = Command::new(
            "POST /v1/users",
            CommandKind::Http(airlock_types::HttpRequest::new("POST", "/v1/users")),
        );
        let event = command_event(&context, &command, "/v1/users", shown, &decision, 1024);
        let text = event.data.as_str().to_string();
        assert!(!text.contains("ann@example.com"), "{text}");
        assert!(text.contains("\"decision\":\"forward\""), "{text}");
        let short = command_event(&context, &command, "/v1/users", shown, &decision, 8);
        let text = short.data.as_str().to_string();
        assert!(text.contains("\"statement\":\"POST /v1\""), "{text}");
        assert!(text.contains("\"method\":\"POST\""), "{text}");

        let path = "/api/v1/namespaces/ann@example.com/pods";
        let info = airlock_k8s::parse_request("GET", path, None).unwrap();
        let command = Command::new(
            format!("GET {path}"),
            CommandKind::Kubernetes(info.into_request(false)),
        );
        let event = command_event(&context, &command, path, &command.text, &decision, 1024);
        let record: serde_json::Value = serde_json::from_str(event.data.as_str()).unwrap();
        assert_eq!(record["message"], "kubernetes");
        assert_eq!(record["kubernetes"]["verb"], "list");
        assert_eq!(record["kubernetes"]["resource"], "pods");
        assert_eq!(record["kubernetes"]["access"], "read");
        assert!(!event.data.as_str().contains("ann@example.com"), "{record}");
    }
}
