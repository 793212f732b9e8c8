//! Architecture invariants that a unit test cannot see, checked on the source and the dependency graph (see
//! ARCHITECTURE.md, "Invariants"): the core is pure, the SDK stays small, every AWS wait and retry is in the call
//! layer, and gRPC statuses are made in one place.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::util::{Tests, rust_files};

/// Runs every check; fails with all the violations found.
pub(crate) fn check() -> Result<()> {
    let root = crate::workspace_root();
    let mut problems = Vec::new();

    // crossrole-core does no I/O and nothing async.
    for (file, line, text) in grep(
        &root.join("crates/crossrole-core/src"),
        &[
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "tokio",
            "async fn",
            ".await",
            "SystemTime::now",
            "rand::rng()",
            "thread_rng",
        ],
    ) {
        problems.push(format!("{file}:{line}: crossrole-core must stay pure: {text}"));
    }
    // The domain knows nothing of the wire: no API types, no gRPC, no runtime. The engine, the AWS side and the
    // journal speak domain types; only crossrole-wire (and the server and clients above it) see the API's messages.
    const WIRE: &[&str] = &["crossrole-proto", "crossrole-wire", "prost", "prost-types", "tonic"];
    let core_banned = [WIRE, &["tokio", "crossrole-store", "crossrole-aws", "aws-sdk-iam", "rusqlite"][..]].concat();
    for (krate, banned) in [
        ("crossrole-core", &core_banned[..]),
        ("crossrole-aws", WIRE),
        ("crossrole-engine", WIRE),
        ("crossrole-store", &[WIRE, &["crossrole-core"][..]].concat()[..]),
        // The SDK stays small: neither AWS's SDK nor the server's crates, and with its default features (without
        // `spec-files`) neither the domain nor a YAML parser.
        (
            "crossrole-client",
            &[
                "aws-sdk-iam",
                "aws-sdk-sts",
                "aws-config",
                "crossrole-server",
                "crossrole-engine",
                "crossrole-core",
                "crossrole-wire",
                "serde_yaml_ng",
            ][..],
        ),
    ] {
        for dep in dependencies(&root, krate)? {
            if banned.contains(&dep.as_str()) {
                problems.push(format!("{krate} depends on {dep}"));
            }
        }
    }

    // Every wait and retry of an AWS call is the call layer's: no sleeps elsewhere in crossrole-aws (the in-memory
    // AWS models latency, and is not crossrole's own path). The fence is part of the call layer: its waits are for
    // the lease's deadline, which every write attempt is raced against.
    for (file, line, text) in grep(&root.join("crates/crossrole-aws/src"), &["time::sleep", "thread::sleep"]) {
        if !file.ends_with("calls.rs") && !file.ends_with("fence.rs") && !file.contains("/fake/") {
            problems.push(format!("{file}:{line}: AWS waits belong in the call layer (calls.rs): {text}"));
        }
    }

    // ... and in every other crate: no AWS call is made but through the call layer. Every method of the AWS traits
    // (crossrole-aws's api.rs) called outside crossrole-aws must be on a line that hands it to the call layer
    // (`calls.call(…, || api.method(…))`). The bench's baselines and the CLI's `console` call AWS themselves, on
    // purpose (the SDK directly; neither is crossroled).
    let api = fs::read_to_string(root.join("crates/crossrole-aws/src/api.rs")).context("crossrole-aws/src/api.rs")?;
    let methods: Vec<String> = api
        .lines()
        .filter_map(|l| l.trim().strip_prefix("async fn "))
        .filter_map(|rest| rest.split('(').next())
        .map(|name| format!(".{name}("))
        .collect();
    let needles: Vec<&str> = methods.iter().map(String::as_str).collect();
    for dir in ["crates/crossrole-engine/src", "crates/crossrole-server/src", "crates/crossrole-store/src"] {
        for (file, line, text) in grep(&root.join(dir), &needles) {
            if !text.contains("call") {
                problems.push(format!("{file}:{line}: AWS calls go through crossrole_aws::calls: {text}"));
            }
        }
    }
    // One backoff: the call layer's for AWS, the engine's Backoff for its waits on the journal and its loops.
    for dir in [
        "crates/crossrole-engine/src",
        "crates/crossrole-server/src",
        "crates/crossrole-aws/src",
        "crates/crossrole-store/src",
    ] {
        for (file, line, text) in grep(&root.join(dir), &["* 2).min(", "*= 2"]) {
            if !file.ends_with("aws/src/calls.rs") && !file.ends_with("engine/src/backoff.rs") {
                problems.push(format!("{file}:{line}: a backoff of its own (use crossrole_engine's Backoff): {text}"));
            }
        }
    }

    // gRPC statuses are made in crossrole-server's error.rs (and, for undecodable bodies, crossrole-proto's codec).
    for dir in ["crates/crossrole-server/src", "crates/crossrole-engine/src", "crates/crossrole-aws/src"] {
        for (file, line, text) in grep(
            &root.join(dir),
            &[
                "Status::new(",
                "Status::internal(",
                "Status::invalid_argument(",
                "Status::unavailable(",
                "Status::with_error_details(",
            ],
        ) {
            if !file.ends_with("server/src/error.rs") {
                problems.push(format!("{file}:{line}: statuses are made in crossrole-server/src/error.rs: {text}"));
            }
        }
    }

    problems.extend(architecture_graph(&root)?);

    if problems.is_empty() {
        eprintln!(
            "invariants: core pure and free of the wire, engine/AWS/journal on domain types, SDK small, AWS calls and \
             their waits in the call layer, one backoff, statuses in one place"
        );
        Ok(())
    } else {
        bail!("architecture invariants broken (see ARCHITECTURE.md):\n  {}", problems.join("\n  "))
    }
}

