//! The organization's ceiling, enforced by crossroled before any AWS call: the boundary every role gets (resolved
//! per account), the managed policies and trusted accounts it allows, and a ceiling lowered while an operation was
//! unfinished.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::calls::Rates;
use crossrole_core::ceiling::Ceiling;
use crossrole_engine::{EngineConfig, Error};
use crossrole_store::{Journal, SqliteJournal};

const BOUNDARY: &str = "arn:${partition}:iam::${account_id}:policy/crossrole-ceiling/CrossroleCeiling";

fn ceiling() -> Ceiling {
    Ceiling {
        permissions_boundary: Some(BOUNDARY.into()),
        role_path: Some("/crossrole/".into()),
        allowed_managed_policies: vec!["arn:aws:iam::aws:policy/SecurityAudit".into()],
        allowed_trusted_accounts: [SECURITY.to_string()].into(),
        trust_within_organization: false,
    }
}

fn boundary_in(account: &str) -> String {
    format!("arn:aws:iam::{account}:policy/crossrole-ceiling/CrossroleCeiling")
}

fn world_under(n: u64, ceiling: Ceiling, journal: Arc<dyn Journal>) -> World {
    let w = world_configured(
        n,
        crossrole_aws::fake::FakeConfig::default(),
        Rates::UNLIMITED,
        journal,
        EngineConfig { ceiling, ..EngineConfig::default() },
    );
    // The bootstrap template deploys the ceiling policy in every account.
    for i in 0..n {
        w.fake.with_account(&account(i), |a| {
            a.create_policy_by_hand(
                &boundary_in(&account(i)),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            )
        });
    }
    w
}

