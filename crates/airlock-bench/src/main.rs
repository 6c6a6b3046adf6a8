//! airlock-bench: the gateway's cost, measured against a direct connection
//! and PgBouncer in the same run, on one machine.
//!
//! It starts a throwaway PostgreSQL (airlock-testkit), PgBouncer in front
//! of it, and the real `airlock` binary twice (pass-through: recording off,
//! no policy; full: recording, a policy file with a mask rule), then runs
//! `pgbench -S` in simple and prepared mode at several client counts
//! against all four, measures memory per idle session and the cost of
//! reading a PII table through the gateway, and writes a Markdown report.
//!
//! ```text
//! cargo run --release -p airlock-bench -- [--quick] [--duration SECS] [--out bench/results]
//! ```

// A benchmark driver, not the traffic path, yet it needs no unwrap: our
// own failures are `anyhow` errors and a failed measurement is reported,
// not hidden. The testkit it builds on stops loudly (panics) when the
// environment lacks something (no PostgreSQL binaries, a gateway that does
// not start): for a benchmark that is the right outcome.

mod http;
mod idle;
mod masking;
mod pgbench;
mod pgbouncer;
mod replicas;
mod report;
mod sessions;
mod sys;
mod sysbench;

use airlock_testkit::{GatewayProcess, PgCluster};
use anyhow::{bail, Context, Result};
use clap::Parser;
use pgbench::Endpoint;
use report::{Report, Target};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The gateway's cost against a direct connection and PgBouncer, measured
/// in the same run: pgbench -S (simple and prepared; 1, 8, 32 clients),
/// pgbench's TPC-B-like write script (1 and 8 clients),
/// memory per idle session, masking throughput. Writes
/// `<out>/<date>-<quick|full>.md` and `<out>/latest.md`.
#[derive(Parser, Debug)]
#[command(name = "airlock-bench")]
struct Args {
    /// Smoke run: 1 s per pgbench run, 1 and 8 clients, scale 1, 100 idle
    /// sessions, a 20,000-row masking table.
    #[arg(long)]
    quick: bool,
    /// Seconds per pgbench run (default 10; 1 with --quick).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Folder for the Markdown results.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    out: PathBuf,
    /// The `airlock` binary to measure (default: next to this executable;
    /// when run through cargo it is built first with the same profile).
    #[arg(long, value_name = "PATH", env = "AIRLOCK_BIN")]
    airlock_bin: Option<PathBuf>,
    /// `recording.sync` of the "full" configuration: `full` (every command
    /// waits for its group commit's fsync; the default here, so runs compare
    /// with earlier ones), `writes` (the gateway's default: only commands
    /// with an effect wait for the fsync) or `normal` (records survive a
    /// gateway crash, not a power loss).
    #[arg(long, value_name = "MODE", default_value = "full")]
    recording_sync: String,
    /// Also measure "full" with `metrics.enabled: false`, interleaved with
    /// the others: what counting per command costs.
    #[arg(long)]
    compare_metrics: bool,
    /// Measure the MySQL gateway instead: sysbench `oltp_point_select`,
    /// `oltp_read_only` and `oltp_read_write` at 1, 8 and 32 threads (1
    /// and 8 with --quick) against MariaDB directly, airlock pass-through
    /// and airlock full, then over TLS (client leg) to MariaDB and airlock
    /// full. Writes `<out>/<date>-mysql.md`.
    #[arg(long)]
    mysql: bool,
    /// Also run `pgbench -S -M simple` over TLS (`sslmode=require`) to
    /// every target: PostgreSQL with `ssl = on` (the baseline), PgBouncer
    /// with client TLS, and the gateways (their own certificate). Rows of
    /// mode `simple-tls`.
    #[arg(long)]
    tls: bool,
    /// Measure the scale of sessions instead: hold N idle sessions on one
    /// gateway (pass-through and full) whose upstream is PgBouncer in
    /// transaction pooling, and report connect time, RSS and descriptors
    /// per session and an active client's latency beside them. Raises the
    /// open-file limit (as root) to what N needs. Writes
    /// `<out>/<date>-sessions.md`.
    #[arg(long, value_name = "N")]
    sessions: Option<usize>,
    /// Measure the shared store instead: pgbench (TPC-B-like and -S
    /// simple, 8 clients) directly, through HAProxy to PostgreSQL, through
    /// one full gateway on its embedded store, one replica on a shared
    /// PostgreSQL store, and HAProxy (TCP) in front of one and of three
    /// replicas; with the store's statements, writes and commits per
    /// command. Writes `<out>/<date>-replicas.md`.
    #[arg(long)]
    replicas: bool,
    /// Measure the HTTP gateway instead: a small GET and a 100 KiB JSON
    /// GET from a local hyper upstream, directly, through HAProxy (`mode
    /// http`), airlock pass-through and airlock full (recording, masking),
    /// at 1, 8 and 32 keep-alive connections (1 and 8 with --quick), by a
    /// hyper load generator in this process. Writes `<out>/<date>-http.md`.
    #[arg(long)]
    http: bool,
}

