//! Rendering a recorded session: `session show` (metadata and a timeline)
//! and `session replay` (the same, with the rows the agent saw, and a
//! relayed terminal's transcript: a Kubernetes `exec` or `attach`, from its
//! `command.stream` events, control characters shown escaped so a recorded
//! escape sequence cannot drive the reader's terminal).

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
    let mut streamed = 0;
    for event in detail["other_events"].as_array().into_iter().flatten() {
        if event["kind"] == "command.stream" {
            streamed += event["data"]["chunks"].as_array().map_or(0, Vec::len);
            continue;
        }
        outln!(
            "  event {}: {}",
            event["kind"].as_str().unwrap_or(""),
            event["data"]
        );
    }
    if streamed > 0 {
        outln!("  terminal transcript: {streamed} pieces (`airlock session replay` prints it)");
    }
    outln!();
}

/// The `command.stream` events of command `seq`, in order.
fn stream_events(detail: &Value, seq: &Value) -> Vec<Value> {
    detail["other_events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["kind"] == "command.stream" && event["data"]["seq"] == *seq)
        .map(|event| event["data"].clone())
        .collect()
}

/// Text with control characters other than newline and tab escaped.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\n' | '\t' => out.push(character),
            '\r' => out.push_str("\\r"),
            other if other.is_control() => {
                out.push_str(&format!("\\x{:02x}", u32::from(other)));
            }
            other => out.push(other),
        }
    }
    out
}

/// A terminal's transcript: each piece with its offset and channel
/// (`>` stdin, `|` stdout, `!` stderr, `#` error, resize and close).
fn print_stream(events: &[Value]) {
    if events.is_empty() {
        return;
    }
    outln!("    terminal transcript (> stdin, | stdout, ! stderr, # error):");
    for chunk in events
        .iter()
        .flat_map(|event| event["chunks"].as_array().cloned().unwrap_or_default())
    {
        let mark = match chunk["channel"].as_str().unwrap_or("") {
            "stdin" => ">",
            "stdout" => "|",
            "stderr" => "!",
            _ => "#",
        };
        let at = chunk["at_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        let channel = chunk["channel"].as_str().unwrap_or("");
        let data = chunk["data"].as_str().unwrap_or("");
        // v5's close message names the channel the client closed (stdin).
        let text = match (channel, data) {
            ("close", "\u{0}") => "(stdin closed)".to_string(),
            _ => escaped(data),
        };
        for (index, line) in text.trim_end_matches('\n').split('\n').enumerate() {
            if index == 0 {
                outln!("    +{at:.3}s {channel:<6} {mark} {line}");
            } else {
                outln!("    {:14} {mark} {line}", "");
            }
        }
    }
    if events.iter().any(|event| event["truncated"] == true) {
        outln!("    … the rest of the stream was not kept (transcript limit)");
    }
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
        print_stream(&stream_events(detail, &entry["seq"]));
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
