//! What every service shares.

use std::sync::Arc;

use crossrole_core::{AccessSpec, FieldViolation};
use crossrole_engine::Engine;
use crossrole_proto::v1 as pb;
use crossrole_store::{AuditEntry, Journal};
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
    /// Tokens.
    pub tokens: Arc<Tokens>,
    /// The journal.
    pub journal: Arc<dyn Journal>,
    /// Wakes the reconcile loop.
    pub reconcile_wake: Arc<tokio::sync::Notify>,
}

impl State {
    /// Authenticates a request for `scope`.
    pub fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller, ApiError> {
        self.tokens.check(request.metadata(), scope)
    }

    /// Records a mutating call in the audit log (journal and the `audit` log target).
    pub async fn audit(&self, caller: &Caller, method: &str, request: String, outcome: &Result<(), String>) {
        let outcome = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => e.clone(),
        };
        tracing::info!(target: "audit", caller = caller.name, method, outcome, request, "audit");
        let entry = AuditEntry { time: now_ms(), caller: caller.name.clone(), method: method.into(), request, outcome };
        if let Err(e) = self.journal.audit(entry).await {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

/// Now in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The request's spec, validated; violations are named under `spec.`.
pub fn spec(spec: Option<&pb::AccessSpec>) -> Result<AccessSpec, ApiError> {
    let spec = spec.ok_or_else(|| ApiError::field("spec", "required"))?;
    AccessSpec::try_from(spec).map_err(|e| {
        let prefixed = e
            .violations()
            .iter()
            .map(|v| {
                FieldViolation::new(
                    if v.field.is_empty() { "spec".to_string() } else { format!("spec.{}", v.field) },
                    v.rule.clone(),
                )
            })
            .collect();
        match e {
            crossrole_core::Error::Invalid(_) => ApiError::Invalid(prefixed),
            crossrole_core::Error::Refused(_) => ApiError::Refused(prefixed),
        }
    })
}

/// Prefixes guardrail violations with `spec.`.
pub fn under_spec(e: ApiError) -> ApiError {
    let fix = |v: Vec<FieldViolation>| {
        v.into_iter().map(|f| FieldViolation::new(format!("spec.{}", f.field), f.rule)).collect()
    };
    match e {
        ApiError::Refused(v) => ApiError::Refused(fix(v)),
        ApiError::Invalid(v) => ApiError::Invalid(fix(v)),
        other => other,
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
