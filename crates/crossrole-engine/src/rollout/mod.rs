//! Running an operation: resolve the targets (once, then persisted), fan out over the accounts with bounded
//! concurrency and failure tolerance, bring the trusted side in line with what the accounts reached, and finish.
//!
//! An apply or a reconcile does not wait for its targets to be resolved before it starts: the accounts the
//! selection is sure of come as the organization's pages list them (`targets::resolve` with a
//! [`crossrole_aws::discovery::Found`]), each gets its row and starts, and the rest (accounts to clean up, skipped
//! ones, any the pages did not settle) are recorded when the selection is complete, with `TargetsResolved`. Listing
//! 10,000 accounts takes about 50 s at Organizations' rate; the accounts found first work meanwhile. Until the
//! targets are all known, limits that are percentages are of the accounts the last read of the organization
//! selected, or of those found so far if more. A run stopped before its targets were all known finds the rest when
//! it resumes; the accounts it has keep their rows.
//!
//! Order matters for access. An apply works the roles first and then writes the grant from the per-account outcome
//! it reached ([`targets::grant_accounts`]): the grant never names a role crossrole does not own, a role that was
//! not made, or an account that is not ACTIVE — also when the operation resumes after a crash, because the outcome
//! is read back from the journal. A destroy cuts access first: the grant goes, then the roles; if the grant cannot
//! be removed, no role is touched and every account says why.
//!
//! A restarted crossroled resumes an unfinished operation from its persisted targets: accounts with a final
//! outcome are kept, the others run again (reconcile is idempotent, so re-running an account is safe). An account
//! the interrupted run left part-way through its changes that the run then does not resume (cancelled first, say)
//! keeps them on record: it failed part-way, and where its role is there, the spec's placement says so.
//!
//! A binding's operations take turns ([`turn`]): one starts its work once the binding's earlier ones have ended.

pub(crate) mod former;
mod grant;
pub(crate) mod source;
mod turn;

use std::{
    collections::{BTreeSet, VecDeque},
    sync::Arc,
};

use crossrole_aws::calls::CallContext;
use crossrole_core::{
    AccessSpec,
    ceiling::Organization,
    ops::{AccountError, AccountResult, Counts, ErrorCode, Event, OperationKind, OperationState, Outcome, Phase},
    plan::DesiredRole,
    spec::TrustedGrant,
};
use crossrole_store::{OperationRow, StateChange};
use futures::{StreamExt, stream::FuturesUnordered};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub(crate) use grant::{cut_revoke, grant_plan};
use source::{Arrival, TargetSource};
pub(crate) use source::{Taken, TargetFinder};

use crate::{
    Inner,
    account::{self, RunEnv, Target},
    confirmed::{self, Fingerprint},
    events::EventSink,
    pace::Pace,
    records, targets,
};

/// How a run ended.
struct Ending {
    state: OperationState,
    message: String,
}

impl Ending {
    fn failed(message: impl Into<String>) -> Option<Ending> {
        Some(Ending { state: OperationState::Failed, message: message.into() })
    }

    fn done() -> Ending {
        Ending { state: OperationState::Succeeded, message: String::new() }
    }
}

