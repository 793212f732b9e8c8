//! Part A's operations across the whole organization: the inventory (every role of every ACTIVE account read
//! and classified) and `crossrole revoke` (every session of a spec's role denied where the spec is placed), each
//! against the floor AWS's quotas allow it, in the same model of AWS as the apply ([`crate::model`]).
//!
//! The inventory's floor: per account one `AssumeRole` (STS's quota, per calling account: every account shares
//! crossroled's bucket) and `ceil(roles / page)` `GetAccountAuthorizationDetails` calls (IAM's quota, that
//! account's own bucket); the accounts overlap, so the shared STS bucket sets the pace, then the last account's
//! calls in sequence at their mean latency. Where the organization is walked (a crossroled that holds no tree),
//! discovery overlaps the STS bucket as it does for the apply: the two are different quotas, and an account can
//! be read once its page of accounts is listed. Revoke's floor is the same with one `GetRole` (is the role the
//! spec's?), one `GetRolePolicy` (what is in `AWSRevokeOlderSessions` already, kept) and one `PutRolePolicy` (the
//! deny) in sequence in place of the reads.
//!
//! Memory: the process's resident memory once the model of AWS is seeded (its roles are the model's, not
//! crossrole's) and its peak over the operation; what the operation adds is the difference.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Result, bail};
use crossrole_aws::{calls::CallContext, discovery::DiscoveryConfig, fake::FakeAws};
use crossrole_core::ops::OperationState;
use crossrole_engine::{
    RevokeRequest,
    inventory::{InventoryQuery, InventoryRequest},
};
use serde::Serialize;

use crate::{
    model::{self, Params},
    proc,
};

/// How the crossroled that runs the operation holds the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Organization {
    /// It holds no tree (or one older than `organization_cache_ttl`): the operation walks the organization.
    Walked,
    /// It read the organization within `organization_cache_ttl` (a running crossroled that planned or applied in
    /// the last minutes, or whose journal keeps the tree): no Organizations call.
    Known,
}

impl Organization {
    /// `walked` or `known`.
    pub fn parse(s: &str) -> Result<Organization> {
        match s {
            "walked" => Ok(Organization::Walked),
            "known" => Ok(Organization::Known),
            other => bail!("--organization is walked or known, not {other:?}"),
        }
    }
}

/// What one run of an organization-wide operation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `inventory` or `revoke`.
    pub operation: String,
    /// Member accounts of the model's organization.
    pub accounts: usize,
    /// Accounts the operation worked in (assumed into, or tried to).
    pub worked_in: usize,
    /// Accounts it could not read or write in, each with why (the management account has no bootstrap role).
    pub failed: usize,
    /// Roles per account the model seeded (the bootstrap role aside).
    pub roles_per_account: usize,
    /// How the organization was held.
    pub organization: Organization,
    /// AWS's quotas, calls per second: Organizations, IAM (per account), STS (per caller).
    pub quotas: [f64; 3],
    /// crossrole's configured rate as a share of the quotas.
    pub headroom: f64,
    /// Virtual wall time of the operation, seconds.
    pub wall_s: f64,
    /// The floor the model allows, seconds.
    pub floor_s: f64,
    /// The floor's parts.
    pub floor_parts_s: BTreeMap<String, f64>,
    /// wall / floor.
    pub ratio: f64,
    /// Calls per account done (read or written), by `service:Operation`.
    pub calls_per_account: BTreeMap<String, f64>,
    /// The minimum calls per account worked in.
    pub minimum_per_account: BTreeMap<String, f64>,
    /// Most accounts with a call in flight at once.
    pub max_in_flight: usize,
    /// Calls AWS throttled.
    pub throttled: u64,
    /// Retries crossrole made.
    pub retries: u64,
    /// Roles the inventory served back afterwards (every page of it); for revoke, the roles that carry the deny.
    pub roles_found: usize,
    /// CPU time per account done (the whole process, the model included), milliseconds.
    pub cpu_ms_per_account: f64,
    /// Resident memory once the model of AWS was seeded, before the operation, MiB.
    pub rss_before_mib: f64,
    /// Peak resident memory of the process by the operation's end, MiB.
    pub peak_rss_mib: f64,
}

