//! Printing results: tables for people, one JSON document for scripts.
//!
//! Every line the CLI prints on standard output goes through [`outln!`] or
//! [`out!`] (the crate denies `println!`), so a closed pipe is handled in
//! one place: `airlock session show … | head` ends quietly with status 141,
//! as a process ended by `SIGPIPE` does, instead of panicking. Errors go to
//! standard error through [`report_error`]: text, or one JSON object under
//! `--output json`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::{json, Value};
use std::io::Write as _;

use crate::cli::OutputFormat;

/// The exit status after the reader of standard output went away: what a
/// shell reports for a process ended by `SIGPIPE` (128 + 13), so
/// `set -o pipefail` scripts still see that the output was cut short.
pub const BROKEN_PIPE_STATUS: u8 = 141;

/// Writes to standard output; on a closed pipe, exits quietly.
pub fn write_stdout(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text) {
        exit_on_write_error(&error);
    }
}

/// Ends the process after standard output failed: quietly when the reader
/// closed the pipe, with a message otherwise.
pub fn exit_on_write_error(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(BROKEN_PIPE_STATUS));
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1)
}

/// `println!` for the CLI: through [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// `print!` for the CLI: through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// A command that failed after it said why itself (a list of problems, a
/// broken audit chain): exit status 1, nothing more printed.
#[derive(Debug)]
pub struct AlreadyReported(pub String);

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlreadyReported {}

/// Prints a failed command's error on standard error and returns its exit
/// status: `error: …` in text mode, `{"error": {"message", "status"}}` under
/// `--output json` (`status`: the admin API's HTTP status, or null when the
/// error happened here).
pub fn report_error(format: OutputFormat, error: &anyhow::Error) -> u8 {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return BROKEN_PIPE_STATUS;
    }
    if error.downcast_ref::<AlreadyReported>().is_some() {
        return 1;
    }
    let status = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<crate::client::ApiFailure>())
        .map(|failure| failure.status);
    match format {
        OutputFormat::Json => {
            eprintln!(
                "{}",
                json!({"error": {"message": format!("{error:#}"), "status": status}})
            );
        }
        OutputFormat::Text => eprintln!("error: {error:#}"),
    }
    1
}

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
        outln!("{value}");
        return;
    }
    let items = value.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        outln!("(none)");
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
    outln!("{table}");
}

/// Prints one object as `key: value` lines, or JSON.
pub fn print_object(format: OutputFormat, value: &Value, columns: &[(&str, &str)]) {
    if format == OutputFormat::Json {
        outln!("{value}");
        return;
    }
    for (key, heading) in columns {
        let field = value.get(*key).unwrap_or(&Value::Null);
        let text = if key.ends_with("_at") && !field.is_null() {
            timestamp(field)
        } else {
            cell(field)
        };
        outln!("{heading:>12}: {text}");
    }
}
