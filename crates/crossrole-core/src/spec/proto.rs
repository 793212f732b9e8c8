//! Conversions between the domain spec and the wire spec: `TryFrom` validates on the way in, `From` on the way out.

use crossrole_proto::v1 as pb;

use super::{AccessSpec, AccountState, Guardrail, Limit, PrincipalMatch, TargetSelector, validate};
use crate::Error;

impl TryFrom<&pb::AccessSpec> for AccessSpec {
    type Error = Error;

    fn try_from(p: &pb::AccessSpec) -> Result<Self, Error> {
        validate(p)
    }
}

impl TryFrom<pb::AccessSpec> for AccessSpec {
    type Error = Error;

    fn try_from(p: pb::AccessSpec) -> Result<Self, Error> {
        validate(&p)
    }
}

fn duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

fn limit(l: Limit) -> pb::Limit {
    pb::Limit {
        kind: Some(match l {
            Limit::Count(n) => pb::limit::Kind::Count(n),
            Limit::Percent(p) => pb::limit::Kind::Percent(p),
        }),
    }
}

impl From<AccountState> for pb::AccountState {
    fn from(s: AccountState) -> Self {
        match s {
            AccountState::PendingActivation => pb::AccountState::PendingActivation,
            AccountState::Active => pb::AccountState::Active,
            AccountState::Suspended => pb::AccountState::Suspended,
            AccountState::PendingClosure => pb::AccountState::PendingClosure,
            AccountState::Closed => pb::AccountState::Closed,
        }
    }
}

impl From<Guardrail> for pb::Guardrail {
    fn from(g: Guardrail) -> Self {
        match g {
            Guardrail::WildcardPrincipal => pb::Guardrail::WildcardPrincipal,
            Guardrail::ExternalPrincipalUnguarded => pb::Guardrail::ExternalPrincipalUnguarded,
            Guardrail::AdminAccess => pb::Guardrail::AdminAccess,
            Guardrail::TrustPolicySize => pb::Guardrail::TrustPolicySize,
            Guardrail::InlinePolicySize => pb::Guardrail::InlinePolicySize,
            Guardrail::ManagedPolicyCount => pb::Guardrail::ManagedPolicyCount,
            Guardrail::WeakExternalId => pb::Guardrail::WeakExternalId,
            Guardrail::UnownedRole => pb::Guardrail::UnownedRole,
        }
    }
}

impl From<&TargetSelector> for pb::TargetSelector {
    fn from(t: &TargetSelector) -> Self {
        pb::TargetSelector {
            organizational_unit_ids: t.organizational_unit_ids.to_vec(),
            exclude_descendants: t.exclude_descendants,
            account_ids: t.account_ids.to_vec(),
            tags: t.tags.iter().map(|c| pb::TagCondition { key: c.key.clone(), value: c.value.clone() }).collect(),
            exclude_account_ids: t.exclude_account_ids.to_vec(),
            exclude_organizational_unit_ids: t.exclude_organizational_unit_ids.to_vec(),
            include_management_account: t.include_management_account,
            states: t.states.iter().map(|s| pb::AccountState::from(*s) as i32).collect(),
            organizational_unit_paths: t.organizational_unit_paths.clone(),
            exclude_organizational_unit_paths: t.exclude_organizational_unit_paths.clone(),
        }
    }
}

impl From<&AccessSpec> for pb::AccessSpec {
    fn from(s: &AccessSpec) -> Self {
        let r = &s.role;
        pb::AccessSpec {
            name: s.name.clone(),
            role: Some(pb::RoleSpec {
                name: r.name.clone(),
                path: r.path.clone(),
                description: r.description.clone(),
                max_session_duration: Some(duration(r.max_session_duration)),
                trust: Some(pb::TrustSpec {
                    account_ids: r.trust.account_ids.iter().cloned().collect(),
                    principal_arns: r.trust.principal_arns.iter().cloned().collect(),
                    external_id: r.trust.external_id.as_ref().map(|e| e.expose().to_string()).unwrap_or_default(),
                    require_mfa: r.trust.require_mfa,
                    principal_org_id: r.trust.principal_org_id.clone().unwrap_or_default(),
                    principal_match: match r.trust.principal_match {
                        PrincipalMatch::Condition => pb::PrincipalMatch::Condition,
                        PrincipalMatch::Direct => pb::PrincipalMatch::Direct,
                    } as i32,
                }),
                managed_policy_arns: r.managed_policy_arns.iter().cloned().collect(),
                inline_policies: r.inline_policies.iter().map(|(k, d)| (k.clone(), d.to_json())).collect(),
                permissions_boundary_arn: r.permissions_boundary_arn.clone().unwrap_or_default(),
                tags: r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                adopt_existing: r.adopt_existing,
            }),
            targets: Some((&s.targets).into()),
            grant: s.grant.as_ref().map(|g| pb::TrustedGrant {
                account_id: g.account_id.clone(),
                user_names: g.user_names.iter().cloned().collect(),
                group_names: g.group_names.iter().cloned().collect(),
                role_names: g.role_names.iter().cloned().collect(),
                policy_name: g.policy_name.clone(),
            }),
            rollout: Some(pb::RolloutOptions {
                max_concurrency: Some(limit(s.rollout.max_concurrency)),
                failure_tolerance: Some(limit(s.rollout.failure_tolerance)),
                verify: Some(pb::VerifyOptions {
                    enabled: Some(s.rollout.verify),
                    timeout: Some(duration(s.rollout.verify_timeout)),
                }),
                prune: s.rollout.prune,
            }),
            guardrails: Some(pb::GuardrailOptions {
                quotas: Some(pb::IamQuotas {
                    trust_policy_size: s.guardrails.quotas.trust_policy_size as u32,
                    inline_policies_size: s.guardrails.quotas.inline_policies_size as u32,
                    managed_policies_per_role: s.guardrails.quotas.managed_policies_per_role as u32,
                }),
                waivers: s
                    .guardrails
                    .waivers
                    .iter()
                    .map(|(g, reason)| pb::GuardrailWaiver {
                        guardrail: pb::Guardrail::from(*g) as i32,
                        reason: reason.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

impl From<AccessSpec> for pb::AccessSpec {
    fn from(s: AccessSpec) -> Self {
        (&s).into()
    }
}
