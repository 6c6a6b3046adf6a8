//! Pinned MCP tool definitions in SQLite ([`ToolPinStore`]): one row per
//! (connection, tool), the pinned definition and at most one pending one.
//! Checks run in an IMMEDIATE transaction, so two gateways sharing the
//! file cannot both pin a first definition.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::backend::{PinCheck, ToolPinStore};
use crate::records::ToolPinRecord;
use crate::StoreError;

const COLUMNS: &str = "connection, tool, fingerprint, definition, pinned_at, approved_by, \
     pending_fingerprint, pending_definition, pending_since";

fn pin_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ToolPinRecord> {
    Ok(ToolPinRecord {
        connection: row.get(0)?,
        tool: row.get(1)?,
        fingerprint: row.get(2)?,
        definition: row.get(3)?,
        pinned_at: row.get(4)?,
        approved_by: row.get(5)?,
        pending_fingerprint: row.get(6)?,
        pending_definition: row.get(7)?,
        pending_since: row.get(8)?,
    })
}

impl ToolPinStore for Store {
    fn check_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        definition: &str,
    ) -> Result<PinCheck, StoreError> {
        let mut inner = self.lock()?;
        let now = self.clock.now_unix();
        let transaction = inner
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known: Option<(String, Option<String>)> = transaction
            .query_row(
                "SELECT fingerprint, pending_fingerprint FROM mcp_tool_pins
                 WHERE connection = ?1 AND tool = ?2",
                params![connection, tool],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let check = match known {
            None => {
                transaction.execute(
                    "INSERT INTO mcp_tool_pins (connection, tool, fingerprint, definition, pinned_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![connection, tool, fingerprint, definition, now],
                )?;
                PinCheck::Pinned
            }
            Some((pinned, _)) if pinned == fingerprint => PinCheck::Unchanged,
            Some((_, pending)) if pending.as_deref() == Some(fingerprint) => {
                PinCheck::Changed { first: false }
            }
            Some(_) => {
                transaction.execute(
                    "UPDATE mcp_tool_pins SET pending_fingerprint = ?3, pending_definition = ?4,
                     pending_since = ?5 WHERE connection = ?1 AND tool = ?2",
                    params![connection, tool, fingerprint, definition, now],
                )?;
                PinCheck::Changed { first: true }
            }
        };
        transaction.commit()?;
        Ok(check)
    }

    fn tool_pins(&self, connection: &str) -> Result<Vec<ToolPinRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(&format!(
            "SELECT {COLUMNS} FROM mcp_tool_pins WHERE connection = ?1 ORDER BY tool"
        ))?;
        let rows = statement.query_map([connection], pin_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn approve_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        approved_by: &str,
    ) -> Result<ToolPinRecord, StoreError> {
        let inner = self.lock()?;
        let changed = inner.connection.execute(
            "UPDATE mcp_tool_pins SET fingerprint = pending_fingerprint,
             definition = pending_definition, pinned_at = ?4, approved_by = ?5,
             pending_fingerprint = NULL, pending_definition = NULL, pending_since = NULL
             WHERE connection = ?1 AND tool = ?2 AND pending_fingerprint = ?3",
            params![
                connection,
                tool,
                fingerprint,
                self.clock.now_unix(),
                approved_by
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "pending tool definition",
                name: format!("{connection}/{tool} {fingerprint}"),
            });
        }
        Ok(inner.connection.query_row(
            &format!("SELECT {COLUMNS} FROM mcp_tool_pins WHERE connection = ?1 AND tool = ?2"),
            params![connection, tool],
            pin_row,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pins_a_change_waits_for_approval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.check_tool("c", "t", "aa", "{}").unwrap(),
            PinCheck::Pinned
        );
        assert_eq!(
            store.check_tool("c", "t", "aa", "{}").unwrap(),
            PinCheck::Unchanged
        );
        assert_eq!(
            store.check_tool("c", "t", "bb", "{\"d\":1}").unwrap(),
            PinCheck::Changed { first: true }
        );
        assert_eq!(
            store.check_tool("c", "t", "bb", "{\"d\":1}").unwrap(),
            PinCheck::Changed { first: false }
        );
        assert!(store.approve_tool("c", "t", "cc", "admin").is_err());
        let approved = store.approve_tool("c", "t", "bb", "admin").unwrap();
        assert_eq!(approved.fingerprint, "bb");
        assert_eq!(approved.approved_by.as_deref(), Some("admin"));
        assert_eq!(approved.pending_fingerprint, None);
        assert_eq!(
            store.check_tool("c", "t", "bb", "{}").unwrap(),
            PinCheck::Unchanged
        );
        assert_eq!(
            store.check_tool("other", "t", "bb", "{}").unwrap(),
            PinCheck::Pinned
        );
        assert_eq!(store.tool_pins("c").unwrap().len(), 1);
    }
}
