//! The engine against the in-memory AWS, on a paused clock: rollouts end to end, with their failure modes.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::{Rate, Rates},
    fake::{Failure, FakeConfig, Latency},
};
use crossrole_engine::StartRequest;
use crossrole_store::{Journal, SqliteJournal};

#[tokio::test(start_paused = true)]
async fn apply_creates_everywhere_and_reapply_writes_nothing() {
    let w = world(12);
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    let counts = op.counts;
    assert_eq!((counts.total, counts.changed, counts.skipped), (13, 12, 1));
    for i in 0..12 {
        let role = w.fake.role(&account(i), "Audit").unwrap();
        assert_eq!(role.managed_policy_arns.len(), 1);
        assert_eq!(role.attributes.tags.get("crossrole:spec").map(String::as_str), Some("audit"));
    }
    // Results are kept in target order; the suspended account is reported skipped with its reason.
    let r = results(&w, &op.id).await;
    assert_eq!(
        r.iter().map(|r| r.account_id.clone()).take(12).collect::<Vec<_>>(),
        (0..12).map(account).collect::<Vec<_>>()
    );
    assert_eq!(r[12].outcome, Outcome::Skipped);
    assert_eq!(r[12].error.as_ref().unwrap().message, "account is SUSPENDED");
    assert_eq!(r[12].action, None, "a skipped account is not acted on");
    assert!(r[..12].iter().all(|r| r.action == Some(Action::Ensure)));
    // Verified: the trusted side assumed each role with the ExternalId and landed in the account.
    assert!(
        r[..12].iter().all(|r| r.verify.as_ref().is_some_and(|v| v.passed && v.assumed_account_id == r.account_id))
    );
    // The trusted side has the AssumeRole policy, attached to alice and the auditors.
    let grant = w.fake.policy(SECURITY, "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit").unwrap();
    assert_eq!(grant.attachments.len(), 2);
    assert!(grant.document.contains("arn:aws:iam::200000000011:role/crossrole/Audit"));
    // AWS calls are counted on the operation.
    assert_eq!(op.aws_calls.get("iam:CreateRole"), Some(&12));

    w.fake.reset_counters();
    let again = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(again.counts.unchanged, 12);
    assert_eq!(w.fake.iam_writes(), 0, "a no-op re-apply makes no IAM write: {:?}", w.fake.served());
}

#[tokio::test(start_paused = true)]
async fn a_missing_bootstrap_role_fails_that_account_only() {
    let w = world(8);
    w.fake.with_account(&account(3), |a| a.remove_role("OrganizationAccountAccessRole"));
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(op.message, "1 account failed");
    let r = results(&w, &op.id).await;
    let failed: Vec<&AccountResult> = r.iter().filter(|r| r.outcome == Outcome::Failed).collect();
    assert_eq!(failed.len(), 1);
    let e = failed[0].error.as_ref().unwrap();
    assert_eq!((e.code, e.aws_error_code.as_deref()), (ErrorCode::BootstrapRoleUnavailable, Some("AccessDenied")));
    assert!(
        e.message.contains(
            "bootstrap role OrganizationAccountAccessRole in account 200000000003 is missing or not assumable"
        )
    );
    assert_eq!(op.counts.changed, 7);
}

#[tokio::test(start_paused = true)]
async fn a_bootstrap_role_deleted_after_its_session_was_cached_is_assumed_afresh() {
    let w = world(4);
    let first = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(first.state, OperationState::Succeeded);
    // Deleted while crossroled still holds an unexpired session of it: IAM denies that session everything.
    w.fake.with_account(&account(2), |a| a.remove_role("OrganizationAccountAccessRole"));
    w.fake.reset_counters();
    let op = run(&w, OperationKind::Apply, &spec()).await;
    let r = results(&w, &op.id).await;
    let e = r.iter().find(|r| r.account_id == account(2)).unwrap().error.clone().unwrap();
    assert_eq!(e.code, ErrorCode::BootstrapRoleUnavailable);
    assert!(e.message.contains("is missing or not assumable"), "{}", e.message);
    // Only that account assumed its role again; the others kept their sessions.
    assert_eq!(w.fake.served().get("sts:AssumeRole").copied().unwrap_or(0), 1, "{:?}", w.fake.served());
    // Put back, it is assumed again and used.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{MGMT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    w.fake.with_account(&account(2), |a| a.create_role_by_hand(&account(2), "OrganizationAccountAccessRole", &trust));
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
}

