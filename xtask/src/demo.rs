//! `cargo xtask demo [--emulator localstack|moto] [--exit]`: emulators, a seeded organization, crossroled, and a
//! real rollout of `examples/security-audit.yaml` with live progress; then verify and its CLI profiles (the role
//! needs an ExternalId, which the console cannot send); then `examples/console-readonly.yaml`, a role for the
//! console, with its Switch Role links and AWS Extend Switch Roles configuration. The server stays up until Ctrl-C
//! (or, with `--exit`, everything stops after the links).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{
    e2e::{build_binaries, install_interrupt_handler, mode_arg, run_dir},
    emulators::Emulators,
    served::Served,
};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mode = mode_arg(args)?;
    let exit_after = args.iter().any(|a| a == "--exit");
    install_interrupt_handler();
    let started = Instant::now();
    let (crossroled, crossrole) = build_binaries()?;
    let dir = run_dir("demo", mode);
    let mut emulators = Emulators::start(mode, &dir)?;
    let seeded = emulators.seeded(&[])?;
    // The example specs, with the seeded security account in place of the placeholder.
    let spec = seeded.example("security-audit.yaml", &dir)?;
    let console = seeded.example("console-readonly.yaml", &dir)?;

    let mut served = Served::start(&dir, &crossroled, &crossrole, seeded.aws_env.clone(), "")?;
    let Served { endpoint, port, token, .. } = &served;
    let cli = |args: &[&str]| served.cli(args);

    let spec_arg = spec.display().to_string();
    println!(
        "\n== crossroled is up at {endpoint} (emulators: {}; set up in {:.0}s)",
        mode.name(),
        started.elapsed().as_secs_f64()
    );
    println!("\n== the organization\n");
    cli(&["org"])?;
    println!("\n== crossrole apply -f {} --yes\n", spec_arg);
    let applied = cli(&["apply", "-f", &spec_arg, "--yes"])?;
    println!("\n== crossrole verify -f {}\n", spec_arg);
    cli(&["verify", "-f", &spec_arg])?;
    println!(
        "\n== crossrole export -f {spec_arg} --source-profile security   (the role needs an ExternalId: CLI profiles)\n"
    );
    let exports = dir.join("exports");
    let out = exports.display().to_string();
    cli(&[
        "export",
        "-f",
        &spec_arg,
        "--source-profile",
        "security",
        "--profile-name",
        "${account_name}",
        "--out",
        &out,
    ])?;
    show(&exports.join("crossrole-security-audit.config"))?;
    let console_arg = console.display().to_string();
    println!("\n== crossrole apply -f {console_arg} --yes   (no ExternalId: people switch roles in the console)\n");
    let console_applied = cli(&["apply", "-f", &console_arg, "--yes"])?;
    println!("\n== crossrole links -f {console_arg}\n");
    cli(&["links", "-f", &console_arg])?;
    println!("\n== crossrole export -f {console_arg} --source-profile security --format aesr\n");
    cli(&["export", "-f", &console_arg, "--source-profile", "security", "--format", "aesr", "--out", &out])?;
    show(&exports.join("crossrole-console-readonly.aesr.ini"))?;
    println!(
        "\n== try next, in another shell:\n\n  export CROSSROLE_ENDPOINT={endpoint}\n  export CROSSROLE_TOKEN={token}\n  \
         cargo run -q -p crossrole-cli -- plan -f {spec_arg}        # in sync now\n  \
         cargo run -q -p crossrole-cli -- ops list\n  \
         cargo run -q -p crossrole-cli -- accounts --ou-path /Root/Workloads/Prod --tag environment=prod\n  \
         cargo run -q -p crossrole-cli -- export -f {spec_arg} --source-profile security --format json\n  \
         cargo run -q -p crossrole-cli -- audit --since 1h\n  \
         # console sign-in as the ExternalId role (on real AWS: your credentials, CROSSROLE_EXTERNAL_ID set):\n  \
         # cargo run -q -p crossrole-cli -- console <account> -f {spec_arg}\n  \
         cargo run -q -p crossrole-cli -- destroy -f {spec_arg}\n  \
         grpcurl -plaintext -H \"authorization: Bearer $CROSSROLE_TOKEN\" 127.0.0.1:{port} list\n\n\
         The spec applied is {spec_arg}; crossroled logs to {}.",
        served.server.log.display()
    );
    for (name, status) in [("security-audit", applied), ("console-readonly", console_applied)] {
        if !status.success() {
            eprintln!("note: the apply of {name} exited with {status}");
        }
    }
    if exit_after {
        served.server.stop(Duration::from_secs(15));
        emulators.stop();
        if !applied.success() || !console_applied.success() {
            bail!("the demo's applies did not both succeed ({applied}, {console_applied})");
        }
        return Ok(());
    }
    println!("\ncrossroled keeps running; press Ctrl-C to stop it and the emulators.");
    loop {
        if let Some(status) = served.server.exited() {
            bail!("crossroled exited ({status}); see {}", served.server.log.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Prints an export's first two profiles and where the rest are.
fn show(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let sections: Vec<&str> = text.split("\n\n").filter(|s| !s.trim().is_empty()).collect();
    for section in sections.iter().take(2) {
        println!("{section}\n");
    }
    if sections.len() > 2 {
        println!("… and {} more in {}", sections.len() - 2, path.display());
    }
    Ok(())
}