#[tokio::test(start_paused = true)]
async fn every_role_gets_the_ceiling_of_its_own_account() {
    let w = world_under(3, ceiling(), Arc::new(SqliteJournal::in_memory().unwrap()));
    let plan = w.engine.plan(&spec()).await.unwrap();
    for a in &plan.accounts {
        let create = &a.changes[0];
        assert!(
            create.after.contains(&format!("permissions boundary: {}", boundary_in(&a.account_id))),
            "the plan shows the boundary: {}",
            create.after
        );
    }
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    for i in 0..3 {
        let role = w.fake.role(&account(i), "Audit").unwrap();
        assert_eq!(role.attributes.permissions_boundary_arn, Some(boundary_in(&account(i))));
    }
    // The operation's spec says so too, and a re-plan is empty.
    let shown = op.spec.role.unwrap().permissions_boundary_arn;
    assert_eq!(shown, BOUNDARY);
    assert_eq!(w.engine.plan(&spec()).await.unwrap().total_changes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_role_is_bounded_by_the_ceiling_before_any_other_write_or_left_alone_with_a_reason() {
    let w = world_under(3, ceiling(), Arc::new(SqliteJournal::in_memory().unwrap()));
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    // Account 0's role as if made before the ceiling (no boundary) and drifted; account 1's given another boundary.
    w.fake.with_account(&account(0), |a| {
        a.set_boundary_by_hand("Audit", None);
        a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess");
    });
    let power_user = "arn:aws:iam::aws:policy/PowerUserAccess";
    w.fake.with_account(&account(1), |a| {
        a.set_boundary_by_hand("Audit", Some(power_user));
        a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess");
    });
    let op = run(&w, OperationKind::Apply, &spec()).await;
    let rows = results(&w, &op.id).await;
    let row = |i: u64| rows.iter().find(|r| r.account_id == account(i)).unwrap();
    // Repaired: the ceiling first, then the rest.
    assert_eq!(outcome(row(0)), "changed");
    let kinds: Vec<&str> = row(0).changes.iter().map(|c| c.kind.describe()).collect();
    assert_eq!(kinds, ["put permissions boundary", "detach managed policy"], "{:?}", row(0).changes);
    assert_eq!(
        w.fake.role(&account(0), "Audit").unwrap().attributes.permissions_boundary_arn,
        Some(boundary_in(&account(0)))
    );
    // Left alone, with a reason naming the role, its boundary, the ceiling and the command that fixes it.
    assert_eq!(outcome(row(1)), "skipped");
    let error = row(1).error.as_ref().unwrap();
    assert_eq!(error.code.as_str(), "outside_ceiling");
    let arn = format!("arn:aws:iam::{}:role/crossrole/Audit", account(1));
    for part in [arn.as_str(), power_user, &boundary_in(&account(1)), "put-role-permissions-boundary --role-name Audit"]
    {
        assert!(error.message.contains(part), "{part} missing from: {}", error.message);
    }
    let untouched = w.fake.role(&account(1), "Audit").unwrap();
    assert_eq!(untouched.attributes.permissions_boundary_arn.as_deref(), Some(power_user));
    assert!(untouched.managed_policy_arns.contains("arn:aws:iam::aws:policy/AdministratorAccess"));
    assert!(row(1).changes.is_empty());
    // A plan says the same, and a destroy is never refused: that role is bounded first, then removed.
    let plan = w.engine.plan(&spec()).await.unwrap();
    let planned = plan.accounts.iter().find(|a| a.account_id == account(1)).unwrap();
    assert_eq!(planned.error.as_ref().map(|e| e.code.as_str()), Some("outside_ceiling"));
    let op = run(&w, OperationKind::Destroy, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let rows = results(&w, &op.id).await;
    let destroyed = rows.iter().find(|r| r.account_id == account(1)).unwrap();
    assert_eq!(destroyed.changes.first().map(|c| c.kind.describe()), Some("put permissions boundary"));
    assert!((0..3).all(|i| w.fake.role(&account(i), "Audit").is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_spec_past_the_ceiling_is_refused_field_by_field_before_any_call() {
    let w = world_under(2, ceiling(), Arc::new(SqliteJournal::in_memory().unwrap()));
    let mut s = spec();
    s.role.permissions_boundary_arn = Some("arn:aws:iam::aws:policy/AdministratorAccess".into());
    s.role.managed_policy_arns.insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    w.fake.reset_counters();
    let e = w.engine.start(start(OperationKind::Apply, &s)).await.unwrap_err();
    let Error::Invalid(e) = e else { panic!("{e}") };
    let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["role.permissions_boundary_arn", "role.managed_policy_arns[0]"]);
    assert_eq!(w.fake.iam_writes() + w.fake.served().keys().filter(|k| k.starts_with("sts")).count() as u64, 0);
    assert!(matches!(w.engine.plan(&s).await, Err(Error::Invalid(_))));
    // Taking access away is never refused: a destroy of the same spec goes through.
    let destroy = w.engine.start(start(OperationKind::Destroy, &s)).await.unwrap();
    let done = w.engine.wait(&destroy.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
}

#[tokio::test(start_paused = true)]
async fn a_ceiling_lowered_under_an_unfinished_operation_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let mut config = crossrole_aws::fake::FakeConfig::default();
    config.latency.insert(
        crossrole_aws::Service::Iam,
        crossrole_aws::fake::Latency { base: Duration::from_millis(200), jitter: Duration::ZERO },
    );
    let w = world_configured(20, config, Rates::UNLIMITED, journal.clone(), EngineConfig::default());
    let op = w.engine.start(start(OperationKind::Apply, &spec_with("  max_concurrency: 2\n"))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.engine.shutdown(Duration::from_secs(30)).await;
    // Restarted with a ceiling this spec is outside of (it attaches no allowed policy and sets no boundary).
    let lowered =
        Ceiling { allowed_managed_policies: vec!["arn:aws:iam::aws:policy/ViewOnlyAccess".into()], ..ceiling() };
    let calls = Arc::new(crossrole_aws::calls::CallPolicy::new(Rates::UNLIMITED, Default::default()));
    let engine = crossrole_engine::Engine::new(
        Arc::new(w.fake.clone()),
        calls,
        journal,
        EngineConfig { ceiling: lowered, ..w.config.clone() },
    );
    w.fake.reset_counters();
    engine.resume().await.unwrap();
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Failed);
    assert!(
        done.message.starts_with("the organization's ceiling refuses the spec; nothing was done"),
        "{}",
        done.message
    );
    assert_eq!(w.fake.iam_writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_binding_under_the_ceiling_is_reconciled_once_per_version() {
    use crossrole_core::binding::RawBinding;
    use crossrole_engine::bindings::Bindings;

    let w = world_under(3, ceiling(), Arc::new(SqliteJournal::in_memory().unwrap()));
    let bindings = Bindings::new(w.engine.clone());
    let raw = RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() };
    let created = bindings.create(&raw).await.unwrap();
    let op = bindings.reconcile(&created.name, "test").await.unwrap();
    assert_eq!(w.engine.wait(&op.id).await.unwrap().state, OperationState::Succeeded);
    // The status is recorded in the background once the operation ends.
    let status = loop {
        let b = bindings.get(&created.name).await.unwrap();
        if b.status.last_operation_id == op.id {
            break b.status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The reconcile ran the spec with the ceiling's boundary; it is still this version's spec, so the binding is
    // not due again until its interval has passed.
    assert_eq!(status.reconciled_version, 1);
    assert_eq!(status.counts.in_sync, 3);
    assert!(!status.due(1, op.end_time.unwrap_or_default() + 1000));
}

/// A ceiling that lets trusts name the organization's accounts only: an account that joined after the tree was
/// read is asked about (`DescribeAccount`), not taken for an outsider (as plans and the guardrails ask); an account
/// that is no member is still refused.
#[tokio::test(start_paused = true)]
async fn an_account_that_joined_after_the_tree_was_read_is_within_a_ceiling_of_the_organization() {
    let within = Ceiling { allowed_trusted_accounts: Default::default(), trust_within_organization: true, ..ceiling() };
    let w = world_under(2, within, Arc::new(SqliteJournal::in_memory().unwrap()));
    // The tree is read (and kept for the cache's time).
    w.engine.plan(&spec()).await.unwrap();
    const JOINED: &str = "277777777777";
    w.fake.join(crossrole_core::org::AccountInfo {
        id: JOINED.into(),
        name: "joined".into(),
        email: "joined@example.com".into(),
        state: crossrole_core::spec::AccountState::Active,
        parent_id: "ou-root-security".into(),
        joined_at: None,
    });
    let mut trusting = spec();
    trusting.role.trust.account_ids = [JOINED.to_string()].into();
    w.fake.reset_counters();
    let plan = w.engine.plan(&trusting).await.unwrap();
    assert_eq!(plan.accounts.len(), 2, "{plan:?}");
    assert_eq!(w.fake.served().get("organizations:DescribeAccount"), Some(&1), "{:?}", w.fake.served());
    // An account that is no member is refused, named.
    trusting.role.trust.account_ids = ["999988887777".to_string()].into();
    let Err(Error::Invalid(e)) = w.engine.plan(&trusting).await else { panic!("an outsider is refused") };
    let said: Vec<String> = e.violations().iter().map(|v| v.to_string()).collect();
    assert_eq!(
        said,
        [
            "role.trust.account_ids[0]: account 999988887777 is outside the ceiling: a trust may name only accounts of the organization"
        ]
    );
}
