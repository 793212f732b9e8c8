//! The organization-wide operations (the inventory, `crossrole revoke`) start on accounts as the organization's
//! pages list them when crossroled must read the organization first, not once it is read to its end; every account
//! is visited once, and one stopped while its accounts were still being found finds the rest when it resumes.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::Rates,
    fake::{FakeConfig, Latency},
};
use crossrole_core::{ops::Phase, spec::AccountState};
use crossrole_engine::{RevokeRequest, inventory::InventoryRequest};
use crossrole_store::{Journal, SqliteJournal};

/// 60 accounts in Prod, listed 5 to a page; every call 40 ms.
fn paged(journal: Arc<dyn Journal>) -> World {
    let mut config = FakeConfig { org_page_size: 5, ..FakeConfig::default() };
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(40), jitter: Duration::ZERO });
    }
    world_with(60, config, Rates::UNLIMITED, journal)
}

/// The sequence of the first event of an account's `phase`, of the first `AccountFinished` that did not fail, and
/// of `TargetsResolved` (said exactly once).
async fn sequences(w: &crossrole_engine::Engine, op: &str, phase: Phase) -> (u64, u64, u64) {
    let events = w.events(op, 0, 100_000).await.unwrap();
    let started = events
        .iter()
        .find(|e| matches!(&e.event, Event::PhaseStarted { phase: p } if *p == phase) && !e.account_id.is_empty())
        .unwrap()
        .sequence;
    let finished = events
        .iter()
        .find(|e| matches!(&e.event, Event::AccountFinished { result } if result.outcome != Outcome::Failed))
        .unwrap()
        .sequence;
    let resolved: Vec<u64> =
        events.iter().filter(|e| matches!(e.event, Event::TargetsResolved { .. })).map(|e| e.sequence).collect();
    assert_eq!(resolved.len(), 1, "the targets are said to be known once");
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate");
    (started, finished, resolved[0])
}

#[tokio::test(start_paused = true)]
async fn an_inventory_assumes_into_accounts_as_their_pages_are_listed_and_reads_each_once() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    let op = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    let done = w.engine.wait(&op.unwrap().id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let (assumed, finished, resolved) = sequences(&w.engine, &done.id, Phase::Assume).await;
    assert!(
        assumed < resolved,
        "an account was assumed into (event {assumed}) before the organization was read ({resolved})"
    );
    // Reading waits for the whole organization: a trusted account is judged inside or outside it.
    assert!(finished > resolved, "no account is read before the organization is ({finished} vs {resolved})");
    let served = w.fake.served();
    let pages = served.get("organizations:ListAccountsForParent").copied().unwrap_or(0);
    assert!(pages >= 13, "the organization was walked: {served:?}");
    let rows = results(&w, &done.id).await;
    // Every ACTIVE account, the management account with them (it has no bootstrap role here: it fails alone); the
    // suspended one is no target.
    let active = w.fake.with_tree(|t| t.accounts.values().filter(|a| a.state == AccountState::Active).count());
    assert_eq!(rows.len(), active, "{rows:?}");
    let management = rows.iter().find(|r| r.account_id == "123456789012").unwrap();
    assert_eq!(management.outcome, Outcome::Failed, "{management:?}");
    assert!(rows.iter().filter(|r| r.account_id != "123456789012").all(|r| r.outcome == Outcome::Unchanged));
    let mut indexes: Vec<u32> = rows.iter().map(|r| r.index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..active as u32).collect::<Vec<_>>(), "one row per account, numbered without gaps");
    let read = served.get("iam:GetAccountAuthorizationDetails").copied().unwrap_or(0) as usize;
    assert_eq!(read, active - 1, "each account with a bootstrap role read once");
}

#[tokio::test(start_paused = true)]
async fn an_inventory_stopped_while_it_was_finding_its_accounts_finds_the_rest_when_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let w = paged(journal);
    let op = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    let op = op.unwrap();
    // 13 pages of accounts at 40 ms each take about 0.5 s; stop in the middle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.engine.shutdown(Duration::from_secs(30)).await;
    let mid = w.engine.operation(&op.id).await.unwrap();
    assert_eq!(mid.state, OperationState::Running);
    let on_record = results(&w, &op.id).await.len();
    let active = w.fake.with_tree(|t| t.accounts.values().filter(|a| a.state == AccountState::Active).count());
    assert!(on_record > 0 && on_record < active, "stopped with {on_record} of {active} accounts found");

    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!((done.counts.unchanged + done.counts.failed) as usize, active, "{:?}", done.counts);
    let read = w.fake.served().get("iam:GetAccountAuthorizationDetails").copied().unwrap_or(0);
    assert_eq!(read, u64::from(done.counts.unchanged), "each account read once, across the restart");
    sequences(&engine, &op.id, Phase::Assume).await;
}

