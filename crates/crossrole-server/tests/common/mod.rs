//! Helpers shared by the server's tests: crossroled in-process on 127.0.0.1:0 over the in-memory AWS.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)] // test helpers outside #[test] fns

use std::{sync::Arc, time::Duration};

use crossrole_aws::{
    Service,
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_client::{Client, proto};
use crossrole_core::{
    AccessSpec,
    org::{OrgTree, fixture::TreeBuilder},
    spec::AccountState,
};
use crossrole_server::{
    RunningServer,
    auth::hash_token,
    config::{Config, Flags},
};
use crossrole_wire::ToWire;

pub const SECURITY: &str = "111122223333";

pub fn tree(n: u64) -> OrgTree {
    let mut b = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    for i in 0..n {
        b = b.account(
            "ou-root-workload",
            &format!("{:012}", 200_000_000_000 + i),
            &format!("prod-{i}"),
            AccountState::Active,
        );
    }
    b.build()
}

pub fn spec_yaml() -> String {
    format!(
        r#"
name: audit
role:
  name: Audit
  trust:
    account_ids: ["{SECURITY}"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
targets:
  organizational_unit_ids: [ou-root-workload]
grant:
  account_id: "{SECURITY}"
  user_names: [alice]
rollout:
  max_concurrency: 4
"#
    )
}

pub fn spec() -> proto::AccessSpec {
    AccessSpec::from_yaml(&spec_yaml()).unwrap().to_wire()
}

pub struct Harness {
    pub server: RunningServer,
    pub fake: FakeAws,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn client(&self, token: &str) -> Client {
        Client::builder().endpoint(format!("http://{}", self.server.addr)).token(token).connect().await.unwrap()
    }
}

pub async fn start(accounts: u64, latency_ms: u64) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config_text = format!(
        r#"
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
watch_buffer = 16
data_dir = "{}"
[[tokens]]
name = "reader"
sha256 = "{}"
scope = "read"
[[tokens]]
name = "planner"
sha256 = "{}"
scope = "plan"
[[tokens]]
name = "deployer"
sha256 = "{}"
scope = "apply"
[[tokens]]
name = "deployer-2"
sha256 = "{}"
scope = "apply"
[[tokens]]
name = "assumers"
sha256 = "{}"
scope = "read"
reveal_external_ids = true
[[tokens]]
name = "vendor-desk"
sha256 = "{}"
scope = "plan"
reveal_external_ids = true
"#,
        dir.path().display(),
        hash_token("read-token"),
        hash_token("plan-token"),
        hash_token("apply-token"),
        hash_token("apply-token-2"),
        hash_token("assumer-token"),
        hash_token("plan-reveal-token")
    );
    let config = Config::from_toml(&config_text, &Flags::default()).unwrap();
    let mut fake_config = FakeConfig::default();
    for s in Service::ALL {
        fake_config.latency.insert(s, Latency { base: Duration::from_millis(latency_ms), jitter: Duration::ZERO });
    }
    let fake = FakeAws::new(tree(accounts), fake_config);
    fake.add_principals(SECURITY, &["alice"], &[]);
    let server = crossrole_server::start(&config, Arc::new(fake.clone())).await.unwrap();
    Harness { server, fake, dir }
}
