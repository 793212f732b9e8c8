//! The trusted side's plan: the customer-managed AssumeRole policy and the users, groups and roles it is attached to.
//!
//! Pure, like the role planner. Order: detach from principals that no longer get it (reduce first), then create
//! or update the document, then attach to new principals. An update writes a new default version and, when IAM's
//! limit of five versions is reached, first deletes the oldest non-default version.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    ops::{ChangeKind, ShownChange},
    policy::PolicyDocument,
    spec::{OWNER_TAG_KEY, OWNER_TAG_VALUE, PrincipalKind, SPEC_TAG_KEY, owner_of},
};

pub mod cut;
pub mod former;

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// A version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, …
    pub id: String,
    /// Whether it is the default version.
    pub is_default: bool,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// The grant policy as read from IAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedGrant {
    /// ARN.
    pub policy_arn: String,
    /// Tags of the policy.
    pub tags: BTreeMap<String, String>,
    /// The default version's document, as IAM returned it.
    pub default_document: String,
    /// Every version.
    pub versions: Vec<PolicyVersion>,
    /// Who it is attached to.
    pub attachments: BTreeSet<(PrincipalKind, String)>,
}

/// One change on the trusted side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChange {
    /// Create the policy.
    CreatePolicy {
        /// The policy's name.
        name: String,
        /// The IAM path to create it under.
        path: String,
        /// Document JSON.
        document: String,
        /// Tags (ownership).
        tags: BTreeMap<String, String>,
    },
    /// Write a new default version.
    UpdatePolicy {
        /// Before, normalized.
        before: String,
        /// After JSON.
        after: String,
        /// A version to delete first, to stay within five.
        delete_version: Option<String>,
    },
    /// Attach to a principal.
    Attach {
        /// User, group or role.
        kind: PrincipalKind,
        /// The principal's name in the trusted account.
        name: String,
    },
    /// Detach from a principal.
    Detach {
        /// User, group or role.
        kind: PrincipalKind,
        /// The principal's name in the trusted account.
        name: String,
    },
    /// Delete the policy, after deleting its non-default versions.
    DeletePolicy {
        /// Non-default versions to delete first.
        versions: Vec<String>,
    },
}

impl GrantChange {
    /// The change as people see it (a grant policy names roles, never a secret).
    pub fn shown(&self) -> ShownChange {
        let c = self;
        let pretty = |s: &str| {
            serde_json::from_str::<serde_json::Value>(s)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| s.to_string())
        };
        let (kind, subject, before, after) = match c {
            GrantChange::CreatePolicy { name, path, document, .. } => {
                (ChangeKind::CreateGrantPolicy, format!("{path}{name}"), String::new(), pretty(document))
            }
            GrantChange::UpdatePolicy { before, after, .. } => {
                (ChangeKind::UpdateGrantPolicy, String::new(), before.clone(), pretty(after))
            }
            GrantChange::Attach { kind, name } => {
                (ChangeKind::AttachGrantPolicy, format!("{}/{name}", kind.as_str()), String::new(), String::new())
            }
            GrantChange::Detach { kind, name } => {
                (ChangeKind::DetachGrantPolicy, format!("{}/{name}", kind.as_str()), String::new(), String::new())
            }
            GrantChange::DeletePolicy { .. } => {
                (ChangeKind::DeleteGrantPolicy, String::new(), String::new(), String::new())
            }
        };
        ShownChange { kind, subject, before, after }
    }
}

/// The trusted side's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantPlan {
    /// Nothing to do.
    InSync,
    /// These changes, in order.
    Changes(Vec<GrantChange>),
    /// A policy of that name exists that this spec does not own.
    Conflict {
        /// Its owning spec, or `None` when crossrole does not manage it.
        owner: Option<String>,
    },
}

impl GrantPlan {
    /// The changes (none for in sync or a conflict).
    pub fn changes(&self) -> &[GrantChange] {
        match self {
            GrantPlan::Changes(c) => c,
            _ => &[],
        }
    }
}

fn owner(tags: &BTreeMap<String, String>) -> Option<String> {
    owner_of(tags).map(String::from)
}

/// Plans the grant policy `name` at `path` with `document`, attached to exactly `principals`.
pub fn plan_grant(
    spec_name: &str,
    name: &str,
    path: &str,
    document: &PolicyDocument,
    principals: &BTreeSet<(PrincipalKind, String)>,
    observed: Option<&ObservedGrant>,
) -> GrantPlan {
    let Some(o) = observed else {
        let mut c = vec![GrantChange::CreatePolicy {
            name: name.into(),
            path: path.into(),
            document: document.to_json(),
            tags: [
                (OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()),
                (SPEC_TAG_KEY.to_string(), spec_name.to_string()),
            ]
            .into(),
        }];
        c.extend(principals.iter().map(|(kind, name)| GrantChange::Attach { kind: *kind, name: name.clone() }));
        return GrantPlan::Changes(c);
    };
    match owner(&o.tags) {
        Some(s) if s == spec_name => {}
        other => return GrantPlan::Conflict { owner: other },
    }
    let mut c: Vec<GrantChange> = o
        .attachments
        .difference(principals)
        .map(|(kind, name)| GrantChange::Detach { kind: *kind, name: name.clone() })
        .collect();
    let same = PolicyDocument::parse_observed(&o.default_document).is_ok_and(|d| &d == document);
    if !same {
        let delete_version = if o.versions.len() >= MAX_POLICY_VERSIONS { oldest_deletable(&o.versions) } else { None };
        let before = PolicyDocument::parse_observed(&o.default_document)
            .map(|d| d.normalized_json())
            .unwrap_or_else(|_| o.default_document.clone());
        c.push(GrantChange::UpdatePolicy { before, after: document.to_json(), delete_version });
    }
    c.extend(
        principals
            .difference(&o.attachments)
            .map(|(kind, name)| GrantChange::Attach { kind: *kind, name: name.clone() }),
    );
    if c.is_empty() { GrantPlan::InSync } else { GrantPlan::Changes(c) }
}

