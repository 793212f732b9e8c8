//! The trusted side's grant cut from principals, against the in-memory AWS on a manual clock: the plan shows,
//! before anything is written, which roles' sessions the cut revokes (or that they stay, opted out), the apply does
//! just that, and an apply that carries a confirmed plan cuts the grant only from whom the plan showed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;

use common::*;
use crossrole_core::{
    AccessSpec,
    grant::former::Release,
    ops::{OrganizationRead, ShownChange},
    revocation::{POLICY_NAME, Revocation},
    spec::PrincipalKind,
};
use crossrole_engine::{Audience, Clock, ConfirmedPlan, EngineConfig, StartRequest};

/// 2026-12-05T10:00:00.250Z.
const T0: i64 = 1_796_464_800_250;
const MINUTE: i64 = 60_000;

fn clocked(n: u64) -> (World, Clock) {
    let clock = Clock::manual(T0);
    let w = world_on_clock(n, &clock, EngineConfig::default());
    w.fake.add_principals(SECURITY, &["bob"], &[]);
    (w, clock)
}

/// The spec granting its role to `users` and the group auditors; `role_extra` goes under `role:`.
fn granted(users: &str, role_extra: &str) -> AccessSpec {
    AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\"]\n\
         {role_extra}targets:\n  organizational_unit_ids: [ou-root-workload]\ngrant:\n  account_id: \"{SECURITY}\"\n  \
         user_names: [{users}]\n  group_names: [auditors]\n"
    ))
    .unwrap()
}

/// The role ARNs the grant policy names.
fn granted_roles(w: &World) -> BTreeSet<String> {
    common::granted(w)
}

fn revocation_in(w: &World, i: u64) -> Option<Revocation> {
    let role = w.fake.role(&account(i), "Audit").unwrap();
    role.inline_policies.get(POLICY_NAME).map(|d| Revocation::parse(d).unwrap())
}

fn confirmed(spec: &AccessSpec, fingerprint: &str) -> crossrole_engine::StartRequest {
    crossrole_engine::StartRequest {
        confirmed: Some(ConfirmedPlan { fingerprint: fingerprint.into(), audience: Audience::Trusted }),
        ..start(OperationKind::Apply, spec)
    }
}

/// The revocations operations started, newest first.
async fn revocations(w: &World) -> Vec<Operation> {
    let (ops, _) = w.engine.list_operations(&Default::default(), 100, "").await.unwrap();
    ops.into_iter()
        .filter_map(|o| match o {
            crossrole_core::unreadable::Listed::Read(o) if o.kind == Some(OperationKind::Revoke) => Some(o),
            _ => None,
        })
        .collect()
}

fn grant_changes(plan: &crossrole_core::ops::AccessPlan) -> Vec<ShownChange> {
    let grant = plan.grant.as_ref().expect("the spec has a grant");
    assert!(grant.error.is_none(), "{:?}", grant.error);
    grant.changes.clone()
}

fn cut_events(events: &[crossrole_core::ops::OperationEvent]) -> Vec<ShownChange> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ChangeApplied { change }
                if matches!(change.kind, ChangeKind::RevokeSessions | ChangeKind::SessionsNotRevoked)
                    && e.account_id.is_empty() =>
            {
                Some(change.clone())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_plan_shows_the_roles_whose_sessions_a_grant_cut_revokes_and_its_confirmed_apply_revokes_just_those() {
    let (w, clock) = clocked(3);
    let both = run(&w, OperationKind::Apply, &granted("alice", "")).await;
    assert_eq!(both.state, OperationState::Succeeded, "{}", both.message);
    clock.advance(MINUTE);

    // Alice leaves the grant: the plan shows the cut, then the revocation of every session of the role, in the
    // three accounts where it stays, before anything is written.
    let cut = granted("", "");
    let plan = w.engine.plan(&cut).await.unwrap();
    let changes = grant_changes(&plan);
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::DetachGrantPolicy, ChangeKind::RevokeSessions], "{changes:?}");
    let shown = &changes[1];
    assert_eq!(shown.subject, POLICY_NAME);
    // Alice may be in group auditors, which keeps the grant: the reason says what is cut, not that she lost access.
    assert_eq!(
        shown.after,
        "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 3 accounts \
         (200000000000, 200000000001, 200000000002), after the cut, because the grant's policy is detached from user alice"
    );
    assert!(revocations(&w).await.is_empty(), "a plan writes nothing");
    assert!((0..3).all(|i| revocation_in(&w, i).is_none()));

    let op = w.engine.start(confirmed(&cut, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let attached = w.fake.policy(SECURITY, GRANT_ARN).unwrap().attachments;
    assert_eq!(attached, BTreeSet::from([(PrincipalKind::Group, "auditors".to_string())]));
    // The apply says what the plan said, and which operation revokes.
    let revoke = revocations(&w).await.pop().expect("a revocation was started");
    let events = w.engine.events(&op.id, 0, 1000).await.unwrap();
    let said = cut_events(&events);
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].after, format!("{} (operation {})", shown.after, revoke.id));
    // In just the accounts the plan named.
    let revoke = w.engine.wait(&revoke.id).await.unwrap();
    assert_eq!((revoke.state, revoke.counts.changed), (OperationState::Succeeded, 3), "{}", revoke.message);
    let revoked: BTreeSet<String> = results(&w, &revoke.id).await.into_iter().map(|r| r.account_id).collect();
    assert_eq!(revoked, (0..3).map(account).collect::<BTreeSet<_>>());
    assert!((0..3).all(|i| revocation_in(&w, i).is_some()));
}

