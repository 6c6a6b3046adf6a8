//! Three `airlock serve` replicas on one shared PostgreSQL store behind a
//! real HAProxy (Debian's `haproxy`, TCP mode, health-checking each
//! replica's `/readyz`), with `pgbench`'s TPC-B-like read/write script
//! through the balancer in rounds for `RUN` (the issue's 60 s). Half-way
//! one replica is killed with SIGKILL and started again on its data dir.
//! Afterwards: every round but the killed one (and the one right after)
//! ran clean, every row pgbench inserted upstream has its `command` record
//! in the shared chain, no command is recorded twice (the restarted
//! replica's journal replay adds nothing twice), and `airlock audit
//! verify` passes over all replicas' events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{free_port, pg_client, GatewayProcess};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::replicas::{clusters_with_store_config, start_replica};

/// How long pgbench runs through the balancer, in rounds of `ROUND`.
const RUN: Duration = Duration::from_secs(60);
const ROUND: Duration = Duration::from_secs(2);
/// The round in which replica B is killed: half-way.
const KILL_ROUND: usize = (RUN.as_secs() / ROUND.as_secs() / 2) as usize;
const CLIENTS: usize = 4;

struct Haproxy {
    child: Child,
    port: u16,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy in TCP mode in front of the replicas' PostgreSQL listeners; a
/// replica whose `/readyz` fails twice 250 ms apart gets no new session, a
/// refused connect is retried on another replica.
fn haproxy(dir: &std::path::Path, replicas: &[&GatewayProcess]) -> Haproxy {
    let port = free_port();
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(n, replica)| {
            format!(
                "    server r{n} 127.0.0.1:{} check port {} inter 250ms fall 2 rise 2\n",
                replica.pg_port, replica.admin_port
            )
        })
        .collect();
    let config = format!(
        "global\n    maxconn 256\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    retries 3\n    option redispatch\n\
         frontend postgres\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run haproxy (.ci/install-deps installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Haproxy { child, port }
}

/// One pgbench round through the balancer: transactions that committed.
fn pgbench_round(port: u16, token: &str) -> (bool, u64, String) {
    let output = Command::new(pg_client("pgbench"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "agent-7", "-n", "-c", &CLIENTS.to_string(), "-j", "2"])
        .args(["-T", &ROUND.as_secs().to_string(), "pg-test"])
        .env("PGPASSWORD", token)
        .env("PGSSLMODE", "require")
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let processed = stdout
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0);
    (
        output.status.success(),
        processed,
        format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn pgbench_through_haproxy_survives_a_sigkilled_replica_with_every_row_recorded_once() {
    // pg_stat_statements on the store: what the replicas send it per command.
    let (store, upstream, config) = clusters_with_store_config(
        "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n",
        &[],
    );
    store.sql_in("airlock_state", "create extension pg_stat_statements");
    let init = Command::new(pg_client("pgbench"))
        .args(["-i", "-q", "-s", "1", "-h", "127.0.0.1"])
        .args(["-p", &upstream.port.to_string(), "-U", "postgres", "appdb"])
        .env("PGPASSWORD", &upstream.superuser_password)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", common::stderr(&init));
    upstream.sql_in(
        "appdb",
        "grant all on pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history to app",
    );
    let a = start_replica(&config, &store);
    let mut b = start_replica(&config, &store);
    let c = start_replica(&config, &store);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let dir = tempfile::tempdir().unwrap();
    let balancer = haproxy(dir.path(), &[&a, &b, &c]);

    let commands_before = command_events(&store);
    store.sql_in("airlock_state", "select pg_stat_statements_reset()");
    let started = Instant::now();
    let mut rounds = Vec::new();
    let mut killed_in = None;
    while started.elapsed() < RUN {
        let round = rounds.len();
        if round == KILL_ROUND {
            // SIGKILL mid-run (pgbench's clients on B lose their sessions
            // in this round), then B comes back on its own data dir.
            let kill_at = Instant::now();
            let bench = std::thread::spawn({
                let token = token.clone();
                let port = balancer.port;
                move || pgbench_round(port, &token)
            });
            std::thread::sleep(ROUND / 2);
            b.restart();
            eprintln!("B killed and back in {} ms", kill_at.elapsed().as_millis());
            rounds.push(bench.join().unwrap());
            killed_in = Some(round);
            continue;
        }
        rounds.push(pgbench_round(balancer.port, &token));
    }
    let killed_in = killed_in.expect("the run reached the kill");
    let committed: u64 = rounds.iter().map(|(_, processed, _)| processed).sum();
    for (n, (ok, processed, output)) in rounds.iter().enumerate() {
        eprintln!("round {n}: ok={ok} transactions={processed}");
        // Every round but the killed one runs clean: new sessions never go
        // to a dead replica (health check, redispatch).
        if n != killed_in && n != killed_in + 1 {
            assert!(*ok && *processed > 0, "round {n} failed:\n{output}");
        }
    }
    assert!(rounds.last().unwrap().0, "the last round failed");
    eprintln!(
        "{committed} transactions in {} s through 3 replicas",
        started.elapsed().as_secs()
    );

    // Let every replica's index catch up, then compare with the upstream.
    std::thread::sleep(Duration::from_millis(1500));
    let history: i64 = upstream
        .sql_in("appdb", "select count(*) from pgbench_history")
        .trim()
        .parse()
        .unwrap();
    assert!(
        history as u64 >= committed,
        "{history} rows, {committed} commits"
    );
    let recorded = |filter: &str| -> i64 {
        store
            .sql_in(
                "airlock_state",
                &format!(
                    "select count(*) from events where kind = 'command' \
                     and data::jsonb ->> 'statement' like 'INSERT INTO pgbench_history%' {filter}"
                ),
            )
            .trim()
            .parse()
            .unwrap()
    };
    let inserts = recorded("");
    eprintln!("{history} history rows, {inserts} recorded INSERTs");
    assert!(
        inserts >= history,
        "{history} rows upstream but only {inserts} recorded INSERTs"
    );
    // An INSERT recorded whose transaction died with B, at most one per
    // client of the killed round.
    assert!(
        inserts - history <= CLIENTS as i64,
        "{inserts} recorded INSERTs for {history} rows"
    );
    // The store's cost per command: statements, writes and commits the
    // replicas sent it during the run (logins, lockout checks, journal
    // indexing and all), per recorded command.
    let commands = command_events(&store) - commands_before;
    let cost = store.sql_in(
        "airlock_state",
        "select coalesce(sum(calls), 0), \
         coalesce(sum(calls) filter (where query ~* '^\\s*(insert|update|delete)'), 0), \
         coalesce(sum(calls) filter (where query ~* '^\\s*commit'), 0), \
         coalesce(sum(rows) filter (where query ~* '^\\s*insert into events'), 0) \
         from pg_stat_statements where dbid = (select oid from pg_database where datname = 'airlock_state')",
    );
    let cost: Vec<f64> = cost
        .trim()
        .split('|')
        .map(|value| value.trim().parse().unwrap())
        .collect();
    let per = |value: f64| value / commands as f64;
    eprintln!(
        "store per command ({commands} commands): {:.3} statements, {:.3} writes, {:.3} commits, {:.3} event rows",
        per(cost[0]),
        per(cost[1]),
        per(cost[2]),
        per(cost[3])
    );
    assert!(commands > 0);
    assert!(cost[3] >= commands as f64, "fewer event rows than commands");
    assert!(
        per(cost[0]) < 10.0,
        "the store is asked too often per command"
    );
    let twice = store.sql_in(
        "airlock_state",
        "select count(*) from (select session_id, data from events where kind = 'command' \
         group by session_id, data having count(*) > 1) as twice",
    );
    assert_eq!(twice.trim(), "0", "a command recorded twice");
    for replica in [&a, &b, &c] {
        let report: serde_json::Value =
            serde_json::from_str(&replica.cli_ok(&["audit", "verify", "--output", "json"], None))
                .unwrap();
        assert_eq!(report["ok"], true, "{report}");
    }
}

/// Command events in the shared chain.
fn command_events(store: &airlock_testkit::PgCluster) -> i64 {
    store
        .sql_in(
            "airlock_state",
            "select count(*) from events where kind = 'command'",
        )
        .trim()
        .parse()
        .unwrap()
}
