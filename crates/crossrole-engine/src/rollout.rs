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
//! outcome are kept, the others run again (reconcile is idempotent, so re-running an account is safe).

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    AccessSpec,
    ceiling::Organization,
    grant::{self, GrantPlan},
    ops::{AccountError, Counts, ErrorCode, Event, OperationKind, OperationState, Outcome, Phase},
    plan::DesiredRole,
    policy::grant_policy,
    spec::{PrincipalKind, TrustedGrant},
};
use crossrole_store::OperationRow;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Inner,
    account::{self, Action, RunEnv, Target},
    book::{Book, Finding, all_rows, find, found, resume_targets, settle, targets_resolved},
    convert,
    events::EventSink,
    pace::Pace,
    records,
    targets::{self, Standing},
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
}

/// Runs (or resumes) an operation to its end. `cancel` is the user's cancel; `inner.shutdown` stops the run
/// without finishing it, so that the next start resumes it.
pub(crate) async fn run(
    inner: Arc<Inner>,
    op: OperationRow,
    spec: AccessSpec,
    cancel: CancellationToken,
    sink: EventSink,
) {
    let kind =
        records::kind_of(op.kind).map(|k| k.as_str().to_string()).unwrap_or_else(|| format!("unknown({})", op.kind));
    let kind_name = records::kind_of(op.kind).map_or("unknown", |k| k.as_str());
    let began = std::time::Instant::now();
    let span = tracing::info_span!("operation", id = %op.id, kind, spec = %spec.name, trace_id = tracing::field::Empty);
    if let Some(trace_id) = inner.config.trace_id.and_then(|of| of(&span)) {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    async move {
        let stop = CancellationToken::new();
        let stop_on = {
            let (stop, cancel, shutdown) = (stop.clone(), cancel.clone(), inner.shutdown.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = shutdown.cancelled() => {}
                }
                stop.cancel();
            })
        };
        let ending = drive(&inner, &op, spec, &cancel, &stop, &sink).await;
        stop_on.abort();
        match ending {
            None => tracing::info!("stopped for shutdown; it resumes at the next start"),
            Some(ending) => {
                sink.flush().await;
                let counts = counts(&inner, &op.id).await;
                sink.finish(ending.state, &ending.message, counts);
                sink.flush().await;
                if let Ok(mut m) = inner.metrics.lock() {
                    m.finished(kind_name, ending.state.as_str(), began.elapsed().as_secs_f64());
                }
                tracing::info!(state = ending.state.as_str(), message = ending.message, "operation finished");
            }
        }
        sink.flush().await;
    }
    .instrument(span)
    .await
}

pub(crate) async fn counts(inner: &Inner, op: &str) -> Counts {
    let by_code = inner.journal.count_accounts(op).await.unwrap_or_default();
    let by_outcome = by_code.into_iter().filter_map(|(code, n)| Some((records::outcome_of(code)?, n))).collect();
    Counts::from_outcomes(&by_outcome)
}

/// "1 account", "2 accounts".
pub(crate) fn accounts(n: usize) -> String {
    if n == 1 { "1 account".into() } else { format!("{n} accounts") }
}

