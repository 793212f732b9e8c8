//! The server's error type, and the one place errors become gRPC statuses.
//!
//! | error | code |
//! |---|---|
//! | invalid input, refused by guardrails | INVALID_ARGUMENT, with `google.rpc.BadRequest` field violations |
//! | no or unknown token | UNAUTHENTICATED |
//! | token lacks the scope | PERMISSION_DENIED |
//! | unknown operation or binding | NOT_FOUND |
//! | state does not allow it (cancel a finished operation) | FAILED_PRECONDITION |
//! | an idempotency key reused for a different request (another spec, end, plan…) | FAILED_PRECONDITION, with a `google.rpc.PreconditionFailure` violation of type `IDEMPOTENCY_KEY_REUSED` whose subject is the field that differs |
//! | binding version mismatch | ABORTED |
//! | AWS throttled crossroled beyond its retries | RESOURCE_EXHAUSTED, with `google.rpc.RetryInfo` (30 s) |
//! | AWS unreachable beyond crossroled's retries | UNAVAILABLE, with `google.rpc.RetryInfo` (10 s) |
//! | AWS refused crossroled itself (e.g. Organizations access denied) | FAILED_PRECONDITION |
//! | a record the journal holds cannot be read (damaged, newer, sealed with another key) | DATA_LOSS, naming it |
//! | anything else | INTERNAL, with no detail beyond a pointer to the server log |
//!
//! Statuses never carry stack traces, credentials or tokens.

use crossrole_core::FieldViolation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// Refused by guardrails.
    #[error("refused by guardrails")]
    Refused(Vec<FieldViolation>),
    /// No or unknown token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Token lacks the scope.
    #[error("{0}")]
    PermissionDenied(String),
    /// Not found.
    #[error("{0}")]
    NotFound(String),
    /// State does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// An idempotency key the caller used before for a different request; `field` is the field that differs. Not
    /// INVALID_ARGUMENT: the request is fine on its own, the journal's state (the key's first request) refuses it,
    /// and retrying it unchanged never succeeds (gRPC's rule for FAILED_PRECONDITION).
    #[error("{message}")]
    KeyReused {
        /// The field that differs from the first request's.
        field: String,
        /// What differs, naming `idempotency_key` and the field.
        message: String,
    },
    /// Optimistic concurrency lost.
    #[error("{0}")]
    Aborted(String),
    /// AWS unavailable, after crossroled's own retries.
    #[error("{0}")]
    Unavailable(String),
    /// AWS throttled crossroled beyond its own retries.
    #[error("{0}")]
    Throttled(String),
    /// crossroled holds as much as its limits allow (the request bytes' budget): a retry soon may fit.
    #[error("{0}")]
    Busy(String),
    /// A record the journal holds cannot be read; the message names it and says why (never what it holds).
    #[error("{0}")]
    DataLoss(String),
    /// Internal.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A single field violation.
    pub fn field(field: &str, rule: &str) -> ApiError {
        ApiError::Invalid(vec![FieldViolation::new(field, rule)])
    }
}

impl From<crossrole_core::Error> for ApiError {
    fn from(e: crossrole_core::Error) -> Self {
        match e {
            crossrole_core::Error::Invalid(v) => ApiError::Invalid(v),
            crossrole_core::Error::Refused(v) => ApiError::Refused(v),
        }
    }
}

impl From<crossrole_aws::Error> for ApiError {
    fn from(e: crossrole_aws::Error) -> Self {
        use crossrole_aws::{Error, ErrorKind};
        match e {
            Error::Invalid(e) => e.into(),
            Error::Aws(a) if a.kind == ErrorKind::Throttling => ApiError::Throttled(format!(
                "AWS throttled crossroled beyond its retries (another tool may share the quota): {a}"
            )),
            Error::Aws(a) if a.kind.is_retryable() => ApiError::Unavailable(format!("AWS is unavailable: {a}")),
            Error::Aws(a) if a.kind == ErrorKind::AccessDenied => {
                ApiError::FailedPrecondition(format!("AWS refused crossroled's own identity: {a}"))
            }
            other => ApiError::FailedPrecondition(other.to_string()),
        }
    }
}

