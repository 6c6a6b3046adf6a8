//! Rendering a recorded session: `session show` (metadata and a timeline)
//! and `session replay` (the same, with the rows the agent saw).

use crate::output::outln;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::Value;

use crate::output::timestamp;

fn header(detail: &Value) {
    let session = &detail["session"];
    let text = |key: &str| session[key].as_str().unwrap_or("-").to_string();
    outln!(
        "session {}  {} → {}  from {}{}",
        text("session_id"),
        text("identity"),
        text("connection"),
        text("client_address"),
        if session["tls"] == true { " (TLS)" } else { "" }
    );
    outln!(
        "  token {}  started {}",
        text("token_id"),
        timestamp(&session["started_at"])
    );
    if session["live"] == true {
        outln!("  live");
    } else if !session["ended_by"].is_null() {
        outln!(
            "  ended {} by {} after {} ms, {} commands",
            timestamp(&session["ended_at"]),
            text("ended_by"),
            session["duration_ms"],
            session["commands"]
        );
    }
    for event in detail["other_events"].as_array().into_iter().flatten() {
        outln!(
            "  event {}: {}",
            event["kind"].as_str().unwrap_or(""),
            event["data"]
        );
    }
    outln!();
}

fn outcome(entry: &Value) -> String {
    if entry["decision"] == "refuse" {
        return format!("refused: {}", entry["refusal"].as_str().unwrap_or(""));
    }
    let result = &entry["result"];
    if result.is_null() {
        return if entry["message"] == "parse" {
            "parsed".into()
        } else {
            "no result recorded".into()
        };
    }
    match result["status"].as_str() {
        Some("error") => format!(
            "ERROR {}: {}",
            result["error_code"].as_str().unwrap_or(""),
            result["error_message"].as_str().unwrap_or("")
        ),
        Some("skipped") => "skipped (an earlier error aborted the pipeline)".into(),
        _ => {
            let tags: Vec<&str> = result["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!("{} · {} rows", tags.join(", "), result["rows"])
        }
    }
}

fn duration(entry: &Value) -> String {
    entry["result"]["duration_us"]
        .as_f64()
        .map(|micros| format!("{:.2} ms", micros / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// `session show`.
pub fn print_show(detail: &Value) {
    header(detail);
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["+TIME", "#", "KIND", "STATEMENT", "OUTCOME", "DURATION"]);
    for entry in detail["timeline"].as_array().into_iter().flatten() {
        table.add_row([
            format!(
                "{:.3}s",
                entry["offset_ms"].as_f64().unwrap_or(0.0) / 1000.0
            ),
            entry["seq"].to_string(),
            entry["message"].as_str().unwrap_or("").to_string(),
            one_line(entry["statement"].as_str().unwrap_or(""), 80),
            outcome(entry),
            duration(entry),
        ]);
    }
    outln!("{table}");
}

/// `session replay`.
pub fn print_replay(detail: &Value) {
    header(detail);
    for entry in detail["timeline"].as_array().into_iter().flatten() {
        if entry["message"] == "parse" && entry["decision"] != "refuse" {
            continue;
        }
        outln!(
            "[+{:.3}s] #{} {}> {}",
            entry["offset_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            entry["seq"],
            entry["message"].as_str().unwrap_or(""),
            entry["statement"].as_str().unwrap_or("")
        );
        let result = &entry["result"];
        let columns: Vec<String> = result["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|column| column.as_str().unwrap_or("").to_string())
            .collect();
        let rows = result["sample"].as_array().cloned().unwrap_or_default();
        if !columns.is_empty() {
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY);
            table.set_header(columns);
            for row in &rows {
                table.add_row(
                    row.as_array()
                        .into_iter()
                        .flatten()
                        .map(|value| match value {
                            Value::Null => "NULL".to_string(),
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        }),
                );
            }
            for line in table.to_string().lines() {
                outln!("    {line}");
            }
            if result["sample_truncated"] == true {
                outln!("    … more rows not kept in the recording");
            }
        }
        outln!("    {} ({})\n", outcome(entry), duration(entry));
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let mut cut: String = flat.chars().take(max).collect();
        cut.push('…');
        cut
    } else {
        flat
    }
}
