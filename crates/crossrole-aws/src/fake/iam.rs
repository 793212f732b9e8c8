//! IAM in the fake, with the checks real IAM makes.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use crossrole_core::{
    grant::{MAX_POLICY_VERSIONS, PolicyVersion},
    inventory::RoleDetail,
    names,
    plan::RoleAttributes,
    spec::PrincipalKind,
};

use super::{AccountState, FakePolicy, FakeRole, World};
use crate::{
    api::{IamApi, Page, PolicyRecord, RoleRecord},
    error::{AwsError, Service},
};

/// IAM returns documents URL-encoded.
pub(crate) fn encode(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub(crate) fn decode(doc: &str) -> String {
    percent_encoding::percent_decode_str(doc).decode_utf8_lossy().into_owned()
}

pub(crate) struct FakeIam {
    pub(crate) world: Arc<World>,
    pub(crate) identity: Result<(String, String), AwsError>,
}

fn err(op: &str, code: &str, message: impl Into<String>) -> AwsError {
    let status = match code {
        "NoSuchEntity" => 404,
        "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => 409,
        _ => 400,
    };
    AwsError::from_code(format!("iam:{op}"), Some(code), Some(status), message)
}

fn check_json(op: &str, doc: &str) -> Result<(), AwsError> {
    serde_json::from_str::<serde_json::Value>(doc)
        .map(|_| ())
        .map_err(|e| err(op, "MalformedPolicyDocument", e.to_string()))
}

impl FakeIam {
    /// Runs `f` on the caller's account state after the common checks.
    async fn with<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut AccountState, &World) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let (account, principal) = self.identity.clone()?;
        let ticket = self.world.enter(Service::Iam, op, &account, &account).await?;
        let result = {
            let mut iam = self.world.iam.lock().unwrap_or_else(|e| e.into_inner());
            let state = iam.entry(account).or_default();
            // As in IAM, a role's session is evaluated against the role as it is now: once the role is deleted,
            // its sessions (still unexpired) are denied everything.
            let deleted = names::Arn::parse(&principal).filter(|a| a.resource.starts_with("role/")).is_some_and(|a| {
                let name = a.resource.rsplit('/').next().unwrap_or_default();
                state.roles.get(name).is_none_or(|r| r.arn != principal)
            });
            if deleted {
                Err(err(op, "AccessDenied", format!("User: {principal} is not authorized to perform: iam:{op}")))
            } else {
                f(state, &self.world)
            }
        };
        ticket.leave(&format!("iam:{op}"), result)
    }
}

fn role<'a>(op: &str, s: &'a mut AccountState, name: &str) -> Result<&'a mut FakeRole, AwsError> {
    s.roles.get_mut(name).ok_or_else(|| err(op, "NoSuchEntity", format!("The role with name {name} cannot be found.")))
}

fn policy_exists(s: &AccountState, arn: &str) -> bool {
    names::Arn::parse(arn).is_some_and(|a| a.account == "aws") || s.policies.contains_key(arn)
}

fn page<T: Clone>(items: Vec<T>, marker: Option<String>) -> Page<T> {
    const SIZE: usize = 100;
    let offset = marker.and_then(|m| m.parse().ok()).unwrap_or(0usize);
    let end = (offset + SIZE).min(items.len());
    Page {
        items: items.get(offset..end).map(<[T]>::to_vec).unwrap_or_default(),
        next_token: (end < items.len()).then(|| end.to_string()),
    }
}

#[async_trait]
impl IamApi for FakeIam {
    async fn get_role(&self, name: &str) -> Result<RoleRecord, AwsError> {
        self.with("GetRole", |s, _| {
            let r = role("GetRole", s, name)?;
            Ok(RoleRecord { arn: r.arn.clone(), role_id: r.role_id(), attributes: r.attributes(name) })
        })
        .await
    }

    async fn list_attached_role_policies(&self, name: &str, marker: Option<String>) -> Result<Page<String>, AwsError> {
        self.with("ListAttachedRolePolicies", |s, _| {
            Ok(page(role("ListAttachedRolePolicies", s, name)?.managed.iter().cloned().collect(), marker))
        })
        .await
    }

    async fn list_role_policies(&self, name: &str, marker: Option<String>) -> Result<Page<String>, AwsError> {
        self.with("ListRolePolicies", |s, _| {
            Ok(page(role("ListRolePolicies", s, name)?.inline.keys().cloned().collect(), marker))
        })
        .await
    }

    async fn get_role_policy(&self, name: &str, policy: &str) -> Result<String, AwsError> {
        self.with("GetRolePolicy", |s, _| {
            role("GetRolePolicy", s, name)?.inline.get(policy).cloned().ok_or_else(|| {
                err("GetRolePolicy", "NoSuchEntity", format!("The role policy with name {policy} cannot be found."))
            })
        })
        .await
    }

