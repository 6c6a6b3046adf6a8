//! What the benchmark reads from the operating system: CPU time and memory
//! of a process (`/proc`), the machine description, the file limit.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// User + system CPU time of `pid` in clock ticks (`/proc/<pid>/stat`
/// fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from its `)`.
    let (_, rest) = stat
        .rsplit_once(')')
        .context("unexpected /proc/<pid>/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let field = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()
            .context("CPU time field is not a number")
    };
    Ok(field(11)? + field(12)?)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux almost always).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(value) = line.strip_prefix(field).and_then(|v| v.strip_prefix(':')) {
            let kb: u64 = value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("{field} is not a number"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("no {field} in /proc/{pid}/status")
}

/// Resident set size of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// Raises this process's open-file limit to at least `wanted` (children
/// inherit it): the soft limit to the hard one, and when that is not
/// enough the hard limit too, which needs `CAP_SYS_RESOURCE` (root
/// outside a container that drops it). Returns the limit in force, as
/// [`raise_open_file_limit`] does.
pub fn raise_open_file_limit_to(wanted: u64) -> String {
    let limit = raise_open_file_limit();
    if limit.parse::<u64>().is_ok_and(|limit| limit >= wanted) {
        return limit;
    }
    let pid = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={wanted}:{wanted}")])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if raised {
        wanted.to_string()
    } else {
        limit
    }
}

/// Raises this process's soft open-file limit to its hard limit (children
/// inherit it): 1,000 idle sessions need more descriptors than some
/// defaults allow. Uses `prlimit` because the workspace forbids `unsafe`.
pub fn raise_open_file_limit() -> String {
    let pid = std::process::id().to_string();
    let hard = Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--raw",
            "--noheadings",
            "-o",
            "HARD",
        ])
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    if hard.is_empty() {
        return "unchanged (prlimit not available)".into();
    }
    let target = if hard == "unlimited" {
        "1048576".to_string()
    } else {
        hard
    };
    let ok = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={target}:{target}")])
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if ok {
        target
    } else {
        "unchanged (prlimit failed)".into()
    }
}

/// The machine, for the report.
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = command_line("uname", &["-r"]).unwrap_or_else(|| "unknown".into());
    Machine {
        cpu_model,
        cores,
        memory,
        kernel,
    }
}

/// First line of a command's standard output, if it ran.
pub fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|line| line.trim().to_string())
}

/// `git rev-parse --short HEAD` of the workspace, marked when the working
/// tree has uncommitted changes.
pub fn git_commit(workspace: &Path) -> String {
    let dir = workspace.to_string_lossy().to_string();
    let Some(commit) = command_line("git", &["-C", &dir, "rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let dirty = Command::new("git")
        .args(["-C", &dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|output| !output.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        format!("{commit} + uncommitted changes")
    } else {
        commit
    }
}

/// A program on PATH or in the usual system folders.
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
            ]
            .map(Into::into),
        )
        .map(|dir: std::path::PathBuf| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}
