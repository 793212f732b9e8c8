//! Organizations events: the accounts an event names are read again into discovery's tree and reconciled alone,
//! by every binding they concern, without walking the organization; the grant keeps naming the other accounts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::*;
use crossrole_aws::{Service, calls::CallContext, fake::Failure};
use crossrole_core::{
    binding::RawBinding,
    ops::{OperationState, Outcome},
    org::AccountInfo,
    org_events::OrgChange,
    spec::{AccountState, RawSpec},
};
use crossrole_engine::bindings::Bindings;

fn arns<'a>(accounts: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    accounts.into_iter().map(|a| format!("arn:aws:iam::{a}:role/crossrole/Audit")).collect()
}

/// A world of `n` accounts under Workloads/Prod and an enforce binding of the pruning spec over Workloads,
/// reconciled once; and a second binding over Sandbox, which the events below do not concern.
async fn bound(n: u64) -> (World, Bindings) {
    let w = world(n);
    let bindings = Bindings::new(w.engine.clone());
    let spec = spec_with("  failure_tolerance: 100%\n  prune: true\n");
    bindings.create(&RawBinding { spec: Some(RawSpec::from(&spec)), ..Default::default() }).await.unwrap();
    let mut sandbox = RawSpec::from(&spec);
    sandbox.name = "sandbox".into();
    sandbox.targets.as_mut().unwrap().organizational_unit_ids = vec!["ou-root-sandboxx".into()];
    sandbox.grant = None;
    bindings.create(&RawBinding { spec: Some(sandbox), ..Default::default() }).await.unwrap();
    for name in ["audit", "sandbox"] {
        let op = bindings.reconcile(name, "test").await.unwrap();
        settle(&bindings, name, &op.id).await;
    }
    (w, bindings)
}

