//! The server of one proxied session, whichever way it is reached: a
//! stdio child ([`crate::proxy::stdio`]) or a `url:` server
//! ([`crate::proxy::remote`]). The relay and the session use only this.

use serde_json::Value;
use tokio::sync::watch;

use crate::proxy::remote::RemoteServer;
use crate::proxy::stdio::StdioServer;
use crate::proxy::upstream::UpstreamError;

/// A session's server.
pub enum ServerTransport {
    /// Boxed: the child's handles are large beside the remote client.
    Stdio(Box<StdioServer>),
    Remote(RemoteServer),
}

impl ServerTransport {
    /// Sends one message (its answer reaches the session's correlation).
    pub async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        match self {
            Self::Stdio(server) => server.send(message).await,
            Self::Remote(server) => server.send(message).await,
        }
    }

    /// Fires once the server is gone (the child exited; the remote
    /// session ended or its legacy stream closed).
    pub fn exited(&self) -> watch::Receiver<bool> {
        match self {
            Self::Stdio(server) => server.exited(),
            Self::Remote(server) => server.exited(),
        }
    }

    /// Ends it: the child killed, or the remote session deleted.
    pub async fn kill(&self) {
        match self {
            Self::Stdio(server) => server.kill().await,
            Self::Remote(server) => server.kill().await,
        }
    }
}
