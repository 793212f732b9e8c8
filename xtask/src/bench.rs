//! `cargo xtask bench [--quick]`: how close a rollout comes to the limit AWS sets, side by side with what users do
//! today. Part A runs the engine against a model of AWS; part B runs crossroled on the emulators next to the same
//! calls made directly with the AWS SDK (the ceiling) and a boto3 script (sequential and with 16 threads). Prints a
//! markdown table and writes it to target/bench/.

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{
    emulators::{Emulators, Mode, Process, free_port},
    util::run_in,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().context("running a benchmark step")?;
    if !out.status.success() {
        bail!("benchmark step failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok())))
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem:.0} GiB memory")
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let only = |flag: &str| args.iter().any(|a| a == flag);
    let any_only = only("--only-e2e")
        || only("--only-model")
        || only("--only-limits")
        || only("--only-criterion")
        || only("--only-journal")
        || only("--only-console");
    let part_a = !any_only || only("--only-model");
    let part_b = !any_only || only("--only-e2e");
    let part_c = !any_only || only("--only-limits");
    crate::e2e::install_interrupt_handler();
    let root = crate::workspace_root();
    run_in(
        &root,
        "cargo",
        &["build", "--release", "--locked", "-p", "crossrole-bench", "-p", "crossrole-server", "-p", "crossrole-cli"],
        &[],
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bench = target.join("release/crossrole-bench");
    let crossroled = target.join("release/crossroled");
    // `--runs N`: more runs per figure, where the emulators' noise needs them.
    let asked = args.iter().position(|a| a == "--runs").and_then(|i| args.get(i + 1)).map(|n| n.parse::<usize>());
    let runs = match asked {
        Some(Ok(n)) if n > 0 => n,
        Some(_) => anyhow::bail!("--runs takes a number of runs, 1 or more"),
        None if quick => 1,
        None => 3,
    };
    let mut md = String::new();
    md.push_str(&format!(
        "# crossrole benchmarks\n\nMachine: {}. Runs per figure: {runs} (the median is shown).\n\n",
        machine()
    ));

    // Each part is written down as soon as it is measured, so that a later part's failure loses nothing.
    let write_docs = args.iter().any(|a| a == "--write-docs");
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let done = |md: &str| -> Result<()> {
        std::fs::write(out_dir.join("latest.md"), md)?;
        if write_docs { crate::bench::write_docs(&root.join("docs/benchmarks.md"), md) } else { Ok(()) }
    };

    // ---- Part A ----
    if part_a {
        part_a_run(&bench, quick, runs, &mut md)?;
        println!("{md}");
        done(&md)?;
    }

    // ---- Part B ----
    if part_b {
        part_b_run(&root, &bench, &crossroled, runs, &mut md)?;
        done(&md)?;
    }

    // ---- Part C ----
    if part_c {
        part_c_run(&bench, &crossroled, runs, &mut md)?;
        done(&md)?;
    }

    // ---- Part E ----
    if !any_only || only("--only-journal") {
        part_e_run(&bench, runs, &mut md)?;
        done(&md)?;
    }

    // ---- Part F ----
    if !any_only || only("--only-console") {
        part_f_run(&bench, &target, runs, &mut md)?;
        done(&md)?;
    }

    // ---- Part D ----
    if !any_only || only("--only-criterion") {
        part_d_run(&root, &target, &mut md)?;
        done(&md)?;
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let file = out_dir.join(format!("bench-{stamp}.md"));
    std::fs::write(&file, &md)?;
    eprintln!("written to {} (and target/bench/latest.md)", file.display());
    Ok(())
}

/// Replaces, in the docs, each part (`## A.` to `## E.`) this run measured with what it measured, so that
/// every figure there is one the bench wrote.
fn write_docs(docs: &std::path::Path, md: &str) -> Result<()> {
    let mut text = std::fs::read_to_string(docs).with_context(|| format!("reading {}", docs.display()))?;
    for part in ["## A.", "## B.", "## C.", "## D.", "## E.", "## F."] {
        let Some(start) = md.find(part) else { continue };
        let end = md[start + 3..].find("\n## ").map(|e| start + 3 + e + 1).unwrap_or(md.len());
        let section = &md[start..end];
        match text.find(part) {
            Some(at) => {
                let until = text[at + 3..].find("\n## ").map(|e| at + 3 + e + 1).unwrap_or(text.len());
                text.replace_range(at..until, section);
            }
            None => {
                text.push('\n');
                text.push_str(section);
            }
        }
    }
    // The machine line says where the parts just written ran (a partial run rewrites only its parts: run the
    // others on the same machine to keep the document one machine's).
    if let (Some(machine), Some(at)) = (md.lines().find(|l| l.starts_with("Machine: ")), text.find("\nMachine: ")) {
        let until = text[at + 1..].find('\n').map(|e| at + 1 + e).unwrap_or(text.len());
        text.replace_range(at + 1..until, machine);
    }
    std::fs::write(docs, text)?;
    eprintln!("updated {}", docs.display());
    Ok(())
}

/// One model run's figures, by name.
fn model(bench: &std::path::Path, accounts: usize, options: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(bench);
    cmd.args(["model", &accounts.to_string()]).args(options);
    Ok(serde_json::from_str(&output(&mut cmd)?)?)
}

/// `median [min–max]` of `key` over `runs`, with `digits` decimals.
fn spread(runs: &[Value], key: &str, digits: usize) -> String {
    let mut v: Vec<f64> = runs.iter().map(|o| o[key].as_f64().unwrap_or(0.0)).collect();
    v.sort_by(f64::total_cmp);
    let (min, max) = (v.first().copied().unwrap_or(0.0), v.last().copied().unwrap_or(0.0));
    let med = median(v);
    if (max - min).abs() < 10f64.powi(-(digits as i32)) {
        format!("{med:.digits$}")
    } else {
        format!("{med:.digits$} [{min:.digits$}–{max:.digits$}]")
    }
}

fn part_a_run(bench: &std::path::Path, quick: bool, runs: usize, md: &mut String) -> Result<()> {
    md.push_str("## A. The engine against a model of AWS\n\n");
    md.push_str(
        "The model keeps AWS's quotas where AWS keeps them: IAM per account (each target account its own bucket), \
         STS per calling account (crossroled's AssumeRoles against its account, verify's against the trusted \
         account, each session's GetCallerIdentity against its target), Organizations per organization; over a \
         quota AWS answers Throttling. Quotas: Organizations 10/s (AWS's documented request rate for most \
         Organizations APIs), IAM 10/s per account (IAM does not publish its rate; 10/s is what stays clear of it \
         in practice), STS 100/s per caller (AWS's AssumeRole quota is 600/s per account and region; 100/s is the \
         conservative share the issue asked for; 600/s is a sensitivity row). Latency per call: Organizations \
         100±50 ms, IAM 80±40 ms, STS 40±20 ms. crossrole is configured at 98% of the quotas, as an operator would \
         configure it, and its concurrency is its default (automatic, from the rates and the measured time per \
         account). Verify on. The spec: a role with 2 managed policies, an inline policy and a grant to a user; \
         the organization: OUs of 500 accounts. Wall time is virtual (tokio's paused clock); CPU and memory are \
         real (the whole process, the model of AWS included).\n\n\
         The floor is computed from the model, not from crossrole's settings: discovery (its Organizations calls \
         at the quota, or the chain of pages that wait for each other, whichever is longer) and the busiest \
         bucket every account shares (AssumeRoles at the STS quota, its burst going at once) overlap — an account \
         can be worked on once its page of accounts is listed, and the two are different quotas — so the longer \
         of the two counts; then the last account's calls in sequence at their mean latency, then the trusted \
         side's. *Cold*: an apply on its own \
         (the organization walked, every account assumed into). *Warm*: the apply right after a plan, from the \
         plan's tree and credentials (crossroled keeps credentials across operations; the operator lets an apply \
         use a tree as old as its plan with `apply_organization_max_age`, 0 by default).\n\n",
    );
    md.push_str(
        "| accounts | cold wall (s) | cold floor (s) | cold wall/floor | warm wall (s) | warm floor (s) | warm wall/floor | \
         plan (s) | most in flight | calls per account (IAM, STS, Orgs) | re-apply IAM writes | re-apply \
         calls/account | throttled | CPU ms/account | peak RSS (MiB) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let sizes: &[usize] = if quick { &[100, 1000] } else { &[100, 1000, 10_000] };
    let row = |label: String, outcomes: &[Value], md: &mut String| {
        let o = &outcomes[0];
        let svc = |s: &str| o["by_service_per_account"][s].as_f64().unwrap_or(0.0);
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2}, {:.2}, {:.3} | {} | {} | {} | {} | {} |\n",
            spread(outcomes, "wall_s", 1),
            spread(outcomes, "floor_s", 1),
            spread(outcomes, "ratio", 3),
            spread(outcomes, "warm_wall_s", 1),
            spread(outcomes, "warm_floor_s", 1),
            spread(outcomes, "warm_ratio", 3),
            spread(outcomes, "plan_wall_s", 1),
            o["max_in_flight"],
            svc("iam"),
            svc("sts"),
            svc("organizations"),
            o["reapply_iam_writes"],
            spread(outcomes, "reapply_calls_per_account", 2),
            spread(outcomes, "throttled", 0),
            spread(outcomes, "cpu_ms_per_account", 2),
            spread(outcomes, "peak_rss_mib", 0),
        ));
    };
    for &n in sizes {
        let outcomes: Vec<Value> = (0..runs).map(|_| model(bench, n, &[])).collect::<Result<_>>()?;
        row(n.to_string(), &outcomes, md);
    }
    // Sensitivity to AWS's quotas, and the concurrency crossrole had before it worked it out (10), interleaved.
    let variants: &[(&str, &[&str])] = &[
        ("1000, STS 600/s", &["--sts", "600"]),
        ("1000, IAM 20/s per account", &["--iam", "20"]),
        ("1000, STS 600/s, IAM 20/s", &["--sts", "600", "--iam", "20"]),
        ("1000, max_concurrency 10 (the old default)", &["--concurrency", "10"]),
    ];
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); variants.len()];
    for _ in 0..runs {
        for (i, (_, options)) in variants.iter().enumerate() {
            results[i].push(model(bench, 1000, options)?);
        }
    }
    for ((label, _), outcomes) in variants.iter().zip(&results) {
        row(label.to_string(), outcomes, md);
    }
    md.push_str(
        "\nFigures are the median of the runs, [min–max] where they differ (virtual times repeat exactly: the \
         model's jitter is seeded). Targets: wall/floor ≤ 1.10, warm, at 100, 1,000 and 10,000 accounts; a \
         10,000-account apply in ≤ 150 s of model time; zero IAM writes on re-apply; peak RSS under 200 MiB at \
         10,000 accounts.\n\n",
    );
    Ok(())
}

