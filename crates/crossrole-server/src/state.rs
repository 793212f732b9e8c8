//! What every service shares.

use std::sync::Arc;

use crossrole_core::AccessSpec;
use crossrole_engine::{Engine, bindings::Bindings};
use crossrole_store::{AuditEntry, Journal};
use crossrole_wire::pb;
use tonic::Request;

use crate::{
    auth::{Caller, Tokens},
    config::Scope,
    error::ApiError,
};

/// Shared state of the services.
#[derive(Clone)]
pub struct State {
    /// The engine.
    pub engine: Engine,
    /// The API tokens and their scopes.
    pub tokens: Arc<Tokens>,
    /// The journal.
    pub journal: Arc<dyn Journal>,
    /// The bindings and their reconcile loop.
    pub bindings: Bindings,
    /// What the Organizations events reader has read (the runtime's reader, on the replica that runs it).
    pub org_events: Arc<crossrole_engine::runtime::EventCounters>,
    /// WatchOperation streams open now.
    pub watchers: Arc<Watchers>,
}

/// A count of open watch streams.
#[derive(Debug, Default)]
pub struct Watchers(std::sync::atomic::AtomicUsize);

impl Watchers {
    /// Counts a stream until the guard is dropped (with the stream).
    pub fn enter(self: &Arc<Self>) -> WatchGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WatchGuard(self.clone())
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One open watch stream.
pub struct WatchGuard(Arc<Watchers>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl State {
    /// Authenticates a request for `scope`.
    pub fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller, ApiError> {
        let mut caller = self.tokens.check(request.metadata(), scope)?;
        caller.subject = crate::auth::client_subject(request);
        Ok(caller)
    }

    /// The redactor for what a caller sent coming back to it: the journal's (marks comparable with every other)
    /// for a caller who may read ExternalIds, one keyed for this answer alone for any other.
    pub fn redactor_for(&self, caller: &Caller) -> crossrole_core::secret::Redactor {
        if caller.reveal_external_ids { self.engine.redactor().clone() } else { one_time_redactor() }
    }

    /// Records a mutating call in the audit log (journal and the `audit` log target). `about.request` must hold no
    /// secret in clear (specs go through [`crossrole_engine::redacted`]).
    pub async fn audit(&self, caller: &Caller, method: &str, about: Audited, outcome: &Result<(), String>) {
        let outcome = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => e.clone(),
        };
        let request = about.request.to_string();
        tracing::info!(
            target: "audit",
            caller = caller.name,
            subject = caller.subject,
            method,
            spec = about.spec_name,
            operation = about.operation_id,
            outcome,
            request,
            "audit"
        );
        let entry = AuditEntry {
            id: 0,
            time: now_ms(),
            caller: caller.name.clone(),
            caller_subject: caller.subject.clone(),
            method: method.into(),
            spec_name: about.spec_name,
            operation_id: about.operation_id,
            request,
            outcome,
        };
        if let Err(e) = self.journal.audit(entry).await {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

/// What an audited call was about.
#[derive(Debug, Clone, Default)]
pub struct Audited {
    /// The spec or binding; empty for none.
    pub spec_name: String,
    /// The operation started or acted on; empty for none.
    pub operation_id: String,
    /// The request as JSON, secrets redacted.
    pub request: serde_json::Value,
}

/// Now in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The request's spec, validated; violations are named under `spec.`.
pub fn spec(spec: Option<&pb::AccessSpec>) -> Result<AccessSpec, ApiError> {
    Ok(crossrole_wire::spec(spec)?)
}

/// A refusal of the request's spec (guardrails, ceiling), its fields named under `spec.`.
pub fn under_spec(e: crossrole_engine::Error) -> ApiError {
    // The request's own fields, which the engine checks too, are named as they are.
    const REQUEST_FIELDS: [&str; 3] = ["plan_fingerprint", "release_former_grants", "write_external_id"];
    match e {
        crossrole_engine::Error::Invalid(crossrole_core::Error::Invalid(v))
            if v.iter().all(|f| REQUEST_FIELDS.contains(&f.field.as_str())) =>
        {
            ApiError::Invalid(v)
        }
        crossrole_engine::Error::Invalid(e) => e.under("spec").into(),
        other => other.into(),
    }
}

/// A page size: 0 means `default`; more than 1000 is an error.
pub fn page_size(value: u32, default: usize) -> Result<usize, ApiError> {
    match value {
        0 => Ok(default),
        1..=1000 => Ok(value as usize),
        _ => Err(ApiError::field("page_size", "must be from 0 to 1000")),
    }
}

/// A redactor keyed for one answer or one audit entry: its marks match no mark anywhere else.
pub fn one_time_redactor() -> crossrole_core::secret::Redactor {
    crossrole_core::secret::Redactor::for_one_response(&mut rand::rng())
}
