//! The MySQL benchmark (`--mysql`): sysbench `oltp_point_select`,
//! `oltp_read_only` and `oltp_read_write` against a throwaway MariaDB
//! directly, through airlock in pass-through (no recording, a policy that
//! allows everything) and through airlock full (recording, a policy of
//! reads, writes and transactions with a mask rule), in the same run,
//! targets interleaved per (test, threads); then the same over TLS on the
//! client's leg: MariaDB with a certificate, and airlock full with its own.
//!
//! sysbench uses the server-side prepared statements of the binary
//! protocol by default, so the gateway's `COM_STMT_PREPARE` / `EXECUTE`
//! path is what is measured. The plain legs are TCP on loopback: sysbench
//! logs in to the gateway with `mysql_clear_password` (allowed from
//! loopback by default; `LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1` lets the
//! client library send it). sysbench's `--mysql-ssl=on` reads
//! `client-key.pem`, `client-cert.pem` and `cacert.pem` from its working
//! directory and verifies the server against that CA, so each TLS leg runs
//! in a folder of its own: a client certificate MariaDB trusts, and as CA
//! MariaDB's CA or the gateway's generated certificate. Over TLS the
//! gateway takes the token by `caching_sha2_password` full authentication;
//! the gateway's upstream leg stays plain.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use airlock_testkit::{GatewayProcess, MariaDb};
use anyhow::{bail, Context, Result};

mod tls;

const IDENTITY: &str = "bench-agent";
const CONNECTION: &str = "bench-mysql";
const TESTS: [&str; 3] = ["oltp_point_select", "oltp_read_only", "oltp_read_write"];
const TABLES: u32 = 4;

/// The "full" configuration's policy: sysbench's reads, writes and
/// transactions, PII masked.
const POLICY_FULL: &str = "\
version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update, delete]}
    action: allow
  - name: transactions
    match: {operations: [transaction]}
    action: allow
  - name: mask-pii
    match: {}
    mask:
      detectors: [email, card, iban, ssn, phone, secret]
      style: partial
";

const POLICY_ALLOW_ALL: &str = "version: 1\ndefault: allow\nrules: []\n";

/// What the run measures.
pub struct MysqlPlan {
    pub duration: u64,
    pub threads: Vec<u32>,
    pub table_size: u32,
}

/// Where sysbench connects.
struct Endpoint {
    label: &'static str,
    port: u16,
    user: String,
    password: String,
    database: String,
    /// TLS with the files in this folder (sysbench's working directory).
    tls: Option<std::path::PathBuf>,
}

/// One sysbench run's numbers.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    tps: f64,
    qps: f64,
    p95_ms: f64,
    avg_ms: f64,
    errors: u64,
}

