//! A role as the inventory keeps it: the role in brief, who can enter it and under which conditions, its findings.
//! Serializable: the journal stores it and the API serves it. It never holds an ExternalId's value.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Finding, LastUsed};

/// What the stored trust policy says in place of each ExternalId's value.
pub const REDACTED_EXTERNAL_ID: &str = "<redacted>";

/// What an entry of [`Guards::other_keys`] ends with when its condition keeps nobody out (`sts:externalid
/// (StringNotEquals, restricts nothing)`): it is shown, never weighed.
pub const RESTRICTS_NOTHING: &str = "restricts nothing";

/// How a Deny's condition that cannot be weighed alone (one of several, or an operator not modeled) is named in
/// [`Guards::other_keys`]: it guards nothing, for it may keep nobody out.
pub const NOT_WEIGHED: &str = "not weighed";

/// One role of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRole {
    /// The account the role is in.
    pub account_id: String,
    /// The role's name.
    pub name: String,
    /// Its IAM path.
    pub path: String,
    /// Its ARN.
    pub arn: String,
    /// When it was made, Unix seconds, when IAM said.
    pub created: Option<i64>,
    /// When it was last used, when IAM tracked it.
    pub last_used: Option<LastUsed>,
    /// Attached managed policy ARNs.
    pub managed_policy_arns: BTreeSet<String>,
    /// The names of its inline policies (their count is its length).
    pub inline_policy_names: BTreeSet<String>,
    /// The permissions boundary's ARN.
    pub permissions_boundary_arn: Option<String>,
    /// The spec that owns it, when crossrole's ownership tags say one does.
    pub owner: Option<String>,
    /// Its trust policy as IAM returned it (URL-decoded, pretty-printed; see [`crate::policy::as_returned`]), every
    /// ExternalId value replaced by [`REDACTED_EXTERNAL_ID`]; empty when it does not parse (a finding says so).
    pub trust_policy: String,
    /// Who can enter, one entry per principal (and statement) that an Allow lets in and no unconditional Deny
    /// keeps out.
    pub entrants: Vec<Entrant>,
    /// What is wrong or worth a look, most severe first.
    pub findings: Vec<Finding>,
}

impl InventoryRole {
    /// The names of the managed policies (the last part of each ARN).
    pub fn managed_policy_names(&self) -> Vec<&str> {
        self.managed_policy_arns.iter().map(|a| a.rsplit('/').next().unwrap_or(a)).collect()
    }

    /// The most severe finding's severity, if any.
    pub fn worst(&self) -> Option<super::Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Who a trusted principal is, seen from the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntrantKind {
    /// An account of the organization, or a principal in one.
    OrganizationAccount,
    /// An account outside the organization (never known as a member), or a principal in one.
    OutsideAccount,
    /// An account that was a member of the organization and left it, or a principal in one.
    FormerMember,
    /// An AWS service (`Service`: `ec2.amazonaws.com`).
    Service,
    /// A federated identity provider (`Federated`: a SAML or OIDC provider, or `cognito-identity.amazonaws.com`).
    Federated,
    /// Anyone: `*`, `{"AWS": "*"}`, or an Allow with `NotPrincipal`.
    Anyone,
    /// A unique id (`AROA…`, `AIDA…`): IAM's rewrite of a principal that was deleted. Nobody can enter through it.
    UnresolvableId,
    /// Something else (a `CanonicalUser`, a principal that is not an ARN or an account id).
    Other,
}

/// One principal an Allow statement lets in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entrant {
    /// Who it is.
    pub kind: EntrantKind,
    /// The principal as written (an account id is shown as its root ARN).
    pub principal: String,
    /// Its account, when it has one.
    pub account_id: Option<String>,
    /// Whether a whole account is trusted (its root) and no `aws:PrincipalArn` condition narrows it.
    pub whole_account: bool,
    /// The `sts:` actions it is allowed, lowercased (`sts:assumerole`, `sts:assumerolewithwebidentity`, …).
    pub actions: BTreeSet<String>,
    /// The conditions that guard it.
    pub conditions: Guards,
}

/// The conditions that guard an entrant, by what they mean. Values are kept where they are not secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Guards {
    /// An `sts:ExternalId` condition that restricts: the caller must bring the ExternalId (its value is never
    /// kept).
    pub external_id: bool,
    /// An `aws:MultiFactorAuthPresent` (or `aws:MultiFactorAuthAge`) condition that requires MFA.
    pub mfa: bool,
    /// Organization conditions, key (`aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:ResourceOrgID`) →
    /// values.
    pub organization: BTreeMap<String, BTreeSet<String>>,
    /// An `sts:SourceIdentity` condition.
    pub source_identity: bool,
    /// `aws:PrincipalArn` patterns that narrow the principal.
    pub principal_arns: BTreeSet<String>,
    /// Every other condition key, lowercased, by name; a condition on any key that restricts nothing is named here
    /// with its operator, ending `restricts nothing)` ([`RESTRICTS_NOTHING`]); a Deny's that cannot be weighed
    /// alone ends `not weighed)` ([`NOT_WEIGHED`]).
    pub other_keys: BTreeSet<String>,
}

impl Guards {
    /// Whether nothing guards the entrant.
    pub fn is_empty(&self) -> bool {
        *self == Guards::default()
    }

    /// Whether some condition may keep a caller out: every guard but the conditions that restrict nothing.
    pub fn restricts(&self) -> bool {
        self.external_id
            || self.mfa
            || !self.organization.is_empty()
            || self.source_identity
            || !self.principal_arns.is_empty()
            || self
                .other_keys
                .iter()
                .any(|k| !k.ends_with(&format!("{RESTRICTS_NOTHING})")) && !k.ends_with(&format!("{NOT_WEIGHED})")))
    }
}