#[tokio::test(start_paused = true)]
async fn past_the_failure_tolerance_nothing_new_starts() {
    let w = world(20);
    for i in [0, 1] {
        w.fake.with_account(&account(i), |a| a.remove_role("OrganizationAccountAccessRole"));
    }
    let op = run(&w, OperationKind::Apply, &spec_with("  failure_tolerance: 1\n")).await;
    assert_eq!(op.state, OperationState::Failed);
    assert!(op.message.starts_with("failure tolerance (1) exceeded"), "{}", op.message);
    let c = op.counts;
    assert_eq!(c.failed, 2);
    // In-flight accounts finished; the rest never started.
    assert!(c.not_started >= 10, "{c:?}");
    assert_eq!(c.changed + c.failed + c.not_started + c.skipped, 21);
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let w = world(30);
    let op = run(&w, OperationKind::Apply, &spec_with("  failure_tolerance: 0\n  verify: {enabled: false}\n")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert_eq!(w.fake.max_accounts_in_flight(), 5);
    // A percentage is of the targets: while they are still being found, of those the organization read before
    // selected (here by a plan), or of those found so far when there is none (never more than of all of them).
    let limited = spec_with("  max_concurrency: 20%\n  verify: {enabled: false}\n");
    let w = world(30);
    w.engine.plan(&limited).await.unwrap();
    run(&w, OperationKind::Apply, &limited).await;
    assert_eq!(w.fake.max_accounts_in_flight(), 6, "20% of 31 targets");
    let w = world(30);
    run(&w, OperationKind::Apply, &limited).await;
    assert!((1..=6).contains(&w.fake.max_accounts_in_flight()), "{}", w.fake.max_accounts_in_flight());
}

#[tokio::test(start_paused = true)]
async fn drift_is_planned_exactly_and_repaired() {
    let w = world(4);
    run(&w, OperationKind::Apply, &spec()).await;
    let target = account(2);
    w.fake.with_account(&target, |a| {
        a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess");
        a.set_trust_by_hand("Audit", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#);
    });
    w.fake.reset_counters();
    let plan = w.engine.plan(&spec()).await.unwrap();
    assert_eq!(w.fake.iam_writes(), 0, "a plan changes nothing");
    let drifted: Vec<&AccountPlanView> = plan.accounts.iter().filter(|a| !a.changes.is_empty()).collect();
    assert_eq!(drifted.len(), 1);
    assert_eq!(drifted[0].account_id, target);
    let kinds: Vec<ChangeKind> = drifted[0].changes.iter().map(|c| c.kind).collect();
    // The trust opened to anyone by hand is narrowed back: the sessions issued meanwhile (and until the narrowed
    // trust is written) are revoked once it is.
    assert_eq!(kinds, [ChangeKind::DetachManagedPolicy, ChangeKind::UpdateTrustPolicy, ChangeKind::RevokeSessions]);

    let op = run(&w, OperationKind::Apply, &spec()).await;
    let r = results(&w, &op.id).await;
    let changed: Vec<&AccountResult> = r.iter().filter(|r| r.outcome == Outcome::Changed).collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        kinds,
        "apply did exactly what the plan said"
    );
    assert_eq!(w.engine.plan(&spec()).await.unwrap().total_changes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_role_crossrole_does_not_own_is_untouched_and_reported() {
    let w = world(3);
    let target = account(1);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#;
    w.fake.with_account(&target, |a| a.create_role_by_hand(&target, "Audit", trust));
    let before = w.fake.role(&target, "Audit");
    let op = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded);
    let r = results(&w, &op.id).await;
    let skipped = r.iter().find(|r| r.account_id == target).unwrap();
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert_eq!(skipped.error.as_ref().unwrap().code, ErrorCode::NotOwned);
    assert_eq!(w.fake.role(&target, "Audit"), before);
    // Destroy leaves it alone too.
    run(&w, OperationKind::Destroy, &spec()).await;
    assert_eq!(w.fake.role(&target, "Audit"), before);
}

#[tokio::test(start_paused = true)]
async fn prune_removes_the_role_where_the_account_left_the_selection() {
    let w = world(4);
    let pruning = spec_with("  prune: true\n");
    run(&w, OperationKind::Apply, &pruning).await;
    let moved = account(1);
    w.fake.with_tree(|t| {
        t.accounts.get_mut(&moved).unwrap().parent_id = "ou-root-sandboxx".into();
        t.units.get_mut("ou-root-prodxxxx").unwrap().accounts.retain(|a| *a != moved);
        t.units.get_mut("ou-root-sandboxx").unwrap().accounts.push(moved.clone());
    });
    let op = run(&w, OperationKind::Apply, &pruning).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(w.fake.role(&moved, "Audit").is_none());
    let r = results(&w, &op.id).await;
    let removed = r.iter().find(|r| r.account_id == moved).unwrap();
    assert_eq!(removed.action, Some(Action::Remove));
    // The grant no longer names it.
    let grant = w.fake.policy(SECURITY, "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit").unwrap();
    assert!(!grant.document.contains(&moved));
    // Without prune, an account that leaves keeps its role.
    let w = world(4);
    run(&w, OperationKind::Apply, &spec()).await;
    w.fake.with_tree(|t| t.accounts.get_mut(&account(1)).unwrap().parent_id = "ou-root-sandboxx".into());
    run(&w, OperationKind::Apply, &spec()).await;
    assert!(w.fake.role(&account(1), "Audit").is_some());
}

#[tokio::test(start_paused = true)]
async fn destroy_removes_everything_crossrole_created_and_nothing_else() {
    let w = world(5);
    run(&w, OperationKind::Apply, &spec()).await;
    let op = run(&w, OperationKind::Destroy, &spec()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    for i in 0..5 {
        assert_eq!(w.fake.role_names(&account(i)), ["OrganizationAccountAccessRole"]);
    }
    assert!(w.fake.policy(SECURITY, "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit").is_none());
    assert!(w.journal.placements("audit").await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_new_accounts() {
    let w = world(40);
    let op = w.engine.start(start(OperationKind::Apply, &spec_with("  max_concurrency: 2\n"))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cancelling = w.engine.cancel(&op.id).await.unwrap();
    assert_eq!(cancelling.state, OperationState::Cancelling);
    let done = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Cancelled);
    let c = done.counts;
    assert!(c.not_started > 20, "{c:?}");
    assert!(matches!(w.engine.cancel(&op.id).await, Err(crossrole_engine::Error::FailedPrecondition(_))));
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_operation_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let mut config = FakeConfig::default();
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(100), jitter: Duration::ZERO });
    }
    let w = world_with(30, config, Rates::UNLIMITED, journal.clone());
    let op = w.engine.start(start(OperationKind::Apply, &spec_with("  max_concurrency: 3\n"))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Stop as for SIGTERM: in-flight accounts stop after their current call, state is persisted.
    w.engine.shutdown(Duration::from_secs(30)).await;
    let mid = w.engine.operation(&op.id).await.unwrap();
    assert_eq!(mid.state, OperationState::Running, "an interrupted operation stays unfinished");
    let done_before = mid.counts.changed;
    assert!(done_before > 0 && done_before < 30, "{done_before}");

    // A new crossroled on the same journal and the same AWS.
    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let c = done.counts;
    assert_eq!(c.changed + c.unchanged, 30);
    assert_eq!(w.fake.served().get("iam:CreateRole"), Some(&30), "every role created exactly once");
    // The event log has no gaps and no duplicates.
    let events = engine.events(&op.id, 0, 100_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_crash_mid_account_is_rerun_safely() {
    // The journal as a crash left it: an apply of the spec, running, with some accounts finished, one running, the
    // rest pending (the rows of an apply that ran to its end, rewound; a finished operation never changes again).
    let w = world(6);
    let first = run(&w, OperationKind::Apply, &spec()).await;
    let journal = w.journal.clone();
    let sealed = crossrole_engine::sealed(&RawSpec::from(&spec()), &w.config.journal_key, "crashed").unwrap();
    journal
        .create_operation(crossrole_store::NewOperation {
            id: "crashed".into(),
            kind: records::stored_kind(OperationKind::Apply),
            spec_name: "audit".into(),
            spec: records::encode_operation_spec(&sealed, None),
            idempotency_key: None,
            request_fingerprint: String::new(),
            binding_name: None,
            created_by: "test".into(),
            create_time: first.create_time,
            state: records::stored_state(OperationState::Running),
            dry_run: false,
        })
        .await
        .unwrap();
    let rows = journal.list_accounts(&first.id, &[], 100, None).await.unwrap();
    let rewound: Vec<_> = rows
        .into_iter()
        .map(|mut r| {
            if (3..6).contains(&r.index) {
                r.outcome = records::stored_outcome(if r.index == 3 { Outcome::Running } else { Outcome::Pending });
            }
            r
        })
        .collect();
    journal.put_accounts("crashed", rewound).await.unwrap();
    w.fake.with_account(&account(3), |a| a.remove_role("Audit"));
    w.fake.reset_counters();
    let engine = w.restarted();
    engine.resume().await.unwrap();
    let done = engine.wait("crashed").await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!(
        w.fake.served().get("iam:CreateRole"),
        Some(&1),
        "only the account whose role is missing is created again"
    );
    assert_eq!(w.fake.served().get("iam:GetRole"), Some(&3), "only unfinished accounts are read again");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_absorbed_and_reported() {
    // IAM's quota is per account: crossrole set too high for it is throttled in every account, and adapts.
    let mut config = FakeConfig::default();
    config.throttle.insert(Service::Iam, Rate { per_second: 3.0, burst: 2 });
    config.latency.insert(Service::Iam, Latency { base: Duration::from_millis(20), jitter: Duration::ZERO });
    let w = world_with(
        25,
        config,
        Rates { iam: Rate { per_second: 100.0, burst: 50 }, ..Rates::UNLIMITED },
        Arc::new(SqliteJournal::in_memory().unwrap()),
    );
    let op = run(&w, OperationKind::Apply, &spec_with("  max_concurrency: 25\n")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    assert!(w.fake.throttled() > 0);
    assert_eq!(op.throttled_calls, w.fake.throttled());
    let events = w.engine.events(&op.id, 0, 100_000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::CallRetried { aws_error_code, .. } if aws_error_code == "Throttling"))
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_fail_the_account_with_the_aws_code() {
    let w = world(3);
    w.fake.inject(Failure {
        service: Service::Iam,
        operation: Some("PutRolePolicy".into()),
        account: Some(account(1)),
        code: "MalformedPolicyDocument".into(),
        times: None,
    });
    let op = run(&w, OperationKind::Apply, &spec()).await;
    let r = results(&w, &op.id).await;
    let failed = r.iter().find(|r| r.account_id == account(1)).unwrap();
    assert_eq!(failed.error.as_ref().unwrap().aws_error_code.as_deref(), Some("MalformedPolicyDocument"));
    assert_eq!(failed.error.as_ref().unwrap().phase, Phase::Apply);
    assert_eq!(failed.changes.len(), 2, "what was applied before the failure is reported");
}

#[tokio::test(start_paused = true)]
async fn idempotency_keys() {
    let w = world(2);
    let mut req = start(OperationKind::Apply, &spec());
    req.idempotency_key = Some("deploy-42".into());
    let a = w.engine.start(req.clone()).await.unwrap();
    let b = w.engine.start(req.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    let mut other = req.clone();
    other.spec.role.description = "changed".into();
    let refused = w.engine.start(other).await.unwrap_err();
    assert!(
        matches!(&refused, crossrole_engine::Error::IdempotencyKeyReused { field, .. } if field == "spec"),
        "{refused:?}"
    );
    w.engine.wait(&a.id).await.unwrap();
}

/// The operations of the test spec, newest first.
async fn operation_ids(w: &World) -> Vec<String> {
    let (ops, _) = w.engine.list_operations(&Default::default(), 100, "").await.unwrap();
    ops.into_iter().filter_map(|o| o.read().map(|o| o.id)).collect()
}

#[tokio::test(start_paused = true)]
async fn the_same_idempotency_key_with_another_end_is_refused_naming_the_field_and_doing_nothing() {
    use crossrole_core::{expiry::RawEnd, spec::RawDuration};
    let w = world(2);
    let end = |seconds| RawEnd { expires_in: Some(RawDuration { seconds, nanos: 0 }), expires_at: None };
    let keyed =
        |end| StartRequest { idempotency_key: Some("deploy-7".into()), end, ..start(OperationKind::Apply, &spec()) };
    let first = w.engine.start(keyed(end(3600))).await.unwrap();
    w.engine.wait(&first.id).await.unwrap();
    // The same request later (the response was lost): the same duration asked is the same request.
    tokio::time::advance(Duration::from_secs(90)).await;
    assert_eq!(w.engine.start(keyed(end(3600))).await.unwrap().id, first.id);
    let before = operation_ids(&w).await;
    let at = RawEnd { expires_at: Some(4_000_000_000_000), expires_in: None };
    for (other, field, says) in [
        (end(7200), "expires_in", "the first request asked for expires_in 3600s, this one for expires_in 7200s"),
        (at, "expires_at", "this one for expires_at 2096-10-02T07:06:40Z"),
        (RawEnd::default(), "expires_in", "this one for no end"),
    ] {
        let refused = w.engine.start(keyed(other)).await.unwrap_err();
        let crossrole_engine::Error::IdempotencyKeyReused { field: named, message } = &refused else {
            panic!("{refused:?}")
        };
        assert_eq!(named, field, "{message}");
        assert!(message.contains("idempotency_key \"deploy-7\"") && message.contains(says), "{message}");
    }
    assert_eq!(operation_ids(&w).await, before, "nothing was started");
    // Planned again and confirmed (as the CLI does before each apply), with another end: the end is named.
    let plan = w.engine.plan(&spec()).await.unwrap();
    let confirmed = crossrole_engine::ConfirmedPlan {
        fingerprint: plan.fingerprint.clone(),
        audience: crossrole_engine::Audience::Trusted,
    };
    let replanned = StartRequest { confirmed: Some(confirmed), ..keyed(end(7200)) };
    let refused = w.engine.start(replanned).await.unwrap_err();
    assert!(
        matches!(&refused, crossrole_engine::Error::IdempotencyKeyReused { field, .. } if field == "expires_in"),
        "{refused:?}"
    );
    // A request without a key, or with a new one, is a new apply.
    let again = w.engine.start(StartRequest { idempotency_key: Some("deploy-8".into()), ..keyed(end(7200)) });
    assert_ne!(again.await.unwrap().id, first.id);
}

#[tokio::test(start_paused = true)]
async fn events_replay_in_order_and_match_the_live_stream() {
    let w = world(6);
    let op = w.engine.start(start(OperationKind::Apply, &spec())).await.unwrap();
    let mut live = w.engine.subscribe(&op.id).unwrap();
    let mut seen = Vec::new();
    loop {
        let e = live.recv().await.unwrap();
        seen.push((*e).clone());
        if e.is_final() {
            break;
        }
    }
    let stored = w.engine.events(&op.id, 0, 10_000).await.unwrap();
    let first_live = seen[0].sequence as usize;
    assert_eq!(&stored[first_live - 1..], &seen[..]);
    assert_eq!(stored.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=stored.len() as u64).collect::<Vec<_>>());
    let per_account = stored.iter().filter(|e| matches!(e.event, Event::AccountFinished { .. })).count();
    assert_eq!(per_account, 6);
    let kinds: BTreeMap<&str, usize> = stored.iter().fold(BTreeMap::new(), |mut m, e| {
        let k = match &e.event {
            Event::StateChanged { .. } => "state",
            Event::TargetsResolved { .. } => "targets",
            Event::PhaseStarted { .. } => "phase",
            Event::ChangeApplied { .. } => "change",
            Event::CallRetried { .. } => "retry",
            Event::AccountFinished { .. } => "finished",
        };
        *m.entry(k).or_default() += 1;
        m
    });
    // 6 accounts × 3 changes + 3 grant changes.
    assert_eq!(kinds.get("change"), Some(&21));
    assert_eq!(kinds.get("targets"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn operations_on_the_same_roles_wait_for_each_other() {
    let w = world(6);
    let a = w.engine.start(start(OperationKind::Apply, &spec())).await.unwrap();
    let mut other = start(OperationKind::Apply, &spec());
    other.idempotency_key = Some("second".into());
    let b = w.engine.start(other).await.unwrap();
    let (a, b) = (w.engine.wait(&a.id).await.unwrap(), w.engine.wait(&b.id).await.unwrap());
    assert_eq!(a.state, OperationState::Succeeded, "{}", a.message);
    assert_eq!(b.state, OperationState::Succeeded, "{}", b.message);
    assert_eq!(w.fake.served().get("iam:CreateRole"), Some(&6), "never two writers on one role");
    assert_eq!(a.counts.changed + b.counts.changed, 6);
}

#[tokio::test(start_paused = true)]
async fn verify_reports_conformance_and_both_checks() {
    let w = world(3);
    run(&w, OperationKind::Apply, &spec()).await;
    w.fake.with_account(&account(0), |a| a.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess"));
    w.fake.with_account(&account(1), |a| {
        a.attach_by_hand("Audit", "x");
        a.remove_role("Audit")
    });
    let v = w.engine.verify(&spec()).await.unwrap();
    let c: Vec<Conformance> = v.accounts.iter().map(|a| a.conformance).collect();
    assert_eq!(c, [Conformance::Drifted, Conformance::Missing, Conformance::InSync]);
    let ok = &v.accounts[2];
    assert_eq!(ok.assume.outcome, CheckOutcome::Passed);
    assert_eq!(ok.assume.assumed_account_id, account(2));
    assert!(ok.trust_checks.iter().all(|t| t.outcome == CheckOutcome::Passed), "{:?}", ok.trust_checks);
    assert_eq!(ok.trust_checks.len(), 3);
    assert_eq!(v.skipped.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bootstrap_role_without_iam_permissions_is_named() {
    let w = world(3);
    w.fake.inject(crossrole_aws::fake::Failure {
        service: Service::Iam,
        operation: None,
        account: Some(account(1)),
        code: "AccessDenied".into(),
        times: None,
    });
    let op = run(&w, OperationKind::Apply, &spec()).await;
    let r = results(&w, &op.id).await;
    assert!(w.fake.role(&account(1), "Audit").is_none());
    let e = r.iter().find(|r| r.account_id == account(1)).unwrap().error.clone().unwrap();
    assert_eq!(e.code, ErrorCode::BootstrapRoleUnavailable);
    assert!(
        e.message.starts_with("bootstrap role OrganizationAccountAccessRole in account 200000000001 is not usable"),
        "{}",
        e.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_plan_shows_the_accounts_skips_and_reasons_the_apply_then_has() {
    // A pruning spec: one account moved out of the selection (to clean up), one suspended in it (skipped), one that
    // left the organization after the spec was applied there (skipped, with its own reason).
    let w = world(5);
    let pruning = spec_with("  prune: true\n");
    run(&w, OperationKind::Apply, &pruning).await;
    let moved = account(1);
    w.fake.with_tree(|t| {
        t.accounts.get_mut(&moved).unwrap().parent_id = "ou-root-sandboxx".into();
        t.units.get_mut("ou-root-prodxxxx").unwrap().accounts.retain(|a| *a != moved);
        t.units.get_mut("ou-root-sandboxx").unwrap().accounts.push(moved.clone());
        let gone = account(4);
        t.accounts.remove(&gone);
        t.units.get_mut("ou-root-prodxxxx").unwrap().accounts.retain(|a| *a != gone);
    });
    w.engine.discovery().tree(&Default::default(), true).await.unwrap();

    let plan = w.engine.plan(&pruning).await.unwrap();
    let op = run(&w, OperationKind::Apply, &pruning).await;
    let r = results(&w, &op.id).await;
    let worked: Vec<&str> = r.iter().filter(|r| r.outcome != Outcome::Skipped).map(|r| r.account_id.as_str()).collect();
    let planned: Vec<&str> = plan.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(planned, worked, "the same targets, in the same order");
    assert!(planned.contains(&moved.as_str()), "the account to clean up is planned");
    let skipped: Vec<(&str, &str)> = r
        .iter()
        .filter(|r| r.outcome == Outcome::Skipped)
        .map(|r| (r.account_id.as_str(), r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")))
        .collect();
    let planned_skips: Vec<(&str, &str)> =
        plan.skipped.iter().map(|s| (s.account.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(planned_skips, skipped, "the same skips, for the same reasons");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_plan_of_accounts_in_sync_reads_only_what_it_compares() {
    let w = world(10);
    run(&w, OperationKind::Apply, &spec()).await;
    w.fake.reset_counters();
    let plan = w.engine.plan(&spec()).await.unwrap();
    assert!(plan.accounts.iter().all(|a| a.changes.is_empty()), "all in sync");
    let served = w.fake.served();
    let per_account = |call: &str| served.get(call).copied().unwrap_or(0) as f64 / 10.0;
    // Sessions outlive operations (no AssumeRole); the organization is cached; per account one GetRole, one listing
    // of each kind of policy, and one read per inline policy (the spec has one).
    assert_eq!(per_account("sts:AssumeRole"), 0.0, "{served:?}");
    for call in ["iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"] {
        assert_eq!(per_account(call), 1.0, "{call}: {served:?}");
    }
    let iam_total: u64 = served.iter().filter(|(k, _)| k.starts_with("iam:")).map(|(_, v)| v).sum();
    // Plus the trusted side's policy, read once for the whole plan: the policy, its default version, its versions
    // (a full list of five must be pruned before an update) and where it is attached.
    assert_eq!(iam_total, 4 * 10 + 4, "{served:?}");
    assert!(!served.keys().any(|k| k.starts_with("organizations:")), "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn per_account_values_resolve_in_each_account_show_resolved_in_the_plan_and_never_drift() {
    let w = world(3);
    let yaml = |description: &str| {
        format!(
            "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  description: \"{description}\"\n  trust:\n    \
             account_ids: [\"{SECURITY}\"]\n  tags:\n    account: \"${{account_name}} in ${{partition}}\"\n    id: \
             \"${{account_id}}\"\ntargets:\n  organizational_unit_ids: [ou-root-workload]\n"
        )
    };
    let spec = crossrole_core::AccessSpec::from_yaml(&yaml("Audit access to ${account_name} (${account_id})")).unwrap();

    // The plan shows each account's own values.
    let plan = w.engine.plan(&spec).await.unwrap();
    let first = plan.accounts.iter().find(|a| a.account_id == account(0)).unwrap();
    let shown = format!("{:?}", first.changes);
    assert!(shown.contains("Audit access to prod-0 (200000000000)"), "{shown}");
    assert!(shown.contains("prod-0 in aws"), "{shown}");

    let op = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!(op.state, OperationState::Succeeded, "{}", op.message);
    for i in 0..3 {
        let role = w.fake.role(&account(i), "Audit").unwrap();
        assert_eq!(role.attributes.description, format!("Audit access to prod-{i} ({})", account(i)));
        assert_eq!(role.attributes.tags.get("account").map(String::as_str), Some(format!("prod-{i} in aws").as_str()));
        assert_eq!(role.attributes.tags.get("id"), Some(&account(i)));
    }
    // Resolved the same way every time: no perpetual diff.
    w.fake.reset_counters();
    let again = run(&w, OperationKind::Apply, &spec).await;
    assert_eq!((again.counts.unchanged, w.fake.iam_writes()), (3, 0), "{:?}", w.fake.served());

    // An unknown variable is the field's error, before anything is read.
    let e = crossrole_core::AccessSpec::from_yaml(&yaml("Audit for ${account}")).unwrap_err().to_string();
    assert!(e.contains("role.description: uses unknown variable ${account}"), "{e}");
}
