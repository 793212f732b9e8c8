//! Where a run's targets come from — one source, three ways in: the rows an earlier run of the operation left
//! (resumed), the accounts the organization's pages list while they are still being read (found), and the rest once
//! the selection is complete (the remainder: accounts to clean up, skipped ones, any the pages did not settle, then
//! `TargetsResolved`). Every target gets its row in the journal before it is handed out, with the next index.
//!
//! [`TargetSource::open`] returns the targets known at once; while the selection is being read, the run races
//! [`TargetSource::arrival`] (which only waits, and may be dropped at any time) against its accounts, and hands
//! what arrived to [`TargetSource::take`], which records it.

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::calls::CallContext;
use crossrole_core::{
    AccessSpec,
    ops::{AccountError, AccountResult, ErrorCode, Event, OperationKind, Outcome, Phase},
    org::AccountInfo,
};
use crossrole_store::OperationRow;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::{
    Inner,
    account::{Action, Target},
    events::EventSink,
    records,
    targets::{self, Resolved},
};

/// Every account row of operation `op`, in index order.
pub(crate) async fn all_rows(inner: &Inner, op: &str) -> Result<Vec<AccountResult>, String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = inner.journal.list_accounts(op, &[], 1000, after).await.map_err(|e| e.to_string())?;
        let n = page.len();
        after = page.last().map(|r| r.index);
        for row in page {
            out.push(records::account_result(&row, op).map_err(|e| format!("journal: {e}"))?);
        }
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// The selection being read, as a future the run polls alongside its accounts.
type Selecting = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Resolved, String>> + Send>>;

/// What arrived while the selection was being read.
pub(crate) enum Arrival {
    /// Accounts the pages listed that the selection is sure of.
    Found(Vec<AccountInfo>),
    /// The selection is complete (or could not be read).
    Complete(Result<Resolved, String>),
}

/// The run's targets and their rows.
pub(crate) struct TargetSource {
    inner: Arc<Inner>,
    op: OperationRow,
    spec: Arc<AccessSpec>,
    /// Accounts with a row.
    accounts: BTreeSet<String>,
    /// The next row's index.
    next_index: u32,
    /// How many rows are targets (not skipped).
    targets: usize,
    /// The selection, while it is being read.
    selecting: Option<Selecting>,
    found: UnboundedReceiver<Vec<AccountInfo>>,
}

impl TargetSource {
    /// The targets of operation `op` (of `kind`, limited to `scope` if given): those an earlier run left, completed
    /// if that run stopped before it had them all; else resolved now — or, for an apply or reconcile of the whole
    /// selection, found as the organization's pages list them. Returns the source and the targets known at once;
    /// `Err` when there are none to be had (nothing was done).
    pub(crate) async fn open(
        inner: &Arc<Inner>,
        op: &OperationRow,
        spec: &Arc<AccessSpec>,
        kind: OperationKind,
        scope: Option<&BTreeSet<String>>,
        ctx: &CallContext,
        sink: &EventSink,
    ) -> Result<(TargetSource, Vec<Target>), String> {
        let (found_tx, found) = unbounded_channel();
        let mut source = TargetSource {
            inner: inner.clone(),
            op: op.clone(),
            spec: spec.clone(),
            accounts: BTreeSet::new(),
            next_index: 0,
            targets: 0,
            selecting: None,
            found,
        };
        let rows = all_rows(inner, &op.id).await?;
        if !rows.is_empty() {
            let mut pending = source.resume(rows);
            if !resolved_before(inner, &op.id).await {
                // It stopped while it was finding them: find the rest; the ones it has keep their rows.
                let more = match select(inner.clone(), spec.clone(), kind, scope.cloned(), ctx.clone(), None).await {
                    Ok(resolved) => source.record_remainder(resolved, sink).await,
                    Err(message) => Err(message),
                };
                match more {
                    Ok(more) => pending.extend(more),
                    Err(message) => return Ok((source.failed(message), pending)),
                }
            }
            return Ok((source, pending));
        }
        if matches!(kind, OperationKind::Apply | OperationKind::Reconcile) && scope.is_none() {
            let selecting = select(inner.clone(), spec.clone(), kind, None, ctx.clone(), Some(found_tx));
            source.selecting = Some(Box::pin(selecting));
            return Ok((source, Vec::new()));
        }
        let resolved = select(inner.clone(), spec.clone(), kind, scope.cloned(), ctx.clone(), None).await?;
        let targets = source.record_remainder(resolved, sink).await?;
        Ok((source, targets))
    }

