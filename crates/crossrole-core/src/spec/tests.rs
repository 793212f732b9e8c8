//! Spec validation, through one helper: a spec file with one edit → the violations it must produce.

use super::*;

const VALID: &str = r#"
name: security-audit
role:
  name: SecurityAudit
  path: /crossrole/
  description: Read-only audit access for the security team
  max_session_duration: 2h
  trust:
    account_ids: ["111122223333"]
    principal_arns: [arn:aws:iam::111122223333:role/Auditor]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
    require_mfa: true
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
  inline_policies:
    deny-secrets: '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}'
  permissions_boundary_arn: arn:aws:iam::aws:policy/ReadOnlyAccess
  tags: {team: security}
targets:
  organizational_unit_ids: [ou-abcd-12345678]
  tags: [{key: env, value: prod}, {key: owner}]
  exclude_account_ids: [012345678901]
grant:
  account_id: 111122223333
  group_names: [auditors]
  user_names: [alice]
rollout:
  max_concurrency: 25%
  failure_tolerance: 2
  verify: {timeout: 90s}
  prune: true
guardrails:
  waivers:
    - {guardrail: weak-external-id, reason: rotating next quarter}
"#;

fn check(edits: &[(&str, &str)], expected: &[&str]) {
    let mut yaml = VALID.to_string();
    for (from, to) in edits {
        assert!(yaml.contains(from), "the fixture lacks {from:?}");
        yaml = yaml.replacen(from, to, 1);
    }
    let got: Vec<String> = match AccessSpec::from_yaml(&yaml) {
        Ok(_) => vec![],
        Err(e) => e.violations().iter().map(|v| v.to_string()).collect(),
    };
    assert_eq!(got, expected, "{yaml}");
}

#[test]
fn the_fixture_is_valid_and_complete() {
    let spec = AccessSpec::from_yaml(VALID).unwrap();
    assert_eq!(spec.role.max_session_duration, Duration::from_secs(7200));
    assert_eq!(spec.targets.exclude_account_ids, ["012345678901"], "YAML integers are padded back to 12 digits");
    assert_eq!(spec.rollout.max_concurrency, Some(Limit::Percent(25)));
    assert_eq!(spec.rollout.failure_tolerance, Limit::Count(2));
    assert_eq!(spec.rollout.verify_timeout, Duration::from_secs(90));
    assert_eq!(spec.grant.as_ref().unwrap().policy_name, "crossrole-assume-security-audit");
    assert_eq!(
        spec.guardrails.waivers.get(&Guardrail::WeakExternalId).map(String::as_str),
        Some("rotating next quarter")
    );
    // Round trip through the spec as given (what the journal keeps, and what the wire becomes).
    let raw = RawSpec::from(&spec);
    assert_eq!(AccessSpec::try_from(&raw).unwrap(), spec);
}

