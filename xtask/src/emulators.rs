//! The AWS emulators, installed and run by xtask itself; no container engine is needed.
//!
//! Each emulator gets a Python venv in `.cache/venvs/` at a pinned version (re-runs reuse it) and runs as a plain
//! process on a free 127.0.0.1 port. xtask stops exactly the processes it started: SIGTERM, a grace period, then
//! SIGKILL of the same PID (LocalStack sometimes hangs on SIGTERM) — on success, on failure, and on Ctrl-C.
//!
//! What the project relies on:
//! - LocalStack's community runtime runs on the host (`python -m localstack.runtime.main`) and serves IAM, STS,
//!   CloudFormation and SQS; it answers Organizations with HTTP 501, which moto serves instead.
//! - LocalStack takes a 12-digit access key id for the calling account; moto takes the caller for 123456789012
//!   unless it uses credentials from AssumeRole (which act in the role's account). The seeded management account is
//!   123456789012 and its access key id the same, so both agree on who calls.
//! - Neither enforces trust policies or IAM permissions, nor refuses AssumeRole for a role that does not exist:
//!   what IAM would allow or refuse is judged by the in-memory AWS and the IAM judge; nothing is asserted on the
//!   emulators that passes only because they are lax.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::util::{cache_dir, run_in};

/// Pinned LocalStack: the newest whose community runtime works on Python 3.11 (later releases need 3.12, and
/// 4.14.0's STS fails on 3.11), and the pins of its dependencies it needs.
const LOCALSTACK: &[&str] =
    &["localstack-core[runtime]==4.13.1", "cbor2<6", "pyopenssl<26", "cryptography<47", "service-identity"];
/// Pinned moto.
const MOTO: &[&str] = &["moto[server]==5.2.5"];

/// Which emulator serves which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// LocalStack community for IAM and STS, moto for Organizations (LocalStack community answers 501 for it).
    LocalStack,
    /// moto for all three.
    Moto,
    /// LocalStack for all three (needs LOCALSTACK_AUTH_TOKEN).
    LocalStackPro,
}

