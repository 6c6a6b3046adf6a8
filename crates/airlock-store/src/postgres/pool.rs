//! A small pool of `tokio-postgres` connections on the store's thread, with
//! TLS through rustls when the URL asks for it.
//!
//! A connection is opened when no idle one is left (up to the pool's size;
//! callers beyond it wait for one), handed back after use, and dropped when
//! it broke: the next caller connects again, so the store recovers by
//! itself once the database answers again.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client};

use crate::changes::{ChangeFeed, StoreChange};

use crate::StoreError;

/// Connections to one database.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool; back to it on drop unless it broke.
pub(crate) struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        // Set from construction until drop.
        #[allow(clippy::unwrap_used)] // `client` is `None` only inside `drop`
        self.client.as_ref().unwrap()
    }
}

impl Pooled<'_> {
    /// The connection, for a transaction.
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        #[allow(clippy::unwrap_used)] // `client` is `None` only inside `drop`
        self.client.as_mut().unwrap()
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(client);
                }
            }
        }
    }
}

impl Pool {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: Option<Arc<rustls::ClientConfig>>,
        size: usize,
    ) -> Self {
        Self {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// An open connection: an idle one, or a new one.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Postgres("the connection pool is closed".into()))?;
        let idle = loop {
            let next = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
            match next {
                Some(client) if client.is_closed() => continue,
                other => break other,
            }
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Pooled {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }

    /// A connection of its own, outside the pool, whose notifications on
    /// [`crate::changes::CHANNEL`] are handed to `feed`; the handle ends
    /// when the connection does. Named `airlock-listen` in
    /// `pg_stat_activity`.
    pub(crate) async fn connect_listening(
        &self,
        feed: Arc<ChangeFeed>,
    ) -> Result<(Client, tokio::task::JoinHandle<()>), StoreError> {
        let mut config = self.config.clone();
        config.application_name("airlock-listen");
        match &self.tls {
            None => {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(db_error)?;
                Ok((
                    client,
                    tokio::spawn(forward_notifications(connection, feed)),
                ))
            }
            Some(tls) => {
                let (client, connection) = config
                    .connect(MakeRustls(Arc::clone(tls)))
                    .await
                    .map_err(db_error)?;
                Ok((
                    client,
                    tokio::spawn(forward_notifications(connection, feed)),
                ))
            }
        }
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(db_error)?;
                tokio::spawn(connection);
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(MakeRustls(Arc::clone(tls)))
                    .await
                    .map_err(db_error)?;
                tokio::spawn(connection);
                Ok(client)
            }
        }
    }
}

/// Drives a listening connection, handing its notifications to `feed`
/// until the connection ends.
async fn forward_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    feed: Arc<ChangeFeed>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|context| connection.poll_message(context)).await {
            Some(Ok(AsyncMessage::Notification(notification))) => {
                if notification.channel() == crate::changes::CHANNEL {
                    feed.publish(StoreChange::from_payload(notification.payload()));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

/// A store error from a client error: the server's message and SQLSTATE,
/// or what failed on the way (never the password: the client never prints
/// it).
pub(crate) fn db_error(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
        None => match std::error::Error::source(&error) {
            // "error connecting to server: Connection refused (os error 111)"
            Some(cause) => StoreError::Postgres(format!("{error}: {cause}")),
            None => StoreError::Postgres(error.to_string()),
        },
    }
}

/// True when `error` is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// TLS towards the store through rustls.
struct MakeRustls(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            server_name: rustls::pki_types::ServerName::try_from(domain.to_string())?,
        })
    }
}

struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let stream = connector.connect(self.server_name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A TLS stream to the store. No channel binding is offered (SCRAM runs
/// without `-PLUS`): the end-point hash depends on the certificate's
/// signature algorithm, and a wrong guess would fail every login.
struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(context, buffer)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(context)
    }
}

/// Column `index` of `row`, as a store error when its type does not fit.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(db_error)
}
