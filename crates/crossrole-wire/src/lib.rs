//! The edge between crossrole's domain (crossrole-core) and its v1 API (crossrole-proto): every conversion, both
//! ways, in one place. The engine, the AWS side and the journal speak domain types; crossroled's services and the
//! CLI cross here.
//!
//! [`ToWire`] gives a domain value's API message; [`FromWire`] reads a message back into the domain, refusing what
//! does not fit (an enum value this version does not know, a field the API marks required) with an [`Error`] that
//! names the field. A spec from the wire becomes a [`RawSpec`](crossrole_core::spec::RawSpec), which validation
//! (crossrole-core) turns into an `AccessSpec`, naming every field it refuses.

pub mod enums;
mod inventory;
mod ops;
mod org;
mod spec;
mod unreadable;

pub use crossrole_proto::v1 as pb;
pub use ops::{raw_binding, raw_end};
pub use org::account;
pub use spec::{raw_selector, raw_spec, selector, spec};

/// A value of the wire that does not fit the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Error {
    /// The field, in the message (`result.outcome`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Error {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error { field: field.into(), problem: problem.into() }
    }

    pub(crate) fn missing(field: &str) -> Error {
        Error::new(field, "required")
    }

    /// The same error, its field named under `prefix` (`changes[2]` → `changes[2].kind`).
    pub fn under(self, prefix: &str) -> Error {
        Error { field: format!("{prefix}.{}", self.field), problem: self.problem }
    }
}

/// A domain value's API message.
pub trait ToWire {
    /// The message.
    type Wire;
    /// Converts.
    fn to_wire(&self) -> Self::Wire;
}

/// A domain value from an API message.
pub trait FromWire<W>: Sized {
    /// Converts, or says which field does not fit.
    fn from_wire(wire: &W) -> Result<Self, Error>;
}

/// Unix milliseconds as a protobuf timestamp.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// A protobuf timestamp as Unix milliseconds.
pub fn millis(t: &prost_types::Timestamp) -> i64 {
    t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000)
}
