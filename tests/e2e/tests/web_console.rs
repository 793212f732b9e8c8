//! The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (`web/tests/browser.mjs`), against crossroled on the emulators. A wrong token is refused and a read token shows
//! the seeded organization's tree; a rollout started from the CLI fills in live to 100% on its operation's page; an
//! out-of-band change shows as drift, with its diff, after a binding's reconcile. Screenshots of every view go to
//! `target/console-screenshots`. And an operation over thousands of accounts — an organization the emulators cannot
//! hold in a test's time, so crossroled runs in this process over the in-memory AWS, as for the console's benchmark
//! (part F) — has a page that holds only the rows in view, the last account drawn when scrolled to. The inventory's
//! views show a seeded hand-made role's finding, and where the outside account it trusts can go. Needs `cargo
//! xtask e2e` (it installs the console's npm packages, and Debian's Chromium when it runs as root).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, proto};
use crossrole_core::{AccessSpec, org::fixture};
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_server::config::{Config, Flags};
use crossrole_wire::ToWire;

const READ_TOKEN: &str = "e2e-console-read-token";

/// The browser test's command for `step`, against the crossroled at `endpoint`.
fn node(endpoint: &str, step: &[&str]) -> Command {
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
        .env("CONSOLE_URL", endpoint)
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
    outcome(step, node(&server.endpoint, step).output().expect("run node"))
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
    let mut watcher =
        node(&server.endpoint, &["watch"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run node");
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

/// The inventory's two views over the seeded organization's hand-made roles: "who can enter this account" shows the
/// role most at risk (an account outside the organization trusted without an ExternalId) with its finding's
/// severity and the reason crossroled gives, unowned; "where can this principal go", for that outside account,
/// lists the role among those it can enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_who_can_enter_an_account_and_where_a_principal_can_go() {
    let m = Manifest::load();
    let risky = m
        .hand_made
        .iter()
        .find(|h| {
            h.most_severe.as_deref() == Some("high") && h.findings.iter().any(|f| f == "outside_without_external_id")
        })
        .expect("the seed made a role trusting an outside account without an ExternalId");
    let outside = risky.entrants.iter().find(|e| e.0 == "outside_account").and_then(|e| e.1.clone()).unwrap();
    let dir = crossrole_e2e::test_dir("web-console-inventory");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(READ_TOKEN.as_bytes()));
    let viewer = format!("[[tokens]]\nname = \"viewer\"\nsha256 = \"{hash}\"\nscope = \"read\"\n");
    let server = Crossroled::start_with(&dir, &viewer).await.unwrap();
    let c = server.client().await;

    // An inventory of the whole organization, through the SDK; the console reads the latest one.
    let done = c.start_inventory(vec![], None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "the inventory: {}", done.message);
    let listed = c
        .list_inventory(proto::ListInventoryRequest {
            account_ids: vec![risky.account_id.clone()],
            role_name: risky.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let role = listed.roles.first().unwrap_or_else(|| panic!("{} not in the latest inventory", risky.name));
    let finding = role.findings.first().expect("the role has findings");
    assert_eq!(finding.severity, proto::InventorySeverity::High as i32, "{finding:?}");

    let seen = browser(&server, &["inventory", &risky.account_id, &risky.name, "high", &outside]);
    let shown = seen["finding"].as_str().unwrap_or_default();
    assert!(
        shown.contains(&finding.reason),
        "the console shows {shown:?}, crossroled's reason is {:?}",
        finding.reason
    );
    assert!(seen["owner"].as_str().unwrap_or_default().contains("not owned"), "{seen}");
    let entrant = seen["entrant"].as_str().unwrap_or_default();
    assert!(entrant.contains(&outside) && entrant.contains("no condition"), "where {outside} can go: {entrant}");
    println!("the inventory in the console: {seen}");
}

/// Accounts in the large operation's organization, as many as in part F's largest (a few SUSPENDED, skipped): a page
/// with a row per account would hold 10,000 rows.
const LARGE: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_draws_only_the_rows_in_view_of_an_operation_over_thousands_of_accounts() {
    let dir = crossrole_e2e::test_dir("web-console-large");
    std::fs::create_dir_all(&dir).unwrap();
    let hash = |t: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
    // AWS's rates lifted: the in-memory AWS has none, and the rollout is not what is measured.
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[aws]\norganizations_rate = 10000\niam_rate = 10000\n\
         sts_rate = 10000\n[[tokens]]\nname = \"viewer\"\nsha256 = \"{}\"\nscope = \"read\"\n[[tokens]]\n\
         name = \"e2e\"\nsha256 = \"{}\"\nscope = \"apply\"\n",
        dir.display(),
        hash(READ_TOKEN),
        hash(crossrole_e2e::TOKEN)
    );
    let config = Config::from_toml(&config, &Flags::default()).unwrap();
    let fake = FakeAws::new(fixture::wide(LARGE), FakeConfig::default());
    let server = crossrole_server::start(&config, Arc::new(fake)).await.unwrap();
    let endpoint = format!("http://{}", server.addr);
    let c = Client::builder().endpoint(&endpoint).token(crossrole_e2e::TOKEN).connect().await.unwrap();
    let spec = AccessSpec::from_yaml(
        r#"
name: console-large
role:
  name: ConsoleLarge
  trust:
    account_ids: ["111122223333"]
    external_id: Hq7cW2xN9pL4tB8vR3mZ6sK1yD5f
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
targets:
  organizational_unit_ids: [ou-root-workload]
rollout:
  max_concurrency: 100
"#,
    )
    .unwrap()
    .to_wire();
    let started = std::time::Instant::now();
    let op = c.apply(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(op.state, proto::OperationState::Succeeded as i32, "{}", op.message);
    let counts = op.counts.unwrap();
    // Every target has its result but the SUSPENDED ones, skipped as the targets resolve.
    let results = counts.changed + counts.unchanged + counts.failed;
    assert_eq!(results, counts.total - counts.skipped, "{counts:?}");
    println!("an apply over {results} accounts in {:.1}s", started.elapsed().as_secs_f64());

    let step = ["operation", &op.id, &results.to_string()];
    let seen = outcome(&step, node(&endpoint, &step).output().expect("run node"));
    // Rows for the accounts in view only: a few dozen at the top and scrolled to the end, not thousands.
    let rows = |at: &str| seen[at].as_u64().unwrap_or(u64::MAX);
    assert!(rows("dom_rows") < 200 && rows("dom_rows_at_end") < 200, "{seen}");
    println!("the operation's page: {seen}");
    server.stop().await.unwrap();
}
