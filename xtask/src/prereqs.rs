//! What a task needs from the machine, checked in its first seconds, before anything long runs: each tool is found,
//! installed by xtask, or missing — and then the task stops at once, naming every missing tool, what needs it and
//! how to get it. The Debian packages a task runs (PostgreSQL's server, Chromium) are installed here with apt-get
//! when they are missing and xtask runs as root, as in CI; the tools that come from npm, PyPI and crates.io are
//! installed into `.cache/` when first used, and what they come with (npm, Python, cargo) is checked here.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

/// A Debian package xtask installs with apt-get, non-interactively, when it is missing and xtask runs as root.
#[derive(Debug)]
pub(crate) struct Debian {
    /// What it is, for people.
    what: &'static str,
    /// Debian's package.
    package: &'static str,
    /// Where it is looked for, for people.
    place: &'static str,
    /// Where it is, when it is there.
    find: fn() -> Option<PathBuf>,
}

/// Where the browser tests find Chromium (Debian's package puts it there; playwright-core downloads no browser).
pub(crate) const CHROMIUM_PATH: &str = "/usr/bin/chromium";

/// Debian's Chromium: the web console's browser test and benchmark drive it headless.
pub(crate) const CHROMIUM: Debian = Debian {
    what: "Chromium",
    package: "chromium",
    place: CHROMIUM_PATH,
    find: || {
        let path = PathBuf::from(CHROMIUM_PATH);
        path.exists().then_some(path)
    },
};

/// Debian's PostgreSQL server: its `bin` folder, with `initdb` and `pg_ctl` (`crate::postgres` runs them).
pub(crate) const POSTGRES: Debian = Debian {
    what: "PostgreSQL's server",
    package: "postgresql",
    place: "/usr/lib/postgresql/*/bin",
    find: crate::postgres::binaries,
};

impl Debian {
    /// Where it is; installed first when it is missing and xtask may install it.
    pub(crate) fn ensure(&self) -> Result<PathBuf> {
        if let Some(found) = (self.find)() {
            return Ok(found);
        }
        if !may_apt_get() {
            bail!("{} is not in {}: {}", self.what, self.place, self.by_hand());
        }
        eprintln!("{} is not installed: installing Debian's package ({})", self.what, self.package);
        for args in [&["update"][..], &["install", "-y", "--no-install-recommends", self.package][..]] {
            let status = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status()?;
            if !status.success() {
                bail!("apt-get {} failed ({status})", args.join(" "));
            }
        }
        (self.find)()
            .with_context(|| format!("apt-get installed {}, yet {} is not in {}", self.package, self.what, self.place))
    }

    fn by_hand(&self) -> String {
        format!(
            "install it (Debian: apt-get install {}; xtask does when it runs as root), then run again",
            self.package
        )
    }
}

