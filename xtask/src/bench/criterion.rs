//! Part D: criterion on crossrole-core's per-account hot paths; the table is read from criterion's own output
//! (`target/criterion/<name>/new/sample.json`: the time of each sample and its iterations), never copied.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::report::{Report, Spread, Table};
use crate::util::run_in;

/// Runs part D and writes it into `report`.
pub(super) fn run(root: &Path, target: &Path, report: &mut Report) -> Result<()> {
    let (warm_up, measure) = ("1", "3");
    run_in(
        root,
        "cargo",
        &[
            "bench",
            "--locked",
            "-p",
            "crossrole-core",
            "--features",
            "fixtures",
            "--bench",
            "core",
            "--",
            "--noplot",
            "--warm-up-time",
            warm_up,
            "--measurement-time",
            measure,
        ],
        &[],
    )?;
    report.heading(2, "D. Criterion: crossrole-core's per-account hot paths");
    report.paragraph([format!(
        "criterion (release), {warm_up} s warm-up and {measure} s of samples per benchmark; time per iteration over \
         the samples."
    )]);
    let dir = target.join("criterion");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("new/sample.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut table = Table::new(&["benchmark", "samples", "min", "median", "max"]);
    for name in names {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(&name).join("new/sample.json"))?)?;
        let per_iter: Vec<f64> = sample["iters"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(sample["times"].as_array().into_iter().flatten())
            .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?.max(1.0)))
            .collect();
        let s = Spread::of(per_iter.iter().copied());
        table.row().cell(name).cell(per_iter.len()).cell(human(s.min)).cell(human(s.median)).cell(human(s.max));
    }
    report.table(&table);
    Ok(())
}

/// A time in nanoseconds, in the unit that reads best.
fn human(ns: f64) -> String {
    match ns {
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}
