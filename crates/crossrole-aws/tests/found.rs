//! A selection sends the accounts it is sure of while the organization is still being listed: exactly the
//! accounts it returns at the end, for any tree and any selector decided by units, on a full walk and on a fresh
//! read of part of the organization; nothing for a selector that needs tags or account ids.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use crossrole_aws::{
    Service,
    api::AwsConnector,
    calls::{CallContext, CallPolicy, Rates, RetryPolicy},
    discovery::{Discovery, DiscoveryConfig, Found},
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_core::{
    org::{self, AccountInfo, OrgTree, fixture::TreeBuilder},
    spec::{AccountState, TagCondition, TargetSelector},
};
use tokio::time::Instant;

const MGMT: &str = "123456789012";

fn discovery(tree: OrgTree, seed: u64) -> (FakeAws, Discovery) {
    let mut config = FakeConfig { org_page_size: 5, seed, ..FakeConfig::default() };
    config.latency.insert(
        Service::Organizations,
        Latency { base: Duration::from_millis(50), jitter: Duration::from_millis(100) },
    );
    let fake = FakeAws::new(tree, config);
    let calls = Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()));
    let discovery = Discovery::new(fake.organizations(), calls, DiscoveryConfig::default());
    (fake, discovery)
}

/// Selects afresh with a listener: the batches sent (with when), the selection, and when it returned.
async fn select_found(
    discovery: &Discovery,
    selector: &TargetSelector,
) -> (Vec<(Instant, Vec<AccountInfo>)>, Result<crossrole_aws::discovery::Fresh, crossrole_aws::Error>, Instant) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let heard = tokio::spawn(async move {
        let mut batches = Vec::new();
        while let Some(b) = rx.recv().await {
            batches.push((Instant::now(), b));
        }
        batches
    });
    let found: Found = tx;
    let fresh = discovery.select_fresh_found(&CallContext::new(), selector, "targets", Some(&found)).await;
    let returned = Instant::now();
    drop(found);
    (heard.await.unwrap(), fresh, returned)
}

fn ids(accounts: &[AccountInfo]) -> Vec<String> {
    accounts.iter().map(|a| a.id.clone()).collect()
}

/// Workloads/Prod (45 active, 1 suspended), Workloads/Prod/Legacy (5), Workloads/Dev (12), Security (1).
fn organization() -> OrgTree {
    let mut b = TreeBuilder::new("o-abcdefghij", MGMT, "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("ou-root-workload", "ou-root-prodxxxx", "Prod")
        .unit("ou-root-prodxxxx", "ou-root-legacyxx", "Legacy")
        .unit("ou-root-workload", "ou-root-devxxxxx", "Dev")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", "111122223333", "security", AccountState::Active)
        .account("ou-root-prodxxxx", "299999999999", "closed", AccountState::Suspended);
    for (unit, first, n, name) in [
        ("ou-root-prodxxxx", 200_000_000_000u64, 45, "p"),
        ("ou-root-legacyxx", 300_000_000_000, 5, "l"),
        ("ou-root-devxxxxx", 400_000_000_000, 12, "d"),
    ] {
        for i in 0..n {
            b = b.account(unit, &format!("{:012}", first + i), &format!("{name}{i}"), AccountState::Active);
        }
    }
    b.build()
}

fn workloads_but_legacy() -> TargetSelector {
    TargetSelector {
        organizational_unit_paths: vec!["/Root/Workloads".into()],
        exclude_organizational_unit_paths: vec!["/Root/Workloads/Prod/Legacy".into()],
        exclude_account_ids: vec!["200000000003".into()],
        states: [AccountState::Active].into(),
        ..Default::default()
    }
}

/// What was sent is exactly what was selected, once each; the first batch came well before the end.
fn judge(batches: &[(Instant, Vec<AccountInfo>)], fresh: &crossrole_aws::discovery::Fresh, returned: Instant) {
    let sent: Vec<String> = batches.iter().flat_map(|(_, b)| ids(b)).collect();
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "an account is sent once");
    let selected: BTreeSet<String> = ids(&fresh.selection.selected).into_iter().collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), selected);
    let first = batches.first().map(|(t, _)| *t).unwrap();
    assert!(returned.duration_since(first) >= Duration::from_millis(300), "the first accounts came before the end");
}

