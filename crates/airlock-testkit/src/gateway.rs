//! The gateway process fixture: [`GatewayProcess`] runs the real `airlock`
//! binary (`airlock serve`) with its own data dir, config and free ports,
//! and drives it as an operator would: admin API, CLI, psql.

use crate::clients::pg_client;
use crate::host::{free_port, random_secret, running_as_root};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `airlock serve` process with its own data dir and ports.
pub struct GatewayProcess {
    binary: PathBuf,
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    /// PostgreSQL listener port on 127.0.0.1.
    pub pg_port: u16,
    /// MySQL listener port on 127.0.0.1.
    pub mysql_port: u16,
    /// Admin API port on 127.0.0.1.
    pub admin_port: u16,
    /// HTTP API listener port on 127.0.0.1 (`listen.http`).
    pub http_port: u16,
    /// The admin token set through `AIRLOCK_ADMIN_TOKEN`.
    pub admin_token: String,
    config_path: PathBuf,
    log_path: PathBuf,
    /// For a sibling: the data dir of the gateway it shares state with.
    shared_data_dir: Option<PathBuf>,
    /// Extra environment, kept for siblings.
    env: Vec<(String, String)>,
    /// This folder of the data dir is a tmpfs of this many bytes, mounted in
    /// a mount namespace of the gateway's own (see
    /// [`GatewayProcess::start_on_small_disk`]).
    small_disk: Option<(String, u64)>,
}

impl GatewayProcess {
    /// Writes `config_yaml` (where `{PG_PORT}` and `{ADMIN_PORT}` are
    /// replaced by free ports) and starts the gateway. `config_yaml` must not
    /// contain a `listen:` section: one is prepended.
    pub fn start(binary: &Path, config_yaml: &str) -> Self {
        Self::start_with_env(binary, config_yaml, &[])
    }

    /// Like [`GatewayProcess::start`], with extra environment variables.
    pub fn start_with_env(binary: &Path, config_yaml: &str, env: &[(&str, &str)]) -> Self {
        Self::start_full(binary, config_yaml, None, env)
    }

    /// Like [`GatewayProcess::start`], with `policy_yaml` written beside the
    /// config and named in it (`policy: policy.yaml`), so it is loaded as
    /// version 1 on first start.
    pub fn start_with_policy(binary: &Path, config_yaml: &str, policy_yaml: &str) -> Self {
        Self::start_full(binary, config_yaml, Some(policy_yaml), &[])
    }

    /// Like [`GatewayProcess::start_with_policy`], with extra environment
    /// variables.
    pub fn start_with_policy_and_env(
        binary: &Path,
        config_yaml: &str,
        policy_yaml: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_full(binary, config_yaml, Some(policy_yaml), env)
    }

    /// Like [`GatewayProcess::start_with_policy`], with `mount` (a folder
    /// of the data dir, `""` for the data dir itself) on a filesystem of
    /// `bytes` bytes: a tmpfs in a mount namespace of the gateway's own
    /// (`unshare --mount`; not as root, in a user namespace too:
    /// `--user --map-root-user`), so a test can fill it up. The test sees
    /// the data dir as the gateway does at
    /// [`GatewayProcess::data_dir_as_seen_by_gateway`].
    pub fn start_on_small_disk(
        binary: &Path,
        config_yaml: &str,
        policy_yaml: &str,
        mount: &str,
        bytes: u64,
    ) -> Self {
        Self::start_full_on(
            binary,
            config_yaml,
            Some(policy_yaml),
            &[],
            Some((mount.to_string(), bytes)),
        )
    }

    fn start_full(
        binary: &Path,
        config_yaml: &str,
        policy_yaml: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_full_on(binary, config_yaml, policy_yaml, env, None)
    }

