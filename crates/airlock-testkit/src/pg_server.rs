//! The PostgreSQL server fixture: [`PgCluster`], a throwaway cluster from
//! the installed server binaries (`initdb` + `pg_ctl`) in a temporary
//! directory on a free port, with `scram-sha-256` authentication plus one
//! `md5` and one `password` role, run as `postgres` when the tests run as
//! root.

use crate::clients::pg_client;
use crate::host::{append, free_port, random_secret, running_as_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder with `initdb`, `pg_ctl`, `postgres`.
pub fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("AIRLOCK_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.retain(|dir| dir.join("initdb").exists());
    candidates.sort_by_key(|dir| {
        dir.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = candidates.pop() {
        return dir;
    }
    panic!("no PostgreSQL server binaries found: install the `postgresql` package or set AIRLOCK_PG_BINDIR");
}

/// Runs a server binary, as the `postgres` user when we are root (initdb
/// and postgres refuse to run as root).
fn server_command(program: &Path) -> Command {
    server_user_command(program)
}

/// A command for `program` that runs as the `postgres` user when we are
/// root (PostgreSQL and PgBouncer refuse to run as root), else as ourselves.
pub fn server_user_command(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.arg("-u").arg("postgres").arg("--").arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A throwaway PostgreSQL cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Password of the `postgres` superuser.
    pub superuser_password: String,
    stopped: bool,
}

impl PgCluster {
    /// initdb + pg_ctl start. Roles created: `app` (SCRAM), `md5user` (MD5)
    /// and `plainuser` (cleartext), each with a random password available
    /// through [`PgCluster::role_password`]; database `appdb` owned by `app`.
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// Like [`PgCluster::start`], with `extra_conf` appended to
    /// `postgresql.conf` after the defaults (later settings win), e.g.
    /// `max_connections = 1100` for benchmarks.
    pub fn start_with_config(extra_conf: &str) -> Self {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("airlock-pg-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create data dir");
        let superuser_password = random_secret();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &superuser_password).expect("write pwfile");
        if running_as_root() {
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster dir failed");
            let status = Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .expect("chmod");
            assert!(status.success());
        }
        let output = server_command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .arg("-U")
            .arg("postgres")
            .arg("--auth=scram-sha-256")
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("-E")
            .arg("UTF8")
            .arg("--no-sync")
            .arg("--locale=C")
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n\
             shared_buffers = 64MB\nlog_min_messages = warning\nlog_statement = 'all'\n\
             logging_collector = off\n",
            dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        if !extra_conf.is_empty() {
            append(&data.join("postgresql.conf"), &format!("\n{extra_conf}\n"));
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\n\
             host all md5user 127.0.0.1/32 md5\n\
             host all plainuser 127.0.0.1/32 password\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        let log = dir.path().join("postgres.log");
        let mut port = port;
        for attempt in 0..6 {
            if attempt > 0 {
                // The port picked by `free_port` was taken before the
                // server bound it: the last `port` line wins.
                port = free_port();
                append(&data.join("postgresql.conf"), &format!("\nport = {port}\n"));
            }
            let output = server_command(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-w")
                .arg("-t")
                .arg("60")
                .arg("start")
                .output()
                .expect("run pg_ctl");
            if output.status.success() {
                break;
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                server_log.contains("could not bind")
                    || server_log.contains("Address already in use"),
                "pg_ctl start failed: {}\n{server_log}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(attempt < 5, "no free port for PostgreSQL:\n{server_log}");
        }
        let cluster = Self {
            dir,
            port,
            superuser_password,
            stopped: false,
        };
        let app = cluster.role_password("app");
        let md5 = cluster.role_password("md5user");
        let plain = cluster.role_password("plainuser");
        cluster.sql(&format!("CREATE ROLE app LOGIN PASSWORD '{app}'"));
        cluster.sql("CREATE DATABASE appdb OWNER app");
        cluster.sql(&format!(
            "SET password_encryption = 'md5';\
             CREATE ROLE md5user LOGIN PASSWORD '{md5}';\
             RESET password_encryption;\
             CREATE ROLE plainuser LOGIN PASSWORD '{plain}';\
             GRANT ALL ON DATABASE appdb TO md5user, plainuser;"
        ));
        cluster
    }

    /// The (deterministic per cluster) password of a test role.
    pub fn role_password(&self, role: &str) -> String {
        format!("pw-{role}-{}", &self.superuser_password[..12])
    }

    /// Runs SQL as the superuser on `postgres` and returns psql's unaligned
    /// output. Panics on error.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// Runs SQL as the superuser in `database`.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let output = Command::new(pg_client("psql"))
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname={database}",
                self.port
            ))
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-At", "-c", sql])
            .env("PGPASSWORD", &self.superuser_password)
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// The cluster's directory: it holds `data/`, the log and the Unix
    /// socket (`unix_socket_directories`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a stopped server again on the same data and port (an outage
    /// that ends).
    pub fn start_again(&mut self) {
        if !self.stopped {
            return;
        }
        let output = server_command(&pg_bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .arg("-w")
            .arg("-t")
            .arg("60")
            .arg("start")
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        self.stopped = false;
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = server_command(&pg_bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-m")
            .arg("immediate")
            .arg("-w")
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
