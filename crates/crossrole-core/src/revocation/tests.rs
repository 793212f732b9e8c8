use super::*;
use crate::{
    AccessSpec, Partition,
    plan::{DesiredRole, plan, plan_delete, simulate},
};

const ACCOUNT: &str = "222233334444";
/// 2026-12-05T10:00:00.250Z.
const NOW: Millis = 1_796_464_800_250;
const HOUR: Millis = 3_600_000;

fn spec(trust: &str, extra_role: &str) -> AccessSpec {
    AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n{trust}{extra_role}targets:\n  \
         organizational_unit_ids: [r-abcd]\n"
    ))
    .unwrap()
}

fn desired(trust: &str) -> DesiredRole {
    DesiredRole::from_spec(&spec(trust, ""), Partition::Aws)
}

/// The role `trust` as IAM holds it after an apply.
fn applied(trust: &str) -> ObservedRole {
    let AccountPlan::Changes(c) = plan(&desired(trust), None) else { panic!("a create") };
    simulate(Partition::Aws, ACCOUNT, None, &c).unwrap()
}

fn summaries(p: &AccountPlan) -> Vec<String> {
    p.changes().iter().map(Change::summary).collect()
}

/// The plan from the role with `before` as trust to `after`, with revocation on.
fn replan(before: &str, after: &str, now: Millis) -> (ObservedRole, AccountPlan) {
    let observed = applied(before);
    let p = with_revocation(plan(&desired(after), Some(&observed)), Some(&observed), now, &Revoke::On);
    (observed, p)
}

const TWO: &str = "    account_ids: [\"111122223333\", \"444455556666\"]\n";
const ONE: &str = "    account_ids: [\"111122223333\"]\n";
const P_AB: &str = "    principal_arns: [\"arn:aws:iam::111122223333:role/A\", \"arn:aws:iam::111122223333:role/B\"]\n";
const P_A: &str = "    principal_arns: [\"arn:aws:iam::111122223333:role/A\"]\n";
const EXT_1: &str = "    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n";
const EXT_2: &str = "    external_id: Zp4nR8wQk3Lm7TyV2sXc9HdF5gJb\n";
const MFA: &str = "    require_mfa: true\n";
const ORG: &str = "    principal_org_id: o-abcdefghij\n";
const ORG_2: &str = "    principal_org_id: o-zyxwvutsrq\n";

#[test]
fn every_narrowing_revokes_once_the_trust_is_written() {
    let cases: [(&str, String, String); 8] = [
        ("an account removed", TWO.into(), ONE.into()),
        ("a principal removed", P_AB.into(), P_A.into()),
        ("an ExternalId added", ONE.into(), format!("{ONE}{EXT_1}")),
        ("an ExternalId changed", format!("{ONE}{EXT_1}"), format!("{ONE}{EXT_2}")),
        ("MFA required", ONE.into(), format!("{ONE}{MFA}")),
        ("an organization required", ONE.into(), format!("{ONE}{ORG}")),
        ("the organization changed", format!("{ONE}{ORG}"), format!("{ONE}{ORG_2}")),
        ("everything replaced", TWO.into(), P_A.into()),
    ];
    for (name, before, after) in cases {
        let (_, p) = replan(&before, &after, NOW);
        assert_eq!(
            summaries(&p),
            ["update trust policy", "revoke active sessions AWSRevokeOlderSessions"],
            "{name}: the revocation comes after the narrowing, so that no session issued before it escapes"
        );
        let Change::RevokeSessions { revocation, keep_for, before, reason, .. } = &p.changes()[1] else {
            unreachable!()
        };
        assert_eq!(revocation.issued_before, NOW - 250 + 1000, "{name}: rounded up to the second");
        assert_eq!(revocation.keep_until, revocation.issued_before + 3600 * 1000, "{name}: one hour, the default");
        assert_eq!(
            (*keep_for, before.as_deref(), reason.as_str()),
            (3600, None, "the trust policy allows less than before")
        );
    }
}

#[test]
fn the_instant_is_the_writes_not_the_plans() {
    let (_, p) = replan(TWO, ONE, NOW);
    let Change::RevokeSessions { revocation, keep_for, .. } = &p.changes()[1] else { panic!("{:?}", summaries(&p)) };
    // Written 90 s after the plan (the trust written in between): sessions issued up to the write are denied, and the
    // deny is kept for the role's longest session after that.
    let written = revocation.written_at(NOW + 90_000, *keep_for);
    assert_eq!(iso8601(written.issued_before), "2026-12-05T10:01:31Z");
    assert_eq!(written.keep_until, written.issued_before + HOUR);
    // Never earlier than planned (a console revocation merged at plan time stays), whatever the clock says.
    assert_eq!(revocation.written_at(NOW - HOUR, *keep_for), *revocation);
}

