//! The spec as given, before validation: every field as the caller wrote it, in the shape of the API's
//! `AccessSpec` but owned by the domain. Spec files ([`super::SpecFile`]) and the wire (crossrole-wire) both
//! become a [`RawSpec`], and [`super::validate`] turns it into an [`AccessSpec`] — the one place the rules live.
//!
//! A `RawSpec` made from a valid [`AccessSpec`] is what the journal keeps of a spec (with its ExternalId sealed):
//! a record independent of the API's messages, serialized with serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AccessSpec, AccountState, Guardrail, Limit, PrincipalMatch, TargetSelector};

/// A closed set's value as given: left out, one of the set, or a number the set does not have (from a newer or a
/// broken client), which validation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice<T> {
    /// Left out: the default applies.
    #[default]
    Unspecified,
    /// A known value.
    Is(T),
    /// A value the set does not have.
    Unknown(i32),
}

/// A length of time as given: whole seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDuration {
    /// Whole seconds.
    pub seconds: i64,
    /// Nanoseconds on top.
    pub nanos: i32,
}

impl From<std::time::Duration> for RawDuration {
    fn from(d: std::time::Duration) -> Self {
        RawDuration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
    }
}

/// An access spec as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSpec {
    /// The spec's name.
    pub name: String,
    /// The role.
    pub role: Option<RawRole>,
    /// Which accounts.
    pub targets: Option<RawSelector>,
    /// The trusted side.
    pub grant: Option<RawGrant>,
    /// Rollout options.
    pub rollout: Option<RawRollout>,
    /// Guardrail quotas and waivers.
    pub guardrails: Option<RawGuardrails>,
}

/// The role as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRole {
    /// Role name.
    pub name: String,
    /// IAM path; empty for `/`.
    pub path: String,
    /// Its description; empty for none.
    pub description: String,
    /// Maximum session duration; left out for IAM's default.
    pub max_session_duration: Option<RawDuration>,
    /// Who may assume it.
    pub trust: Option<RawTrust>,
    /// Managed policy ARNs, in the order given.
    pub managed_policy_arns: Vec<String>,
    /// Inline policy documents (JSON text) by name.
    pub inline_policies: BTreeMap<String, String>,
    /// Permissions boundary ARN; empty for none.
    pub permissions_boundary_arn: String,
    /// The spec's tags.
    pub tags: BTreeMap<String, String>,
    /// Take over an existing role of that name.
    pub adopt_existing: bool,
    /// Take over an existing role of that name only in these accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopt_accounts: Vec<String>,
    /// The role approved in each of those accounts, by its unique id (`RoleId`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adopt_role_ids: BTreeMap<String, String>,
    /// Revoke the sessions issued before a change that takes access away; unset: yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_sessions_on_narrowing: Option<bool>,
}

/// The trust as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawTrust {
    /// Trusted account ids.
    pub account_ids: Vec<String>,
    /// Trusted principal ARNs.
    pub principal_arns: Vec<String>,
    /// ExternalId; empty for none. In the journal, sealed.
    pub external_id: String,
    /// Only sessions signed in with MFA may assume the role.
    pub require_mfa: bool,
    /// Required organization; empty for none.
    pub principal_org_id: String,
    /// How principal ARNs are written into the policy.
    pub principal_match: Choice<PrincipalMatch>,
}

/// A target selector as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSelector {
    /// OU or root ids.
    pub organizational_unit_ids: Vec<String>,
    /// OU paths.
    pub organizational_unit_paths: Vec<String>,
    /// Only accounts directly in those OUs.
    pub exclude_descendants: bool,
    /// Accounts selected by id.
    pub account_ids: Vec<String>,
    /// Tag conditions.
    pub tags: Vec<RawTagCondition>,
    /// Accounts never selected.
    pub exclude_account_ids: Vec<String>,
    /// OUs never selected from.
    pub exclude_organizational_unit_ids: Vec<String>,
    /// OUs never selected from, by path.
    pub exclude_organizational_unit_paths: Vec<String>,
    /// Allow the management account.
    pub include_management_account: bool,
    /// Accepted account states; empty for ACTIVE only.
    pub states: Vec<Choice<AccountState>>,
}

/// A tag condition as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawTagCondition {
    /// The tag's key.
    pub key: String,
    /// Required value; `None` for "the key exists".
    pub value: Option<String>,
}

/// The trusted side as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawGrant {
    /// The trusted account.
    pub account_id: String,
    /// Users that get the policy.
    pub user_names: Vec<String>,
    /// Groups that get the policy.
    pub group_names: Vec<String>,
    /// Roles that get the policy.
    pub role_names: Vec<String>,
    /// The policy's name; empty for the default.
    pub policy_name: String,
}

/// A count or a percentage, as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawLimit {
    /// An absolute count.
    Count(u32),
    /// A percentage of the targets.
    Percent(u32),
}

/// Rollout options as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRollout {
    /// Accounts worked on at once.
    pub max_concurrency: Option<RawLimit>,
    /// Failures tolerated before no new account starts.
    pub failure_tolerance: Option<RawLimit>,
    /// Verification after apply.
    pub verify: Option<RawVerify>,
    /// Remove the role where the spec no longer selects.
    pub prune: bool,
}

