use proptest::prelude::*;

use super::*;
use crate::{
    secret::Redactor,
    spec::{AccessSpec, OWNER_TAG_KEY, OWNER_TAG_VALUE, SPEC_TAG_KEY},
};

const ACCOUNT: &str = "222233334444";

fn spec_yaml(extra_role: &str) -> String {
    format!(
        r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  description: Security audit
  trust:
    account_ids: ["111122223333"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/ReadOnlyAccess]
  inline_policies:
    deny-secrets:
      Version: "2012-10-17"
      Statement: [{{Effect: Deny, Action: "secretsmanager:GetSecretValue", Resource: "*"}}]
  tags: {{team: security}}
{extra_role}targets:
  organizational_unit_ids: [r-abcd]
"#
    )
}

fn desired(extra_role: &str) -> DesiredRole {
    let spec = AccessSpec::from_yaml(&spec_yaml(extra_role)).unwrap();
    DesiredRole::from_spec(&spec, Partition::Aws)
}

fn applied(d: &DesiredRole) -> ObservedRole {
    let AccountPlan::Changes(c) = plan(d, None) else { panic!("expected a create") };
    simulate(Partition::Aws, ACCOUNT, None, &c).unwrap()
}

fn summaries(p: &AccountPlan) -> Vec<String> {
    p.changes().iter().map(Change::summary).collect()
}

#[test]
fn create_is_one_call_plus_policies_then_the_specs_own_tags() {
    let d = desired("");
    let p = plan(&d, None);
    assert_eq!(
        summaries(&p),
        [
            "create role /crossrole/Audit",
            "attach managed policy arn:aws:iam::aws:policy/ReadOnlyAccess",
            "attach managed policy arn:aws:iam::aws:policy/SecurityAudit",
            "put inline policy deny-secrets",
            "tag role team",
        ]
    );
    expect_test::expect![[r#"
        path: /crossrole/
        max session: 3600s
        description: Security audit
        tags:
        crossrole:managed-by=crossrole
        crossrole:spec=audit
        trust policy:
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
                "StringEquals": {
                  "sts:ExternalId": "<redacted:12d2525b>"
                }
              }
            }
          ]
        }"#]]
    .assert_eq(&p.changes()[0].shown(&Redactor::new([0; 32])).after);
}