/// What one run measures, by mode.
struct Plan {
    duration: u64,
    clients: Vec<u32>,
    scale: u32,
    idle_sessions: usize,
    pii_rows: u32,
    pii_repetitions: usize,
    warmup: u64,
    /// Client counts of the write (TPC-B-like) runs.
    write_clients: Vec<u32>,
}

impl Plan {
    fn new(args: &Args) -> Self {
        if args.quick {
            Self {
                duration: args.duration.unwrap_or(1),
                clients: vec![1, 8],
                scale: 1,
                idle_sessions: 100,
                pii_rows: 20_000,
                pii_repetitions: 2,
                warmup: 1,
                write_clients: vec![8],
            }
        } else {
            Self {
                duration: args.duration.unwrap_or(10),
                clients: vec![1, 8, 32],
                scale: 10,
                idle_sessions: 1_000,
                pii_rows: 100_000,
                pii_repetitions: 5,
                warmup: 3,
                write_clients: vec![1, 8],
            }
        }
    }
}

const MODES: [&str; 2] = ["simple", "prepared"];
const IDENTITY: &str = "bench-agent";
const CONNECTION: &str = "bench";

/// The policy of the "policy+mask" and "full" configurations, in the
/// format of `examples/policy.yaml`: pgbench's reads and writes are allowed
/// on the dev-tagged connection, unbounded writes and DDL in prod are not,
/// PII is masked (detectors find values inside any text column).
const POLICY_FULL: &str = "\
# airlock-bench: policy of the \"policy+mask\" and \"full\" configurations.
version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow

  - name: dev-writes
    match:
      connection: {tags: {env: dev}}
      access: write
    action: allow

  - name: no-unbounded-writes
    match:
      operations: [update, delete]
      has_where: false
    action: deny
    message: UPDATE and DELETE need a WHERE clause

  - name: no-ddl-in-prod
    match:
      connection: {tags: {env: prod}}
      operations: [create, alter, drop, truncate]
    action: deny
    message: '{operation} is not allowed on {connection}'

  - name: transactions
    match: {operations: [transaction]}
    action: allow

  - name: mask-pii
    match: {connection: {tags: {env: dev}}}
    mask:
      detectors: [email, card, iban, ssn, phone, secret]
      columns: [\"*password*\", \"*token*\"]
      style: partial
";

/// The policy of the "pass-through" configuration: the gateway refuses
/// every command without a policy (fail closed), so the closest to a bare
/// relay is a policy that allows everything and masks nothing.
const POLICY_ALLOW_ALL: &str = "\
# airlock-bench: policy of the \"pass-through\" configuration.
version: 1
default: allow
rules: []
";

fn main() {
    if let Err(error) = run() {
        eprintln!("airlock-bench: error: {error:#}");
        std::process::exit(1);
    }
}

fn progress(message: &str) {
    eprintln!("[airlock-bench] {message}");
}

fn run() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::new(&args);
    if plan.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    let airlock = airlock_binary(args.airlock_bin.clone())?;
    if let Some(sessions) = args.sessions {
        return run_sessions(&args, sessions, &airlock);
    }
    let nofile = sys::raise_open_file_limit();
    if args.replicas {
        return run_replicas(&args, &plan, &airlock);
    }
    if args.mysql {
        return run_mysql(&args, &plan, &airlock);
    }
    if args.http {
        return run_http(&args, &plan, &airlock);
    }
    progress(&format!(
        "airlock binary {}; open-file limit {nofile}",
        airlock.display()
    ));

    progress("starting PostgreSQL");
    // TLS is on at every target (clients choose with `sslmode`), so the
    // plaintext runs are the same servers as the TLS ones.
    let (_certs, cert, key) = airlock_testkit::server_certificate();
    let cluster = PgCluster::start_with_config(&format!(
        // Room for 1,000 idle sessions (each opens an upstream connection)
        // and the pgbench clients; the data set fits in shared buffers;
        // statement logging off (the testkit logs every statement).
        "max_connections = 1200\nshared_buffers = 256MB\nlog_statement = 'none'\n\
         ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert.display(),
        key.display()
    ));
    let app_password = cluster.role_password("app");
    let direct = Endpoint {
        port: cluster.port,
        user: "app".into(),
        database: "appdb".into(),
        password: app_password.clone(),
    };

    progress(&format!("pgbench -i -s {}", plan.scale));
    pgbench::init(&direct, plan.scale)?;
    prewarm(&cluster);

    progress("starting PgBouncer");
    let bouncer = pgbouncer::PgBouncer::start_with(
        cluster.port,
        "appdb",
        "app",
        &app_password,
        &pgbouncer::Settings {
            client_tls: Some((cert.clone(), key.clone())),
            ..pgbouncer::Settings::default()
        },
    )?;
    let via_bouncer = Endpoint {
        port: bouncer.port,
        ..direct.clone()
    };

    let policy_dir = tempfile::Builder::new()
        .prefix("airlock-bench-policy-")
        .tempdir()?;
    let policies = Policies {
        full: policy_dir.path().join("policy.yaml"),
        allow_all: policy_dir.path().join("allow-all.yaml"),
    };
    std::fs::write(&policies.full, POLICY_FULL)?;
    std::fs::write(&policies.allow_all, POLICY_ALLOW_ALL)?;

    progress("starting airlock (pass-through, policy+mask, full)");
    let mut gateways = Vec::new();
    let mut configs = vec![Config::Pass, Config::PolicyMask, Config::Full];
    if args.compare_metrics {
        configs.push(Config::FullMetricsOff);
    }
    for config in configs {
        let (gateway, endpoint) =
            start_gateway(&airlock, &cluster, config, &policies, &args.recording_sync)?;
        let pid = gateway.pid().context("gateway pid")?;
        gateways.push((config.target(), gateway, endpoint, pid));
    }

    let mut report = Report::new(
        args.quick,
        plan.duration,
        plan.scale,
        command_line(),
        &airlock,
    );
    report.nofile = nofile;
    report.pg_version = cluster.sql("SHOW server_version");
    report.pgbouncer_version = bouncer.version.clone();
    report.pgbench_version = sys::command_line(
        &airlock_testkit::pg_client("pgbench").to_string_lossy(),
        &["--version"],
    )
    .unwrap_or_else(|| "unknown".into());

    progress(&format!("warm-up: {} s direct", plan.warmup));
    pgbench::run(&direct, "simple", 8, plan.warmup, None).context("warm-up run")?;

    let mut targets: Vec<(Target, &Endpoint, Option<u32>)> = vec![
        (Target::Direct, &direct, None),
        (Target::PgBouncer, &via_bouncer, Some(bouncer.pid)),
    ];
    for (target, _, endpoint, pid) in &gateways {
        targets.push((*target, endpoint, Some(*pid)));
    }
    // Reads in both modes, then writes (last: they change the tables the
    // reads use, not their size).
    let tls_modes: &[&'static str] = if args.tls {
        &[pgbench::SIMPLE_TLS]
    } else {
        &[]
    };
    let runs: Vec<(&'static str, u32)> = MODES
        .iter()
        .chain(tls_modes)
        .flat_map(|&mode| plan.clients.iter().map(move |&clients| (mode, clients)))
        .chain(
            plan.write_clients
                .iter()
                .map(|&clients| (pgbench::WRITES, clients)),
        )
        .collect();
    for (mode, clients) in runs {
        // Targets interleaved per (mode, clients): drift on a shared machine
        // hits all of them alike.
        for (target, endpoint, watch) in &targets {
            let script = if mode == pgbench::WRITES {
                "(TPC-B-like)".to_string()
            } else {
                format!("-S -M {mode}")
            };
            progress(&format!(
                "pgbench {script} -c {clients} -T {} via {}",
                plan.duration,
                target.label()
            ));
            let result = measured_run(
                endpoint,
                mode,
                clients,
                plan.duration,
                *watch,
                recorder_of(*target, &gateways),
            );
            report.add_run(*target, mode, clients, result);
        }
    }
    for (target, _, _, pid) in &gateways {
        if let Ok(peak) = sys::status_bytes(*pid, "VmHWM") {
            report.peak_rss.push((*target, peak));
        }
    }

    progress(&format!("masking: {} rows", plan.pii_rows));
    let masking_targets: Vec<(Target, &Endpoint, Option<u32>)> = targets
        .iter()
        .filter(|(target, _, _)| *target != Target::PgBouncer)
        .copied()
        .collect();
    report.masking = Some(
        measure_masking(&cluster, &plan, &masking_targets).map_err(|error| format!("{error:#}")),
    );

    for (target, gateway, _, _) in &gateways {
        report.gateway_problems(*target, &gateway.log());
    }
    drop(targets);
    drop(gateways);
    report.bouncer_problems(&bouncer.log());
    drop(bouncer);

    // Memory per idle session, each configuration in a fresh process so
    // the allocator's state after the pgbench runs does not blur it.
    for config in [Config::Pass, Config::Full] {
        progress(&format!(
            "idle sessions: {} through {}",
            plan.idle_sessions,
            config.target().label()
        ));
        let (gateway, endpoint) =
            start_gateway(&airlock, &cluster, config, &policies, &args.recording_sync)?;
        let pid = gateway.pid().context("gateway pid")?;
        let result =
            idle::measure(&endpoint, pid, plan.idle_sessions).map_err(|error| format!("{error:#}"));
        if let Err(error) = &result {
            progress(&format!("FAILED: {error}"));
            report.gateway_problems(config.target(), &gateway.log());
        }
        report.idle.push((config.target(), result));
        drop(gateway);
        wait_for_backends_to_close(&cluster);
    }

    report.load_end = sys::load_average();
    let markdown = report.render();
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let dated = args.out.join(format!(
        "{}-{}{}.md",
        report.date,
        if args.quick { "quick" } else { "full" },
        if args.recording_sync == "full" {
            String::new()
        } else {
            format!("-sync-{}", args.recording_sync)
        }
    ));
    std::fs::write(&dated, &markdown).with_context(|| format!("write {}", dated.display()))?;
    std::fs::write(args.out.join("latest.md"), &markdown)?;
    println!("{markdown}");
    progress(&format!(
        "wrote {} and {}",
        dated.display(),
        args.out.join("latest.md").display()
    ));
    if report.failed_runs() > 0 {
        bail!(
            "{} pgbench run(s) failed: see the report",
            report.failed_runs()
        );
    }
    Ok(())
}

/// `--sessions N`: idle sessions on one gateway, pass-through and full.
fn run_sessions(args: &Args, sessions: usize, airlock: &Path) -> Result<()> {
    let nofile = sys::raise_open_file_limit_to(sessions::needed_open_files(sessions));
    sessions::check_limit(sessions, &nofile)?;
    progress(&format!("open-file limit {nofile}; starting PostgreSQL"));
    let cluster = PgCluster::start_with_config(
        "max_connections = 300\nshared_buffers = 128MB\nlog_statement = 'none'\n",
    );
    let password = cluster.role_password("app");
    let bouncer = sessions::bouncer(cluster.port, &password, sessions)?;
    progress(&format!(
        "PgBouncer (transaction pooling) on {} in front of PostgreSQL",
        bouncer.port
    ));
    let policy_dir = tempfile::Builder::new()
        .prefix("airlock-bench-policy-")
        .tempdir()?;
    let policies = Policies {
        full: policy_dir.path().join("policy.yaml"),
        allow_all: policy_dir.path().join("allow-all.yaml"),
    };
    std::fs::write(&policies.full, POLICY_FULL)?;
    std::fs::write(&policies.allow_all, POLICY_ALLOW_ALL)?;
    let upstream = Upstream {
        port: bouncer.port,
        password,
    };
    let mut results = Vec::new();
    for config in [Config::Pass, Config::Full] {
        let label = config.target().label();
        progress(&format!("{sessions} idle sessions through {label}"));
        let (gateway, endpoint) =
            start_gateway_to(airlock, &upstream, config, &policies, &args.recording_sync)?;
        let pid = gateway.pid().context("gateway pid")?;
        let target = sessions::Target {
            label,
            endpoint: &endpoint,
            pid,
        };
        let result = sessions::measure(&target, sessions).map_err(|error| {
            let log = gateway.log();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            format!("{error:#} (gateway log ends: {})", tail.join(" / "))
        });
        if let Err(error) = &result {
            progress(&format!("FAILED: {error}"));
        }
        results.push(result);
    }
    let markdown = sessions::render(&results, &nofile, &command_line(), airlock);
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let date = sys::command_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "undated".into());
    let path = args.out.join(format!("{}-sessions.md", date.trim()));
    std::fs::write(&path, &markdown).with_context(|| format!("write {}", path.display()))?;
    println!("{markdown}");
    progress(&format!("wrote {}", path.display()));
    if results.iter().any(Result::is_err) {
        bail!("a sessions run failed: see the report");
    }
    Ok(())
}

