//! Revocation against the in-memory AWS on a manual clock: a narrowed trust is followed by the
//! `AWSRevokeOlderSessions` deny (a role removed is preceded by it), a reconcile keeps it until the longest session issued before it has
//! expired and removes it after, a spec that opts out gets none (and is told), and a destroy revokes first.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use crossrole_core::{
    AccessSpec,
    revocation::{POLICY_NAME, Revocation, iso8601},
};
use crossrole_engine::{Clock, EngineConfig, RevokeRequest};

/// 2026-12-05T10:00:00.250Z.
const T0: i64 = 1_796_464_800_250;
const MINUTE: i64 = 60_000;

fn revocation_spec(trust_extra: &str, role_extra: &str) -> AccessSpec {
    AccessSpec::from_yaml(&format!(
        r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  max_session_duration: 2h
  trust:
    account_ids: ["{SECURITY}"]
{trust_extra}  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
{role_extra}targets:
  organizational_unit_ids: [ou-root-workload]
rollout:
  max_concurrency: 5
  failure_tolerance: 100%
"#
    ))
    .unwrap()
}

fn clocked(n: u64) -> (World, Clock) {
    let clock = Clock::manual(T0);
    (world_on_clock(n, &clock, EngineConfig::default()), clock)
}

/// Like [`clocked`], with the deny kept at most `hold_secs` (the emulator-only test setting).
fn clocked_held(n: u64, hold_secs: u32) -> (World, Clock) {
    let clock = Clock::manual(T0);
    (
        world_on_clock(n, &clock, EngineConfig { revocation_hold_secs: Some(hold_secs), ..EngineConfig::default() }),
        clock,
    )
}

fn revocation_in(w: &World, i: u64) -> Option<Revocation> {
    let role = w.fake.role(&account(i), "Audit").unwrap();
    role.inline_policies.get(POLICY_NAME).map(|d| Revocation::parse(d).expect("crossrole's revocation reads back"))
}