#[test]
fn widening_does_not_revoke() {
    let cases: [(&str, String, String); 6] = [
        ("an account added", ONE.into(), TWO.into()),
        ("a principal added", P_A.into(), P_AB.into()),
        ("an ExternalId removed", format!("{ONE}{EXT_1}"), ONE.into()),
        ("MFA no longer required", format!("{ONE}{MFA}"), ONE.into()),
        ("the organization condition removed", format!("{ONE}{ORG}"), ONE.into()),
        ("nothing changed", format!("{TWO}{EXT_1}{MFA}"), format!("{TWO}{EXT_1}{MFA}")),
    ];
    for (name, before, after) in cases {
        let (_, p) = replan(&before, &after, NOW);
        assert!(!p.changes().iter().any(|c| matches!(c, Change::RevokeSessions { .. })), "{name}: {:?}", summaries(&p));
        assert!(takes_away(p.changes()).is_none(), "{name}");
    }
}

#[test]
fn a_removed_role_is_revoked_first_and_its_deny_goes_last() {
    let mut observed = applied(ONE);
    observed.attributes.max_session_duration = 7200;
    observed.inline_policies.insert(
        "extra".into(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#
            .into(),
    );
    let p = with_revocation(plan_delete("audit", Some(&observed)), Some(&observed), NOW, &Revoke::On);
    assert_eq!(
        summaries(&p),
        [
            "revoke active sessions AWSRevokeOlderSessions",
            "delete inline policy extra",
            "delete inline policy AWSRevokeOlderSessions",
            "delete role Audit",
        ]
    );
    let Change::RevokeSessions { keep_for, .. } = &p.changes()[0] else { unreachable!() };
    assert_eq!(*keep_for, 7200, "the role's longest session");
    // As IAM would carry them out: the deny written is deleted with the rest, and the role goes.
    assert_eq!(simulate(Partition::Aws, ACCOUNT, Some(observed.clone()), p.changes()), None);
    // A role that already holds a revocation deletes it just before the role, after the others.
    let mut revoked = observed.clone();
    revoked.inline_policies.insert(POLICY_NAME.into(), Revocation::at(NOW - HOUR, 3600).document());
    let p = with_revocation(plan_delete("audit", Some(&revoked)), Some(&revoked), NOW, &Revoke::On);
    assert_eq!(
        summaries(&p),
        [
            "revoke active sessions AWSRevokeOlderSessions",
            "delete inline policy extra",
            "delete inline policy AWSRevokeOlderSessions",
            "delete role Audit",
        ]
    );
}

#[test]
fn a_longer_or_shorter_session_keeps_the_deny_for_the_longer() {
    for (before, after) in [(3600, 43_200), (43_200, 3600)] {
        let mut observed = applied(ONE);
        observed.attributes.max_session_duration = before;
        let mut d = desired(&format!("{ONE}{MFA}"));
        d.max_session_duration = after;
        let p = with_revocation(plan(&d, Some(&observed)), Some(&observed), NOW, &Revoke::On);
        let Some(Change::RevokeSessions { keep_for, revocation, .. }) =
            p.changes().iter().find(|c| matches!(c, Change::RevokeSessions { .. }))
        else {
            panic!("{:?}", summaries(&p))
        };
        assert_eq!(*keep_for, 43_200, "{before} → {after}");
        assert_eq!(revocation.keep_until - revocation.issued_before, 43_200_000);
    }
}

#[test]
fn the_deny_stays_until_the_longest_session_has_expired_then_a_plan_removes_it() {
    let (observed, p) = replan(TWO, ONE, NOW);
    let after = simulate(Partition::Aws, ACCOUNT, Some(observed), p.changes()).unwrap();
    let kept = Revocation::parse(&after.inline_policies[POLICY_NAME]).unwrap();
    let d = desired(ONE);
    let replanned = |at: Millis| with_revocation(plan(&d, Some(&after)), Some(&after), at, &Revoke::On);
    // Re-planned at once, a minute before the end and at the last millisecond before it: nothing to do.
    for at in [NOW, NOW + HOUR - 60_000, kept.keep_until - 1] {
        assert_eq!(replanned(at), AccountPlan::InSync, "at {at}");
    }
    // From the end on, the deny goes, and once it has, nothing is left to do.
    for at in [kept.keep_until, kept.keep_until + 24 * HOUR] {
        let p = replanned(at);
        assert_eq!(summaries(&p), ["delete inline policy AWSRevokeOlderSessions"]);
        let gone = simulate(Partition::Aws, ACCOUNT, Some(after.clone()), p.changes()).unwrap();
        assert_eq!(with_revocation(plan(&d, Some(&gone)), Some(&gone), at, &Revoke::On), AccountPlan::InSync);
    }
}

#[test]
fn opted_out_nothing_is_revoked_and_the_plan_says_why() {
    let observed = applied(TWO);
    let off = Revoke::Off("role.revoke_sessions_on_narrowing".into());
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &off);
    assert_eq!(summaries(&p), ["sessions not revoked", "update trust policy"]);
    let shown = p.changes()[0].shown(&crate::secret::Redactor::for_one_response(&mut rand::rng()));
    assert_eq!(
        shown.after,
        "the trust policy allows less than before: sessions issued before it stay valid until they expire, \
         because role.revoke_sessions_on_narrowing turned revocation off"
    );
    // It writes nothing: the role is as the narrowing alone leaves it, and a re-plan is empty.
    let after = simulate(Partition::Aws, ACCOUNT, Some(observed), p.changes()).unwrap();
    assert!(!after.inline_policies.contains_key(POLICY_NAME));
    assert_eq!(with_revocation(plan(&desired(ONE), Some(&after)), Some(&after), NOW, &off), AccountPlan::InSync);
    let destroyed = with_revocation(plan_delete("audit", Some(&after)), Some(&after), NOW, &off);
    assert_eq!(summaries(&destroyed), ["sessions not revoked", "delete role Audit"]);
    let widened = with_revocation(plan(&desired(TWO), Some(&applied(ONE))), Some(&applied(ONE)), NOW, &off);
    assert_eq!(summaries(&widened), ["update trust policy"], "nothing taken away: nothing to say");
}

