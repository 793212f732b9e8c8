//! The IAM judge: `@cloud-copilot/iam-simulate`, an IAM policy evaluator crossrole did not write, installed from the
//! npm registry into `.cache/tools/iam-judge` with `npm ci` from `xtask/iam-judge/package-lock.json` (every
//! package pinned by version and integrity), and the scripts in `xtask/iam-judge/` that drive it.
//!
//! Claims about what IAM allows are judged here, never by crossrole's own evaluator: the ceiling's templates
//! (`cargo xtask deploy-check`) and, in the e2e suite, the trust and grant policies crossroled wrote and the calls it
//! made (`IAM_JUDGE` and `IAM_JUDGE_MODULES` point the tests at it).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::util::{cache_dir, run_in};

/// The folder of the judge's scripts.
pub(crate) fn scripts() -> PathBuf {
    crate::workspace_root().join("xtask/iam-judge")
}

/// Installs the pinned packages if the lock file changed since the last install; returns their `node_modules`.
pub(crate) fn install() -> Result<PathBuf> {
    let dir = cache_dir().join("tools/iam-judge");
    let modules = dir.join("node_modules");
    let lock = std::fs::read(scripts().join("package-lock.json")).context("reading xtask/iam-judge's lock file")?;
    let marker = dir.join(".installed-lock");
    if modules.exists() && std::fs::read(&marker).is_ok_and(|m| m == lock) {
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(scripts().join("package.json"), dir.join("package.json"))?;
    std::fs::write(dir.join("package-lock.json"), &lock)?;
    run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund", "--silent"], &[])
        .context("installing @cloud-copilot/iam-simulate from the npm registry (needs node and npm)")?;
    std::fs::write(&marker, &lock)?;
    Ok(modules)
}

/// The environment the judge's scripts and the e2e tests find it by.
pub(crate) fn env() -> Result<Vec<(String, String)>> {
    let modules = install()?;
    Ok(vec![
        ("IAM_JUDGE".to_string(), scripts().join("judge.mjs").display().to_string()),
        ("IAM_JUDGE_MODULES".to_string(), modules.display().to_string()),
    ])
}

/// The ceiling's matrix over deploy/aws/ (`xtask/iam-judge/ceiling.mjs`): fails unless every request is decided as
/// expected.
pub(crate) fn ceiling_matrix() -> Result<()> {
    let env = env()?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let deploy = crate::workspace_root().join("deploy/aws");
    run_in(&scripts(), "node", &["ceiling.mjs", deploy.to_str().unwrap_or("../../deploy/aws")], &env)
        .context("the ceiling's matrix (deploy/aws/ judged by @cloud-copilot/iam-simulate)")
}