#[tokio::test(start_paused = true)]
async fn revoke_revokes_in_accounts_as_their_pages_are_listed_and_skips_the_placed_ones_that_are_gone() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    let spec = spec_with("  max_concurrency: 100%\n  verify: {enabled: false}\n");
    let applied = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    // One placed account is suspended since; the tree crossroled read is older than its cache allows.
    w.fake.with_tree(|t| t.accounts.get_mut(&account(59)).unwrap().state = AccountState::Suspended);
    tokio::time::advance(Duration::from_secs(3600)).await;
    w.fake.reset_counters();
    let request = RevokeRequest { spec: spec.clone(), accounts: None, idempotency_key: None, created_by: "t".into() };
    let started = w.engine.start_revoke(request).await.unwrap();
    let done = w.engine.wait(&started.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!((done.counts.changed, done.counts.skipped), (59, 1), "{:?}", done.counts);
    let (_, finished, resolved) = sequences(&w.engine, &done.id, Phase::Assume).await;
    assert!(
        finished < resolved,
        "an account was revoked in (event {finished}) before the organization was read ({resolved})"
    );
    let served = w.fake.served();
    assert!(served.get("organizations:ListAccountsForParent").is_some_and(|n| *n >= 13), "{served:?}");
    assert_eq!(served.get("iam:PutRolePolicy"), Some(&59), "{served:?}");
    let rows = results(&w, &done.id).await;
    let gone = rows.iter().find(|r| r.account_id == account(59)).unwrap();
    assert_eq!(gone.outcome, Outcome::Skipped);
    assert!(gone.error.as_ref().unwrap().message.contains("SUSPENDED"), "{gone:?}");
    // Numbered first, in account id order.
    let mut by_index = rows.clone();
    by_index.sort_by_key(|r| r.index);
    let ids: Vec<&str> = by_index.iter().map(|r| r.account_id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

/// The accounts named, in account id order, with the position each is numbered by.
fn named() -> std::collections::BTreeSet<String> {
    (0..60).map(account).chain(["299999999999".to_string()]).collect()
}

/// Every row's index is its account's place among the named, and its name is the organization's.
fn numbered_and_named(rows: &[AccountResult]) {
    let named = named();
    for r in rows {
        let place = named.iter().position(|a| *a == r.account_id).unwrap();
        assert_eq!(r.index as usize, place, "{r:?}");
        assert!(!r.account_name.is_empty(), "every row under its account's name: {r:?}");
    }
}

/// A run about named accounts numbers them first, in account id order, and puts each on record once, under its
/// name, as the organization lists it (not nameless up front, then again): no row on record while the organization
/// is read lacks its name.
#[tokio::test(start_paused = true)]
async fn a_named_runs_accounts_go_on_record_as_they_are_listed_each_under_its_name() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    let request = InventoryRequest { accounts: Some(named()), created_by: "test".into(), ..Default::default() };
    let op = w.engine.start_inventory(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mid = results(&w, &op.id).await;
    assert!(!mid.is_empty() && mid.len() < named().len(), "{} of {} on record", mid.len(), named().len());
    numbered_and_named(&mid);
    let done = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let rows = results(&w, &op.id).await;
    assert_eq!(rows.len(), named().len());
    numbered_and_named(&rows);
    let suspended = rows.iter().find(|r| r.account_id == "299999999999").unwrap();
    assert_eq!(suspended.outcome, Outcome::Skipped, "{suspended:?}");
    assert_eq!(done.counts.unchanged, 60, "{:?}", done.counts);
}

/// A run about named accounts stopped while the organization was read numbers the accounts it left without a row
/// as before when it resumes: each visited once, at its place.
#[tokio::test(start_paused = true)]
async fn a_named_run_stopped_while_it_was_finding_its_accounts_numbers_the_rest_as_before_when_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let w = paged(journal);
    let request = InventoryRequest { accounts: Some(named()), created_by: "test".into(), ..Default::default() };
    let op = w.engine.start_inventory(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.engine.shutdown(Duration::from_secs(30)).await;
    let on_record = results(&w, &op.id).await.len();
    assert!(on_record > 0 && on_record < named().len(), "stopped with {on_record} accounts on record");

    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let rows = results(&w, &op.id).await;
    assert_eq!(rows.len(), named().len());
    numbered_and_named(&rows);
    assert_eq!((done.counts.unchanged, done.counts.skipped), (60, 1), "{:?}", done.counts);
    let read = w.fake.served().get("iam:GetAccountAuthorizationDetails").copied().unwrap_or(0);
    assert_eq!(read, 60, "each account read once, across the restart");
    sequences(&engine, &op.id, Phase::Assume).await;
}
