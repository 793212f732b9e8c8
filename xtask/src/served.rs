//! crossroled started for a task (the demo, the soak): a random admin token, a configuration holding only its hash,
//! the server on a free port against the emulators, and the CLI pointed at it.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::emulators::{Process, free_port};

/// A running crossroled and the CLI to speak to it.
pub(crate) struct Served {
    /// The server process.
    pub(crate) server: Process,
    /// `http://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    /// The port.
    pub(crate) port: u16,
    /// The admin token.
    pub(crate) token: String,
    crossrole: PathBuf,
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("crt_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

impl Served {
    /// Starts crossroled with its data under `dir/data`, `extra` appended to its configuration (TOML: top-level
    /// settings, then tables), and `env` (the emulators' endpoints and credentials); waits until it answers.
    pub(crate) fn start(
        dir: &Path,
        crossroled: &Path,
        crossrole: &Path,
        env: Vec<(String, String)>,
        extra: &str,
    ) -> Result<Served> {
        let token = random_token()?;
        let mut hash =
            Command::new(crossroled).args(["token", "hash"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        hash.stdin.take().context("stdin")?.write_all(token.as_bytes())?;
        let hash = String::from_utf8(hash.wait_with_output()?.stdout)?.trim().to_string();
        let port = free_port()?;
        let config = dir.join("crossroled.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}\n[[tokens]]\nname = \"admin\"\nsha256 = \
                 \"{hash}\"\nscope = \"admin\"\n",
                dir.join("data").display()
            ),
        )?;
        let mut command = Command::new(crossroled);
        command.arg("--config").arg(&config).envs(env);
        let server = Process::spawn("crossroled", command, dir.join("crossroled.log"))?;
        let mut served = Served {
            server,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            token,
            crossrole: crossrole.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !served.quiet(&["ops", "list"]) {
            if served.server.exited().is_some() || Instant::now() > deadline {
                bail!("crossroled did not start; see {}", served.server.log.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(served)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.crossrole);
        c.args(args).env("CROSSROLE_ENDPOINT", &self.endpoint).env("CROSSROLE_TOKEN", &self.token);
        c
    }

    /// Runs the CLI, its output to this terminal.
    pub(crate) fn cli(&self, args: &[&str]) -> Result<ExitStatus> {
        Ok(self.command(args).status()?)
    }

    /// Runs the CLI quietly: whether it succeeded.
    pub(crate) fn quiet(&self, args: &[&str]) -> bool {
        self.command(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    /// Runs the CLI and returns what it printed, failing with its errors.
    pub(crate) fn output(&self, args: &[&str]) -> Result<String> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            bail!("crossrole {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}
