//! What calling a MySQL / MariaDB function does: the MySQL lists of known
//! side-effecting and known side-effect-free built-in functions.
//!
//! Same three outcomes as the PostgreSQL lists (see the parent module):
//! - admin: `LOAD_FILE` reads a file of the server's file system.
//! - write: `SLEEP` and `BENCHMARK` (they hold a connection and burn server
//!   time: a denial of service a read-only agent must not get silently),
//!   user-level locks (`GET_LOCK`, `RELEASE_LOCK`, `RELEASE_ALL_LOCKS`),
//!   MariaDB sequences (`NEXTVAL`, `SETVAL`, `LASTVAL`) and the replication
//!   waits (`MASTER_POS_WAIT` …).
//! - read: everything else below.
//!
//! A function in no list is unknown (a stored function or a UDF), listed in
//! `unknown_functions` and at least `write`. Only unqualified names are
//! looked up: `db.f()` is a stored function. Names are compared lowercased
//! (MySQL function names are case-insensitive).
//!
//! `LAST_INSERT_ID(expr)` sets a value only this session sees, like a user
//! variable, and stays read (see the crate doc on user variables).

use super::FunctionEffect;

/// Functions that read server files. Sorted.
pub const MYSQL_ADMIN_FUNCTIONS: &[&str] = &["load_file"];

/// Functions with a side effect on shared state or the server's time. Sorted.
pub const MYSQL_WRITE_FUNCTIONS: &[&str] = &[
    "benchmark",
    "get_lock",
    "lastval",
    "master_gtid_wait",
    "master_pos_wait",
    "nextval",
    "release_all_locks",
    "release_lock",
    "setval",
    "sleep",
    "source_pos_wait",
    "wait_for_executed_gtid_set",
    "wait_until_sql_thread_after_gtids",
];

/// Functions known to have no side effect. Sorted.
pub const MYSQL_READ_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "add_months",
    "adddate",
    "addtime",
    "aes_decrypt",
    "aes_encrypt",
    "against",
    "any_value",
    "ascii",
    "asin",
    "atan",
    "atan2",
    "avg",
    "bin",
    "bin_to_uuid",
    "bit_and",
    "bit_count",
    "bit_length",
    "bit_or",
    "bit_xor",
    "cast",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "charset",
    "chr",
    "coalesce",
    "coercibility",
    "collation",
    "column_check",
    "column_create",
    "column_exists",
    "column_get",
    "column_json",
    "column_list",
    "compress",
    "concat",
    "concat_ws",
    "connection_id",
    "conv",
    "convert",
    "convert_tz",
    "cos",
    "cot",
    "count",
    "crc32",
    "cume_dist",
    "curdate",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "curtime",
    "database",
    "date",
    "date_add",
    "date_format",
    "date_sub",
    "datediff",
    "day",
    "dayname",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "decode",
    "default",
    "degrees",
    "dense_rank",
    "elt",
    "encode",
    "exp",
    "export_set",
    "extract",
    "extractvalue",
    "field",
    "find_in_set",
    "first_value",
    "floor",
    "format",
    "format_bytes",
    "format_pico_time",
    "found_rows",
    "from_base64",
    "from_days",
    "from_unixtime",
    "geometrycollection",
    "get_format",
    "greatest",
    "group_concat",
    "hex",
    "hour",
    "icu_version",
    "if",
    "ifnull",
    "inet6_aton",
    "inet6_ntoa",
    "inet_aton",
    "inet_ntoa",
    "instr",
    "interval",
    "is_free_lock",
    "is_ipv4",
    "is_ipv4_compat",
    "is_ipv4_mapped",
    "is_ipv6",
    "is_used_lock",
    "is_uuid",
    "isnull",
    "json_arrayagg",
    "json_objectagg",
    "lag",
    "last_day",
    "last_insert_id",
    "last_value",
    "lcase",
    "lead",
    "least",
    "left",
    "length",
    "linestring",
    "ln",
    "locate",
    "log",
    "log10",
    "log2",
    "lower",
    "lpad",
    "ltrim",
    "make_set",
    "makedate",
    "maketime",
    "match",
    "max",
    "md5",
    "microsecond",
    "mid",
    "min",
    "minute",
    "mod",
    "month",
    "monthname",
    "months_between",
    "multilinestring",
    "multipoint",
    "multipolygon",
    "name_const",
    "natural_sort_key",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "oct",
    "octet_length",
    "ord",
    "percent_rank",
    "period_add",
    "period_diff",
    "pi",
    "point",
    "polygon",
    "position",
    "pow",
    "power",
    "quarter",
    "quote",
    "radians",
    "rand",
    "random_bytes",
    "rank",
    "regexp_instr",
    "regexp_like",
    "regexp_replace",
    "regexp_substr",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_count",
    "row_number",
    "rpad",
    "rtrim",
    "schema",
    "sec_to_time",
    "second",
    "session_user",
    "sformat",
    "sha",
    "sha1",
    "sha2",
    "sign",
    "sin",
    "soundex",
    "space",
    "sqrt",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "str_to_date",
    "strcmp",
    "subdate",
    "substr",
    "substring",
    "substring_index",
    "subtime",
    "sum",
    "sys_guid",
    "sysdate",
    "system_user",
    "tan",
    "time",
    "time_format",
    "time_to_sec",
    "timediff",
    "timestamp",
    "timestampadd",
    "timestampdiff",
    "to_base64",
    "to_char",
    "to_days",
    "to_seconds",
    "trim",
    "truncate",
    "ucase",
    "uncompress",
    "uncompressed_length",
    "unhex",
    "unix_timestamp",
    "upper",
    "user",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "uuid",
    "uuid_short",
    "uuid_to_bin",
    "var_pop",
    "var_samp",
    "variance",
    "version",
    "week",
    "weekday",
    "weekofyear",
    "weight_string",
    "year",
    "yearweek",
];

