//! An operation's record of its targets: the rows it has in the journal, the targets it finds (all at once, or as
//! the organization's pages list them, `found`), the rest recorded once the selection is complete (`settle`, with
//! `TargetsResolved`), and what a run stopped part-way left for the next one (`resume_targets`).

use std::collections::BTreeSet;

use crossrole_aws::calls::CallContext;
use crossrole_core::{
    AccessSpec,
    ops::{AccountError, AccountResult, ErrorCode, Event, OperationKind, Outcome, Phase},
};
use crossrole_store::OperationRow;

use crate::{
    Inner,
    account::{Action, Target},
    events::EventSink,
    records, targets,
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

/// What an earlier run of this operation left in the journal.
pub(crate) struct Resumed {
    /// The accounts still to run; one that was running keeps its row as `prior`, for what it did before.
    pub(crate) targets: Vec<Target>,
    /// The indexes already finished (skipped ones included).
    pub(crate) done: BTreeSet<u32>,
    /// Every account with a row.
    pub(crate) accounts: BTreeSet<String>,
    /// The index after the last row's.
    pub(crate) next_index: u32,
    /// How many rows are targets (not skipped).
    pub(crate) targets_known: usize,
}

/// Targets persisted by an earlier run of this operation, if it had any.
pub(crate) async fn resume_targets(inner: &Inner, op: &OperationRow) -> Result<Option<Resumed>, String> {
    let rows = all_rows(inner, &op.id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut resumed = Resumed {
        targets: Vec::new(),
        done: BTreeSet::new(),
        accounts: BTreeSet::new(),
        next_index: 0,
        targets_known: 0,
    };
    for r in rows {
        resumed.accounts.insert(r.account_id.clone());
        resumed.next_index = resumed.next_index.max(r.index + 1);
        resumed.targets_known += usize::from(r.action.is_some());
        if r.outcome.is_final() {
            resumed.done.insert(r.index);
            continue;
        }
        let was_running = r.outcome == Outcome::Running;
        resumed.targets.push(Target {
            index: r.index,
            account_id: r.account_id.clone(),
            account_name: r.account_name.clone(),
            joined_at: None,
            // A row still to run was written with its action.
            action: r.action.unwrap_or(Action::Ensure),
            prior: was_running.then_some(r),
        });
    }
    Ok(Some(resumed))
}

/// Whether the operation's targets were all found (its `TargetsResolved` event is on record). Read only when an
/// operation resumes.
pub(crate) async fn targets_resolved(inner: &Inner, op: &str) -> bool {
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

/// The targets being found, as a future the run polls with its accounts.
pub(crate) type Finding<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<targets::Resolved, String>> + Send + 'a>>;

/// The operation's record of the targets it has: which accounts have a row, the next row's index, how many are
/// targets.
#[derive(Default)]
pub(crate) struct Book {
    pub(crate) accounts: BTreeSet<String>,
    pub(crate) next_index: u32,
    pub(crate) targets: usize,
}

/// Resolves the targets of an operation of `kind` (sending them to `found` as they are found, if given).
pub(crate) async fn find(
    inner: &Inner,
    spec: &AccessSpec,
    kind: OperationKind,
    scope: Option<&BTreeSet<String>>,
    ctx: &CallContext,
    found: Option<crossrole_aws::discovery::Found>,
) -> Result<targets::Resolved, String> {
    // An apply works from a fresh tree (accounts move): one a plan walked a moment ago, or walked now. A
    // reconcile may work from an older one where Organizations events keep it true.
    let config = inner.discovery.config();
    let max_age = match kind {
        OperationKind::Reconcile => config.apply_max_age.max(config.reconcile_max_age),
        _ => config.apply_max_age,
    };
    targets::resolve(inner, spec, kind == OperationKind::Destroy, ctx, max_age, scope, found)
        .await
        .map_err(|e| e.to_string())
}

/// Accounts found selected while the rest are still being found: each gets its row (to be worked on), and comes
/// back as a target.
pub(crate) async fn found(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    batch: Vec<crossrole_core::org::AccountInfo>,
    book: &mut Book,
) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for a in batch {
        if book.accounts.insert(a.id.clone()) {
            let mut t = targets::target(&a, Action::Ensure);
            t.index = book.next_index;
            book.next_index += 1;
            targets.push(t);
        }
    }
    book.targets += targets.len();
    put_targets(inner, op, spec, &targets).await?;
    Ok(targets)
}

pub(crate) async fn put_targets(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    targets: &[Target],
) -> Result<(), String> {
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
    inner.journal.put_accounts(&op.id, rows).await.map_err(|e| e.to_string())
}

/// Records the targets resolved that the operation does not have yet (all of them, unless some were found as
/// they came or by an earlier run) and the skipped accounts, and says the targets are known
/// (`TargetsResolved`). Returns the targets it added.
pub(crate) async fn settle(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    resolved: targets::Resolved,
    book: &mut Book,
    sink: &EventSink,
) -> Result<Vec<Target>, String> {
    let mut added = Vec::new();
    for mut t in resolved.targets {
        if book.accounts.insert(t.account_id.clone()) {
            t.index = book.next_index;
            book.next_index += 1;
            added.push(t);
        }
    }
    book.targets += added.len();
    put_targets(inner, op, spec, &added).await?;
    let mut rows = Vec::new();
    for s in &resolved.skipped {
        if !book.accounts.insert(s.account.id.clone()) {
            continue;
        }
        rows.push(records::account_row(&AccountResult {
            account_id: s.account.id.clone(),
            account_name: s.account.name.clone(),
            index: book.next_index,
            outcome: Outcome::Skipped,
            phase: Phase::Done,
            role_arn: String::new(),
            changes: Vec::new(),
            error: Some(AccountError::new(ErrorCode::AccountNotActive, s.reason.clone(), Phase::Queued)),
            verify: None,
            end_time: None,
            action: None,
        }));
        book.next_index += 1;
    }
    if !rows.is_empty() {
        inner.journal.put_accounts(&op.id, rows).await.map_err(|e| e.to_string())?;
    }
    sink.emit(
        "",
        Event::TargetsResolved {
            targets: book.targets as u32,
            skipped: resolved.skipped.len() as u32,
            cleanup: resolved.cleanup,
        },
    );
    Ok(added)
}
