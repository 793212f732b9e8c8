//! A PostgreSQL server for the tests, like the emulators: Debian's server binaries (installed with apt-get when
//! missing and we may, by `crate::prereqs::POSTGRES`), a new cluster in a private temporary folder, on a free
//! loopback port, trust authentication for loopback only, run as the `postgres` user when we are root (PostgreSQL
//! refuses root), and stopped (`pg_ctl stop -m immediate`) and removed when dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::emulators::free_port;

/// `cargo xtask postgres <command…>`: runs the command against a throwaway PostgreSQL (its URL in
/// `CROSSROLE_TEST_POSTGRES`), then stops it.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some((program, rest)) = args.split_first() else {
        bail!("postgres <command…>: which command to run against the server, e.g. cargo nextest run -p crossrole-store")
    };
    let pg = Postgres::start()?;
    let status = Command::new(program)
        .args(rest)
        .env("CROSSROLE_TEST_POSTGRES", &pg.url)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", rest.join(" "));
    }
    Ok(())
}

/// A running PostgreSQL.
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// `postgres://crossrole@127.0.0.1:PORT/postgres`: a superuser, so tests may create databases.
    pub(crate) url: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
pub(crate) fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Postgres {
    /// Starts a new cluster for tests (fsync off: nothing there must survive a crash of the machine).
    pub(crate) fn start() -> Result<Postgres> {
        Self::start_with(false)
    }

    /// Starts a new cluster; `durable` keeps PostgreSQL's default fsync on (for benchmarks).
    pub(crate) fn start_with(durable: bool) -> Result<Postgres> {
        let started = Instant::now();
        let bin = crate::prereqs::POSTGRES.ensure()?;
        let as_postgres = crate::prereqs::is_root();
        let dir = std::env::temp_dir().join(format!("crossrole-postgres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut pg = Postgres { bin, dir, as_postgres, url: String::new() };
        if as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:"]).arg(&pg.dir).status()?;
            if !status.success() {
                bail!("cannot give {} to the postgres user (is there one?)", pg.dir.display());
            }
        }
        let data = pg.dir.join("data");
        pg.run("initdb", &["-D", path(&data), "-A", "trust", "-U", "crossrole", "--no-sync"])?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=200",
            pg.dir.display(),
            if durable { "on" } else { "off" }
        );
        let log = pg.dir.join("log");
        pg.run("pg_ctl", &["-D", path(&data), "-o", &options, "-l", path(&log), "-w", "-t", "60", "start"])?;
        eprintln!("postgres ready on port {port} in {:.1}s", started.elapsed().as_secs_f64());
        pg.url = format!("postgres://crossrole@127.0.0.1:{port}/postgres");
        Ok(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).current_dir(&self.dir).output().with_context(|| format!("cannot run {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.exists() {
            let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
