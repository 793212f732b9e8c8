//! IAM over the SDK, as assumed credentials in one account.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_iam::{
    Client,
    types::{EntityType, Tag},
};
use crossrole_core::{
    grant::PolicyVersion,
    inventory::{LastUsed, RoleDetail},
    plan::RoleAttributes,
    spec::PrincipalKind,
};

use super::{map_err, provider, unix};
use crate::{
    api::{Credentials, IamApi, Page, PolicyRecord, RoleRecord},
    error::AwsError,
};

pub(super) struct SdkIam {
    client: Client,
    /// The account the credentials act in (the roles `GetAccountAuthorizationDetails` lists are its).
    account_id: String,
}

impl SdkIam {
    pub(super) fn new(config: &SdkConfig, credentials: &Credentials) -> Self {
        let conf = aws_sdk_iam::config::Builder::from(config).credentials_provider(provider(credentials)).build();
        SdkIam { client: Client::from_conf(conf), account_id: credentials.account_id.clone() }
    }
}

fn tags(map: &BTreeMap<String, String>) -> Option<Vec<Tag>> {
    if map.is_empty() {
        return None;
    }
    Some(map.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect())
}

fn page<T>(items: Vec<T>, truncated: bool, marker: Option<&str>) -> Page<T> {
    Page { items, next_token: if truncated { marker.map(String::from) } else { None } }
}

#[async_trait]
impl IamApi for SdkIam {
    async fn get_role(&self, name: &str) -> Result<RoleRecord, AwsError> {
        let call = "iam:GetRole";
        let out = self.client.get_role().role_name(name).send().await.map_err(|e| map_err(call, e))?;
        let r = out.role().ok_or_else(|| AwsError::from_code(call, None, None, "no role in the response"))?;
        Ok(RoleRecord {
            arn: r.arn().to_string(),
            role_id: r.role_id().to_string(),
            attributes: RoleAttributes {
                name: r.role_name().to_string(),
                path: r.path().to_string(),
                description: r.description().unwrap_or_default().to_string(),
                max_session_duration: r.max_session_duration().unwrap_or(3600) as u32,
                trust_policy: r.assume_role_policy_document().unwrap_or_default().to_string(),
                permissions_boundary_arn: r
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(String::from),
                tags: r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            },
        })
    }

