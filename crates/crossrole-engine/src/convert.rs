//! Small conversions to the API's types.

use std::time::{SystemTime, UNIX_EPOCH};

use crossrole_aws::Error as AwsError;
use crossrole_core::{
    guardrails::{Finding, Severity},
    secret::{REDACTED_PREFIX, Redactor},
};
use crossrole_proto::v1 as pb;
use crossrole_store::JournalKey;

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A timestamp from Unix milliseconds.
pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Now, as a timestamp.
pub(crate) fn now() -> prost_types::Timestamp {
    timestamp(now_ms())
}

/// A finding for the API.
pub fn finding(f: &Finding) -> pb::Finding {
    pb::Finding {
        guardrail: pb::Guardrail::from(f.guardrail) as i32,
        severity: match f.severity {
            Severity::Error => pb::FindingSeverity::Error,
            Severity::Warning => pb::FindingSeverity::Warning,
        } as i32,
        field: f.field.clone(),
        message: f.message.clone(),
        waiver_reason: f.waiver.clone().unwrap_or_default(),
    }
}

/// An account error from an AWS-side error, in a phase.
pub(crate) fn account_error(e: &AwsError, phase: pb::AccountPhase) -> pb::AccountError {
    pb::AccountError {
        code: e.code().to_string(),
        message: e.to_string(),
        aws_error_code: e.aws_code().unwrap_or_default().to_string(),
        phase: phase as i32,
    }
}

/// An account error of crossrole's own.
pub(crate) fn own_error(code: &str, message: impl Into<String>, phase: pb::AccountPhase) -> pb::AccountError {
    pb::AccountError { code: code.into(), message: message.into(), aws_error_code: String::new(), phase: phase as i32 }
}

/// The spec as shown to API callers and written to logs: the ExternalId replaced by its mark.
pub fn redacted(spec: &pb::AccessSpec, redactor: &Redactor) -> pb::AccessSpec {
    let mut spec = spec.clone();
    if let Some(t) = spec.role.as_mut().and_then(|r| r.trust.as_mut())
        && !t.external_id.is_empty()
        && !Redactor::is_mark(&t.external_id)
    {
        t.external_id = if JournalKey::is_sealed(&t.external_id) {
            format!("{REDACTED_PREFIX}>")
        } else {
            redactor.mark(&t.external_id)
        };
    }
    spec
}

/// The spec as the journal keeps it: the ExternalId sealed with the journal key, bound to `context`.
pub fn sealed(spec: &pb::AccessSpec, key: &JournalKey, context: &str) -> Result<pb::AccessSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(t) = spec.role.as_mut().and_then(|r| r.trust.as_mut())
        && !t.external_id.is_empty()
    {
        t.external_id = key.seal(&t.external_id, context)?;
    }
    Ok(spec)
}

/// The spec as the journal kept it, with its ExternalId opened.
pub fn opened(spec: &pb::AccessSpec, key: &JournalKey, context: &str) -> Result<pb::AccessSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(t) = spec.role.as_mut().and_then(|r| r.trust.as_mut())
        && !t.external_id.is_empty()
    {
        t.external_id = key.open(&t.external_id, context)?;
    }
    Ok(spec)
}

/// An operation kind's name for logs (`APPLY`), or its number when unknown.
pub(crate) fn kind_name(kind: i32) -> String {
    pb::OperationKind::try_from(kind)
        .map(|k| k.as_str_name().trim_start_matches("OPERATION_KIND_").to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({kind})"))
}

/// Whether an operation state is final.
pub fn is_final(state: i32) -> bool {
    [pb::OperationState::Succeeded, pb::OperationState::Failed, pb::OperationState::Cancelled]
        .iter()
        .any(|s| *s as i32 == state)
}

/// Whether an account outcome is final.
pub(crate) fn outcome_is_final(outcome: i32) -> bool {
    !matches!(
        pb::AccountOutcome::try_from(outcome),
        Ok(pb::AccountOutcome::Pending | pb::AccountOutcome::Running | pb::AccountOutcome::Unspecified) | Err(_)
    )
}
