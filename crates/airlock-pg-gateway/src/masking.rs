//! Masking of `DataRow` values under a mask obligation, by column type and
//! format (pure).
//!
//! The rule: every value that leaves under a mask plan is either masked by
//! a codec that understands its format, or replaced by a placeholder the
//! client can still parse — never passed through raw because it was not
//! understood.
//!
//! Text format (what psql and most drivers get):
//!
//! - text-like types (text, varchar, char, name, `"char"`, json, jsonb,
//!   xml, jsonpath, refcursor, tsvector, tsquery, unknown, cstring, and
//!   user-defined types: domains, enums, citext, composites) are masked in
//!   place by the detectors;
//! - arrays are decoded element by element (quoting and backslash escapes
//!   undone), each element masked by its element type, and re-quoted as
//!   `array_out` would; records (`row(…)`, type `record`) likewise field by
//!   field (`record_out` quoting with doubled quotes), each field masked as
//!   text since a text record does not carry its field types;
//! - `bytea` is decoded from its `hex` or `escape` output, masked as bytes
//!   and re-encoded in the same output;
//! - numbers (int2/4/8, oid-like types, float4/8, numeric, money) pass the
//!   detectors too (floats also as their plain decimal digits, so
//!   `4.111111111111111e+15` is checked as `4111111111111111`); a number a
//!   detector matches becomes `0`;
//! - every other type (dates, times, uuid, inet, geometric types …) passes
//!   the detectors as well, and a value one matches becomes NULL (a masked
//!   rendering would not parse).
//!
//! Binary format (what tokio-postgres, asyncpg, JDBC get for typed queries):
//!
//! - text-like types whose binary form is their text (jsonb and jsonpath
//!   after a version byte) and `bytea` are masked as bytes;
//! - arrays and records (including composite types with user OIDs) are
//!   decoded, each element or field masked by its own type (from the value
//!   itself), and re-encoded;
//! - int2/4/8, oid-like types, money, float4/8 and numeric are rendered to
//!   decimal and checked; a match becomes zero (numeric keeps its scale);
//!   uuid and inet/cidr are rendered and become NULL on a match;
//! - bool, date, time, timetz, timestamp, timestamptz, interval, macaddr,
//!   macaddr8, pg_lsn and void pass as they are (fixed layouts that carry no
//!   text);
//! - a user-defined type in binary is decoded as an array, else as a
//!   record, else masked as text when it is printable UTF-8 (enums, citext,
//!   domains over text);
//! - any other binary value, and every binary value whose column layout is
//!   unknown, becomes NULL: the masker cannot read it, so it must not pass
//!   (counted as `unreadable` in the result's `masked` counts).
//!
//! A column matched by a column rule is masked whole when it is text-like
//! (the plan's whole-value rendering) and becomes NULL otherwise.
//!
//! Limit: detectors see values, not how they were computed. A transformed
//! value (`reverse(card)`, `replace(ssn, '-', '')`, `substr(email, 1, 5)`)
//! is not recognisable by content; column rules (up to `columns: ['*']` for
//! every column of the statements a rule matches) are the answer there.

use std::borrow::Cow;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_pg::backend::{decode_data_row, encode_data_row, FieldDescription};
use airlock_pg::PgCodecError;

/// OIDs below this are built-in; above are user-defined (domains, enums,
/// citext, composites …).
const FIRST_USER_OID: i32 = 16_384;
/// Nesting bound for arrays and records inside each other.
const MAX_DEPTH: usize = 8;
/// The `masked` count name for binary values replaced by NULL because the
/// masker cannot read them.
const UNREADABLE: &str = "unreadable";
const RECORD_OID: i32 = 2249;

fn format_of(formats: &[i16], index: usize) -> i16 {
    match formats {
        [] => 0,
        [single] => *single,
        many => many.get(index).copied().unwrap_or(0),
    }
}

/// What the masker knows about a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    /// Text in text format; in binary, text after `skip` bytes, or not
    /// readable (`None`: tsvector, tsquery).
    Text {
        binary_skip: Option<usize>,
    },
    Bytea,
    Integer {
        width: usize,
        unsigned: bool,
    },
    Float {
        width: usize,
    },
    Numeric,
    Money,
    Uuid,
    Inet,
    /// Fixed binary layouts that carry no text: passed in binary.
    Plain,
    Record,
    Array {
        element: i32,
    },
    /// A user-defined type (OID ≥ 16384).
    User,
    /// A built-in type the masker cannot read in binary.
    Other,
}

