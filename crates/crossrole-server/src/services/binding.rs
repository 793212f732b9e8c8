//! `BindingService`: access bindings that crossroled keeps true over time.

use crossrole_proto::v1::{self as pb, binding_service_server::BindingService};
use tonic::{Request, Response, Status};

use crate::{config::Scope, state::State};

/// The service.
pub struct Bindings(pub State);

fn not_yet() -> Status {
    Status::unimplemented("bindings (continuous reconcile) are not implemented in this crossroled yet")
}

#[tonic::async_trait]
impl BindingService for Bindings {
    async fn create_binding(
        &self,
        request: Request<pb::CreateBindingRequest>,
    ) -> Result<Response<pb::CreateBindingResponse>, Status> {
        self.0.caller(&request, Scope::Apply)?;
        Err(not_yet())
    }

    async fn update_binding(
        &self,
        request: Request<pb::UpdateBindingRequest>,
    ) -> Result<Response<pb::UpdateBindingResponse>, Status> {
        self.0.caller(&request, Scope::Apply)?;
        Err(not_yet())
    }

    async fn get_binding(
        &self,
        request: Request<pb::GetBindingRequest>,
    ) -> Result<Response<pb::GetBindingResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        Err(not_yet())
    }

    async fn list_bindings(
        &self,
        request: Request<pb::ListBindingsRequest>,
    ) -> Result<Response<pb::ListBindingsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        Err(not_yet())
    }

    async fn delete_binding(
        &self,
        request: Request<pb::DeleteBindingRequest>,
    ) -> Result<Response<pb::DeleteBindingResponse>, Status> {
        self.0.caller(&request, Scope::Apply)?;
        Err(not_yet())
    }

    async fn reconcile_binding(
        &self,
        request: Request<pb::ReconcileBindingRequest>,
    ) -> Result<Response<pb::ReconcileBindingResponse>, Status> {
        self.0.caller(&request, Scope::Apply)?;
        Err(not_yet())
    }
}
