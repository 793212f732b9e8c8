//! The plan confirmed is the plan applied: an apply that carries a plan's fingerprint is refused, before anything
//! is written, when the organization moved accounts into or out of its targets since; an account whose role
//! changed since the plan is left untouched and says why; with nothing changed, the apply is the plan. And a plan
//! finds an OU made after crossroled's cached tree of the organization was read.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use crossrole_core::{
    AccessSpec,
    ops::{AccessPlan, OrganizationRead, PlanStatus},
    org::AccountInfo,
    spec::AccountState,
};
use crossrole_engine::{Audience, ConfirmedPlan, StartRequest};

/// An apply of `spec` carrying `plan`'s fingerprint, for a caller who may read ExternalIds.
fn confirmed(spec: &AccessSpec, plan: &AccessPlan) -> StartRequest {
    StartRequest {
        confirmed: Some(ConfirmedPlan { fingerprint: plan.fingerprint.clone(), audience: Audience::Trusted }),
        ..start(OperationKind::Apply, spec)
    }
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
async fn an_apply_whose_targets_moved_since_its_plan_is_refused_before_any_write_naming_them() {
    let w = world(10);
    // One account starts outside the selected OUs.
    move_account(&w, &account(9), "ou-root-sandboxx");
    let spec = spec();
    let plan = w.engine.plan(&spec).await.unwrap();
    assert_eq!(plan.accounts.len(), 9);
    assert!(!plan.fingerprint.is_empty());

    // After the plan, one account moves in and another out.
    move_account(&w, &account(9), "ou-root-prodxxxx");
    move_account(&w, &account(3), "ou-root-sandboxx");
    w.fake.reset_counters();
    let refused = w.engine.start(confirmed(&spec, &plan)).await.unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, crossrole_engine::Error::FailedPrecondition(_)), "{refused:?}");
    assert!(
        message.contains(&format!("1 account moved into the targets ({} prod-9)", account(9))),
        "names the account that moved in: {message}"
    );
    assert!(
        message.contains(&format!("1 account left the targets ({} prod-3", account(3))),
        "names the one that left: {message}"
    );
    assert!(message.ends_with("nothing was done: plan again"), "{message}");
    assert_eq!(w.fake.iam_writes(), 0, "nothing written: {:?}", w.fake.served());
    assert!(w.engine.list_operations(&Default::default(), 10, "").await.unwrap().0.is_empty(), "no operation");

    // Without a fingerprint the same apply does what it finds, as before.
    let op = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 9), "{}", op.message);
    assert!(w.fake.role(&account(9), "Audit").is_some() && w.fake.role(&account(3), "Audit").is_none());
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_organization_applies_the_confirmed_plan() {
    let w = world(6);
    let spec = spec();
    let plan = w.engine.plan(&spec).await.unwrap();
    assert_eq!((plan.accounts_with_changes(), plan.accounts.len()), (6, 6));
    // The apply reads the organization afresh and finds the plan's targets.
    let op = w.engine.start(confirmed(&spec, &plan)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 6), "{}", op.message);
    assert_eq!(granted(&w).len(), 6, "the grant follows the accounts");

    // A plan made again finds nothing to change, and its apply changes nothing.
    let again = w.engine.plan(&spec).await.unwrap();
    assert_eq!(again.total_changes(), 0);
    let op = w.engine.start(confirmed(&spec, &again)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.unchanged), (OperationState::Succeeded, 6), "{}", op.message);

    // A spec edited since its plan is refused.
    let mut edited = spec.clone();
    edited.role.description = "edited".into();
    let refused = w.engine.start(confirmed(&edited, &again)).await.unwrap_err().to_string();
    assert!(refused.contains("the spec is not the one the plan was made for"), "{refused}");
    // So is a fingerprint crossroled did not make, naming the field.
    let mut forged = again.clone();
    forged.fingerprint = forged.fingerprint.replace(&account(0), &account(7));
    let refused = w.engine.start(confirmed(&spec, &forged)).await.unwrap_err();
    assert!(format!("{refused:?}").contains("plan_fingerprint"), "{refused:?}");
    // And a plan for a token that may read ExternalIds, for one that may not.
    let blind = StartRequest {
        confirmed: Some(ConfirmedPlan { fingerprint: again.fingerprint.clone(), audience: Audience::Blind }),
        ..start(OperationKind::Apply, &spec)
    };
    let refused = w.engine.start(blind).await.unwrap_err().to_string();
    assert!(refused.contains("plan with the token that applies"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn an_account_whose_role_changed_since_the_plan_is_left_untouched_and_says_why() {
    let w = world(4);
    let spec = spec();
    let first = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    // Account 2 drifted before the plan: the plan shows its change, and the apply makes it.
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    w.fake.with_account(&account(2), |a| a.attach_by_hand("Audit", admin));
    let plan = w.engine.plan(&spec).await.unwrap();
    assert_eq!(plan.accounts_with_changes(), 1);
    // Account 1 drifts after it: the plan said nothing was to change there.
    w.fake.with_account(&account(1), |a| a.attach_by_hand("Audit", admin));
    w.fake.reset_counters();
    let op = w.engine.start(confirmed(&spec, &plan)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed, "{}", op.message);
    let r = results(&w, &op.id).await;
    let drifted = r.iter().find(|r| r.account_id == account(1)).unwrap();
    assert_eq!(outcome(drifted), "failed", "{drifted:?}");
    let error = drifted.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::PlanChanged);
    assert!(error.message.contains("the plan found nothing to change in it, and it needs 1 change now"), "{error:?}");
    assert_eq!(w.fake.iam_writes_in(&account(1)), 0, "left untouched");
    assert!(w.fake.role(&account(1), "Audit").unwrap().managed_policy_arns.contains(admin));
    let confirmed_change = r.iter().find(|r| r.account_id == account(2)).unwrap();
    assert_eq!(outcome(confirmed_change), "changed", "{confirmed_change:?}");
    assert!(!w.fake.role(&account(2), "Audit").unwrap().managed_policy_arns.contains(admin));
}

#[tokio::test(start_paused = true)]
async fn a_plan_read_as_an_apply_reads_finds_what_the_apply_finds() {
    let w = world(5);
    let spec = spec();
    // The cached tree is filled; then an account moves in.
    move_account(&w, &account(4), "ou-root-sandboxx");
    let cached = w.engine.plan(&spec).await.unwrap();
    assert_eq!(cached.accounts.len(), 4);
    move_account(&w, &account(4), "ou-root-prodxxxx");
    // From the cache (up to organization_cache_ttl old), the plan does not see it, and says when the
    // organization was read; read as an apply reads it, it does.
    let stale = w.engine.plan(&spec).await.unwrap();
    assert_eq!(stale.accounts.len(), 4);
    let plan = w.engine.plan_with(&spec, Audience::Trusted, OrganizationRead::AsApply).await.unwrap();
    assert_eq!(plan.accounts.len(), 5);
    assert!(stale.organization_read_time < plan.organization_read_time, "{stale:?} {plan:?}");
    assert!(cached.organization_read_time.is_some() && plan.tags_read_time.is_none());
    let refused = w.engine.start(confirmed(&spec, &stale)).await.unwrap_err().to_string();
    assert!(refused.contains(&format!("moved into the targets ({} prod-4)", account(4))), "{refused}");
    let op = w.engine.start(confirmed(&spec, &plan)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 5), "{}", op.message);
}