fn category(oid: i32) -> Category {
    use Category::*;
    match oid {
        25 | 1043 | 1042 | 19 | 18 | 114 | 142 | 705 | 1790 | 2275 => Text {
            binary_skip: Some(0),
        },
        3802 | 4072 => Text {
            binary_skip: Some(1),
        },
        3614 | 3615 => Text { binary_skip: None },
        17 => Bytea,
        21 => Integer {
            width: 2,
            unsigned: false,
        },
        23 => Integer {
            width: 4,
            unsigned: false,
        },
        20 => Integer {
            width: 8,
            unsigned: false,
        },
        // oid, xid, cid, regproc, regclass, regtype and the other reg* types.
        26 | 28 | 29 | 24 | 2202 | 2203 | 2204 | 2205 | 2206 | 3734 | 3769 | 4089 | 4096 => {
            Integer {
                width: 4,
                unsigned: true,
            }
        }
        5069 => Integer {
            width: 8,
            unsigned: true,
        },
        700 => Float { width: 4 },
        701 => Float { width: 8 },
        1700 => Numeric,
        790 => Money,
        2950 => Uuid,
        869 | 650 => Inet,
        16 | 1082 | 1083 | 1266 | 1114 | 1184 | 1186 | 829 | 774 | 3220 | 2278 => Plain,
        RECORD_OID => Record,
        oid if oid >= FIRST_USER_OID => User,
        oid => match array_element(oid) {
            Some(element) => Array { element },
            None => Other,
        },
    }
}

/// The element type of a built-in array type.
fn array_element(oid: i32) -> Option<i32> {
    Some(match oid {
        1000 => 16,
        1001 => 17,
        1002 => 18,
        1003 => 19,
        1005 => 21,
        1007 => 23,
        1009 => 25,
        1014 => 1042,
        1015 => 1043,
        1016 => 20,
        1021 => 700,
        1022 => 701,
        1028 => 26,
        1115 => 1114,
        1182 => 1082,
        1183 => 1083,
        1185 => 1184,
        1187 => 1186,
        1231 => 1700,
        1270 => 1266,
        2951 => 2950,
        199 => 114,
        3807 => 3802,
        143 => 142,
        2287 => RECORD_OID,
        1041 => 869,
        651 => 650,
        2201 => 1790,
        3643 => 3614,
        3645 => 3615,
        791 => 790,
        1263 => 2275,
        4073 => 4072,
        _ => return None,
    })
}

/// What becomes of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Keep,
    Replace(Vec<u8>),
    Null,
}

/// Which columns of `fields` a column rule of `plan` masks whole. A name
/// the gateway cannot read exactly (bytes of a client encoding other than
/// UTF-8, decoded as U+FFFD) could be any name: under column rules it is
/// masked (fail closed).
pub fn column_rules(plan: &MaskPlan, fields: &[FieldDescription]) -> Vec<bool> {
    fields
        .iter()
        .map(|field| {
            plan.column_masked(&field.name)
                || (plan.has_column_rules() && field.name.contains('\u{FFFD}'))
        })
        .collect()
}

