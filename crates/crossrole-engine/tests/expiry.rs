//! Access that expires, on the fakes with a clock the test moves: a binding's access is removed at its end and not
//! before, by whichever crossroled runs the schedule then (after a restart too), once however many run it; an
//! extension moves the end; an expired binding is not reconciled until an update grants its access again.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::calls::{CallPolicy, Rates, RetryPolicy};
use crossrole_core::{
    binding::{RawBinding, SyncCounts, SyncState},
    expiry::RawEnd,
    spec::RawDuration,
};
use crossrole_engine::{
    Clock, Engine, EngineConfig, Error, Retention,
    bindings::{Bindings, EXPIRY},
    expiries::Expiries,
    runtime::{Runtime, RuntimeConfig},
};

const HOUR: i64 = 3_600_000;

/// A world of 3 accounts whose engine's clock the test moves, starting now.
fn clocked() -> (World, Clock) {
    let clock = Clock::manual(Clock::system().now());
    (world_on_clock(3, &clock, EngineConfig::default()), clock)
}

/// The schedule of `engine`, looking every 50 ms.
fn schedule(engine: &Engine, bindings: &Bindings) -> Runtime {
    let config = RuntimeConfig {
        reconcile_tick: Duration::from_millis(50),
        retention: Retention { operations: None, quiet_reconciles: None, audit: None },
        organization_events: None,
        share_every: Duration::from_secs(1),
    };
    Runtime::start(engine.clone(), bindings.clone(), config)
}

/// The test spec as a binding ending `hours` after its creation.
fn ending_in(hours: i64) -> RawBinding {
    RawBinding {
        spec: Some(RawSpec::from(&spec())),
        end: RawEnd { expires_in: Some(RawDuration { seconds: hours * 3600, nanos: 0 }), ..Default::default() },
        ..Default::default()
    }
}

/// Whether the binding's access is in AWS: its role in every account and the grant naming them.
fn granted_everywhere(w: &World) -> bool {
    (0..3).all(|i| w.fake.role(&account(i), "Audit").is_some())
        && w.fake.policy(SECURITY, GRANT_ARN).is_some_and(|_| granted(w).len() == 3)
}

/// Whether nothing of the binding's access is left: no role, no grant policy.
fn nothing_granted(w: &World) -> bool {
    (0..3).all(|i| w.fake.role(&account(i), "Audit").is_none()) && w.fake.policy(SECURITY, GRANT_ARN).is_none()
}

/// Waits (up to 30 s) until `what` holds.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The destroys the binding's end started.
async fn expiry_destroys(engine: &Engine) -> Vec<Operation> {
    let (ops, _) = engine.list_operations(&Default::default(), 100, "").await.unwrap();
    ops.into_iter()
        .filter_map(|o| o.read())
        .filter(|o| o.kind == Some(OperationKind::Destroy) && o.created_by == EXPIRY)
        .collect()
}