#[test]
fn a_console_revocation_is_merged_and_the_later_instant_wins() {
    // What IAM's console writes: no Sid crossrole knows, an instant to the second.
    let console = |at: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{at}"}}}}}}]}}"#
        )
    };
    let mut observed = applied(TWO);
    // Later than crossrole's: its instant stays, kept the longest IAM session after it.
    observed.inline_policies.insert(POLICY_NAME.into(), console("2026-12-05T10:30:00Z"));
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &Revoke::On);
    let Change::RevokeSessions { revocation, before, .. } = &p.changes()[1] else { panic!() };
    assert_eq!(iso8601(revocation.issued_before), "2026-12-05T10:30:00Z");
    assert_eq!(iso8601(revocation.keep_until), "2026-12-05T22:30:00Z");
    assert!(before.as_deref().is_some_and(|b| b.contains("2026-12-05T10:30:00Z")));
    // Earlier than crossrole's: crossrole's instant, and still kept for the console's 12 hours.
    observed.inline_policies.insert(POLICY_NAME.into(), console("2026-12-05T09:00:00Z"));
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &Revoke::On);
    let Change::RevokeSessions { revocation, .. } = &p.changes()[1] else { panic!() };
    assert_eq!(iso8601(revocation.issued_before), "2026-12-05T10:00:01Z");
    assert_eq!(iso8601(revocation.keep_until), "2026-12-05T21:00:00Z");
    // A console revocation on an unchanged role is never removed before those 12 hours.
    let in_sync = applied(ONE);
    let mut with_console = in_sync.clone();
    with_console.inline_policies.insert(POLICY_NAME.into(), console("2026-12-05T09:00:00Z"));
    let at = |o: &ObservedRole, t: Millis| with_revocation(plan(&desired(ONE), Some(o)), Some(o), t, &Revoke::On);
    assert_eq!(at(&with_console, NOW + 10 * HOUR), AccountPlan::InSync);
    assert_eq!(summaries(&at(&with_console, NOW + 11 * HOUR)), ["delete inline policy AWSRevokeOlderSessions"]);
    // One crossrole cannot date is kept whatever the time.
    with_console.inline_policies.insert(POLICY_NAME.into(), r#"{"Version":"2012-10-17","Statement":[]}"#.into());
    assert_eq!(at(&with_console, NOW + 1000 * HOUR), AccountPlan::InSync);
}