fn part_b_run(
    root: &std::path::Path,
    bench: &std::path::Path,
    crossroled: &std::path::Path,
    runs: usize,
    md: &mut String,
) -> Result<()> {
    md.push_str("## B. End to end on the emulators\n\n");
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
    let mut hash =
        Command::new(crossroled).args(["token", "hash"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    use std::io::Write;
    hash.stdin.take().context("stdin")?.write_all(token.as_bytes())?;
    let hash = String::from_utf8(hash.wait_with_output()?.stdout)?.trim().to_string();
    let instance = |name: &str, aws: &str| -> Result<(std::path::PathBuf, String)> {
        let port = free_port()?;
        let config = dir.join(format!("crossroled-{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[[tokens]]\nname = \"bench\"\nsha256 = \"{hash}\"\nscope = \"admin\"\n[aws]\n{aws}",
                dir.join(format!("data-{name}")).display()
            ),
        )?;
        Ok((config, format!("http://127.0.0.1:{port}")))
    };
    let (config, endpoint) = instance("defaults", "")?;
    let (warm_config, warm_endpoint) = instance("warm", "apply_organization_max_age = \"10m\"\n")?;
    let start_server = |config: &std::path::Path, endpoint: &str| -> Result<Process> {
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
    let idle_rss = crossrole_rss(server.pid());
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
    let busy_rss = crossrole_rss(server.pid());
    server.stop(Duration::from_secs(15));
    emulators.stop();

    md.push_str(&format!(
        "LocalStack {} (IAM, STS) and moto (Organizations) on this machine; {n} accounts; per account: assume the bootstrap role, create the role, attach 2 managed policies, put an inline policy (crossrole also keeps the trusted side's policy; it creates a role without reading first where its journal does not have the spec applied, as after each clean-up here). The contenders ran interleaved, {runs} runs each, each cleaning up after itself. crossroled ran with its defaults (automatic concurrency, default rates; every apply reads afresh the part of the organization it selects — the selected OU's units and accounts and its ancestors' listings, a handful of calls — and starts on each account as its page of accounts is listed; before the runs each crossroled read the whole organization once, about 20 calls at Organizations' 8/s, as one that has run before has it in its journal), and again with `apply_organization_max_age = \"10m\"` (the organization as last read); verify off (the others do not verify); the direct SDK at the probe's best concurrency ({}). The ceiling is the best direct run.\n\n",
        "4.13.1", best.0
    ));
    md.push_str("| who | accounts/s min | median | max | median vs the ceiling | vs boto3 sequential |\n|---|---|---|---|---|---|\n");
    let seq_median = median(seq.clone());
    for (who, rates) in [
        (format!("AWS SDK for Rust directly, {} at once", best.0), &direct),
        ("crossroled (defaults: every apply reads where the accounts are now)".to_string(), &ours),
        ("crossroled, apply_organization_max_age 10m (the organization as last read)".to_string(), &warm),
        ("boto3, one account after another".to_string(), &seq),
        ("boto3, 16 threads".to_string(), &pooled),
    ] {
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        let mid = median(rates.clone());
        md.push_str(&format!(
            "| {who} | {lo:.1} | {mid:.1} | {hi:.1} | {:.2} | {:.1}× |\n",
            mid / ceiling_rate.max(1e-9),
            mid / seq_median.max(1e-9)
        ));
    }
    let seconds = |v: &[f64]| v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ");
    md.push_str(&format!(
        "\nWhere crossroled's time went, run by run (seconds until all its targets were known — its first accounts are at work before that — of the apply's seconds): defaults {} of {}; apply_organization_max_age 10m {} of {}.\n",
        seconds(&resolving.0),
        seconds(&totals.0),
        seconds(&resolving.1),
        seconds(&totals.1)
    ));
    md.push_str(&format!(
        "\nCeiling probe (accounts/s by concurrency): {}.\n\ncrossroled: idle RSS {idle_rss:.1} MiB (target < 50), {busy_rss:.1} MiB after the runs; PlanAccess over the {n}-account OU, all in sync, after a restart: the first (cold: a session assumed in each account, the organization read from the journal) {:.0} ms; the next {} (warm: the sessions kept) p50 {:.0} ms, p99 {:.0} ms.\n\nTargets: crossroled ≥ 0.9× the ceiling and ≥ 2× boto3 with 16 threads.\n\nReproduce: `cargo xtask bench` (`--quick`: one run, part A without 10,000).\n\n",
        by_concurrency.iter().map(|(c, r)| format!("{c}: {r:.1}")).collect::<Vec<_>>().join(", "),
        latency["cold_ms"].as_f64().unwrap_or(0.0),
        latency["n"],
        latency["p50_ms"].as_f64().unwrap_or(0.0),
        latency["p99_ms"].as_f64().unwrap_or(0.0),
    ));
    println!("{}", md.split("## B.").nth(1).map(|b| format!("## B.{b}")).unwrap_or_default());
    Ok(())
}

/// Part C: crossroled's memory under requests it must refuse before it works on them. The same flood against the
/// default request limit and against the old 64 MiB one, interleaved, a fresh crossroled each time.
fn part_c_run(bench: &std::path::Path, crossroled: &std::path::Path, runs: usize, md: &mut String) -> Result<()> {
    let dir = crate::workspace_root().join("target/bench/limits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let token = "bench-read-token";
    let mut hash =
        Command::new(crossroled).args(["token", "hash"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    use std::io::Write;
    hash.stdin.take().context("stdin")?.write_all(token.as_bytes())?;
    let hash = String::from_utf8(hash.wait_with_output()?.stdout)?.trim().to_string();
    let settings: [(&str, usize); 2] = [("4 MiB (the default)", 4 << 20), ("64 MiB (the limit before)", 64 << 20)];
    let mut peaks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut idles: Vec<f64> = Vec::new();
    let mut codes = String::new();
    for run in 0..runs.max(3) {
        for (name, limit) in settings {
            let port = free_port()?;
            let data = dir.join(format!("data-{run}-{limit}"));
            let config = dir.join(format!("crossroled-{limit}.toml"));
            std::fs::write(
                &config,
                format!(
                    "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nmax_request_bytes = {limit}\n[[tokens]]\nname = \"bench\"\nsha256 = \"{hash}\"\nscope = \"read\"\n",
                    data.display()
                ),
            )?;
            let mut cmd = Command::new(crossroled);
            cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
            let mut server = Process::spawn("crossroled", cmd, dir.join(format!("crossroled-{run}-{limit}.log")))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            until_serving(crossroled, &endpoint, &server)?;
            idles.push(crossrole_rss(server.pid()));
            let seen: Value = serde_json::from_str(&output(Command::new(bench).args(["flood", &endpoint, token]))?)?;
            std::thread::sleep(Duration::from_millis(500));
            peaks.entry(name).or_default().push(peak_rss(server.pid()));
            if run == 0 {
                codes.push_str(&format!(
                    "{name}: unauthenticated {}, authenticated {}. ",
                    seen["unauthenticated"], seen["authenticated"]
                ));
            }
            server.stop(Duration::from_secs(10));
        }
    }
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v.first().copied().unwrap_or(0.0), median(v.clone()), v.last().copied().unwrap_or(0.0))
    };
    md.push_str(
        "## C. Limits before work

",
    );
    md.push_str(&format!(
        "crossroled (release) receives, at once, 8 unauthenticated requests of 60 MB, then 4 `ValidateSpec` requests of 27 MB (one inline policy of 27 MB) with a read token. A fresh crossroled per run, the two request limits interleaved, {} runs each. Idle RSS before the flood: median {:.1} MiB.

",
        runs.max(3),
        stats(&idles).1
    ));
    md.push_str(
        "| max_request_bytes | peak RSS min (MiB) | median | max |
|---|---|---|---|
",
    );
    for (name, _) in settings {
        let (lo, mid, hi) = stats(peaks.get(name).map(Vec::as_slice).unwrap_or(&[]));
        md.push_str(&format!(
            "| {name} | {lo:.1} | {mid:.1} | {hi:.1} |
"
        ));
    }
    md.push_str(&format!(
        "
Status codes seen (first run): {codes}

Target: peak RSS under 100 MiB with the default limit.

"
    ));
    println!("{}", md.split("## C.").nth(1).map(|c| format!("## C.{c}")).unwrap_or_default());
    Ok(())
}

/// Peak resident memory of `pid` (VmHWM), in MiB.
fn peak_rss(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn crossrole_rss(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Part D: criterion on crossrole-core's per-account hot paths; the table is read from criterion's own output
/// (`target/criterion/<name>/new/sample.json`: the time of each sample and its iterations), never copied.
fn part_d_run(root: &std::path::Path, target: &std::path::Path, md: &mut String) -> Result<()> {
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
    md.push_str(&format!(
        "## D. Criterion: crossrole-core's per-account hot paths\n\ncriterion (release), {warm_up} s warm-up and \
         {measure} s of samples per benchmark; time per iteration over the samples.\n\n| benchmark | samples | min | \
         median | max |\n|---|---|---|---|---|\n"
    ));
    let dir = target.join("criterion");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("new/sample.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let human = |ns: f64| match ns {
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    };
    for name in names {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(&name).join("new/sample.json"))?)?;
        let per_iter: Vec<f64> = sample["iters"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(sample["times"].as_array().into_iter().flatten())
            .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?.max(1.0)))
            .collect();
        let lo = per_iter.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_iter.iter().copied().fold(0.0, f64::max);
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            per_iter.len(),
            human(lo),
            human(median(per_iter.clone())),
            human(hi)
        ));
    }
    md.push('\n');
    Ok(())
}

/// Part E: the journal under the engine's write pattern, SQLite against PostgreSQL, interleaved: 100 operations at
/// once of 100 accounts each, and one operation of 10,000 accounts.
fn part_e_run(bench: &std::path::Path, runs: usize, md: &mut String) -> Result<()> {
    let pg = crate::postgres::Postgres::start_with(true)?;
    let shapes: [(usize, u32); 2] = [(100, 100), (1, 10_000)];
    let backends = [
        ("SQLite (a file, WAL)", "sqlite".to_string()),
        ("PostgreSQL 15 (local, fsync on)", pg.url.clone()),
        ("PostgreSQL 15, shared by 3 replicas", format!("shared:{}", pg.url)),
    ];
    let mut results: BTreeMap<(usize, usize), Vec<Value>> = BTreeMap::new();
    for _ in 0..runs.max(3) {
        for (s, (ops, accounts)) in shapes.iter().enumerate() {
            for (b, (_, target)) in backends.iter().enumerate() {
                let out =
                    output(Command::new(bench).args(["journal", target, &ops.to_string(), &accounts.to_string()]))?;
                results.entry((s, b)).or_default().push(serde_json::from_str(&out)?);
            }
        }
    }
    drop(pg);
    md.push_str(&format!(
        "## E. The journal under the engine's writes\n\nEach operation's event writer persists, per account, one batch \
         (the account's row and 4 events of 300 bytes) and the operation's end with its last event; operations run \
         at once. The backends interleaved, {} runs each (min–max of the runs' figures; median in bold). PostgreSQL \
         runs on this machine, started by the bench, with its defaults (fsync on); \"shared by 3 replicas\": three \
         replicas sharing its work (`journal_shared`), the operations spread over them, each write checking in its \
         transaction that its replica owns the operation and is alive.\n\n| backend | operations × \
         accounts | write p50 (ms) | write p99 (ms) | write max (ms) | events/s |\n|---|---|---|---|---|---|\n",
        runs.max(3)
    ));
    let cell = |v: &[Value], key: &str, digits: usize| {
        let mut xs: Vec<f64> = v.iter().filter_map(|o| o[key].as_f64()).collect();
        xs.sort_by(f64::total_cmp);
        let (lo, hi) = (xs.first().copied().unwrap_or(0.0), xs.last().copied().unwrap_or(0.0));
        format!("**{:.digits$}** ({lo:.digits$}–{hi:.digits$})", median(xs.clone()))
    };
    for (s, (ops, accounts)) in shapes.iter().enumerate() {
        for (b, (name, _)) in backends.iter().enumerate() {
            let v = results.get(&(s, b)).map(Vec::as_slice).unwrap_or(&[]);
            md.push_str(&format!(
                "| {name} | {ops} × {accounts} | {} | {} | {} | {} |\n",
                cell(v, "p50_ms", 2),
                cell(v, "p99_ms", 2),
                cell(v, "max_ms", 1),
                cell(v, "events_per_s", 0)
            ));
        }
    }
    md.push('\n');
    println!("{}", md.split("## E.").nth(1).map(|e| format!("## E.{e}")).unwrap_or_default());
    Ok(())
}

/// Part F: the web console's first render in headless Chromium (Debian's, driven by playwright-core), from the
/// sign-in to the first account drawn, for organizations of 1,000 and 10,000 accounts, interleaved. Each served by
/// a crossroled over an in-memory AWS that has read its organization once.
fn part_f_run(bench: &std::path::Path, target: &std::path::Path, runs: usize, md: &mut String) -> Result<()> {
    use std::io::{BufRead, BufReader};
    crate::console::install()?;
    let web = crate::console::web_dir();
    let chromium = "/usr/bin/chromium";
    let version =
        output(Command::new(chromium).arg("--version")).unwrap_or_else(|_| "Chromium (unknown version)".into());
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
    let mut times: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut rows: BTreeMap<usize, u64> = BTreeMap::new();
    for _ in 0..runs.max(3) {
        for (n, ready, _) in &servers {
            let out = output(
                Command::new("node")
                    .args(["tests/browser.mjs", "render", &n.to_string()])
                    .current_dir(&web)
                    .env("CONSOLE_URL", ready["endpoint"].as_str().unwrap_or_default())
                    .env("CONSOLE_TOKEN", ready["token"].as_str().unwrap_or_default())
                    .env("CHROMIUM", chromium)
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
    md.push_str(&format!(
        "## F. The web console's first render\n\n{version}, headless, driven by playwright-core, a 1400×900 \
         viewport; crossroled (release) over an in-memory AWS whose organization has the accounts below in OUs of \
         at most 500, read once before the runs (as a crossroled that has run keeps it). Measured from the click on \
         \"Sign in\" to the first account drawn: the token checked, the organization described, its accounts read \
         over gRPC-Web 1,000 a page, the tree laid out and drawn. The sizes interleaved, {} runs each.\n\n\
         | accounts | first render min / median / max (ms) | rows in the page after scrolling to the end |\n\
         |---|---|---|\n",
        runs.max(3)
    ));
    for (n, v) in &times {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        md.push_str(&format!(
            "| {n} | {:.0} / **{:.0}** / {:.0} | {} |\n",
            v.first().copied().unwrap_or(0.0),
            median(v.clone()),
            v.last().copied().unwrap_or(0.0),
            rows.get(n).copied().unwrap_or(0)
        ));
    }
    md.push_str(
        "\nTarget: a 10,000-account organization's first render under 1 s. The list draws only the rows in view, \
         so the page holds about the same number of rows at any size.\n\n",
    );
    println!("{}", md.split("## F.").nth(1).map(|f| format!("## F.{f}")).unwrap_or_default());
    Ok(())
}

/// Waits (up to 30 s) until the crossroled at `endpoint` answers its health check.
fn until_serving(crossroled: &std::path::Path, endpoint: &str, server: &Process) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new(crossroled)
        .args(["healthcheck", "--endpoint", endpoint])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        if Instant::now() > deadline {
            bail!("crossroled did not start; see {}", server.log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
