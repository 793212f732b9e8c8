//! Operations, results, events, plans, verifications and bindings, both ways.

use std::time::Duration;

use crossrole_core::{
    binding::{BindingAccountStatus, BindingStatus, BindingView, RawBinding, SyncCounts},
    expiry::RawEnd,
    guardrails::Finding,
    ops::{
        AccessPlan, AccountError, AccountPlanView, AccountResult, AccountVerification, AssumeCheck, Counts, ErrorCode,
        Event, GrantPlanView, Operation, OperationEvent, OperationKind, ShownChange, SkippedAccount, TrustCheck,
        Verification, VerifySummary,
    },
};

use crate::{
    Error, FromWire, ToWire,
    enums::{Known, choice, need},
    millis, pb,
    spec::raw_spec,
    timestamp,
};

fn all<T: ToWire>(items: &[T]) -> Vec<T::Wire> {
    items.iter().map(ToWire::to_wire).collect()
}

fn each<T: FromWire<W>, W>(field: &str, items: &[W]) -> Result<Vec<T>, Error> {
    items.iter().enumerate().map(|(i, w)| T::from_wire(w).map_err(|e| e.under(&format!("{field}[{i}]")))).collect()
}

fn within<T: FromWire<W>, W>(field: &str, item: &W) -> Result<T, Error> {
    T::from_wire(item).map_err(|e| e.under(field))
}

