//! The pure domain of crossrole: access specs, IAM policy documents, guardrails, the planner, organization
//! selection and Switch Role links.
//!
//! This crate does no I/O and nothing async: plain data in, plain data out. It cannot fail for outside reasons, and
//! it is tested with data tables, snapshots and property tests. The AWS side (`crossrole-aws`) reads the world into
//! these types ([`plan::ObservedRole`], [`org::OrgTree`]) and applies the [`plan::Change`]s computed here.

pub mod binding;
pub mod ceiling;
mod error;
pub mod expiry;
pub mod export;
pub mod grant;
pub mod guardrails;
pub mod inventory;
pub mod links;
pub mod names;
pub mod ops;
pub mod org;
pub mod org_events;
pub mod plan;
pub mod policy;
pub mod revocation;
pub mod secret;
pub mod spec;
pub mod unreadable;

pub use error::{Error, FieldViolation};
pub use names::Partition;
pub use spec::AccessSpec;