    async fn create_role(&self, input: &RoleAttributes) -> Result<(), AwsError> {
        let (account, _) = self.identity.clone()?;
        self.with("CreateRole", |s, w| {
            if s.roles.contains_key(&input.name) {
                return Err(err(
                    "CreateRole",
                    "EntityAlreadyExists",
                    format!("Role with name {} already exists.", input.name),
                ));
            }
            check_json("CreateRole", &input.trust_policy)?;
            if let Some(b) = &input.permissions_boundary_arn
                && !policy_exists(s, b)
            {
                return Err(err("CreateRole", "NoSuchEntity", format!("Policy {b} does not exist")));
            }
            s.roles.insert(
                input.name.clone(),
                FakeRole {
                    description: input.description.clone(),
                    max_session_duration: input.max_session_duration,
                    boundary: input.permissions_boundary_arn.clone(),
                    tags: input.tags.clone(),
                    ..FakeRole::new(
                        names::role_arn(w.partition, &account, &input.path, &input.name),
                        &input.path,
                        &input.trust_policy,
                    )
                },
            );
            Ok(())
        })
        .await
    }

    async fn get_account_authorization_details_roles(
        &self,
        marker: Option<String>,
        max_items: u32,
    ) -> Result<Page<RoleDetail>, AwsError> {
        let (account, _) = self.identity.clone()?;
        let op = "GetAccountAuthorizationDetails";
        self.with(op, |s, w| {
            // As IAM: MaxItems is 1 to 1000; a marker is one this call handed out.
            if !(1..=1000).contains(&max_items) {
                return Err(err(op, "ValidationError", format!("1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000")));
            }
            let offset = match &marker {
                None => 0,
                Some(m) => m.parse::<usize>().ok().filter(|o| *o <= s.roles.len()).ok_or_else(|| {
                    err(op, "ValidationError", "Invalid Marker.")
                })?,
            };
            let size = (max_items as usize).min(w.config.details_page_size.max(1));
            let end = (offset + size).min(s.roles.len());
            let items = s
                .roles
                .iter()
                .skip(offset)
                .take(end - offset)
                .map(|(name, r)| RoleDetail {
                    account_id: account.clone(),
                    name: name.clone(),
                    path: r.path.clone(),
                    arn: r.arn.clone(),
                    role_id: r.role_id(),
                    created: r.created,
                    trust_policy: r.trust.clone(),
                    managed_policy_arns: r.managed.clone(),
                    inline_policies: r.inline.clone(),
                    permissions_boundary_arn: r.boundary.clone(),
                    tags: r.tags.clone(),
                    last_used: r.last_used.clone(),
                })
                .collect();
            Ok(Page { items, next_token: (end < s.roles.len()).then(|| end.to_string()) })
        })
        .await
    }

    async fn update_assume_role_policy(&self, name: &str, document: &str) -> Result<(), AwsError> {
        self.with("UpdateAssumeRolePolicy", |s, _| {
            check_json("UpdateAssumeRolePolicy", document)?;
            role("UpdateAssumeRolePolicy", s, name)?.trust = encode(document);
            Ok(())
        })
        .await
    }

    async fn update_role(&self, name: &str, description: Option<&str>, max: Option<u32>) -> Result<(), AwsError> {
        self.with("UpdateRole", |s, _| {
            let r = role("UpdateRole", s, name)?;
            if let Some(d) = description {
                r.description = d.to_string();
            }
            if let Some(m) = max {
                r.max_session_duration = m;
            }
            Ok(())
        })
        .await
    }

    async fn put_role_permissions_boundary(&self, name: &str, arn: &str) -> Result<(), AwsError> {
        self.with("PutRolePermissionsBoundary", |s, _| {
            if !policy_exists(s, arn) {
                return Err(err("PutRolePermissionsBoundary", "NoSuchEntity", format!("Policy {arn} does not exist")));
            }
            role("PutRolePermissionsBoundary", s, name)?.boundary = Some(arn.to_string());
            Ok(())
        })
        .await
    }

    async fn delete_role_permissions_boundary(&self, name: &str) -> Result<(), AwsError> {
        self.with("DeleteRolePermissionsBoundary", |s, _| {
            role("DeleteRolePermissionsBoundary", s, name)?.boundary = None;
            Ok(())
        })
        .await
    }