/// A vendor's account outside the organization, for the hand-made roles' trusts.
const VENDOR: &str = "999988887777";

/// The trust policies hand-made roles have, in turn (in `account`): a vendor without an ExternalId and with one,
/// a service, the security account with MFA, a SAML provider, anyone in the organization.
fn trusts(account: &str) -> Vec<String> {
    let allow = |principal: &str, action: &str, condition: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"{action}"{condition}}}]}}"#
        )
    };
    let vendor = format!(r#"{{"AWS":"arn:aws:iam::{VENDOR}:root"}}"#);
    vec![
        allow(&vendor, "sts:AssumeRole", ""),
        allow(&vendor, "sts:AssumeRole", r#","Condition":{"StringEquals":{"sts:ExternalId":"Vn7-bench-external"}}"#),
        allow(r#"{"Service":"ec2.amazonaws.com"}"#, "sts:AssumeRole", ""),
        allow(
            &format!(r#"{{"AWS":"arn:aws:iam::{}:root"}}"#, model::SECURITY),
            "sts:AssumeRole",
            r#","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}"#,
        ),
        allow(
            &format!(r#"{{"Federated":"arn:aws:iam::{account}:saml-provider/Okta"}}"#),
            "sts:AssumeRoleWithSAML",
            r#","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}"#,
        ),
        allow(
            r#"{"AWS":"*"}"#,
            "sts:AssumeRole",
            r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-benchmark0"}}"#,
        ),
    ]
}

/// Seeds `roles` hand-made roles in each of the model's member accounts: the trusts in turn, each with a managed
/// policy, every third with an inline policy.
fn seed(fake: &FakeAws, p: &Params, roles: usize) {
    let inline = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    for i in 0..p.accounts {
        let account = format!("{:012}", 200_000_000_000u64 + i as u64);
        let trusts = trusts(&account);
        fake.with_account(&account, |s| {
            for r in 0..roles {
                let name = format!("HandMade{r:03}");
                s.create_role_by_hand(&account, &name, &trusts[(i + r) % trusts.len()]);
                s.attach_by_hand(&name, "arn:aws:iam::aws:policy/ReadOnlyAccess");
                if r % 3 == 0 {
                    s.put_inline_by_hand(&name, "s3-read", inline);
                }
            }
        });
    }
}

/// The floor's parts: discovery where the organization is walked (overlapping the shared STS bucket), the
/// shared STS bucket (an `AssumeRole` per account), the last account's calls in sequence (its `AssumeRole`, then
/// `iam_calls` in its own bucket).
fn floor(p: &Params, worked_in: usize, org_calls: u64, chain: usize, iam_calls: f64) -> BTreeMap<String, f64> {
    let (org, iam, sts) = (p.mean_latency(0), p.mean_latency(1), p.mean_latency(2));
    let [org_q, iam_q, sts_q] = p.quotas;
    let mut parts = BTreeMap::new();
    if org_calls > 0 {
        let by_rate = model::bucket_time(org_calls as f64, org_q, org_q.ceil());
        parts.insert("discovery".to_string(), by_rate.max(chain as f64 * org));
    }
    parts.insert("shared STS bucket".to_string(), model::bucket_time(worked_in as f64, sts_q, sts_q.ceil()));
    let iam_wait = model::bucket_time(iam_calls, iam_q, iam_q.ceil());
    parts.insert("last account's path".to_string(), sts + iam_calls * iam + iam_wait);
    parts
}

/// The operation's engine: the world's own, or for revoke a fresh crossroled over the same AWS and journal.
struct Measured {
    wall_s: f64,
    worked_in: usize,
    failed: usize,
    roles_found: usize,
    cpu_ms: u64,
    rss_before_mib: f64,
    peak_rss_mib: f64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?)
}

/// The inventory of the model's organization, `roles` hand-made roles in each member account.
pub fn inventory(p: &Params, roles: usize, organization: Organization) -> Result<Outcome> {
    runtime()?.block_on(async {
        let w = model::world(p, Duration::ZERO)?;
        seed(&w.fake, p, roles);
        if organization == Organization::Known {
            w.engine.discovery().tree(&CallContext::new(), false).await?;
        }
        w.fake.reset_counters();
        let (rss_before_mib, cpu0) = (proc::rss_mib(None), proc::cpu_ms());
        let t0 = tokio::time::Instant::now();
        let op = w
            .engine
            .start_inventory(InventoryRequest { created_by: "bench".into(), ..InventoryRequest::default() })
            .await?;
        let done = w.engine.wait(&op.id).await?;
        let wall_s = t0.elapsed().as_secs_f64();
        let (cpu_ms, peak_rss_mib) = (proc::cpu_ms().saturating_sub(cpu0), proc::peak_rss_mib(None));
        // The management account has no bootstrap role (it is where crossroled calls from): it alone may fail.
        if done.state != OperationState::Succeeded || done.counts.failed > 1 {
            bail!("the inventory did not read every member account: {:?} {}", done.counts, done.message);
        }
        // Every role it found, page by page, as the API serves them.
        let (mut roles_found, mut token) = (0, String::new());
        let query = InventoryQuery { operation_id: op.id.clone(), ..InventoryQuery::default() };
        loop {
            let page = w.engine.list_inventory(&query, 1000, &token).await?;
            roles_found += page.roles.len();
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let worked_in = (done.counts.total - done.counts.skipped) as usize;
        let failed = done.counts.failed as usize;
        let measured = Measured { wall_s, worked_in, failed, roles_found, cpu_ms, rss_before_mib, peak_rss_mib };
        // The bootstrap role is one of each account's roles.
        let pages = (roles + 1).div_ceil(1000) as f64;
        let minimum = BTreeMap::from([
            ("sts:AssumeRole".to_string(), 1.0),
            ("iam:GetAccountAuthorizationDetails".to_string(), pages),
        ]);
        Ok(outcome("inventory", p, roles, organization, &w.fake, &w.calls, measured, minimum, pages))
    })
}

/// `crossrole revoke` in every account where the model's spec is placed: the spec applied first (not measured),
/// then revoked by a fresh crossroled over the same AWS and journal (no credentials cached).
pub fn revoke(p: &Params, organization: Organization) -> Result<Outcome> {
    runtime()?.block_on(async {
        let w = model::world(p, Duration::ZERO)?;
        let spec = model::spec(None, false)?;
        model::apply(&w, &spec).await?;
        let ttl = match organization {
            Organization::Known => DiscoveryConfig::default().cache_ttl,
            Organization::Walked => Duration::ZERO,
        };
        let discovery = DiscoveryConfig { cache_ttl: ttl, ..DiscoveryConfig::default() };
        let (engine, calls) = model::engine(p, &w.fake, w.journal.clone(), discovery);
        w.fake.reset_counters();
        let (rss_before_mib, cpu0) = (proc::rss_mib(None), proc::cpu_ms());
        let t0 = tokio::time::Instant::now();
        let op = engine
            .start_revoke(RevokeRequest {
                spec: spec.clone(),
                accounts: None,
                idempotency_key: None,
                created_by: "bench".into(),
            })
            .await?;
        let done = engine.wait(&op.id).await?;
        let wall_s = t0.elapsed().as_secs_f64();
        let (cpu_ms, peak_rss_mib) = (proc::cpu_ms().saturating_sub(cpu0), proc::peak_rss_mib(None));
        if done.state != OperationState::Succeeded || done.counts.changed as usize != p.accounts {
            bail!("the revocation did not write in every account: {:?} {}", done.counts, done.message);
        }
        let roles_found = (0..p.accounts)
            .filter(|i| {
                let account = format!("{:012}", 200_000_000_000u64 + *i as u64);
                w.fake
                    .role(&account, &spec.role.name)
                    .is_some_and(|r| r.inline_policies.contains_key(crossrole_core::revocation::POLICY_NAME))
            })
            .count();
        let measured =
            Measured { wall_s, worked_in: p.accounts, failed: 0, roles_found, cpu_ms, rss_before_mib, peak_rss_mib };
        let minimum = BTreeMap::from([
            ("sts:AssumeRole".to_string(), 1.0),
            ("iam:GetRole".to_string(), 1.0),
            ("iam:GetRolePolicy".to_string(), 1.0),
            ("iam:PutRolePolicy".to_string(), 1.0),
        ]);
        Ok(outcome("revoke", p, 0, organization, &w.fake, &calls, measured, minimum, 3.0))
    })
}

#[allow(clippy::too_many_arguments)]
fn outcome(
    operation: &str,
    p: &Params,
    roles: usize,
    organization: Organization,
    fake: &FakeAws,
    calls: &Arc<crossrole_aws::calls::CallPolicy>,
    m: Measured,
    minimum: BTreeMap<String, f64>,
    iam_calls: f64,
) -> Outcome {
    let served = fake.served();
    let org_calls: u64 = served.iter().filter(|(k, _)| k.starts_with("organizations:")).map(|(_, v)| v).sum();
    let chain = model::organization(p).1;
    let floor_parts = floor(p, m.worked_in, org_calls, chain, iam_calls);
    let floor_s = model::floor_total(&floor_parts);
    // Per account done (one that failed made its AssumeRole and nothing more).
    let n = (m.worked_in - m.failed).max(1) as f64;
    Outcome {
        operation: operation.to_string(),
        accounts: p.accounts,
        worked_in: m.worked_in,
        failed: m.failed,
        roles_per_account: roles,
        organization,
        quotas: p.quotas,
        headroom: p.headroom,
        wall_s: m.wall_s,
        floor_s,
        floor_parts_s: floor_parts,
        ratio: if floor_s > 0.0 { m.wall_s / floor_s } else { 0.0 },
        calls_per_account: served.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect(),
        minimum_per_account: minimum,
        max_in_flight: fake.max_accounts_in_flight(),
        throttled: fake.throttled(),
        retries: calls.global_stats().retries(),
        roles_found: m.roles_found,
        cpu_ms_per_account: m.cpu_ms as f64 / n,
        rss_before_mib: m.rss_before_mib,
        peak_rss_mib: m.peak_rss_mib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smoke test: every role found, the minimum calls made, every deny written; never time.
    #[test]
    fn an_inventory_reads_every_role_and_a_revoke_writes_every_deny() {
        let p = Params::default_for(30);
        for organization in [Organization::Walked, Organization::Known] {
            let o = inventory(&p, 50, organization).unwrap();
            // Each member account's 50 and its bootstrap role; the other accounts read, their bootstrap role.
            assert_eq!(o.roles_found, 30 * 51 + (o.worked_in - o.failed - 30), "{o:?}");
            assert!(o.failed <= 1, "{o:?}");
            for (call, min) in &o.minimum_per_account {
                let got = o.calls_per_account.get(call).copied().unwrap_or(0.0);
                assert!(got >= *min, "{call}: {got} < {min}");
            }
            let org_calls = o.calls_per_account.keys().any(|k| k.starts_with("organizations:"));
            assert_eq!(org_calls, organization == Organization::Walked, "{:?}", o.calls_per_account);
            assert!(o.floor_s > 0.0 && o.wall_s >= o.floor_s * 0.9, "{o:?}");
        }
        for organization in [Organization::Walked, Organization::Known] {
            let o = revoke(&p, organization).unwrap();
            assert_eq!(o.roles_found, 30, "every role carries the deny");
            for (call, min) in &o.minimum_per_account {
                let got = o.calls_per_account.get(call).copied().unwrap_or(0.0);
                assert!(got >= *min, "{call}: {got} < {min}");
            }
            let writes = o.calls_per_account.get("iam:PutRolePolicy").copied().unwrap_or(0.0);
            assert!(writes <= 1.0 + o.retries as f64 / 30.0, "one write per account: {writes}");
            assert!(o.floor_s > 0.0 && o.wall_s > 0.0, "{o:?}");
        }
    }
}
