//! The MCP parts of a connection (`protocol: mcp`): exactly one upstream
//! transport, `url:` (a Streamable HTTP server, its credential sent as
//! `inject:` says) or `command:` (a stdio server the gateway starts per
//! agent session, its secrets passed as `env_from_credentials`), and the
//! checks they must pass. The MCP-only fields on another protocol are
//! refused here too. Kept apart from `config.rs` like `http_config`.

use crate::config::ConnectionConfig;

/// How an MCP `url:` connection's server is spoken to (`transport:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpTransport {
    /// Streamable HTTP, falling back to the legacy HTTP+SSE transport when
    /// the server refuses the `initialize` POST (the default).
    Auto,
    /// Streamable HTTP only.
    StreamableHttp,
    /// The legacy HTTP+SSE transport (protocol revision 2024-11-05).
    Sse,
}

impl McpTransport {
    /// The transport a `transport:` value names (`None`: not one).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "streamable-http" => Some(Self::StreamableHttp),
            "sse" => Some(Self::Sse),
            _ => None,
        }
    }

    /// The connection's transport (`auto` when unset or unreadable, which
    /// validation refuses before this is asked).
    pub fn of(connection: &ConnectionConfig) -> Self {
        connection
            .transport
            .as_deref()
            .and_then(Self::parse)
            .unwrap_or(Self::Auto)
    }
}

/// True for a `protocol: mcp` connection.
pub fn is_mcp(connection: &ConnectionConfig) -> bool {
    connection.protocol == "mcp"
}

/// A stdio MCP connection may name no `credential` (its secrets, if any,
/// are `env_from_credentials`).
pub fn credential_optional(connection: &ConnectionConfig) -> bool {
    is_mcp(connection) && !connection.command.is_empty()
}

/// True for a name a child's environment may carry.
fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The problems of one connection's MCP fields, as (field, message).
pub fn connection_problems(connection: &ConnectionConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !is_mcp(connection) {
        for (field, set) in [
            ("command", !connection.command.is_empty()),
            (
                "env_from_credentials",
                !connection.env_from_credentials.is_empty(),
            ),
            ("read_tools", !connection.read_tools.is_empty()),
            ("transport", connection.transport.is_some()),
        ] {
            if set {
                problems.push((field, format!("{field} is for protocol mcp connections")));
            }
        }
        return problems;
    }
    let stdio = !connection.command.is_empty();
    match (&connection.url, stdio) {
        (Some(_), true) => problems.push((
            "command",
            "an mcp connection has either a url or a command, not both".into(),
        )),
        (None, false) => problems.push((
            "protocol",
            "an mcp connection needs a url (Streamable HTTP) or a command (stdio)".into(),
        )),
        (Some(url), false) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(("url", format!("url {url:?} is not http:// or https://")));
            }
            if let Some(transport) = &connection.transport {
                if McpTransport::parse(transport).is_none() {
                    problems.push((
                        "transport",
                        format!("transport {transport:?}: give auto, streamable-http or sse"),
                    ));
                }
            }
            if connection.insecure_skip_verify && connection.ca_file.is_some() {
                problems.push((
                    "insecure_skip_verify",
                    "insecure_skip_verify and ca_file exclude each other".into(),
                ));
            }
            if !connection.env_from_credentials.is_empty() {
                problems.push((
                    "env_from_credentials",
                    "env_from_credentials is for mcp connections with a command".into(),
                ));
            }
            if let Some(inject) = &connection.inject {
                problems.extend(crate::http_config::inject_problems(inject, true));
            } else if !connection.credential.trim().is_empty() {
                problems.push((
                    "inject",
                    "an mcp connection with a credential needs inject: {header: NAME}, {bearer: true} or {basic: true}".into(),
                ));
            }
        }
        (None, true) => {
            for (field, set) in [
                ("inject", connection.inject.is_some()),
                ("transport", connection.transport.is_some()),
                ("insecure_skip_verify", connection.insecure_skip_verify),
                ("ca_file", connection.ca_file.is_some()),
            ] {
                if set {
                    problems.push((field, format!("{field} is for mcp connections with a url")));
                }
            }
            if connection
                .command
                .first()
                .is_some_and(|program| program.trim().is_empty())
            {
                problems.push(("command", "command: the program is empty".into()));
            }
        }
    }
    for name in connection.env_from_credentials.keys() {
        if !valid_env_name(name) {
            problems.push((
                "env_from_credentials",
                format!("env_from_credentials: {name:?} is not an environment variable name"),
            ));
        }
    }
    for (field, set) in [
        ("address", !connection.address.is_empty()),
        ("tls", connection.tls.is_some()),
        ("database", connection.database.is_some()),
    ] {
        if set {
            problems.push((field, format!("{field} is not used by mcp connections")));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(yaml: &str) -> ConnectionConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn one_transport_and_its_own_fields() {
        let stdio = connection(
            "{name: f, protocol: mcp, command: [npx, server], env_from_credentials: {API_KEY: k}}",
        );
        assert!(connection_problems(&stdio).is_empty());
        assert!(credential_optional(&stdio));
        let http = connection(
            "{name: g, protocol: mcp, url: 'https://x/mcp', credential: t, inject: {bearer: true}}",
        );
        assert!(connection_problems(&http).is_empty());
        assert!(!credential_optional(&http));
        let both = connection("{name: b, protocol: mcp, url: 'https://x', command: [x]}");
        assert_eq!(connection_problems(&both)[0].0, "command");
        let neither = connection("{name: n, protocol: mcp}");
        assert_eq!(connection_problems(&neither)[0].0, "protocol");
        let bad_env =
            connection("{name: e, protocol: mcp, command: [x], env_from_credentials: {'A-B': k}}");
        assert_eq!(connection_problems(&bad_env)[0].0, "env_from_credentials");
        let legacy = connection(
            "{name: l, protocol: mcp, url: 'http://x/sse', transport: sse, insecure_skip_verify: true}",
        );
        assert!(connection_problems(&legacy).is_empty());
        assert_eq!(McpTransport::of(&legacy), McpTransport::Sse);
        assert_eq!(McpTransport::of(&http), McpTransport::Auto);
        let wrong = connection("{name: w, protocol: mcp, url: 'http://x', transport: websocket}");
        assert_eq!(connection_problems(&wrong)[0].0, "transport");
        let stdio_tls = connection("{name: s, protocol: mcp, command: [x], ca_file: ca.pem}");
        assert_eq!(connection_problems(&stdio_tls)[0].0, "ca_file");
        let mcp_header = connection(
            "{name: h, protocol: mcp, url: 'http://x', credential: c, inject: {header: Mcp-Session-Id}}",
        );
        assert_eq!(connection_problems(&mcp_header)[0].0, "inject");
        let elsewhere = connection(
            "{name: p, protocol: postgres, address: 'h:1', credential: c, command: [x]}",
        );
        assert_eq!(connection_problems(&elsewhere)[0].0, "command");
    }
}
