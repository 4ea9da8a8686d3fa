//! The `java.util.Properties` text format, as Kafka's `server.properties` and its tools'
//! `--command-config` client files use it.

/// A line of a properties file that is not `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected `key=value`, found `{text}`")]
pub struct PropertiesError {
    /// One-based line number.
    pub line: usize,
    /// The offending text.
    pub text: String,
}

/// Parses `key=value` (or `key: value`) lines; `#` and `!` start comments; a trailing
/// backslash continues a line. Later keys replace earlier ones, as in Java.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = i + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        out.push(split_entry(&entry, start_line)?);
    }
    if !pending.is_empty() {
        out.push(split_entry(&pending, start_line)?);
    }
    Ok(out)
}

/// Splits one `key=value` or `key:value` entry.
fn split_entry(entry: &str, line: usize) -> Result<(String, String), PropertiesError> {
    let pos = entry.find(['=', ':']).ok_or_else(|| PropertiesError {
        line,
        text: entry.to_string(),
    })?;
    let key = entry[..pos].trim();
    if key.is_empty() {
        return Err(PropertiesError {
            line,
            text: entry.to_string(),
        });
    }
    Ok((key.to_string(), entry[pos + 1..].trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_separators_and_continuations() {
        let text = "# comment\n! also\nlisteners=PLAINTEXT://:9092\nlog.dirs : /a,\\\n  /b\n\nnum.partitions=3\n";
        let props = parse_properties(text).unwrap();
        assert_eq!(
            props,
            vec![
                ("listeners".into(), "PLAINTEXT://:9092".into()),
                ("log.dirs".into(), "/a,/b".into()),
                ("num.partitions".into(), "3".into()),
            ]
        );
    }

    #[test]
    fn rejects_a_line_without_separator() {
        let err = parse_properties("a=1\nbogus line\n").unwrap_err();
        assert_eq!(
            err,
            PropertiesError {
                line: 2,
                text: "bogus line".into()
            }
        );
    }
}
