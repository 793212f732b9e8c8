//! The two documents crossrole writes: a role's trust policy (from the spec's intent) and the trusted side's
//! AssumeRole policy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{DocumentKind, PolicyDocument};
use crate::{
    names::{self, Arn, Partition},
    spec::{OWNER_TAG_KEY, OWNER_TAG_VALUE, PrincipalMatch, SPEC_TAG_KEY, TrustSpec},
};

/// An ExternalId a trust policy as read from IAM (`observed`, URL-encoded or not) accepts: the value of its
/// `sts:ExternalId` conditions, the first in order when there are several (a rotation); `None` when it requires
/// none, does not parse, or holds one that is no single value (a `StringLike` pattern, a negated, set or
/// `…IfExists` operator): the request's is then compared as it is, which differs from such a condition whatever
/// was sent (an ExternalId cannot hold `*` or `?`).
///
/// crossroled uses it to plan and verify for a caller who may not read ExternalIds: an ExternalId the role
/// already accepts stands in for the one in the request, so nothing the caller sees depends on their guess. (A
/// role that requires none answers alike for any guess: AWS ignores an ExternalId the trust does not ask for.)
pub fn required_external_id(observed: &str) -> Option<crate::secret::ExternalId> {
    let doc = PolicyDocument::parse_observed(observed).ok()?;
    let mut found = BTreeSet::new();
    for s in doc.statements() {
        for (operator, keys) in &s.condition {
            let Some(values) = keys.get("sts:externalid") else { continue };
            let equals = operator.eq_ignore_ascii_case("StringEquals");
            let like = operator.eq_ignore_ascii_case("StringLike");
            // A pattern, a negation, a set operator or an IfExists accepts no one value: written as the spec's
            // (a literal), it would lock out every caller the role let in.
            if !(equals || like) || (like && values.iter().any(|v| v.contains(['*', '?']))) {
                return None;
            }
            found.extend(values.iter().cloned());
        }
    }
    found.into_iter().next().map(crate::secret::ExternalId::new)
}

/// IAM's size limit for a managed policy document, in characters without whitespace.
pub const GRANT_POLICY_MAX_SIZE: usize = 6144;

/// The trust policy for `trust`.
///
/// One statement for trusted accounts (their roots as principals), one for specific principals (by default their
/// accounts' roots as principals plus an `ArnLike` `aws:PrincipalArn` condition, which survives re-creation of a
/// principal), one for `*` when asked for (the guardrails refuse it unless waived). Every statement carries the
/// spec's conditions: `sts:ExternalId`, `aws:MultiFactorAuthPresent`, `aws:PrincipalOrgID`.
pub fn trust_policy(trust: &TrustSpec, partition: Partition) -> PolicyDocument {
    let mut statements = Vec::new();
    let common = common_conditions(trust);

    let mut accounts: BTreeSet<String> = trust.account_ids.clone();
    let mut specific: BTreeSet<&str> = BTreeSet::new();
    let mut any = false;
    for p in &trust.principal_arns {
        if p == "*" {
            any = true;
        } else if let Some(arn) = Arn::parse(p).filter(|a| a.resource == "root") {
            accounts.insert(arn.account.to_string());
        } else {
            specific.insert(p);
        }
    }

    if !accounts.is_empty() {
        let roots: Vec<String> = accounts.iter().map(|a| names::account_root_arn(partition, a)).collect();
        statements.push(statement("CrossroleTrustedAccounts", json!({ "AWS": one_or_many(roots) }), &common, None));
    }
    if !specific.is_empty() {
        match trust.principal_match {
            PrincipalMatch::Condition => {
                let roots: BTreeSet<String> = specific
                    .iter()
                    .filter_map(|p| Arn::parse(p))
                    .map(|a| names::account_root_arn(partition, a.account))
                    .collect();
                let arns: Vec<String> = specific.iter().map(|s| s.to_string()).collect();
                statements.push(statement(
                    "CrossroleTrustedPrincipals",
                    json!({ "AWS": one_or_many(roots.into_iter().collect()) }),
                    &common,
                    Some(("ArnLike", "aws:PrincipalArn", arns)),
                ));
            }
            PrincipalMatch::Direct => {
                let arns: Vec<String> = specific.iter().map(|s| s.to_string()).collect();
                statements.push(statement(
                    "CrossroleTrustedPrincipals",
                    json!({ "AWS": one_or_many(arns) }),
                    &common,
                    None,
                ));
            }
        }
    }
    if any {
        statements.push(statement("CrossroleAnyPrincipal", json!({ "AWS": "*" }), &common, None));
    }
    let doc = json!({ "Version": "2012-10-17", "Statement": statements });
    // What this builds is valid by construction; a failure here is a bug in this function, caught by the tests.
    PolicyDocument::from_value(doc.clone(), DocumentKind::Trust)
        .or_else(|_| PolicyDocument::from_value(doc, DocumentKind::Observed))
        .unwrap_or_else(|e| panic!("trust policy builder produced an invalid document: {e:?}"))
}

