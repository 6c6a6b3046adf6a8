//! The MariaDB server fixture: [`MariaDb`], a throwaway server from the
//! installed binaries (`mariadb-install-db` + `mariadbd`) in a temporary
//! directory on a free port, with the general query log on (so tests can
//! assert on what reached the server) and one test user per
//! authentication plugin the gateway must log in with.

use crate::host::{free_port, random_secret, running_as_root};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway MariaDB server on 127.0.0.1.
pub struct MariaDb {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    secret: String,
    child: Option<Child>,
}

/// Users [`MariaDb::start`] creates, with the plugin each authenticates by.
pub const MARIADB_TEST_USERS: [(&str, &str); 2] =
    [("app", "mysql_native_password"), ("eduser", "ed25519")];

impl MariaDb {
    /// mariadb-install-db + mariadbd. Users created: `app`
    /// (`mysql_native_password`) and `eduser` (MariaDB's `ed25519`), each
    /// with a random password from [`MariaDb::password`] and all privileges
    /// on database `appdb`. `root` logs in over the Unix socket only.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Like [`MariaDb::start`], with extra `mariadbd` options (e.g.
    /// `--ssl-cert=…`, `--max-connections=500`).
    pub fn start_with_args(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("airlock-mariadb-")
            .tempdir()
            .expect("tempdir");
        // A private tmpdir: the server names its temporary files after its
        // pid, and servers of other test runs (other pid namespaces) may
        // share /tmp, so two bootstraps could remove each other's files.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("create the server tmpdir");
        let user = if running_as_root() {
            let status = Command::new("chown")
                .arg("mysql:mysql")
                .arg(dir.path())
                .arg(&tmp)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the MariaDB dir failed");
            "mysql"
        } else {
            ""
        };
        let data = dir.path().join("data");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db")
            .arg("--skip-name-resolve");
        if !user.is_empty() {
            install.arg(format!("--user={user}"));
        }
        let output = install
            .output()
            .expect("run mariadb-install-db (install the mariadb-server package)");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = Self {
            dir,
            port: 0,
            secret: random_secret(),
            child: None,
        };
        for attempt in 0..6 {
            let port = free_port();
            let mut command = Command::new("mariadbd");
            command
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--socket={}", server.socket().display()))
                .arg(format!("--pid-file={}", server.dir().join("pid").display()))
                .arg(format!(
                    "--log-error={}",
                    server.dir().join("error.log").display()
                ))
                .arg("--general-log=1")
                .arg(format!(
                    "--general-log-file={}",
                    server.dir().join("general.log").display()
                ))
                .arg("--skip-name-resolve")
                .arg("--innodb-buffer-pool-size=32M")
                .arg("--innodb-log-file-size=8M")
                .arg("--innodb-flush-log-at-trx-commit=0")
                .arg("--skip-log-bin")
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if !user.is_empty() {
                command.arg(format!("--user={user}"));
            }
            let child = command.spawn().expect("run mariadbd");
            server.child = Some(child);
            server.port = port;
            if server.wait_ready() {
                break;
            }
            let log = server.error_log();
            server.kill();
            assert!(
                attempt < 5 && log.contains("Address already in use"),
                "mariadbd did not start:\n{log}"
            );
        }
        let mut setup = String::from("INSTALL SONAME 'auth_ed25519'; CREATE DATABASE appdb;");
        for (name, plugin) in MARIADB_TEST_USERS {
            let password = server.password(name);
            let how = match plugin {
                "ed25519" => format!("IDENTIFIED VIA ed25519 USING PASSWORD('{password}')"),
                _ => format!("IDENTIFIED VIA mysql_native_password USING PASSWORD('{password}')"),
            };
            setup.push_str(&format!(
                "CREATE USER '{name}'@'%' {how}; GRANT ALL ON appdb.* TO '{name}'@'%';"
            ));
        }
        server.sql(&setup);
        server
    }

    /// Whether the server answers on its socket within 60 s (false if it
    /// exited first).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            let ok = Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-uroot", "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|status| status.success())
                .unwrap_or(false);
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The (deterministic per server) password of a test user.
    pub fn password(&self, user: &str) -> String {
        format!("pw-{user}-{}", &self.secret[..12])
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("mariadb.sock")
    }

    /// The server's directory: `data/`, the logs, the socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs SQL as root over the Unix socket (batch mode: tab-separated
    /// rows, no header) and returns the output. Panics on error.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("", sql)
    }

    /// Like [`MariaDb::sql`], in `database`.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let mut command = Command::new("mariadb");
        command
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql]);
        if !database.is_empty() {
            command.arg(database);
        }
        let output = command.output().expect("run mariadb");
        assert!(
            output.status.success(),
            "mariadb failed on {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The general query log so far: every statement the server received.
    pub fn general_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("general.log")).unwrap_or_default()
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}