/// `(file, line number, line)` of the lines under `dir` that contain any of `needles`, outside comments and
/// `#[cfg(test)]` modules.
fn grep(dir: &Path, needles: &[&str]) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for file in rust_files(dir, Tests::Excluded) {
        let Ok(text) = fs::read_to_string(&file) else { continue };
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|n| code.contains(n)) {
                out.push((file.display().to_string(), i + 1, line.trim().to_string()));
            }
        }
    }
    out
}

/// The names of every crate `krate` depends on (normal dependencies, transitively).
fn dependencies(root: &Path, krate: &str) -> Result<Vec<String>> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args(["tree", "--locked", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .context("cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree -p {krate} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect())
}

/// ARCHITECTURE.md's dependency block against the manifests: every crossrole crate with exactly the crossrole
/// crates it depends on, each dependency further down the list (so the arrows all point one way).
fn architecture_graph(root: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(root.join("ARCHITECTURE.md")).context("ARCHITECTURE.md")?;
    let block = text
        .split("```dependencies\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .context("ARCHITECTURE.md has no ```dependencies block")?;
    let mut drawn: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let krate = words.next().unwrap_or_default().to_string();
        let deps = words.skip_while(|w| *w != "──►").skip(1).map(String::from).collect();
        drawn.push((krate, deps));
    }
    let out = Command::new("cargo")
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .context("cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = packages.iter().filter_map(|p| p["name"].as_str().map(String::from)).collect();
    let mut problems = Vec::new();
    for p in &packages {
        let name = p["name"].as_str().unwrap_or_default();
        let mut real: Vec<String> = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(String::from))
            .filter(|d| names.contains(d) && d != name)
            .collect();
        real.sort();
        let Some(at) = drawn.iter().position(|(k, _)| k == name) else {
            problems.push(format!("ARCHITECTURE.md: {name} is missing from the dependency block"));
            continue;
        };
        let mut shown = drawn[at].1.clone();
        for d in &shown {
            match drawn.iter().position(|(k, _)| k == d) {
                Some(below) if below > at => {}
                _ => problems.push(format!("ARCHITECTURE.md: {name} ──► {d} does not point down the list")),
            }
        }
        shown.sort();
        if shown != real {
            problems.push(format!("ARCHITECTURE.md: {name} depends on {real:?}, the block shows {shown:?}"));
        }
    }
    for (k, _) in &drawn {
        if !names.contains(k) {
            problems.push(format!("ARCHITECTURE.md: {k} is not a crate of the workspace"));
        }
    }
    Ok(problems)
}