/// `--replicas`: the shared store's cost, its report written beside the
/// others.
fn run_replicas(args: &Args, plan: &Plan, airlock: &Path) -> Result<()> {
    let replica_plan = replicas::ReplicaPlan {
        duration: plan.duration,
        scale: plan.scale,
    };
    let markdown = replicas::run(airlock, &replica_plan, &progress, &command_line())?;
    write_report(
        args,
        "replicas",
        &markdown,
        markdown.contains("failed:") || markdown.contains("FAILED"),
        "a replicas run failed: see the report",
    )
}

/// `--mysql`: the sysbench runs, their report written beside the others.
fn run_mysql(args: &Args, plan: &Plan, airlock: &Path) -> Result<()> {
    let mysql_plan = sysbench::MysqlPlan {
        duration: plan.duration,
        threads: if args.quick {
            vec![1, 8]
        } else {
            vec![1, 8, 32]
        },
        table_size: if args.quick { 1_000 } else { 10_000 },
    };
    let markdown = sysbench::run(airlock, &mysql_plan, &progress)?;
    write_report(
        args,
        "mysql",
        &markdown,
        markdown.contains("failed:"),
        "a sysbench run failed: see the report",
    )
}

fn run_http(args: &Args, plan: &Plan, airlock: &Path) -> Result<()> {
    let http_plan = http::HttpPlan {
        duration: plan.duration,
        warmup: plan.warmup.min(plan.duration),
        clients: if args.quick {
            vec![1, 8]
        } else {
            vec![1, 8, 32]
        },
    };
    let markdown = http::run(airlock, &http_plan, &progress)?;
    write_report(
        args,
        "http",
        &markdown,
        markdown.contains("failed:"),
        "a check failed: see the report",
    )
}