#[test]
fn the_document_is_the_consoles_with_the_keep_until_in_its_sid_and_reads_back() {
    let r = Revocation::at(NOW, 3600);
    expect_test::expect![[r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossroleKeepUntil20261205T110001Z","Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T10:00:01Z"}}}]}"#]]
    .assert_eq(&r.document());
    let doc = PolicyDocument::parse(&r.document(), crate::policy::DocumentKind::Identity).expect("IAM's grammar");
    assert!(doc.statements()[0].sid.as_deref().unwrap().chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(Revocation::parse(&r.document()), Some(r));
    let encoded = percent_encoding::utf8_percent_encode(&r.document(), percent_encoding::NON_ALPHANUMERIC).to_string();
    assert_eq!(Revocation::parse(&encoded), Some(r), "as IAM hands it back");
    assert_eq!(Revocation::at(NOW - 250, 3600).issued_before, NOW - 250, "a whole second stays as it is");
}

#[test]
fn a_spec_may_not_name_its_own_policy_like_the_revocation() {
    let e = AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  trust:\n{ONE}  inline_policies:\n    AWSRevokeOlderSessions:\n      \
         Version: \"2012-10-17\"\n      Statement: [{{Effect: Deny, Action: \"*\", Resource: \"*\"}}]\n\
         targets:\n  organizational_unit_ids: [r-abcd]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("role.inline_policies[\"AWSRevokeOlderSessions\"]"), "{e}");
    assert!(e.contains("revocation"), "{e}");
}

#[test]
fn the_spec_field_turns_revocation_off_and_is_on_by_default() {
    assert!(spec(ONE, "").role.revoke_sessions_on_narrowing);
    assert!(!spec(ONE, "  revoke_sessions_on_narrowing: false\n").role.revoke_sessions_on_narrowing);
    let e = AccessSpec::from_yaml(&format!(
        "name: audit\nrole:\n  name: Audit\n  trust:\n{ONE}  revoke_sessions_on_narrowing: sometimes\n\
         targets:\n  organizational_unit_ids: [r-abcd]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("revoke_sessions_on_narrowing"), "{e}");
}

#[test]
fn a_hold_shortened_for_emulators_is_what_is_written_and_the_plan_says_so() {
    let observed = applied(TWO);
    let held = Revoke::HeldAtMost { secs: 5, by: "emulator_testing.revocation_hold".into() };
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &held);
    assert_eq!(summaries(&p), ["update trust policy", "revoke active sessions AWSRevokeOlderSessions"]);
    let Some(Change::RevokeSessions { keep_for, revocation, .. }) = p.changes().get(1) else { panic!("{p:?}") };
    assert_eq!((*keep_for, revocation.keep_until - revocation.issued_before), (5, 5_000));
    let shown = p.changes()[1].shown(&crate::secret::Redactor::for_one_response(&mut rand::rng()));
    assert_eq!(
        shown.after,
        "deny every session of the role issued before this write (aws:TokenIssueTime), kept 5s, because the trust \
         policy allows less than before (kept 5s, not the role's longest session of 3600s, by \
         emulator_testing.revocation_hold: for tests on emulators only)"
    );
    // The deny written carries the shortened keep-until, which a later plan reads back and goes by.
    let after = simulate(Partition::Aws, ACCOUNT, Some(observed.clone()), p.changes()).unwrap();
    let kept = Revocation::parse(&after.inline_policies[POLICY_NAME]).unwrap();
    assert_eq!(iso8601(kept.keep_until), "2026-12-05T10:00:06Z");
    let replanned = |at: Millis| with_revocation(plan(&desired(ONE), Some(&after)), Some(&after), at, &held);
    assert_eq!(replanned(kept.keep_until - 1), AccountPlan::InSync);
    assert_eq!(summaries(&replanned(kept.keep_until)), ["delete inline policy AWSRevokeOlderSessions"]);
    // A hold no shorter than the role's sessions changes nothing, and says nothing.
    let long = Revoke::HeldAtMost { secs: 7200, by: "emulator_testing.revocation_hold".into() };
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &long);
    let Some(Change::RevokeSessions { keep_for, reason, .. }) = p.changes().get(1) else { panic!("{p:?}") };
    assert_eq!((*keep_for, reason.as_str()), (3600, "the trust policy allows less than before"));
}

/// What IAM's console writes (no Sid crossrole knows), and a statement a person added beside it.
const CONSOLE_AND_HAND: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}},{"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#;

fn encoded(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The statements of the policy `name` on `role`, as JSON values.
fn statements(role: &ObservedRole) -> Vec<serde_json::Value> {
    let doc = percent_encoding::percent_decode_str(&role.inline_policies[POLICY_NAME]).decode_utf8().unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    v["Statement"].as_array().unwrap().clone()
}

#[test]
fn a_persons_statements_in_the_policy_are_kept_when_revoking_and_when_the_revocation_goes() {
    let hand: serde_json::Value =
        serde_json::json!({"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"});
    let mut observed = applied(TWO);
    observed.inline_policies.insert(POLICY_NAME.into(), encoded(CONSOLE_AND_HAND));
    let p = with_revocation(plan(&desired(ONE), Some(&observed)), Some(&observed), NOW, &Revoke::On);
    assert_eq!(summaries(&p), ["update trust policy", "revoke active sessions AWSRevokeOlderSessions"]);
    let Change::RevokeSessions { revocation, others, .. } = &p.changes()[1] else { panic!("{p:?}") };
    assert_eq!(others.named(), ["HandExtra"]);
    // The plan says the person's statement stays.
    let shown = p.changes()[1].shown(&crate::secret::Redactor::for_one_response(&mut rand::rng()));
    assert!(
        shown.after.ends_with("; the policy's other statements are kept as they are: HandExtra"),
        "{}",
        shown.after
    );
    assert!(shown.before.contains("iam:*"), "the policy as it is: {}", shown.before);

    // Written: crossrole's revocation (the console's merged into it: the later instant) and the person's statement as
    // it was written; the console's own is gone, its instant earlier.
    let after = simulate(Partition::Aws, ACCOUNT, Some(observed), p.changes()).unwrap();
    let written = statements(&after);
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(written[1], hand);
    assert_eq!(Revocation::parse(&after.inline_policies[POLICY_NAME]), Some(*revocation));
    assert_eq!(iso8601(revocation.issued_before), "2026-12-05T10:00:01Z");
    assert_eq!(iso8601(revocation.keep_until), "2026-12-05T21:00:00Z", "the console's 12 hours, the later end");
    let doc = PolicyDocument::parse_observed(&after.inline_policies[POLICY_NAME]).unwrap();
    assert!(doc.statements().iter().any(|s| s.action.as_ref().is_some_and(|a| a.contains("iam:*"))));

    // Kept while sessions issued before it may last; then only the revocation goes, the person's statement stays,
    // and once it is alone nothing more is done (it is not crossrole's to remove).
    let d = desired(ONE);
    let at = |o: &ObservedRole, t: Millis| with_revocation(plan(&d, Some(o)), Some(o), t, &Revoke::On);
    assert_eq!(at(&after, revocation.keep_until - 1), AccountPlan::InSync);
    let removal = at(&after, revocation.keep_until);
    assert_eq!(summaries(&removal), ["put inline policy AWSRevokeOlderSessions"]);
    let shown = removal.changes()[0].shown(&crate::secret::Redactor::for_one_response(&mut rand::rng()));
    assert!(shown.before.contains("aws:TokenIssueTime") && !shown.after.contains("aws:TokenIssueTime"), "{shown:?}");
    assert!(shown.before.contains("HandExtra"), "the policy as the person wrote it: {}", shown.before);
    let left = simulate(Partition::Aws, ACCOUNT, Some(after), removal.changes()).unwrap();
    assert_eq!(statements(&left), [hand]);
    assert_eq!(at(&left, revocation.keep_until + 1000 * HOUR), AccountPlan::InSync);

    // A later narrowing revokes again beside it, without the removal's rewrite.
    let again =
        with_revocation(plan(&desired(&format!("{ONE}{MFA}")), Some(&left)), Some(&left), NOW + 20 * HOUR, &Revoke::On);
    let Change::RevokeSessions { others, .. } =
        again.changes().iter().find(|c| c.kind() == crate::ops::ChangeKind::RevokeSessions).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(others.named(), ["HandExtra"]);

    // Without a person's statement, the policy is deleted as before.
    let only = applied(ONE);
    let mut console_only = only.clone();
    console_only.inline_policies.insert(
        POLICY_NAME.into(),
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}}}"#.into(),
    );
    assert_eq!(summaries(&at(&console_only, NOW + 12 * HOUR)), ["delete inline policy AWSRevokeOlderSessions"]);
}

