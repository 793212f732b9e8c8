//! What an outside security and fault test found, each held by a test: the grant reaches no further than the
//! rollout did, the record tells what happened after a crash, events come in persist order, no account is left
//! pending, lost responses are not failures, and an operation of an unknown kind does nothing; an account left
//! part-way that its operation does not resume keeps what was done on record, and a destroy finds its role.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::Rates,
    fake::{Chaos, Failure, FakeConfig, Latency, LostResponse},
};
use crossrole_store::{Journal, NewOperation, SqliteJournal, StoredKind};

const SUSPENDED: &str = "299999999999";

fn role_arns(accounts: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    accounts.into_iter().map(|a| format!("arn:aws:iam::{a}:role/crossrole/Audit")).collect()
}

/// Puts a role named like the spec's in `account`, made by hand: not crossrole's.
fn foreign_role(w: &World, account: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}"#;
    w.fake.with_account(account, |a| a.create_role_by_hand(account, "Audit", trust));
}

fn count_kind(r: &AccountResult, kind: ChangeKind) -> usize {
    r.changes.iter().filter(|c| c.kind == kind).count()
}

#[tokio::test(start_paused = true)]
async fn the_grant_names_only_owned_roles_in_active_accounts_and_a_replan_is_empty() {
    let w = world(8);
    // Account 2 already has a role of that name that crossrole does not own.
    foreign_role(&w, &account(2));
    let op = run(&w, OperationKind::Apply, &spec()).await;
    let r = results(&w, &op.id).await;
    let not_owned = r.iter().find(|r| r.account_id == account(2)).unwrap();
    assert_eq!(not_owned.error.as_ref().unwrap().code, ErrorCode::NotOwned);
    let expected = role_arns((0..8).filter(|i| *i != 2).map(account));
    assert_eq!(granted(&w), expected, "neither the unowned role nor the suspended account");

    let plan = w.engine.plan(&spec()).await.unwrap();
    assert_eq!(plan.total_changes(), 0, "{:#?}", plan.grant);
    assert!(plan.grant.as_ref().unwrap().changes.is_empty());
    assert!(plan.grant.as_ref().unwrap().error.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_failed_account_keeps_the_access_it_had_and_a_new_one_gets_none() {
    let w = world(5);
    let unreadable = |acc: String| Failure {
        service: Service::Iam,
        operation: None,
        account: Some(acc),
        code: "ServiceFailure".into(),
        times: None,
    };
    // Account 4's IAM fails from the start: its role was never made.
    w.fake.inject(unreadable(account(4)));
    let first = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(first.counts.failed, 1);
    assert_eq!(granted(&w), role_arns((0..4).map(account)));
    // Now account 1 fails too, after its role was made: a transient failure must not cut its access.
    w.fake.inject(unreadable(account(1)));
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.counts.failed, 2);
    assert_eq!(granted(&w), role_arns((0..4).map(account)), "account 1 keeps its access; account 4 gets none");
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_was_lost_while_iam_failed_is_found_and_put_on_record() {
    let w = world(1);
    let a = account(0);
    // The role is read (it is not there); then every CreateRole is carried out and its answer lost, and every
    // GetRole that would find it fails: the create's effect cannot be checked, and the write fails after its
    // attempts. Then IAM comes back.
    w.fake.lose_responses(LostResponse {
        service: Service::Iam,
        operation: Some("CreateRole".into()),
        account: Some(a.clone()),
        times: None,
    });
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("GetRole".into()),
        account: Some(a.clone()),
        code: "NoSuchEntity".into(),
        times: Some(1),
    });
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("GetRole".into()),
        account: Some(a.clone()),
        code: "ServiceFailure".into(),
        times: None,
    });
    let fake = w.fake.clone();
    let outage = tokio::spawn(async move {
        // The outage outlasts the write: after the read before it, its two reads of its effect (after the lost
        // answer, after EntityAlreadyExists) fail all their attempts, ten each by default. It ends while the
        // account is read back after the write failed.
        let reads = |f: &crossrole_aws::fake::FakeAws| f.served().get("iam:GetRole").copied().unwrap_or(0);
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
        while reads(&fake) < 23 {
            assert!(tokio::time::Instant::now() < give_up, "the write was never read back");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        fake.clear_failures();
    });
    let op = run(&w, OperationKind::Apply, &spec()).await;
    outage.await.unwrap();
    let r = results(&w, &op.id).await;
    let row = r.iter().find(|r| r.account_id == a).unwrap();
    assert!(w.fake.role(&a, "Audit").is_some(), "the role is there: {row:?}");
    // The record says what exists: the role was created; the spec is placed there, so a destroy looks there.
    assert_eq!(count_kind(row, ChangeKind::CreateRole), 1, "{:?}", row.changes);
    assert!(w.engine.journal().placed("audit", &a).await.unwrap());
    let events = w.engine.events(&op.id, 0, 10_000).await.unwrap();
    assert!(events.iter().any(|e| e.account_id == a
        && matches!(&e.event, Event::ChangeApplied { change } if change.kind == ChangeKind::CreateRole)));
    // A destroy that no longer selects the account finds it all the same.
    let mut narrower = spec();
    narrower.targets.exclude_account_ids.push(a.clone());
    let destroyed = run(&w, OperationKind::Destroy, &narrower).await;
    assert_eq!(destroyed.state, OperationState::Succeeded, "{}", destroyed.message);
    assert!(w.fake.role(&a, "Audit").is_none());
}

