//! The SDK's error type.

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A field the server rejected (or, with the feature `spec-files`, a spec file's field in error), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path in the request, e.g. `spec.role.trust.external_id` (in a spec file: `role.trust.external_id`).
    pub field: String,
    /// The rule broken.
    pub description: String,
}

/// `field: rule`, or the rule alone when it is about the whole input.
impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.description)
        } else {
            write!(f, "{}: {}", self.field, self.description)
        }
    }
}

/// Errors of the SDK.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is invalid; `violations` names each field and rule.
    #[error("invalid request: {message}")]
    InvalidArgument {
        /// The server's summary.
        message: String,
        /// Each field and the rule it breaks.
        violations: Vec<FieldViolation>,
    },
    /// No token, or an unknown one.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The token lacks the scope.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// No such operation or binding.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request does not fit the current state.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A concurrent change won (e.g. a binding's version moved).
    #[error("aborted: {0}")]
    Aborted(String),
    /// The server or AWS is unavailable. `retry_after` is the server's advice; a request that never reached the
    /// server (`reached_server` false) was already retried by the SDK.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// When the server advises to try again (`google.rpc.RetryInfo`).
        retry_after: Option<std::time::Duration>,
        /// Whether crossroled answered (rather than the connection failing).
        reached_server: bool,
    },
    /// AWS throttled crossroled beyond its own retries; try again after `retry_after`.
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// What happened.
        message: String,
        /// When the server advises to try again.
        retry_after: Option<std::time::Duration>,
    },
    /// The connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Another status.
    #[error("{code:?}: {message}")]
    Other {
        /// The gRPC code.
        code: Code,
        /// The message.
        message: String,
    },
}

impl Error {
    /// Whether the SDK retries it by itself: only requests that never reached crossroled.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { reached_server: false, .. } | Error::Connect(_))
    }

    /// When the server advises to try again, if it said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Unavailable { retry_after, .. } | Error::ResourceExhausted { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The field violations, for `InvalidArgument`.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Error::InvalidArgument { violations, .. } => violations,
            _ => &[],
        }
    }
}

impl From<Status> for Error {
    fn from(s: Status) -> Self {
        let message = s.message().to_string();
        let retry_after = s.get_details_retry_info().and_then(|r| r.retry_delay);
        // tonic makes statuses of its own, with the transport error as their source, when the request could not
        // be sent or its answer could not be read; crossroled's answers have none.
        let reached_server = std::error::Error::source(&s).is_none();
        match s.code() {
            Code::InvalidArgument => Error::InvalidArgument {
                violations: s
                    .get_details_bad_request()
                    .map(|b| {
                        b.field_violations
                            .into_iter()
                            .map(|v| FieldViolation { field: v.field, description: v.description })
                            .collect()
                    })
                    .unwrap_or_default(),
                message,
            },
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::NotFound => Error::NotFound(message),
            Code::FailedPrecondition => Error::FailedPrecondition(message),
            Code::Aborted => Error::Aborted(message),
            Code::Unavailable => Error::Unavailable { message, retry_after, reached_server },
            Code::ResourceExhausted => Error::ResourceExhausted { message, retry_after },
            code => Error::Other { code, message },
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(e: tonic::transport::Error) -> Self {
        Error::Connect(chain(&e))
    }
}

/// An error and its sources, each said once: layers that wrap an error often say what the one below says
/// (`tcp connect error: tcp connect error: …`), and "transport error" at the top says nothing.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && text != "transport error" && parts.last() != Some(&text) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn a_connection_error_says_each_cause_once() {
        let refused = Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer(
                    "tcp connect error",
                    Some(Box::new(Layer("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(chain(&refused), "tcp connect error: Connection refused (os error 111)");
    }
}