#[test]
fn wire_changes_never_carry_the_external_id() {
    let r = Redactor::new([0; 32]);
    let d = desired("");
    let mut observed = applied(&d);
    // Drift: someone replaced the trust policy with another ExternalId.
    let decoded =
        percent_encoding::percent_decode_str(&observed.attributes.trust_policy).decode_utf8_lossy().into_owned();
    observed.attributes.trust_policy = decoded.replace("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "the-other-secret-value-0000");
    let drift = plan(&d, Some(&observed));
    let create = plan(&d, None);
    for c in create.changes().iter().chain(drift.changes()) {
        let w = c.shown(&r);
        let text = format!("{} {} {}", w.subject, w.before, w.after);
        assert!(!text.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf") && !text.contains("the-other-secret"), "{text}");
    }
    let update = drift.changes().iter().find(|c| matches!(c, Change::UpdateTrustPolicy { .. })).unwrap().shown(&r);
    assert!(update.before.contains(&r.mark("the-other-secret-value-0000")), "{}", update.before);
    assert!(update.after.contains(&r.mark("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf")), "{}", update.after);
}

#[test]
fn reapply_is_empty_even_with_iam_rewrites() {
    let d = desired("");
    let mut o = applied(&d);
    assert_eq!(plan(&d, Some(&o)), AccountPlan::InSync);
    // IAM's own rewrites: root ARN → account id, arrays ↔ scalars, key order, no Sid.
    o.attributes.trust_policy = r#"{"Statement":[{"Condition":{"StringEquals":{"sts:ExternalId":["Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"]}},"Action":["sts:AssumeRole"],"Principal":{"AWS":"111122223333"},"Effect":"Allow"}],"Version":"2012-10-17"}"#.into();
    assert_eq!(plan(&d, Some(&o)), AccountPlan::InSync);
}

#[test]
fn drift_is_exactly_what_changed() {
    let d = desired("");
    let mut o = applied(&d);
    o.managed_policy_arns.insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    o.attributes.trust_policy = o.attributes.trust_policy.replace("111122223333", "999999999999");
    o.attributes.tags.insert("owner".into(), "someone".into());
    assert_eq!(
        summaries(&plan(&d, Some(&o))),
        [
            "detach managed policy arn:aws:iam::aws:policy/AdministratorAccess",
            "update trust policy",
            "untag role owner",
        ]
    );
}

#[test]
fn updates_bound_then_reduce_then_trust_then_grow_then_metadata() {
    let d =
        desired("  permissions_boundary_arn: arn:aws:iam::aws:policy/PowerUserAccess\n  max_session_duration: 2h\n");
    let o = ObservedRole {
        arn: d.arn(Partition::Aws, ACCOUNT),
        role_id: "AROAHANDMADE000000001".into(),
        attributes: RoleAttributes {
            name: "Audit".into(),
            path: "/crossrole/".into(),
            description: "old".into(),
            max_session_duration: 3600,
            trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"555566667777"},"Action":"sts:AssumeRole"}]}"#.into(),
            permissions_boundary_arn: None,
            tags: [(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()), (SPEC_TAG_KEY.to_string(), "audit".to_string())].into(),
        },
        managed_policy_arns: ["arn:aws:iam::aws:policy/SecurityAudit".to_string(), "arn:aws:iam::aws:policy/IAMFullAccess".to_string()].into(),
        inline_policies: [
            ("old".to_string(), r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#.to_string()),
            ("deny-secrets".to_string(), r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:*","Resource":"*"}}"#.to_string()),
        ]
        .into(),
    };
    assert_eq!(
        summaries(&plan(&d, Some(&o))),
        [
            "put permissions boundary arn:aws:iam::aws:policy/PowerUserAccess",
            "detach managed policy arn:aws:iam::aws:policy/IAMFullAccess",
            "delete inline policy old",
            "update trust policy",
            "attach managed policy arn:aws:iam::aws:policy/ReadOnlyAccess",
            "put inline policy deny-secrets",
            "update max session duration",
            "update description",
            "tag role team",
        ]
    );
}

#[test]
fn ownership() {
    let d = desired("");
    let mut o = applied(&d);
    o.attributes.tags.clear();
    assert_eq!(plan(&d, Some(&o)), AccountPlan::Conflict { owner: None });
    assert_eq!(plan_delete("audit", Some(&o)), AccountPlan::Conflict { owner: None });

    o.attributes.tags =
        [(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()), (SPEC_TAG_KEY.to_string(), "other".to_string())]
            .into();
    assert_eq!(plan(&d, Some(&o)), AccountPlan::Conflict { owner: Some("other".into()) });

    // Adoption rewrites an unowned role to the spec, tags included; never another spec's role. The role is
    // claimed (its ownership tags) before any other write, which the ceiling's templates require.
    let adopting = desired("  adopt_existing: true\n");
    assert_eq!(plan(&adopting, Some(&o)), AccountPlan::Conflict { owner: Some("other".into()) });
    o.attributes.tags.clear();
    o.managed_policy_arns.insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    let p = plan(&adopting, Some(&o));
    assert_eq!(
        summaries(&p),
        [
            "tag role crossrole:managed-by,crossrole:spec",
            "detach managed policy arn:aws:iam::aws:policy/AdministratorAccess",
            "tag role team"
        ]
    );
    let after = simulate(Partition::Aws, ACCOUNT, Some(o), p.changes()).unwrap();
    assert_eq!(plan(&desired(""), Some(&after)), AccountPlan::InSync);
}

