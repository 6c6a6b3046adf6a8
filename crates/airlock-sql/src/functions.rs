//! What calling a function does: the lists of known side-effecting and known
//! side-effect-free PostgreSQL functions.
//!
//! The classifier looks up every function it finds here. Three outcomes:
//! - [`FunctionEffect::Admin`]: server control, server-side file access,
//!   privilege-relevant settings, or running SQL text the classifier cannot
//!   see (`dblink`, `query_to_xml`, `ts_stat`).
//! - [`FunctionEffect::Write`]: a side effect on data or shared state
//!   (`nextval`, advisory locks, large objects, `pg_notify`).
//! - [`FunctionEffect::Read`]: known to have no side effect.
//!
//! A function in none of the lists is *unknown*: the classifier lists it in
//! `unknown_functions` and, failing closed, gives the statement at least
//! `write` access. User-defined functions therefore need a policy rule
//! (`functions: [...]` or `unknown_functions: true`) to be allowed where only
//! reads are.
//!
//! Only unqualified names and names qualified with `pg_catalog.` are looked
//! up: `public.lower` is a user function, not the built-in. Known limitation:
//! an overload created by another role in a schema on the search path can
//! shadow a built-in for argument types the built-in does not accept; the
//! classifier treats `SET search_path` as `admin` so the search path cannot
//! be changed silently, but it cannot see overloads that already exist.
//!
//! To extend the lists, add names (lowercase) to the sorted arrays below; a
//! unit test checks that they stay sorted and disjoint.

use airlock_types::Access;

mod mysql;

pub use mysql::{
    mysql_function_effect, MYSQL_ADMIN_FUNCTIONS, MYSQL_READ_FUNCTIONS, MYSQL_WRITE_FUNCTIONS,
};

/// What calling a function does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionEffect {
    /// No side effect: only computes a value.
    Read,
    /// A side effect on data or shared state.
    Write,
    /// Server control, file access, privilege changes, or hidden SQL.
    Admin,
}

impl FunctionEffect {
    /// The access level a call implies.
    pub fn access(self) -> Access {
        match self {
            Self::Read => Access::Read,
            Self::Write => Access::Write,
            Self::Admin => Access::Admin,
        }
    }
}

/// Functions that control the server, read or write server-side files,
/// change privilege-relevant settings, or run SQL text given as an argument.
/// Sorted.
pub const ADMIN_FUNCTIONS: &[&str] = &[
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "lo_export",
    "lo_import",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_cancel_backend",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_create_restore_point",
    "pg_drop_replication_slot",
    "pg_file_rename",
    "pg_file_sync",
    "pg_file_unlink",
    "pg_file_write",
    "pg_import_system_collations",
    "pg_log_backend_memory_contexts",
    "pg_logdir_ls",
    "pg_logical_emit_message",
    "pg_logical_slot_get_binary_changes",
    "pg_logical_slot_get_changes",
    "pg_ls_archive_statusdir",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_logicalmapdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_replslotdir",
    "pg_ls_tmpdir",
    "pg_ls_waldir",
    "pg_promote",
    "pg_read_binary_file",
    "pg_read_file",
    "pg_reload_conf",
    "pg_replication_slot_advance",
    "pg_rotate_logfile",
    "pg_start_backup",
    "pg_stat_file",
    "pg_stop_backup",
    "pg_switch_wal",
    "pg_terminate_backend",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "set_config",
    "ts_rewrite",
    "ts_stat",
];

/// Name prefixes of admin function families (`dblink`, `dblink_exec`, …).
pub const ADMIN_FUNCTION_PREFIXES: &[&str] = &[
    "dblink",
    "pg_copy_",
    "pg_replication_origin_",
    "pg_stat_reset",
];

/// Functions with a side effect on data or shared state. Sorted.
pub const WRITE_FUNCTIONS: &[&str] = &[
    "loread",
    "lowrite",
    "nextval",
    "pg_current_xact_id",
    "pg_notify",
    "setval",
    "txid_current",
];

/// Name prefixes of write function families: large objects and advisory
/// locks.
pub const WRITE_FUNCTION_PREFIXES: &[&str] = &["lo_", "pg_advisory_", "pg_try_advisory_"];

