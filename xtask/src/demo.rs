//! `cargo xtask demo [--emulator localstack|moto] [--exit]`: emulators, a seeded organization with roles made by
//! hand, crossroled; who can enter every account (the inventory's findings: a vendor trusted without an ExternalId
//! among them); one hand-made `SecurityAudit` taken over by `crossrole adopt`, approved by account; a real rollout
//! of `examples/security-audit.yaml` with live progress (the other hand-made one left as it is); then verify and
//! its CLI profiles (the role
//! needs an ExternalId, which the console cannot send); then `examples/console-readonly.yaml`, a role for the
//! console, with its Switch Role links and AWS Extend Switch Roles configuration; then the first spec as a binding,
//! and an account that joins the organization, enrolled within seconds by its AWS Organizations events (an SQS
//! queue, as EventBridge feeds it). The server stays up until Ctrl-C (or, with `--exit`, everything stops after
//! that).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{
    e2e::{build_binaries, install_interrupt_handler, mode_arg, run_dir},
    emulators::Emulators,
    prereqs::Need,
    served::Served,
};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mode = mode_arg(args)?;
    let exit_after = args.iter().any(|a| a == "--exit");
    crate::prereqs::check("demo", &[Need::python(), Need::curl()])?;
    install_interrupt_handler();
    let started = Instant::now();
    let (crossroled, crossrole) = build_binaries()?;
    let dir = run_dir("demo", mode);
    let mut emulators = Emulators::start(mode, &dir)?;
    // Roles made by hand in a few accounts (tests/e2e/seed/seed.py): one of each trust shape, and a SecurityAudit,
    // the example spec's role, in two Workloads accounts.
    let (adopted, kept) = ("prod-01", "dev-03");
    let seeded = emulators
        .seeded_with(&[], &[("adopt-role", "SecurityAudit"), ("adopt-accounts", &format!("{adopted},{kept}"))])?;
    // The example specs, with the seeded security account in place of the placeholder.
    let spec = seeded.example("security-audit.yaml", &dir)?;
    let console = seeded.example("console-readonly.yaml", &dir)?;
    let account_id = |name: &str| -> Result<String> {
        let accounts = seeded.manifest["accounts"].as_array().cloned().unwrap_or_default();
        match accounts.iter().find(|a| a["name"] == name).and_then(|a| a["id"].as_str()) {
            Some(id) => Ok(id.to_string()),
            None => bail!("the seeded organization has no account {name}"),
        }
    };
    let adopted_id = account_id(adopted)?;
    // The spec narrowed to the account whose role is taken over: the takeover alone, before the rollout.
    let narrowed = dir.join(format!("security-audit-{adopted}.yaml"));
    let text = std::fs::read_to_string(&spec)?;
    let narrowed_text =
        text.replace("organizational_unit_paths: [/Root/Workloads]", &format!("account_ids: [\"{adopted_id}\"]"));
    if narrowed_text == text {
        bail!("examples/security-audit.yaml no longer targets /Root/Workloads: the demo's adoption needs updating");
    }
    std::fs::write(&narrowed, narrowed_text)?;

    // The queue EventBridge would feed with the organization's events (the emulators send none by themselves).
    let mut events = OrgEvents { emulators: &emulators, manifest: &seeded.path, queue: String::new() };
    events.queue = events.run(&["queue", "--sqs", &emulators.sqs, "--name", "crossrole-organization-events"])?;
    let metrics = crate::emulators::free_port()?;
    let extra = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\n[organization_events]\nqueue_url = \"{}\"\nwait = \"2s\"\n",
        events.queue
    );
    let mut served = Served::start(&dir, &crossroled, &crossrole, seeded.aws_env.clone(), &extra)?;
    let Served { endpoint, port, token, .. } = &served;
    let cli = |args: &[&str]| served.cli(args);

    let spec_arg = spec.display().to_string();
    println!(
        "\n== crossroled is up at {endpoint} (emulators: {}; set up in {:.0}s)",
        mode.name(),
        started.elapsed().as_secs_f64()
    );
    println!("\n== the organization\n");
    cli(&["org"])?;
    println!(
        "\n== crossrole inventory --min-severity medium   (who can enter every account: every role, not only \
         crossrole's, read through the bootstrap role)\n"
    );
    let inventoried = cli(&["inventory", "--min-severity", "medium"])?;
    println!(
        "\n== crossrole adopt -f {spec_arg} --dry-run   (the roles named SecurityAudit made by hand, each against \
         the spec)\n"
    );
    cli(&["adopt", "-f", &spec_arg, "--dry-run"])?;
    let narrowed_arg = narrowed.display().to_string();
    println!(
        "\n== crossrole adopt -f {narrowed_arg} --account {adopted_id} --yes   (the spec narrowed to {adopted}: its \
         role taken over, approved by account; {kept}'s is not approved and stays as it is)\n"
    );
    let adopt = cli(&["adopt", "-f", &narrowed_arg, "--account", &adopted_id, "--yes"])?;
    println!("\n== crossrole apply -f {} --yes   ({kept}'s hand-made role is reported and left alone)\n", spec_arg);
    let applied = cli(&["apply", "-f", &spec_arg, "--yes"])?;
    println!("\n== crossrole verify -f {}\n", spec_arg);
    cli(&["verify", "-f", &spec_arg])?;
    println!(
        "\n== crossrole export -f {spec_arg} --source-profile security   (the role needs an ExternalId: CLI profiles)\n"
    );
    let exports = dir.join("exports");
    let out = exports.display().to_string();
    cli(&[
        "export",
        "-f",
        &spec_arg,
        "--source-profile",
        "security",
        "--profile-name",
        "${account_name}",
        "--out",
        &out,
    ])?;
    show(&exports.join("crossrole-security-audit.config"))?;
    let console_arg = console.display().to_string();
    println!("\n== crossrole apply -f {console_arg} --yes   (no ExternalId: people switch roles in the console)\n");
    let console_applied = cli(&["apply", "-f", &console_arg, "--yes"])?;
    println!("\n== crossrole links -f {console_arg}\n");
    cli(&["links", "-f", &console_arg])?;
    println!("\n== crossrole export -f {console_arg} --source-profile security --format aesr\n");
    cli(&["export", "-f", &console_arg, "--source-profile", "security", "--format", "aesr", "--out", &out])?;
    show(&exports.join("crossrole-console-readonly.aesr.ini"))?;
    println!(
        "\n== crossrole bindings apply -f {spec_arg} --every 6h   (kept true; accounts that join are enrolled by \
         their AWS Organizations events)\n"
    );
    cli(&["bindings", "apply", "-f", &spec_arg, "--every", "6h"])?;
    let enrolled = events.enrol(&served, "security-audit", "/Root/Workloads/Prod")?;
    println!(
        "\n== try next, in another shell:\n\n  export CROSSROLE_ENDPOINT={endpoint}\n  export CROSSROLE_TOKEN={token}\n  \
         cargo run -q -p crossrole-cli -- plan -f {spec_arg}        # in sync now\n  \
         cargo run -q -p crossrole-cli -- inventory --latest --principal 999988887777   # where the vendor can go\n  \
         cargo run -q -p crossrole-cli -- inventory --latest -o csv > inventory.csv\n  \
         cargo run -q -p crossrole-cli -- import --role-name BreakGlass   # a spec from a hand-made role\n  \
         cargo run -q -p crossrole-cli -- ops list\n  \
         cargo run -q -p crossrole-cli -- accounts --ou-path /Root/Workloads/Prod --tag environment=prod\n  \
         cargo run -q -p crossrole-cli -- export -f {spec_arg} --source-profile security --format json\n  \
         cargo run -q -p crossrole-cli -- audit --since 1h\n  \
         cargo run -q -p crossrole-cli -- bindings status security-audit\n  \
         curl -s http://127.0.0.1:{metrics}/metrics | grep -v '^#'\n  \
         # console sign-in as the ExternalId role (on real AWS: your credentials, CROSSROLE_EXTERNAL_ID set):\n  \
         # cargo run -q -p crossrole-cli -- console <account> -f {spec_arg}\n  \
         cargo run -q -p crossrole-cli -- destroy -f {spec_arg}\n  \
         grpcurl -plaintext -H \"authorization: Bearer $CROSSROLE_TOKEN\" 127.0.0.1:{port} list\n\n\
         The web console: {endpoint}/console/ (sign in with the token above).\n\n\
         The spec applied is {spec_arg}; crossroled logs to {}.",
        served.server.log.display()
    );
    if !enrolled {
        eprintln!("note: the account that joined was not enrolled by its events");
    }
    let steps = [
        ("the inventory", inventoried),
        ("the adoption", adopt),
        ("the apply of security-audit", applied),
        ("the apply of console-readonly", console_applied),
    ];
    for (name, status) in steps {
        if !status.success() {
            eprintln!("note: {name} exited with {status}");
        }
    }
    if exit_after {
        served.server.stop(Duration::from_secs(15));
        emulators.stop();
        if !steps.iter().all(|(_, s)| s.success()) || !enrolled {
            bail!("the demo did not go as shown ({steps:?}, enrolled by its events: {enrolled})");
        }
        return Ok(());
    }
    println!("\ncrossroled keeps running; press Ctrl-C to stop it and the emulators.");
    loop {
        if let Some(status) = served.server.exited() {
            bail!("crossroled exited ({status}); see {}", served.server.log.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The organization's events, made by hand (`tests/e2e/seed/org_event.py`): the emulators emit none.
struct OrgEvents<'a> {
    emulators: &'a Emulators,
    manifest: &'a std::path::Path,
    /// The queue's URL.
    queue: String,
}

impl OrgEvents<'_> {
    /// Runs the script with `args`; what it printed.
    fn run(&self, args: &[&str]) -> Result<String> {
        let script = crate::workspace_root().join("tests/e2e/seed/org_event.py");
        let out =
            std::process::Command::new(self.emulators.moto_bin.join("python")).arg(&script).args(args).output()?;
        if !out.status.success() {
            bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Once `binding` has reconciled, an account joins `ou_path` with its events on the queue; prints how soon the
    /// binding had it in sync. Whether it did.
    fn enrol(&self, served: &Served, binding: &str, ou_path: &str) -> Result<bool> {
        let status = |served: &Served| -> Result<serde_json::Value> {
            Ok(serde_json::from_str(&served.output(&["bindings", "status", binding, "-o", "json"])?)?)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while status(served)?["last_operation_id"].as_str().unwrap_or_default().is_empty()
            || !status(served)?["running_operation_id"].as_str().unwrap_or_default().is_empty()
        {
            if Instant::now() > deadline {
                bail!("the binding {binding} did not reconcile within a minute");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!("\n== an account joins {ou_path}; the events EventBridge sends for it go to the queue\n");
        let e = self.emulators;
        let manifest = self.manifest.display().to_string();
        let mode = if e.mode == crate::emulators::Mode::Moto { "moto" } else { "localstack" };
        let args = [
            "account",
            "--mode",
            mode,
            "--organizations",
            &e.organizations,
            "--iam",
            &e.iam,
            "--sqs",
            &e.sqs,
            "--queue-url",
            &self.queue,
            "--manifest",
            &manifest,
            "--ou-path",
            ou_path,
            "--name",
            "demo-joined",
        ];
        let account = self.run(&args)?;
        let sent = Instant::now();
        let in_sync = |served: &Served| -> Result<bool> {
            let s = status(served)?;
            let accounts = s["accounts"].as_array().cloned().unwrap_or_default();
            Ok(accounts.iter().any(|a| {
                a["account_id"] == account.as_str()
                    && a["state"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("in sync"))
            }))
        };
        while !in_sync(served)? {
            if sent.elapsed() > Duration::from_secs(60) {
                println!("account {account} was not enrolled within a minute; see crossroled's log");
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "account {account} (demo-joined) has the role, in sync, {:.1} s after its events; the binding's interval \
             is 6h and the organization was not walked for it\n",
            sent.elapsed().as_secs_f64()
        );
        served.cli(&["bindings", "status", binding])?;
        Ok(true)
    }
}

/// Prints an export's first two profiles and where the rest are.
fn show(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let sections: Vec<&str> = text.split("\n\n").filter(|s| !s.trim().is_empty()).collect();
    for section in sections.iter().take(2) {
        println!("{section}\n");
    }
    if sections.len() > 2 {
        println!("… and {} more in {}", sections.len() - 2, path.display());
    }
    Ok(())
}
