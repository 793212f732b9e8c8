//! Small conversions to the API's types.

use std::time::{SystemTime, UNIX_EPOCH};

use crossrole_aws::Error as AwsError;
use crossrole_core::guardrails::{Finding, Severity};
use crossrole_proto::v1 as pb;

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

/// The spec as shown to API callers: the ExternalId is redacted.
pub fn redacted(spec: &pb::AccessSpec) -> pb::AccessSpec {
    let mut spec = spec.clone();
    if let Some(t) = spec.role.as_mut().and_then(|r| r.trust.as_mut())
        && !t.external_id.is_empty()
    {
        t.external_id = "<redacted>".into();
    }
    spec
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
