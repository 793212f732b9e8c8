//! `OrganizationService`: the OU tree and account selection.

use crossrole_engine::pages::Listing;
use crossrole_wire::{
    ToWire,
    pb::{self, organization_service_server::OrganizationService},
};
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{State, page_size},
};

/// The service.
pub struct Organizations(pub State);

#[tonic::async_trait]
impl OrganizationService for Organizations {
    async fn describe_organization(
        &self,
        request: Request<pb::DescribeOrganizationRequest>,
    ) -> Result<Response<pb::DescribeOrganizationResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let tree = self
            .0
            .engine
            .discovery()
            .tree(&Default::default(), request.get_ref().refresh)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::DescribeOrganizationResponse { organization: Some(tree.to_wire()) }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 100)?;
        let selector = crossrole_wire::selector(r.selector.as_ref(), "selector").map_err(ApiError::from)?;
        let pages = self.0.engine.pages();
        let after = pages.read(Listing::Accounts, &r.page_token).map_err(ApiError::from)?;
        let (tree, selection) = self.0.engine.select(&selector, "selector", r.refresh).await.map_err(ApiError::from)?;
        let start = match &after {
            None => 0,
            Some(after) => selection.selected.iter().position(|a| a.id > *after).unwrap_or(selection.selected.len()),
        };
        let page: Vec<_> = selection.selected.iter().skip(start).take(size).collect();
        let next = if start + page.len() < selection.selected.len() {
            page.last().map(|a| pages.issue(Listing::Accounts, &a.id)).unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = page.iter().map(|a| a.id.clone()).collect();
        let tags = self.0.engine.discovery().tags(&Default::default(), &ids).await.map_err(ApiError::from)?;
        let accounts = page
            .into_iter()
            .map(|a| {
                crossrole_wire::account(a, &tree.path_of(&a.parent_id), tags.get(&a.id).cloned().unwrap_or_default())
            })
            .collect();
        let skipped = if start == 0 {
            selection
                .skipped
                .iter()
                .map(|s| pb::SkippedAccount {
                    account: Some(crossrole_wire::account(
                        &s.account,
                        &tree.path_of(&s.account.parent_id),
                        Default::default(),
                    )),
                    reason: s.reason.clone(),
                })
                .collect()
        } else {
            vec![]
        };
        Ok(Response::new(pb::ListAccountsResponse {
            accounts,
            next_page_token: next,
            total_size: selection.selected.len() as u32,
            skipped,
        }))
    }
}
