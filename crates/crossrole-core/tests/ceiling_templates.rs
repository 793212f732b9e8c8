//! The ceiling as IAM would enforce it: the bootstrap role's policy and the optional SCP, read from the
//! CloudFormation templates in deploy/aws/, evaluated offline by crossrole's policy evaluator for the requests that
//! matter. No emulator enforces these permissions (LocalStack and moto accept any IAM call), so this is where the
//! ceiling is proven: a stolen crossroled cannot create a role without the ceiling's boundary, lift or change the
//! ceiling, attach a policy it is not allowed, or touch a role outside crossrole's path.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::BTreeMap;

use crossrole_core::policy::{
    DocumentKind, PolicyDocument,
    eval::{Outcome, Request, evaluate_request},
};
use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value as Yaml;

const ACCOUNT: &str = "123456789012";
const CEILING: &str = "arn:aws:iam::123456789012:policy/crossrole-ceiling/CrossroleCeiling";

fn template(name: &str) -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/aws").join(name);
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A value a parameter or pseudo-parameter resolves to.
#[derive(Clone)]
enum Param {
    One(String),
    List(Vec<String>),
}

/// Resolves the CloudFormation intrinsics these templates use (`!Sub`, `!Ref`, `!If`, `AWS::NoValue`); `None` for
/// a value that is not there.
fn resolve(v: &Yaml, params: &BTreeMap<String, Param>, conditions: &BTreeMap<String, bool>) -> Option<Json> {
    Some(match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => serde_json::from_str(&n.to_string()).unwrap(),
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().filter_map(|i| resolve(i, params, conditions)).collect()),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(v) = resolve(v, params, conditions) {
                    out.insert(k.as_str().unwrap().to_string(), v);
                }
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => match t.tag.to_string().as_str() {
            "!Sub" => Json::String(sub(t.value.as_str().unwrap(), params)),
            "!Ref" => match &params[t.value.as_str().unwrap()] {
                Param::One(s) if s == "<no value>" => return None,
                Param::One(s) => Json::String(s.clone()),
                Param::List(l) => Json::Array(l.iter().cloned().map(Json::String).collect()),
            },
            "!If" => {
                let args = t.value.as_sequence().unwrap();
                let which = if conditions[args[0].as_str().unwrap()] { &args[1] } else { &args[2] };
                return resolve(which, params, conditions);
            }
            other => panic!("intrinsic {other} is not modelled by this test"),
        },
    })
}

