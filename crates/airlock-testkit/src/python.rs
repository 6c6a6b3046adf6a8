//! Python packages the tests run (psycopg, httpbin, PyMySQL, the MCP SDK,
//! the Kubernetes client), installed project-locally from a requirements
//! file into a git-ignored `site/` folder beside it, once.

use std::path::PathBuf;
use std::process::Command;

use crate::repo_file;

/// The `site/` folder beside `<dir>/requirements.txt` (`dir` from the
/// repository's root), with the requirements installed there by
/// `pip install --target` on first use. Installed beside, then renamed, so
/// a half-installed folder is never taken for a whole one; `present` names
/// the packages whose folders show an install is complete. For
/// `PYTHONPATH`.
pub fn pip_site(dir: &str, present: &[&str]) -> PathBuf {
    let dir = repo_file(dir);
    let site = dir.join("site");
    let complete = |site: &PathBuf| present.iter().all(|package| site.join(package).exists());
    if complete(&site) {
        return site;
    }
    let requirements = dir.join("requirements.txt");
    let partial = dir.join(format!("site.tmp-{}", std::process::id()));
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&partial)
        .arg("-r")
        .arg(&requirements)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run python3 -m pip: {error}; these tests need python3 with pip")
        });
    assert!(
        output.status.success(),
        "pip install -r {} failed:\n{}\n{}",
        requirements.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if std::fs::rename(&partial, &site).is_err() {
        // Another test binary installed it meanwhile.
        let _ = std::fs::remove_dir_all(&partial);
    }
    assert!(complete(&site), "{present:?} missing in {}", site.display());
    site
}
