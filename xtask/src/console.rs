//! `cargo xtask console [--check]`: the web console (`web/`). Installs its npm packages from the lockfile
//! (`npm ci`, into `web/node_modules`), generates the TypeScript client from proto/ (`buf generate`, with
//! protoc-gen-es) into `web/src/gen`, type-checks, and builds the page with Vite into
//! `crates/crossrole-server/console`, which crossroled embeds. Both outputs are checked in, so a plain `cargo
//! build` needs no Node; `--check` builds both into a scratch directory and fails when either differs from what is
//! checked in (as `codegen --check` does for the Rust code).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::util::run_in;

/// The console's sources.
pub(crate) fn web_dir() -> PathBuf {
    crate::workspace_root().join("web")
}

/// Installs the console's npm packages from its lockfile, unless they are there for this lockfile already.
pub(crate) fn install() -> Result<()> {
    let web = web_dir();
    let lock = std::fs::read(web.join("package-lock.json")).context("web/package-lock.json")?;
    let marker = web.join("node_modules/.crossrole-lock");
    if std::fs::read(&marker).is_ok_and(|m| m == lock) {
        return Ok(());
    }
    run_in(&web, "npm", &["ci", "--no-audit", "--no-fund", "--silent"], &[])
        .context("installing the console's npm packages (needs node and npm)")?;
    std::fs::write(marker, lock)?;
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let check = args.iter().any(|a| a == "--check");
    install()?;
    let web = web_dir();
    let bin = web.join("node_modules/.bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let env = [("PATH", path.as_str())];
    let built = crate::workspace_root().join("crates/crossrole-server/console");
    if !check {
        run_in(&web, "buf", &["generate", "--template", "buf.gen.yaml"], &env)?;
        run_in(&web, "tsc", &["--noEmit"], &env)?;
        run_in(&web, "vite", &["build", "--logLevel", "warn"], &env)?;
        eprintln!("console: client generated into web/src/gen, page built into {}", built.display());
        return Ok(());
    }
    let scratch = crate::workspace_root().join("target/console-check");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let out = scratch.to_str().unwrap_or(".");
    run_in(&web, "buf", &["generate", "--template", "buf.gen.yaml", "--output", out], &env)?;
    compare(&scratch.join("src/gen"), &web.join("src/gen"), "web/src/gen")?;
    run_in(&web, "tsc", &["--noEmit"], &env)?;
    let dist = scratch.join("console");
    run_in(
        &web,
        "vite",
        &["build", "--logLevel", "warn", "--outDir", dist.to_str().unwrap_or("."), "--emptyOutDir"],
        &env,
    )?;
    compare(&dist, &built, "crates/crossrole-server/console")?;
    eprintln!("console: the checked-in client and page are what web/ builds");
    Ok(())
}

/// Fails unless `fresh` and `kept` hold the same files with the same bytes.
fn compare(fresh: &Path, kept: &Path, name: &str) -> Result<()> {
    let (a, b) = (files(fresh)?, files(kept)?);
    let stale: Vec<&String> = a
        .iter()
        .filter(|(p, bytes)| b.iter().find(|(q, _)| q == p).is_none_or(|(_, other)| other != bytes))
        .map(|(p, _)| p)
        .chain(b.iter().filter(|(p, _)| !a.iter().any(|(q, _)| q == p)).map(|(p, _)| p))
        .collect();
    if !stale.is_empty() {
        bail!(
            "{name} is stale ({}): run `cargo xtask console` and commit the result",
            stale.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir)?.display().to_string();
                out.push((rel, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}
