//! crossrole's end-to-end harness: the seeded organization's manifest, crossroled as a real process, the SDK and
//! the CLI, and readers of AWS state through the AWS SDK for Rust.
//!
//! `cargo xtask e2e` starts the emulators, seeds them, builds the binaries and runs the suite with
//! `CROSSROLE_E2E_MANIFEST`, `CROSSROLED_BIN`, `CROSSROLE_BIN` and the `AWS_*` variables set. Without them each
//! test fails, saying how to run it: a test that did not run never counts as passed. `cargo xtask test` runs the
//! rest of the workspace without this package, then this package through `cargo xtask e2e`.
//!
//! `cargo xtask e2e --emulator moto` runs the suite on moto alone (IAM, STS, CloudFormation and SQS too). moto
//! 5.2.5 deploys the bootstrap template (deploy/aws/crossrole-bootstrap.yaml) otherwise than CloudFormation, so on
//! moto only the seed (`seed/seed.py`) puts right what moto got wrong, the template itself unchanged and the
//! result what CloudFormation makes; on LocalStack the template is deployed as it is:
//! - a `CommaDelimitedList` parameter left at its `Default` is not split at its commas (only a value passed in
//!   is), so the ceiling's `Action: !Ref CeilingDeniedActions` is one action "iam:Accept*,iam:Add*,…" and
//!   CreateStack fails: "An error occurred (MalformedPolicyDocument) when calling the CreateStack operation:
//!   Actions/Condition can contain only one colon." The seed passes such defaults spelled out.
//! - a role's `Policies` document is kept as an object, not JSON text: GetRolePolicy answers its Python repr, and
//!   GetAccountAuthorizationDetails in that account fails with HTTP 500 ("TypeError: quote_from_bytes() expected
//!   bytes"); a statement `!If [..., ..., !Ref AWS::NoValue]` leaves out is kept as a null. The seed reads the
//!   document back, drops the nulls and puts it again with PutRolePolicy.

pub mod calls;
pub mod judge;
pub mod link;
pub mod proxy;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use crossrole_client::Client;
use serde::Deserialize;

/// An account of the seeded organization.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// The account's id.
    pub id: String,
    /// The account's display name.
    pub name: String,
    /// The path of the OU it is in (`/Root/Workloads`).
    pub ou_path: String,
    /// The tags the seed gave it.
    pub tags: BTreeMap<String, String>,
    /// `ACTIVE` or `SUSPENDED`.
    pub state: String,
    /// Whether its bootstrap role is usable.
    pub bootstrap: bool,
}

/// Where the emulators are, and what the seed made.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// `localstack` (IAM/STS on LocalStack, Organizations on moto) or `moto` (all moto).
    pub mode: String,
    /// Management credentials.
    pub credentials: BTreeMap<String, String>,
    /// The seeded organization's id.
    pub organization_id: String,
    /// The management account's id.
    pub management_account: String,
    /// The trusted account.
    pub security_account: String,
    /// The account seeded without a bootstrap role (reachable anyway: the emulators do not refuse AssumeRole).
    pub no_bootstrap_account: String,
    /// The closed (SUSPENDED) account.
    pub closed_account: String,
    /// OU ids by path.
    pub ous: BTreeMap<String, String>,
    /// Every account.
    pub accounts: Vec<Account>,
    /// deploy/aws/crossrole-bootstrap.yaml, deployed by CloudFormation to the Sandbox and security accounts.
    pub least_privilege_bootstrap: Option<LeastPrivilegeBootstrap>,
    /// Roles made by hand, one of each trust shape, and those of one name to adopt.
    #[serde(default)]
    pub hand_made: Vec<HandMade>,
    /// Whether the emulator rewrote a deleted principal in a trust policy to its unique id, as IAM does (when not,
    /// the seed wrote the unique id itself).
    #[serde(default)]
    pub emulator_rewrites_deleted_principals: bool,
}

