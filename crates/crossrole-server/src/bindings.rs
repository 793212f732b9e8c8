//! Access bindings and the reconcile loop: specs crossroled keeps true over time.
//!
//! A binding is a named, versioned spec with a mode and an interval, stored in the journal. The loop wakes on every
//! change and at least every `reconcile_tick`; each due binding gets a `RECONCILE` operation through the same engine,
//! journal, concurrency, failure tolerance and rate limits as an apply (in DETECT mode, a dry run). A binding never
//! reconciles twice at once: its unfinished operation, found in the journal, is waited for instead — also after a
//! restart, when the engine resumes it. When an operation ends, its per-account results become the binding's status,
//! and the next reconcile is scheduled one interval later, with up to 10% jitter so that bindings created together do
//! not fire together.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crossrole_core::AccessSpec;
use crossrole_engine::{Engine, StartRequest, is_final};
use crossrole_proto::v1 as pb;
use crossrole_store::{BindingRow, OperationFilter};
use prost::Message;
use rand::Rng;
use tokio::sync::Mutex;

use crate::{
    error::ApiError,
    state::{State, now_ms},
};

/// Shortest and longest reconcile intervals.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest reconcile interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000).unwrap_or(0)
}

/// Validates a binding from a request: its spec (fields under `binding.spec.`), name, mode and interval.
pub fn validate(b: &pb::Binding) -> Result<(AccessSpec, pb::Binding), ApiError> {
    let spec = crate::state::spec(b.spec.as_ref()).map_err(|e| match e {
        ApiError::Invalid(v) => ApiError::Invalid(prefix(v)),
        ApiError::Refused(v) => ApiError::Refused(prefix(v)),
        other => other,
    })?;
    let mut violations = Vec::new();
    let name = if b.name.is_empty() { spec.name.clone() } else { b.name.clone() };
    if name != spec.name {
        violations.push(crossrole_core::FieldViolation::new(
            "binding.name",
            format!("must be the spec's name ({:?})", spec.name),
        ));
    }
    let mode = match pb::BindingMode::try_from(b.mode) {
        Ok(pb::BindingMode::Unspecified) | Ok(pb::BindingMode::Enforce) => pb::BindingMode::Enforce,
        Ok(pb::BindingMode::Detect) => pb::BindingMode::Detect,
        Err(_) => {
            violations.push(crossrole_core::FieldViolation::new("binding.mode", "must be ENFORCE or DETECT"));
            pb::BindingMode::Enforce
        }
    };
    let interval = match b.reconcile_interval {
        None => Duration::from_secs(15 * 60),
        Some(d) if d.seconds >= MIN_INTERVAL.as_secs() as i64 && d.seconds <= MAX_INTERVAL.as_secs() as i64 => {
            Duration::from_secs(d.seconds as u64)
        }
        Some(d) => {
            violations.push(crossrole_core::FieldViolation::new(
                "binding.reconcile_interval",
                format!("must be from 10s to 7 days, got {}s", d.seconds),
            ));
            Duration::from_secs(15 * 60)
        }
    };
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let stored = pb::Binding {
        name,
        spec: Some((&spec).into()),
        mode: mode as i32,
        reconcile_interval: Some(prost_types::Duration { seconds: interval.as_secs() as i64, nanos: 0 }),
        ..Default::default()
    };
    Ok((spec, stored))
}

fn prefix(v: Vec<crossrole_core::FieldViolation>) -> Vec<crossrole_core::FieldViolation> {
    v.into_iter().map(|f| crossrole_core::FieldViolation::new(format!("binding.{}", f.field), f.rule)).collect()
}

/// The context a binding's sealed values are bound to.
fn seal_context(name: &str) -> String {
    format!("binding:{name}")
}

/// The binding as the journal keeps it: its spec's ExternalId sealed with the journal key.
pub fn sealed(b: &pb::Binding, engine: &Engine) -> Result<Vec<u8>, ApiError> {
    let mut b = b.clone();
    if let Some(s) = &b.spec {
        b.spec = Some(crossrole_engine::sealed(s, engine.journal_key(), &seal_context(&b.name))?);
    }
    Ok(b.encode_to_vec())
}

/// A stored binding, its spec's ExternalId opened.
pub fn decode(row: &BindingRow, engine: &Engine) -> Result<pb::Binding, ApiError> {
    let mut b = pb::Binding::decode(row.binding.as_slice())
        .map_err(|e| ApiError::Internal(format!("binding {}: {e}", row.name)))?;
    if let Some(s) = &b.spec {
        b.spec = Some(crossrole_engine::opened(s, engine.journal_key(), &seal_context(&row.name))?);
    }
    Ok(b)
}

