//! The prefilter: one pass over the bytes of a value, with a 256-entry class
//! table, that decides which built-in detectors could possibly match before
//! any regex runs. Clean text (names, statuses, amounts, dates, UUIDs) is
//! meant to stop here.
//!
//! Every signal is *conservative*: when a signal is off, the corresponding
//! detector's regex provably cannot produce a match it would accept (each
//! signal mirrors the minimum its detector needs). Tests in `tests/` check
//! detections with the prefilter on; the unit tests below check the signals.
//! Secrets are gated separately, by an Aho-Corasick scan for their literal
//! prefixes (see `detect::secret`).

/// Byte classes used by the scan.
const OTHER: u32 = 0;
const DIGIT: u32 = 1;
const UPPER: u32 = 2;
/// Lowercase ASCII letters and `_`: word bytes that are not IBAN letters.
const LOWER: u32 = 3;
/// Bytes that may separate digit groups of a card or phone number.
const SEPARATOR: u32 = 4;
const DOT: u32 = 5;
const COLON: u32 = 6;
const AT: u32 = 7;
/// `-`: a separator that also glues identifiers (`ORD-1234`).
const DASH: u32 = 8;
/// Bytes no built-in pattern (secrets aside) contains: segment breaks.
const BREAK: u32 = 9;
/// `+`: a separator that may start an international phone number.
const PLUS: u32 = 10;

const fn class_of(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => DIGIT as u8,
        b'A'..=b'Z' => UPPER as u8,
        b'a'..=b'z' | b'_' => LOWER as u8,
        b' ' | b'(' | b')' => SEPARATOR as u8,
        b'+' => PLUS as u8,
        b'-' => DASH as u8,
        b'.' => DOT as u8,
        b':' => COLON as u8,
        b'@' => AT as u8,
        b'\t' | b'\n' | b'\r' | b',' | b';' | b'|' | b'"' | b'<' | b'>' => BREAK as u8,
        _ => OTHER as u8,
    }
}

#[allow(clippy::indexing_slicing)] // const context has no `get_mut`; `index < 256` is the loop bound
const fn build_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut index = 0;
    while index < 256 {
        table[index] = class_of(index as u8);
        index += 1;
    }
    table
}

static CLASSES: [u8; 256] = build_classes();

/// Fewest digits in one numeric span for each numeric detector.
const CARD_MIN_DIGITS: u32 = 13;
const SSN_MIN_DIGITS: u32 = 9;
const PHONE_MIN_DIGITS: u32 = 9;

/// Which built-in detectors are worth running on a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Signals {
    pub email: bool,
    pub card: bool,
    pub ssn: bool,
    pub phone: bool,
    pub iban: bool,
    pub ipv4: bool,
    pub ipv6: bool,
}

impl Signals {
    /// Every detector signalled (prefilter bypassed).
    pub fn all() -> Signals {
        Signals {
            email: true,
            card: true,
            ssn: true,
            phone: true,
            iban: true,
            ipv4: true,
            ipv6: true,
        }
    }

    pub fn any(self) -> bool {
        self.email || self.card || self.ssn || self.phone || self.iban || self.ipv4 || self.ipv6
    }
}

/// Bytes whose presence the quick pass records, one bit each.
const QUICK_BYTES: &[u8] = b"@:_JIAxB-/wW=K.";

#[allow(clippy::indexing_slicing)] // const context has no `get`; `index < len` is the loop bound
const fn quick_bit(byte: u8) -> u32 {
    let mut index = 0;
    while index < QUICK_BYTES.len() {
        if QUICK_BYTES[index] == byte {
            return 1 << index;
        }
        index += 1;
    }
    0
}

/// Result of [`quick`]: digit count and which [`QUICK_BYTES`] occur.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quick {
    digits: usize,
    present: u32,
}

impl Quick {
    fn has(self, byte: u8) -> bool {
        self.present & quick_bit(byte) != 0
    }

    /// Whether any prefilter-gated built-in (email, card, IBAN, SSN, phone,
    /// IP) could match: each needs an `@`, a `:` (IPv6) or at least two
    /// digits (IBAN check digits; the others need more).
    pub fn numeric_possible(self) -> bool {
        self.digits >= 2 || self.has(b'@') || self.has(b':')
    }

