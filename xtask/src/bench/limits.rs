//! Part C: crossroled's memory under requests it must refuse before it works on them. The same flood against the
//! default request limit and against the old 64 MiB one, interleaved, a fresh crossroled each time.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use anyhow::Result;
use serde_json::Value;

use super::{
    process::{output, peak_rss, rss, token_hash, until_serving},
    report::{Report, Spread, Table},
};
use crate::emulators::{Process, free_port};

/// Runs part C and writes it into `report`.
pub(super) fn run(bench: &Path, crossroled: &Path, runs: usize, report: &mut Report) -> Result<()> {
    let dir = crate::workspace_root().join("target/bench/limits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let token = "bench-read-token";
    let hash = token_hash(crossroled, token)?;
    let settings: [(&str, usize); 2] = [("4 MiB (the default)", 4 << 20), ("64 MiB (the limit before)", 64 << 20)];
    let mut peaks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut idles: Vec<f64> = Vec::new();
    let mut codes: Vec<String> = Vec::new();
    let runs = runs.max(3);
    for run in 0..runs {
        for (name, limit) in settings {
            let port = free_port()?;
            let data = dir.join(format!("data-{run}-{limit}"));
            let config = dir.join(format!("crossroled-{limit}.toml"));
            let lines = [
                format!("listen = \"127.0.0.1:{port}\""),
                format!("data_dir = \"{}\"", data.display()),
                format!("max_request_bytes = {limit}"),
                "[[tokens]]".to_string(),
                "name = \"bench\"".to_string(),
                format!("sha256 = \"{hash}\""),
                "scope = \"read\"".to_string(),
            ];
            std::fs::write(&config, format!("{}\n", lines.join("\n")))?;
            let mut cmd = Command::new(crossroled);
            cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
            let mut server = Process::spawn("crossroled", cmd, dir.join(format!("crossroled-{run}-{limit}.log")))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            until_serving(crossroled, &endpoint, &server)?;
            idles.push(rss(server.pid()));
            let seen: Value = serde_json::from_str(&output(Command::new(bench).args(["flood", &endpoint, token]))?)?;
            std::thread::sleep(Duration::from_millis(500));
            peaks.entry(name).or_default().push(peak_rss(server.pid()));
            if run == 0 {
                codes.push(format!(
                    "{name}: unauthenticated {}, authenticated {}.",
                    seen["unauthenticated"], seen["authenticated"]
                ));
            }
            server.stop(Duration::from_secs(10));
        }
    }
    report.heading(2, "C. Limits before work");
    report.paragraph([
        "crossroled (release) receives, at once, 8 unauthenticated requests of 60 MB, then 4 `ValidateSpec` \
         requests of 27 MB (one inline policy of 27 MB) with a read token."
            .to_string(),
        format!("A fresh crossroled per run, the two request limits interleaved, {runs} runs each."),
        format!("Idle RSS before the flood: median {:.1} MiB.", Spread::of(idles).median),
    ]);
    let mut table = Table::new(&["max_request_bytes", "peak RSS min (MiB)", "median", "max"]);
    for (name, _) in settings {
        let s = Spread::of(peaks.get(name).into_iter().flatten().copied());
        table
            .row()
            .cell(name)
            .cell(format!("{:.1}", s.min))
            .cell(format!("{:.1}", s.median))
            .cell(format!("{:.1}", s.max));
    }
    report.table(&table);
    report.paragraph(["Status codes seen (first run):".to_string()].into_iter().chain(codes));
    report.paragraph(["Target: peak RSS under 100 MiB with the default limit."]);
    Ok(())
}
