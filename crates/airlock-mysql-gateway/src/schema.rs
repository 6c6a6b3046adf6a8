//! Which database a session may select: `USE db` in `COM_QUERY` and
//! `COM_INIT_DB`. Pure.
//!
//! Selecting the connection's own database (its `database:`) changes
//! nothing unqualified table names mean: it is decided as a read
//! (`other`). The connection's name selects that same database (clients
//! name connections as databases, so `USE \`shop-mysql\`` and
//! `mysql_select_db("shop-mysql")` are rewritten to the upstream
//! database). Any other `USE` changes what every later statement's
//! unqualified names mean and is left to the MySQL dialect, which
//! classifies it `admin` (as `search_path` is for PostgreSQL): only a
//! policy rule that allows it lets a session reach another database that
//! way.
//!
//! Only a text that is exactly `USE name` (one identifier, bare ASCII or
//! backquoted, an optional `;`) is recognised here; anything else (a
//! comment, an executable comment, a second statement) is classified as
//! written. Names compare exactly: MariaDB's database names are
//! case-sensitive on Linux, so `USE APPDB` is another database.

/// What selecting a database amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The connection's own database, named as it is upstream.
    Own,
    /// The connection's name: the own database, named for the upstream
    /// as this.
    OwnByConnectionName { database: String },
}

/// Whether `name` selects the connection's own database (`database`, the
/// upstream's) or names the connection (`connection`); `None` for any
/// other database.
pub fn selection(name: &[u8], database: &str, connection: &str) -> Option<Selection> {
    if database.is_empty() {
        return None;
    }
    if name == database.as_bytes() {
        return Some(Selection::Own);
    }
    (name == connection.as_bytes()).then(|| Selection::OwnByConnectionName {
        database: database.to_string(),
    })
}

/// The database a text names when it is exactly one `USE name` statement
/// (an optional trailing `;`, surrounding whitespace); `None` for anything
/// else.
pub fn lone_use(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let text = text
        .strip_suffix(';')
        .unwrap_or(text)
        .trim_end_matches(|c: char| c.is_ascii_whitespace());
    let keyword = text.get(..3)?;
    if !keyword.eq_ignore_ascii_case("use") {
        return None;
    }
    let rest = text.get(3..)?;
    let name = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if name.len() == rest.len() {
        return None; // `USEx`
    }
    if let Some(quoted) = name.strip_prefix('`') {
        let inner = quoted.strip_suffix('`')?;
        // Inside, a backquote only as a doubled pair.
        let mut unquoted = Vec::with_capacity(inner.len());
        let mut bytes = inner.bytes();
        while let Some(byte) = bytes.next() {
            if byte == b'`' && bytes.next() != Some(b'`') {
                return None;
            }
            unquoted.push(byte);
        }
        return (!unquoted.is_empty()).then_some(unquoted);
    }
    let bare = name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$');
    let digits_only = name.bytes().all(|byte| byte.is_ascii_digit());
    (bare && !digits_only && !name.is_empty()).then(|| name.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_use_reads_only_a_single_plain_use() {
        for (text, name) in [
            ("USE appdb", &b"appdb"[..]),
            ("use appdb;", b"appdb"),
            ("  Use\tappdb ; \n", b"appdb"),
            ("USE `shop-mysql`", b"shop-mysql"),
            ("USE `a``b`", b"a`b"),
            ("USE $x_1", b"$x_1"),
            ("USE 1a", b"1a"),
        ] {
            assert_eq!(lone_use(text).as_deref(), Some(name), "{text}");
        }
        for text in [
            "USE",
            "USE ;",
            "USEappdb",
            "USE appdb; SELECT 1",
            "USE appdb;;",
            "USE appdb -- x",
            "USE appdb # x",
            "USE /*!other*/ appdb",
            "/*!USE other*/",
            "USE `a`b`",
            "USE ``",
            "USE `x",
            "USE 123",
            "USE \"appdb\"",
            "USE 'appdb'",
            "USE app.db",
            "USE appdb other",
            "USE ａppdb",
            "SELECT 1",
        ] {
            assert_eq!(lone_use(text), None, "{text}");
        }
    }

    #[test]
    fn only_the_own_database_and_the_connection_name_are_own() {
        assert_eq!(
            selection(b"appdb", "appdb", "shop-mysql"),
            Some(Selection::Own)
        );
        assert_eq!(
            selection(b"shop-mysql", "appdb", "shop-mysql"),
            Some(Selection::OwnByConnectionName {
                database: "appdb".into()
            })
        );
        // Case matters: another database on a case-sensitive server.
        assert_eq!(selection(b"APPDB", "appdb", "shop-mysql"), None);
        assert_eq!(selection(b"Shop-MySQL", "appdb", "shop-mysql"), None);
        assert_eq!(selection(b"other", "appdb", "shop-mysql"), None);
        assert_eq!(selection(b"appdb", "", "appdb"), None);
    }
}