    /// Whether any secret rule could match; each rule's literal prefix
    /// contains the bytes tested for it (see `detect::secret`), so this is
    /// conservative. Timestamps, amounts, UUIDs, names and prose fail it,
    /// which spares them the Aho-Corasick scan.
    pub fn secret_possible(self) -> bool {
        let assignment = self.has(b'=') || self.has(b':');
        (self.has(b'A') && self.has(b'I')) // AKIA, ASIA, AIza
            || self.has(b'_') // ghp_, github_pat_, sk_live_, …
            || (self.has(b'x') && self.has(b'-')) // xoxb-
            || self.has(b'/') // hooks.slack.com/services/, ://
            || (self.has(b'J') && self.has(b'.')) // eyJ….….
            || (self.has(b'B') && self.has(b'-')) // -----BEGIN
            || ((self.has(b'w') || self.has(b'W')) && assignment) // password=, pwd:
            || (self.has(b'K') && assignment) // SecretAccessKey=
    }
}

/// One branch-free pass (the compiler vectorises it): counts digits and
/// records which [`QUICK_BYTES`] occur.
pub(crate) fn quick(haystack: &[u8]) -> Quick {
    let mut digits = 0usize;
    let mut present = 0u32;
    for chunk in haystack.chunks(64) {
        let mut chunk_digits = 0u32;
        for &byte in chunk {
            chunk_digits += u32::from(byte.wrapping_sub(b'0') < 10);
            present |= QUICK_TABLE.get(usize::from(byte)).copied().unwrap_or(0);
        }
        digits += chunk_digits as usize;
    }
    Quick { digits, present }
}

#[allow(clippy::indexing_slicing)] // const context has no `get_mut`; `index < 256` is the loop bound
const fn build_quick_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        table[index] = quick_bit(index as u8);
        index += 1;
    }
    table
}

static QUICK_TABLE: [u32; 256] = build_quick_table();

/// Calls `emit(start, end, signals)` for every *segment* of `haystack` in
/// which some built-in detector could match.
///
/// Segments are separated by bytes that no built-in pattern (other than
/// secrets, which are gated separately) can contain: tab, CR, LF, `,` `;`
/// `|` `"` `<` `>`. Gating each segment on its own keeps a large value (a
/// whole text blob, a JSON document) from running every regex over all of
/// it just because one part has a digit run.
///
/// Within a segment, a *numeric span* is a run of digit groups joined by at
/// most two separator bytes (`space - ( ) + .`). A group touching a letter
/// or `_` does not count (every numeric detector requires a word boundary
/// there), nor does one glued to a word by a single `-` or `.`
/// (`ORD-4155552671`, `a716-446655440000`), which the detectors reject as
/// part of a longer identifier; nor does an ISO date `YYYY-MM-DD` that starts
/// a span (no detector pattern can use its digits: the groups are too short
/// and no `+` precedes it), so timestamps do not wake the phone detector.
/// The longest span gates card, SSN and phone; `digit . digit` transitions
/// gate IPv4; colons (a `::` or seven of them) gate IPv6; `@` gates email;
/// two letters and two digits at a word start gate IBAN.
pub(crate) fn scan_segments(haystack: &[u8], mut emit: impl FnMut(usize, usize, Signals)) {
    let mut state = ScanState::default();
    let mut segment_start = 0;
    for (index, &byte) in haystack.iter().enumerate() {
        let class = u32::from(CLASSES.get(usize::from(byte)).copied().unwrap_or(0));
        if class == BREAK {
            let signals = state.finish();
            if signals.any() {
                emit(segment_start, index, signals);
            }
            state = ScanState::default();
            segment_start = index + 1;
            continue;
        }
        state.step(class);
    }
    let signals = state.finish();
    if signals.any() {
        emit(segment_start, haystack.len(), signals);
    }
}

/// The signals of a whole haystack as one segment (used by tests).
#[cfg(test)]
pub(crate) fn scan(haystack: &[u8]) -> Signals {
    let mut state = ScanState::default();
    for &byte in haystack {
        let class = u32::from(CLASSES.get(usize::from(byte)).copied().unwrap_or(0));
        state.step(if class == BREAK { OTHER } else { class });
    }
    state.finish()
}