#[tokio::test(start_paused = true)]
async fn a_plan_finds_an_ou_made_after_the_organization_was_cached() {
    let w = world(3);
    let spec = spec();
    w.engine.plan(&spec).await.unwrap();
    // A new OU with an account, made after the tree was read (within organization_cache_ttl).
    let new = account(50);
    w.fake.with_tree(|t| {
        t.units.insert(
            "ou-root-newxxxxx".into(),
            crossrole_core::org::OrgUnit {
                id: "ou-root-newxxxxx".into(),
                name: "New".into(),
                parent_id: Some("r-root".into()),
                children: vec![],
                accounts: vec![new.clone()],
            },
        );
        t.units.get_mut("r-root").unwrap().children.push("ou-root-newxxxxx".into());
        let a = AccountInfo {
            id: new.clone(),
            name: "new".into(),
            email: String::new(),
            state: AccountState::Active,
            parent_id: "ou-root-newxxxxx".into(),
            joined_at: None,
        };
        t.accounts.insert(new.clone(), a);
    });
    let mut by_path = spec.clone();
    by_path.targets.organizational_unit_ids.clear();
    by_path.targets.organizational_unit_paths = vec!["/Root/New".into()];
    let plan = w.engine.plan(&by_path).await.unwrap();
    let ids: Vec<&str> = plan.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, [new.as_str()]);
    assert_eq!(plan.accounts[0].status, PlanStatus::Failed, "no bootstrap role in it yet, but found");
    let mut by_id = spec.clone();
    by_id.targets.organizational_unit_ids = vec!["ou-root-newxxxxx".into()];
    assert_eq!(w.engine.plan(&by_id).await.unwrap().accounts.len(), 1);

    // A name no read of the organization knows is refused, naming it.
    let mut unknown = spec.clone();
    unknown.targets.organizational_unit_paths = vec!["/Root/Nowhere".into()];
    unknown.targets.organizational_unit_ids.clear();
    let refused = format!("{:?}", w.engine.plan(&unknown).await.unwrap_err());
    assert!(refused.contains("no OU has the path /Root/Nowhere"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn a_plan_for_a_token_that_may_not_read_external_ids_is_applied_alike_whatever_it_sent() {
    let w = world(2);
    let spec = spec();
    let first = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    // The right ExternalId, then a wrong one: neither plan shows a change (each role's own stands in for the one
    // sent), and neither apply is refused for it nor changes anything — no outcome tells the token which was right.
    // The apply does what its plan showed: each role keeps its own ExternalId.
    for sent in ["Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "Zz9yXw8vUt7sRq6pOn5mLk4jIh3g"] {
        let mut guess = spec.clone();
        guess.role.trust.external_id = Some(crossrole_core::secret::ExternalId::new(sent));
        let plan = w.engine.plan_for(&guess, Audience::Blind).await.unwrap();
        assert_eq!(plan.total_changes(), 0, "{plan:?}");
        let apply = StartRequest {
            confirmed: Some(ConfirmedPlan { fingerprint: plan.fingerprint.clone(), audience: Audience::Blind }),
            external_ids: Audience::Blind.external_ids(false),
            ..start(OperationKind::Apply, &guess)
        };
        let op = w.engine.start(apply).await.unwrap();
        let op = w.engine.wait(&op.id).await.unwrap();
        assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 0), "{}", op.message);
        let trust = w.fake.role(&account(1), "Audit").unwrap().attributes.trust_policy;
        let kept = crossrole_core::policy::required_external_id(&trust).unwrap();
        assert_eq!(kept.expose(), "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf");
    }
}