/// kill -9 in the middle of a rollout: the runtime that ran it is dropped with its tasks at whatever await they
/// were at, as a process that dies is. A new engine on the same journal resumes.
#[test]
fn a_killed_rollout_resumes_with_a_true_record_and_an_exact_grant() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("journal.db")).unwrap());
    let mut config = FakeConfig::default();
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(3), jitter: Duration::from_millis(3) });
    }
    let n = 40;
    let w = world_with(n, config, Rates::UNLIMITED, journal.clone());
    let spec = spec_with("  max_concurrency: 8\n");
    let first = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let id = first.block_on(async {
        let op = w.engine.start(start(OperationKind::Apply, &spec)).await.unwrap();
        // Until some accounts are done and others in flight.
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let c = w.engine.operation(&op.id).await.unwrap().counts;
            if c.changed >= 10 {
                break;
            }
        }
        op.id
    });
    first.shutdown_background();
    let crashed = journal.clone();
    let second = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    second.block_on(async {
        let mid = crashed.get_operation(&id).await.unwrap().unwrap();
        assert_eq!(mid.state, records::stored_state(OperationState::Running), "the crash left it unfinished");
        let engine = w.restarted();
        assert_eq!(engine.resume().await.unwrap(), 1);
        let done = engine.wait(&id).await.unwrap();
        assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
        let c = done.counts;
        assert_eq!((c.changed, c.unchanged, c.skipped), (n as u32, 0, 1), "every role was created by this operation");
        let r = engine.account_results(&id, &[], 1000, "").await.unwrap().0;
        for r in r.iter().map(|r| r.as_read().expect("every result reads")).filter(|r| r.account_id != SUSPENDED) {
            assert_eq!(count_kind(r, ChangeKind::CreateRole), 1, "{}: {:?}", r.account_id, r.changes);
            assert_eq!(count_kind(r, ChangeKind::AttachManagedPolicy), 1, "{}", r.account_id);
            assert_eq!(count_kind(r, ChangeKind::PutInlinePolicy), 1, "{}", r.account_id);
        }
        // A call in flight at the kill was counted when it arrived, and its effect never happened: at most one per
        // account in flight is sent again.
        let creates = w.fake.served().get("iam:CreateRole").copied().unwrap_or(0);
        assert!((n..=n + 8).contains(&creates), "{creates} CreateRole calls for {n} roles");
        assert_eq!(granted(&w), role_arns((0..n).map(account)), "the grant names exactly the active accounts");
        let seqs: Vec<u64> = engine.events(&id, 0, 100_000).await.unwrap().iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "events without gaps or duplicates");
        let plan = engine.plan(&spec).await.unwrap();
        assert_eq!(plan.total_changes(), 0);
    });
}