#[tokio::test(start_paused = true)]
async fn a_full_walk_sends_the_selected_accounts_page_by_page() {
    let (_fake, discovery) = discovery(organization(), 1);
    let (batches, fresh, returned) = select_found(&discovery, &workloads_but_legacy()).await;
    let fresh = fresh.unwrap();
    assert!(fresh.whole);
    assert_eq!(fresh.selection.selected.len(), 44 + 12);
    assert!(batches.len() > 3, "page by page: {} batches", batches.len());
    judge(&batches, &fresh, returned);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_read_of_part_of_the_organization_sends_them_too() {
    let (fake, discovery) = discovery(organization(), 2);
    discovery.tree(&CallContext::new(), true).await.unwrap();
    fake.reset_counters();
    let (batches, fresh, returned) = select_found(&discovery, &workloads_but_legacy()).await;
    let fresh = fresh.unwrap();
    assert!(!fresh.whole, "read only the selected part");
    assert_eq!(fresh.selection.selected.len(), 44 + 12);
    judge(&batches, &fresh, returned);
    assert_eq!(
        fake.served().get("organizations:ListAccountsForParent"),
        Some(&(1 + 10 + 1 + 3)),
        "Workloads, Prod, Legacy and Dev at 5 to a page; not Security nor the root"
    );
}

#[tokio::test(start_paused = true)]
async fn a_selector_that_needs_tags_or_ids_or_does_not_resolve_sends_nothing() {
    let (_fake, discovery) = discovery(organization(), 3);
    let mut tagged = workloads_but_legacy();
    tagged.tags = vec![TagCondition { key: "team".into(), value: None }];
    let (batches, fresh, _) = select_found(&discovery, &tagged).await;
    assert!(batches.is_empty());
    assert!(fresh.unwrap().selection.selected.is_empty(), "no account has the tag");

    let mut by_id = workloads_but_legacy();
    by_id.account_ids = vec!["111122223333".into()];
    let (batches, fresh, _) = select_found(&discovery, &by_id).await;
    assert!(batches.is_empty());
    assert_eq!(fresh.unwrap().selection.selected.len(), 44 + 12 + 1);

    // A path that is not there: an error, and nothing was sent before it.
    let mut wrong = workloads_but_legacy();
    wrong.exclude_organizational_unit_paths = vec!["/Root/Workloads/Nope".into()];
    for cached in [false, true] {
        if cached {
            discovery.tree(&CallContext::new(), true).await.unwrap();
        }
        let (batches, fresh, _) = select_found(&discovery, &wrong).await;
        assert!(batches.is_empty());
        let e = fresh.unwrap_err().to_string();
        assert!(e.contains("exclude_organizational_unit_paths[0]"), "{e}");
    }
}

/// A small deterministic generator (xorshift), for trees and selectors.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn random_case(rng: &mut Rng) -> (OrgTree, TargetSelector) {
    let mut units = vec!["r-root".to_string()];
    let mut b = TreeBuilder::new("o-abcdefghij", MGMT, "r-root");
    for i in 0..1 + rng.below(8) {
        let parent = units[rng.below(units.len())].clone();
        let id = format!("ou-root-{i:08}");
        b = b.unit(&parent, &id, &format!("U{i}"));
        units.push(id);
    }
    let mut accounts = Vec::new();
    for i in 0..rng.below(40) {
        let id = format!("{:012}", 500_000_000_000u64 + i as u64);
        let state = if rng.chance(20) { AccountState::Suspended } else { AccountState::Active };
        b = b.account(&units[rng.below(units.len())], &id, &format!("a{i}"), state);
        accounts.push(id);
    }
    let tree = b.build();
    let mut selector = TargetSelector {
        states: [AccountState::Active].into(),
        exclude_descendants: rng.chance(25),
        include_management_account: rng.chance(30),
        ..Default::default()
    };
    for _ in 0..1 + rng.below(2) {
        let unit = &units[rng.below(units.len())];
        if rng.chance(50) {
            selector.organizational_unit_ids.push(unit.clone());
        } else {
            selector.organizational_unit_paths.push(tree.path_of(unit));
        }
    }
    if rng.chance(40) {
        let unit = &units[1 + rng.below(units.len() - 1).min(units.len() - 2)];
        if rng.chance(50) {
            selector.exclude_organizational_unit_ids.push(unit.clone());
        } else {
            selector.exclude_organizational_unit_paths.push(tree.path_of(unit));
        }
    }
    for _ in 0..rng.below(3) {
        if !accounts.is_empty() {
            selector.exclude_account_ids.push(accounts[rng.below(accounts.len())].clone());
        }
    }
    (tree, selector)
}

#[tokio::test(start_paused = true)]
async fn for_any_tree_and_selector_what_is_sent_is_what_is_selected() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let (tree, selector) = random_case(&mut rng);
        let expected = org::resolve(&tree, &selector, "targets").unwrap().finish(&Default::default());
        let (_fake, discovery) = discovery(tree, case);
        // Every other case reads part of the organization (where the selector allows it) from a tree read before.
        if case % 2 == 1 {
            discovery.tree(&CallContext::new(), true).await.unwrap();
        }
        let (batches, fresh, _) = select_found(&discovery, &selector).await;
        let fresh = fresh.unwrap();
        assert_eq!(ids(&fresh.selection.selected), ids(&expected.selected), "case {case}: {selector:?}");
        let mut sent: Vec<String> = batches.iter().flat_map(|(_, b)| ids(b)).collect();
        sent.sort();
        assert_eq!(sent, ids(&expected.selected), "case {case}: {selector:?}");
    }
}
