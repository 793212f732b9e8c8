//! Dependency hygiene, offline, from `cargo metadata` and the sources: every dependency a crate declares is used
//! by it, every crate in the build has a license from the allowed list, and every crate built in two versions is
//! on a reviewed list (`xtask/duplicates.txt`) — which is kept exact, so a duplicate that goes away is struck off.
//!
//! This stands in for `cargo machete` and `cargo deny check licenses bans`, so that the check needs nothing beyond
//! cargo and works offline (`cargo deny` wants the advisory database from GitHub); the rules are the same.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util::{Tests, rust_files};

/// Licenses any crate in the build may have (SPDX); an expression passes when one `OR` branch has only these.
const ALLOWED_LICENSES: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "CC0-1.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "BSL-1.0",
    "MPL-2.0",
    "CDLA-Permissive-2.0",
    "Unlicense",
];

/// Declared dependencies no source names, on purpose: (crate, dependency, why).
const USED_WITHOUT_A_NAME: &[(&str, &str, &str)] = &[];

/// Runs every check; fails with all the problems found.
pub(crate) fn check() -> Result<()> {
    let root = crate::workspace_root();
    let out = Command::new("cargo")
        .current_dir(&root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    let mut problems = unused(&meta);
    problems.extend(licenses(&meta));
    problems.extend(duplicates(&meta, &root.join("xtask/duplicates.txt"))?);
    if problems.is_empty() {
        eprintln!("dependencies: none unused, licenses allowed, duplicate versions as reviewed");
        Ok(())
    } else {
        bail!("dependency checks failed:\n  {}", problems.join("\n  "))
    }
}

fn packages(meta: &Value) -> impl Iterator<Item = &Value> {
    meta["packages"].as_array().into_iter().flatten()
}

fn members(meta: &Value) -> BTreeSet<&str> {
    meta["workspace_members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Declared dependencies that no source of the crate names.
fn unused(meta: &Value) -> Vec<String> {
    let members = members(meta);
    let mut problems = Vec::new();
    for p in packages(meta).filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id))) {
        let name = p["name"].as_str().unwrap_or_default();
        let dir = Path::new(p["manifest_path"].as_str().unwrap_or_default()).parent().unwrap_or(Path::new("."));
        let code = |dirs: &[&str]| -> String {
            let mut text = String::new();
            for d in dirs {
                for f in rust_files(&dir.join(d), Tests::Included) {
                    text.push_str(&fs::read_to_string(f).unwrap_or_default());
                    text.push('\n');
                }
            }
            if dirs.contains(&"src") {
                text.push_str(&fs::read_to_string(dir.join("build.rs")).unwrap_or_default());
            }
            text
        };
        let normal = code(&["src"]);
        let dev = code(&["src", "tests", "benches", "examples"]);
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["rename"].as_str().or(d["name"].as_str()).unwrap_or_default();
            if dep == name || USED_WITHOUT_A_NAME.iter().any(|(c, n, _)| *c == name && *n == dep) {
                continue;
            }
            let ident = dep.replace('-', "_");
            let (text, kind) = match d["kind"].as_str() {
                None => (&normal, "dependency"),
                Some("dev") => (&dev, "dev-dependency"),
                Some(_) => continue,
            };
            if !names(text, &ident) {
                problems.push(format!("{name}: the {kind} {dep} is not used (no `{ident}` in its sources)"));
            }
        }
    }
    problems
}

