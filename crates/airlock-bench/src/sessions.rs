//! `--sessions N`: the scale of sessions one gateway holds. Opens `N` idle
//! authenticated sessions (10,000 by default in the terms) and
//! measures what they cost and whether they slow the active ones:
//! connect time, the gateway's RSS and open descriptors per session, and
//! the latency of one active client (sequential `select 1`, p50/p99)
//! before and while the idle sessions are held.
//!
//! Each gateway session opens its own upstream session, and 10,000
//! PostgreSQL backends would measure PostgreSQL, not the gateway: the
//! gateway's upstream here is PgBouncer in transaction pooling in front of
//! the cluster (a setup operators use for exactly this), so the upstream
//! side costs a socket per session. The harness raises its own open-file
//! limit (children inherit it); the gateway needs two descriptors per
//! session, PgBouncer one, this process one.

use crate::idle::open_idle;
use crate::pgbench::Endpoint;
use crate::pgbouncer::{PgBouncer, PoolMode, Settings};
use crate::sys;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Queries of the latency probe.
const PROBES: usize = 2_000;

/// One configuration's numbers.
pub struct Scale {
    pub label: &'static str,
    pub sessions: usize,
    pub connect_seconds: f64,
    pub rss_before: u64,
    pub rss_with_sessions: u64,
    pub fds_before: usize,
    pub fds_with_sessions: usize,
    /// Active client's latency (p50, p99) before and while idle sessions
    /// are held, microseconds.
    pub alone: (f64, f64),
    pub beside_idle: (f64, f64),
}

/// Where the measurement connects and whom it watches.
pub struct Target<'a> {
    pub label: &'static str,
    pub endpoint: &'a Endpoint,
    pub pid: u32,
}

/// Starts PgBouncer in transaction pooling in front of `upstream_port`,
/// sized for `sessions` clients: the gateways' upstream.
pub fn bouncer(upstream_port: u16, password: &str, sessions: usize) -> Result<PgBouncer> {
    PgBouncer::start_with(
        upstream_port,
        "appdb",
        "app",
        password,
        &Settings {
            pool_mode: PoolMode::Transaction,
            max_client_conn: sessions + 100,
            client_tls: None,
        },
    )
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn probe(conninfo: &str) -> Result<(f64, f64)> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .context("connect the latency probe")?;
    let driver = tokio::spawn(connection);
    for _ in 0..50 {
        client.simple_query("select 1").await?;
    }
    let mut micros = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let started = Instant::now();
        client
            .simple_query("select 1")
            .await
            .context("probe query")?;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    drop(client);
    let _ = driver.await;
    micros.sort_by(f64::total_cmp);
    Ok((percentile(&micros, 0.5), percentile(&micros, 0.99)))
}

/// Measures one gateway with `sessions` idle sessions.
pub fn measure(target: &Target<'_>, sessions: usize) -> Result<Scale> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let conninfo = format!(
            "{} password={}",
            target.endpoint.conninfo(),
            target.endpoint.password
        );
        let alone = probe(&conninfo).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = sys::rss_bytes(target.pid)?;
        let fds_before = fd_count(target.pid);
        let started = Instant::now();
        let held = open_idle(&conninfo, sessions).await?;
        let connect_seconds = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_with_sessions = sys::rss_bytes(target.pid)?;
        let fds_with_sessions = fd_count(target.pid);
        let beside_idle = probe(&conninfo).await?;
        // Every idle session must still be alive after the probe.
        for (client, _) in held.iter().step_by((sessions / 100).max(1)) {
            client
                .simple_query("select 1")
                .await
                .context("an idle session after the probe")?;
        }
        drop(held);
        Ok(Scale {
            label: target.label,
            sessions,
            connect_seconds,
            rss_before,
            rss_with_sessions,
            fds_before,
            fds_with_sessions,
            alone,
            beside_idle,
        })
    })
}

/// The open-file limit the run needs: the gateway holds two descriptors
/// per session; a margin for the recorder, listeners and PgBouncer.
pub fn needed_open_files(sessions: usize) -> u64 {
    (sessions as u64) * 2 + 256
}

/// Fails early, with what to do, when the limit cannot hold the sessions.
pub fn check_limit(sessions: usize, limit: &str) -> Result<()> {
    let needed = needed_open_files(sessions);
    match limit.parse::<u64>() {
        Ok(have) if have >= needed => Ok(()),
        _ => bail!(
            "{sessions} sessions need an open-file limit of at least {needed} (have {limit}); \
             run as root or raise the hard limit (`ulimit -Hn {needed}`)"
        ),
    }
}

/// The Markdown report.
pub fn render(
    results: &[Result<Scale, String>],
    limit: &str,
    command: &str,
    binary: &Path,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# airlock-bench: scale of sessions\n");
    let _ = writeln!(out, "Command: `{command}`  ");
    let _ = writeln!(out, "Binary: `{}`  ", binary.display());
    let _ = writeln!(
        out,
        "Open-file limit: {limit}; load at end: {}\n",
        sys::load_average()
    );
    let _ = writeln!(
        out,
        "Idle sessions opened through one gateway (tokio-postgres, no TLS, loopback; each ran \
         `select 1` and stays open); the gateway's upstream is PgBouncer in transaction pooling \
         in front of PostgreSQL, so the upstream side is one socket per session. The active \
         client runs {PROBES} sequential `select 1` before and while the idle sessions are held.\n"
    );
    let _ = writeln!(
        out,
        "| gateway | sessions | connect (s) | RSS per session | fds per session | active p50 / p99 alone (µs) | with idle sessions (µs) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for result in results {
        match result {
            Ok(scale) => {
                let per_session = scale.rss_with_sessions.saturating_sub(scale.rss_before) as f64
                    / scale.sessions as f64;
                let fds = scale.fds_with_sessions.saturating_sub(scale.fds_before) as f64
                    / scale.sessions as f64;
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {:.1} KiB | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} |",
                    scale.label,
                    scale.sessions,
                    scale.connect_seconds,
                    per_session / 1024.0,
                    fds,
                    scale.alone.0,
                    scale.alone.1,
                    scale.beside_idle.0,
                    scale.beside_idle.1,
                );
            }
            Err(error) => {
                let _ = writeln!(out, "| FAILED | | | | | | {error} |");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_sorted_sample() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sample, 0.5), 51.0);
        assert_eq!(percentile(&sample, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_limit_check_names_what_is_needed() {
        assert!(check_limit(10_000, "65536").is_ok());
        let error = check_limit(10_000, "20000").unwrap_err().to_string();
        assert!(error.contains("20256"), "{error}");
        assert!(check_limit(10, "unchanged (prlimit failed)").is_err());
    }
}