fn sub(text: &str, params: &BTreeMap<String, Param>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let len = rest[start..].find('}').unwrap();
        let name = &rest[start + 2..start + len];
        match name.strip_prefix('!') {
            // `${!x}` is a literal `${x}`: a policy variable for IAM, not CloudFormation's.
            Some(literal) => out.push_str(&format!("${{{literal}}}")),
            None => match &params[name] {
                Param::One(s) => out.push_str(s),
                Param::List(_) => panic!("a list in !Sub"),
            },
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

struct Bootstrap {
    /// The bootstrap role's policy.
    policy: PolicyDocument,
    /// The ceiling policy the template deploys.
    ceiling: PolicyDocument,
}

fn bootstrap(allowed: &[&str], trusted_side: bool) -> Bootstrap {
    let t = template("crossrole-bootstrap.yaml");
    let mut params: BTreeMap<String, Param> = BTreeMap::new();
    for (k, v) in t["Parameters"].as_mapping().unwrap() {
        let default = v.get("Default").and_then(Yaml::as_str).unwrap_or("").to_string();
        let param = if v.get("Type").and_then(Yaml::as_str) == Some("CommaDelimitedList") {
            Param::List(default.split(',').map(String::from).collect())
        } else {
            Param::One(default)
        };
        params.insert(k.as_str().unwrap().into(), param);
    }
    params.insert("CrossroledRoleArn".into(), Param::One("arn:aws:iam::999999999999:role/crossroled".into()));
    params.insert("AllowedManagedPolicyArns".into(), Param::List(allowed.iter().map(|s| s.to_string()).collect()));
    params.insert("ManageTrustedSide".into(), Param::One(trusted_side.to_string()));
    params.insert("AWS::Partition".into(), Param::One("aws".into()));
    params.insert("AWS::AccountId".into(), Param::One(ACCOUNT.into()));
    params.insert("AWS::NoValue".into(), Param::One("<no value>".into()));
    let conditions: BTreeMap<String, bool> =
        [("TrustedSide".to_string(), trusted_side), ("AnyManagedPolicy".to_string(), allowed.is_empty())].into();
    let doc = &t["Resources"]["BootstrapRole"]["Properties"]["Policies"][0]["PolicyDocument"];
    let doc = resolve(doc, &params, &conditions).unwrap();
    let ceiling =
        resolve(&t["Resources"]["CeilingPolicy"]["Properties"]["PolicyDocument"], &params, &conditions).unwrap();
    Bootstrap {
        policy: PolicyDocument::from_value(doc, DocumentKind::Identity).unwrap(),
        ceiling: PolicyDocument::from_value(ceiling, DocumentKind::Identity).unwrap(),
    }
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role{name}")
}

/// `(case, request, expected)` rows, checked against `policies`.
fn check(policies: &[&PolicyDocument], rows: &[(&str, Request, Outcome)]) {
    let mut wrong = Vec::new();
    for (case, request, expected) in rows {
        let got = evaluate_request(policies, request);
        if &got.outcome != expected {
            wrong.push(format!("{case}: expected {expected:?}, got {:?} ({})", got.outcome, got.reason));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

fn owned(r: Request) -> Request {
    r.with("aws:ResourceTag/crossrole:managed-by", &["crossrole"])
}

#[test]
fn the_bootstrap_role_cannot_exceed_the_ceiling() {
    let b = bootstrap(&["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/job-function/*"], false);
    let create = |path: &str| {
        Request::new("iam:CreateRole", &role(path)).with("aws:RequestTag/crossrole:managed-by", &["crossrole"])
    };
    use Outcome::*;
    check(
        &[&b.policy],
        &[
            (
                "create with the ceiling",
                create("/crossrole/Audit").with("iam:PermissionsBoundary", &[CEILING]),
                Allowed,
            ),
            ("create without a boundary", create("/crossrole/Audit"), ImplicitDeny),
            (
                "create with another boundary",
                create("/crossrole/Audit")
                    .with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
                ImplicitDeny,
            ),
            (
                "create outside crossrole's path",
                create("/Admin").with("iam:PermissionsBoundary", &[CEILING]),
                ImplicitDeny,
            ),
            (
                "create without the ownership tag",
                Request::new("iam:CreateRole", &role("/crossrole/Audit")).with("iam:PermissionsBoundary", &[CEILING]),
                ImplicitDeny,
            ),
            (
                "set the ceiling as boundary",
                owned(Request::new("iam:PutRolePermissionsBoundary", &role("/crossrole/Audit")))
                    .with("iam:PermissionsBoundary", &[CEILING]),
                Allowed,
            ),
            (
                "set another boundary",
                owned(Request::new("iam:PutRolePermissionsBoundary", &role("/crossrole/Audit")))
                    .with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
                ImplicitDeny,
            ),
            (
                "remove the boundary",
                owned(Request::new("iam:DeleteRolePermissionsBoundary", &role("/crossrole/Audit"))),
                ExplicitDeny,
            ),
            (
                "attach an allowed policy",
                owned(Request::new("iam:AttachRolePolicy", &role("/crossrole/Audit")))
                    .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/SecurityAudit"]),
                Allowed,
            ),
            (
                "attach an allowed policy, by pattern",
                owned(Request::new("iam:AttachRolePolicy", &role("/crossrole/Audit")))
                    .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"]),
                Allowed,
            ),
            (
                "attach a forbidden policy",
                owned(Request::new("iam:AttachRolePolicy", &role("/crossrole/Audit")))
                    .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
                ImplicitDeny,
            ),
            ("change the ceiling", Request::new("iam:CreatePolicyVersion", CEILING), ExplicitDeny),
            ("delete the ceiling", Request::new("iam:DeletePolicy", CEILING), ExplicitDeny),
            (
                "make a different version the ceiling's default",
                Request::new("iam:SetDefaultPolicyVersion", CEILING),
                ExplicitDeny,
            ),
            (
                "change an owned role's trust",
                owned(Request::new("iam:UpdateAssumeRolePolicy", &role("/crossrole/Audit"))),
                Allowed,
            ),
            ("change another role's trust", Request::new("iam:UpdateAssumeRolePolicy", &role("/Admin")), ImplicitDeny),
            (
                "change a role tagged as crossrole's outside its path",
                owned(Request::new("iam:UpdateAssumeRolePolicy", &role("/Admin"))),
                ImplicitDeny,
            ),
            (
                "claim a role outside the path by tagging it",
                Request::new("iam:TagRole", &role("/Admin"))
                    .with("aws:RequestTag/crossrole:managed-by", &["crossrole"]),
                ImplicitDeny,
            ),
            (
                "take the ownership tag off",
                owned(Request::new("iam:UntagRole", &role("/crossrole/Audit")))
                    .with("aws:TagKeys", &["crossrole:managed-by"]),
                ExplicitDeny,
            ),
            (
                "touch the bootstrap role",
                owned(Request::new("iam:UpdateAssumeRolePolicy", &role("/crossrole/CrossroleBootstrap"))),
                ExplicitDeny,
            ),
            ("read any role", Request::new("iam:GetRole", &role("/Admin")), Allowed),
            (
                "create a user",
                Request::new("iam:CreateUser", &format!("arn:aws:iam::{ACCOUNT}:user/mallory")),
                ImplicitDeny,
            ),
            (
                "a grant policy outside the trusted accounts",
                Request::new("iam:CreatePolicy", &format!("arn:aws:iam::{ACCOUNT}:policy/crossrole/x")),
                ImplicitDeny,
            ),
        ],
    );
}

/// A role's effective permissions under a boundary: what its policies allow and the boundary allows too.
fn effective(policies: &PolicyDocument, boundary: &PolicyDocument, request: &Request) -> Outcome {
    let own = evaluate_request(&[policies], request).outcome;
    let bound = evaluate_request(&[boundary], request).outcome;
    match (own, bound) {
        (Outcome::ExplicitDeny, _) | (_, Outcome::ExplicitDeny) => Outcome::ExplicitDeny,
        (Outcome::Allowed, Outcome::Allowed) => Outcome::Allowed,
        _ => Outcome::ImplicitDeny,
    }
}

#[test]
fn the_default_ceiling_bounds_even_an_administrator() {
    let b = bootstrap(&[], false);
    let admin = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        DocumentKind::Identity,
    )
    .unwrap();
    let user = format!("arn:aws:iam::{ACCOUNT}:user/mallory");
    for (action, resource, expected) in [
        ("s3:GetObject", "arn:aws:s3:::bucket/key", Outcome::Allowed),
        ("ec2:RunInstances", "*", Outcome::Allowed),
        ("iam:CreateUser", user.as_str(), Outcome::ExplicitDeny),
        ("iam:AttachUserPolicy", user.as_str(), Outcome::ExplicitDeny),
        ("iam:PassRole", "*", Outcome::ExplicitDeny),
        ("iam:UpdateAssumeRolePolicy", "*", Outcome::ExplicitDeny),
        ("organizations:LeaveOrganization", "*", Outcome::ExplicitDeny),
        ("account:CloseAccount", "*", Outcome::ExplicitDeny),
        ("iam:GetRole", "*", Outcome::Allowed),
    ] {
        let got = effective(&admin, &b.ceiling, &Request::new(action, resource));
        assert_eq!(got, expected, "{action}");
    }
}

#[test]
fn without_an_allow_list_any_policy_may_be_attached_and_the_boundary_still_holds() {
    let b = bootstrap(&[], false);
    let attach = |arn: &str| {
        owned(Request::new("iam:AttachRolePolicy", &role("/crossrole/Audit"))).with("iam:PolicyARN", &[arn])
    };
    check(
        &[&b.policy],
        &[
            ("attach anything", attach("arn:aws:iam::aws:policy/AdministratorAccess"), Outcome::Allowed),
            (
                "but never without the ceiling",
                Request::new("iam:CreateRole", &role("/crossrole/Audit"))
                    .with("aws:RequestTag/crossrole:managed-by", &["crossrole"]),
                Outcome::ImplicitDeny,
            ),
        ],
    );
}

#[test]
fn the_trusted_side_is_managed_only_where_it_is_asked_for() {
    let b = bootstrap(&[], true);
    let grant = format!("arn:aws:iam::{ACCOUNT}:policy/crossrole/crossrole-assume-audit");
    check(
        &[&b.policy],
        &[
            ("create the grant policy", Request::new("iam:CreatePolicy", &grant), Outcome::Allowed),
            (
                "attach it to a user",
                Request::new("iam:AttachUserPolicy", &format!("arn:aws:iam::{ACCOUNT}:user/alice"))
                    .with("iam:PolicyARN", &[&grant]),
                Outcome::Allowed,
            ),
            (
                "attach something else to a user",
                Request::new("iam:AttachUserPolicy", &format!("arn:aws:iam::{ACCOUNT}:user/alice"))
                    .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
                Outcome::ImplicitDeny,
            ),
            (
                "and the ceiling still cannot be changed",
                Request::new("iam:CreatePolicyVersion", CEILING),
                Outcome::ExplicitDeny,
            ),
        ],
    );
}

#[test]
fn the_scp_holds_the_ceiling_for_everyone() {
    let t = template("crossrole-ceiling-scp.yaml");
    let params: BTreeMap<String, Param> = [
        ("CeilingPolicyName".to_string(), Param::One("CrossroleCeiling".into())),
        ("CeilingAdministrators".to_string(), Param::One("arn:*:iam::*:role/stacksets-exec-*".into())),
    ]
    .into();
    let content = resolve(&t["Resources"]["CeilingScp"]["Properties"]["Content"], &params, &BTreeMap::new()).unwrap();
    let scp = PolicyDocument::from_value(content, DocumentKind::Identity).unwrap();
    // SCPs deny; with AWS's default FullAWSAccess beside them, what they do not deny is allowed.
    let full: PolicyDocument = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        DocumentKind::Identity,
    )
    .unwrap();
    let by = |r: Request, who: &str| r.with("aws:PrincipalAccount", &[ACCOUNT]).with("aws:PrincipalArn", &[who]);
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/Admin");
    let tagged_create = || {
        Request::new("iam:CreateRole", &role("/crossrole/Audit"))
            .with("aws:RequestTag/crossrole:managed-by", &["crossrole"])
    };
    use Outcome::*;
    check(
        &[&full, &scp],
        &[
            ("a crossrole role without a boundary", by(tagged_create(), &admin), ExplicitDeny),
            (
                "a crossrole role with another boundary",
                by(
                    tagged_create().with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
                    &admin,
                ),
                ExplicitDeny,
            ),
            (
                "a crossrole role under the ceiling",
                by(tagged_create().with("iam:PermissionsBoundary", &[CEILING]), &admin),
                Allowed,
            ),
            ("any other role", by(Request::new("iam:CreateRole", &role("/app/Worker")), &admin), Allowed),
            (
                "lifting the ceiling off a crossrole role",
                by(owned(Request::new("iam:DeleteRolePermissionsBoundary", &role("/crossrole/Audit"))), &admin),
                ExplicitDeny,
            ),
            (
                "another role's boundary",
                by(Request::new("iam:DeleteRolePermissionsBoundary", &role("/app/Worker")), &admin),
                Allowed,
            ),
            (
                "the ceiling changed by an admin",
                by(Request::new("iam:CreatePolicyVersion", CEILING), &admin),
                ExplicitDeny,
            ),
            (
                "the ceiling changed by its StackSet",
                by(
                    Request::new("iam:CreatePolicyVersion", CEILING),
                    &format!("arn:aws:iam::{ACCOUNT}:role/stacksets-exec-0123456789abcdef"),
                ),
                Allowed,
            ),
        ],
    );
}
