//! A binding's operations take turns: each starts its work only once every operation of its binding made before it
//! has ended, wherever that one runs — it is read in the journal, so this holds across replicas and restarts. A
//! destroy of a binding (its deletion, `Bindings::delete`) first asks the binding's earlier reconciles to cancel
//! (where one runs on another replica, that replica follows the cancel within a second), so it waits only for the
//! calls they have in flight; and a reconcile whose binding is gone (or has expired) by its turn does nothing. So no reconcile of a
//! deleted binding writes after its destroy has begun: not a role in an account the destroy has passed, nor, at
//! its end, the grant the destroy removed.

use std::time::Duration;

use crossrole_core::ops::{Event, OperationKind, OperationState};
use crossrole_store::{OperationFilter, OperationRow, StateChange, StoreError};
use tokio_util::sync::CancellationToken;

use super::Ending;
use crate::{Inner, backoff::Backoff, events::EventSink, records};

/// What an operation's turn came to.
pub(super) enum Turn {
    /// Its turn: it goes on.
    Go,
    /// Stopped for shutdown while it waited: it resumes at the next start.
    Stopped,
    /// It ends now, having done nothing.
    End(Ending),
}

/// Waits for `op`'s turn among its binding's operations (at once for an operation of no binding). A destroy asks
/// the earlier reconciles to cancel; a reconcile whose binding is gone by then is cancelled.
pub(super) async fn take(
    inner: &Inner,
    op: &OperationRow,
    kind: OperationKind,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    sink: &EventSink,
) -> Turn {
    let Some(binding) = op.binding_name.as_deref().filter(|b| !b.is_empty()) else { return Turn::Go };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let mut waiting_for: Option<String> = None;
    loop {
        match earlier(inner, binding, op.position).await {
            Ok(earlier) if earlier.is_empty() => break,
            Ok(earlier) => {
                if kind == OperationKind::Destroy {
                    let reconcile = records::stored_kind(OperationKind::Reconcile);
                    for r in earlier.iter().filter(|r| r.kind == reconcile) {
                        ask_to_cancel(inner, r, binding).await;
                    }
                }
                // The oldest: the others wait for it too.
                let oldest = earlier.last().map(|r| r.id.clone());
                if oldest.is_some() && oldest != waiting_for {
                    let id = oldest.clone().unwrap_or_default();
                    tracing::info!(binding, earlier = id, "waiting for the binding's earlier operation to end");
                    let message = format!("waiting for operation {id} of binding {binding} to end");
                    sink.emit("", Event::StateChanged { state: OperationState::Running, message, counts: None });
                    waiting_for = oldest;
                }
            }
            Err(e) => {
                tracing::warn!(binding, error = %e, "cannot read the binding's earlier operations; reading again")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return stopped(inner, op, cancel, waiting_for.as_deref()).await,
            _ = backoff.wait() => {}
        }
    }
    if kind != OperationKind::Reconcile {
        return Turn::Go;
    }
    loop {
        match inner.journal.get_binding(binding).await {
            Ok(Some(row)) if !expired(inner, &row) => return Turn::Go,
            Ok(Some(_)) => return deleted(inner, op, binding, "expired", cancel).await,
            Ok(None) => return deleted(inner, op, binding, "was deleted", cancel).await,
            Err(e) => tracing::warn!(binding, error = %e, "cannot read the binding; reading again"),
        }
        tokio::select! {
            _ = stop.cancelled() => return stopped(inner, op, cancel, None).await,
            _ = backoff.wait() => {}
        }
    }
}

/// The unfinished operations of `binding` made before position `position`, newest first.
async fn earlier(inner: &Inner, binding: &str, position: i64) -> Result<Vec<OperationRow>, StoreError> {
    let filter = OperationFilter {
        states: OperationState::ALL.into_iter().filter(|s| !s.is_final()).map(records::stored_state).collect(),
        binding_name: binding.to_string(),
        ..Default::default()
    };
    let mut found = Vec::new();
    let mut before = Some(position);
    loop {
        let (rows, next) = inner.journal.list_operations(&filter, 100, before).await?;
        found.extend(rows.into_iter().filter(|r| r.end_time.is_none()));
        match next {
            Some(next) => before = Some(next),
            None => return Ok(found),
        }
    }
}

/// Asks `earlier`, a reconcile of the binding being deleted, to cancel, as a caller's cancel does: written only
/// over the state read (one that moved meanwhile is asked again at the next look), followed at once where it runs
/// here, and by its replica's claims where it runs elsewhere.
async fn ask_to_cancel(inner: &Inner, earlier: &OperationRow, binding: &str) {
    let cancelling = records::stored_state(OperationState::Cancelling);
    if earlier.state != cancelling {
        let why = format!("cancel requested: binding {binding} is being deleted");
        match inner.journal.change_state(&earlier.id, StateChange::new(&[earlier.state], cancelling, &why)).await {
            Ok(true) => tracing::info!(binding, operation = earlier.id, "cancelled the reconcile of a deleted binding"),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(binding, operation = earlier.id, error = %e, "cannot cancel the binding's reconcile");
                return;
            }
        }
    }
    if let Some(running) = inner.running.lock().ok().and_then(|r| r.get(&earlier.id).map(|r| r.cancel.clone())) {
        running.cancel();
    }
}

/// Stopped while it waited: for shutdown (it resumes), or cancelled — then it ends, having done nothing (an
/// operation that has account rows, from a run before, goes on to record them as a cancelled run does).
async fn stopped(inner: &Inner, op: &OperationRow, cancel: &CancellationToken, waiting_for: Option<&str>) -> Turn {
    if !cancel.is_cancelled() {
        return Turn::Stopped;
    }
    if has_rows(inner, op).await {
        return Turn::Go;
    }
    let message = match waiting_for {
        Some(earlier) => format!("cancelled while it waited for operation {earlier} to end; nothing was done"),
        None => "cancelled before it started; nothing was done".to_string(),
    };
    Turn::End(Ending { state: OperationState::Cancelled, message })
}

/// Whether a binding's end has come by the engine's clock (a record that cannot be read is not: the reconcile
/// finds out why).
fn expired(inner: &Inner, row: &crossrole_store::BindingRow) -> bool {
    records::decode::<records::BindingRecord>(&row.binding, "binding")
        .is_ok_and(|r| r.expires_at.is_some_and(|end| end <= inner.config.clock.now()))
}

/// A reconcile of a binding that was deleted (or has expired: `how`): it is cancelled, having done nothing (one
/// that has account rows, from a run before, records them as a cancelled run does).
async fn deleted(inner: &Inner, op: &OperationRow, binding: &str, how: &str, cancel: &CancellationToken) -> Turn {
    tracing::info!(binding, how, "the binding is gone: its reconcile is cancelled");
    let message = format!("cancelled: binding {binding} {how}");
    if !has_rows(inner, op).await {
        return Turn::End(Ending { state: OperationState::Cancelled, message: format!("{message}; nothing was done") });
    }
    let unfinished = [OperationState::Pending, OperationState::Running].map(records::stored_state);
    let cancelling = records::stored_state(OperationState::Cancelling);
    if let Err(e) = inner.journal.change_state(&op.id, StateChange::new(&unfinished, cancelling, &message)).await {
        tracing::warn!(binding, error = %e, "cannot record the cancel of a deleted binding's reconcile");
    }
    cancel.cancel();
    Turn::Go
}

/// Whether the operation has account rows (a run of it got as far as its targets).
async fn has_rows(inner: &Inner, op: &OperationRow) -> bool {
    inner.journal.count_accounts(&op.id).await.map_or(true, |counts| !counts.is_empty())
}
