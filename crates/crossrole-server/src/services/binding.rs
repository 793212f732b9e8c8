//! `BindingService`: access bindings that crossroled keeps true over time (see `crossrole_engine::bindings`).

use crossrole_wire::{
    ToWire,
    pb::{self, binding_service_server::BindingService},
    raw_binding,
};
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{Audited, State, page_size},
};
use crossrole_engine::redacted;

/// The service.
pub struct Bindings(pub State);

/// A binding for the audit log: name, mode, interval, and its spec with the ExternalId redacted.
fn binding_request(b: Option<&pb::Binding>) -> (String, serde_json::Value) {
    match b {
        None => (String::new(), serde_json::json!({ "binding": null })),
        Some(b) => (
            b.name.clone(),
            serde_json::json!({
                "name": b.name,
                "mode": pb::BindingMode::try_from(b.mode).map(|m| m.as_str_name()).unwrap_or("UNKNOWN"),
                "reconcile_interval_seconds": b.reconcile_interval.map(|d| d.seconds).unwrap_or(0),
                "expires_in_seconds": b.expires_in.map(|d| d.seconds),
                // Marked for this entry alone (see AccessService's audit).
                "spec": raw_binding(b).spec.map(|s| redacted(&s, &crate::state::one_time_redactor())),
            }),
        ),
    }
}

/// An end for the audit log (`null`: none).
fn end(at: Option<i64>) -> serde_json::Value {
    at.map(crossrole_core::expiry::rfc3339).into()
}

fn name(n: &str) -> Result<&str, ApiError> {
    if n.is_empty() { Err(ApiError::field("name", "required")) } else { Ok(n) }
}

impl Bindings {
    async fn audited<T>(
        &self,
        caller: &crate::auth::Caller,
        method: &str,
        about: Audited,
        r: Result<T, ApiError>,
    ) -> Result<T, Status> {
        self.0.audit(caller, method, about, &r.as_ref().map(|_| ()).map_err(|e| e.to_string())).await;
        Ok(r?)
    }
}

#[tonic::async_trait]
impl BindingService for Bindings {
    async fn create_binding(
        &self,
        request: Request<pb::CreateBindingRequest>,
    ) -> Result<Response<pb::CreateBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let (spec_name, request_json) = binding_request(request.get_ref().binding.as_ref());
        let result = async {
            let b = request.get_ref().binding.as_ref().ok_or_else(|| ApiError::field("binding", "required"))?;
            Ok(self.0.bindings.create(&raw_binding(b)).await?.to_wire())
        }
        .await;
        let mut request_json = request_json;
        if let Ok(b) = &result {
            request_json["expires_at"] = end(b.expires_at.as_ref().map(crossrole_wire::millis));
        }
        let about = Audited { spec_name, request: request_json, ..Audited::default() };
        let b = self.audited(&caller, "CreateBinding", about, result).await?;
        Ok(Response::new(pb::CreateBindingResponse { binding: Some(b) }))
    }

    async fn update_binding(
        &self,
        request: Request<pb::UpdateBindingRequest>,
    ) -> Result<Response<pb::UpdateBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let r = request.get_ref();
        let (spec_name, mut request_json) = binding_request(r.binding.as_ref());
        request_json["expected_version"] = r.expected_version.into();
        let result = async {
            let b = r.binding.as_ref().ok_or_else(|| ApiError::field("binding", "required"))?;
            let expected = (r.expected_version > 0).then_some(r.expected_version);
            Ok(self.0.bindings.update_ending(&raw_binding(b), expected).await?)
        }
        .await;
        // An extension (or any change of the end) is on record with the end before and after.
        let result = result.map(|(before, b)| {
            request_json["previous_expires_at"] = end(before);
            request_json["expires_at"] = end(b.expires_at);
            b.to_wire()
        });
        let about = Audited { spec_name, request: request_json, ..Audited::default() };
        let b = self.audited(&caller, "UpdateBinding", about, result).await?;
        Ok(Response::new(pb::UpdateBindingResponse { binding: Some(b) }))
    }

    async fn get_binding(
        &self,
        request: Request<pb::GetBindingRequest>,
    ) -> Result<Response<pb::GetBindingResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let n = name(&request.get_ref().name)?;
        let b = self.0.bindings.get(n).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::GetBindingResponse { binding: Some(b.to_wire()) }))
    }

    async fn list_bindings(
        &self,
        request: Request<pb::ListBindingsRequest>,
    ) -> Result<Response<pb::ListBindingsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 100)?;
        let (bindings, next) = self.0.bindings.list(size, &r.page_token).await.map_err(ApiError::from)?;
        let bindings = bindings.iter().map(ToWire::to_wire).collect();
        Ok(Response::new(pb::ListBindingsResponse { bindings, next_page_token: next }))
    }

    async fn delete_binding(
        &self,
        request: Request<pb::DeleteBindingRequest>,
    ) -> Result<Response<pb::DeleteBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let r = request.get_ref();
        let request_json = serde_json::json!({ "name": r.name, "keep_roles": r.keep_roles });
        let result = async {
            let n = name(&r.name)?;
            Ok(self.0.bindings.delete(n, r.keep_roles, &caller.name).await?.map(|op| op.to_wire()))
        }
        .await;
        let about = Audited {
            spec_name: r.name.clone(),
            operation_id: result.as_ref().ok().and_then(|op| op.as_ref().map(|op| op.id.clone())).unwrap_or_default(),
            request: request_json,
        };
        let operation = self.audited(&caller, "DeleteBinding", about, result).await?;
        Ok(Response::new(pb::DeleteBindingResponse { operation }))
    }

    async fn reconcile_binding(
        &self,
        request: Request<pb::ReconcileBindingRequest>,
    ) -> Result<Response<pb::ReconcileBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let n = name(&request.get_ref().name)?;
        let result = self.0.bindings.reconcile(n, &caller.name).await.map(|op| op.to_wire()).map_err(ApiError::from);
        let about = Audited {
            spec_name: n.to_string(),
            operation_id: result.as_ref().map(|op| op.id.clone()).unwrap_or_default(),
            request: serde_json::json!({ "name": n }),
        };
        let operation = self.audited(&caller, "ReconcileBinding", about, result).await?;
        Ok(Response::new(pb::ReconcileBindingResponse { operation: Some(operation) }))
    }
}
