//! Specs and selectors: the API's `AccessSpec` is read as given into a [`RawSpec`] (nothing refused here: the
//! rules live in crossrole-core's validation), and a valid spec goes back out through its `RawSpec`.

use crossrole_core::{
    AccessSpec,
    spec::{
        RawDuration, RawSpec, TargetSelector,
        raw::{
            RawGrant, RawGuardrails, RawLimit, RawQuotas, RawRole, RawRollout, RawSelector, RawTagCondition, RawTrust,
            RawVerify, RawWaiver,
        },
        validate_selector,
    },
};

use crate::{
    ToWire,
    enums::{choice, choice_number},
    pb,
};

/// The request's spec, validated: violations are named under `spec.`; a missing spec is `spec: required`.
pub fn spec(wire: Option<&pb::AccessSpec>) -> Result<AccessSpec, crossrole_core::Error> {
    let wire = wire.ok_or_else(|| crossrole_core::Error::invalid("spec", "required"))?;
    AccessSpec::try_from(&raw_spec(wire)).map_err(|e| e.under("spec"))
}

/// A selector from a request, validated; violations are named under `at`.
pub fn selector(wire: Option<&pb::TargetSelector>, at: &str) -> Result<TargetSelector, crossrole_core::Error> {
    validate_selector(&wire.map(raw_selector).unwrap_or_default(), at)
}

fn duration(d: &prost_types::Duration) -> RawDuration {
    RawDuration { seconds: d.seconds, nanos: d.nanos }
}

fn wire_duration(d: &RawDuration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.seconds, nanos: d.nanos }
}

fn limit(l: &pb::Limit) -> Option<RawLimit> {
    match l.kind? {
        pb::limit::Kind::Count(n) => Some(RawLimit::Count(n)),
        pb::limit::Kind::Percent(p) => Some(RawLimit::Percent(p)),
    }
}

fn wire_limit(l: &RawLimit) -> pb::Limit {
    pb::Limit {
        kind: Some(match *l {
            RawLimit::Count(n) => pb::limit::Kind::Count(n),
            RawLimit::Percent(p) => pb::limit::Kind::Percent(p),
        }),
    }
}

/// A selector as given.
pub fn raw_selector(t: &pb::TargetSelector) -> RawSelector {
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
        states: t.states.iter().map(|s| choice(*s)).collect(),
    }
}

/// A spec as given.
pub fn raw_spec(p: &pb::AccessSpec) -> RawSpec {
    RawSpec {
        name: p.name.clone(),
        role: p.role.as_ref().map(|r| RawRole {
            name: r.name.clone(),
            path: r.path.clone(),
            description: r.description.clone(),
            max_session_duration: r.max_session_duration.as_ref().map(duration),
            trust: r.trust.as_ref().map(|t| RawTrust {
                account_ids: t.account_ids.clone(),
                principal_arns: t.principal_arns.clone(),
                external_id: t.external_id.clone(),
                require_mfa: t.require_mfa,
                principal_org_id: t.principal_org_id.clone(),
                principal_match: choice(t.principal_match),
            }),
            managed_policy_arns: r.managed_policy_arns.clone(),
            inline_policies: r.inline_policies.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            permissions_boundary_arn: r.permissions_boundary_arn.clone(),
            tags: r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            adopt_existing: r.adopt_existing,
            adopt_accounts: r.adopt_accounts.clone(),
            adopt_role_ids: r.adopt_role_ids.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            revoke_sessions_on_narrowing: r.revoke_sessions_on_narrowing,
        }),
        targets: p.targets.as_ref().map(raw_selector),
        grant: p.grant.as_ref().map(|g| RawGrant {
            account_id: g.account_id.clone(),
            user_names: g.user_names.clone(),
            group_names: g.group_names.clone(),
            role_names: g.role_names.clone(),
            policy_name: g.policy_name.clone(),
        }),
        rollout: p.rollout.as_ref().map(|r| RawRollout {
            max_concurrency: r.max_concurrency.as_ref().and_then(limit),
            failure_tolerance: r.failure_tolerance.as_ref().and_then(limit),
            verify: r
                .verify
                .as_ref()
                .map(|v| RawVerify { enabled: v.enabled, timeout: v.timeout.as_ref().map(duration) }),
            prune: r.prune,
        }),
        guardrails: p.guardrails.as_ref().map(|g| RawGuardrails {
            quotas: g.quotas.as_ref().map(|q| RawQuotas {
                trust_policy_size: q.trust_policy_size,
                inline_policies_size: q.inline_policies_size,
                managed_policies_per_role: q.managed_policies_per_role,
            }),
            waivers: g
                .waivers
                .iter()
                .map(|w| RawWaiver { guardrail: choice(w.guardrail), reason: w.reason.clone() })
                .collect(),
        }),
    }
}

impl ToWire for RawSelector {
    type Wire = pb::TargetSelector;

    fn to_wire(&self) -> pb::TargetSelector {
        pb::TargetSelector {
            organizational_unit_ids: self.organizational_unit_ids.clone(),
            exclude_descendants: self.exclude_descendants,
            account_ids: self.account_ids.clone(),
            tags: self.tags.iter().map(|c| pb::TagCondition { key: c.key.clone(), value: c.value.clone() }).collect(),
            exclude_account_ids: self.exclude_account_ids.clone(),
            exclude_organizational_unit_ids: self.exclude_organizational_unit_ids.clone(),
            include_management_account: self.include_management_account,
            states: self.states.iter().map(|s| choice_number(*s)).collect(),
            organizational_unit_paths: self.organizational_unit_paths.clone(),
            exclude_organizational_unit_paths: self.exclude_organizational_unit_paths.clone(),
        }
    }
}

