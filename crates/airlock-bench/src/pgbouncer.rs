//! A throwaway PgBouncer in front of the benchmark cluster: session pooling
//! (one server connection per client, like airlock; PgBouncer 1.18 cannot
//! keep `-M prepared` statements across transaction-pooled connections),
//! SCRAM towards clients and the server with the password in an auth_file.

use crate::sys;
use anyhow::{bail, Context, Result};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PgBouncer's `pool_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client for the client's whole session (so
    /// prepared statements work): what the throughput runs compare with.
    Session,
    /// A server connection per transaction: how 10,000 clients share a few
    /// dozen backends.
    Transaction,
}

impl PoolMode {
    fn name(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

/// How a PgBouncer is set up.
pub struct Settings {
    pub pool_mode: PoolMode,
    pub max_client_conn: usize,
    /// Certificate and key for TLS towards clients (`client_tls_sslmode =
    /// allow`: clients choose), copied into PgBouncer's own folder.
    pub client_tls: Option<(PathBuf, PathBuf)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pool_mode: PoolMode::Session,
            max_client_conn: 2_000,
            client_tls: None,
        }
    }
}

/// The `client_tls_*` lines of the configuration (empty without TLS).
fn client_tls(dir: &tempfile::TempDir, settings: &Settings) -> Result<String> {
    let Some((cert, key)) = &settings.client_tls else {
        return Ok(String::new());
    };
    let (cert_copy, key_copy) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::copy(cert, &cert_copy).context("copy the TLS certificate")?;
    std::fs::copy(key, &key_copy).context("copy the TLS key")?;
    Ok(format!(
        "client_tls_sslmode = allow\nclient_tls_cert_file = {}\nclient_tls_key_file = {}\n",
        cert_copy.display(),
        key_copy.display()
    ))
}

pub struct PgBouncer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The pgbouncer process itself (not the `runuser` around it).
    pub pid: u32,
    pub port: u16,
    pub version: String,
}

impl PgBouncer {
    /// Starts PgBouncer on a free port; `database` on `upstream_port` is
    /// reachable as the same name, `user`/`password` authenticate both legs.
    /// PgBouncer with the given pool mode, client limit and client TLS.
    pub fn start_with(
        upstream_port: u16,
        database: &str,
        user: &str,
        password: &str,
        settings: &Settings,
    ) -> Result<Self> {
        let binary = sys::find_program("pgbouncer").context(
            "pgbouncer is not installed: `apt-get install pgbouncer` (or `bash .ci/install-deps`)",
        )?;
        let version = sys::command_line(&binary.to_string_lossy(), &["--version"])
            .unwrap_or_else(|| "unknown".into());
        let dir = tempfile::Builder::new()
            .prefix("airlock-bench-pgbouncer-")
            .tempdir()?;
        let port = airlock_testkit::free_port();
        let path = |name: &str| dir.path().join(name);
        let auth_file = path("userlist.txt");
        std::fs::write(&auth_file, format!("\"{user}\" \"{password}\"\n"))?;
        let config = format!(
            "[databases]\n\
             {database} = host=127.0.0.1 port={upstream_port} dbname={database}\n\
             \n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {auth}\n\
             pool_mode = {pool_mode}\n\
             max_client_conn = {max_client_conn}\n\
             {tls}
             default_pool_size = 100\n\
             logfile = {log}\n\
             pidfile = {pidfile}\n\
             log_connections = 0\n\
             log_disconnections = 0\n\
             ignore_startup_parameters = extra_float_digits\n",
            auth = auth_file.display(),
            pool_mode = settings.pool_mode.name(),
            max_client_conn = settings.max_client_conn,
            tls = client_tls(&dir, settings)?,
            log = path("pgbouncer.log").display(),
            pidfile = path("pgbouncer.pid").display(),
        );
        let config_path = path("pgbouncer.ini");
        std::fs::write(&config_path, config)?;
        // PgBouncer refuses to run as root: the testkit runs it as
        // `postgres` then, which must own its folder; the auth file holds a
        // password, so only its owner may read it.
        let owner_status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "chmod 600 '{auth}' && if [ \"$(id -u)\" = 0 ]; then chown -R postgres:postgres '{dir}' && chmod 700 '{dir}'; fi",
                auth = auth_file.display(),
                dir = dir.path().display()
            ))
            .status()?;
        if !owner_status.success() {
            bail!("could not hand the PgBouncer folder to the postgres user");
        }
        let console = std::fs::File::create(path("console.log"))?;
        // `runuser` resets the soft open-file limit to 1,024: PgBouncer
        // raises it back to the hard limit this process set (one
        // descriptor per client; `--sessions` holds thousands).
        let child = airlock_testkit::server_user_command(Path::new("/bin/sh"))
            .arg("-c")
            .arg("ulimit -n \"$(ulimit -Hn)\" && exec \"$0\" \"$@\"")
            .arg(&binary)
            .arg(&config_path)
            .stdout(Stdio::from(console.try_clone()?))
            .stderr(Stdio::from(console))
            .spawn()
            .context("spawn pgbouncer")?;
        let mut bouncer = Self {
            dir,
            child: Some(child),
            pid: 0,
            port,
            version,
        };
        bouncer.wait_ready()?;
        Ok(bouncer)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let pidfile = self.dir.path().join("pgbouncer.pid");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("pgbouncer exited with {status}:\n{}", self.log());
                }
            }
            let pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok());
            if let Some(pid) = pid {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.pid = pid;
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("pgbouncer did not become ready:\n{}", self.log())
    }

    /// PgBouncer's log and console output.
    pub fn log(&self) -> String {
        let read = |name: &str| -> String {
            std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
        };
        format!("{}{}", read("console.log"), read("pgbouncer.log"))
    }

    fn stop(&mut self) {
        if self.pid != 0 {
            // SIGTERM: immediate shutdown. The pid is the one PgBouncer
            // wrote for the process we started.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
    }
}
