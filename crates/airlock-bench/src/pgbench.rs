//! Runs pgbench (`-S`, or the TPC-B-like default script for writes)
//! against one endpoint and reads its results: TPS and
//! failures from its summary, latencies from its per-transaction logs
//! (`-l`: one line per transaction, latency in µs in the third column).

use crate::sys;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The mode that runs pgbench's default TPC-B-like script (seven
/// statements per transaction: BEGIN, three UPDATEs, a SELECT, an INSERT,
/// END) in simple protocol.
pub const WRITES: &str = "tpcb";

/// The mode that runs `-S -M simple` over TLS (`sslmode=require`): how
/// agents reach a gateway over the network.
pub const SIMPLE_TLS: &str = "simple-tls";

/// Where pgbench connects (TCP on 127.0.0.1; TLS only in mode
/// [`SIMPLE_TLS`]).
#[derive(Clone)]
pub struct Endpoint {
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: String,
}

impl Endpoint {
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={} dbname={} sslmode=disable connect_timeout=10",
            self.port, self.user, self.database
        )
    }

    /// `pgbench` (or `psql`) with the connection settings in the
    /// environment (libpq reads PGHOST etc.).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(airlock_testkit::pg_client(program));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.database)
            .env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10");
        command
    }
}

/// Latency distribution of one run, in microseconds.
#[derive(Clone, Copy, Default)]
pub struct Latency {
    pub count: usize,
    pub avg_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Latency {
    pub fn from_samples(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let count = samples.len();
        let sum: u64 = samples.iter().sum();
        Self {
            count,
            avg_us: sum as f64 / count as f64,
            p50_us: percentile(&samples, 0.50),
            p99_us: percentile(&samples, 0.99),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], quantile: f64) -> f64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or(0) as f64
}

/// One measured run.
pub struct Run {
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    pub latency: Latency,
    /// CPU time of the watched proxy process per transaction, µs.
    pub proxy_cpu_us: Option<f64>,
    /// Journal syncs (group commits) per transaction, for a gateway that
    /// records (`audit_journal_syncs` of its `/readyz`).
    pub syncs_per_transaction: Option<f64>,
}

/// `pgbench -n -S -M <mode> -c <clients> -j min(clients,2) -T <seconds> -l`;
/// mode [`WRITES`] runs the default TPC-B-like script with `-M simple`
/// instead of `-S`. `watch` is the proxy process whose CPU time is charged
/// to the run.
pub fn run(
    endpoint: &Endpoint,
    mode: &str,
    clients: u32,
    seconds: u64,
    watch: Option<u32>,
) -> Result<Run> {
    let logs = tempfile::Builder::new()
        .prefix("airlock-bench-pgbench-")
        .tempdir()?;
    let prefix = logs.path().join("txn");
    let ticks_before = watch.map(sys::cpu_ticks).transpose()?;
    let (script, sslmode): (&[&str], &str) = match mode {
        WRITES => (&["-M", "simple"], "disable"),
        SIMPLE_TLS => (&["-S", "-M", "simple"], "require"),
        _ => (&["-S", "-M", mode], "disable"),
    };
    let output = endpoint
        .command("pgbench")
        .env("PGSSLMODE", sslmode)
        .arg("-n")
        .args(script)
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.clamp(1, 2).to_string()])
        .args(["-T", &seconds.to_string()])
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .output()
        .context("run pgbench")?;
    let ticks_after = watch.map(sys::cpu_ticks).transpose()?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() {
        bail!(
            "pgbench -M {mode} -c {clients} exited with {}:\n{}\n{}",
            output.status,
            tail(&stderr, 20),
            tail(&stdout, 20)
        );
    }
    let tps = summary_number(&stdout, "tps = ")
        .with_context(|| format!("no `tps = ` in pgbench output:\n{stdout}"))?;
    let transactions = summary_number(&stdout, "number of transactions actually processed: ")
        .context("no transaction count in pgbench output")? as u64;
    let failed = summary_number(&stdout, "number of failed transactions: ").unwrap_or(0.0) as u64;
    let latency = Latency::from_samples(read_logs(logs.path())?);
    let proxy_cpu_us = match (ticks_before, ticks_after) {
        (Some(before), Some(after)) if transactions > 0 => Some(
            (after.saturating_sub(before)) as f64 * 1e6
                / sys::clock_ticks_per_second() as f64
                / transactions as f64,
        ),
        _ => None,
    };
    Ok(Run {
        tps,
        transactions,
        failed,
        latency,
        proxy_cpu_us,
        syncs_per_transaction: None,
    })
}

/// `pgbench -i -q -s <scale>`: pgbench's tables at `endpoint`.
pub fn init(endpoint: &Endpoint, scale: u32) -> Result<()> {
    let init = endpoint
        .command("pgbench")
        .args(["-i", "-q", "-s", &scale.to_string()])
        .output()
        .context("run pgbench -i")?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    Ok(())
}

/// The number after `label` on the first line that has it.
fn summary_number(text: &str, label: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(label)?;
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number.parse().ok()
    })
}

/// Latencies (µs) of every logged transaction: `client_id transaction_no
/// latency_us script_no epoch_s epoch_us` per line, one file per thread.
fn read_logs(dir: &Path) -> Result<Vec<u64>> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            // Failed or skipped transactions log a word instead of a number.
            if let Some(latency) = line
                .split_whitespace()
                .nth(2)
                .and_then(|field| field.parse::<u64>().ok())
            {
                samples.push(latency);
            }
        }
    }
    Ok(samples)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latency = Latency::from_samples((1..=100).collect());
        assert_eq!(latency.count, 100);
        assert_eq!(latency.p50_us, 50.0);
        assert_eq!(latency.p99_us, 99.0);
        assert!((latency.avg_us - 50.5).abs() < 1e-9);
        assert_eq!(Latency::from_samples(vec![7]).p99_us, 7.0);
    }

    #[test]
    fn reads_the_pgbench_summary() {
        let text = "number of transactions actually processed: 1234\n\
                    number of failed transactions: 0 (0.000%)\n\
                    latency average = 0.081 ms\n\
                    tps = 12345.678901 (without initial connection time)\n";
        assert_eq!(summary_number(text, "tps = "), Some(12345.678901));
        assert_eq!(
            summary_number(text, "number of transactions actually processed: "),
            Some(1234.0)
        );
        assert_eq!(
            summary_number(text, "number of failed transactions: "),
            Some(0.0)
        );
    }
}