/// Functions known to have no side effect. Sorted.
pub const READ_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_dims",
    "array_fill",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_reverse",
    "array_sort",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "asin",
    "atan",
    "atan2",
    "avg",
    "bernoulli",
    "bit_and",
    "bit_length",
    "bit_or",
    "bit_xor",
    "bool",
    "bool_and",
    "bool_or",
    "box",
    "btrim",
    "cardinality",
    "cast",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "chr",
    "circle",
    "clock_timestamp",
    "coalesce",
    "col_description",
    "concat",
    "concat_ws",
    "corr",
    "cos",
    "cot",
    "count",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "current_database",
    "current_schema",
    "current_schemas",
    "current_setting",
    "current_time",
    "current_timestamp",
    "currval",
    "date",
    "date_bin",
    "date_part",
    "date_trunc",
    "daterange",
    "decode",
    "degrees",
    "dense_rank",
    "div",
    "encode",
    "every",
    "exp",
    "extract",
    "family",
    "first_value",
    "float4",
    "float8",
    "floor",
    "format",
    "format_type",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "greatest",
    "grouping",
    "has_column_privilege",
    "has_database_privilege",
    "has_function_privilege",
    "has_schema_privilege",
    "has_table_privilege",
    "host",
    "inet_client_addr",
    "inet_server_addr",
    "initcap",
    "int2",
    "int4",
    "int4range",
    "int8",
    "int8range",
    "isempty",
    "isfinite",
    "json",
    "json_agg",
    "json_array",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_arrayagg",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_exists",
    "json_extract_path",
    "json_extract_path_text",
    "json_object",
    "json_object_agg",
    "json_object_keys",
    "json_objectagg",
    "json_populate_record",
    "json_populate_recordset",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_strip_nulls",
    "json_table",
    "json_to_record",
    "json_to_recordset",
    "json_typeof",
    "json_value",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_populate_record",
    "jsonb_populate_recordset",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_set_lax",
    "jsonb_strip_nulls",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lag",
    "last_value",
    "lastval",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "localtime",
    "localtimestamp",
    "log",
    "log10",
    "lower",
    "lower_inf",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "masklen",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "normalize",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "num_nonnulls",
    "num_nulls",
    "numeric",
    "numrange",
    "obj_description",
    "octet_length",
    "overlay",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_backend_pid",
    "pg_char_to_encoding",
    "pg_client_encoding",
    "pg_collation_is_visible",
    "pg_column_size",
    "pg_conversion_is_visible",
    "pg_database_size",
    "pg_encoding_to_char",
    "pg_function_is_visible",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_function_sqlbody",
    "pg_get_functiondef",
    "pg_get_indexdef",
    "pg_get_keywords",
    "pg_get_partition_constraintdef",
    "pg_get_partkeydef",
    "pg_get_replica_identity_index",
    "pg_get_ruledef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_statisticsobjdef_expressions",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_has_role",
    "pg_indexes_size",
    "pg_input_error_info",
    "pg_input_is_valid",
    "pg_is_in_recovery",
    "pg_opclass_is_visible",
    "pg_operator_is_visible",
    "pg_opfamily_is_visible",
    "pg_postmaster_start_time",
    "pg_relation_is_publishable",
    "pg_relation_size",
    "pg_size_pretty",
    "pg_sleep",
    "pg_statistics_obj_is_visible",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_tablespace_location",
    "pg_total_relation_size",
    "pg_ts_config_is_visible",
    "pg_ts_dict_is_visible",
    "pg_ts_parser_is_visible",
    "pg_ts_template_is_visible",
    "pg_type_is_visible",
    "pg_typeof",
    "phraseto_tsquery",
    "pi",
    "plainto_tsquery",
    "point",
    "position",
    "pow",
    "power",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "radians",
    "random",
    "rank",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_substr",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "setweight",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "shobj_description",
    "sign",
    "sin",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "strpos",
    "substr",
    "substring",
    "sum",
    "system",
    "tan",
    "text",
    "timeofday",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_regclass",
    "to_regnamespace",
    "to_regproc",
    "to_regprocedure",
    "to_regrole",
    "to_regtype",
    "to_timestamp",
    "to_tsquery",
    "to_tsvector",
    "transaction_timestamp",
    "translate",
    "treat",
    "trim",
    "trunc",
    "ts_headline",
    "ts_rank",
    "ts_rank_cd",
    "tsrange",
    "tstzrange",
    "unnest",
    "upper",
    "upper_inf",
    "uuid_generate_v4",
    "var_pop",
    "var_samp",
    "variance",
    "version",
    "websearch_to_tsquery",
    "width_bucket",
    "xmlagg",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
    "xpath",
    "xpath_exists",
];

fn strip_catalog(name: &str) -> Option<&str> {
    match name.strip_prefix("pg_catalog.") {
        Some(rest) => Some(rest),
        None if name.contains('.') => None,
        None => Some(name),
    }
}

/// What calling `name` (lowercased, schema-qualified as written) does, or
/// `None` when the function is unknown.
pub fn function_effect(name: &str) -> Option<FunctionEffect> {
    let name = strip_catalog(name)?;
    if ADMIN_FUNCTIONS.binary_search(&name).is_ok()
        || ADMIN_FUNCTION_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
    {
        return Some(FunctionEffect::Admin);
    }
    if WRITE_FUNCTIONS.binary_search(&name).is_ok()
        || WRITE_FUNCTION_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
    {
        return Some(FunctionEffect::Write);
    }
    if READ_FUNCTIONS.binary_search(&name).is_ok() || name.starts_with("pg_stat_get_") {
        return Some(FunctionEffect::Read);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_disjoint() {
        for list in [ADMIN_FUNCTIONS, WRITE_FUNCTIONS, READ_FUNCTIONS] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{:?}", list);
        }
        for name in READ_FUNCTIONS {
            assert!(!ADMIN_FUNCTIONS.contains(name));
            assert!(!WRITE_FUNCTIONS.contains(name));
            assert!(
                !ADMIN_FUNCTION_PREFIXES
                    .iter()
                    .chain(WRITE_FUNCTION_PREFIXES)
                    .any(|p| name.starts_with(p)),
                "{name}"
            );
        }
    }

    #[test]
    fn effects() {
        let cases = [
            ("pg_terminate_backend", Some(FunctionEffect::Admin)),
            ("pg_catalog.pg_cancel_backend", Some(FunctionEffect::Admin)),
            ("dblink_exec", Some(FunctionEffect::Admin)),
            ("lo_import", Some(FunctionEffect::Admin)),
            ("lo_unlink", Some(FunctionEffect::Write)),
            ("pg_advisory_xact_lock", Some(FunctionEffect::Write)),
            ("nextval", Some(FunctionEffect::Write)),
            ("count", Some(FunctionEffect::Read)),
            ("pg_catalog.lower", Some(FunctionEffect::Read)),
            ("public.lower", None),
            ("my_func", None),
        ];
        for (name, effect) in cases {
            assert_eq!(function_effect(name), effect, "{name}");
        }
    }
}
