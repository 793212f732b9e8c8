//! Running an inventory: its targets put on record, then each account read and classified, a bounded number at
//! once, until every account has a final row or the run is stopped.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    inventory::{Context, InventoryRole, classify},
    ops::{AccountError, AccountResult, ErrorCode, Event, OperationState, Outcome, Phase},
    org::OrgTree,
    spec::AccountState,
};
use crossrole_store::OperationRow;
use futures::{StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::expected::Expected;
use crate::{Inner, account::error_from, events::EventSink, records, rollout};

/// Accounts read at once, at most: each costs an `AssumeRole` (STS's quota, the calling account's) and a call or
/// two to its own IAM, so the call layer's buckets, not this, set the pace.
const CONCURRENCY: usize = 64;

/// One account to read.
#[derive(Debug, Clone)]
struct Target {
    index: u32,
    account_id: String,
    account_name: String,
    joined_at: Option<u64>,
}

impl Target {
    fn result(&self, outcome: Outcome, phase: Phase) -> AccountResult {
        AccountResult {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            index: self.index,
            outcome,
            phase,
            role_arn: String::new(),
            changes: Vec::new(),
            error: None,
            verify: None,
            end_time: None,
            action: None,
        }
    }
}

/// What the accounts of one run share.
struct Env {
    inner: Arc<Inner>,
    ctx: CallContext,
    session: String,
    sink: EventSink,
    /// The organization as classification sees it; its `expected` is filled for one account at a time.
    context: Mutex<Context>,
    expected: Expected,
}

/// Runs (or resumes) an inventory to its end; a shutdown leaves it unfinished, to be resumed.
pub(crate) async fn run(inner: Arc<Inner>, op: OperationRow, cancel: CancellationToken, sink: EventSink) {
    let began = std::time::Instant::now();
    let span = tracing::info_span!("operation", id = %op.id, kind = "inventory");
    async move {
        let stop = cancel.child_token();
        let stop_on = {
            let (stop, shutdown) = (stop.clone(), inner.shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                stop.cancel();
            })
        };
        let ending = drive(&inner, &op, &cancel, &stop, &sink).await;
        stop_on.abort();
        match ending {
            None => tracing::info!("stopped for shutdown; it resumes at the next start"),
            Some((state, message)) => {
                sink.flush().await;
                let counts = rollout::counts(&inner, &op.id).await;
                sink.finish(state, &message, counts);
                sink.flush().await;
                if let Ok(mut m) = inner.metrics.lock() {
                    m.finished("inventory", state.as_str(), began.elapsed().as_secs_f64());
                }
                tracing::info!(state = state.as_str(), message, "inventory finished");
            }
        }
        sink.flush().await;
    }
    .instrument(span)
    .await
}

async fn drive(
    inner: &Arc<Inner>,
    op: &OperationRow,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    sink: &EventSink,
) -> Option<(OperationState, String)> {
    let ctx = CallContext {
        stats: inner.running_stats(&op.id),
        observer: Some(Arc::new(rollout::RetryEvents(sink.clone()))),
    };
    rollout::started(inner, op, cancel, sink).await;
    let tree = match inner.discovery.tree(&ctx, false).await {
        Ok(tree) => tree,
        Err(e) => {
            return Some((OperationState::Failed, format!("cannot read the organization: {e}; nothing was read")));
        }
    };
    let pending = match targets(inner, op, &tree, sink).await {
        Ok(pending) => pending,
        Err(e) => return Some((OperationState::Failed, format!("cannot read the operation's accounts: {e}"))),
    };
    let expected = match Expected::load(inner).await {
        Ok(expected) => expected,
        Err(e) => return Some((OperationState::Failed, format!("cannot read what crossrole placed: {e}"))),
    };
    let mut context = Context::new(tree.organization.id.clone(), inner.aws.partition(), now_secs());
    context.member_account_ids = tree.account_ids();
    let env = Arc::new(Env {
        inner: inner.clone(),
        ctx,
        session: format!("crossrole-{}", op.id),
        sink: sink.clone(),
        context: Mutex::new(context),
        expected,
    });
    drop(tree);

    let mut queue = pending.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < CONCURRENCY && !stop.is_cancelled() && sink.healthy() {
            let Some(target) = queue.next() else { break };
            let env = env.clone();
            let span = tracing::info_span!("account", id = %target.account_id);
            running.push(tokio::spawn(async move { read_account(&env, target).await }.instrument(span)));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some(finished) = running.next() => {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "account task panicked");
                }
            }
            _ = stop.cancelled(), if !stop.is_cancelled() => {}
        }
        if stop.is_cancelled() {
            // Accounts in flight finish their read (a call or two); nothing new starts.
            while let Some(finished) = running.next().await {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "account task panicked");
                }
            }
            break;
        }
    }
    if !cancel.is_cancelled() && inner.shutdown.is_cancelled() {
        return None;
    }
    let never: Vec<Target> = queue.collect();
    for t in &never {
        let mut r = t.result(Outcome::NotStarted, Phase::Done);
        r.error =
            Some(AccountError::new(ErrorCode::NotStarted, "not started: the inventory was cancelled", Phase::Queued));
        sink.account(&r);
    }
    sink.flush().await;
    if cancel.is_cancelled() {
        return Some((OperationState::Cancelled, "cancelled".into()));
    }
    let failed = rollout::counts(inner, &op.id).await.failed;
    let message = match failed {
        0 => String::new(),
        n => format!("{} could not be read; each says why", rollout::accounts(n as usize)),
    };
    Some((OperationState::Succeeded, message))
}