fn kinds(r: &AccountResult) -> Vec<ChangeKind> {
    r.changes.iter().map(|c| c.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn a_narrowing_revokes_once_written_a_reconcile_keeps_the_deny_until_the_last_session_ends_then_removes_it() {
    let (w, clock) = clocked(4);
    let wide = revocation_spec("", "");
    assert_eq!(run(&w, OperationKind::Apply, &wide).await.state, OperationState::Succeeded);
    assert!((0..4).all(|i| revocation_in(&w, i).is_none()), "creating takes nothing away");

    // MFA required from now on: once the trust changes, every role's sessions issued before are denied.
    clock.set(T0 + 10 * MINUTE);
    let narrow = revocation_spec("    require_mfa: true\n", "");
    let op = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    for r in results(&w, &op.id).await.iter().filter(|r| r.action.is_some()) {
        assert_eq!(kinds(r), [ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions], "{}", r.account_id);
    }
    let written = revocation_in(&w, 0).unwrap();
    assert_eq!(iso8601(written.issued_before), "2026-12-05T10:10:01Z");
    assert_eq!(written.keep_until, written.issued_before + 2 * 60 * MINUTE, "the role's 2-hour sessions");
    assert!((1..4).all(|i| revocation_in(&w, i).is_some()));

    // Re-applied at once and just before the last session issued before it can have ended: nothing is written.
    for at in [T0 + 10 * MINUTE, written.keep_until - 1] {
        clock.set(at);
        w.fake.reset_counters();
        let again = run(&w, OperationKind::Apply, &narrow).await;
        assert_eq!(again.counts.unchanged, 4, "at {}", iso8601(at));
        assert_eq!(w.fake.iam_writes(), 0, "kept, and nothing else to do: {:?}", w.fake.served());
    }

    // From then on a reconcile removes it — one DeleteRolePolicy per account — and the next one writes nothing.
    clock.set(written.keep_until);
    w.fake.reset_counters();
    let removed = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(removed.counts.changed, 4);
    assert_eq!(w.fake.served().get("iam:DeleteRolePolicy"), Some(&4), "{:?}", w.fake.served());
    assert_eq!(w.fake.iam_writes(), 4);
    assert!((0..4).all(|i| revocation_in(&w, i).is_none()));
    w.fake.reset_counters();
    run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(w.fake.iam_writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn widening_revokes_nothing_and_opting_out_writes_no_deny_and_says_so() {
    let (w, clock) = clocked(2);
    run(&w, OperationKind::Apply, &revocation_spec("    require_mfa: true\n", "")).await;
    // MFA no longer required: wider, nothing revoked.
    clock.advance(MINUTE);
    let wider = run(&w, OperationKind::Apply, &revocation_spec("", "")).await;
    let r = results(&w, &wider.id).await;
    assert_eq!(kinds(&r[0]), [ChangeKind::UpdateTrustPolicy]);
    assert!(revocation_in(&w, 0).is_none());
    // Narrowed again by a spec that opts out: the trust changes, no deny is written, and the record says why.
    let kept = revocation_spec("    require_mfa: true\n", "  revoke_sessions_on_narrowing: false\n");
    let op = run(&w, OperationKind::Apply, &kept).await;
    let r = results(&w, &op.id).await;
    assert_eq!(kinds(&r[0]), [ChangeKind::SessionsNotRevoked, ChangeKind::UpdateTrustPolicy]);
    assert!(r[0].changes[0].after.contains("revoke_sessions_on_narrowing"), "{}", r[0].changes[0].after);
    assert!((0..2).all(|i| revocation_in(&w, i).is_none()));
    // And a plan of such a spec says so too.
    let narrower = revocation_spec(
        "    require_mfa: true\n    principal_org_id: o-abcdefghij\n",
        "  revoke_sessions_on_narrowing: false\n",
    );
    let plan = w.engine.plan(&narrower).await.unwrap();
    let first = &plan.accounts.iter().find(|a| a.account_id == account(0)).unwrap().changes[0];
    assert_eq!(
        (first.kind, first.after.contains("stay valid until they expire")),
        (ChangeKind::SessionsNotRevoked, true)
    );
}

#[tokio::test(start_paused = true)]
async fn a_destroy_revokes_before_it_removes_anything() {
    let (w, clock) = clocked(3);
    let spec = revocation_spec("", "");
    run(&w, OperationKind::Apply, &spec).await;
    clock.advance(5 * MINUTE);
    let op = run(&w, OperationKind::Destroy, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}: {:?}", op.message, results(&w, &op.id).await);
    for r in results(&w, &op.id).await.iter().filter(|r| r.action.is_some()) {
        let k = kinds(r);
        assert_eq!(k.first(), Some(&ChangeKind::RevokeSessions), "{}: {k:?}", r.account_id);
        assert_eq!(k.last(), Some(&ChangeKind::DeleteRole));
        // The deny is the last policy to go, just before the role.
        assert_eq!(k[k.len() - 2], ChangeKind::DeleteInlinePolicy, "{k:?}");
        assert_eq!(r.changes[k.len() - 2].subject, POLICY_NAME);
    }
    assert!((0..3).all(|i| w.fake.role(&account(i), "Audit").is_none()));
}

#[tokio::test(start_paused = true)]
async fn revoke_denies_every_session_where_the_spec_is_placed_at_the_floor_and_skips_the_rest() {
    let (w, clock) = clocked(4);
    let spec = revocation_spec("", "");
    run(&w, OperationKind::Apply, &spec).await;
    clock.set(T0 + 30 * MINUTE);
    w.fake.reset_counters();
    let started = w
        .engine
        .start_revoke(RevokeRequest {
            spec: spec.clone(),
            accounts: None,
            idempotency_key: None,
            created_by: "test".into(),
        })
        .await
        .unwrap();
    let op = w.engine.wait(&started.id).await.unwrap();
    assert_eq!((op.kind, op.state), (Some(OperationKind::Revoke), OperationState::Succeeded), "{}", op.message);
    assert_eq!((op.counts.total, op.counts.changed), (4, 4));
    // The floor: one GetRole (whose role is it, how long are its sessions), one GetRolePolicy (what is in the
    // revocation's policy already) and one PutRolePolicy per account, and at most one AssumeRole (the apply's
    // bootstrap sessions are still good here, and reused).
    let served = w.fake.served();
    assert_eq!(served.get("iam:PutRolePolicy"), Some(&4), "{served:?}");
    assert_eq!(served.get("iam:GetRole"), Some(&4), "{served:?}");
    assert_eq!(served.get("iam:GetRolePolicy"), Some(&4), "{served:?}");
    assert!(served.get("sts:AssumeRole").is_none_or(|n| *n <= 4), "{served:?}");
    let floor = ["iam:PutRolePolicy", "iam:GetRole", "iam:GetRolePolicy", "sts:AssumeRole"];
    assert!(served.keys().all(|k| floor.contains(&k.as_str())), "{served:?}");
    for i in 0..4 {
        let r = revocation_in(&w, i).unwrap();
        assert_eq!(iso8601(r.issued_before), "2026-12-05T10:30:01Z");
        assert_eq!(r.keep_until - r.issued_before, 12 * 60 * MINUTE, "the longest session IAM issues");
    }
    let rows = results(&w, &op.id).await;
    assert!(rows.iter().all(|r| kinds(r) == [ChangeKind::RevokeSessions]), "{rows:?}");
    // A reconcile meanwhile keeps it; one after it has served removes it.
    w.fake.reset_counters();
    run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(w.fake.iam_writes(), 0);
    clock.set(T0 + 13 * 60 * MINUTE);
    run(&w, OperationKind::Apply, &spec).await;
    assert!((0..4).all(|i| revocation_in(&w, i).is_none()));

    // Named accounts: only those, and one where the spec is not placed is skipped, saying why.
    let stranger = "299999999998".to_string();
    let named = w
        .engine
        .start_revoke(RevokeRequest {
            spec: spec.clone(),
            accounts: Some([account(1), stranger.clone()].into()),
            idempotency_key: None,
            created_by: "test".into(),
        })
        .await
        .unwrap();
    let op = w.engine.wait(&named.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let rows = results(&w, &op.id).await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].account_id.as_str(), rows[0].outcome), (account(1).as_str(), Outcome::Changed));
    assert_eq!((rows[1].account_id.as_str(), rows[1].outcome), (stranger.as_str(), Outcome::Skipped));
    assert!(rows[1].error.as_ref().unwrap().message.contains("has not applied spec audit"));
    assert!(revocation_in(&w, 1).is_some() && revocation_in(&w, 0).is_none());
    // A bad account id is refused before anything is journaled.
    let bad = w
        .engine
        .start_revoke(RevokeRequest {
            spec,
            accounts: Some(["12345".to_string()].into()),
            idempotency_key: None,
            created_by: "test".into(),
        })
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("account_ids"), "{bad}");
}

#[tokio::test(start_paused = true)]
async fn revoke_writes_nothing_to_a_role_crossrole_does_not_own_where_the_spec_was_placed() {
    let (w, clock) = clocked(3);
    let spec = revocation_spec("", "");
    run(&w, OperationKind::Apply, &spec).await;
    // In one account the role is deleted and one of the same name made by hand (no crossrole tags); in another it
    // is tagged as another spec's. The journal still has the spec placed in all three.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SECURITY}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    w.fake.with_account(&account(1), |a| {
        a.remove_role("Audit");
        a.create_role_by_hand(&account(1), "Audit", &trust);
    });
    w.fake.with_account(&account(2), |a| a.tag_by_hand("Audit", "crossrole:spec", "billing"));
    clock.set(T0 + 30 * MINUTE);
    w.fake.reset_counters();
    let started = w
        .engine
        .start_revoke(RevokeRequest { spec, accounts: None, idempotency_key: None, created_by: "test".into() })
        .await
        .unwrap();
    let op = w.engine.wait(&started.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!((op.counts.changed, op.counts.skipped), (1, 2), "{:?}", op.counts);
    let rows = results(&w, &op.id).await;
    assert_eq!(rows[0].outcome, Outcome::Changed);
    assert!(revocation_in(&w, 0).is_some());
    for (i, whose) in [(1, "no crossrole ownership tags"), (2, "crossrole's for spec billing")] {
        let r = &rows[i];
        assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
        let error = r.error.as_ref().unwrap();
        assert_eq!(error.code, ErrorCode::NotOwned, "{r:?}");
        assert!(error.message.contains(whose) && error.message.contains("writes nothing"), "{}", error.message);
        assert!(r.changes.is_empty());
        assert!(revocation_in(&w, i as u64).is_none(), "account {i}: a role crossrole does not own is untouched");
    }
    assert_eq!(w.fake.served().get("iam:PutRolePolicy"), Some(&1), "{:?}", w.fake.served());
}