/// Runs (or resumes) an operation to its end. `cancel` is the user's cancel; `inner.shutdown` stops the run
/// without finishing it, so that the next start resumes it.
pub(crate) async fn run(
    inner: Arc<Inner>,
    op: OperationRow,
    spec: AccessSpec,
    cancel: CancellationToken,
    sink: EventSink,
    resolved: Option<targets::Resolved>,
) {
    let kind = records::kind_of(op.kind)
        .map(|k| k.as_str().to_string())
        .unwrap_or_else(|| format!("unknown({})", op.kind.code()));
    let kind_name = records::kind_of(op.kind).map_or("unknown", |k| k.as_str());
    let began = std::time::Instant::now();
    let span = tracing::info_span!("operation", id = %op.id, kind, spec = %spec.name, trace_id = tracing::field::Empty);
    if let Some(trace_id) = inner.config.trace_id.and_then(|of| of(&span)) {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    async move {
        let stop = Stop::on_shutdown(&inner, &cancel);
        let ending = drive(&inner, &op, spec, &cancel, &stop.token, &sink, resolved).await;
        drop(stop);
        ended(&inner, &op.id, kind_name, &sink, began, ending.map(|e| (e.state, e.message))).await
    }
    .instrument(span)
    .await
}

/// A token that stops an operation on a cancel (also one asked before it started) or a shutdown; dropped, it
/// stops watching for the shutdown.
pub(crate) struct Stop {
    pub(crate) token: CancellationToken,
    watching: tokio::task::JoinHandle<()>,
}

impl Stop {
    /// Watches `inner`'s shutdown for an operation that `cancel` cancels.
    pub(crate) fn on_shutdown(inner: &Inner, cancel: &CancellationToken) -> Stop {
        let token = cancel.child_token();
        let (stop, shutdown) = (token.clone(), inner.shutdown.clone());
        let watching = tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.cancel();
        });
        Stop { token, watching }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.watching.abort();
    }
}

/// Puts an operation's end (`None`: stopped for shutdown, left to be resumed) on record: its state, message and
/// counts, and `kind`'s metrics.
pub(crate) async fn ended(
    inner: &Inner,
    op: &str,
    kind: &'static str,
    sink: &EventSink,
    began: std::time::Instant,
    ending: Option<(OperationState, String)>,
) {
    match ending {
        None => tracing::info!("stopped for shutdown; it resumes at the next start"),
        Some((state, message)) => {
            sink.flush().await;
            let counts = counts(inner, op).await;
            sink.finish(state, &message, counts);
            sink.flush().await;
            if let Ok(mut m) = inner.metrics.lock() {
                m.finished(kind, state.as_str(), began.elapsed().as_secs_f64());
            }
            tracing::info!(state = state.as_str(), message, "operation finished");
        }
    }
    sink.flush().await;
}

pub(crate) async fn counts(inner: &Inner, op: &str) -> Counts {
    let stored = inner.journal.count_accounts(op).await.unwrap_or_default();
    let by_outcome = stored.into_iter().filter_map(|(outcome, n)| Some((records::outcome_of(outcome)?, n))).collect();
    Counts::from_outcomes(&by_outcome)
}

/// "1 account", "2 accounts".
pub(crate) fn accounts(n: usize) -> String {
    if n == 1 { "1 account".into() } else { format!("{n} accounts") }
}