#[test]
fn adopt_accounts_takes_over_a_hand_made_role_only_in_the_accounts_it_lists() {
    let d =
        desired("  adopt_accounts: [\"222233334444\"]\n  adopt_role_ids: {\"222233334444\": AROAHANDMADE000000001}\n");
    let mut hand_made = applied(&desired(""));
    hand_made.attributes.tags.clear();
    hand_made.role_id = "AROAHANDMADE000000001".into();
    let place = |account_id| names::Place { partition: Partition::Aws, account_id, account_name: "a" };
    let here = d.in_account(place("222233334444"));
    assert!(!here.adopt_existing, "only the role approved, not any");
    assert_eq!(summaries(&plan(&here, Some(&hand_made)))[0], "tag role crossrole:managed-by,crossrole:spec");
    assert_eq!(adoption_refused(&here, "222233334444", &hand_made), None);
    let elsewhere = d.in_account(place("999988887777"));
    assert_eq!(plan(&elsewhere, Some(&hand_made)), AccountPlan::Conflict { owner: None });
    assert_eq!(adoption_refused(&elsewhere, "999988887777", &hand_made), None, "nothing approved there");

    // The role deleted and made again by hand under the same name has another id: not the role approved.
    let mut remade = hand_made.clone();
    remade.role_id = "AROAREMADE00000000002".into();
    assert_eq!(plan(&here, Some(&remade)), AccountPlan::Conflict { owner: None });
    let why = adoption_refused(&here, "222233334444", &remade).unwrap();
    assert!(why.contains("AROAHANDMADE000000001") && why.contains("AROAREMADE00000000002"), "{why}");
    assert!(why.contains("run `crossrole adopt -f <spec file>`"), "{why}");

    // An account listed without the id of the role approved (a spec written before ids were recorded): no role is
    // taken over there, whichever it is.
    let no_id = desired("  adopt_accounts: [\"222233334444\"]\n").in_account(place("222233334444")).into_owned();
    assert_eq!(plan(&no_id, Some(&hand_made)), AccountPlan::Conflict { owner: None });
    let why = adoption_refused(&no_id, "222233334444", &hand_made).unwrap();
    assert!(why.contains("role.adopt_role_ids"), "{why}");
    // Never another spec's role, listed or not.
    hand_made.attributes.tags =
        [(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()), (SPEC_TAG_KEY.to_string(), "other".to_string())]
            .into();
    assert_eq!(plan(&here, Some(&hand_made)), AccountPlan::Conflict { owner: Some("other".into()) });
}

