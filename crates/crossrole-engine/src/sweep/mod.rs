//! Operations that visit accounts of the organization once each — the inventory and `crossrole revoke` — on one
//! skeleton: written to the journal before they start, a row per account, progress in events, cancellable,
//! resumed after a restart (only the accounts without a final row are visited again).
//!
//! Each account costs an `AssumeRole` of the bootstrap role (STS's quota, the calling account's: shared by every
//! account) and then a call or two to its own IAM (each account's own quota). The accounts are found as the
//! organization's pages list them ([`finding`]): where crossroled must read the organization first, an account is
//! assumed into as soon as its page is listed, not once the whole organization is read, so the walk overlaps the
//! STS bucket instead of preceding it. A visit that needs the whole organization to judge what it reads (the
//! inventory: is a trusted account inside or outside it?) holds its credentials, not what it read, until the
//! organization is read to its end, then reads: what is held while the walk goes on is a session per account,
//! never the accounts' roles.
//!
//! Two bounds, not one: at most [`CONCURRENCY`] accounts assuming at once, and at most as many visiting (reading or
//! writing their IAM) at once; an account waiting for the organization holds neither. The call layer's buckets,
//! not these, set the pace.

mod finding;

use std::{
    collections::BTreeSet,
    future::Future,
    sync::{Arc, OnceLock},
};

use crossrole_aws::{api::Credentials, calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    ops::{AccountError, AccountResult, ErrorCode, Event, OperationState, Outcome, Phase},
    org::OrgTree,
};
use crossrole_store::OperationRow;
use futures::{StreamExt, stream::FuturesUnordered};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Inner, account::error_from, events::EventSink, rollout};

/// Accounts assuming at once, and accounts visiting at once, at most.
pub(crate) const CONCURRENCY: usize = 64;

/// One account to visit.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) index: u32,
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    pub(crate) joined_at: Option<u64>,
}

impl Target {
    /// The account's result as `outcome` in `phase`, nothing else said.
    pub(crate) fn result(&self, outcome: Outcome, phase: Phase) -> AccountResult {
        AccountResult::new(&self.account_id, &self.account_name, self.index, outcome, phase)
    }
}

/// What one kind of organization-wide operation does in an account.
pub(crate) trait Visit: Send + Sync + Sized + 'static {
    /// What a visit found or did, for [`Visit::record`].
    type Done: Send;
    /// The operation's kind, in spans and metrics (`inventory`, `revoke`).
    const KIND: &'static str;
    /// The operation's name in words, in messages ("the inventory", "the revocation").
    const NAME: &'static str;
    /// What a failed account could not be, in the final message ("read", "revoked").
    const FAILED: &'static str;
    /// Whether a visit reads only once the organization is read to its end (see the module's documentation).
    const NEEDS_ORGANIZATION: bool;

    /// The accounts this run is about (numbered before any is found, each put on record as the pages list it), or
    /// `None`: every ACTIVE account of the organization, numbered and put on record as the pages list them.
    fn accounts(&self) -> Option<&BTreeSet<String>>;

    /// Why `account`, one of [`Visit::accounts`], is not visited whatever the organization says (skipped).
    fn refused(&self, account: &str) -> Option<(ErrorCode, String)>;

    /// The organization, read to its end: called once, before any visit that needs it.
    fn organization(&self, tree: &OrgTree);

    /// The result an account starts with (the role it is about, if any).
    fn started(&self, inner: &Inner, target: &Target) -> AccountResult {
        let _ = inner;
        target.result(Outcome::Running, Phase::Assume)
    }

    /// Reads or writes `iam`, the account's IAM as its bootstrap role; the error comes with its phase.
    fn visit<'a>(
        &'a self,
        sweep: &'a Sweep<Self>,
        target: &'a Target,
        iam: &'a AccountIam<'a>,
    ) -> impl Future<Output = Result<Self::Done, (crossrole_aws::Error, Phase)>> + Send + 'a;

    /// Why a visit failed, for the account's result.
    fn failed(&self, error: &crossrole_aws::Error, phase: Phase) -> AccountError {
        error_from(error, phase)
    }

    /// Puts a visited account's result (`Done` with the outcome's phase) on record.
    fn record(&self, sweep: &Sweep<Self>, result: &mut AccountResult, done: Self::Done);

    /// How the operation ends when every account was visited and `failed` of them failed.
    fn ending(failed: u32) -> (OperationState, String);
}

