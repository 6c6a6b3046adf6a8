//! Files of this repository, for tests: tests read nothing outside the
//! repository, so every fixture, example or document a test compares with
//! is found from the repository's root here.

use std::path::{Path, PathBuf};

/// A file of this repository, by its path from the repository's root
/// (`examples/local-policy.yaml`): tests read nothing outside the repository.
pub fn repo_file(relative: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the testkit lives in crates/airlock-testkit");
    root.join(relative)
}

/// [`repo_file`]'s text.
pub fn repo_text(relative: &str) -> String {
    let path = repo_file(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}
