//! Fencing for AWS, not only for the journal: a replica of a shared journal that may have lost its lease sends no
//! write to AWS, so nothing its successor removed comes back.
//!
//! Three replicas share one PostgreSQL journal with a 3 s lease (they may write for 1.8 s after a confirmed
//! renewal). Replica 1 reaches the database through a link the test cuts; replica 2 is paused with SIGSTOP. Each
//! runs an apply whose every `CreateRole` its own fault proxy throttles, so that the writes wait in back-off; then
//! replica 1's link is cut and replica 2 is paused at the same moment, and the throttling stops (a write sent now
//! would succeed). Replica 3 takes both operations over once the leases lapse, finishes them, and destroys both
//! specs; then replica 2 is continued. Afterwards, read from the emulator itself, no role of either spec exists; the
//! proxies saw no write from replica 1 or 2 after its deadline; and both stopped by themselves.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{
    Aws, Crossroled, Manifest,
    link::Link,
    proxy::{Fault, Proxied, Recorded, Rule},
};
use crossrole_wire::ToWire;

/// The lease, and how long after a confirmed renewal a replica may write (three fifths of it).
const LEASE: &str = "3s";
const FENCE: Duration = Duration::from_millis(1800);
/// Between a replica's check of its deadline and its request reaching the proxy on this machine.
const SLACK: Duration = Duration::from_millis(250);

fn shared_config(url: &str, key: &std::path::Path) -> String {
    format!(
        "journal = \"{url}\"\njournal_shared = true\njournal_lease = \"{LEASE}\"\njournal_key_file = \"{}\"\n",
        key.display()
    )
}

/// Every CreateRole this replica sends is throttled: its writes wait in back-off.
fn throttle_creates(p: &Proxied) {
    p.iam.set(vec![Rule { actions: vec!["CreateRole".into()], ..Rule::fraction(1.0, &[Fault::Throttle]) }]);
}

fn throttled_creates(p: &Proxied) -> u64 {
    p.iam.seen().get("CreateRole").and_then(|s| s.faults.get(&Fault::Throttle).copied()).unwrap_or(0)
}

/// The IAM writes that reached the emulator from this replica's proxy after `after`.
fn writes_after(p: &Proxied, after: Instant) -> Vec<Recorded> {
    p.iam
        .recorded()
        .into_iter()
        .filter(|r| r.forwarded && r.at > after && !r.action.starts_with("Get") && !r.action.starts_with("List"))
        .collect()
}

