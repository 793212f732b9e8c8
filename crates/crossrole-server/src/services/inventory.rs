//! `InventoryService`: start an inventory, list its roles, import the roles of one name as a spec. Each converts at
//! the edge; the engine does the work (`crossrole_engine::inventory`).

use std::collections::BTreeSet;

use crossrole_core::inventory::{FindingKind, Severity, check_principal_filter};
use crossrole_engine::inventory::{InventoryQuery, InventoryRequest};
use crossrole_wire::{
    ToWire,
    enums::Known,
    pb::{self, inventory_service_server::InventoryService},
};
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{Audited, State, page_size},
};

/// The service.
pub struct Inventory(pub State);

/// An optional enum filter: 0 for none, a known value, or the field named.
fn filter<T: Known>(field: &str, number: i32) -> Result<Option<T>, ApiError> {
    match number {
        0 => Ok(None),
        n => T::known(n).map(Some).ok_or_else(|| ApiError::field(field, "must be a known value")),
    }
}

fn operation_id(id: &str) -> Result<String, ApiError> {
    if id.is_empty() || uuid::Uuid::parse_str(id).is_ok() {
        Ok(id.to_string())
    } else {
        Err(ApiError::field("operation_id", "must be an operation id (a UUID), or empty for the latest inventory"))
    }
}

fn account_ids(ids: &[String]) -> Result<BTreeSet<String>, ApiError> {
    for (i, id) in ids.iter().enumerate() {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::field(&format!("account_ids[{i}]"), "must be an account id (12 digits)"));
        }
    }
    Ok(ids.iter().cloned().collect())
}

/// The principal filter, trimmed; empty for none; anything but a principal is refused naming the field.
fn principal(p: &str) -> Result<String, ApiError> {
    let p = p.trim();
    if !p.is_empty() {
        check_principal_filter(p).map_err(|why| ApiError::field("principal", &why))?;
    }
    Ok(p.to_string())
}

#[tonic::async_trait]
impl InventoryService for Inventory {
    async fn start_inventory(
        &self,
        request: Request<pb::StartInventoryRequest>,
    ) -> Result<Response<pb::StartInventoryResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Plan)?;
        let r = request.get_ref();
        let result = async {
            let accounts = account_ids(&r.account_ids)?;
            let request = InventoryRequest {
                accounts: (!accounts.is_empty()).then_some(accounts),
                unused_after_days: (r.unused_after_days != 0).then_some(r.unused_after_days),
                idempotency_key: (!r.idempotency_key.is_empty()).then(|| r.idempotency_key.clone()),
                created_by: caller.name.clone(),
            };
            Ok::<_, ApiError>(self.0.engine.start_inventory(request).await?)
        }
        .await;
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let operation_id = result.as_ref().map(|op| op.id.clone()).unwrap_or_default();
        let about = Audited {
            spec_name: String::new(),
            operation_id,
            request: serde_json::json!({
                "account_ids": r.account_ids,
                "idempotency_key": r.idempotency_key,
                "unused_after_days": r.unused_after_days,
            }),
        };
        self.0.audit(&caller, "StartInventory", about, &outcome).await;
        Ok(Response::new(pb::StartInventoryResponse { operation: Some(result?.to_wire()) }))
    }

    async fn list_inventory(
        &self,
        request: Request<pb::ListInventoryRequest>,
    ) -> Result<Response<pb::ListInventoryResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 100)?;
        let query = InventoryQuery {
            operation_id: operation_id(&r.operation_id)?,
            account_ids: account_ids(&r.account_ids)?,
            principal: principal(&r.principal)?,
            role_name: r.role_name.clone(),
            finding: filter::<FindingKind>("finding", r.finding)?,
            min_severity: filter::<Severity>("min_severity", r.min_severity)?,
            owned: match pb::InventoryOwnership::try_from(r.ownership) {
                Ok(pb::InventoryOwnership::Unspecified) => None,
                Ok(pb::InventoryOwnership::Owned) => Some(true),
                Ok(pb::InventoryOwnership::Unowned) => Some(false),
                Err(_) => return Err(ApiError::field("ownership", "must be a known value").into()),
            },
        };
        let page = self.0.engine.list_inventory(&query, size, &r.page_token).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListInventoryResponse {
            operation: Some(page.operation.to_wire()),
            roles: page.roles.iter().map(ToWire::to_wire).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn import_roles(
        &self,
        request: Request<pb::ImportRolesRequest>,
    ) -> Result<Response<pb::ImportRolesResponse>, Status> {
        self.0.caller(&request, Scope::Plan)?;
        let r = request.get_ref();
        let operation = operation_id(&r.operation_id)?;
        let imported =
            self.0.engine.import_roles(&operation, &r.role_name, &r.spec_name).await.map_err(ApiError::from)?;
        let mut response = imported.import.to_wire();
        response.operation_id = imported.operation.id;
        response.unreadable = imported
            .unreadable
            .into_iter()
            .map(|(account_id, reason)| pb::UnreadableAccount { account_id, reason })
            .collect();
        Ok(Response::new(response))
    }
}
