//! Who can enter every account: every role of an account as IAM lists it (not only crossrole's), classified.
//!
//! The AWS side reads each account's roles (`GetAccountAuthorizationDetails`, roles only) into [`RoleDetail`]s; this
//! module classifies each one against what the organization is ([`Context`]) — who can enter it, under which
//! conditions, whether crossrole owns it — and names its [`Finding`]s, each with a severity and the reason in words.
//! [`import()`] writes a spec from the roles of one name across the organization, and [`can_enter`] answers for one
//! caller whether a classified role lets it in (the yes/no checked against an IAM evaluator crossrole did not write).
//!
//! What is approximated, in one place:
//! - Entrants come from the Allow statements that allow an `sts:AssumeRole*` action. A Deny statement without
//!   conditions removes the principals it names (all of them when it names `*`; all but the ones it names with
//!   `NotPrincipal`, which then stand in for an Allow of anyone); a Deny with conditions does not remove anyone, its
//!   condition keys are added to the guards of the entrants it names (a Deny unless MFA counts as requiring MFA).
//!   [`can_enter`] evaluates the whole document, Deny and conditions included; the entrant list is the summary for
//!   people and filters, and every caller [`can_enter`] lets in is named by an entrant ([`entrant_for`]).
//! - Guards say which condition keys guard an entrant, not whether a request can meet them: an Allow whose
//!   conditions no request can meet still lists its principals. Values are kept for the organization keys and
//!   `aws:PrincipalArn` only.
//! - A condition guards only when it restricts: tried with the evaluator [`can_enter`] uses, an Allow's condition
//!   must fail (a Deny's hold) both for a request without the key and for one with a wrong value (`"false"` for
//!   `aws:MultiFactorAuthPresent`, a very old `aws:MultiFactorAuthAge`, otherwise a string of a character none of
//!   the values holds). So positive operators guard (StringEquals, StringLike with a pattern, ArnLike, Bool `true`
//!   on MFA, NumericLessThan on the MFA age), and negated operators, `…IfExists`, `Null`, `ForAllValues:` and
//!   patterns of wildcards only do not: such a condition is named in `other_keys` with its operator, "restricts
//!   nothing", and weighs nothing (`*` with only such conditions is critical). One wrong value stands for all: a
//!   pattern such as `vendor-*` guards, though a guess that fits it gets in. A Deny's condition guards only when it
//!   is the Deny's only one; an operator the evaluator does not model is reported, not weighed.
//! - Principals match as the IAM judge matches them: `*` lets in anyone, anonymous callers and services included;
//!   an account id (or its root ARN) every IAM principal of the account; any other ARN that principal only; a
//!   unique id nobody. In `NotPrincipal` an account exempts its principals as the judge has it, which may be
//!   generous: IAM's documentation has a Deny `NotPrincipal` name a user and its account both to exempt the user.
//!   A principal written as an account id and as its root ARN is one entrant, shown as the root ARN.
//! - `*` in an Allow whose conditions hold the caller to accounts — `aws:PrincipalAccount` with `StringEquals` (or
//!   `StringLike`) on account ids, `aws:PrincipalArn` with `ArnEquals`/`ArnLike` (or a string operator, no
//!   wildcard before the account) on ARNs of 12-digit accounts; several, the accounts all allow — is an entrant per
//!   account, as if its root were named (narrowed by the `aws:PrincipalArn` patterns of that account): an outside
//!   one is then the confused deputy's case, not anyone's. `…IfExists`, `ForAnyValue:`/`ForAllValues:`, negated
//!   operators and wildcard accounts hold nobody to an account: `*` stays anyone (the wider reading).
//! - "Held to the organization" (which lowers a finding's severity or removes it) means an `aws:PrincipalOrgID`
//!   naming this organization or `aws:PrincipalOrgPaths` under it, in a condition that restricts; any other guard
//!   is reported, not weighed.
//! - Federated providers: one in an account outside the organization is high (`OutsideAccountRoot`); a web
//!   identity provider is high (`AnyoneCanEnter`) unless a condition that restricts names its audience
//!   (`<host>:aud`, `:sub`, `:app_id` or `:oaud`; for GitHub Actions only `token.actions.githubusercontent.com:sub`,
//!   the repository, since every workflow's `aud` is the same). Which values the `sub` allows is not weighed:
//!   `repo:*` counts as naming the repository. A SAML provider of the organization is not a finding.
//! - The stored trust policy is IAM's document as returned (its `Sid`s, ARNs, partitions, actions and keys as
//!   written), but ExternalId values are never kept: it says [`REDACTED_EXTERNAL_ID`] in their place (a value of
//!   wildcards only, `*`, is no secret and is kept; any other value that repeats an ExternalId, a `Sid` spelling
//!   it out, goes too), and a probe says whether the caller brings the right one, a wrong one or none (with two
//!   different ExternalIds in one policy, "the right one" meets both).
//! - Service-linked roles (path `/aws-service-role/`) are never reported unused; IAM tracks last use for 400 days.

mod classify;
mod context;
mod enter;
mod filter;
mod findings;
mod import;
mod role;

use std::collections::{BTreeMap, BTreeSet};

pub use classify::classify;
pub use context::{Context, DEFAULT_UNUSED_AFTER_DAYS, ExpectedRole, former_members};
pub use enter::{Decision, ExternalIdProbe, Probe, ProbeCaller, can_enter, decide, entrant_for};
pub use filter::{PRINCIPAL_FILTER_RULE, check_principal_filter};
pub use findings::{Finding, FindingKind, Severity};
pub use import::{AccountDifference, Aspect, EXTERNAL_ID_PLACEHOLDER, Import, import};
pub use role::{Entrant, EntrantKind, Guards, InventoryRole, NOT_WEIGHED, REDACTED_EXTERNAL_ID, RESTRICTS_NOTHING};

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

#[cfg(test)]
mod former_tests;
#[cfg(test)]
mod tests;
