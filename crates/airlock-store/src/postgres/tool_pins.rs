//! Pinned MCP tool definitions in PostgreSQL ([`ToolPinStore`]): one row
//! per (connection, tool), the pinned definition and at most one pending
//! one. A check locks the tool's row (or, for a first sighting, relies on
//! the primary key: of two replicas pinning at once, one inserts and the
//! other compares against what it inserted), so every replica sees one pin.

use super::pool::{db_error, get};
use super::PgStore;
use crate::backend::{PinCheck, ToolPinStore};
use crate::records::ToolPinRecord;
use crate::StoreError;

const COLUMNS: &str = "connection, tool, fingerprint, definition, pinned_at, approved_by, \
     pending_fingerprint, pending_definition, pending_since";

fn pin_row(row: &tokio_postgres::Row) -> Result<ToolPinRecord, StoreError> {
    Ok(ToolPinRecord {
        connection: get(row, 0)?,
        tool: get(row, 1)?,
        fingerprint: get(row, 2)?,
        definition: get(row, 3)?,
        pinned_at: get(row, 4)?,
        approved_by: get(row, 5)?,
        pending_fingerprint: get(row, 6)?,
        pending_definition: get(row, 7)?,
        pending_since: get(row, 8)?,
    })
}

impl ToolPinStore for PgStore {
    fn check_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        definition: &str,
    ) -> Result<PinCheck, StoreError> {
        let (connection, tool) = (connection.to_string(), tool.to_string());
        let (fingerprint, definition) = (fingerprint.to_string(), definition.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            let inserted = transaction
                .execute(
                    "INSERT INTO mcp_tool_pins (connection, tool, fingerprint, definition, pinned_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection, tool) DO NOTHING",
                    &[&connection, &tool, &fingerprint, &definition, &now],
                )
                .await
                .map_err(db_error)?;
            if inserted == 1 {
                transaction.commit().await.map_err(db_error)?;
                return Ok(PinCheck::Pinned);
            }
            let row = transaction
                .query_one(
                    "SELECT fingerprint, pending_fingerprint FROM mcp_tool_pins
                     WHERE connection = $1 AND tool = $2 FOR UPDATE",
                    &[&connection, &tool],
                )
                .await
                .map_err(db_error)?;
            let pinned: String = get(&row, 0)?;
            let pending: Option<String> = get(&row, 1)?;
            let check = if pinned == fingerprint {
                PinCheck::Unchanged
            } else if pending.as_deref() == Some(fingerprint.as_str()) {
                PinCheck::Changed { first: false }
            } else {
                transaction
                    .execute(
                        "UPDATE mcp_tool_pins SET pending_fingerprint = $3,
                         pending_definition = $4, pending_since = $5
                         WHERE connection = $1 AND tool = $2",
                        &[&connection, &tool, &fingerprint, &definition, &now],
                    )
                    .await
                    .map_err(db_error)?;
                PinCheck::Changed { first: true }
            };
            transaction.commit().await.map_err(db_error)?;
            Ok(check)
        })
    }

    fn tool_pins(&self, connection: &str) -> Result<Vec<ToolPinRecord>, StoreError> {
        let connection = connection.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM mcp_tool_pins WHERE connection = $1 ORDER BY tool"
                    ),
                    &[&connection],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(pin_row).collect()
        })
    }

    fn approve_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        approved_by: &str,
    ) -> Result<ToolPinRecord, StoreError> {
        let (connection, tool) = (connection.to_string(), tool.to_string());
        let (fingerprint, approved_by) = (fingerprint.to_string(), approved_by.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE mcp_tool_pins SET fingerprint = pending_fingerprint,
                         definition = pending_definition, pinned_at = $4, approved_by = $5,
                         pending_fingerprint = NULL, pending_definition = NULL,
                         pending_since = NULL
                         WHERE connection = $1 AND tool = $2 AND pending_fingerprint = $3
                         RETURNING {COLUMNS}"
                    ),
                    &[&connection, &tool, &fingerprint, &now, &approved_by],
                )
                .await
                .map_err(db_error)?;
            match row {
                Some(row) => pin_row(&row),
                None => Err(StoreError::NotFound {
                    what: "pending tool definition",
                    name: format!("{connection}/{tool} {fingerprint}"),
                }),
            }
        })
    }
}