#[tokio::test(start_paused = true)]
async fn a_principal_removed_from_the_grant_has_its_sessions_revoked_after_the_grant_is_cut() {
    let (w, clock) = clocked(3);
    let granted = |users: &str| {
        AccessSpec::from_yaml(&format!(
            "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\"]\n\
             targets:\n  organizational_unit_ids: [ou-root-workload]\ngrant:\n  account_id: \"{SECURITY}\"\n  \
             user_names: [{users}]\n  group_names: [auditors]\n"
        ))
        .unwrap()
    };
    let both = run(&w, OperationKind::Apply, &granted("alice")).await;
    assert_eq!(both.state, OperationState::Succeeded, "{}", both.message);
    clock.advance(MINUTE);
    // Alice leaves the grant: the roles are unchanged, the grant is cut from her, then every session is revoked.
    let op = run(&w, OperationKind::Apply, &granted("")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let (ops, _) = w.engine.list_operations(&Default::default(), 10, "").await.unwrap();
    let revoke = ops
        .into_iter()
        .find_map(|o| match o {
            crossrole_core::unreadable::Listed::Read(o) if o.kind == Some(OperationKind::Revoke) => Some(o),
            _ => None,
        })
        .expect("a revocation was started");
    let revoke = w.engine.wait(&revoke.id).await.unwrap();
    assert_eq!((revoke.state, revoke.counts.changed), (OperationState::Succeeded, 3), "{}", revoke.message);
    assert!((0..3).all(|i| revocation_in(&w, i).is_some()));
    // Said in the apply's events, with the revocation's id.
    let events = w.engine.events(&op.id, 0, 1000).await.unwrap();
    assert!(
        events.iter().any(|e| matches!(&e.event, Event::ChangeApplied { change }
            if change.kind == ChangeKind::RevokeSessions && change.after.contains("user alice") && change.after.contains(&revoke.id))),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hold_shortened_for_emulators_is_written_kept_and_removed_at_its_own_time_and_the_record_says_so() {
    let (w, clock) = clocked_held(2, 5);
    let wide = revocation_spec("", "");
    run(&w, OperationKind::Apply, &wide).await;
    clock.set(T0 + MINUTE);
    let narrow = revocation_spec("    require_mfa: true\n", "");
    // The plan and the apply's record both say the shortened hold and the setting that asked for it.
    let plan = w.engine.plan(&narrow).await.unwrap();
    let revoke = plan.accounts[0].changes.iter().find(|c| c.kind == ChangeKind::RevokeSessions).unwrap();
    assert!(revoke.after.contains("kept 5s, because"), "{}", revoke.after);
    assert!(revoke.after.contains("not the role's longest session of 7200s, by emulator_testing.revocation_hold"));
    let op = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let rows = results(&w, &op.id).await;
    let recorded = rows[0].changes.iter().find(|c| c.kind == ChangeKind::RevokeSessions).unwrap();
    assert!(recorded.after.contains("emulator_testing.revocation_hold"), "{}", recorded.after);
    let written = revocation_in(&w, 0).unwrap();
    assert_eq!(iso8601(written.issued_before), "2026-12-05T10:01:01Z");
    assert_eq!(iso8601(written.keep_until), "2026-12-05T10:01:06Z", "5 s, not the role's 2 hours");
    // Kept up to the last millisecond before it, removed from then on.
    clock.set(written.keep_until - 1);
    w.fake.reset_counters();
    assert_eq!(run(&w, OperationKind::Apply, &narrow).await.counts.unchanged, 2);
    assert_eq!(w.fake.iam_writes(), 0);
    clock.set(written.keep_until);
    let removed = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(removed.counts.changed, 2);
    let rows = results(&w, &removed.id).await;
    assert!(
        rows.iter()
            .filter(|r| r.action.is_some())
            .all(|r| r.changes.iter().any(|c| c.kind == ChangeKind::DeleteInlinePolicy && c.subject == POLICY_NAME)),
        "{rows:?}"
    );
    assert!((0..2).all(|i| revocation_in(&w, i).is_none()));
    // `crossrole revoke` keeps its deny that long too, and says so.
    let request = RevokeRequest { spec: narrow.clone(), accounts: None, idempotency_key: None, created_by: "t".into() };
    let started = w.engine.start_revoke(request).await.unwrap();
    let done = w.engine.wait(&started.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let rows = results(&w, &done.id).await;
    assert!(rows.iter().all(|r| r.changes.iter().any(|c| c.after.contains("emulator_testing.revocation_hold"))));
    let revoked = revocation_in(&w, 0).unwrap();
    assert_eq!(revoked.keep_until - revoked.issued_before, 5_000, "the hold, not 12 h");
}

/// IAM's console revocation (an hour before `T0`) and a statement a person added beside it.
const CONSOLE_AND_HAND: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}},{"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#;

/// The statements of the revocation's policy on the role in account `i`, as JSON.
fn revocation_statements(w: &World, i: u64) -> Vec<serde_json::Value> {
    let role = w.fake.role(&account(i), "Audit").unwrap();
    let doc = role.inline_policies.get(POLICY_NAME).expect("the policy is there");
    let doc = percent_encoding::percent_decode_str(doc).decode_utf8().unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    v["Statement"].as_array().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn a_persons_statement_in_the_revocations_policy_is_kept_when_revoking_and_when_the_revocation_goes() {
    let (w, clock) = clocked(2);
    let wide = revocation_spec("", "");
    assert_eq!(run(&w, OperationKind::Apply, &wide).await.state, OperationState::Succeeded);
    w.fake.with_account(&account(0), |s| s.put_inline_by_hand("Audit", POLICY_NAME, CONSOLE_AND_HAND));
    let hand = serde_json::json!({"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"});

    // The plan says what stays.
    clock.set(T0 + 10 * MINUTE);
    let narrow = revocation_spec("    require_mfa: true\n", "");
    let plan = w.engine.plan(&narrow).await.unwrap();
    let planned = &plan.accounts.iter().find(|a| a.account_id == account(0)).unwrap().changes;
    assert_eq!(
        planned.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions]
    );
    assert!(planned[1].after.ends_with("kept as they are: HandExtra"), "{}", planned[1].after);
    assert!(planned[1].before.contains("HandExtra"), "{}", planned[1].before);

    // Written: crossrole's revocation (the console's merged into it) and the person's statement as it was.
    let op = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let written = revocation_in(&w, 0).unwrap();
    assert_eq!(iso8601(written.issued_before), "2026-12-05T10:10:01Z");
    assert_eq!(iso8601(written.keep_until), "2026-12-05T21:00:00Z", "the console's 12 hours, the later end");
    let statements = revocation_statements(&w, 0);
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_eq!(statements[1], hand);
    assert_eq!(revocation_statements(&w, 1).len(), 1, "no person's statement there: crossrole's alone");

    // Once its time is over a reconcile takes only the revocation away: the person's statement stays where it was
    // (a PutRolePolicy), the policy without one is deleted, and nothing more is done after.
    clock.set(written.keep_until);
    w.fake.reset_counters();
    let removed = run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(removed.counts.changed, 2, "{}", removed.message);
    let served = w.fake.served();
    assert_eq!((served.get("iam:PutRolePolicy"), served.get("iam:DeleteRolePolicy")), (Some(&1), Some(&1)));
    assert_eq!(revocation_statements(&w, 0), [hand]);
    assert!(revocation_in(&w, 1).is_none());
    clock.set(written.keep_until + 24 * 60 * MINUTE);
    w.fake.reset_counters();
    run(&w, OperationKind::Apply, &narrow).await;
    assert_eq!(w.fake.iam_writes(), 0, "{:?}", w.fake.served());
}

#[tokio::test(start_paused = true)]
async fn a_revocation_that_would_not_fit_beside_a_persons_statements_is_refused_before_anything_is_written() {
    let (w, clock) = clocked(1);
    let wide = revocation_spec("", "");
    run(&w, OperationKind::Apply, &wide).await;
    // A person's statement that leaves less room than crossrole's revocation takes.
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"H{}","Effect":"Deny","Action":"iam:*","Resource":"*"}}]}}"#,
        "x".repeat(10_100)
    );
    w.fake.with_account(&account(0), |s| s.put_inline_by_hand("Audit", POLICY_NAME, &big));
    let trust_before = w.fake.role(&account(0), "Audit").unwrap().attributes.trust_policy;
    clock.advance(MINUTE);
    w.fake.reset_counters();
    let op = run(&w, OperationKind::Apply, &revocation_spec("    require_mfa: true\n", "")).await;
    let rows = results(&w, &op.id).await;
    let error = rows[0].error.as_ref().expect("refused");
    assert_eq!(error.code, ErrorCode::Invalid);
    assert!(error.message.contains("over IAM's 10240") && error.message.contains("nothing was changed"), "{error:?}");
    assert_eq!(w.fake.iam_writes(), 0, "{:?}", w.fake.served());
    let role = w.fake.role(&account(0), "Audit").unwrap();
    assert_eq!(role.attributes.trust_policy, trust_before, "the trust is not narrowed without its revocation");
    assert!(
        percent_encoding::percent_decode_str(&role.inline_policies[POLICY_NAME])
            .decode_utf8()
            .unwrap()
            .contains("\"Sid\":\"Hxxx")
    );
}