#[test]
fn a_statement_that_only_looks_like_a_revocation_is_a_persons() {
    let cases = [
        // Another condition beside the instant: it denies less than a revocation, only from that address.
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
        // Not every action.
        r#"{"Effect":"Deny","Action":["iam:*"],"Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}}"#,
        // Every action but one.
        r#"{"Effect":"Deny","Action":["*","iam:GetRole"],"Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}}"#,
        // Not every resource.
        r#"{"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::x","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}}"#,
        // An allow.
        r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}}"#,
    ];
    for statement in cases {
        // Written without a Version, as one statement rather than a list.
        let doc = format!(r#"{{"Statement":{statement}}}"#);
        let (held, others) = split(&encoded(&doc));
        assert_eq!(held, None, "{statement}");
        assert_eq!(others.named(), ["statement 1 (no Sid)"], "{statement}");
        let r = Revocation::at(NOW, 3600);
        let v: serde_json::Value = serde_json::from_str(&r.document_keeping(&others)).unwrap();
        assert!(v.get("Version").is_none(), "a Version left out stays left out: {v}");
        assert_eq!(v["Statement"][1], serde_json::from_str::<serde_json::Value>(statement).unwrap());
        assert_eq!(Revocation::parse(&r.document_keeping(&others)), Some(r));
        // Never removed by crossrole, whatever the time.
        let mut o = applied(ONE);
        o.inline_policies.insert(POLICY_NAME.into(), doc.clone());
        let p = with_revocation(plan(&desired(ONE), Some(&o)), Some(&o), NOW + 1000 * HOUR, &Revoke::On);
        assert_eq!(p, AccountPlan::InSync, "{statement}");
    }
}

