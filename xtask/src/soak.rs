//! `cargo xtask soak [--minutes N] [--emulator localstack|moto] [--quiet-retention D]`: crossroled keeping a binding
//! true on the emulators for a while (20 minutes by default; not part of the test command), with drift made out of
//! band every few minutes for it to repair. Every 30 seconds it samples crossroled's resident memory, its open file
//! descriptors, the journal's size on disk and the operations the journal holds; at the end it reports their
//! slopes over the second half of the run (after warm-up) and writes the samples to target/soak/report.md.
//!
//! The binding reconciles every 10 seconds, a hundred times crossrole's default, so that 20 minutes hold about as
//! many reconciles as a day and a half at the default interval. Retention is set short (`--quiet-retention`, 3
//! minutes by default) so that the run shows where the journal levels off.

use std::{
    fmt::Write as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    e2e::{build_binaries, install_interrupt_handler, mode_arg, run_dir},
    emulators::Emulators,
    served::Served,
};

/// One sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    minutes: f64,
    rss_kib: u64,
    fds: u64,
    journal_bytes: u64,
    operations: u64,
}

/// Deletes the role's inline policy in one account: drift for the binding to repair.
const DRIFT: &str = r#"
import sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2],
                   aws_secret_access_key="test")
iam.delete_role_policy(RoleName="SecurityAudit", PolicyName="deny-data-access")
"#;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let minutes: f64 = match value("--minutes") {
        Some(m) => m.parse().with_context(|| format!("--minutes {m}: not a number"))?,
        None => 20.0,
    };
    let quiet_retention = value("--quiet-retention").unwrap_or_else(|| "3m".to_string());
    let mode = mode_arg(args)?;
    install_interrupt_handler();
    let (crossroled, crossrole) = build_binaries()?;
    let dir = run_dir("soak", mode);
    let mut emulators = Emulators::start(mode, &dir)?;
    let seeded = emulators.seeded(&[])?;
    let victims: Vec<String> = seeded.manifest["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["ou_path"].as_str().is_some_and(|p| p.starts_with("/Root/Workloads/Prod")))
                .filter(|a| a["state"] == "ACTIVE")
                .filter_map(|a| a["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if victims.is_empty() {
        bail!("the seeded organization has no account under /Root/Workloads/Prod");
    }

    let spec = seeded.example("security-audit.yaml", &dir)?;
    let extra = format!(
        "reconcile_tick = \"2s\"\n\n[retention]\noperations = \"30d\"\nquiet_reconciles = \"{quiet_retention}\"\n"
    );
    let mut served = Served::start(&dir, &crossroled, &crossrole, seeded.aws_env.clone(), &extra)?;
    let pid = served.server.pid().context("crossroled has no pid")?;
    let spec_arg = spec.display().to_string();
    served.output(&["bindings", "apply", "-f", &spec_arg, "--every", "10s"])?;
    eprintln!(
        "soak: crossroled (pid {pid}) keeps {spec_arg} true, reconciling every 10s, for {minutes} minutes; quiet \
         reconciles kept {quiet_retention}; logs in {}",
        dir.display()
    );

    // The moto venv (boto3) that the emulators run from.
    let python = crate::emulators::install(mode)?.1.join("python");
    let iam = emulators.iam.clone();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    let mut samples = Vec::new();
    let mut drifts = 0;
    let mut next_drift = started + Duration::from_secs(120);
    let mut next_sample = started;
    while Instant::now() < end {
        if let Some(status) = served.server.exited() {
            bail!("crossroled exited during the soak ({status}); see {}", served.server.log.display());
        }
        if Instant::now() >= next_drift {
            let victim = &victims[drifts % victims.len()];
            let ok = Command::new(&python).args(["-c", DRIFT, &iam, victim]).status().is_ok_and(|s| s.success());
            if ok {
                drifts += 1;
            }
            next_drift += Duration::from_secs(180);
        }
        if Instant::now() >= next_sample {
            let s = sample(pid, &dir.join("data"), &served, started)?;
            eprintln!(
                "  {:>5.1} min  rss {:>7} KiB  fds {:>4}  journal {:>9} bytes  {:>5} operations",
                s.minutes, s.rss_kib, s.fds, s.journal_bytes, s.operations
            );
            samples.push(s);
            next_sample += Duration::from_secs(30);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    samples.push(sample(pid, &dir.join("data"), &served, started)?);
    let status = served.output(&["bindings", "status", "security-audit"]).unwrap_or_default();
    served.server.stop(Duration::from_secs(15));
    emulators.stop();
    let report = report(&samples, minutes, &quiet_retention, drifts, mode.name());
    let out = crate::workspace_root().join("target/soak");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &report)?;
    println!("{report}\nthe binding at the end:\n{status}");
    Ok(())
}

fn sample(pid: u32, data: &Path, served: &Served, started: Instant) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("crossroled's /proc status")?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
    let journal_bytes = std::fs::read_dir(data)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal.db"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum();
    let listed = served.output(&["ops", "list", "--limit", "1000", "-o", "json"])?;
    let operations = serde_json::from_str::<serde_json::Value>(&listed)
        .ok()
        .and_then(|v| {
            v.as_array().map(|a| a.len() as u64).or_else(|| v["operations"].as_array().map(|a| a.len() as u64))
        })
        .unwrap_or(0);
    Ok(Sample { minutes: started.elapsed().as_secs_f64() / 60.0, rss_kib, fds, journal_bytes, operations })
}

/// Least-squares slope of `y` over minutes.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let num: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

fn report(samples: &[Sample], minutes: f64, quiet_retention: &str, drifts: usize, emulator: &str) -> String {
    let half: Vec<&Sample> = samples.iter().filter(|s| s.minutes >= minutes / 2.0).collect();
    let of = |f: fn(&Sample) -> f64| slope(&half.iter().map(|s| (s.minutes, f(s))).collect::<Vec<_>>());
    let (first, last) = (samples.first().copied(), samples.last().copied());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Soak: {minutes} minutes on the emulators ({emulator})\n\nOne binding (examples/security-audit.yaml on the \
         seeded organization) reconciling every 10s; drift made out of band {drifts} times (an inline policy deleted); \
         retention: quiet reconciles {quiet_retention}, operations 30d. The journal's size includes SQLite's \
         write-ahead log. Slopes are least squares over the second half of the run.\n"
    );
    let _ = writeln!(out, "| | first | last | max | slope, 2nd half |\n|---|---:|---:|---:|---:|");
    type Field = (&'static str, fn(&Sample) -> f64, &'static str);
    let fields: [Field; 4] = [
        ("RSS (KiB)", |s| s.rss_kib as f64, "KiB/min"),
        ("open file descriptors", |s| s.fds as f64, "/min"),
        ("journal on disk (bytes)", |s| s.journal_bytes as f64, "bytes/min"),
        ("operations in the journal", |s| s.operations as f64, "/min"),
    ];
    for (name, f, unit) in fields {
        let max = samples.iter().map(f).fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {name} | {:.0} | {:.0} | {max:.0} | {:+.1} {unit} |",
            first.map(|s| f(&s)).unwrap_or(0.0),
            last.map(|s| f(&s)).unwrap_or(0.0),
            of(f)
        );
    }
    let _ = writeln!(out, "\n| minute | RSS KiB | fds | journal bytes | operations |\n|---:|---:|---:|---:|---:|");
    for s in samples {
        let _ =
            writeln!(out, "| {:.1} | {} | {} | {} | {} |", s.minutes, s.rss_kib, s.fds, s.journal_bytes, s.operations);
    }
    out
}
