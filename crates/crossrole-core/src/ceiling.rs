//! The organization's ceiling on what crossrole can grant, as crossroled enforces it before any AWS call.
//!
//! The ceiling's teeth are in IAM: the bootstrap role (deploy/aws/crossrole-bootstrap.yaml) may create roles only
//! under the ceiling's path and with its permissions boundary, may not remove the boundary, and may attach only the
//! allowed managed policies — so even a stolen crossroled cannot make a role that exceeds the boundary. crossroled
//! checks the same rules on every spec first (a spec asking for another boundary is a field error, not an
//! AccessDenied halfway through a rollout) and adds the rules IAM has no condition for: which accounts and
//! organizations a trust policy may name.
//!
//! A spec without a boundary gets the ceiling's; the plan shows it like any other boundary.

use std::collections::BTreeSet;

use crate::{
    Error,
    error::Collector,
    names::{self, Arn},
    policy::eval::glob,
    spec::AccessSpec,
};

/// The ceiling (crossroled's `[ceiling]` setting). Every part is optional; an empty ceiling allows anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceiling {
    /// The permissions boundary every role crossrole creates carries: a policy ARN, in which `${account_id}` and
    /// `${partition}` stand for the role's account and partition (the bootstrap template deploys the boundary in
    /// every account).
    pub permissions_boundary: Option<String>,
    /// The IAM path every role crossrole creates lives under (`/crossrole/`); the bootstrap role may touch no role
    /// outside it.
    pub role_path: Option<String>,
    /// Managed policy ARNs a role may have attached, with `*` and `?` wildcards and the variables above; empty
    /// allows any.
    pub allowed_managed_policies: Vec<String>,
    /// Accounts a trust policy may name (directly, or as the account of a principal ARN), and the grant's account.
    pub allowed_trusted_accounts: BTreeSet<String>,
    /// Also allow any account of crossrole's own organization, and `principal_org_id` naming it.
    pub trust_within_organization: bool,
}

/// What the ceiling needs to know of the organization.
#[derive(Debug, Clone, Copy, Default)]
pub struct Organization<'a> {
    /// Its id (`o-…`).
    pub id: Option<&'a str>,
    /// Its accounts.
    pub accounts: Option<&'a BTreeSet<String>>,
}

