//! Printing results: tables for people, one JSON document for scripts.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::Value;

use crate::cli::OutputFormat;

/// Formats Unix seconds as RFC 3339 UTC.
pub fn timestamp(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|moment| {
            moment
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| format!("{key}={}", cell(value)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Prints a list of objects as a table of `columns` (key, heading); keys
/// ending in `_at` are shown as timestamps.
pub fn print_list(format: OutputFormat, value: &Value, columns: &[(&str, &str)]) {
    if format == OutputFormat::Json {
        println!("{value}");
        return;
    }
    let items = value.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("(none)");
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(columns.iter().map(|(_, heading)| *heading));
    for item in &items {
        table.add_row(columns.iter().map(|(key, _)| {
            let field = item.get(*key).unwrap_or(&Value::Null);
            if key.ends_with("_at") && !field.is_null() {
                timestamp(field)
            } else {
                cell(field)
            }
        }));
    }
    println!("{table}");
}

/// Prints one object as `key: value` lines, or JSON.
pub fn print_object(format: OutputFormat, value: &Value, columns: &[(&str, &str)]) {
    if format == OutputFormat::Json {
        println!("{value}");
        return;
    }
    for (key, heading) in columns {
        let field = value.get(*key).unwrap_or(&Value::Null);
        let text = if key.ends_with("_at") && !field.is_null() {
            timestamp(field)
        } else {
            cell(field)
        };
        println!("{heading:>12}: {text}");
    }
}