    fn start_full_on(
        binary: &Path,
        config_yaml: &str,
        policy_yaml: Option<&str>,
        env: &[(&str, &str)],
        small_disk: Option<(String, u64)>,
    ) -> Self {
        let data_dir = tempfile::Builder::new()
            .prefix("airlock-gw-")
            .tempdir()
            .expect("tempdir");
        let config_yaml = match policy_yaml {
            Some(policy) => {
                std::fs::write(data_dir.path().join("policy.yaml"), policy).expect("write policy");
                format!("policy: policy.yaml\n{config_yaml}")
            }
            None => config_yaml.to_string(),
        };
        let pg_port = free_port();
        let admin_port = free_port();
        let mysql_port = free_port();
        let http_port = free_port();
        let config = format!(
            "listen:\n  admin: 127.0.0.1:{admin_port}\n  postgres: 127.0.0.1:{pg_port}\n  mysql: 127.0.0.1:{mysql_port}\n  http: 127.0.0.1:{http_port}\n{config_yaml}"
        );
        let config_path = data_dir.path().join("airlock.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let mut gateway = Self {
            binary: binary.to_path_buf(),
            child: None,
            pg_port,
            mysql_port,
            admin_port,
            http_port,
            admin_token: format!("test-admin-{}", random_secret()),
            log_path: data_dir.path().join("gateway.log"),
            config_path,
            data_dir,
            shared_data_dir: None,
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            small_disk,
        };
        if let Some((mount, _)) = &gateway.small_disk {
            std::fs::create_dir_all(gateway.data_dir().join(mount))
                .expect("create the mount point");
        }
        gateway.spawn(env);
        gateway
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        for attempt in 0..6 {
            if attempt > 0 {
                // A port picked by `free_port` was taken by someone else
                // before the gateway bound it: pick others.
                self.pg_port = free_port();
                self.admin_port = free_port();
                self.mysql_port = free_port();
                self.http_port = free_port();
                self.rewrite_listen();
            }
            let log_start = std::fs::metadata(&self.log_path)
                .map(|m| m.len())
                .unwrap_or(0);
            self.child = Some(self.command(env).spawn().expect("spawn airlock serve"));
            if self.wait_ready(log_start) {
                return;
            }
        }
        panic!("airlock serve could not bind free ports:\n{}", self.log());
    }

