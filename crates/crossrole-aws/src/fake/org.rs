//! Organizations in the fake.

use std::sync::Arc;

use async_trait::async_trait;
use crossrole_core::org::{AccountInfo, OrganizationInfo};

use super::World;
use crate::{
    api::{OrganizationsApi, OuRecord, Page},
    error::{AwsError, Service},
};

pub(crate) struct FakeOrganizations {
    pub(crate) world: Arc<World>,
}

impl FakeOrganizations {
    fn page<T: Clone>(&self, items: Vec<T>, token: Option<String>) -> Result<Page<T>, AwsError> {
        let size = self.world.config.org_page_size.max(1);
        let offset = match token.as_deref() {
            None if self.world.config.empty_first_pages => {
                return Ok(Page { items: vec![], next_token: Some("p:0".into()) });
            }
            None => 0,
            Some(t) => t.strip_prefix("p:").and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| {
                AwsError::from_code("organizations:List", Some("InvalidInputException"), Some(400), "bad token")
            })?,
        };
        let end = (offset + size).min(items.len());
        Ok(Page {
            items: items.get(offset..end).map(<[T]>::to_vec).unwrap_or_default(),
            next_token: (end < items.len()).then(|| format!("p:{end}")),
        })
    }

    async fn enter(&self, operation: &str) -> Result<(), AwsError> {
        let management =
            self.world.tree.lock().map(|t| t.organization.management_account_id.clone()).unwrap_or_default();
        let ticket = self.world.enter(Service::Organizations, operation, &management, &management).await?;
        ticket.leave(&format!("organizations:{operation}"), Ok(()))
    }
}

#[async_trait]
impl OrganizationsApi for FakeOrganizations {
    async fn describe_organization(&self) -> Result<OrganizationInfo, AwsError> {
        self.enter("DescribeOrganization").await?;
        Ok(self
            .world
            .tree
            .lock()
            .map(|t| t.organization.clone())
            .unwrap_or_else(|e| e.into_inner().organization.clone()))
    }

    async fn list_roots(&self, next_token: Option<String>) -> Result<Page<OuRecord>, AwsError> {
        self.enter("ListRoots").await?;
        let roots = self
            .world
            .tree
            .lock()
            .map(|t| {
                vec![OuRecord {
                    id: t.root_id.clone(),
                    name: t.units.get(&t.root_id).map(|u| u.name.clone()).unwrap_or_default(),
                }]
            })
            .unwrap_or_default();
        self.page(roots, next_token)
    }

    async fn list_organizational_units_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<OuRecord>, AwsError> {
        self.enter("ListOrganizationalUnitsForParent").await?;
        let ous = {
            let tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
            let Some(parent) = tree.units.get(parent_id) else {
                return Err(AwsError::from_code(
                    "organizations:ListOrganizationalUnitsForParent",
                    Some("ParentNotFoundException"),
                    Some(400),
                    parent_id,
                ));
            };
            parent
                .children
                .iter()
                .filter_map(|c| tree.units.get(c))
                .map(|u| OuRecord { id: u.id.clone(), name: u.name.clone() })
                .collect::<Vec<_>>()
        };
        self.page(ous, next_token)
    }

    async fn list_accounts_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<AccountInfo>, AwsError> {
        self.enter("ListAccountsForParent").await?;
        let accounts = {
            let tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
            if !tree.units.contains_key(parent_id) {
                return Err(AwsError::from_code(
                    "organizations:ListAccountsForParent",
                    Some("ParentNotFoundException"),
                    Some(400),
                    parent_id,
                ));
            }
            tree.accounts.values().filter(|a| a.parent_id == parent_id).cloned().collect::<Vec<_>>()
        };
        self.page(accounts, next_token)
    }

    async fn describe_account(&self, account_id: &str) -> Result<Option<AccountInfo>, AwsError> {
        self.enter("DescribeAccount").await?;
        let tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
        Ok(tree.accounts.get(account_id).map(|a| AccountInfo { parent_id: String::new(), ..a.clone() }))
    }

    async fn list_parent(&self, account_id: &str) -> Result<String, AwsError> {
        self.enter("ListParents").await?;
        let tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
        tree.accounts.get(account_id).map(|a| a.parent_id.clone()).ok_or_else(|| {
            AwsError::from_code("organizations:ListParents", Some("ChildNotFoundException"), Some(400), account_id)
        })
    }

    async fn list_tags_for_resource(
        &self,
        account_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<(String, String)>, AwsError> {
        self.enter("ListTagsForResource").await?;
        let tags: Vec<(String, String)> = self
            .world
            .tags
            .lock()
            .map(|t| t.get(account_id).cloned().unwrap_or_default().into_iter().collect())
            .unwrap_or_default();
        self.page(tags, next_token)
    }
}
