//! Settings a client asks for in its startup packet: which pass as they
//! are, and which are decided like the `SET` they amount to.
//!
//! Drivers set a few parameters on every connection (`application_name`,
//! `client_encoding` (checked in `airlock_pg::encoding`), `DateStyle`,
//! `TimeZone`, `extra_float_digits`, `IntervalStyle`): those pass. Every
//! other parameter, and every `-c name=value` (or `--name=value`) in
//! `options`, is a setting the server would apply for the whole session,
//! exactly as `SET name = 'value'` would: the gateway decides each one as
//! that statement under the live policy, forwards it as a parameter of its
//! own when allowed, and refuses the connection naming it when not. None
//! is dropped silently. Pure: no I/O.

/// Parameters every driver may send; passed without a decision.
pub const PASSED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "datestyle",
    "TimeZone",
    "timezone",
    "extra_float_digits",
    "IntervalStyle",
    "intervalstyle",
];

/// Handled elsewhere (who, where, how), never forwarded as settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// Longest setting name or value taken from a startup packet.
const MAX_LENGTH: usize = 1024;

/// What the startup packet asks for: parameters that pass as they are,
/// and settings to decide.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requested {
    pub passed: Vec<(String, String)>,
    pub settings: Vec<(String, String)>,
}

/// Sorts `params` into what passes and what is decided. An `options`
/// value that is not only `-c name=value` / `--name=value` switches, or a
/// setting name that is not a plain identifier, is refused with the reason.
pub fn requested(params: &[(String, String)]) -> Result<Requested, String> {
    let mut out = Requested::default();
    for (key, value) in params {
        if key.starts_with("_pq_.") || NOT_SETTINGS.contains(&key.as_str()) {
            continue;
        }
        if PASSED.contains(&key.as_str()) {
            out.passed.push((key.clone(), value.clone()));
            continue;
        }
        out.settings.push(setting(key, value)?);
    }
    if let Some((_, options)) = params.iter().find(|(key, _)| key == "options") {
        for (name, value) in options_settings(options)? {
            let (name, value) = setting(&name, &value)?;
            if PASSED.contains(&name.as_str()) {
                out.passed.push((name, value));
            } else {
                out.settings.push((name, value));
            }
        }
    }
    Ok(out)
}

fn setting(name: &str, value: &str) -> Result<(String, String), String> {
    let plain = name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_');
    if !plain || name.len() > MAX_LENGTH {
        return Err(format!("\"{name}\" is not a setting name"));
    }
    if value.len() > MAX_LENGTH || value.contains('\0') {
        return Err(format!("the value of {name} is too long"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The settings in an `options` value: whitespace-separated switches, a
/// backslash escaping the next character (as PostgreSQL reads them).
fn options_settings(options: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "options: -c needs name=value".to_string())?
        } else if let Some(rest) = word.strip_prefix("--") {
            rest.to_string()
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_string()
        } else {
            return Err(format!(
                "options: only -c name=value settings are accepted through the gateway, not \"{word}\""
            ));
        };
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("options: \"{assignment}\" is not name=value"))?;
        // `--statement-timeout=5s` is `statement_timeout`, as in PostgreSQL.
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

/// The `SET` statement a setting amounts to, as the classifier reads it.
pub fn as_set_statement(name: &str, value: &str) -> String {
    format!("SET {name} = '{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn driver_parameters_pass_and_settings_are_decided() {
        let got = requested(&params(&[
            ("user", "agent-7"),
            ("database", "pg"),
            ("application_name", "psql"),
            ("statement_timeout", "5s"),
            ("options", "-c search_path=app,public --work-mem=4MB -cdefault_transaction_isolation=serializable"),
            ("_pq_.something", "x"),
        ]))
        .unwrap();
        assert_eq!(got.passed, params(&[("application_name", "psql")]));
        assert_eq!(
            got.settings,
            params(&[
                ("statement_timeout", "5s"),
                ("search_path", "app,public"),
                ("work_mem", "4MB"),
                ("default_transaction_isolation", "serializable"),
            ])
        );
    }

    #[test]
    fn escaped_spaces_and_bad_options_are_read_as_postgres_reads_them() {
        let got = requested(&params(&[(
            "options",
            "-c application_name=my\\ app -c work_mem=1MB",
        )]))
        .unwrap();
        assert_eq!(got.passed, params(&[("application_name", "my app")]));
        assert_eq!(got.settings, params(&[("work_mem", "1MB")]));
        for bad in ["-D /tmp", "-c", "-c novalue", "--", "-c 1bad=x", "-c a;b=x"] {
            assert!(requested(&params(&[("options", bad)])).is_err(), "{bad}");
        }
        assert!(requested(&params(&[("bad name", "x")])).is_err());
    }

    #[test]
    fn set_statements_quote_their_value() {
        assert_eq!(
            as_set_statement("search_path", "a', public"),
            "SET search_path = 'a'', public'"
        );
    }
}
