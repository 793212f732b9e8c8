//! Small helpers: the time, account errors from AWS errors, and the spec's ExternalId sealed for the journal,
//! opened from it, or replaced by its mark for callers.

use std::time::{SystemTime, UNIX_EPOCH};

use crossrole_aws::Error as AwsError;
use crossrole_core::{
    ops::{AccountError, Millis, Phase},
    secret::{REDACTED_PREFIX, Redactor},
    spec::RawSpec,
};
use crossrole_store::JournalKey;

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An account error from an AWS-side error, in a phase.
pub(crate) fn account_error(e: &AwsError, phase: Phase) -> AccountError {
    AccountError { code: e.code(), message: e.to_string(), aws_error_code: e.aws_code().map(str::to_string), phase }
}

fn external_id(spec: &mut RawSpec) -> Option<&mut String> {
    spec.role.as_mut().and_then(|r| r.trust.as_mut()).map(|t| &mut t.external_id).filter(|e| !e.is_empty())
}

/// The spec as shown to API callers and written to logs: the ExternalId replaced by its mark.
pub fn redacted(spec: &RawSpec, redactor: &Redactor) -> RawSpec {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec)
        && !Redactor::is_mark(e)
    {
        *e = if JournalKey::is_sealed(e) { format!("{REDACTED_PREFIX}>") } else { redactor.mark(e) };
    }
    spec
}

/// The spec as the journal keeps it: the ExternalId sealed with the journal key, bound to `context`.
pub fn sealed(spec: &RawSpec, key: &JournalKey, context: &str) -> Result<RawSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec) {
        *e = key.seal(e, context)?;
    }
    Ok(spec)
}

/// The spec as the journal kept it, with its ExternalId opened.
pub fn opened(spec: &RawSpec, key: &JournalKey, context: &str) -> Result<RawSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec) {
        *e = key.open(e, context)?;
    }
    Ok(spec)
}