/// Whether `text` names the crate `ident` as a path (`ident::`, `use ident`, `ident as`, `#[ident::…]`).
fn names(text: &str, ident: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(ident) {
        let at = from + i;
        let end = at + ident.len();
        let before_ok = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = &text[end..];
        let after_ok = rest.starts_with("::")
            || rest.starts_with(';')
            || rest.starts_with(" as ")
            || rest.starts_with(',')
            || rest.starts_with('}');
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    false
}

/// Whether an SPDX expression is allowed: evaluated with `OR` (or the old `/`) as "either" and `AND` as "both",
/// each license (with its `WITH` exception) looked up in the allowed list.
pub(crate) fn license_allowed(expr: &str) -> bool {
    let spaced = expr.replace('(', " ( ").replace(')', " ) ").replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let ok = or(&tokens, &mut at);
    ok == Some(true) && at == tokens.len()
}

fn or(t: &[&str], at: &mut usize) -> Option<bool> {
    let mut v = and(t, at)?;
    while t.get(*at) == Some(&"OR") {
        *at += 1;
        v |= and(t, at)?;
    }
    Some(v)
}

fn and(t: &[&str], at: &mut usize) -> Option<bool> {
    let mut v = atom(t, at)?;
    while t.get(*at) == Some(&"AND") {
        *at += 1;
        v &= atom(t, at)?;
    }
    Some(v)
}

fn atom(t: &[&str], at: &mut usize) -> Option<bool> {
    let first = *t.get(*at)?;
    *at += 1;
    if first == "(" {
        let v = or(t, at)?;
        (t.get(*at) == Some(&")")).then(|| *at += 1)?;
        return Some(v);
    }
    let mut license = first.to_string();
    if t.get(*at) == Some(&"WITH") {
        license = format!("{first} WITH {}", t.get(*at + 1)?);
        *at += 2;
    }
    Some(ALLOWED_LICENSES.contains(&license.as_str()))
}

/// Crates in the build without an allowed license.
fn licenses(meta: &Value) -> Vec<String> {
    let members = members(meta);
    packages(meta)
        .filter(|p| p["id"].as_str().is_some_and(|id| !members.contains(id)))
        .filter_map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            let version = p["version"].as_str().unwrap_or_default();
            match p["license"].as_str() {
                Some(l) if license_allowed(l) => None,
                Some(l) => Some(format!("{name} {version}: license {l:?} is not on the allowed list")),
                None => Some(format!("{name} {version}: no license declared")),
            }
        })
        .collect()
}

/// Crates resolved in more than one version, against the reviewed list.
fn duplicates(meta: &Value, list: &Path) -> Result<Vec<String>> {
    // What the build resolves (every target platform), not every package the lock file lists.
    let resolved: BTreeSet<&str> =
        meta["resolve"]["nodes"].as_array().into_iter().flatten().filter_map(|n| n["id"].as_str()).collect();
    let mut versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in packages(meta).filter(|p| p["id"].as_str().is_some_and(|id| resolved.contains(id))) {
        let (name, version) = (p["name"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default());
        versions.entry(name).or_default().insert(version);
    }
    let found: BTreeMap<&str, String> = versions
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(n, v)| (n, v.into_iter().collect::<Vec<_>>().join(", ")))
        .collect();
    let text = fs::read_to_string(list).with_context(|| format!("{}", list.display()))?;
    let reviewed: BTreeSet<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or(l))
        .collect();
    let mut problems = Vec::new();
    for (name, v) in &found {
        if !reviewed.contains(name) {
            problems.push(format!(
                "{name} is built in several versions ({v}): align them, or add it to xtask/duplicates.txt with why"
            ));
        }
    }
    for name in reviewed {
        if !found.contains_key(name) {
            problems.push(format!("{name} is built in one version now: strike it from xtask/duplicates.txt"));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_expressions() {
        assert!(license_allowed("MIT OR Apache-2.0"));
        assert!(license_allowed("MIT/Apache-2.0"));
        assert!(license_allowed("(MIT OR Apache-2.0) AND Unicode-3.0"));
        assert!(license_allowed("Apache-2.0 AND ISC"));
        assert!(!license_allowed("GPL-3.0"));
        assert!(!license_allowed("MIT AND GPL-3.0"));
        assert!(license_allowed("GPL-3.0 OR MIT"));
        assert!(!license_allowed("(MIT OR Apache-2.0) AND GPL-3.0"));
        assert!(license_allowed("Apache-2.0 WITH LLVM-exception OR MIT"));
        assert!(!license_allowed("MIT OR"));
    }

    #[test]
    fn a_crate_is_named_as_a_path_not_as_a_word() {
        assert!(names("use serde::Serialize;", "serde"));
        assert!(names("#[tokio::test]", "tokio"));
        assert!(names("use tracing;", "tracing"));
        assert!(!names("let serde_json = 1;", "serde"));
        assert!(!names("// the tracing of calls", "tracing"));
        assert!(!names("my_uuid::new()", "uuid"));
    }
}