/// Hundreds of accounts emitting at once on a multi-thread runtime: every event a watcher sees live is already
/// in the journal, and sequence numbers arrive in order, without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_numbered_in_persist_order_and_published_only_once_persisted() {
    let journal = Arc::new(SqliteJournal::in_memory().unwrap());
    let config = crossrole_engine::EngineConfig { event_buffer: 100_000, ..Default::default() };
    let w = world_configured(300, FakeConfig::default(), Rates::UNLIMITED, journal, config);
    let op = w.engine.start(start(OperationKind::Apply, &spec_with("  max_concurrency: 300\n"))).await.unwrap();
    let mut live = w.engine.subscribe(&op.id).unwrap();
    let mut last: Option<u64> = None;
    let mut checked = 0;
    loop {
        let e = match live.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => panic!("the test's buffer is too small"),
            Err(e) => panic!("{e}"),
        };
        if let Some(prev) = last {
            assert_eq!(e.sequence, prev + 1, "live events arrive in order without gaps");
        }
        last = Some(e.sequence);
        let stored = w.engine.events(&op.id, e.sequence - 1, 1).await.unwrap();
        assert_eq!(stored.first().map(|s| s.sequence), Some(e.sequence), "published before it was persisted");
        checked += 1;
        if e.is_final() {
            break;
        }
    }
    assert!(checked > 1000, "{checked}");
    let seqs: Vec<u64> = w.engine.events(&op.id, 0, 1_000_000).await.unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn lost_responses_and_mixed_faults_fail_no_account() {
    let w = world(80);
    w.fake.set_chaos(Some(Chaos { fraction: 0.2, services: vec![Service::Iam, Service::Sts], seed: 11 }));
    let op = run(&w, OperationKind::Apply, &spec_with("  max_concurrency: 20\n")).await;
    let faults = w.fake.faults();
    assert!(faults.lost > 20 && faults.reset > 20 && faults.unavailable > 20 && faults.throttled > 20, "{faults:?}");
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let c = op.counts;
    assert_eq!((c.changed, c.failed), (80, 0));
    for r in results(&w, &op.id).await.iter().filter(|r| r.account_id != SUSPENDED) {
        assert_eq!(count_kind(r, ChangeKind::CreateRole), 1, "{}", r.account_id);
        assert!(w.fake.role(&r.account_id, "Audit").is_some());
    }
    assert_eq!(granted(&w), role_arns((0..80).map(account)));
    w.fake.set_chaos(None);
    assert_eq!(w.engine.plan(&spec()).await.unwrap().total_changes(), 0);
}

#[tokio::test(start_paused = true)]
async fn when_the_trusted_side_cannot_be_cut_first_no_role_is_touched_and_every_account_says_why() {
    let w = world(5);
    run(&w, OperationKind::Apply, &spec()).await;
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("DetachUserPolicy".into()),
        account: Some(SECURITY.into()),
        code: "AccessDenied".into(),
        times: None,
    });
    let op = run(&w, OperationKind::Destroy, &spec()).await;
    assert_eq!(op.state, OperationState::Failed);
    assert!(op.message.starts_with("trusted side: "), "{}", op.message);
    for r in results(&w, &op.id).await.iter().filter(|r| r.account_id != SUSPENDED) {
        assert_eq!(r.outcome, Outcome::NotStarted, "{}", r.account_id);
        let e = r.error.as_ref().unwrap();
        assert!(e.message.contains("the trusted side's policy could not be removed first"), "{}", e.message);
        assert!(w.fake.role(&r.account_id, "Audit").is_some(), "roles untouched");
    }
}