/// Writes a mode's report as `<out>/<date>-<kind>[-quick].md`, prints it,
/// and fails with `failure` when `failed` (the report says which run).
fn write_report(
    args: &Args,
    kind: &str,
    markdown: &str,
    failed: bool,
    failure: &str,
) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let date = sys::command_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "undated".into());
    let path = args.out.join(format!(
        "{}-{kind}{}.md",
        date.trim(),
        if args.quick { "-quick" } else { "" }
    ));
    std::fs::write(&path, markdown).with_context(|| format!("write {}", path.display()))?;
    println!("{markdown}");
    progress(&format!("wrote {}", path.display()));
    if failed {
        bail!("{failure}");
    }
    Ok(())
}

/// The gateway of `target` when it records commands (its journal syncs are
/// counted).
fn recorder_of(
    target: Target,
    gateways: &[(Target, GatewayProcess, Endpoint, u32)],
) -> Option<&GatewayProcess> {
    matches!(target, Target::AirlockFull | Target::AirlockFullMetricsOff)
        .then(|| {
            gateways
                .iter()
                .find(|(each, ..)| *each == target)
                .map(|(_, gateway, ..)| gateway)
        })
        .flatten()
}

/// One pgbench run, with the journal syncs of `recorder` over it.
fn measured_run(
    endpoint: &Endpoint,
    mode: &'static str,
    clients: u32,
    duration: u64,
    watch: Option<u32>,
    recorder: Option<&GatewayProcess>,
) -> std::result::Result<pgbench::Run, String> {
    let syncs_before = recorder.and_then(journal_syncs);
    let mut result = pgbench::run(endpoint, mode, clients, duration, watch)
        .map_err(|error| format!("{error:#}"));
    let syncs_after = recorder.and_then(journal_syncs);
    match &mut result {
        Ok(run) => {
            if let (Some(before), Some(after)) = (syncs_before, syncs_after) {
                if run.transactions > 0 {
                    run.syncs_per_transaction =
                        Some(after.saturating_sub(before) as f64 / run.transactions as f64);
                }
            }
        }
        Err(error) => progress(&format!("FAILED: {error}")),
    }
    result
}