    async fn attach_role_policy(&self, name: &str, arn: &str) -> Result<(), AwsError> {
        self.with("AttachRolePolicy", |s, w| {
            if !policy_exists(s, arn) {
                return Err(err(
                    "AttachRolePolicy",
                    "NoSuchEntity",
                    format!("Policy {arn} does not exist or is not attachable."),
                ));
            }
            let customer = s.policies.contains_key(arn);
            let r = role("AttachRolePolicy", s, name)?;
            if !r.managed.contains(arn) && r.managed.len() >= w.config.managed_policies_per_role {
                return Err(err("AttachRolePolicy", "LimitExceeded", "Cannot exceed quota for PoliciesPerRole"));
            }
            r.managed.insert(arn.to_string());
            if customer && let Some(p) = s.policies.get_mut(arn) {
                p.attachments.insert((PrincipalKind::Role, name.to_string()));
            }
            Ok(())
        })
        .await
    }

    async fn detach_role_policy(&self, name: &str, arn: &str) -> Result<(), AwsError> {
        self.with("DetachRolePolicy", |s, _| {
            if !role("DetachRolePolicy", s, name)?.managed.remove(arn) {
                return Err(err("DetachRolePolicy", "NoSuchEntity", format!("Policy {arn} was not found.")));
            }
            if let Some(p) = s.policies.get_mut(arn) {
                p.attachments.remove(&(PrincipalKind::Role, name.to_string()));
            }
            Ok(())
        })
        .await
    }

    async fn put_role_policy(&self, name: &str, policy: &str, document: &str) -> Result<(), AwsError> {
        self.with("PutRolePolicy", |s, _| {
            check_json("PutRolePolicy", document)?;
            let r = role("PutRolePolicy", s, name)?;
            // IAM counts a role's inline policies together, whitespace aside: at most 10,240 characters.
            let size = |doc: &str| {
                serde_json::from_str::<serde_json::Value>(doc)
                    .map_or(doc.chars().count(), |v| v.to_string().chars().count())
            };
            let others: usize =
                r.inline.iter().filter(|(n, _)| n.as_str() != policy).map(|(_, d)| size(&decode(d))).sum();
            if others + size(document) > 10_240 {
                return Err(err(
                    "PutRolePolicy",
                    "LimitExceeded",
                    format!("Maximum policy size of 10240 bytes exceeded for role {name}"),
                ));
            }
            r.inline.insert(policy.to_string(), encode(document));
            Ok(())
        })
        .await
    }