#[tokio::test(start_paused = true)]
async fn revoke_keeps_a_persons_statement_in_the_revocations_policy() {
    let (w, clock) = clocked(2);
    let spec = revocation_spec("", "");
    run(&w, OperationKind::Apply, &spec).await;
    w.fake.with_account(&account(0), |s| s.put_inline_by_hand("Audit", POLICY_NAME, CONSOLE_AND_HAND));
    clock.set(T0 + 30 * MINUTE);
    let request = RevokeRequest { spec, accounts: None, idempotency_key: None, created_by: "test".into() };
    let started = w.engine.start_revoke(request).await.unwrap();
    let op = w.engine.wait(&started.id).await.unwrap();
    assert_eq!((op.state, op.counts.changed), (OperationState::Succeeded, 2), "{}", op.message);
    let hand = serde_json::json!({"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"});
    let statements = revocation_statements(&w, 0);
    assert_eq!((statements.len(), &statements[1]), (2, &hand), "{statements:?}");
    assert_eq!(iso8601(revocation_in(&w, 0).unwrap().issued_before), "2026-12-05T10:30:01Z");
    assert_eq!(revocation_statements(&w, 1).len(), 1);
    // The record shows the policy as it was and names what is kept.
    let rows = results(&w, &op.id).await;
    let row = rows.iter().find(|r| r.account_id == account(0)).unwrap();
    assert!(row.changes[0].before.contains("HandExtra"), "{:?}", row.changes[0]);
    assert!(row.changes[0].after.ends_with("kept as they are: HandExtra"), "{}", row.changes[0].after);
}

