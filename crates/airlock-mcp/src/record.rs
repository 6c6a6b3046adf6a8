//! The `mcp.tool_call` audit event: one per tool call, with its
//! arguments and any message masked by every built-in detector (a SQL text
//! may carry the very values its results would have masked). The SQL a
//! call ran is recorded by its own session (`command`, `command.result`).

use std::sync::Arc;

use airlock_core::events::{record, McpToolCalled};
use airlock_core::GatewayState;
use airlock_mask::{MaskPlan, MaskSpec, MaskStats, Style, BUILTIN_DETECTORS};
use serde_json::{Map, Value};

/// What one call did, for its record.
pub struct CallRecord<'a> {
    pub tool: &'a str,
    pub arguments: &'a Map<String, Value>,
    pub connection: Option<&'a str>,
    pub outcome: &'static str,
    pub message: Option<&'a str>,
    pub review: Option<&'a str>,
    pub rows: Option<u64>,
    pub elapsed_us: u64,
}

/// The plan that masks arguments: every built-in detector, whole values.
pub fn argument_mask() -> Option<MaskPlan> {
    let spec = MaskSpec {
        detectors: BUILTIN_DETECTORS
            .iter()
            .map(|name| name.to_string())
            .collect(),
        style: Style::Full,
        ..MaskSpec::default()
    };
    MaskPlan::compile(&spec).ok()
}

fn mask_value(plan: &MaskPlan, value: &Value) -> Value {
    match value {
        Value::String(text) => {
            Value::String(plan.mask_text(text, &mut MaskStats::new()).into_owned())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_value(plan, v)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, v)| (key.clone(), mask_value(plan, v)))
                .collect(),
        ),
        Value::Number(number) => {
            let text = number.to_string();
            let masked = plan.mask_text(&text, &mut MaskStats::new());
            if masked == text {
                value.clone()
            } else {
                Value::String(masked.into_owned())
            }
        }
        other => other.clone(),
    }
}

/// Records one call (after it ran: the SQL itself was recorded before it
/// was forwarded, by its session). A failure to record is logged; under
/// an unwritable audit log the call's session was refused anyway.
pub async fn record_call(
    state: &Arc<GatewayState>,
    plan: Option<&MaskPlan>,
    identity: &str,
    client_address: &str,
    call: &CallRecord<'_>,
) {
    if !state.config.recording.enabled {
        return;
    }
    // No plan (it cannot be built): record no argument values at all.
    let arguments = match plan {
        Some(plan) => mask_value(plan, &Value::Object(call.arguments.clone())),
        None => Value::Object(
            call.arguments
                .keys()
                .map(|key| (key.clone(), Value::String("[not recorded]".into())))
                .collect(),
        ),
    };
    let message = call.message.map(|text| match plan {
        Some(plan) => plan.mask_text(text, &mut MaskStats::new()).into_owned(),
        None => "[not recorded]".to_string(),
    });
    let payload = McpToolCalled {
        arguments,
        client_address: client_address.to_string(),
        connection: call.connection.map(str::to_string),
        elapsed_us: call.elapsed_us,
        message,
        outcome: call.outcome,
        review: call.review.map(str::to_string),
        rows: call.rows,
        tool: call.tool.to_string(),
    };
    let event = record(None, Some(identity), &payload);
    if let Err(error) = state.recorder.record(vec![event]).await {
        tracing::error!(%error, "could not record an MCP tool call");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_masked_inside_and_keep_their_shape() {
        let plan = argument_mask().unwrap();
        let masked = mask_value(
            &plan,
            &json!({"sql": "select * from t where email = 'jane.doe@example.com'", "n": 4111111111111111u64, "ok": true}),
        );
        let text = masked.to_string();
        assert!(!text.contains("jane.doe@example.com"), "{text}");
        assert!(!text.contains("4111111111111111"), "{text}");
        assert_eq!(masked["ok"], json!(true));
    }
}
