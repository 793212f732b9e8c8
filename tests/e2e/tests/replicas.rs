//! Three crossroleds on one PostgreSQL journal: one writes, two stand by (answering reads, refusing changes). The
//! writer is killed with SIGKILL in the middle of a rollout; a standby takes the journal over and finishes it, and
//! the events read from each surviving replica are the same; then that one is killed and the last one serves the
//! finished operation. A binding on the three reconciles once per interval, also after its writer is killed.
//! Checked against the emulators directly. Needs `CROSSROLE_E2E_POSTGRES`
//! (`cargo xtask e2e` starts a PostgreSQL for it).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;
use futures::StreamExt;

/// The first of `replicas` to write the journal within `limit`.
async fn writer_among(replicas: &mut [Crossroled], limit: Duration) -> usize {
    let started = Instant::now();
    while started.elapsed() < limit {
        for (i, r) in replicas.iter_mut().enumerate() {
            if r.running() && r.writing().await {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no replica took the journal within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_their_writer_killed_mid_rollout() {
    let url = std::env::var("CROSSROLE_E2E_POSTGRES").expect("CROSSROLE_E2E_POSTGRES: run through `cargo xtask e2e`");
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("replicas");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("journal.key");
    std::fs::write(&key, "5e".repeat(32)).unwrap();
    let config = format!("journal = \"{url}\"\njournal_standby = true\njournal_key_file = \"{}\"\n", key.display());

    // The first to start writes; the other two stand by: not ready, answering reads only.
    let first = Crossroled::start_with(&dir.join("a"), &config).await.unwrap();
    let mut replicas = vec![first];
    for name in ["b", "c"] {
        replicas.push(Crossroled::launch(&dir.join(name), &config).unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in &mut replicas[1..] {
        assert!(r.running(), "a standby waits, it does not exit");
        assert!(!r.writing().await, "a standby is not ready");
        assert!(r.serving().await, "a standby answers reads");
    }

    // A rollout over Workloads and Sandbox, 3 accounts at a time.
    let yaml = m.example_variant("replicas-audit", "ReplicasAudit", 3, "0");
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
    replicas[0].kill();
    let killed_at = Instant::now();

    // A standby takes over, resumes the rollout and finishes it.
    let next = writer_among(&mut replicas, Duration::from_secs(60)).await;
    let took_over = killed_at.elapsed();
    assert_ne!(next, 0);
    let c = replicas[next].client().await;
    let handle = c.operation_handle(id.clone());
    let done = handle.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let counts = done.counts.unwrap();
    assert_eq!(counts.failed, 0, "{counts:?}");
    let events: Vec<_> = handle.events().collect().await;
    let sequences: Vec<u64> = events.iter().map(|e| e.as_ref().unwrap().sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>(), "contiguous across the takeover");
    // The other survivor, still a standby, reads the same events from the journal, and refuses changes.
    let other = (1..3).find(|i| *i != next).unwrap();
    let standby = replicas[other].client().await;
    let theirs: Vec<_> = standby.operation_handle(id.clone()).events().collect().await;
    let same = |a: &[Result<proto::OperationEvent, crossrole_client::Error>]| {
        a.iter().map(|e| e.as_ref().map(|e| (e.sequence, e.event.clone())).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(same(&theirs), same(&events), "every replica reads the same events");
    let refused = standby.apply(spec.clone(), None).await.err().unwrap();
    assert!(refused.to_string().contains("standby"), "{refused}");

    // Every account the operation worked on has the role, as specified: read from the emulator.
    let results = c
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
    let expected = m.active_under("/Root/Workloads").len() + m.active_under("/Root/Sandbox").len();
    assert!(worked.len() + 2 >= expected, "{} worked on, {expected} active in the manifest", worked.len());
    for r in &worked {
        let role = aws.role(&r.account_id, "ReplicasAudit").await;
        let role = role.unwrap_or_else(|| panic!("no role in {}", r.account_id));
        assert_eq!(role.managed_policy_arns.len(), 2, "{}", r.account_id);
        assert_eq!(role.inline_policies.len(), 1, "{}", r.account_id);
    }
    println!(
        "writer killed after 6 of {} accounts; a standby took over in {:.1}s; {} changed, {} unchanged, {} events",
        worked.len(),
        took_over.as_secs_f64(),
        counts.changed,
        counts.unchanged,
        sequences.len()
    );

    // That one dies too: the last replica serves the finished operation from the shared journal, and removes it.
    replicas[next].kill();
    let last = writer_among(&mut replicas, Duration::from_secs(60)).await;
    assert!(last != 0 && last != next);
    let c = replicas[last].client().await;
    assert_eq!(c.operation(&id).await.unwrap().state, proto::OperationState::Succeeded as i32);
    let destroyed = c.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
    for r in &worked {
        assert!(aws.role(&r.account_id, "ReplicasAudit").await.is_none(), "{}", r.account_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_on_three_replicas_reconciles_once_per_interval_and_after_its_writer_dies() {
    const INTERVAL: i64 = 10;
    let url = std::env::var("CROSSROLE_E2E_POSTGRES").expect("CROSSROLE_E2E_POSTGRES: run through `cargo xtask e2e`");
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("replicas-binding");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("journal.key");
    std::fs::write(&key, "5e".repeat(32)).unwrap();
    let config = format!("journal = \"{url}\"\njournal_standby = true\njournal_key_file = \"{}\"\n", key.display());
    let mut replicas = vec![Crossroled::start_with(&dir.join("a"), &config).await.unwrap()];
    for name in ["b", "c"] {
        replicas.push(Crossroled::launch(&dir.join(name), &config).unwrap());
    }
    let c = replicas[0].client().await;
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

    // The writer's reconciles: one at creation, then one per interval (up to 10% later), never two at once.
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
    for r in &replicas[1..] {
        let theirs = reconciles(r.client().await).await;
        assert_eq!(theirs.iter().map(|o| &o.id).collect::<Vec<_>>(), ops.iter().map(|o| &o.id).collect::<Vec<_>>());
    }

    // The writer dies: the replica that takes over keeps the binding's interval.
    replicas[0].kill();
    let killed = Instant::now();
    let next = writer_among(&mut replicas, Duration::from_secs(60)).await;
    let c = replicas[next].client().await;
    let before = ops.len();
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL as u64 + 5)).await;
    let after = reconciles(c.clone()).await;
    let since = killed.elapsed().as_secs_f64() / INTERVAL as f64;
    assert!(after.len() > before, "the new writer reconciles the binding");
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
        "a binding on 3 replicas: {} reconciles in {:.0}s at {INTERVAL}s; after the writer was killed, replica {next} \
         took over and made {} more in {:.0}s",
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
