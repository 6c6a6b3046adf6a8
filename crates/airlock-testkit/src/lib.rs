//! Test harness for airlock's end-to-end tests and benchmarks.
//!
//! [`PgCluster`] starts a throwaway PostgreSQL cluster from the installed
//! server binaries (`initdb` + `pg_ctl`) in a temporary directory on a free
//! port, with `scram-sha-256` authentication (plus one `md5` and one
//! `password` role), so credential injection is really exercised.
//! [`GatewayProcess`] runs the real `airlock` binary against it.
//!
//! One module per concern, everything re-exported at the crate root:
//! `pg_server` (the PostgreSQL server fixture), `mariadb_server` (the
//! MariaDB server fixture), `k8s_fixture` (a stand-in Kubernetes API
//! server, [`KubeApiFixture`]: no real one can run here), `gateway` (the gateway
//! process fixture), `clients` (client programs such as psql), `certs` (a throwaway server
//! certificate), `python` (PyPI packages
//! installed project-locally), `repo` (the
//! repository's files) and `host` (free ports, root, random secrets). A
//! fixture for another upstream (MariaDB, an HTTP or MCP server) is a module
//! of its own beside `pg_server`, sharing `host`.
//!
//! This crate is test support: it panics with a clear message when the
//! environment is missing something, rather than skipping.

// Test support: a failed setup step must stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod certs;
mod clients;
mod gateway;
mod host;
mod k8s_fixture;
mod mariadb_server;
mod pg_server;
mod python;
mod repo;

pub use certs::server_certificate;
pub use clients::pg_client;
pub use gateway::GatewayProcess;
pub use host::free_port;
pub use k8s_fixture::{ClientCertificates, ExecRecord, KubeApiFixture, LoggedRequest};
pub use mariadb_server::{MariaDb, MARIADB_TEST_USERS};
pub use pg_server::{pg_bin_dir, server_user_command, PgCluster};
pub use python::pip_site;
pub use repo::{repo_file, repo_text};
