//! `OperationService`: get, list, account results, cancel, and watch.

use std::pin::Pin;

use crossrole_core::ops::{OperationState, Outcome};
use crossrole_engine::ListFilter;
use crossrole_wire::{
    ToWire,
    enums::Known,
    pb::{self, operation_service_server::OperationService},
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{Audited, State, page_size},
};

/// The service.
pub struct Operations(pub State);

fn operation_id(id: &str) -> Result<&str, ApiError> {
    if uuid::Uuid::parse_str(id).is_ok() {
        Ok(id)
    } else {
        Err(ApiError::field("operation_id", "must be an operation id (a UUID)"))
    }
}

/// The values of a repeated enum field of a request; a value this version does not know is named.
fn known<T: Known>(field: &str, numbers: &[i32], what: &str) -> Result<Vec<T>, ApiError> {
    numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            T::known(*n).ok_or_else(|| ApiError::field(&format!("{field}[{i}]"), &format!("must be a known {what}")))
        })
        .collect()
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchOperationResponse, Status>> + Send>>;

/// Events after `after`: from the journal first, then live; whenever the live stream skips (the watcher fell
/// behind its buffer), the gap is read from the journal, where every published event already is.
pub fn watch(state: State, id: String, after: u64) -> WatchStream {
    Box::pin(async_stream::try_stream! {
        let _open = state.watchers.enter();
        let mut last = after;
        loop {
            // Subscribe before reading the journal, so nothing falls between the two.
            let live = state.engine.subscribe(&id);
            loop {
                let batch = state.engine.events(&id, last, 500).await.map_err(ApiError::from)?;
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    last = e.sequence;
                    let done = e.is_final();
                    yield pb::WatchOperationResponse { event: Some(e.to_wire()), replayed: true };
                    if done {
                        return;
                    }
                }
            }
            match live {
                Some(mut rx) => loop {
                    match rx.recv().await {
                        Ok(e) if e.sequence <= last => continue,
                        Ok(e) if e.sequence == last + 1 => {
                            last = e.sequence;
                            let done = e.is_final();
                            yield pb::WatchOperationResponse { event: Some(e.to_wire()), replayed: false };
                            if done {
                                return;
                            }
                        }
                        // A gap, a lag or the end of the live stream: read on from the journal.
                        Ok(_) | Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => break,
                    }
                },
                None => {
                    let op = state.engine.operation(&id).await.map_err(ApiError::from)?;
                    if op.state.is_final() && op.last_sequence <= last {
                        return;
                    }
                    // Not running in this process (yet): poll the journal.
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
    })
}

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::GetOperationResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let id = operation_id(&request.get_ref().operation_id)?;
        Ok(Response::new(pb::GetOperationResponse {
            operation: Some(self.0.engine.operation(id).await.map_err(ApiError::from)?.to_wire()),
        }))
    }

    async fn list_operations(
        &self,
        request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let size = page_size(r.page_size, 50)?;
        let states: Vec<OperationState> = known("states", &r.states, "operation state")?;
        let filter = ListFilter { states, spec_name: r.spec_name.clone(), binding_name: String::new() };
        let (operations, next) =
            self.0.engine.list_operations(&filter, size, &r.page_token).await.map_err(ApiError::from)?;
        let operations = operations.iter().map(ToWire::to_wire).collect();
        Ok(Response::new(pb::ListOperationsResponse { operations, next_page_token: next }))
    }

    async fn list_account_results(
        &self,
        request: Request<pb::ListAccountResultsRequest>,
    ) -> Result<Response<pb::ListAccountResultsResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.get_ref();
        let id = operation_id(&r.operation_id)?;
        let size = page_size(r.page_size, 100)?;
        let outcomes: Vec<Outcome> = known("outcomes", &r.outcomes, "account outcome")?;
        let (results, next) =
            self.0.engine.account_results(id, &outcomes, size, &r.page_token).await.map_err(ApiError::from)?;
        let results = results.iter().map(ToWire::to_wire).collect();
        Ok(Response::new(pb::ListAccountResultsResponse { results, next_page_token: next }))
    }

    async fn cancel_operation(
        &self,
        request: Request<pb::CancelOperationRequest>,
    ) -> Result<Response<pb::CancelOperationResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let id = operation_id(&request.get_ref().operation_id)?.to_string();
        let result = self.0.engine.cancel(&id).await.map_err(ApiError::from);
        let about = Audited {
            spec_name: result.as_ref().map(|op| op.spec.name.clone()).unwrap_or_default(),
            operation_id: id.clone(),
            request: serde_json::json!({ "operation_id": id }),
        };
        self.0.audit(&caller, "CancelOperation", about, &result.as_ref().map(|_| ()).map_err(|e| e.to_string())).await;
        Ok(Response::new(pb::CancelOperationResponse { operation: Some(result?.to_wire()) }))
    }

    type WatchOperationStream = WatchStream;

    async fn watch_operation(
        &self,
        request: Request<pb::WatchOperationRequest>,
    ) -> Result<Response<Self::WatchOperationStream>, Status> {
        self.0.caller(&request, Scope::Read)?;
        let r = request.into_inner();
        let id = operation_id(&r.operation_id)?.to_string();
        // Sequence numbers are stored as SQL integers: a larger one would read as negative and replay everything.
        if r.after_sequence > i64::MAX as u64 {
            return Err(ApiError::field("after_sequence", "must be at most 9223372036854775807").into());
        }
        // Fail fast for an unknown operation, before the stream starts.
        self.0.engine.operation(&id).await.map_err(ApiError::from)?;
        Ok(Response::new(watch(self.0.clone(), id, r.after_sequence)))
    }
}
