//! The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (`web/tests/browser.mjs`), against crossroled on the emulators. A wrong token is refused and a read token shows
//! the seeded organization's tree; a rollout started from the CLI fills in live to 100% on its operation's page; an
//! out-of-band change shows as drift, with its diff, after a binding's reconcile. Screenshots of every view go to
//! `target/console-screenshots`. Needs `cargo xtask e2e` (it installs the console's npm packages, and Debian's
//! Chromium when it runs as root).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;

const READ_TOKEN: &str = "e2e-console-read-token";

/// The browser test's command for `step`.
fn node(server: &Crossroled, step: &[&str]) -> Command {
    let web =
        PathBuf::from(std::env::var("CROSSROLE_WEB_DIR").expect("CROSSROLE_WEB_DIR: run through `cargo xtask e2e`"));
    let chromium = std::env::var("CROSSROLE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's (apt-get install chromium; cargo xtask e2e does as root)"
    );
    let shots = std::env::var("CROSSROLE_SCREENSHOTS").unwrap_or_else(|_| "target/console-screenshots".into());
    let mut command = Command::new("node");
    command
        .arg("tests/browser.mjs")
        .args(step)
        .current_dir(&web)
        .env("CONSOLE_URL", &server.endpoint)
        .env("CONSOLE_TOKEN", READ_TOKEN)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots);
    command
}

/// What a finished step printed: its last line, JSON.
fn outcome(step: &[&str], out: std::process::Output) -> serde_json::Value {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser step {step:?} failed: {stderr}\n{stdout}");
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs one step of the browser test; what it saw.
fn browser(server: &Crossroled, step: &[&str]) -> serde_json::Value {
    outcome(step, node(server, step).output().expect("run node"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_organization_a_live_rollout_and_drift() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("web-console");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(READ_TOKEN.as_bytes()));
    let viewer = format!("[[tokens]]\nname = \"viewer\"\nsha256 = \"{hash}\"\nscope = \"read\"\n");
    let server = Crossroled::start_with(&dir, &viewer).await.unwrap();

    // Signed in with a read token, the tree shows the seeded accounts (a suspended one among them).
    let seen = browser(&server, &["signin", "sandbox-03", "suspended:dev-closed", "fleet-07"]);
    // Every seeded account (other scenarios may have added some to the organization since).
    let shown: usize = seen["accounts"].as_str().and_then(|s| s.split(' ').next()?.parse().ok()).unwrap_or(0);
    assert!(shown >= m.accounts.len(), "{shown} accounts shown, {} seeded: {seen}", m.accounts.len());
    println!("sign-in: {seen}");

    // A rollout over Sandbox and Fleet, 3 accounts at a time, started from the CLI: its page fills in live to 100%.
    let yaml = m
        .example_variant("console-audit", "ConsoleAudit", 3, "0")
        .replace("[/Root/Workloads, /Root/Sandbox]", "[/Root/Sandbox, /Root/Fleet]");
    let file = dir.join("console-audit.yaml");
    std::fs::write(&file, &yaml).unwrap();
    // The page is open, signed in, before the rollout starts; then it is given the operation's id.
    let mut watcher = node(&server, &["watch"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run node");
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(ready, "ready", "the watch step did not get ready");
    let out = server.cli(&["apply", "-f", file.to_str().unwrap(), "--yes", "--no-wait", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = started["id"].as_str().unwrap().to_string();
    writeln!(watcher.stdin.take().unwrap(), "{id}").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = watcher.wait().unwrap();
    let out = std::process::Output { status, stdout: rest.join("\n").into_bytes(), stderr: Vec::new() };
    let seen = outcome(&["watch"], out);
    let percents: Vec<u64> = seen["percents"].as_array().unwrap().iter().filter_map(|p| p.as_u64()).collect();
    assert_eq!(percents.last(), Some(&100), "{seen}");
    assert!(percents.len() >= 3, "the page filled in as the rollout went, not at once: {percents:?}");
    let c = server.client().await;
    let done = c.operation(&id).await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    println!("a rollout of {} accounts followed live: {percents:?}", seen["rows"]);

    // A binding on the same spec, in DETECT mode, reconciled: in sync. An inline policy changed by hand in one
    // account, and a reconcile later, that account is drifted, with the drift shown as a diff.
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let binding =
        proto::Binding { spec: Some(spec.clone()), mode: proto::BindingMode::Detect as i32, ..Default::default() };
    c.create_binding(binding).await.unwrap();
    let reconcile = |c: crossrole_client::Client| async move {
        let op = c.reconcile_binding("console-audit").await.unwrap();
        op.wait().await.unwrap()
    };
    reconcile(c.clone()).await;
    let drifting = m.account("sandbox-04").id.clone();
    let loose = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoSecrets","Effect":"Deny","Action":["kms:Decrypt"],"Resource":"*"}]}"#;
    aws.iam(&drifting)
        .await
        .put_role_policy()
        .role_name("ConsoleAudit")
        .policy_name("deny-data-access")
        .policy_document(loose)
        .send()
        .await
        .unwrap();
    let mut drifted = false;
    for _ in 0..5 {
        reconcile(c.clone()).await;
        let status = c.binding("console-audit").await.unwrap().status.unwrap();
        drifted =
            status.accounts.iter().any(|a| a.account_id == drifting && a.state == proto::SyncState::Drifted as i32);
        if drifted {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(drifted, "the binding reports the drift");
    let seen = browser(&server, &["drift", "console-audit", &drifting]);
    println!("drift in the console: {seen}");

    // Leave the emulators as found.
    c.delete_binding("console-audit", true).await.unwrap();
    let destroyed = c.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
}
