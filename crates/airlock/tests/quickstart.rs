//! The README's Quick start, run as written: the commands are taken from the
//! fenced `sh` block under "## Quick start" in `README.md` (so the two cannot
//! drift apart) and run, in order, by one `bash` against a throwaway
//! PostgreSQL and the real `airlock` binary. Every step must succeed, the
//! pgbench run through the gateway included, with no failed transaction.
//!
//! Only what a throwaway environment forces is substituted, each once in
//! [`SUBSTITUTIONS`] (every pattern must occur in the block, so a README
//! change that makes one stale fails here):
//! - `cargo build --release -p airlock`: the test already has the binary
//!   Cargo built for it; the working folder's `target/release/airlock` is a
//!   link to it, so `export PATH="$PWD/target/release:$PATH"` runs as
//!   written;
//! - `sudo -u postgres psql`: the testkit's cluster authenticates its
//!   `postgres` superuser by password over TCP (there is no peer
//!   authentication, nor necessarily `sudo`), so it becomes `psql` as
//!   `postgres` with that password on the cluster's port;
//! - `-p 5432` (PostgreSQL) and `15432` (the gateway), in the commands and
//!   in the working folder's copy of `examples/local.yaml` (where the admin
//!   listener `127.0.0.1:8480` becomes a free port too, named to the CLI
//!   through `AIRLOCK_URL`, and to `curl`): free ports;
//! - the data dir needs none: `./airlock-data` is in the working folder, a
//!   temporary directory holding `examples/` (`local.yaml` with those ports,
//!   `local-policy.yaml` unchanged) and `target/release/airlock`;
//! - the role's password needs none: the block generates it.
//!
//! The script runs with a clean environment (`HOME` is the working folder,
//! no `PG*` variables; `PATH` starts with the PostgreSQL binaries the
//! testkit uses), under `set -euo pipefail`, in its own process group, which
//! the test kills at the end whatever happens (the block's last line stops
//! the gateway itself, and the test checks that it did).

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_testkit::{free_port, pg_bin_dir, PgCluster};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What is replaced in the README's commands, with why (see the module
/// comment). `{PG_PORT}`, `{GATEWAY_PORT}`, `{ADMIN_PORT}` and
/// `{SUPERUSER_PASSWORD}` are filled in per run.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    // The test binary is already built; `target/release/airlock` links to it.
    (
        "cargo build --release -p airlock",
        "test -x target/release/airlock",
    ),
    // Password authentication of the throwaway cluster's superuser, over TCP.
    (
        "sudo -u postgres psql",
        "PGPASSWORD={SUPERUSER_PASSWORD} psql -h 127.0.0.1 -p {PG_PORT} -U postgres",
    ),
    // The throwaway cluster's port.
    ("-p 5432 ", "-p {PG_PORT} "),
    // The gateway's admin listener (curl; the CLI gets AIRLOCK_URL).
    ("127.0.0.1:8480", "127.0.0.1:{ADMIN_PORT}"),
    // The gateway's PostgreSQL listener.
    ("15432", "{GATEWAY_PORT}"),
];

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("read README.md")
}

/// The commands of the first ```sh block after "## Quick start": comment and
/// blank lines dropped, continuation lines (ending in `\`) kept with the
/// line they continue.
fn quick_start_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split_once("\n## Quick start\n")
        .expect("README has a \"## Quick start\" section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("the Quick start has a ```sh block")
        .1
        .split_once("\n```")
        .expect("the ```sh block ends")
        .0;
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        if current.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        current.push_str(line);
        if line.ends_with('\\') {
            current.push('\n');
            continue;
        }
        commands.push(std::mem::take(&mut current));
    }
    assert!(current.is_empty(), "the block ends in a continuation line");
    commands
}

/// A process group of our own (the script, the gateway it starts in the
/// background and their children), killed when dropped.
struct ScriptProcess {
    child: Child,
}

