//! Part E: the journal under the engine's write pattern, SQLite against PostgreSQL (alone, and shared by three
//! replicas), interleaved: 100 operations at once of 100 accounts each, and one operation of 10,000 accounts.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::Result;
use serde_json::Value;

use super::{
    process::output,
    report::{Report, Spread, Table},
};

/// Runs part E and writes it into `report`.
pub(super) fn run(bench: &Path, runs: usize, report: &mut Report) -> Result<()> {
    let pg = crate::postgres::Postgres::start_with(true)?;
    let shapes: [(usize, u32); 2] = [(100, 100), (1, 10_000)];
    let backends = [
        ("SQLite (a file, WAL)", "sqlite".to_string()),
        ("PostgreSQL 15 (local, fsync on)", pg.url.clone()),
        ("PostgreSQL 15, shared by 3 replicas", format!("shared:{}", pg.url)),
    ];
    let runs = runs.max(3);
    let mut results: BTreeMap<(usize, usize), Vec<Value>> = BTreeMap::new();
    for _ in 0..runs {
        for (s, (ops, accounts)) in shapes.iter().enumerate() {
            for (b, (_, target)) in backends.iter().enumerate() {
                let out =
                    output(Command::new(bench).args(["journal", target, &ops.to_string(), &accounts.to_string()]))?;
                results.entry((s, b)).or_default().push(serde_json::from_str(&out)?);
            }
        }
    }
    drop(pg);
    report.heading(2, "E. The journal under the engine's writes");
    report.paragraph([
        "Each operation's event writer persists, per account, one batch (the account's row and 4 events of 300 \
         bytes) and the operation's end with its last event; operations run at once."
            .to_string(),
        format!("The backends interleaved, {runs} runs each (min–max of the runs' figures; median in bold)."),
        "PostgreSQL runs on this machine, started by the bench, with its defaults (fsync on); \"shared by 3 \
         replicas\": three replicas sharing its work (`journal_shared`), the operations spread over them, each \
         write checking in its transaction that its replica owns the operation and is alive."
            .to_string(),
    ]);
    let mut table = Table::new(&[
        "backend",
        "operations × accounts",
        "write p50 (ms)",
        "write p99 (ms)",
        "write max (ms)",
        "events/s",
    ]);
    for (s, (ops, accounts)) in shapes.iter().enumerate() {
        for (b, (name, _)) in backends.iter().enumerate() {
            let v = results.get(&(s, b)).map(Vec::as_slice).unwrap_or(&[]);
            let cell = |key: &str, digits: usize| Spread::of(v.iter().filter_map(|o| o[key].as_f64())).bold(digits);
            table
                .row()
                .cell(name)
                .cell(format!("{ops} × {accounts}"))
                .cell(cell("p50_ms", 2))
                .cell(cell("p99_ms", 2))
                .cell(cell("max_ms", 1))
                .cell(cell("events_per_s", 0));
        }
    }
    report.table(&table);
    Ok(())
}
