//! The access spec: crossrole's declarative unit, as validated domain types.
//!
//! Values of these types come from [`AccessSpec::try_from`] a spec as given ([`RawSpec`], which the wire's spec
//! becomes at the edge) or from [`AccessSpec::from_yaml`] / [`AccessSpec::from_json`] of a spec file; both paths
//! run the same validation ([`validate`]), which reports every broken rule with its field path. Code that holds an
//! `AccessSpec` may rely on every field being within IAM's rules.

mod file;
pub mod raw;
mod validate;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

pub use file::SpecFile;
pub use raw::{Choice, RawDuration, RawSpec};

use crate::{
    Error,
    names::{self, Partition},
    policy::PolicyDocument,
    secret::ExternalId,
};

/// Tag key that marks a role as created and owned by crossrole.
pub const OWNER_TAG_KEY: &str = "crossrole:managed-by";
/// Value of [`OWNER_TAG_KEY`].
pub const OWNER_TAG_VALUE: &str = "crossrole";
/// Tag key that names the spec a role belongs to.
pub const SPEC_TAG_KEY: &str = "crossrole:spec";

/// The spec that owns a role or policy with these tags, if crossrole does (both ownership tags are there).
pub fn owner_of(tags: &BTreeMap<String, String>) -> Option<&str> {
    if tags.get(OWNER_TAG_KEY).map(String::as_str) != Some(OWNER_TAG_VALUE) {
        return None;
    }
    tags.get(SPEC_TAG_KEY).map(String::as_str)
}

/// Default maximum session duration (IAM's default).
pub const DEFAULT_MAX_SESSION: Duration = Duration::from_secs(3600);
/// Default verify timeout.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// An access spec: which role must exist where, who may assume it, and how to roll it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    /// Spec name (`[a-z][a-z0-9-]{0,63}`).
    pub name: String,
    /// The role to keep in every target account.
    pub role: RoleSpec,
    /// Which accounts.
    pub targets: TargetSelector,
    /// The trusted side, if crossrole manages it.
    pub grant: Option<TrustedGrant>,
    /// Rollout options.
    pub rollout: RolloutOptions,
    /// Guardrail quotas and waivers.
    pub guardrails: GuardrailOptions,
}

/// The IAM role of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// IAM path, `/` or `/…/`.
    pub path: String,
    /// Description; may be empty.
    pub description: String,
    /// Maximum session duration, 1 to 12 hours in whole seconds.
    pub max_session_duration: Duration,
    /// Who may assume the role.
    pub trust: TrustSpec,
    /// AWS or customer managed policies to attach, by ARN.
    pub managed_policy_arns: BTreeSet<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// A boundary that caps the role's permissions, by ARN.
    pub permissions_boundary_arn: Option<String>,
    /// The spec's own tags (crossrole adds its ownership tags on top, see [`RoleSpec::desired_tags`]).
    pub tags: BTreeMap<String, String>,
    /// Take ownership of an existing role of the same name that crossrole does not own.
    pub adopt_existing: bool,
    /// Take ownership of such a role only in these accounts (what `crossrole adopt` approved); elsewhere it is
    /// reported and left untouched. Empty: as `adopt_existing` says.
    pub adopt_accounts: BTreeSet<String>,
    /// The role approved in each account of `adopt_accounts`, by IAM's unique id (`RoleId`): only that role is
    /// taken over there, never one made later under the same name. An account of `adopt_accounts` without one
    /// (a spec written before the ids were recorded) has no role taken over: it is reported not owned.
    pub adopt_role_ids: BTreeMap<String, String>,
    /// Revoke the role's sessions issued before a change that takes access away (a trust narrowed, the role
    /// removed): see [`crate::revocation`]. On unless the spec turns it off.
    pub revoke_sessions_on_narrowing: bool,
}

impl RoleSpec {
    /// The role's ARN in `account`.
    pub fn arn(&self, partition: Partition, account: &str) -> String {
        names::role_arn(partition, account, &self.path, &self.name)
    }

    /// Every tag the role must carry: the spec's tags and crossrole's ownership tags.
    pub fn desired_tags(&self, spec_name: &str) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string());
        tags.insert(SPEC_TAG_KEY.to_string(), spec_name.to_string());
        tags
    }
}

