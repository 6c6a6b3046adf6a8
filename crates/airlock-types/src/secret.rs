//! [`Secret`]: a wrapper that keeps a value out of `Debug` and `Display`.
//!
//! Upstream passwords, tokens and keys travel in a `Secret` so that a stray
//! `{:?}` in a log line prints `<secret>` instead of the value. Reading the
//! value takes an explicit [`Secret::expose`] call, which is easy to audit.

use std::fmt;

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the secret. Every call site is a place where the secret leaves
    /// its wrapper: keep them few and never pass the result to a logger.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "<secret>");
        assert_eq!(format!("{secret}"), "<secret>");
        assert_eq!(secret.expose(), "hunter2");
    }
}
