//! A caller who may not read ExternalIds gets plans that are no oracle for them (each role's own ExternalId stands
//! in for the one sent), and the apply of such a plan does what it showed: each existing role keeps its
//! ExternalId, no trust is rewritten and no session revoked for it. Asked (`write_external_id`), the plan writes the
//! spec's ExternalId to every existing role with the revocation, whatever AWS holds — the same plan whether the one
//! sent is AWS's or not — and the apply writes exactly that. A plan taken one way is refused for an apply asking the
//! other, before anything is written.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use crossrole_core::{
    AccessSpec,
    grant::former::Release,
    ops::{AccessPlan, ChangeKind, OrganizationRead, ShownChange},
    policy::required_external_id,
    revocation::POLICY_NAME,
    secret::{ExternalId, Redactor},
};
use crossrole_engine::{Audience, ConfirmedPlan, EngineConfig, ExternalIds, StartRequest};

const FIRST: &str = "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf";
const OTHER: &str = "Zz9yXw8vUt7sRq6pOn5mLk4jIh3g";

fn sending(external_id: &str) -> AccessSpec {
    let mut spec = spec();
    spec.role.trust.external_id = Some(ExternalId::new(external_id));
    spec
}

async fn plan(w: &World, spec: &AccessSpec, external_ids: ExternalIds) -> AccessPlan {
    w.engine.plan_as(spec, external_ids, OrganizationRead::AsApply, &Release::default()).await.unwrap()
}

/// An apply of `spec` by a caller who may not read ExternalIds, carrying `plan`, its ExternalIds as `external_ids`.
fn blind_apply(spec: &AccessSpec, plan: &AccessPlan, external_ids: ExternalIds) -> StartRequest {
    StartRequest {
        confirmed: Some(ConfirmedPlan { fingerprint: plan.fingerprint.clone(), audience: Audience::Blind }),
        external_ids,
        ..start(OperationKind::Apply, spec)
    }
}

fn kinds(changes: &[ShownChange]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.kind).collect()
}

/// The ExternalId the role in account `i` requires.
fn required(w: &World, i: u64) -> String {
    let role = w.fake.role(&account(i), "Audit").unwrap();
    required_external_id(&role.attributes.trust_policy).unwrap().expose().to_string()
}

fn revoked(w: &World, i: u64) -> bool {
    w.fake.role(&account(i), "Audit").unwrap().inline_policies.contains_key(POLICY_NAME)
}

