//! `cargo xtask e2e [--emulator localstack|moto] [--list] [-- <filter>…]`: the end-to-end suite on real emulators.
//! A filter selects the scenarios of the file it names (`tests/e2e/tests/<file>.rs`) and every scenario whose name
//! contains it; one that selects nothing stops the run before the emulators start, saying so.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, Result, bail};

use crate::{
    emulators::{Emulators, Mode},
    prereqs::Need,
    util::run_in,
};

const HELP: &str = "\
cargo xtask e2e [--emulator localstack|moto] [--list] [-- <filter>…]

The end-to-end suite (tests/e2e) on emulators installed into .cache/ on first use, with crossroled, the CLI, a
PostgreSQL for the replicas scenarios and, for the web console's scenario, Debian's Chromium.

  --emulator localstack|moto  LocalStack for IAM and STS with moto for Organizations (the default), or moto alone
  --list                      print the scenarios the filters select, and run nothing (no emulator is started)
  -- <filter>…                run only what the filters select. A filter selects
                                - the scenarios of the file it names: tests/e2e/tests/<file>.rs, named as
                                  `web_console`, `web_console.rs` or `tests/e2e/tests/web_console.rs`;
                                - every scenario whose name contains it (`the_console_shows`).
                              A filter that selects nothing is an error, before any emulator starts.

Examples:
  cargo xtask e2e -- web_console
  cargo xtask e2e --emulator moto -- suite bindings
  cargo xtask e2e --list -- the_console
";

/// The whole suite, as a nextest filterset.
pub(crate) const WHOLE_SUITE: &str = "package(crossrole-e2e)";

/// Scenario files that judge documents alone (the IAM judge, no AWS): a run of only these starts no emulator,
/// builds no binary and needs no database.
const WITHOUT_EMULATORS: &[&str] = &["inventory_judge", "revocation_judge"];

/// What `cargo xtask e2e` was asked.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    mode: String,
    list: bool,
    filters: Vec<String>,
}

/// Reads the task's arguments; `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<Args>> {
    let mut parsed = Args { mode: "localstack".into(), list: false, filters: Vec::new() };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--list" => parsed.list = true,
            "--emulator" => parsed.mode = it.next().context("--emulator needs localstack or moto")?.clone(),
            "--" => {
                parsed.filters = it.cloned().collect();
                break;
            }
            other => bail!("unknown argument `{other}`: filters go after `--` (cargo xtask e2e -- {other}; --help)"),
        }
    }
    Ok(Some(parsed))
}

/// A test of the suite, as nextest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scenario {
    /// Its test binary: the scenario file's name (`web_console` for tests/e2e/tests/web_console.rs).
    file: String,
    /// Its name within the file.
    name: String,
}

/// The scenarios in nextest's JSON listing (`cargo nextest list --message-format json`).
fn scenarios(listing: &str) -> Result<Vec<Scenario>> {
    let listing: serde_json::Value = serde_json::from_str(listing).context("nextest's listing of the e2e suite")?;
    let suites = listing["rust-suites"].as_object().context("nextest's listing has no rust-suites")?;
    let mut out = Vec::new();
    for suite in suites.values() {
        let file = suite["binary-name"].as_str().unwrap_or_default();
        for name in suite["testcases"].as_object().into_iter().flat_map(|t| t.keys()) {
            out.push(Scenario { file: file.to_string(), name: name.clone() });
        }
    }
    Ok(out)
}

/// The file a filter names, if it names one: `web_console`, `web_console.rs`, `tests/e2e/tests/web_console.rs`.
fn file_named(filter: &str) -> &str {
    let last = filter.rsplit('/').next().unwrap_or(filter);
    last.strip_suffix(".rs").unwrap_or(last)
}

/// Whether `filter` selects `scenario`: by naming its file, and by being part of its name. An empty filter
/// selects nothing.
fn selects(filter: &str, scenario: &Scenario) -> (bool, bool) {
    let named = !filter.is_empty();
    (named && scenario.file == file_named(filter), named && scenario.name.contains(filter))
}