impl Ceiling {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self == &Ceiling::default()
    }

    fn restricts_trust(&self) -> bool {
        !self.allowed_trusted_accounts.is_empty() || self.trust_within_organization
    }

    /// Checks `spec` against the ceiling; every violation names its field and the rule.
    pub fn check(&self, spec: &AccessSpec, organization: Organization<'_>) -> Result<(), Error> {
        let mut v = Collector::default();
        let role = &spec.role;
        let sample = |text: &str| names::expand(text, names::Place::SAMPLE);
        if let (Some(ceiling), Some(asked)) = (&self.permissions_boundary, &role.permissions_boundary_arn)
            && sample(ceiling) != sample(asked)
        {
            v.push(
                "role.permissions_boundary_arn",
                format!("must be the organization's ceiling, {ceiling} (or left out: crossrole sets it), not {asked}"),
            );
        }
        if let Some(prefix) = &self.role_path
            && !role.path.starts_with(prefix.as_str())
        {
            v.push("role.path", format!("must be under {prefix}, the path the ceiling confines crossrole's roles to"));
        }
        if !self.allowed_managed_policies.is_empty() {
            for (i, arn) in role.managed_policy_arns.iter().enumerate() {
                if !self.allowed_managed_policies.iter().any(|p| glob(&sample(p), &sample(arn))) {
                    v.push(
                        format!("role.managed_policy_arns[{i}]"),
                        format!("{arn} is not among the managed policies the ceiling allows"),
                    );
                }
            }
        }
        if self.restricts_trust() {
            let allowed = |account: &str| {
                self.allowed_trusted_accounts.contains(account)
                    || (self.trust_within_organization && organization.accounts.is_some_and(|m| m.contains(account)))
            };
            let rule = |what: String| {
                format!(
                    "{what} is outside the ceiling: a trust may name {}",
                    match (self.allowed_trusted_accounts.is_empty(), self.trust_within_organization) {
                        (false, true) => format!(
                            "the accounts {} and those of the organization",
                            self.allowed_trusted_accounts.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        (false, false) => format!(
                            "only the accounts {}",
                            self.allowed_trusted_accounts.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        _ => "only accounts of the organization".to_string(),
                    }
                )
            };
            let trust = &role.trust;
            for (i, account) in trust.account_ids.iter().enumerate() {
                if !allowed(account) {
                    v.push(format!("role.trust.account_ids[{i}]"), rule(format!("account {account}")));
                }
            }
            for (i, arn) in trust.principal_arns.iter().enumerate() {
                let account = Arn::parse(arn).map(|a| a.account.to_string());
                match account {
                    Some(a) if allowed(&a) => {}
                    _ => v.push(format!("role.trust.principal_arns[{i}]"), rule(format!("principal {arn}"))),
                }
            }
            if let Some(org) = &trust.principal_org_id
                && !(self.trust_within_organization && organization.id == Some(org.as_str()))
            {
                v.push("role.trust.principal_org_id", rule(format!("organization {org}")));
            }
            if let Some(g) = &spec.grant
                && !allowed(&g.account_id)
            {
                v.push("grant.account_id", rule(format!("account {}", g.account_id)));
            }
        }
        v.finish(())
    }

    /// The accounts `spec` names whose membership of the organization [`Ceiling::check`] decides on: with
    /// `trust_within_organization`, those its trust and its grant name that are not allowed by id. A tree of the
    /// organization may be older than an account's joining: whoever checks asks Organizations about those it
    /// lacks before taking them for outsiders.
    pub fn membership_decides(&self, spec: &AccessSpec) -> BTreeSet<String> {
        if !self.trust_within_organization {
            return BTreeSet::new();
        }
        let trust = &spec.role.trust;
        let principals = trust.principal_arns.iter().filter_map(|p| Arn::parse(p).map(|a| a.account.to_string()));
        trust
            .account_ids
            .iter()
            .cloned()
            .chain(principals)
            .chain(spec.grant.iter().map(|g| g.account_id.clone()))
            .filter(|a| !self.allowed_trusted_accounts.contains(a))
            .collect()
    }

    /// `spec` under the ceiling: its boundary set to the ceiling's when it has none.
    pub fn apply(&self, mut spec: AccessSpec) -> AccessSpec {
        if spec.role.permissions_boundary_arn.is_none() {
            spec.role.permissions_boundary_arn = self.permissions_boundary.clone();
        }
        spec
    }

    /// Checks the ceiling itself (from configuration): every field named as `ceiling.<field>`.
    pub fn validate(&self) -> Result<(), Error> {
        let mut v = Collector::default();
        if let Some(b) = &self.permissions_boundary
            && let Err(rule) = names::check_policy_arn(b)
        {
            v.push("ceiling.permissions_boundary", rule);
        }
        if let Some(p) = &self.role_path
            && let Err(rule) = names::check_iam_path(p)
        {
            v.push("ceiling.role_path", rule);
        }
        for (i, p) in self.allowed_managed_policies.iter().enumerate() {
            // Wildcards are allowed: check the ARN with them taken for letters.
            if let Err(rule) = names::check_policy_arn(&p.replace(['*', '?'], "x")) {
                v.push(format!("ceiling.allowed_managed_policies[{i}]"), rule);
            }
        }
        for (i, a) in self.allowed_trusted_accounts.iter().enumerate() {
            if let Err(rule) = names::check_account_id(a) {
                v.push(format!("ceiling.allowed_trusted_accounts[{i}]"), rule);
            }
        }
        v.finish(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: &str = "arn:${partition}:iam::${account_id}:policy/crossrole-ceiling/CrossroleCeiling";

    fn ceiling() -> Ceiling {
        Ceiling {
            permissions_boundary: Some(CEILING.into()),
            role_path: Some("/crossrole/".into()),
            allowed_managed_policies: vec![
                "arn:aws:iam::aws:policy/SecurityAudit".into(),
                "arn:aws:iam::aws:policy/job-function/*".into(),
                "arn:aws:iam::${account_id}:policy/approved/*".into(),
            ],
            allowed_trusted_accounts: ["111122223333".to_string()].into(),
            trust_within_organization: true,
        }
    }

    fn spec(role: &str, extra: &str) -> AccessSpec {
        AccessSpec::from_yaml(&format!(
            r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  trust:
    account_ids: ["111122223333"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
{role}targets:
  organizational_unit_ids: [r-abcd]
{extra}"#
        ))
        .unwrap()
    }

    fn violations(c: &Ceiling, s: &AccessSpec, org: Organization<'_>) -> Vec<String> {
        match c.check(s, org) {
            Ok(()) => vec![],
            Err(e) => e.violations().iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn within_the_ceiling() {
        let c = ceiling();
        let members: BTreeSet<String> = ["222233334444".to_string()].into();
        let org = Organization { id: Some("o-abcdefghij"), accounts: Some(&members) };
        let ok = spec(
            "  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/job-function/ViewOnlyAccess, \"arn:aws:iam::${account_id}:policy/approved/Read\"]\n",
            "",
        );
        assert_eq!(violations(&c, &ok, org), Vec::<String>::new());
        // Without a boundary, the ceiling's is set; with the ceiling's own, it stays.
        assert_eq!(c.apply(ok.clone()).role.permissions_boundary_arn.as_deref(), Some(CEILING));
        let own = spec(&format!("  permissions_boundary_arn: \"{CEILING}\"\n"), "");
        assert_eq!(violations(&c, &own, org), Vec::<String>::new());
        // An account of the organization may be trusted, and the organization itself.
        let member = spec("", "").role.trust.clone();
        let mut s = ok.clone();
        s.role.trust.account_ids.insert("222233334444".into());
        s.role.trust.principal_org_id = Some("o-abcdefghij".into());
        assert_eq!(violations(&c, &s, org), Vec::<String>::new(), "{member:?}");
        // An empty ceiling allows anything.
        assert_eq!(violations(&Ceiling::default(), &s, Organization::default()), Vec::<String>::new());
    }

    #[test]
    fn outside_the_ceiling_every_field_is_named() {
        let c = ceiling();
        let members: BTreeSet<String> = ["222233334444".to_string()].into();
        let org = Organization { id: Some("o-abcdefghij"), accounts: Some(&members) };
        let mut s = AccessSpec::from_yaml(
            r#"
name: audit
role:
  name: Audit
  path: /elsewhere/
  trust:
    account_ids: ["111122223333", "999988887777"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  permissions_boundary_arn: arn:aws:iam::aws:policy/AdministratorAccess
  managed_policy_arns: [arn:aws:iam::aws:policy/AdministratorAccess]
targets:
  organizational_unit_ids: [r-abcd]
grant:
  account_id: "999988887777"
  user_names: [mallory]
"#,
        )
        .unwrap();
        s.role.trust.principal_arns.insert("arn:aws:iam::999988887777:role/Thief".into());
        s.role.trust.principal_org_id = Some("o-zzzzzzzzzz".into());
        let got = violations(&c, &s, org);
        let fields: Vec<&str> = got.iter().map(|v| v.split(':').next().unwrap_or("")).collect();
        assert_eq!(
            fields,
            [
                "role.permissions_boundary_arn",
                "role.path",
                "role.managed_policy_arns[0]",
                "role.trust.account_ids[1]",
                "role.trust.principal_arns[0]",
                "role.trust.principal_org_id",
                "grant.account_id",
            ],
            "{got:#?}"
        );
        assert!(got[0].contains("must be the organization's ceiling"), "{}", got[0]);
        assert!(
            got[3].contains("a trust may name the accounts 111122223333 and those of the organization"),
            "{}",
            got[3]
        );
        // `*` as a principal names no account: refused.
        let mut star = spec("", "");
        star.role.trust.principal_arns.insert("*".into());
        assert_eq!(violations(&c, &star, org).len(), 1);
    }

    #[test]
    fn a_ceiling_from_configuration_is_checked() {
        let bad = Ceiling {
            permissions_boundary: Some("arn:aws:iam::${acount}:policy/X".into()),
            role_path: Some("crossrole".into()),
            allowed_managed_policies: vec!["arn:aws:iam::aws:policy/*".into(), "nonsense".into()],
            allowed_trusted_accounts: ["12".to_string()].into(),
            trust_within_organization: false,
        };
        let fields: Vec<String> = bad.validate().unwrap_err().violations().iter().map(|v| v.field.clone()).collect();
        assert_eq!(
            fields,
            [
                "ceiling.permissions_boundary",
                "ceiling.role_path",
                "ceiling.allowed_managed_policies[1]",
                "ceiling.allowed_trusted_accounts[0]"
            ]
        );
        ceiling().validate().unwrap();
    }
}
