//! Part B: crossroled on the emulators (LocalStack and moto) next to the same calls made directly with the AWS SDK
//! for Rust (the ceiling) and boto3 scripts (one account after another, and 16 threads), interleaved; and
//! crossroled's memory and plan latency.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::Result;
use serde_json::Value;

use super::{
    process::{output, rss, token_hash, until_serving},
    report::{Report, Spread, Table},
};
use crate::emulators::{Emulators, Mode, Process, free_port};

/// Runs part B and writes it into `report`.
pub(super) fn run(root: &Path, bench: &Path, crossroled: &Path, runs: usize, report: &mut Report) -> Result<()> {
    report.heading(2, "B. End to end on the emulators");
    let dir = crate::e2e::run_dir("bench", Mode::LocalStack);
    let mut emulators = Emulators::start(Mode::LocalStack, &dir)?;
    let seeded = emulators.seeded(&[("prod", 99), ("payments", 0), ("dev", 0), ("sandbox", 0)])?;
    let (manifest, aws_env) = (seeded.manifest, seeded.aws_env);
    let prod: Vec<String> = manifest["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["ou_path"] == "/Root/Workloads/Prod")
                .filter_map(|x| x["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let accounts_file = dir.join("accounts.txt");
    std::fs::write(&accounts_file, prod.join("\n"))?;
    let n = prod.len();

    // The ceiling: the same calls straight through the AWS SDK, at the best concurrency.
    let ceiling = |role: &str, c: usize, cleanup: bool| -> Result<f64> {
        let mut cmd = Command::new(bench);
        cmd.args(["ceiling", accounts_file.to_str().unwrap_or_default(), role, &c.to_string()])
            .envs(aws_env.iter().cloned());
        if cleanup {
            cmd.arg("--cleanup");
        }
        Ok(output(&mut cmd)?.parse().unwrap_or(0.0))
    };
    let mut best = (0usize, 0.0f64);
    let mut by_concurrency = BTreeMap::new();
    for c in [8, 16, 32, 64] {
        let rate = ceiling("CeilingProbe", c, false)?;
        ceiling("CeilingProbe", c, true)?;
        by_concurrency.insert(c, rate);
        if rate > best.1 {
            best = (c, rate);
        }
    }
    // What users do today: boto3, sequential and with 16 threads.
    let python = emulators.moto_bin.join("python");
    let script = root.join("xtask/bench/boto3_rollout.py");
    let boto3 = |threads: usize, cleanup: bool| -> Result<f64> {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args([accounts_file.to_str().unwrap_or_default(), "Boto3Role", &threads.to_string()])
            .envs(aws_env.iter().cloned());
        if cleanup {
            cmd.arg("--cleanup");
        }
        Ok(output(&mut cmd)?.parse().unwrap_or(0.0))
    };

    // crossroled, twice: on its defaults, and with an apply allowed to work from the organization its previous
    // operation read (apply_organization_max_age), which shows what walking the organization costs each apply.
    let token = "bench-token";
    let hash = token_hash(crossroled, token)?;
    let instance = |name: &str, aws: &str| -> Result<(PathBuf, String)> {
        let port = free_port()?;
        let config = dir.join(format!("crossroled-{name}.toml"));
        let data = dir.join(format!("data-{name}"));
        let lines = [
            format!("listen = \"127.0.0.1:{port}\""),
            format!("data_dir = \"{}\"", data.display()),
            "[[tokens]]".to_string(),
            "name = \"bench\"".to_string(),
            format!("sha256 = \"{hash}\""),
            "scope = \"admin\"".to_string(),
            "[aws]".to_string(),
        ];
        std::fs::write(&config, format!("{}\n{aws}", lines.join("\n")))?;
        Ok((config, format!("http://127.0.0.1:{port}")))
    };
    let (config, endpoint) = instance("defaults", "")?;
    let (warm_config, warm_endpoint) = instance("warm", "apply_organization_max_age = \"10m\"\n")?;
    let start_server = |config: &Path, endpoint: &str| -> Result<Process> {
        let mut server_cmd = Command::new(crossroled);
        server_cmd.arg("--config").arg(config).env("RUST_LOG", "warn").envs(aws_env.iter().cloned());
        let log = config.with_extension("log");
        let server = Process::spawn("crossroled", server_cmd, log)?;
        until_serving(crossroled, endpoint, &server)?;
        Ok(server)
    };
    let mut warm_server = start_server(&warm_config, &warm_endpoint)?;
    let mut server = start_server(&config, &endpoint)?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = rss(server.pid());
    let security = manifest["security_account"].as_str().unwrap_or_default();
    // The spec, as data: the example's role and grant, the Prod OU, crossroled's defaults, verify off.
    let spec = serde_json::json!({
        "name": "bench-audit",
        "role": {
            "name": "BenchAudit",
            "path": "/crossrole/",
            "description": "Read-only audit access for the security team",
            "max_session_duration": "1h",
            "trust": {"account_ids": [security], "external_id": "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"},
            "managed_policy_arns": ["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "inline_policies": {"deny-secrets": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}},
            "tags": {"team": "security"},
        },
        "targets": {"organizational_unit_paths": ["/Root/Workloads/Prod"]},
        "grant": {"account_id": security, "user_names": ["alice"]},
        "rollout": {"failure_tolerance": "10%", "verify": {"enabled": false}},
    });
    let spec_file = dir.join("bench-spec.json");
    std::fs::write(&spec_file, serde_json::to_string_pretty(&spec)?)?;
    let drive_at = |endpoint: &str, cmd: &str| -> Result<Value> {
        Ok(serde_json::from_str(&output(Command::new(bench).args([
            cmd,
            endpoint,
            token,
            spec_file.to_str().unwrap_or_default(),
        ]))?)?)
    };
    let drive = |cmd: &str| drive_at(&endpoint, cmd);
    let rate = |a: &Value| a["accounts"].as_f64().unwrap_or(0.0) / a["seconds"].as_f64().unwrap_or(1.0);
    // Both instances read the whole organization once before the runs (a destroy with nothing to remove), as any
    // crossroled that has run before has it in its journal; each apply then reads afresh what it needs (defaults)
    // or works from that read (the other).
    drive_at(&warm_endpoint, "destroy")?;
    drive("destroy")?;

    // The contenders, interleaved (A B C D E, A B C D E, …), each cleaned up after itself.
    let (mut direct, mut ours, mut warm, mut seq, mut pooled) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Where crossroled's time goes: until its targets are resolved (reading the organization), and in all.
    let (mut resolving, mut totals) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for _ in 0..runs {
        direct.push(ceiling("CeilingRole", best.0, false)?);
        ceiling("CeilingRole", best.0, true)?;
        let run = drive("apply")?;
        ours.push(rate(&run));
        resolving.0.push(run["resolved_seconds"].as_f64().unwrap_or(0.0));
        totals.0.push(run["seconds"].as_f64().unwrap_or(0.0));
        drive("destroy")?;
        let run = drive_at(&warm_endpoint, "apply")?;
        warm.push(rate(&run));
        resolving.1.push(run["resolved_seconds"].as_f64().unwrap_or(0.0));
        totals.1.push(run["seconds"].as_f64().unwrap_or(0.0));
        drive_at(&warm_endpoint, "destroy")?;
        seq.push(boto3(1, false)?);
        boto3(16, true)?;
        pooled.push(boto3(16, false)?);
        boto3(16, true)?;
    }
    // The ceiling is the best direct run of this run.
    let ceiling_rate = direct.iter().copied().fold(0.0, f64::max);
    warm_server.stop(Duration::from_secs(15));
    drive("apply")?;
    // Restarted, so that the first plan is cold (no sessions; the organization from the journal).
    server.stop(Duration::from_secs(15));
    let mut server = start_server(&config, &endpoint)?;
    let latency: Value = serde_json::from_str(&output(Command::new(bench).args([
        "plan-latency",
        &endpoint,
        token,
        spec_file.to_str().unwrap_or_default(),
        "50",
    ]))?)?;
    let busy_rss = rss(server.pid());
    server.stop(Duration::from_secs(15));
    emulators.stop();

    report.paragraph([
        format!(
            "LocalStack {} (IAM, STS) and moto (Organizations) on this machine; {n} accounts; per account: assume \
             the bootstrap role, create the role, attach 2 managed policies, put an inline policy (crossrole also \
             keeps the trusted side's policy, and reads each role before it writes: one GetRole where there is \
             none yet, as after each clean-up here).",
            "4.13.1"
        ),
        format!("The contenders ran interleaved, {runs} runs each, each cleaning up after itself."),
        format!(
            "crossroled ran with its defaults (automatic concurrency, default rates; every apply reads afresh the \
             part of the organization it selects — the selected OU's units and accounts and its ancestors' \
             listings, a handful of calls — and starts on each account as its page of accounts is listed; before \
             the runs each crossroled read the whole organization once, about 20 calls at Organizations' 8/s, as \
             one that has run before has it in its journal), and again with `apply_organization_max_age = \"10m\"` \
             (the organization as last read); verify off (the others do not verify); the direct SDK at the \
             probe's best concurrency ({}).",
            best.0
        ),
        "The ceiling is the best direct run.".to_string(),
    ]);
    let mut table =
        Table::new(&["who", "accounts/s min", "median", "max", "median vs the ceiling", "vs boto3 sequential"]);
    let seq_median = Spread::of(seq.iter().copied()).median;
    for (who, rates) in [
        (format!("AWS SDK for Rust directly, {} at once", best.0), &direct),
        ("crossroled (defaults: every apply reads where the accounts are now)".to_string(), &ours),
        ("crossroled, apply_organization_max_age 10m (the organization as last read)".to_string(), &warm),
        ("boto3, one account after another".to_string(), &seq),
        ("boto3, 16 threads".to_string(), &pooled),
    ] {
        let s = Spread::of(rates.iter().copied());
        table
            .row()
            .cell(who)
            .cell(format!("{:.1}", s.min))
            .cell(format!("{:.1}", s.median))
            .cell(format!("{:.1}", s.max))
            .cell(format!("{:.2}", s.median / ceiling_rate.max(1e-9)))
            .cell(format!("{:.1}×", s.median / seq_median.max(1e-9)));
    }
    report.table(&table);
    let seconds = |v: &[f64]| v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ");
    report.paragraph([format!(
        "Where crossroled's time went, run by run (seconds until all its targets were known — its first accounts \
         are at work before that — of the apply's seconds): defaults {} of {}; apply_organization_max_age 10m {} of \
         {}.",
        seconds(&resolving.0),
        seconds(&totals.0),
        seconds(&resolving.1),
        seconds(&totals.1)
    )]);
    let probe: Vec<String> = by_concurrency.iter().map(|(c, r)| format!("{c}: {r:.1}")).collect();
    report.paragraph([format!("Ceiling probe (accounts/s by concurrency): {}.", probe.join(", "))]);
    report.paragraph([format!(
        "crossroled: idle RSS {idle_rss:.1} MiB (target < 50), {busy_rss:.1} MiB after the runs; PlanAccess over \
         the {n}-account OU, all in sync, after a restart: the first (cold: a session assumed in each account, the \
         organization read from the journal) {:.0} ms; the next {} (warm: the sessions kept) p50 {:.0} ms, p99 \
         {:.0} ms.",
        latency["cold_ms"].as_f64().unwrap_or(0.0),
        latency["n"],
        latency["p50_ms"].as_f64().unwrap_or(0.0),
        latency["p99_ms"].as_f64().unwrap_or(0.0),
    )]);
    report.paragraph(["Targets: crossroled ≥ 0.9× the ceiling and ≥ 2× boto3 with 16 threads."]);
    report.paragraph(["Reproduce: `cargo xtask bench` (`--quick`: one run, part A without 10,000)."]);
    Ok(())
}
