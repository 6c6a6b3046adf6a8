//! The certificates of the MySQL benchmark's TLS legs: a CA made for the
//! run, MariaDB's server certificate and a client certificate signed by
//! it, and per leg the folder sysbench runs in (`--mysql-ssl=on` reads
//! `client-key.pem`, `client-cert.pem` and `cacert.pem` from its working
//! directory, and verifies the server against `cacert.pem`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The run's certificate files.
pub struct Files {
    folder: PathBuf,
    /// The CA that signed MariaDB's certificate and the client's.
    pub ca: PathBuf,
    client_cert: String,
    client_key: String,
}

impl Files {
    /// Makes the CA and both certificates under `folder`, readable by
    /// mariadbd (which runs as `mysql` when the bench runs as root).
    pub fn create(folder: &Path) -> Result<Self> {
        let folder = folder.join("tls");
        std::fs::create_dir_all(&folder)?;
        let ca_key = rcgen::KeyPair::generate()?;
        // Distinct subjects: OpenSSL (sysbench's client library) takes a
        // certificate whose subject is its issuer's for self-signed, and
        // rcgen names every certificate alike by default.
        let named = |names: Vec<String>, common_name: &str| -> Result<rcgen::CertificateParams> {
            let mut params = rcgen::CertificateParams::new(names)?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, common_name);
            Ok(params)
        };
        let mut ca_params = named(Vec::new(), "airlock-bench CA")?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key)?;
        let server_key = rcgen::KeyPair::generate()?;
        let server = named(
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
            "localhost",
        )?
        .signed_by(&server_key, &ca, &ca_key)?;
        let client_key = rcgen::KeyPair::generate()?;
        let client = named(vec!["bench-client".to_string()], "bench-client")?.signed_by(
            &client_key,
            &ca,
            &ca_key,
        )?;
        let ca_path = folder.join("ca.crt");
        std::fs::write(&ca_path, ca.pem())?;
        std::fs::write(folder.join("server.crt"), server.pem())?;
        std::fs::write(folder.join("server.key"), server_key.serialize_pem())?;
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [
            (folder.parent().unwrap_or(&folder).to_path_buf(), 0o755),
            (folder.clone(), 0o755),
            (folder.join("server.key"), 0o644),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("chmod {}", path.display()))?;
        }
        Ok(Self {
            folder,
            ca: ca_path,
            client_cert: client.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// mariadbd's TLS options.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca.display()),
            format!("--ssl-cert={}", self.folder.join("server.crt").display()),
            format!("--ssl-key={}", self.folder.join("server.key").display()),
        ]
    }

    /// A folder for sysbench to run in, trusting `ca` (a PEM file).
    pub fn client_folder(&self, name: &str, ca: &Path) -> Result<PathBuf> {
        let folder = self.folder.join(format!("client-{name}"));
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("client-cert.pem"), &self.client_cert)?;
        std::fs::write(folder.join("client-key.pem"), &self.client_key)?;
        std::fs::copy(ca, folder.join("cacert.pem"))
            .with_context(|| format!("copy {}", ca.display()))?;
        Ok(folder)
    }
}
