//! Organizations over the SDK.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_organizations::{Client, types::AccountState as SdkState, types::AccountStatus as SdkStatus};
use crossrole_core::{
    org::{AccountInfo, OrganizationInfo},
    spec::AccountState,
};

use super::{map_err, unix};
use crate::{
    api::{OrganizationsApi, OuRecord, Page},
    error::AwsError,
};

pub(super) struct SdkOrganizations {
    client: Client,
}

impl SdkOrganizations {
    pub(super) fn new(config: &SdkConfig) -> Self {
        SdkOrganizations { client: Client::new(config) }
    }
}

fn state(a: &aws_sdk_organizations::types::Account) -> AccountState {
    // `State` replaces the retired `Status`; older emulators only send `Status`.
    match (a.state(), a.status()) {
        (Some(SdkState::Active), _) => AccountState::Active,
        (Some(SdkState::Suspended), _) => AccountState::Suspended,
        (Some(SdkState::PendingActivation), _) => AccountState::PendingActivation,
        (Some(SdkState::PendingClosure), _) => AccountState::PendingClosure,
        (Some(SdkState::Closed), _) => AccountState::Closed,
        (_, Some(SdkStatus::Active)) => AccountState::Active,
        (_, Some(SdkStatus::PendingClosure)) => AccountState::PendingClosure,
        _ => AccountState::Suspended,
    }
}

#[async_trait]
impl OrganizationsApi for SdkOrganizations {
    async fn describe_organization(&self) -> Result<OrganizationInfo, AwsError> {
        let call = "organizations:DescribeOrganization";
        let out = self.client.describe_organization().send().await.map_err(|e| map_err(call, e))?;
        let org = out
            .organization()
            .ok_or_else(|| AwsError::from_code(call, None, None, "no organization in the response"))?;
        Ok(OrganizationInfo {
            id: org.id().unwrap_or_default().to_string(),
            arn: org.arn().unwrap_or_default().to_string(),
            management_account_id: org.master_account_id().unwrap_or_default().to_string(),
        })
    }

    async fn list_roots(&self, next_token: Option<String>) -> Result<Page<OuRecord>, AwsError> {
        let out = self
            .client
            .list_roots()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| map_err("organizations:ListRoots", e))?;
        Ok(Page {
            items: out
                .roots()
                .iter()
                .map(|r| OuRecord { id: r.id().unwrap_or_default().into(), name: r.name().unwrap_or("Root").into() })
                .collect(),
            next_token: out.next_token().map(String::from),
        })
    }

    async fn list_organizational_units_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<OuRecord>, AwsError> {
        let out = self
            .client
            .list_organizational_units_for_parent()
            .parent_id(parent_id)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| map_err("organizations:ListOrganizationalUnitsForParent", e))?;
        Ok(Page {
            items: out
                .organizational_units()
                .iter()
                .map(|o| OuRecord { id: o.id().unwrap_or_default().into(), name: o.name().unwrap_or_default().into() })
                .collect(),
            next_token: out.next_token().map(String::from),
        })
    }

    async fn list_accounts_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<AccountInfo>, AwsError> {
        let out = self
            .client
            .list_accounts_for_parent()
            .parent_id(parent_id)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| map_err("organizations:ListAccountsForParent", e))?;
        Ok(Page {
            items: out
                .accounts()
                .iter()
                .map(|a| AccountInfo {
                    id: a.id().unwrap_or_default().into(),
                    name: a.name().unwrap_or_default().into(),
                    email: a.email().unwrap_or_default().into(),
                    state: state(a),
                    parent_id: parent_id.into(),
                    joined_at: a.joined_timestamp().map(unix),
                })
                .collect(),
            next_token: out.next_token().map(String::from),
        })
    }

    async fn describe_account(&self, account_id: &str) -> Result<Option<AccountInfo>, AwsError> {
        let call = "organizations:DescribeAccount";
        let out = match self.client.describe_account().account_id(account_id).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = map_err(call, e);
                return if e.code.as_deref() == Some("AccountNotFoundException") { Ok(None) } else { Err(e) };
            }
        };
        Ok(out.account().map(|a| AccountInfo {
            id: a.id().unwrap_or_default().into(),
            name: a.name().unwrap_or_default().into(),
            email: a.email().unwrap_or_default().into(),
            state: state(a),
            parent_id: String::new(),
            joined_at: a.joined_timestamp().map(unix),
        }))
    }

    async fn list_parent(&self, account_id: &str) -> Result<String, AwsError> {
        let call = "organizations:ListParents";
        let out = self.client.list_parents().child_id(account_id).send().await.map_err(|e| map_err(call, e))?;
        out.parents()
            .first()
            .and_then(|p| p.id())
            .map(str::to_string)
            .ok_or_else(|| AwsError::from_code(call, None, None, "the account has no parent in the response"))
    }

    async fn list_tags_for_resource(
        &self,
        account_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<(String, String)>, AwsError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_id(account_id)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| map_err("organizations:ListTagsForResource", e))?;
        Ok(Page {
            items: out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            next_token: out.next_token().map(String::from),
        })
    }
}
