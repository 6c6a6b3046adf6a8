//! httpbin (PyPI, `tests/python-http/requirements.txt`) under gunicorn on a
//! free port, with an access log: a real third-party HTTP upstream for the
//! tests of tools that reach HTTP connections (the MCP server's
//! `http_request`). The HTTP gateway's own tests keep their copy.

#![allow(dead_code)]

use airlock_testkit::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `tests/python-http/requirements.txt` installed into its `site/`
/// (git-ignored) on first run.
fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-http", &["httpbin", "gunicorn"])
}

pub struct Httpbin {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    access_log: PathBuf,
}

impl Httpbin {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let access_log = dir.path().join("access.log");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "gunicorn", "--threads", "4", "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--access-logfile")
            .arg(&access_log)
            .arg("httpbin:app")
            .env("PYTHONPATH", python_site())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "httpbin did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            port,
            _dir: dir,
            access_log,
        }
    }

    /// The request lines that reached httpbin.
    pub fn seen(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
