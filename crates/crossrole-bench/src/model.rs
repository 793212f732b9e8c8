//! Part A: a rollout across N accounts against a model of AWS.
//!
//! The model keeps AWS's quotas where AWS keeps them: IAM's per account (every target account has its own bucket),
//! STS's per calling account (crossroled's AssumeRoles count against its account; verify's against the trusted
//! account; each assumed session's GetCallerIdentity against the target), Organizations' per organization. Each
//! service answers after a latency (base plus uniform jitter); a call over its quota gets `Throttling`. crossrole's
//! call layer is configured at 98% of those quotas, as an operator would configure it, and adapts down if
//! throttled. Concurrency is crossrole's default (automatic).
//!
//! The floor is what the model allows at best, computed from the model alone: discovery (its Organizations calls ÷
//! the Organizations rate) and the busiest shared bucket (AssumeRoles ÷ the STS rate) overlap — an account can be
//! worked on as soon as its page of accounts is listed, and the two are different quotas — so the longer of the
//! two; then the critical path of the last account (the mean latencies of its calls in sequence, its IAM calls
//! within its own bucket), then the trusted side's calls in sequence. A plan's floor is the same sum over the
//! calls a plan needs ([`plan_minimum`]): it reads where an apply writes.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Result, bail};
use crossrole_aws::{
    Service,
    calls::{CallPolicy, Rate, Rates, RetryPolicy},
    discovery::DiscoveryConfig,
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_core::{
    AccessSpec,
    ops::{OperationKind, OperationState},
    org::fixture::TreeBuilder,
    spec::AccountState,
};
use crossrole_engine::{Engine, EngineConfig, StartRequest};
use crossrole_store::SqliteJournal;
use serde::Serialize;

use crate::proc;

/// The model's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Target accounts.
    pub accounts: usize,
    /// AWS's quotas, calls per second: Organizations (per organization), IAM (per account), STS (per caller).
    pub quotas: [f64; 3],
    /// Latency per service (base, jitter), milliseconds: Organizations, IAM, STS.
    pub latency_ms: [(u64, u64); 3],
    /// crossrole's configured rate as a share of AWS's quotas.
    pub headroom: f64,
    /// The spec's `max_concurrency`; `None` for crossrole's default (automatic).
    pub concurrency: Option<u32>,
    /// Verify after apply.
    pub verify: bool,
}

impl Params {
    /// The default model for `accounts` accounts.
    pub fn default_for(accounts: usize) -> Params {
        Params {
            accounts,
            quotas: [10.0, 10.0, 100.0],
            latency_ms: [(100, 50), (80, 40), (40, 20)],
            headroom: 0.98,
            concurrency: None,
            verify: true,
        }
    }