/// Whether xtask runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether xtask may install Debian packages itself: as root, with apt-get.
fn may_apt_get() -> bool {
    is_root() && Command::new("apt-get").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// How a missing tool gets onto the machine.
#[derive(Debug)]
enum Get {
    /// By the person running xtask, this way.
    ByHand(String),
    /// By xtask, with apt-get.
    Apt(&'static Debian),
}

/// One thing a task needs.
#[derive(Debug)]
pub(crate) struct Need {
    /// What it is.
    what: &'static str,
    /// What needs it.
    needed_by: &'static str,
    /// What was found (a version or a path); `None` when it is missing.
    found: Option<String>,
    /// How it gets onto the machine when it is missing.
    get: Get,
}

/// The first line a command prints to stdout, when it succeeds.
fn version(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success().then(|| text.lines().next().unwrap_or_default().trim().to_string())
}

impl Need {
    fn by_hand(what: &'static str, needed_by: &'static str, found: Option<String>, how: &'static str) -> Need {
        Need { what, needed_by, found, get: Get::ByHand(how.to_string()) }
    }

    fn debian(debian: &'static Debian, needed_by: &'static str) -> Need {
        let found = (debian.find)().map(|p| p.display().to_string());
        Need { what: debian.what, needed_by, found, get: Get::Apt(debian) }
    }

    pub(crate) fn rustfmt() -> Need {
        let found = version("cargo", &["fmt", "--version"]);
        Need::by_hand("rustfmt", "cargo fmt --check", found, "rustup component add rustfmt")
    }

    pub(crate) fn clippy() -> Need {
        let found = version("cargo", &["clippy", "--version"]);
        Need::by_hand("clippy", "cargo clippy", found, "rustup component add clippy")
    }

    pub(crate) fn nextest() -> Need {
        let found = version("cargo", &["nextest", "--version"]);
        Need::by_hand("cargo-nextest", "every test run", found, "cargo install cargo-nextest --locked")
    }

    /// A C and a C++ compiler: ring and the bundled SQLite are C, libFuzzer (the fuzz smoke) is C++.
    pub(crate) fn compilers() -> Vec<Need> {
        vec![
            Need::by_hand(
                "cc",
                "building ring and the bundled SQLite",
                version("cc", &["--version"]),
                "install a C compiler (Debian: apt-get install build-essential)",
            ),
            Need::by_hand(
                "c++",
                "the fuzz smoke (libFuzzer is C++)",
                version("c++", &["--version"]),
                "install a C++ compiler (Debian: apt-get install build-essential)",
            ),
        ]
    }

    /// Node.js and npm: buf and helm come from the npm registry, and the web console's packages and the IAM judge
    /// are installed with npm and run by node.
    pub(crate) fn node_and_npm() -> Vec<Need> {
        let how = "install Node.js with npm (Debian: apt-get install nodejs npm)";
        vec![
            Need::by_hand(
                "node",
                "the web console's build and browser test, the IAM judge",
                version("node", &["--version"]),
                how,
            ),
            Need::by_hand(
                "npm",
                "buf, helm, the web console's packages, the IAM judge",
                version("npm", &["--version"]),
                how,
            ),
        ]
    }

    /// Python 3.11 or newer with venv (`CROSSROLE_PYTHON`, else `python3`): the emulators and the deploy/ checks
    /// run in venvs made with it.
    pub(crate) fn python() -> Need {
        let python = std::env::var("CROSSROLE_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = "import sys, venv, ensurepip; print('Python', sys.version.split()[0]); \
                     sys.exit(sys.version_info < (3, 11))";
        Need::by_hand(
            "Python 3.11 or newer, with venv",
            "the emulators (LocalStack, moto) and the deploy/ checks, in venvs under .cache/",
            version(&python, &["-c", probe]),
            "install it (Debian: apt-get install python3 python3-venv), or name one in CROSSROLE_PYTHON",
        )
    }

    pub(crate) fn curl() -> Need {
        let found = version("curl", &["--version"]).map(|v| v.split(" (").next().unwrap_or_default().to_string());
        Need::by_hand("curl", "waiting for the emulators to answer", found, "install it (Debian: apt-get install curl)")
    }

    pub(crate) fn systemd_analyze() -> Need {
        Need::by_hand(
            "systemd-analyze",
            "the deploy/ check of the systemd unit",
            version("systemd-analyze", &["--version"]),
            "install it (Debian: apt-get install systemd)",
        )
    }

    pub(crate) fn postgres() -> Need {
        Need::debian(&POSTGRES, "the journal's tests on PostgreSQL and the replicas scenarios")
    }

    pub(crate) fn chromium() -> Need {
        Need::debian(&CHROMIUM, "the web console's browser test (e2e web_console)")
    }

    /// Free space where cargo builds: a build of everything from nothing needs far more than a warm one.
    pub(crate) fn disk_space() -> Need {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target"));
        // xtask's own build is there already; the engine's library only once the workspace was built.
        let built = std::fs::read_dir(target.join("debug").join("deps"))
            .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libcrossrole_engine-")))
            .unwrap_or(false);
        let cold = !built;
        let (found, how) = disk_verdict(free_bytes(&target), cold, &target);
        Need { what: "free disk space", needed_by: "the builds", found, get: Get::ByHand(how) }
    }
}

/// Free disk space a build of everything from nothing (the workspace not built into the target dir yet) needs, and
/// a warm one.
const COLD_BUILD_GIB: u64 = 12;
const WARM_BUILD_GIB: u64 = 4;
const GIB: u64 = 1 << 30;

/// The bytes free (to an unprivileged user) on the file system holding `path`, or its nearest existing parent;
/// `None` when `df` cannot tell.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let dir = path.ancestors().find(|p| p.is_dir())?;
    let out = Command::new("df").args(["-P", "-k"]).arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether `free` bytes are enough for a `cold` or a warm build into `target`: what was found (`None` when not
/// enough), and how to make room.
fn disk_verdict(free: Option<u64>, cold: bool, target: &std::path::Path) -> (Option<String>, String) {
    let needed = if cold { COLD_BUILD_GIB } else { WARM_BUILD_GIB };
    let build = if cold { "a build from nothing" } else { "a warm build" };
    let Some(free) = free else {
        return (Some(format!("not measured (df could not tell for {})", target.display())), String::new());
    };
    let said = format!("{:.1} GiB free for {}; {build} needs {needed} GiB", free as f64 / GIB as f64, target.display());
    if free >= needed * GIB {
        return (Some(said), String::new());
    }
    let how = format!(
        "{said}: delete target/debug/incremental (rebuilt as needed) or run `cargo clean`, or build with \
         CARGO_INCREMENTAL=0 (as CI does), which needs less"
    );
    (None, how)
}

/// What the check found: a line for each need, the packages to install, and what is missing (what needs it and how
/// to get it).
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    lines: Vec<String>,
    install: Vec<&'static str>,
    missing: Vec<String>,
}

/// Judges the needs; `may_apt_get` says whether xtask may install Debian packages.
fn judge(needs: &[Need], may_apt_get: bool) -> Verdict {
    let mut verdict = Verdict { lines: Vec::new(), install: Vec::new(), missing: Vec::new() };
    for need in needs {
        let Need { what, needed_by, found, get } = need;
        match (found, get) {
            (Some(found), _) => verdict.lines.push(format!("  ok       {what}: {found}")),
            (None, Get::Apt(debian)) if may_apt_get => {
                verdict.lines.push(format!(
                    "  install  {what}, for {needed_by}: not in {}; xtask installs Debian's package ({}) with apt-get",
                    debian.place, debian.package
                ));
                verdict.install.push(debian.package);
            }
            (None, get) => {
                let how = match get {
                    Get::ByHand(how) => how.clone(),
                    Get::Apt(debian) => debian.by_hand(),
                };
                verdict.lines.push(format!("  MISSING  {what}, for {needed_by}: {how}"));
                verdict.missing.push(format!("{what}, for {needed_by}: {how}"));
            }
        }
    }
    verdict
}

/// Checks what `task` needs, printing what was found and how each missing tool gets onto the machine; installs the
/// Debian packages xtask may install; fails at once, naming each tool, when anything else is missing.
pub(crate) fn check(task: &str, needs: &[Need]) -> Result<()> {
    let verdict = judge(needs, may_apt_get());
    eprintln!("prerequisites of `cargo xtask {task}`:");
    for line in &verdict.lines {
        eprintln!("{line}");
    }
    eprintln!(
        "  later    into .cache/ on first use: npm and pip packages at pinned versions, cargo-fuzz from crates.io"
    );
    if !verdict.missing.is_empty() {
        bail!("`cargo xtask {task}` cannot run here; missing:\n  {}", verdict.missing.join("\n  "));
    }
    for need in needs {
        if let (None, Get::Apt(debian)) = (&need.found, &need.get) {
            debian.ensure()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(needs: &[Need], may_apt_get: bool, expect: &[&str], install: &[&str], missing: usize) {
        let verdict = judge(needs, may_apt_get);
        assert_eq!(verdict.lines, expect);
        assert_eq!(verdict.install, install);
        assert_eq!(verdict.missing.len(), missing, "{:?}", verdict.missing);
    }

    fn need(what: &'static str, found: Option<&str>, get: Get) -> Need {
        Need { what, needed_by: "the test", found: found.map(String::from), get }
    }

    #[test]
    fn found_tools_pass_and_missing_ones_say_what_needs_them_and_how_to_get_them() {
        check(
            &[need("cargo-nextest", Some("cargo-nextest 0.9.143"), Get::ByHand("cargo install cargo-nextest".into()))],
            false,
            &["  ok       cargo-nextest: cargo-nextest 0.9.143"],
            &[],
            0,
        );
        check(
            &[need("npm", None, Get::ByHand("install Node.js with npm".into()))],
            true,
            &["  MISSING  npm, for the test: install Node.js with npm"],
            &[],
            1,
        );
    }

    #[test]
    fn a_missing_debian_package_is_installed_as_root_and_named_with_its_package_otherwise() {
        let chromium = || need("Chromium", None, Get::Apt(&CHROMIUM));
        check(
            &[chromium()],
            true,
            &["  install  Chromium, for the test: not in /usr/bin/chromium; xtask installs Debian's package \
                 (chromium) with apt-get"],
            &["chromium"],
            0,
        );
        check(
            &[chromium()],
            false,
            &["  MISSING  Chromium, for the test: install it (Debian: apt-get install chromium; xtask does when it \
                 runs as root), then run again"],
            &[],
            1,
        );
        check(
            &[need("PostgreSQL's server", Some("/usr/lib/postgresql/15/bin"), Get::Apt(&POSTGRES)), chromium()],
            true,
            &[
                "  ok       PostgreSQL's server: /usr/lib/postgresql/15/bin",
                "  install  Chromium, for the test: not in /usr/bin/chromium; xtask installs Debian's package \
                 (chromium) with apt-get",
            ],
            &["chromium"],
            0,
        );
    }

    #[test]
    fn too_little_disk_is_missing_with_what_was_found_and_how_to_make_room() {
        let target = std::path::Path::new("/w/target");
        let (found, _) = disk_verdict(Some(13 * GIB), true, target);
        assert_eq!(found.as_deref(), Some("13.0 GiB free for /w/target; a build from nothing needs 12 GiB"));
        let (found, how) = disk_verdict(Some(7 * GIB + GIB / 2), true, target);
        assert_eq!(found, None);
        assert!(how.starts_with("7.5 GiB free for /w/target; a build from nothing needs 12 GiB: delete"), "{how}");
        let (found, _) = disk_verdict(Some(7 * GIB + GIB / 2), false, target);
        assert_eq!(found.as_deref(), Some("7.5 GiB free for /w/target; a warm build needs 4 GiB"));
        let (found, _) = disk_verdict(None, true, target);
        assert!(found.is_some_and(|f| f.starts_with("not measured")));
    }

    #[test]
    fn every_missing_tool_is_named_not_only_the_first() {
        let verdict = judge(
            &[
                need("node", None, Get::ByHand("install Node.js".into())),
                need("curl", Some("curl 8"), Get::ByHand("apt-get install curl".into())),
                need("Python 3.11 or newer, with venv", None, Get::ByHand("install it".into())),
            ],
            true,
        );
        assert_eq!(
            verdict.missing,
            ["node, for the test: install Node.js", "Python 3.11 or newer, with venv, for the test: install it"]
        );
    }
}
