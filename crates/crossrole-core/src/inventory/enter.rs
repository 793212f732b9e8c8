//! Can this caller enter this role? The yes/no for one caller and request context, decided on the role's trust
//! policy as IAM's documented evaluation does (an explicit Deny wins, then an Allow, else an implicit deny).
//!
//! Principals: `*` matches every caller, anonymous and services included; an AWS account id (root) matches every
//! IAM principal of that account; a role ARN matches the role (its sessions); a `Service` or `Federated` entry
//! matches that service or provider only. `NotPrincipal` matches every caller it does not name. Conditions are
//! evaluated with the operators of [`crate::policy::eval`]; one it does not model makes the answer
//! [`Decision::Unknown`].

use std::collections::BTreeMap;

use super::{Entrant, EntrantKind, InventoryRole, REDACTED_EXTERNAL_ID};
use crate::{
    names::Arn,
    policy::{
        Effect, PolicyDocument, Principals, Statement,
        eval::{Miss, conditions_hold, glob},
    },
};

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCaller {
    /// An IAM principal: an account root (`arn:aws:iam::111122223333:root`), a user or a role ARN (a role stands
    /// for its sessions).
    Iam {
        /// Its ARN.
        arn: String,
    },
    /// An unsigned request.
    Anonymous,
    /// An AWS service (`ec2.amazonaws.com`).
    Service {
        /// The service principal.
        name: String,
    },
    /// A federated identity through a provider (a SAML or OIDC provider ARN, or `cognito-identity.amazonaws.com`).
    Federated {
        /// The provider.
        provider: String,
    },
}

/// The ExternalId a caller brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalIdProbe {
    /// None.
    Absent,
    /// The one the role requires.
    Right,
    /// Another one.
    Wrong,
}

/// A caller and its request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Who asks.
    pub caller: ProbeCaller,
    /// The action (`sts:AssumeRole`, `sts:AssumeRoleWithSAML`, `sts:AssumeRoleWithWebIdentity`).
    pub action: String,
    /// The ExternalId it brings.
    pub external_id: ExternalIdProbe,
    /// `aws:MultiFactorAuthPresent`; `None` when the request carries no such key.
    pub mfa: Option<bool>,
    /// `aws:PrincipalOrgID`, when the caller is in an organization.
    pub org_id: Option<String>,
    /// `aws:PrincipalOrgPaths`.
    pub org_paths: Vec<String>,
    /// `sts:SourceIdentity`, when the caller sets one.
    pub source_identity: Option<String>,
}

impl Probe {
    /// `sts:AssumeRole` by `caller`, with no ExternalId, MFA key, organization or source identity.
    pub fn new(caller: ProbeCaller) -> Probe {
        let action = match &caller {
            ProbeCaller::Federated { provider } if provider.contains(":saml-provider/") => "sts:AssumeRoleWithSAML",
            ProbeCaller::Federated { .. } => "sts:AssumeRoleWithWebIdentity",
            _ => "sts:AssumeRole",
        };
        Probe {
            caller,
            action: action.to_string(),
            external_id: ExternalIdProbe::Absent,
            mfa: None,
            org_id: None,
            org_paths: Vec::new(),
            source_identity: None,
        }
    }

    fn account(&self) -> Option<&str> {
        match &self.caller {
            ProbeCaller::Iam { arn } => Arn::parse(arn).map(|a| a.account),
            _ => None,
        }
    }

    /// The request context IAM would build, keys lowercased; `right_external_id` stands for the right ExternalId.
    fn context(&self, right_external_id: &str) -> BTreeMap<&'static str, Vec<String>> {
        let mut c = BTreeMap::new();
        if let ProbeCaller::Iam { arn } = &self.caller {
            c.insert("aws:principalarn", vec![arn.clone()]);
            if let Some(account) = self.account() {
                c.insert("aws:principalaccount", vec![account.to_string()]);
            }
            let kind = if arn.ends_with(":root") {
                "Account"
            } else if arn.contains(":user/") {
                "User"
            } else {
                "AssumedRole"
            };
            c.insert("aws:principaltype", vec![kind.to_string()]);
        }
        match self.external_id {
            ExternalIdProbe::Absent => {}
            ExternalIdProbe::Right => {
                c.insert("sts:externalid", vec![right_external_id.to_string()]);
            }
            ExternalIdProbe::Wrong => {
                c.insert("sts:externalid", vec!["<not the required one>".to_string()]);
            }
        }
        if let Some(mfa) = self.mfa {
            c.insert("aws:multifactorauthpresent", vec![mfa.to_string()]);
        }
        if let Some(org) = &self.org_id {
            c.insert("aws:principalorgid", vec![org.clone()]);
        }
        if !self.org_paths.is_empty() {
            c.insert("aws:principalorgpaths", self.org_paths.clone());
        }
        if let Some(id) = &self.source_identity {
            c.insert("sts:sourceidentity", vec![id.clone()]);
        }
        c
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement lets the caller in and no Deny keeps it out.
    Allowed,
    /// A Deny statement keeps it out.
    ExplicitDeny,
    /// No Allow statement lets it in.
    ImplicitDeny,
    /// The policy does not parse, or uses a condition operator that is not modelled (named).
    Unknown(String),
}