#[tokio::test(start_paused = true)]
async fn the_failure_tolerance_message_counts_every_failure() {
    let w = world(12);
    for i in [0, 1] {
        w.fake.inject(Failure {
            service: Service::Iam,
            operation: None,
            account: Some(account(i)),
            code: "AccessDenied".into(),
            times: None,
        });
    }
    let op = run(&w, OperationKind::Apply, &spec_with("  max_concurrency: 2\n  failure_tolerance: 0\n")).await;
    let c = op.counts;
    assert_eq!(c.failed, 2);
    assert_eq!(op.message, format!("failure tolerance (0) exceeded: 2 accounts failed, {} not started", c.not_started));
    let r = results(&w, &op.id).await;
    let not_started = r.iter().find(|r| r.outcome == Outcome::NotStarted).unwrap();
    assert_eq!(not_started.error.as_ref().unwrap().message, "not started: the failure tolerance (0) was exceeded");
}

#[tokio::test(start_paused = true)]
async fn an_operation_of_an_unknown_kind_does_nothing() {
    let w = world(3);
    let spec_bytes = records::encode(&RawSpec::from(&spec()));
    w.journal
        .create_operation(NewOperation {
            id: "0190a1b2-0000-7000-8000-000000000001".into(),
            kind: StoredKind::Unknown(99),
            spec_name: "audit".into(),
            spec: spec_bytes,
            idempotency_key: None,
            request_fingerprint: "f".into(),
            binding_name: None,
            created_by: "test".into(),
            create_time: 1,
            state: records::stored_state(OperationState::Pending),
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(w.engine.resume().await.unwrap(), 1);
    let op = w.engine.wait("0190a1b2-0000-7000-8000-000000000001").await.unwrap();
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(op.message, "unknown operation kind 99; nothing was done");
    assert_eq!(w.fake.iam_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_sees_the_final_event_sees_the_final_state() {
    let w = world(3);
    for i in 0..12 {
        // Alternate outcomes: success, and failure (a missing bootstrap role).
        if i % 2 == 1 {
            w.fake.with_account(&account(0), |a| a.remove_role("OrganizationAccountAccessRole"));
        }
        let op = w.engine.start(start(OperationKind::Apply, &spec_with("  verify: {enabled: false}\n"))).await.unwrap();
        let Some(mut live) = w.engine.subscribe(&op.id) else { continue };
        while let Ok(e) = live.recv().await {
            if let Event::StateChanged { state, .. } = &e.event
                && state.is_final()
            {
                let seen = w.engine.operation(&op.id).await.unwrap();
                assert_eq!(
                    seen.state, *state,
                    "operation {i}: the event said {state:?}, the operation {:?}",
                    seen.state
                );
                assert_eq!(seen.last_sequence, e.sequence);
                break;
            }
        }
        w.engine.wait(&op.id).await.unwrap();
    }
}

/// The issue's finding: every apply sent `CreateRole` at a same-named role crossrole does not own (a 409 and a
/// failed write in that account's CloudTrail, run after run). The role is read before anything is written: found
/// not crossrole's, it is reported with why, and no IAM write reaches its account, on the first apply or any after.
#[tokio::test(start_paused = true)]
async fn no_write_is_aimed_at_a_role_crossrole_does_not_own() {
    let w = world(6);
    let foreign = account(2);
    foreign_role(&w, &foreign);
    let before = w.fake.role(&foreign, "Audit");
    let first = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!((first.counts.changed, first.counts.skipped), (5, 2), "{}", first.message);
    for op in [first.id.clone(), run(&w, OperationKind::Apply, &spec()).await.id] {
        let r = results(&w, &op).await;
        let unowned = r.iter().find(|r| r.account_id == foreign).unwrap();
        assert_eq!(unowned.outcome, Outcome::Skipped);
        assert!(unowned.changes.is_empty(), "{:?}", unowned.changes);
        let error = unowned.error.as_ref().unwrap();
        assert_eq!((error.code, error.phase), (ErrorCode::NotOwned, Phase::Plan));
        // It names the role that is there (made by hand at `/`, not at the spec's path).
        assert_eq!(
            error.message,
            format!(
                "arn:aws:iam::{foreign}:role/Audit exists and is not managed by crossrole (no crossrole:managed-by \
                 tag); it is left untouched. `crossrole adopt -f <spec file>` shows how it differs from the spec and \
                 takes it over on approval"
            )
        );
        assert_eq!(w.fake.iam_writes_in(&foreign), 0, "{:?}", w.fake.served_in(&foreign));
        assert_eq!(w.fake.role(&foreign, "Audit"), before);
    }
    // Where no role was, each apply read it (the first found nothing) and it was created once.
    for i in [0, 1, 3, 4, 5] {
        let served = w.fake.served_in(&account(i));
        assert_eq!((served.get("iam:GetRole"), served.get("iam:CreateRole")), (Some(&2), Some(&1)), "{served:?}");
        assert!(w.fake.role(&account(i), "Audit").is_some());
    }

    // Account 4's role is this spec's, but the journal forgot it was applied there, and it drifted: the account is
    // read, and the drift is repaired — the record names the repair, not a create.
    w.journal.set_placement("audit", &account(4), false).await.unwrap();
    w.fake.with_account(&account(4), |a| a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess"));
    let again = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(again.counts.changed, 1, "{}", again.message);
    let r = results(&w, &again.id).await;
    let repaired = r.iter().find(|r| r.account_id == account(4)).unwrap();
    assert_eq!(count_kind(repaired, ChangeKind::CreateRole), 0, "{:?}", repaired.changes);
    assert_eq!(count_kind(repaired, ChangeKind::DetachManagedPolicy), 1, "{:?}", repaired.changes);
    assert_eq!(w.fake.role(&account(4), "Audit").unwrap().managed_policy_arns.len(), 1);
    assert_eq!(w.fake.iam_writes_in(&foreign), 0, "{:?}", w.fake.served_in(&foreign));
    let plan = w.engine.plan(&spec()).await.unwrap();
    assert_eq!(plan.total_changes(), 0);
    // The plan names the role that is there too.
    let conflict = plan.accounts.iter().find(|a| a.account_id == foreign).unwrap();
    assert!(
        conflict.findings[0].message.starts_with(&format!("arn:aws:iam::{foreign}:role/Audit exists")),
        "{:?}",
        conflict.findings
    );
}

/// A role made between the read and the create (someone else's, just then): the create finds it there and does
/// nothing, the account is read again, and the role — not crossrole's — is a conflict, left as it is. The one
/// refused `CreateRole` is the only write its account sees.
#[tokio::test(start_paused = true)]
async fn a_role_made_between_the_read_and_the_create_is_a_conflict_left_untouched() {
    let w = world(3);
    let raced = account(1);
    foreign_role(&w, &raced);
    let before = w.fake.role(&raced, "Audit");
    // The read misses it, as a read made just before it was created would.
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("GetRole".into()),
        account: Some(raced.clone()),
        code: "NoSuchEntity".into(),
        times: Some(1),
    });
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!((op.counts.changed, op.counts.skipped, op.counts.failed), (2, 2, 0), "{}", op.message);
    let r = results(&w, &op.id).await;
    let row = r.iter().find(|r| r.account_id == raced).unwrap();
    assert_eq!(row.outcome, Outcome::Skipped);
    assert!(row.changes.is_empty(), "{:?}", row.changes);
    let error = row.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::NotOwned);
    assert!(error.message.contains("is not managed by crossrole"), "{}", error.message);
    let served = w.fake.served_in(&raced);
    assert_eq!(served.get("iam:CreateRole"), Some(&1), "{served:?}");
    assert_eq!(w.fake.iam_writes_in(&raced), 1, "nothing but the refused create: {served:?}");
    assert_eq!(w.fake.role(&raced, "Audit"), before);
    let events = w.engine.events(&op.id, 0, 10_000).await.unwrap();
    assert!(!events.iter().any(|e| e.account_id == raced && matches!(e.event, Event::ChangeApplied { .. })));
    // The grant leaves it out.
    assert_eq!(granted(&w), role_arns([account(0), account(2)]));
}

/// A coordination whose lease the test holds: the one writer's otherwise, with a fence that passes when the test
/// stops renewing.
struct Leased {
    single: crossrole_store::SingleNode,
    until: tokio::sync::watch::Receiver<tokio::time::Instant>,
}

#[async_trait::async_trait]
impl crossrole_store::Coordination for Leased {
    fn shares_work(&self) -> bool {
        false
    }
    async fn claim_operations(
        &self,
        limit: usize,
        passed_over: &[String],
    ) -> Result<Vec<crossrole_store::OperationRow>, crossrole_store::StoreError> {
        self.single.claim_operations(limit, passed_over).await
    }
    async fn lock_role(&self, a: &str, r: &str, o: &str) -> Result<Option<String>, crossrole_store::StoreError> {
        self.single.lock_role(a, r, o).await
    }
    async fn unlock_role(&self, a: &str, r: &str, t: &str) -> Result<(), crossrole_store::StoreError> {
        self.single.unlock_role(a, r, t).await
    }
    async fn live_replicas(&self) -> Result<usize, crossrole_store::StoreError> {
        Ok(1)
    }
    async fn leader(&self) {}
    async fn release(&self) -> Result<(), crossrole_store::StoreError> {
        Ok(())
    }
    async fn writer_lost(&self) -> String {
        std::future::pending().await
    }
    fn fence(&self) -> Option<crossrole_store::LeaseDeadline> {
        Some(crossrole_store::LeaseDeadline { until: self.until.clone(), write_attempt: Duration::from_secs(5) })
    }
}

/// The issue's fault, on the fakes: every CreateRole throttled, so the writes wait in back-off, when the lease
/// stops being renewed. Nothing reaches IAM after the deadline; the operation is left unfinished, not failed; and
/// the crossroled that takes the journal over finishes it.
#[tokio::test]
async fn writes_waiting_in_backoff_when_the_lease_may_have_lapsed_never_leave_and_the_successor_finishes() {
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::in_memory().unwrap());
    let mut config = FakeConfig::default();
    config.latency.insert(Service::Iam, Latency { base: Duration::from_millis(5), jitter: Duration::from_millis(5) });
    let w = world_with(6, config, Rates::UNLIMITED, journal.clone());
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("CreateRole".into()),
        account: None,
        code: "Throttling".into(),
        times: None,
    });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    let (_renewals, until) = tokio::sync::watch::channel(deadline);
    let coordination = Arc::new(Leased { single: crossrole_store::SingleNode::new(journal.clone()), until });
    let retry = crossrole_aws::calls::RetryPolicy {
        max_attempts: 100,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    let calls = Arc::new(crossrole_aws::calls::CallPolicy::new(Rates::UNLIMITED, retry));
    let fenced = crossrole_engine::Engine::with_coordination(
        Arc::new(w.fake.clone()),
        calls,
        journal.clone(),
        coordination,
        w.config.clone(),
    );
    let op = fenced.start(start(OperationKind::Apply, &spec())).await.unwrap();
    tokio::time::sleep_until(deadline + Duration::from_millis(100)).await;
    let sent = w.fake.served().get("iam:CreateRole").copied().unwrap_or(0);
    assert!(sent >= 6, "the writes were trying before the deadline: {sent}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.fake.served().get("iam:CreateRole").copied().unwrap_or(0), sent, "a write left after the deadline");
    assert_eq!(fenced.running_count(), 0, "the fenced crossroled stopped its operation");
    let row = journal.unfinished_operations().await.unwrap();
    assert_eq!(row.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [op.id.as_str()], "left unfinished, not failed");
    assert!(results(&w, &op.id).await.iter().all(|r| r.outcome != Outcome::Failed), "no account failed for it");

    // The successor takes the journal over once IAM lets writes through, and finishes the rollout.
    w.fake.clear_failures();
    let successor = w.restarted();
    assert_eq!(successor.resume().await.unwrap(), 1);
    let done = successor.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    for i in 0..6 {
        assert!(w.fake.role(&account(i), "Audit").is_some());
    }
}

/// An apply fenced part-way through an account of `w` (1 account): its `CreateRole` landed, its next write waited in
/// back-off when the lease stopped being renewed. Returns the operation, left unfinished with the account running.
async fn left_part_way_by_the_fence(w: &World) -> String {
    // Every write after the create is throttled until the fence stops it.
    for op in ["AttachRolePolicy", "PutRolePolicy", "TagRole", "PutRolePermissionsBoundary"] {
        w.fake.inject(Failure {
            service: Service::Iam,
            operation: Some(op.into()),
            account: None,
            code: "Throttling".into(),
            times: None,
        });
    }
    let (_renewals, until) = tokio::sync::watch::channel(tokio::time::Instant::now() + Duration::from_secs(2));
    let coordination = Arc::new(Leased { single: crossrole_store::SingleNode::new(w.journal.clone()), until });
    let calls = Arc::new(crossrole_aws::calls::CallPolicy::new(Rates::UNLIMITED, Default::default()));
    let fenced = crossrole_engine::Engine::with_coordination(
        Arc::new(w.fake.clone()),
        calls,
        w.journal.clone(),
        coordination,
        w.config.clone(),
    );
    let op = fenced.start(start(OperationKind::Apply, &spec())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(w.fake.role(&account(0), "Audit").is_some(), "the create landed before the fence");
    assert_eq!(w.journal.unfinished_operations().await.unwrap().len(), 1, "left unfinished by the fence");
    let row = results(w, &op.id).await.remove(0);
    assert_eq!(row.outcome, Outcome::Running);
    assert_eq!(row.changes[0].kind, ChangeKind::CreateRole);
    assert!(w.journal.placements("audit").await.unwrap().is_empty(), "not on record as placed yet");
    w.fake.clear_failures();
    op.id
}

/// The account leaves the spec's selection (moved to the sandbox OU), and the spec is destroyed: whether its role
/// is left behind.
async fn role_left_after_a_destroy_that_no_longer_selects_it(w: &World, engine: &crossrole_engine::Engine) -> bool {
    let a = account(0);
    w.fake.with_tree(|t| {
        t.units.get_mut("ou-root-prodxxxx").unwrap().accounts.retain(|x| *x != a);
        t.units.get_mut("ou-root-sandboxx").unwrap().accounts.push(a.clone());
        t.accounts.get_mut(&a).unwrap().parent_id = "ou-root-sandboxx".into();
    });
    let destroy = engine.start(start(OperationKind::Destroy, &spec())).await.unwrap();
    let destroyed = engine.wait(&destroy.id).await.unwrap();
    assert_eq!(destroyed.state, OperationState::Succeeded, "{}", destroyed.message);
    w.fake.role(&account(0), "Audit").is_some()
}

/// The outside tester's finding: an account an apply left part-way (its replica fenced), cancelled before the
/// crossroled that takes the journal over resumes it, was rewritten NOT_STARTED with no changes, and the spec was
/// never on record as placed there, so a destroy that no longer selected the account left the role. Now the
/// account failed, cancelled part-way, and keeps what the apply did (its write in flight read back and found not
/// made); the spec is on record as placed; the destroy finds the role.
#[tokio::test(start_paused = true)]
async fn an_account_left_part_way_and_cancelled_before_it_resumes_keeps_what_was_done_and_a_destroy_finds_its_role() {
    let mut config = FakeConfig::default();
    config.latency.insert(Service::Iam, Latency { base: Duration::from_millis(5), jitter: Duration::from_millis(5) });
    let w = world_with(1, config, Rates::UNLIMITED, Arc::new(SqliteJournal::in_memory().unwrap()));
    let op = left_part_way_by_the_fence(&w).await;

    let successor = w.restarted();
    successor.cancel(&op).await.unwrap();
    assert_eq!(successor.resume().await.unwrap(), 1);
    let done = successor.wait(&op).await.unwrap();
    assert_eq!(done.state, OperationState::Cancelled, "{}", done.message);
    let row = results(&w, &op).await.remove(0);
    assert_eq!(row.outcome, Outcome::Failed);
    let error = row.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::Cancelled);
    assert!(error.message.starts_with("cancelled part-way"), "{}", error.message);
    let kinds: Vec<ChangeKind> = row.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::CreateRole], "what was made, and only that");
    assert_eq!(w.journal.placements("audit").await.unwrap(), [account(0)]);
    assert_eq!(done.counts.failed, 1);

    assert!(!role_left_after_a_destroy_that_no_longer_selects_it(&w, &successor).await, "the destroy found the role");
}

