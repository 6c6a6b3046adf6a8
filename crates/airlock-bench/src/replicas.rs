//! `--replicas`: what the shared PostgreSQL store costs per command, and
//! what several replicas behind a load balancer give on this machine.
//!
//! Same run, same upstream, targets interleaved per script: PostgreSQL
//! directly, HAProxy (TCP mode) in front of PostgreSQL (the balancer's own
//! cost), one full gateway on its embedded SQLite store, one replica on a
//! shared PostgreSQL store, and HAProxy in front of one and of three such
//! replicas. Every gateway runs the full configuration (policy, masking,
//! recording). For the shared-store targets the store's own statement
//! counters (`pg_stat_statements`, reset before each run) give its
//! statements, writes and commits per recorded command. On a 2-core
//! machine three replicas cannot be faster than one: the point is the
//! shared store's cost, and that spreading sessions costs nothing more.

use crate::pgbench::{self, Endpoint};
use crate::sys;
use airlock_testkit::{free_port, GatewayProcess, PgCluster};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MASTER_KEY: &str = "3a1f0e2d4c5b6a79887766554433221100ffeeddccbbaa998877665544332211";
const ADMIN_TOKEN: &str = "airlock-bench-replicas-admin-token";
const CLIENTS: u32 = 8;

/// The runs' length and the pgbench scale.
pub struct ReplicaPlan {
    pub duration: u64,
    pub scale: u32,
}

