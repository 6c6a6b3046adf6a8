//! The Markdown report: machine, setup, the pgbench table with ratios
//! against direct, memory, masking, the performance budget, and every
//! problem seen.

use crate::idle::Idle;
use crate::masking::Read;
use crate::pgbench::Run;
use crate::sys;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Direct,
    PgBouncer,
    AirlockPass,
    AirlockPolicyMask,
    AirlockFull,
    /// Full with `metrics.enabled: false` (`--compare-metrics`).
    AirlockFullMetricsOff,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::PgBouncer => "pgbouncer",
            Target::AirlockPass => "airlock pass-through",
            Target::AirlockPolicyMask => "airlock policy+mask",
            Target::AirlockFull => "airlock full",
            Target::AirlockFullMetricsOff => "airlock full, metrics off",
        }
    }
}

pub struct RunRow {
    pub target: Target,
    pub mode: &'static str,
    pub clients: u32,
    pub result: Result<Run, String>,
}

pub struct Masking {
    pub rows: u32,
    pub bytes: u64,
    pub repetitions: usize,
    pub reads: Vec<(Target, Read)>,
    /// Row 10's email, phone, card number and notes as each target returns them.
    pub samples: Vec<(Target, String)>,
}

impl Masking {
    fn read(&self, target: Target) -> Option<&Read> {
        self.reads
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, read)| read)
    }

    fn sample(&self, target: Target) -> Option<&str> {
        self.samples
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, sample)| sample.as_str())
    }

    /// Whether airlock full returned different values than the database.
    pub fn applied(&self) -> Option<bool> {
        Some(self.sample(Target::Direct)? != self.sample(Target::AirlockFull)?)
    }
}

pub struct Report {
    pub quick: bool,
    pub duration: u64,
    pub scale: u32,
    pub command: String,
    pub date: String,
    pub timestamp: String,
    pub machine: sys::Machine,
    pub git: String,
    pub airlock_bin: String,
    pub airlock_profile: String,
    pub nofile: String,
    pub pg_version: String,
    pub pgbouncer_version: String,
    pub pgbench_version: String,
    pub runs: Vec<RunRow>,
    pub peak_rss: Vec<(Target, u64)>,
    pub masking: Option<Result<Masking, String>>,
    pub idle: Vec<(Target, Result<Idle, String>)>,
    pub problems: Vec<String>,
    /// `/proc/loadavg` at the start and the end: other work on the machine
    /// distorts every number.
    pub load_start: String,
    pub load_end: String,
}