/// Text with every ExternalId mark as one: marks are keyed for one answer.
fn unmarked(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(at) = out.find("<redacted:") {
        let end = at + "<redacted:12345678>".len();
        assert!(Redactor::is_mark(&out[at..end]), "{out}");
        out.replace_range(at..end, "<mark>");
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_blind_apply_with_another_change_keeps_each_roles_external_id_and_revokes_nothing() {
    let w = world(2);
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    // Another ExternalId sent, and a description changed.
    let mut edited = sending(OTHER);
    edited.role.description = "edited".into();
    let shown = plan(&w, &edited, ExternalIds::Kept).await;
    for a in &shown.accounts {
        assert_eq!(kinds(&a.changes), [ChangeKind::UpdateDescription], "{a:?}");
    }
    assert!(shown.external_id_note.contains("keeps each existing role's own ExternalId"), "{}", shown.external_id_note);
    let op = w.engine.start(blind_apply(&edited, &shown, ExternalIds::Kept)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 2), "{}", op.message);
    for r in results(&w, &op.id).await.into_iter().filter(|r| outcome(r) != "skipped") {
        assert_eq!(kinds(&r.changes), [ChangeKind::UpdateDescription], "{r:?}");
    }
    for i in 0..2 {
        assert_eq!(required(&w, i), FIRST, "the role's own ExternalId is kept");
        assert!(!revoked(&w, i), "no session revoked");
        assert_eq!(w.fake.role(&account(i), "Audit").unwrap().attributes.description, "edited");
    }
}

#[tokio::test(start_paused = true)]
async fn a_blind_apply_asking_write_external_id_rotates_it_and_revokes_as_its_plan_showed() {
    let clock = crossrole_engine::Clock::manual(1_796_000_000_000);
    let w = world_on_clock(2, &clock, EngineConfig::default());
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);

    // The plan is the same whether the ExternalId sent is AWS's or not: a trust rewrite and a revocation in every
    // account whose role exists.
    let same = plan(&w, &sending(FIRST), ExternalIds::Written).await;
    let rotated = plan(&w, &sending(OTHER), ExternalIds::Written).await;
    assert_eq!(same.fingerprint, rotated.fingerprint);
    assert_eq!(same.accounts.len(), rotated.accounts.len());
    for (a, b) in same.accounts.iter().zip(&rotated.accounts) {
        assert_eq!(kinds(&a.changes), [ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions], "{a:?}");
        let text = |changes: &[ShownChange]| {
            changes.iter().map(|c| unmarked(&format!("{}|{}|{}", c.subject, c.before, c.after))).collect::<Vec<_>>()
        };
        assert_eq!(text(&a.changes), text(&b.changes));
    }
    assert!(rotated.external_id_note.contains("write_external_id was asked"), "{}", rotated.external_id_note);

    let op = w.engine.start(blind_apply(&sending(OTHER), &rotated, ExternalIds::Written)).await.unwrap();
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 2), "{}", op.message);
    for r in results(&w, &op.id).await.into_iter().filter(|r| outcome(r) != "skipped") {
        assert_eq!(kinds(&r.changes), [ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions], "{r:?}");
    }
    for i in 0..2 {
        assert_eq!(required(&w, i), OTHER, "the spec's ExternalId is written");
        assert!(revoked(&w, i), "the sessions issued before it are revoked");
    }
}

#[tokio::test(start_paused = true)]
async fn a_plan_taken_one_way_is_refused_for_an_apply_asking_the_other_and_nothing_is_written() {
    let w = world(2);
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    let spec = sending(OTHER);
    let kept = plan(&w, &spec, ExternalIds::Kept).await;
    let written = plan(&w, &spec, ExternalIds::Written).await;
    assert_ne!(kept.fingerprint, written.fingerprint);
    w.fake.reset_counters();
    for (plan, asked, why) in [
        (&kept, ExternalIds::Written, "the plan kept each role's ExternalId, and this apply asks write_external_id"),
        (&written, ExternalIds::Kept, "and this apply does not ask it"),
    ] {
        let refused = w.engine.start(blind_apply(&spec, plan, asked)).await.unwrap_err();
        assert!(matches!(refused, crossrole_engine::Error::FailedPrecondition(_)), "{refused:?}");
        assert!(refused.to_string().contains(why), "{refused}");
    }
    assert_eq!(w.fake.iam_writes(), 0, "nothing written: {:?}", w.fake.served());
    assert_eq!((required(&w, 0), required(&w, 1)), (FIRST.to_string(), FIRST.to_string()));

    // Writing an ExternalId the spec does not have is refused, naming the field.
    let mut none = spec.clone();
    none.role.trust.external_id = None;
    let refused = w.engine.plan_as(&none, ExternalIds::Written, OrganizationRead::AsApply, &Release::default()).await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("write_external_id"));
    let refused =
        w.engine.start(StartRequest { external_ids: ExternalIds::Written, ..start(OperationKind::Apply, &none) });
    assert!(format!("{:?}", refused.await.unwrap_err()).contains("write_external_id"));
}

