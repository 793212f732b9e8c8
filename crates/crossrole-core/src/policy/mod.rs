//! IAM policy documents: the model and its normalization, the trust and grant policies crossrole writes, a static
//! evaluator of trust policies, and documents shown as IAM returned them.

mod document;
pub mod eval;
mod returned;
mod trust;

pub use document::{DocumentKind, Effect, PolicyDocument, Principals, Statement};
pub use returned::{as_returned, in_order_of};
pub use trust::{GRANT_POLICY_MAX_SIZE, grant_policy, required_external_id, trust_policy};