    async fn list_attached_role_policies(&self, role: &str, marker: Option<String>) -> Result<Page<String>, AwsError> {
        let out = self
            .client
            .list_attached_role_policies()
            .role_name(role)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| map_err("iam:ListAttachedRolePolicies", e))?;
        let items = out.attached_policies().iter().filter_map(|p| p.policy_arn().map(String::from)).collect();
        Ok(page(items, out.is_truncated(), out.marker()))
    }

    async fn list_role_policies(&self, role: &str, marker: Option<String>) -> Result<Page<String>, AwsError> {
        let out = self
            .client
            .list_role_policies()
            .role_name(role)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| map_err("iam:ListRolePolicies", e))?;
        Ok(page(out.policy_names().to_vec(), out.is_truncated(), out.marker()))
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| map_err("iam:GetRolePolicy", e))?;
        Ok(out.policy_document().to_string())
    }

    async fn create_role(&self, role: &RoleAttributes) -> Result<(), AwsError> {
        self.client
            .create_role()
            .role_name(&role.name)
            .path(&role.path)
            .set_description(if role.description.is_empty() { None } else { Some(role.description.clone()) })
            .max_session_duration(role.max_session_duration as i32)
            .assume_role_policy_document(&role.trust_policy)
            .set_permissions_boundary(role.permissions_boundary_arn.clone())
            .set_tags(tags(&role.tags))
            .send()
            .await
            .map_err(|e| map_err("iam:CreateRole", e))?;
        Ok(())
    }

    async fn update_assume_role_policy(&self, role: &str, document: &str) -> Result<(), AwsError> {
        self.client
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| map_err("iam:UpdateAssumeRolePolicy", e))?;
        Ok(())
    }

    async fn update_role(
        &self,
        role: &str,
        description: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<(), AwsError> {
        self.client
            .update_role()
            .role_name(role)
            .set_description(description.map(String::from))
            .set_max_session_duration(max_session_duration.map(|d| d as i32))
            .send()
            .await
            .map_err(|e| map_err("iam:UpdateRole", e))?;
        Ok(())
    }

    async fn put_role_permissions_boundary(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        self.client
            .put_role_permissions_boundary()
            .role_name(role)
            .permissions_boundary(arn)
            .send()
            .await
            .map_err(|e| map_err("iam:PutRolePermissionsBoundary", e))?;
        Ok(())
    }

    async fn delete_role_permissions_boundary(&self, role: &str) -> Result<(), AwsError> {
        self.client
            .delete_role_permissions_boundary()
            .role_name(role)
            .send()
            .await
            .map_err(|e| map_err("iam:DeleteRolePermissionsBoundary", e))?;
        Ok(())
    }

    async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        self.client
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| map_err("iam:AttachRolePolicy", e))?;
        Ok(())
    }

    async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        self.client
            .detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| map_err("iam:DetachRolePolicy", e))?;
        Ok(())
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), AwsError> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| map_err("iam:PutRolePolicy", e))?;
        Ok(())
    }

    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError> {
        self.client
            .delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| map_err("iam:DeleteRolePolicy", e))?;
        Ok(())
    }

    async fn tag_role(&self, role: &str, t: &BTreeMap<String, String>) -> Result<(), AwsError> {
        self.client.tag_role().role_name(role).set_tags(tags(t)).send().await.map_err(|e| map_err("iam:TagRole", e))?;
        Ok(())
    }

    async fn untag_role(&self, role: &str, keys: &[String]) -> Result<(), AwsError> {
        self.client
            .untag_role()
            .role_name(role)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| map_err("iam:UntagRole", e))?;
        Ok(())
    }

    async fn delete_role(&self, role: &str) -> Result<(), AwsError> {
        self.client.delete_role().role_name(role).send().await.map_err(|e| map_err("iam:DeleteRole", e))?;
        Ok(())
    }

    async fn get_account_authorization_details_roles(
        &self,
        marker: Option<String>,
        max_items: u32,
    ) -> Result<Page<RoleDetail>, AwsError> {
        let out = self
            .client
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .max_items(max_items as i32)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| map_err("iam:GetAccountAuthorizationDetails", e))?;
        let items = out.role_detail_list().iter().map(|r| role_detail(&self.account_id, r)).collect();
        Ok(page(items, out.is_truncated(), out.marker()))
    }

    async fn get_policy(&self, arn: &str) -> Result<PolicyRecord, AwsError> {
        let call = "iam:GetPolicy";
        let out = self.client.get_policy().policy_arn(arn).send().await.map_err(|e| map_err(call, e))?;
        let p = out.policy().ok_or_else(|| AwsError::from_code(call, None, None, "no policy in the response"))?;
        Ok(PolicyRecord {
            arn: p.arn().unwrap_or(arn).to_string(),
            default_version_id: p.default_version_id().unwrap_or("v1").to_string(),
            tags: p.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
        })
    }

    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError> {
        let call = "iam:GetPolicyVersion";
        let out = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| map_err(call, e))?;
        Ok(out.policy_version().and_then(|v| v.document()).unwrap_or_default().to_string())
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError> {
        let out = self
            .client
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| map_err("iam:ListPolicyVersions", e))?;
        Ok(out
            .versions()
            .iter()
            .map(|v| PolicyVersion {
                id: v.version_id().unwrap_or_default().to_string(),
                is_default: v.is_default_version(),
                created: v.create_date().map(unix).unwrap_or(0),
            })
            .collect())
    }

    async fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
        t: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.client
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .set_tags(tags(t))
            .send()
            .await
            .map_err(|e| map_err("iam:CreatePolicy", e))?;
        Ok(())
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError> {
        self.client
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| map_err("iam:CreatePolicyVersion", e))?;
        Ok(())
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        self.client
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| map_err("iam:DeletePolicyVersion", e))?;
        Ok(())
    }

    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError> {
        self.client.delete_policy().policy_arn(arn).send().await.map_err(|e| map_err("iam:DeletePolicy", e))?;
        Ok(())
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(PrincipalKind, String)>, AwsError> {
        let out = self
            .client
            .list_entities_for_policy()
            .policy_arn(arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| map_err("iam:ListEntitiesForPolicy", e))?;
        let mut items: Vec<(PrincipalKind, String)> = out
            .policy_users()
            .iter()
            .filter_map(|u| u.user_name().map(|n| (PrincipalKind::User, n.to_string())))
            .collect();
        items.extend(
            out.policy_groups().iter().filter_map(|g| g.group_name().map(|n| (PrincipalKind::Group, n.to_string()))),
        );
        items.extend(
            out.policy_roles().iter().filter_map(|r| r.role_name().map(|n| (PrincipalKind::Role, n.to_string()))),
        );
        Ok(page(items, out.is_truncated(), out.marker()))
    }

    async fn attach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError> {
        match kind {
            PrincipalKind::User => self
                .client
                .attach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:AttachUserPolicy", e)),
            PrincipalKind::Group => self
                .client
                .attach_group_policy()
                .group_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:AttachGroupPolicy", e)),
            PrincipalKind::Role => self
                .client
                .attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:AttachRolePolicy", e)),
        }
    }

    async fn detach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError> {
        match kind {
            PrincipalKind::User => self
                .client
                .detach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:DetachUserPolicy", e)),
            PrincipalKind::Group => self
                .client
                .detach_group_policy()
                .group_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:DetachGroupPolicy", e)),
            PrincipalKind::Role => self
                .client
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_err("iam:DetachRolePolicy", e)),
        }
    }
}

/// A role as `GetAccountAuthorizationDetails` lists it, in crossrole's terms; documents as IAM returned them.
fn role_detail(account_id: &str, r: &aws_sdk_iam::types::RoleDetail) -> RoleDetail {
    RoleDetail {
        account_id: account_id.to_string(),
        name: r.role_name().unwrap_or_default().to_string(),
        path: r.path().unwrap_or("/").to_string(),
        arn: r.arn().unwrap_or_default().to_string(),
        role_id: r.role_id().unwrap_or_default().to_string(),
        created: r.create_date().map(|t| t.secs()),
        trust_policy: r.assume_role_policy_document().unwrap_or_default().to_string(),
        managed_policy_arns: r
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(String::from))
            .collect(),
        inline_policies: r
            .role_policy_list()
            .iter()
            .filter_map(|p| Some((p.policy_name()?.to_string(), p.policy_document().unwrap_or_default().to_string())))
            .collect(),
        permissions_boundary_arn: r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(String::from),
        tags: r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
        last_used: r
            .role_last_used()
            .and_then(|u| Some(LastUsed { at: u.last_used_date()?.secs(), region: u.region().map(String::from) })),
    }
}
