//! Kubernetes `Secret` values in response bodies: whenever a mask plan
//! applies, every value of a Secret's `data` and `stringData` is replaced,
//! whatever the detectors say (the values are base64, so no detector
//! would see them). Pure.
//!
//! Found wherever they travel: a `Secret`, the items of a `SecretList`
//! (list items carry no `kind`), a watch event's `object`, the items of a
//! mixed `List`, a Table row's `object`. The
//! `kubectl.kubernetes.io/last-applied-configuration` annotation of a
//! Secret holds the applied data in clear and is replaced too. `data`
//! stays valid base64 (`kubectl` decodes it) so clients still parse the
//! object.

use serde_json::Value;

/// What a masked `stringData` value and the annotation become.
pub const MASKED_TEXT: &str = "[airlock:masked]";

/// The base64 of [`MASKED_TEXT`], what a masked `data` value becomes.
pub const MASKED_DATA: &str = "W2FpcmxvY2s6bWFza2VkXQ==";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Masks every Secret value in `value`; returns how many were replaced.
pub fn mask_secret_values(value: &mut Value) -> u64 {
    let mut count = 0;
    walk(value, &mut count, 0);
    count
}

/// Deeper than any Kubernetes object nests (serde_json stops at 128).
const MAX_DEPTH: usize = 256;

fn walk(value: &mut Value, count: &mut u64, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "Secret" {
                mask_one(object, count);
            } else if kind == "SecretList" {
                if let Some(Value::Array(items)) = object.get_mut("items") {
                    for item in items.iter_mut() {
                        if let Value::Object(secret) = item {
                            mask_one(secret, count);
                        }
                    }
                }
            }
            for child in object.values_mut() {
                walk(child, count, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                walk(item, count, depth + 1);
            }
        }
        _ => {}
    }
}

fn mask_one(secret: &mut serde_json::Map<String, Value>, count: &mut u64) {
    for (field, replacement) in [("data", MASKED_DATA), ("stringData", MASKED_TEXT)] {
        if let Some(Value::Object(values)) = secret.get_mut(field) {
            for entry in values.values_mut() {
                *entry = Value::String(replacement.to_string());
                *count += 1;
            }
        }
    }
    let annotations = secret
        .get_mut("metadata")
        .and_then(|metadata| metadata.get_mut("annotations"))
        .and_then(Value::as_object_mut);
    if let Some(annotation) = annotations.and_then(|a| a.get_mut(LAST_APPLIED)) {
        *annotation = Value::String(MASKED_TEXT.to_string());
        *count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Secret-ish values are long random tokens, so "does not appear in
    /// the output" is a meaningful check.
    fn secret_value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+/]{16,24}".prop_map(|value| format!("S3CRET{value}"))
    }

    /// A Secret, a SecretList, a watch event, a mixed List or a Table row,
    /// nested inside other JSON.
    fn carrier(values: Vec<String>, shape: u8, depth: u8) -> Value {
        let data: serde_json::Map<String, Value> = values
            .iter()
            .enumerate()
            .map(|(index, value)| (format!("k{index}"), json!(value)))
            .collect();
        let secret =
            json!({"kind": "Secret", "metadata": {"name": "s"}, "data": data, "stringData": data});
        let mut value = match shape % 5 {
            0 => secret,
            1 => json!({"kind": "SecretList", "items": [{"metadata": {}, "data": data}]}),
            2 => json!({"type": "MODIFIED", "object": secret}),
            3 => json!({"kind": "List", "items": [{"kind": "ConfigMap"}, secret]}),
            _ => json!({"kind": "Table", "rows": [{"cells": ["s"], "object": secret}]}),
        };
        for level in 0..depth {
            value = json!({"level": level, "nested": [value]});
        }
        value
    }

    proptest! {
        /// Whatever shape carries them, no Secret value survives and the
        /// output is still JSON.
        #[test]
        fn secret_values_never_survive(
            values in proptest::collection::vec(secret_value(), 1..5),
            shape in 0u8..5,
            depth in 0u8..4,
        ) {
            let mut body = carrier(values.clone(), shape, depth);
            let count = mask_secret_values(&mut body);
            prop_assert!(count >= values.len() as u64);
            let text = body.to_string();
            for value in &values {
                prop_assert!(!text.contains(value.as_str()), "{text}");
            }
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
        }
    }

    #[test]
    fn masks_secrets_wherever_they_travel() {
        let mut body = json!({
            "kind": "SecretList",
            "items": [{"metadata": {"name": "a"}, "data": {"password": "aHVudGVyMg=="}}],
        });
        assert_eq!(mask_secret_values(&mut body), 1);
        assert_eq!(body["items"][0]["data"]["password"], MASKED_DATA);

        let mut event = json!({"type": "ADDED", "object": {
            "kind": "Secret",
            "metadata": {"name": "b", "annotations": {LAST_APPLIED: "{\"data\":{\"k\":\"c2VjcmV0\"}}"}},
            "data": {"k": "c2VjcmV0"}, "stringData": {"t": "plain"},
        }});
        assert_eq!(mask_secret_values(&mut event), 3);
        let text = event.to_string();
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("plain"),
            "{text}"
        );

        let mut config_map = json!({"kind": "ConfigMap", "data": {"k": "visible"}});
        assert_eq!(mask_secret_values(&mut config_map), 0);
        assert_eq!(config_map["data"]["k"], "visible");

        let mut list =
            json!({"kind": "List", "items": [{"kind": "Secret", "data": {"x": "eA=="}}]});
        assert_eq!(mask_secret_values(&mut list), 1);
        assert_eq!(
            MASKED_DATA,
            crate::client_config::base64(MASKED_TEXT.as_bytes())
        );
    }
}
