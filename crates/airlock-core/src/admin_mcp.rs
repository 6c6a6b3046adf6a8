//! Admin operations on pinned MCP tool definitions (the proxy's rug-pull
//! defence): list a connection's pins, approve a changed definition. Behind
//! `GET /api/v1/mcp/tools` and `POST /api/v1/mcp/tools/approve`, and the
//! CLI's `airlock mcp tools list|diff|approve`.

use airlock_store::ToolPinRecord;

use crate::error::AdminError;
use crate::events::{record, McpToolApproved};
use crate::state::GatewayState;

impl GatewayState {
    fn mcp_connection(&self, connection: &str) -> Result<(), AdminError> {
        match self.config.connection(connection) {
            Some(found) if found.protocol == "mcp" => Ok(()),
            _ => Err(AdminError::NotFound(format!(
                "no mcp connection {connection:?} in the config file"
            ))),
        }
    }

    /// Every pinned tool definition of an MCP connection.
    pub fn mcp_tool_pins(&self, connection: &str) -> Result<Vec<ToolPinRecord>, AdminError> {
        self.mcp_connection(connection)?;
        Ok(self.store.tool_pins(connection)?)
    }

    /// Approves the pending definition of `tool` (the one with
    /// `fingerprint` when given, so an admin approves what they reviewed)
    /// and records `mcp.tool_approved`.
    pub fn approve_mcp_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: Option<&str>,
    ) -> Result<ToolPinRecord, AdminError> {
        self.mcp_connection(connection)?;
        let pending = self
            .store
            .tool_pins(connection)?
            .into_iter()
            .find(|pin| pin.tool == tool)
            .and_then(|pin| pin.pending_fingerprint)
            .ok_or_else(|| {
                AdminError::NotFound(format!(
                    "tool {tool:?} of {connection:?} has no changed definition waiting"
                ))
            })?;
        if fingerprint.is_some_and(|given| given != pending) {
            return Err(AdminError::Conflict(format!(
                "the waiting definition of {tool:?} is {pending}, not the one given"
            )));
        }
        let approved = self
            .store
            .approve_tool(connection, tool, &pending, "admin")?;
        self.store.append_event(record(
            None,
            Some("admin"),
            &McpToolApproved {
                connection: connection.to_string(),
                fingerprint: pending,
                tool: tool.to_string(),
            },
        ))?;
        Ok(approved)
    }
}
