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
//! resource, subresource, namespace, name and a port-forward's ports.

use airlock_core::command_record::{self, CommandResult, HttpOutcome, RecordScope};
use airlock_core::gate::Decision;
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
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    ports: &'a [u16],
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
        ports: &request.ports,
    }
}

fn masked<'t>(mask: Option<&MaskPlan>, text: &'t str) -> std::borrow::Cow<'t, str> {
    match mask {
        Some(plan) => plan.mask_text(text, &mut MaskStats::new()),
        None => std::borrow::Cow::Borrowed(text),
    }
}

impl RecordContext<'_> {
    /// Who, where and the bounds, for the core's records (an HTTP result
    /// keeps its body sample itself, within `http.max_masked_body_bytes`).
    pub fn scope(&self, max_statement_bytes: usize) -> RecordScope<'_> {
        RecordScope {
            session_id: self.session_id,
            identity: self.identity,
            connection: self.connection,
            sample_rows: 1,
            sample_bytes: usize::MAX,
            max_statement_bytes,
        }
    }
}

/// The `command` event of a request with this decision: the core's record
/// with the method, the path and, for Kubernetes, what the request is.
pub fn command_event(
    context: &RecordContext<'_>,
    command: &Command,
    path: &str,
    shown: &str,
    decision: &Decision,
    max_statement_bytes: usize,
) -> NewEvent {
    let mask = decision.mask.as_deref();
    let method = command.text.split(' ').next().unwrap_or("");
    let kubernetes = match &command.kind {
        CommandKind::Kubernetes(request) => {
            serde_json::to_value(kubernetes_record(request, mask)).ok()
        }
        _ => None,
    };
    command_record::command_event(
        &context.scope(max_statement_bytes),
        &command_record::CommandEntry {
            seq: 1,
            message: if kubernetes.is_some() {
                "kubernetes"
            } else {
                "http"
            },
            text: shown,
            parameters: 0,
            values: &[],
            decision,
            mask,
            request: Some((method, path)),
            kubernetes,
        },
    )
}

/// The outcome of a forwarded request: the core's result with the HTTP
/// status, the bytes sent and a sample of the body.
pub type ResultRecord = CommandResult;

/// How an HTTP outcome is filled in.
pub trait HttpResult: Sized {
    /// A result for a response with `status`.
    fn answered(http_status: u16, duration_us: u64) -> Self;
    /// A result for a request that failed (`code` is the HTTP status the
    /// client got).
    fn failed(code: u16, message: String, duration_us: u64) -> Self;
    /// Fills in what the body amounted to.
    fn with_body(self, bytes: u64, sample: &[u8], limit: usize, stats: &MaskStats) -> Self;
    /// Bytes of the body sent to the client.
    fn bytes(&self) -> u64;
}

impl HttpResult for CommandResult {
    fn answered(http_status: u16, duration_us: u64) -> Self {
        let mut result = CommandResult::new(1, "ok");
        result.tags = vec![format!("HTTP {http_status}")];
        result.duration_us = duration_us;
        result.http = Some(HttpOutcome {
            http_status: Some(http_status),
            ..HttpOutcome::default()
        });
        result
    }

    fn failed(code: u16, message: String, duration_us: u64) -> Self {
        let mut result = CommandResult::new(1, "error");
        result.duration_us = duration_us;
        result.error_code = Some(code.to_string());
        result.error_message = Some(message);
        result.http = Some(HttpOutcome::default());
        result
    }

    fn with_body(mut self, bytes: u64, sample: &[u8], limit: usize, stats: &MaskStats) -> Self {
        let body_sample = String::from_utf8_lossy(sample).into_owned();
        self.sample_truncated = bytes > limit as u64;
        if !body_sample.is_empty() {
            self.columns = vec!["body".into()];
            self.sample = vec![vec![Some(body_sample.clone())]];
        }
        self.count_masked(stats);
        let outcome = self.http.get_or_insert_with(HttpOutcome::default);
        outcome.bytes = bytes;
        outcome.body_sample = body_sample;
        self
    }

    fn bytes(&self) -> u64 {
        self.http.as_ref().map_or(0, |outcome| outcome.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_statement_within_bounds_and_mask_it() {
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
