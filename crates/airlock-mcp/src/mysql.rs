//! SQL tools on MySQL/MariaDB connections, through exactly the path a
//! `mysql` client takes: a client session (`mysql_async`) to the gateway's
//! own MySQL listener on loopback, logged in with the caller's identity
//! and token, so login, admission, classification, the decision, reviews,
//! rate limits, recording and row masking are the MySQL gateway's own.
//! Like [`crate::sql`], it never sees an upstream credential and never
//! decides.
//!
//! The listener is reached on 127.0.0.1, this process's own socket, never
//! a network peer; it must allow plaintext from loopback
//! (`mysql.allow_plaintext`, the default).

use std::sync::Arc;
use std::time::Duration;

use airlock_core::GatewayState;
use mysql_async::prelude::Queryable as _;

use crate::sql::{review_id_in, SqlCaller, SqlFailure, SqlRows, MAX_ROWS};

/// The longest a call may take, a review wait included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The MySQL error codes of the gateway's own refusals (policy, login,
/// admission, limits, recording).
const REFUSAL_CODES: [u16; 6] = [1142, 1045, 1044, 1049, 1226, 1203];

fn failure(error: &mysql_async::Error) -> SqlFailure {
    match error {
        mysql_async::Error::Server(server) => {
            let message = server.message.clone();
            if let Some(review_id) = review_id_in(&message) {
                SqlFailure::ReviewRequired { review_id, message }
            } else if REFUSAL_CODES.contains(&server.code) || message.starts_with("airlock:") {
                SqlFailure::Denied { message }
            } else {
                SqlFailure::Upstream {
                    code: format!("{} ({})", server.code, server.state),
                    message,
                }
            }
        }
        other => SqlFailure::Internal(format!("the session ended: {other}")),
    }
}

fn text(value: &mysql_async::Value) -> Option<String> {
    match value {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        other => Some(other.as_sql(true)),
    }
}

/// Runs `sql` on `connection` through the gateway's MySQL listener.
pub async fn run(
    state: &Arc<GatewayState>,
    caller: &SqlCaller<'_>,
    connection: &str,
    sql: &str,
) -> Result<SqlRows, SqlFailure> {
    let Some(listen) = state.settings.mysql_listen else {
        return Err(SqlFailure::Internal(
            "the MySQL listener is not running (listen.mysql)".into(),
        ));
    };
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(listen.port())
        .user(Some(caller.identity))
        .pass(Some(caller.token))
        .db_name(Some(connection))
        .prefer_socket(false)
        // Loopback to the gateway's own listener (`mysql.allow_plaintext`
        // allows loopback by default): the token goes as the listener asks
        // for it without TLS, `mysql_clear_password`, and never leaves the
        // host. (Over TLS, this driver sends its ClientHello right behind
        // the SSLRequest, which the listener refuses when both arrive in
        // one read.)
        .enable_cleartext_plugin(true);
    let ran = tokio::time::timeout(CALL_TIMEOUT, async {
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .map_err(|error| failure(&error))?;
        let answered = collect(&mut conn, sql).await;
        let _ = conn.disconnect().await;
        answered
    })
    .await;
    ran.unwrap_or_else(|_| Err(SqlFailure::Internal("the call timed out".into())))
}

/// The last result set with columns (or the affected rows of the last
/// statement without).
async fn collect(conn: &mut mysql_async::Conn, sql: &str) -> Result<SqlRows, SqlFailure> {
    let mut result = conn
        .query_iter(sql)
        .await
        .map_err(|error| failure(&error))?;
    let mut out = SqlRows::default();
    while !result.is_empty() {
        let columns: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|column| column.name_str().into_owned())
            .collect();
        let affected = result.affected_rows();
        let rows: Vec<mysql_async::Row> =
            result.collect().await.map_err(|error| failure(&error))?;
        if columns.is_empty() {
            if out.columns.is_empty() {
                out.row_count = affected;
            }
            continue;
        }
        let mut set = SqlRows {
            columns,
            row_count: u64::try_from(rows.len()).unwrap_or(u64::MAX),
            truncated: rows.len() > MAX_ROWS,
            ..SqlRows::default()
        };
        for row in rows.iter().take(MAX_ROWS) {
            set.rows.push(
                (0..row.len())
                    .map(|index| row.as_ref(index).and_then(text))
                    .collect(),
            );
        }
        out = set;
    }
    Ok(out)
}

/// The query `describe` runs on MySQL: the current database's columns.
pub const DESCRIBE_SQL: &str =
    "SELECT table_schema, table_name, column_name, data_type, is_nullable \
FROM information_schema.columns WHERE table_schema = DATABASE() \
ORDER BY table_schema, table_name, ordinal_position";
