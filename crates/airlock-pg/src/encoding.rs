//! Which client encodings the gateway lets a session use.
//!
//! The gateway classifies statement text byte by byte as ASCII-compatible
//! text. PostgreSQL converts the client's bytes from `client_encoding`
//! before it parses them, and in the client-only encodings (SJIS, BIG5,
//! GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004) the second byte of a multibyte
//! character can be an ASCII byte such as `\` or `'`: a string literal to
//! the classifier can be two statements to the server. Every server
//! encoding keeps bytes below 0x80 as ASCII, so a session may use those and
//! nothing else. Names are compared as PostgreSQL compares them: case and
//! non-alphanumeric characters ignored (`UTF-8`, `utf8`, `Utf_8`).

/// Encoding names (cleaned: lower-case ASCII letters and digits only) in
/// which every byte below 0x80 is the ASCII character: PostgreSQL's server
/// encodings and their aliases.
const ASCII_SAFE: &[&str] = &[
    "sqlascii",
    "utf8",
    "unicode",
    "eucjp",
    "euccn",
    "euckr",
    "euctw",
    "eucjis2004",
    "muleinternal",
    "latin1",
    "latin2",
    "latin3",
    "latin4",
    "latin5",
    "latin6",
    "latin7",
    "latin8",
    "latin9",
    "latin10",
    "iso88591",
    "iso88592",
    "iso88593",
    "iso88594",
    "iso88595",
    "iso88596",
    "iso88597",
    "iso88598",
    "iso88599",
    "iso885910",
    "iso885913",
    "iso885914",
    "iso885915",
    "iso885916",
    "koi8",
    "koi8r",
    "koi8u",
    "win",
    "win866",
    "win874",
    "win1250",
    "win1251",
    "win1252",
    "win1253",
    "win1254",
    "win1255",
    "win1256",
    "win1257",
    "win1258",
    "windows866",
    "windows874",
    "windows1250",
    "windows1251",
    "windows1252",
    "windows1253",
    "windows1254",
    "windows1255",
    "windows1256",
    "windows1257",
    "windows1258",
    "cp866",
    "cp874",
    "cp1250",
    "cp1251",
    "cp1252",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp1258",
    "alt",
    "abc",
    "tcvn",
    "tcvn5712",
    "vscii",
];

/// Longest encoding name considered; anything longer is refused.
const MAX_NAME: usize = 32;

/// True when a session may use `name` as its `client_encoding`: every
/// byte below 0x80 means the same ASCII character to the gateway and the
/// server. Unknown names are refused (the server would refuse them too).
pub fn is_ascii_safe_encoding(name: &str) -> bool {
    if name.len() > MAX_NAME {
        return false;
    }
    let cleaned: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ASCII_SAFE.contains(&cleaned.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_encodings_and_aliases_are_safe() {
        for name in [
            "UTF8",
            "utf-8",
            "Unicode",
            "SQL_ASCII",
            "LATIN1",
            "ISO_8859_5",
            "EUC_JP",
            "WIN1252",
            "KOI8R",
            "windows-1251",
        ] {
            assert!(is_ascii_safe_encoding(name), "{name}");
        }
    }

    #[test]
    fn client_only_encodings_are_refused() {
        for name in [
            "SJIS",
            "Shift_JIS",
            "shiftjis2004",
            "SHIFT_JIS_2004",
            "mskanji",
            "win932",
            "windows932",
            "BIG5",
            "win950",
            "GBK",
            "cp936",
            "win936",
            "UHC",
            "cp949",
            "GB18030",
            "JOHAB",
            "",
            "auto",
            "no such encoding",
        ] {
            assert!(!is_ascii_safe_encoding(name), "{name}");
        }
    }
}
