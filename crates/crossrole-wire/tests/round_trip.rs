//! Every conversion both ways: a domain value sent to the API and read back is the same value, for values drawn
//! from every variant of every enum.

use std::time::Duration;

use crossrole_core::{
    binding::{BindingAccountStatus, BindingMode, BindingStatus, BindingView, SyncCounts, SyncState},
    guardrails::{Finding, Severity},
    ops::{
        AccessPlan, AccountError, AccountPlanView, AccountResult, AccountVerification, Action, AssumeCheck, ChangeKind,
        CheckOutcome, Conformance, Counts, ErrorCode, Event, GrantPlanView, Operation, OperationEvent, OperationKind,
        OperationState, Outcome, Phase, PlanStatus, ShownChange, SkippedAccount, TrustCheck, Verification,
        VerifySummary,
    },
    org::AccountInfo,
    spec::{AccountState, Guardrail},
};
use crossrole_wire::{FromWire, ToWire, pb};
use proptest::{prelude::*, sample::select};

fn round_trip<T>(value: &T)
where
    T: ToWire + FromWire<T::Wire> + PartialEq + std::fmt::Debug,
{
    let wire = value.to_wire();
    assert_eq!(&T::from_wire(&wire).expect("reads back"), value);
}

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9:/-]{0,12}"
}

fn millis() -> impl Strategy<Value = i64> {
    -1_000_000_000_000i64..4_000_000_000_000
}

fn change() -> impl Strategy<Value = ShownChange> {
    let kinds = vec![
        ChangeKind::CreateRole,
        ChangeKind::UpdateTrustPolicy,
        ChangeKind::UpdateDescription,
        ChangeKind::UpdateMaxSessionDuration,
        ChangeKind::PutPermissionsBoundary,
        ChangeKind::DeletePermissionsBoundary,
        ChangeKind::AttachManagedPolicy,
        ChangeKind::DetachManagedPolicy,
        ChangeKind::PutInlinePolicy,
        ChangeKind::DeleteInlinePolicy,
        ChangeKind::TagRole,
        ChangeKind::UntagRole,
        ChangeKind::DeleteRole,
        ChangeKind::CreateGrantPolicy,
        ChangeKind::UpdateGrantPolicy,
        ChangeKind::AttachGrantPolicy,
        ChangeKind::DetachGrantPolicy,
        ChangeKind::DeleteGrantPolicy,
    ];
    (select(kinds), word(), word(), word()).prop_map(|(kind, subject, before, after)| ShownChange {
        kind,
        subject,
        before,
        after,
    })
}

fn phase() -> impl Strategy<Value = Phase> {
    select(vec![Phase::Queued, Phase::Assume, Phase::Read, Phase::Plan, Phase::Apply, Phase::Verify, Phase::Done])
}

fn error() -> impl Strategy<Value = AccountError> {
    (select(ErrorCode::ALL.to_vec()), word(), proptest::option::of("[A-Za-z]{1,10}"), phase())
        .prop_map(|(code, message, aws_error_code, phase)| AccountError { code, message, aws_error_code, phase })
}

fn result() -> impl Strategy<Value = AccountResult> {
    (
        ("[0-9]{12}", word(), any::<u32>(), select(Outcome::ALL.to_vec()), phase(), word()),
        (
            proptest::collection::vec(change(), 0..3),
            proptest::option::of(error()),
            proptest::option::of((any::<bool>(), word(), any::<u32>(), word())),
            proptest::option::of(millis()),
            proptest::option::of(select(vec![Action::Ensure, Action::Remove])),
        ),
    )
        .prop_map(
            |((account_id, account_name, index, outcome, phase, role_arn), (changes, error, verify, end, action))| {
                AccountResult {
                    account_id,
                    account_name,
                    index,
                    outcome,
                    phase,
                    role_arn,
                    changes,
                    error,
                    verify: verify.map(|(passed, assumed_account_id, attempts, error)| VerifySummary {
                        passed,
                        assumed_account_id,
                        attempts,
                        error,
                    }),
                    end_time: end,
                    action,
                }
            },
        )
}

fn counts() -> impl Strategy<Value = Counts> {
    proptest::array::uniform9(any::<u32>()).prop_map(|c| Counts {
        total: c[0],
        pending: c[1],
        running: c[2],
        changed: c[3],
        unchanged: c[4],
        failed: c[5],
        skipped: c[6],
        not_started: c[7],
        drifted: c[8],
    })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (select(OperationState::ALL.to_vec()), word(), proptest::option::of(counts()))
            .prop_map(|(state, message, counts)| Event::StateChanged { state, message, counts }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(targets, skipped, cleanup)| Event::TargetsResolved {
            targets,
            skipped,
            cleanup
        }),
        phase().prop_map(|phase| Event::PhaseStarted { phase }),
        change().prop_map(|change| Event::ChangeApplied { change }),
        (word(), word(), any::<u32>(), any::<u64>()).prop_map(|(call, aws_error_code, attempt, delay_ms)| {
            Event::CallRetried { call, aws_error_code, attempt, delay_ms }
        }),
        result().prop_map(|r| Event::AccountFinished { result: Box::new(r) }),
    ]
}

