//! Owner-only files and folders for everything this crate writes.
//!
//! The data directory holds the store (credential ciphertext, token hashes,
//! the audit log), the master key, the write-ahead journal and TLS keys.
//! Nothing in it is for another user of the machine: folders are created
//! `0700` and files `0600` at creation (not left to the process umask), and
//! files an older version left more open are narrowed when opened.
//!
//! SQLite creates the `-wal`, `-shm` and `-journal` files of a database
//! with the permissions of the database file itself, so creating the
//! database `0600` covers them; [`restrict_database`] also narrows any that
//! already exist.

use std::fs::OpenOptions;
use std::path::Path;

/// Creates `dir` (and its parents) if needed and makes it `0700`.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Options that create a file readable and writable by its owner only.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes an existing file `0600`; a missing one is not an error.
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Before SQLite opens the database at `path`: creates it `0600` when it
/// does not exist (SQLite gives its `-wal`, `-shm` and `-journal` files the
/// same permissions), and narrows the database and those files to `0600`
/// when they exist.
pub fn restrict_database(path: &Path) -> std::io::Result<()> {
    private_options().create(true).append(true).open(path)?;
    restrict_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        restrict_file(Path::new(&name))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[allow(clippy::unwrap_used)] // test helper: a failed step stops the test
    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_and_narrows_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);

        let database = dir.path().join("x.db");
        let wal = dir.path().join("x.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_database(&database).unwrap();
        assert_eq!(mode(&database), 0o600);
        assert_eq!(mode(&wal), 0o600);

        let file = dir.path().join("f");
        private_options()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap();
        assert_eq!(mode(&file), 0o600);
        restrict_file(&dir.path().join("missing")).unwrap();
    }
}
