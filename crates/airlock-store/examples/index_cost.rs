//! What the event index costs per event: appends 160,000 realistic command
//! and result events, from 8 interleaved sessions, in journal-sized batches
//! (`PER` events each, default 150: about 5 ms of 8 pgbench clients), and
//! prints the wall and CPU time per event. The recorder's index thread does
//! exactly this work for every recorded command (two events per command,
//! the result folded into its command's row; `FOLD=0` stores both rows).
//!
//! ```text
//! PER=150 cargo run --release -p airlock-store --example index_cost
//! ```
//!
//! Time on a busy machine varies by ±10% from run to run; instructions do
//! not. `BUILD_ONLY=1` builds the events and appends none: the baseline to
//! subtract from a count of the whole process, e.g.
//! `perf stat -e instructions:u,instructions:k`.

// An example program: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_store::prelude::*;
use airlock_store::{fold_results, EventData, NewEvent, Store};
use serde_json::json;
use std::time::Instant;

const EVENTS: usize = 160_000;
const SESSIONS: u64 = 8;

fn main() {
    let per: usize = std::env::var("PER")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(150)
        .max(2);
    // On the disk the gateway would use, not a tmpfs.
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.set_chain_key([7u8; 32]).unwrap();
    let batches: Vec<Vec<(i64, NewEvent)>> = (0..EVENTS / per)
        .map(|batch| {
            (0..per / 2)
                .flat_map(|i| {
                    let n = (batch * per / 2 + i) as u64;
                    commands_and_results(n)
                })
                .collect()
        })
        .collect();
    let events: usize = batches.iter().map(Vec::len).sum();
    if std::env::var_os("BUILD_ONLY").is_some() {
        println!("{events} events built, none appended");
        return;
    }
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    // `FOLD=0`: every result a row of its own, as before results were
    // folded into their command's row.
    let fold = std::env::var("FOLD").map_or(true, |value| value != "0");
    let mut rows = 0;
    for (offset, batch) in batches.into_iter().enumerate() {
        let batch = if fold { fold_results(batch) } else { batch };
        rows += batch.len();
        store
            .append_journaled(&batch, "bench.journal", offset as u64)
            .unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{events} events ({rows} rows) in batches of {per}: {:.2} µs/event wall, {:.2} µs/event CPU",
        wall * 1e6 / events as f64,
        cpu * 1e6 / events as f64
    );
}

/// A `command` event and its `command.result`, as the relay records them.
fn commands_and_results(n: u64) -> [(i64, NewEvent); 2] {
    let session = format!(
        "s-{:016x}",
        (n % SESSIONS).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let ts = i64::try_from(n).unwrap();
    // As the gateway serializes them: `seq` first (what folding reads).
    #[derive(Debug, serde::Serialize)]
    struct Seq<T> {
        seq: u64,
        #[serde(flatten)]
        rest: T,
    }
    let command = NewEvent {
        kind: "command".into(),
        session_id: Some(session.clone()),
        identity: Some("bench-agent".into()),
        data: EventData::from_serialize(&Seq {
            seq: n,
            rest: json!({
                "connection": "bench", "message": "query",
                "statement": "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
                "parameters": 0, "decision": "forward",
                "policy": {"access": "read", "complete": true, "operations": ["select"],
                           "policy_version": 1, "rules": ["reads"], "statements": 1,
                           "tables": ["pgbench_accounts"], "verdict": "allow"},
            }),
        }),
    };
    let result = NewEvent {
        kind: "command.result".into(),
        session_id: Some(session),
        identity: Some("bench-agent".into()),
        data: EventData::from_serialize(&Seq {
            seq: n,
            rest: json!({
                "status": "ok", "tags": ["SELECT 1"], "rows": 1, "duration_us": 120,
                "error_code": null, "error_message": null, "columns": ["abalance"],
                "sample": [["0"]], "sample_truncated": false, "masked": {},
            }),
        }),
    };
    [(ts, command), (ts, result)]
}

/// This process's user + system CPU time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ: 100 on Linux
}
