//! An apply starts on accounts as the organization's pages list them, not once the whole organization is read;
//! yet an unsafe spec touches no account, every account is worked on once, and an operation stopped while it was
//! still finding its targets finds the rest when it resumes. Plans and verifications start the same way, and
//! answer exactly what they answer from an organization read before.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::{CallPolicy, Rates, RetryPolicy},
    fake::{Failure, FakeAws, FakeConfig, Latency},
};
use crossrole_core::{org::fixture::TreeBuilder, spec::AccountState};
use crossrole_engine::{Engine, EngineConfig, StartRequest};
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

/// Runs `read` (a plan or a verification) and returns how many pages of accounts had been asked for when its
/// first account's role was read, and how many the organization took in all.
async fn pages_before_the_first_account<T: Send + 'static>(
    w: &World,
    read: impl std::future::Future<Output = T> + Send + 'static,
) -> (u64, u64, T) {
    let pages = |w: &World| w.fake.served().get("organizations:ListAccountsForParent").copied().unwrap_or(0);
    let task = tokio::spawn(read);
    let mut at_first = None;
    while at_first.is_none() && !task.is_finished() {
        if w.fake.served().contains_key("iam:GetRole") {
            at_first = Some(pages(w));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let out = task.await.unwrap();
    (at_first.expect("a role was read"), pages(w), out)
}

#[tokio::test(start_paused = true)]
async fn plans_and_verifications_start_on_accounts_before_the_organization_is_read_to_the_end() {
    let w = paged(Arc::new(SqliteJournal::in_memory().unwrap()));
    let (engine, spec) = (w.engine.clone(), automatic());
    let (at_first, all, plan) = pages_before_the_first_account(&w, async move { engine.plan(&spec).await }).await;
    let plan = plan.unwrap();
    assert_eq!((plan.accounts.len(), plan.skipped.len()), (60, 1));
    assert!(at_first < all, "the first account was planned after {at_first} of {all} pages of accounts");

    // Once the organization read has aged out, a verification reads it again, and starts the same way.
    tokio::time::advance(Duration::from_secs(301)).await;
    w.fake.reset_counters();
    let (engine, spec) = (w.engine.clone(), automatic());
    let (at_first, all, verification) =
        pages_before_the_first_account(&w, async move { engine.verify(&spec).await }).await;
    assert_eq!(verification.unwrap().accounts.len(), 60);
    assert!(at_first < all, "the first account was verified after {at_first} of {all} pages of accounts");
}

/// 90 accounts dealt round-robin into three units of Workloads, listed 5 to a page: the three units' pages
/// interleave, so accounts arrive out of id order. Every call 40 ms.
fn spread() -> World {
    let units = ["ou-root-prodxxxx", "ou-root-devxxxxx", "ou-root-testxxxx"];
    let mut b = TreeBuilder::new("o-abcdefghij", MGMT, "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("ou-root-workload", units[0], "Prod")
        .unit("ou-root-workload", units[1], "Dev")
        .unit("ou-root-workload", units[2], "Test")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    for i in 0..90 {
        b = b.account(units[i as usize % 3], &account(i), &format!("a-{i}"), AccountState::Active);
    }
    let tree = b.account(units[1], "299999999999", "closed", AccountState::Suspended).build();
    let mut config = FakeConfig { org_page_size: 5, ..FakeConfig::default() };
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(40), jitter: Duration::ZERO });
    }
    let fake = FakeAws::new(tree, config);
    fake.add_principals(SECURITY, &["alice"], &["auditors"]);
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::in_memory().unwrap());
    let calls = Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
    let config = EngineConfig::default();
    let engine = Engine::new(Arc::new(fake.clone()), calls, journal.clone(), config.clone());
    World { fake, engine, journal, config }
}

/// One line per account of a plan: what a reader of it would compare.
fn plan_lines(plan: &crossrole_core::ops::AccessPlan) -> Vec<String> {
    plan.accounts
        .iter()
        .map(|a| {
            let changes: Vec<String> = a.changes.iter().map(|c| format!("{:?}", c.kind)).collect();
            let error = a.error.as_ref().map(|e| format!("{:?}: {}", e.code, e.message)).unwrap_or_default();
            let findings: Vec<&str> = a.findings.iter().map(|f| f.message.as_str()).collect();
            format!("{} {} {:?} {changes:?} {findings:?} {error}", a.account_id, a.account_name, a.status)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_plan_and_a_verification_found_as_pages_arrive_answer_as_from_an_organization_read_before() {
    let w = spread();
    // Two roles in place (one then drifted), one role crossrole does not own, one account it cannot assume into.
    let placed = [account(0), account(1)].into();
    let op = w.engine.start(StartRequest { accounts: Some(placed), ..start(OperationKind::Apply, &spec()) });
    let done = w.engine.wait(&op.await.unwrap().id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    w.fake.with_account(&account(1), |a| a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess"));
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#;
    w.fake.with_account(&account(2), |a| a.create_role_by_hand(&account(2), "Audit", trust));
    w.fake.with_account(&account(3), |a| a.remove_role("OrganizationAccountAccessRole"));

    // The organization read for the apply has aged out: read again, its accounts found page by page.
    tokio::time::advance(Duration::from_secs(301)).await;
    let found = (w.engine.plan(&spec()).await.unwrap(), w.engine.verify(&spec()).await.unwrap());
    // From the organization just read, with every target known before any is examined.
    let known = (w.engine.plan(&spec()).await.unwrap(), w.engine.verify(&spec()).await.unwrap());
    assert_eq!(found, known);

    let (plan, verification) = found;
    let ids: Vec<&str> = plan.accounts.iter().map(|a| a.account_id.as_str()).collect();
    let mut in_order = ids.clone();
    in_order.sort();
    assert_eq!(ids, in_order, "accounts in id order, as the selection has them");
    assert_eq!(ids.len(), 90);
    let verified: Vec<&str> = verification.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(verified, ids);
    let lines = plan_lines(&plan);
    let status = |i: usize| lines[i].split(' ').nth(2).unwrap().to_string();
    assert_eq!(
        [status(0), status(1), status(2), status(3), status(4)],
        ["InSync", "Changes", "Conflict", "Failed", "Changes"].map(String::from)
    );
    assert_eq!(plan.skipped.len(), 1);
}