    async fn delete_role_policy(&self, name: &str, policy: &str) -> Result<(), AwsError> {
        self.with("DeleteRolePolicy", |s, _| {
            role("DeleteRolePolicy", s, name)?.inline.remove(policy).map(|_| ()).ok_or_else(|| {
                err("DeleteRolePolicy", "NoSuchEntity", format!("The role policy with name {policy} cannot be found."))
            })
        })
        .await
    }

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        self.with("TagRole", |s, _| {
            let r = role("TagRole", s, name)?;
            r.tags.extend(tags.clone());
            if r.tags.len() > 50 {
                return Err(err("TagRole", "LimitExceeded", "The number of tags has reached the maximum limit."));
            }
            Ok(())
        })
        .await
    }

    async fn untag_role(&self, name: &str, keys: &[String]) -> Result<(), AwsError> {
        self.with("UntagRole", |s, _| {
            let r = role("UntagRole", s, name)?;
            for k in keys {
                r.tags.remove(k);
            }
            Ok(())
        })
        .await
    }

    async fn delete_role(&self, name: &str) -> Result<(), AwsError> {
        self.with("DeleteRole", |s, _| {
            let r = role("DeleteRole", s, name)?;
            if !r.managed.is_empty() || !r.inline.is_empty() {
                return Err(err(
                    "DeleteRole",
                    "DeleteConflict",
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            s.roles.remove(name);
            Ok(())
        })
        .await
    }

    async fn get_policy(&self, arn: &str) -> Result<PolicyRecord, AwsError> {
        self.with("GetPolicy", |s, _| {
            let p = s
                .policies
                .get(arn)
                .ok_or_else(|| err("GetPolicy", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            Ok(PolicyRecord { arn: arn.into(), default_version_id: p.default_version.clone(), tags: p.tags.clone() })
        })
        .await
    }

    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError> {
        self.with("GetPolicyVersion", |s, _| {
            s.policies
                .get(arn)
                .and_then(|p| p.versions.iter().find(|v| v.0 == version))
                .map(|v| v.1.clone())
                .ok_or_else(|| {
                    err("GetPolicyVersion", "NoSuchEntity", format!("Policy {arn} version {version} does not exist."))
                })
        })
        .await
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError> {
        self.with("ListPolicyVersions", |s, _| {
            let p = s
                .policies
                .get(arn)
                .ok_or_else(|| err("ListPolicyVersions", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            Ok(p.versions
                .iter()
                .map(|(id, _, created)| PolicyVersion {
                    id: id.clone(),
                    is_default: *id == p.default_version,
                    created: *created,
                })
                .collect())
        })
        .await
    }

    async fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let (account, _) = self.identity.clone()?;
        self.with("CreatePolicy", |s, w| {
            check_json("CreatePolicy", document)?;
            let arn = names::policy_arn(w.partition, &account, path, name);
            if s.policies.contains_key(&arn) {
                return Err(err(
                    "CreatePolicy",
                    "EntityAlreadyExists",
                    format!("A policy called {name} already exists."),
                ));
            }
            s.policies.insert(
                arn,
                FakePolicy {
                    versions: vec![("v1".into(), encode(document), w.now())],
                    default_version: "v1".into(),
                    next_version: 2,
                    tags: tags.clone(),
                    attachments: Default::default(),
                },
            );
            Ok(())
        })
        .await
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError> {
        self.with("CreatePolicyVersion", |s, w| {
            check_json("CreatePolicyVersion", document)?;
            let p = s
                .policies
                .get_mut(arn)
                .ok_or_else(|| err("CreatePolicyVersion", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(err("CreatePolicyVersion", "LimitExceeded", "A managed policy can have up to 5 versions."));
            }
            let id = format!("v{}", p.next_version);
            p.next_version += 1;
            p.versions.push((id.clone(), encode(document), w.now()));
            p.default_version = id;
            Ok(())
        })
        .await
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        self.with("DeletePolicyVersion", |s, _| {
            let p = s
                .policies
                .get_mut(arn)
                .ok_or_else(|| err("DeletePolicyVersion", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            if p.default_version == version {
                return Err(err(
                    "DeletePolicyVersion",
                    "DeleteConflict",
                    "Cannot delete the default version of a policy.",
                ));
            }
            let before = p.versions.len();
            p.versions.retain(|v| v.0 != version);
            if p.versions.len() == before {
                return Err(err("DeletePolicyVersion", "NoSuchEntity", format!("Version {version} does not exist.")));
            }
            Ok(())
        })
        .await
    }

    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError> {
        self.with("DeletePolicy", |s, _| {
            let p = s
                .policies
                .get(arn)
                .ok_or_else(|| err("DeletePolicy", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            if !p.attachments.is_empty() || p.versions.len() > 1 {
                return Err(err(
                    "DeletePolicy",
                    "DeleteConflict",
                    "Cannot delete a policy attached to entities or with versions.",
                ));
            }
            s.policies.remove(arn);
            Ok(())
        })
        .await
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(PrincipalKind, String)>, AwsError> {
        self.with("ListEntitiesForPolicy", |s, _| {
            let p = s
                .policies
                .get(arn)
                .ok_or_else(|| err("ListEntitiesForPolicy", "NoSuchEntity", format!("Policy {arn} was not found.")))?;
            Ok(page(p.attachments.iter().cloned().collect(), marker))
        })
        .await
    }

    async fn attach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError> {
        let op = match kind {
            PrincipalKind::User => "AttachUserPolicy",
            PrincipalKind::Group => "AttachGroupPolicy",
            PrincipalKind::Role => "AttachRolePolicy",
        };
        self.with(op, |s, _| {
            let exists = match kind {
                PrincipalKind::User => s.users.contains(name),
                PrincipalKind::Group => s.groups.contains(name),
                PrincipalKind::Role => s.roles.contains_key(name),
            };
            if !exists {
                return Err(err(
                    op,
                    "NoSuchEntity",
                    format!("The {} with name {name} cannot be found.", kind.as_str()),
                ));
            }
            let p = s
                .policies
                .get_mut(arn)
                .ok_or_else(|| err(op, "NoSuchEntity", format!("Policy {arn} does not exist.")))?;
            p.attachments.insert((kind, name.to_string()));
            if kind == PrincipalKind::Role
                && let Some(r) = s.roles.get_mut(name)
            {
                r.managed.insert(arn.to_string());
            }
            Ok(())
        })
        .await
    }

    async fn detach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError> {
        let op = match kind {
            PrincipalKind::User => "DetachUserPolicy",
            PrincipalKind::Group => "DetachGroupPolicy",
            PrincipalKind::Role => "DetachRolePolicy",
        };
        self.with(op, |s, _| {
            let p = s
                .policies
                .get_mut(arn)
                .ok_or_else(|| err(op, "NoSuchEntity", format!("Policy {arn} does not exist.")))?;
            if !p.attachments.remove(&(kind, name.to_string())) {
                return Err(err(op, "NoSuchEntity", format!("Policy {arn} is not attached to {name}.")));
            }
            if kind == PrincipalKind::Role
                && let Some(r) = s.roles.get_mut(name)
            {
                r.managed.remove(arn);
            }
            Ok(())
        })
        .await
    }
}