/// Plans removing the grant policy (destroy): detach everywhere, delete the versions, delete the policy.
pub fn plan_grant_delete(spec_name: &str, observed: Option<&ObservedGrant>) -> GrantPlan {
    let Some(o) = observed else { return GrantPlan::InSync };
    match owner(&o.tags) {
        Some(s) if s == spec_name => {}
        other => return GrantPlan::Conflict { owner: other },
    }
    let mut c: Vec<GrantChange> =
        o.attachments.iter().map(|(kind, name)| GrantChange::Detach { kind: *kind, name: name.clone() }).collect();
    c.push(GrantChange::DeletePolicy {
        versions: o.versions.iter().filter(|v| !v.is_default).map(|v| v.id.clone()).collect(),
    });
    GrantPlan::Changes(c)
}

/// The version to delete to make room for a new one: the oldest that is not the default.
pub fn oldest_deletable(versions: &[PolicyVersion]) -> Option<String> {
    versions.iter().filter(|v| !v.is_default).min_by_key(|v| (v.created, version_number(&v.id))).map(|v| v.id.clone())
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{names::Partition, policy::grant_policy};

    fn doc(accounts: &[&str]) -> PolicyDocument {
        grant_policy(Partition::Aws, "audit", "/", "Audit", &accounts.iter().map(|a| a.to_string()).collect(), None).0
    }

    fn principals(list: &[(PrincipalKind, &str)]) -> BTreeSet<(PrincipalKind, String)> {
        list.iter().map(|(k, n)| (*k, n.to_string())).collect()
    }

    fn observed(d: &PolicyDocument, versions: usize, attached: &[(PrincipalKind, &str)]) -> ObservedGrant {
        ObservedGrant {
            policy_arn: "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit".into(),
            tags: [
                (OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()),
                (SPEC_TAG_KEY.to_string(), "audit".to_string()),
            ]
            .into(),
            default_document: percent_encoding::utf8_percent_encode(&d.to_json(), percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
            versions: (1..=versions)
                .map(|i| PolicyVersion { id: format!("v{i}"), is_default: i == versions, created: 1000 + i as u64 })
                .collect(),
            attachments: principals(attached),
        }
    }

    fn kinds(p: &GrantPlan) -> Vec<String> {
        p.changes()
            .iter()
            .map(|c| {
                let shown = c.shown();
                format!("{} {}", shown.kind.describe(), shown.subject).trim().to_string()
            })
            .collect()
    }

    #[test]
    fn create_then_in_sync_then_drift() {
        let want = principals(&[(PrincipalKind::Group, "auditors"), (PrincipalKind::User, "alice")]);
        let d = doc(&["222233334444"]);
        let p = plan_grant("audit", "crossrole-assume-audit", "/crossrole/", &d, &want, None);
        assert_eq!(
            kinds(&p),
            [
                "create grant policy /crossrole/crossrole-assume-audit",
                "attach grant policy user/alice",
                "attach grant policy group/auditors",
            ]
        );
        let o = observed(&d, 1, &[(PrincipalKind::Group, "auditors"), (PrincipalKind::User, "alice")]);
        assert_eq!(
            plan_grant("audit", "crossrole-assume-audit", "/crossrole/", &d, &want, Some(&o)),
            GrantPlan::InSync
        );

        // A new target account, and someone attached it by hand to bob: detach first, update, attach.
        let o = observed(&d, 5, &[(PrincipalKind::User, "bob"), (PrincipalKind::User, "alice")]);
        let p = plan_grant(
            "audit",
            "crossrole-assume-audit",
            "/crossrole/",
            &doc(&["222233334444", "333344445555"]),
            &want,
            Some(&o),
        );
        assert_eq!(
            kinds(&p),
            ["detach grant policy user/bob", "update grant policy", "attach grant policy group/auditors",]
        );
        assert!(matches!(&p.changes()[1], GrantChange::UpdatePolicy { delete_version: Some(v), .. } if v == "v1"));
    }

    #[test]
    fn ownership_and_delete() {
        let d = doc(&["222233334444"]);
        let mut o = observed(&d, 3, &[(PrincipalKind::Role, "ops")]);
        assert_eq!(
            kinds(&plan_grant_delete("audit", Some(&o))),
            ["detach grant policy role/ops", "delete grant policy"]
        );
        assert!(
            matches!(&plan_grant_delete("audit", Some(&o)).changes()[1], GrantChange::DeletePolicy { versions } if versions == &["v1", "v2"])
        );
        o.tags.clear();
        assert_eq!(
            plan_grant("audit", "n", "/crossrole/", &d, &BTreeSet::new(), Some(&o)),
            GrantPlan::Conflict { owner: None }
        );
        assert_eq!(plan_grant_delete("audit", Some(&o)), GrantPlan::Conflict { owner: None });
    }
}
