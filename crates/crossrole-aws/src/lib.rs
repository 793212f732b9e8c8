//! crossrole's AWS side: Organizations discovery, STS credentials, IAM reconcile, the trusted side and verify.
//!
//! Everything AWS sits behind the narrow traits of [`api`], one method per AWS call, speaking crossrole-core's
//! types. [`sdk`] implements them with the AWS SDK for Rust; `fake` (behind the `fake` feature) is an in-memory AWS (with a
//! latency model, throttles and failure injection) for tests and benchmarks; production builds leave it out. Every call goes through [`calls`], the one
//! place that rate-limits and retries.

pub mod api;
pub mod calls;
pub mod credentials;
pub mod discovery;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod fence;
mod grant;
pub mod inventory;
pub mod reconcile;
pub mod sdk;
pub mod verify;

pub use error::{AwsError, Error, ErrorKind, Service, classify};
