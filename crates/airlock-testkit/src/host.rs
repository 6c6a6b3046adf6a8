//! What the test machine provides, whatever is tested: free TCP ports,
//! whether the tests run as root, random secrets, appending to a file.
//! Temporary directories come from `tempfile`, owned by each fixture.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

/// A free TCP port on 127.0.0.1 (bound and released: a small race, fine for
/// tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Whether the tests run as root (server binaries refuse to).
pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A random hex secret (24 characters) from `/dev/urandom`.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `text` to the file at `path`.
pub(crate) fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text.as_bytes()).expect("append");
}