/// Masks one `DataRow` body. Returns the whole re-framed message when a value
/// changed, `None` when the row passes as it is.
pub fn mask_data_row(
    plan: &MaskPlan,
    fields: Option<&[FieldDescription]>,
    formats: &[i16],
    column_rules: Option<&[bool]>,
    body: &[u8],
    stats: &mut MaskStats,
) -> Result<Option<Vec<u8>>, PgCodecError> {
    let values = decode_data_row(body)?;
    let mut masked: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(values.len());
    let mut changed = false;
    for (index, value) in values.iter().enumerate() {
        let Some(bytes) = value else {
            masked.push(None);
            continue;
        };
        let field = fields.and_then(|fields| fields.get(index));
        let binary = format_of(formats, index) != 0;
        // Column rules are matched once per result set by the caller
        // ([`column_rules`]); without that, per value.
        let column_rule = match column_rules {
            Some(rules) => rules.get(index).copied().unwrap_or(false),
            None => field.is_some_and(|field| plan.column_masked(&field.name)),
        };
        let oid = field.map(|field| field.type_oid);
        let outcome = if column_rule {
            stats.record("column", 1);
            mask_whole_value(plan, oid, binary, bytes)
        } else {
            mask_value(plan, oid, binary, bytes, stats, 0)
        };
        match outcome {
            Outcome::Keep => masked.push(Some(Cow::Borrowed(*bytes))),
            Outcome::Replace(new) => {
                changed = true;
                masked.push(Some(Cow::Owned(new)));
            }
            Outcome::Null => {
                changed = true;
                masked.push(None);
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let borrowed: Vec<Option<&[u8]>> = masked.iter().map(|value| value.as_deref()).collect();
    let mut out = Vec::with_capacity(body.len() + 5);
    encode_data_row(&mut out, &borrowed);
    Ok(Some(out))
}

/// A value under a column rule: text-like values are masked whole, every
/// other value becomes NULL (a placeholder would not parse).
fn mask_whole_value(plan: &MaskPlan, oid: Option<i32>, binary: bool, bytes: &[u8]) -> Outcome {
    let skip = match (oid.map(category), binary) {
        (None, false) | (Some(Category::User), false) => 0,
        (Some(Category::Text { .. }), false) => 0,
        (
            Some(Category::Text {
                binary_skip: Some(skip),
            }),
            true,
        ) => skip,
        _ => return Outcome::Null,
    };
    let (prefix, text) = bytes.split_at(skip.min(bytes.len()));
    let mut out = prefix.to_vec();
    out.extend_from_slice(plan.mask_whole(&String::from_utf8_lossy(text)).as_bytes());
    Outcome::Replace(out)
}

/// Masks one value of type `oid` (unknown: `None`) in text or binary format.
fn mask_value(
    plan: &MaskPlan,
    oid: Option<i32>,
    binary: bool,
    bytes: &[u8],
    stats: &mut MaskStats,
    depth: usize,
) -> Outcome {
    if depth > MAX_DEPTH {
        stats.record(UNREADABLE, 1);
        return Outcome::Null;
    }
    let outcome = match oid {
        None if binary => None,
        None => Some(mask_in_place(plan, bytes, stats)),
        Some(oid) if binary => mask_binary(plan, oid, bytes, stats, depth),
        Some(oid) => Some(mask_text_format(plan, oid, bytes, stats, depth)),
    };
    outcome.unwrap_or_else(|| {
        // Not readable: it must not pass raw.
        stats.record(UNREADABLE, 1);
        Outcome::Null
    })
}

fn mask_in_place(plan: &MaskPlan, bytes: &[u8], stats: &mut MaskStats) -> Outcome {
    match plan.mask_bytes(bytes, stats) {
        Cow::Borrowed(_) => Outcome::Keep,
        Cow::Owned(masked) => Outcome::Replace(masked),
    }
}

/// True when a detector matches `text` (each match is counted).
fn detected(plan: &MaskPlan, text: &str, stats: &mut MaskStats) -> bool {
    let detections = plan.detections(text);
    for detection in &detections {
        stats.record(detection.detector, 1);
    }
    !detections.is_empty()
}

fn mask_text_format(
    plan: &MaskPlan,
    oid: i32,
    bytes: &[u8],
    stats: &mut MaskStats,
    depth: usize,
) -> Outcome {
    let text = String::from_utf8_lossy(bytes);
    match category(oid) {
        Category::Text { .. } | Category::User => mask_in_place(plan, bytes, stats),
        Category::Bytea => match airlock_pg::bytea::decode_text_bytea(bytes) {
            Ok((decoded, output)) => match plan.mask_bytes(&decoded, stats) {
                Cow::Borrowed(_) => Outcome::Keep,
                Cow::Owned(masked) => {
                    Outcome::Replace(airlock_pg::bytea::encode_text_bytea(&masked, output))
                }
            },
            Err(_) => null_if_detected(plan, &text, stats),
        },
        Category::Integer { .. } | Category::Numeric | Category::Money => {
            if detected(plan, &text, stats) {
                Outcome::Replace(b"0".to_vec())
            } else {
                Outcome::Keep
            }
        }
        Category::Float { .. } => {
            let plain = text
                .trim()
                .parse::<f64>()
                .ok()
                .map(|value| value.to_string());
            if detected(plan, &text, stats)
                || plain.is_some_and(|plain| detected(plan, &plain, stats))
            {
                Outcome::Replace(b"0".to_vec())
            } else {
                Outcome::Keep
            }
        }
        Category::Record => match airlock_pg::record::decode_text_record(&text) {
            Ok(fields) => mask_text_record(plan, fields, stats, depth),
            Err(_) => mask_in_place(plan, bytes, stats),
        },
        Category::Array { element } => {
            let rewritten = airlock_pg::array::rewrite_text_array(&text, ',', |value| {
                let value = value?;
                match mask_value(
                    plan,
                    Some(element),
                    false,
                    value.as_bytes(),
                    stats,
                    depth + 1,
                ) {
                    Outcome::Keep => None,
                    Outcome::Replace(new) => Some(Some(String::from_utf8_lossy(&new).into_owned())),
                    Outcome::Null => Some(None),
                }
            });
            match rewritten {
                Ok(Some(new)) => Outcome::Replace(new.into_bytes()),
                Ok(None) => Outcome::Keep,
                Err(_) => null_if_detected(plan, &text, stats),
            }
        }
        Category::Uuid | Category::Inet | Category::Plain | Category::Other => {
            null_if_detected(plan, &text, stats)
        }
    }
}

fn null_if_detected(plan: &MaskPlan, text: &str, stats: &mut MaskStats) -> Outcome {
    if detected(plan, text, stats) {
        Outcome::Null
    } else {
        Outcome::Keep
    }
}

/// A text record's fields carry no types: each is masked as a literal.
fn mask_text_record(
    plan: &MaskPlan,
    mut fields: Vec<Option<String>>,
    stats: &mut MaskStats,
    depth: usize,
) -> Outcome {
    let mut changed = false;
    for value in fields.iter_mut().flatten() {
        if let Some(masked) = mask_literal(plan, value, stats, depth + 1) {
            *value = masked;
            changed = true;
        }
    }
    if changed {
        Outcome::Replace(airlock_pg::record::encode_text_record(&fields).into_bytes())
    } else {
        Outcome::Keep
    }
}

/// Masks a text value of unknown type: a nested record or array literal is
/// decoded and masked part by part, anything else as text. Returns the new
/// text when something changed.
fn mask_literal(
    plan: &MaskPlan,
    text: &str,
    stats: &mut MaskStats,
    depth: usize,
) -> Option<String> {
    if depth <= MAX_DEPTH {
        if text.starts_with('(') {
            if let Ok(fields) = airlock_pg::record::decode_text_record(text) {
                return match mask_text_record(plan, fields, stats, depth) {
                    Outcome::Replace(new) => Some(String::from_utf8_lossy(&new).into_owned()),
                    _ => None,
                };
            }
        } else if text.starts_with('{') {
            let rewritten = airlock_pg::array::rewrite_text_array(text, ',', |value| {
                mask_literal(plan, value?, stats, depth + 1).map(Some)
            });
            if let Ok(rewritten) = rewritten {
                return rewritten;
            }
        }
    }
    match plan.mask_text(text, stats) {
        Cow::Borrowed(_) => None,
        Cow::Owned(masked) => Some(masked),
    }
}

/// A binary value; `None` when the masker cannot read it.
fn mask_binary(
    plan: &MaskPlan,
    oid: i32,
    bytes: &[u8],
    stats: &mut MaskStats,
    depth: usize,
) -> Option<Outcome> {
    Some(match category(oid) {
        Category::Text {
            binary_skip: Some(skip),
        } => {
            let (prefix, text) = bytes.split_at(skip.min(bytes.len()));
            match plan.mask_bytes(text, stats) {
                Cow::Borrowed(_) => Outcome::Keep,
                Cow::Owned(masked) => {
                    let mut out = prefix.to_vec();
                    out.extend_from_slice(&masked);
                    Outcome::Replace(out)
                }
            }
        }
        Category::Text { binary_skip: None } | Category::Other => return None,
        Category::Bytea => mask_in_place(plan, bytes, stats),
        Category::Integer { width, unsigned } => {
            let rendered = match (bytes, unsigned) {
                (&[a, b], false) if width == 2 => i16::from_be_bytes([a, b]).to_string(),
                (&[a, b, c, d], false) if width == 4 => {
                    i32::from_be_bytes([a, b, c, d]).to_string()
                }
                (&[a, b, c, d], true) if width == 4 => u32::from_be_bytes([a, b, c, d]).to_string(),
                (&[a, b, c, d, e, f, g, h], false) if width == 8 => {
                    i64::from_be_bytes([a, b, c, d, e, f, g, h]).to_string()
                }
                (&[a, b, c, d, e, f, g, h], true) if width == 8 => {
                    u64::from_be_bytes([a, b, c, d, e, f, g, h]).to_string()
                }
                _ => return None,
            };
            zero_if_detected(plan, &rendered, width, stats)
        }
        Category::Money => match *bytes {
            [a, b, c, d, e, f, g, h] => {
                let cents = i64::from_be_bytes([a, b, c, d, e, f, g, h]);
                zero_if_detected(plan, &cents.to_string(), 8, stats)
            }
            _ => return None,
        },
        Category::Float { width } => {
            let rendered = match *bytes {
                [a, b, c, d] if width == 4 => f32::from_be_bytes([a, b, c, d]).to_string(),
                [a, b, c, d, e, f, g, h] if width == 8 => {
                    f64::from_be_bytes([a, b, c, d, e, f, g, h]).to_string()
                }
                _ => return None,
            };
            zero_if_detected(plan, &rendered, width, stats)
        }
        Category::Numeric => {
            let rendered = airlock_pg::numeric::binary_numeric_to_text(bytes).ok()?;
            if detected(plan, &rendered, stats) {
                Outcome::Replace(airlock_pg::numeric::binary_numeric_zero(bytes))
            } else {
                Outcome::Keep
            }
        }
        Category::Uuid => {
            if bytes.len() != 16 {
                return None;
            }
            let hex = hex::encode(bytes);
            let rendered = format!(
                "{}-{}-{}-{}-{}",
                hex.get(..8)?,
                hex.get(8..12)?,
                hex.get(12..16)?,
                hex.get(16..20)?,
                hex.get(20..)?
            );
            null_if_detected(plan, &rendered, stats)
        }
        Category::Inet => null_if_detected(plan, &render_inet(bytes)?, stats),
        Category::Plain => Outcome::Keep,
        Category::Array { .. } => mask_binary_array(plan, bytes, stats, depth)?,
        Category::Record => mask_binary_record(plan, bytes, stats, depth)?,
        // A composite, a user array, or a textual type (enum, citext, a
        // domain over text): an array or record header always holds NUL
        // bytes, so printable UTF-8 is text, masked as such.
        Category::User => mask_binary_array(plan, bytes, stats, depth)
            .or_else(|| mask_binary_record(plan, bytes, stats, depth))
            .or_else(|| {
                let text = std::str::from_utf8(bytes).ok()?;
                (!text.chars().any(char::is_control)).then(|| mask_in_place(plan, bytes, stats))
            })?,
    })
}

fn zero_if_detected(
    plan: &MaskPlan,
    rendered: &str,
    width: usize,
    stats: &mut MaskStats,
) -> Outcome {
    if detected(plan, rendered, stats) {
        // Zero is all-zero bytes for integers and IEEE floats alike.
        Outcome::Replace(vec![0; width])
    } else {
        Outcome::Keep
    }
}

/// Binary inet/cidr (family, bits, is_cidr, length, address) as text.
fn render_inet(bytes: &[u8]) -> Option<String> {
    match bytes {
        [2, bits, _, 4, a, b, c, d] => Some(format!("{a}.{b}.{c}.{d}/{bits}")),
        [3, bits, _, 16, address @ ..] => {
            let octets: [u8; 16] = address.try_into().ok()?;
            Some(format!("{}/{bits}", std::net::Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// Re-encodes `elements` (masked) when any changed.
fn remask<'a>(
    plan: &MaskPlan,
    values: impl Iterator<Item = (i32, Option<&'a [u8]>)>,
    stats: &mut MaskStats,
    depth: usize,
) -> (Vec<Option<Cow<'a, [u8]>>>, bool) {
    let mut changed = false;
    let masked = values
        .map(|(oid, value)| {
            let bytes = value?;
            match mask_value(plan, Some(oid), true, bytes, stats, depth + 1) {
                Outcome::Keep => Some(Cow::Borrowed(bytes)),
                Outcome::Replace(new) => {
                    changed = true;
                    Some(Cow::Owned(new))
                }
                Outcome::Null => {
                    changed = true;
                    None
                }
            }
        })
        .collect();
    (masked, changed)
}

fn mask_binary_array(
    plan: &MaskPlan,
    bytes: &[u8],
    stats: &mut MaskStats,
    depth: usize,
) -> Option<Outcome> {
    let array = airlock_pg::array::decode_binary_array(bytes).ok()?;
    let element = array.element_type;
    let (masked, changed) = remask(
        plan,
        array.elements.iter().map(|value| (element, *value)),
        stats,
        depth,
    );
    if !changed {
        return Some(Outcome::Keep);
    }
    let borrowed: Vec<Option<&[u8]>> = masked.iter().map(|value| value.as_deref()).collect();
    let mut out = Vec::with_capacity(bytes.len());
    airlock_pg::array::encode_binary_array(&mut out, &array, &borrowed);
    Some(Outcome::Replace(out))
}

fn mask_binary_record(
    plan: &MaskPlan,
    bytes: &[u8],
    stats: &mut MaskStats,
    depth: usize,
) -> Option<Outcome> {
    let fields = airlock_pg::record::decode_binary_record(bytes).ok()?;
    let (masked, changed) = remask(plan, fields.iter().copied(), stats, depth);
    if !changed {
        return Some(Outcome::Keep);
    }
    let rebuilt: Vec<(i32, Option<&[u8]>)> = fields
        .iter()
        .zip(&masked)
        .map(|((oid, _), value)| (*oid, value.as_deref()))
        .collect();
    let mut out = Vec::with_capacity(bytes.len());
    airlock_pg::record::encode_binary_record(&mut out, &rebuilt);
    Some(Outcome::Replace(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMAIL: &str = "jane.doe@example.com";

    fn plan() -> &'static MaskPlan {
        static PLAN: std::sync::OnceLock<MaskPlan> = std::sync::OnceLock::new();
        PLAN.get_or_init(|| {
            MaskPlan::compile(&airlock_mask::MaskSpec {
                detectors: airlock_mask::BUILTIN_DETECTORS
                    .iter()
                    .map(|name| name.to_string())
                    .collect(),
                columns: vec!["*secret*".into()],
                ..Default::default()
            })
            .unwrap()
        })
    }

    fn field(name: &str, type_oid: i32, format: i16) -> FieldDescription {
        FieldDescription {
            name: name.into(),
            table_oid: 0,
            column: 0,
            type_oid,
            type_size: -1,
            type_modifier: -1,
            format,
        }
    }

    /// Masks one value of `oid` in `format`; `None` is NULL.
    fn one(oid: Option<i32>, format: i16, value: &[u8]) -> Option<Vec<u8>> {
        let mut row = Vec::new();
        encode_data_row(&mut row, &[Some(value)]);
        let fields = oid.map(|oid| vec![field("c", oid, format)]);
        let masked = mask_data_row(
            plan(),
            fields.as_deref(),
            &[format],
            None,
            &row[5..],
            &mut MaskStats::new(),
        )
        .unwrap();
        match masked {
            None => Some(value.to_vec()),
            Some(masked) => decode_data_row(&masked[5..]).unwrap()[0].map(<[u8]>::to_vec),
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    fn binary_array(element: i32, values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        let array = airlock_pg::array::BinaryArray {
            element_type: element,
            dimensions: vec![(values.len() as i32, 1)],
            elements: vec![],
        };
        airlock_pg::array::encode_binary_array(&mut out, &array, values);
        out
    }

    #[test]
    fn a_column_name_that_is_not_utf8_is_masked_under_column_rules() {
        // `secret` in LATIN9 with a non-ASCII letter: the gateway cannot be
        // sure which name it is, so every column rule applies to it.
        let mut raw = vec![0, 2];
        for name in [&b"id"[..], &b"s\xa4cret"[..]] {
            raw.extend_from_slice(name);
            raw.push(0);
            raw.extend_from_slice(&[0; 18]);
        }
        let fields = airlock_pg::backend::decode_row_description(&raw).unwrap();
        assert_eq!(fields[1].name, "s\u{FFFD}cret");
        assert_eq!(column_rules(plan(), &fields), vec![false, true]);
        let no_columns = MaskPlan::compile(&airlock_mask::MaskSpec {
            detectors: vec!["email".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(column_rules(&no_columns, &fields), vec![false, false]);
    }

    #[test]
    fn unknown_layout_binary_values_become_null() {
        assert_eq!(one(None, 1, EMAIL.as_bytes()), None);
        assert_eq!(one(None, 1, &42i32.to_be_bytes()), None);
        let text = one(None, 0, EMAIL.as_bytes()).unwrap();
        assert!(!contains(&text, b"jane.doe"), "text is masked in place");
    }

    #[test]
    fn unreadable_binary_types_become_null_and_plain_ones_pass() {
        // tsvector, point, a user type that is neither array, record nor text.
        assert_eq!(one(Some(3614), 1, b"\0\0\0\x01jane"), None);
        assert_eq!(one(Some(600), 1, &[0; 16]), None);
        assert_eq!(one(Some(20_000), 1, &[0, 0, 0, 1, 0xff]), None);
        // Dates, timestamps, booleans pass as they are.
        for oid in [1082, 1184, 16] {
            assert_eq!(one(Some(oid), 1, &[1, 2, 3, 4]), Some(vec![1, 2, 3, 4]));
        }
        // A textual user type (enum, citext) is masked as text.
        let citext = one(Some(20_000), 1, EMAIL.as_bytes()).unwrap();
        assert!(!contains(&citext, b"jane.doe"));
    }

    #[test]
    fn binary_arrays_are_masked_element_by_element() {
        let array = binary_array(25, &[Some(EMAIL.as_bytes()), None, Some(b"plain")]);
        let masked = one(Some(1009), 1, &array).unwrap();
        assert!(!contains(&masked, b"jane.doe"));
        let decoded = airlock_pg::array::decode_binary_array(&masked).unwrap();
        assert_eq!(decoded.elements.len(), 3);
        assert_eq!(decoded.elements[1], None);
        assert_eq!(decoded.elements[2], Some(&b"plain"[..]));
        // Elements of a type the masker cannot read become NULL.
        let points = binary_array(600, &[Some(&[0; 16])]);
        let masked = one(Some(1017), 1, &points);
        assert_eq!(masked, None, "an unknown array type is unreadable");
        let masked = one(Some(20_001), 1, &points).unwrap();
        let decoded = airlock_pg::array::decode_binary_array(&masked).unwrap();
        assert_eq!(decoded.elements, [None]);
        // An array that matches nothing is borrowed unchanged.
        let clean = binary_array(23, &[Some(&7i32.to_be_bytes())]);
        assert_eq!(one(Some(1007), 1, &clean), Some(clean));
    }

    #[test]
    fn binary_records_are_masked_field_by_field() {
        let mut inner = Vec::new();
        airlock_pg::record::encode_binary_record(&mut inner, &[(25, Some(EMAIL.as_bytes()))]);
        let mut record = Vec::new();
        let card = 4_111_111_111_111_111i64.to_be_bytes();
        airlock_pg::record::encode_binary_record(
            &mut record,
            &[
                (23, Some(&1i32.to_be_bytes())),
                (2249, Some(&inner)),
                (20, Some(&card)),
            ],
        );
        for oid in [2249, 30_000] {
            let masked = one(Some(oid), 1, &record).unwrap();
            assert!(!contains(&masked, b"jane.doe") && !contains(&masked, &card));
            let fields = airlock_pg::record::decode_binary_record(&masked).unwrap();
            assert_eq!(fields[0], (23, Some(&1i32.to_be_bytes()[..])));
            assert_eq!(fields[2], (20, Some(&[0u8; 8][..])), "the card became 0");
        }
    }

    #[test]
    fn numbers_a_detector_matches_become_zero() {
        let card = 4_111_111_111_111_111i64;
        assert_eq!(one(Some(20), 1, &card.to_be_bytes()), Some(vec![0; 8]));
        assert_eq!(
            one(Some(20), 1, &42i64.to_be_bytes()),
            Some(42i64.to_be_bytes().to_vec())
        );
        assert_eq!(
            one(Some(701), 1, &(card as f64).to_be_bytes()),
            Some(vec![0; 8])
        );
        assert_eq!(one(Some(20), 0, b"4111111111111111"), Some(b"0".to_vec()));
        assert_eq!(one(Some(1700), 0, b"12.50"), Some(b"12.50".to_vec()));
        assert_eq!(
            one(Some(701), 0, b"4.111111111111111e+15"),
            Some(b"0".to_vec())
        );
        let numeric = [
            0, 4, 0, 3, 0, 0, 0, 0, 0x10, 0x0f, 0x04, 0x57, 0x04, 0x57, 0x04, 0x57,
        ];
        assert_eq!(one(Some(1700), 1, &numeric), Some(vec![0; 8]));
        // An array of int8 in text format.
        assert_eq!(
            one(Some(1016), 0, b"{4111111111111111,7}"),
            Some(b"{0,7}".to_vec())
        );
    }

    #[test]
    fn text_records_bytea_and_other_types_are_masked() {
        let record = one(
            Some(2249),
            0,
            br#"(jane.doe@example.com,"4111 1111 1111 1111",7)"#,
        )
        .unwrap();
        let record = String::from_utf8(record).unwrap();
        assert!(
            record.starts_with("(j") && record.ends_with("1111\",7)"),
            "{record}"
        );
        assert!(!record.contains("jane.doe"), "{record}");
        let nested = one(Some(2287), 0, br#"{"(jane.doe@example.com,x)"}"#).unwrap();
        assert!(!contains(&nested, b"jane.doe"), "{nested:?}");
        let hex = format!("\\x{}", hex::encode(EMAIL));
        let masked = one(Some(17), 0, hex.as_bytes()).unwrap();
        let (bytes, _) = airlock_pg::bytea::decode_text_bytea(&masked).unwrap();
        assert!(!contains(&bytes, b"jane.doe") && bytes.ends_with(b".com"));
        assert_eq!(
            one(Some(17), 0, EMAIL.as_bytes()).map(|v| contains(&v, b"jane.doe")),
            Some(false)
        );
        // A type whose rendering cannot be masked in place becomes NULL.
        assert_eq!(one(Some(869), 0, b"10.1.2.3"), None);
        assert_eq!(
            one(Some(1082), 0, b"2026-01-02"),
            Some(b"2026-01-02".to_vec())
        );
        let tsvector = one(Some(3614), 0, b"'jane.doe@example.com'").unwrap();
        assert!(!contains(&tsvector, b"jane.doe"));
    }

    fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
            "[a-z.]{1,8}@[a-z]{1,8}\\.(com|io)".prop_map(|s| Some(s.into_bytes())),
            "4111 1111 1111 1111|[0-9 -]{0,24}".prop_map(|s| Some(s.into_bytes())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Masking keeps the column count, keeps NULLs NULL, leaves plain
        /// binary values (dates, timestamps) alone, and always yields a
        /// well-formed DataRow.
        #[test]
        fn masked_rows_stay_well_formed(
            values in proptest::collection::vec(value(), 0..8),
            formats in proptest::collection::vec(0i16..2, 0..8),
            oids in proptest::collection::vec(prop_oneof![Just(25i32), Just(23), Just(1043), Just(3802), Just(17), Just(20_000), Just(1009), Just(2249), Just(1700), Just(1184)], 8),
        ) {
            let plan = plan();
            let fields: Vec<FieldDescription> = (0..values.len())
                .map(|index| field(if index == 1 { "api_secret" } else { "c" }, oids[index % oids.len()], 0))
                .collect();
            let borrowed: Vec<Option<&[u8]>> = values.iter().map(|value| value.as_deref()).collect();
            let mut row = Vec::new();
            encode_data_row(&mut row, &borrowed);
            let mut stats = MaskStats::new();
            for layout in [Some(fields.as_slice()), None] {
                let masked = mask_data_row(plan, layout, &formats, None, &row[5..], &mut stats).unwrap();
                let Some(masked) = masked else { continue };
                // Re-framed with a correct length, decodable, same width.
                let length = i32::from_be_bytes(masked[1..5].try_into().unwrap());
                prop_assert_eq!(length as usize + 1, masked.len());
                let decoded = decode_data_row(&masked[5..]).unwrap();
                prop_assert_eq!(decoded.len(), values.len());
                for (index, (before, after)) in values.iter().zip(&decoded).enumerate() {
                    let field = layout.and_then(|fields| fields.get(index));
                    if before.is_none() {
                        prop_assert!(after.is_none());
                    }
                    if field.is_some_and(|field| field.type_oid == 1184 && field.name == "c")
                        && format_of(&formats, index) == 1
                    {
                        prop_assert_eq!(before.as_deref(), *after, "a plain binary value changed");
                    }
                }
            }
        }

        #[test]
        fn hostile_row_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = mask_data_row(plan(), None, &[], None, &body, &mut MaskStats::new());
        }

        #[test]
        fn hostile_values_never_panic(
            value in proptest::collection::vec(any::<u8>(), 0..80),
            oid in prop_oneof![Just(1009i32), Just(2249), Just(2287), Just(1700), Just(17), Just(869), Just(20_000), Just(1016)],
            format in 0i16..2,
        ) {
            let _ = one(Some(oid), format, &value);
        }
    }
}
