//! Part A: a rollout across N accounts against a model of AWS.
//!
//! The model: each service answers after a latency (base plus uniform jitter) and has a token bucket at AWS's rate;
//! a call over the rate gets `Throttling`. crossrole's call layer is configured a little under that rate (as an
//! operator would configure it), and adapts down if throttled. The floor is what AWS's rates allow at best:
//! `max over services of calls to that service / its rate`. (The model treats IAM's rate as one global rate, which
//! is stricter than AWS, where IAM quotas are per account.)

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Result, bail};
use crossrole_aws::{
    Service,
    calls::{CallPolicy, Rate, Rates, RetryPolicy},
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_core::ops::{OperationKind, OperationState};
use crossrole_core::{AccessSpec, org::fixture::TreeBuilder, spec::AccountState};
use crossrole_engine::{Engine, EngineConfig, StartRequest};
use crossrole_store::SqliteJournal;
use serde::Serialize;

use crate::proc;

/// The model's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Target accounts.
    pub accounts: usize,
    /// AWS's rates (calls per second) per service: organizations, iam, sts.
    pub aws_rates: [f64; 3],
    /// Latency per service (base, jitter), milliseconds: organizations, iam, sts.
    pub latency_ms: [(u64, u64); 3],
    /// crossrole's configured rate as a share of AWS's.
    pub headroom: f64,
    /// Accounts at once.
    pub concurrency: u32,
    /// Verify after apply.
    pub verify: bool,
}

impl Params {
    /// The default model for `accounts` accounts.
    pub fn default_for(accounts: usize) -> Params {
        Params {
            accounts,
            aws_rates: [10.0, 50.0, 100.0],
            latency_ms: [(100, 50), (80, 40), (40, 20)],
            headroom: 0.98,
            concurrency: 256,
            verify: true,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// How many accounts the rollout covered.
    pub accounts: usize,
    /// Final state of the apply.
    pub state: String,
    /// Virtual wall time of the apply, seconds.
    pub wall_s: f64,
    /// The floor AWS's rates allow, seconds.
    pub floor_s: f64,
    /// Which service sets the floor.
    pub floor_service: String,
    /// wall / floor.
    pub ratio: f64,
    /// Calls per account by `service:Operation`, for the create.
    pub calls_per_account: BTreeMap<String, f64>,
    /// The minimum for the change, per account.
    pub minimum_per_account: BTreeMap<String, f64>,
    /// Calls per account, by service, for the create.
    pub by_service_per_account: BTreeMap<String, f64>,
    /// IAM writes of the no-op re-apply (must be 0).
    pub reapply_iam_writes: u64,
    /// Calls per account of the no-op re-apply.
    pub reapply_calls_per_account: f64,
    /// Calls AWS throttled.
    pub throttled: u64,
    /// Retries crossrole made.
    pub retries: u64,
    /// CPU time per account spent in crossrole (the process's CPU time, the model included), milliseconds.
    pub cpu_ms_per_account: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
}

const SECURITY: &str = "111122223333";

fn spec(concurrency: u32, verify: bool) -> Result<AccessSpec> {
    Ok(AccessSpec::from_yaml(&format!(
        r#"
name: bench
role:
  name: BenchAudit
  path: /crossrole/
  trust:
    account_ids: ["{SECURITY}"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/ReadOnlyAccess]
  inline_policies:
    deny: {{Version: "2012-10-17", Statement: [{{Effect: Deny, Action: "secretsmanager:GetSecretValue", Resource: "*"}}]}}
targets:
  organizational_unit_paths: [/Root/Workloads]
grant:
  account_id: "{SECURITY}"
  user_names: [alice]
rollout:
  max_concurrency: {concurrency}
  failure_tolerance: 1%
  verify: {{enabled: {verify}}}
"#
    ))?)
}

/// The minimum AWS calls per account to create the role of the bench spec (and verify it).
fn minimum(verify: bool) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    m.insert("sts:AssumeRole".into(), if verify { 2.0 } else { 1.0 });
    if verify {
        m.insert("sts:GetCallerIdentity".into(), 1.0);
    }
    m.insert("iam:GetRole".into(), 1.0);
    m.insert("iam:CreateRole".into(), 1.0);
    m.insert("iam:AttachRolePolicy".into(), 2.0);
    m.insert("iam:PutRolePolicy".into(), 1.0);
    m
}

/// Runs the model once.
pub fn run(p: &Params) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(run_async(p))
}

