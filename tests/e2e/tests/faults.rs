//! crossroled on the emulators through a fault-injecting proxy (`crossrole_e2e::proxy`): throttling, 500s and
//! 503s in AWS's shapes, connection resets, and responses lost after the emulator carried the request out. What
//! crossroled did is checked by reading the emulators directly, not through crossroled.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{collections::BTreeSet, time::Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{
    Aws, Crossroled, Manifest, granted,
    proxy::{Fault, Protocol, Proxy, Rule},
};
use crossrole_wire::ToWire;

/// The three services behind proxies, and crossroled's environment pointing at them.
struct Proxied {
    iam: Proxy,
    sts: Proxy,
    organizations: Proxy,
}

impl Proxied {
    async fn start(seed: u64) -> Proxied {
        let upstream =
            |var: &str| std::env::var(var).unwrap_or_else(|_| panic!("{var}: run through `cargo xtask e2e`"));
        Proxied {
            iam: Proxy::start(&upstream("AWS_ENDPOINT_URL_IAM"), Protocol::Query, seed).await.unwrap(),
            sts: Proxy::start(&upstream("AWS_ENDPOINT_URL_STS"), Protocol::Query, seed + 1).await.unwrap(),
            organizations: Proxy::start(&upstream("AWS_ENDPOINT_URL_ORGANIZATIONS"), Protocol::Json, seed + 2)
                .await
                .unwrap(),
        }
    }

    fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT_URL_IAM", self.iam.url.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.sts.url.as_str()),
            ("AWS_ENDPOINT_URL_ORGANIZATIONS", self.organizations.url.as_str()),
        ]
    }

    fn set(&self, rules: &[Rule]) {
        for p in [&self.iam, &self.sts, &self.organizations] {
            p.set(rules.to_vec());
        }
    }

    fn report(&self) -> String {
        [("IAM", &self.iam), ("STS", &self.sts), ("Organizations", &self.organizations)]
            .iter()
            .map(|(name, p)| {
                let (requests, faults) = p.totals();
                let given: u64 = faults.values().sum();
                format!("{name}: {requests} requests, {given} faults {faults:?}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn spec(m: &Manifest, name: &str, role: &str, tolerance: &str) -> proto::AccessSpec {
    AccessSpec::from_yaml(&m.example_variant(name, role, 10, tolerance)).unwrap().to_wire()
}

async fn results(c: &crossrole_client::Client, id: &str) -> Vec<proto::AccountResult> {
    c.list_account_results(proto::ListAccountResultsRequest {
        operation_id: id.to_string(),
        page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .results
}

fn worked(results: &[proto::AccountResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.outcome != proto::AccountOutcome::Skipped as i32)
        .map(|r| r.account_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_every_call_failing_every_way_still_converges_every_account() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let proxied = Proxied::start(20).await;
    proxied.set(&[Rule::fraction(0.2, &Fault::ALL)]);
    let server =
        Crossroled::start_with_env(&crossrole_e2e::test_dir("faults-mixed"), "", &proxied.env()).await.unwrap();
    let c = server.client().await;
    let spec = spec(&m, "faults-audit", "FaultsAudit", "0");

    let done = c.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    let report = proxied.report();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}; {report}", done.message);
    let counts = done.counts.unwrap();
    assert_eq!(counts.failed, 0, "{counts:?}");
    let (_, iam_faults) = proxied.iam.totals();
    for f in Fault::ALL {
        assert!(iam_faults.get(&f).copied().unwrap_or(0) > 0, "IAM got no {f:?}: {report}");
    }

    // Read from the emulators directly: every account worked on has the role as specified, and the grant names
    // exactly their roles.
    let accounts = worked(&results(&c, &done.id).await);
    assert!(accounts.len() >= 30, "{}", accounts.len());
    for a in &accounts {
        let role = aws.role(a, "FaultsAudit").await.unwrap_or_else(|| panic!("no role in {a}"));
        assert_eq!(role.managed_policy_arns.len(), 2, "{a}");
        assert_eq!(role.inline_policies.len(), 1, "{a}");
        assert!(role.permissions_boundary_arn.is_some(), "{a}");
    }
    let grant = format!("arn:aws:iam::{}:policy/crossrole/crossrole-assume-faults-audit", m.security_account);
    let security = aws.iam(&m.security_account).await;
    let want: BTreeSet<String> =
        accounts.iter().map(|a| format!("arn:aws:iam::{a}:role/crossrole/FaultsAudit")).collect();
    assert_eq!(granted(&security, &grant).await, want);

    // Healthy again: a re-apply finds nothing to do (nothing half-made, nothing twice).
    proxied.set(&[]);
    let again = c.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    let again_counts = again.counts.unwrap();
    assert_eq!((again_counts.changed, again_counts.failed), (0, 0), "{again_counts:?}");
    let calls: u64 = done.aws_calls.values().sum();
    println!(
        "mixed faults: {} accounts converged, 0 failed; crossroled made {calls} AWS calls (retries included, {} \
         throttled); {report}; the re-apply changed nothing",
        accounts.len(),
        done.throttled_calls
    );
    let destroyed = c.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_down_fails_accounts_clearly_and_a_reapply_once_it_is_back_completes() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let proxied = Proxied::start(40).await;
    let server =
        Crossroled::start_with_env(&crossrole_e2e::test_dir("faults-outage"), "", &proxied.env()).await.unwrap();
    let c = server.client().await;
    let spec = spec(&m, "outage-audit", "OutageAudit", "0");

    // IAM answers 503 to everything until it is back. (A 30-second outage is outlasted by crossroled's retries —
    // ten attempts with full jitter, about 23 s on average — and the accounts queued behind start after it: such
    // an apply succeeds, slower.) With a failure tolerance of 0, the first account to fail stops new ones.
    let started = Instant::now();
    proxied.iam.set(vec![Rule::fraction(1.0, &[Fault::Unavailable])]);
    let down = c.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    let took = started.elapsed();
    assert_eq!(down.state, proto::OperationState::Failed as i32, "{}", down.message);
    assert!(down.message.starts_with("failure tolerance (0) exceeded"), "{}", down.message);
    let rows = results(&c, &down.id).await;
    let failed: Vec<&proto::AccountResult> =
        rows.iter().filter(|r| r.outcome == proto::AccountOutcome::Failed as i32).collect();
    assert!(!failed.is_empty());
    for r in &failed {
        let e = r.error.as_ref().unwrap();
        assert!(e.message.contains("ServiceUnavailable"), "{}: {}", r.account_id, e.message);
        assert!(aws.role(&r.account_id, "OutageAudit").await.is_none(), "nothing made in {}", r.account_id);
    }
    let not_started = rows.iter().filter(|r| r.outcome == proto::AccountOutcome::NotStarted as i32).count();

    // IAM is back: a re-apply completes every account.
    proxied.iam.set(vec![]);
    let up = c.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(up.state, proto::OperationState::Succeeded as i32, "{}", up.message);
    let accounts = worked(&results(&c, &up.id).await);
    for a in &accounts {
        assert!(aws.role(a, "OutageAudit").await.is_some(), "{a}");
    }
    println!(
        "IAM down: {} accounts failed with ServiceUnavailable after {:.0}s of retries, {not_started} not started; IAM \
         back: {} converged; {}",
        failed.len(),
        took.as_secs_f64(),
        accounts.len(),
        proxied.report()
    );
    let destroyed = c.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
}
