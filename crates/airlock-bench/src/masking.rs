//! The masking benchmark: a table of people (name, email, phone, card
//! number, notes with an occasional email) read whole with psql, directly
//! and through both gateways.

use crate::pgbench::{tail, Endpoint};
use crate::sys;
use airlock_testkit::PgCluster;
use anyhow::{bail, Context, Result};
use std::time::Instant;

/// Creates `pii` in `appdb`, owned by `app`; returns the result text size
/// of `select * from pii` in bytes (the sum of every value's text form).
pub fn create_table(cluster: &PgCluster, rows: u32) -> Result<u64> {
    cluster.sql_in(
        "appdb",
        &format!(
            "DROP TABLE IF EXISTS pii;
             CREATE TABLE pii (
                 id bigint PRIMARY KEY,
                 name text NOT NULL,
                 email text NOT NULL,
                 phone text NOT NULL,
                 card_number text NOT NULL,
                 notes text NOT NULL);
             INSERT INTO pii
             SELECT g,
                    'Customer ' || g,
                    'user' || g || '@example.com',
                    '+1 555 ' || lpad((g % 1000)::text, 3, '0') || ' ' || lpad((g % 10000)::text, 4, '0'),
                    (ARRAY['4111 1111 1111 1111', '5500 0000 0000 0004',
                           '3400 0000 0000 009', '6011 0000 0000 0004'])[1 + g % 4],
                    CASE WHEN g % 10 = 0
                         THEN 'asked to be contacted at alt' || g || '@mail.example.org instead'
                         ELSE 'order ' || g || ' shipped; no further notes on this account' END
             FROM generate_series(1, {rows}) AS g;
             ALTER TABLE pii OWNER TO app;"
        ),
    );
    // VACUUM cannot share psql's one-transaction `-c` string.
    cluster.sql_in("appdb", "VACUUM ANALYZE pii");
    let bytes = cluster.sql_in(
        "appdb",
        "SELECT sum(octet_length(id::text) + octet_length(name) + octet_length(email) \
         + octet_length(phone) + octet_length(card_number) + octet_length(notes)) FROM pii",
    );
    bytes
        .trim()
        .parse()
        .with_context(|| format!("result size {bytes:?}"))
}

pub struct Read {
    /// Median wall time of one full read, seconds.
    pub seconds: f64,
    /// Gateway CPU seconds per read (none for direct).
    pub gateway_cpu_seconds: Option<f64>,
}

/// Reads the whole table `repetitions` times through `endpoint`
/// (`psql -At`, output to /dev/null); `watch` is the gateway process.
pub fn read(endpoint: &Endpoint, repetitions: usize, watch: Option<u32>) -> Result<Read> {
    let mut times = Vec::with_capacity(repetitions);
    let ticks_before = watch.map(sys::cpu_ticks).transpose()?;
    for _ in 0..repetitions {
        let started = Instant::now();
        let output = endpoint
            .command("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-o", "/dev/null", "-c", "select * from pii"])
            .output()
            .context("run psql")?;
        times.push(started.elapsed().as_secs_f64());
        if !output.status.success() {
            bail!(
                "psql select * from pii failed: {}",
                tail(&String::from_utf8_lossy(&output.stderr), 10)
            );
        }
    }
    let ticks_after = watch.map(sys::cpu_ticks).transpose()?;
    times.sort_by(f64::total_cmp);
    let seconds = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let gateway_cpu_seconds = match (ticks_before, ticks_after) {
        (Some(before), Some(after)) => Some(
            after.saturating_sub(before) as f64
                / sys::clock_ticks_per_second() as f64
                / repetitions as f64,
        ),
        _ => None,
    };
    Ok(Read {
        seconds,
        gateway_cpu_seconds,
    })
}

/// One row's email, phone and card number as `endpoint` returns them.
pub fn sample_row(endpoint: &Endpoint) -> Result<String> {
    let output = endpoint
        .command("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-c",
            "select email, phone, card_number, notes from pii where id = 10",
        ])
        .output()
        .context("run psql")?;
    if !output.status.success() {
        bail!(
            "psql sample row failed: {}",
            tail(&String::from_utf8_lossy(&output.stderr), 10)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