/// The same, with the account unreadable when the cancelled operation ends: the record keeps the changes known to
/// be made (all but the one in flight), says the last may have been, and the create among them puts the spec on
/// record as placed.
#[tokio::test(start_paused = true)]
async fn an_account_left_part_way_that_cannot_be_read_keeps_the_changes_known_made_and_says_so() {
    let mut config = FakeConfig::default();
    config.latency.insert(Service::Iam, Latency { base: Duration::from_millis(5), jitter: Duration::from_millis(5) });
    let w = world_with(1, config, Rates::UNLIMITED, Arc::new(SqliteJournal::in_memory().unwrap()));
    let op = left_part_way_by_the_fence(&w).await;
    // The row the fence left is the one written ahead of the write it stopped.
    let mut left = results(&w, &op).await.remove(0).changes;
    assert_eq!(left.len(), 2, "the create, then the write in flight: {left:?}");
    let in_flight = left.pop().unwrap();
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("GetRole".into()),
        account: Some(account(0)),
        code: "AccessDenied".into(),
        times: None,
    });

    let successor = w.restarted();
    successor.cancel(&op).await.unwrap();
    assert_eq!(successor.resume().await.unwrap(), 1);
    let done = successor.wait(&op).await.unwrap();
    assert_eq!(done.state, OperationState::Cancelled, "{}", done.message);
    let row = results(&w, &op).await.remove(0);
    assert_eq!(row.outcome, Outcome::Failed);
    let kinds: Vec<ChangeKind> = row.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::CreateRole]);
    let error = row.error.unwrap();
    assert_eq!(error.code, ErrorCode::Cancelled);
    let said =
        format!("its last change ({:?} {}) was in flight and may have been made", in_flight.kind, in_flight.subject);
    assert!(error.message.contains(&said), "{}", error.message);
    assert_eq!(w.journal.placements("audit").await.unwrap(), [account(0)]);

    w.fake.clear_failures();
    assert!(!role_left_after_a_destroy_that_no_longer_selects_it(&w, &successor).await, "the destroy found the role");
}

