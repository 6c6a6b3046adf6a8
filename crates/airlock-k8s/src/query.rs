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
    let name_selector = match field_selector.as_deref() {
        Some(selector) => selected_name(selector)?,
        None => None,
    };
    Ok(ClassifyingParameters {
        // Go's strconv.ParseBool, as the API server reads it: a rule on
        // `watch` must see `watch=True` as a watch too.
        watch: matches!(
            watch.as_deref(),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        ),
        dry_run: dry_run.as_deref() == Some("All"),
        name_selector,
    })
}

/// A port-forward's `ports`: every `ports=` value, each a comma-separated
/// list of ports 1–65535 (the kubelet's reading). Anything else is an
/// error: a policy on ports must not be dodged by a port it reads
/// differently than the kubelet.
pub fn ports(query: Option<&str>) -> Result<Vec<u16>, QueryError> {
    let mut out = Vec::new();
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(raw_key).as_deref() != Some("ports") {
            continue;
        }
        let value = form_decode(raw_value).ok_or(QueryError::Encoding("ports"))?;
        for port in value.split(',') {
            let number = port
                .parse::<u16>()
                .ok()
                .filter(|number| *number > 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(QueryError::Encoding("ports"))?;
            if out.len() >= 64 {
                return Err(QueryError::Encoding("ports"));
            }
            out.push(number);
        }
    }
    Ok(out)
}

/// The name a field selector pins (`metadata.name=<name>` or `==`, alone
/// or among other terms, as the API server's `RequiresExactMatch` finds
/// it). A selector with escapes, or naming two different names, is an
/// error: a policy on names must not be dodged by a selector it reads
/// differently than the server.
fn selected_name(selector: &str) -> Result<Option<String>, QueryError> {
    if selector.contains('\\') {
        return Err(QueryError::Encoding("fieldSelector"));
    }
    let mut name: Option<String> = None;
    for term in selector.split(',') {
        let term = term.trim();
        let Some(value) = term
            .strip_prefix("metadata.name==")
            .or_else(|| term.strip_prefix("metadata.name="))
        else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.contains(['=', '!', '/', '%']) || value == "." || value == ".."
        {
            return Err(QueryError::Encoding("fieldSelector"));
        }
        match &name {
            Some(earlier) if earlier != value => return Err(QueryError::Repeated("fieldSelector")),
            _ => name = Some(value.to_string()),
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ports_as_the_kubelet_does() {
        assert_eq!(
            ports(Some("ports=8080&ports=80,443")),
            Ok(vec![8080, 80, 443])
        );
        assert_eq!(ports(Some("watch=1")), Ok(vec![]));
        assert_eq!(ports(None), Ok(vec![]));
        for bad in [
            "ports=0",
            "ports=65536",
            "ports=",
            "ports=+80",
            "ports=8080,",
            "ports=%zz",
        ] {
            assert_eq!(
                ports(Some(bad)),
                Err(QueryError::Encoding("ports")),
                "{bad}"
            );
        }
    }

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
                ClassifyingParameters {
                    name_selector: Some("web".into()),
                    ..Default::default()
                },
            ),
            (
                Some("fieldSelector=status.phase%3DRunning"),
                ClassifyingParameters::default(),
            ),
            (
                Some("watch=True"),
                ClassifyingParameters {
                    watch: true,
                    ..Default::default()
                },
            ),
            (
                Some("watch=t"),
                ClassifyingParameters {
                    watch: true,
                    ..Default::default()
                },
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
        assert_eq!(
            classifying_parameters(Some("fieldSelector=metadata.name%3Da%2Cmetadata.name%3Db")),
            Err(QueryError::Repeated("fieldSelector"))
        );
        assert_eq!(
            classifying_parameters(Some("fieldSelector=metadata.name%3Da%5C%2Cb")),
            Err(QueryError::Encoding("fieldSelector"))
        );
        assert_eq!(
            classifying_parameters(Some("fieldSelector=metadata.name!%3Da")),
            Ok(ClassifyingParameters::default())
        );
        assert_eq!(form_decode("a+b%20c"), Some("a b c".into()));
        assert_eq!(form_decode("%ff"), None);
    }
}