/// The nextest filterset that runs what the filters select, and the scenarios it runs. Fails, naming each filter
/// that selects nothing and the files there are, rather than run nothing.
fn select<'a>(filters: &[String], suite: &'a [Scenario]) -> Result<(String, Vec<&'a Scenario>)> {
    if filters.is_empty() {
        return Ok((WHOLE_SUITE.to_string(), suite.iter().collect()));
    }
    let mut terms = Vec::new();
    let mut unmatched = Vec::new();
    for filter in filters {
        // Only what the listing has goes into the filterset, so it never holds a character nextest would parse.
        let by_file = suite.iter().any(|s| selects(filter, s).0);
        let by_name = suite.iter().any(|s| selects(filter, s).1);
        if by_file {
            terms.push(format!("binary(={})", file_named(filter)));
        }
        if by_name {
            terms.push(format!("test(~{filter})"));
        }
        if !by_file && !by_name {
            unmatched.push(format!("`{filter}`"));
        }
    }
    if !unmatched.is_empty() {
        let mut files: Vec<&str> = suite.iter().map(|s| s.file.as_str()).collect();
        files.sort();
        files.dedup();
        bail!(
            "{} {} no scenario file (tests/e2e/tests/<file>.rs: {}) and no scenario's name: nothing to run \
             (cargo xtask e2e --list shows the scenarios)",
            unmatched.join(", "),
            if unmatched.len() == 1 { "matches" } else { "match" },
            files.join(", ")
        );
    }
    let selected = suite.iter().filter(|s| filters.iter().any(|f| selects(f, s) != (false, false))).collect();
    Ok((format!("{WHOLE_SUITE} and ({})", terms.join(" or ")), selected))
}