impl ScriptProcess {
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait for bash") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for ScriptProcess {
    fn drop(&mut self) {
        // The group's id is the script's process id (`process_group(0)`).
        // Through bash's `kill` builtin with `--`: procps-ng 4.0's
        // `/usr/bin/kill -KILL -<pgid>` signals every process instead
        // (`kill(-1)`).
        let group = self.child.id();
        if group > 1 {
            let _ = Command::new("bash")
                .arg("-c")
                .arg("kill -KILL -- \"-$1\" 2>/dev/null")
                .arg("bash")
                .arg(group.to_string())
                .status();
        }
        let _ = self.child.wait();
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_quick_start_runs_as_written() {
    let commands = quick_start_commands(&readme());
    for needle in [
        "airlock serve",
        "credential set",
        "token issue",
        "pgbench -n",
    ] {
        assert!(
            commands.iter().any(|command| command.contains(needle)),
            "the Quick start no longer runs `{needle}`: {commands:#?}"
        );
    }

    let cluster = PgCluster::start();
    let gateway_port = free_port();
    let admin_port = free_port();
    let fill = |text: &str| {
        text.replace("{PG_PORT}", &cluster.port.to_string())
            .replace("{GATEWAY_PORT}", &gateway_port.to_string())
            .replace("{ADMIN_PORT}", &admin_port.to_string())
            .replace("{SUPERUSER_PASSWORD}", &cluster.superuser_password)
    };
    let block = commands.join("\n");
    for (pattern, _) in SUBSTITUTIONS {
        assert!(
            block.contains(pattern),
            "the substitution of {pattern:?} is stale: the Quick start no longer has it"
        );
    }

    // The working folder: what the commands expect of the repository root.
    let work = tempfile::Builder::new()
        .prefix("airlock-quickstart-")
        .tempdir()
        .expect("tempdir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    std::fs::create_dir(work.path().join("examples")).unwrap();
    let local = std::fs::read_to_string(examples.join("local.yaml")).unwrap();
    for pattern in ["127.0.0.1:5432", "127.0.0.1:8480", "127.0.0.1:15432"] {
        assert!(
            local.contains(pattern),
            "examples/local.yaml lost {pattern}"
        );
    }
    let local = local
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", cluster.port))
        .replace("127.0.0.1:8480", &format!("127.0.0.1:{admin_port}"))
        .replace("127.0.0.1:15432", &format!("127.0.0.1:{gateway_port}"));
    std::fs::write(work.path().join("examples/local.yaml"), local).unwrap();
    std::fs::copy(
        examples.join("local-policy.yaml"),
        work.path().join("examples/local-policy.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(work.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_airlock"),
        work.path().join("target/release/airlock"),
    )
    .unwrap();

    // The script: each command announced, then run as the README has it
    // (after the substitutions).
    let mut script = String::from("set -euo pipefail\n");
    for (number, command) in commands.iter().enumerate() {
        let mut command = command.clone();
        // Placeholders first, values after: a value (a port, the password)
        // can never be taken for a later pattern.
        for (pattern, replacement) in SUBSTITUTIONS {
            command = command.replace(pattern, replacement);
        }
        let command = fill(&command);
        let shown = command.replace('\'', "'\\''");
        script.push_str(&format!(
            "printf '\\n::step {}: %s\\n' '{shown}'\n{command}\n",
            number + 1
        ));
    }
    script.push_str("printf '\\n::done\\n'\n");
    let script_path = work.path().join("quickstart.sh");
    std::fs::write(&script_path, &script).unwrap();

    let output_path = work.path().join("output.log");
    let output = std::fs::File::create(&output_path).unwrap();
    let path = format!(
        "{}:{}",
        pg_bin_dir().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
    );
    let mut process = ScriptProcess {
        child: Command::new("bash")
            .arg(&script_path)
            .current_dir(work.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", work.path())
            .env("LANG", "C.UTF-8")
            .env("AIRLOCK_URL", format!("http://127.0.0.1:{admin_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(output.try_clone().unwrap()))
            .stderr(Stdio::from(output))
            .process_group(0)
            .spawn()
            .expect("run bash"),
    };
    let status = process.wait(Duration::from_secs(300));
    let log = std::fs::read_to_string(&output_path).unwrap_or_default();
    println!("{log}");
    let status = status.unwrap_or_else(|| panic!("the Quick start did not finish in 300 s"));
    let last_step = log
        .lines()
        .rev()
        .find(|line| line.starts_with("::step "))
        .unwrap_or("(none)");
    assert!(
        status.success() && log.contains("\n::done"),
        "the Quick start failed ({status}) at {last_step}"
    );

    // pgbench through the gateway: every transaction ran, none failed.
    assert!(
        log.contains("number of transactions actually processed: 40/40"),
        "pgbench did not process its 40 transactions"
    );
    assert!(
        log.contains("number of failed transactions: 0 "),
        "pgbench had failed transactions"
    );
    // psql through the gateway saw pgbench's accounts (scale 1): its
    // result row, not pgbench's "100000 of 100000 tuples".
    assert!(
        log.lines().any(|line| line.trim() == "100000"),
        "psql did not count the accounts"
    );
    // They reached PostgreSQL, and they are recorded.
    assert_eq!(
        cluster.sql_in("airlock_demo", "select count(*) from pgbench_history"),
        "40"
    );
    // `airlock session list`: a table row per session (the gateway's own log
    // lines name the identity too, but never as a row starting with the id).
    let session_rows = log
        .lines()
        .map(|line| line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|row| row.starts_with("s-") && row.contains("agent-7") && row.contains("pg-test"))
        .count();
    assert!(
        session_rows >= 3,
        "`airlock session list` shows {session_rows} agent-7 sessions, not the psql and pgbench ones"
    );

    // The block's last command stopped the gateway.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (listening(gateway_port) || listening(admin_port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !listening(gateway_port) && !listening(admin_port),
        "the gateway still listens after the Quick start's `kill %1`"
    );
    drop(process);
}