/// A stored binding as the API shows it: its spec's ExternalId replaced by its mark, its status attached.
pub fn to_pb(row: &BindingRow, engine: &Engine, with_accounts: bool) -> Result<pb::Binding, ApiError> {
    let mut b = decode(row, engine)?;
    let mut status = if row.status.is_empty() {
        pb::BindingStatus::default()
    } else {
        pb::BindingStatus::decode(row.status.as_slice())
            .map_err(|e| ApiError::Internal(format!("binding status {}: {e}", row.name)))?
    };
    if !with_accounts {
        status.accounts.clear();
    }
    b.version = row.version;
    b.create_time = Some(timestamp(row.create_time));
    b.update_time = Some(timestamp(row.update_time));
    b.spec = b.spec.as_ref().map(|s| crossrole_engine::redacted(s, engine.redactor()));
    b.status = Some(status);
    Ok(b)
}

/// The reconcile loop's state.
#[derive(Default)]
pub struct Reconciler {
    /// Binding → its running reconcile operation.
    running: Mutex<HashMap<String, String>>,
}

impl Reconciler {
    /// The running reconcile of `binding`, if any (looked up in the journal after a restart).
    async fn running_operation(&self, state: &State, binding: &str) -> Option<String> {
        if let Some(id) = self.running.lock().await.get(binding).cloned()
            && let Ok(op) = state.engine.operation(&id).await
            && !is_final(op.state)
        {
            return Some(id);
        }
        let filter = OperationFilter {
            states: vec![
                pb::OperationState::Pending as i32,
                pb::OperationState::Running as i32,
                pb::OperationState::Cancelling as i32,
            ],
            binding_name: binding.to_string(),
            ..Default::default()
        };
        let (ops, _) = state.engine.list_operations(&filter, 1, "").await.ok()?;
        ops.into_iter().next().map(|o| o.id)
    }

    /// Starts a reconcile of `name` now, or returns the one running.
    pub async fn reconcile(
        self: &Arc<Self>,
        state: &State,
        name: &str,
        created_by: &str,
    ) -> Result<pb::Operation, ApiError> {
        if let Some(id) = self.running_operation(state, name).await {
            self.follow(state, name.to_string(), id.clone()).await;
            return Ok(state.engine.operation(&id).await?);
        }
        let row =
            state.journal.get_binding(name).await?.ok_or_else(|| ApiError::NotFound(format!("binding {name}")))?;
        let binding = decode(&row, &state.engine)?;
        let spec = crate::state::spec(binding.spec.as_ref())?;
        let op = state
            .engine
            .start(StartRequest {
                kind: pb::OperationKind::Reconcile,
                spec,
                idempotency_key: None,
                created_by: created_by.to_string(),
                binding_name: Some(name.to_string()),
                dry_run: binding.mode == pb::BindingMode::Detect as i32,
            })
            .await?;
        let mut status = decode_status(&row);
        status.running_operation_id = op.id.clone();
        let _ = state.journal.set_binding_status(name, status.encode_to_vec()).await;
        self.follow(state, name.to_string(), op.id.clone()).await;
        tracing::info!(binding = name, operation = op.id, version = row.version, "reconcile started");
        Ok(op)
    }