    /// The `airlock serve` command for this gateway.
    fn command(&self, env: &[(&str, &str)]) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open gateway log");
        let mut command = match &self.small_disk {
            Some((mount, bytes)) => {
                let mut command = Command::new("unshare");
                // Root mounts in a mount namespace of its own; anyone else
                // in a user namespace where they are root.
                if !running_as_root() {
                    command.args(["--user", "--map-root-user"]);
                }
                command
                    .args(["--mount", "sh", "-c"])
                    .arg(r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@""#)
                    .arg("sh")
                    .arg(bytes.to_string())
                    .arg(self.data_dir().join(mount))
                    .arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("AIRLOCK_ADMIN_TOKEN", &self.admin_token)
            .env("AIRLOCK_LOG", "debug")
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log));
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// Points the config's `listen:` section at the current ports.
    fn rewrite_listen(&self) {
        let config = std::fs::read_to_string(&self.config_path).expect("read config");
        let rewritten: String = config
            .lines()
            .map(|line| {
                if line.starts_with("  admin: 127.0.0.1:") {
                    format!("  admin: 127.0.0.1:{}\n", self.admin_port)
                } else if line.starts_with("  postgres: 127.0.0.1:") {
                    format!("  postgres: 127.0.0.1:{}\n", self.pg_port)
                } else if line.starts_with("  mysql: 127.0.0.1:") {
                    format!("  mysql: 127.0.0.1:{}\n", self.mysql_port)
                } else if line.starts_with("  http: 127.0.0.1:") {
                    format!("  http: 127.0.0.1:{}\n", self.http_port)
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(&self.config_path, rewritten).expect("write config");
    }

    /// The operating-system process id of the running gateway.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The gateway's data directory (store, master key, TLS material).
    pub fn data_dir(&self) -> PathBuf {
        match &self.shared_data_dir {
            Some(shared) => shared.clone(),
            None => self.data_dir.path().join("data"),
        }
    }

    /// The data dir as the gateway sees it: for a gateway on a small disk,
    /// its tmpfs (through `/proc/<pid>/root`), otherwise [`Self::data_dir`].
    pub fn data_dir_as_seen_by_gateway(&self) -> PathBuf {
        match (&self.small_disk, self.pid()) {
            (Some(_), Some(pid)) => {
                let dir = self.data_dir();
                PathBuf::from(format!("/proc/{pid}/root"))
                    .join(dir.strip_prefix("/").unwrap_or(&dir))
            }
            _ => self.data_dir(),
        }
    }

    /// Starts a second gateway process on its own ports that shares this
    /// one's data dir (store, master key), config and policy: a replica.
    pub fn start_sibling(&self) -> GatewayProcess {
        let dir = tempfile::Builder::new()
            .prefix("airlock-gw-sibling-")
            .tempdir()
            .expect("tempdir");
        let pg_port = free_port();
        let admin_port = free_port();
        let mysql_port = free_port();
        let http_port = free_port();
        let original = std::fs::read_to_string(&self.config_path).expect("read config");
        let body: String = original
            .lines()
            .skip_while(|line| {
                line.starts_with("listen:")
                    || line.starts_with("  admin:")
                    || line.starts_with("  postgres:")
                    || line.starts_with("  mysql:")
                    || line.starts_with("  http:")
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let config = format!(
            "listen:\n  admin: 127.0.0.1:{admin_port}\n  postgres: 127.0.0.1:{pg_port}\n  mysql: 127.0.0.1:{mysql_port}\n  http: 127.0.0.1:{http_port}\n{body}"
        );
        let config_path = dir.path().join("airlock.yaml");
        std::fs::write(&config_path, config).expect("write config");
        if let Some(folder) = self.config_path.parent() {
            let policy = folder.join("policy.yaml");
            if policy.exists() {
                std::fs::copy(&policy, dir.path().join("policy.yaml")).expect("copy policy");
            }
        }
        let mut sibling = GatewayProcess {
            binary: self.binary.clone(),
            child: None,
            pg_port,
            mysql_port,
            admin_port,
            http_port,
            admin_token: self.admin_token.clone(),
            log_path: dir.path().join("gateway.log"),
            config_path,
            shared_data_dir: Some(self.data_dir()),
            data_dir: dir,
            env: self.env.clone(),
            small_disk: None,
        };
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        sibling.spawn(&env);
        sibling
    }

    /// Waits for the gateway to answer. Returns false when it exited because
    /// a listen port was taken (the caller picks others); panics on any
    /// other exit.
    fn wait_ready(&mut self, log_start: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self.log();
                    let this_run = log
                        .get(usize::try_from(log_start).unwrap_or(0)..)
                        .unwrap_or("");
                    if this_run.contains("Address already in use") {
                        return false;
                    }
                    panic!("airlock serve exited with {status}:\n{log}");
                }
            }
            if self
                .http_get("/healthz")
                .is_some_and(|(status, _)| status == 200)
                && TcpStream::connect(("127.0.0.1", self.pg_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.mysql_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.http_port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("airlock serve did not become ready:\n{}", self.log());
    }

    /// A minimal HTTP GET against the admin API: (status, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.admin_token
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())?;
        Some((status, body))
    }

    /// Runs an `airlock` CLI command against this gateway.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env(
                "AIRLOCK_URL",
                format!("http://127.0.0.1:{}", self.admin_port),
            )
            .env("AIRLOCK_ADMIN_TOKEN", &self.admin_token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn airlock cli");
        if let Some(input) = stdin {
            child
                .stdin
                .as_mut()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("wait for airlock cli")
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli(args, stdin);
        assert!(
            output.status.success(),
            "airlock {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    /// Stores a credential through the CLI.
    pub fn set_credential(&self, name: &str, username: &str, password: &str) {
        self.cli_ok(
            &[
                "credential",
                "set",
                name,
                "--username",
                username,
                "--password-stdin",
            ],
            Some(password),
        );
    }

    /// Issues a token through the CLI; returns (id, token).
    pub fn issue_token(&self, identity: &str, connections: &[&str], ttl: &str) -> (String, String) {
        let mut args = vec![
            "token",
            "issue",
            "--identity",
            identity,
            "--kind",
            "agent",
            "--group",
            "agents",
            "--ttl",
            ttl,
            "--output",
            "json",
        ];
        for connection in connections {
            args.push("--connection");
            args.push(connection);
        }
        let output = self.cli_ok(&args, None);
        let value: serde_json::Value = serde_json::from_str(&output).expect("token JSON");
        (
            value["id"].as_str().expect("id").to_string(),
            value["token"].as_str().expect("token").to_string(),
        )
    }

    /// The gateway's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// libpq connection string for `user` on `connection`.
    pub fn conninfo(&self, user: &str, connection: &str, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={connection} sslmode={sslmode}",
            self.pg_port
        )
    }

    /// Runs `psql -c sql` through the gateway with `token` as password.
    pub fn psql(
        &self,
        token: &str,
        user: &str,
        connection: &str,
        sslmode: &str,
        sql: &str,
    ) -> Output {
        Command::new(pg_client("psql"))
            .arg(self.conninfo(user, connection, sslmode))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", token)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("run psql")
    }

    /// Stops the gateway (SIGKILL) and starts it again on the same ports and
    /// data dir.
    pub fn restart(&mut self) {
        self.kill();
        let env: Vec<(String, String)> = self.env.clone();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        self.spawn(&env);
    }

    /// Restarts the gateway with `env` instead of the extra environment it
    /// was started with (it may override `AIRLOCK_ADMIN_TOKEN`).
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self.restart();
    }

    /// The folder holding the config file (and `policy.yaml` when the
    /// gateway was started with a policy).
    pub fn config_dir(&self) -> PathBuf {
        self.config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Kills the gateway process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
