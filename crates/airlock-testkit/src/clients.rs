//! Client programs the tests drive against a server or the gateway: psql,
//! pgbench. Rust clients (`tokio-postgres`) are used directly by the tests.

use crate::pg_server::pg_bin_dir;
use std::path::PathBuf;

/// A client binary (`psql`, `pgbench`) from the server's bin dir or PATH.
pub fn pg_client(name: &str) -> PathBuf {
    let in_bin = pg_bin_dir().join(name);
    if in_bin.exists() {
        return in_bin;
    }
    PathBuf::from(name)
}
