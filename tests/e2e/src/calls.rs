//! The calls crossroled made, as IAM would authorize them: the requests a recording proxy kept
//! ([`crate::proxy::Proxy::record`]) turned into requests for the IAM judge, each with the context IAM would send
//! — the request's own tags, boundary and policy ARN, and the state of the role, policy, user or group it is aimed
//! at *just before* the call (replayed from a snapshot taken before the run through every successful write).
//!
//! The emulators authorize nothing; this is how the e2e suite proves that every call crossroled makes through the
//! least-privilege bootstrap role is one the deployed role's policy allows. An action this module does not model
//! fails the test: a new call must be modelled before it can pass.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{judge::Case, proxy::Recorded};

/// An IAM entity as the calls see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    /// Its path (`/` when none).
    pub path: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its permissions boundary (roles).
    pub boundary: Option<String>,
}

/// The IAM entities of the accounts a run touches, by (account, name) — policies by ARN.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Roles.
    pub roles: BTreeMap<(String, String), Entity>,
    /// Users.
    pub users: BTreeMap<(String, String), Entity>,
    /// Groups.
    pub groups: BTreeMap<(String, String), Entity>,
    /// Customer-managed policies, by ARN.
    pub policies: BTreeMap<String, Entity>,
    /// The trust policies of the roles the calls assume (the resource policy of an `AssumeRole`), by role ARN.
    pub trusts: BTreeMap<String, Value>,
}

/// A request IAM authorizes: the action, the resource's ARN, the context the call gives, the state of the
/// resource just before.
type Request = (String, String, Vec<(String, Value)>, Option<Entity>);

/// Who signed the calls of an account: the bootstrap role's ARN there and its identity policy as deployed.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The role's ARN (`aws:PrincipalArn`).
    pub role_arn: String,
    /// Its policy documents, by name.
    pub policies: Vec<(String, Value)>,
}

fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

impl World {
    /// The calls in `recorded` signed by a caller `callers` knows (by account), as requests the judge must allow;
    /// the world moves through every successful write. Calls signed by anyone else (the `?` account: crossroled's
    /// own identity, or the test's) are not crossroled's bootstrap sessions and are left out.
    pub fn cases(
        &mut self,
        recorded: &[Recorded],
        callers: &BTreeMap<String, Caller>,
        organization: &str,
    ) -> Vec<Case> {
        let mut cases = Vec::new();
        for call in recorded {
            let Some(caller) = callers.get(&call.account) else { continue };
            for (action, resource, context, state) in self.requests(call, organization) {
                // The session's ARN: arn:aws:sts::<account>:assumed-role/<role name>/<session name>.
                let role_name = caller.role_arn.rsplit('/').next().unwrap_or("CrossroleBootstrap");
                let principal = format!("arn:aws:sts::{}:assumed-role/{role_name}/crossrole", call.account);
                let mut ctx = json!({
                    "aws:PrincipalArn": caller.role_arn,
                    "aws:PrincipalAccount": call.account,
                    "aws:PrincipalOrgID": organization,
                });
                for (k, v) in context {
                    ctx[k] = v;
                }
                // An AssumeRole is decided by the role's trust policy too.
                let trust = (action == "sts:AssumeRole").then(|| {
                    self.trusts
                        .get(&resource)
                        .cloned()
                        .unwrap_or_else(|| panic!("the trust of {resource} is not known"))
                });
                let mut simulation = crate::judge::simulation(
                    json!({
                        "principal": principal,
                        "action": action,
                        "resource": {"resource": resource, "accountId": resource.split(':').nth(4).unwrap_or(&call.account)},
                        "contextVariables": ctx,
                    }),
                    &caller.policies.iter().map(|(n, p)| (n.as_str(), p.clone())).collect::<Vec<_>>(),
                    trust,
                );
                if let Some(state) = state {
                    simulation["resourceState"] = json!({"tags": state.tags, "boundary": state.boundary});
                }
                let status = if call.succeeded() { "ok".to_string() } else { format!("HTTP {}", call.status) };
                cases.push(Case {
                    name: format!(
                        "{} in {}: {action} {resource} ({status})",
                        caller.role_arn.rsplit('/').next().unwrap_or("?"),
                        call.account
                    ),
                    expect: "Allowed",
                    simulation,
                });
            }
            if call.succeeded() {
                self.apply(call);
            }
        }
        cases
    }

