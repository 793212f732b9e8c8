//! AWS's quotas where AWS keeps them: IAM's per account, STS's per calling account. An account whose IAM is
//! throttled (another tool hammering it) slows that account only.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::{Quota, Rate, Rates},
    fake::{FakeConfig, Latency},
};
use crossrole_store::SqliteJournal;
use tokio::time::Instant;

const ACCOUNTS: u64 = 1000;

/// AWS as the fake models it: IAM 10/s per account, STS 600/s per caller, with latency.
fn aws(hammered: Option<&str>) -> FakeConfig {
    let mut c = FakeConfig::default();
    c.throttle.insert(Service::Iam, Rate { per_second: 10.0, burst: 10 });
    c.throttle.insert(Service::Sts, Rate { per_second: 600.0, burst: 600 });
    for (s, ms) in [(Service::Iam, 60), (Service::Sts, 30), (Service::Organizations, 60)] {
        c.latency.insert(s, Latency { base: Duration::from_millis(ms), jitter: Duration::from_millis(ms / 2) });
    }
    if let Some(account) = hammered {
        // Another tool uses the whole quota: every call of crossrole's is throttled.
        c.throttle_scopes.insert((Service::Iam, account.to_string()), Rate { per_second: 0.001, burst: 1 });
    }
    c
}

/// Runs an apply over `ACCOUNTS` accounts and returns when every account but `except` finished, in model time.
async fn time_to_finish(hammered: Option<&str>) -> (Duration, World) {
    let w = world_with(
        ACCOUNTS,
        aws(hammered),
        Rates { organizations: Rate::UNLIMITED, ..Rates::default() },
        Arc::new(SqliteJournal::in_memory().unwrap()),
    );
    let spec = spec_with("  max_concurrency: 64\n  failure_tolerance: 1\n  verify: {enabled: false}\n");
    let started = Instant::now();
    let op = w.engine.start(start(OperationKind::Apply, &spec)).await.unwrap();
    let mut live = w.engine.subscribe(&op.id).unwrap();
    let mut others = 0;
    while let Ok(e) = live.recv().await {
        if let Event::AccountFinished { result } = &e.event
            && Some(result.account_id.as_str()) != hammered
            && result.account_id != SECURITY
        {
            assert_eq!(result.outcome, Outcome::Changed, "{}: {:?}", result.account_id, result.error);
            others += 1;
            if others == ACCOUNTS - u64::from(hammered.is_some()) {
                break;
            }
        }
    }
    (started.elapsed(), w)
}

#[tokio::test(start_paused = true)]
async fn an_account_throttled_by_someone_else_slows_no_other() {
    let (clean, _) = time_to_finish(None).await;
    let hammered = account(7);
    let (throttled, w) = time_to_finish(Some(&hammered)).await;
    assert!(
        throttled.as_secs_f64() <= clean.as_secs_f64() * 1.10,
        "999 accounts took {throttled:?} beside a throttled one, against {clean:?} for 1,000 without"
    );
    // The throttled account's bucket backed off; another account's did not.
    let rate = |a: &str| w.engine.calls().current_rate(&Quota::Iam(a.to_string()));
    assert!(rate(&hammered) < 10.0 * 0.5, "backed off: {}", rate(&hammered));
    assert_eq!(rate(&account(8)), 10.0);
    assert!(w.fake.throttled() > 0);
}

/// Three replicas, each running its own apply over the same 200 accounts at once, on one AWS whose quotas are
/// STS 30/s for the calling account and IAM 10/s per account. Each replica is configured at 90% of those quotas;
/// `shared` says whether each takes its third (as the live replica count from the journal's heartbeats makes it).
/// Returns how many calls AWS throttled, and when the last apply ended (model time).
async fn three_replicas(shared: bool) -> (u64, Duration) {
    let mut aws = FakeConfig::default();
    aws.throttle.insert(Service::Sts, Rate { per_second: 30.0, burst: 30 });
    aws.throttle.insert(Service::Iam, Rate { per_second: 10.0, burst: 10 });
    for (s, ms) in [(Service::Iam, 40), (Service::Sts, 30), (Service::Organizations, 40)] {
        aws.latency.insert(s, Latency { base: Duration::from_millis(ms), jitter: Duration::from_millis(ms / 4) });
    }
    let rates = Rates {
        organizations: Rate::UNLIMITED,
        iam: Rate { per_second: 9.0, burst: 9 },
        sts: Rate { per_second: 27.0, burst: 27 },
    };
    let w = world_with(200, aws, rates, Arc::new(SqliteJournal::in_memory().unwrap()));
    let replicas: Vec<crossrole_engine::Engine> = (0..3)
        .map(|_| {
            let calls = Arc::new(crossrole_aws::calls::CallPolicy::new(rates, Default::default()));
            if shared {
                calls.set_share(3);
            }
            let journal = Arc::new(SqliteJournal::in_memory().unwrap());
            crossrole_engine::Engine::new(Arc::new(w.fake.clone()), calls, journal, w.config.clone())
        })
        .collect();
    let started = Instant::now();
    let mut ops = Vec::new();
    for (i, engine) in replicas.iter().enumerate() {
        let spec = crossrole_core::AccessSpec::from_yaml(&format!(
            "name: audit-{i}\nrole:\n  name: Audit{i}\n  trust:\n    account_ids: [\"{SECURITY}\"]\n  \
             managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]\ntargets:\n  organizational_unit_ids: \
             [ou-root-workload]\nrollout:\n  max_concurrency: 64\n  verify: {{enabled: false}}\n"
        ))
        .unwrap();
        ops.push((engine.clone(), engine.start(start(OperationKind::Apply, &spec)).await.unwrap().id));
    }
    for (engine, id) in ops {
        let done = engine.wait(&id).await.unwrap();
        assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
        assert_eq!(done.counts.changed, 200);
    }
    (w.fake.throttled(), started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn replicas_that_share_the_quotas_stay_within_them_together() {
    let (throttled, took) = three_replicas(true).await;
    assert_eq!(throttled, 0, "three replicas each at a third of the rates were throttled ({took:?})");
    let (alone, took_alone) = three_replicas(false).await;
    assert!(alone > 0, "three replicas each at the whole rate exceed AWS's quota together ({took_alone:?})");
    println!(
        "3 replicas: shared rates {throttled} throttled in {took:?}; each at the full rate {alone} in {took_alone:?}"
    );
}