impl Mode {
    pub(crate) fn parse(s: &str) -> Result<Mode> {
        Ok(match s {
            "localstack" => {
                if std::env::var_os("LOCALSTACK_AUTH_TOKEN").is_some() {
                    Mode::LocalStackPro
                } else {
                    Mode::LocalStack
                }
            }
            "moto" => Mode::Moto,
            other => bail!("--emulator {other}: expected localstack or moto"),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::LocalStack => "localstack",
            Mode::Moto => "moto",
            Mode::LocalStackPro => "localstack-pro",
        }
    }
}

/// PIDs this xtask started, for the Ctrl-C handler.
static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills whatever this process started and is still running (on Ctrl-C).
pub(crate) fn kill_started() {
    let pids: Vec<u32> = STARTED.lock().map(|p| p.clone()).unwrap_or_default();
    for pid in pids {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// A running process we own.
pub(crate) struct Process {
    name: String,
    child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Process {
    pub(crate) fn spawn(name: &str, mut command: Command, log: PathBuf) -> Result<Process> {
        let out = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        if let Ok(mut p) = STARTED.lock() {
            p.push(child.id());
        }
        Ok(Process { name: name.into(), child: Some(child), log })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it exited (and with what).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL the same PID.
    pub(crate) fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id();
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("{} did not stop within {grace:?}; killing pid {pid}", self.name);
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let Ok(mut p) = STARTED.lock() {
            p.retain(|x| *x != pid);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The venv `name` with `packages`, made (or reused) under `.cache/venvs`. Returns its bin directory.
pub(crate) fn venv(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let dir = cache_dir().join("venvs").join(name);
    let marker = dir.join(".crossrole-installed");
    let wanted = packages.join(" ");
    if fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir.join("bin"));
    }
    let python = std::env::var("CROSSROLE_PYTHON").unwrap_or_else(|_| "python3".into());
    fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
    eprintln!("installing {name} ({wanted}) into {}", dir.display());
    run_in(&cache_dir(), &python, &["-m", "venv", dir.to_str().unwrap_or_default()], &[])?;
    let pip = dir.join("bin/pip");
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend_from_slice(packages);
    run_in(&cache_dir(), pip.to_str().unwrap_or("pip"), &args, &[])?;
    fs::write(&marker, &wanted)?;
    Ok(dir.join("bin"))
}

/// Installs what the mode needs.
pub(crate) fn install(mode: Mode) -> Result<(Option<PathBuf>, PathBuf)> {
    let moto = venv("moto", MOTO)?;
    let localstack = match mode {
        Mode::Moto => None,
        _ => Some(venv("localstack", LOCALSTACK)?),
    };
    Ok((localstack, moto))
}

fn http_ok(url: &str) -> bool {
    Command::new("curl").args(["-sf", "-o", "/dev/null", "--max-time", "2", url]).status().is_ok_and(|s| s.success())
}

fn wait_until(name: &str, process: &mut Process, timeout: Duration, ready: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready() {
            eprintln!("{name} ready in {:.1}s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        if let Some(status) = process.exited() {
            bail!("{name} exited ({status}) before it was ready; see {}", process.log.display());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{name} did not answer within {timeout:?}; see {}", process.log.display())
}

/// Running emulators and where each service is.
pub(crate) struct Emulators {
    pub(crate) mode: Mode,
    pub(crate) organizations: String,
    pub(crate) iam: String,
    pub(crate) sts: String,
    /// SQS, for the Organizations events queue.
    pub(crate) sqs: String,
    pub(crate) moto_bin: PathBuf,
    processes: Vec<Process>,
    pub(crate) dir: PathBuf,
}

impl Emulators {
    /// Installs (once) and starts the emulators for `mode`, with their state under `dir`.
    pub(crate) fn start(mode: Mode, dir: &Path) -> Result<Emulators> {
        let (localstack_bin, moto_bin) = install(mode)?;
        fs::create_dir_all(dir)?;
        let mut processes = Vec::new();

        let moto_port = free_port()?;
        let moto_url = format!("http://127.0.0.1:{moto_port}");
        let mut cmd = Command::new(moto_bin.join("moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p", &moto_port.to_string()]).current_dir(dir);
        if mode == Mode::Moto {
            // AWS managed policies (SecurityAudit, ReadOnlyAccess, ...) exist only when loaded. Loading them into
            // every account makes CreateAccount take about 1 s instead of 10 ms, so only when moto serves IAM.
            cmd.env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
        }
        let mut moto = Process::spawn("moto", cmd, dir.join("moto.log"))?;
        wait_until("moto", &mut moto, Duration::from_secs(60), || http_ok(&format!("{moto_url}/moto-api/data.json")))?;
        processes.push(moto);

        let (iam, sts, organizations) = match (mode, localstack_bin) {
            (Mode::Moto, _) | (_, None) => (moto_url.clone(), moto_url.clone(), moto_url.clone()),
            (_, Some(bin)) => {
                let port = free_port()?;
                let ls_dir = dir.join("localstack");
                for sub in ["fs", "config", "tmp"] {
                    fs::create_dir_all(ls_dir.join(sub))?;
                }
                // CloudFormation deploys deploy/aws/crossrole-bootstrap.yaml in the e2e setup.
                let services = if mode == Mode::LocalStackPro {
                    "iam,sts,organizations,cloudformation,sqs"
                } else {
                    "iam,sts,cloudformation,sqs"
                };
                let mut cmd = Command::new(bin.join("python"));
                cmd.args(["-m", "localstack.runtime.main"])
                    .current_dir(&ls_dir)
                    .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                    // Never taken for a container (a marker file at the root can suggest one): LocalStack would
                    // then bind 0.0.0.0 and write into a system data folder.
                    .env("OVERRIDE_IN_DOCKER", "0")
                    // The default server ignores the bind address.
                    .env("GATEWAY_SERVER", "hypercorn")
                    // Else it serves DNS on port 53.
                    .env("DNS_ADDRESS", "0")
                    .env("DISABLE_EVENTS", "1")
                    .env("SERVICES", services)
                    // Queue URLs on the gateway's own address (the default names hosts that need DNS).
                    .env("SQS_ENDPOINT_STRATEGY", "path")
                    .env("PERSISTENCE", "0")
                    .env("FILESYSTEM_ROOT", ls_dir.join("fs"))
                    .env("CONFIG_DIR", ls_dir.join("config"))
                    .env("TMPDIR", ls_dir.join("tmp"));
                let mut ls = Process::spawn("localstack", cmd, dir.join("localstack.log"))?;
                let url = format!("http://127.0.0.1:{port}");
                let health = format!("{url}/_localstack/health");
                wait_until("localstack", &mut ls, Duration::from_secs(120), || http_ok(&health))?;
                processes.push(ls);
                let orgs = if mode == Mode::LocalStackPro { url.clone() } else { moto_url.clone() };
                (url.clone(), url, orgs)
            }
        };
        // SQS where IAM is: LocalStack's, or moto's.
        let sqs = iam.clone();
        Ok(Emulators { mode, organizations, iam, sts, sqs, moto_bin, processes, dir: dir.to_path_buf() })
    }

    /// Seeds the organization with the seed's `options` (`("adopt-role", "SecurityAudit")` passes
    /// `--adopt-role SecurityAudit`); returns the manifest's path.
    fn seed(&self, sizes: &[(&str, usize)], options: &[(&str, &str)]) -> Result<PathBuf> {
        let manifest = self.dir.join("manifest.json");
        let script = crate::workspace_root().join("tests/e2e/seed/seed.py");
        let mode = match self.mode {
            Mode::Moto => "moto",
            _ => "localstack",
        };
        let template = crate::workspace_root().join("deploy/aws/crossrole-bootstrap.yaml");
        let mut args: Vec<String> = vec![
            script.display().to_string(),
            "--bootstrap-template".into(),
            template.display().to_string(),
            "--mode".into(),
            mode.into(),
            "--organizations".into(),
            self.organizations.clone(),
            "--iam".into(),
            self.iam.clone(),
            "--sts".into(),
            self.sts.clone(),
            "--out".into(),
            manifest.display().to_string(),
        ];
        for (k, v) in sizes {
            args.push(format!("--{k}"));
            args.push(v.to_string());
        }
        for (k, v) in options {
            args.push(format!("--{k}"));
            args.push(v.to_string());
        }
        let started = Instant::now();
        let status =
            Command::new(self.moto_bin.join("python")).args(&args).status().context("running the seed script")?;
        if !status.success() {
            bail!("seeding failed ({status})");
        }
        eprintln!("seeded in {:.1}s", started.elapsed().as_secs_f64());
        Ok(manifest)
    }

    /// Seeds the organization and reads what was made.
    pub(crate) fn seeded(&self, sizes: &[(&str, usize)]) -> Result<Seeded> {
        self.seeded_with(sizes, &[])
    }

    /// Seeds the organization with the seed's `options` (see [`Emulators::seed`]) and reads what was made.
    pub(crate) fn seeded_with(&self, sizes: &[(&str, usize)], options: &[(&str, &str)]) -> Result<Seeded> {
        let path = self.seed(sizes, options)?;
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path)?).context("the seed's manifest")?;
        let credential = |k: &str| manifest["credentials"][k].as_str().unwrap_or_default().to_string();
        let aws_env = self.aws_env(&credential("access_key_id"), &credential("secret_access_key"));
        Ok(Seeded { path, manifest, aws_env })
    }

    /// Environment that points the AWS SDK (and crossroled) at the emulators.
    pub(crate) fn aws_env(&self, access_key: &str, secret: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL_IAM".into(), self.iam.clone()),
            ("AWS_ENDPOINT_URL_STS".into(), self.sts.clone()),
            ("AWS_ENDPOINT_URL_ORGANIZATIONS".into(), self.organizations.clone()),
            ("AWS_ENDPOINT_URL_SQS".into(), self.sqs.clone()),
            ("AWS_ACCESS_KEY_ID".into(), access_key.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ]
    }

    /// Stops everything, newest first.
    pub(crate) fn stop(&mut self) {
        while let Some(mut p) = self.processes.pop() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// PIDs, for the report.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(Process::pid).collect()
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A seeded organization: its manifest, and the environment that reaches the emulators with its credentials.
pub(crate) struct Seeded {
    /// The manifest's path.
    pub(crate) path: PathBuf,
    /// What the seed made (tests/e2e/seed/seed.py).
    pub(crate) manifest: serde_json::Value,
    /// The emulators' endpoints and the management credentials.
    pub(crate) aws_env: Vec<(String, String)>,
}

impl Seeded {
    /// `examples/<name>`, the seeded security account in place of the placeholder, written into `dir`.
    pub(crate) fn example(&self, name: &str, dir: &Path) -> Result<PathBuf> {
        let security = self.manifest["security_account"].as_str().unwrap_or_default();
        let text = fs::read_to_string(crate::workspace_root().join("examples").join(name))?;
        let path = dir.join(name);
        fs::write(&path, text.replace("111122223333", security))?;
        Ok(path)
    }
}
