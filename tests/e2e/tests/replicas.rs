//! Three crossroleds sharing one PostgreSQL journal's work (`journal_shared`), all ready and all taking changes.
//! The one running a 60-account rollout is killed with SIGKILL part-way; another claims the rollout once the
//! killed one's lease lapses and finishes it, and the events read from each survivor are contiguous and the same.
//! A binding on the three reconciles once per interval, also after the replica running the scheduler is killed.
//! Checked against the emulators directly. Needs `CROSSROLE_E2E_POSTGRES`
//! (`cargo xtask e2e` starts a PostgreSQL for it).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;
use futures::StreamExt;

/// The configuration of three replicas sharing the journal at `url` (a 3 s lease: a killed one's work is taken
/// within about 4 s).
fn shared_config(url: &str, key: &std::path::Path) -> String {
    format!(
        "journal = \"{url}\"\njournal_shared = true\njournal_lease = \"3s\"\njournal_key_file = \"{}\"\n",
        key.display()
    )
}

/// The one of `replicas` running the scheduler (gRPC health `scheduler`), within `limit`.
async fn scheduler_among(replicas: &mut [Crossroled], limit: Duration) -> usize {
    let started = Instant::now();
    while started.elapsed() < limit {
        for (i, r) in replicas.iter_mut().enumerate() {
            if r.running() && r.health_serving("scheduler").await {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no replica ran the scheduler within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shared_replicas_finish_a_rollout_whose_replica_was_killed() {
    let url = std::env::var("CROSSROLE_E2E_POSTGRES").expect("CROSSROLE_E2E_POSTGRES: run through `cargo xtask e2e`");
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("replicas-shared");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("journal.key");
    std::fs::write(&key, "5e".repeat(32)).unwrap();
    let config = shared_config(&url, &key);

    // Three replicas, all ready: each takes changes and works.
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Crossroled::start_with(&dir.join(name), &config).await.unwrap());
    }
    for r in &replicas {
        assert!(r.writing().await, "every replica of a shared journal is ready");
    }

    // A rollout over Workloads, Sandbox and Fleet (60 accounts), 3 at a time, started on a.
    let yaml = m
        .example_variant("replicas-audit", "ReplicasAudit", 3, "0")
        .replace("[/Root/Workloads, /Root/Sandbox]", "[/Root/Workloads, /Root/Sandbox, /Root/Fleet]");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let c = replicas[0].client().await;
    let op = c.apply(spec.clone(), None).await.unwrap();
    let id = op.id().to_string();
    loop {
        let now = c.operation(&id).await.unwrap();
        assert_eq!(now.state, proto::OperationState::Running as i32, "still running: {}", now.message);
        if now.counts.unwrap_or_default().changed >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // kill -9 the replica running it.
    replicas[0].kill();
    let killed_at = Instant::now();

    // Another replica claims it once a's lease lapses, resumes it and finishes it.
    let (b, c2) = (replicas[1].client().await, replicas[2].client().await);
    let before = b.operation(&id).await.unwrap().last_sequence;
    let took_over = loop {
        let now = b.operation(&id).await.unwrap();
        if now.last_sequence > before {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(60), "no replica took the rollout over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done = b.operation_handle(id.clone()).wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let counts = done.counts.unwrap();
    assert_eq!(counts.failed, 0, "{counts:?}");

    // The events read from each surviving replica are contiguous and identical.
    let read = |client: crossrole_client::Client| {
        let id = id.clone();
        async move {
            let events: Vec<_> = client.operation_handle(id).events().collect().await;
            events.into_iter().map(|e| e.map(|e| (e.sequence, e.event)).unwrap()).collect::<Vec<_>>()
        }
    };
    let (from_b, from_c) = (read(b.clone()).await, read(c2.clone()).await);
    let sequences: Vec<u64> = from_b.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>(), "contiguous across the takeover");
    assert_eq!(from_b, from_c, "every replica reads the same events");

    // Every account the operation worked on has the role once, as specified: read from the emulator.
    let results = b
        .list_account_results(proto::ListAccountResultsRequest {
            operation_id: id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .results;
    let worked: Vec<&proto::AccountResult> =
        results.iter().filter(|r| r.outcome != proto::AccountOutcome::Skipped as i32).collect();
    let expected = ["/Root/Workloads", "/Root/Sandbox", "/Root/Fleet"].iter().map(|p| m.active_under(p).len()).sum();
    assert!(worked.len() >= 60 && worked.len() + 2 >= expected, "{} worked on, {expected} active", worked.len());
    for r in &worked {
        let role = aws.role(&r.account_id, "ReplicasAudit").await;
        let role = role.unwrap_or_else(|| panic!("no role in {}", r.account_id));
        assert_eq!(role.managed_policy_arns.len(), 2, "{}", r.account_id);
        assert_eq!(role.inline_policies.len(), 1, "{}", r.account_id);
    }
    println!(
        "3 shared replicas: the one running the rollout was killed after 6 of {} accounts; another took it over \
         {:.1}s later; {} changed, {} unchanged, {} events, the same from both survivors",
        worked.len(),
        took_over.as_secs_f64(),
        counts.changed,
        counts.unchanged,
        sequences.len()
    );

    // Any survivor takes changes: the destroy goes to c.
    let destroyed = c2.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
    for r in &worked {
        assert!(aws.role(&r.account_id, "ReplicasAudit").await.is_none(), "{}", r.account_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_on_three_shared_replicas_reconciles_once_per_interval_and_after_its_scheduler_dies() {
    const INTERVAL: i64 = 10;
    let url = std::env::var("CROSSROLE_E2E_POSTGRES").expect("CROSSROLE_E2E_POSTGRES: run through `cargo xtask e2e`");
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("replicas-binding");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("journal.key");
    std::fs::write(&key, "5e".repeat(32)).unwrap();
    let config = shared_config(&url, &key);
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Crossroled::start_with(&dir.join(name), &config).await.unwrap());
    }
    let scheduler = scheduler_among(&mut replicas, Duration::from_secs(10)).await;
    // Created on a replica that does not run the scheduler: the one that does reconciles it.
    let c = replicas[(scheduler + 1) % 3].client().await;
    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: replicated-audit")
        .replace("name: SecurityAudit", "name: ReplicatedAudit")
        .replace("[/Root/Workloads]", "[/Root/Sandbox]");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let interval = Some(prost_types::Duration { seconds: INTERVAL, nanos: 0 });
    c.create_binding(proto::Binding { spec: Some(spec), reconcile_interval: interval, ..Default::default() })
        .await
        .unwrap();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3 * INTERVAL as u64 + 5)).await;
    let watched = started.elapsed();

    // The reconciles: one at creation, then one per interval (up to 10% later), never two at once, whichever
    // replica is asked.
    let reconciles = |c: crossrole_client::Client| async move {
        let request =
            proto::ListOperationsRequest { spec_name: "replicated-audit".into(), page_size: 100, ..Default::default() };
        let mut ops = c.list_operations(request).await.unwrap().operations;
        ops.retain(|o| o.kind == proto::OperationKind::Reconcile as i32 && o.binding_name == "replicated-audit");
        ops.sort_by_key(|o| o.create_time.as_ref().map(|t| (t.seconds, t.nanos)));
        ops
    };
    let ops = reconciles(c.clone()).await;
    let per_interval = watched.as_secs_f64() / INTERVAL as f64;
    assert!(
        ops.len() as f64 <= per_interval + 1.0 && ops.len() >= 3,
        "{} reconciles in {watched:?} at an interval of {INTERVAL}s",
        ops.len()
    );
    let seconds =
        |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9);
    for pair in ops.windows(2) {
        assert!(
            seconds(&pair[1].create_time) >= seconds(&pair[0].end_time),
            "a reconcile started before the last ended"
        );
    }
    // Every replica reads the same reconciles.
    for r in &replicas {
        let theirs = reconciles(r.client().await).await;
        assert_eq!(theirs.iter().map(|o| &o.id).collect::<Vec<_>>(), ops.iter().map(|o| &o.id).collect::<Vec<_>>());
    }

    // The replica running the scheduler dies (kill -9): another takes the scheduler over and keeps the binding's
    // interval.
    replicas[scheduler].kill();
    let killed = Instant::now();
    let next = scheduler_among(&mut replicas, Duration::from_secs(60)).await;
    assert_ne!(next, scheduler);
    let c = replicas[next].client().await;
    let before = ops.len();
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL as u64 + 5)).await;
    let after = reconciles(c.clone()).await;
    let since = killed.elapsed().as_secs_f64() / INTERVAL as f64;
    assert!(after.len() > before, "the new scheduler reconciles the binding");
    assert!(
        (after.len() - before) as f64 <= since + 1.0,
        "{} reconciles in {since:.1} intervals",
        after.len() - before
    );
    for pair in after.windows(2) {
        assert!(
            seconds(&pair[1].create_time) >= seconds(&pair[0].end_time),
            "a reconcile started before the last ended"
        );
    }
    println!(
        "a binding on 3 shared replicas: {} reconciles in {:.0}s at {INTERVAL}s; after the scheduler's replica was \
         killed, replica {next} took the scheduler over and made {} more in {:.0}s",
        before,
        watched.as_secs_f64(),
        after.len() - before,
        killed.elapsed().as_secs_f64()
    );

    // Leave the Sandbox as found.
    c.delete_binding("replicated-audit", false).await.unwrap().unwrap().wait().await.unwrap();
    for a in m.active_under("/Root/Sandbox") {
        assert!(aws.role(&a.id, "ReplicatedAudit").await.is_none(), "{}", a.id);
    }
}
