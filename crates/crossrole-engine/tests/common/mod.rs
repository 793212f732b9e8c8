//! Helpers shared by the engine's tests: an organization, a spec, and an engine over the in-memory AWS.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub, unused_imports)] // test helpers outside #[test] fns

use std::{sync::Arc, time::Duration};

use crossrole_aws::{
    Service,
    calls::{CallPolicy, Rates, RetryPolicy},
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_core::{
    AccessSpec,
    org::{OrgTree, fixture::TreeBuilder},
    spec::AccountState,
};
pub use crossrole_core::{
    ops::{
        AccountPlanView, AccountResult, Action, ChangeKind, CheckOutcome, Conformance, ErrorCode, Event, Operation,
        OperationKind, OperationState, Outcome, Phase,
    },
    spec::RawSpec,
};
pub use crossrole_engine::records;
use crossrole_engine::{Engine, EngineConfig, StartRequest};
use crossrole_store::{Journal, SqliteJournal};

pub const MGMT: &str = "123456789012";
pub const SECURITY: &str = "111122223333";

/// The grant policy the test spec keeps in the security account.
pub const GRANT_ARN: &str = "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit";

/// The role ARNs the grant policy names.
pub fn granted(w: &World) -> std::collections::BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_str(&w.fake.policy(SECURITY, GRANT_ARN).unwrap().document).unwrap();
    match &doc["Statement"][0]["Resource"] {
        serde_json::Value::String(s) => [s.clone()].into(),
        serde_json::Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("unexpected Resource {other}"),
    }
}

pub fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

pub fn tree(n: u64) -> OrgTree {
    let mut b = TreeBuilder::new("o-abcdefghij", MGMT, "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("ou-root-workload", "ou-root-prodxxxx", "Prod")
        .unit("r-root", "ou-root-sandboxx", "Sandbox")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    for i in 0..n {
        b = b.account("ou-root-prodxxxx", &account(i), &format!("prod-{i}"), AccountState::Active);
    }
    b.account("ou-root-prodxxxx", "299999999999", "closed", AccountState::Suspended).build()
}

pub fn spec_with(extra_rollout: &str) -> AccessSpec {
    AccessSpec::from_yaml(&format!(
        r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  trust:
    account_ids: ["{SECURITY}"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
  inline_policies:
    deny: {{Version: "2012-10-17", Statement: [{{Effect: Deny, Action: "s3:*", Resource: "*"}}]}}
targets:
  organizational_unit_ids: [ou-root-workload]
grant:
  account_id: "{SECURITY}"
  user_names: [alice]
  group_names: [auditors]
rollout:
{}{extra_rollout}"#,
        if extra_rollout.contains("max_concurrency") { "" } else { "  max_concurrency: 5\n" }
    ))
    .unwrap()
}

pub fn spec() -> AccessSpec {
    spec_with("  failure_tolerance: 100%\n")
}

pub struct World {
    pub fake: FakeAws,
    pub engine: Engine,
    pub journal: Arc<dyn Journal>,
    pub config: EngineConfig,
}

impl World {
    /// Another crossroled on the same journal (and journal key) and the same AWS, as after a restart.
    pub fn restarted(&self) -> Engine {
        let calls = Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
        Engine::new(Arc::new(self.fake.clone()), calls, self.journal.clone(), self.config.clone())
    }
}

pub fn world_with(n: u64, config: FakeConfig, rates: Rates, journal: Arc<dyn Journal>) -> World {
    world_configured(n, config, rates, journal, EngineConfig::default())
}

pub fn world_configured(
    n: u64,
    config: FakeConfig,
    rates: Rates,
    journal: Arc<dyn Journal>,
    engine: EngineConfig,
) -> World {
    let fake = FakeAws::new(tree(n), config);
    fake.add_principals(SECURITY, &["alice"], &["auditors"]);
    let calls = Arc::new(CallPolicy::new(rates, RetryPolicy::default()));
    let config = engine;
    let engine = Engine::new(Arc::new(fake.clone()), calls, journal.clone(), config.clone());
    World { fake, engine, journal, config }
}

/// A world of `n` accounts (no latency, no limits, a journal in memory) whose engine reads the time from `clock`,
/// which the test moves; the rest of the engine's settings from `config`.
pub fn world_on_clock(n: u64, clock: &crossrole_engine::Clock, config: EngineConfig) -> World {
    let config = EngineConfig { clock: clock.clone(), ..config };
    world_configured(n, FakeConfig::default(), Rates::UNLIMITED, Arc::new(SqliteJournal::in_memory().unwrap()), config)
}

pub fn world(n: u64) -> World {
    let mut config = FakeConfig::default();
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(40), jitter: Duration::from_millis(20) });
    }
    world_with(n, config, Rates::UNLIMITED, Arc::new(SqliteJournal::in_memory().unwrap()))
}

pub fn start(kind: OperationKind, spec: &AccessSpec) -> StartRequest {
    StartRequest::new(kind, spec.clone(), "test")
}

pub async fn run(w: &World, kind: OperationKind, spec: &AccessSpec) -> Operation {
    let op = w.engine.start(start(kind, spec)).await.unwrap();
    w.engine.wait(&op.id).await.unwrap()
}

pub async fn results(w: &World, op: &str) -> Vec<AccountResult> {
    let (results, _) = w.engine.account_results(op, &[], 10_000, "").await.unwrap();
    results.into_iter().map(|r| r.read().expect("every result reads")).collect()
}

pub fn outcome(r: &AccountResult) -> &'static str {
    r.outcome.as_str()
}
