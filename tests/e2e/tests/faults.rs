//! crossroled on the emulators through a fault-injecting proxy (`crossrole_e2e::proxy`): throttling, 500s and
//! 503s in AWS's shapes, connection resets, and responses lost after the emulator carried the request out. What
//! crossroled did is checked by reading the emulators directly, not through crossroled.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{collections::BTreeSet, time::Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{
    Aws, Crossroled, Manifest, granted,
    proxy::{Fault, Proxied, Rule},
};
use crossrole_wire::ToWire;

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
        assert!(role.attributes.permissions_boundary_arn.is_some(), "{a}");
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
    // Short retries (4 attempts, waits up to 1 s), so the outage outlasts them in seconds. (With the defaults, 10
    // attempts and waits up to 20 s, about 23 s on average, a 30-second outage is outlasted by the retries and the
    // accounts queued behind start after it: such an apply succeeds, slower.)
    let retries = "[aws]\nmax_attempts = 4\nmax_backoff = \"1s\"\n";
    let server =
        Crossroled::start_with_env(&crossrole_e2e::test_dir("faults-outage"), retries, &proxied.env()).await.unwrap();
    let c = server.client().await;
    let spec = spec(&m, "outage-audit", "OutageAudit", "0");

    // IAM answers 503 to everything until it is back. With a failure tolerance of 0, the first account to fail
    // stops new ones; each failed account is read back (its create may have landed) as long as a write retries.
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

/// When the last account other than `except` finished, counted from the operation's start.
fn others_done(op: &proto::Operation, rows: &[proto::AccountResult], except: &str) -> f64 {
    let start = op.start_time.as_ref().map(crossrole_wire::millis).unwrap();
    let last = rows
        .iter()
        .filter(|r| r.account_id != except)
        .filter_map(|r| r.end_time.as_ref().map(crossrole_wire::millis))
        .max()
        .unwrap();
    (last - start) as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_throttled_throughout_leaves_the_others_as_fast_as_without_it() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let proxied = Proxied::start(60).await;
    let server =
        Crossroled::start_with_env(&crossrole_e2e::test_dir("faults-one-throttled"), "", &proxied.env()).await.unwrap();
    let c = server.client().await;

    // The same rollout without a fault, for comparison.
    let calm_spec = spec(&m, "calm-audit", "CalmAudit", "1");
    let calm = c.apply(calm_spec.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(calm.state, proto::OperationState::Succeeded as i32, "{}", calm.message);
    let calm_rows = results(&c, &calm.id).await;
    let accounts = worked(&calm_rows);

    // IAM throttles every request made in one account, from the start of the rollout to its end: another tool is
    // hammering that account. The account is among the first to start.
    let victim = accounts[0].clone();
    proxied.iam.set(vec![Rule::account(&victim, &[Fault::Throttle])]);
    let throttled_spec = spec(&m, "throttled-audit", "ThrottledAudit", "1");
    let done = c.apply(throttled_spec.clone(), None).await.unwrap().wait().await.unwrap();
    proxied.iam.set(vec![]);
    let rows = results(&c, &done.id).await;

    // The victim fails, saying why; every other account converges, and none of their requests was throttled.
    assert_eq!(done.message, "1 account failed", "{}", proxied.report());
    let failed: Vec<&proto::AccountResult> =
        rows.iter().filter(|r| r.outcome == proto::AccountOutcome::Failed as i32).collect();
    assert_eq!(failed.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>(), [victim.as_str()]);
    let reason = &failed[0].error.as_ref().unwrap().message;
    assert!(reason.contains("Throttling"), "{reason}");
    let by_account = proxied.iam.by_account();
    assert!(by_account[&victim].faults.get(&Fault::Throttle).copied().unwrap_or(0) >= 2, "{by_account:?}");
    let others: Vec<&String> = accounts.iter().filter(|a| **a != victim).collect();
    for a in &others {
        let seen = by_account.get(*a).unwrap_or_else(|| panic!("no IAM request seen for {a}: {by_account:?}"));
        assert!(seen.faults.is_empty(), "{a}: {seen:?}");
        assert!(aws.role(a, "ThrottledAudit").await.is_some(), "{a}");
    }
    assert!(aws.role(&victim, "ThrottledAudit").await.is_none());

    // As fast as without it: the other accounts' last finish, from the start, against the calm run's. The victim's
    // retries (about 20 s of back-off) are its own; a shared back-off would hold the others up by as much.
    let (calm_took, others_took) = (others_done(&calm, &calm_rows, &victim), others_done(&done, &rows, &victim));
    let victim_took = {
        let start = done.start_time.as_ref().map(crossrole_wire::millis).unwrap();
        (failed[0].end_time.as_ref().map(crossrole_wire::millis).unwrap() - start) as f64 / 1000.0
    };
    assert!(
        others_took <= calm_took * 1.5 + 2.0,
        "the other {} accounts took {others_took:.1}s, {calm_took:.1}s without the throttled one",
        others.len()
    );
    println!(
        "one account throttled throughout: it failed after {victim_took:.1}s ({} throttled IAM requests); the other \
         {} converged in {others_took:.1}s ({calm_took:.1}s in the same rollout without it), none of their requests \
         throttled; {}",
        by_account[&victim].faults.get(&Fault::Throttle).copied().unwrap_or(0),
        others.len(),
        proxied.report()
    );
    for s in [throttled_spec, calm_spec] {
        let destroyed = c.destroy(s, None).await.unwrap().wait().await.unwrap();
        assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
    }
}