/// A role the seed made by hand, and what an inventory must say about it.
#[derive(Debug, Clone, Deserialize)]
pub struct HandMade {
    /// The account it is in.
    pub account_id: String,
    /// That account's name.
    pub account_name: String,
    /// The role's name.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Its trust policy as the seed left it.
    pub trust_policy: String,
    /// Who can enter: (entrant kind, the entrant's account, the guards that hold it: `external_id`, `mfa`,
    /// `organization`), each kind as the inventory's JSON names it (`outside_account`).
    pub entrants: Vec<(String, Option<String>, Vec<String>)>,
    /// The kinds of its findings (`outside_without_external_id`), unordered.
    pub findings: Vec<String>,
    /// Its most severe finding's severity (`high`), or none.
    pub most_severe: Option<String>,
    /// Whether it is a role of the name to adopt.
    #[serde(default)]
    pub adopt: bool,
    /// The unique id a deleted principal left in its trust.
    #[serde(default)]
    pub deleted_principal: Option<String>,
}

/// Where the least-privilege bootstrap role was deployed.
#[derive(Debug, Clone, Deserialize)]
pub struct LeastPrivilegeBootstrap {
    /// Role name.
    pub role: String,
    /// Role path.
    pub path: String,
    /// The accounts deployed with the least-privilege bootstrap template.
    pub accounts: Vec<String>,
    /// The crossroled role the template trusts.
    pub crossroled_role_arn: String,
    /// Path and name of the ceiling policy the template deployed in each account, as the stack's output says
    /// (LocalStack ignores the template's path: see the seed).
    pub ceiling_policy: String,
}