    /// A source whose selection failed after some targets were known: it finds nothing more, and `take` says why.
    fn failed(mut self, message: String) -> TargetSource {
        self.selecting = Some(Box::pin(async move { Err(message) }));
        self
    }

    /// Takes the rows an earlier run left: every account with a row is known; the unfinished ones come back as
    /// targets (one that was running keeps its row as `prior`, for what it did before).
    fn resume(&mut self, rows: Vec<AccountResult>) -> Vec<Target> {
        let mut pending = Vec::new();
        for r in rows {
            self.accounts.insert(r.account_id.clone());
            self.next_index = self.next_index.max(r.index + 1);
            self.targets += usize::from(r.action.is_some());
            if r.outcome.is_final() {
                continue;
            }
            let was_running = r.outcome == Outcome::Running;
            pending.push(Target {
                index: r.index,
                account_id: r.account_id.clone(),
                account_name: r.account_name.clone(),
                joined_at: None,
                // A row still to run was written with its action.
                action: r.action.unwrap_or(Action::Ensure),
                prior: was_running.then_some(r),
            });
        }
        pending
    }

    /// Whether the selection is still being read.
    pub(crate) fn selecting(&self) -> bool {
        self.selecting.is_some()
    }

    /// Stops reading the selection (a cancel or a shutdown): what was not found is not worked on.
    pub(crate) fn stop(&mut self) {
        self.selecting = None;
    }

    /// How many targets have rows.
    pub(crate) fn known(&self) -> usize {
        self.targets
    }

    /// Waits for the next accounts found, or the end of the selection. Only waits: dropping it loses nothing.
    pub(crate) async fn arrival(&mut self) -> Arrival {
        let Some(selecting) = self.selecting.as_mut() else { return std::future::pending().await };
        tokio::select! {
            biased;
            Some(batch) = self.found.recv() => Arrival::Found(batch),
            resolved = selecting => Arrival::Complete(resolved),
        }
    }

    /// Records what arrived and returns the targets it adds. Once the selection is complete, it records the
    /// remainder and `TargetsResolved`; an error stops the selection.
    pub(crate) async fn take(&mut self, arrival: Arrival, sink: &EventSink) -> Result<Vec<Target>, String> {
        match arrival {
            Arrival::Found(batch) => {
                let added = self.record_found(batch).await;
                if added.is_err() {
                    self.selecting = None;
                }
                added
            }
            Arrival::Complete(resolved) => {
                self.selecting = None;
                // What was sent before the end is all in the channel by now.
                let mut added = Vec::new();
                while let Ok(batch) = self.found.try_recv() {
                    added.extend(self.record_found(batch).await?);
                }
                let resolved = resolved?;
                let selected: BTreeSet<&str> = resolved.targets.iter().map(|t| t.account_id.as_str()).collect();
                let gone = self.accounts.iter().filter(|a| !selected.contains(a.as_str())).count();
                if gone > 0 {
                    // Found selected, then not: the organization changed while it was read (the same window as an
                    // account moving while it is worked on). They are worked on as found.
                    tracing::warn!(accounts = gone, "accounts found selected are not in the final selection");
                }
                added.extend(self.record_remainder(resolved, sink).await?);
                Ok(added)
            }
        }
    }

    /// Accounts found selected while the rest are still being read: each gets its row, and comes back as a target.
    async fn record_found(&mut self, batch: Vec<AccountInfo>) -> Result<Vec<Target>, String> {
        let mut added = Vec::new();
        for a in batch {
            if self.accounts.insert(a.id.clone()) {
                let mut t = targets::target(&a, Action::Ensure);
                t.index = self.next_index;
                self.next_index += 1;
                added.push(t);
            }
        }
        self.targets += added.len();
        put(&self.inner, &self.op.id, &self.spec, &added).await?;
        Ok(added)
    }

