//! `BindingService`: access bindings that crossroled keeps true over time (see [`crate::bindings`]).

use std::sync::Arc;

use crossrole_core::{FieldViolation, secret::Redactor};
use crossrole_engine::StartRequest;
use crossrole_proto::v1::{self as pb, binding_service_server::BindingService};
use tonic::{Request, Response, Status};

use crate::{
    bindings::{self, Reconciler},
    config::Scope,
    error::ApiError,
    state::{State, now_ms, page_size},
};

/// The service.
pub struct Bindings {
    /// Shared state.
    pub state: State,
    /// The reconcile loop.
    pub reconciler: Arc<Reconciler>,
}

/// A refusal of a binding's spec (guardrails, ceiling), its fields named under `binding.spec.`.
fn under_binding(e: crossrole_engine::Error) -> ApiError {
    let prefix = |v: Vec<FieldViolation>| {
        v.into_iter().map(|f| FieldViolation::new(format!("binding.spec.{}", f.field), f.rule)).collect()
    };
    match ApiError::from(e) {
        ApiError::Refused(v) => ApiError::Refused(prefix(v)),
        ApiError::Invalid(v) => ApiError::Invalid(prefix(v)),
        other => other,
    }
}

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
        self.state.audit(caller, method, summary, &r.as_ref().map(|_| ()).map_err(|e| e.to_string())).await;
        Ok(r?)
    }
}

#[tonic::async_trait]
impl BindingService for Bindings {
    async fn create_binding(
        &self,
        request: Request<pb::CreateBindingRequest>,
    ) -> Result<Response<pb::CreateBindingResponse>, Status> {
        let caller = self.state.caller(&request, Scope::Apply)?;
        let summary = binding_summary(request.get_ref().binding.as_ref());
        let result = async {
            let b = request.get_ref().binding.as_ref().ok_or_else(|| ApiError::field("binding", "required"))?;
            let (spec, stored) = bindings::validate(b)?;
            let spec = self.state.engine.admit(spec).await.map_err(under_binding)?;
            self.state.engine.guardrails(&spec).await.map_err(under_binding)?;
            if !self.state.journal.create_binding(bindings::new_row(&stored, &self.state.engine)?).await? {
                return Err(ApiError::FailedPrecondition(format!(
                    "binding {} already exists; update it instead",
                    stored.name
                )));
            }
            self.state.reconcile_wake.notify_one();
            let row = self
                .state
                .journal
                .get_binding(&stored.name)
                .await?
                .ok_or_else(|| ApiError::Internal("binding vanished".into()))?;
            bindings::to_pb(&row, &self.state.engine, true)
        }
        .await;
        let b = self.audited(&caller, "CreateBinding", summary, result).await?;
        Ok(Response::new(pb::CreateBindingResponse { binding: Some(b) }))
    }