/// Runs the MySQL benchmark and returns its Markdown report.
pub fn run(airlock: &Path, plan: &MysqlPlan, progress: &dyn Fn(&str)) -> Result<String> {
    let directory = tempfile::Builder::new()
        .prefix("airlock-bench-mysql-")
        .tempdir()?;
    let tls_files = tls::Files::create(directory.path())?;
    progress("starting MariaDB");
    let mut args = vec![
        "--max-connections=500".to_string(),
        "--general-log=0".to_string(),
    ];
    args.extend(tls_files.server_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = MariaDb::start_with_args(&args);
    let direct = Endpoint {
        label: "direct",
        port: server.port,
        user: "app".into(),
        password: server.password("app"),
        database: "appdb".into(),
        tls: None,
    };
    progress(&format!(
        "sysbench prepare: {TABLES} tables x {} rows",
        plan.table_size
    ));
    let prepare = sysbench(&direct, "oltp_read_only", plan, 4, 0)
        .arg("prepare")
        .output()
        .context("run sysbench prepare")?;
    if !prepare.status.success() {
        bail!(
            "sysbench prepare failed: {}",
            String::from_utf8_lossy(&prepare.stderr)
        );
    }
    let (pass, pass_endpoint) = start_gateway(airlock, &server, directory.path(), false)?;
    let (full, full_endpoint) = start_gateway(airlock, &server, directory.path(), true)?;
    let targets = [&direct, &pass_endpoint, &full_endpoint];
    let full_port = full_endpoint.port;

    progress("warm-up: 3 s direct");
    let _ = measure(&direct, "oltp_read_only", plan, 8, 3);
    let mut results = Vec::new();
    for test in TESTS {
        for &threads in &plan.threads {
            for target in targets {
                let run = run_one(target, test, plan, threads, progress);
                results.push((test, threads, target.label, run));
            }
        }
    }
    // The TLS legs: MariaDB with its certificate, the full gateway with its
    // own; sysbench verifies each against its CA.
    let direct_tls = Endpoint {
        label: "direct TLS",
        port: server.port,
        user: direct.user.clone(),
        password: direct.password.clone(),
        database: direct.database.clone(),
        tls: Some(tls_files.client_folder("direct", &tls_files.ca)?),
    };
    let full_tls = Endpoint {
        label: "airlock full TLS",
        tls: Some(tls_files.client_folder("airlock", &full.data_dir().join("tls.crt"))?),
        port: full_port,
        user: IDENTITY.into(),
        password: full_endpoint.password.clone(),
        database: CONNECTION.into(),
    };
    for test in TESTS {
        for &threads in &plan.threads {
            for target in [&direct_tls, &full_tls] {
                let run = run_one(target, test, plan, threads, progress);
                results.push((test, threads, target.label, run));
            }
        }
    }
    let problems = [("pass-through", pass.log()), ("full", full.log())]
        .into_iter()
        .map(|(label, log)| {
            let count = log
                .lines()
                .filter(|line| line.contains("ERROR") || line.contains("command refused"))
                .count();
            (label, count)
        })
        .collect::<Vec<_>>();
    Ok(render(plan, &server, &results, &problems))
}

/// `airlock serve` in front of `server`: pass-through (no recording, allow
/// all) or full (recording, the read policy with masking).
fn start_gateway(
    airlock: &Path,
    server: &MariaDb,
    directory: &Path,
    full: bool,
) -> Result<(GatewayProcess, Endpoint)> {
    let policy = directory.join(if full { "full.yaml" } else { "allow-all.yaml" });
    std::fs::write(&policy, if full { POLICY_FULL } else { POLICY_ALLOW_ALL })?;
    let recording = if full {
        "recording:\n  sync: writes\n"
    } else {
        "recording:\n  enabled: false\n"
    };
    let yaml = format!(
        "policy: {policy}\nconnections:\n  - name: {CONNECTION}\n    protocol: mysql\n    address: 127.0.0.1:{port}\n    \
         database: appdb\n    credential: app\n    tags: {{env: dev}}\n\
         limits:\n  max_sessions_per_identity: 100000\n  max_sessions_per_connection: 100000\n{recording}",
        policy = policy.display(),
        port = server.port
    );
    let gateway = GatewayProcess::start_with_env(airlock, &yaml, &[("AIRLOCK_LOG", "info")]);
    gateway.set_credential("app", "app", &server.password("app"));
    let (_id, token) = gateway.issue_token(IDENTITY, &[CONNECTION], "1h");
    let endpoint = Endpoint {
        label: if full {
            "airlock full"
        } else {
            "airlock pass-through"
        },
        port: gateway.mysql_port,
        user: IDENTITY.into(),
        password: token,
        database: CONNECTION.into(),
        tls: None,
    };
    Ok((gateway, endpoint))
}

fn sysbench(
    endpoint: &Endpoint,
    test: &str,
    plan: &MysqlPlan,
    threads: u32,
    duration: u64,
) -> Command {
    let mut command = Command::new("sysbench");
    command
        .arg(test)
        .arg("--db-driver=mysql")
        .arg("--mysql-host=127.0.0.1")
        .arg(format!("--mysql-port={}", endpoint.port))
        .arg(format!("--mysql-user={}", endpoint.user))
        .arg(format!("--mysql-password={}", endpoint.password))
        .arg(format!("--mysql-db={}", endpoint.database))
        .arg(format!(
            "--mysql-ssl={}",
            if endpoint.tls.is_some() { "on" } else { "off" }
        ))
        .arg(format!("--tables={TABLES}"))
        .arg(format!("--table-size={}", plan.table_size))
        .arg(format!("--threads={threads}"))
        .arg(format!("--time={duration}"))
        .arg("--report-interval=0")
        .env("LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN", "1")
        // Loaded once at library start: threads loading it at their first
        // login race in libmariadb ("it is already loaded").
        .env("LIBMYSQL_PLUGINS", "mysql_clear_password");
    if let Some(folder) = &endpoint.tls {
        command.current_dir(folder);
    }
    command
}

/// One measured run, its failure reported as it happens.
fn run_one(
    target: &Endpoint,
    test: &str,
    plan: &MysqlPlan,
    threads: u32,
    progress: &dyn Fn(&str),
) -> Result<Run> {
    progress(&format!(
        "sysbench {test} --threads={threads} --time={} via {}",
        plan.duration, target.label
    ));
    let result = measure(target, test, plan, threads, plan.duration);
    if let Err(error) = &result {
        progress(&format!("FAILED: {error:#}"));
    }
    result
}

fn measure(
    endpoint: &Endpoint,
    test: &str,
    plan: &MysqlPlan,
    threads: u32,
    duration: u64,
) -> Result<Run> {
    let output = sysbench(endpoint, test, plan, threads, duration)
        .arg("run")
        .output()
        .context("run sysbench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "sysbench exited with {}: {}{}",
            output.status,
            text.lines().rev().take(5).collect::<Vec<_>>().join(" | "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("cannot read sysbench's output: {text}"))
}

/// The numbers of sysbench's summary.
fn parse(text: &str) -> Option<Run> {
    let per_second = |label: &str| -> Option<f64> {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(label))?;
        let open = line.find('(')?;
        line.get(open + 1..)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let value = |label: &str| -> Option<f64> {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(label))?;
        line.split_whitespace().last()?.parse().ok()
    };
    let errors = text
        .lines()
        .find(|line| line.trim_start().starts_with("ignored errors:"))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    Some(Run {
        tps: per_second("transactions:")?,
        qps: per_second("queries:")?,
        p95_ms: value("95th percentile:")?,
        avg_ms: value("avg:")?,
        errors,
    })
}

type Results<'a> = [(&'a str, u32, &'a str, Result<Run>)];

fn render(
    plan: &MysqlPlan,
    server: &MariaDb,
    results: &Results<'_>,
    problems: &[(&str, usize)],
) -> String {
    let mut out = String::new();
    let version = server.sql("select version()");
    let _ = writeln!(
        out,
        "# airlock-bench --mysql\n\nMariaDB {version}; sysbench {TABLES} tables x {} rows; {} s per run; \
         `oltp_point_select`, `oltp_read_only` and `oltp_read_write` with sysbench's default prepared statements; \
         the plain legs TCP on loopback (sysbench logs in to the gateway with `mysql_clear_password`), \
         the TLS legs TLS on the client's leg only (the gateway's upstream leg stays plain; \
         sysbench logs in to the gateway by `caching_sha2_password` full authentication inside TLS).\n",
        plan.table_size, plan.duration
    );
    let _ = writeln!(
        out,
        "| test | threads | target | TPS | QPS | avg ms | p95 ms | errors | vs direct (TLS: vs direct TLS) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (test, threads, label, result) in results {
        // TLS legs compare with the direct TLS leg.
        let baseline = if label.ends_with("TLS") {
            "direct TLS"
        } else {
            "direct"
        };
        let direct = results
            .iter()
            .find(|(t, n, l, _)| t == test && n == threads && *l == baseline)
            .and_then(|(_, _, _, run)| run.as_ref().ok().map(|run| run.tps));
        match result {
            Ok(run) => {
                let ratio = direct
                    .filter(|direct| *direct > 0.0)
                    .map(|direct| format!("{:.2}x", run.tps / direct))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {test} | {threads} | {label} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {ratio} |",
                    run.tps, run.qps, run.avg_ms, run.p95_ms, run.errors
                );
            }
            Err(error) => {
                let _ = writeln!(
                    out,
                    "| {test} | {threads} | {label} | failed: {error:#} | | | | | |"
                );
            }
        }
    }
    for (label, count) in problems {
        let _ = writeln!(
            out,
            "\nairlock {label}: {count} error or refusal lines in its log."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysbench_summaries_are_read() {
        let text = "SQL statistics:\n    queries performed:\n        read:  1000\n    \
            transactions:                        1000   (99.50 per sec.)\n    \
            queries:                             14000  (1393.00 per sec.)\n    \
            ignored errors:                      0      (0.00 per sec.)\n\
            Latency (ms):\n         min:  0.50\n         avg:  10.04\n         max:  20.00\n         \
            95th percentile:  12.30\n";
        let run = parse(text).unwrap();
        assert_eq!(run.tps, 99.5);
        assert_eq!(run.qps, 1393.0);
        assert_eq!(run.avg_ms, 10.04);
        assert_eq!(run.p95_ms, 12.3);
        assert_eq!(run.errors, 0);
    }
}