/// The run of one operation, from its start to its ending (`None`: stopped for shutdown, to be resumed). Each
/// phase is short and named: the checks before anything is done, the targets, the trusted side first for a
/// destroy, the accounts ([`Rollout`]), and the ending.
async fn drive(
    inner: &Arc<Inner>,
    op: &OperationRow,
    spec: AccessSpec,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    sink: &EventSink,
    resolved: Option<targets::Resolved>,
) -> Option<Ending> {
    let ctx = CallContext { stats: inner.running_stats(&op.id), observer: Some(Arc::new(RetryEvents(sink.clone()))) };
    started(inner, op, cancel, sink).await;
    // An operation of a kind this crossroled does not know does nothing, rather than something it was not asked.
    let Some(kind) = records::kind_of(op.kind) else {
        return Ending::failed(format!("unknown operation kind {}; nothing was done", op.kind.code()));
    };
    match turn::take(inner, op, kind, cancel, stop, sink).await {
        turn::Turn::Go => {}
        turn::Turn::Stopped => return None,
        turn::Turn::End(ending) => return Some(ending),
    }
    if let Err(message) = still_under_ceiling(inner, &spec, kind, &ctx).await {
        return Ending::failed(message);
    }
    let spec = Arc::new(spec);
    let scope = records::operation_scope(&op.spec);
    // The plan the apply carries, if it carries one: its targets are checked before any account starts, and each
    // account as it is read.
    let confirmed = match records::operation_confirmed_plan(&op.spec) {
        None => None,
        Some(text) => match Fingerprint::decode(&confirmed::key(&inner.config.journal_key), &text) {
            Ok(plan) => Some(Arc::new(plan)),
            Err(e) => return Ending::failed(format!("the confirmed plan cannot be read ({e}); nothing was done")),
        },
    };
    // The spec's ExternalId is taken as the confirmed plan took it (the request's, checked to be the plan's when
    // it started), else as the request asked.
    let external_ids =
        confirmed.as_deref().map_or_else(|| records::operation_external_ids(&op.spec), |p| p.external_ids);
    let confirming = confirmed.as_deref().map(|plan| (plan, resolved));
    let opened = TargetSource::open(inner, op, &spec, kind, scope.as_ref(), &ctx, sink, confirming);
    let (targets, pending) = match opened.await {
        Ok(opened) => opened,
        Err(message) => return Ending::failed(message),
    };
    let grant = spec.grant.as_ref().filter(|_| !op.dry_run);

    let env = Arc::new(RunEnv {
        inner: inner.clone(),
        spec: spec.clone(),
        desired: Arc::new(DesiredRole::from_spec(&spec, inner.aws.partition())),
        ctx: ctx.clone(),
        session: format!("crossrole-{}", op.id),
        stop: stop.clone(),
        sink: Some(sink.clone()),
        write: !op.dry_run,
        verifier: Default::default(),
        redactor: inner.redactor.clone(),
        external_ids,
        operation: op.id.clone(),
        confirmed,
    });

    // A destroy cuts access first — its grant, and any grant the spec had before (a former one) — if it cannot, no
    // role is touched.
    let removed = match kind {
        OperationKind::Destroy if !op.dry_run => match former::places(inner, &spec).await.map_err(former_unread) {
            Ok(former) if grant.is_none() && former.is_empty() => Ok(None),
            Ok(former) => {
                let release = records::operation_release(&op.spec);
                let want = grant::Want::Removed;
                grant::trusted_side(inner, &spec, grant, &former, &release, want, &ctx, &op.id, sink).await
            }
            Err(message) => Err(message),
        },
        _ => Ok(None),
    };
    if let Err(message) = removed {
        let why = format!("the trusted side's policy could not be removed first: {message}");
        let (part_way, never): (Vec<Target>, Vec<Target>) = pending.into_iter().partition(Target::part_way);
        not_started(sink, &never, &format!("not started: {why}"));
        left_part_way(&env, &part_way, &why, false).await;
        sink.flush().await;
        return Ending::failed(format!("trusted side: {message}; no role was touched"));
    }
    let mut rollout = Rollout::new(env, targets, pending, count_failures(inner, &op.id).await).await;
    loop {
        match rollout.step().await {
            Step::Continue => {}
            Step::Done => break,
            Step::End(ending) => return Some(ending),
        }
    }
    if inner.shutdown.is_cancelled() && !cancel.is_cancelled() {
        return None;
    }
    let ending = rollout.finish(op, kind, scope.as_ref(), cancel, grant).await;
    // Stopped part-way through the ending (the fence passed while the grant was written): not an ending.
    (!inner.shutdown.is_cancelled() || cancel.is_cancelled()).then_some(ending)
}

/// Why the spec's former grants are not known.
fn former_unread(e: crate::Error) -> String {
    format!("the spec's earlier operations, which say where its former grants are, cannot be read: {e}")
}