#[tokio::test(start_paused = true)]
async fn revoke_where_the_deny_would_not_fit_fails_there_as_iam_refuses_it_and_leaves_the_policy_as_it_was() {
    let (w, clock) = clocked(1);
    let spec = revocation_spec("", "");
    run(&w, OperationKind::Apply, &spec).await;
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"H{}","Effect":"Deny","Action":"iam:*","Resource":"*"}}]}}"#,
        "x".repeat(10_100)
    );
    w.fake.with_account(&account(0), |s| s.put_inline_by_hand("Audit", POLICY_NAME, &big));
    clock.advance(MINUTE);
    let request = RevokeRequest { spec, accounts: None, idempotency_key: None, created_by: "test".into() };
    let started = w.engine.start_revoke(request).await.unwrap();
    let op = w.engine.wait(&started.id).await.unwrap();
    assert_eq!((op.state, op.counts.failed), (OperationState::Failed, 1), "{}", op.message);
    let rows = results(&w, &op.id).await;
    let error = rows[0].error.as_ref().expect("refused");
    assert_eq!(error.aws_error_code.as_deref(), Some("LimitExceeded"), "{error:?}");
    let statements = revocation_statements(&w, 0);
    assert_eq!(statements.len(), 1, "the person's policy as it was: {statements:?}");
    assert!(statements[0]["Sid"].as_str().unwrap().starts_with("Hxxx"));
}