/// Whether `probe`'s caller can enter `role` (its stored trust policy, ExternalIds redacted: a probe that brings
/// the right ExternalId is taken to bring the one each condition asks for).
pub fn can_enter(role: &InventoryRole, probe: &Probe) -> bool {
    match PolicyDocument::parse_observed(&role.trust_policy) {
        Ok(doc) => decide(&doc, probe, REDACTED_EXTERNAL_ID) == Decision::Allowed,
        Err(_) => false,
    }
}

/// IAM's decision for `probe` on the trust policy `doc`; `right_external_id` is the value a probe that brings the
/// right ExternalId sends (the policy's own value, or [`REDACTED_EXTERNAL_ID`] on a stored policy).
pub fn decide(doc: &PolicyDocument, probe: &Probe, right_external_id: &str) -> Decision {
    let context = probe.context(right_external_id);
    let lookup = |k: &str| context.get(k);
    let mut allowed = false;
    for statement in doc.statements() {
        if !in_scope(statement, probe) {
            continue;
        }
        match conditions_hold(&statement.condition, &lookup) {
            Ok(()) => match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            },
            Err(Miss::Failed(_)) => {}
            Err(Miss::Unsupported(op)) => return Decision::Unknown(format!("condition operator {op}")),
        }
    }
    if allowed { Decision::Allowed } else { Decision::ImplicitDeny }
}

/// The entrant of `role` that names `probe`'s caller for its action, if any: every caller [`can_enter`] lets in
/// has one (the classification's promise, checked by the tests and the judge).
pub fn entrant_for<'r>(role: &'r InventoryRole, probe: &Probe) -> Option<&'r Entrant> {
    let action = probe.action.to_ascii_lowercase();
    role.entrants.iter().filter(|e| e.actions.iter().any(|a| glob(a, &action))).find(|e| match e.kind {
        EntrantKind::Anyone => true,
        EntrantKind::UnresolvableId | EntrantKind::Other => false,
        EntrantKind::Service => matches!(&probe.caller, ProbeCaller::Service { name } if *name == e.principal),
        EntrantKind::Federated => {
            matches!(&probe.caller, ProbeCaller::Federated { provider } if *provider == e.principal)
        }
        EntrantKind::OrganizationAccount | EntrantKind::OutsideAccount | EntrantKind::FormerMember => {
            // A root stands for its account, narrowed by aws:PrincipalArn or not (the conditions are not matched here).
            let entry = match &e.account_id {
                Some(account) if e.principal.ends_with(":root") => account.clone(),
                _ => e.principal.clone(),
            };
            aws_entry_matches(&entry, &probe.caller)
        }
    })
}

fn in_scope(s: &Statement, probe: &Probe) -> bool {
    let action = probe.action.to_ascii_lowercase();
    let action_in = match (&s.action, &s.not_action) {
        (Some(a), _) => a.iter().any(|p| glob(p, &action)),
        (None, Some(n)) => !n.iter().any(|p| glob(p, &action)),
        (None, None) => false,
    };
    if !action_in {
        return false;
    }
    match (&s.principal, &s.not_principal) {
        (Some(p), _) => principals_match(p, &probe.caller),
        (None, Some(np)) => !principals_match(np, &probe.caller),
        (None, None) => false,
    }
}

/// Whether a principal element names `caller`.
pub(crate) fn principals_match(p: &Principals, caller: &ProbeCaller) -> bool {
    match p {
        Principals::Any => true,
        Principals::Typed(map) => match caller {
            ProbeCaller::Iam { .. } => {
                map.get("AWS").is_some_and(|set| set.iter().any(|entry| aws_entry_matches(entry, caller)))
            }
            ProbeCaller::Anonymous => map.get("AWS").is_some_and(|set| set.contains("*")),
            ProbeCaller::Service { name } => map.get("Service").is_some_and(|set| set.contains(name)),
            ProbeCaller::Federated { provider } => map.get("Federated").is_some_and(|set| set.contains(provider)),
        },
    }
}

/// Whether an `AWS` principal entry (normalized: an account id stands for its root) names an IAM caller.
pub(crate) fn aws_entry_matches(entry: &str, caller: &ProbeCaller) -> bool {
    let ProbeCaller::Iam { arn } = caller else { return entry == "*" && matches!(caller, ProbeCaller::Anonymous) };
    if entry == "*" || entry == arn {
        return true;
    }
    // An account id stands for every principal of the account; anything else names one principal exactly.
    Arn::parse(arn).is_some_and(|who| entry == who.account)
}
