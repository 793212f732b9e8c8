//! Part C: crossroled's memory under requests it must refuse before it works on them, and under many requests at
//! once that it may serve. The first flood against the default request limit and against the old 64 MiB one; the
//! second against the default budget of request bytes and against the largest one the configuration accepts (the
//! budget effectively off). Each interleaved, a fresh crossroled each time.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde_json::Value;

use super::{
    process::{output, peak_rss, rss, token_hash, until_serving},
    report::{Report, Spread, Table},
};
use crate::emulators::{Process, free_port};

/// Requests at once in the budget flood: the 8, 32 and 64.
const AT_ONCE: [usize; 3] = [8, 32, 64];

/// The largest `request_budget_bytes` crossroled's configuration accepts: with requests of 4 MiB, 64 at once
/// hold 256 MiB, far under it, so the budget never makes one wait.
const LARGEST_BUDGET: usize = 1 << 30;

/// The memory target of the budget flood, with the default budget.
const TARGET_MIB: f64 = 200.0;

/// Runs part C and writes it into `report`.
pub(super) fn run(bench: &Path, crossroled: &Path, runs: usize, report: &mut Report) -> Result<()> {
    let dir = crate::workspace_root().join("target/bench/limits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let token = "bench-read-token";
    let servers = Servers { crossroled: crossroled.to_path_buf(), hash: token_hash(crossroled, token)?, dir };
    let runs = runs.max(3);
    report.heading(2, "C. Limits before work");
    oversized(bench, &servers, token, runs, report)?;
    budget(bench, &servers, token, runs, report)
}

/// Fresh crossroleds, each with a read token and its own data directory.
struct Servers {
    crossroled: PathBuf,
    hash: String,
    dir: PathBuf,
}

impl Servers {
    /// A crossroled named `name` with `settings` added to its configuration, serving; and its endpoint.
    fn start(&self, name: &str, settings: &[String]) -> Result<(Process, String)> {
        let port = free_port()?;
        let data = self.dir.join(format!("data-{name}"));
        let config = self.dir.join(format!("crossroled-{name}.toml"));
        let mut lines = vec![format!("listen = \"127.0.0.1:{port}\""), format!("data_dir = \"{}\"", data.display())];
        lines.extend(settings.iter().cloned());
        lines.extend([
            "[[tokens]]".to_string(),
            "name = \"bench\"".to_string(),
            format!("sha256 = \"{}\"", self.hash),
            "scope = \"read\"".to_string(),
        ]);
        std::fs::write(&config, format!("{}\n", lines.join("\n")))?;
        let mut cmd = Command::new(&self.crossroled);
        cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
        let server = Process::spawn("crossroled", cmd, self.dir.join(format!("crossroled-{name}.log")))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        until_serving(&self.crossroled, &endpoint, &server)?;
        Ok((server, endpoint))
    }
}

/// Oversized and unauthenticated requests: the default request limit against the old one.
fn oversized(bench: &Path, servers: &Servers, token: &str, runs: usize, report: &mut Report) -> Result<()> {
    let settings: [(&str, usize); 2] = [("4 MiB (the default)", 4 << 20), ("64 MiB (the limit before)", 64 << 20)];
    let mut peaks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut idles: Vec<f64> = Vec::new();
    let mut codes: Vec<String> = Vec::new();
    for run in 0..runs {
        for (name, limit) in settings {
            let (mut server, endpoint) =
                servers.start(&format!("{run}-limit-{limit}"), &[format!("max_request_bytes = {limit}")])?;
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

/// What one (budget, requests at once) saw over the runs.
#[derive(Default)]
struct Seen {
    peaks: Vec<f64>,
    settled: Vec<f64>,
    served: u64,
    served_as: BTreeMap<String, u64>,
    exhausted: u64,
    other: BTreeMap<String, u64>,
}

/// Many requests just under the request limit at once, with a read token: the default budget of request bytes
/// against the largest one (the budget effectively off).
fn budget(bench: &Path, servers: &Servers, token: &str, runs: usize, report: &mut Report) -> Result<()> {
    // The defaults of the crossroled measured, from its own crate (built with the bench).
    let defaults: Value = serde_json::from_str(&output(Command::new(bench).arg("limits-defaults"))?)?;
    let bytes = |key: &str| -> Result<usize> {
        defaults[key].as_u64().map(|b| b as usize).with_context(|| format!("limits-defaults: no {key}"))
    };
    let (max_request, default_budget) = (bytes("max_request_bytes")?, bytes("request_budget_bytes")?);
    let settings: [(String, Option<usize>); 2] = [
        (format!("{} (the default)", mib(default_budget)), None),
        (format!("{} (the largest accepted: effectively off)", mib(LARGEST_BUDGET)), Some(LARGEST_BUDGET)),
    ];
    let mut seen: BTreeMap<(usize, usize), Seen> = BTreeMap::new();
    let mut idles: Vec<f64> = Vec::new();
    let mut request_bytes = 0;
    for run in 0..runs {
        for n in AT_ONCE {
            for (at, (_, budget)) in settings.iter().enumerate() {
                let config: Vec<String> = budget.iter().map(|b| format!("request_budget_bytes = {b}")).collect();
                let (mut server, endpoint) = servers.start(&format!("{run}-budget-{at}-{n}"), &config)?;
                idles.push(rss(server.pid()));
                let mut flood = Command::new(bench);
                flood.args(["flood-budget", &endpoint, token, &n.to_string(), &max_request.to_string()]);
                let out: Value = serde_json::from_str(&output(&mut flood)?)?;
                let s = seen.entry((at, n)).or_default();
                s.settled.push(settled_rss(server.pid()));
                s.peaks.push(peak_rss(server.pid()));
                s.served += out["served"].as_u64().unwrap_or(0);
                s.exhausted += out["resource_exhausted"].as_u64().unwrap_or(0);
                for (code, count) in out["served_as"].as_object().into_iter().flatten() {
                    *s.served_as.entry(code.clone()).or_default() += count.as_u64().unwrap_or(0);
                }
                for (code, count) in out["other"].as_object().into_iter().flatten() {
                    *s.other.entry(code.clone()).or_default() += count.as_u64().unwrap_or(0);
                }
                request_bytes = out["request_bytes"].as_u64().unwrap_or(0);
                server.stop(Duration::from_secs(10));
            }
        }
    }
    report.paragraph([
        format!(
            "Then what a read token can make crossroled hold: {} `ValidateSpec` requests at once, each on its own \
             connection, each {request_bytes} bytes — just under the default `max_request_bytes` ({}; one inline \
             policy, which crossroled reads, decodes and judges).",
            AT_ONCE.map(|n| n.to_string()).join(", "),
            mib(max_request),
        ),
        format!(
            "`request_budget_bytes` at its default ({}) and at {} — the largest value the configuration accepts, \
             which these floods never fill ({} requests hold {}): the budget effectively off.",
            mib(default_budget),
            mib(LARGEST_BUDGET),
            AT_ONCE[AT_ONCE.len() - 1],
            mib(AT_ONCE[AT_ONCE.len() - 1] * request_bytes as usize),
        ),
        format!(
            "A fresh crossroled per run, the budgets and the numbers of requests interleaved, {runs} runs each; \
             idle RSS before the flood: median {:.1} MiB.",
            Spread::of(idles).median
        ),
        "Settled: RSS once the flood is over and it has not moved by 1 MiB for a second (median of the runs). \
         Served and RESOURCE_EXHAUSTED: requests over all the runs (a request waits for room in the budget up to \
         10 s before it is refused)."
            .to_string(),
        format!("Served means answered by `ValidateSpec`: {}.", served_as(&seen)),
    ]);
    let mut table = Table::new(&[
        "request_budget_bytes",
        "requests at once",
        "peak RSS min (MiB)",
        "median",
        "max",
        "settled RSS (MiB)",
        "served",
        "RESOURCE_EXHAUSTED",
    ]);
    let mut others = Vec::new();
    for (at, (name, _)) in settings.iter().enumerate() {
        for n in AT_ONCE {
            let Some(s) = seen.get(&(at, n)) else { continue };
            let peak = Spread::of(s.peaks.iter().copied());
            table
                .row()
                .cell(name)
                .cell(n)
                .cell(format!("{:.1}", peak.min))
                .cell(format!("{:.1}", peak.median))
                .cell(format!("{:.1}", peak.max))
                .cell(format!("{:.1}", Spread::of(s.settled.iter().copied()).median))
                .cell(s.served)
                .cell(s.exhausted);
            if !s.other.is_empty() {
                others.push(format!("{name}, {n} at once: {:?}.", s.other));
            }
        }
    }
    report.table(&table);
    if !others.is_empty() {
        report.paragraph(["Answered otherwise:".to_string()].into_iter().chain(others));
    }
    let worst =
        seen.iter().filter(|((at, _), _)| *at == 0).flat_map(|(_, s)| s.peaks.iter().copied()).fold(0.0, f64::max);
    let verdict = if worst < TARGET_MIB { "met" } else { "missed" };
    report.paragraph([
        format!("Target: peak RSS under {TARGET_MIB:.0} MiB at every number of requests with the default budget."),
        format!("The highest peak with it, over every run: {worst:.1} MiB ({verdict})."),
    ]);
    Ok(())
}

/// The codes the served requests were answered with, over every run and setting.
fn served_as(seen: &BTreeMap<(usize, usize), Seen>) -> String {
    let mut codes: BTreeMap<&str, u64> = BTreeMap::new();
    for (code, count) in seen.values().flat_map(|s| &s.served_as) {
        *codes.entry(code).or_default() += count;
    }
    let codes: Vec<String> = codes.iter().map(|(code, count)| format!("{count} {code}")).collect();
    if codes.is_empty() { "none was".to_string() } else { codes.join(", ") }
}

/// `bytes` as GiB or MiB, whole where they are.
fn mib(bytes: usize) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

/// Resident memory once it has stopped moving: sampled every 250 ms until five samples in a row (a second) are
/// within 1 MiB of each other, for at most 15 s.
fn settled_rss(pid: Option<u32>) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut samples = vec![rss(pid)];
    loop {
        std::thread::sleep(Duration::from_millis(250));
        samples.push(rss(pid));
        let last = &samples[samples.len().saturating_sub(5)..];
        let (lo, hi) = last.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if (last.len() == 5 && hi - lo < 1.0) || Instant::now() > deadline {
            return samples.last().copied().unwrap_or(0.0);
        }
    }
}