/// The suite's scenarios, listed by nextest (which builds the test binaries the run then uses, with the same
/// feature set: the whole workspace's).
fn list_suite() -> Result<Vec<Scenario>> {
    let root = crate::workspace_root();
    eprintln!("$ cargo nextest list --locked --workspace -E {WHOLE_SUITE} --message-format json");
    let out = Command::new("cargo")
        .current_dir(&root)
        .args(["nextest", "list", "--locked", "--workspace", "-E", WHOLE_SUITE, "--message-format", "json"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo nextest list")?;
    if !out.status.success() {
        bail!("`cargo nextest list` failed ({})", out.status);
    }
    scenarios(&String::from_utf8_lossy(&out.stdout))
}

/// What every e2e run needs from the machine (Chromium apart: only the web console's scenario needs it).
pub(crate) fn needs() -> Vec<Need> {
    let mut needs = vec![Need::nextest(), Need::python(), Need::curl(), Need::postgres()];
    needs.extend(Need::node_and_npm());
    needs
}

/// Builds crossroled and crossrole; returns their paths.
pub(crate) fn build_binaries() -> Result<(PathBuf, PathBuf)> {
    let root = crate::workspace_root();
    run_in(&root, "cargo", &["build", "--locked", "-p", "crossrole-server", "-p", "crossrole-cli"], &[])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok((target.join("debug/crossroled"), target.join("debug/crossrole")))
}

/// The mode from `--emulator X` (default localstack), for the tasks that take only that.
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
    let Some(args) = parse(args)? else {
        print!("{HELP}");
        return Ok(());
    };
    let mode = Mode::parse(&args.mode)?;
    // A list needs only nextest; a run of the whole suite needs Chromium too, and one of some scenarios needs it
    // when they include the web console's (known once nextest has listed them).
    let needs = match (args.list, args.filters.is_empty()) {
        (true, _) => vec![Need::nextest()],
        (false, true) => needs().into_iter().chain([Need::chromium()]).collect(),
        (false, false) => needs(),
    };
    crate::prereqs::check("e2e", &needs)?;
    if args.filters.is_empty() && !args.list {
        return run_suite(mode, WHOLE_SUITE);
    }
    let suite = list_suite()?;
    let (filterset, selected) = select(&args.filters, &suite)?;
    if args.list {
        for s in &selected {
            println!("{} {}", s.file, s.name);
        }
        eprintln!("{} of the suite's {} scenarios; nextest's filterset: {filterset}", selected.len(), suite.len());
        return Ok(());
    }
    if selected.iter().all(|s| WITHOUT_EMULATORS.contains(&s.file.as_str())) {
        return run_judged(&filterset);
    }
    if selected.iter().any(|s| s.file == "web_console") {
        crate::prereqs::check("e2e", &[Need::chromium()])?;
    }
    run_suite(mode, &filterset)
}

/// Runs scenarios that need only the IAM judge (see [`WITHOUT_EMULATORS`]): no emulator, binary or database.
fn run_judged(filterset: &str) -> Result<()> {
    let started = Instant::now();
    let env = crate::iam_judge::env()?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Only the e2e package is built: these scenarios need neither crossroled nor the CLI.
    let nextest = ["nextest", "run", "--locked", "-p", "crossrole-e2e", "-E", filterset, "--success-output", "final"];
    let result = run_in(&crate::workspace_root(), "cargo", &nextest, &env);
    eprintln!("e2e (the IAM judge alone, no emulator) finished in {:.0}s", started.elapsed().as_secs_f64());
    result.context("the e2e scenarios judged by the IAM judge failed")
}

/// Runs the scenarios `filterset` selects (a nextest filterset within the e2e package) on the emulators of `mode`.
pub(crate) fn run_suite(mode: Mode, filterset: &str) -> Result<()> {
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
    env.push(("CROSSROLE_CHROMIUM".into(), crate::prereqs::CHROMIUM_PATH.into()));
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
    let nextest = [
        "nextest",
        "run",
        "--locked",
        "--workspace",
        "-E",
        filterset,
        "--test-threads",
        "1",
        "--no-fail-fast",
        // What the scenarios print (fault counts, takeover times) is shown once at the end.
        "--success-output",
        "final",
    ];
    let result = run_in(&crate::workspace_root(), "cargo", &nextest, &env_refs);
    emulators.stop();
    eprintln!("e2e ({}) finished in {:.0}s; logs in {}", mode.name(), started.elapsed().as_secs_f64(), dir.display());
    if result.is_err() {
        bail!("the e2e suite failed ({}); emulator logs and crossroled logs are in {}", mode.name(), dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Vec<Scenario> {
        [
            ("suite", "a_spec_applies_to_the_seeded_organization"),
            ("suite", "destroy_removes_what_apply_made"),
            ("web_console", "the_console_shows_the_organization_a_live_rollout_and_drift"),
            ("console", "console_sign_in_with_the_external_id_and_sessions_as_aws_allows_them"),
        ]
        .into_iter()
        .map(|(file, name)| Scenario { file: file.into(), name: name.into() })
        .collect()
    }

    /// The filterset and the names of the scenarios it runs, or the error.
    fn check(filters: &[&str], expect: Result<(&str, &[&str]), &str>) {
        let suite = suite();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let got = select(&filters, &suite)
            .map(|(set, selected)| (set, selected.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()))
            .map_err(|e| e.to_string());
        match expect {
            Ok((set, names)) => assert_eq!(got, Ok((set.to_string(), names.to_vec()))),
            Err(error) => assert_eq!(got, Err(error.to_string())),
        }
    }

    #[test]
    fn no_filter_runs_the_whole_suite() {
        check(
            &[],
            Ok((
                "package(crossrole-e2e)",
                &[
                    "a_spec_applies_to_the_seeded_organization",
                    "destroy_removes_what_apply_made",
                    "the_console_shows_the_organization_a_live_rollout_and_drift",
                    "console_sign_in_with_the_external_id_and_sessions_as_aws_allows_them",
                ],
            )),
        );
    }

    #[test]
    fn a_filter_naming_a_scenario_file_runs_that_files_scenarios() {
        let web_console = Ok((
            "package(crossrole-e2e) and (binary(=web_console))",
            &["the_console_shows_the_organization_a_live_rollout_and_drift"][..],
        ));
        check(&["web_console"], web_console);
        check(&["web_console.rs"], web_console);
        check(&["tests/e2e/tests/web_console.rs"], web_console);
        check(
            &["suite"],
            Ok((
                "package(crossrole-e2e) and (binary(=suite))",
                &["a_spec_applies_to_the_seeded_organization", "destroy_removes_what_apply_made"],
            )),
        );
    }

    #[test]
    fn a_filter_also_runs_the_scenarios_whose_names_contain_it() {
        check(&["destroy"], Ok(("package(crossrole-e2e) and (test(~destroy))", &["destroy_removes_what_apply_made"])));
        // `console` names a file and is in the name of another file's scenario: both run.
        check(
            &["console"],
            Ok((
                "package(crossrole-e2e) and (binary(=console) or test(~console))",
                &[
                    "the_console_shows_the_organization_a_live_rollout_and_drift",
                    "console_sign_in_with_the_external_id_and_sessions_as_aws_allows_them",
                ],
            )),
        );
        check(
            &["web_console", "destroy"],
            Ok((
                "package(crossrole-e2e) and (binary(=web_console) or test(~destroy))",
                &["destroy_removes_what_apply_made", "the_console_shows_the_organization_a_live_rollout_and_drift"],
            )),
        );
    }

    #[test]
    fn a_filter_that_selects_nothing_is_an_error_naming_it() {
        let error = "`webconsole` matches no scenario file (tests/e2e/tests/<file>.rs: console, suite, web_console) \
                     and no scenario's name: nothing to run (cargo xtask e2e --list shows the scenarios)";
        check(&["webconsole"], Err(error));
        // One good filter does not hide a bad one.
        check(&["web_console", "webconsole"], Err(error));
        check(
            &["tests/e2e/tests/nope.rs", "a,b)"],
            Err(
                "`tests/e2e/tests/nope.rs`, `a,b)` match no scenario file (tests/e2e/tests/<file>.rs: console, suite, \
             web_console) and no scenario's name: nothing to run (cargo xtask e2e --list shows the scenarios)",
            ),
        );
        check(
            &[""],
            Err(
                "`` matches no scenario file (tests/e2e/tests/<file>.rs: console, suite, web_console) and no scenario's \
             name: nothing to run (cargo xtask e2e --list shows the scenarios)",
            ),
        );
    }

    #[test]
    fn the_arguments_filters_after_the_double_dash_and_nothing_unknown() {
        let args = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map_err(|e| e.to_string());
        assert_eq!(
            args(&["--emulator", "moto", "--", "web_console", "--list"]),
            Ok(Some(Args { mode: "moto".into(), list: false, filters: vec!["web_console".into(), "--list".into()] }))
        );
        assert_eq!(args(&["--list"]), Ok(Some(Args { mode: "localstack".into(), list: true, filters: vec![] })));
        assert_eq!(args(&["--help"]), Ok(None));
        assert!(args(&["web_console"]).is_err_and(|e| e.contains("filters go after `--`")));
    }

    #[test]
    fn scenarios_are_read_from_nextests_listing() {
        let listing = r#"{"rust-build-meta": {}, "test-count": 2, "rust-suites": {
            "crossrole-e2e::web_console": {"binary-name": "web_console", "kind": "test",
                "testcases": {"the_console_shows": {"kind": "test", "ignored": false}}},
            "crossrole-e2e::suite": {"binary-name": "suite", "kind": "test",
                "testcases": {"a_spec_applies": {"kind": "test", "ignored": false}}}}}"#;
        let mut found = scenarios(listing).unwrap_or_default();
        found.sort_by(|a, b| a.file.cmp(&b.file));
        assert_eq!(
            found,
            [
                Scenario { file: "suite".into(), name: "a_spec_applies".into() },
                Scenario { file: "web_console".into(), name: "the_console_shows".into() },
            ]
        );
        assert!(scenarios("not json").is_err());
    }
}