async fn run_async(p: &Params) -> Result<Outcome> {
    let mut tree = TreeBuilder::new("o-benchmark0", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    let ous = (p.accounts / 500).clamp(1, 40);
    for o in 0..ous {
        tree = tree.unit("ou-root-workload", &format!("ou-root-w{o:07}"), &format!("W{o}"));
    }
    for i in 0..p.accounts {
        let ou = format!("ou-root-w{:07}", i % ous);
        tree = tree.account(
            &ou,
            &format!("{:012}", 200_000_000_000u64 + i as u64),
            &format!("a{i}"),
            AccountState::Active,
        );
    }
    let services = [Service::Organizations, Service::Iam, Service::Sts];
    let mut config = FakeConfig::default();
    for (i, s) in services.iter().enumerate() {
        let (base, jitter) = p.latency_ms[i];
        config.latency.insert(*s, Latency { base: Duration::from_millis(base), jitter: Duration::from_millis(jitter) });
        config.throttle.insert(*s, Rate { per_second: p.aws_rates[i], burst: p.aws_rates[i].ceil() as u32 });
    }
    let fake = FakeAws::new(tree.build(), config);
    fake.add_principals(SECURITY, &["alice"], &[]);
    let ours =
        |i: usize| Rate { per_second: p.aws_rates[i] * p.headroom, burst: (p.aws_rates[i] * p.headroom).ceil() as u32 };
    let calls =
        Arc::new(CallPolicy::new(Rates { organizations: ours(0), iam: ours(1), sts: ours(2) }, RetryPolicy::default()));
    let dir = tempfile::tempdir()?;
    let journal = Arc::new(SqliteJournal::open(&dir.path().join("journal.db"))?);
    let engine = Engine::new(
        Arc::new(fake.clone()),
        calls.clone(),
        journal,
        EngineConfig { max_concurrency: 4096, ..EngineConfig::default() },
    );
    let spec = spec(p.concurrency, p.verify)?;
    let request = |spec: &AccessSpec| StartRequest {
        kind: OperationKind::Apply,
        spec: spec.clone(),
        idempotency_key: None,
        created_by: "bench".into(),
        binding_name: None,
        dry_run: false,
    };

    let cpu0 = proc::cpu_ms();
    let t0 = tokio::time::Instant::now();
    let op = engine.start(request(&spec)).await?;
    let done = engine.wait(&op.id).await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc::cpu_ms().saturating_sub(cpu0);
    let served = fake.served();
    let throttled = fake.throttled();
    let retries = calls.global_stats().retries();
    if done.state != OperationState::Succeeded {
        bail!("the apply did not succeed: {}", done.message);
    }

    let n = p.accounts as f64;
    let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
    for (call, count) in &served {
        let service = call.split(':').next().unwrap_or("");
        *by_service.entry(service.to_string()).or_default() += *count as f64;
    }
    let (floor_service, floor) = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str().to_string(), by_service.get(s.as_str()).copied().unwrap_or(0.0) / p.aws_rates[i]))
        .fold((String::new(), 0.0f64), |best, x| if x.1 > best.1 { x } else { best });

    fake.reset_counters();
    let again = engine.start(request(&spec)).await?;
    let again = engine.wait(&again.id).await?;
    if again.counts.unchanged as usize != p.accounts {
        bail!("the re-apply was not a no-op");
    }
    let reapply_calls: u64 = fake.served().values().sum();

    Ok(Outcome {
        accounts: p.accounts,
        state: done.state.as_str().to_string(),
        wall_s: wall,
        floor_s: floor,
        floor_service,
        ratio: if floor > 0.0 { wall / floor } else { 0.0 },
        calls_per_account: served.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect(),
        minimum_per_account: minimum(p.verify),
        by_service_per_account: by_service.iter().map(|(k, v)| (k.clone(), v / n)).collect(),
        reapply_iam_writes: fake.iam_writes(),
        reapply_calls_per_account: reapply_calls as f64 / n,
        throttled,
        retries,
        cpu_ms_per_account: cpu as f64 / n,
        peak_rss_mib: proc::peak_rss_mib(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smoke test of part A: correctness of the counts, never time.
    #[test]
    fn a_small_model_run_makes_the_minimum_calls() {
        let p = Params { accounts: 60, concurrency: 16, ..Params::default_for(60) };
        let o = run(&p).unwrap();
        assert_eq!(o.state, "succeeded");
        for (call, min) in &o.minimum_per_account {
            let got = o.calls_per_account.get(call).copied().unwrap_or(0.0);
            assert!(got >= *min, "{call}: {got} < {min}");
        }
        // Creating makes no IAM call beyond the minimum per account, except the few for the trusted side.
        for call in ["iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole"] {
            let got = o.calls_per_account[call] * 60.0;
            assert!(got <= 60.0 + 1.0 + o.retries as f64, "{call}: {got}");
        }
        assert_eq!(o.reapply_iam_writes, 0);
        assert!(o.floor_s > 0.0 && o.wall_s > 0.0);
        assert!(o.retries >= o.throttled, "every throttled call was retried");
    }
}
