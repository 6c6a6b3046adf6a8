//! The store's address, `postgres://user@host:port/db?sslmode=…`: parsed
//! here, shown only without its password ([`PgStoreUrl::redacted`]), and
//! turned into a client config with the password given apart (from
//! `AIRLOCK_STORE_PASSWORD` or a file, read by the caller).
//!
//! `sslmode` is taken out before `tokio-postgres` sees the URL, since it
//! knows neither `verify-full` nor where the CA comes from: `disable` (the
//! default), `require` (encrypted, certificate not checked, like libpq) and
//! `verify-full` (certificate checked against `sslrootcert=FILE` and the
//! host name). The caller builds the TLS client config for the mode.

use std::path::PathBuf;
use std::time::Duration;

use crate::StoreError;

/// TLS towards the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// Plain TCP.
    Disable,
    /// TLS, certificate not checked.
    Require,
    /// TLS, certificate and host name checked.
    VerifyFull,
}

impl PgSslMode {
    /// The mode as written in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A parsed store URL.
#[derive(Clone)]
pub struct PgStoreUrl {
    config: tokio_postgres::Config,
    ssl_mode: PgSslMode,
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PgStoreUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

impl PgStoreUrl {
    /// Parses `postgres://` or `postgresql://` URLs. Errors never repeat
    /// the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Postgres(format!("invalid store URL: {why}"));
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("it must start with postgres://"));
        }
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut ssl_mode = PgSslMode::Disable;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    ssl_mode = match value {
                        "disable" => PgSslMode::Disable,
                        "require" => PgSslMode::Require,
                        "verify-full" => PgSslMode::VerifyFull,
                        _ => {
                            return Err(invalid(
                                "sslmode must be disable, require or verify-full",
                            ))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                "password" => return Err(invalid(
                    "put the password in AIRLOCK_STORE_PASSWORD or AIRLOCK_STORE_PASSWORD_FILE, not in the URL",
                )),
                _ => kept.push(pair),
            }
        }
        if ssl_mode == PgSslMode::VerifyFull && root_cert.is_none() {
            return Err(invalid(
                "sslmode=verify-full needs sslrootcert=FILE (the CA certificate)",
            ));
        }
        let rebuilt = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let config: tokio_postgres::Config = rebuilt
            .parse()
            .map_err(|_| invalid("expected postgres://user@host:port/database"))?;
        if config.get_password().is_some() {
            return Err(invalid(
                "put the password in AIRLOCK_STORE_PASSWORD or AIRLOCK_STORE_PASSWORD_FILE, not in the URL",
            ));
        }
        if config.get_user().is_none() {
            return Err(invalid("it names no user (postgres://user@host/database)"));
        }
        if config.get_hosts().is_empty() {
            return Err(invalid("it names no host"));
        }
        Ok(Self {
            config,
            ssl_mode,
            root_cert,
        })
    }

    /// TLS towards the store.
    pub fn ssl_mode(&self) -> PgSslMode {
        self.ssl_mode
    }

    /// The CA certificate file for `verify-full`.
    pub fn root_cert(&self) -> Option<&std::path::Path> {
        self.root_cert.as_deref()
    }

    /// `postgres://user@host:port/database`: what messages show.
    pub fn redacted(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        let port = self
            .config
            .get_ports()
            .first()
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        format!(
            "postgres://{}@{host}{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or("")
        )
    }

    /// The client config with `password` and a connect timeout.
    pub(crate) fn client_config(
        &self,
        password: Option<&str>,
        connect_timeout: Duration,
    ) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(connect_timeout)
            .application_name("airlock")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_shown_without_secrets() {
        let url = PgStoreUrl::parse("postgres://airlock@db.internal:6543/state").unwrap();
        assert_eq!(url.ssl_mode(), PgSslMode::Disable);
        assert_eq!(url.redacted(), "postgres://airlock@db.internal:6543/state");
        let url =
            PgStoreUrl::parse("postgresql://airlock@db/state?sslmode=require&connect_timeout=3")
                .unwrap();
        assert_eq!(url.ssl_mode(), PgSslMode::Require);
        let url = PgStoreUrl::parse(
            "postgres://airlock@db/state?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(url.ssl_mode(), PgSslMode::VerifyFull);
        assert_eq!(url.root_cert(), Some(std::path::Path::new("/etc/ca.pem")));
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for (url, why) in [
            (
                "postgres://airlock:hunter2@db/state",
                "AIRLOCK_STORE_PASSWORD",
            ),
            (
                "postgres://airlock@db/state?password=hunter2",
                "AIRLOCK_STORE_PASSWORD",
            ),
            (
                "postgres://airlock@db/state?sslmode=prefer&x=hunter2",
                "sslmode must be",
            ),
            (
                "postgres://airlock@db/state?sslmode=verify-full",
                "sslrootcert",
            ),
            ("mysql://airlock@db/state", "postgres://"),
            ("postgres://db/state?connect_timeout=3", "no user"),
        ] {
            let error = PgStoreUrl::parse(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
    }
}
