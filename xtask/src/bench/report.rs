//! The report in markdown: headings, paragraphs written sentence by sentence, and tables whose rows are added
//! cell by cell (no line of the report is one long format string); and the figures' spread over the runs.

use std::fmt::{self, Display, Write as _};

/// The report, as it grows part by part.
#[derive(Default)]
pub(super) struct Report {
    md: String,
}

impl Report {
    /// A heading (`#` for the title, `##` for a part) and the blank line after it.
    pub(super) fn heading(&mut self, level: usize, title: &str) {
        let _ = write!(self.md, "{} {title}\n\n", "#".repeat(level));
    }

    /// A paragraph: the sentences on one line, separated by a space, and a blank line after it.
    pub(super) fn paragraph<S: AsRef<str>>(&mut self, sentences: impl IntoIterator<Item = S>) {
        let sentences: Vec<S> = sentences.into_iter().collect();
        let line: Vec<&str> = sentences.iter().map(AsRef::as_ref).collect();
        self.md.push_str(&line.join(" "));
        self.md.push_str("\n\n");
    }

    /// A table, and a blank line after it.
    pub(super) fn table(&mut self, table: &Table) {
        self.md.push_str(&table.render());
        self.md.push('\n');
    }

    /// The whole report.
    pub(super) fn as_str(&self) -> &str {
        &self.md
    }

    /// Part `letter`'s section, from its heading to the end (it is the last one written).
    pub(super) fn section(&self, letter: char) -> &str {
        self.md.find(&format!("## {letter}.")).map(|at| &self.md[at..]).unwrap_or_default()
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.md)
    }
}

/// A markdown table: a header, then rows added cell by cell; each column as wide as its widest cell.
pub(super) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub(super) fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// A new row, to be filled with [`Row::cell`].
    pub(super) fn row(&mut self) -> Row<'_> {
        let at = self.rows.len();
        self.rows.push(Vec::new());
        Row(&mut self.rows[at])
    }

    /// The table in markdown, one line per row.
    pub(super) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).chain([self.header.len()]).max().unwrap_or(0);
        let mut widths = vec![1; columns];
        for row in self.rows.iter().chain([&self.header]) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| format!("{:<w$}", cells.get(i).map(String::as_str).unwrap_or("")))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A row being filled.
pub(super) struct Row<'t>(&'t mut Vec<String>);

impl Row<'_> {
    /// The next cell.
    pub(super) fn cell(self, value: impl Display) -> Self {
        self.0.push(value.to_string());
        self
    }
}

/// Figures of several runs: the smallest, the median (the upper one of an even count) and the largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    pub(super) min: f64,
    pub(super) median: f64,
    pub(super) max: f64,
}

impl Spread {
    /// The spread of `values`; all zero when there are none.
    pub(super) fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
        Spread { min: at(0), median: at(v.len() / 2), max: at(v.len().saturating_sub(1)) }
    }

    /// `median [min–max]` with `digits` decimals; the median alone where the runs agree to those decimals.
    pub(super) fn bracketed(&self, digits: usize) -> String {
        let Spread { min, median, max } = *self;
        if (max - min).abs() < 10f64.powi(-(digits as i32)) {
            format!("{median:.digits$}")
        } else {
            format!("{median:.digits$} [{min:.digits$}–{max:.digits$}]")
        }
    }

    /// `**median** (min–max)` with `digits` decimals.
    pub(super) fn bold(&self, digits: usize) -> String {
        let Spread { min, median, max } = *self;
        format!("**{median:.digits$}** ({min:.digits$}–{max:.digits$})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_as_wide_as_its_widest_cells() {
        let mut t = Table::new(&["who", "n"]);
        t.row().cell("crossroled").cell(1.5);
        t.row().cell("µ").cell("10 × 2");
        assert_eq!(
            t.render(),
            "| who        | n      |\n|------------|--------|\n| crossroled | 1.5    |\n| µ          | 10 × 2 |\n"
        );
    }

    #[test]
    fn a_report_is_headings_paragraphs_and_tables() {
        let mut r = Report::default();
        r.heading(1, "title");
        r.heading(2, "A. one");
        r.paragraph(["First.", "Second."]);
        let mut t = Table::new(&["a"]);
        t.row().cell("x");
        r.table(&t);
        r.paragraph([format!("Last {}.", 1)]);
        assert_eq!(r.as_str(), "# title\n\n## A. one\n\nFirst. Second.\n\n| a |\n|---|\n| x |\n\nLast 1.\n\n");
        assert!(r.section('A').starts_with("## A. one"));
        assert_eq!(r.section('B'), "");
    }

    #[test]
    fn spreads() {
        let s = Spread::of([3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s, Spread { min: 1.0, median: 3.0, max: 10.0 });
        assert_eq!(s.bracketed(1), "3.0 [1.0–10.0]");
        assert_eq!(Spread::of([2.0, 2.04]).bracketed(1), "2.0");
        assert_eq!(s.bold(0), "**3** (1–10)");
        assert_eq!(Spread::of([]), Spread { min: 0.0, median: 0.0, max: 0.0 });
    }
}