#[test]
fn under_the_ceiling_a_role_is_bounded_before_any_other_write() {
    const CEILING: &str = "arn:aws:iam::222233334444:policy/crossrole-ceiling/CrossroleCeiling";
    let d = desired(&format!("  permissions_boundary_arn: {CEILING}\n  adopt_existing: true\n"));
    let fitted = |o: &ObservedRole, removing: bool| {
        let p = if removing { plan_delete("audit", Some(o)) } else { plan(&d, Some(o)) };
        under_ceiling(p, Some(o), CEILING, removing).map(|p| summaries(&p))
    };
    // Made before the ceiling existed: the ceiling first, then the rest; also when it is removed.
    let mut legacy = applied(&desired(""));
    legacy.attributes.trust_policy = r#"{"Version":"2012-10-17","Statement":[]}"#.into();
    let bound = format!("put permissions boundary {CEILING}");
    let repaired = fitted(&legacy, false).unwrap();
    assert_eq!(repaired.first(), Some(&bound), "{repaired:?}");
    assert_eq!(repaired.iter().filter(|c| c.starts_with("put permissions boundary")).count(), 1);
    let removed = fitted(&legacy, true).unwrap();
    assert_eq!(removed.first(), Some(&bound), "{removed:?}");
    assert_eq!(removed.last().map(String::as_str), Some("delete role Audit"));
    // Adopted: bounded, then claimed, then changed.
    let mut hand_made = legacy.clone();
    hand_made.attributes.tags = [("team".to_string(), "ops".to_string())].into();
    hand_made.managed_policy_arns.insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
    let adopted = fitted(&hand_made, false).unwrap();
    assert_eq!(
        adopted[..2],
        [bound.clone(), "tag role crossrole:managed-by,crossrole:spec".to_string()],
        "{adopted:?}"
    );
    // Another boundary: refused, naming it and the ceiling; bounded first when the role is removed.
    let mut other = legacy.clone();
    other.attributes.permissions_boundary_arn = Some("arn:aws:iam::aws:policy/PowerUserAccess".into());
    let refused = fitted(&other, false).unwrap_err();
    assert_eq!(refused.boundary, "arn:aws:iam::aws:policy/PowerUserAccess");
    let message = refused.message(&other.arn, &other.attributes.name);
    assert!(
        message.contains("put-role-permissions-boundary --role-name Audit") && message.contains(CEILING),
        "{message}"
    );
    assert_eq!(fitted(&other, true).unwrap().first(), Some(&bound));
    // Under the ceiling already, or created with it: as planned.
    let mut fine = legacy.clone();
    fine.attributes.permissions_boundary_arn = Some(CEILING.into());
    assert_eq!(fitted(&fine, false).unwrap(), summaries(&plan(&d, Some(&fine))));
    assert_eq!(under_ceiling(plan(&d, None), None, CEILING, false).unwrap(), plan(&d, None));
    // A role that is not this spec's stays a conflict.
    let mut foreign = fine.clone();
    foreign.attributes.tags =
        [(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string()), (SPEC_TAG_KEY.to_string(), "x".to_string())].into();
    foreign.attributes.permissions_boundary_arn = None;
    assert!(matches!(
        under_ceiling(plan(&d, Some(&foreign)), Some(&foreign), CEILING, false),
        Ok(AccountPlan::Conflict { .. })
    ));
}

#[test]
fn path_change_replaces_the_role() {
    let d = desired("");
    let mut o = applied(&d);
    o.attributes.path = "/old/".into();
    let s = summaries(&plan(&d, Some(&o)));
    assert_eq!(s.first().map(String::as_str), Some("detach managed policy arn:aws:iam::aws:policy/ReadOnlyAccess"));
    assert!(s.iter().position(|c| c.starts_with("delete role")) < s.iter().position(|c| c.starts_with("create role")));
}

#[test]
fn delete_detaches_before_deleting() {
    let d = desired("");
    let o = applied(&d);
    assert_eq!(
        summaries(&plan_delete("audit", Some(&o))),
        [
            "detach managed policy arn:aws:iam::aws:policy/ReadOnlyAccess",
            "detach managed policy arn:aws:iam::aws:policy/SecurityAudit",
            "delete inline policy deny-secrets",
            "delete role Audit",
        ]
    );
    assert_eq!(plan_delete("audit", None), AccountPlan::InSync);
    assert_eq!(simulate(Partition::Aws, ACCOUNT, Some(o.clone()), plan_delete("audit", Some(&o)).changes()), None);
}

// ---- properties ----

const POLICIES: [&str; 4] = [
    "arn:aws:iam::aws:policy/ReadOnlyAccess",
    "arn:aws:iam::aws:policy/SecurityAudit",
    "arn:aws:iam::aws:policy/ViewOnlyAccess",
    "arn:aws:iam::123456789012:policy/Custom",
];
const TAGS: [(&str, &str); 3] = [("team", "security"), ("team", "other"), ("env", "prod")];

