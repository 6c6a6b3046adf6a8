//! A throwaway self-signed server certificate (for `localhost` and
//! `127.0.0.1`) that the `postgres` user can read: what a PostgreSQL
//! with `ssl = on` or PgBouncer with client TLS needs in a test or a
//! benchmark.

use crate::host::running_as_root;
use std::path::PathBuf;
use std::process::Command;

/// A folder holding `server.crt` and `server.key` (mode 0600, owned by
/// `postgres` when running as root); the folder lives as long as the
/// returned guard.
pub fn server_certificate() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let certs = tempfile::Builder::new()
        .prefix("airlock-certs-")
        .tempdir()
        .expect("a folder for certificates");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("a self-signed certificate");
    let cert = certs.path().join("server.crt");
    let key = certs.path().join("server.key");
    std::fs::write(&cert, certified.cert.pem()).expect("write server.crt");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write server.key");
    let run = |program: &str, args: &[&std::ffi::OsStr]| {
        let status = Command::new(program)
            .args(args)
            .status()
            .unwrap_or_else(|error| panic!("run {program}: {error}"));
        assert!(status.success(), "{program} {args:?} failed");
    };
    if running_as_root() {
        run(
            "chown",
            &[
                "-R".as_ref(),
                "postgres:postgres".as_ref(),
                certs.path().as_os_str(),
            ],
        );
    }
    run("chmod", &["755".as_ref(), certs.path().as_os_str()]);
    run("chmod", &["600".as_ref(), key.as_os_str()]);
    (certs, cert, key)
}
