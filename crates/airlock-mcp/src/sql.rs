//! SQL tools through exactly the path a psql session takes: the statement
//! runs in a PostgreSQL session of the gateway's own (`airlock-pg-gateway`'s
//! `serve_in_process`) over an in-memory stream, logged in with the caller's
//! identity and token, so authentication, admission (scope, JIT grant),
//! classification, the one decision point, reviews, rate limits,
//! audit-before-forward recording and row masking are the PostgreSQL
//! gateway's own, not a copy. This module is only a client of that session:
//! it never sees an upstream credential and never decides.
//!
//! A refusal comes back as the session's PostgreSQL error; [`SqlFailure`]
//! reads it back into what the tool answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::GatewayState;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

/// Most rows a tool call returns (the rest are counted, not sent).
pub const MAX_ROWS: usize = 1000;
/// Buffer of the in-memory stream between this client and the session.
const STREAM_BUFFER_BYTES: usize = 256 * 1024;
/// The longest a call may take, a review wait included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Who runs the SQL, where.
pub struct SqlCaller<'a> {
    pub identity: &'a str,
    pub token: &'a str,
    pub peer: SocketAddr,
}

/// What a statement returned (the last result set that had columns).
#[derive(Debug, Default, Clone)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    pub row_count: u64,
    pub truncated: bool,
}

/// Why the SQL did not run, as the session said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlFailure {
    /// The policy refused it (or the login, admission, a rate limit).
    #[error("{message}")]
    Denied { message: String },
    /// A review rule holds it: the review to wait for.
    #[error("{message}")]
    ReviewRequired { review_id: String, message: String },
    /// The upstream answered with an error (syntax, missing table …).
    #[error("{message}")]
    Upstream { code: String, message: String },
    /// The session could not be run.
    #[error("{0}")]
    Internal(String),
}

/// The review id a refusal names (`review r-3f9c0a12 required …`).
pub fn review_id_in(message: &str) -> Option<String> {
    let start = message.find("review r-")? + "review ".len();
    let id: String = message
        .get(start..)?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (id.len() > 2).then_some(id)
}

fn failure(error: &tokio_postgres::Error) -> SqlFailure {
    let Some(db) = error.as_db_error() else {
        return SqlFailure::Internal(format!("the session ended: {error}"));
    };
    let code = db.code().code();
    let message = db.message().to_string();
    match code {
        // insufficient_privilege: a policy refusal or a review; the
        // gateway's login, admission and limit codes likewise.
        "42501" => match review_id_in(&message) {
            Some(review_id) => SqlFailure::ReviewRequired { review_id, message },
            None => SqlFailure::Denied { message },
        },
        "53400" | "53300" | "28000" | "28P01" | "3D000" | "58030" => SqlFailure::Denied { message },
        _ => SqlFailure::Upstream {
            code: code.to_string(),
            message,
        },
    }
}

fn collect(messages: Vec<SimpleQueryMessage>) -> SqlRows {
    let mut out = SqlRows::default();
    let mut current: Option<SqlRows> = None;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                current = Some(SqlRows {
                    columns: columns.iter().map(|c| c.name().to_string()).collect(),
                    ..SqlRows::default()
                });
            }
            SimpleQueryMessage::Row(row) => {
                let set = current.get_or_insert_with(SqlRows::default);
                set.row_count += 1;
                if set.rows.len() < MAX_ROWS {
                    set.rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    );
                } else {
                    set.truncated = true;
                }
            }
            SimpleQueryMessage::CommandComplete(count) => match current.take() {
                Some(set) => out = set,
                None => {
                    if out.columns.is_empty() {
                        out.row_count = count;
                    }
                }
            },
            _ => {}
        }
    }
    if let Some(set) = current {
        out = set;
    }
    out
}

/// Drives the client side of the session to its end; the session's
/// notices (a review hold: "waiting up to 30 s for a decision; approve
/// with …") go to `notices`.
async fn drive<S, T>(
    mut driver: tokio_postgres::Connection<S, T>,
    notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| driver.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notice(notice))) => {
                if let Some(notices) = &notices {
                    let _ = notices.send(notice.message().to_string());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
}

/// Runs `sql` on `connection` in a session of the gateway's own.
pub async fn run(
    state: &Arc<GatewayState>,
    caller: &SqlCaller<'_>,
    connection: &str,
    sql: &str,
    notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Result<SqlRows, SqlFailure> {
    let (client_end, session_end) = tokio::io::duplex(STREAM_BUFFER_BYTES);
    let session = tokio::spawn(airlock_pg_gateway::session::serve_in_process(
        Arc::clone(state),
        session_end,
        caller.peer,
    ));
    let mut config = tokio_postgres::Config::new();
    config
        .user(caller.identity)
        .dbname(connection)
        .password(caller.token)
        .application_name("airlock-mcp");
    let ran = tokio::time::timeout(CALL_TIMEOUT, async {
        let (client, driver) = config
            .connect_raw(client_end, NoTls)
            .await
            .map_err(|error| failure(&error))?;
        let driving = tokio::spawn(drive(driver, notices));
        let answered = client.simple_query(sql).await;
        drop(client);
        let _ = driving.await;
        answered.map(collect).map_err(|error| failure(&error))
    })
    .await;
    let _ = session.await;
    ran.unwrap_or_else(|_| Err(SqlFailure::Internal("the call timed out".into())))
}

/// The query `describe` runs: every user table's columns.
pub const DESCRIBE_SQL: &str =
    "SELECT table_schema, table_name, column_name, data_type, is_nullable \
FROM information_schema.columns \
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
ORDER BY table_schema, table_name, ordinal_position";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_ids_are_read_from_refusals() {
        assert_eq!(
            review_id_in("review r-3f9c0a12 required by rule \"w\" (policy v1); approve with: airlock review approve r-3f9c0a12").as_deref(),
            Some("r-3f9c0a12")
        );
        assert_eq!(review_id_in("blocked by rule \"no-ddl\" (policy v1)"), None);
        assert_eq!(review_id_in("review r-"), None);
    }
}
