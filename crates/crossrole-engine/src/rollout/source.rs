//! Where a run's targets come from — one source, three ways in: the rows an earlier run of the operation left
//! (resumed), the accounts the organization's pages list while they are still being read (found), and the rest once
//! the selection is complete (the remainder: accounts to clean up, skipped ones, any the pages did not settle, then
//! `TargetsResolved`). Every target gets its row in the journal before it is handed out, with the next index.
//!
//! [`TargetSource::open`] returns the targets known at once; while the selection is being read, the run races
//! [`TargetSource::arrival`] (which only waits, and may be dropped at any time) against its accounts, and hands
//! what arrived to [`TargetSource::take`], which records it.
//!
//! The finding itself — the selection read, the accounts found as its pages arrive, each handed out once with its
//! index, then the remainder — is a [`TargetFinder`], which keeps no record: plans and verifications find their
//! targets through one, as a run does, and write nothing.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use crossrole_aws::calls::CallContext;
use crossrole_core::{
    AccessSpec,
    ops::{AccountError, AccountResult, ErrorCode, Event, OperationKind, Outcome, Phase},
    org::AccountInfo,
};
use crossrole_store::OperationRow;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::{
    Error, Inner,
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
type Selecting = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Resolved, Error>> + Send>>;

/// What arrived while the selection was being read.
pub(crate) enum Arrival {
    /// Accounts the pages listed that the selection is sure of.
    Found(Vec<AccountInfo>),
    /// The selection is complete (or could not be read).
    Complete(Result<Resolved, Error>),
}

/// What a [`TargetFinder`] made of an arrival.
pub(crate) enum Taken {
    /// Targets found while the rest are still being read, each new one with the next index.
    Found(Vec<Target>),
    /// The selection is complete: the targets found just before the end (new ones, with the next indexes), and
    /// the selection (its targets' indexes are its own: [`TargetFinder::remainder`] hands out the rest).
    Complete(Vec<Target>, Result<Resolved, Error>),
}

/// A selection of targets being read, the accounts it finds handed out as its pages list them, each once with the
/// next index. It keeps no record: a [`TargetSource`] records what it hands out; a plan or a verification only
/// works on it.
pub(crate) struct TargetFinder {
    /// Accounts handed out.
    accounts: BTreeSet<String>,
    /// The next account's index.
    next_index: u32,
    /// The selection, while it is being read.
    selecting: Option<Selecting>,
    found: UnboundedReceiver<Vec<AccountInfo>>,
}

impl TargetFinder {
    /// Nothing being read.
    fn idle() -> TargetFinder {
        let (_, found) = unbounded_channel();
        TargetFinder { accounts: BTreeSet::new(), next_index: 0, selecting: None, found }
    }

    /// Starts reading `spec`'s targets as [`targets::resolve`] resolves them (`remove_all`, `max_age`, `scope`);
    /// with `find`, the accounts found as the organization's pages list them arrive before the end.
    pub(crate) fn start(
        inner: Arc<Inner>,
        spec: Arc<AccessSpec>,
        remove_all: bool,
        max_age: Duration,
        scope: Option<BTreeSet<String>>,
        ctx: CallContext,
        find: bool,
    ) -> TargetFinder {
        let (found_tx, found) = unbounded_channel();
        let found_tx = find.then_some(found_tx);
        let selecting =
            async move { targets::resolve(&inner, &spec, remove_all, &ctx, max_age, scope.as_ref(), found_tx).await };
        TargetFinder { selecting: Some(Box::pin(selecting)), found, ..TargetFinder::idle() }
    }

    /// A finder whose selection ends with `error`: it finds nothing more.
    fn failed(error: Error) -> TargetFinder {
        TargetFinder { selecting: Some(Box::pin(async move { Err(error) })), ..TargetFinder::idle() }
    }

    /// Whether the selection is still being read.
    pub(crate) fn selecting(&self) -> bool {
        self.selecting.is_some()
    }

    /// Stops reading the selection: what was not found is not handed out.
    pub(crate) fn stop(&mut self) {
        self.selecting = None;
    }

    /// How many accounts were handed out.
    pub(crate) fn handed_out(&self) -> usize {
        self.accounts.len()
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

    /// Hands out the new targets of what arrived; once the selection is complete, the targets found just before
    /// its end, and the selection.
    pub(crate) fn take(&mut self, arrival: Arrival) -> Taken {
        match arrival {
            Arrival::Found(batch) => Taken::Found(self.found(batch)),
            Arrival::Complete(resolved) => {
                self.selecting = None;
                // What was sent before the end is all in the channel by now.
                let mut added = Vec::new();
                while let Ok(batch) = self.found.try_recv() {
                    added.extend(self.found(batch));
                }
                if let Ok(resolved) = &resolved {
                    let selected: BTreeSet<&str> = resolved.targets.iter().map(|t| t.account_id.as_str()).collect();
                    let gone = self.accounts.iter().filter(|a| !selected.contains(a.as_str())).count();
                    if gone > 0 {
                        // Found selected, then not: the organization changed while it was read (the same window as
                        // an account moving while it is worked on).
                        tracing::warn!(accounts = gone, "accounts found selected are not in the final selection");
                    }
                }
                Taken::Complete(added, resolved)
            }
        }
    }

    /// The next index, for `account` if it has none yet.
    fn index(&mut self, account: &str) -> Option<u32> {
        if !self.accounts.insert(account.to_string()) {
            return None;
        }
        self.next_index += 1;
        Some(self.next_index - 1)
    }

    /// Accounts found selected: the new ones, as targets.
    fn found(&mut self, batch: Vec<AccountInfo>) -> Vec<Target> {
        self.hand_out(batch.iter().map(|a| targets::target(a, Action::Ensure)))
    }

    /// The targets of `resolved` not handed out before, with the next indexes.
    pub(crate) fn remainder(&mut self, resolved: &Resolved) -> Vec<Target> {
        self.hand_out(resolved.targets.iter().cloned())
    }

    fn hand_out(&mut self, targets: impl Iterator<Item = Target>) -> Vec<Target> {
        targets
            .filter_map(|mut t| {
                t.index = self.index(&t.account_id)?;
                Some(t)
            })
            .collect()
    }
}

/// The run's targets and their rows.
pub(crate) struct TargetSource {
    inner: Arc<Inner>,
    op: OperationRow,
    spec: Arc<AccessSpec>,
    /// The selection, and the accounts with a row.
    finding: TargetFinder,
    /// How many rows are targets (not skipped).
    targets: usize,
}

impl TargetSource {
    /// The targets of operation `op` (of `kind`, limited to `scope` if given): those an earlier run left, completed
    /// if that run stopped before it had them all; else resolved now — or, for an apply or reconcile of the whole
    /// selection, found as the organization's pages list them — unless it carries a confirmed plan (`confirmed`: with
    /// its targets, when the apply's start read them): then they are all read first, and `Err` when they are not
    /// the plan's. Returns the source and the targets known at once; `Err` when there are none to be had (nothing
    /// was done).
    #[allow(clippy::too_many_arguments)] // what the operation is, what it selects, and the plan it carries
    pub(crate) async fn open(
        inner: &Arc<Inner>,
        op: &OperationRow,
        spec: &Arc<AccessSpec>,
        kind: OperationKind,
        scope: Option<&BTreeSet<String>>,
        ctx: &CallContext,
        sink: &EventSink,
        confirmed: Option<(&crate::confirmed::Fingerprint, Option<Resolved>)>,
    ) -> Result<(TargetSource, Vec<Target>), String> {
        let mut source = TargetSource {
            inner: inner.clone(),
            op: op.clone(),
            spec: spec.clone(),
            finding: TargetFinder::idle(),
            targets: 0,
        };
        let rows = all_rows(inner, &op.id).await?;
        if !rows.is_empty() {
            let mut pending = source.resume(rows);
            if !resolved_before(inner, &op.id).await {
                // It stopped while it was finding them: find the rest; the ones it has keep their rows.
                let more = match select(inner, spec, kind, scope, ctx).await {
                    Ok(resolved) => source.record_remainder(resolved, sink).await,
                    Err(e) => Err(e.to_string()),
                };
                match more {
                    Ok(more) => pending.extend(more),
                    Err(message) => return Ok((source.failed(message), pending)),
                }
            }
            return Ok((source, pending));
        }
        if let Some((plan, resolved)) = confirmed {
            // An apply of a confirmed plan knows all its targets, and that they are the plan's, before it starts
            // any account (read by its start, or now).
            let resolved = match resolved {
                Some(resolved) => resolved,
                None => {
                    let max_age = inner.discovery.config().apply_max_age;
                    targets::resolve(inner, spec, false, ctx, max_age, None, None).await.map_err(|e| e.to_string())?
                }
            };
            let known = inner.discovery.cached_tree().await;
            plan.check_targets(&resolved.targets, &resolved.tree, known.as_deref())?;
            let targets = source.record_remainder(resolved, sink).await?;
            return Ok((source, targets));
        }
        if matches!(kind, OperationKind::Apply | OperationKind::Reconcile) && scope.is_none() {
            // Found as the pages list them where the organization is read afresh.
            let max_age = max_age(inner, kind);
            let find = max_age.is_zero();
            source.finding = TargetFinder::start(inner.clone(), spec.clone(), false, max_age, None, ctx.clone(), find);
            return Ok((source, Vec::new()));
        }
        let resolved = select(inner, spec, kind, scope, ctx).await.map_err(|e| e.to_string())?;
        let targets = source.record_remainder(resolved, sink).await?;
        Ok((source, targets))
    }

    /// A source whose selection failed after some targets were known: it finds nothing more, and `take` says why.
    fn failed(mut self, message: String) -> TargetSource {
        let (accounts, next_index) = (std::mem::take(&mut self.finding.accounts), self.finding.next_index);
        // Only the message is shown (`take`).
        self.finding =
            TargetFinder { accounts, next_index, ..TargetFinder::failed(Error::FailedPrecondition(message)) };
        self
    }

    /// Takes the rows an earlier run left: every account with a row is known; the unfinished ones come back as
    /// targets (one that was running keeps its row as `prior`, for what it did before).
    fn resume(&mut self, rows: Vec<AccountResult>) -> Vec<Target> {
        let mut pending = Vec::new();
        for r in rows {
            self.finding.accounts.insert(r.account_id.clone());
            self.finding.next_index = self.finding.next_index.max(r.index + 1);
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
        self.finding.selecting()
    }

    /// Stops reading the selection (a cancel or a shutdown): what was not found is not worked on.
    pub(crate) fn stop(&mut self) {
        self.finding.stop();
    }

    /// How many targets have rows.
    pub(crate) fn known(&self) -> usize {
        self.targets
    }

    /// Waits for the next accounts found, or the end of the selection. Only waits: dropping it loses nothing.
    pub(crate) async fn arrival(&mut self) -> Arrival {
        self.finding.arrival().await
    }

    /// Records what arrived and returns the targets it adds. Once the selection is complete, it records the
    /// remainder and `TargetsResolved`; an error stops the selection.
    pub(crate) async fn take(&mut self, arrival: Arrival, sink: &EventSink) -> Result<Vec<Target>, String> {
        match self.finding.take(arrival) {
            Taken::Found(added) => {
                let recorded = self.record_found(added).await;
                if recorded.is_err() {
                    self.finding.stop();
                }
                recorded
            }
            Taken::Complete(found, resolved) => {
                let mut added = self.record_found(found).await?;
                // Accounts found selected that the final selection does not have are worked on as found.
                let resolved = resolved.map_err(|e| e.to_string())?;
                added.extend(self.record_remainder(resolved, sink).await?);
                Ok(added)
            }
        }
    }

    /// Accounts found selected while the rest are still being read: each gets its row, and comes back as a target.
    async fn record_found(&mut self, added: Vec<Target>) -> Result<Vec<Target>, String> {
        self.targets += added.len();
        put(&self.inner, &self.op.id, &self.spec, &added).await?;
        Ok(added)
    }

    /// Records the targets resolved that have no row yet (all of them, unless some were found as they came or by
    /// an earlier run) and the skipped accounts, and says the targets are known (`TargetsResolved`).
    async fn record_remainder(&mut self, resolved: Resolved, sink: &EventSink) -> Result<Vec<Target>, String> {
        let added = self.finding.remainder(&resolved);
        self.targets += added.len();
        put(&self.inner, &self.op.id, &self.spec, &added).await?;
        let mut rows = Vec::new();
        for s in &resolved.skipped {
            let Some(index) = self.finding.index(&s.account.id) else { continue };
            rows.push(records::account_row(&AccountResult {
                account_id: s.account.id.clone(),
                account_name: s.account.name.clone(),
                index,
                outcome: Outcome::Skipped,
                phase: Phase::Done,
                role_arn: String::new(),
                changes: Vec::new(),
                error: Some(AccountError::new(ErrorCode::AccountNotActive, s.reason.clone(), Phase::Queued)),
                verify: None,
                end_time: None,
                action: None,
            }));
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
pub(crate) async fn resolved_before(inner: &Inner, op: &str) -> bool {
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

/// How old a tree of the organization an operation of `kind` may work from. An apply works from a fresh tree
/// (accounts move): one a plan walked a moment ago, or walked now. A reconcile may work from an older one where
/// Organizations events keep it true.
fn max_age(inner: &Inner, kind: OperationKind) -> Duration {
    let config = inner.discovery.config();
    match kind {
        OperationKind::Reconcile => config.apply_max_age.max(config.reconcile_max_age),
        _ => config.apply_max_age,
    }
}

/// Resolves the targets of an operation of `kind` at once.
async fn select(
    inner: &Inner,
    spec: &AccessSpec,
    kind: OperationKind,
    scope: Option<&BTreeSet<String>>,
    ctx: &CallContext,
) -> Result<Resolved, Error> {
    targets::resolve(inner, spec, kind == OperationKind::Destroy, ctx, max_age(inner, kind), scope, None).await
}
