//! The inventory: start one, list its roles, import the roles of one name as a spec (`InventoryService`).

use crate::{Client, Error, MAX_MESSAGE, OperationHandle, Svc, new_key, proto, required, retry};
use proto::inventory_service_client::InventoryServiceClient;

impl Client {
    fn inventory(&self) -> InventoryServiceClient<Svc> {
        InventoryServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Starts an inventory of every ACTIVE account of the organization, or of `account_ids` alone. It writes
    /// nothing to AWS; follow it with the handle. `idempotency_key`: the same key returns the same operation; `None`
    /// generates one, so that the SDK's own retries never start two.
    pub async fn start_inventory(
        &self,
        account_ids: Vec<String>,
        idempotency_key: Option<String>,
    ) -> Result<OperationHandle, Error> {
        let request = proto::StartInventoryRequest {
            account_ids,
            idempotency_key: idempotency_key.unwrap_or_default(),
            ..Default::default()
        };
        self.start_inventory_with(request).await
    }

    /// [`Client::start_inventory`] with every option of the request: `unused_after_days` (0: the default, 90; from 1
    /// to 3650) says after how many days without use a role is reported unused. An empty `idempotency_key` is
    /// generated, so that the SDK's own retries never start two.
    pub async fn start_inventory_with(
        &self,
        mut request: proto::StartInventoryRequest,
    ) -> Result<OperationHandle, Error> {
        if request.idempotency_key.is_empty() {
            request.idempotency_key = new_key();
        }
        let r =
            retry(self.retries, || async { Ok(self.inventory().start_inventory(request.clone()).await?.into_inner()) })
                .await?;
        Ok(OperationHandle::new(self.clone(), required(r.operation, "operation")?))
    }

    /// A page of an inventory's roles, as `request` filters them (its `page_token` says which page).
    pub async fn list_inventory(
        &self,
        request: proto::ListInventoryRequest,
    ) -> Result<proto::ListInventoryResponse, Error> {
        retry(self.retries, || async { Ok(self.inventory().list_inventory(request.clone()).await?.into_inner()) }).await
    }

    /// Every role of an inventory `request` selects, page after page (its `page_token` is ignored), with the
    /// inventory they come from.
    pub async fn list_inventory_all(
        &self,
        mut request: proto::ListInventoryRequest,
    ) -> Result<(proto::Operation, Vec<proto::InventoryRole>), Error> {
        request.page_token.clear();
        let mut roles = Vec::new();
        loop {
            let page = self.list_inventory(request.clone()).await?;
            roles.extend(page.roles);
            if page.next_page_token.is_empty() {
                return Ok((required(page.operation, "operation")?, roles));
            }
            request.page_token = page.next_page_token;
        }
    }

    /// A spec named `spec_name` written from the roles named `role_name` that an inventory found (`operation_id`:
    /// empty for the latest finished one), read again now; the accounts that differ, and how.
    pub async fn import_roles(
        &self,
        role_name: &str,
        spec_name: &str,
        operation_id: &str,
    ) -> Result<proto::ImportRolesResponse, Error> {
        let request = proto::ImportRolesRequest {
            role_name: role_name.to_string(),
            spec_name: spec_name.to_string(),
            operation_id: operation_id.to_string(),
        };
        retry(self.retries, || async { Ok(self.inventory().import_roles(request.clone()).await?.into_inner()) }).await
    }
}
