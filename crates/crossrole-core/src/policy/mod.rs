//! IAM policy documents: the model and its normalization, the trust and grant policies crossrole writes, and a
//! static evaluator of trust policies.

mod document;
pub mod eval;
mod trust;

pub use document::{DocumentKind, Effect, PolicyDocument, Principals, Statement};
pub use trust::{GRANT_POLICY_MAX_SIZE, grant_policy, required_external_id, trust_policy};
