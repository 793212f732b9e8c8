//! Guardrails: the safety rules a spec must pass before any change, and the ExternalId generator.
//!
//! Every finding is an error unless the spec carries an explicit, named waiver for its guardrail (a weak
//! ExternalId is only a warning). A waived finding is still reported, with the waiver's reason. A role that exists
//! and is not owned by crossrole is found per account at plan time ([`unowned_role`]) and is never waivable: the
//! spec must say `adopt_existing` to take it over.

use std::collections::BTreeSet;

use rand::{Rng, distr::Alphanumeric};

use crate::{
    Error, FieldViolation,
    names::{Arn, Partition},
    policy::{Effect, trust_policy},
    spec::{AccessSpec, Guardrail},
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Blocks the spec unless waived.
    Error,
    /// Reported only.
    Warning,
}

/// A guardrail finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// The guardrail.
    pub guardrail: Guardrail,
    /// Whether it blocks the spec (unless waived) or is reported only.
    pub severity: Severity,
    /// Field path in the spec.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
    /// The waiver's reason, if the spec waives this guardrail.
    pub waiver: Option<String>,
}

impl Finding {
    /// Whether this finding blocks the spec.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.waiver.is_none()
    }
}

/// What the guardrails know of the organization. Without it, "outside the organization" cannot be decided and
/// that guardrail is not checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrgContext<'a> {
    /// Ids of the organization's accounts.
    pub member_accounts: Option<&'a BTreeSet<String>>,
}

