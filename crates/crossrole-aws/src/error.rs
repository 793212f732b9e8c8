//! The crate's error type, and the classification of AWS errors that drives retries.

use std::fmt;

use crossrole_core::ops::ErrorCode;

/// An AWS service crossrole calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// AWS Organizations.
    Organizations,
    /// AWS Identity and Access Management.
    Iam,
    /// AWS Security Token Service.
    Sts,
    /// Amazon SQS: the Organizations events queue.
    Sqs,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 4] = [Service::Organizations, Service::Iam, Service::Sts, Service::Sqs];

    /// `organizations`, `iam`, `sts`, `sqs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Organizations => "organizations",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Sqs => "sqs",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an AWS error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The service throttled the call: retry with backoff.
    Throttling,
    /// A transient failure (5xx, timeout, connection, concurrent modification): retry with backoff.
    Transient,
    /// The entity does not exist.
    NotFound,
    /// The entity already exists.
    AlreadyExists,
    /// Access denied: permanent, except right after an account joins (see the credential broker).
    AccessDenied,
    /// Anything else: permanent (malformed policy, limit exceeded, invalid input, …).
    Permanent,
    /// Not sent: this process's lease may have lapsed, and it writes nothing more ([`crate::fence`]).
    Fenced,
}

impl ErrorKind {
    /// Whether the call layer retries it.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttling | ErrorKind::Transient)
    }
}

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// `service:Operation`, e.g. `iam:CreateRole`.
    pub call: String,
    /// The AWS error code, if AWS answered with one.
    pub code: Option<String>,
    /// The message (never credentials).
    pub message: String,
    /// What it means.
    pub kind: ErrorKind,
}

impl AwsError {
    /// An error from an AWS error code and HTTP status, classified.
    pub fn from_code(
        call: impl Into<String>,
        code: Option<&str>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            call: call.into(),
            code: code.map(String::from),
            message: message.into(),
            kind: classify(code, status),
        }
    }

    /// A transport-level failure (connection, timeout): transient.
    pub fn transport(call: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError { call: call.into(), code: None, message: message.into(), kind: ErrorKind::Transient }
    }

    /// Whether it is `NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {code}: {}", self.call, self.message),
            None => write!(f, "{} failed: {}", self.call, self.message),
        }
    }
}

impl std::error::Error for AwsError {}

/// Classifies an AWS error by its code (and HTTP status when there is no known code).
pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code {
        Some(
            "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
            | "ProvisionedThroughputExceededException"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "BandwidthLimitExceeded",
        ) => ErrorKind::Throttling,
        Some(
            "ConcurrentModification"
            | "ConcurrentModificationException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "ServiceFailure"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "IDPCommunicationError"
            | "TransientError",
        ) => ErrorKind::Transient,
        Some(
            "NoSuchEntity"
            | "NoSuchEntityException"
            | "AccountNotFoundException"
            | "ParentNotFoundException"
            | "OrganizationalUnitNotFoundException"
            | "TargetNotFoundException"
            | "ChildNotFoundException",
        ) => ErrorKind::NotFound,
        Some("EntityAlreadyExists" | "EntityAlreadyExistsException") => ErrorKind::AlreadyExists,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthFailure"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException",
        ) => ErrorKind::AccessDenied,
        _ => match status {
            Some(429) => ErrorKind::Throttling,
            Some(500..=599) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        },
    }
}

/// Errors of crossrole-aws.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An AWS call failed (after the retries it deserved).
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// The bootstrap role in a member account could not be assumed.
    #[error(
        "bootstrap role {role} in account {account} is missing or not assumable (invited accounts often lack it; \
         deploy it, or configure another bootstrap role): {source}"
    )]
    BootstrapUnavailable {
        /// The account.
        account: String,
        /// The bootstrap role name.
        role: String,
        /// What STS said.
        source: AwsError,
    },
    /// The selector or an input does not fit the organization.
    #[error(transparent)]
    Invalid(#[from] crossrole_core::Error),
    /// The work was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The AWS error code, if an AWS call failed.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws(e) | Error::BootstrapUnavailable { source: e, .. } => e.code.as_deref(),
            _ => None,
        }
    }

    /// Whether a write was refused by the fence ([`crate::fence`]): this process stops writing, and the work is not
    /// over (the crossroled that takes it over, or the next start, goes on with it), so it has no outcome here.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Aws(e) if e.kind == ErrorKind::Fenced)
    }

    /// Why an account failed, as its result says.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Aws(e) if e.kind == ErrorKind::AccessDenied => ErrorCode::AccessDenied,
            Error::Aws(e) if e.kind == ErrorKind::Fenced => ErrorCode::Cancelled,
            Error::Aws(e) if e.kind.is_retryable() => ErrorCode::AwsUnavailable,
            Error::Aws(_) => ErrorCode::AwsError,
            Error::BootstrapUnavailable { .. } => ErrorCode::BootstrapRoleUnavailable,
            Error::Invalid(_) => ErrorCode::Invalid,
            Error::Cancelled => ErrorCode::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases: &[(Option<&str>, Option<u16>, ErrorKind)] = &[
            (Some("Throttling"), Some(400), ErrorKind::Throttling),
            (Some("TooManyRequestsException"), Some(400), ErrorKind::Throttling),
            (Some("ThrottlingException"), Some(400), ErrorKind::Throttling),
            (Some("ConcurrentModification"), Some(409), ErrorKind::Transient),
            (Some("ConcurrentModificationException"), Some(400), ErrorKind::Transient),
            (Some("ServiceUnavailable"), Some(503), ErrorKind::Transient),
            (None, Some(502), ErrorKind::Transient),
            (None, Some(429), ErrorKind::Throttling),
            (Some("NoSuchEntity"), Some(404), ErrorKind::NotFound),
            (Some("EntityAlreadyExists"), Some(409), ErrorKind::AlreadyExists),
            (Some("AccessDenied"), Some(403), ErrorKind::AccessDenied),
            (Some("AccessDeniedException"), Some(400), ErrorKind::AccessDenied),
            (Some("MalformedPolicyDocument"), Some(400), ErrorKind::Permanent),
            (Some("LimitExceeded"), Some(409), ErrorKind::Permanent),
            (Some("DeleteConflict"), Some(409), ErrorKind::Permanent),
            (Some("ValidationError"), Some(400), ErrorKind::Permanent),
            (Some("SomethingNew"), Some(503), ErrorKind::Transient),
            (Some("SomethingNew"), Some(400), ErrorKind::Permanent),
            (None, Some(400), ErrorKind::Permanent),
        ];
        for (code, status, kind) in cases {
            assert_eq!(classify(*code, *status), *kind, "{code:?} {status:?}");
        }
        assert!(ErrorKind::Throttling.is_retryable() && ErrorKind::Transient.is_retryable());
        assert!(!ErrorKind::AccessDenied.is_retryable() && !ErrorKind::Permanent.is_retryable());
    }
}
