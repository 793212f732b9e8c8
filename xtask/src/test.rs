//! `cargo xtask test`: everything CI checks, in the order that fails fastest — first of all, what it needs from
//! the machine, so that nothing is found missing twenty minutes in.

use anyhow::{Result, bail};

use crate::{
    prereqs::Need,
    util::{buf, run, run_in},
};

const HELP: &str = "\
cargo xtask test [--no-e2e]

Everything CI checks, in the order that fails fastest. First, in seconds, what it needs from the machine: each tool
found, installed (PostgreSQL's server and Chromium, Debian's packages, with apt-get when xtask runs as root), or
missing — then it stops at once, naming each missing tool, what needs it and how to get it. Then fmt, the
architecture invariants, dependency hygiene, codegen --check, console --check, buf lint, clippy, every test (the
journal's on SQLite and on a PostgreSQL it starts), doc tests, the fuzz smoke, the deploy/ checks and the e2e suite
on emulators (with the web console in Chromium).

  --no-e2e  everything but the e2e suite (and what only it needs: curl, Chromium)
";

/// What the test command needs from the machine, in its order of use.
fn needs(skip_e2e: bool) -> Vec<Need> {
    let mut needs = vec![Need::disk_space(), Need::rustfmt(), Need::clippy(), Need::nextest()];
    needs.extend(Need::compilers());
    // buf and the console's packages (npm), the deploy/ checks' venvs (Python) and the IAM judge (node).
    needs.extend(Need::node_and_npm());
    needs.extend([Need::python(), Need::postgres(), Need::systemd_analyze()]);
    if !skip_e2e {
        needs.extend([Need::curl(), Need::chromium()]);
    }
    needs
}

pub(crate) fn run_all(args: &[String]) -> Result<()> {
    let skip_e2e = args.iter().any(|a| a == "--no-e2e");
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return Ok(());
    }
    if let Some(other) = args.iter().find(|a| *a != "--no-e2e") {
        bail!("unknown argument `{other}`\n\n{HELP}");
    }
    crate::prereqs::check(if skip_e2e { "test --no-e2e" } else { "test" }, &needs(skip_e2e))?;
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run("cargo", &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"])?;
    crate::invariants::check()?;
    crate::deps::check()?;
    crate::codegen::run(&["--check".to_string()])?;
    crate::console::run(&["--check".to_string()])?;
    let proto = crate::workspace_root().join("proto");
    run_in(&proto, buf()?.to_str().unwrap_or("buf"), &["lint"], &[])?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    // The e2e package is built with the rest (one feature set, one build) and run on the emulators below.
    // The PostgreSQL journal's tests need a server: they run next, with one.
    let filter = "not package(crossrole-e2e) and not binary(postgres)";
    run("cargo", &["nextest", "run", "--workspace", "--locked", "--no-fail-fast", "-E", filter])?;
    {
        let pg = crate::postgres::Postgres::start()?;
        run_in(
            &crate::workspace_root(),
            "cargo",
            &["nextest", "run", "--workspace", "--locked", "--no-fail-fast", "-E", "binary(postgres)"],
            &[("CROSSROLE_TEST_POSTGRES", pg.url.as_str())],
        )?;
    }
    run("cargo", &["test", "--doc", "--workspace", "--locked"])?;
    crate::fuzz::run(&["--smoke".to_string()])?;
    let (crossroled, _) = crate::e2e::build_binaries()?;
    crate::deploy::check(&crossroled)?;
    if skip_e2e {
        eprintln!("skipping the e2e suite (--no-e2e)");
    } else {
        // The default emulators (LocalStack for IAM and STS, moto for Organizations); `cargo xtask e2e --emulator
        // moto` runs the same suite on moto alone.
        crate::e2e::run_suite(crate::e2e::mode_arg(&[])?, crate::e2e::WHOLE_SUITE)?;
    }
    eprintln!("all checks passed");
    Ok(())
}
