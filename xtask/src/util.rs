//! Small helpers: running commands loudly, the workspace's Rust files, and tools xtask installs into `.cache/` on
//! demand.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

/// Runs a command in the workspace root, echoing it, failing with its exit status.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<()> {
    run_in(&crate::workspace_root(), program, args, &[])
}

/// Runs a command in `dir` with extra environment, echoing it.
pub(crate) fn run_in(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let started = Instant::now();
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    eprintln!("  ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Which Rust files [`rust_files`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tests {
    /// Every `.rs` file.
    Included,
    /// None of the test modules': no file under a folder named `tests`, nor one named `tests.rs`.
    Excluded,
}

/// The `.rs` files under `dir`, at any depth (none where a folder cannot be read).
pub(crate) fn rust_files(dir: &Path, tests: Tests) -> Vec<PathBuf> {
    let excluded = |p: &Path, name: &str| tests == Tests::Excluded && p.file_name().is_some_and(|n| n == name);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !excluded(&p, "tests") {
                out.extend(rust_files(&p, tests));
            }
        } else if p.extension().is_some_and(|x| x == "rs") && !excluded(&p, "tests.rs") {
            out.push(p);
        }
    }
    out
}

/// The cache folder for tools and emulators (git-ignored).
pub(crate) fn cache_dir() -> PathBuf {
    crate::workspace_root().join(".cache")
}

/// Installs the npm package `spec` into `dir/node_modules`, and nowhere else: npm puts packages in the nearest
/// ancestor that has a `node_modules` or `package.json`, so `dir` gets its own `package.json` and `--prefix`.
pub(crate) fn npm_install(dir: &std::path::Path, spec: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        std::fs::write(&manifest, "{\"private\": true}\n")?;
    }
    let prefix = dir.to_str().unwrap_or(".");
    run_in(dir, "npm", &["install", "--no-audit", "--no-fund", "--silent", "--no-save", "--prefix", prefix, spec], &[])
}

/// Pinned version of buf, from the npm registry.
const BUF_VERSION: &str = "1.75.0";

/// The buf binary, installed with npm into `.cache/tools/buf` if it is not there yet. (Each npm tool has its own
/// folder: an `npm install --no-save` removes what another one put in the same folder.)
pub(crate) fn buf() -> Result<PathBuf> {
    let tools = cache_dir().join("tools/buf");
    let bin = tools.join("node_modules/.bin/buf");
    let marker = tools.join(format!(".buf-{BUF_VERSION}"));
    if bin.exists() && marker.exists() {
        return Ok(bin);
    }
    npm_install(&tools, &format!("@bufbuild/buf@{BUF_VERSION}"))
        .context("installing buf from the npm registry (needs node and npm)")?;
    std::fs::write(&marker, "")?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_files_with_and_without_the_tests() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-rust-files-{}", std::process::id()));
        for file in ["a.rs", "notes.txt", "tests/b.rs", "sub/tests.rs", "sub/c.rs", "sub/deeper/tests/d.rs"] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
            std::fs::write(path, "")?;
        }
        let found = |tests| {
            let mut names: Vec<String> = rust_files(&dir, tests)
                .iter()
                .filter_map(|p| p.strip_prefix(&dir).ok().map(|p| p.display().to_string()))
                .collect();
            names.sort();
            names
        };
        let (included, excluded) = (found(Tests::Included), found(Tests::Excluded));
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(included, ["a.rs", "sub/c.rs", "sub/deeper/tests/d.rs", "sub/tests.rs", "tests/b.rs"]);
        assert_eq!(excluded, ["a.rs", "sub/c.rs"]);
        Ok(())
    }
}