/// `audit_journal_syncs` from the gateway's `/readyz`.
fn journal_syncs(gateway: &GatewayProcess) -> Option<u64> {
    let (status, body) = gateway.http_get("/readyz")?;
    if status != 200 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()?
        .get("audit_journal_syncs")?
        .as_u64()
}

#[derive(Clone, Copy)]
enum Config {
    Pass,
    PolicyMask,
    Full,
    /// Full, with `metrics.enabled: false`.
    FullMetricsOff,
}

impl Config {
    fn target(self) -> Target {
        match self {
            Config::Pass => Target::AirlockPass,
            Config::PolicyMask => Target::AirlockPolicyMask,
            Config::Full => Target::AirlockFull,
            Config::FullMetricsOff => Target::AirlockFullMetricsOff,
        }
    }
}

struct Policies {
    full: PathBuf,
    allow_all: PathBuf,
}

/// Starts `airlock serve` in `config`, stores the `app` credential and
/// issues a token; returns the gateway and how pgbench reaches it.
fn start_gateway(
    binary: &Path,
    cluster: &PgCluster,
    config: Config,
    policies: &Policies,
    recording_sync: &str,
) -> Result<(GatewayProcess, Endpoint)> {
    let upstream = Upstream {
        port: cluster.port,
        password: cluster.role_password("app"),
    };
    start_gateway_to(binary, &upstream, config, policies, recording_sync)
}