#[derive(Default)]
struct ScanState {
    at: bool,
    span: u32,
    group: u32,
    group_tainted: bool,
    separators: u32,
    longest_span: u32,
    dotted: u32,
    colons: u32,
    double_colon: bool,
    iban: bool,
    /// The last word byte or discounted group is followed only by one `-`/`.`.
    glued: bool,
    /// Progress through a span-initial `YYYY-MM-DD`: 0 none, 1 after
    /// `YYYY-`, 2 after `YYYY-MM-`.
    date: u8,
    /// Class of the byte before the current digit group.
    group_before: u32,
    /// The classes of the last four bytes, most recent in the low byte.
    history: u32,
}

impl ScanState {
    #[inline(always)]
    fn step(&mut self, class: u32) {
        let history = self.history;
        // Fast path for the commonest byte: a letter after two letters
        // changes nothing but the history.
        if matches!(class, UPPER | LOWER)
            && matches!(history & 0xFF, UPPER | LOWER)
            && matches!((history >> 8) & 0xFF, UPPER | LOWER)
        {
            self.history = (history << 8) | class;
            return;
        }
        match class {
            DIGIT => {
                if self.group == 0 {
                    let previous = history & 0xFF;
                    self.group_before = previous;
                    self.group_tainted = previous == UPPER
                        || previous == LOWER
                        || (self.glued
                            && self.separators == 1
                            && (previous == DASH || previous == DOT));
                }
                self.group += 1;
                self.separators = 0;
                if history & 0xFFFF == (DIGIT << 8 | DOT) {
                    self.dotted += 1;
                }
                if history & 0xFF == DIGIT
                    && matches!((history >> 16) & 0xFF, UPPER | LOWER)
                    && matches!((history >> 8) & 0xFF, UPPER | LOWER)
                    && !matches!(history >> 24, DIGIT | UPPER | LOWER)
                {
                    self.iban = true;
                }
            }
            SEPARATOR | DOT | DASH | PLUS => {
                if self.group > 0 {
                    self.close_group(class);
                    self.glued = self.group_tainted;
                }
                if class == SEPARATOR || class == PLUS || self.separators > 0 {
                    self.glued = false;
                }
                self.separators += 1;
                if self.separators > 2 {
                    self.span = 0;
                    self.date = 0;
                }
            }
            UPPER | LOWER => {
                // A group followed by a letter is not a number on its own.
                self.group = 0;
                self.span = 0;
                self.separators = 0;
                self.glued = true;
                self.date = 0;
            }
            _ => {
                if self.group > 0 {
                    self.close_group(class);
                }
                self.span = 0;
                self.separators = 0;
                self.glued = false;
                self.date = 0;
                if class == AT {
                    self.at = true;
                } else if class == COLON {
                    self.colons += 1;
                    if history & 0xFF == COLON {
                        self.double_colon = true;
                    }
                }
            }
        }
        self.history = (history << 8) | class;
    }

    /// Ends the current digit group; `next` is the class of the byte after it.
    #[inline(always)]
    fn close_group(&mut self, next: u32) {
        let length = self.group;
        self.group = 0;
        // The seconds of a time followed by a fraction or a zone offset
        // (`12:34:56.123456+00`): glued like `ORD-…`; the fraction after it
        // is then discounted too.
        if length == 2 && self.group_before == COLON && matches!(next, DOT | PLUS | DASH) {
            self.group_tainted = true;
        }
        if self.group_tainted {
            self.span = 0;
            self.date = 0;
            return;
        }
        let span_before = self.span;
        self.span += length;
        self.date = match (self.date, length) {
            (0, 4) if span_before == 0 && next == DASH && self.group_before != PLUS => 1,
            (1, 2) if next == DASH => 2,
            (2, 2) if next != DASH && next != DOT => {
                // `YYYY-MM-DD` followed by a space, `T`, `:`…: a date.
                self.span = 0;
                0
            }
            _ => 0,
        };
        self.longest_span = self.longest_span.max(self.span);
    }

