//! What crossroleds sharing one journal must not do to each other, on the fakes: a cancel lands only on the state
//! it saw (never on an operation that has ended, never overwritten by the run starting), a binding reconciles once
//! at a time however many ask, a binding deleted while it reconciles (here or on another replica) leaves nothing of
//! its spec behind, and an operation this crossroled cannot read is passed over, not a stop to the rest.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::{CallPolicy, Rates, RetryPolicy},
    fake::Failure,
};
use crossrole_core::binding::RawBinding;
use crossrole_engine::{Engine, Error, bindings::Bindings};
use crossrole_store::{
    Coordination, Journal, LeaseDeadline, NewOperation, OperationRow, SingleNode, StateChange, StoreError,
};

/// An operation of `spec` written to the journal as a crossroled writes it before it starts (pending), as if the
/// crossroled that wrote it stopped at once; `spec_bytes` replaces its spec's record, if given.
async fn written(w: &World, id: &str, kind: OperationKind, binding: Option<&str>, spec_bytes: Option<Vec<u8>>) {
    let sealed = crossrole_engine::sealed(&RawSpec::from(&spec()), &w.config.journal_key, id).unwrap();
    let created = w
        .journal
        .create_operation(NewOperation {
            id: id.into(),
            kind: records::stored_kind(kind),
            spec_name: "audit".into(),
            spec: spec_bytes.unwrap_or_else(|| records::encode_operation_spec(&sealed, None)),
            idempotency_key: None,
            request_fingerprint: String::new(),
            binding_name: binding.map(String::from),
            created_by: "test".into(),
            create_time: 1,
            state: records::stored_state(OperationState::Pending),
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(created.1, "{id} written");
}

/// Another crossroled on `w`'s journal and AWS, sharing the work as `coordination` says.
fn engine_with(w: &World, coordination: Arc<dyn Coordination>) -> Engine {
    let calls = Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
    Engine::with_coordination(Arc::new(w.fake.clone()), calls, w.journal.clone(), coordination, w.config.clone())
}

/// One crossroled's coordination, but every operation it claims is cancelled by another replica right after the
/// claim read it: the run starts from the state the claim read.
struct CancelledMeanwhile {
    single: SingleNode,
    journal: Arc<dyn Journal>,
}

#[async_trait::async_trait]
impl Coordination for CancelledMeanwhile {
    fn shares_work(&self) -> bool {
        false
    }
    async fn claim_operations(&self, limit: usize, passed_over: &[String]) -> Result<Vec<OperationRow>, StoreError> {
        let rows = self.single.claim_operations(limit, passed_over).await?;
        let cancelling = records::stored_state(OperationState::Cancelling);
        for row in &rows {
            let cancel = StateChange::new(&[row.state], cancelling, "cancel requested");
            assert!(self.journal.change_state(&row.id, cancel).await?, "the other replica's cancel lands");
        }
        Ok(rows)
    }
    async fn lock_role(&self, a: &str, r: &str, o: &str) -> Result<Option<String>, StoreError> {
        self.single.lock_role(a, r, o).await
    }
    async fn unlock_role(&self, a: &str, r: &str, t: &str) -> Result<(), StoreError> {
        self.single.unlock_role(a, r, t).await
    }
    async fn live_replicas(&self) -> Result<usize, StoreError> {
        Ok(2)
    }
    async fn leader(&self) {}
    async fn release(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn writer_lost(&self) -> String {
        std::future::pending().await
    }
    fn fence(&self) -> Option<LeaseDeadline> {
        None
    }
}

#[tokio::test]
async fn a_cancel_asked_elsewhere_before_the_run_starts_is_never_overwritten_by_running() {
    let w = world(4);
    written(&w, "asked", OperationKind::Apply, None, None).await;
    let coordination =
        Arc::new(CancelledMeanwhile { single: SingleNode::new(w.journal.clone()), journal: w.journal.clone() });
    let engine = engine_with(&w, coordination);
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait("asked").await.unwrap();

    assert_eq!(done.state, OperationState::Cancelled, "{}", done.message);
    for i in 0..4 {
        assert!(w.fake.role(&account(i), "Audit").is_none(), "nothing was done in {}", account(i));
    }
    let events = engine.events("asked", 0, 1000).await.unwrap();
    let states: Vec<OperationState> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::StateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(states, [OperationState::Cancelled], "never RUNNING over the cancel");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_racing_the_end_never_changes_a_finished_operation_and_its_binding_reconciles_again() {
    let w = world(1);
    let bindings = Bindings::new(w.engine.clone());
    bindings.create(&RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() }).await.unwrap();
    let first = bindings.reconcile("audit", "test").await.unwrap();
    let took = {
        let began = tokio::time::Instant::now();
        w.engine.wait(&first.id).await.unwrap();
        began.elapsed()
    };
    let (mut landed, mut refused) = (0, 0);
    let mut last = first.id;
    // One cancel each, later and later, until they come after the end: some land on the way, some right at it.
    for step in 0..24u32 {
        let op = bindings.reconcile("audit", "test").await.unwrap();
        assert_ne!(op.id, last, "a new reconcile: the one before has ended");
        tokio::time::sleep(took.mul_f64(f64::from(step) / 16.0)).await;
        match w.engine.cancel(&op.id).await {
            Ok(_) => landed += 1,
            Err(Error::FailedPrecondition(m)) if m.contains("is already") => refused += 1,
            Err(e) => panic!("{e}"),
        }
        let done = w.engine.wait(&op.id).await.unwrap();
        let row = w.journal.get_operation(&op.id).await.unwrap().unwrap();
        assert!(done.state.is_final() && row.end_time.is_some(), "{:?} ended at {:?}", done.state, row.end_time);
        assert!(w.journal.unfinished_operations().await.unwrap().is_empty());
        last = op.id;
    }
    assert!(landed > 0 && refused > 0, "cancels landed {landed}, refused {refused}");
}

#[tokio::test]
async fn a_binding_asked_to_reconcile_many_times_at_once_reconciles_once() {
    let w = world(3);
    let bindings = Bindings::new(w.engine.clone());
    bindings.create(&RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() }).await.unwrap();
    let first = bindings.reconcile("audit", "test").await.unwrap();
    w.engine.wait(&first.id).await.unwrap();
    // As from several replicas, each with its own bindings (none knows what the others started).
    let callers: Vec<Bindings> = (0..6).map(|_| Bindings::new(w.engine.clone())).collect();
    let asked = futures::future::join_all(callers.iter().map(|b| b.reconcile("audit", "test"))).await;
    let ids: std::collections::BTreeSet<String> = asked.into_iter().map(|r| r.unwrap().id).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (ops, _) = w.engine.list_operations(&Default::default(), 100, "").await.unwrap();
    assert_eq!(ops.len(), 2, "the first reconcile and one more");
}

/// A replica whose peers are all alive: it claims nothing, and its claims round only shares the quotas and follows
/// the cancels asked elsewhere.
struct Alive(SingleNode);

#[async_trait::async_trait]
impl Coordination for Alive {
    fn shares_work(&self) -> bool {
        false
    }
    async fn claim_operations(&self, _: usize, _: &[String]) -> Result<Vec<OperationRow>, StoreError> {
        Ok(Vec::new())
    }
    async fn lock_role(&self, a: &str, r: &str, o: &str) -> Result<Option<String>, StoreError> {
        self.0.lock_role(a, r, o).await
    }
    async fn unlock_role(&self, a: &str, r: &str, t: &str) -> Result<(), StoreError> {
        self.0.unlock_role(a, r, t).await
    }
    async fn live_replicas(&self) -> Result<usize, StoreError> {
        Ok(2)
    }
    async fn leader(&self) {}
    async fn release(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn writer_lost(&self) -> String {
        std::future::pending().await
    }
    fn fence(&self) -> Option<LeaseDeadline> {
        None
    }
}

/// A binding of the test spec over 8 accounts on `engine`, its reconcile started and still running (one account's
/// `CreateRole` throttled a few times) when this returns.
async fn reconciling(w: &World, engine: &Engine) -> Operation {
    let bindings = Bindings::new(engine.clone());
    bindings.create(&RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() }).await.unwrap();
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("CreateRole".into()),
        account: Some(account(7)),
        code: "Throttling".into(),
        times: Some(6),
    });
    let reconcile = bindings.reconcile("audit", "test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!engine.operation(&reconcile.id).await.unwrap().state.is_final(), "still reconciling");
    reconcile
}

/// Nothing of the test spec is left: no role in any of the 8 accounts, no grant policy, no placement.
async fn nothing_left(w: &World, what: &str) {
    let roles: Vec<String> = (0..8).map(account).filter(|a| w.fake.role(a, "Audit").is_some()).collect();
    assert!(roles.is_empty(), "{what}: roles left in {roles:?}");
    assert!(w.fake.policy(SECURITY, GRANT_ARN).is_none(), "{what}: the grant policy is there, naming {:?}", granted(w));
    assert!(w.journal.placements("audit").await.unwrap().is_empty(), "{what}: placements left");
}

/// Whether the operation `op` waited for the operation `earlier` before it did anything in an account: its event
/// saying so comes before its first account's, if any.
async fn waited_for(engine: &Engine, op: &str, earlier: &str) -> bool {
    let events = engine.events(op, 0, 10_000).await.unwrap();
    let waiting = events.iter().position(|e| match &e.event {
        Event::StateChanged { message, .. } => message.contains(&format!("waiting for operation {earlier}")),
        _ => false,
    });
    let first_account = events.iter().position(|e| !e.account_id.is_empty()).unwrap_or(usize::MAX);
    waiting.is_some_and(|w| w < first_account)
}

/// The outside tester's finding: `DeleteBinding` while the binding's reconcile ran started a destroy at once; the
/// destroy removed the grant first and the reconcile wrote it again at its end, naming every role — both
/// succeeded, and the grant stayed. Now the delete cancels the reconcile, and the destroy begins once it has ended.
#[tokio::test(start_paused = true)]
async fn deleting_a_binding_while_it_reconciles_cancels_the_reconcile_and_leaves_nothing_of_its_spec_behind() {
    let w = world(8);
    let reconcile = reconciling(&w, &w.engine).await;
    let destroy = Bindings::new(w.engine.clone()).delete("audit", false, "test").await.unwrap().expect("a destroy");
    let destroyed = w.engine.wait(&destroy.id).await.unwrap();
    let reconciled = w.engine.wait(&reconcile.id).await.unwrap();

    nothing_left(&w, "binding deleted while it reconciled").await;
    assert_eq!(reconciled.state, OperationState::Cancelled, "{}", reconciled.message);
    assert_eq!(destroyed.state, OperationState::Succeeded, "{}", destroyed.message);
    assert!(waited_for(&w.engine, &destroy.id, &reconcile.id).await, "the destroy began after the reconcile ended");
}

/// Replicas: the reconcile runs on one, the binding is deleted on another. The cancel reaches the reconcile through
/// its replica's claims (the replicas' loop, every second); the destroy, on the other replica, waits for the
/// reconcile's end in the journal.
#[tokio::test(start_paused = true)]
async fn a_binding_deleted_on_one_replica_while_another_reconciles_it_leaves_nothing_of_its_spec_behind() {
    let w = world(8);
    let one = engine_with(&w, Arc::new(Alive(SingleNode::new(w.journal.clone()))));
    let other = engine_with(&w, Arc::new(Alive(SingleNode::new(w.journal.clone()))));
    let reconcile = reconciling(&w, &one).await;
    let claims = {
        let one = one.clone();
        tokio::spawn(async move {
            loop {
                one.share_once().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let destroy = Bindings::new(other.clone()).delete("audit", false, "test").await.unwrap().expect("a destroy");
    assert!(other.subscribe(&reconcile.id).is_none(), "the reconcile does not run on the replica that deletes");
    let destroyed = other.wait(&destroy.id).await.unwrap();
    let reconciled = one.wait(&reconcile.id).await.unwrap();
    claims.abort();

    nothing_left(&w, "binding deleted on another replica while it reconciled").await;
    assert_eq!(reconciled.state, OperationState::Cancelled, "{}", reconciled.message);
    assert_eq!(destroyed.state, OperationState::Succeeded, "{}", destroyed.message);
    assert!(waited_for(&other, &destroy.id, &reconcile.id).await, "the destroy began after the reconcile ended");
}

/// A reconcile of the binding started after the delete (the scheduler read the binding just before it was
/// deleted) waits for the destroy, then finds the binding gone and does nothing.
#[tokio::test(start_paused = true)]
async fn a_reconcile_started_as_its_binding_is_deleted_waits_for_the_destroy_and_does_nothing() {
    let w = world(8);
    let reconcile = reconciling(&w, &w.engine).await;
    // The destroy takes a while in one account.
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("DeleteRole".into()),
        account: Some(account(3)),
        code: "Throttling".into(),
        times: Some(6),
    });
    let destroy = Bindings::new(w.engine.clone()).delete("audit", false, "test").await.unwrap().expect("a destroy");
    w.engine.wait(&reconcile.id).await.unwrap();
    written(&w, "late", OperationKind::Reconcile, Some("audit"), None).await;
    assert!(!w.engine.operation(&destroy.id).await.unwrap().state.is_final(), "the destroy is still running");
    assert_eq!(w.engine.resume().await.unwrap(), 1, "the late reconcile runs");
    let late = w.engine.wait("late").await.unwrap();
    let destroyed = w.engine.wait(&destroy.id).await.unwrap();

    nothing_left(&w, "a reconcile started as its binding was deleted").await;
    assert_eq!(destroyed.state, OperationState::Succeeded, "{}", destroyed.message);
    assert_eq!(late.state, OperationState::Cancelled, "{}", late.message);
    assert!(late.message.contains("binding audit was deleted"), "{}", late.message);
    assert!(waited_for(&w.engine, "late", &destroy.id).await, "the late reconcile waited for the destroy");
    assert!(results(&w, "late").await.is_empty(), "it did nothing in any account");
}

/// Deleting a binding and keeping its roles stops its running reconcile too: the binding's work ends with it.
#[tokio::test(start_paused = true)]
async fn deleting_a_binding_that_keeps_its_roles_cancels_its_reconcile() {
    let w = world(8);
    let reconcile = reconciling(&w, &w.engine).await;
    let none = Bindings::new(w.engine.clone()).delete("audit", true, "test").await.unwrap();
    assert!(none.is_none(), "no destroy");
    let reconciled = w.engine.wait(&reconcile.id).await.unwrap();
    assert_eq!(reconciled.state, OperationState::Cancelled, "{}", reconciled.message);
    assert!(w.fake.role(&account(0), "Audit").is_some(), "the roles it made are kept");
}

#[tokio::test]
async fn an_operation_this_crossroled_cannot_read_is_passed_over_and_the_rest_resume() {
    let w = world(3);
    // The oldest was written by a newer crossroled (a rolling upgrade): a record version this one does not read.
    written(&w, "newer", OperationKind::Apply, None, Some(br#"{"v":2,"record":{"name":"audit"}}"#.to_vec())).await;
    written(&w, "mine", OperationKind::Apply, None, None).await;
    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1, "the rest resume");
    let done = engine.wait("mine").await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert!(w.fake.role(&account(0), "Audit").is_some());
    // The one it cannot read is left as it was, for a crossroled that can: not failed, not claimed again.
    let newer = w.journal.get_operation("newer").await.unwrap().unwrap();
    assert_eq!(newer.state, records::stored_state(OperationState::Pending));
    assert_eq!(engine.resume().await.unwrap(), 0);
    assert_eq!(w.journal.unfinished_operations().await.unwrap().len(), 1);
}