/// Where a gateway's connection points: the cluster, or a pooler in front
/// of it; `app`'s password there.
struct Upstream {
    port: u16,
    password: String,
}

fn start_gateway_to(
    binary: &Path,
    upstream: &Upstream,
    config: Config,
    policies: &Policies,
    recording_sync: &str,
) -> Result<(GatewayProcess, Endpoint)> {
    let connection = format!(
        "connections:\n  - name: {CONNECTION}\n    protocol: postgres\n    address: 127.0.0.1:{}\n    \
         database: appdb\n    credential: app\n    tags: {{env: dev}}\n",
        upstream.port
    );
    let recording_off = "recording:\n  enabled: false\n";
    // One identity opens every benchmark session (up to 1,000 idle ones).
    let connection = format!(
        "{connection}limits:\n  max_sessions_per_identity: 100000\n  max_sessions_per_connection: 100000\n"
    );
    let yaml = match config {
        // Commands not recorded (sessions and authentication still are),
        // a policy that allows everything and masks nothing.
        Config::Pass => format!(
            "policy: {}\n{connection}{recording_off}",
            policies.allow_all.display()
        ),
        // The realistic policy with its mask rule, commands not recorded:
        // separates the recorder's cost from policy and masking.
        Config::PolicyMask => format!(
            "policy: {}\n{connection}{recording_off}",
            policies.full.display()
        ),
        // Everything on: recording (the default), policy, masking.
        Config::Full => format!(
            "policy: {}\n{connection}recording:\n  sync: {recording_sync}\n",
            policies.full.display()
        ),
        // The same, without per-command counters.
        Config::FullMetricsOff => format!(
            "policy: {}\n{connection}recording:\n  sync: {recording_sync}\nmetrics:\n  enabled: false\n",
            policies.full.display()
        ),
    };
    // The testkit logs at debug; a benchmark measures the default level.
    let gateway = GatewayProcess::start_with_env(binary, &yaml, &[("AIRLOCK_LOG", "info")]);
    gateway.set_credential("app", "app", &upstream.password);
    let (_id, token) = gateway.issue_token(IDENTITY, &[CONNECTION], "1h");
    let endpoint = Endpoint {
        port: gateway.pg_port,
        user: IDENTITY.into(),
        database: CONNECTION.into(),
        password: token,
    };
    Ok((gateway, endpoint))
}

