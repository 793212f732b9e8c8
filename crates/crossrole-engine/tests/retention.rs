//! Retention: which finished operations leave the journal, and which stay.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use crossrole_core::{
    binding::RawBinding,
    ops::{OperationKind, OperationState},
    spec::RawSpec,
};
use crossrole_engine::{Retention, bindings::Bindings};

async fn reconcile(w: &World, bindings: &Bindings, name: &str) -> String {
    let op = bindings.reconcile(name, "test").await.unwrap();
    assert_eq!(w.engine.wait(&op.id).await.unwrap().state, OperationState::Succeeded);
    // The binding's status is recorded in the background once the operation ends.
    while bindings.get(name).await.unwrap().status.last_operation_id != op.id {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    op.id
}

#[tokio::test]
async fn quiet_reconciles_go_first_and_a_bindings_newest_operation_stays() {
    let w = world(3);
    let bindings = Bindings::new(w.engine.clone());
    let raw = RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() };
    let name = bindings.create(&raw).await.unwrap().name;
    let busy = reconcile(&w, &bindings, &name).await; // creates the roles
    let quiet = reconcile(&w, &bindings, &name).await; // finds them in place
    let newest = reconcile(&w, &bindings, &name).await;
    let mut other = spec();
    other.name = "other".into();
    other.role.name = "Other".into();
    let apply = run(&w, OperationKind::Apply, &other).await.id;
    let now = w.engine.operation(&apply).await.unwrap().end_time.unwrap() + 1;
    let busy_rows = results(&w, &busy).await.len();
    let exists = |id: String| {
        let engine = w.engine.clone();
        async move { engine.operation(&id).await.is_ok() }
    };

    // Only the reconcile that changed nothing and is not the binding's newest.
    let quiet_only =
        Retention { operations: Some(Duration::from_secs(3600)), quiet_reconciles: Some(Duration::ZERO), audit: None };
    assert_eq!(w.engine.expire(&quiet_only, now).await.unwrap().operations, 1);
    assert!(!exists(quiet.clone()).await);
    for id in [&busy, &newest, &apply] {
        assert!(exists(id.clone()).await, "{id}");
    }
    assert_eq!(results(&w, &busy).await.len(), busy_rows, "what stays is whole");

    // Everything finished, but the binding's newest operation.
    let all = Retention { operations: Some(Duration::ZERO), quiet_reconciles: None, audit: None };
    assert_eq!(w.engine.expire(&all, now).await.unwrap().operations, 2);
    assert!(!exists(busy).await && !exists(apply).await);
    assert!(exists(newest.clone()).await);
    assert_eq!(bindings.get(&name).await.unwrap().status.last_operation_id, newest);

    // Kept forever: nothing goes.
    let forever = Retention { operations: None, quiet_reconciles: None, audit: None };
    assert_eq!(forever.period(), None);
    assert_eq!(w.engine.expire(&forever, now + 1_000_000_000).await.unwrap().operations, 0);
}

#[test]
fn retention_looks_a_tenth_of_its_shortest_age_apart_within_bounds() {
    let r = |o: u64, q: u64| Retention {
        operations: Some(Duration::from_secs(o)),
        quiet_reconciles: Some(Duration::from_secs(q)),
        audit: None,
    };
    assert_eq!(Retention::default().period(), Some(Duration::from_secs(600)));
    assert_eq!(r(3600, 600).period(), Some(Duration::from_secs(60)));
    assert_eq!(r(3600, 5).period(), Some(Duration::from_secs(10)));
}