impl Manifest {
    /// The manifest of the seeded organization. Outside `cargo xtask e2e` there is none, and the test fails
    /// saying so: a test that did not run must not count as passed. (`cargo xtask test` runs the workspace's
    /// other tests without this package, and this package on the emulators.)
    pub fn load() -> Manifest {
        let Some(path) = std::env::var_os("CROSSROLE_E2E_MANIFEST") else {
            panic!("the e2e suite needs the emulators and a seeded organization: run it with `cargo xtask e2e`");
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", PathBuf::from(path).display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest: {e}"))
    }

    /// Active accounts under `path` (recursively) that have a usable bootstrap role: the ones an emulator can
    /// show a rollout succeed in. (The emulators let crossrole into an account without one.)
    pub fn reachable_under(&self, path: &str) -> Vec<&Account> {
        self.active_under(path).into_iter().filter(|a| a.bootstrap).collect()
    }

    /// Active accounts under `path` (recursively).
    pub fn active_under(&self, path: &str) -> Vec<&Account> {
        let mut v: Vec<&Account> = self
            .accounts
            .iter()
            .filter(|a| a.state == "ACTIVE" && (a.ou_path == path || a.ou_path.starts_with(&format!("{path}/"))))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// An account by name.
    pub fn account(&self, name: &str) -> &Account {
        self.accounts.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no account {name}"))
    }

    /// The example spec, with the seeded security account in place of the placeholder.
    pub fn example_spec(&self) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/security-audit.yaml");
        std::fs::read_to_string(path).unwrap_or_default().replace("111122223333", &self.security_account)
    }

    /// The example spec as `name` with role `role`, over Workloads and Sandbox, `max_concurrency` accounts at once,
    /// failure tolerance `tolerance`, verify off (the scenarios read the emulators themselves).
    pub fn example_variant(&self, name: &str, role: &str, max_concurrency: u32, tolerance: &str) -> String {
        self.example_spec()
            .replace("name: security-audit", &format!("name: {name}"))
            .replace("name: SecurityAudit", &format!("name: {role}"))
            .replace("[/Root/Workloads]", "[/Root/Workloads, /Root/Sandbox]")
            .replace("max_concurrency: 10", &format!("max_concurrency: {max_concurrency}"))
            .replace("failure_tolerance: 10%", &format!("failure_tolerance: {tolerance}\n  verify: {{enabled: false}}"))
            .lines()
            .filter(|l| {
                (!l.starts_with("  verify:") || l.contains("enabled")) && !l.trim_start().starts_with("timeout:")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A directory for a test's crossroled (its journal and log): under the run's directory when xtask gives one, so
/// that the logs outlive the test.
pub fn test_dir(test: &str) -> PathBuf {
    match std::env::var_os("CROSSROLE_E2E_DIR") {
        Some(d) => PathBuf::from(d).join(test),
        None => std::env::temp_dir().join(format!("crossrole-e2e-{}-{test}", std::process::id())),
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// The token the harness gives crossroled.
pub const TOKEN: &str = "e2e-apply-token";

/// crossroled as a child process.
pub struct Crossroled {
    child: Option<Child>,
    /// Where it listens.
    pub endpoint: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    port: u16,
    extra_config: String,
    /// Environment variables set for it (over the test's own).
    env: Vec<(String, String)>,
}

fn binary(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set; run through `cargo xtask e2e`"))
}

impl Crossroled {
    /// Starts crossroled with a journal in `data_dir` and waits until it serves.
    pub async fn start(data_dir: &Path) -> Result<Crossroled> {
        Crossroled::start_with(data_dir, "").await
    }

    /// Starts crossroled with `extra_config` appended to its configuration file.
    pub async fn start_with(data_dir: &Path, extra_config: &str) -> Result<Crossroled> {
        Crossroled::start_with_env(data_dir, extra_config, &[]).await
    }

    /// Like [`Crossroled::start_with`], with environment variables set for it (e.g. AWS endpoints through a
    /// fault proxy).
    pub async fn start_with_env(data_dir: &Path, extra_config: &str, env: &[(&str, &str)]) -> Result<Crossroled> {
        let mut c = Crossroled::new(data_dir, extra_config, env);
        c.spawn().await?;
        Ok(c)
    }

    /// Starts crossroled without waiting for it to serve (a standby does not until it takes the journal over).
    pub fn launch(data_dir: &Path, extra_config: &str) -> Result<Crossroled> {
        Crossroled::launch_with_env(data_dir, extra_config, &[])
    }

    /// Like [`Crossroled::launch`], with environment variables set for it (one that must refuse to start, say).
    pub fn launch_with_env(data_dir: &Path, extra_config: &str, env: &[(&str, &str)]) -> Result<Crossroled> {
        let mut c = Crossroled::new(data_dir, extra_config, env);
        c.launch_child()?;
        Ok(c)
    }

    /// Not started yet, on a free port.
    fn new(data_dir: &Path, extra_config: &str, env: &[(&str, &str)]) -> Crossroled {
        let port = free_port();
        Crossroled {
            child: None,
            endpoint: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            port,
            extra_config: extra_config.to_string(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// Whether it serves the API now.
    pub async fn serving(&self) -> bool {
        match Client::builder().endpoint(&self.endpoint).token(TOKEN).retries(0).connect().await {
            Ok(client) => client.list_operations(Default::default()).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Whether it writes the journal: ready, gRPC health `""` SERVING (a standby serves reads, and is not ready).
    pub async fn writing(&self) -> bool {
        self.health_serving("").await
    }

    /// Whether gRPC health says `service` is SERVING.
    pub async fn health_serving(&self, service: &str) -> bool {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let Ok(endpoint) = tonic::transport::Endpoint::from_shared(self.endpoint.clone()) else { return false };
        let Ok(channel) = endpoint.connect().await else { return false };
        let status = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_string() }).await;
        status.is_ok_and(|s| s.into_inner().status == tonic_health::ServingStatus::Serving as i32)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    async fn spawn(&mut self) -> Result<()> {
        self.launch_child()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.serving().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("crossroled did not serve within 30s; see {}", self.data_dir.join("crossroled.log").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn launch_child(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.data_dir)?;
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(TOKEN.as_bytes()));
        let config = self.data_dir.join("crossroled.toml");
        std::fs::write(
            &config,
            // The extra settings before the token's table: top-level keys there stay top-level.
            format!(
                "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\nshutdown_timeout = \"10s\"\nreconcile_tick = \"1s\"\n{}\n[[tokens]]\nname = \"e2e\"\nsha256 = \"{hash}\"\nscope = \"admin\"\n",
                self.port,
                self.data_dir.display(),
                self.extra_config,
            ),
        )?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.join("crossroled.log"))?;
        let child = Command::new(binary("CROSSROLED_BIN"))
            .arg("--config")
            .arg(&config)
            // Everything crossroled logs, at its most verbose, the AWS SDK's client module named too (a more
            // specific directive than any crossroled could add): the suite checks that no secret is in it.
            .env("RUST_LOG", "trace,aws_smithy_runtime::client=trace,aws_smithy_runtime_api=trace")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting crossroled")?;
        self.child = Some(child);
        Ok(())
    }

    /// A client with the harness token.
    pub async fn client(&self) -> Client {
        Client::builder().endpoint(&self.endpoint).token(TOKEN).connect().await.expect("connect to crossroled")
    }

    /// Kills crossroled with SIGKILL (a crash: nothing is flushed).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends it a signal by name (`STOP`, `CONT`): a process paused and continued, as a frozen VM is.
    pub fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            let sent = Command::new("kill").args([&format!("-{name}"), &c.id().to_string()]).status();
            assert!(sent.is_ok_and(|s| s.success()), "kill -{name} crossroled");
        }
    }

    /// Waits up to `limit` for the process to end by itself; whether it did.
    pub async fn exits_within(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if !self.running() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        !self.running()
    }

    /// Stops crossroled with SIGTERM and waits for it.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        c.wait().ok()
    }

    /// Starts it again on the same journal and port.
    pub async fn restart(&mut self) -> Result<()> {
        self.spawn().await
    }

    /// Runs the `crossrole` CLI against it.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with_env(args, &[])
    }

    /// Runs the `crossrole` CLI against it, with more environment.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new(binary("CROSSROLE_BIN"))
            .args(args)
            .env("CROSSROLE_ENDPOINT", &self.endpoint)
            .env("CROSSROLE_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run crossrole")
    }
}

impl Drop for Crossroled {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The role ARNs the grant policy at `arn` names, read from IAM (the trusted account's `iam`).
pub async fn granted(iam: &aws_sdk_iam::Client, arn: &str) -> std::collections::BTreeSet<String> {
    let policy = iam.get_policy().policy_arn(arn).send().await.unwrap_or_else(|e| panic!("GetPolicy {arn}: {e}"));
    let version = policy.policy().and_then(|p| p.default_version_id()).unwrap_or_default().to_string();
    let doc = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetPolicyVersion {arn}: {e}"));
    let doc = doc.policy_version().and_then(|v| v.document()).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&percent_encoding::percent_decode_str(doc).decode_utf8_lossy())
        .unwrap_or_else(|e| panic!("{arn}: not a JSON policy document: {e}"));
    match &doc["Statement"][0]["Resource"] {
        serde_json::Value::String(s) => [s.clone()].into(),
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        other => panic!("unexpected Resource {other}"),
    }
}

/// AWS, read through the AWS SDK for Rust (endpoints and credentials from the environment).
#[derive(Clone)]
pub struct Aws {
    config: aws_config::SdkConfig,
}

impl Aws {
    /// Loads the SDK configuration from the environment xtask set.
    pub async fn new() -> Aws {
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        Aws { config }
    }

    /// Organizations as the management account.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config)
    }

    /// SQS as the management account.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    /// IAM in `account`, through its bootstrap role.
    pub async fn iam(&self, account: &str) -> aws_sdk_iam::Client {
        let sts = aws_sdk_sts::Client::new(&self.config);
        let c = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
            .role_session_name("crossrole-e2e-check")
            .send()
            .await
            .expect("assume the bootstrap role to check AWS state");
        let c = c.credentials().expect("credentials");
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "e2e",
        );
        let conf = aws_sdk_iam::config::Builder::from(&self.config).credentials_provider(creds).build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    /// Gives a new account its bootstrap role, as account vending would (on LocalStack; moto makes one itself).
    pub async fn vend(&self, m: &Manifest, account: &str) {
        if m.mode != "localstack" {
            return;
        }
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
            m.management_account
        );
        self.iam_as_account(account)
            .create_role()
            .role_name("OrganizationAccountAccessRole")
            .assume_role_policy_document(trust)
            .send()
            .await
            .expect("give the new account its bootstrap role");
    }

    /// IAM in `account` as that account itself: LocalStack maps a 12-digit access key id to its account (used to
    /// give a new account its bootstrap role, as account vending would).
    pub fn iam_as_account(&self, account: &str) -> aws_sdk_iam::Client {
        let creds = Credentials::new(account, "test", None, None, "e2e-account");
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.config).credentials_provider(creds).build(),
        )
    }

    /// The role `name` in `account` as crossrole would read it, or `None`. The reads are several calls; a role
    /// that crossroled changes or removes meanwhile (a test polling for a clean-up) can vanish part-way through,
    /// so a read that finds something gone after it was listed starts over, until one sees the role whole.
    pub async fn role(&self, account: &str, name: &str) -> Option<crossrole_core::plan::ObservedRole> {
        for _ in 0..20 {
            match self.read_role(account, name).await {
                Ok(role) => return role,
                Err(changed) => {
                    eprintln!("{name} in {account} changed while read ({changed}); reading it again");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
        panic!("{name} in {account} kept changing while read");
    }

    /// One read of the role; `Err` when something listed is gone by the time it is read.
    async fn read_role(&self, account: &str, name: &str) -> Result<Option<crossrole_core::plan::ObservedRole>, String> {
        let iam = self.iam(account).await;
        let gone = |e: &dyn std::fmt::Debug| format!("{e:?}").contains("NoSuchEntity");
        let r = match iam.get_role().role_name(name).send().await {
            Ok(r) => r.role.expect("role"),
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => panic!("GetRole {name} in {account}: {e:?}"),
        };
        let managed = match iam.list_attached_role_policies().role_name(name).send().await {
            Ok(m) => m,
            Err(e) if gone(&e) => return Err("its managed policies".into()),
            Err(e) => panic!("list attached: {e:?}"),
        };
        let inline_names = match iam.list_role_policies().role_name(name).send().await {
            Ok(n) => n,
            Err(e) if gone(&e) => return Err("its inline policies".into()),
            Err(e) => panic!("list inline: {e:?}"),
        };
        let mut inline = BTreeMap::new();
        for p in inline_names.policy_names() {
            let doc = match iam.get_role_policy().role_name(name).policy_name(p).send().await {
                Ok(d) => d,
                Err(e) if gone(&e) => return Err(format!("inline policy {p}")),
                Err(e) => panic!("get inline: {e:?}"),
            };
            inline.insert(p.clone(), doc.policy_document().to_string());
        }
        Ok(Some(crossrole_core::plan::ObservedRole {
            arn: r.arn().to_string(),
            role_id: r.role_id().to_string(),
            attributes: crossrole_core::plan::RoleAttributes {
                name: r.role_name().to_string(),
                path: r.path().to_string(),
                description: r.description().unwrap_or_default().to_string(),
                max_session_duration: r.max_session_duration().unwrap_or(3600) as u32,
                trust_policy: r.assume_role_policy_document().unwrap_or_default().to_string(),
                permissions_boundary_arn: r
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(String::from),
                tags: r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            },
            managed_policy_arns: managed
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(String::from))
                .collect(),
            inline_policies: inline,
        }))
    }
}
