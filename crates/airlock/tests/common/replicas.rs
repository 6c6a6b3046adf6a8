//! Gateway replicas on one shared PostgreSQL store: the store cluster (an
//! empty `airlock_state` database), an upstream cluster with `items` (ids
//! 1 to 5) and replicas sharing the master key and admin token.

use airlock_testkit::{GatewayProcess, PgCluster};

pub const ADMIN_TOKEN: &str = "shared-store-admin-token-of-some-length";
pub const MASTER_KEY: &str = "8f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Rows in the upstream's `items`.
pub fn count(upstream: &PgCluster) -> String {
    upstream
        .sql_in("appdb", "select count(*) from items")
        .trim()
        .to_string()
}

pub fn start_replica(config: &str, store: &PgCluster) -> GatewayProcess {
    start_replica_with_policy(config, store, super::ALLOW_ALL)
}

pub fn start_replica_with_policy(config: &str, store: &PgCluster, policy: &str) -> GatewayProcess {
    let mut replica = GatewayProcess::start_with_policy_and_env(
        super::binary(),
        config,
        policy,
        &[
            ("AIRLOCK_STORE_PASSWORD", &store.superuser_password),
            ("AIRLOCK_MASTER_KEY", MASTER_KEY),
            ("AIRLOCK_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    replica.admin_token = ADMIN_TOKEN.to_string();
    replica
}

/// A store cluster with an empty `airlock_state` database, an upstream
/// cluster with `items` (ids 1 to 5) and the config naming both.
pub fn clusters() -> (PgCluster, PgCluster, String) {
    clusters_with(&[])
}

/// Like [`clusters`], with `extra` config lines.
pub fn clusters_with(extra: &[&str]) -> (PgCluster, PgCluster, String) {
    clusters_with_store_config("", extra)
}

/// Like [`clusters_with`], the store cluster started with `store_conf`
/// added to its `postgresql.conf`.
pub fn clusters_with_store_config(
    store_conf: &str,
    extra: &[&str],
) -> (PgCluster, PgCluster, String) {
    // A commit the store acknowledged survives its crash, as on any store
    // run in earnest: the test clusters' `synchronous_commit = off` would
    // lose the last 200 ms of commits (a token just issued) to the
    // immediate stop of the outage tests. Still no fsync: the WAL is
    // written, which an immediate stop does not undo.
    let store = PgCluster::start_with_config(&format!("synchronous_commit = on\n{store_conf}"));
    store.sql("CREATE DATABASE airlock_state");
    let upstream = PgCluster::start();
    upstream.sql_in(
        "appdb",
        "create table items(id int primary key, name text); \
         insert into items select g, 'n' || g from generate_series(1, 5) g; \
         grant all on items to app",
    );
    let config = super::config(
        &upstream,
        &format!(
            "store: postgres://postgres@127.0.0.1:{}/airlock_state\n{}",
            store.port,
            extra.concat()
        ),
    );
    (store, upstream, config)
}

/// Listening connections the replicas hold on the store.
pub fn listeners(store: &PgCluster) -> usize {
    store
        .sql_in(
            "airlock_state",
            "select count(*) from pg_stat_activity where application_name = 'airlock-listen'",
        )
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits (at most 10 s) until `expected` replicas listen on the store.
pub fn wait_for_listeners(store: &PgCluster, expected: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while listeners(store) != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "{} listeners, not {expected}",
            listeners(store)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