/// An outside tester's finding: `role.adopt_accounts` naming an account the spec's targets do not select was
/// silently ignored. It is refused naming the field, by the plan and by the apply, before any account is read.
#[tokio::test(start_paused = true)]
async fn adopting_in_an_account_the_targets_do_not_select_is_refused_before_any_account_is_read() {
    let w = world(3);
    // The security account is not under the targets' OU.
    let mut adopting = spec();
    adopting.role.adopt_accounts = BTreeSet::from([account(1), SECURITY.to_string()]);
    let refused = w.engine.plan(&adopting).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "invalid input: role.adopt_accounts: {SECURITY} is not among the accounts the spec's targets select: a role is taken \
             over only in an account the spec targets; add it to the targets or remove it here"
        )
    );
    let op = run(&w, OperationKind::Apply, &adopting).await;
    assert_eq!(op.state, OperationState::Failed, "{}", op.message);
    assert!(op.message.contains("role.adopt_accounts"), "{}", op.message);
    for a in [account(0), account(1), account(2), SECURITY.to_string()] {
        assert_eq!(w.fake.served_in(&a), Default::default(), "nothing is read or written in {a}");
    }
    // Within the targets it is taken.
    adopting.role.adopt_accounts = BTreeSet::from([account(1)]);
    assert!(w.engine.plan(&adopting).await.is_ok());
}