#[tokio::test(start_paused = true)]
async fn opted_out_the_plan_says_the_cut_keeps_sessions_and_the_apply_writes_no_deny() {
    let (w, clock) = clocked(2);
    let keep = "  revoke_sessions_on_narrowing: false\n";
    run(&w, OperationKind::Apply, &granted("alice", keep)).await;
    clock.advance(MINUTE);
    let plan = w.engine.plan(&granted("", keep)).await.unwrap();
    let changes = grant_changes(&plan);
    let not = changes.iter().find(|c| c.kind == ChangeKind::SessionsNotRevoked).expect("the plan says so");
    assert!(not.after.contains("the grant's policy is detached from user alice"), "{}", not.after);
    assert!(not.after.contains("in 2 accounts (200000000000, 200000000001)"), "{}", not.after);
    assert!(not.after.contains("role.revoke_sessions_on_narrowing: false"), "{}", not.after);
    assert!(!changes.iter().any(|c| c.kind == ChangeKind::RevokeSessions), "{changes:?}");

    let op = w.engine.start(confirmed(&granted("", keep), &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(revocations(&w).await.is_empty(), "nothing revoked");
    assert!((0..2).all(|i| revocation_in(&w, i).is_none()));
    let said = cut_events(&w.engine.events(&op.id, 0, 1000).await.unwrap());
    assert_eq!(said, std::slice::from_ref(not), "the apply says what the plan said");
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_apply_cuts_the_grant_only_from_whom_its_plan_showed() {
    let (w, clock) = clocked(2);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    clock.advance(MINUTE);
    let cut = granted("", "");
    let plan = w.engine.plan(&cut).await.unwrap();
    assert!(grant_changes(&plan).iter().any(|c| c.after.contains("is detached from user alice")));

    // Bob is given the grant after the plan: applying it now would cut him too, which the plan did not show.
    let with_bob = run(&w, OperationKind::Apply, &granted("alice, bob", "")).await;
    assert_eq!(with_bob.state, OperationState::Succeeded, "{}", with_bob.message);
    let op = w.engine.start(confirmed(&cut, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed, "{}", op.message);
    assert!(
        op.message.contains(
            "trusted side: the grant would now be cut from user alice, user bob, their sessions revoked, which is not \
             what the plan showed"
        ) && op.message.contains("the trusted side was left untouched: plan again"),
        "{}",
        op.message
    );
    let attached = w.fake.policy(SECURITY, GRANT_ARN).unwrap().attachments;
    assert!(attached.contains(&(PrincipalKind::User, "alice".to_string())), "{attached:?}");
    assert!(attached.contains(&(PrincipalKind::User, "bob".to_string())), "{attached:?}");
    assert!(revocations(&w).await.is_empty(), "nothing revoked");

    // Planned again, it is the plan applied.
    let again = w.engine.plan(&cut).await.unwrap();
    assert!(grant_changes(&again).iter().any(|c| c.after.contains("is detached from user alice, user bob")));
    let op = w.engine.start(confirmed(&cut, &again.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(revocations(&w).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_role_kept_where_its_account_left_the_targets_is_cut_from_the_grant_and_its_sessions_revoked() {
    let (w, clock) = clocked(3);
    let spec = granted("alice", "");
    run(&w, OperationKind::Apply, &spec).await;
    clock.advance(MINUTE);
    // Account 2 leaves the selected OU; without `rollout.prune` its role stays, and the grant stops naming it.
    let gone = account(2);
    w.fake.with_tree(|t| {
        let from = t.accounts[&gone].parent_id.clone();
        t.units.get_mut(&from).unwrap().accounts.retain(|a| *a != gone);
        t.units.get_mut("ou-root-sandboxx").unwrap().accounts.push(gone.clone());
        t.accounts.get_mut(&gone).unwrap().parent_id = "ou-root-sandboxx".into();
    });
    let plan = w.engine.plan_with(&spec, Audience::Trusted, OrganizationRead::Fresh).await.unwrap();
    let changes = grant_changes(&plan);
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::UpdateGrantPolicy, ChangeKind::RevokeSessions], "{changes:?}");
    assert_eq!(
        changes[1].after,
        "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 1 account \
         (200000000002), after the cut, because the grant no longer names the role there, which stays (its account \
         left the targets)"
    );

    let op = w.engine.start(confirmed(&spec, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(!granted_roles(&w).iter().any(|arn| arn.contains(&gone)), "{:?}", granted_roles(&w));
    let revoke = revocations(&w).await.pop().expect("a revocation was started");
    let revoke = w.engine.wait(&revoke.id).await.unwrap();
    assert_eq!((revoke.state, revoke.counts.changed), (OperationState::Succeeded, 1), "{}", revoke.message);
    assert!(revocation_in(&w, 2).is_some(), "the role that stays, no longer granted, is revoked");
    assert!(revocation_in(&w, 0).is_none() && revocation_in(&w, 1).is_none(), "the roles still granted are not");
    // Once cut, a re-plan cuts nothing more.
    let again = w.engine.plan_with(&spec, Audience::Trusted, OrganizationRead::Fresh).await.unwrap();
    assert!(grant_changes(&again).is_empty(), "{:?}", grant_changes(&again));
}

/// The spec without its grant, or with it in `grant` (YAML under `grant:`).
fn moved(grant: &str) -> AccessSpec {
    let grant = if grant.is_empty() { String::new() } else { format!("grant:\n{grant}") };
    let management = account(1);
    AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\", \"{management}\"]\n\
         targets:\n  organizational_unit_ids: [ou-root-workload]\n{grant}"
    ))
    .unwrap()
}

fn kinds_of(changes: &[ShownChange]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn a_grant_removed_from_the_spec_is_cut_as_a_destroy_cuts_it_and_the_sessions_revoked() {
    let (w, clock) = clocked(2);
    let placed = run(&w, OperationKind::Apply, &granted("alice", "")).await;
    assert_eq!(placed.state, OperationState::Succeeded, "{}", placed.message);
    clock.advance(MINUTE);

    // The `grant:` section removed: the plan shows the grant crossrole placed detached from everyone it reaches
    // and deleted, then the revocation of the role's sessions where it stays — written nowhere yet.
    let without = moved("");
    let plan = w.engine.plan(&without).await.unwrap();
    let changes = grant_changes(&plan);
    assert_eq!(
        kinds_of(&changes),
        [
            ChangeKind::DetachGrantPolicy,
            ChangeKind::DetachGrantPolicy,
            ChangeKind::DeleteGrantPolicy,
            ChangeKind::RevokeSessions
        ],
        "{changes:?}"
    );
    assert_eq!(plan.grant.as_ref().unwrap().policy_arn, GRANT_ARN);
    assert_eq!(changes[0].subject, format!("user/alice in {SECURITY} (former grant)"));
    assert_eq!(changes[1].subject, format!("group/auditors in {SECURITY} (former grant)"));
    assert_eq!(
        changes[3].after,
        format!(
            "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 2 accounts \
             (200000000000, 200000000001), after the cut, because the grant's policy is detached from user alice in \
             {SECURITY} (former grant), group auditors in {SECURITY} (former grant)"
        )
    );
    assert!(w.fake.policy(SECURITY, GRANT_ARN).is_some(), "a plan writes nothing");

    let op = w.engine.start(confirmed(&without, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    // Read back from IAM: the policy crossrole placed is gone, so attached to no one.
    assert_eq!(w.fake.policy(SECURITY, GRANT_ARN), None);
    let revoke = revocations(&w).await.pop().expect("a revocation was started");
    let said = cut_events(&w.engine.events(&op.id, 0, 1000).await.unwrap());
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].after, format!("{} (operation {})", changes[3].after, revoke.id));
    let revoke = w.engine.wait(&revoke.id).await.unwrap();
    assert_eq!((revoke.state, revoke.counts.changed), (OperationState::Succeeded, 2), "{}", revoke.message);
    assert!((0..2).all(|i| revocation_in(&w, i).is_some()));
    // Cut, nothing is left to cut.
    let again = w.engine.plan(&without).await.unwrap();
    assert!(again.grant.is_none(), "{:?}", again.grant);
}

#[tokio::test(start_paused = true)]
async fn a_grant_moved_to_another_account_is_cut_where_it_was() {
    let (w, clock) = clocked(2);
    let elsewhere = account(1);
    w.fake.add_principals(&elsewhere, &["carol"], &[]);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    clock.advance(MINUTE);

    let spec = moved(&format!("  account_id: \"{elsewhere}\"\n  user_names: [carol]\n"));
    let plan = w.engine.plan(&spec).await.unwrap();
    let changes = grant_changes(&plan);
    assert_eq!(
        kinds_of(&changes),
        [
            ChangeKind::DetachGrantPolicy,
            ChangeKind::DetachGrantPolicy,
            ChangeKind::DeleteGrantPolicy,
            ChangeKind::CreateGrantPolicy,
            ChangeKind::AttachGrantPolicy,
            ChangeKind::RevokeSessions
        ],
        "{changes:?}"
    );
    assert_eq!(changes[2].subject, format!("{GRANT_ARN} (former grant)"));
    assert!(changes[5].after.contains("in 2 accounts (200000000000, 200000000001)"), "{}", changes[5].after);

    let op = w.engine.start(confirmed(&spec, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(w.fake.policy(SECURITY, GRANT_ARN), None, "alice and auditors no longer have it");
    let new_arn = format!("arn:aws:iam::{elsewhere}:policy/crossrole/crossrole-assume-audit");
    let attached = w.fake.policy(&elsewhere, &new_arn).unwrap().attachments;
    assert_eq!(attached, BTreeSet::from([(PrincipalKind::User, "carol".to_string())]));
    let revoke = w.engine.wait(&revocations(&w).await.pop().expect("revoked").id).await.unwrap();
    assert_eq!((revoke.state, revoke.counts.changed), (OperationState::Succeeded, 2), "{}", revoke.message);
    let again = w.engine.plan(&spec).await.unwrap();
    assert!(grant_changes(&again).is_empty(), "{:?}", grant_changes(&again));
    // Once removed, the former grant's account is not asked again: closed since (crossrole can no longer enter
    // it), the spec still plans and applies.
    w.fake.with_account(SECURITY, |a| a.remove_role("OrganizationAccountAccessRole"));
    let later = w.engine.plan(&spec).await.unwrap();
    assert!(grant_changes(&later).is_empty(), "{:?}", grant_changes(&later));
    let op = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_apply_cuts_a_former_grant_only_from_whom_its_plan_showed() {
    let (w, clock) = clocked(2);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    clock.advance(MINUTE);
    let plan = w.engine.plan(&moved("")).await.unwrap();
    // Bob is given the grant after the plan: the apply would cut him too, which the plan did not show.
    run(&w, OperationKind::Apply, &granted("alice, bob", "")).await;
    let op = w.engine.start(confirmed(&moved(""), &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed, "{}", op.message);
    assert!(op.message.contains("which is not what the plan showed"), "{}", op.message);
    let attached = w.fake.policy(SECURITY, GRANT_ARN).unwrap().attachments;
    assert_eq!(attached.len(), 3, "untouched: {attached:?}");
    assert!(revocations(&w).await.is_empty(), "nothing revoked");
}

#[tokio::test(start_paused = true)]
async fn opted_out_a_removed_grant_keeps_sessions_and_a_policy_crossrole_did_not_make_is_never_touched() {
    let (w, clock) = clocked(2);
    let keep = "  revoke_sessions_on_narrowing: false\n";
    run(&w, OperationKind::Apply, &granted("alice", keep)).await;
    clock.advance(MINUTE);
    let without = AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\"]\n{keep}\
         targets:\n  organizational_unit_ids: [ou-root-workload]\n"
    ))
    .unwrap();
    let plan = w.engine.plan(&without).await.unwrap();
    let changes = grant_changes(&plan);
    let not = changes.iter().find(|c| c.kind == ChangeKind::SessionsNotRevoked).expect("the plan says so");
    assert!(not.after.contains(&format!("user alice in {SECURITY} (former grant)")), "{}", not.after);
    let op = w.engine.start(confirmed(&without, &plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(w.fake.policy(SECURITY, GRANT_ARN), None);
    assert!(revocations(&w).await.is_empty() && (0..2).all(|i| revocation_in(&w, i).is_none()));

    // A policy of that name made by hand where the former grant was: not crossrole's, never shown nor touched.
    let (w, _) = clocked(2);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    w.fake.with_account(SECURITY, |a| a.create_policy_by_hand(GRANT_ARN, "{\"Version\":\"2012-10-17\"}"));
    let plan = w.engine.plan(&moved("")).await.unwrap();
    assert!(plan.grant.is_none(), "{:?}", plan.grant);
    let op = run(&w, OperationKind::Apply, &moved("")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(w.fake.policy(SECURITY, GRANT_ARN).is_some(), "left in place");
}

#[tokio::test(start_paused = true)]
async fn a_destroy_removes_the_grant_the_spec_no_longer_has() {
    let (w, _) = clocked(1);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    let op = run(&w, OperationKind::Destroy, &moved("")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(w.fake.policy(SECURITY, GRANT_ARN), None);
}

#[tokio::test(start_paused = true)]
async fn a_grant_never_placed_is_not_looked_for() {
    let (w, _) = clocked(1);
    // The grant's account mistyped: the apply fails at the trusted side, having written nothing there.
    let typo = AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\", \
         \"123456789012\"]\ntargets:\n  organizational_unit_ids: [ou-root-workload]\ngrant:\n  account_id: \
         \"123456789012\"\n  user_names: [alice]\n"
    ))
    .unwrap();
    let failed = run(&w, OperationKind::Apply, &typo).await;
    assert_eq!(failed.state, OperationState::Failed, "{}", failed.message);
    assert!(failed.message.contains("trusted side"), "{}", failed.message);
    // Corrected: nothing is looked for where no grant was placed, and the apply succeeds.
    let plan = w.engine.plan(&granted("alice", "")).await.unwrap();
    let changes = grant_changes(&plan);
    assert!(!changes.iter().any(|c| c.subject.contains("former grant")), "{changes:?}");
    let op = run(&w, OperationKind::Apply, &granted("alice", "")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
}

/// A release of the former grants in `accounts`, by the tests' caller.
fn release(accounts: &[&str]) -> Release {
    Release { accounts: accounts.iter().map(|a| a.to_string()).collect(), by: "test".into() }
}

/// The field and rule of an INVALID_ARGUMENT.
fn refused_field(e: &crossrole_engine::Error) -> (String, String) {
    match e {
        crossrole_engine::Error::Invalid(crossrole_core::Error::Invalid(v)) => (v[0].field.clone(), v[0].rule.clone()),
        other => panic!("not a field error: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_former_grant_crossrole_cannot_read_is_released_only_when_asked_and_then_not_looked_for_again() {
    let (w, clock) = clocked(2);
    let elsewhere = account(1);
    w.fake.add_principals(&elsewhere, &["carol"], &[]);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    clock.advance(MINUTE);
    // The grant moves to another account, and the one it was in can no longer be entered.
    let spec = moved(&format!("  account_id: \"{elsewhere}\"\n  user_names: [carol]\n"));
    w.fake.with_account(SECURITY, |a| a.remove_role("OrganizationAccountAccessRole"));
    let new_arn = format!("arn:aws:iam::{elsewhere}:policy/crossrole/crossrole-assume-audit");

    // Never released on its own: the plan shows the error, the apply writes nothing on the trusted side.
    let plan = w.engine.plan(&spec).await.unwrap();
    let error = plan.grant.as_ref().and_then(|g| g.error.as_ref()).expect("the former grant cannot be read");
    assert!(error.message.contains(&format!("the former grant {GRANT_ARN} cannot be read")), "{}", error.message);
    let failed = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(failed.state, OperationState::Failed, "{}", failed.message);
    assert!(failed.message.contains("trusted side"), "{}", failed.message);
    assert!(w.fake.policy(&elsewhere, &new_arn).is_none(), "nothing written on the trusted side");

    // A release that names no unreadable former grant is refused, naming the field: a typo, the new grant's
    // account (no former grant there).
    let read = OrganizationRead::Cached;
    for wrong in ["999999999999", elsewhere.as_str()] {
        let e = w.engine.plan_releasing(&spec, Audience::Trusted, read, &release(&[wrong])).await.unwrap_err();
        let (field, rule) = refused_field(&e);
        assert_eq!(field, "release_former_grants");
        assert!(rule.contains(&format!("account {wrong}: spec \"audit\" has no former grant there")), "{rule}");
        let start =
            StartRequest { release_former_grants: [wrong.to_string()].into(), ..start(OperationKind::Apply, &spec) };
        assert_eq!(refused_field(&w.engine.start(start).await.unwrap_err()).0, "release_former_grants");
    }

    // Released explicitly: the plan shows it left in place, by whom, instead of the error.
    let plan = w.engine.plan_releasing(&spec, Audience::Trusted, read, &release(&[SECURITY])).await.unwrap();
    let view = plan.grant.as_ref().unwrap();
    assert!(view.error.is_none(), "{:?}", view.error);
    let changes = grant_changes(&plan);
    assert_eq!(
        kinds_of(&changes),
        [ChangeKind::FormerGrantReleased, ChangeKind::CreateGrantPolicy, ChangeKind::AttachGrantPolicy],
        "{changes:?}"
    );
    assert_eq!(changes[0].after, format!("former grant in account {SECURITY} not removed: released by test"));
    assert_eq!(changes[0].subject, format!("{GRANT_ARN} (former grant)"));
    // The fingerprint covers it: a plan that did not release it is not an apply that does.
    let unreleased = w.engine.plan(&spec).await.unwrap();
    let releasing = |fingerprint: &str| StartRequest {
        release_former_grants: [SECURITY.to_string()].into(),
        ..confirmed(&spec, fingerprint)
    };
    let op = w.engine.start(releasing(&unreleased.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed, "{}", op.message);
    assert!(
        op.message.contains(&format!("the plan did not show the former grants in {SECURITY} released")),
        "{}",
        op.message
    );
    assert!(w.fake.policy(&elsewhere, &new_arn).is_none(), "nothing written on the trusted side");

    // The apply of the plan that released it: the new grant is placed, the former one left where it was, and the
    // operation's record and events say who released it.
    let op = w.engine.start(releasing(&plan.fingerprint)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let attached = w.fake.policy(&elsewhere, &new_arn).unwrap().attachments;
    assert_eq!(attached, BTreeSet::from([(PrincipalKind::User, "carol".to_string())]));
    assert!(w.fake.policy(SECURITY, GRANT_ARN).is_some(), "left in place");
    let events = w.engine.events(&op.id, 0, 1000).await.unwrap();
    let said: Vec<&ShownChange> = events
        .iter()
        .filter_map(|e| match &e.event {
            crossrole_core::ops::Event::ChangeApplied { change } if change.kind == ChangeKind::FormerGrantReleased => {
                Some(change)
            }
            _ => None,
        })
        .collect();
    assert_eq!(said, [&changes[0]], "the event says what the plan showed");
    let row = w.journal.get_operation(&op.id).await.unwrap().unwrap();
    assert_eq!(records::operation_release(&row.spec), release(&[SECURITY]));

    // Settled: the released place is not looked for again — the spec plans and applies without a release, and
    // releasing it again is refused (no former grant there any more).
    let later = w.engine.plan(&spec).await.unwrap();
    assert!(later.grant.as_ref().is_none_or(|g| g.error.is_none()), "{:?}", later.grant);
    assert!(grant_changes(&later).is_empty(), "{:?}", grant_changes(&later));
    let op = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let e = w.engine.plan_releasing(&spec, Audience::Trusted, read, &release(&[SECURITY])).await.unwrap_err();
    assert!(refused_field(&e).1.contains("has no former grant there"), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn a_former_grant_crossrole_can_read_is_not_released_but_removed() {
    let (w, clock) = clocked(2);
    run(&w, OperationKind::Apply, &granted("alice", "")).await;
    clock.advance(MINUTE);
    let read = OrganizationRead::Cached;
    let e = w.engine.plan_releasing(&moved(""), Audience::Trusted, read, &release(&[SECURITY])).await.unwrap_err();
    let (field, rule) = refused_field(&e);
    assert_eq!(field, "release_former_grants");
    assert!(rule.contains("its former grant can be read, and crossrole removes it"), "{rule}");
    let start = StartRequest {
        release_former_grants: [SECURITY.to_string()].into(),
        ..start(OperationKind::Apply, &moved(""))
    };
    assert!(refused_field(&w.engine.start(start).await.unwrap_err()).1.contains("can be read"));
    assert!(w.fake.policy(SECURITY, GRANT_ARN).is_some(), "nothing done");
    // Without the release it is removed, as always.
    let op = run(&w, OperationKind::Apply, &moved("")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(w.fake.policy(SECURITY, GRANT_ARN), None);
}
