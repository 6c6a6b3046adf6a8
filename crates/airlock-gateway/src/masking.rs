//! Masking of `DataRow` values, by column type and format (pure).
//!
//! Text-like values (text, varchar, char, name, json, jsonb, xml, their
//! arrays in text format, and user-defined types in text format) are run
//! through the detectors; numbers, dates and other non-text types are left
//! alone. A column matched by a column rule is masked whole when it is
//! text-like and becomes NULL otherwise (a placeholder is not a valid
//! number or date, and a client would fail to parse it).

use std::borrow::Cow;

use airlock_mask::{MaskPlan, MaskStats};
use airlock_pg::backend::{decode_data_row, encode_data_row, FieldDescription};
use airlock_pg::PgCodecError;

const TEXT_OIDS: &[i32] = &[25, 1043, 1042, 19, 114, 142, 705, 3802];
const TEXT_ARRAY_OIDS: &[i32] = &[1009, 1015, 1014, 1003, 199, 143, 3807];
const JSONB_OID: i32 = 3802;
/// OIDs below this are built-in; above are user-defined (domains, enums,
/// citext …), treated as text in text format.
const FIRST_USER_OID: i32 = 16_384;

fn format_of(formats: &[i16], index: usize) -> i16 {
    match formats {
        [] => 0,
        [single] => *single,
        many => many.get(index).copied().unwrap_or(0),
    }
}

/// How a value of this type and format is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The bytes are UTF-8 text (after `skip` leading bytes).
    Text { skip: usize },
    /// Not text: left alone by detectors, NULL under a column rule.
    Other,
}

fn kind(field: Option<&FieldDescription>, format: i16) -> Kind {
    let Some(field) = field else {
        // Layout unknown: text-format values are text; binary ones are not
        // touched.
        return if format == 0 {
            Kind::Text { skip: 0 }
        } else {
            Kind::Other
        };
    };
    let oid = field.type_oid;
    if format == 0 {
        if TEXT_OIDS.contains(&oid) || TEXT_ARRAY_OIDS.contains(&oid) || oid >= FIRST_USER_OID {
            return Kind::Text { skip: 0 };
        }
        return Kind::Other;
    }
    match oid {
        // Binary jsonb is a version byte followed by the JSON text.
        JSONB_OID => Kind::Text { skip: 1 },
        oid if TEXT_OIDS.contains(&oid) => Kind::Text { skip: 0 },
        _ => Kind::Other,
    }
}

/// Which columns of `fields` a column rule of `plan` masks whole.
pub fn column_rules(plan: &MaskPlan, fields: &[FieldDescription]) -> Vec<bool> {
    fields
        .iter()
        .map(|field| plan.column_masked(&field.name))
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
        let kind = kind(field, format_of(formats, index));
        // Column rules are matched once per result set by the caller
        // ([`column_rules`]); without that, per value.
        let column_rule = match column_rules {
            Some(rules) => rules.get(index).copied().unwrap_or(false),
            None => field.is_some_and(|field| plan.column_masked(&field.name)),
        };
        let new_value = match (kind, column_rule) {
            (Kind::Other, true) => {
                stats.record("column", 1);
                None
            }
            (Kind::Text { skip }, true) => {
                stats.record("column", 1);
                let (prefix, text) = bytes.split_at(skip.min(bytes.len()));
                let whole = plan.mask_whole(&String::from_utf8_lossy(text));
                let mut out = prefix.to_vec();
                out.extend_from_slice(whole.as_bytes());
                Some(Cow::Owned(out))
            }
            (Kind::Text { skip }, false) => {
                let (prefix, text) = bytes.split_at(skip.min(bytes.len()));
                match plan.mask_bytes(text, stats) {
                    Cow::Borrowed(_) => Some(Cow::Borrowed(*bytes)),
                    Cow::Owned(data) => {
                        let mut out = prefix.to_vec();
                        out.extend_from_slice(&data);
                        Some(Cow::Owned(out))
                    }
                }
            }
            (Kind::Other, false) => Some(Cow::Borrowed(*bytes)),
        };
        if !matches!(new_value, Some(Cow::Borrowed(_))) {
            changed = true;
        }
        masked.push(new_value);
    }
    if !changed {
        return Ok(None);
    }
    let borrowed: Vec<Option<&[u8]>> = masked.iter().map(|value| value.as_deref()).collect();
    let mut out = Vec::with_capacity(body.len() + 5);
    encode_data_row(&mut out, &borrowed);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan() -> MaskPlan {
        MaskPlan::compile(&airlock_mask::MaskSpec {
            detectors: airlock_mask::BUILTIN_DETECTORS
                .iter()
                .map(|name| name.to_string())
                .collect(),
            columns: vec!["*secret*".into()],
            ..Default::default()
        })
        .unwrap()
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

        /// Masking keeps the column count, keeps NULLs NULL (except column
        /// rules on non-text types, which become NULL), leaves non-text
        /// values alone, and always yields a well-formed DataRow.
        #[test]
        fn masked_rows_stay_well_formed(
            values in proptest::collection::vec(value(), 0..8),
            formats in proptest::collection::vec(0i16..2, 0..8),
            oids in proptest::collection::vec(prop_oneof![Just(25i32), Just(23), Just(1043), Just(3802), Just(17), Just(20_000)], 8),
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
                let masked = mask_data_row(&plan, layout, &formats, None, &row[5..], &mut stats).unwrap();
                let Some(masked) = masked else { continue };
                // Re-framed with a correct length, decodable, same width.
                let length = i32::from_be_bytes(masked[1..5].try_into().unwrap());
                prop_assert_eq!(length as usize + 1, masked.len());
                let decoded = decode_data_row(&masked[5..]).unwrap();
                prop_assert_eq!(decoded.len(), values.len());
                for (index, (before, after)) in values.iter().zip(&decoded).enumerate() {
                    let field = layout.and_then(|fields| fields.get(index));
                    let kind = kind(field, format_of(&formats, index));
                    if before.is_none() {
                        prop_assert!(after.is_none());
                    }
                    if kind == Kind::Other && !field.is_some_and(|field| plan.column_masked(&field.name)) {
                        prop_assert_eq!(before.as_deref(), *after, "a non-text value changed");
                    }
                }
            }
        }

        #[test]
        fn hostile_row_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = mask_data_row(&plan(), None, &[], None, &body, &mut MaskStats::new());
        }
    }
}