impl From<crossrole_engine::Error> for ApiError {
    fn from(e: crossrole_engine::Error) -> Self {
        use crossrole_engine::Error;
        match e {
            Error::Invalid(e) => e.into(),
            Error::Aws(a) => (*a).into(),
            Error::NotFound(what) => ApiError::NotFound(what),
            Error::FailedPrecondition(m) => ApiError::FailedPrecondition(m),
            Error::IdempotencyKeyReused { field, message } => ApiError::KeyReused { field, message },
            Error::Store(s) => (*s).into(),
            Error::Corrupt(m) => ApiError::DataLoss(m),
        }
    }
}

impl From<crossrole_store::StoreError> for ApiError {
    fn from(e: crossrole_store::StoreError) -> Self {
        match e {
            crossrole_store::StoreError::VersionMismatch { .. } => ApiError::Aborted(e.to_string()),
            crossrole_store::StoreError::IdempotencyConflict(_) => ApiError::FailedPrecondition(e.to_string()),
            crossrole_store::StoreError::Standby { .. } => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::Invalid(v) | ApiError::Refused(v) => {
                let summary = v.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ");
                let mut details = ErrorDetails::new();
                for f in &v {
                    details.add_bad_request_violation(f.field.clone(), f.rule.clone());
                }
                Status::with_error_details(Code::InvalidArgument, summary, details)
            }
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::KeyReused { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("IDEMPOTENCY_KEY_REUSED", field, message.clone());
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            ApiError::Aborted(m) => Status::aborted(m),
            // Both say when a retry is worth it: crossroled has already retried the AWS calls behind them.
            ApiError::Unavailable(m) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(10)));
                Status::with_error_details(Code::Unavailable, m, details)
            }
            ApiError::Throttled(m) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(30)));
                Status::with_error_details(Code::ResourceExhausted, m, details)
            }
            ApiError::Busy(m) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                Status::with_error_details(Code::ResourceExhausted, m, details)
            }
            ApiError::DataLoss(m) => {
                tracing::warn!(error = m, "a record the journal holds cannot be read");
                Status::data_loss(m)
            }
            ApiError::Internal(m) => {
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, error = m, "internal error");
                Status::internal(format!("internal error {id}; see the crossroled log"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_carries_field_violations() {
        let status: Status = ApiError::Invalid(vec![
            FieldViolation::new("role.name", "required"),
            FieldViolation::new("role.trust.external_id", "must be 2 to 1224 characters (STS), got 1"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[1].field, "role.trust.external_id");
    }

    #[test]
    fn a_reused_idempotency_key_names_the_field_that_differs() {
        let reused = crossrole_engine::Error::IdempotencyKeyReused {
            field: "expires_in".into(),
            message: "idempotency_key \"k\" was already used for a different request (expires_in differs: …)".into(),
        };
        let status: Status = ApiError::from(reused).into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("idempotency_key \"k\""), "{}", status.message());
        let violations = status.get_details_precondition_failure().unwrap().violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (violations[0].r#type.as_str(), violations[0].subject.as_str()),
            ("IDEMPOTENCY_KEY_REUSED", "expires_in")
        );
    }

    #[test]
    fn aws_exhaustion_says_when_to_retry() {
        let throttled =
            crossrole_aws::AwsError::from_code("iam:GetRole", Some("Throttling"), Some(400), "Rate exceeded");
        let status: Status = ApiError::from(crossrole_aws::Error::Aws(throttled)).into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(std::time::Duration::from_secs(30)));
        let down = crossrole_aws::AwsError::from_code("iam:GetRole", None, Some(503), "HTTP 503");
        let status: Status = ApiError::from(crossrole_aws::Error::Aws(down)).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.get_details_retry_info().is_some());
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let status: Status = ApiError::Internal("disk I/O error at /var/lib/secret/path".into()).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/var/lib"));
    }
}
