//! Opens the store the config names: the embedded SQLite store in the data
//! directory (`store: sqlite`), or the PostgreSQL store replicas share
//! (`store: postgres://user@host:port/db`), its password read from
//! `AIRLOCK_STORE_PASSWORD` or the file `AIRLOCK_STORE_PASSWORD_FILE`
//! names, TLS from the URL's `sslmode` with the project's upstream rustls
//! configs. Errors name the store by its URL without a password and never
//! carry the password.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::sync::Arc;

use airlock_store::prelude::*;
use airlock_store::{PgSslMode, PgStore, PgStoreUrl, Store};

/// True when `store` names the shared PostgreSQL store.
pub fn is_shared(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// Opens (and migrates) the store; `full_sync` sets SQLite's commit
/// durability (PostgreSQL's is the server's `synchronous_commit`).
pub fn open(store: &str, data_dir: &Path, full_sync: bool) -> Result<Arc<dyn StoreBackend>> {
    if !is_shared(store) {
        let sqlite = Store::open(data_dir)
            .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
        sqlite.set_full_sync(full_sync)?;
        return Ok(Arc::new(sqlite));
    }
    let url = PgStoreUrl::parse(store).map_err(|error| anyhow!("store: {error}"))?;
    let password = store_password()?;
    let tls = match url.ssl_mode() {
        PgSslMode::Disable => None,
        PgSslMode::Require => Some(
            airlock_core::tls::encrypting_client_config()
                .map_err(|error| anyhow!("store TLS: {error}"))?,
        ),
        PgSslMode::VerifyFull => {
            let ca = url
                .root_cert()
                .ok_or_else(|| anyhow!("store: sslmode=verify-full needs sslrootcert=FILE"))?;
            Some(
                airlock_core::tls::verifying_client_config(ca)
                    .map_err(|error| anyhow!("store TLS ({}): {error}", ca.display()))?,
            )
        }
    };
    // The store's errors name it by its URL without the password.
    let shared = PgStore::open(&url, password.as_deref(), tls)
        .map_err(|error| anyhow!("cannot open the {error}"))?;
    Ok(Arc::new(shared))
}

/// The store's password: `AIRLOCK_STORE_PASSWORD`, or the first line of
/// the file named by `AIRLOCK_STORE_PASSWORD_FILE` (a mounted secret).
fn store_password() -> Result<Option<String>> {
    let direct = std::env::var("AIRLOCK_STORE_PASSWORD").ok();
    let file = std::env::var_os("AIRLOCK_STORE_PASSWORD_FILE");
    match (direct, file) {
        (Some(_), Some(_)) => {
            bail!("set AIRLOCK_STORE_PASSWORD or AIRLOCK_STORE_PASSWORD_FILE, not both")
        }
        (Some(password), None) => Ok(Some(password)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read AIRLOCK_STORE_PASSWORD_FILE {}",
                    Path::new(&path).display()
                )
            })?;
            Ok(Some(text.lines().next().unwrap_or("").to_string()))
        }
        (None, None) => Ok(None),
    }
}
