//! The query parameters a Kubernetes request is classified by (`watch`,
//! `dryRun`, `fieldSelector`), decoded the way the API server decodes
//! them (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a
//! byte). Pure.
//!
//! Fail closed: a parameter the classification reads that is given twice
//! or whose escapes do not decode is an error, never a guess (the API
//! server reads the first value; a gateway reading another one would
//! classify a different request than the one that runs).

/// The parameters that change what a request is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassifyingParameters {
    /// `watch=true` / `watch=1`.
    pub watch: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `metadata.name` when `fieldSelector` is exactly
    /// `metadata.name=<name>` (or `==`): a list narrowed to one object.
    pub name_selector: Option<String>,
}

/// Why a query cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A classifying parameter appears more than once.
    #[error("query parameter {0:?} is given more than once")]
    Repeated(&'static str),
    /// A classifying parameter has an escape that does not decode.
    #[error("query parameter {0:?} is not validly encoded")]
    Encoding(&'static str),
}

/// Decodes one form-encoded component; `None` for a bad escape or
/// bytes that are not UTF-8.
pub fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes
                    .get(index + 1)
                    .and_then(|b| char::from(*b).to_digit(16))?;
                let low = bytes
                    .get(index + 2)
                    .and_then(|b| char::from(*b).to_digit(16))?;
                out.push(u8::try_from(high * 16 + low).ok()?);
                index += 2;
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8(out).ok()
}

const CLASSIFYING: [&str; 3] = ["watch", "dryRun", "fieldSelector"];

/// Reads the classifying parameters of `query` (without `?`).
pub fn classifying_parameters(query: Option<&str>) -> Result<ClassifyingParameters, QueryError> {
    let mut seen: [Option<String>; 3] = [None, None, None];
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        // A key that does not decode cannot be one we read; the API server
        // ignores it too.
        let Some(key) = form_decode(raw_key) else {
            continue;
        };
        let Some(slot) = CLASSIFYING.iter().position(|name| *name == key) else {
            continue;
        };
        let name = CLASSIFYING.get(slot).copied().unwrap_or("");
        let value = form_decode(raw_value).ok_or(QueryError::Encoding(name))?;
        let entry = seen.get_mut(slot).ok_or(QueryError::Encoding(name))?;
        if entry.is_some() {
            return Err(QueryError::Repeated(name));
        }
        *entry = Some(value);
    }
    let [watch, dry_run, field_selector] = seen;
    Ok(ClassifyingParameters {
        watch: matches!(watch.as_deref(), Some("true" | "1")),
        dry_run: dry_run.as_deref() == Some("All"),
        name_selector: field_selector.as_deref().and_then(exact_name),
    })
}

/// The name of a field selector that is exactly `metadata.name=<name>`.
fn exact_name(selector: &str) -> Option<String> {
    let selector = selector.trim();
    let value = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.is_empty()
        && !value.contains([',', '=', '!', '/', '%'])
        && value != "."
        && value != "..")
        .then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_classifying_parameters() {
        let cases = [
            (None, ClassifyingParameters::default()),
            (
                Some("watch=true"),
                ClassifyingParameters {
                    watch: true,
                    ..Default::default()
                },
            ),
            (
                Some("watch=1&limit=500"),
                ClassifyingParameters {
                    watch: true,
                    ..Default::default()
                },
            ),
            (Some("watch=false"), ClassifyingParameters::default()),
            (
                Some("dryRun=All"),
                ClassifyingParameters {
                    dry_run: true,
                    ..Default::default()
                },
            ),
            (Some("dryRun=all"), ClassifyingParameters::default()),
            (
                Some("fieldSelector=metadata.name%3Dweb&watch=true"),
                ClassifyingParameters {
                    watch: true,
                    name_selector: Some("web".into()),
                    ..Default::default()
                },
            ),
            (
                Some("fieldSelector=metadata.name%3Dweb%2Cstatus.phase%3DRunning"),
                ClassifyingParameters::default(),
            ),
            (
                Some("w%61tch=true"),
                ClassifyingParameters {
                    watch: true,
                    ..Default::default()
                },
            ),
            (Some("other=%zz"), ClassifyingParameters::default()),
        ];
        for (query, expected) in cases {
            assert_eq!(classifying_parameters(query), Ok(expected), "{query:?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_with_certainty() {
        assert_eq!(
            classifying_parameters(Some("watch=false&watch=true")),
            Err(QueryError::Repeated("watch"))
        );
        assert_eq!(
            classifying_parameters(Some("dryRun=All&w=1&dry%52un=")),
            Err(QueryError::Repeated("dryRun"))
        );
        assert_eq!(
            classifying_parameters(Some("dryRun=%zz")),
            Err(QueryError::Encoding("dryRun"))
        );
        assert_eq!(form_decode("a+b%20c"), Some("a b c".into()));
        assert_eq!(form_decode("%ff"), None);
    }
}
