//! `cargo xtask bench [--quick]`: how close a rollout comes to the limit AWS sets, side by side with what users do
//! today. Part A runs the engine against a model of AWS (`model`); part B runs crossroled on the emulators next to
//! the same calls made directly with the AWS SDK (the ceiling) and a boto3 script, sequential and with 16 threads
//! (`end_to_end`); part C floods crossroled with requests it must refuse, and with many it may serve at once
//! (`limits`); part D is criterion on the core's hot paths (`criterion`); part E the journal under the engine's
//! writes (`journal`); part F the web console's first render (`web_console`). The report is markdown (`report`),
//! printed and written to target/bench/.

mod criterion;
mod end_to_end;
mod journal;
mod limits;
mod model;
mod process;
mod report;
mod web_console;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::report::Report;
use crate::util::run_in;

/// The parts of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Model,
    EndToEnd,
    Limits,
    Criterion,
    Journal,
    Console,
}

impl Part {
    /// Every part, in the order they run.
    const ALL: [Part; 6] = [Part::Model, Part::EndToEnd, Part::Limits, Part::Journal, Part::Console, Part::Criterion];

    /// The letter of its section (`## A.`).
    fn letter(self) -> char {
        match self {
            Part::Model => 'A',
            Part::EndToEnd => 'B',
            Part::Limits => 'C',
            Part::Criterion => 'D',
            Part::Journal => 'E',
            Part::Console => 'F',
        }
    }

    /// The flag that runs it alone (with the other parts so named).
    fn only(self) -> &'static str {
        match self {
            Part::Model => "--only-model",
            Part::EndToEnd => "--only-e2e",
            Part::Limits => "--only-limits",
            Part::Criterion => "--only-criterion",
            Part::Journal => "--only-journal",
            Part::Console => "--only-console",
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let flag = |f: &str| args.iter().any(|a| a == f);
    let quick = flag("--quick");
    let any_only = Part::ALL.iter().any(|p| flag(p.only()));
    crate::e2e::install_interrupt_handler();
    let root = crate::workspace_root();
    run_in(
        &root,
        "cargo",
        &["build", "--release", "--locked", "-p", "crossrole-bench", "-p", "crossrole-server", "-p", "crossrole-cli"],
        &[],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bench = target.join("release/crossrole-bench");
    let crossroled = target.join("release/crossroled");
    // `--runs N`: more runs per figure, where the emulators' noise needs them.
    let asked = args.iter().position(|a| a == "--runs").and_then(|i| args.get(i + 1)).map(|n| n.parse::<usize>());
    let runs = match asked {
        Some(Ok(n)) if n > 0 => n,
        Some(_) => bail!("--runs takes a number of runs, 1 or more"),
        None if quick => 1,
        None => 3,
    };
    let mut report = Report::default();
    report.heading(1, "crossrole benchmarks");
    report.paragraph([format!("Machine: {}.", machine()), format!("Runs per figure: {runs} (the median is shown).")]);

    // Each part is written down as soon as it is measured, so that a later part's failure loses nothing.
    let write_docs = flag("--write-docs");
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let done = |report: &Report| -> Result<()> {
        std::fs::write(out_dir.join("latest.md"), report.as_str())?;
        if write_docs { self::write_docs(&root.join("docs/benchmarks.md"), report.as_str()) } else { Ok(()) }
    };
    for part in Part::ALL {
        if any_only && !flag(part.only()) {
            continue;
        }
        match part {
            Part::Model => model::run(&bench, quick, runs, &mut report)?,
            Part::EndToEnd => end_to_end::run(&root, &bench, &crossroled, runs, &mut report)?,
            Part::Limits => limits::run(&bench, &crossroled, runs, &mut report)?,
            Part::Criterion => criterion::run(&root, &target, &mut report)?,
            Part::Journal => journal::run(&bench, runs, &mut report)?,
            Part::Console => web_console::run(&bench, &target, runs, &mut report)?,
        }
        // Part A is printed with the report's title and machine line; each other part on its own.
        if part == Part::Model {
            println!("{report}")
        } else {
            println!("{}", report.section(part.letter()))
        }
        done(&report)?;
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let file = out_dir.join(format!("bench-{stamp}.md"));
    std::fs::write(&file, report.as_str())?;
    eprintln!("written to {} (and target/bench/latest.md)", file.display());
    Ok(())
}

/// The machine the figures were measured on: cores, CPU model and memory.
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

/// Replaces, in the docs, each part (`## A.` to `## F.`) this run measured with what it measured, so that
/// every figure there is one the bench wrote.
fn write_docs(docs: &Path, md: &str) -> Result<()> {
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