    fn finish(&mut self) -> Signals {
        if self.group > 0 {
            self.close_group(OTHER);
        }
        Signals {
            email: self.at,
            card: self.longest_span >= CARD_MIN_DIGITS,
            ssn: self.longest_span >= SSN_MIN_DIGITS,
            phone: self.longest_span >= PHONE_MIN_DIGITS,
            iban: self.iban,
            ipv4: self.dotted >= 3,
            ipv6: self.colons >= 2 && (self.double_colon || self.colons >= 7),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(text: &str) -> Vec<(&str, Signals)> {
        let mut out = Vec::new();
        scan_segments(text.as_bytes(), |start, end, signals| {
            out.push((&text[start..end], signals))
        });
        out
    }

    #[test]
    fn segments_are_gated_separately() {
        let found =
            segments("Jane\t2024-03-15 12:00\tjane@example.com\t4111 1111 1111 1111\nshipped");
        let texts: Vec<&str> = found.iter().map(|(text, _)| *text).collect();
        assert_eq!(texts, ["jane@example.com", "4111 1111 1111 1111"]);
        assert!(found[0].1.email && !found[0].1.card);
        assert!(found[1].1.card && !found[1].1.email);
    }

    #[test]
    fn quick_pass() {
        assert!(!quick(b"Jane Doe").numeric_possible());
        assert!(!quick(b"Jane Doe").secret_possible());
        assert!(!quick(b"2024-03-15 12:34:56").secret_possible());
        assert!(!quick(b"550e8400-e29b-41d4-a716-446655440000").secret_possible());
        assert!(!quick(b"Organic cotton t-shirt (M), washed indigo").secret_possible());
        assert!(quick(b"a@b.io").numeric_possible());
        assert!(quick(b"::1").numeric_possible());
        assert!(quick(b"x 12").numeric_possible());
        for secret in [
            "AKIAX",
            "AIza",
            "ghp_",
            "xoxb-",
            "https://x",
            "eyJ.x.y",
            "-----BEGIN",
            "password=x",
            "PWD: x",
            "SecretAccessKey=x",
        ] {
            assert!(quick(secret.as_bytes()).secret_possible(), "{secret}");
        }
    }

    #[test]
    fn clean_text_has_no_signal() {
        for text in [
            "Jane Doe",
            "shipped",
            "Stainless steel water bottle, 750 ml, pack of 3",
            "2024-03-15T12:34:56.789Z",
            "550e8400-e29b-41d4-a716-446655440000",
            "$1,234.56",
            "v1.2.3",
            "12:34:56",
            "a716-4466",
            "2024-03-15 12:34:56.123456+00",
            "2024-03-15 12",
        ] {
            assert!(
                !scan(text.as_bytes()).any(),
                "{text}: {:?}",
                scan(text.as_bytes())
            );
        }
    }

    #[test]
    fn signals_fire_on_candidates() {
        assert!(scan(b"mail jane@example.com").email);
        assert!(scan(b"4111 1111 1111 1111").card);
        assert!(scan(b"4111-1111-1111-1111").card);
        assert!(scan(b"ssn 123-45-6789").ssn);
        assert!(scan(b"(415) 555-2671").phone);
        assert!(scan(b"+44 20 7946 0958").phone);
        assert!(scan(b"GB82 WEST 1234 5698 7654 32").iban);
        assert!(scan(b"GB82WEST12345698765432").iban);
        assert!(scan(b"host 10.0.0.1").ipv4);
        assert!(scan(b"2001:db8::1").ipv6);
        assert!(scan(b"2001:0db8:85a3:0000:0000:8a2e:0370:7334").ipv6);
    }

    #[test]
    fn digits_touching_letters_do_not_count() {
        assert!(!scan(b"x4111111111111111").card);
        assert!(!scan(b"4111111111111111x").card);
        assert!(!scan(b"ORD-4155552671").phone);
        assert!(!scan(b"ID-4111.1111 1111 1111").card);
        assert!(scan(b"ID-4111 4111 1111 1111 1111").card);
        assert!(scan(b"ID - 4155552671").phone);
        // Only a span-initial date not after `+` is discounted.
        assert!(scan(b"+2024-03-15 12").phone);
        assert!(scan(b"+1 2024-03-15 12").phone);
        assert!(scan(b"2024-03-15 536-22-1234").ssn);
        assert!(scan(b"2024-03-15 4111 1111 1111 1111").card);
        assert!(!scan(b"XGB82WEST").iban);
    }
}