/// Who may assume a role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustSpec {
    /// Trusted account ids.
    pub account_ids: BTreeSet<String>,
    /// Trusted principal ARNs (or `*`).
    pub principal_arns: BTreeSet<String>,
    /// Required ExternalId (a secret: see [`crate::secret`]).
    pub external_id: Option<ExternalId>,
    /// Only sessions signed in with MFA may assume the role.
    pub require_mfa: bool,
    /// Required organization of the caller.
    pub principal_org_id: Option<String>,
    /// How principal ARNs are written into the policy.
    pub principal_match: PrincipalMatch,
}

/// How specific principals are named in a trust policy (see the API docs of `PrincipalMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalMatch {
    /// Account root as principal, `aws:PrincipalArn` `ArnLike` condition naming the principals.
    #[default]
    Condition,
    /// The ARNs as principals.
    Direct,
}

/// Selects accounts of the organization; see [`crate::org::resolve`] for the semantics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetSelector {
    /// OU or root ids (unique, in the order given).
    pub organizational_unit_ids: Vec<String>,
    /// OU paths (`/Root/Workloads`), unique, in the order given.
    pub organizational_unit_paths: Vec<String>,
    /// Only accounts directly in those OUs.
    pub exclude_descendants: bool,
    /// Account ids (unique, in the order given).
    pub account_ids: Vec<String>,
    /// Tag conditions, all of which must hold.
    pub tags: Vec<TagCondition>,
    /// Accounts never selected.
    pub exclude_account_ids: Vec<String>,
    /// OUs never selected from.
    pub exclude_organizational_unit_ids: Vec<String>,
    /// OUs never selected from, by path.
    pub exclude_organizational_unit_paths: Vec<String>,
    /// Allow the management account.
    pub include_management_account: bool,
    /// Accepted states; never empty after validation (default: active).
    pub states: BTreeSet<AccountState>,
}

/// A condition on an account tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCondition {
    /// The tag's key.
    pub key: String,
    /// Required value, or `None` for "key exists".
    pub value: Option<String>,
}

/// An account's state in Organizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Being created or invited.
    PendingActivation,
    /// Usable.
    Active,
    /// Suspended (or closed within 90 days).
    Suspended,
    /// Closing.
    PendingClosure,
    /// Closed by its owner or AWS; never worked on.
    Closed,
}

impl AccountState {
    /// The Organizations API name (`ACTIVE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::PendingActivation => "PENDING_ACTIVATION",
            AccountState::Active => "ACTIVE",
            AccountState::Suspended => "SUSPENDED",
            AccountState::PendingClosure => "PENDING_CLOSURE",
            AccountState::Closed => "CLOSED",
        }
    }

    /// Parses the Organizations API name.
    pub fn parse(s: &str) -> Option<AccountState> {
        Some(match s {
            "PENDING_ACTIVATION" => AccountState::PendingActivation,
            "ACTIVE" => AccountState::Active,
            "SUSPENDED" => AccountState::Suspended,
            "PENDING_CLOSURE" => AccountState::PendingClosure,
            "CLOSED" => AccountState::Closed,
            _ => return None,
        })
    }
}

/// The trusted side of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedGrant {
    /// The trusted account.
    pub account_id: String,
    /// Users that get the policy.
    pub user_names: BTreeSet<String>,
    /// Groups that get the policy.
    pub group_names: BTreeSet<String>,
    /// Roles that get the policy.
    pub role_names: BTreeSet<String>,
    /// Name of the AssumeRole policy.
    pub policy_name: String,
}

impl TrustedGrant {
    /// Path under which crossrole keeps grant policies.
    pub const POLICY_PATH: &'static str = "/crossrole/";

    /// The policy's ARN.
    pub fn policy_arn(&self, partition: Partition) -> String {
        names::policy_arn(partition, &self.account_id, Self::POLICY_PATH, &self.policy_name)
    }

    /// The principals that get the policy, as (kind, name), in a stable order.
    pub fn principals(&self) -> impl Iterator<Item = (PrincipalKind, &str)> {
        self.user_names
            .iter()
            .map(|n| (PrincipalKind::User, n.as_str()))
            .chain(self.group_names.iter().map(|n| (PrincipalKind::Group, n.as_str())))
            .chain(self.role_names.iter().map(|n| (PrincipalKind::Role, n.as_str())))
    }
}

/// An IAM identity that a policy can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// IAM user.
    User,
    /// IAM group.
    Group,
    /// IAM role.
    Role,
}

impl PrincipalKind {
    /// `user`, `group` or `role`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::Role => "role",
        }
    }
}