fn maybe<T: FromWire<W>, W>(field: &str, item: Option<&W>) -> Result<Option<T>, Error> {
    item.map(|w| within(field, w)).transpose()
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl ToWire for ShownChange {
    type Wire = pb::Change;

    fn to_wire(&self) -> pb::Change {
        pb::Change {
            kind: self.kind.to_wire() as i32,
            subject: self.subject.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
        }
    }
}

impl FromWire<pb::Change> for ShownChange {
    fn from_wire(w: &pb::Change) -> Result<Self, Error> {
        Ok(ShownChange {
            kind: need("kind", w.kind)?,
            subject: w.subject.clone(),
            before: w.before.clone(),
            after: w.after.clone(),
        })
    }
}

impl ToWire for AccountError {
    type Wire = pb::AccountError;

    fn to_wire(&self) -> pb::AccountError {
        pb::AccountError {
            code: self.code.as_str().to_string(),
            message: self.message.clone(),
            aws_error_code: self.aws_error_code.clone().unwrap_or_default(),
            phase: self.phase.to_wire() as i32,
            reason: self.code.to_wire() as i32,
        }
    }
}

impl FromWire<pb::AccountError> for AccountError {
    /// The reason, or for a message from before it existed, the code's text.
    fn from_wire(w: &pb::AccountError) -> Result<Self, Error> {
        let code = match (w.reason, ErrorCode::known(w.reason)) {
            (_, Some(c)) => c,
            (0, None) => ErrorCode::parse(&w.code)
                .ok_or_else(|| Error::new("code", format!("{:?} is not a code this version knows", w.code)))?,
            (n, None) => return Err(Error::new("reason", format!("{n} is not a value this version knows"))),
        };
        Ok(AccountError {
            code,
            message: w.message.clone(),
            aws_error_code: text(&w.aws_error_code),
            phase: need("phase", w.phase)?,
        })
    }
}

impl ToWire for VerifySummary {
    type Wire = pb::AssumeCheckSummary;

    fn to_wire(&self) -> pb::AssumeCheckSummary {
        pb::AssumeCheckSummary {
            passed: self.passed,
            assumed_account_id: self.assumed_account_id.clone(),
            attempts: self.attempts,
            error: self.error.clone(),
        }
    }
}

impl FromWire<pb::AssumeCheckSummary> for VerifySummary {
    fn from_wire(w: &pb::AssumeCheckSummary) -> Result<Self, Error> {
        Ok(VerifySummary {
            passed: w.passed,
            assumed_account_id: w.assumed_account_id.clone(),
            attempts: w.attempts,
            error: w.error.clone(),
        })
    }
}

impl ToWire for AccountResult {
    type Wire = pb::AccountResult;

    fn to_wire(&self) -> pb::AccountResult {
        pb::AccountResult {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            index: self.index,
            outcome: self.outcome.to_wire() as i32,
            phase: self.phase.to_wire() as i32,
            role_arn: self.role_arn.clone(),
            changes: all(&self.changes),
            error: self.error.as_ref().map(ToWire::to_wire),
            verify: self.verify.as_ref().map(ToWire::to_wire),
            end_time: self.end_time.map(timestamp),
            action: self.action.map(|a| a.to_wire() as i32).unwrap_or(0),
            unreadable: String::new(),
        }
    }
}

impl FromWire<pb::AccountResult> for AccountResult {
    fn from_wire(w: &pb::AccountResult) -> Result<Self, Error> {
        Ok(AccountResult {
            account_id: w.account_id.clone(),
            account_name: w.account_name.clone(),
            index: w.index,
            outcome: need("outcome", w.outcome)?,
            phase: need("phase", w.phase)?,
            role_arn: w.role_arn.clone(),
            changes: each("changes", &w.changes)?,
            error: maybe("error", w.error.as_ref())?,
            verify: maybe("verify", w.verify.as_ref())?,
            end_time: w.end_time.as_ref().map(millis),
            action: match w.action {
                0 => None,
                n => Some(need("action", n)?),
            },
        })
    }
}

impl ToWire for Counts {
    type Wire = pb::OperationCounts;

    fn to_wire(&self) -> pb::OperationCounts {
        pb::OperationCounts {
            total: self.total,
            pending: self.pending,
            running: self.running,
            changed: self.changed,
            unchanged: self.unchanged,
            failed: self.failed,
            skipped: self.skipped,
            not_started: self.not_started,
            drifted: self.drifted,
        }
    }
}

impl FromWire<pb::OperationCounts> for Counts {
    fn from_wire(w: &pb::OperationCounts) -> Result<Self, Error> {
        Ok(Counts {
            total: w.total,
            pending: w.pending,
            running: w.running,
            changed: w.changed,
            unchanged: w.unchanged,
            failed: w.failed,
            skipped: w.skipped,
            not_started: w.not_started,
            drifted: w.drifted,
        })
    }
}

impl ToWire for Operation {
    type Wire = pb::Operation;

    fn to_wire(&self) -> pb::Operation {
        pb::Operation {
            id: self.id.clone(),
            kind: self.kind.map(|k| k.to_wire() as i32).unwrap_or(0),
            state: self.state.to_wire() as i32,
            spec: Some(self.spec.to_wire()),
            idempotency_key: self.idempotency_key.clone().unwrap_or_default(),
            binding_name: self.binding_name.clone().unwrap_or_default(),
            created_by: self.created_by.clone(),
            create_time: Some(timestamp(self.create_time)),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
            counts: Some(self.counts.to_wire()),
            message: self.message.clone(),
            aws_calls: self.aws_calls.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            throttled_calls: self.throttled_calls,
            last_sequence: self.last_sequence,
            dry_run: self.dry_run,
            account_scope: self.account_scope.clone(),
            unreadable: String::new(),
        }
    }
}

impl FromWire<pb::Operation> for Operation {
    fn from_wire(w: &pb::Operation) -> Result<Self, Error> {
        Ok(Operation {
            id: w.id.clone(),
            kind: OperationKind::known(w.kind),
            state: need("state", w.state)?,
            spec: w.spec.as_ref().map(raw_spec).unwrap_or_default(),
            idempotency_key: text(&w.idempotency_key),
            binding_name: text(&w.binding_name),
            created_by: w.created_by.clone(),
            create_time: w.create_time.as_ref().map(millis).unwrap_or(0),
            start_time: w.start_time.as_ref().map(millis),
            end_time: w.end_time.as_ref().map(millis),
            counts: maybe("counts", w.counts.as_ref())?.unwrap_or_default(),
            message: w.message.clone(),
            aws_calls: w.aws_calls.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            throttled_calls: w.throttled_calls,
            last_sequence: w.last_sequence,
            dry_run: w.dry_run,
            account_scope: w.account_scope.clone(),
        })
    }
}

impl ToWire for OperationEvent {
    type Wire = pb::OperationEvent;

    fn to_wire(&self) -> pb::OperationEvent {
        use pb::operation_event::Event as E;
        let event = match &self.event {
            Event::StateChanged { state, message, counts } => E::StateChanged(pb::OperationStateChanged {
                state: state.to_wire() as i32,
                message: message.clone(),
                counts: counts.as_ref().map(ToWire::to_wire),
            }),
            Event::TargetsResolved { targets, skipped, cleanup } => E::TargetsResolved(pb::TargetsResolved {
                target_count: *targets,
                skipped_count: *skipped,
                cleanup_count: *cleanup,
            }),
            Event::PhaseStarted { phase } => E::PhaseStarted(pb::AccountPhaseStarted { phase: phase.to_wire() as i32 }),
            Event::ChangeApplied { change } => E::ChangeApplied(pb::ChangeApplied { change: Some(change.to_wire()) }),
            Event::CallRetried { call, aws_error_code, attempt, delay_ms } => E::CallRetried(pb::CallRetried {
                call: call.clone(),
                aws_error_code: aws_error_code.clone(),
                attempt: *attempt,
                delay_ms: *delay_ms,
            }),
            Event::AccountFinished { result } => {
                E::AccountFinished(pb::AccountFinished { result: Some(result.to_wire()) })
            }
        };
        pb::OperationEvent {
            sequence: self.sequence,
            time: Some(timestamp(self.time)),
            account_id: self.account_id.clone(),
            event: Some(event),
        }
    }
}

impl FromWire<pb::OperationEvent> for OperationEvent {
    fn from_wire(w: &pb::OperationEvent) -> Result<Self, Error> {
        use pb::operation_event::Event as E;
        let required = |field: &str| Error::missing(field);
        let event = match w.event.as_ref().ok_or_else(|| required("event"))? {
            E::StateChanged(s) => Event::StateChanged {
                state: need("state_changed.state", s.state)?,
                message: s.message.clone(),
                counts: maybe("state_changed.counts", s.counts.as_ref())?,
            },
            E::TargetsResolved(t) => {
                Event::TargetsResolved { targets: t.target_count, skipped: t.skipped_count, cleanup: t.cleanup_count }
            }
            E::PhaseStarted(p) => Event::PhaseStarted { phase: need("phase_started.phase", p.phase)? },
            E::ChangeApplied(c) => Event::ChangeApplied {
                change: within(
                    "change_applied.change",
                    c.change.as_ref().ok_or_else(|| required("change_applied.change"))?,
                )?,
            },
            E::CallRetried(r) => Event::CallRetried {
                call: r.call.clone(),
                aws_error_code: r.aws_error_code.clone(),
                attempt: r.attempt,
                delay_ms: r.delay_ms,
            },
            E::AccountFinished(a) => Event::AccountFinished {
                result: Box::new(within(
                    "account_finished.result",
                    a.result.as_ref().ok_or_else(|| required("account_finished.result"))?,
                )?),
            },
        };
        Ok(OperationEvent {
            sequence: w.sequence,
            time: w.time.as_ref().map(millis).unwrap_or(0),
            account_id: w.account_id.clone(),
            event,
        })
    }
}

impl ToWire for Finding {
    type Wire = pb::Finding;

    fn to_wire(&self) -> pb::Finding {
        pb::Finding {
            guardrail: self.guardrail.to_wire() as i32,
            severity: self.severity.to_wire() as i32,
            field: self.field.clone(),
            message: self.message.clone(),
            waiver_reason: self.waiver.clone().unwrap_or_default(),
        }
    }
}

impl FromWire<pb::Finding> for Finding {
    fn from_wire(w: &pb::Finding) -> Result<Self, Error> {
        Ok(Finding {
            guardrail: need("guardrail", w.guardrail)?,
            severity: need("severity", w.severity)?,
            field: w.field.clone(),
            message: w.message.clone(),
            waiver: text(&w.waiver_reason),
        })
    }
}

impl ToWire for SkippedAccount {
    type Wire = pb::SkippedAccount;

    fn to_wire(&self) -> pb::SkippedAccount {
        pb::SkippedAccount {
            account: Some(crate::org::account(&self.account, &self.parent_path, Default::default())),
            reason: self.reason.clone(),
        }
    }
}

impl FromWire<pb::SkippedAccount> for SkippedAccount {
    fn from_wire(w: &pb::SkippedAccount) -> Result<Self, Error> {
        let a = w.account.as_ref().ok_or_else(|| Error::missing("account"))?;
        Ok(SkippedAccount {
            account: within("account", a)?,
            parent_path: a.parent_path.clone(),
            reason: w.reason.clone(),
        })
    }
}

impl ToWire for AccountPlanView {
    type Wire = pb::AccountPlan;

    fn to_wire(&self) -> pb::AccountPlan {
        pb::AccountPlan {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            role_arn: self.role_arn.clone(),
            status: self.status.to_wire() as i32,
            changes: all(&self.changes),
            findings: all(&self.findings),
            error: self.error.as_ref().map(ToWire::to_wire),
            role_id: self.role_id.clone(),
        }
    }
}

impl FromWire<pb::AccountPlan> for AccountPlanView {
    fn from_wire(w: &pb::AccountPlan) -> Result<Self, Error> {
        Ok(AccountPlanView {
            account_id: w.account_id.clone(),
            account_name: w.account_name.clone(),
            role_arn: w.role_arn.clone(),
            status: need("status", w.status)?,
            changes: each("changes", &w.changes)?,
            findings: each("findings", &w.findings)?,
            error: maybe("error", w.error.as_ref())?,
            role_id: w.role_id.clone(),
        })
    }
}

impl ToWire for GrantPlanView {
    type Wire = pb::GrantPlan;

    fn to_wire(&self) -> pb::GrantPlan {
        pb::GrantPlan {
            account_id: self.account_id.clone(),
            policy_arn: self.policy_arn.clone(),
            changes: all(&self.changes),
            error: self.error.as_ref().map(ToWire::to_wire),
        }
    }
}

impl FromWire<pb::GrantPlan> for GrantPlanView {
    fn from_wire(w: &pb::GrantPlan) -> Result<Self, Error> {
        Ok(GrantPlanView {
            account_id: w.account_id.clone(),
            policy_arn: w.policy_arn.clone(),
            changes: each("changes", &w.changes)?,
            error: maybe("error", w.error.as_ref())?,
        })
    }
}

impl ToWire for AccessPlan {
    type Wire = pb::AccessPlan;

    fn to_wire(&self) -> pb::AccessPlan {
        pb::AccessPlan {
            findings: all(&self.findings),
            accounts: all(&self.accounts),
            skipped: all(&self.skipped),
            grant: self.grant.as_ref().map(ToWire::to_wire),
            accounts_with_changes: self.accounts_with_changes() as u32,
            total_changes: self.total_changes() as u32,
            external_id_note: self.external_id_note.clone(),
            organization_read_time: self.organization_read_time.map(crate::timestamp),
            tags_read_time: self.tags_read_time.map(crate::timestamp),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

impl FromWire<pb::AccessPlan> for AccessPlan {
    fn from_wire(w: &pb::AccessPlan) -> Result<Self, Error> {
        Ok(AccessPlan {
            findings: each("findings", &w.findings)?,
            accounts: each("accounts", &w.accounts)?,
            skipped: each("skipped", &w.skipped)?,
            grant: maybe("grant", w.grant.as_ref())?,
            external_id_note: w.external_id_note.clone(),
            organization_read_time: w.organization_read_time.as_ref().map(crate::millis),
            tags_read_time: w.tags_read_time.as_ref().map(crate::millis),
            fingerprint: w.fingerprint.clone(),
        })
    }
}

impl ToWire for AssumeCheck {
    type Wire = pb::AssumeCheck;

    fn to_wire(&self) -> pb::AssumeCheck {
        pb::AssumeCheck {
            outcome: self.outcome.to_wire() as i32,
            caller_arn: self.caller_arn.clone(),
            assumed_arn: self.assumed_arn.clone(),
            assumed_account_id: self.assumed_account_id.clone(),
            attempts: self.attempts,
            error: self.error.clone(),
        }
    }
}

impl FromWire<pb::AssumeCheck> for AssumeCheck {
    fn from_wire(w: &pb::AssumeCheck) -> Result<Self, Error> {
        Ok(AssumeCheck {
            outcome: need("outcome", w.outcome)?,
            caller_arn: w.caller_arn.clone(),
            assumed_arn: w.assumed_arn.clone(),
            assumed_account_id: w.assumed_account_id.clone(),
            attempts: w.attempts,
            error: w.error.clone(),
        })
    }
}

impl ToWire for TrustCheck {
    type Wire = pb::TrustCheck;

    fn to_wire(&self) -> pb::TrustCheck {
        pb::TrustCheck {
            principal_arn: self.principal_arn.clone(),
            outcome: self.outcome.to_wire() as i32,
            reason: self.reason.clone(),
        }
    }
}

impl FromWire<pb::TrustCheck> for TrustCheck {
    fn from_wire(w: &pb::TrustCheck) -> Result<Self, Error> {
        Ok(TrustCheck {
            principal_arn: w.principal_arn.clone(),
            outcome: need("outcome", w.outcome)?,
            reason: w.reason.clone(),
        })
    }
}

impl ToWire for AccountVerification {
    type Wire = pb::AccountVerification;

    fn to_wire(&self) -> pb::AccountVerification {
        pb::AccountVerification {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            role_arn: self.role_arn.clone(),
            conformance: self.conformance.to_wire() as i32,
            drift: all(&self.drift),
            assume: Some(self.assume.to_wire()),
            trust_checks: all(&self.trust_checks),
            error: self.error.as_ref().map(ToWire::to_wire),
        }
    }
}

impl FromWire<pb::AccountVerification> for AccountVerification {
    fn from_wire(w: &pb::AccountVerification) -> Result<Self, Error> {
        Ok(AccountVerification {
            account_id: w.account_id.clone(),
            account_name: w.account_name.clone(),
            role_arn: w.role_arn.clone(),
            conformance: need("conformance", w.conformance)?,
            drift: each("drift", &w.drift)?,
            assume: within("assume", w.assume.as_ref().ok_or_else(|| Error::missing("assume"))?)?,
            trust_checks: each("trust_checks", &w.trust_checks)?,
            error: maybe("error", w.error.as_ref())?,
        })
    }
}

impl ToWire for Verification {
    type Wire = pb::VerifyAccessResponse;

    fn to_wire(&self) -> pb::VerifyAccessResponse {
        pb::VerifyAccessResponse {
            accounts: all(&self.accounts),
            skipped: all(&self.skipped),
            external_id_note: self.external_id_note.clone(),
        }
    }
}

impl FromWire<pb::VerifyAccessResponse> for Verification {
    fn from_wire(w: &pb::VerifyAccessResponse) -> Result<Self, Error> {
        Ok(Verification {
            accounts: each("accounts", &w.accounts)?,
            skipped: each("skipped", &w.skipped)?,
            external_id_note: w.external_id_note.clone(),
        })
    }
}

/// A binding from a request, as given.
pub fn raw_binding(w: &pb::Binding) -> RawBinding {
    RawBinding {
        name: w.name.clone(),
        spec: w.spec.as_ref().map(raw_spec),
        mode: choice(w.mode),
        reconcile_interval: w
            .reconcile_interval
            .as_ref()
            .map(|d| crossrole_core::spec::RawDuration { seconds: d.seconds, nanos: d.nanos }),
        end: raw_end(w.expires_at.as_ref(), w.expires_in.as_ref()),
    }
}

/// An end (of a binding or an apply) from a request, as given.
pub fn raw_end(at: Option<&prost_types::Timestamp>, within: Option<&prost_types::Duration>) -> RawEnd {
    RawEnd {
        expires_at: at.map(millis),
        expires_in: within.map(|d| crossrole_core::spec::RawDuration { seconds: d.seconds, nanos: d.nanos }),
    }
}

impl ToWire for BindingAccountStatus {
    type Wire = pb::BindingAccountStatus;

    fn to_wire(&self) -> pb::BindingAccountStatus {
        pb::BindingAccountStatus {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            state: self.state.to_wire() as i32,
            changes: all(&self.changes),
            error: self.error.as_ref().map(ToWire::to_wire),
            last_reconcile_time: Some(timestamp(self.last_reconcile_time)),
        }
    }
}

impl FromWire<pb::BindingAccountStatus> for BindingAccountStatus {
    fn from_wire(w: &pb::BindingAccountStatus) -> Result<Self, Error> {
        Ok(BindingAccountStatus {
            account_id: w.account_id.clone(),
            account_name: w.account_name.clone(),
            state: need("state", w.state)?,
            changes: each("changes", &w.changes)?,
            error: maybe("error", w.error.as_ref())?,
            last_reconcile_time: w.last_reconcile_time.as_ref().map(millis).unwrap_or(0),
        })
    }
}

impl ToWire for BindingStatus {
    type Wire = pb::BindingStatus;

    fn to_wire(&self) -> pb::BindingStatus {
        pb::BindingStatus {
            last_reconcile_time: self.last_reconcile_time.map(timestamp),
            last_operation_id: self.last_operation_id.clone(),
            running_operation_id: self.running_operation_id.clone(),
            next_reconcile_time: self.next_reconcile_time.map(timestamp),
            accounts: all(&self.accounts),
            in_sync: self.counts.in_sync,
            drifted: self.counts.drifted,
            failed: self.counts.failed,
            pending: self.counts.pending,
            removed: self.counts.removed,
            reconciled_version: self.reconciled_version,
            expiry_operation_id: self.expiry_operation_id.clone(),
        }
    }
}

impl FromWire<pb::BindingStatus> for BindingStatus {
    fn from_wire(w: &pb::BindingStatus) -> Result<Self, Error> {
        Ok(BindingStatus {
            last_reconcile_time: w.last_reconcile_time.as_ref().map(millis),
            last_operation_id: w.last_operation_id.clone(),
            running_operation_id: w.running_operation_id.clone(),
            next_reconcile_time: w.next_reconcile_time.as_ref().map(millis),
            accounts: each("accounts", &w.accounts)?,
            counts: SyncCounts {
                in_sync: w.in_sync,
                drifted: w.drifted,
                failed: w.failed,
                pending: w.pending,
                removed: w.removed,
            },
            reconciled_version: w.reconciled_version,
            expiry_operation_id: w.expiry_operation_id.clone(),
        })
    }
}

impl ToWire for BindingView {
    type Wire = pb::Binding;

    fn to_wire(&self) -> pb::Binding {
        pb::Binding {
            name: self.name.clone(),
            version: self.version,
            spec: Some(self.spec.to_wire()),
            mode: self.mode.to_wire() as i32,
            reconcile_interval: Some(prost_types::Duration {
                seconds: self.reconcile_interval.as_secs() as i64,
                nanos: 0,
            }),
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            status: Some(self.status.to_wire()),
            unreadable: String::new(),
            expires_at: self.expires_at.map(timestamp),
            expires_in: None,
        }
    }
}

impl FromWire<pb::Binding> for BindingView {
    fn from_wire(w: &pb::Binding) -> Result<Self, Error> {
        Ok(BindingView {
            name: w.name.clone(),
            version: w.version,
            spec: w.spec.as_ref().map(raw_spec).unwrap_or_default(),
            mode: need("mode", w.mode)?,
            reconcile_interval: Duration::from_secs(
                w.reconcile_interval.as_ref().map(|d| d.seconds.max(0) as u64).unwrap_or(0),
            ),
            create_time: w.create_time.as_ref().map(millis).unwrap_or(0),
            update_time: w.update_time.as_ref().map(millis).unwrap_or(0),
            expires_at: w.expires_at.as_ref().map(millis),
            status: maybe("status", w.status.as_ref())?.unwrap_or_default(),
        })
    }
}
