//! A stdio MCP server (`command:`), started by the gateway for one agent
//! session: one JSON-RPC message per line on its stdin and stdout.
//!
//! The child gets a clean environment: `PATH`, `HOME`, `LANG` and
//! `TMPDIR` of the gateway, plus the decrypted `env_from_credentials`, and
//! nothing else of the gateway's (its own secrets stay out). Its stderr is
//! discarded (it may print what it was given). Lines are bounded by
//! [`crate::http::MAX_MESSAGE_BYTES`]: a longer line ends the session. The
//! child is killed when the session ends, and with the gateway
//! (`kill_on_drop`).

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, watch, Mutex};

use airlock_types::Secret;

use crate::http::MAX_MESSAGE_BYTES;
use crate::proxy::upstream::{Correlation, UpstreamError};

/// Variables of the gateway's own environment a child inherits.
const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

/// Messages waiting for the child's stdin.
const OUTGOING_QUEUE: usize = 64;

/// A running stdio server.
pub struct StdioServer {
    outgoing: mpsc::Sender<Value>,
    child: Mutex<Child>,
    gone: Arc<AtomicBool>,
    exited: watch::Receiver<bool>,
}

impl StdioServer {
    /// Starts `command` with `environment`; its messages go to
    /// `correlation`.
    pub fn spawn(
        command: &[String],
        environment: &[(String, Secret<String>)],
        correlation: Arc<Correlation>,
    ) -> Result<Self, UpstreamError> {
        let (program, arguments) = command
            .split_first()
            .ok_or_else(|| UpstreamError::Unreachable("no command".into()))?;
        let mut child = Command::new(program);
        child
            .args(arguments)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for name in INHERITED {
            if let Some(value) = std::env::var_os(name) {
                child.env(name, value);
            }
        }
        for (name, secret) in environment {
            child.env(name, secret.expose());
        }
        let mut child = child.spawn().map_err(|error| {
            UpstreamError::Unreachable(format!("cannot start {program}: {error}"))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(UpstreamError::Unreachable("no pipes to the child".into()));
        };
        let gone = Arc::new(AtomicBool::new(false));
        let (exit_sender, exited) = watch::channel(false);
        let (outgoing, queued) = mpsc::channel(OUTGOING_QUEUE);
        tokio::spawn(write_lines(stdin, queued, Arc::clone(&gone)));
        tokio::spawn(read_lines(
            stdout,
            correlation,
            Arc::clone(&gone),
            exit_sender,
            outgoing.clone(),
        ));
        Ok(Self {
            outgoing,
            child: Mutex::new(child),
            gone,
            exited,
        })
    }

    /// Sends one message.
    pub async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        if self.gone.load(Ordering::Acquire) {
            return Err(UpstreamError::Gone);
        }
        self.outgoing
            .send(message.clone())
            .await
            .map_err(|_| UpstreamError::Gone)
    }

    /// Fires once the child's stdout closed (it exited or broke a bound).
    pub fn exited(&self) -> watch::Receiver<bool> {
        self.exited.clone()
    }

    /// Kills the child and reaps it.
    pub async fn kill(&self) {
        self.gone.store(true, Ordering::Release);
        let mut child = self.child.lock().await;
        let _ = child.kill().await;
    }

    /// The child's process id while it runs (for tests and logs).
    pub async fn process_id(&self) -> Option<u32> {
        self.child.lock().await.id()
    }
}

/// Writes queued messages to the child, one line each, until the queue
/// closes or the pipe breaks.
async fn write_lines(
    mut stdin: ChildStdin,
    mut queued: mpsc::Receiver<Value>,
    gone: Arc<AtomicBool>,
) {
    while let Some(message) = queued.recv().await {
        let mut line = message.to_string();
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    gone.store(true, Ordering::Release);
}

/// Reads the child's lines until it closes stdout or sends one over the
/// bound; its requests are answered (refused) through `replies`.
async fn read_lines(
    stdout: ChildStdout,
    correlation: Arc<Correlation>,
    gone: Arc<AtomicBool>,
    exited: watch::Sender<bool>,
    replies: mpsc::Sender<Value>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let bound = u64::try_from(MAX_MESSAGE_BYTES).unwrap_or(u64::MAX);
    loop {
        line.clear();
        let read = (&mut reader)
            .take(bound + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_MESSAGE_BYTES => {
                tracing::warn!("the MCP server sent a message over the bound; ending the session");
                break;
            }
            Ok(_) => {}
        }
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            tracing::debug!("the MCP server wrote a line that is not JSON; dropped");
            continue;
        };
        if let Some(reply) = correlation.incoming(message) {
            let _ = replies.try_send(reply);
        }
    }
    gone.store(true, Ordering::Release);
    correlation.close();
    let _ = exited.send(true);
}
