//! `cargo xtask e2e [--emulator localstack|moto] [-- <filter>…]`: the end-to-end suite on real emulators (with
//! filters, only the scenarios whose names contain one).

use std::{path::PathBuf, time::Instant};

use anyhow::{Result, bail};

use crate::{
    emulators::{Emulators, Mode},
    util::run_in,
};

/// Builds crossroled and crossrole; returns their paths.
pub(crate) fn build_binaries() -> Result<(PathBuf, PathBuf)> {
    let root = crate::workspace_root();
    run_in(&root, "cargo", &["build", "--locked", "-p", "crossrole-server", "-p", "crossrole-cli"], &[])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok((target.join("debug/crossroled"), target.join("debug/crossrole")))
}

/// The mode from `--emulator X` (default localstack).
pub(crate) fn mode_arg(args: &[String]) -> Result<Mode> {
    match args.iter().position(|a| a == "--emulator") {
        None => Mode::parse("localstack"),
        Some(i) => Mode::parse(args.get(i + 1).map(String::as_str).unwrap_or("")),
    }
}

/// Where a run keeps its emulator state and logs.
pub(crate) fn run_dir(what: &str, mode: Mode) -> PathBuf {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    crate::workspace_root().join("target").join(what).join(format!("{}-{stamp}", mode.name()))
}

/// Kills the processes xtask started when interrupted.
pub(crate) fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: stopping the processes xtask started");
        crate::emulators::kill_started();
        std::process::exit(130);
    });
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mode = mode_arg(args)?;
    install_interrupt_handler();
    let started = Instant::now();
    let (crossroled, crossrole) = build_binaries()?;
    let dir = run_dir("e2e", mode);
    let mut emulators = Emulators::start(mode, &dir)?;
    eprintln!(
        "emulators ({}): iam {} sts {} organizations {} (pids {:?})",
        mode.name(),
        emulators.iam,
        emulators.sts,
        emulators.organizations,
        emulators.pids()
    );
    let seeded = emulators.seeded(&[])?;
    let mut env: Vec<(String, String)> = seeded.aws_env.clone();
    env.push(("CROSSROLE_E2E_MANIFEST".into(), seeded.path.display().to_string()));
    env.push(("CROSSROLE_E2E_DIR".into(), dir.display().to_string()));
    env.push(("CROSSROLED_BIN".into(), crossroled.display().to_string()));
    env.push(("CROSSROLE_BIN".into(), crossrole.display().to_string()));
    // The web console's browser test: its npm packages (playwright-core) and Debian's Chromium.
    crate::console::install()?;
    env.push(("CROSSROLE_WEB_DIR".into(), crate::console::web_dir().display().to_string()));
    env.push(("CROSSROLE_CHROMIUM".into(), "/usr/bin/chromium".into()));
    env.push((
        "CROSSROLE_SCREENSHOTS".into(),
        crate::workspace_root().join("target/console-screenshots").display().to_string(),
    ));
    // The IAM judge (an evaluator crossrole did not write) for the scenarios that judge policies and calls.
    env.extend(crate::iam_judge::env()?);
    // The replicas scenario's journal.
    let postgres = crate::postgres::Postgres::start()?;
    env.push(("CROSSROLE_E2E_POSTGRES".into(), postgres.url.clone()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // `-- <filters>`: only the scenarios whose names contain one of them.
    let filters: Vec<&str> = args.iter().skip_while(|a| *a != "--").skip(1).map(String::as_str).collect();
    let mut nextest = vec![
        "nextest",
        "run",
        "--locked",
        "--workspace",
        "-E",
        "package(crossrole-e2e)",
        "--test-threads",
        "1",
        "--no-fail-fast",
        // What the scenarios print (fault counts, takeover times) is shown once at the end.
        "--success-output",
        "final",
    ];
    nextest.extend(filters);
    let result = run_in(&crate::workspace_root(), "cargo", &nextest, &env_refs);
    emulators.stop();
    eprintln!("e2e ({}) finished in {:.0}s; logs in {}", mode.name(), started.elapsed().as_secs_f64(), dir.display());
    if result.is_err() {
        bail!("the e2e suite failed ({}); emulator logs and crossroled logs are in {}", mode.name(), dir.display());
    }
    Ok(())
}