fn finding() -> impl Strategy<Value = Finding> {
    let guardrails = vec![
        Guardrail::WildcardPrincipal,
        Guardrail::ExternalPrincipalUnguarded,
        Guardrail::AdminAccess,
        Guardrail::TrustPolicySize,
        Guardrail::InlinePolicySize,
        Guardrail::ManagedPolicyCount,
        Guardrail::WeakExternalId,
        Guardrail::UnownedRole,
    ];
    (
        select(guardrails),
        select(vec![Severity::Error, Severity::Warning]),
        word(),
        word(),
        proptest::option::of("[a-z]{1,8}"),
    )
        .prop_map(|(guardrail, severity, field, message, waiver)| Finding {
            guardrail,
            severity,
            field,
            message,
            waiver,
        })
}

fn skipped() -> impl Strategy<Value = SkippedAccount> {
    let states = vec![
        AccountState::PendingActivation,
        AccountState::Active,
        AccountState::Suspended,
        AccountState::PendingClosure,
        AccountState::Closed,
    ];
    ("[0-9]{12}", word(), word(), select(states), word(), word(), word()).prop_map(
        |(id, name, email, state, parent_id, parent_path, reason)| SkippedAccount {
            account: AccountInfo { id, name, email, state, parent_id, joined_at: None },
            parent_path,
            reason,
        },
    )
}

fn check() -> impl Strategy<Value = CheckOutcome> {
    select(vec![CheckOutcome::Passed, CheckOutcome::Failed, CheckOutcome::Skipped])
}