/// What the accounts of one run share.
pub(crate) struct Sweep<V> {
    pub(crate) inner: Arc<Inner>,
    pub(crate) ctx: CallContext,
    pub(crate) sink: EventSink,
    /// The operation's id.
    pub(crate) operation: String,
    /// Set when nothing new may start (cancel, shutdown, the organization unreadable).
    pub(crate) stop: CancellationToken,
    pub(crate) visit: V,
    session: String,
    /// The organization once read to its end (for visits that need it).
    organization: watch::Receiver<Option<Arc<OrgTree>>>,
    assuming: Semaphore,
    visiting: Semaphore,
    /// Why the organization could not be read, when it could not.
    unreadable: OnceLock<String>,
}

/// Runs (or resumes) operation `op` to its end; a shutdown leaves it unfinished, to be resumed. `visit` is `Err`
/// when what it needs could not be read: the operation fails, saying why, having done nothing.
pub(crate) async fn run<V: Visit>(
    inner: Arc<Inner>,
    op: OperationRow,
    visit: Result<V, String>,
    cancel: CancellationToken,
    sink: EventSink,
    span: tracing::Span,
) {
    let began = std::time::Instant::now();
    async move {
        let visit = match visit {
            Ok(visit) => visit,
            Err(message) => {
                rollout::started(&inner, &op, &cancel, &sink).await;
                let ending = Some((OperationState::Failed, message));
                return rollout::ended(&inner, &op.id, V::KIND, &sink, began, ending).await;
            }
        };
        let stop = rollout::Stop::on_shutdown(&inner, &cancel);
        let ending = drive(&inner, &op, visit, &cancel, &stop.token, &sink).await;
        drop(stop);
        rollout::ended(&inner, &op.id, V::KIND, &sink, began, ending).await
    }
    .instrument(span)
    .await
}

async fn drive<V: Visit>(
    inner: &Arc<Inner>,
    op: &OperationRow,
    visit: V,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    sink: &EventSink,
) -> Option<(OperationState, String)> {
    let ctx = CallContext {
        stats: inner.running_stats(&op.id),
        observer: Some(Arc::new(rollout::RetryEvents(sink.clone()))),
    };
    rollout::started(inner, op, cancel, sink).await;
    let (organization_tx, organization) = watch::channel(None);
    let sweep = Arc::new(Sweep {
        inner: inner.clone(),
        ctx: ctx.clone(),
        sink: sink.clone(),
        operation: op.id.clone(),
        stop: stop.clone(),
        visit,
        session: format!("crossrole-{}", op.id),
        organization,
        assuming: Semaphore::new(CONCURRENCY),
        visiting: Semaphore::new(CONCURRENCY),
        unreadable: OnceLock::new(),
    });
    let mut finder = match finding::Finder::open(&sweep, op).await {
        Ok(finder) => finder,
        Err(e) => return Some((OperationState::Failed, format!("cannot read the operation's accounts: {e}"))),
    };
    let mut running = FuturesUnordered::new();
    let start = |target: Target, running: &mut FuturesUnordered<_>| {
        let sweep = sweep.clone();
        let span = tracing::info_span!("account", id = %target.account_id);
        running.push(tokio::spawn(async move { account(&sweep, target).await }.instrument(span)));
    };
    let mut organization_tx = Some(organization_tx);
    loop {
        if !finder.finding() && running.is_empty() {
            break;
        }
        tokio::select! {
            arrival = finder.arrival(), if finder.finding() => {
                match finder.take(&sweep, arrival).await {
                    Ok(found) => {
                        for target in found {
                            start(target, &mut running);
                        }
                    }
                    Err(e) => {
                        let _ = sweep.unreadable.set(e);
                        stop.cancel();
                        for target in finder.stop() {
                            start(target, &mut running);
                        }
                    }
                }
                if let (false, Some(tree)) = (finder.finding(), finder.tree()) {
                    sweep.visit.organization(&tree);
                    if let Some(tx) = organization_tx.take() {
                        let _ = tx.send(Some(tree));
                    }
                }
            }
            Some(finished) = running.next() => {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "account task panicked");
                }
            }
            _ = stop.cancelled(), if finder.finding() => {
                // What is on record and not handed out is said not started (unless this is a shutdown).
                for target in finder.stop() {
                    start(target, &mut running);
                }
            }
        }
    }
    if !cancel.is_cancelled() && inner.shutdown.is_cancelled() {
        return None;
    }
    sink.flush().await;
    if cancel.is_cancelled() {
        return Some((OperationState::Cancelled, "cancelled".into()));
    }
    if let Some(why) = sweep.unreadable.get() {
        let what = match rollout::counts(inner, &op.id).await.not_started {
            0 => String::new(),
            n => format!("; {} not visited", rollout::accounts(n as usize)),
        };
        return Some((OperationState::Failed, format!("cannot read the organization: {why}{what}")));
    }
    let failed = rollout::counts(inner, &op.id).await.failed;
    Some(V::ending(failed))
}