/// How a rollout proceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutOptions {
    /// The most accounts worked on at once; `None`: as many as AWS's quotas keep busy (crossroled works it out from
    /// the rates and the time an account takes).
    pub max_concurrency: Option<Limit>,
    /// Failures tolerated before no new account starts.
    pub failure_tolerance: Limit,
    /// Verify after apply.
    pub verify: bool,
    /// How long verification retries.
    pub verify_timeout: Duration,
    /// Remove the role where the spec was applied before and no longer targets.
    pub prune: bool,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            max_concurrency: None,
            failure_tolerance: Limit::Count(0),
            verify: true,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            prune: false,
        }
    }
}

/// A count, or a percentage of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Absolute.
    Count(u32),
    /// Percent (1–100) of the targets, rounded down.
    Percent(u32),
}

impl Limit {
    /// The limit for `targets` accounts. A concurrency is at least 1 (see [`Limit::concurrency`]).
    pub fn of(self, targets: usize) -> usize {
        match self {
            Limit::Count(n) => n as usize,
            Limit::Percent(p) => targets * p as usize / 100,
        }
    }

    /// As a concurrency for `targets` accounts: at least 1.
    pub fn concurrency(self, targets: usize) -> usize {
        self.of(targets).max(1)
    }
}

/// Guardrail quotas and waivers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuardrailOptions {
    /// The IAM quotas the guardrails check sizes and counts against.
    pub quotas: IamQuotas,
    /// Waivers, by guardrail.
    pub waivers: BTreeMap<Guardrail, String>,
}

/// IAM quotas the guardrails check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamQuotas {
    /// Trust policy characters.
    pub trust_policy_size: usize,
    /// Total inline policy characters per role.
    pub inline_policies_size: usize,
    /// How many managed policies a role may have (IAM's default 10, up to 20 on request).
    pub managed_policies_per_role: usize,
}

impl Default for IamQuotas {
    fn default() -> Self {
        IamQuotas { trust_policy_size: 2048, inline_policies_size: 10_240, managed_policies_per_role: 10 }
    }
}

/// A guardrail; see the API docs of `Guardrail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guardrail {
    /// `*` principal.
    WildcardPrincipal,
    /// Outside principal without ExternalId or org condition.
    ExternalPrincipalUnguarded,
    /// Admin-level permissions.
    AdminAccess,
    /// Trust policy over quota.
    TrustPolicySize,
    /// Inline policies over quota.
    InlinePolicySize,
    /// Too many managed policies.
    ManagedPolicyCount,
    /// Weak ExternalId (warning).
    WeakExternalId,
    /// Role exists and is not owned by crossrole.
    UnownedRole,
}

impl Guardrail {
    /// Every guardrail.
    pub const ALL: [Guardrail; 8] = [
        Guardrail::WildcardPrincipal,
        Guardrail::ExternalPrincipalUnguarded,
        Guardrail::AdminAccess,
        Guardrail::TrustPolicySize,
        Guardrail::InlinePolicySize,
        Guardrail::ManagedPolicyCount,
        Guardrail::WeakExternalId,
        Guardrail::UnownedRole,
    ];

    /// The name used in spec files (`wildcard-principal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Guardrail::WildcardPrincipal => "wildcard-principal",
            Guardrail::ExternalPrincipalUnguarded => "external-principal-unguarded",
            Guardrail::AdminAccess => "admin-access",
            Guardrail::TrustPolicySize => "trust-policy-size",
            Guardrail::InlinePolicySize => "inline-policy-size",
            Guardrail::ManagedPolicyCount => "managed-policy-count",
            Guardrail::WeakExternalId => "weak-external-id",
            Guardrail::UnownedRole => "unowned-role",
        }
    }

    /// Parses a spec-file name.
    pub fn parse(s: &str) -> Option<Guardrail> {
        Guardrail::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

impl AccessSpec {
    /// Parses and validates a YAML spec file.
    pub fn from_yaml(text: &str) -> Result<AccessSpec, Error> {
        SpecFile::from_yaml(text)?.into_spec()
    }

    /// Parses and validates a JSON spec file.
    pub fn from_json(text: &str) -> Result<AccessSpec, Error> {
        SpecFile::from_json(text)?.into_spec()
    }

    /// The grant policy's name, defaulted.
    pub fn grant_policy_name(name: &str) -> String {
        format!("crossrole-assume-{name}")
    }
}

pub use validate::{adopt_outside_selection, validate, validate_selector};

#[cfg(test)]
mod tests;