    /// Records the targets resolved that have no row yet (all of them, unless some were found as they came or by
    /// an earlier run) and the skipped accounts, and says the targets are known (`TargetsResolved`).
    async fn record_remainder(&mut self, resolved: Resolved, sink: &EventSink) -> Result<Vec<Target>, String> {
        let mut added = Vec::new();
        for mut t in resolved.targets {
            if self.accounts.insert(t.account_id.clone()) {
                t.index = self.next_index;
                self.next_index += 1;
                added.push(t);
            }
        }
        self.targets += added.len();
        put(&self.inner, &self.op.id, &self.spec, &added).await?;
        let mut rows = Vec::new();
        for s in &resolved.skipped {
            if !self.accounts.insert(s.account.id.clone()) {
                continue;
            }
            rows.push(records::account_row(&AccountResult {
                account_id: s.account.id.clone(),
                account_name: s.account.name.clone(),
                index: self.next_index,
                outcome: Outcome::Skipped,
                phase: Phase::Done,
                role_arn: String::new(),
                changes: Vec::new(),
                error: Some(AccountError::new(ErrorCode::AccountNotActive, s.reason.clone(), Phase::Queued)),
                verify: None,
                end_time: None,
                action: None,
            }));
            self.next_index += 1;
        }
        if !rows.is_empty() {
            self.inner.journal.put_accounts(&self.op.id, rows).await.map_err(|e| e.to_string())?;
        }
        sink.emit(
            "",
            Event::TargetsResolved {
                targets: self.targets as u32,
                skipped: resolved.skipped.len() as u32,
                cleanup: resolved.cleanup,
            },
        );
        Ok(added)
    }
}

/// Writes the rows of new targets (pending). (Not a method: the source's selection future is not `Sync`.)
async fn put(inner: &Inner, op: &str, spec: &AccessSpec, targets: &[Target]) -> Result<(), String> {
    if targets.is_empty() {
        return Ok(());
    }
    let rows = targets
        .iter()
        .map(|t| {
            records::account_row(&AccountResult {
                role_arn: spec.role.arn(inner.aws.partition(), &t.account_id),
                ..t.result(Outcome::Pending, Phase::Queued)
            })
        })
        .collect();
    inner.journal.put_accounts(op, rows).await.map_err(|e| e.to_string())
}

/// Whether the operation's targets were all found before (its `TargetsResolved` event is on record). Read only
/// when an operation resumes.
async fn resolved_before(inner: &Inner, op: &str) -> bool {
    let mut after = 0;
    loop {
        let Ok(page) = inner.journal.read_events(op, after, 1000).await else { return false };
        for e in &page {
            let event: Result<crossrole_core::ops::OperationEvent, _> = records::decode(&e.payload, "event");
            if matches!(event.map(|e| e.event), Ok(Event::TargetsResolved { .. })) {
                return true;
            }
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = last.sequence,
            _ => return false,
        }
    }
}

/// Resolves the targets of an operation of `kind` (sending them to `found` as they are found, if given).
async fn select(
    inner: Arc<Inner>,
    spec: Arc<AccessSpec>,
    kind: OperationKind,
    scope: Option<BTreeSet<String>>,
    ctx: CallContext,
    found: Option<crossrole_aws::discovery::Found>,
) -> Result<Resolved, String> {
    // An apply works from a fresh tree (accounts move): one a plan walked a moment ago, or walked now. A
    // reconcile may work from an older one where Organizations events keep it true.
    let config = inner.discovery.config();
    let max_age = match kind {
        OperationKind::Reconcile => config.apply_max_age.max(config.reconcile_max_age),
        _ => config.apply_max_age,
    };
    targets::resolve(&inner, &spec, kind == OperationKind::Destroy, &ctx, max_age, scope.as_ref(), found)
        .await
        .map_err(|e| e.to_string())
}
