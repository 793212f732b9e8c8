//! Part F: the web console's first render in headless Chromium (Debian's, driven by playwright-core), from the
//! sign-in to the first account drawn, for organizations of 1,000 and 10,000 accounts, interleaved. Each served by
//! a crossroled over an in-memory AWS that has read its organization once.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, Result};
use serde_json::Value;

use super::{
    process::output,
    report::{Report, Spread, Table},
};

/// Runs part F and writes it into `report`.
pub(super) fn run(bench: &Path, target: &Path, runs: usize, report: &mut Report) -> Result<()> {
    crate::console::install()?;
    let web = crate::console::web_dir();
    let chromium = crate::prereqs::CHROMIUM.ensure()?;
    let version =
        output(Command::new(&chromium).arg("--version")).unwrap_or_else(|_| "Chromium (unknown version)".into());
    let shots = target.join("bench/console");
    let sizes = [1_000usize, 10_000];
    let mut servers = Vec::new();
    for n in sizes {
        let mut child = Command::new(bench)
            .args(["console", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting crossroled for the console benchmark")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("its output")?).read_line(&mut line)?;
        let ready: Value = serde_json::from_str(&line).with_context(|| format!("crossrole-bench console: {line}"))?;
        servers.push((n, ready, child));
    }
    let runs = runs.max(3);
    let mut times: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut rows: BTreeMap<usize, u64> = BTreeMap::new();
    for _ in 0..runs {
        for (n, ready, _) in &servers {
            let out = output(
                Command::new("node")
                    .args(["tests/browser.mjs", "render", &n.to_string()])
                    .current_dir(&web)
                    .env("CONSOLE_URL", ready["endpoint"].as_str().unwrap_or_default())
                    .env("CONSOLE_TOKEN", ready["token"].as_str().unwrap_or_default())
                    .env("CHROMIUM", &chromium)
                    .env("SCREENSHOTS", &shots),
            )?;
            let seen: Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))?;
            times.entry(*n).or_default().push(seen["render_ms"].as_f64().unwrap_or(f64::NAN));
            rows.insert(*n, seen["dom_rows"].as_u64().unwrap_or(0));
        }
    }
    for (_, _, mut child) in servers {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    report.heading(2, "F. The web console's first render");
    report.paragraph([
        format!(
            "{version}, headless, driven by playwright-core, a 1400×900 viewport; crossroled (release) over an \
             in-memory AWS whose organization has the accounts below in OUs of at most 500, read once before the \
             runs (as a crossroled that has run keeps it)."
        ),
        "Measured from the click on \"Sign in\" to the first account drawn: the token checked, the organization \
         described, its accounts read over gRPC-Web 1,000 a page, the tree laid out and drawn."
            .to_string(),
        format!("The sizes interleaved, {runs} runs each."),
    ]);
    let mut table = Table::new(&[
        "accounts",
        "first render min / median / max (ms)",
        "rows in the page after scrolling to the end",
    ]);
    for (n, v) in &times {
        let s = Spread::of(v.iter().copied());
        table
            .row()
            .cell(n)
            .cell(format!("{:.0} / **{:.0}** / {:.0}", s.min, s.median, s.max))
            .cell(rows.get(n).copied().unwrap_or(0));
    }
    report.table(&table);
    report.paragraph([
        "Target: a 10,000-account organization's first render under 1 s.",
        "The list draws only the rows in view, so the page holds about the same number of rows at any size.",
    ]);
    Ok(())
}
