//! The credential vault: AES-256-GCM encryption of upstream passwords under
//! a master key.
//!
//! The master key comes from `AIRLOCK_MASTER_KEY` (64 hex characters or the
//! base64 of 32 bytes) or from `master.key` in the data directory, created
//! with mode 0600 on first start. Each ciphertext is bound to its credential
//! name and user name as associated data, so a ciphertext copied onto another
//! row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use std::path::Path;

use airlock_types::Secret;

use crate::StoreError;

/// The name of the key file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// A 256-bit master key.
pub struct MasterKey(Secret<[u8; 32]>);

impl MasterKey {
    /// Loads the key from `env_value` when given, else from the key file in
    /// `data_dir`, creating it (mode 0600) when absent.
    pub fn load(env_value: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        if let Some(value) = env_value {
            return Self::parse(value.trim()).map_err(|problem| {
                StoreError::MasterKey(format!("AIRLOCK_MASTER_KEY is invalid: {problem}"))
            });
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|error| {
                StoreError::MasterKey(format!("cannot read {}: {error}", path.display()))
            })?;
            return Self::parse(text.trim()).map_err(|problem| {
                StoreError::MasterKey(format!("{} is invalid: {problem}", path.display()))
            });
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        write_private_file(&path, hex::encode(key).as_bytes()).map_err(|error| {
            StoreError::MasterKey(format!("cannot create {}: {error}", path.display()))
        })?;
        Ok(Self(Secret::new(key)))
    }

    /// Parses 64 hex characters or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| "not hex")?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| "expected 64 hex characters or base64 of 32 bytes")?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the key must be exactly 32 bytes (64 hex characters)")?;
        Ok(Self(Secret::new(key)))
    }

    /// A 256-bit key for `purpose`, derived from the master key (so one
    /// master key serves several uses without reusing key material).
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"airlock-key-derivation\0");
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(self.0.expose());
        hasher.finalize().into()
    }

    /// A one-way check of this key (hex), for stores that must refuse a
    /// process holding another key ([`crate::StoreBackend::claim_key_check`]):
    /// the SHA-256 of a key derived for this purpose only.
    pub fn key_check(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.derive_key("store-key-check")))
    }

    fn cipher(&self) -> Result<Aes256Gcm, StoreError> {
        Aes256Gcm::new_from_slice(self.0.expose())
            .map_err(|_| StoreError::Vault("bad key length".into()))
    }

    /// Encrypts `password` for credential `name`; returns (nonce, ciphertext).
    pub fn encrypt(
        &self,
        name: &str,
        username: &str,
        password: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(name, username);
        let ciphertext = self
            .cipher()?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: password.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Vault("encryption failed".into()))?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// Decrypts a stored password.
    pub fn decrypt(
        &self,
        name: &str,
        username: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret<String>, StoreError> {
        if nonce.len() != 12 {
            return Err(StoreError::Vault(format!("credential {name:?}: bad nonce")));
        }
        let aad = associated_data(name, username);
        let plaintext = self
            .cipher()?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                StoreError::Vault(format!(
                    "credential {name:?} does not decrypt: wrong master key or tampered record"
                ))
            })?;
        String::from_utf8(plaintext)
            .map(Secret::new)
            .map_err(|_| StoreError::Vault(format!("credential {name:?} is not UTF-8")))
    }
}

fn associated_data(name: &str, username: &str) -> Vec<u8> {
    format!("airlock-credential\0{name}\0{username}").into_bytes()
}

/// Writes a file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::private::private_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypts_and_binds_to_the_name() {
        let key = MasterKey::parse(&"11".repeat(32)).unwrap();
        let (nonce, ciphertext) = key.encrypt("pg", "app", "s3cret").unwrap();
        assert!(!ciphertext.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            key.decrypt("pg", "app", &nonce, &ciphertext)
                .unwrap()
                .expose(),
            "s3cret"
        );
        assert!(key.decrypt("other", "app", &nonce, &ciphertext).is_err());
        let wrong = MasterKey::parse(&"22".repeat(32)).unwrap();
        assert!(wrong.decrypt("pg", "app", &nonce, &ciphertext).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = MasterKey::load(None, dir.path()).unwrap();
        let (nonce, ciphertext) = first.encrypt("n", "u", "p").unwrap();
        let second = MasterKey::load(None, dir.path()).unwrap();
        assert_eq!(
            second
                .decrypt("n", "u", &nonce, &ciphertext)
                .unwrap()
                .expose(),
            "p"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_env_keys_are_refused() {
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&"zz".repeat(32)).is_err());
    }
}
