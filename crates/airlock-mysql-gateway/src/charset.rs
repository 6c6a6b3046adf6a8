//! Which client character sets the gateway serves: those in which the
//! classifier and the server read a statement the same way (every quote,
//! backslash and comment byte is ASCII and never the tail of a multi-byte
//! character). In `gbk`, `big5`, `sjis` or `cp932` a multi-byte character
//! may end in 0x5C (`\`), which would let a string hide a statement from
//! the classifier.

/// Collation ids (as in the handshake) of ASCII-safe character sets:
/// latin1, ascii, binary, utf8mb3, utf8mb4.
pub fn is_ascii_safe(collation: u8) -> bool {
    matches!(
        collation,
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 // latin1
            | 11 | 65 // ascii
            | 63 // binary
            | 33 | 76 | 83 | 192..=215 | 223 // utf8mb3
            | 45 | 46 | 224..=247 | 255 // utf8mb4
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_sets_with_backslash_tails_are_refused() {
        for safe in [8, 33, 45, 63, 224, 255] {
            assert!(is_ascii_safe(safe), "{safe}");
        }
        // gbk_chinese_ci 28, big5 1, sjis 13, cp932 95.
        for unsafe_set in [28, 1, 13, 95] {
            assert!(!is_ascii_safe(unsafe_set), "{unsafe_set}");
        }
    }
}
