//! The MySQL listener: an accept loop that hands each connection to its
//! session task.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use airlock_core::state::GatewayState;

/// Accepts MySQL and MariaDB clients until `shutdown` turns true.
pub async fn run_mysql_listener(
    state: Arc<GatewayState>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let ids = Arc::new(crate::kill::ConnectionIds::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tokio::spawn(crate::session::serve(Arc::clone(&state), tcp, peer, Arc::clone(&ids)));
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