#[test]
fn every_rule_names_its_field() {
    check(
        &[("name: security-audit", "name: security audit")],
        &["name: only lowercase letters, digits and `-` are allowed, found ' '"],
    );
    check(&[("name: security-audit", "name: Security")], &["name: must start with a lowercase letter"]);
    check(
        &[("name: SecurityAudit", "name: Security/Audit")],
        &["role.name: only letters, digits and +=,.@_- are allowed (IAM), found '/'"],
    );
    check(
        &[("name: SecurityAudit", &format!("name: {}", "R".repeat(65)))],
        &["role.name: at most 64 characters (IAM), got 65"],
    );
    check(
        &[("path: /crossrole/", "path: crossrole")],
        &["role.path: must be `/` or start and end with `/`, like `/team/` (IAM)"],
    );
    check(
        &[("description: Read-only", &format!("description: {}", "d".repeat(1000)))],
        &["role.description: at most 1000 characters (IAM), got 1035"],
    );
    check(
        &[("max_session_duration: 2h", "max_session_duration: 30m")],
        &["role.max_session_duration: must be whole seconds from 3600 (1h) to 43200 (12h) (IAM), got 1800s"],
    );
    check(
        &[("max_session_duration: 2h", "max_session_duration: 13h")],
        &["role.max_session_duration: must be whole seconds from 3600 (1h) to 43200 (12h) (IAM), got 46800s"],
    );
    check(
        &[("max_session_duration: 2h", "max_session_duration: soon")],
        &["role.max_session_duration: not a duration like \"1h\" or \"90s\": expected number at 0"],
    );
    check(
        &[("account_ids: [\"111122223333\"]", "account_ids: [\"11112222333\"]")],
        &["role.trust.account_ids[0]: must be a 12-digit AWS account id, got \"11112222333\""],
    );
    check(
        &[("principal_arns: [arn:aws:iam::111122223333:role/Auditor]", "principal_arns: [arn:aws:s3:::bucket]")],
        &[
            "role.trust.principal_arns[0]: must be an IAM principal ARN like arn:aws:iam::111122223333:role/Name, arn:aws:iam::111122223333:user/Name or arn:aws:iam::111122223333:root, or `*`",
        ],
    );
    check(
        &[("external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "external_id: x")],
        &["role.trust.external_id: must be 2 to 1224 characters (STS), got 1"],
    );
    check(
        &[("external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "external_id: \"has space here\"")],
        &["role.trust.external_id: only letters, digits and +=,.@:/_- are allowed (STS), found ' '"],
    );
    check(
        &[("    account_ids: [\"111122223333\"]\n    principal_arns: [arn:aws:iam::111122223333:role/Auditor]\n", "")],
        &[
            "role.trust: trust at least one account (account_ids) or principal (principal_arns)",
            "grant.account_id: account 111122223333 is not trusted by role.trust; add it to role.trust.account_ids or principal_arns",
        ],
    );
    check(
        &[(
            "[arn:aws:iam::aws:policy/SecurityAudit]",
            "[SecurityAudit, arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/SecurityAudit]",
        )],
        &[
            "role.managed_policy_arns[0]: must be an IAM policy ARN like arn:aws:iam::aws:policy/ReadOnlyAccess or arn:aws:iam::111122223333:policy/path/Name (${account_id} and ${partition} stand for the target account's)",
            "role.managed_policy_arns[2]: arn:aws:iam::aws:policy/SecurityAudit is listed twice",
        ],
    );
    check(
        &[("\"Effect\":\"Deny\"", "\"Effect\":\"Maybe\"")],
        &["role.inline_policies[\"deny-secrets\"].Statement[0].Effect: must be \"Allow\" or \"Deny\""],
    );
    check(
        &[("deny-secrets: '{", "deny secrets: '{")],
        &[
            "role.inline_policies[\"deny secrets\"]: policy name only letters, digits and +=,.@_- are allowed (IAM), found ' '",
        ],
    );
    check(
        &[("deny-secrets: '{\"Version\"", "deny-secrets: '{,\"Version\"")],
        &["role.inline_policies[\"deny-secrets\"]: not valid JSON: key must be a string at line 1 column 2"],
    );
    check(
        &[(
            "permissions_boundary_arn: arn:aws:iam::aws:policy/ReadOnlyAccess",
            "permissions_boundary_arn: arn:aws:iam::aws:role/X",
        )],
        &[
            "role.permissions_boundary_arn: must be an IAM policy ARN like arn:aws:iam::aws:policy/ReadOnlyAccess or arn:aws:iam::111122223333:policy/path/Name (${account_id} and ${partition} stand for the target account's)",
        ],
    );
    check(
        &[("tags: {team: security}", "tags: {\"aws:team\": security, \"crossrole:spec\": x}")],
        &[
            "role.tags[\"aws:team\"]: tag keys must not start with `aws:` (reserved by AWS)",
            "role.tags[\"crossrole:spec\"]: tag keys starting with `crossrole:` are reserved for crossrole's ownership tags",
        ],
    );
    let many: String = (0..49).map(|i| format!("k{i}: v, ")).collect();
    check(
        &[("tags: {team: security}", &format!("tags: {{{many}}}"))],
        &["role.tags: at most 48 tags (IAM allows 50; crossrole adds 2), got 49"],
    );
    check(
        &[("organizational_unit_ids: [ou-abcd-12345678]", "organizational_unit_ids: [prod]")],
        &["targets.organizational_unit_ids[0]: must be an OU id (ou-…) or the root id (r-…), got \"prod\""],
    );
    check(
        &[
            ("  organizational_unit_ids: [ou-abcd-12345678]\n", ""),
            ("  tags: [{key: env, value: prod}, {key: owner}]\n", ""),
        ],
        &["targets: select at least one OU (the root selects the whole organization), account or tag"],
    );
    // Tags alone select from the whole organization.
    check(&[("  organizational_unit_ids: [ou-abcd-12345678]\n", "")], &[]);
    check(
        &[("targets:\n", "nottargets:\n")],
        &[
            "nottargets: unknown field `nottargets`, expected one of `name`, `role`, `targets`, `grant`, `rollout`, `guardrails` at line 18 column 1",
        ],
    );
    check(
        &[("  user_names: [alice]\n", "  user_names: [alice, alice]\n")],
        &["grant.user_names[1]: alice is listed twice"],
    );
    check(
        &[("max_concurrency: 25%", "max_concurrency: 0")],
        &["rollout.max_concurrency.count: must be from 1 to 10000, got 0"],
    );
    check(
        &[("max_concurrency: 25%", "max_concurrency: 150%")],
        &["rollout.max_concurrency.percent: must be from 1 to 100, got 150"],
    );
    check(
        &[("max_concurrency: 25%", "max_concurrency: lots")],
        &["rollout.max_concurrency: not a count or percentage like 10 or \"25%\": \"lots\""],
    );
    check(&[("verify: {timeout: 90s}", "verify: {timeout: 2h}")], &["rollout.verify.timeout: must be from 0s to 1h"]);
    check(
        &[("guardrail: weak-external-id", "guardrail: weak-password")],
        &[
            "guardrails.waivers[0].guardrail: unknown guardrail \"weak-password\" (known: wildcard-principal, external-principal-unguarded, admin-access, trust-policy-size, inline-policy-size, managed-policy-count, weak-external-id, unowned-role)",
        ],
    );
    check(
        &[("reason: rotating next quarter", "reason: \" \"")],
        &["guardrails.waivers[0].reason: a waiver needs a reason"],
    );
    check(
        &[(
            "  tags: {team: security}\n",
            "  tags: {team: security}\n  adopt_accounts: [\"12345\", \"222233334444\", \"222233334444\"]\n",
        )],
        &[
            "role.adopt_accounts[0]: must be a 12-digit AWS account id, got \"12345\"",
            "role.adopt_accounts[2]: is listed twice",
        ],
    );
    check(
        &[(
            "  tags: {team: security}\n",
            "  tags: {team: security}\n  adopt_existing: true\n  adopt_accounts: [\"222233334444\"]\n",
        )],
        &[
            "role.adopt_accounts: takes over roles only in the accounts it lists, which role.adopt_existing (every account) contradicts; set one or the other",
        ],
    );
    // The role approved in an account, by its unique id: only for an account adopt_accounts lists, and shaped as
    // IAM's RoleId (not an ARN, not an account id).
    check(
        &[(
            "  tags: {team: security}\n",
            "  tags: {team: security}\n  adopt_accounts: [\"222233334444\"]\n  adopt_role_ids: {\"222233334444\": \"arn:aws:iam::222233334444:role/Audit\", \"333344445555\": AROAHANDMADE000000001}\n",
        )],
        &[
            "role.adopt_role_ids[\"222233334444\"]: must be a role's unique id as IAM's GetRole gives it (RoleId: AROA and 12 to 124 capital letters or digits), got \"arn:aws:iam::222233334444:role/Audit\"",
            "role.adopt_role_ids[\"333344445555\"]: 333344445555 is not in role.adopt_accounts: a role id names the role approved in an account role.adopt_accounts lists",
        ],
    );
    check(
        &[(
            "  tags: {team: security}\n",
            "  tags: {team: security}\n  adopt_accounts: [\"222233334444\"]\n  adopt_role_ids: {\"222233334444\": AROAHANDMADE000000001}\n",
        )],
        &[],
    );
    // Adopted only where the spec targets: an account the targets exclude, or, with targets of account ids alone,
    // one they do not list, is refused before anything is read.
    check(
        &[("  tags: {team: security}\n", "  tags: {team: security}\n  adopt_accounts: [\"012345678901\"]\n")],
        &[
            "role.adopt_accounts[0]: 012345678901 is excluded by targets.exclude_account_ids: a role is taken over only in an account the spec targets",
        ],
    );
    check(
        &[
            (
                "  tags: {team: security}\n",
                "  tags: {team: security}\n  adopt_accounts: [\"222233334444\", \"333344445555\"]\n",
            ),
            ("  organizational_unit_ids: [ou-abcd-12345678]\n", "  account_ids: [\"222233334444\"]\n"),
        ],
        &[
            "role.adopt_accounts[1]: 333344445555 is not among the spec's targets (targets.account_ids): a role is taken over only in an account the spec targets; add it to the targets or remove it here",
        ],
    );
    // With OUs (or tags alone) only the organization tells: the selection is checked (adopt_outside_selection).
    check(&[("  tags: {team: security}\n", "  tags: {team: security}\n  adopt_accounts: [\"333344445555\"]\n")], &[]);
    check(
        &[("external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "external_id: REPLACE-with-the-roles-ExternalId")],
        &[
            "role.trust.external_id: is the placeholder that crossrole import writes: put the roles' ExternalId here (their vendor has it), or a new one the vendor will send",
        ],
    );
    check(
        &[("guardrail: weak-external-id", "guardrail: unowned-role")],
        &[
            "guardrails.waivers[0].guardrail: a role crossrole does not own is never modified by a waiver; `crossrole adopt -f <spec file>` takes it over on approval (role.adopt_accounts), or set role.adopt_existing",
        ],
    );
    check(
        &[
            ("    require_mfa: true\n", "    require_mfa: true\n    principal_match: direct\n"),
            ("role/Auditor]", "role/Audit*]"),
        ],
        &[
            "role.trust.principal_arns[0]: wildcards in principal ARNs need principal_match CONDITION (IAM principals cannot have wildcards)",
        ],
    );
}

#[test]
fn json_spec_files_too() {
    let json = r#"{"name":"x1","role":{"name":"R","trust":{"account_ids":["111122223333"]}},"targets":{"account_ids":["222233334444"]},"extra":1}"#;
    let err = AccessSpec::from_json(json).unwrap_err();
    assert_eq!(err.violations()[0].field, "extra");
    let ok = AccessSpec::from_json(&json.replace(r#","extra":1"#, "")).unwrap();
    assert_eq!(ok.role.path, "/");
    assert_eq!(ok.rollout, RolloutOptions::default());
}

#[test]
fn a_document_no_iam_quota_allows_is_refused_unread() {
    let mut wire = RawSpec::from(&AccessSpec::from_yaml(VALID).unwrap());
    let huge = format!("{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}", "x".repeat(200 * 1024));
    wire.role.as_mut().unwrap().inline_policies.insert("big".into(), huge);
    let e = AccessSpec::try_from(&wire).unwrap_err();
    let v = e.violations().iter().find(|v| v.field == "role.inline_policies[\"big\"]").unwrap();
    assert!(v.rule.starts_with("is 204839 bytes; IAM accepts at most"), "{}", v.rule);
}

#[test]
fn every_example_spec_is_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            AccessSpec::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2, "{checked} examples");
}

#[test]
fn shape_errors_speak_of_the_file_not_of_the_code_that_reads_it() {
    let cases = [
        (
            ("role:\n  name: SecurityAudit\n", "role: SecurityAudit\nx:\n  name: SecurityAudit\n"),
            "role: got the string \"SecurityAudit\", expected a mapping of fields (`field: value`) at line 3 column 7",
        ),
        (
            ("max_session_duration: 2h", "max_session_duration: [1]"),
            "role.max_session_duration: expected a duration like \"1h\" or a number of seconds at line 4 column 3",
        ),
        (
            ("exclude_account_ids: [012345678901]", "exclude_account_ids: [[1]]"),
            "targets.exclude_account_ids[0]: expected a 12-digit account id at line 21 column 24",
        ),
        (
            ("max_concurrency: 25%", "max_concurrency: [1]"),
            "rollout.max_concurrency: expected a count like 10 or a percentage like \"25%\" at line 27 column 3",
        ),
        (
            ("  group_names: [auditors]\n", "  group_names: auditors\n"),
            "grant.group_names: got the string \"auditors\", expected a list at line 24 column 16",
        ),
        (("tags: {team: security}", "tags: [team]"), "role.tags: got a list, expected a mapping at line 17 column 9"),
    ];
    for ((from, to), expected) in cases {
        check(&[(from, to)], &[expected]);
    }
    let whole = AccessSpec::from_yaml("- a\n- b\n").unwrap_err();
    assert_eq!(whole.violations()[0].to_string(), ".: got a list, expected a mapping of fields (`field: value`)");
    let json = AccessSpec::from_json("{\"name\":\"a\",\"role\":[]}").unwrap_err();
    assert_eq!(
        json.violations()[0].to_string(),
        "role: got a list, expected a mapping of fields (`field: value`) at line 1 column 21"
    );
    for e in [whole, json] {
        assert!(e.violations().iter().all(|v| !v.rule.contains("struct") && !v.rule.contains("enum")), "{e:?}");
    }
}

#[test]
fn a_variable_is_refused_where_crossrole_would_write_it_as_it_is() {
    let only = "only role.description, role.managed_policy_arns, role.permissions_boundary_arn and role.tags values are \
                templated";
    let not_here = |variable: &str| format!("{variable} is not expanded here; {only}");
    let not_in_policies = |variable: &str| {
        format!(
            "{variable} is not expanded in policy documents (IAM's own policy variables, like ${{aws:username}}, are \
             left to IAM); {only}"
        )
    };
    check(
        &[("path: /crossrole/", "path: /crossrole/${account_id}/")],
        &[&format!("role.path: {}", not_here("${account_id}"))],
    );
    check(&[("path: /crossrole/", "path: /a${b/")], &[&format!("role.path: {}", not_here("${b/"))]);
    check(
        &[("name: SecurityAudit", "name: Audit-${account_name}")],
        &[&format!("role.name: {}", not_here("${account_name}"))],
    );
    check(&[("name: security-audit", "name: ${spec}")], &[&format!("name: {}", not_here("${spec}"))]);
    check(
        &[("tags: {team: security}", "tags: {team: security, \"${account_name}\": x}")],
        &[&format!("role.tags[\"${{account_name}}\"]: {}", not_here("${account_name}"))],
    );
    check(
        &[("[arn:aws:iam::111122223333:role/Auditor]", "[\"arn:aws:iam::111122223333:role/${account_name}\"]")],
        &[&format!("role.trust.principal_arns[0]: {}", not_here("${account_name}"))],
    );
    check(
        &[("user_names: [alice]", "user_names: [\"alice-${account_id}\"]")],
        &[&format!("grant.user_names[0]: {}", not_here("${account_id}"))],
    );
    check(
        &[("  user_names: [alice]\n", "  user_names: [alice]\n  policy_name: assume-${partition}\n")],
        &[&format!("grant.policy_name: {}", not_here("${partition}"))],
    );
    check(
        &[("deny-secrets: '{", "deny-${account_id}: '{")],
        &[&format!("role.inline_policies[\"deny-${{account_id}}\"]: policy name {}", not_here("${account_id}"))],
    );
    // In a policy document, crossrole's variables are refused where they are, keys of conditions included.
    check(
        &[(
            r#""Resource":"*"}"#,
            r#""Resource":["arn:aws:s3:::logs-${account_id}/*","*"],"Condition":{"StringEquals":{"aws:ResourceTag/${ account_name }":"${partition}"}}}"#,
        )],
        &[
            &format!(
                "role.inline_policies[\"deny-secrets\"].Statement[0].Resource[0]: {}",
                not_in_policies("${account_id}")
            ),
            &format!(
                "role.inline_policies[\"deny-secrets\"].Statement[0].Condition.StringEquals.aws:ResourceTag/${{ account_name }}: {}",
                not_in_policies("${ account_name }")
            ),
            &format!(
                "role.inline_policies[\"deny-secrets\"].Statement[0].Condition.StringEquals.aws:ResourceTag/${{ account_name }}: {}",
                not_in_policies("${partition}")
            ),
        ],
    );
    // IAM's own policy variables are IAM's to resolve (the document is a single-quoted YAML string: '' is ').
    check(
        &[(
            r#""Resource":"*"}"#,
            r#""Resource":["arn:aws:s3:::home/${aws:username}/*","arn:aws:s3:::${aws:PrincipalTag/team}-${saml:sub}/${*}${?}${$}","arn:aws:s3:::x/${aws:userid, ''none''}"]}"#,
        )],
        &[],
    );
    // The templated fields take them.
    check(
        &[
            ("description: Read-only", "description: ${account_name} (${account_id}) read-only"),
            ("tags: {team: security}", "tags: {team: \"security ${account_name}\"}"),
            ("arn:aws:iam::aws:policy/SecurityAudit", "\"arn:${partition}:iam::${account_id}:policy/Audit\""),
            ("arn:aws:iam::aws:policy/ReadOnlyAccess", "\"arn:aws:iam::${account_id}:policy/Boundary\""),
        ],
        &[],
    );
}

/// The fields the docs and the rule name as templated are the ones the plan resolves per account.
#[test]
fn the_templated_fields_are_the_ones_the_plan_resolves() {
    let templated = VALID
        .replace("description: Read-only", "description: ${account_id} ${account_name} ${partition} Read-only")
        .replace("[arn:aws:iam::aws:policy/SecurityAudit]", "[\"arn:${partition}:iam::${account_id}:policy/A\"]")
        .replace("arn:aws:iam::aws:policy/ReadOnlyAccess", "\"arn:${partition}:iam::${account_id}:policy/B\"")
        .replace("tags: {team: security}", "tags: {team: \"${account_id} ${account_name} ${partition}\"}");
    let spec = AccessSpec::from_yaml(&templated).unwrap();
    let desired = crate::plan::DesiredRole::from_spec(&spec, Partition::Aws);
    let place = names::Place { partition: Partition::AwsCn, account_id: "444455556666", account_name: "Prod" };
    let resolved = desired.in_account(place);
    assert_eq!(resolved.description, "444455556666 Prod aws-cn Read-only audit access for the security team");
    assert_eq!(resolved.managed_policy_arns.iter().collect::<Vec<_>>(), ["arn:aws-cn:iam::444455556666:policy/A"]);
    assert_eq!(resolved.permissions_boundary_arn.as_deref(), Some("arn:aws-cn:iam::444455556666:policy/B"));
    assert_eq!(resolved.tags["team"], "444455556666 Prod aws-cn");
    assert!(!format!("{resolved:?}").contains("${"), "{resolved:?}");
    assert_eq!(
        names::TEMPLATED_FIELDS,
        ["role.description", "role.managed_policy_arns", "role.permissions_boundary_arn", "role.tags (values)"]
    );
}

#[test]
fn adopted_accounts_outside_the_selection_are_refused_naming_the_field() {
    let yaml = VALID.replace(
        "  tags: {team: security}\n",
        "  tags: {team: security}\n  adopt_accounts: [\"222233334444\", \"333344445555\"]\n",
    );
    let spec = AccessSpec::from_yaml(&yaml).unwrap();
    assert_eq!(adopt_outside_selection(&spec, ["222233334444", "333344445555", "444455556666"]), Ok(()));
    let refused = adopt_outside_selection(&spec, ["222233334444"]).unwrap_err();
    let said: Vec<String> = refused.violations().iter().map(|v| v.to_string()).collect();
    assert_eq!(
        said,
        [
            "role.adopt_accounts: 333344445555 is not among the accounts the spec's targets select: a role is taken over only in an account the spec targets; add it to the targets or remove it here"
        ]
    );
}
