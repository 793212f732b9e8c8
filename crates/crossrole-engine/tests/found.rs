//! An apply starts on accounts as the organization's pages list them, not once the whole organization is read;
//! yet an unsafe spec touches no account, every account is worked on once, and an operation stopped while it was
//! still finding its targets finds the rest when it resumes.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::Rates,
    fake::{Failure, FakeConfig, Latency},
};
use crossrole_store::{Journal, SqliteJournal};

/// 60 accounts in Prod, listed 5 to a page; every call 40 ms.
fn paged(journal: Arc<dyn Journal>) -> World {
    let mut config = FakeConfig { org_page_size: 5, ..FakeConfig::default() };
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(40), jitter: Duration::ZERO });
    }
    world_with(60, config, Rates::UNLIMITED, journal)
}

fn automatic() -> crossrole_core::AccessSpec {
    spec_with("  max_concurrency: 100%\n  verify: {enabled: false}\n")
}

/// The sequence of the first `AccountFinished` event and of `TargetsResolved`.
async fn first_finished_and_resolved(w: &World, op: &str) -> (u64, u64) {
    let events = w.engine.events(op, 0, 100_000).await.unwrap();
    let first = events.iter().find(|e| matches!(e.event, Event::AccountFinished { .. })).unwrap().sequence;
    let resolved = events.iter().find(|e| matches!(e.event, Event::TargetsResolved { .. })).unwrap();
    let Event::TargetsResolved { targets, skipped, .. } = resolved.event else { unreachable!() };
    assert_eq!((targets, skipped), (60, 1));
    (first, resolved.sequence)
}

#[tokio::test(start_paused = true)]
async fn accounts_finish_before_the_organization_is_read_to_the_end() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    // Cold: the whole organization walked.
    let op = run(&w, OperationKind::Apply, &automatic()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!((op.counts.changed, op.counts.skipped), (60, 1));
    let (first, resolved) = first_finished_and_resolved(&w, &op.id).await;
    assert!(first < resolved, "an account finished (event {first}) before the targets were all known ({resolved})");
    assert_eq!(w.fake.served().get("iam:CreateRole"), Some(&60), "each role once");
    let rows = results(&w, &op.id).await;
    let mut indexes: Vec<u32> = rows.iter().map(|r| r.index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..61).collect::<Vec<_>>(), "one row per account, numbered without gaps");
    assert_eq!(granted(&w).len(), 60, "the grant names every role made");

    // Warm: the selected part read afresh from where the last read found it.
    w.fake.with_account(&account(7), |a| a.remove_role("Audit"));
    let op = run(&w, OperationKind::Apply, &automatic()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!((op.counts.changed, op.counts.unchanged), (1, 59));
    let (first, resolved) = first_finished_and_resolved(&w, &op.id).await;
    assert!(first < resolved, "an account finished (event {first}) before the targets were all known ({resolved})");
}

#[tokio::test(start_paused = true)]
async fn a_spec_the_guardrails_refuse_touches_no_account_though_accounts_were_found() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    let mut unguarded = automatic();
    unguarded.role.trust.external_id = None;
    unguarded.role.trust.account_ids = ["444455556666".to_string()].into();
    // The membership check is slow (throttled, retried) while the organization's pages come.
    w.fake.inject(Failure {
        service: Service::Organizations,
        operation: Some("DescribeAccount".into()),
        account: None,
        code: "Throttling".into(),
        times: Some(4),
    });
    let op = run(&w, OperationKind::Apply, &unguarded).await;
    assert!(w.fake.served().get("organizations:ListAccountsForParent") >= Some(&13), "{:?}", w.fake.served());
    assert_eq!(op.state, OperationState::Failed);
    assert!(op.message.contains("outside the organization"), "{}", op.message);
    assert_eq!(w.fake.iam_writes(), 0, "no account touched");
    assert!(results(&w, &op.id).await.is_empty(), "no account on record");
}

#[tokio::test(start_paused = true)]
async fn an_operation_stopped_while_it_was_finding_its_targets_finds_the_rest_when_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let w = paged(journal);
    let op = w.engine.start(start(OperationKind::Apply, &spec_with("  max_concurrency: 3\n"))).await.unwrap();
    // 13 pages of accounts at 40 ms each take about 0.5 s; stop in the middle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.engine.shutdown(Duration::from_secs(30)).await;
    let mid = w.engine.operation(&op.id).await.unwrap();
    assert_eq!(mid.state, OperationState::Running);
    let on_record = results(&w, &op.id).await.len();
    assert!(on_record > 0 && on_record < 60, "stopped with {on_record} accounts found");

    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!((done.counts.changed + done.counts.unchanged, done.counts.skipped), (60, 1));
    assert_eq!(w.fake.served().get("iam:CreateRole"), Some(&60), "every role created exactly once");
    let events = engine.events(&op.id, 0, 100_000).await.unwrap();
    let resolved = events.iter().filter(|e| matches!(e.event, Event::TargetsResolved { .. })).count();
    assert_eq!(resolved, 1, "the targets were said to be known once");
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}
