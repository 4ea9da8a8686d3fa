//! What the commands print: aligned tables on stdout, progress lines on stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::CliError;

/// A table printed with columns padded to their widest cell, as kafka-consumer-groups does.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row.
    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes `text` to stdout.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Io {
            what: "writing to standard output",
            source,
        })
}

/// Progress lines on stderr, at most one a second and none for work done within a second.
pub(crate) struct Progress {
    started: Instant,
    last: Option<Instant>,
}

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    /// Starts the clock.
    pub(crate) fn new() -> Progress {
        Progress {
            started: Instant::now(),
            last: None,
        }
    }

    /// Prints `line()` if a second has passed since the start and since the last line.
    pub(crate) fn tick(&mut self, line: impl FnOnce() -> String) {
        let now = Instant::now();
        let due = now.duration_since(self.started) >= PROGRESS_EVERY
            && self
                .last
                .is_none_or(|l| now.duration_since(l) >= PROGRESS_EVERY);
        if due {
            self.last = Some(now);
            eprintln!("{}", line());
        }
    }

    /// Time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A value or "-" when there is none, as Kafka's tools print missing cells.
pub(crate) fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["TOPIC", "PARTITION", "LAG"]);
        t.row(vec!["orders".into(), "0".into(), "5".into()]);
        assert_eq!(t.render(), "TOPIC   PARTITION  LAG\norders  0          5\n");
    }
}