/// Marks the operation RUNNING — only from the state it was read in, so never over a cancel asked meanwhile (on
/// any replica), which it then follows.
pub(crate) async fn started(inner: &Inner, op: &OperationRow, cancel: &CancellationToken, sink: &EventSink) {
    let (running, cancelling) =
        (records::stored_state(OperationState::Running), records::stored_state(OperationState::Cancelling));
    if op.state == running || op.state == cancelling {
        return;
    }
    let start = StateChange::new(&[op.state], running, "").started(crate::now_ms());
    match inner.journal.change_state(&op.id, start).await {
        Ok(true) => {
            sink.emit("", Event::StateChanged { state: OperationState::Running, message: String::new(), counts: None })
        }
        Ok(false) => {
            if let Ok(Some(now)) = inner.journal.get_operation(&op.id).await
                && now.state == cancelling
            {
                tracing::info!("a cancel was asked before it started");
                cancel.cancel();
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot mark the operation running"),
    }
}

/// The ceiling may have been lowered since the operation started (it resumes after a restart): what grants
/// access is checked again; a destroy only takes access away.
async fn still_under_ceiling(
    inner: &Inner,
    spec: &AccessSpec,
    kind: OperationKind,
    ctx: &CallContext,
) -> Result<(), String> {
    if kind == OperationKind::Destroy || inner.config.ceiling.is_empty() {
        return Ok(());
    }
    let org = inner.discovery.tree(ctx, false).await.map_err(|e| format!("cannot read the organization: {e}"))?;
    let members = org.account_ids();
    let organization = Organization { id: Some(&org.organization.id), accounts: Some(&members) };
    inner
        .config
        .ceiling
        .check(spec, organization)
        .map_err(|e| format!("the organization's ceiling refuses the spec; nothing was done: {e}"))
}

/// What one [`Rollout::step`] came to.
enum Step {
    /// More to do.
    Continue,
    /// Every account is done, or nothing more may start.
    Done,
    /// The run ends now, with this (nothing was found, so nothing was done).
    End(Ending),
}

/// An account's run: its result and how long it took.
type AccountRun = tokio::task::JoinHandle<(AccountResult, std::time::Duration)>;

/// The fan-out over an operation's accounts: its queue, its pace (how many at once), its failure tolerance and
/// its targets, which may still be arriving. [`Rollout::step`] starts what fits and waits for one thing to happen.
struct Rollout {
    env: Arc<RunEnv>,
    targets: TargetSource,
    queue: VecDeque<Target>,
    running: FuturesUnordered<AccountRun>,
    pace: Pace,
    /// Accounts allowed in flight now (the semaphore's permits).
    permits: usize,
    semaphore: Arc<Semaphore>,
    /// Before targets are all known, limits that are percentages are of this many (the last read's selection).
    expected: usize,
    tolerance: usize,
    failures: usize,
    /// No new account starts: the failure tolerance was exceeded, or the targets could not all be found.
    halted: bool,
    /// Why the targets could not all be found.
    resolve_error: Option<String>,
}

impl Rollout {
    async fn new(env: Arc<RunEnv>, targets: TargetSource, pending: Vec<Target>, failures: usize) -> Rollout {
        let inner = &env.inner;
        let spec = &env.spec;
        // While targets are still being found, limits that are percentages are of the accounts the tree read
        // before selected, or of those found so far if that is more.
        let expected = if targets.selecting() { targets::expected(inner, spec).await.unwrap_or(0) } else { 0 };
        let known = if targets.selecting() { targets.known().max(expected) } else { targets.known() };
        let pace =
            Pace::new(spec.rollout.max_concurrency, known, inner.config.max_concurrency, inner.calls.shared_rates());
        let permits = pace.concurrency();
        Rollout {
            tolerance: spec.rollout.failure_tolerance.of(known),
            semaphore: Arc::new(Semaphore::new(permits)),
            queue: pending.into(),
            running: FuturesUnordered::new(),
            pace,
            permits,
            expected,
            failures,
            halted: failures > spec.rollout.failure_tolerance.of(known),
            resolve_error: None,
            env,
            targets,
        }
    }

    /// Targets known, for limits that are percentages.
    fn known(&self) -> usize {
        if self.targets.selecting() { self.targets.known().max(self.expected) } else { self.targets.known() }
    }

    /// Starts what fits, then waits for one thing: accounts found, the selection complete, an account finished, or
    /// a stop while only the selection is left.
    async fn step(&mut self) -> Step {
        self.start_accounts();
        let stop = self.env.stop.clone();
        // A cancel or shutdown stops the finding too; a halt lets it end, so that every target is on record.
        if stop.is_cancelled() {
            self.targets.stop();
        }
        let selecting = self.targets.selecting();
        if self.running.is_empty() && !selecting {
            if !self.halted && !stop.is_cancelled() && !self.queue.is_empty() {
                // The journal refuses writes: wait for it before starting more.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                return Step::Continue;
            }
            return Step::Done;
        }
        tokio::select! {
            arrival = self.targets.arrival(), if selecting => {
                if let Some(ending) = self.arrived(arrival).await {
                    return Step::End(ending);
                }
            }
            Some(finished) = self.running.next(), if !self.running.is_empty() => self.finished(finished),
            _ = stop.cancelled(), if selecting && self.running.is_empty() => {}
        }
        // More targets known: limits that are percentages follow.
        let known = self.known();
        self.tolerance = self.env.spec.rollout.failure_tolerance.of(known);
        let wanted = self.pace.targets(known);
        self.grow(wanted);
        self.halted |= self.resolve_error.is_some();
        Step::Continue
    }

    /// Starts accounts while there is room and nothing says stop (a journal that refuses writes says wait).
    fn start_accounts(&mut self) {
        let healthy = || self.env.sink.as_ref().is_none_or(|s| s.healthy());
        while !self.halted && !self.env.stop.is_cancelled() && healthy() && !self.queue.is_empty() {
            let Ok(permit) = self.semaphore.clone().try_acquire_owned() else { break };
            let Some(target) = self.queue.pop_front() else { break };
            self.running.push(spawn_account(self.env.clone(), target, permit));
        }
    }

    /// Records what the selection brought and queues its targets; `Some` ends the run when nothing at all could be
    /// found (nothing was done, as if the targets had been resolved first).
    async fn arrived(&mut self, arrival: Arrival) -> Option<Ending> {
        let sink = self.env.sink.clone()?;
        match self.targets.take(arrival, &sink).await {
            Ok(more) => self.queue.extend(more),
            Err(message) if self.targets.known() == 0 && self.running.is_empty() && self.failures == 0 => {
                return Ending::failed(message);
            }
            Err(message) => {
                self.targets.stop();
                self.resolve_error = Some(message);
            }
        }
        None
    }

    /// An account finished: the pace follows the time it took, a failure counts against the tolerance.
    fn finished(&mut self, finished: Result<(AccountResult, std::time::Duration), tokio::task::JoinError>) {
        let failed = match finished {
            Ok((result, took)) => {
                // Automatic concurrency follows the time accounts take; it only grows within a run.
                let wanted = self.pace.observe(took);
                self.grow(wanted);
                if let (true, Ok(mut m)) = (result.outcome.is_final(), self.env.inner.metrics.lock()) {
                    *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
                }
                result.outcome == Outcome::Failed
            }
            Err(e) => {
                tracing::error!(error = %e, "account task panicked");
                true
            }
        };
        if failed {
            self.failures += 1;
            self.halted |= self.failures > self.tolerance;
        }
    }

    /// More accounts at once, when the pace wants more than there are.
    fn grow(&mut self, wanted: usize) {
        if wanted > self.permits {
            self.semaphore.add_permits(wanted - self.permits);
            self.permits = wanted;
        }
    }

    /// The ending: what never started is recorded with the reason (an account an interrupted run left part-way
    /// keeps what it did), then (an apply or a reconcile) the grant from what the accounts reached, then the state
    /// and message.
    async fn finish(
        self,
        op: &OperationRow,
        kind: OperationKind,
        scope: Option<&BTreeSet<String>>,
        cancel: &CancellationToken,
        grant: Option<&TrustedGrant>,
    ) -> Ending {
        let inner = &self.env.inner;
        let Some(sink) = self.env.sink.clone() else { return Ending::done() };
        let (part_way, never): (Vec<Target>, Vec<Target>) = self.queue.into_iter().partition(Target::part_way);
        let why = if cancel.is_cancelled() {
            "the operation was cancelled".to_string()
        } else if let Some(message) = &self.resolve_error {
            format!("the operation's targets could not all be found: {message}")
        } else {
            format!("the failure tolerance ({}) was exceeded", self.tolerance)
        };
        not_started(&sink, &never, &format!("not started: {why}"));
        left_part_way(&self.env, &part_way, &why, cancel.is_cancelled()).await;
        let failures = self.failures + part_way.len();
        sink.flush().await;
        if cancel.is_cancelled() {
            return Ending { state: OperationState::Cancelled, message: "cancelled".into() };
        }
        let spec = &self.env.spec;
        let mut trusted_error = None;
        // The grants the spec had before and no longer has (its `grant` removed, or moved) are cut with it.
        let former = match kind {
            OperationKind::Apply | OperationKind::Reconcile if !op.dry_run => {
                former::places(inner, spec).await.map_err(former_unread)
            }
            _ => Ok(Default::default()),
        };
        let former = match former {
            Ok(former) => former,
            Err(message) => return Ending { state: OperationState::Failed, message },
        };
        if matches!(kind, OperationKind::Apply | OperationKind::Reconcile) && (grant.is_some() || !former.is_empty()) {
            let reached = match grant::reached(inner, op, spec, scope, &self.env.ctx).await {
                Ok(e) => e,
                Err(message) => return Ending { state: OperationState::Failed, message },
            };
            let confirmed = self.env.confirmed.as_deref();
            let want = grant::Want::Naming { reached: &reached, confirmed };
            let release = records::operation_release(&op.spec);
            match grant::trusted_side(inner, spec, grant, &former, &release, want, &self.env.ctx, &op.id, &sink).await {
                Err(message) => trusted_error = Some(format!("trusted side: {message}")),
                Ok(Some(cut)) => {
                    if let Err(message) = revoke_for_the_cut(inner, op, spec, &cut, &sink).await {
                        trusted_error = Some(message);
                    }
                }
                Ok(None) => {}
            }
        }
        let mut problems: Vec<String> = Vec::new();
        if let Some(message) = self.resolve_error {
            problems.push(format!(
                "its targets could not all be found: {message}; {} worked on, {} not started",
                accounts(self.targets.known().saturating_sub(never.len())),
                accounts(never.len())
            ));
        } else if self.halted {
            problems.push(format!(
                "failure tolerance ({}) exceeded: {} failed, {} not started",
                self.tolerance,
                accounts(failures),
                never.len()
            ));
        } else if failures > 0 {
            problems.push(format!("{} failed", accounts(failures)));
        }
        problems.extend(trusted_error);
        if problems.is_empty() {
            Ending::done()
        } else {
            Ending { state: OperationState::Failed, message: problems.join("; ") }
        }
    }
}

/// After the grant was cut from principals, their sessions of the spec's roles are revoked where the plan showed
/// (`cut`'s accounts: [`crossrole_core::grant::cut::sessions_in`]) — every session of those roles issued before
/// now — by a revocation operation ([`crate::revoke`]) started now (one per operation: keyed by its id), unless the
/// spec keeps sessions; the operation's events say which, in the words the plan used. It runs after the grant is
/// cut, so a principal removed cannot assume the role again in between.
async fn revoke_for_the_cut(
    inner: &Arc<Inner>,
    op: &OperationRow,
    spec: &AccessSpec,
    cut: &crossrole_core::grant::cut::GrantCut,
    sink: &EventSink,
) -> Result<(), String> {
    let mut change = cut.shown();
    if !cut.revokes() {
        sink.emit("", Event::ChangeApplied { change });
        return Ok(());
    }
    let engine = crate::Engine { inner: inner.clone() };
    let request = crate::RevokeRequest {
        spec: spec.clone(),
        accounts: Some(cut.accounts.clone()),
        idempotency_key: Some(format!("revoke-after-{}", op.id)),
        created_by: format!("operation {}", op.id),
    };
    match engine.start_revoke(request).await {
        Ok(revoke) => {
            change.after.push_str(&format!(" (operation {})", revoke.id));
            sink.emit("", Event::ChangeApplied { change });
            Ok(())
        }
        Err(e) => Err(format!(
            "the grant's policy was detached from {}, and the sessions could not be revoked: {e}",
            cut.principals.join(", ")
        )),
    }
}

/// Runs one account in its own task, holding `permit` and the (account, role) lock for the whole of it.
fn spawn_account(env: Arc<RunEnv>, target: Target, permit: tokio::sync::OwnedSemaphorePermit) -> AccountRun {
    let span = tracing::info_span!("account", id = %target.account_id);
    tokio::spawn(
        async move {
            let _permit = permit;
            let started = tokio::time::Instant::now();
            let result = {
                let _guard = env.inner.locks.lock(&target.account_id, &env.desired.name, &env.session).await;
                if let Some(s) = &env.sink {
                    // A resumed account keeps the changes on record until its run replaces them.
                    let mut running = target.result(Outcome::Running, Phase::Queued);
                    running.changes = target.prior.as_ref().map(|p| p.changes.clone()).unwrap_or_default();
                    s.account(&running);
                }
                account::run(&env, &target).await
            };
            if let Some(s) = &env.sink {
                s.account(&result);
                // An account stopped by a shutdown is not finished: it resumes at the next start.
                if result.outcome.is_final() {
                    s.emit(&result.account_id, Event::AccountFinished { result: Box::new(result.clone()) });
                }
            }
            (result, started.elapsed())
        }
        .instrument(span),
    )
}

/// Records `targets` as not started, with `why`.
fn not_started(sink: &EventSink, targets: &[Target], why: &str) {
    for t in targets {
        let mut r = t.result(Outcome::NotStarted, Phase::Done);
        r.error = Some(AccountError::new(ErrorCode::NotStarted, why, Phase::Queued));
        sink.account(&r);
    }
}

/// Records `targets`, which an interrupted run of the operation left part-way through their changes and which this
/// run does not resume (`why`; `cancelled`: the operation was cancelled), as failed part-way, each keeping what it
/// did ([`account::left_part_way`]).
async fn left_part_way(env: &Arc<RunEnv>, targets: &[Target], why: &str, cancelled: bool) {
    let Some(sink) = &env.sink else { return };
    let error = if cancelled {
        AccountError::new(
            ErrorCode::Cancelled,
            "cancelled part-way: the operation was cancelled before it resumed the account; the changes listed are \
             those it made before it was interrupted",
            Phase::Apply,
        )
    } else {
        AccountError::new(
            ErrorCode::NotStarted,
            format!("not resumed: {why}; the changes listed are those the operation made before it was interrupted"),
            Phase::Apply,
        )
    };
    let results = futures::future::join_all(targets.iter().map(|t| account::left_part_way(env, t, error.clone())));
    for result in results.await {
        sink.account(&result);
        sink.emit(&result.account_id, Event::AccountFinished { result: Box::new(result.clone()) });
        if let Ok(mut m) = env.inner.metrics.lock() {
            *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
        }
    }
}

async fn count_failures(inner: &Inner, op: &str) -> usize {
    inner
        .journal
        .count_accounts(op)
        .await
        .ok()
        .and_then(|c| c.get(&records::stored_outcome(Outcome::Failed)).copied())
        .unwrap_or(0) as usize
}

/// Reports retries as events.
pub(crate) struct RetryEvents(pub(crate) EventSink);

impl crossrole_aws::calls::CallObserver for RetryEvents {
    fn retrying(&self, call: &str, code: Option<&str>, attempt: u32, delay: std::time::Duration) {
        self.0.emit(
            "",
            Event::CallRetried {
                call: call.to_string(),
                aws_error_code: code.unwrap_or_default().to_string(),
                attempt,
                delay_ms: delay.as_millis() as u64,
            },
        );
    }
}