/// The accounts whose membership of the organization [`check`] looks at: the trusted accounts (by id, and of the
/// principals named by ARN), when neither an ExternalId nor `aws:PrincipalOrgID` guards the trust; else none. A
/// caller that has not read the whole organization confirms these accounts' membership before it checks.
pub fn membership_checked(spec: &AccessSpec) -> Vec<String> {
    let trust = &spec.role.trust;
    if trust.external_id.is_some() || trust.principal_org_id.is_some() {
        return vec![];
    }
    let mut accounts: Vec<String> = Vec::new();
    let named = trust
        .account_ids
        .iter()
        .cloned()
        .chain(trust.principal_arns.iter().filter_map(|p| Arn::parse(p).map(|a| a.account.to_string())));
    for account in named {
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    accounts
}

/// Runs every spec-level guardrail.
pub fn check(spec: &AccessSpec, partition: Partition, org: OrgContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |guardrail: Guardrail, severity: Severity, field: &str, message: String| {
        findings.push(Finding {
            guardrail,
            severity,
            field: field.to_string(),
            message,
            waiver: spec.guardrails.waivers.get(&guardrail).cloned(),
        });
    };
    let role = &spec.role;
    let trust = &role.trust;
    let quotas = &spec.guardrails.quotas;

    if trust.principal_arns.contains("*") {
        add(
            Guardrail::WildcardPrincipal,
            Severity::Error,
            "role.trust.principal_arns",
            "`*` lets any AWS principal in any account assume the role; name the accounts or principals instead".into(),
        );
    }

    if trust.external_id.is_none() && trust.principal_org_id.is_none() {
        let mut outside: Vec<String> = Vec::new();
        if trust.principal_arns.contains("*") {
            outside.push("*".into());
        }
        if let Some(members) = org.member_accounts {
            for account in membership_checked(spec) {
                if !members.contains(&account) && !outside.contains(&account) {
                    outside.push(account);
                }
            }
        }
        if !outside.is_empty() {
            add(
                Guardrail::ExternalPrincipalUnguarded,
                Severity::Error,
                "role.trust",
                format!(
                    "{} outside the organization may assume the role without an ExternalId or aws:PrincipalOrgID \
                     condition (the confused-deputy problem); set role.trust.external_id (`crossrole` can generate one) \
                     or role.trust.principal_org_id",
                    outside.join(", ")
                ),
            );
        }
    }

    for arn in &role.managed_policy_arns {
        if Arn::parse(arn).is_some_and(|a| a.account == "aws" && a.resource == "policy/AdministratorAccess") {
            add(
                Guardrail::AdminAccess,
                Severity::Error,
                "role.managed_policy_arns",
                format!("{arn} grants full administrator access"),
            );
        }
    }
    for (name, doc) in &role.inline_policies {
        let admin = doc.statements().iter().any(|s| {
            s.effect == Effect::Allow
                && s.condition.is_empty()
                && s.action.as_ref().is_some_and(|a| a.contains("*") || a.contains("*:*"))
                && s.resource.as_ref().is_some_and(|r| r.contains("*"))
        });
        if admin {
            add(
                Guardrail::AdminAccess,
                Severity::Error,
                &format!("role.inline_policies[{name:?}]"),
                "allows Action \"*\" on Resource \"*\": full administrator access".into(),
            );
        }
    }

    let trust_size = trust_policy(trust, partition).size();
    if trust_size > quotas.trust_policy_size {
        add(
            Guardrail::TrustPolicySize,
            Severity::Error,
            "role.trust",
            format!(
                "the trust policy is {trust_size} characters; the quota is {} (raise it in Service Quotas, up to 4096, and set guardrails.quotas.trust_policy_size)",
                quotas.trust_policy_size
            ),
        );
    }
    let inline_size: usize = role.inline_policies.values().map(|d| d.size()).sum();
    if inline_size > quotas.inline_policies_size {
        add(
            Guardrail::InlinePolicySize,
            Severity::Error,
            "role.inline_policies",
            format!(
                "the inline policies are {inline_size} characters together; IAM allows {} per role (use managed policies)",
                quotas.inline_policies_size
            ),
        );
    }
    if role.managed_policy_arns.len() > quotas.managed_policies_per_role {
        add(
            Guardrail::ManagedPolicyCount,
            Severity::Error,
            "role.managed_policy_arns",
            format!(
                "{} managed policies; the quota is {} per role",
                role.managed_policy_arns.len(),
                quotas.managed_policies_per_role
            ),
        );
    }
    if let Some(weakness) = trust.external_id.as_ref().and_then(|id| external_id_weakness(id.expose())) {
        add(
            Guardrail::WeakExternalId,
            Severity::Warning,
            "role.trust.external_id",
            format!("{weakness}; use a random value of at least 32 characters (`crossrole external-id` makes one)"),
        );
    }
    findings.sort();
    findings
}

/// Runs the guardrails and refuses the spec when a finding blocks it; otherwise returns the findings to report.
pub fn enforce(spec: &AccessSpec, partition: Partition, org: OrgContext<'_>) -> Result<Vec<Finding>, Error> {
    let findings = check(spec, partition, org);
    let blocking: Vec<FieldViolation> = findings
        .iter()
        .filter(|f| f.blocks())
        .map(|f| FieldViolation::new(f.field.clone(), format!("guardrail {}: {}", f.guardrail.as_str(), f.message)))
        .collect();
    if blocking.is_empty() { Ok(findings) } else { Err(Error::Refused(blocking)) }
}

/// The per-account finding for a role crossrole does not own.
pub fn unowned_role(role_arn: &str, owner: Option<&str>) -> Finding {
    let message = match owner {
        Some(spec) => format!("{role_arn} belongs to crossrole spec {spec:?}; it is left untouched"),
        None => format!(
            "{role_arn} exists and is not managed by crossrole (no crossrole:managed-by tag); it is left untouched. \
             `crossrole adopt -f <spec file>` shows how it differs from the spec and takes it over on approval"
        ),
    };
    Finding {
        guardrail: Guardrail::UnownedRole,
        severity: Severity::Error,
        field: "role.name".into(),
        message,
        waiver: None,
    }
}

/// The per-account finding for a role crossrole does not own in an account where the spec approves an adoption,
/// and which it does not take over: `why` (see [`crate::plan::adoption_refused`]).
pub fn unadopted_role(role_arn: &str, why: &str) -> Finding {
    Finding {
        message: format!(
            "{role_arn} exists and is not managed by crossrole (no crossrole:managed-by tag); it is left untouched: {why}"
        ),
        ..unowned_role(role_arn, None)
    }
}

/// Why an ExternalId is weak, if it is: short, few distinct characters, a run or a well-known word.
pub fn external_id_weakness(id: &str) -> Option<String> {
    let lower = id.to_ascii_lowercase();
    const GUESSABLE: [&str; 8] =
        ["externalid", "external-id", "password", "secret", "changeme", "123456", "qwerty", "test"];
    if GUESSABLE.iter().any(|w| lower.contains(w)) {
        return Some("the ExternalId contains a guessable word".into());
    }
    // The messages say what is wrong and never how long the value is or how many characters it uses: a finding is
    // shown to tokens that may not read the ExternalId.
    if id.chars().count() < 16 {
        return Some("the ExternalId is shorter than 16 characters".into());
    }
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Some("the ExternalId looks like an account id".into());
    }
    let distinct: BTreeSet<char> = id.chars().collect();
    if distinct.len() < 8 {
        return Some("the ExternalId uses fewer than 8 distinct characters".into());
    }
    let bytes = id.as_bytes();
    let sequential = bytes.windows(2).filter(|w| w[1] == w[0].wrapping_add(1) || w[1] == w[0]).count();
    if sequential * 2 >= bytes.len() {
        return Some("the ExternalId is mostly runs of repeated or consecutive characters".into());
    }
    None
}