/// Visits one account: assumes into it (one of [`CONCURRENCY`] at a time), waits for the organization if the
/// visit needs it, then visits (one of [`CONCURRENCY`] at a time); its result on record. An account whose turn comes
/// after a stop is not started, and says so.
async fn account<V: Visit>(sweep: &Sweep<V>, target: Target) {
    let inner = &sweep.inner;
    let account = target.account_id.as_str();
    let not_started = || {
        let mut r = target.result(Outcome::NotStarted, Phase::Done);
        let why = match sweep.unreadable.get() {
            Some(_) => format!("not started: {} could not read the organization", V::NAME),
            None => format!("not started: {} was cancelled", V::NAME),
        };
        r.error = Some(AccountError::new(ErrorCode::NotStarted, why, Phase::Queued));
        sweep.sink.account(&r);
    };
    let assuming = tokio::select! {
        biased;
        _ = sweep.stop.cancelled() => None,
        permit = sweep.assuming.acquire() => permit.ok(),
    };
    let Some(assuming) = assuming.filter(|_| sweep.sink.healthy()) else {
        if !inner.shutdown.is_cancelled() {
            not_started();
        }
        return;
    };
    let mut result = sweep.visit.started(inner, &target);
    sweep.sink.account(&result);
    sweep.sink.emit(account, Event::PhaseStarted { phase: Phase::Assume });
    let assume = || async {
        inner
            .broker
            .bootstrap(&sweep.ctx, account, target.joined_at, &sweep.session)
            .await
            .map_err(|e| error_from(&e, Phase::Assume))
    };
    let credentials = assume().await;
    drop(assuming);
    let outcome = match credentials {
        Err(error) => Err(error),
        Ok(credentials) => {
            if V::NEEDS_ORGANIZATION && !sweep.organization_read().await {
                // Stopped while the organization was read: assumed into, but nothing read.
                if !inner.shutdown.is_cancelled() {
                    not_started();
                }
                return;
            }
            let Ok(_visiting) = sweep.visiting.acquire().await else { return };
            sweep.visited(&target, &credentials, assume).await
        }
    };
    result.phase = Phase::Done;
    result.end_time = Some(crate::now_ms());
    match outcome {
        Ok(done) => sweep.visit.record(sweep, &mut result, done),
        Err(error) => {
            result.outcome = Outcome::Failed;
            result.error = Some(error);
            sweep.sink.account(&result);
        }
    }
    if let Ok(mut m) = inner.metrics.lock() {
        *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
    }
    sweep.sink.emit(account, Event::AccountFinished { result: Box::new(result) });
}

impl<V: Visit> Sweep<V> {
    /// Waits until the organization is read to its end; `false` when the run stopped first.
    async fn organization_read(&self) -> bool {
        let mut organization = self.organization.clone();
        tokio::select! {
            biased;
            read = organization.wait_for(Option::is_some) => read.is_ok(),
            _ = self.stop.cancelled() => false,
        }
    }

    /// The visit with `credentials`; credentials cached from before the bootstrap role was replaced are denied
    /// everything, so a denial assumes afresh (`assume`) and visits once more.
    async fn visited<F, Fut>(
        &self,
        target: &Target,
        credentials: &Credentials,
        assume: F,
    ) -> Result<V::Done, AccountError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credentials, AccountError>>,
    {
        let inner = &self.inner;
        let account = target.account_id.as_str();
        let iam = |credentials| AccountIam {
            iam: inner.aws.iam(credentials),
            account: account.to_string(),
            calls: &inner.calls,
            ctx: &self.ctx,
        };
        match self.visit.visit(self, target, &iam(credentials)).await {
            Ok(done) => Ok(done),
            Err((e, _)) if inner.broker.stale(account, &e) => {
                let credentials = assume().await?;
                self.visit
                    .visit(self, target, &iam(&credentials))
                    .await
                    .map_err(|(e, phase)| self.visit.failed(&e, phase))
            }
            Err((e, phase)) => Err(self.visit.failed(&e, phase)),
        }
    }
}