/// Name prefixes of read-only function families: JSON, spatial, regular
/// expressions.
pub const MYSQL_READ_FUNCTION_PREFIXES: &[&str] = &["json_", "mbr", "st_"];

/// What calling MySQL function `name` (lowercased, qualified as written)
/// does, or `None` when the function is unknown.
pub fn mysql_function_effect(name: &str) -> Option<FunctionEffect> {
    if name.contains('.') {
        return None;
    }
    if MYSQL_ADMIN_FUNCTIONS.binary_search(&name).is_ok() {
        return Some(FunctionEffect::Admin);
    }
    if MYSQL_WRITE_FUNCTIONS.binary_search(&name).is_ok() {
        return Some(FunctionEffect::Write);
    }
    if MYSQL_READ_FUNCTIONS.binary_search(&name).is_ok()
        || MYSQL_READ_FUNCTION_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
    {
        return Some(FunctionEffect::Read);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_disjoint() {
        for list in [
            MYSQL_ADMIN_FUNCTIONS,
            MYSQL_WRITE_FUNCTIONS,
            MYSQL_READ_FUNCTIONS,
        ] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{:?}", list);
        }
        for name in MYSQL_WRITE_FUNCTIONS.iter().chain(MYSQL_ADMIN_FUNCTIONS) {
            assert!(!MYSQL_READ_FUNCTIONS.contains(name), "{name}");
            assert!(
                !MYSQL_READ_FUNCTION_PREFIXES
                    .iter()
                    .any(|p| name.starts_with(p)),
                "{name}"
            );
        }
    }

    #[test]
    fn effects() {
        let cases = [
            ("load_file", Some(FunctionEffect::Admin)),
            ("sleep", Some(FunctionEffect::Write)),
            ("benchmark", Some(FunctionEffect::Write)),
            ("get_lock", Some(FunctionEffect::Write)),
            ("nextval", Some(FunctionEffect::Write)),
            ("json_extract", Some(FunctionEffect::Read)),
            ("concat", Some(FunctionEffect::Read)),
            ("appdb.concat", None),
            ("sys_exec", None),
        ];
        for (name, effect) in cases {
            assert_eq!(mysql_function_effect(name), effect, "{name}");
        }
    }
}