/// HAProxy in TCP mode in front of `servers` (port, health-check port).
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// `servers`: (PostgreSQL port, admin port whose `/readyz` is checked,
    /// if any).
    fn start(servers: &[(u16, Option<u16>)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("airlock-bench-haproxy-")
            .tempdir()?;
        let port = free_port();
        let checked = servers.iter().any(|(_, admin)| admin.is_some());
        let lines: String = servers
            .iter()
            .enumerate()
            .map(|(n, (pg, admin))| match admin {
                Some(admin) => {
                    format!("    server r{n} 127.0.0.1:{pg} check port {admin} inter 1s\n")
                }
                None => format!("    server r{n} 127.0.0.1:{pg}\n"),
            })
            .collect();
        let check = if checked {
            "    option httpchk GET /readyz\n    http-check expect status 200\n"
        } else {
            ""
        };
        let config = format!(
            "global\n    maxconn 1024\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\n\
             frontend postgres\n    bind 127.0.0.1:{port}\n    default_backend servers\n\
             backend servers\n    balance roundrobin\n{check}{lines}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("run haproxy (Debian package `haproxy`; .ci/install-deps installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("haproxy did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Health checks mark the servers up (rise 2 by default).
        if checked {
            std::thread::sleep(Duration::from_millis(2500));
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }
}

/// One target's row for one script.
struct Row {
    target: &'static str,
    script: &'static str,
    result: std::result::Result<pgbench::Run, String>,
    /// Store statements, writes, commits per recorded command.
    store: Option<(f64, f64, f64)>,
}

/// Runs the measurement and returns the Markdown report.
pub fn run(
    airlock: &Path,
    plan: &ReplicaPlan,
    progress: &dyn Fn(&str),
    command_line: &str,
) -> Result<String> {
    progress("starting the upstream PostgreSQL and the store PostgreSQL");
    let upstream = PgCluster::start_with_config(
        "max_connections = 300\nshared_buffers = 256MB\nlog_statement = 'none'\n",
    );
    // The store as one would run it: a commit it acknowledged is durable
    // (the test clusters' default `synchronous_commit = off` is not), and
    // its statements counted.
    let store = PgCluster::start_with_config(
        "synchronous_commit = on\nlog_statement = 'none'\n\
         shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n",
    );
    store.sql("CREATE DATABASE airlock_state");
    store.sql_in("airlock_state", "create extension pg_stat_statements");
    let password = upstream.role_password("app");
    let direct = Endpoint {
        port: upstream.port,
        user: "app".into(),
        database: "appdb".into(),
        password: password.clone(),
    };
    progress(&format!("pgbench -i -s {}", plan.scale));
    pgbench::init(&direct, plan.scale)?;

    let policy = crate::POLICY_FULL;
    let connection = format!(
        "connections:\n  - name: {c}\n    protocol: postgres\n    address: 127.0.0.1:{}\n    \
         database: appdb\n    credential: app\n    tags: {{env: dev}}\n\
         limits:\n  max_sessions_per_identity: 100000\n  max_sessions_per_connection: 100000\n\
         recording:\n  sync: writes\n",
        upstream.port,
        c = crate::CONNECTION
    );
    let shared = format!(
        "store: postgres://postgres@127.0.0.1:{}/airlock_state\n{connection}",
        store.port
    );
    let env = [
        ("AIRLOCK_LOG", "info"),
        ("AIRLOCK_STORE_PASSWORD", store.superuser_password.as_str()),
        ("AIRLOCK_MASTER_KEY", MASTER_KEY),
        ("AIRLOCK_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    progress("starting airlock: one on its embedded store, three on the shared store");
    let embedded =
        GatewayProcess::start_with_policy_and_env(airlock, &connection, policy, &env[..1]);
    embedded.set_credential("app", "app", &password);
    let (_, embedded_token) = embedded.issue_token(crate::IDENTITY, &[crate::CONNECTION], "1h");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let mut replica = GatewayProcess::start_with_policy_and_env(airlock, &shared, policy, &env);
        replica.admin_token = ADMIN_TOKEN.to_string();
        replicas.push(replica);
    }
    // One vault, one token store: set and issued once, valid everywhere.
    replicas[0].set_credential("app", "app", &password);
    let (_, token) = replicas[0].issue_token(crate::IDENTITY, &[crate::CONNECTION], "1h");
    let through = |port: u16, token: &str| Endpoint {
        port,
        user: crate::IDENTITY.into(),
        database: crate::CONNECTION.into(),
        password: token.to_string(),
    };
    let balancer_direct = Haproxy::start(&[(upstream.port, None)])?;
    let balancer_one = Haproxy::start(&[(replicas[0].pg_port, Some(replicas[0].admin_port))])?;
    let all: Vec<(u16, Option<u16>)> = replicas
        .iter()
        .map(|replica| (replica.pg_port, Some(replica.admin_port)))
        .collect();
    let balancer_three = Haproxy::start(&all)?;

    let via_haproxy = Endpoint {
        port: balancer_direct.port,
        ..direct.clone()
    };
    let pid = |gateway: &GatewayProcess| gateway.pid();
    // (label, endpoint, watched pids, shared store?)
    let targets: Vec<(&'static str, Endpoint, Vec<u32>, bool)> = vec![
        ("direct", direct.clone(), vec![], false),
        ("HAProxy → PostgreSQL", via_haproxy, vec![], false),
        (
            "airlock, embedded store",
            through(embedded.pg_port, &embedded_token),
            pid(&embedded).into_iter().collect(),
            false,
        ),
        (
            "airlock, shared store, 1 replica",
            through(replicas[0].pg_port, &token),
            pid(&replicas[0]).into_iter().collect(),
            true,
        ),
        (
            "HAProxy → 1 replica",
            through(balancer_one.port, &token),
            pid(&replicas[0]).into_iter().collect(),
            true,
        ),
        (
            "HAProxy → 3 replicas",
            through(balancer_three.port, &token),
            replicas.iter().filter_map(pid).collect(),
            true,
        ),
    ];

    progress("warm-up: 2 s direct");
    pgbench::run(&direct, "simple", CLIENTS, 2, None).context("warm-up run")?;
    let mut rows = Vec::new();
    for script in [pgbench::WRITES, "simple"] {
        for (label, endpoint, pids, shared) in &targets {
            progress(&format!(
                "pgbench {} -c {CLIENTS} -T {} via {label}",
                if script == pgbench::WRITES {
                    "(TPC-B-like)"
                } else {
                    "-S -M simple"
                },
                plan.duration
            ));
            if *shared {
                store.sql_in("airlock_state", "select pg_stat_statements_reset()");
            }
            let commands_before = shared.then(|| command_events(&store));
            let ticks_before: u64 = pids.iter().filter_map(|p| sys::cpu_ticks(*p).ok()).sum();
            let mut result = pgbench::run(endpoint, script, CLIENTS, plan.duration, None)
                .map_err(|error| format!("{error:#}"));
            let ticks_after: u64 = pids.iter().filter_map(|p| sys::cpu_ticks(*p).ok()).sum();
            if let Ok(run) = &mut result {
                if !pids.is_empty() && run.transactions > 0 {
                    run.proxy_cpu_us = Some(
                        ticks_after.saturating_sub(ticks_before) as f64 * 1e6
                            / sys::clock_ticks_per_second() as f64
                            / run.transactions as f64,
                    );
                }
            } else if let Err(error) = &result {
                progress(&format!("FAILED: {error}"));
            }
            // Let the indexes catch up before counting what reached the store.
            let store_cost = match commands_before {
                Some(before) => {
                    std::thread::sleep(Duration::from_millis(1500));
                    store_cost(&store, command_events(&store) - before)
                }
                None => None,
            };
            rows.push(Row {
                target: label,
                script,
                result,
                store: store_cost,
            });
        }
    }
    let verified = replicas.iter().all(|replica| {
        let output = replica.cli(&["audit", "verify", "--output", "json"], None);
        output.status.success()
            && serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .is_ok_and(|report| report["ok"] == true)
    });
    Ok(render(&rows, plan, verified, command_line, airlock))
}

/// Command events in the shared chain (folded results included in their
/// command's row).
fn command_events(store: &PgCluster) -> i64 {
    store
        .sql_in(
            "airlock_state",
            "select count(*) from events where kind = 'command'",
        )
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The store's statements, writes and commits per recorded command since
/// the last `pg_stat_statements_reset()`.
fn store_cost(store: &PgCluster, commands: i64) -> Option<(f64, f64, f64)> {
    if commands <= 0 {
        return None;
    }
    let line = store.sql_in(
        "airlock_state",
        "select coalesce(sum(calls), 0), \
         coalesce(sum(calls) filter (where query ~* '^\\s*(insert|update|delete)'), 0), \
         coalesce(sum(calls) filter (where query ~* '^\\s*commit'), 0) \
         from pg_stat_statements where dbid = (select oid from pg_database where datname = 'airlock_state') \
         and query !~* 'pg_stat_statements|count\\(\\*\\) from events'",
    );
    let values: Vec<f64> = line
        .trim()
        .split('|')
        .filter_map(|value| value.trim().parse().ok())
        .collect();
    let per = |n: f64| n / commands as f64;
    match values.as_slice() {
        [statements, writes, commits] => Some((per(*statements), per(*writes), per(*commits))),
        _ => None,
    }
}

fn render(
    rows: &[Row],
    plan: &ReplicaPlan,
    verified: bool,
    command_line: &str,
    airlock: &Path,
) -> String {
    let mut out = String::new();
    let machine = sys::machine();
    let date = sys::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let _ = writeln!(
        out,
        "# airlock benchmark: replicas on a shared store ({})\n",
        date.trim()
    );
    let _ = writeln!(out, "```sh\n{command_line}\n```\n");
    let _ = writeln!(
        out,
        "{} ({} cores), {}; airlock `{}`; load average at the end {}; pgbench -c {CLIENTS} -j 2, \
         {} s per run, scale {}; every gateway runs the full configuration (policy, masking, \
         recording with `sync: writes`). Ratios are against `direct` in the same run.\n",
        machine.cpu_model,
        machine.cores,
        machine.memory,
        airlock.display(),
        sys::load_average(),
        plan.duration,
        plan.scale
    );
    for script in [pgbench::WRITES, "simple"] {
        let base = rows
            .iter()
            .find(|row| row.script == script && row.target == "direct")
            .and_then(|row| row.result.as_ref().ok())
            .map(|run| run.tps);
        let title = if script == pgbench::WRITES {
            "pgbench TPC-B-like (reads and writes)"
        } else {
            "pgbench -S -M simple (reads)"
        };
        let _ = writeln!(out, "## {title}, {CLIENTS} clients\n");
        let _ = writeln!(
            out,
            "| target | TPS | × direct | p50 ms | p99 ms | gateway CPU µs/txn | store statements / command | store writes / command | store commits / command |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in rows.iter().filter(|row| row.script == script) {
            match &row.result {
                Ok(run) => {
                    let ratio = base
                        .map(|base| format!("{:.2}", run.tps / base))
                        .unwrap_or_default();
                    let cpu = run
                        .proxy_cpu_us
                        .map(|cpu| format!("{cpu:.1}"))
                        .unwrap_or_else(|| "—".into());
                    let (statements, writes, commits) = match row.store {
                        Some((s, w, c)) => {
                            (format!("{s:.2}"), format!("{w:.2}"), format!("{c:.2}"))
                        }
                        None => ("—".into(), "—".into(), "—".into()),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {:.0} | {ratio} | {:.2} | {:.2} | {cpu} | {statements} | {writes} | {commits} |",
                        row.target,
                        run.tps,
                        run.latency.p50_us / 1000.0,
                        run.latency.p99_us / 1000.0,
                    );
                }
                Err(error) => {
                    let first = error.lines().next().unwrap_or_default();
                    let _ = writeln!(out, "| {} | failed: {first} | | | | | | | |", row.target);
                }
            }
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "`airlock audit verify` on every replica after the runs: {}.\n",
        if verified { "ok" } else { "FAILED" }
    );
    let _ = writeln!(
        out,
        "A transaction of the TPC-B-like script is seven statements; the store columns are per \
         recorded command (a statement the gateway recorded), counted by the store's \
         `pg_stat_statements` during that run only (logins, lockout checks, wake-ups and the \
         index's batches included)."
    );
    out
}