    async fn update_binding(
        &self,
        request: Request<pb::UpdateBindingRequest>,
    ) -> Result<Response<pb::UpdateBindingResponse>, Status> {
        let caller = self.state.caller(&request, Scope::Apply)?;
        let r = request.get_ref();
        let summary = format!("{} expected_version={}", binding_summary(r.binding.as_ref()), r.expected_version);
        let result = async {
            let mut b = r.binding.clone().ok_or_else(|| ApiError::field("binding", "required"))?;
            // GetBinding shows the ExternalId's mark; sent back as it was shown, it means "unchanged".
            let redacted = b
                .spec
                .as_ref()
                .and_then(|s| s.role.as_ref())
                .and_then(|r| r.trust.as_ref())
                .is_some_and(|t| Redactor::is_mark(&t.external_id));
            if redacted {
                let current = self
                    .state
                    .journal
                    .get_binding(&b.name)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("binding {}", b.name)))?;
                let current = bindings::decode(&current, &self.state.engine)?;
                let stored_id =
                    current.spec.and_then(|s| s.role).and_then(|r| r.trust).map(|t| t.external_id).unwrap_or_default();
                if let Some(t) = b.spec.as_mut().and_then(|s| s.role.as_mut()).and_then(|r| r.trust.as_mut()) {
                    t.external_id = stored_id;
                }
            }
            let (spec, stored) = bindings::validate(&b)?;
            let spec = self.state.engine.admit(spec).await.map_err(under_binding)?;
            self.state.engine.guardrails(&spec).await.map_err(under_binding)?;
            let expected = (r.expected_version > 0).then_some(r.expected_version);
            let row = self
                .state
                .journal
                .update_binding(&stored.name, bindings::sealed(&stored, &self.state.engine)?, expected, now_ms())
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("binding {}", stored.name)))?;
            self.state.reconcile_wake.notify_one();
            bindings::to_pb(&row, &self.state.engine, true)
        }
        .await;
        let b = self.audited(&caller, "UpdateBinding", summary, result).await?;
        Ok(Response::new(pb::UpdateBindingResponse { binding: Some(b) }))
    }

    async fn get_binding(
        &self,
        request: Request<pb::GetBindingRequest>,
    ) -> Result<Response<pb::GetBindingResponse>, Status> {
        self.state.caller(&request, Scope::Read)?;
        let n = name(&request.get_ref().name)?;
        let row = self
            .state
            .journal
            .get_binding(n)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("binding {n}")))?;
        Ok(Response::new(pb::GetBindingResponse { binding: Some(bindings::to_pb(&row, &self.state.engine, true)?) }))
    }

    async fn list_bindings(
        &self,
        request: Request<pb::ListBindingsRequest>,
    ) -> Result<Response<pb::ListBindingsResponse>, Status> {
        self.state.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 100)?;
        let after = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let mut rows = self.state.journal.list_bindings(size + 1, after).await.map_err(ApiError::from)?;
        let next = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(|r| r.name.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let bindings = rows.iter().map(|r| bindings::to_pb(r, &self.state.engine, false)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListBindingsResponse { bindings, next_page_token: next }))
    }

    async fn delete_binding(
        &self,
        request: Request<pb::DeleteBindingRequest>,
    ) -> Result<Response<pb::DeleteBindingResponse>, Status> {
        let caller = self.state.caller(&request, Scope::Apply)?;
        let r = request.get_ref();
        let summary = format!("name={} keep_roles={}", r.name, r.keep_roles);
        let result = async {
            let n = name(&r.name)?;
            let row =
                self.state.journal.get_binding(n).await?.ok_or_else(|| ApiError::NotFound(format!("binding {n}")))?;
            let mut operation = None;
            if !r.keep_roles {
                let binding = bindings::decode(&row, &self.state.engine)?;
                let spec = crate::state::spec(binding.spec.as_ref())?;
                operation = Some(
                    self.state
                        .engine
                        .start(StartRequest {
                            kind: pb::OperationKind::Destroy,
                            spec,
                            idempotency_key: None,
                            created_by: caller.name.clone(),
                            binding_name: Some(n.to_string()),
                            dry_run: false,
                        })
                        .await?,
                );
            }
            self.state.journal.delete_binding(n).await?;
            Ok(operation)
        }
        .await;
        let operation = self.audited(&caller, "DeleteBinding", summary, result).await?;
        Ok(Response::new(pb::DeleteBindingResponse { operation }))
    }

    async fn reconcile_binding(
        &self,
        request: Request<pb::ReconcileBindingRequest>,
    ) -> Result<Response<pb::ReconcileBindingResponse>, Status> {
        let caller = self.state.caller(&request, Scope::Apply)?;
        let n = name(&request.get_ref().name)?.to_string();
        let result = self.reconciler.reconcile(&self.state, &n, &caller.name).await;
        let operation = self.audited(&caller, "ReconcileBinding", format!("name={n}"), result).await?;
        Ok(Response::new(pb::ReconcileBindingResponse { operation: Some(operation) }))
    }
}