fn common_conditions(trust: &TrustSpec) -> BTreeMap<&'static str, BTreeMap<&'static str, String>> {
    let mut c: BTreeMap<&'static str, BTreeMap<&'static str, String>> = BTreeMap::new();
    if let Some(id) = &trust.external_id {
        c.entry("StringEquals").or_default().insert("sts:ExternalId", id.expose().to_string());
    }
    if let Some(org) = &trust.principal_org_id {
        c.entry("StringEquals").or_default().insert("aws:PrincipalOrgID", org.clone());
    }
    if trust.require_mfa {
        c.entry("Bool").or_default().insert("aws:MultiFactorAuthPresent", "true".into());
    }
    c
}

fn statement(
    sid: &str,
    principal: Value,
    common: &BTreeMap<&'static str, BTreeMap<&'static str, String>>,
    extra: Option<(&str, &str, Vec<String>)>,
) -> Value {
    let mut s = Map::new();
    s.insert("Sid".into(), Value::String(sid.into()));
    s.insert("Effect".into(), Value::String("Allow".into()));
    s.insert("Principal".into(), principal);
    s.insert("Action".into(), Value::String("sts:AssumeRole".into()));
    let mut cond = Map::new();
    for (op, keys) in common {
        let keys: Map<String, Value> = keys.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect();
        cond.insert(op.to_string(), Value::Object(keys));
    }
    if let Some((op, key, values)) = extra {
        let entry = cond.entry(op.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(key.to_string(), one_or_many(values));
        }
    }
    if !cond.is_empty() {
        s.insert("Condition".into(), Value::Object(cond));
    }
    Value::Object(s)
}

fn one_or_many(mut values: Vec<String>) -> Value {
    values.sort();
    values.dedup();
    if values.len() == 1 {
        Value::String(values.remove(0))
    } else {
        Value::Array(values.into_iter().map(Value::String).collect())
    }
}