impl Report {
    pub fn new(quick: bool, duration: u64, scale: u32, command: String, airlock: &Path) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(time::macros::format_description!("[year]-[month]-[day]"))
            .unwrap_or_else(|_| "unknown-date".into());
        let timestamp = now
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .unwrap_or_default();
        let airlock_profile = airlock
            .parent()
            .and_then(|dir| dir.file_name())
            .and_then(|name| name.to_str())
            .map(|name| match name {
                "release" => "release build".to_string(),
                "debug" => "debug build: not representative".to_string(),
                other => format!("{other} build"),
            })
            .unwrap_or_else(|| "unknown build".into());
        Self {
            quick,
            duration,
            scale,
            command,
            date,
            timestamp,
            machine: sys::machine(),
            git: sys::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
            airlock_bin: airlock.display().to_string(),
            airlock_profile,
            nofile: String::new(),
            pg_version: String::new(),
            pgbouncer_version: String::new(),
            pgbench_version: String::new(),
            runs: Vec::new(),
            peak_rss: Vec::new(),
            masking: None,
            idle: Vec::new(),
            problems: Vec::new(),
            load_start: sys::load_average(),
            load_end: String::new(),
        }
    }

    pub fn add_run(
        &mut self,
        target: Target,
        mode: &'static str,
        clients: u32,
        result: Result<Run, String>,
    ) {
        self.runs.push(RunRow {
            target,
            mode,
            clients,
            result,
        });
    }

    pub fn failed_runs(&self) -> usize {
        self.runs.iter().filter(|row| row.result.is_err()).count()
    }

    fn run(&self, target: Target, mode: &str, clients: u32) -> Option<&Run> {
        self.runs
            .iter()
            .find(|row| row.target == target && row.mode == mode && row.clients == clients)
            .and_then(|row| row.result.as_ref().ok())
    }

    /// Records the gateway's warnings, errors and panics.
    pub fn gateway_problems(&mut self, target: Target, log: &str) {
        let lines: Vec<&str> = log
            .lines()
            // The pass-through configuration's own start-up warning is expected.
            .filter(|line| !line.contains("recording.enabled is false"))
            .filter(|line| {
                line.contains(" WARN ")
                    || line.contains(" ERROR ")
                    || line.contains("panicked")
                    || line.contains("\"level\":\"WARN\"")
                    || line.contains("\"level\":\"ERROR\"")
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        let mut text = format!(
            "{}: {} warning/error line(s) in its log",
            target.label(),
            lines.len()
        );
        for line in lines.iter().take(10) {
            let _ = write!(text, "\n    {}", line.trim());
        }
        self.problems.push(text);
    }

    /// Records PgBouncer's errors and warnings.
    pub fn bouncer_problems(&mut self, log: &str) {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("ERROR") || line.contains("WARNING"))
            .collect();
        if lines.is_empty() {
            return;
        }
        let mut text = format!("pgbouncer: {} warning/error line(s)", lines.len());
        for line in lines.iter().take(10) {
            let _ = write!(text, "\n    {}", line.trim());
        }
        self.problems.push(text);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let kind = if self.quick {
            "quick smoke run: numbers are not meaningful"
        } else {
            "full run"
        };
        let _ = writeln!(out, "# airlock benchmark: {} ({kind})\n", self.date);
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        self.render_machine(&mut out);
        self.render_pgbench(&mut out);
        self.render_budget(&mut out);
        self.render_memory(&mut out);
        self.render_masking(&mut out);
        self.render_problems(&mut out);
        out
    }

    fn render_machine(&self, out: &mut String) {
        let m = &self.machine;
        let _ = writeln!(out, "| machine | |\n|---|---|");
        let _ = writeln!(out, "| CPU | {} ({} cores) |", m.cpu_model, m.cores);
        let _ = writeln!(out, "| memory | {} |", m.memory);
        let _ = writeln!(out, "| kernel | {} |", m.kernel);
        let _ = writeln!(out, "| PostgreSQL | {} |", self.pg_version);
        let _ = writeln!(out, "| PgBouncer | {} |", self.pgbouncer_version);
        let _ = writeln!(out, "| pgbench | {} |", self.pgbench_version);
        let _ = writeln!(
            out,
            "| airlock | commit {}, {} |",
            self.git, self.airlock_profile
        );
        let _ = writeln!(out, "| airlock binary | `{}` |", self.airlock_bin);
        let _ = writeln!(out, "| run at | {} |", self.timestamp);
        let _ = writeln!(
            out,
            "| load average (1/5/15 min) | {} at the start, {} at the end |\n",
            self.load_start, self.load_end
        );
        let _ = writeln!(
            out,
            "**Everything shares {} cores.** pgbench, PostgreSQL, PgBouncer and airlock run on \
             the same machine and compete for the same {} cores: a proxy's CPU time is taken \
             from the database and the client, so absolute numbers are low and ratios are \
             pessimistic for any proxy. Every ratio is against a direct connection measured \
             in the same run.\n",
            m.cores, m.cores
        );
    }

    fn render_pgbench(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## pgbench -S (select-only), {} s per run\n",
            self.duration
        );
        let _ = writeln!(
            out,
            "`pgbench -n -S -M <mode> -c <clients> -j min(clients,2) -T {}` on scale {} \
             (`pgbench -i -s {}`, run directly once), TCP on 127.0.0.1, `sslmode=disable` for \
             every target except in mode `simple-tls` (with `--tls`): `-M simple` with \
             `sslmode=require` to every target, PostgreSQL's `ssl = on` the baseline, PgBouncer \
             with client TLS, airlock with its own certificate (TLS 1.3 on all three), so its \
             `vs direct` is against direct over TLS. One transaction is one query. Latencies are from pgbench's \
             per-transaction log (`-l`); `+` columns are the difference to direct at the same \
             mode and clients. Proxy CPU is the proxy process's user+system time \
             (`/proc/<pid>/stat`) over the run divided by its transactions. Journal syncs per \
             transaction (airlock full): the `fdatasync`s of the recording journal \
             (`audit_journal_syncs` of `/readyz`) over the run divided by its transactions; \
             below the statements per transaction, commands of concurrent sessions shared \
             syncs (group commit); 0 under `recording.sync: normal`.\n\n\
             Rows of mode `tpcb` are writes: pgbench's default TPC-B-like script \
             (`pgbench -n -M simple`), seven statements per transaction (BEGIN, three \
             UPDATEs, a SELECT, an INSERT, END), run after the read runs. PostgreSQL \
             flushes its WAL once per COMMIT; with recording under `sync: full` the \
             gateway makes each of the seven durable before forwarding it (shared with \
             every other session's commands).\n",
            self.duration, self.scale, self.scale
        );
        let _ = writeln!(
            out,
            "- **direct**: pgbench to PostgreSQL.\n\
             - **pgbouncer**: PgBouncer, session pooling (one server connection per client, \
             like airlock; PgBouncer {} cannot keep `-M prepared` statements in transaction \
             pooling), SCRAM from an auth_file.\n\
             - **airlock pass-through**: `recording: {{enabled: false}}` and a policy that \
             allows everything and masks nothing (`default: allow`, no rules; without any \
             policy the gateway refuses every command): token authentication, credential \
             injection, classification and the relay.\n\
             - **airlock policy+mask**: recording off, the realistic policy below (reads \
             allowed, dev writes allowed, unbounded writes and prod DDL denied, a mask rule \
             with the email, card, iban, ssn, phone and secret detectors, style `partial`). \
             A diagnostic row: the difference to full is the recorder's cost.\n\
             - **airlock full**: recording on (the default: every command is written to the \
             store before it is forwarded) plus the same policy and masking.\n",
            self.pgbouncer_version
                .split_whitespace()
                .nth(1)
                .unwrap_or("1.x")
        );
        let _ = writeln!(
            out,
            "| target | mode | clients | TPS | vs direct | avg ms | p50 ms | p99 ms | +avg µs | +p50 µs | +p99 µs | proxy CPU µs/query | journal syncs/txn | transactions (logged) | failed |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.runs {
            let label = row.target.label();
            match &row.result {
                Err(error) => {
                    let first = error.lines().next().unwrap_or("failed");
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | FAILED: {} | | | | | | | | | | | |",
                        row.mode,
                        row.clients,
                        first.replace('|', "\\|")
                    );
                }
                Ok(run) => {
                    let direct = self.run(Target::Direct, row.mode, row.clients);
                    let ratio = direct
                        .filter(|d| d.tps > 0.0)
                        .map(|d| format!("{:.2}", run.tps / d.tps))
                        .unwrap_or_else(|| "n/a".into());
                    let added = |value: f64, base: Option<f64>| -> String {
                        match base {
                            Some(base) if row.target != Target::Direct => {
                                format!("{:+.0}", value - base)
                            }
                            _ => "".into(),
                        }
                    };
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | {:.0} | {ratio} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} ({}) | {} |",
                        row.mode,
                        row.clients,
                        run.tps,
                        run.latency.avg_us / 1000.0,
                        run.latency.p50_us / 1000.0,
                        run.latency.p99_us / 1000.0,
                        added(run.latency.avg_us, direct.map(|d| d.latency.avg_us)),
                        added(run.latency.p50_us, direct.map(|d| d.latency.p50_us)),
                        added(run.latency.p99_us, direct.map(|d| d.latency.p99_us)),
                        run.proxy_cpu_us
                            .map(|cpu| format!("{cpu:.1}"))
                            .unwrap_or_default(),
                        run.syncs_per_transaction
                            .map(|syncs| format!("{syncs:.2}"))
                            .unwrap_or_default(),
                        run.transactions,
                        run.latency.count,
                        run.failed
                    );
                }
            }
        }
        out.push('\n');
    }

    fn render_budget(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Against the performance budget (DESIGN.md)\n\n\
             | budget | measured | met |\n|---|---|---|"
        );
        let verdict = |ok: bool| if ok { "yes" } else { "**no**" };
        for mode in ["simple", "prepared", crate::pgbench::SIMPLE_TLS] {
            let (Some(full), Some(direct)) = (
                self.run(Target::AirlockFull, mode, 8),
                self.run(Target::Direct, mode, 8),
            ) else {
                continue;
            };
            let ratio = full.tps / direct.tps.max(f64::MIN_POSITIVE);
            let _ = writeln!(
                out,
                "| airlock full ≥ 80% of direct TPS at 8 clients (-M {mode}) | {:.0}% | {} |",
                ratio * 100.0,
                verdict(ratio >= 0.8)
            );
        }
        let mut compared = 0;
        let mut behind = Vec::new();
        for row in self.runs.iter().filter(|r| r.target == Target::AirlockFull) {
            let (Ok(full), Some(bouncer)) = (
                &row.result,
                self.run(Target::PgBouncer, row.mode, row.clients),
            ) else {
                continue;
            };
            compared += 1;
            if full.tps < bouncer.tps {
                behind.push(format!(
                    "-M {} -c {}: {:.2}×",
                    row.mode,
                    row.clients,
                    full.tps / bouncer.tps.max(f64::MIN_POSITIVE)
                ));
            }
        }
        if compared > 0 {
            let measured = if behind.is_empty() {
                format!("ahead in all {compared} runs")
            } else {
                format!(
                    "behind in {} of {compared} runs ({})",
                    behind.len(),
                    behind.join(", ")
                )
            };
            let _ = writeln!(
                out,
                "| airlock full never behind PgBouncer (TPS) | {measured} | {} |",
                verdict(behind.is_empty())
            );
        }
        if let (Some(full), Some(direct)) = (
            self.run(Target::AirlockFull, "simple", 1),
            self.run(Target::Direct, "simple", 1),
        ) {
            let p50 = full.latency.p50_us - direct.latency.p50_us;
            let p99 = full.latency.p99_us - direct.latency.p99_us;
            let _ = writeln!(
                out,
                "| added p50 latency < 50 µs per simple query (1 client) | {p50:+.0} µs | {} |",
                verdict(p50 < 50.0)
            );
            let _ = writeln!(
                out,
                "| added p99 latency < 250 µs per simple query (1 client) | {p99:+.0} µs | {} |",
                verdict(p99 < 250.0)
            );
        }
        if let Some((_, Ok(idle))) = self.idle.iter().find(|(t, _)| *t == Target::AirlockFull) {
            let per = idle.per_session_bytes() / 1024.0;
            let _ = writeln!(
                out,
                "| < 64 KiB per idle session (airlock full) | {per:.1} KiB | {} |",
                verdict(per < 64.0)
            );
        }
        if let Some(Ok(masking)) = &self.masking {
            // Recording off: the gateway's CPU is the relay plus masking.
            let rate = masking
                .read(Target::AirlockPolicyMask)
                .and_then(|read| read.gateway_cpu_seconds)
                .filter(|cpu| *cpu > 0.0)
                .map(|cpu| masking.bytes as f64 / 1e6 / cpu);
            match (masking.applied(), rate) {
                (Some(true), Some(rate)) => {
                    let _ = writeln!(
                        out,
                        "| masking > 200 MB/s of result text per core | {rate:.0} MB per airlock CPU-second (policy+mask; includes the relay) | {} |",
                        verdict(rate > 200.0)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "| masking > 200 MB/s of result text per core | not measurable: this build does not mask | n/a |"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nThe budget counts airlock with policy, recording and masking on (\"full\"). \
             Classification and policy evaluation (< 5 µs per statement) are measured by the \
             criterion benches of `airlock-sql` and `airlock-policy`, not here.\n"
        );
    }

    fn render_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## Memory\n");
        let _ = writeln!(
            out,
            "Idle sessions: a fresh gateway per configuration; N sessions authenticate \
             (tokio-postgres, no TLS), run `select 1` and stay open; RSS is `VmRSS` from \
             `/proc/<pid>/status` before and with them (each session also holds an upstream \
             connection). Open-file limit: {}.\n",
            self.nofile
        );
        let _ = writeln!(
            out,
            "| airlock | sessions | RSS without | RSS with | per idle session | connect time |\n|---|---:|---:|---:|---:|---:|"
        );
        for (target, result) in &self.idle {
            match result {
                Ok(idle) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.1} s |",
                        target.label(),
                        idle.sessions,
                        idle.rss_before as f64 / 1048576.0,
                        idle.rss_with_sessions as f64 / 1048576.0,
                        idle.per_session_bytes() / 1024.0,
                        idle.connect_seconds
                    );
                }
                Err(error) => {
                    let _ = writeln!(
                        out,
                        "| {} | | FAILED: {} | | | |",
                        target.label(),
                        error.lines().next().unwrap_or("").replace('|', "\\|")
                    );
                }
            }
        }
        if !self.peak_rss.is_empty() {
            let peaks: Vec<String> = self
                .peak_rss
                .iter()
                .map(|(target, bytes)| {
                    format!("{} {:.1} MiB", target.label(), *bytes as f64 / 1048576.0)
                })
                .collect();
            let _ = writeln!(
                out,
                "\nPeak RSS (`VmHWM`) over the pgbench runs: {}.",
                peaks.join(", ")
            );
        }
        out.push('\n');
    }

    fn render_masking(&self, out: &mut String) {
        let _ = writeln!(out, "## Masking\n");
        let masking = match &self.masking {
            None => return,
            Some(Err(error)) => {
                let _ = writeln!(out, "FAILED: {error}\n");
                return;
            }
            Some(Ok(masking)) => masking,
        };
        let mb = masking.bytes as f64 / 1e6;
        let _ = writeln!(
            out,
            "`psql -X -At -c 'select * from pii' -o /dev/null` on a {}-row table (id, name, \
             email, phone, card_number, notes with an email in every tenth row): {:.1} MB of \
             result text (MB = 10^6 bytes, the values' text form). Median of {} reads after \
             one untimed read; the time includes psql and PostgreSQL. Airlock CPU is the \
             gateway's user+system time per read.\n",
            masking.rows, mb, masking.repetitions
        );
        let _ = writeln!(
            out,
            "| target | seconds | MB/s | vs pass-through | airlock CPU s | MB per airlock CPU-second |\n|---|---:|---:|---:|---:|---:|"
        );
        let pass = masking.read(Target::AirlockPass).map(|read| read.seconds);
        for (target, read) in &masking.reads {
            let ratio = pass
                .filter(|p| *p > 0.0 && *target != Target::Direct)
                .map(|p| format!("{:.2}× the time", read.seconds / p))
                .unwrap_or_default();
            let (cpu, rate) = match read.gateway_cpu_seconds {
                Some(cpu) if cpu > 0.0 => (format!("{cpu:.3}"), format!("{:.0}", mb / cpu)),
                Some(cpu) => (format!("{cpu:.3}"), "".into()),
                None => ("".into(), "".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.1} | {ratio} | {cpu} | {rate} |",
                target.label(),
                read.seconds,
                mb / read.seconds.max(f64::MIN_POSITIVE)
            );
        }
        let applied = match masking.applied() {
            Some(true) => "**yes**: airlock full returned different values than the database",
            Some(false) => {
                "**no**: airlock full returned the values unchanged (masking is not enforced \
                 by this build; the ratio then measures recording alone)"
            }
            None => "unknown",
        };
        let _ = writeln!(out, "\nMasking applied: {applied}.\n");
        for (target, sample) in &masking.samples {
            let _ = writeln!(
                out,
                "- row 10 via {}: `{}`",
                target.label(),
                sample.replace('`', "'")
            );
        }
        out.push('\n');
    }

    fn render_problems(&self, out: &mut String) {
        let _ = writeln!(out, "## Problems seen\n");
        let failed: Vec<&RunRow> = self.runs.iter().filter(|r| r.result.is_err()).collect();
        let with_failed_transactions: Vec<String> = self
            .runs
            .iter()
            .filter_map(|row| match &row.result {
                Ok(run) if run.failed > 0 || run.latency.count == 0 => Some(format!(
                    "{} -M {} -c {}: {} failed transaction(s), {} logged latencies",
                    row.target.label(),
                    row.mode,
                    row.clients,
                    run.failed,
                    run.latency.count
                )),
                _ => None,
            })
            .collect();
        if failed.is_empty() && self.problems.is_empty() && with_failed_transactions.is_empty() {
            let _ = writeln!(
                out,
                "None: every pgbench run completed without failed transactions, and the \
                 gateways and PgBouncer logged no warnings or errors."
            );
            return;
        }
        let _ = writeln!(out, "```");
        for row in failed {
            if let Err(error) = &row.result {
                let _ = writeln!(
                    out,
                    "{} -M {} -c {}: {error}",
                    row.target.label(),
                    row.mode,
                    row.clients
                );
            }
        }
        for line in &with_failed_transactions {
            let _ = writeln!(out, "{line}");
        }
        for problem in &self.problems {
            let _ = writeln!(out, "{problem}");
        }
        let _ = writeln!(out, "```");
    }
}
