//! Organizations events: the accounts an event names are read again into discovery's tree and reconciled alone,
//! by every binding they concern, without walking the organization; the grant keeps naming the other accounts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::*;
use crossrole_aws::calls::CallContext;
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
