//! The listener: accepts clients, tells TLS from plaintext by the first
//! byte (a TLS handshake record starts with 0x16), refuses plaintext from
//! addresses `http.allow_plaintext` does not allow, and serves HTTP/1.1
//! on each connection (bounded request heads, keep-alive) until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::request::{handle, Peer};
use crate::HttpGateway;

/// Time allowed for the TLS handshake and the first byte.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts HTTP clients until `shutdown` turns true.
pub async fn run_http_listener(
    gateway: Arc<HttpGateway>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tokio::spawn(serve_connection(Arc::clone(&gateway), tcp, peer, shutdown.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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

async fn serve_connection(
    gateway: Arc<HttpGateway>,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        _ => return,
    };
    if tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&gateway.state.server_tls));
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                serve_http(
                    gateway,
                    TokioIo::new(stream),
                    Peer {
                        address: peer,
                        tls: true,
                    },
                    shutdown,
                )
                .await
            }
            _ => tracing::debug!(client = %peer, "TLS handshake failed"),
        }
    } else if gateway.state.config.http.allow_plaintext.allows(peer.ip()) {
        serve_http(
            gateway,
            TokioIo::new(tcp),
            Peer {
                address: peer,
                tls: false,
            },
            shutdown,
        )
        .await;
    } else {
        let mut tcp = tcp;
        let body = br#"{"error":"tls_required","message":"airlock: this gateway requires TLS (https://)"}"#;
        let head = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = tcp.write_all(head.as_bytes()).await;
        let _ = tcp.write_all(body).await;
        let _ = tcp.shutdown().await;
    }
}

async fn serve_http<T>(
    gateway: Arc<HttpGateway>,
    io: TokioIo<T>,
    peer: Peer,
    mut shutdown: watch::Receiver<bool>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service_gateway = Arc::clone(&gateway);
    let service = service_fn(move |request| {
        let gateway = Arc::clone(&service_gateway);
        async move { Ok::<_, std::convert::Infallible>(handle(gateway, request, peer).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(gateway.max_header_bytes)
        .header_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service)
        // Kubernetes streams (exec, attach, port-forward) upgrade.
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(client = %peer.address, %error, "HTTP connection ended with an error");
            }
        }
        _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
