//! Who can enter every account: every role of an account as IAM lists it (not only crossrole's), classified.
//!
//! The AWS side reads each account's roles (`GetAccountAuthorizationDetails`, roles only) into [`RoleDetail`]s; this
//! module classifies each one against what the organization is ([`Context`]) — who can enter it, under which
//! conditions, whether crossrole owns it — and names its [`Finding`]s, each with a severity and the reason in words.
//! `import` writes a spec from the roles of one name across the organization.
//!
//! (Skeleton: types agreed between the AWS side, the engine and the API. The classification is filled in by the
//! inventory work.)

use std::collections::{BTreeMap, BTreeSet};

/// A role as `GetAccountAuthorizationDetails` lists it (filter `Role`): everything the inventory needs in one call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleDetail {
    /// The account the role is in.
    pub account_id: String,
    /// The role's name.
    pub name: String,
    /// Its IAM path.
    pub path: String,
    /// Its ARN.
    pub arn: String,
    /// IAM's unique id for it (`AROA…`).
    pub role_id: String,
    /// When it was made, Unix seconds; `None` when IAM did not say.
    pub created: Option<i64>,
    /// Its trust policy as IAM returned it (URL-encoded or not).
    pub trust_policy: String,
    /// Attached managed policy ARNs.
    pub managed_policy_arns: BTreeSet<String>,
    /// Inline policies by name, documents as IAM returned them.
    pub inline_policies: BTreeMap<String, String>,
    /// The permissions boundary's ARN, if any.
    pub permissions_boundary_arn: Option<String>,
    /// Its tags (crossrole's ownership tags among them, when crossrole made it).
    pub tags: BTreeMap<String, String>,
    /// When it was last used, Unix seconds, and in which region; `None` when never (or not in IAM's tracking window).
    pub last_used: Option<LastUsed>,
}

/// `RoleLastUsed`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastUsed {
    /// Unix seconds.
    pub at: i64,
    /// The region it was used in, when IAM says.
    pub region: Option<String>,
}
