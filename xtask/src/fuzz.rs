//! `cargo xtask fuzz`: crossrole's fuzz targets (fuzz/, cargo-fuzz and libFuzzer), each for a set time.
//!
//! cargo-fuzz comes from crates.io into `.cache/tools/cargo-fuzz` on first use. The targets build on the stable
//! toolchain with `--sanitizer none`: libFuzzer's coverage guidance needs no nightly, and AddressSanitizer finds
//! little in code without `unsafe`. Each target starts from its committed corpus (fuzz/corpus/<target>), which the
//! run extends; `--smoke` (the test command's) runs each briefly and leaves the corpus as it was.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cache_dir, run_in};

/// The targets, in fuzz/fuzz_targets.
const TARGETS: &[&str] = &["spec_yaml", "spec_json", "policy", "trust_eval", "links", "wire", "org_events"];

/// Pinned version of cargo-fuzz.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target: the default, and the test command's smoke.
const DEFAULT_SECONDS: u64 = 120;
const SMOKE_SECONDS: u64 = 10;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut smoke = false;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => {
                smoke = true;
                seconds = SMOKE_SECONDS;
            }
            "--time" => {
                let value = it.next().context("--time needs a number of seconds")?;
                seconds = value.parse().with_context(|| format!("--time {value}: not a number of seconds"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t),
            other => bail!("unknown argument `{other}` (targets: {})", TARGETS.join(", ")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let cargo_fuzz = cargo_fuzz()?;
    let fuzz = crate::workspace_root().join("fuzz");
    run_in(&fuzz, cargo_fuzz.to_str().unwrap_or("cargo-fuzz"), &["fuzz", "build", "--sanitizer", "none"], &[])?;
    let mut report = Vec::new();
    for target in targets {
        let corpus = fuzz.join("corpus").join(target);
        // The smoke reads the committed corpus and writes what it finds to a scratch folder (the first corpus
        // folder given receives new inputs).
        let scratch = crate::workspace_root().join("target/fuzz-smoke").join(target);
        if smoke {
            let _ = std::fs::remove_dir_all(&scratch);
            std::fs::create_dir_all(&scratch)?;
        }
        let mut corpora = vec![corpus.to_str().unwrap_or_default().to_string()];
        if smoke {
            corpora.insert(0, scratch.to_str().unwrap_or_default().to_string());
        }
        let started = Instant::now();
        eprintln!("$ cargo fuzz run {target} for {seconds}s");
        let output = Command::new(&cargo_fuzz)
            .current_dir(&fuzz)
            .args(["fuzz", "run", "--sanitizer", "none", target])
            .args(&corpora)
            .args(["--", &format!("-max_total_time={seconds}"), "-max_len=4096", "-print_final_stats=1"])
            .output()
            .context("cannot run cargo-fuzz")?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            // From the panic (or libFuzzer's own report) on: what broke, the input, and how to reproduce it.
            let from = log.find("panicked at").or_else(|| log.find("==ERROR")).unwrap_or(0);
            let report: String = log[from..].lines().take(60).collect::<Vec<_>>().join("\n");
            bail!("fuzz target {target} failed ({}):\n{report}", output.status);
        }
        let runs = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
        let found = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
        report.push(format!(
            "  {target:<11} {runs:>11} executions in {:>5.1}s, corpus {found} inputs",
            started.elapsed().as_secs_f64()
        ));
    }
    eprintln!("fuzz targets, {seconds}s each, no crash:\n{}", report.join("\n"));
    Ok(())
}

/// A number from libFuzzer's final stats.
fn stat(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok())
}

/// The cargo-fuzz binary, installed from crates.io into `.cache/tools/cargo-fuzz` if it is not there yet.
fn cargo_fuzz() -> Result<PathBuf> {
    let root = cache_dir().join("tools/cargo-fuzz");
    let bin = root.join("bin/cargo-fuzz");
    let marker = root.join(format!(".cargo-fuzz-{CARGO_FUZZ_VERSION}"));
    if bin.exists() && marker.exists() {
        return Ok(bin);
    }
    let root_arg = root.to_str().unwrap_or_default().to_string();
    run_in(
        &crate::workspace_root(),
        "cargo",
        &["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION, "--root", &root_arg],
        &[],
    )
    .context("installing cargo-fuzz from crates.io")?;
    std::fs::write(&marker, "")?;
    Ok(bin)
}