impl ToWire for TargetSelector {
    type Wire = pb::TargetSelector;

    fn to_wire(&self) -> pb::TargetSelector {
        RawSelector::from(self).to_wire()
    }
}

impl ToWire for RawSpec {
    type Wire = pb::AccessSpec;

    fn to_wire(&self) -> pb::AccessSpec {
        pb::AccessSpec {
            name: self.name.clone(),
            role: self.role.as_ref().map(|r| pb::RoleSpec {
                name: r.name.clone(),
                path: r.path.clone(),
                description: r.description.clone(),
                max_session_duration: r.max_session_duration.as_ref().map(wire_duration),
                trust: r.trust.as_ref().map(|t| pb::TrustSpec {
                    account_ids: t.account_ids.clone(),
                    principal_arns: t.principal_arns.clone(),
                    external_id: t.external_id.clone(),
                    require_mfa: t.require_mfa,
                    principal_org_id: t.principal_org_id.clone(),
                    principal_match: choice_number(t.principal_match),
                }),
                managed_policy_arns: r.managed_policy_arns.clone(),
                inline_policies: r.inline_policies.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                permissions_boundary_arn: r.permissions_boundary_arn.clone(),
                tags: r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                adopt_existing: r.adopt_existing,
                adopt_accounts: r.adopt_accounts.to_vec(),
                adopt_role_ids: r.adopt_role_ids.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                revoke_sessions_on_narrowing: r.revoke_sessions_on_narrowing,
            }),
            targets: self.targets.as_ref().map(ToWire::to_wire),
            grant: self.grant.as_ref().map(|g| pb::TrustedGrant {
                account_id: g.account_id.clone(),
                user_names: g.user_names.clone(),
                group_names: g.group_names.clone(),
                role_names: g.role_names.clone(),
                policy_name: g.policy_name.clone(),
            }),
            rollout: self.rollout.as_ref().map(|r| pb::RolloutOptions {
                max_concurrency: r.max_concurrency.as_ref().map(wire_limit),
                failure_tolerance: r.failure_tolerance.as_ref().map(wire_limit),
                verify: r
                    .verify
                    .as_ref()
                    .map(|v| pb::VerifyOptions { enabled: v.enabled, timeout: v.timeout.as_ref().map(wire_duration) }),
                prune: r.prune,
            }),
            guardrails: self.guardrails.as_ref().map(|g| pb::GuardrailOptions {
                quotas: g.quotas.as_ref().map(|q| pb::IamQuotas {
                    trust_policy_size: q.trust_policy_size,
                    inline_policies_size: q.inline_policies_size,
                    managed_policies_per_role: q.managed_policies_per_role,
                }),
                waivers: g
                    .waivers
                    .iter()
                    .map(|w| pb::GuardrailWaiver { guardrail: choice_number(w.guardrail), reason: w.reason.clone() })
                    .collect(),
            }),
        }
    }
}

impl ToWire for AccessSpec {
    type Wire = pb::AccessSpec;

    fn to_wire(&self) -> pb::AccessSpec {
        RawSpec::from(self).to_wire()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> AccessSpec {
        AccessSpec::from_yaml(
            r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  max_session_duration: 2h
  trust:
    account_ids: ["111111111111"]
    external_id: a-long-enough-external-id
  managed_policy_arns: ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
  inline_policies:
    logs: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:Get*","Resource":"*"}]}'
  tags: {team: platform}
targets:
  organizational_unit_paths: [/Workloads]
  tags: [{key: env, value: prod}, {key: owner}]
  exclude_account_ids: ["333333333333"]
grant:
  account_id: "111111111111"
  group_names: [auditors]
rollout: {max_concurrency: 10%, failure_tolerance: 2, prune: true}
guardrails:
  waivers: [{guardrail: admin-access, reason: "break glass"}]
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_spec_goes_out_and_comes_back_the_same() {
        let s = example();
        let wire = s.to_wire();
        assert_eq!(raw_spec(&wire), RawSpec::from(&s));
        assert_eq!(spec(Some(&wire)).unwrap(), s);
    }

    #[test]
    fn what_does_not_fit_is_named_under_spec() {
        let mut wire = example().to_wire();
        wire.role.as_mut().unwrap().trust.as_mut().unwrap().principal_match = 9;
        wire.targets.as_mut().unwrap().states = vec![2, 42];
        let e = spec(Some(&wire)).unwrap_err();
        let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"spec.role.trust.principal_match"), "{e}");
        assert!(fields.iter().any(|f| f.starts_with("spec.targets.states")), "{e}");
        assert_eq!(spec(None).unwrap_err().to_string(), "invalid input: spec: required");
    }

    #[test]
    fn an_unknown_number_survives_the_round_trip() {
        let mut raw = RawSpec::from(&example());
        raw.targets.as_mut().unwrap().states.push(crossrole_core::spec::Choice::Unknown(42));
        assert_eq!(raw_spec(&raw.to_wire()), raw);
    }
}
