//! The `java.util.Properties` text format, as `server.properties` uses it.

use crate::ConfigError;

/// Parses `key=value` (or `key: value`) lines; `#` and `!` start comments; a trailing
/// backslash continues a line. Later keys replace earlier ones, as in Java.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
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
pub(crate) fn split_entry(entry: &str, line: usize) -> Result<(String, String), ConfigError> {
    let pos = entry.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
        line,
        text: entry.to_string(),
    })?;
    let key = entry[..pos].trim();
    if key.is_empty() {
        return Err(ConfigError::Syntax {
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
            ConfigError::Syntax {
                line: 2,
                text: "bogus line".into()
            }
        );
    }
}