/// The accounts still to read. The first run puts every target on record (`pending`, in account id order, the
/// accounts asked for that are not ACTIVE members skipped with why); a resumed one reads its rows back and keeps
/// those that have a final outcome.
async fn targets(
    inner: &Inner,
    op: &OperationRow,
    tree: &OrgTree,
    sink: &EventSink,
) -> Result<Vec<Target>, crate::Error> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = inner.journal.list_accounts(&op.id, &[], 1000, after).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.index);
        for row in page {
            let result = records::account_result(&row, &op.id)?;
            if !result.outcome.is_final() {
                rows.push(result);
            }
        }
    }
    if after.is_some() {
        let joined = |id: &str| tree.accounts.get(id).and_then(|a| a.joined_at);
        return Ok(rows
            .into_iter()
            .map(|r| Target {
                joined_at: joined(&r.account_id),
                index: r.index,
                account_id: r.account_id,
                account_name: r.account_name,
            })
            .collect());
    }
    let scope = records::operation_scope(&op.spec);
    let ids: BTreeSet<&String> = match &scope {
        Some(accounts) => accounts.iter().collect(),
        None => tree.accounts.iter().filter(|(_, a)| a.state == AccountState::Active).map(|(id, _)| id).collect(),
    };
    let mut pending = Vec::new();
    let mut skipped = 0u32;
    for (index, id) in ids.into_iter().enumerate() {
        let account = tree.accounts.get(id);
        let target = Target {
            index: index as u32,
            account_id: id.clone(),
            account_name: account.map(|a| a.name.clone()).unwrap_or_default(),
            joined_at: account.and_then(|a| a.joined_at),
        };
        let why = match account {
            None => Some("the account is not a member of the organization".to_string()),
            Some(a) if a.state != AccountState::Active => Some(format!("account is {}", a.state.as_str())),
            Some(_) => None,
        };
        match why {
            Some(why) => {
                skipped += 1;
                let mut r = target.result(Outcome::Skipped, Phase::Done);
                r.error = Some(AccountError::new(ErrorCode::AccountNotActive, why, Phase::Queued));
                sink.account(&r);
            }
            None => {
                sink.account(&target.result(Outcome::Pending, Phase::Queued));
                pending.push(target);
            }
        }
    }
    sink.emit("", Event::TargetsResolved { targets: pending.len() as u32, skipped, cleanup: 0 });
    sink.flush().await;
    Ok(pending)
}

/// Reads one account, classifies its roles and writes them with its row.
async fn read_account(env: &Env, target: Target) {
    let inner = &env.inner;
    let account = target.account_id.as_str();
    env.sink.account(&target.result(Outcome::Running, Phase::Assume));
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Assume });
    let read = async {
        let credentials = inner
            .broker
            .bootstrap(&env.ctx, account, target.joined_at, &env.session)
            .await
            .map_err(|e| error_from(&e, Phase::Assume))?;
        env.sink.emit(account, Event::PhaseStarted { phase: Phase::Read });
        let read = |credentials| {
            let iam = AccountIam {
                iam: inner.aws.iam(credentials),
                account: account.to_string(),
                calls: &inner.calls,
                ctx: &env.ctx,
            };
            async move { iam.role_details().await }
        };
        match read(&credentials).await {
            Ok(roles) => Ok(roles),
            // Credentials cached from before the bootstrap role was replaced are denied everything: assume afresh.
            Err(e) if inner.broker.stale(account, &e) => {
                let credentials = inner
                    .broker
                    .bootstrap(&env.ctx, account, target.joined_at, &env.session)
                    .await
                    .map_err(|e| error_from(&e, Phase::Assume))?;
                read(&credentials).await.map_err(|e| error_from(&e, Phase::Read))
            }
            Err(e) => Err(error_from(&e, Phase::Read)),
        }
    };
    let mut result = target.result(Outcome::Unchanged, Phase::Done);
    result.end_time = Some(crate::now_ms());
    match read.await {
        Ok(details) => {
            let roles: Vec<InventoryRole> = {
                let expected =
                    env.expected.for_account(inner.aws.partition(), &target.account_id, &target.account_name);
                let mut context = env.context.lock().unwrap_or_else(|e| e.into_inner());
                context.expected = expected;
                details.iter().map(|d| classify(d, &context)).collect()
            };
            env.sink.inventory_account(&result, &roles);
        }
        Err(error) => {
            result.outcome = Outcome::Failed;
            result.error = Some(error);
            env.sink.account(&result);
        }
    }
    if let Ok(mut m) = inner.metrics.lock() {
        *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
    }
    env.sink.emit(account, Event::AccountFinished { result: Box::new(result) });
}

/// Now, Unix seconds.
fn now_secs() -> i64 {
    crate::now_ms() / 1000
}
