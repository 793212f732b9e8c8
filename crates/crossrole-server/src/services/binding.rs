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
    state::{State, page_size},
};

/// The service.
pub struct Bindings(pub State);

/// A binding for the audit log: name, mode by name, interval; never the spec.
fn binding_summary(b: Option<&pb::Binding>) -> String {
    match b {
        None => "binding=<none>".into(),
        Some(b) => format!(
            "name={} mode={} reconcile_interval={}s",
            b.name,
            pb::BindingMode::try_from(b.mode).map(|m| m.as_str_name()).unwrap_or("UNKNOWN"),
            b.reconcile_interval.map(|d| d.seconds).unwrap_or(0)
        ),
    }
}

fn name(n: &str) -> Result<&str, ApiError> {
    if n.is_empty() { Err(ApiError::field("name", "required")) } else { Ok(n) }
}

impl Bindings {
    async fn audited<T>(
        &self,
        caller: &crate::auth::Caller,
        method: &str,
        summary: String,
        r: Result<T, ApiError>,
    ) -> Result<T, Status> {
        self.0.audit(caller, method, summary, &r.as_ref().map(|_| ()).map_err(|e| e.to_string())).await;
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
        let summary = binding_summary(request.get_ref().binding.as_ref());
        let result = async {
            let b = request.get_ref().binding.as_ref().ok_or_else(|| ApiError::field("binding", "required"))?;
            Ok(self.0.bindings.create(&raw_binding(b)).await?.to_wire())
        }
        .await;
        let b = self.audited(&caller, "CreateBinding", summary, result).await?;
        Ok(Response::new(pb::CreateBindingResponse { binding: Some(b) }))
    }

    async fn update_binding(
        &self,
        request: Request<pb::UpdateBindingRequest>,
    ) -> Result<Response<pb::UpdateBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let r = request.get_ref();
        let summary = format!("{} expected_version={}", binding_summary(r.binding.as_ref()), r.expected_version);
        let result = async {
            let b = r.binding.as_ref().ok_or_else(|| ApiError::field("binding", "required"))?;
            let expected = (r.expected_version > 0).then_some(r.expected_version);
            Ok(self.0.bindings.update(&raw_binding(b), expected).await?.to_wire())
        }
        .await;
        let b = self.audited(&caller, "UpdateBinding", summary, result).await?;
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
        let summary = format!("name={} keep_roles={}", r.name, r.keep_roles);
        let result = async {
            let n = name(&r.name)?;
            Ok(self.0.bindings.delete(n, r.keep_roles, &caller.name).await?.map(|op| op.to_wire()))
        }
        .await;
        let operation = self.audited(&caller, "DeleteBinding", summary, result).await?;
        Ok(Response::new(pb::DeleteBindingResponse { operation }))
    }

    async fn reconcile_binding(
        &self,
        request: Request<pb::ReconcileBindingRequest>,
    ) -> Result<Response<pb::ReconcileBindingResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let n = name(&request.get_ref().name)?;
        let result = self.0.bindings.reconcile(n, &caller.name).await.map(|op| op.to_wire()).map_err(ApiError::from);
        let operation = self.audited(&caller, "ReconcileBinding", format!("name={n}"), result).await?;
        Ok(Response::new(pb::ReconcileBindingResponse { operation: Some(operation) }))
    }
}