proptest! {
    #[test]
    fn account_results(r in result()) {
        round_trip(&r);
    }

    #[test]
    fn events(sequence in any::<u64>(), time in millis(), account_id in word(), event in event()) {
        round_trip(&OperationEvent { sequence, time, account_id, event });
    }

    #[test]
    fn operations(
        id in word(),
        kind in proptest::option::of(select(vec![OperationKind::Apply, OperationKind::Destroy, OperationKind::Reconcile])),
        state in select(OperationState::ALL.to_vec()),
        key in proptest::option::of("[a-z]{1,8}"),
        binding in proptest::option::of("[a-z]{1,8}"),
        times in (millis(), proptest::option::of(millis()), proptest::option::of(millis())),
        counts in counts(),
        calls in proptest::collection::btree_map("[a-z]{1,5}:[A-Z][a-z]{1,6}", any::<u64>(), 0..4),
        numbers in (any::<u64>(), any::<u64>(), any::<bool>()),
        scope in proptest::collection::vec("[0-9]{12}", 0..3),
    ) {
        round_trip(&Operation {
            id,
            kind,
            state,
            spec: Default::default(),
            idempotency_key: key,
            binding_name: binding,
            created_by: "ci".into(),
            create_time: times.0,
            start_time: times.1,
            end_time: times.2,
            counts,
            message: "m".into(),
            aws_calls: calls,
            throttled_calls: numbers.0,
            last_sequence: numbers.1,
            dry_run: numbers.2,
            account_scope: scope,
        });
    }

    #[test]
    fn plans(
        accounts in proptest::collection::vec(
            (word(), select(vec![PlanStatus::InSync, PlanStatus::Changes, PlanStatus::Conflict, PlanStatus::Failed]),
             proptest::collection::vec(change(), 0..3), proptest::collection::vec(finding(), 0..2),
             proptest::option::of(error())),
            0..3),
        findings in proptest::collection::vec(finding(), 0..3),
        skipped in proptest::collection::vec(skipped(), 0..3),
        grant in proptest::option::of((word(), proptest::collection::vec(change(), 0..3), proptest::option::of(error()))),
        external_id_note in word(),
        read_times in (proptest::option::of(0i64..4_000_000_000_000), proptest::option::of(0i64..4_000_000_000_000)),
        fingerprint in word(),
    ) {
        round_trip(&AccessPlan {
            findings,
            accounts: accounts
                .into_iter()
                .map(|(account_id, status, changes, findings, error)| AccountPlanView {
                    account_id,
                    account_name: "n".into(),
                    role_arn: "arn".into(),
                    status,
                    changes,
                    findings,
                    error,
                    role_id: "AROAHANDMADE000000001".into(),
                })
                .collect(),
            skipped,
            grant: grant.map(|(policy_arn, changes, error)| GrantPlanView {
                account_id: "111111111111".into(),
                policy_arn,
                changes,
                error,
            }),
            external_id_note,
            organization_read_time: read_times.0,
            tags_read_time: read_times.1,
            fingerprint,
        });
    }

    #[test]
    fn verifications(
        accounts in proptest::collection::vec(
            (select(vec![Conformance::InSync, Conformance::Drifted, Conformance::Missing, Conformance::NotOwned,
                         Conformance::Unknown]),
             proptest::collection::vec(change(), 0..2), check(), proptest::collection::vec((word(), check(), word()), 0..3),
             proptest::option::of(error())),
            0..3),
        skipped in proptest::collection::vec(skipped(), 0..2),
        external_id_note in word(),
    ) {
        round_trip(&Verification {
            external_id_note,
            accounts: accounts
                .into_iter()
                .map(|(conformance, drift, outcome, checks, error)| AccountVerification {
                    account_id: "1".into(),
                    account_name: "n".into(),
                    role_arn: "arn".into(),
                    conformance,
                    drift,
                    assume: AssumeCheck {
                        outcome,
                        caller_arn: "c".into(),
                        assumed_arn: "a".into(),
                        assumed_account_id: "1".into(),
                        attempts: 2,
                        error: String::new(),
                    },
                    trust_checks: checks
                        .into_iter()
                        .map(|(principal_arn, outcome, reason)| TrustCheck { principal_arn, outcome, reason })
                        .collect(),
                    error,
                })
                .collect(),
            skipped,
        });
    }

    #[test]
    fn bindings(
        mode in select(vec![BindingMode::Enforce, BindingMode::Detect]),
        accounts in proptest::collection::vec(
            (word(), select(vec![SyncState::Pending, SyncState::InSync, SyncState::Drifted, SyncState::Failed, SyncState::Removed]),
             proptest::collection::vec(change(), 0..2), proptest::option::of(error()), millis()),
            0..3),
        times in (proptest::option::of(millis()), proptest::option::of(millis()), millis(), millis()),
        counts in proptest::array::uniform5(any::<u32>()),
        version in any::<u64>(),
        expiry in (proptest::option::of(millis()), proptest::option::of(word())),
    ) {
        round_trip(&BindingView {
            name: "audit".into(),
            version,
            spec: Default::default(),
            mode,
            reconcile_interval: Duration::from_secs(900),
            create_time: times.2,
            update_time: times.3,
            expires_at: expiry.0,
            status: BindingStatus {
                last_reconcile_time: times.0,
                last_operation_id: "op".into(),
                running_operation_id: String::new(),
                next_reconcile_time: times.1,
                accounts: accounts
                    .into_iter()
                    .map(|(account_id, state, changes, error, last)| BindingAccountStatus {
                        account_id,
                        account_name: "n".into(),
                        state,
                        changes,
                        error,
                        last_reconcile_time: last,
                    })
                    .collect(),
                counts: SyncCounts {
                    in_sync: counts[0],
                    drifted: counts[1],
                    failed: counts[2],
                    pending: counts[3],
                    removed: counts[4],
                },
                reconciled_version: version,
                expiry_operation_id: expiry.1.unwrap_or_default(),
            },
        });
    }

    #[test]
    fn ends_as_given(at in proptest::option::of(millis()), within in proptest::option::of((0i64..1_000_000, 0i32..1_000_000_000))) {
        let w = pb::Binding {
            expires_at: at.map(crossrole_wire::timestamp),
            expires_in: within.map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
            ..Default::default()
        };
        let end = crossrole_wire::raw_binding(&w).end;
        prop_assert_eq!(end.expires_at, at);
        prop_assert_eq!(end.expires_in.map(|d| (d.seconds, d.nanos)), within);
    }
}

#[test]
fn an_error_from_before_the_reason_existed_is_read_from_its_code() {
    let old = pb::AccountError {
        code: "account_not_active".into(),
        message: "suspended".into(),
        aws_error_code: String::new(),
        phase: pb::AccountPhase::Queued as i32,
        reason: 0,
    };
    assert_eq!(AccountError::from_wire(&old).unwrap().code, ErrorCode::AccountNotActive);
    let unknown = pb::AccountError { code: "meteor".into(), ..old.clone() };
    assert_eq!(
        AccountError::from_wire(&unknown).unwrap_err().to_string(),
        "code: \"meteor\" is not a code this version knows"
    );
    let result = pb::AccountResult {
        outcome: 99,
        phase: 1,
        action: 1,
        changes: vec![pb::Change { kind: 0, ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(
        AccountResult::from_wire(&result).unwrap_err().to_string(),
        "outcome: 99 is not a value this version knows"
    );
    let result = pb::AccountResult { outcome: 1, ..result };
    assert_eq!(AccountResult::from_wire(&result).unwrap_err().to_string(), "changes[0].kind: required");
}