fn spec(m: &Manifest, name: &str, role: &str, concurrency: u32) -> proto::AccessSpec {
    let yaml = m
        .example_variant(name, role, concurrency, "100%")
        .replace("[/Root/Workloads, /Root/Sandbox]", "[/Root/Workloads]");
    AccessSpec::from_yaml(&yaml).unwrap().to_wire()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_or_paused_sends_nothing_after_its_deadline_and_nothing_destroyed_comes_back() {
    let url = std::env::var("CROSSROLE_E2E_POSTGRES").expect("CROSSROLE_E2E_POSTGRES: run through `cargo xtask e2e`");
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("fencing");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("journal.key");
    // The key every scenario on this PostgreSQL journal uses (they share the database).
    std::fs::write(&key, "5e".repeat(32)).unwrap();
    let accounts: Vec<String> = m.active_under("/Root/Workloads").iter().map(|a| a.id.clone()).collect();
    let n = accounts.len() as u32;
    assert!(n >= 4, "the seeded Workloads OU has accounts: {n}");

    // Replica 1 through a link the test cuts; replicas 2 and 3 straight to the database. Each its own proxies.
    let db = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap().to_string();
    let link = Link::start(&db).await.unwrap();
    let linked_url = url.replacen(&db, &link.addr, 1);
    let proxies = [Proxied::start(301).await, Proxied::start(311).await, Proxied::start(321).await];
    let mut replicas = Vec::new();
    for (i, journal) in [&linked_url, &url, &url].into_iter().enumerate() {
        let config = shared_config(journal, &key);
        let env = proxies[i].env();
        replicas.push(Crossroled::start_with_env(&dir.join(format!("r{}", i + 1)), &config, &env).await.unwrap());
    }
    for p in &proxies[..2] {
        p.record(true);
        throttle_creates(p);
    }

    // Replica 1 applies one spec, replica 2 another, every account at once; their CreateRoles wait in back-off.
    let (cut_spec, paused_spec) = (spec(&m, "fence-cut", "FenceCut", n), spec(&m, "fence-paused", "FencePaused", n));
    let cut_op = replicas[0].client().await.apply(cut_spec.clone(), None).await.unwrap().id().to_string();
    let paused_op = replicas[1].client().await.apply(paused_spec.clone(), None).await.unwrap().id().to_string();
    let waiting = Instant::now();
    while throttled_creates(&proxies[0]) < u64::from(n) || throttled_creates(&proxies[1]) < u64::from(n) {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the creates were not all throttled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Replica 1 is cut off from the database and replica 2 paused; from now on their writes would succeed.
    link.cut();
    let cut_at = Instant::now();
    replicas[1].signal("STOP");
    let paused_at = Instant::now();
    for p in &proxies[..2] {
        p.iam.set(vec![]);
    }

    // Replica 3 takes both operations over once the leases lapse, finishes them, and destroys both specs.
    let survivor = replicas[2].client().await;
    for op in [&cut_op, &paused_op] {
        let done = tokio::time::timeout(Duration::from_secs(120), survivor.operation_handle(op.clone()).wait())
            .await
            .expect("replica 3 finished the operation")
            .unwrap();
        assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{op}: {}", done.message);
    }
    let taken_over = cut_at.elapsed();
    for s in [&cut_spec, &paused_spec] {
        let destroyed = survivor.destroy(s.clone(), None).await.unwrap().wait().await.unwrap();
        assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
    }
    let destroyed_at = Instant::now();
    replicas[1].signal("CONT");
    let continued_at = Instant::now();

    // Both stop by themselves: liveness fails and the process exits within its grace (10 s here).
    let cut_exited = replicas[0].exits_within(Duration::from_secs(20)).await;
    let paused_exited = replicas[1].exits_within(Duration::from_secs(20)).await;
    // Anything still on its way would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let late_cut = writes_after(&proxies[0], cut_at + FENCE + SLACK);
    let late_paused = writes_after(&proxies[1], paused_at + FENCE + SLACK);
    let show = |w: &[Recorded], from: Instant| {
        w.iter()
            .map(|r| format!("{} {} at +{:.2}s", r.action, r.account, (r.at - from).as_secs_f64()))
            .collect::<Vec<_>>()
    };
    assert!(late_cut.is_empty(), "replica 1 wrote to AWS after its deadline: {:?}", show(&late_cut, cut_at));
    assert!(late_paused.is_empty(), "replica 2 wrote to AWS after its deadline: {:?}", show(&late_paused, paused_at));

    // Read from the emulator: nothing the journal calls destroyed exists.
    let mut left = Vec::new();
    for a in &accounts {
        for role in ["FenceCut", "FencePaused"] {
            if aws.role(a, role).await.is_some() {
                left.push(format!("{role} in {a}"));
            }
        }
    }
    assert!(left.is_empty(), "roles back after the destroy: {left:?}");
    assert!(cut_exited, "replica 1 did not stop by itself; see {}", dir.join("r1/crossroled.log").display());
    assert!(
        paused_exited,
        "replica 2 did not stop by itself after SIGCONT; see {}",
        dir.join("r2/crossroled.log").display()
    );

    let before_deadline = writes_after(&proxies[0], cut_at).len();
    println!(
        "fencing: {n} accounts per spec; replica 1 cut off from the database, replica 2 paused; replica 3 finished \
         both applies {:.1}s after the cut and destroyed both specs by +{:.1}s; replica 2 continued at +{:.1}s. \
         Writes that reached IAM after the deadline: replica 1 {} (it sent {before_deadline} between the cut and its \
         deadline), replica 2 {} (of {} requests it sent after SIGCONT). Roles of either spec left in the emulator: 0. \
         Both replicas stopped by themselves.",
        taken_over.as_secs_f64(),
        (destroyed_at - cut_at).as_secs_f64(),
        (continued_at - cut_at).as_secs_f64(),
        late_cut.len(),
        late_paused.len(),
        proxies[1].iam.recorded().iter().filter(|r| r.at > continued_at).count(),
    );
}
