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