fn arb_desired() -> impl Strategy<Value = DesiredRole> {
    (
        proptest::sample::subsequence(POLICIES.to_vec(), 0..=4),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of("[a-z]{2,8}"),
        3600u32..=43200,
        any::<bool>(),
    )
        .prop_map(|(managed, mfa, inline, ext, max_session, boundary)| {
            let mut yaml = spec_yaml("");
            yaml = yaml.replace("[arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/ReadOnlyAccess]", &format!("[{}]", managed.join(", ")));
            if mfa {
                yaml = yaml.replace("    external_id:", "    require_mfa: true\n    external_id:");
            }
            if let Some(e) = ext {
                yaml = yaml.replace("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", &format!("{e}-{e}"));
            }
            if !inline {
                yaml = yaml.replace("  inline_policies:\n    deny-secrets:\n      Version: \"2012-10-17\"\n      Statement: [{Effect: Deny, Action: \"secretsmanager:GetSecretValue\", Resource: \"*\"}]\n", "");
            }
            yaml = yaml.replace("  tags:", &format!("  max_session_duration: {max_session}\n  tags:"));
            if boundary {
                yaml = yaml.replace("  tags:", "  permissions_boundary_arn: arn:aws:iam::123456789012:policy/Boundary\n  tags:");
            }
            let spec = AccessSpec::from_yaml(&yaml).unwrap();
            DesiredRole::from_spec(&spec, Partition::Aws)
        })
}

fn arb_observed() -> impl Strategy<Value = Option<ObservedRole>> {
    proptest::option::of(observed_role())
}