/// The trusted side's policy: allow `sts:AssumeRole` on the role in every target account.
///
/// It names each role ARN while that fits IAM's managed policy size limit. For larger organizations it allows the
/// role's path and name in any account *of the organization* (`aws:ResourceOrgID`) but only on roles tagged as
/// this spec's (`iam:ResourceTag`), so that a same-named role crossrole does not own stays out of reach; it says
/// so with `true` in the second value, so that callers can report it. The target roles' trust policies still
/// decide who gets in.
pub fn grant_policy(
    partition: Partition,
    spec_name: &str,
    role_path: &str,
    role_name: &str,
    target_accounts: &BTreeSet<String>,
    organization_id: Option<&str>,
) -> (PolicyDocument, bool) {
    let arns: Vec<String> =
        target_accounts.iter().map(|a| names::role_arn(partition, a, role_path, role_name)).collect();
    let listed = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CrossroleAssumeRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": one_or_many(arns),
        }]
    });
    let fits = listed.to_string().chars().count() <= GRANT_POLICY_MAX_SIZE;
    let (doc, widened) = if fits || organization_id.is_none() {
        (listed, false)
    } else {
        let mut statement = json!({
            "Sid": "CrossroleAssumeRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": format!("arn:{partition}:iam::*:role{role_path}{role_name}"),
        });
        if let (Some(org), Value::Object(m)) = (organization_id, &mut statement) {
            m.insert(
                "Condition".into(),
                json!({ "StringEquals": {
                    "aws:ResourceOrgID": org,
                    format!("iam:ResourceTag/{OWNER_TAG_KEY}"): OWNER_TAG_VALUE,
                    format!("iam:ResourceTag/{SPEC_TAG_KEY}"): spec_name,
                } }),
            );
        }
        (json!({ "Version": "2012-10-17", "Statement": [statement] }), true)
    };
    let parsed = PolicyDocument::from_value(doc.clone(), DocumentKind::Identity)
        .or_else(|_| PolicyDocument::from_value(doc, DocumentKind::Observed))
        .unwrap_or_else(|e| panic!("grant policy builder produced an invalid document: {e:?}"));
    (parsed, widened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn trust(f: impl FnOnce(&mut TrustSpec)) -> String {
        let mut t = TrustSpec::default();
        f(&mut t);
        trust_policy(&t, Partition::Aws).to_pretty_json()
    }

    #[test]
    fn account_with_external_id_and_mfa() {
        expect![[r#"
            {
              "Version": "2012-10-17",
              "Statement": [
                {
                  "Sid": "CrossroleTrustedAccounts",
                  "Effect": "Allow",
                  "Principal": {
                    "AWS": "arn:aws:iam::111122223333:root"
                  },
                  "Action": "sts:AssumeRole",
                  "Condition": {
                    "Bool": {
                      "aws:MultiFactorAuthPresent": "true"
                    },
                    "StringEquals": {
                      "sts:ExternalId": "7f3a9c1e5b2d4f60a8e1"
                    }
                  }
                }
              ]
            }"#]]
        .assert_eq(&trust(|t| {
            t.account_ids.insert("111122223333".into());
            t.external_id = Some(crate::secret::ExternalId::new("7f3a9c1e5b2d4f60a8e1"));
            t.require_mfa = true;
        }));
    }

    #[test]
    fn principals_by_condition_survive_recreation() {
        expect![[r#"
            {
              "Version": "2012-10-17",
              "Statement": [
                {
                  "Sid": "CrossroleTrustedPrincipals",
                  "Effect": "Allow",
                  "Principal": {
                    "AWS": [
                      "arn:aws:iam::111122223333:root",
                      "arn:aws:iam::444455556666:root"
                    ]
                  },
                  "Action": "sts:AssumeRole",
                  "Condition": {
                    "StringEquals": {
                      "aws:PrincipalOrgID": "o-a1b2c3d4e5"
                    },
                    "ArnLike": {
                      "aws:PrincipalArn": [
                        "arn:aws:iam::111122223333:role/Auditor",
                        "arn:aws:iam::444455556666:user/alice"
                      ]
                    }
                  }
                }
              ]
            }"#]]
        .assert_eq(&trust(|t| {
            t.principal_arns.insert("arn:aws:iam::444455556666:user/alice".into());
            t.principal_arns.insert("arn:aws:iam::111122223333:role/Auditor".into());
            t.principal_org_id = Some("o-a1b2c3d4e5".into());
        }));
    }

    #[test]
    fn direct_principals_and_roots() {
        expect![[r#"
            {
              "Version": "2012-10-17",
              "Statement": [
                {
                  "Sid": "CrossroleTrustedAccounts",
                  "Effect": "Allow",
                  "Principal": {
                    "AWS": "arn:aws-us-gov:iam::444455556666:root"
                  },
                  "Action": "sts:AssumeRole"
                },
                {
                  "Sid": "CrossroleTrustedPrincipals",
                  "Effect": "Allow",
                  "Principal": {
                    "AWS": "arn:aws-us-gov:iam::111122223333:role/Auditor"
                  },
                  "Action": "sts:AssumeRole"
                }
              ]
            }"#]]
        .assert_eq(&{
            let mut t = TrustSpec::default();
            t.principal_arns.insert("arn:aws-us-gov:iam::111122223333:role/Auditor".into());
            t.principal_arns.insert("arn:aws-us-gov:iam::444455556666:root".into());
            t.principal_match = PrincipalMatch::Direct;
            trust_policy(&t, Partition::AwsUsGov).to_pretty_json()
        });
    }

    #[test]
    fn grant_lists_roles_until_it_no_longer_fits() {
        let few: BTreeSet<String> = ["222233334444", "555566667777"].map(String::from).into();
        let (doc, widened) = grant_policy(Partition::Aws, "audit", "/crossrole/", "Audit", &few, Some("o-abc1234567"));
        assert!(!widened);
        expect![[r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossroleAssumeRole","Effect":"Allow","Action":"sts:AssumeRole","Resource":["arn:aws:iam::222233334444:role/crossrole/Audit","arn:aws:iam::555566667777:role/crossrole/Audit"]}]}"#]]
            .assert_eq(&doc.to_json());

        let many: BTreeSet<String> = (0..200).map(|i| format!("{:012}", 100_000_000_000u64 + i)).collect();
        let (doc, widened) = grant_policy(Partition::Aws, "audit", "/crossrole/", "Audit", &many, Some("o-abc1234567"));
        assert!(widened);
        assert!(doc.size() <= GRANT_POLICY_MAX_SIZE);
        expect![[r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossroleAssumeRole","Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/crossrole/Audit","Condition":{"StringEquals":{"aws:ResourceOrgID":"o-abc1234567","iam:ResourceTag/crossrole:managed-by":"crossrole","iam:ResourceTag/crossrole:spec":"audit"}}}]}"#]]
            .assert_eq(&doc.to_json());
    }

    #[test]
    fn the_external_id_a_role_requires_is_a_single_value_never_a_pattern() {
        let with = |operator: &str, value: serde_json::Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                "Action": "sts:AssumeRole", "Condition": {operator: {"sts:ExternalId": value}}}]})
            .to_string()
        };
        let required = |doc: String| required_external_id(&doc).map(|x| x.expose().to_string());
        assert_eq!(required(with("StringEquals", json!("vendor-1"))).as_deref(), Some("vendor-1"));
        assert_eq!(required(with("StringLike", json!("vendor-1"))).as_deref(), Some("vendor-1"));
        assert_eq!(required(with("StringEquals", json!(["b-2", "a-1"]))).as_deref(), Some("a-1"));
        // Written as the spec's, a pattern would let no caller in: no value stands in for the request's.
        assert_eq!(required(with("StringLike", json!("vendor-*"))), None);
        assert_eq!(required(with("StringLike", json!(["a-1", "vendor-?"]))), None);
        assert_eq!(required(with("StringNotEquals", json!("a-1"))), None);
        assert_eq!(required(with("StringEqualsIfExists", json!("a-1"))), None);
        assert_eq!(required(with("ForAnyValue:StringEquals", json!("a-1"))), None);
    }
}