    /// The request(s) IAM authorizes for `call`: (action, resource ARN, context, state of the resource).
    fn requests(&self, call: &Recorded, organization: &str) -> Vec<Request> {
        let a = &call.account;
        let p = |name: &str| call.param(name).unwrap_or_default().to_string();
        let tags = |prefix: &str| call.members(prefix, "Key", "Value");
        let tag_context = |tags: &[(String, String)]| {
            let mut c: Vec<(String, Value)> =
                tags.iter().map(|(k, v)| (format!("aws:RequestTag/{k}"), json!(v))).collect();
            c.push(("aws:TagKeys".into(), json!(tags.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())));
            c
        };
        let role = |name: &str| {
            let e = self.roles.get(&(a.clone(), name.to_string())).cloned();
            let path = e.as_ref().map_or("/".to_string(), |e| e.path.clone());
            (arn(a, "role", &path, name), e)
        };
        let policy = |arn: &str| (arn.to_string(), self.policies.get(arn).cloned());
        let action = format!("iam:{}", call.action);
        let one = |resource: String, context: Vec<(String, Value)>, state: Option<Entity>| {
            vec![(action.clone(), resource, context, state)]
        };
        match call.action.as_str() {
            "CreateRole" => {
                let resource = arn(a, "role", call.param("Path").unwrap_or("/"), &p("RoleName"));
                let tags = tags("Tags");
                let mut context = tag_context(&tags);
                if let Some(b) = call.param("PermissionsBoundary") {
                    context.push(("iam:PermissionsBoundary".into(), json!(b)));
                }
                let mut out = one(resource.clone(), context, None);
                // A role created with tags needs iam:TagRole for them too.
                if !tags.is_empty() {
                    out.push(("iam:TagRole".into(), resource, tag_context(&tags), None));
                }
                out
            }
            "GetRole"
            | "ListAttachedRolePolicies"
            | "ListRolePolicies"
            | "GetRolePolicy"
            | "ListRoleTags"
            | "PutRolePolicy"
            | "DeleteRolePolicy"
            | "UpdateAssumeRolePolicy"
            | "UpdateRole"
            | "UpdateRoleDescription"
            | "DeleteRole"
            | "DeleteRolePermissionsBoundary" => {
                let (resource, state) = role(&p("RoleName"));
                one(resource, vec![], state)
            }
            "AttachRolePolicy" | "DetachRolePolicy" => {
                let (resource, state) = role(&p("RoleName"));
                one(resource, vec![("iam:PolicyARN".into(), json!(p("PolicyArn")))], state)
            }
            "PutRolePermissionsBoundary" => {
                let (resource, state) = role(&p("RoleName"));
                one(resource, vec![("iam:PermissionsBoundary".into(), json!(p("PermissionsBoundary")))], state)
            }
            "TagRole" => {
                let (resource, state) = role(&p("RoleName"));
                one(resource, tag_context(&tags("Tags")), state)
            }
            "UntagRole" => {
                let (resource, state) = role(&p("RoleName"));
                let keys: Vec<String> = call.members("TagKeys", "", "").into_iter().map(|(k, _)| k).collect();
                one(resource, vec![("aws:TagKeys".into(), json!(keys))], state)
            }
            "CreatePolicy" => {
                let resource = arn(a, "policy", call.param("Path").unwrap_or("/"), &p("PolicyName"));
                let tags = tags("Tags");
                let mut out = one(resource.clone(), tag_context(&tags), None);
                if !tags.is_empty() {
                    out.push(("iam:TagPolicy".into(), resource, tag_context(&tags), None));
                }
                out
            }
            "GetPolicy"
            | "GetPolicyVersion"
            | "ListPolicyVersions"
            | "ListEntitiesForPolicy"
            | "CreatePolicyVersion"
            | "DeletePolicyVersion"
            | "DeletePolicy"
            | "SetDefaultPolicyVersion" => {
                let (resource, state) = policy(&p("PolicyArn"));
                one(resource, vec![], state)
            }
            "AttachUserPolicy" | "DetachUserPolicy" => {
                let name = p("UserName");
                let e = self.users.get(&(a.clone(), name.clone())).cloned();
                let path = e.as_ref().map_or("/".to_string(), |e| e.path.clone());
                one(arn(a, "user", &path, &name), vec![("iam:PolicyARN".into(), json!(p("PolicyArn")))], e)
            }
            "AttachGroupPolicy" | "DetachGroupPolicy" => {
                let name = p("GroupName");
                let e = self.groups.get(&(a.clone(), name.clone())).cloned();
                let path = e.as_ref().map_or("/".to_string(), |e| e.path.clone());
                one(arn(a, "group", &path, &name), vec![("iam:PolicyARN".into(), json!(p("PolicyArn")))], None)
            }
            // STS: the live check assumes a role as the trusted side.
            "AssumeRole" => {
                let mut context = vec![("aws:ResourceOrgID".to_string(), json!(organization))];
                if let Some(x) = call.param("ExternalId") {
                    context.push(("sts:ExternalId".into(), json!(x)));
                }
                // The role assumed, as it is then (its tags are the resource's).
                let arn = p("RoleArn");
                let account = arn.split(':').nth(4).unwrap_or_default().to_string();
                let name = arn.rsplit('/').next().unwrap_or_default().to_string();
                let state = self.roles.get(&(account, name)).cloned();
                vec![("sts:AssumeRole".into(), arn, context, state)]
            }
            "GetCallerIdentity" => vec![],
            // The inventory's one read: IAM authorizes it on no resource but "*".
            "GetAccountAuthorizationDetails" => one("*".to_string(), vec![], None),
            other => panic!("the calls judge has no model of {other}: model what IAM authorizes for it in calls.rs"),
        }
    }