/// Waits for `op` to end and its result to become the binding's status.
async fn settle(bindings: &Bindings, name: &str, op: &str) {
    for _ in 0..2000 {
        if bindings.get(name).await.unwrap().status.last_operation_id == op {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{op} never became {name}'s status");
}

/// Reads what `changes` name into discovery and enrols them; returns the one operation started, finished.
async fn on_events(w: &World, bindings: &Bindings, changes: &[OrgChange]) -> Operation {
    let learned = w.engine.discovery().learn(&CallContext::new(), changes).await.unwrap();
    assert!(!learned.tree_dropped);
    let started = bindings.reconcile_accounts(&learned.accounts, "organizations-events").await.unwrap();
    assert_eq!(started.len(), 1, "only the binding the accounts concern: {started:?}");
    let done = w.engine.wait(&started[0].id).await.unwrap();
    settle(bindings, "audit", &done.id).await;
    done
}

fn walked(w: &World) -> Vec<String> {
    w.fake
        .served()
        .into_keys()
        .filter(|k| k.starts_with("organizations:List") && k != "organizations:ListParents")
        .filter(|k| k != "organizations:ListTagsForResource")
        .collect()
}

#[tokio::test]
async fn an_account_that_joins_is_reconciled_alone_and_the_grant_keeps_the_others() {
    let (w, bindings) = bound(5).await;
    let before: Vec<String> = (0..5).map(account).collect();
    assert_eq!(granted(&w), arns(&before));

    let new = account(99);
    w.fake.join(AccountInfo {
        id: new.clone(),
        name: "prod-new".into(),
        email: String::new(),
        state: AccountState::Active,
        parent_id: "ou-root-prodxxxx".into(),
        joined_at: None,
    });
    w.fake.reset_counters();
    let op = on_events(&w, &bindings, &[OrgChange::Joined { account_id: new.clone() }]).await;

    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(op.account_scope, std::slice::from_ref(&new));
    let rows = results(&w, &op.id).await;
    assert_eq!(
        rows.iter().map(|r| (r.account_id.as_str(), r.outcome)).collect::<Vec<_>>(),
        [(new.as_str(), Outcome::Changed)]
    );
    assert!(w.fake.role(&new, "Audit").is_some());
    assert_eq!(walked(&w), Vec::<String>::new(), "no walk of the organization");
    // The new account's (where it is now), and the trusted account's (verify asks whether it is a member).
    assert_eq!(w.fake.served().get("organizations:DescribeAccount"), Some(&2));
    assert_eq!(granted(&w), arns(before.iter().chain([&new])), "the others stay granted");

    let status = bindings.get("audit").await.unwrap().status;
    assert_eq!(status.counts.in_sync, 6);
    assert!(status.accounts.iter().any(|a| a.account_id == new));
}

#[tokio::test]
async fn an_account_that_moves_out_or_leaves_is_cleaned_up_alone() {
    let (w, bindings) = bound(4).await;
    let (moved, gone) = (account(0), account(1));

    w.fake.with_tree(|t| {
        let mut a = t.accounts[&moved].clone();
        a.parent_id = "ou-root-security".into();
        t.place(a)
    });
    let change =
        OrgChange::Moved { account_id: moved.clone(), from: "ou-root-prodxxxx".into(), to: "ou-root-security".into() };
    let op = on_events(&w, &bindings, &[change]).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(w.fake.role(&moved, "Audit").is_none(), "pruned from the account that moved out");
    assert_eq!(granted(&w), arns(&[account(1), account(2), account(3)]));

    w.fake.with_tree(|t| t.remove_account(&gone));
    let op = on_events(&w, &bindings, &[OrgChange::Left { account_id: gone.clone() }]).await;
    assert_eq!(op.account_scope, std::slice::from_ref(&gone));
    assert_eq!(granted(&w), arns(&[account(2), account(3)]), "the grant no longer names the account that left");
    let status = bindings.get("audit").await.unwrap().status;
    let listed: BTreeSet<&str> = status.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert!(!listed.contains(moved.as_str()) && listed.contains(account(2).as_str()), "{listed:?}");
}

#[tokio::test]
async fn events_about_accounts_no_binding_concerns_start_nothing_and_unit_changes_drop_the_tree() {
    let (w, bindings) = bound(2).await;
    let outsider = "777777777777".to_string();
    w.fake.join(AccountInfo {
        id: outsider.clone(),
        name: "elsewhere".into(),
        email: String::new(),
        state: AccountState::Active,
        parent_id: "r-root".into(),
        joined_at: None,
    });
    let learned = w
        .engine
        .discovery()
        .learn(&CallContext::new(), &[OrgChange::Joined { account_id: outsider.clone() }])
        .await
        .unwrap();
    assert!(bindings.reconcile_accounts(&learned.accounts, "organizations-events").await.unwrap().is_empty());
    assert!(w.engine.discovery().cached_tree().await.unwrap().accounts.contains_key(&outsider), "patched in");

    let learned = w.engine.discovery().learn(&CallContext::new(), &[OrgChange::Units]).await.unwrap();
    assert!(learned.tree_dropped && learned.accounts.is_empty());
    assert!(w.engine.discovery().cached_tree().await.is_none(), "the next use walks");
}

#[tokio::test]
async fn an_account_named_while_its_binding_reconciles_is_reconciled_once_that_ends() {
    let (w, bindings) = bound(8).await;
    // A full reconcile is running (every call takes a while) when the event comes.
    let full = bindings.reconcile("audit", "test").await.unwrap();
    // Its targets are resolved (without the account about to join) before the account joins.
    while results(&w, &full.id).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let new = account(50);
    w.fake.join(AccountInfo {
        id: new.clone(),
        name: "prod-late".into(),
        email: String::new(),
        state: AccountState::Active,
        parent_id: "ou-root-prodxxxx".into(),
        joined_at: None,
    });
    let learned = w
        .engine
        .discovery()
        .learn(&CallContext::new(), &[OrgChange::Joined { account_id: new.clone() }])
        .await
        .unwrap();
    assert!(!w.engine.operation(&full.id).await.unwrap().state.is_final(), "still running when the event came");
    let started = bindings.reconcile_accounts(&learned.accounts, "organizations-events").await.unwrap();
    assert!(started.is_empty(), "never two reconciles of a binding at once");

    // The schedule starts the reconcile of the new account once the running one ends.
    let config = crossrole_engine::runtime::RuntimeConfig {
        reconcile_tick: Duration::from_secs(3600),
        retention: crossrole_engine::Retention { operations: None, quiet_reconciles: None, audit: None },
        organization_events: None,
        share_every: Duration::from_secs(1),
    };
    let looping = crossrole_engine::runtime::Runtime::start(w.engine.clone(), bindings.clone(), config);
    let mut scoped = Vec::new();
    for _ in 0..2000 {
        let (ops, _) = w.engine.list_operations(&Default::default(), 100, "").await.unwrap();
        scoped = ops
            .into_iter()
            .filter_map(|o| o.read())
            .filter(|o| !o.account_scope.is_empty() && o.state.is_final())
            .collect();
        if !scoped.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    looping.stop().await;
    assert_eq!(scoped.len(), 1, "one reconcile of the new account");
    assert_eq!(scoped[0].account_scope, std::slice::from_ref(&new));
    assert_eq!(scoped[0].state, OperationState::Succeeded, "{}", scoped[0].message);
    assert_eq!(scoped[0].created_by, "organizations-events", "it says the events started it");
    let full = w.engine.operation(&full.id).await.unwrap();
    assert!(!results(&w, &full.id).await.iter().any(|r| r.account_id == new), "the full one did not have it");
    assert!(scoped[0].create_time >= full.end_time.unwrap(), "after the running reconcile ended");
    assert!(w.fake.role(&new, "Audit").is_some());
}

/// The schedule of `bindings`, ticking often, until stopped.
fn schedule(engine: &crossrole_engine::Engine, bindings: &Bindings) -> crossrole_engine::runtime::Runtime {
    let config = crossrole_engine::runtime::RuntimeConfig {
        reconcile_tick: Duration::from_millis(50),
        retention: crossrole_engine::Retention { operations: None, quiet_reconciles: None, audit: None },
        organization_events: None,
        share_every: Duration::from_secs(1),
    };
    crossrole_engine::runtime::Runtime::start(engine.clone(), bindings.clone(), config)
}

/// The finished reconciles of some accounts, oldest first.
async fn scoped(w: &World) -> Vec<Operation> {
    let (ops, _) = w.engine.list_operations(&Default::default(), 1000, "").await.unwrap();
    let mut ops: Vec<Operation> = ops
        .into_iter()
        .map(|o| o.read().expect("every operation reads"))
        .filter(|o| !o.account_scope.is_empty() && o.state.is_final())
        .collect();
    ops.reverse();
    ops
}

/// Waits until no account waits for a reconcile.
async fn none_waiting(w: &World) {
    for _ in 0..4000 {
        if w.journal.waiting_accounts().await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("accounts still wait: {:?}", w.journal.waiting_accounts().await.unwrap());
}

fn joined(w: &World, id: &str) {
    w.fake.join(AccountInfo {
        id: id.into(),
        name: format!("prod-{id}"),
        email: String::new(),
        state: AccountState::Active,
        parent_id: "ou-root-prodxxxx".into(),
        joined_at: None,
    });
}

#[tokio::test]
async fn a_move_learned_where_events_are_read_is_the_tree_every_replica_reconciles_from() {
    // Reconciles work from a tree up to a resync old, as when events keep it true.
    let mut config = crossrole_engine::EngineConfig::default();
    config.discovery.reconcile_max_age = Duration::from_secs(6 * 3600);
    let journal: std::sync::Arc<dyn crossrole_store::Journal> =
        std::sync::Arc::new(crossrole_store::SqliteJournal::in_memory().unwrap());
    let w = world_configured(4, Default::default(), crossrole_aws::calls::Rates::UNLIMITED, journal, config);
    let reader = Bindings::new(w.engine.clone());
    let spec = spec_with("  failure_tolerance: 100%\n  prune: true\n");
    reader.create(&RawBinding { spec: Some(RawSpec::from(&spec)), ..Default::default() }).await.unwrap();
    let first = reader.reconcile("audit", "test").await.unwrap();
    settle(&reader, "audit", &w.engine.wait(&first.id).await.unwrap().id).await;
    // Another replica, started meanwhile: it has the journal's tree, as of then.
    let other = w.restarted();
    assert!(other.discovery().cached_tree().await.unwrap().accounts[&account(0)].parent_id == "ou-root-prodxxxx");

    // The replica that reads events learns that account 0 moved out, and prunes it.
    let moved = account(0);
    w.fake.with_tree(|t| {
        let mut a = t.accounts[&moved].clone();
        a.parent_id = "ou-root-security".into();
        t.place(a)
    });
    let change =
        OrgChange::Moved { account_id: moved.clone(), from: "ou-root-prodxxxx".into(), to: "ou-root-security".into() };
    let op = on_events(&w, &reader, &[change]).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(w.fake.role(&moved, "Audit").is_none(), "pruned");

    // It dies; the other replica's next full reconcile works from the journal's tree, not the one it had.
    drop(reader);
    w.fake.reset_counters();
    let successor = Bindings::new(other.clone());
    let full = successor.reconcile("audit", "test").await.unwrap();
    let full = other.wait(&full.id).await.unwrap();
    assert_eq!(full.state, OperationState::Succeeded, "{}", full.message);
    assert!(w.fake.role(&moved, "Audit").is_none(), "the account that moved out does not get its role back");
    assert_eq!(walked(&w), Vec::<String>::new(), "from the journal's tree, without a walk");
    assert!(!results(&w, &full.id).await.iter().any(|r| r.account_id == moved));

    // A change of units drops the tree for every replica: the next use, on any, walks.
    let learned = w.engine.discovery().learn(&CallContext::new(), &[OrgChange::Units]).await.unwrap();
    assert!(learned.tree_dropped);
    assert!(other.discovery().cached_tree().await.is_none(), "dropped on the other replica too");
}

#[tokio::test]
async fn accounts_named_while_their_binding_reconciles_wait_in_the_journal_for_whoever_takes_over() {
    let (w, bindings) = bound(8).await;
    let full = bindings.reconcile("audit", "test").await.unwrap();
    while results(&w, &full.id).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let new = account(50);
    joined(&w, &new);
    let learned = w
        .engine
        .discovery()
        .learn(&CallContext::new(), &[OrgChange::Joined { account_id: new.clone() }])
        .await
        .unwrap();
    let started = bindings.reconcile_accounts(&learned.accounts, "organizations-events").await.unwrap();
    assert!(started.is_empty(), "never two reconciles of a binding at once");
    // The replica that read the event is gone, and what it had in memory with it.
    drop(bindings);
    let waiting = w.journal.waiting_accounts().await.unwrap();
    assert_eq!(waiting.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(), [new.as_str()]);

    // Another runs the schedule now: once the running reconcile ends, it reconciles the account.
    let other = w.restarted();
    let successor = Bindings::new(other.clone());
    let looping = schedule(&other, &successor);
    none_waiting(&w).await;
    looping.stop().await;
    let scoped = scoped(&w).await;
    assert_eq!(scoped.len(), 1, "{scoped:?}");
    assert_eq!(scoped[0].account_scope, std::slice::from_ref(&new));
    assert_eq!((scoped[0].state, scoped[0].created_by.as_str()), (OperationState::Succeeded, "organizations-events"));
    assert!(w.fake.role(&new, "Audit").is_some());
}

#[tokio::test]
async fn a_reconcile_of_accounts_an_event_named_that_fails_is_tried_again_a_few_times() {
    let (w, bindings) = bound(2).await;
    let bindings = bindings.retrying_after(Duration::from_millis(50));
    let (flaky, broken) = (account(60), account(61));
    joined(&w, &flaky);
    joined(&w, &broken);
    let denied = |account: &str| Failure {
        service: Service::Iam,
        operation: Some("CreateRole".into()),
        account: Some(account.into()),
        code: "AccessDenied".into(),
        times: None,
    };
    w.fake.inject(denied(&flaky));
    w.fake.inject(denied(&broken));
    let changes = [OrgChange::Joined { account_id: flaky.clone() }, OrgChange::Joined { account_id: broken.clone() }];
    let learned = w.engine.discovery().learn(&CallContext::new(), &changes).await.unwrap();
    let started = bindings.reconcile_accounts(&learned.accounts, "organizations-events").await.unwrap();
    assert_eq!(started.len(), 1);
    let first = w.engine.wait(&started[0].id).await.unwrap();
    assert_eq!(first.counts.failed, 2, "{}", first.message);

    // The outage is over for one of them.
    w.fake.clear_failures();
    w.fake.inject(denied(&broken));
    let looping = schedule(&w.engine, &bindings);
    none_waiting(&w).await;
    looping.stop().await;
    assert!(w.fake.role(&flaky, "Audit").is_some(), "tried again, and reconciled");
    assert!(w.fake.role(&broken, "Audit").is_none());
    let tries = |id: &str, ops: &[Operation]| ops.iter().filter(|o| o.account_scope.iter().any(|a| a == id)).count();
    let ops = scoped(&w).await;
    assert_eq!(
        (tries(&flaky, &ops), tries(&broken, &ops)),
        (2, crossrole_engine::bindings::EVENT_ATTEMPTS as usize),
        "{ops:?}"
    );
}
