//! TLS material: the client-facing server config (from files, or a
//! self-signed certificate generated into the data directory) and client
//! configs for upstreams.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// File names of the generated development certificate.
pub const GENERATED_CERT: &str = "tls.crt";
/// Key file of the generated development certificate (mode 0600).
pub const GENERATED_KEY: &str = "tls.key";

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} holds no {what}")]
    Empty { path: String, what: &'static str },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}")]
    Bundle(&'static str),
}

/// How an upstream's certificate is checked.
pub enum UpstreamRoots<'a> {
    /// Against the CA bundle in this file.
    CaFile(&'a Path),
    /// Against these roots (the system's).
    Store(RootCertStore),
    /// Not at all (`insecure_skip_verify`, named explicitly).
    AcceptAny,
}

/// A client config towards an upstream, presenting `identity` (a client
/// certificate chain and key) when given.
pub fn upstream_client_config(
    roots: UpstreamRoots<'_>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match roots {
        UpstreamRoots::AcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
        UpstreamRoots::CaFile(path) => {
            let mut store = RootCertStore::empty();
            for cert in read_certs(path)? {
                store.add(cert)?;
            }
            builder.with_root_certificates(store)
        }
        UpstreamRoots::Store(store) => builder.with_root_certificates(store),
    };
    let config = match identity {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the PEM certificate and key named in config, or generates (once) a
/// self-signed pair in `data_dir`.
pub fn server_config(
    files: Option<(&Path, &Path)>,
    data_dir: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match files {
        Some((cert, key)) => (cert.to_path_buf(), key.to_path_buf()),
        None => {
            let cert = data_dir.join(GENERATED_CERT);
            let key = data_dir.join(GENERATED_KEY);
            if !cert.exists() || !key.exists() {
                generate_self_signed(&cert, &key)?;
            }
            (cert, key)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|error| TlsError::Generate(error.to_string()))?;
    let _ = std::fs::remove_file(key_path);
    airlock_store::vault::write_private_file(
        key_path,
        certified.key_pair.serialize_pem().as_bytes(),
    )
    .map_err(|error| TlsError::Read {
        path: key_path.display().to_string(),
        error,
    })?;
    // Public, but the data dir is owner-only throughout.
    let _ = std::fs::remove_file(cert_path);
    airlock_store::vault::write_private_file(cert_path, certified.cert.pem().as_bytes()).map_err(
        |error| TlsError::Read {
            path: cert_path.display().to_string(),
            error,
        },
    )?;
    Ok(())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::Read {
            path: path.display().to_string(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.display().to_string(),
        error,
    })?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|error| TlsError::Read {
            path: path.display().to_string(),
            error,
        })?
        .ok_or(TlsError::Empty {
            path: path.display().to_string(),
            what: "private key",
        })
}

/// Client config for an upstream with `tls: verify-full`.
pub fn verifying_client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file)? {
        roots.add(cert)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Client config for an `https://` upstream (HTTP, Kubernetes and MCP
/// connections): no verification only when the connection says
/// `insecure_skip_verify`, else its `ca_file`, else the system's trust
/// store.
pub fn https_client_config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    https_client_config_with(ca_file, insecure, None)
}

/// [`https_client_config`] presenting `identity` (a client certificate
/// chain and key) when given.
pub fn https_client_config_with(
    ca_file: Option<&Path>,
    insecure: bool,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match (insecure, ca_file) {
        (true, _) => UpstreamRoots::AcceptAny,
        (false, Some(ca)) => UpstreamRoots::CaFile(ca),
        (false, None) => {
            let mut roots = RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                // A certificate the store holds but rustls cannot parse is
                // skipped: the others still verify.
                let _ = roots.add(cert);
            }
            UpstreamRoots::Store(roots)
        }
    };
    upstream_client_config(roots, identity)
}

/// A client certificate chain and its key from one PEM bundle (a
/// client-certificate credential's secret).
pub fn client_identity(
    bundle: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut bundle.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Bundle("a certificate does not parse"))?;
    if certs.is_empty() {
        return Err(TlsError::Bundle("no certificate"));
    }
    let key = rustls_pemfile::private_key(&mut bundle.as_bytes())
        .map_err(|_| TlsError::Bundle("the private key does not parse"))?
        .ok_or(TlsError::Bundle("no private key"))?;
    Ok((certs, key))
}

/// Client config for an upstream with `tls: require`: encrypted, certificate
/// not checked (libpq's `sslmode=require`). Signatures are still verified so
/// the handshake is sound.
pub fn encrypting_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        server_config(None, dir.path()).unwrap();
        let first = std::fs::read(dir.path().join(GENERATED_CERT)).unwrap();
        server_config(None, dir.path()).unwrap();
        assert_eq!(
            first,
            std::fs::read(dir.path().join(GENERATED_CERT)).unwrap()
        );
    }
}

/// TLS towards the upstream.
#[derive(Clone)]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// TLS with this client config (`require` or `verify-full`).
    Enabled(Arc<ClientConfig>),
}
