//! Memory per idle session: opens `n` authenticated sessions through a
//! gateway (tokio-postgres, no TLS, loopback), runs one query on each so
//! the relay is fully set up, then leaves them idle and reads the gateway's
//! resident set size.

use crate::pgbench::Endpoint;
use crate::sys;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Idle {
    pub sessions: usize,
    pub rss_before: u64,
    pub rss_with_sessions: u64,
    pub connect_seconds: f64,
}

impl Idle {
    pub fn per_session_bytes(&self) -> f64 {
        self.rss_with_sessions.saturating_sub(self.rss_before) as f64 / self.sessions as f64
    }
}

pub fn measure(endpoint: &Endpoint, pid: u32, sessions: usize) -> Result<Idle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure_async(endpoint, pid, sessions))
}

async fn measure_async(endpoint: &Endpoint, pid: u32, sessions: usize) -> Result<Idle> {
    let rss_before = sys::rss_bytes(pid)?;
    let conninfo = format!("{} password={}", endpoint.conninfo(), endpoint.password);
    let started = Instant::now();
    let held = open_idle(&conninfo, sessions).await?;
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let the gateway settle (buffers returned, recorder flushed).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_with_sessions = sys::rss_bytes(pid)?;
    drop(held);
    Ok(Idle {
        sessions,
        rss_before,
        rss_with_sessions,
        connect_seconds,
    })
}

/// Sessions opened through a gateway, each authenticated and past its
/// first query, open for as long as the caller keeps them.
pub type Held = Vec<(
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
)>;

/// Opens `sessions` sessions at `conninfo`, each running `select 1` once.
pub async fn open_idle(conninfo: &str, sessions: usize) -> Result<Held> {
    // A few logins in flight at a time: SCRAM is CPU-bound on every side.
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..sessions {
        let limit = Arc::clone(&limit);
        let conninfo = conninfo.to_string();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .context("connect an idle session")?;
            let driver = tokio::spawn(connection);
            client
                .simple_query("select 1")
                .await
                .context("first query of an idle session")?;
            anyhow::Ok((client, driver))
        });
    }
    let mut held = Vec::with_capacity(sessions);
    while let Some(joined) = tasks.join_next().await {
        held.push(joined??);
    }
    Ok(held)
}
