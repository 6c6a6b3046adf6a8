//! MySQL character-set changes: which `SET` items change the character
//! set a session's statements are read in (or its results are sent in),
//! and whether the new one is ASCII-safe.
//!
//! In `gbk`, `big5`, `sjis`, `cp932` or `gb18030` a multi-byte character
//! may end in 0x5C (`\`): once a session reads statements in one, a string
//! can swallow its closing quote for the server but not for the classifier,
//! and hide a statement. In `ucs2`, `utf16` or `utf32` results, ASCII text
//! no longer looks like ASCII, and the masker's detectors would miss it.
//! So a gateway refuses every change to a set outside
//! [`MYSQL_ASCII_SAFE_CHARACTER_SETS`] ([`crate::mysql_character_set_changes`]
//! finds them), and a change to a safe set is an ordinary session setting
//! (`write`): it cannot change how the classifier reads the next statement.

use super::Statement;
use crate::lexer::TokenKind;

/// Character sets (and, as `<set>_…`, their collations) in which every
/// quote, backslash and comment byte is ASCII and never part of a
/// multi-byte character: the classifier and the server read a statement
/// the same way in all of them. The same list as a gateway's login check.
pub const MYSQL_ASCII_SAFE_CHARACTER_SETS: &[&str] =
    &["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary"];

/// Session variables that name the character set statements are read in,
/// converted to, or whose results are sent in.
const CHARACTER_SET_VARIABLES: &[&str] = &[
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];

/// How deep dynamic SQL inside dynamic SQL is read (the server refuses a
/// `PREPARE` of a `PREPARE`; deeper text counts as unreadable).
const MAX_DYNAMIC_NESTING: usize = 4;

/// One change of a session's character set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterSetChange {
    /// What is set: `names`, `character set`, or the variable's name.
    pub setting: String,
    /// The new character set or collation, lowercased; `None` when it is
    /// not a plain name (an expression, a variable, `DEFAULT`).
    pub value: Option<String>,
}

impl CharacterSetChange {
    /// Whether the new set is one of [`MYSQL_ASCII_SAFE_CHARACTER_SETS`].
    pub fn is_ascii_safe(&self) -> bool {
        self.value.as_deref().is_some_and(is_ascii_safe_name)
    }
}

/// Whether `name` (a character set or a collation, lowercase) is ASCII-safe.
pub fn is_ascii_safe_name(name: &str) -> bool {
    MYSQL_ASCII_SAFE_CHARACTER_SETS.iter().any(|set| {
        name == *set
            || name
                .strip_prefix(set)
                .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// Whether a `SET` item named `name` (lowercase, no scope) is a
/// character-set variable.
pub(super) fn is_character_set_variable(name: &str) -> bool {
    CHARACTER_SET_VARIABLES.contains(&name)
}

impl Statement<'_> {
    /// The character-set changes of this statement: `SET` items (also in
    /// `SET STATEMENT … FOR`), and those of the text a `PREPARE … FROM
    /// '…'` or `EXECUTE IMMEDIATE '…'` holds. Tokens of executable
    /// comments count as present.
    pub(crate) fn mysql_character_set_changes(&self, depth: usize) -> Vec<CharacterSetChange> {
        let end = self.tokens.len();
        let mut changes = Vec::new();
        if self.kw(0, "set") {
            let mut from = 1;
            let mut to = end;
            if self.kw(1, "statement") {
                from = 2;
                to = self.find_word(2, end, "for").unwrap_or(end);
            }
            self.character_set_items(from, to, &mut changes);
        }
        let nested = if self.kw(0, "prepare") && self.kw(2, "from") {
            Some(3)
        } else if self.kw(0, "execute") && self.kw(1, "immediate") {
            Some(2)
        } else {
            None
        };
        if let Some(at) = nested {
            // Dynamic SQL runs a text of its own: its changes count, and a
            // text the classifier cannot read (`FROM @var`, escapes) may
            // hold one.
            let body = self
                .mysql_plain_string(at)
                .filter(|_| depth < MAX_DYNAMIC_NESTING);
            match body {
                Some(body) => {
                    changes.extend(crate::mysql::character_set_changes_at(&body, depth + 1))
                }
                None => changes.push(CharacterSetChange {
                    setting: "dynamic statement text".into(),
                    value: None,
                }),
            }
        }
        changes
    }

    /// The character-set items among the comma-separated items `from..to`.
    pub(super) fn character_set_items(
        &self,
        from: usize,
        to: usize,
        changes: &mut Vec<CharacterSetChange>,
    ) {
        let mut start = from;
        let mut index = from;
        while index <= to {
            if index < to && self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
                continue;
            }
            if index == to || self.kind(index) == Some(TokenKind::Comma) {
                if let Some(change) = self.character_set_item(start, index) {
                    changes.push(change);
                }
                start = index + 1;
            }
            index += 1;
        }
    }

    /// One `SET` item `from..to`, if it changes a character set.
    fn character_set_item(&self, from: usize, to: usize) -> Option<CharacterSetChange> {
        let mut index = from;
        if self.is_one_of(index, &["session", "local"]) {
            index += 1;
        }
        let (setting, value_at) = if self.kw(index, "names") {
            ("names".to_string(), index + 1)
        } else if self.kw(index, "charset") {
            ("character set".to_string(), index + 1)
        } else if self.kw(index, "character") && self.kw(index + 1, "set") {
            ("character set".to_string(), index + 2)
        } else {
            let name = self.variable_name(index)?;
            if !is_character_set_variable(&name) {
                return None;
            }
            let assigns = self.kind(index + 1) == Some(TokenKind::Operator)
                && matches!(self.text(index + 1), "=" | ":=");
            if !assigns {
                return Some(CharacterSetChange {
                    setting: name,
                    value: None,
                });
            }
            (name, index + 2)
        };
        // `NAMES x [COLLATE y]`: both must be plain names.
        let plain_end = if setting == "names" && self.kw(value_at + 1, "collate") {
            value_at + 3
        } else {
            value_at + 1
        };
        let mut value = (plain_end == to)
            .then(|| self.plain_value(value_at))
            .flatten()
            .filter(|value| value != "default");
        if plain_end == value_at + 3 {
            let collation = self.plain_value(value_at + 2);
            if !collation.as_deref().is_some_and(is_ascii_safe_name) {
                value = None;
            }
        }
        Some(CharacterSetChange { setting, value })
    }

    /// The variable an item assigns: a name, or `@@[session.|local.]name`
    /// (lowercase, without scope); `None` for anything else.
    fn variable_name(&self, index: usize) -> Option<String> {
        match self.kind(index)? {
            TokenKind::Variable => {
                let text = self.text(index).to_ascii_lowercase();
                let system = text.strip_prefix("@@")?;
                let name = system
                    .strip_prefix("session.")
                    .or_else(|| system.strip_prefix("local."))
                    .unwrap_or(system);
                Some(name.trim_matches('`').to_string())
            }
            _ => self.mysql_ident(index),
        }
    }

    /// A value that is one plain word, backquoted name or string without
    /// escapes, lowercased.
    fn plain_value(&self, index: usize) -> Option<String> {
        let text = self.text(index);
        match self.kind(index)? {
            TokenKind::Word | TokenKind::QuotedIdent => self.mysql_ident(index),
            TokenKind::String => {
                let quote = text.get(..1)?;
                if quote != "'" && quote != "\"" {
                    return None;
                }
                let inner = text.get(1..text.len().saturating_sub(1))?;
                if inner.contains('\\') || inner.contains(quote) {
                    return None;
                }
                Some(inner.to_ascii_lowercase())
            }
            _ => None,
        }
    }
}