/// Loads the pgbench tables into shared buffers (pg_prewarm ships with the
/// server package; without it the warm-up run does the job).
fn prewarm(cluster: &PgCluster) {
    let _ = Command::new(airlock_testkit::pg_client("psql"))
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname=appdb sslmode=disable",
            cluster.port
        ))
        .args([
            "-X",
            "-q",
            "-c",
            "CREATE EXTENSION IF NOT EXISTS pg_prewarm",
            "-c",
            "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')",
        ])
        .env("PGPASSWORD", &cluster.superuser_password)
        .output();
}

fn measure_masking(
    cluster: &PgCluster,
    plan: &Plan,
    targets: &[(Target, &Endpoint, Option<u32>)],
) -> Result<report::Masking> {
    let bytes = masking::create_table(cluster, plan.pii_rows)?;
    let mut masking = report::Masking {
        rows: plan.pii_rows,
        bytes,
        repetitions: plan.pii_repetitions,
        reads: Vec::new(),
        samples: Vec::new(),
    };
    for (target, endpoint, watch) in targets {
        progress(&format!(
            "masking: select * from pii via {}",
            target.label()
        ));
        // One untimed read first: caches, and the gateway's first-use work.
        masking::read(endpoint, 1, None)?;
        let read = masking::read(endpoint, plan.pii_repetitions, *watch)?;
        masking.reads.push((*target, read));
        masking
            .samples
            .push((*target, masking::sample_row(endpoint)?));
    }
    Ok(masking)
}

/// Waits (up to 20 s) until the sessions of the last gateway have left
/// PostgreSQL, so the next measurement starts clean.
fn wait_for_backends_to_close(cluster: &PgCluster) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let count = cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'");
        if count.trim().parse::<u32>().unwrap_or(u32::MAX) == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The command as a user would type it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .and_then(|dir| dir.file_name())
                .map(|name| name == "release")
        })
        .unwrap_or(false);
    let joined = args.join(" ");
    if release {
        format!("cargo run --release -p airlock-bench -- {joined}")
            .trim_end()
            .to_string()
    } else {
        format!("cargo run -p airlock-bench -- {joined}")
            .trim_end()
            .to_string()
    }
}

/// The `airlock` binary: `--airlock-bin`/`AIRLOCK_BIN`, else the sibling
/// of this executable. Launched through cargo (`cargo run`), the sibling is
/// built first with the same profile so a stale binary is never measured.
fn airlock_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--airlock-bin {}: no such file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("this executable has no parent folder")?
        .to_path_buf();
    let binary = dir.join("airlock");
    if let (Some(cargo), Some(profile), Some(target_dir)) = (
        std::env::var_os("CARGO"),
        dir.file_name().and_then(|name| name.to_str()),
        dir.parent(),
    ) {
        let mut command = Command::new(cargo);
        command
            .args(["build", "-p", "airlock", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
        progress(&format!("building airlock ({profile})"));
        let status = command.status().context("run cargo build -p airlock")?;
        if !status.success() {
            bail!("cargo build -p airlock failed");
        }
    }
    if !binary.is_file() {
        bail!(
            "no airlock binary at {}: build it with `cargo build --release -p airlock` or pass --airlock-bin",
            binary.display()
        );
    }
    Ok(binary)
}