    /// Waits (in the background) for `op` to end, then records the binding's status.
    async fn follow(self: &Arc<Self>, state: &State, name: String, op: String) {
        let mut running = self.running.lock().await;
        if running.get(&name) == Some(&op) {
            return;
        }
        running.insert(name.clone(), op.clone());
        drop(running);
        let (this, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            let result = state.engine.wait(&op).await;
            this.running.lock().await.remove(&name);
            match result {
                Ok(done) => {
                    if let Err(e) = record(&state, &name, &done).await {
                        tracing::error!(binding = name, error = %e, "cannot record the reconcile's result");
                    }
                }
                Err(e) => tracing::error!(binding = name, error = %e, "lost track of a reconcile"),
            }
            state.reconcile_wake.notify_one();
        });
    }

    /// The loop: reconciles due bindings, forever.
    pub async fn run(self: Arc<Self>, state: State, tick: Duration) {
        loop {
            if let Err(e) = self.pass(&state).await {
                tracing::warn!(error = %e, "reconcile pass failed; retrying at the next tick");
            }
            tokio::select! {
                _ = state.reconcile_wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    async fn pass(self: &Arc<Self>, state: &State) -> Result<(), ApiError> {
        let now = now_ms();
        let mut after: Option<String> = None;
        loop {
            let rows = state.journal.list_bindings(200, after.as_deref()).await?;
            if rows.is_empty() {
                return Ok(());
            }
            after = rows.last().map(|r| r.name.clone());
            for row in rows {
                let status = decode_status(&row);
                let due = status.reconciled_version != row.version || ms(&status.next_reconcile_time) <= now;
                if !due {
                    continue;
                }
                if let Some(id) = self.running_operation(state, &row.name).await {
                    self.follow(state, row.name.clone(), id).await;
                    continue;
                }
                if let Err(e) = self.reconcile(state, &row.name, "reconciler").await {
                    tracing::warn!(binding = row.name, error = %e, "cannot start a reconcile");
                }
            }
        }
    }
}

fn decode_status(row: &BindingRow) -> pb::BindingStatus {
    pb::BindingStatus::decode(row.status.as_slice()).unwrap_or_default()
}

/// Records a finished reconcile (or destroy) as the binding's status.
async fn record(state: &State, name: &str, op: &pb::Operation) -> Result<(), ApiError> {
    let Some(row) = state.journal.get_binding(name).await? else { return Ok(()) };
    let binding = decode(&row, &state.engine)?;
    let mut results = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = state.engine.account_results(&op.id, &[], 1000, &token).await?;
        results.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    let end = ms(&op.end_time).max(1);
    let mut accounts: Vec<pb::BindingAccountStatus> = results
        .into_iter()
        .filter(|r| r.action != pb::AccountAction::Remove as i32 || r.outcome != pb::AccountOutcome::Changed as i32)
        .filter_map(|r| {
            let sync = match pb::AccountOutcome::try_from(r.outcome).ok()? {
                pb::AccountOutcome::Changed | pb::AccountOutcome::Unchanged => pb::SyncState::InSync,
                pb::AccountOutcome::Drifted => pb::SyncState::Drifted,
                pb::AccountOutcome::Failed => pb::SyncState::Failed,
                pb::AccountOutcome::Skipped if r.error.as_ref().is_some_and(|e| e.code == "account_not_active") => {
                    return None;
                }
                pb::AccountOutcome::Skipped => pb::SyncState::Failed,
                _ => pb::SyncState::Pending,
            };
            Some(pb::BindingAccountStatus {
                account_id: r.account_id,
                account_name: r.account_name,
                state: sync as i32,
                changes: r.changes,
                error: r.error,
                last_reconcile_time: r.end_time.or(Some(timestamp(end))),
            })
        })
        .collect();
    let rank = |s: i32| match pb::SyncState::try_from(s) {
        Ok(pb::SyncState::Drifted) => 0,
        Ok(pb::SyncState::Failed) => 1,
        Ok(pb::SyncState::Pending) => 2,
        _ => 3,
    };
    accounts.sort_by(|a, b| (rank(a.state), &a.account_id).cmp(&(rank(b.state), &b.account_id)));
    let count = |s: pb::SyncState| accounts.iter().filter(|a| a.state == s as i32).count() as u32;
    let interval = binding.reconcile_interval.map(|d| d.seconds.max(1) * 1000).unwrap_or(15 * 60 * 1000);
    let jitter = rand::rng().random_range(0..=interval / 10);
    let status = pb::BindingStatus {
        last_reconcile_time: Some(timestamp(end)),
        last_operation_id: op.id.clone(),
        running_operation_id: String::new(),
        next_reconcile_time: Some(timestamp(end + interval + jitter)),
        in_sync: count(pb::SyncState::InSync),
        drifted: count(pb::SyncState::Drifted),
        failed: count(pb::SyncState::Failed),
        pending: count(pb::SyncState::Pending),
        accounts,
        reconciled_version: binding_version_of(op, &binding, &row, &state.engine),
    };
    state.journal.set_binding_status(name, status.encode_to_vec()).await?;
    tracing::info!(
        binding = name,
        operation = op.id,
        in_sync = status.in_sync,
        drifted = status.drifted,
        failed = status.failed,
        "reconcile recorded"
    );
    Ok(())
}

/// The binding version a finished operation reconciled: the current one if its spec is the operation's (both
/// shown with the ExternalId's mark, which compares them without revealing it).
fn binding_version_of(op: &pb::Operation, current: &pb::Binding, row: &BindingRow, engine: &Engine) -> u64 {
    let current = current.spec.as_ref().map(|s| crossrole_engine::redacted(s, engine.redactor()));
    if current.as_ref() == op.spec.as_ref() { row.version } else { row.version.saturating_sub(1) }
}

/// A new binding row (version 1, due now), its ExternalId sealed.
pub fn new_row(binding: &pb::Binding, engine: &Engine) -> Result<BindingRow, ApiError> {
    let now = now_ms();
    Ok(BindingRow {
        name: binding.name.clone(),
        version: 1,
        binding: sealed(binding, engine)?,
        status: Vec::new(),
        create_time: now,
        update_time: now,
    })
}
