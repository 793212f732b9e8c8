//! Organizations discovery kept in the journal: a tag selector's tags are read once per account and refreshed
//! incrementally, also across a restart.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use crossrole_core::{AccessSpec, org::AccountInfo, spec::AccountState};

const N: u64 = 200;

fn tagged_spec() -> AccessSpec {
    let yaml = format!(
        r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  trust: {{account_ids: ["{SECURITY}"]}}
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
targets:
  organizational_unit_ids: [ou-root-workload]
  tags: [{{key: env, value: prod}}]
rollout:
  failure_tolerance: 100%
"#
    );
    AccessSpec::from_yaml(&yaml).unwrap()
}

async fn apply(engine: &crossrole_engine::Engine, spec: &AccessSpec) -> Operation {
    let op = engine.start(start(OperationKind::Apply, spec)).await.unwrap();
    engine.wait(&op.id).await.unwrap()
}

fn tag_reads(w: &World) -> u64 {
    w.fake.served().get("organizations:ListTagsForResource").copied().unwrap_or(0)
}

fn organization_reads(w: &World) -> u64 {
    w.fake.served().iter().filter(|(k, _)| k.starts_with("organizations:")).map(|(_, v)| v).sum()
}

#[tokio::test(start_paused = true)]
async fn tags_are_read_once_per_account_and_refreshed_incrementally_across_restarts() {
    let w = world(N);
    for i in 0..N {
        w.fake.set_tags(&account(i), &[("env", if i % 2 == 0 { "prod" } else { "dev" })]);
    }
    let spec = tagged_spec();

    // Cold: every candidate's tags are read, once (the suspended account's too: it is reported as skipped only if
    // the selector matches it).
    let plan = w.engine.plan(&spec).await.unwrap();
    assert_eq!(plan.accounts.len() as u64, N / 2);
    assert_eq!(tag_reads(&w), N + 1, "{:?}", w.fake.served());

    // Restarted: the tree and tags come from the journal; a plan reads nothing from Organizations.
    w.fake.reset_counters();
    let engine = w.restarted();
    let plan = engine.plan(&spec).await.unwrap();
    assert_eq!(plan.accounts.len() as u64, N / 2);
    assert_eq!(organization_reads(&w), 0, "{:?}", w.fake.served());

    // An apply walks the tree anew (accounts move) but reads no tags it has.
    let op = apply(&engine, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(tag_reads(&w), 0);
    assert!(organization_reads(&w) > 0, "the tree was walked");

    // A new account: only its tags are read.
    let new = account(N + 1);
    w.fake.with_tree(|t| {
        let mut a: AccountInfo = t.accounts[&account(0)].clone();
        (a.id, a.name, a.state) = (new.clone(), "new".into(), AccountState::Active);
        t.accounts.insert(new.clone(), a);
        t.units.get_mut("ou-root-prodxxxx").unwrap().accounts.push(new.clone());
    });
    w.fake.set_tags(&new, &[("env", "prod")]);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{MGMT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    w.fake.with_account(&new, |a| a.create_role_by_hand(&new, "OrganizationAccountAccessRole", &trust));
    w.fake.reset_counters();
    let op = apply(&engine, &spec).await;
    assert_eq!(op.counts.changed, 1, "the new account got the role: {}", op.message);
    assert_eq!(tag_reads(&w), 1);

    // A tag changed in Organizations is seen after the tags' max age (15 minutes by default), or at once with a
    // refresh.
    w.fake.set_tags(&account(0), &[("env", "dev")]);
    let selector = &spec.targets;
    let (_, s) = engine.select(selector, "targets", false).await.unwrap();
    assert!(s.selected.iter().any(|a| a.id == account(0)), "not seen before the max age");
    let (_, s) = engine.select(selector, "targets", true).await.unwrap();
    assert!(!s.selected.iter().any(|a| a.id == account(0)), "a refresh sees it");

    // Past the max age, all are read again (each at its own moment between 75% and 100% of it).
    w.fake.reset_counters();
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    engine.select(selector, "targets", false).await.unwrap();
    let early = tag_reads(&w);
    assert!(early < N / 4, "few expire before 75% of the max age: {early}");
    tokio::time::advance(Duration::from_secs(6 * 60)).await;
    engine.select(selector, "targets", false).await.unwrap();
    assert_eq!(tag_reads(&w), N + 2, "all read once more, none twice");
}

/// Why an apply of `spec` was refused: at its start, or as its operation's message.
async fn refusal(engine: &crossrole_engine::Engine, spec: &AccessSpec) -> String {
    match engine.start(start(OperationKind::Apply, spec)).await {
        Err(e) => e.to_string(),
        Ok(op) => engine.wait(&op.id).await.unwrap().message,
    }
}

fn reads_of(w: &World, call: &str) -> u64 {
    w.fake.served().get(&format!("organizations:{call}")).copied().unwrap_or(0)
}

fn move_account(w: &World, id: &str, to: &str) {
    w.fake.with_tree(|t| {
        let from = t.accounts[id].parent_id.clone();
        t.units.get_mut(&from).unwrap().accounts.retain(|a| a != id);
        t.units.get_mut(to).unwrap().accounts.push(id.to_string());
        t.accounts.get_mut(id).unwrap().parent_id = to.to_string();
    });
}

#[tokio::test(start_paused = true)]
async fn an_apply_reads_afresh_only_the_part_of_the_organization_it_selects() {
    let w = world(30);
    let spec = spec();
    let first = apply(&w.engine, &spec).await;
    assert_eq!(first.counts.changed, 30, "{}", first.message);

    // Accounts move and change state after the first read: one leaves the selected OU, one is suspended.
    move_account(&w, &account(1), "ou-root-sandboxx");
    w.fake.with_tree(|t| t.accounts.get_mut(&account(2)).unwrap().state = AccountState::Suspended);
    w.fake.reset_counters();
    let op = apply(&w.engine, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let r = results(&w, &op.id).await;
    assert!(!r.iter().any(|r| r.account_id == account(1)), "the account that left is not worked on");
    let suspended = r.iter().find(|r| r.account_id == account(2)).unwrap();
    assert_eq!(outcome(suspended), "skipped", "{suspended:?}");
    // Read: the root's child units (Workloads is still there), and Workloads' and Prod's units and accounts;
    // not the root's accounts, nor the Sandbox and Security units, nor the organization and its roots. (Prod's 31
    // accounts take two pages.)
    let served = w.fake.served();
    assert_eq!(reads_of(&w, "ListOrganizationalUnitsForParent"), 3, "{served:?}");
    assert_eq!(reads_of(&w, "ListAccountsForParent"), 3, "{served:?}");
    assert_eq!(reads_of(&w, "ListRoots") + reads_of(&w, "DescribeOrganization"), 0, "{served:?}");

    // An account moved in is worked on.
    move_account(&w, &account(1), "ou-root-prodxxxx");
    let op = apply(&w.engine, &spec).await;
    assert!(results(&w, &op.id).await.iter().any(|r| r.account_id == account(1)));

    // The selected OU moved (under Sandbox): the part cannot confirm where it is, so the whole organization is
    // read, and the OU (selected by id) is found where it went.
    w.fake.with_tree(|t| {
        t.units.get_mut("r-root").unwrap().children.retain(|c| c != "ou-root-workload");
        t.units.get_mut("ou-root-sandboxx").unwrap().children.push("ou-root-workload".into());
        t.units.get_mut("ou-root-workload").unwrap().parent_id = Some("ou-root-sandboxx".into());
    });
    w.fake.reset_counters();
    let op = apply(&w.engine, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(reads_of(&w, "ListRoots"), 1, "{:?}", w.fake.served());
    assert_eq!(results(&w, &op.id).await.iter().filter(|r| outcome(r) != "skipped").count(), 29);

    // Selected by path, the moved OU is no longer at /Root/Workloads/Prod: the full walk names the field.
    let mut by_path = spec.clone();
    by_path.targets.organizational_unit_ids.clear();
    by_path.targets.organizational_unit_paths = vec!["/Root/Workloads/Prod".into()];
    let message = refusal(&w.engine, &by_path).await;
    assert!(message.contains("no OU has the path /Root/Workloads/Prod"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn an_apply_of_part_of_the_organization_confirms_the_trusted_accounts_afresh() {
    let w = world(3);
    let mut unguarded = spec();
    unguarded.role.trust.external_id = None;
    // A first apply reads the whole organization.
    let op = apply(&w.engine, &unguarded).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    w.fake.reset_counters();
    // Trusting a member outside the selected OU, without an ExternalId: its membership is asked, not assumed.
    let op = apply(&w.engine, &unguarded).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(reads_of(&w, "DescribeAccount"), 1, "{:?}", w.fake.served());
    // The trusted account left the organization since the first read: the guardrail refuses.
    w.fake.with_tree(|t| {
        t.accounts.remove(SECURITY);
        t.units.get_mut("ou-root-security").unwrap().accounts.clear();
    });
    let message = refusal(&w.engine, &unguarded).await;
    assert!(message.contains("outside the organization"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn tags_alone_select_from_the_whole_organization_but_its_management_account() {
    let w = world(6);
    for i in 0..6 {
        w.fake.set_tags(&account(i), &[("env", if i % 2 == 0 { "prod" } else { "dev" })]);
    }
    // Tagged like the rest, in another OU, and the management account too.
    w.fake.set_tags(SECURITY, &[("env", "prod")]);
    w.fake.set_tags(MGMT, &[("env", "prod")]);
    let mut spec = tagged_spec();
    spec.targets.organizational_unit_ids.clear();
    spec.targets.tags = vec![crossrole_core::spec::TagCondition { key: "env".into(), value: Some("prod".into()) }];
    let plan = w.engine.plan(&spec).await.unwrap();
    let mut selected: Vec<String> = plan.accounts.iter().map(|a| a.account_id.clone()).collect();
    selected.sort();
    let mut want: Vec<String> = (0..6).filter(|i| i % 2 == 0).map(account).chain([SECURITY.to_string()]).collect();
    want.sort();
    assert_eq!(selected, want, "not the management account");
}

#[tokio::test(start_paused = true)]
async fn an_exclusion_that_no_longer_resolves_is_never_dropped() {
    let w = world(5);
    // Workloads, but not Prod (by path): nothing to do, and the organization is read.
    let mut spec = spec();
    spec.targets.exclude_organizational_unit_paths = vec!["/Root/Workloads/Prod".into()];
    let first = apply(&w.engine, &spec).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    assert_eq!(first.counts.changed, 0);
    // Prod is renamed: the exclusion no longer names it. Dropping it as "outside the part read" would give Prod's
    // accounts the role they were excluded from; the whole organization is read instead, and the field named.
    w.fake.with_tree(|t| t.units.get_mut("ou-root-prodxxxx").unwrap().name = "Production".into());
    let message = refusal(&w.engine, &spec).await;
    assert!(message.contains("no OU has the path /Root/Workloads/Prod"), "{message}");
    for i in 0..5 {
        assert!(w.fake.role(&account(i), "Audit").is_none(), "{}", account(i));
    }
}

#[tokio::test(start_paused = true)]
async fn a_plan_read_as_an_apply_reads_confirms_the_trusted_accounts_as_the_apply_does() {
    use crossrole_core::ops::OrganizationRead;
    use crossrole_engine::Audience;
    let w = world(3);
    let mut unguarded = spec();
    unguarded.role.trust.external_id = None;
    let op = apply(&w.engine, &unguarded).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    // The plan `crossrole apply` shows reads only the selected part, which the trusted account is not in: it is
    // a member all the same (asked, not assumed), as for the apply itself and the guardrails' check of the request.
    let plan = w.engine.plan_with(&unguarded, Audience::Trusted, OrganizationRead::AsApply).await.unwrap();
    assert_eq!(plan.accounts.len(), 3, "{plan:?}");
    w.engine.guardrails(&unguarded).await.unwrap();
    // Once it has left the organization, the plan refuses as the apply does.
    w.fake.with_tree(|t| {
        t.accounts.remove(SECURITY);
        t.units.get_mut("ou-root-security").unwrap().accounts.clear();
    });
    let refused = w.engine.plan_with(&unguarded, Audience::Trusted, OrganizationRead::AsApply).await.unwrap_err();
    assert!(refused.to_string().contains("outside the organization"), "{refused}");
}
