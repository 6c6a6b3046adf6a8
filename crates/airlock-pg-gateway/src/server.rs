//! Listeners: accept loops that hand each connection to its session task.

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

use airlock_core::state::GatewayState;

/// Accepts PostgreSQL clients until `shutdown` turns true.
pub async fn run_postgres_listener(
    state: Arc<GatewayState>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let state = Arc::clone(&state);
                    tokio::spawn(crate::session::serve(state, tcp, peer));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly
                    // instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}