/// A high-entropy ExternalId: 40 random letters and digits (about 238 bits) drawn from `random`, which the caller
/// gives (the OS random source in the CLI; the core itself never reaches for it).
pub fn generate_external_id(random: &mut impl Rng) -> String {
    random.sample_iter(&Alphanumeric).take(40).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecFile;

    fn spec(yaml: &str) -> AccessSpec {
        SpecFile::from_yaml(yaml).and_then(SpecFile::into_spec).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    const BASE: &str = r#"
name: audit
role:
  name: Audit
  trust:
    account_ids: ["111122223333"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
targets:
  organizational_unit_ids: [r-abcd]
"#;

    /// One helper: a spec with `replace` applied to BASE → the guardrails that fire (waived ones marked).
    fn check_spec(replace: &[(&str, &str)], members: &[&str], expect: &[&str]) {
        let mut yaml = BASE.to_string();
        for (from, to) in replace {
            assert!(yaml.contains(from), "{from}");
            yaml = yaml.replace(from, to);
        }
        let s = spec(&yaml);
        let members: BTreeSet<String> = members.iter().map(|m| m.to_string()).collect();
        let findings = check(&s, Partition::Aws, OrgContext { member_accounts: Some(&members) });
        let got: Vec<String> = findings
            .iter()
            .map(|f| format!("{}{}", f.guardrail.as_str(), if f.waiver.is_some() { " (waived)" } else { "" }))
            .collect();
        assert_eq!(got, expect, "{yaml}");
    }

    #[test]
    fn each_guardrail_fires() {
        let member = &["111122223333"];
        check_spec(&[], member, &[]);
        check_spec(&[("account_ids: [\"111122223333\"]", "principal_arns: [\"*\"]")], member, &["wildcard-principal"]);
        check_spec(
            &[
                ("account_ids: [\"111122223333\"]", "principal_arns: [\"*\"]"),
                ("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n", ""),
            ],
            member,
            &["wildcard-principal", "external-principal-unguarded"],
        );
        // Outside the organization: fine with an ExternalId, refused without, fine with PrincipalOrgID.
        check_spec(&[], &["999999999999"], &[]);
        check_spec(
            &[("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n", "")],
            &["999999999999"],
            &["external-principal-unguarded"],
        );
        check_spec(
            &[("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n", "    principal_org_id: o-abcdefghij\n")],
            &["999999999999"],
            &[],
        );
        check_spec(&[("ReadOnlyAccess", "AdministratorAccess")], member, &["admin-access"]);
        check_spec(
            &[(
                "targets:",
                "  inline_policies:\n    all: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"*\", Resource: \"*\"}]}\ntargets:",
            )],
            member,
            &["admin-access"],
        );
        check_spec(&[("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "acme-prod")], member, &["weak-external-id"]);
        let eleven: String = (0..11).map(|i| format!(", arn:aws:iam::aws:policy/P{i}")).collect();
        check_spec(&[("ReadOnlyAccess]", &format!("ReadOnlyAccess{eleven}]"))], member, &["managed-policy-count"]);
        let big = format!(
            "  inline_policies:\n    big: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:GetObject\", Resource: [{}]}}]}}\ntargets:",
            (0..300).map(|i| format!("\"arn:aws:s3:::bucket-number-{i}/*\"")).collect::<Vec<_>>().join(", ")
        );
        check_spec(&[("targets:", &big)], member, &["inline-policy-size"]);
        let accounts: String = (0..120).map(|i| format!("\"{:012}\", ", 100_000_000_000u64 + i)).collect();
        check_spec(
            &[("account_ids: [\"111122223333\"]", &format!("account_ids: [{accounts}\"111122223333\"]"))],
            &[],
            &["trust-policy-size"],
        );
        // Raised quota.
        check_spec(
            &[
                (
                    "account_ids: [\"111122223333\"]",
                    &format!(
                        "account_ids: [{}\"111122223333\"]",
                        (0..60).map(|i| format!("\"{:012}\", ", 100_000_000_000u64 + i)).collect::<String>()
                    ),
                ),
                ("targets:", "guardrails:\n  quotas: {trust_policy_size: 4096}\ntargets:"),
            ],
            &[],
            &[],
        );
    }

    #[test]
    fn waivers_are_explicit_and_reported() {
        let yaml = format!("{BASE}guardrails:\n  waivers:\n    - guardrail: admin-access\n      reason: break-glass role, reviewed in SEC-42\n")
            .replace("ReadOnlyAccess", "AdministratorAccess");
        let s = spec(&yaml);
        let findings = enforce(&s, Partition::Aws, OrgContext::default()).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].waiver.as_deref(), Some("break-glass role, reviewed in SEC-42"));

        let unwaived = spec(&BASE.replace("ReadOnlyAccess", "AdministratorAccess"));
        let err = enforce(&unwaived, Partition::Aws, OrgContext::default()).unwrap_err();
        assert_eq!(
            err.violations(),
            &[FieldViolation::new(
                "role.managed_policy_arns",
                "guardrail admin-access: arn:aws:iam::aws:policy/AdministratorAccess grants full administrator access"
            )]
        );
    }

    #[test]
    fn external_ids() {
        for (id, weak) in [
            ("acme", true),
            ("my-externalid-for-prod", true),
            ("aaaaaaaaaaaaaaaaaaaaaaaa", true),
            ("abcdefghijklmnopqrstuvwxyz", true),
            ("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", false),
        ] {
            assert_eq!(external_id_weakness(id).is_some(), weak, "{id}: {:?}", external_id_weakness(id));
        }
        use rand::SeedableRng;
        let mut random = rand::rngs::StdRng::seed_from_u64(1);
        let a = generate_external_id(&mut random);
        let b = generate_external_id(&mut random);
        assert_ne!(a, b);
        assert_eq!(a.len(), 40);
        assert!(external_id_weakness(&a).is_none(), "{a}");
        assert!(crate::names::check_external_id(&a).is_ok());
    }
}
