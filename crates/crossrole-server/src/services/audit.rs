//! `AuditService`: the audit log, read back with filters, a page at a time.

use crossrole_engine::pages::Listing;
use crossrole_store::AuditFilter;
use crossrole_wire::{
    millis,
    pb::{self, audit_service_server::AuditService},
    timestamp,
};
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{State, page_size},
};

/// The service.
pub struct Audit(pub State);

#[tonic::async_trait]
impl AuditService for Audit {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 100)?;
        let pages = self.0.engine.pages();
        let before = pages.read_number::<i64>(Listing::Audit, &r.page_token).map_err(ApiError::from)?;
        if !r.account_id.is_empty()
            && let Err(rule) = crossrole_core::names::check_account_id(&r.account_id)
        {
            return Err(ApiError::field("account_id", &rule).into());
        }
        let filter = AuditFilter {
            since: r.start_time.as_ref().map(millis),
            until: r.end_time.as_ref().map(millis),
            caller: r.caller.clone(),
            method: r.method.clone(),
            spec_name: r.spec_name.clone(),
            operation_id: r.operation_id.clone(),
            account_id: r.account_id.clone(),
        };
        let entries = self.0.journal.audit_log(&filter, size, before).await.map_err(ApiError::from)?;
        let next_page_token = if entries.len() == size {
            entries.last().map(|e| pages.issue(Listing::Audit, &e.id.to_string())).unwrap_or_default()
        } else {
            String::new()
        };
        let events = entries
            .into_iter()
            .map(|e| pb::AuditEvent {
                time: Some(timestamp(e.time)),
                caller: e.caller,
                method: e.method,
                spec_name: e.spec_name,
                operation_id: e.operation_id,
                outcome: e.outcome,
                request_json: e.request,
                caller_subject: e.caller_subject,
            })
            .collect();
        Ok(Response::new(pb::ListAuditEventsResponse { events, next_page_token }))
    }
}