fn observed_role() -> impl Strategy<Value = ObservedRole> {
    (
        proptest::sample::subsequence(POLICIES.to_vec(), 0..=4),
        proptest::sample::subsequence(TAGS.to_vec(), 0..=3),
        0usize..4,
        proptest::option::of(Just("arn:aws:iam::aws:policy/PowerUserAccess")),
        3600u32..=43200,
        any::<bool>(),
        proptest::sample::select(vec!["/crossrole/", "/", "/other/"]),
    )
        .prop_map(|(managed, tags, trust, boundary, max_session, inline, path)| {
        let trusts = [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#,
            r#"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A111122223333%3Aroot%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
            "not even json",
        ];
        let mut t: BTreeMap<String, String> = tags.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        t.insert(OWNER_TAG_KEY.into(), OWNER_TAG_VALUE.into());
        t.insert(SPEC_TAG_KEY.into(), "audit".into());
        ObservedRole {
            arn: names::role_arn(Partition::Aws, ACCOUNT, path, "Audit"),
            role_id: "AROAHANDMADE000000001".into(),
            attributes: RoleAttributes {
                name: "Audit".into(),
                path: path.into(),
                description: "drifted".into(),
                max_session_duration: max_session,
                trust_policy: trusts[trust].into(),
                permissions_boundary_arn: boundary.map(String::from),
                tags: t,
            },
            managed_policy_arns: managed.into_iter().map(String::from).collect(),
            inline_policies: if inline {
                [("deny-secrets".to_string(), r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}"#.to_string())].into()
            } else {
                BTreeMap::new()
            },
        }
    })
}

proptest! {
    #[test]
    fn a_plan_applied_converges(d in arb_desired(), o in arb_observed()) {
        let first = plan(&d, o.as_ref());
        let after = simulate(Partition::Aws, ACCOUNT, o, first.changes());
        prop_assert_eq!(plan(&d, after.as_ref()), AccountPlan::InSync);
    }

    #[test]
    fn a_delete_plan_applied_removes_the_role(o in arb_observed()) {
        let p = plan_delete("audit", o.as_ref());
        prop_assert_eq!(simulate(Partition::Aws, ACCOUNT, o, p.changes()), None);
    }

    #[test]
    fn normalization_is_idempotent(text in policy_text()) {
        if let Ok(doc) = PolicyDocument::parse_observed(&text) {
            let again = PolicyDocument::parse_observed(&doc.normalized_json()).unwrap();
            prop_assert_eq!(again.normalized_json(), doc.normalized_json());
            prop_assert_eq!(again, doc);
        }
    }

    #[test]
    fn random_documents_never_panic(text in ".{0,200}") {
        let _ = PolicyDocument::parse(&text, crate::policy::DocumentKind::Identity);
        let _ = PolicyDocument::parse_observed(&text);
    }

    #[test]
    fn random_specs_never_panic(yaml in spec_like_yaml()) {
        let _ = AccessSpec::from_yaml(&yaml);
    }
}

fn policy_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("\"*\"".to_string()),
        "\"[a-z]{1,3}:[A-Za-z*]{1,5}\"".prop_map(|s| s),
        Just("[\"s3:GetObject\",\"S3:getobject\"]".to_string()),
        Just("true".to_string())
    ];
    let principal = prop_oneof![
        Just("\"*\"".to_string()),
        Just(r#"{"AWS":"111122223333"}"#.to_string()),
        Just(r#"{"AWS":["arn:aws:iam::111122223333:root","444455556666"]}"#.to_string()),
        Just(r#"{"Service":"ec2.amazonaws.com"}"#.to_string())
    ];
    let cond = prop_oneof![
        Just(String::new()),
        Just(r#","Condition":{"StringEquals":{"sts:ExternalId":["a","b"]}}"#.to_string()),
        Just(r#","Condition":{"Bool":{"aws:MultiFactorAuthPresent":true}}"#.to_string())
    ];
    let statement = (prop_oneof![Just("Allow"), Just("Deny")], principal, value.clone(), value, cond)
        .prop_map(|(e, p, a, r, c)| format!(r#"{{"Effect":"{e}","Principal":{p},"Action":{a},"Resource":{r}{c}}}"#));
    proptest::collection::vec(statement, 1..4)
        .prop_map(|s| format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, s.join(",")))
}

fn spec_like_yaml() -> impl Strategy<Value = String> {
    let base = spec_yaml("");
    (0usize..base.len(), ".{0,12}").prop_map(move |(at, insert)| {
        let at = (0..=at).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
        format!("{}{}{}", &base[..at], insert, &base[at..])
    })
}

/// The "before" of a changed trust policy is IAM's document as returned, in the order of the spec's members: a
/// diff of the two shows the one real change (a condition dropped), not crossrole's normalization (the root ARN
/// as a bare id, `sts:assumerole`, the condition keys lowercased), which an outside tester saw as changes that did
/// not exist.
#[test]
fn a_trust_policy_change_shows_iams_text_before() {
    let d = desired("");
    let mut o = applied(&d);
    o.attributes.trust_policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"},"StringEquals":{"sts:ExternalId":"Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"}}}]}"#.into();
    let p = plan(&d, Some(&o));
    let Some(change) = p.changes().iter().find(|c| matches!(c, Change::UpdateTrustPolicy { .. })) else {
        panic!("the dropped condition is a change: {p:?}")
    };
    let shown = change.shown(&Redactor::new([0; 32]));
    for written in ["\"arn:aws:iam::111122223333:root\"", "\"sts:AssumeRole\"", "\"sts:ExternalId\": \"<redacted:"] {
        assert!(shown.before.contains(written), "{written}: {}", shown.before);
    }
    // Line by line, what the before says that the after does not: the condition dropped, and its braces.
    let after: BTreeSet<&str> = shown.after.lines().map(str::trim).collect();
    let only_before: BTreeSet<&str> = shown.before.lines().map(str::trim).filter(|l| !after.contains(l)).collect();
    assert!(only_before.contains("\"aws:SourceIp\": \"203.0.113.0/24\""), "{only_before:?}");
    let real = BTreeSet::from(["\"IpAddress\": {", "\"aws:SourceIp\": \"203.0.113.0/24\"", "},", "}"]);
    assert!(only_before.is_subset(&real), "only the dropped condition differs: {only_before:?}\n{}", shown.before);
}