    /// What a successful write changed.
    fn apply(&mut self, call: &Recorded) {
        let a = call.account.clone();
        let key = |name: &str| (a.clone(), call.param(name).unwrap_or_default().to_string());
        let tags = |prefix: &str| call.members(prefix, "Key", "Value");
        match call.action.as_str() {
            "CreateRole" => {
                let e = Entity {
                    path: call.param("Path").unwrap_or("/").to_string(),
                    tags: tags("Tags").into_iter().collect(),
                    boundary: call.param("PermissionsBoundary").map(str::to_string),
                };
                self.roles.insert(key("RoleName"), e);
            }
            "DeleteRole" => {
                self.roles.remove(&key("RoleName"));
            }
            "TagRole" => {
                if let Some(r) = self.roles.get_mut(&key("RoleName")) {
                    r.tags.extend(tags("Tags"));
                }
            }
            "UntagRole" => {
                if let Some(r) = self.roles.get_mut(&key("RoleName")) {
                    for (k, _) in call.members("TagKeys", "", "") {
                        r.tags.remove(&k);
                    }
                }
            }
            "PutRolePermissionsBoundary" => {
                if let Some(r) = self.roles.get_mut(&key("RoleName")) {
                    r.boundary = call.param("PermissionsBoundary").map(str::to_string);
                }
            }
            "DeleteRolePermissionsBoundary" => {
                if let Some(r) = self.roles.get_mut(&key("RoleName")) {
                    r.boundary = None;
                }
            }
            "CreatePolicy" => {
                let path = call.param("Path").unwrap_or("/").to_string();
                let arn = arn(&a, "policy", &path, call.param("PolicyName").unwrap_or_default());
                self.policies.insert(arn, Entity { path, tags: tags("Tags").into_iter().collect(), boundary: None });
            }
            "DeletePolicy" => {
                self.policies.remove(call.param("PolicyArn").unwrap_or_default());
            }
            _ => {}
        }
    }
}