/// Waits until the binding's first reconcile has granted its access.
async fn reconciled(w: &World, bindings: &Bindings) {
    until("the binding's access is granted", async || {
        let b = bindings.get("audit").await.unwrap();
        b.status.last_reconcile_time.is_some() && granted_everywhere(w)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_bindings_access_is_removed_at_its_end_and_not_before() {
    let (w, clock) = clocked();
    let bindings = Bindings::new(w.engine.clone());
    let runtime = schedule(&w.engine, &bindings);
    let created = bindings.create(&ending_in(1)).await.unwrap();
    assert_eq!(created.expires_at, Some(clock.now() + HOUR), "the duration is a time from the server's clock");
    reconciled(&w, &bindings).await;

    // A minute before the end: many ticks pass, and nothing is taken away.
    clock.advance(59 * 60_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(granted_everywhere(&w), "the access stays until its end");
    assert!(expiry_destroys(&w.engine).await.is_empty());

    clock.advance(60_000);
    until("the access is removed", async || nothing_granted(&w)).await;
    let destroys = expiry_destroys(&w.engine).await;
    assert_eq!(destroys.len(), 1, "one destroy");
    let done = w.engine.wait(&destroys[0].id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!(done.binding_name.as_deref(), Some("audit"));
    assert!(w.journal.placements("audit").await.unwrap().is_empty(), "no placement left");

    // The binding stays, expired, naming the destroy; it is not reconciled again.
    until("the status names the destroy", async || {
        bindings.get("audit").await.unwrap().status.expiry_operation_id == destroys[0].id
    })
    .await;
    // Its accounts are not in sync: their roles were removed, by the destroy, when it ended (an outside tester's
    // note: the status said "in sync" after the roles were gone).
    until("the status records the destroy", async || {
        bindings.get("audit").await.unwrap().status.last_operation_id == destroys[0].id
    })
    .await;
    let status = bindings.get("audit").await.unwrap().status;
    assert_eq!(status.counts, SyncCounts { removed: 3, ..Default::default() }, "{status:?}");
    assert!(status.accounts.iter().all(|a| a.state == SyncState::Removed), "{status:?}");
    assert_eq!(status.last_reconcile_time, done.end_time);
    assert_eq!(status.next_reconcile_time, None, "nothing is due");
    match bindings.reconcile("audit", "test").await {
        Err(Error::FailedPrecondition(m)) => assert!(m.contains("expired at"), "{m}"),
        other => panic!("an expired binding reconciled: {other:?}"),
    }
    clock.advance(2 * HOUR);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(nothing_granted(&w), "nothing granted again");
    assert_eq!(expiry_destroys(&w.engine).await.len(), 1, "still one destroy");

    // An update with an end ahead grants the access again.
    let updated = bindings.update(&ending_in(4), None).await.unwrap();
    assert_eq!(updated.expires_at, Some(clock.now() + 4 * HOUR));
    assert!(updated.status.expiry_operation_id.is_empty());
    until("the access is granted again", async || granted_everywhere(&w)).await;
    runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_moves_the_end() {
    let (w, clock) = clocked();
    let bindings = Bindings::new(w.engine.clone());
    let runtime = schedule(&w.engine, &bindings);
    bindings.create(&ending_in(1)).await.unwrap();
    reconciled(&w, &bindings).await;
    clock.advance(30 * 60_000);
    let (before, extended) = bindings.update_ending(&ending_in(2), None).await.unwrap();
    let end = clock.now() + 2 * HOUR;
    assert_eq!((before.map(|b| b + 30 * 60_000 - HOUR), extended.expires_at), (Some(clock.now()), Some(end)));

    clock.set(end - 60_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(granted_everywhere(&w), "past the first end, before the new one: still granted");
    assert!(expiry_destroys(&w.engine).await.is_empty());
    clock.set(end);
    until("the access is removed at the new end", async || nothing_granted(&w)).await;
    runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_survives_a_restart_and_is_acted_on_once_by_whichever_replicas_run_the_schedule() {
    let (w, clock) = clocked();
    let bindings = Bindings::new(w.engine.clone());
    let first = schedule(&w.engine, &bindings);
    bindings.create(&ending_in(1)).await.unwrap();
    reconciled(&w, &bindings).await;
    // The crossroled that made it stops before the end, and the end passes while none runs.
    first.stop().await;
    drop(bindings);
    clock.advance(3 * HOUR);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(granted_everywhere(&w), "nothing acts while no crossroled runs");

    // Two crossroleds on the journal, both running the schedule at once (as a leader and one that has not yet seen
    // it lost the lead): the end is acted on once.
    let calls = || Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
    let engines: Vec<Engine> =
        (0..2).map(|_| Engine::new(Arc::new(w.fake.clone()), calls(), w.journal.clone(), w.config.clone())).collect();
    let runtimes: Vec<Runtime> = engines.iter().map(|e| schedule(e, &Bindings::new(e.clone()))).collect::<Vec<_>>();
    until("the access is removed after the restart", async || nothing_granted(&w)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let destroys = expiry_destroys(&engines[0]).await;
    assert_eq!(destroys.len(), 1, "acted on once: {destroys:?}");
    for r in runtimes {
        r.stop().await;
    }
}

#[tokio::test]
async fn an_end_in_the_past_or_too_far_is_refused_naming_the_field() {
    let (w, clock) = clocked();
    let bindings = Bindings::new(w.engine.clone());
    let mut raw = ending_in(1);
    raw.end = RawEnd { expires_at: Some(clock.now() - 1), expires_in: None };
    match bindings.create(&raw).await {
        Err(Error::Invalid(e)) => assert_eq!(e.violations()[0].field, "binding.expires_at", "{e}"),
        other => panic!("{other:?}"),
    }
    let raw = ending_in(24 * 400);
    match bindings.create(&raw).await {
        Err(Error::Invalid(e)) => {
            assert_eq!(e.violations()[0].field, "binding.expires_in", "{e}");
            assert!(e.to_string().contains("at most 366 days"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(w.journal.get_binding("audit").await.unwrap().is_none(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applys_end_destroys_its_access_once_after_a_restart_and_an_extension_moves_it() {
    let (w, clock) = clocked();
    let expiries = Expiries::new(w.engine.clone());
    let end = clock.now() + HOUR;
    assert_eq!(expiries.set(&spec(), Some(end), "test").await.unwrap(), None);
    let applied = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    assert!(granted_everywhere(&w));

    // Extended before its end: the old end passes with the access in place.
    let before = expiries.set(&spec(), Some(end + HOUR), "test").await.unwrap().unwrap();
    assert_eq!((before.expires_at, before.operation_id), (end, None));
    let first = schedule(&w.engine, &Bindings::new(w.engine.clone()));
    clock.set(end + 60_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(granted_everywhere(&w), "extended: still granted past the first end");
    first.stop().await;

    // The new end passes while no crossroled runs; two that start after it act on it once.
    clock.set(end + 2 * HOUR);
    let calls = || Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
    let engines: Vec<Engine> =
        (0..2).map(|_| Engine::new(Arc::new(w.fake.clone()), calls(), w.journal.clone(), w.config.clone())).collect();
    let runtimes: Vec<Runtime> = engines.iter().map(|e| schedule(e, &Bindings::new(e.clone()))).collect();
    until("the apply's access is removed", async || nothing_granted(&w)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let destroys = expiry_destroys(&engines[0]).await;
    assert_eq!(destroys.len(), 1, "acted on once: {destroys:?}");
    assert_eq!(destroys[0].binding_name, None);
    let acted = expiries.get("audit").await.unwrap().unwrap();
    assert_eq!(acted.operation_id.as_deref(), Some(destroys[0].id.as_str()), "the end names its destroy");
    assert!(w.journal.placements("audit").await.unwrap().is_empty(), "no placement left");
    for r in runtimes {
        r.stop().await;
    }
}
