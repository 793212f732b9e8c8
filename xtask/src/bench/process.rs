//! The processes the parts start: a benchmark step's output, crossroled's token hash and health, and the memory
//! of a process as Linux reports it.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::emulators::Process;

/// The standard output of `cmd`, trimmed; its standard error goes to ours.
pub(super) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().context("running a benchmark step")?;
    if !out.status.success() {
        bail!("benchmark step failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The hash crossroled's configuration keeps for `token`.
pub(super) fn token_hash(crossroled: &Path, token: &str) -> Result<String> {
    let mut hash =
        Command::new(crossroled).args(["token", "hash"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    hash.stdin.take().context("stdin")?.write_all(token.as_bytes())?;
    Ok(String::from_utf8(hash.wait_with_output()?.stdout)?.trim().to_string())
}

/// Waits (up to 30 s) until the crossroled at `endpoint` answers its health check.
pub(super) fn until_serving(crossroled: &Path, endpoint: &str, server: &Process) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new(crossroled)
        .args(["healthcheck", "--endpoint", endpoint])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        if Instant::now() > deadline {
            bail!("crossroled did not start; see {}", server.log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Resident memory of `pid` now (VmRSS), in MiB; 0 when it cannot be read.
pub(super) fn rss(pid: Option<u32>) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// Peak resident memory of `pid` (VmHWM), in MiB; 0 when it cannot be read.
pub(super) fn peak_rss(pid: Option<u32>) -> f64 {
    status_mib(pid, "VmHWM:")
}

fn status_mib(pid: Option<u32>, field: &str) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