    pub(crate) fn mean_latency(&self, service: usize) -> f64 {
        let (base, jitter) = self.latency_ms[service];
        (base as f64 + jitter as f64 / 2.0) / 1000.0
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
    /// The floor the model allows, seconds.
    pub floor_s: f64,
    /// The floor's parts: discovery, the busiest shared bucket, the last account's path, the trusted side.
    pub floor_parts_s: BTreeMap<String, f64>,
    /// wall / floor.
    pub ratio: f64,
    /// Virtual wall time of the apply right after a plan (warm: the plan's tree and credentials), seconds.
    pub warm_wall_s: f64,
    /// The floor of the warm apply, seconds.
    pub warm_floor_s: f64,
    /// warm wall / warm floor.
    pub warm_ratio: f64,
    /// Virtual wall time of that plan, seconds (the organization walked, every account assumed into).
    pub plan_wall_s: f64,
    /// The floor the model allows that plan, seconds.
    pub plan_floor_s: f64,
    /// The plan's floor's parts.
    pub plan_floor_parts_s: BTreeMap<String, f64>,
    /// plan wall / plan floor.
    pub plan_ratio: f64,
    /// Calls per account by `service:Operation`, for the plan.
    pub plan_calls_per_account: BTreeMap<String, f64>,
    /// Most accounts in flight at once (crossrole's automatic concurrency at work).
    pub max_in_flight: usize,
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
    /// Virtual wall time of the no-op re-apply, seconds.
    pub reapply_wall_s: f64,
    /// Calls AWS throttled.
    pub throttled: u64,
    /// Retries crossrole made.
    pub retries: u64,
    /// CPU time per account spent in crossrole (the process's CPU time, the model included), milliseconds.
    pub cpu_ms_per_account: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
}

pub(crate) const SECURITY: &str = "111122223333";

pub(crate) fn spec(concurrency: Option<u32>, verify: bool) -> Result<AccessSpec> {
    let concurrency = concurrency.map(|c| format!("  max_concurrency: {c}\n")).unwrap_or_default();
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
{concurrency}  failure_tolerance: 1%
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
    // The role is read before anything is written (so that no write is aimed at a role crossrole does not own):
    // one GetRole that finds nothing, then the create, then its policies attached and put.
    m.insert("iam:GetRole".into(), 1.0);
    m.insert("iam:CreateRole".into(), 1.0);
    m.insert("iam:AttachRolePolicy".into(), 2.0);
    m.insert("iam:PutRolePolicy".into(), 1.0);
    m
}

/// The minimum AWS calls per account to plan the role of the bench spec where there is none: the account assumed
/// into, and the GetRole that finds no role.
fn plan_minimum() -> BTreeMap<String, f64> {
    BTreeMap::from([("sts:AssumeRole".into(), 1.0), ("iam:GetRole".into(), 1.0)])
}

/// The floor from its parts: discovery and the shared STS bucket overlap (the longer counts), the rest follows.
pub(crate) fn floor_total(parts: &BTreeMap<String, f64>) -> f64 {
    let part = |k: &str| parts.get(k).copied().unwrap_or(0.0);
    let overlapped = part("discovery").max(part("shared STS bucket"));
    overlapped
        + parts.iter().filter(|(k, _)| *k != "discovery" && *k != "shared STS bucket").map(|(_, v)| v).sum::<f64>()
}

/// The time a token bucket of `rate` and `burst` needs to let `calls` through: the burst goes at once.
pub(crate) fn bucket_time(calls: f64, rate: f64, burst: f64) -> f64 {
    ((calls - burst).max(0.0)) / rate
}

/// The floor's parts, from the model alone: discovery (its Organizations calls at the Organizations quota, or the
/// longest chain of pages that wait for each other, whichever is longer; none when warm), the busiest bucket every
/// account shares (crossroled's AssumeRoles — none when warm, its credentials cached by the plan — and verify's
/// from the trusted account, at the STS quota), the last account's path (its calls in sequence at their mean
/// latency; its IAM calls fit its own bucket's burst), and the trusted side's calls in sequence at the end.
fn floor(p: &Params, org_calls: u64, page_chain: usize, warm: bool) -> BTreeMap<String, f64> {
    let n = p.accounts as f64;
    let min = minimum(p.verify);
    let iam_per_account: f64 = min.iter().filter(|(k, _)| k.starts_with("iam:")).map(|(_, v)| v).sum();
    let sts_per_account: f64 = min.iter().filter(|(k, _)| k.starts_with("sts:")).map(|(_, v)| v).sum();
    let (org, iam, sts) = (p.mean_latency(0), p.mean_latency(1), p.mean_latency(2));
    let [org_q, iam_q, sts_q] = p.quotas;
    let mut parts = BTreeMap::new();
    if !warm {
        let by_rate = bucket_time(org_calls as f64, org_q, org_q.ceil());
        parts.insert("discovery".to_string(), by_rate.max(page_chain as f64 * org));
    }
    let own = if warm { 0.0 } else { n };
    let trusted = if p.verify { n } else { 0.0 };
    parts.insert("shared STS bucket".to_string(), bucket_time(own.max(trusted), sts_q, sts_q.ceil()));
    let path_sts = if warm { sts_per_account - 1.0 } else { sts_per_account };
    let iam_wait = bucket_time(iam_per_account, iam_q, iam_q.ceil());
    parts.insert("last account's path".to_string(), path_sts * sts + iam_per_account * iam + iam_wait);
    // Read the grant policy, create it, attach it.
    parts.insert("trusted side".to_string(), 3.0 * iam);
    parts
}

/// A plan's floor's parts, as [`floor`]'s for a cold apply with the calls a plan needs ([`plan_minimum`]):
/// discovery (its Organizations calls at the quota, or the chain of pages, whichever is longer), crossroled's
/// AssumeRoles at the STS quota (the plan verifies nothing: no trusted-side bucket), the last account's calls in
/// sequence, then the trusted side's: its account assumed into, the grant policy read (GetPolicy, which finds
/// none).
fn plan_floor(p: &Params, org_calls: u64, page_chain: usize) -> BTreeMap<String, f64> {
    let n = p.accounts as f64;
    let min = plan_minimum();
    let calls = |service: &str| min.iter().filter(|(k, _)| k.starts_with(service)).map(|(_, v)| v).sum::<f64>();
    let (org, iam, sts) = (p.mean_latency(0), p.mean_latency(1), p.mean_latency(2));
    let [org_q, iam_q, sts_q] = p.quotas;
    let mut parts = BTreeMap::new();
    let by_rate = bucket_time(org_calls as f64, org_q, org_q.ceil());
    parts.insert("discovery".to_string(), by_rate.max(page_chain as f64 * org));
    parts.insert("shared STS bucket".to_string(), bucket_time(n, sts_q, sts_q.ceil()));
    let iam_wait = bucket_time(calls("iam:"), iam_q, iam_q.ceil());
    parts.insert("last account's path".to_string(), calls("sts:") * sts + calls("iam:") * iam + iam_wait);
    parts.insert("trusted side".to_string(), sts + iam);
    parts
}

/// The model's organization: a security account and `accounts` members in OUs of at most 500.
pub(crate) fn organization(p: &Params) -> (crossrole_core::org::OrgTree, usize) {
    let mut tree = TreeBuilder::new("o-benchmark0", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    let ous = p.accounts.div_ceil(500).clamp(1, 40);
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
    // Pages that wait for each other: DescribeOrganization with ListRoots, the root's listings, Workloads' (its
    // OUs, 20 to a page), then the largest OU's accounts (20 to a page).
    let chain = 1 + 1 + ous.div_ceil(20) + p.accounts.div_ceil(ous).div_ceil(20);
    (tree.build(), chain)
}

/// The model's AWS, a crossroled's engine over it, its call layer and its journal (in a directory of its own).
pub(crate) struct World {
    pub(crate) fake: FakeAws,
    pub(crate) engine: Engine,
    pub(crate) calls: Arc<CallPolicy>,
    pub(crate) journal: Arc<SqliteJournal>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn world(p: &Params, apply_max_age: Duration) -> Result<World> {
    let services = [Service::Organizations, Service::Iam, Service::Sts];
    let mut config = FakeConfig::default();
    for (i, s) in services.iter().enumerate() {
        let (base, jitter) = p.latency_ms[i];
        config.latency.insert(*s, Latency { base: Duration::from_millis(base), jitter: Duration::from_millis(jitter) });
        config.throttle.insert(*s, Rate { per_second: p.quotas[i], burst: p.quotas[i].ceil() as u32 });
    }
    let fake = FakeAws::new(organization(p).0, config);
    fake.add_principals(SECURITY, &["alice"], &[]);
    let dir = tempfile::tempdir()?;
    let journal = Arc::new(SqliteJournal::open(&dir.path().join("journal.db"))?);
    let discovery = DiscoveryConfig { apply_max_age, ..DiscoveryConfig::default() };
    let (engine, calls) = engine(p, &fake, journal.clone(), discovery);
    Ok(World { fake, engine, calls, journal, _dir: dir })
}

/// A crossroled's engine over the model's AWS and `journal`, with its own call layer (crossrole's rates at the
/// model's headroom) and nothing cached: no credentials, the organization only as the journal keeps it.
pub(crate) fn engine(
    p: &Params,
    fake: &FakeAws,
    journal: Arc<SqliteJournal>,
    discovery: DiscoveryConfig,
) -> (Engine, Arc<CallPolicy>) {
    let ours = |i: usize| {
        let r = p.quotas[i] * p.headroom;
        Rate { per_second: r, burst: r.floor().max(1.0) as u32 }
    };
    let calls =
        Arc::new(CallPolicy::new(Rates { organizations: ours(0), iam: ours(1), sts: ours(2) }, RetryPolicy::default()));
    let engine = Engine::new(
        Arc::new(fake.clone()),
        calls.clone(),
        journal,
        EngineConfig { max_concurrency: 4096, discovery, ..EngineConfig::default() },
    );
    (engine, calls)
}

pub(crate) fn request(spec: &AccessSpec) -> StartRequest {
    StartRequest::new(OperationKind::Apply, spec.clone(), "bench")
}

/// Applies `spec` and returns the operation's virtual wall time.
pub(crate) async fn apply(w: &World, spec: &AccessSpec) -> Result<(f64, crossrole_core::ops::Operation)> {
    let t0 = tokio::time::Instant::now();
    let op = w.engine.start(request(spec)).await?;
    let done = w.engine.wait(&op.id).await?;
    if done.state != OperationState::Succeeded {
        bail!("the apply did not succeed: {}", done.message);
    }
    Ok((t0.elapsed().as_secs_f64(), done))
}

/// Runs the model once.
pub fn run(p: &Params) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(run_async(p))
}

async fn run_async(p: &Params) -> Result<Outcome> {
    let spec = spec(p.concurrency, p.verify)?;
    let n = p.accounts as f64;
    let chain = organization(p).1;

    // Cold: an apply on its own, the organization walked and every account assumed into.
    let cold = world(p, Duration::ZERO)?;
    let cpu0 = proc::cpu_ms();
    let (wall, _) = apply(&cold, &spec).await?;
    let cpu = proc::cpu_ms().saturating_sub(cpu0);
    let served = cold.fake.served();
    let throttled = cold.fake.throttled();
    let retries = cold.calls.global_stats().retries();
    let max_in_flight = cold.fake.max_accounts_in_flight();
    let org_calls: u64 = served.iter().filter(|(k, _)| k.starts_with("organizations:")).map(|(_, v)| v).sum();
    let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
    for (call, count) in &served {
        let service = call.split(':').next().unwrap_or("");
        *by_service.entry(service.to_string()).or_default() += *count as f64;
    }
    let floor_parts = floor(p, org_calls, chain, false);
    let floor_s = floor_total(&floor_parts);

    // The no-op re-apply.
    cold.fake.reset_counters();
    let (reapply_wall, again) = apply(&cold, &spec).await?;
    if again.counts.unchanged as usize != p.accounts {
        bail!("the re-apply was not a no-op");
    }
    let reapply_calls: u64 = cold.fake.served().values().sum();
    let reapply_iam_writes = cold.fake.iam_writes();
    drop(cold);

    // Warm: a plan, then the apply right after it, from the plan's tree and credentials (the operator allows an
    // apply a tree as old as the plan: `apply_organization_max_age`).
    let warm = world(p, Duration::from_secs(3600))?;
    let t0 = tokio::time::Instant::now();
    let plan = warm.engine.plan(&spec).await?;
    let plan_wall = t0.elapsed().as_secs_f64();
    if plan.accounts.len() != p.accounts {
        bail!("the plan covered {} accounts, not {}", plan.accounts.len(), p.accounts);
    }
    let plan_served = warm.fake.served();
    let plan_org_calls: u64 = plan_served.iter().filter(|(k, _)| k.starts_with("organizations:")).map(|(_, v)| v).sum();
    let plan_parts = plan_floor(p, plan_org_calls, chain);
    let plan_floor_s = floor_total(&plan_parts);
    let (warm_wall, _) = apply(&warm, &spec).await?;
    let warm_parts = floor(p, 0, 0, true);
    let warm_floor = floor_total(&warm_parts);

    Ok(Outcome {
        accounts: p.accounts,
        state: OperationState::Succeeded.as_str().to_string(),
        wall_s: wall,
        floor_s,
        floor_parts_s: floor_parts,
        ratio: if floor_s > 0.0 { wall / floor_s } else { 0.0 },
        warm_wall_s: warm_wall,
        warm_floor_s: warm_floor,
        warm_ratio: if warm_floor > 0.0 { warm_wall / warm_floor } else { 0.0 },
        plan_wall_s: plan_wall,
        plan_floor_s,
        plan_floor_parts_s: plan_parts,
        plan_ratio: if plan_floor_s > 0.0 { plan_wall / plan_floor_s } else { 0.0 },
        plan_calls_per_account: plan_served.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect(),
        max_in_flight,
        calls_per_account: served.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect(),
        minimum_per_account: minimum(p.verify),
        by_service_per_account: by_service.iter().map(|(k, v)| (k.clone(), v / n)).collect(),
        reapply_iam_writes,
        reapply_calls_per_account: reapply_calls as f64 / n,
        reapply_wall_s: reapply_wall,
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
        let p = Params { accounts: 60, concurrency: Some(16), ..Params::default_for(60) };
        let o = run(&p).unwrap();
        assert_eq!(o.state, "succeeded");
        for (call, min) in &o.minimum_per_account {
            let got = o.calls_per_account.get(call).copied().unwrap_or(0.0);
            assert!(got >= *min, "{call}: {got} < {min}");
        }
        // Creating makes no IAM call beyond the minimum per account, except the few for the trusted side.
        for call in ["iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole"] {
            let got = o.calls_per_account.get(call).copied().unwrap_or(0.0) * 60.0;
            assert!(got <= 60.0 + 1.0 + o.retries as f64, "{call}: {got}");
        }
        for (call, min) in plan_minimum() {
            let got = o.plan_calls_per_account.get(&call).copied().unwrap_or(0.0);
            assert!(got >= min, "plan {call}: {got} < {min}");
        }
        assert_eq!(o.reapply_iam_writes, 0);
        assert!(o.floor_s > 0.0 && o.wall_s > 0.0);
        assert!(o.plan_floor_s > 0.0 && o.plan_wall_s > 0.0);
        assert!(o.retries >= o.throttled, "every throttled call was retried");
    }
}