#[test]
fn a_revocation_that_would_take_the_inline_policies_over_iams_limit_is_refused_when_planned() {
    // A person's statement of `pad` characters' worth of Sid... (a Sid is letters and digits only).
    let with_hand = |pad: usize| {
        let mut o = applied(TWO);
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"H{}","Effect":"Deny","Action":"iam:*","Resource":"*"}}]}}"#,
            "x".repeat(pad)
        );
        o.inline_policies.insert(POLICY_NAME.into(), encoded(&doc));
        o
    };
    let planned = |o: &ObservedRole| with_revocation(plan(&desired(ONE), Some(o)), Some(o), NOW, &Revoke::On);
    // What is written, counted as IAM counts it (the document is compact: no whitespace to leave out).
    let written = |p: &AccountPlan| match p.changes().iter().find(|c| matches!(c, Change::RevokeSessions { .. })) {
        Some(Change::RevokeSessions { revocation, others, .. }) => revocation.document_keeping(others).chars().count(),
        _ => panic!("{p:?}"),
    };
    let base = written(&planned(&with_hand(0)));
    let fits = with_hand(INLINE_POLICIES_SIZE - base);
    let p = planned(&fits);
    assert_eq!(written(&p), INLINE_POLICIES_SIZE);
    assert_eq!(over_quota(&p, Some(&fits)), None, "exactly at the limit");
    let over = with_hand(INLINE_POLICIES_SIZE - base + 1);
    let p = planned(&over);
    assert_eq!(written(&p), INLINE_POLICIES_SIZE + 1);
    let why = over_quota(&p, Some(&over)).expect("one character over");
    assert!(why.contains("10241 characters") && why.contains("10240"), "{why}");
    assert!(why.contains(&format!("H{}", "x".repeat(8))) && why.contains("revoke_sessions_on_narrowing"), "{why}");
    // The role's other inline policies (the spec's) count too.
    let with_inline = DesiredRole::from_spec(
        &spec(
            ONE,
            "  inline_policies:\n    Other:\n      Version: \"2012-10-17\"\n      \
             Statement: [{Effect: Deny, Action: \"s3:*\", Resource: \"*\"}]\n",
        ),
        Partition::Aws,
    );
    let p = with_revocation(plan(&with_inline, Some(&fits)), Some(&fits), NOW, &Revoke::On);
    assert_eq!(written(&p), INLINE_POLICIES_SIZE);
    assert!(over_quota(&p, Some(&fits)).is_some_and(|w| w.contains("characters together")), "{p:?}");
    // A plan that writes no revocation is never refused for it.
    let unchanged = with_revocation(plan(&desired(TWO), Some(&over)), Some(&over), NOW, &Revoke::On);
    assert_eq!(over_quota(&unchanged, Some(&over)), None);
}
