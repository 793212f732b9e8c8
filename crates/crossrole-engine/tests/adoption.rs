//! Adoption, never automatic: a spec takes over only the hand-made role a person approved (by its unique id),
//! never one made later under the same name — also in a binding's scheduled reconciles, with nobody present.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use common::*;
use crossrole_core::{AccessSpec, binding::RawBinding, ops::ErrorCode, spec::OWNER_TAG_KEY};
use crossrole_engine::bindings::Bindings;

/// A vendor's account outside the organization, trusted by the roles made by hand.
const VENDOR: &str = "999988887777";

fn trusting(account: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

/// The test spec, its role at `/` (where a hand-made role is), approving the takeover of `approved` (account, role
/// id) alone.
fn adopting(approved: Option<(&str, &str)>) -> AccessSpec {
    let mut spec = spec();
    spec.role.path = "/".into();
    if let Some((account, role_id)) = approved {
        spec.role.adopt_accounts = BTreeSet::from([account.to_string()]);
        spec.role.adopt_role_ids = BTreeMap::from([(account.to_string(), role_id.to_string())]);
    }
    spec
}

fn made_by_hand(w: &World, a: &str, trusted: &str) -> String {
    w.fake.with_account(a, |s| s.create_role_by_hand(a, "Audit", &trusting(trusted)));
    w.fake.role(a, "Audit").unwrap().role_id
}

/// Reconciles binding `name` and returns the row of account `a`.
async fn reconciled(w: &World, bindings: &Bindings, name: &str, a: &str) -> AccountResult {
    let op = bindings.reconcile(name, "test").await.unwrap();
    let done = w.engine.wait(&op.id).await.unwrap();
    assert!(done.state.is_final(), "{}", done.message);
    results(w, &op.id).await.into_iter().find(|r| r.account_id == a).unwrap()
}

/// The outside tester's F2: a binding approved to adopt one hand-made role in an account; that role deleted and a
/// new one made by hand under the same name (trusting a vendor). The next reconcile — the scheduled one too — must
/// leave the new role untouched and say why, not rewrite its trust, revoke its sessions and attach policies.
#[tokio::test(start_paused = true)]
async fn a_binding_adopts_the_role_approved_and_never_one_made_again_under_its_name() {
    let w = world(2);
    let a = account(1);
    let approved = made_by_hand(&w, &a, SECURITY);
    let bindings = Bindings::new(w.engine.clone());
    let raw = RawBinding { spec: Some(RawSpec::from(&adopting(Some((&a, &approved))))), ..Default::default() };
    let created = bindings.create(&raw).await.unwrap();

    let row = reconciled(&w, &bindings, &created.name, &a).await;
    assert_eq!(outcome(&row), "changed", "{:?}", row.error);
    let role = w.fake.role(&a, "Audit").unwrap();
    assert_eq!(role.role_id, approved, "the role approved, taken over in place");
    assert!(role.attributes.tags.contains_key(OWNER_TAG_KEY));

    // Deleted, and made again by hand, trusting a vendor: another role, which nobody has seen or approved.
    w.fake.with_account(&a, |s| s.remove_role("Audit"));
    let remade = made_by_hand(&w, &a, VENDOR);
    assert_ne!(remade, approved, "IAM gives a role made again another id");
    let before = w.fake.role(&a, "Audit").unwrap();
    let writes = w.fake.iam_writes_in(&a);

    let row = reconciled(&w, &bindings, &created.name, &a).await;
    assert_eq!(outcome(&row), "skipped");
    let error = row.error.unwrap();
    assert_eq!(error.code, ErrorCode::NotOwned);
    assert!(error.message.contains(&approved) && error.message.contains(&remade), "{}", error.message);
    assert!(error.message.contains("run `crossrole adopt -f <spec file>`"), "{}", error.message);
    assert_eq!(w.fake.role(&a, "Audit").unwrap(), before, "the new role is left as it was");
    assert_eq!(w.fake.iam_writes_in(&a), writes, "nothing written in {a}");

    // The plan says the same, and gives the role's id for an approval.
    let plan = w.engine.plan(&adopting(Some((&a, &approved)))).await.unwrap();
    let here = plan.accounts.iter().find(|p| p.account_id == a).unwrap();
    assert_eq!(here.status, crossrole_core::ops::PlanStatus::Conflict);
    assert_eq!(here.role_id, remade);
    assert!(here.findings[0].message.contains("run `crossrole adopt"), "{}", here.findings[0].message);

    // Approved anew (its id), it is taken over.
    let row = {
        let raw = RawBinding { spec: Some(RawSpec::from(&adopting(Some((&a, &remade))))), ..Default::default() };
        bindings.update(&raw, None).await.unwrap();
        reconciled(&w, &bindings, &created.name, &a).await
    };
    assert_eq!(outcome(&row), "changed", "{:?}", row.error);
    assert!(w.fake.role(&a, "Audit").unwrap().attributes.tags.contains_key(OWNER_TAG_KEY));
}

/// A spec that lists an account for adoption without the id of the role approved there (written before the ids
/// were recorded) takes no role over there: its one-time approval is not a standing one.
#[tokio::test(start_paused = true)]
async fn an_adoption_without_the_roles_id_takes_nothing_over() {
    let w = world(2);
    let a = account(1);
    let id = made_by_hand(&w, &a, SECURITY);
    let mut spec = adopting(None);
    spec.role.adopt_accounts = BTreeSet::from([a.clone()]);
    let op = run(&w, OperationKind::Apply, &spec).await;
    let row = results(&w, &op.id).await.into_iter().find(|r| r.account_id == a).unwrap();
    assert_eq!(outcome(&row), "skipped");
    let message = row.error.unwrap().message;
    assert!(message.contains("role.adopt_role_ids") && message.contains("crossrole adopt"), "{message}");
    let role = w.fake.role(&a, "Audit").unwrap();
    assert_eq!(role.role_id, id);
    assert!(!role.attributes.tags.contains_key(OWNER_TAG_KEY), "not taken over");
}

/// `role.adopt_existing` in a binding would take over every hand-made role of its name, in every target account,
/// now and at every later reconcile, without anyone seeing a diff: a binding refuses it, naming the field and what
/// to do instead, and writes nothing.
#[tokio::test(start_paused = true)]
async fn a_binding_refuses_to_adopt_every_existing_role() {
    let w = world(2);
    let a = account(1);
    made_by_hand(&w, &a, VENDOR);
    let mut spec = adopting(None);
    spec.role.adopt_existing = true;
    let bindings = Bindings::new(w.engine.clone());
    let raw = RawBinding { spec: Some(RawSpec::from(&spec)), ..Default::default() };
    let refused = bindings.create(&raw).await.unwrap_err().to_string();
    assert!(refused.contains("role.adopt_existing"), "{refused}");
    assert!(refused.contains("crossrole adopt"), "{refused}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(bindings.get("audit").await.is_err(), "no binding");
    assert!(!w.fake.role(&a, "Audit").unwrap().attributes.tags.contains_key(OWNER_TAG_KEY));
}