async fn drive(
    inner: &Arc<Inner>,
    op: &OperationRow,
    spec: AccessSpec,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    sink: &EventSink,
) -> Option<Ending> {
    let ctx = CallContext { stats: inner.running_stats(&op.id), observer: Some(Arc::new(RetryEvents(sink.clone()))) };
    let running = records::state_code(OperationState::Running);
    if op.state != running {
        let _ = inner.journal.set_operation_state(&op.id, running, "", Some(convert::now_ms()), None).await;
        sink.emit("", Event::StateChanged { state: OperationState::Running, message: String::new(), counts: None });
    }
    // An operation of a kind this crossroled does not know does nothing, rather than something it was not asked.
    let Some(kind) = records::kind_of(op.kind) else {
        return Ending::failed(format!("unknown operation kind {}; nothing was done", op.kind));
    };
    // The ceiling may have been lowered since the operation started (it resumes after a restart): check again.
    if kind != OperationKind::Destroy && !inner.config.ceiling.is_empty() {
        let org = match inner.discovery.tree(&ctx, false).await {
            Ok(tree) => tree,
            Err(e) => return Ending::failed(format!("cannot read the organization: {e}")),
        };
        let members = org.account_ids();
        let organization = Organization { id: Some(&org.organization.id), accounts: Some(&members) };
        if let Err(e) = inner.config.ceiling.check(&spec, organization) {
            return Ending::failed(format!("the organization's ceiling refuses the spec; nothing was done: {e}"));
        }
    }
    let spec = Arc::new(spec);
    let desired = Arc::new(DesiredRole::from_spec(&spec, inner.aws.partition()));

    // Targets: persisted ones on resume (the rest found again if the first run had not found them all), else found
    // now. An apply or a reconcile starts on accounts as the organization's pages list them (`targets`), so
    // the first accounts work while the rest of the organization is read.
    let scope = records::operation_scope(&op.spec);
    let (found_tx, mut found_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut finding: Option<Finding<'_>> = None;
    let mut resolve_error: Option<String> = None;
    let mut book = Book::default();
    let (pending, done) = match resume_targets(inner, op).await {
        Ok(Some(resumed)) => {
            book = Book { accounts: resumed.accounts, next_index: resumed.next_index, targets: resumed.targets_known };
            let mut pending = resumed.targets;
            if !targets_resolved(inner, &op.id).await {
                // It stopped while it was finding them: find them again; the ones it has keep their rows.
                match find(inner, &spec, kind, scope.as_ref(), &ctx, None).await {
                    Ok(resolved) => match settle(inner, op, &spec, resolved, &mut book, sink).await {
                        Ok(more) => pending.extend(more),
                        Err(message) => resolve_error = Some(message),
                    },
                    Err(message) => resolve_error = Some(message),
                }
            }
            (pending, resumed.done)
        }
        Ok(None) if matches!(kind, OperationKind::Apply | OperationKind::Reconcile) && scope.is_none() => {
            finding = Some(Box::pin(find(inner, &spec, kind, None, &ctx, Some(found_tx))));
            (Vec::new(), BTreeSet::new())
        }
        Ok(None) => match find(inner, &spec, kind, scope.as_ref(), &ctx, None).await {
            Ok(resolved) => match settle(inner, op, &spec, resolved, &mut book, sink).await {
                Ok(targets) => (targets, BTreeSet::new()),
                Err(message) => return Ending::failed(message),
            },
            Err(message) => return Ending::failed(message),
        },
        Err(message) => return Ending::failed(message),
    };
    let pending: Vec<Target> = pending.into_iter().filter(|t| !done.contains(&t.index)).collect();
    let grant = spec.grant.as_ref().filter(|_| !op.dry_run);

    // A destroy cuts access first; if it cannot, no role is touched.
    if let (Some(g), OperationKind::Destroy) = (grant, kind)
        && let Err(message) = trusted_side(inner, &spec, g, None, &ctx, &op.id, sink).await
    {
        let why = format!("not started: the trusted side's policy could not be removed first: {message}");
        not_started(sink, &pending, &why);
        sink.flush().await;
        return Ending::failed(format!("trusted side: {message}; no role was touched"));
    }

    let env = Arc::new(RunEnv {
        inner: inner.clone(),
        spec: spec.clone(),
        desired,
        ctx: ctx.clone(),
        session: format!("crossrole-{}", op.id),
        stop: stop.clone(),
        sink: Some(sink.clone()),
        write: !op.dry_run,
        verifier: Default::default(),
        redactor: inner.redactor.clone(),
        blind: false,
        create_unread: matches!(kind, OperationKind::Apply | OperationKind::Reconcile),
    });
    // While targets are still being found, limits that are percentages are of the accounts the tree read before
    // selected, or of those found so far if that is more.
    let expected = if finding.is_some() { targets::expected(inner, &spec).await.unwrap_or(0) } else { 0 };
    let total = |book: &Book, finding: bool| if finding { book.targets.max(expected) } else { book.targets };
    let mut pace = Pace::new(
        spec.rollout.max_concurrency,
        total(&book, finding.is_some()),
        inner.config.max_concurrency,
        inner.calls.shared_rates(),
    );
    let mut permits = pace.concurrency();
    let mut tolerance = spec.rollout.failure_tolerance.of(total(&book, finding.is_some()));
    let mut failures = count_failures(inner, &op.id).await;
    let semaphore = Arc::new(Semaphore::new(permits));
    let mut running = futures::stream::FuturesUnordered::new();
    let mut queue: std::collections::VecDeque<Target> = pending.into();
    let mut halted = false;

    loop {
        // Start accounts while there is room and nothing says stop (a journal that refuses writes says wait).
        while !halted && !stop.is_cancelled() && sink.healthy() && !queue.is_empty() {
            let Ok(permit) = semaphore.clone().try_acquire_owned() else { break };
            let Some(target) = queue.pop_front() else { break };
            let env = env.clone();
            let span = tracing::info_span!("account", id = %target.account_id);
            running.push(tokio::spawn(
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
            ));
        }
        // A cancel or shutdown stops the finding too; a halt lets it end, so that every target is on record.
        if stop.is_cancelled() {
            finding = None;
        }
        if running.is_empty() && finding.is_none() {
            if !halted && !stop.is_cancelled() && !queue.is_empty() {
                // The journal refuses writes: wait for it before starting more.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            break;
        }
        let finding_now = finding.is_some();
        tokio::select! {
            Some(batch) = found_rx.recv(), if finding_now => {
                match found(inner, op, &spec, batch, &mut book).await {
                    Ok(more) => queue.extend(more),
                    Err(message) => {
                        resolve_error = Some(message);
                        finding = None;
                    }
                }
            }
            resolved = async { match finding.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if finding_now => {
                finding = None;
                // What was sent before the end is all in the channel by now.
                let mut outcome = Ok(Vec::new());
                while let Ok(batch) = found_rx.try_recv() {
                    if let Ok(targets) = outcome.as_mut() {
                        match found(inner, op, &spec, batch, &mut book).await {
                            Ok(more) => targets.extend(more),
                            Err(message) => outcome = Err(message),
                        }
                    }
                }
                let outcome = match (outcome, resolved) {
                    (Ok(mut targets), Ok(resolved)) => {
                        let selected: BTreeSet<&str> = resolved.targets.iter().map(|t| t.account_id.as_str()).collect();
                        let gone = book.accounts.iter().filter(|a| !selected.contains(a.as_str())).count();
                        if gone > 0 {
                            // Found selected, then not: the organization changed while it was read (the same
                            // window as an account moving while it is worked on). They are worked on as found.
                            tracing::warn!(accounts = gone, "accounts found selected are not in the final selection");
                        }
                        settle(inner, op, &spec, resolved, &mut book, sink).await.map(|more| {
                            targets.extend(more);
                            targets
                        })
                    }
                    (Err(message), _) | (_, Err(message)) => Err(message),
                };
                match outcome {
                    Ok(more) => queue.extend(more),
                    // Nothing was found, so nothing was done: as if the targets had been resolved first.
                    Err(message) if book.targets == 0 && running.is_empty() && failures == 0 => {
                        return Ending::failed(message);
                    }
                    Err(message) => resolve_error = Some(message),
                }
            }
            Some(finished) = running.next(), if !running.is_empty() => match finished {
                Ok((result, took)) => {
                    // Automatic concurrency follows the time accounts take; it only grows within a run.
                    let wanted = pace.observe(took);
                    if wanted > permits {
                        semaphore.add_permits(wanted - permits);
                        permits = wanted;
                    }
                    if let (true, Ok(mut m)) = (result.outcome.is_final(), inner.metrics.lock()) {
                        *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
                    }
                    if result.outcome == Outcome::Failed {
                        failures += 1;
                        halted |= failures > tolerance;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "account task panicked");
                    failures += 1;
                    halted |= failures > tolerance;
                }
            },
            _ = stop.cancelled(), if finding_now && running.is_empty() => {}
        }
        // More targets known: limits that are percentages follow.
        let known = total(&book, finding.is_some());
        tolerance = spec.rollout.failure_tolerance.of(known);
        let wanted = pace.targets(known);
        if wanted > permits {
            semaphore.add_permits(wanted - permits);
            permits = wanted;
        }
        if resolve_error.is_some() && !halted {
            halted = true;
        }
    }

    if inner.shutdown.is_cancelled() && !cancel.is_cancelled() {
        return None;
    }
    // What never started is recorded as such, with the reason.
    let never: Vec<Target> = queue.into_iter().collect();
    let why = if cancel.is_cancelled() {
        "not started: the operation was cancelled".to_string()
    } else if let Some(message) = &resolve_error {
        format!("not started: the operation's targets could not all be found: {message}")
    } else {
        format!("not started: the failure tolerance ({tolerance}) was exceeded")
    };
    not_started(sink, &never, &why);
    sink.flush().await;
    if cancel.is_cancelled() {
        return Some(Ending { state: OperationState::Cancelled, message: "cancelled".into() });
    }

    // The grant, from what the accounts reached.
    let mut trusted_error = None;
    if let (Some(g), OperationKind::Apply | OperationKind::Reconcile) = (grant, kind) {
        let ensure = match reached(inner, op, &spec, scope.as_ref(), &ctx).await {
            Ok(e) => e,
            Err(message) => return Ending::failed(message),
        };
        if let Err(message) = trusted_side(inner, &spec, g, Some(&ensure), &ctx, &op.id, sink).await {
            trusted_error = Some(format!("trusted side: {message}"));
        }
    }

    let mut problems: Vec<String> = Vec::new();
    if let Some(message) = resolve_error {
        problems.push(format!(
            "its targets could not all be found: {message}; {} worked on, {} not started",
            accounts(book.targets.saturating_sub(never.len())),
            accounts(never.len())
        ));
    } else if halted {
        problems.push(format!(
            "failure tolerance ({tolerance}) exceeded: {} failed, {} not started",
            accounts(failures),
            never.len()
        ));
    } else if failures > 0 {
        problems.push(format!("{} failed", accounts(failures)));
    }
    problems.extend(trusted_error);
    if problems.is_empty() {
        Some(Ending { state: OperationState::Succeeded, message: String::new() })
    } else {
        Ending::failed(problems.join("; "))
    }
}

/// Records `targets` as not started, with `why`.
fn not_started(sink: &EventSink, targets: &[Target], why: &str) {
    for t in targets {
        let mut r = t.result(Outcome::NotStarted, Phase::Done);
        r.error = Some(AccountError::new(ErrorCode::NotStarted, why, Phase::Queued));
        sink.account(&r);
    }
}

/// The accounts whose roles the grant names after this operation: read back from the journal, so a resumed
/// operation decides from the same outcome. An operation limited to some accounts (`scope`) decides for those;
/// the grant keeps naming the others where a full operation would: where the spec was applied and still selects
/// them, in the tree discovery keeps.
async fn reached(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    scope: Option<&BTreeSet<String>>,
    ctx: &CallContext,
) -> Result<BTreeSet<String>, String> {
    let rows = all_rows(inner, &op.id).await?;
    let placements: BTreeSet<String> =
        inner.journal.placements(&spec.name).await.map_err(|e| e.to_string())?.into_iter().collect();
    let standings: Vec<(String, Standing)> = rows
        .iter()
        .map(|r| {
            let ensure = r.action == Some(Action::Ensure);
            let standing = match r.outcome {
                Outcome::Changed | Outcome::Unchanged if ensure => Standing::InPlace,
                Outcome::Failed if ensure => Standing::Failed,
                _ => Standing::Out,
            };
            (r.account_id.clone(), standing)
        })
        .collect();
    let mut accounts = targets::grant_accounts(standings.iter().map(|(a, s)| (a.as_str(), *s)), &placements);
    if let Some(scope) = scope {
        let (_, selection) = inner
            .discovery
            .select_within(ctx, &spec.targets, "targets", std::time::Duration::MAX)
            .await
            .map_err(|e| format!("cannot read the organization for the grant: {e}"))?;
        accounts.extend(
            selection.selected.into_iter().map(|a| a.id).filter(|a| !scope.contains(a) && placements.contains(a)),
        );
    }
    Ok(accounts)
}

async fn count_failures(inner: &Inner, op: &str) -> usize {
    inner
        .journal
        .count_accounts(op)
        .await
        .ok()
        .and_then(|c| c.get(&records::outcome_code(Outcome::Failed)).copied())
        .unwrap_or(0) as usize
}

/// Plans and applies the trusted side's policy: naming the roles in `ensure`, or removed when `ensure` is `None`.
async fn trusted_side(
    inner: &Inner,
    spec: &AccessSpec,
    g: &TrustedGrant,
    ensure: Option<&BTreeSet<String>>,
    ctx: &CallContext,
    op_id: &str,
    sink: &EventSink,
) -> Result<(), String> {
    // The grant policy is shared by every operation of the spec: one writer at a time, like roles.
    let _guard =
        inner.locks.lock(&g.account_id, &format!("policy{}{}", TrustedGrant::POLICY_PATH, g.policy_name), op_id).await;
    let session = format!("crossrole-{op_id}");
    let arn = g.policy_arn(inner.aws.partition());
    let open = || async {
        let creds = inner.broker.bootstrap(ctx, &g.account_id, None, &session).await.map_err(|e| e.to_string())?;
        let iam =
            AccountIam { iam: inner.aws.iam(&creds), account: creds.account_id.clone(), calls: &inner.calls, ctx };
        let observed = iam.read_grant(&arn).await;
        Ok::<_, String>((iam, observed))
    };
    let (mut iam, mut observed) = open().await?;
    if observed.as_ref().is_err_and(|e| inner.broker.stale(&g.account_id, e)) {
        (iam, observed) = open().await?;
    }
    let observed = observed.map_err(|e| e.to_string())?;
    let plan = grant_plan(inner, spec, g, ensure, observed.as_ref(), ctx).await.map_err(|e| e.to_string())?;
    match plan {
        GrantPlan::InSync => Ok(()),
        GrantPlan::Conflict { owner } => Err(match owner {
            Some(o) => format!("policy {arn} belongs to crossrole spec {o:?}"),
            None => format!("policy {arn} exists and is not managed by crossrole; it is left untouched"),
        }),
        GrantPlan::Changes(changes) => iam
            .apply_grant(&arn, &changes, |c| sink.emit(&g.account_id, Event::ChangeApplied { change: c.shown() }))
            .await
            .map_err(|e| e.to_string()),
    }
}

/// The trusted side's plan: the policy naming the roles in `ensure`, or removed when `ensure` is `None`. The
/// organization's id is needed when the policy outgrows a list of ARNs; failing to read it fails the plan.
pub(crate) async fn grant_plan(
    inner: &Inner,
    spec: &AccessSpec,
    g: &TrustedGrant,
    ensure: Option<&BTreeSet<String>>,
    observed: Option<&grant::ObservedGrant>,
    ctx: &CallContext,
) -> Result<GrantPlan, crate::Error> {
    // No role to name, no grant: IAM has no policy for "nothing", and one that names nothing grants nothing.
    let Some(ensure) = ensure.filter(|e| !e.is_empty()) else {
        return Ok(grant::plan_grant_delete(&spec.name, observed));
    };
    // An organization's id never changes: any tree read before says it.
    let org_id = match inner.discovery.cached_tree().await {
        Some(tree) => tree.organization.id.clone(),
        None => inner.discovery.tree(ctx, false).await?.organization.id.clone(),
    };
    let (doc, widened) =
        grant_policy(inner.aws.partition(), &spec.name, &spec.role.path, &spec.role.name, ensure, Some(&org_id));
    if widened {
        tracing::warn!(
            spec = spec.name,
            "grant policy names the role by path and ownership tags in any account of the organization: too many \
             accounts to list"
        );
    }
    let principals: BTreeSet<(PrincipalKind, String)> = g.principals().map(|(k, n)| (k, n.to_string())).collect();
    Ok(grant::plan_grant(&spec.name, &g.policy_name, TrustedGrant::POLICY_PATH, &doc, &principals, observed))
}

/// Reports retries as events.
struct RetryEvents(EventSink);

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