/// Verification options as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawVerify {
    /// Verify after apply; `None` for yes.
    pub enabled: Option<bool>,
    /// How long to retry the live check.
    pub timeout: Option<RawDuration>,
}

/// Guardrail options as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawGuardrails {
    /// Quotas; 0 for IAM's default.
    pub quotas: Option<RawQuotas>,
    /// Guardrails this spec waives, each with a reason.
    pub waivers: Vec<RawWaiver>,
}

/// IAM quotas as given; 0 stands for IAM's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawQuotas {
    /// Largest trust policy in characters; 0 for IAM's default (2,048).
    pub trust_policy_size: u32,
    /// Inline policies' total size per role.
    pub inline_policies_size: u32,
    /// Most managed policies per role; 0 for IAM's default (10).
    pub managed_policies_per_role: u32,
}

/// A guardrail waiver as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawWaiver {
    /// The guardrail waived.
    pub guardrail: Choice<Guardrail>,
    /// Why.
    pub reason: String,
}

fn limit(l: Limit) -> RawLimit {
    match l {
        Limit::Count(n) => RawLimit::Count(n),
        Limit::Percent(p) => RawLimit::Percent(p),
    }
}

impl From<&TargetSelector> for RawSelector {
    fn from(t: &TargetSelector) -> Self {
        RawSelector {
            organizational_unit_ids: t.organizational_unit_ids.clone(),
            organizational_unit_paths: t.organizational_unit_paths.clone(),
            exclude_descendants: t.exclude_descendants,
            account_ids: t.account_ids.clone(),
            tags: t.tags.iter().map(|c| RawTagCondition { key: c.key.clone(), value: c.value.clone() }).collect(),
            exclude_account_ids: t.exclude_account_ids.clone(),
            exclude_organizational_unit_ids: t.exclude_organizational_unit_ids.clone(),
            exclude_organizational_unit_paths: t.exclude_organizational_unit_paths.clone(),
            include_management_account: t.include_management_account,
            states: t.states.iter().map(|s| Choice::Is(*s)).collect(),
        }
    }
}

/// A valid spec, given again: validating it gives the same spec back.
impl From<&AccessSpec> for RawSpec {
    fn from(s: &AccessSpec) -> Self {
        let r = &s.role;
        RawSpec {
            name: s.name.clone(),
            role: Some(RawRole {
                name: r.name.clone(),
                path: r.path.clone(),
                description: r.description.clone(),
                max_session_duration: Some(r.max_session_duration.into()),
                trust: Some(RawTrust {
                    account_ids: r.trust.account_ids.iter().cloned().collect(),
                    principal_arns: r.trust.principal_arns.iter().cloned().collect(),
                    external_id: r.trust.external_id.as_ref().map(|e| e.expose().to_string()).unwrap_or_default(),
                    require_mfa: r.trust.require_mfa,
                    principal_org_id: r.trust.principal_org_id.clone().unwrap_or_default(),
                    principal_match: Choice::Is(r.trust.principal_match),
                }),
                managed_policy_arns: r.managed_policy_arns.iter().cloned().collect(),
                inline_policies: r.inline_policies.iter().map(|(k, d)| (k.clone(), d.to_json())).collect(),
                permissions_boundary_arn: r.permissions_boundary_arn.clone().unwrap_or_default(),
                tags: r.tags.clone(),
                adopt_existing: r.adopt_existing,
                adopt_accounts: r.adopt_accounts.iter().cloned().collect(),
                adopt_role_ids: r.adopt_role_ids.clone(),
                revoke_sessions_on_narrowing: (!r.revoke_sessions_on_narrowing).then_some(false),
            }),
            targets: Some((&s.targets).into()),
            grant: s.grant.as_ref().map(|g| RawGrant {
                account_id: g.account_id.clone(),
                user_names: g.user_names.iter().cloned().collect(),
                group_names: g.group_names.iter().cloned().collect(),
                role_names: g.role_names.iter().cloned().collect(),
                policy_name: g.policy_name.clone(),
            }),
            rollout: Some(RawRollout {
                max_concurrency: s.rollout.max_concurrency.map(limit),
                failure_tolerance: Some(limit(s.rollout.failure_tolerance)),
                verify: Some(RawVerify {
                    enabled: Some(s.rollout.verify),
                    timeout: Some(s.rollout.verify_timeout.into()),
                }),
                prune: s.rollout.prune,
            }),
            guardrails: Some(RawGuardrails {
                quotas: Some(RawQuotas {
                    trust_policy_size: s.guardrails.quotas.trust_policy_size as u32,
                    inline_policies_size: s.guardrails.quotas.inline_policies_size as u32,
                    managed_policies_per_role: s.guardrails.quotas.managed_policies_per_role as u32,
                }),
                waivers: s
                    .guardrails
                    .waivers
                    .iter()
                    .map(|(g, reason)| RawWaiver { guardrail: Choice::Is(*g), reason: reason.clone() })
                    .collect(),
            }),
        }
    }
}

impl TryFrom<&RawSpec> for AccessSpec {
    type Error = crate::Error;

    fn try_from(raw: &RawSpec) -> Result<Self, crate::Error> {
        super::validate(raw)
    }
}
