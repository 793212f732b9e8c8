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
