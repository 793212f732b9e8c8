//! The engine's error type.

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec or the request is invalid, or refused by the guardrails.
    #[error(transparent)]
    Invalid(#[from] crossrole_core::Error),
    /// AWS failed in a way that fails the whole request (e.g. Organizations unreadable).
    #[error(transparent)]
    Aws(Box<crossrole_aws::Error>),
    /// The journal failed.
    #[error(transparent)]
    Store(Box<crossrole_store::StoreError>),
    /// No such operation (or binding).
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not fit the current state (e.g. cancelling a finished operation).
    #[error("{0}")]
    FailedPrecondition(String),
    /// An idempotency key the caller already used for a different request: `field` is the field of the request
    /// that differs from the first one's; nothing was done.
    #[error("{message}")]
    IdempotencyKeyReused {
        /// The field that differs (`expires_in`, `spec`, …; `idempotency_key` when the first was another kind).
        field: String,
        /// What differs, naming `idempotency_key` and the field.
        message: String,
    },
    /// A stored record cannot be read — damaged, a version newer than this crossroled, or sealed with another
    /// journal key; the message names it and says why, never what it holds.
    #[error("{0}")]
    Corrupt(String),
}

impl From<crossrole_aws::Error> for Error {
    fn from(e: crossrole_aws::Error) -> Self {
        Error::Aws(Box::new(e))
    }
}

impl From<crossrole_store::StoreError> for Error {
    fn from(e: crossrole_store::StoreError) -> Self {
        Error::Store(Box::new(e))
    }
}