#[tokio::test(start_paused = true)]
async fn a_blind_apply_without_a_plan_keeps_them_too_as_its_record_says() {
    let w = world(2);
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    let mut edited = sending(OTHER);
    edited.role.description = "edited".into();
    // No confirmed plan: the operation's record says how its ExternalIds are taken, for this run and a resumed one.
    let op = w
        .engine
        .start(StartRequest { external_ids: ExternalIds::Kept, ..start(OperationKind::Apply, &edited) })
        .await
        .unwrap();
    let row = w.journal.get_operation(&op.id).await.unwrap().unwrap();
    assert_eq!(records::operation_external_ids(&row.spec), ExternalIds::Kept);
    let op = w.engine.wait(&op.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 2), "{}", op.message);
    for i in 0..2 {
        assert_eq!(required(&w, i), FIRST, "the role's own ExternalId is kept");
        assert!(!revoked(&w, i), "no session revoked");
    }
    // The same idempotency key asking the rotation is another request, named.
    let keyed = |external_ids| StartRequest {
        idempotency_key: Some("rotate-1".into()),
        external_ids,
        ..start(OperationKind::Apply, &edited)
    };
    w.engine.start(keyed(ExternalIds::Kept)).await.unwrap();
    let refused = format!("{:?}", w.engine.start(keyed(ExternalIds::Written)).await.unwrap_err());
    assert!(refused.contains("write_external_id"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn the_rotation_plan_shows_nothing_of_the_external_id_a_role_holds_even_spelled_out_elsewhere() {
    let w = world(1);
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    // A trust whose Sid spells the ExternalId out.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{FIRST}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SECURITY}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"{FIRST}"}}}}}}]}}"#
    );
    w.fake.with_account(&account(0), |a| a.set_trust_by_hand("Audit", &trust));
    for sent in [FIRST, OTHER] {
        let shown = plan(&w, &sending(sent), ExternalIds::Written).await;
        let text = format!("{shown:?}");
        assert!(!text.contains(FIRST) && !text.contains(OTHER), "{text}");
        assert_eq!(kinds(&shown.accounts[0].changes), [ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions]);
    }
}

/// The drift findings a fresh inventory gives the Audit role of account `i`.
async fn drift(w: &World, i: u64) -> Vec<String> {
    use crossrole_core::inventory::FindingKind;
    use crossrole_engine::inventory::{InventoryQuery, InventoryRequest};
    let op = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    let op = w.engine.wait(&op.unwrap().id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let query = InventoryQuery { operation_id: op.id, ..Default::default() };
    let roles = w.engine.list_inventory(&query, 10_000, "").await.unwrap().roles;
    let role = roles.iter().find(|r| r.account_id == account(i) && r.name == "Audit").unwrap();
    role.findings.iter().filter(|f| f.kind == FindingKind::Drifted).map(|f| f.reason.clone()).collect()
}

/// The inventory judges a role a blind apply placed with the role's own ExternalId in the spec's place, as the
/// apply kept it: a drift said of the ExternalId would be false, and would tell that caller whether the one it
/// sent is AWS's (an outside tester's oracle: a guess and a tag, then one inventory). A rotation asked writes the
/// spec's, which is then compared.
#[tokio::test(start_paused = true)]
async fn the_inventory_does_not_say_whether_a_blind_apply_sent_the_external_id_aws_holds() {
    let w = world(2);
    let first = run(&w, OperationKind::Apply, &sending(FIRST)).await;
    assert_eq!(first.state, OperationState::Succeeded, "{}", first.message);
    for guess in [OTHER, FIRST] {
        let mut edited = sending(guess);
        edited.role.description = format!("guessing {}", &guess[..4]);
        let shown = plan(&w, &edited, ExternalIds::Kept).await;
        let op = w.engine.start(blind_apply(&edited, &shown, ExternalIds::Kept)).await.unwrap();
        assert_eq!(w.engine.wait(&op.id).await.unwrap().state, OperationState::Succeeded);
        assert_eq!(required(&w, 0), FIRST);
        assert_eq!(drift(&w, 0).await, Vec::<String>::new(), "after a blind apply sending {}…", &guess[..4]);
    }
    // A change by hand is still drift.
    w.fake.with_account(&account(0), |s| s.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess"));
    assert_eq!(drift(&w, 0).await.len(), 1);
    assert_eq!(drift(&w, 1).await, Vec::<String>::new());
}
