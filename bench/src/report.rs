//! The results: one row per case, printed as one table and written as JSON.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Serialize;

use crate::procfs::Machine;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Measured.
    Ok,
    /// Not run, for the reason in the notes.
    Skipped,
    /// Went wrong (records missing, a timeout, a broker that would not start...).
    Failed,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// What it is, e.g. `p99` or `broker CPU`.
    pub(crate) name: String,
    /// Its unit, e.g. `ms` or `MB/s` (MB = 10^6 bytes).
    pub(crate) unit: String,
    /// The value; NaN is written as null.
    pub(crate) value: f64,
}

/// The outcome of one case of a scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// The scenario's name.
    pub(crate) scenario: String,
    /// The case, e.g. `1KiB p16 acks=all fsync lz4`.
    pub(crate) case: String,
    /// How it ended.
    pub(crate) status: Status,
    /// What was measured, in table order.
    pub(crate) figures: Vec<Figure>,
    /// The parameters of the case (client and broker settings).
    pub(crate) settings: BTreeMap<String, String>,
    /// Remarks: why it was skipped or failed, what a figure is relative to.
    pub(crate) notes: Vec<String>,
}

impl Row {
    /// A row for a case about to be measured.
    pub(crate) fn new(scenario: &str, case: impl Into<String>) -> Row {
        Row {
            scenario: scenario.to_string(),
            case: case.into(),
            status: Status::Ok,
            figures: Vec::new(),
            settings: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a figure.
    pub(crate) fn figure(&mut self, name: &str, value: f64, unit: &str) -> &mut Row {
        self.figures.push(Figure {
            name: name.to_string(),
            unit: unit.to_string(),
            value,
        });
        self
    }

    /// Records a setting of the case.
    pub(crate) fn setting(&mut self, key: &str, value: impl ToString) -> &mut Row {
        self.settings.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds a note.
    pub(crate) fn note(&mut self, note: impl Into<String>) -> &mut Row {
        self.notes.push(note.into());
        self
    }

    /// Marks the row skipped, with the reason.
    pub(crate) fn skip(mut self, why: impl Into<String>) -> Row {
        self.status = Status::Skipped;
        self.notes.push(why.into());
        self
    }

    /// Marks the row failed, with the error and its causes.
    pub(crate) fn fail(mut self, error: &anyhow::Error) -> Row {
        self.status = Status::Failed;
        self.notes.push(format!("{error:#}"));
        self
    }

    /// The value of the figure called `name`, if measured.
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
            .filter(|v| v.is_finite())
    }
}

/// Everything a run produced, as written to the JSON file.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    /// When the run began, UTC.
    pub(crate) started_at: String,
    /// Wall seconds of the whole run.
    pub(crate) duration_s: f64,
    /// The machine.
    pub(crate) machine: Machine,
    /// The load average when the run ended.
    pub(crate) load_average_after: [f64; 3],
    /// librdkafka's version.
    pub(crate) librdkafka: String,
    /// The broker: the binary started, or the bootstrap address targeted.
    pub(crate) broker: String,
    /// The command line, parsed.
    pub(crate) args: crate::args::Args,
    /// One per case, in run order.
    pub(crate) rows: Vec<Row>,
}

/// Writes `results` as pretty JSON to `path`, creating its directory.
pub(crate) fn write_json(results: &Results, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(results)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Renders the rows as one table: a header line per scenario with that scenario's
/// figures as columns, then its cases, each followed by its notes.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let case_width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for scenario in scenarios {
        let group: Vec<&Row> = rows.iter().filter(|r| r.scenario == scenario).collect();
        let mut columns: Vec<(String, String)> = Vec::new();
        for f in group.iter().flat_map(|r| &r.figures) {
            if !columns.iter().any(|(n, _)| *n == f.name) {
                columns.push((f.name.clone(), f.unit.clone()));
            }
        }
        // A unit that is a noun (records, partitions) is the header by itself.
        let headers: Vec<String> = columns
            .iter()
            .map(|(n, u)| match u.as_str() {
                "" | "count" | "records" | "partitions" => n.clone(),
                _ => format!("{n} {u}"),
            })
            .collect();
        let cells: Vec<Vec<String>> = group
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|(name, unit)| {
                        r.figures
                            .iter()
                            .find(|f| f.name == *name)
                            .map(|f| format_value(f.value, unit))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                cells
                    .iter()
                    .map(|c| c[i].len())
                    .chain([h.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = format!("{:<case_width$}  {:<7}", scenario.to_uppercase(), "status");
        for (h, w) in headers.iter().zip(&widths) {
            line.push_str(&format!("  {h:>w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for (r, c) in group.iter().zip(&cells) {
            let status = match r.status {
                Status::Ok => "ok",
                Status::Skipped => "skipped",
                Status::Failed => "FAILED",
            };
            let mut line = format!("{:<case_width$}  {status:<7}", r.case);
            for (v, w) in c.iter().zip(&widths) {
                line.push_str(&format!("  {v:>w$}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
            for n in &r.notes {
                out.push_str(&format!("    {n}\n"));
            }
        }
        out.push('\n');
    }
    out
}

/// A value formatted for its unit: counts grouped, small values with decimals.
fn format_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    match unit {
        "rec/s" | "records" | "ops/s" | "partitions" | "count" => group_thousands(v.round() as i64),
        "%" => format!("{v:.0}%"),
        "ms" if v < 10.0 => format!("{v:.2}"),
        "ms" if v < 100.0 => format!("{v:.1}"),
        "ms" | "MiB" => format!("{v:.0}"),
        "MB/s" if v < 100.0 => format!("{v:.1}"),
        "MB/s" => format!("{v:.0}"),
        _ if v.abs() < 10.0 => format!("{v:.2}"),
        _ => format!("{v:.1}"),
    }
}

/// 1234567 as `1,234,567`.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn table_has_a_column_per_figure_and_the_notes() {
        let mut a = Row::new("produce", "1KiB p1");
        a.figure("rate", 1234.0, "rec/s")
            .figure("payload", 1.26, "MB/s");
        let b = Row::new("produce", "100B p16").skip("needs root");
        let t = table(&[a, b]);
        assert!(t.contains("rate rec/s"), "{t}");
        assert!(t.contains("payload MB/s"), "{t}");
        assert!(t.contains("1,234"), "{t}");
        assert!(t.contains("skipped"), "{t}");
        assert!(t.contains("    needs root"), "{t}");
    }
}
