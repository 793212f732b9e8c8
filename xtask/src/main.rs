//! crossrole's project tasks. `cargo xtask help` lists them.

mod bench;
mod codegen;
mod console;
mod demo;
mod deploy;
mod deps;
mod e2e;
mod emulators;
mod fuzz;
mod iam_judge;
mod invariants;
mod postgres;
mod prereqs;
mod served;
mod soak;
mod test;
mod util;

use std::path::PathBuf;

use anyhow::{Result, bail};

const HELP: &str = "\
cargo xtask <task>

Tasks:
  codegen [--check]   generate crates/crossrole-proto/src/generated from proto/ (--check: fail if stale)
  test [--no-e2e]     everything CI checks: fmt, codegen --check, console --check, buf lint, clippy, all tests,
                      deploy/ checks, e2e (with the console in Chromium); first, in seconds, what it needs from the
                      machine (PostgreSQL's server and Chromium installed with apt-get when missing, as root)
  console [--check]   the web console: npm ci in web/, the TypeScript client from proto/ (buf), the page built by
                      Vite into crates/crossrole-server/console (--check: fail if either is stale)
  demo [--emulator localstack|moto] [--exit]
                      emulators, a seeded organization, crossroled, and a live rollout of examples/security-audit.yaml
  e2e [--emulator localstack|moto] [--list] [-- <filter>…]
                      the end-to-end suite on emulators (installed into .cache/ on first use); a filter selects the
                      scenarios of the file it names (tests/e2e/tests/<file>.rs) and those whose names contain it,
                      and one that selects nothing is an error (cargo xtask e2e --help)
  bench [--quick] [--runs N] [--only-model|--only-e2e|--only-limits|--only-criterion|--only-journal|--only-console]
                      part A: the engine against a model of AWS (100, 1,000, 10,000 accounts); part B: crossroled
                      on the emulators vs the AWS SDK directly and boto3; part C: memory under oversized and
                      unauthenticated requests; D: criterion; E: the journal; F: the web console's first render;
                      writes target/bench/latest.md
  fuzz [--time SECS] [--smoke] [target…]
                      the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer), each for SECS seconds (120; --smoke: 10,
                      the corpus left as committed)
  soak [--minutes N] [--emulator localstack|moto] [--quiet-retention D]
                      a binding reconciling on the emulators for N minutes (20), with drift to repair: crossroled's
                      memory, file descriptors and journal size sampled, slopes reported (target/soak/report.md)
  postgres <command…> a throwaway PostgreSQL for <command>, its URL in CROSSROLE_TEST_POSTGRES (e.g. cargo xtask
                      postgres cargo nextest run -p crossrole-server --test postgres)
  invariants          architecture invariants on the sources and the dependency graph (ARCHITECTURE.md)
  deps                dependency hygiene: none unused, licenses allowed, duplicate versions reviewed
  deploy-check        cfn-lint, the ceiling's matrix judged by @cloud-copilot/iam-simulate, helm lint/template +
                      Kubernetes schema validation, systemd-analyze on deploy/
  help                this text
";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    // A task that reads no --help of its own says what it does rather than doing it (`demo --help` ran the demo).
    if !matches!(task, "test" | "e2e" | "postgres") && rest.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", task_help(task));
        return Ok(());
    }
    match task {
        "codegen" => codegen::run(rest),
        "console" => console::run(rest),
        "test" => test::run_all(rest),
        "deps" => deps::check(),
        "invariants" => invariants::check(),
        "e2e" => e2e::run(rest),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "postgres" => postgres::run(rest),
        "fuzz" => fuzz::run(rest),
        "soak" => soak::run(rest),
        "deploy-check" => {
            let (crossroled, _) = e2e::build_binaries()?;
            deploy::check(&crossroled)
        }
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

/// The workspace root, whatever the current directory.
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// `task`'s lines of [`HELP`] (all of it for a task it does not list).
fn task_help(task: &str) -> String {
    let mut lines = HELP.lines().skip_while(|l| {
        let Some(rest) = l.strip_prefix("  ").and_then(|l| l.strip_prefix(task)) else { return true };
        !(rest.is_empty() || rest.starts_with(' '))
    });
    let Some(first) = lines.next() else { return HELP.to_string() };
    let more = lines.take_while(|l| l.starts_with(&" ".repeat(22)));
    let mut text = format!("cargo xtask {}\n", first.trim_start());
    for line in more {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tasks_help_is_its_lines_of_the_list() {
        let demo = task_help("demo");
        assert!(demo.starts_with("cargo xtask demo [--emulator localstack|moto] [--exit]\n"), "{demo}");
        assert!(demo.contains("a live rollout of examples/security-audit.yaml"), "{demo}");
        assert!(!demo.contains("e2e"), "{demo}");
        assert!(task_help("deploy-check").starts_with("cargo xtask deploy-check        cfn-lint"));
        assert!(task_help("deps").starts_with("cargo xtask deps                dependency hygiene"));
        assert_eq!(task_help("nonesuch"), HELP);
    }
}
