//! Running an operation: resolve the targets (once, then persisted), reconcile the trusted side, fan out over
//! the accounts with bounded concurrency and failure tolerance, and finish.
//!
//! A restarted crossroled resumes an unfinished operation from its persisted targets: accounts with a final
//! outcome are kept, the others run again (reconcile is idempotent, so re-running an account is safe).

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    AccessSpec,
    grant::{self, GrantPlan},
    guardrails::{self, OrgContext},
    plan::DesiredRole,
    policy::grant_policy,
    spec::{PrincipalKind, TrustedGrant},
};
use crossrole_proto::v1 as pb;
use crossrole_store::OperationRow;
use futures::StreamExt;
use prost::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Inner,
    account::{self, Action, RunEnv, Target},
    convert,
    events::EventSink,
};

/// How a run ended.
struct Ending {
    state: pb::OperationState,
    message: String,
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
    let span = tracing::info_span!("operation", id = %op.id, kind = op.kind, spec = %spec.name);
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
                let counts = counts(&inner, &op.id).await;
                sink.emit(
                    "",
                    pb::operation_event::Event::StateChanged(pb::OperationStateChanged {
                        state: ending.state as i32,
                        message: ending.message.clone(),
                        counts: Some(counts),
                    }),
                );
                sink.flush().await;
                if let Err(e) = inner
                    .journal
                    .set_operation_state(&op.id, ending.state as i32, &ending.message, None, Some(convert::now_ms()))
                    .await
                {
                    tracing::error!(error = %e, "cannot record the end of the operation");
                }
                if let Ok(mut m) = inner.metrics.lock() {
                    *m.operations.entry(ending.state.as_str_name()).or_default() += 1;
                }
                tracing::info!(state = ending.state.as_str_name(), message = ending.message, "operation finished");
            }
        }
        sink.flush().await;
    }
    .instrument(span)
    .await
}

pub(crate) async fn counts(inner: &Inner, op: &str) -> pb::OperationCounts {
    let by_outcome = inner.journal.count_accounts(op).await.unwrap_or_default();
    let get = |o: pb::AccountOutcome| by_outcome.get(&(o as i32)).copied().unwrap_or(0);
    pb::OperationCounts {
        total: by_outcome.values().sum(),
        pending: get(pb::AccountOutcome::Pending),
        running: get(pb::AccountOutcome::Running),
        changed: get(pb::AccountOutcome::Changed),
        unchanged: get(pb::AccountOutcome::Unchanged),
        failed: get(pb::AccountOutcome::Failed),
        skipped: get(pb::AccountOutcome::Skipped),
        not_started: get(pb::AccountOutcome::NotStarted),
        drifted: get(pb::AccountOutcome::Drifted),
    }
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
    if op.state != pb::OperationState::Running as i32 {
        let _ = inner
            .journal
            .set_operation_state(&op.id, pb::OperationState::Running as i32, "", Some(convert::now_ms()), None)
            .await;
        sink.emit(
            "",
            pb::operation_event::Event::StateChanged(pb::OperationStateChanged {
                state: pb::OperationState::Running as i32,
                message: String::new(),
                counts: None,
            }),
        );
    }
    let kind = pb::OperationKind::try_from(op.kind).unwrap_or(pb::OperationKind::Apply);
    let spec = Arc::new(spec);
    let desired = Arc::new(DesiredRole::from_spec(&spec, inner.aws.partition()));

    // Targets: persisted ones on resume, else resolved now.
    let (targets, done) = match resume_targets(inner, op).await {
        Ok(Some(t)) => t,
        Ok(None) => match resolve(inner, op, &spec, kind, &ctx, sink).await {
            Ok(t) => (t, BTreeSet::new()),
            Err(message) => return Some(Ending { state: pb::OperationState::Failed, message }),
        },
        Err(message) => return Some(Ending { state: pb::OperationState::Failed, message }),
    };

    // The trusted side, first: an apply's grant is in place when the roles are; a destroy cuts access first.
    if let Some(g) = spec.grant.as_ref().filter(|_| !op.dry_run) {
        let ensure: BTreeSet<String> =
            targets.iter().filter(|t| t.action == Action::Ensure).map(|t| t.account_id.clone()).collect();
        let remove = kind == pb::OperationKind::Destroy;
        if let Err(message) = trusted_side(inner, &spec, g, &ensure, remove, &ctx, &op.id, sink).await {
            return Some(Ending { state: pb::OperationState::Failed, message: format!("trusted side: {message}") });
        }
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
    });
    let pending: Vec<Target> = targets.into_iter().filter(|t| !done.contains(&t.index)).collect();
    let total = pending.len() + done.len();
    let concurrency = spec.rollout.max_concurrency.concurrency(total).min(inner.config.max_concurrency).max(1);
    let tolerance = spec.rollout.failure_tolerance.of(total);
    let mut failures = count_failures(inner, &op.id).await;
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut running = futures::stream::FuturesUnordered::new();
    let mut queue = pending.into_iter();
    let mut halted: Option<String> = None;

    loop {
        // Start accounts while there is room and nothing says stop.
        while halted.is_none() && !stop.is_cancelled() {
            let Ok(permit) = semaphore.clone().try_acquire_owned() else { break };
            let Some(target) = queue.next() else { break };
            let env = env.clone();
            let span = tracing::info_span!("account", id = %target.account_id);
            running.push(tokio::spawn(
                async move {
                    let _permit = permit;
                    let lock =
                        env.inner.locks.lock(&target.account_id, &env.desired.name, env.inner.config.lock_policy).await;
                    let mut running = target.result(pb::AccountOutcome::Running, pb::AccountPhase::Queued);
                    let result = match lock {
                        None => {
                            running.outcome = pb::AccountOutcome::Failed as i32;
                            running.phase = pb::AccountPhase::Done as i32;
                            running.error = Some(convert::own_error(
                                "busy",
                                "another operation is working on this role in this account",
                                pb::AccountPhase::Queued,
                            ));
                            running
                        }
                        Some(_guard) => {
                            if let Some(s) = &env.sink {
                                s.account(&running);
                            }
                            account::run(&env, &target).await
                        }
                    };
                    if let Some(s) = &env.sink {
                        s.account(&result);
                        s.emit(
                            &result.account_id,
                            pb::operation_event::Event::AccountFinished(pb::AccountFinished {
                                result: Some(result.clone()),
                            }),
                        );
                    }
                    result
                }
                .instrument(span),
            ));
        }
        if running.is_empty() {
            break;
        }
        match running.next().await {
            Some(Ok(result)) => {
                if let (Ok(mut m), Ok(o)) = (inner.metrics.lock(), pb::AccountOutcome::try_from(result.outcome)) {
                    *m.accounts.entry(o.as_str_name()).or_default() += 1;
                }
                if result.outcome == pb::AccountOutcome::Failed as i32 {
                    failures += 1;
                    if failures > tolerance && halted.is_none() {
                        halted = Some(format!(
                            "failure tolerance ({tolerance}) exceeded: {failures} accounts failed; no new account was started"
                        ));
                    }
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "account task panicked");
                failures += 1;
            }
            None => break,
        }
    }

    if inner.shutdown.is_cancelled() && !cancel.is_cancelled() {
        return None;
    }
    // What never started is recorded as such.
    let not_started: Vec<Target> = queue.collect();
    for t in &not_started {
        sink.account(&t.result(pb::AccountOutcome::NotStarted, pb::AccountPhase::Done));
    }
    sink.flush().await;
    if cancel.is_cancelled() {
        return Some(Ending { state: pb::OperationState::Cancelled, message: "cancelled".into() });
    }
    if let Some(message) = halted {
        return Some(Ending { state: pb::OperationState::Failed, message });
    }
    if failures > 0 {
        return Some(Ending { state: pb::OperationState::Failed, message: format!("{failures} accounts failed") });
    }
    Some(Ending { state: pb::OperationState::Succeeded, message: String::new() })
}

async fn count_failures(inner: &Inner, op: &str) -> usize {
    inner
        .journal
        .count_accounts(op)
        .await
        .ok()
        .and_then(|c| c.get(&(pb::AccountOutcome::Failed as i32)).copied())
        .unwrap_or(0) as usize
}

/// Targets persisted by an earlier run of this operation, and the indexes already finished.
async fn resume_targets(inner: &Inner, op: &OperationRow) -> Result<Option<(Vec<Target>, BTreeSet<u32>)>, String> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = inner.journal.list_accounts(&op.id, &[], 1000, after).await.map_err(|e| e.to_string())?;
        let last = page.last().map(|r| r.index);
        let n = page.len();
        rows.extend(page);
        if n < 1000 {
            break;
        }
        after = last;
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    let mut done = BTreeSet::new();
    for row in rows {
        let r = pb::AccountResult::decode(row.result.as_slice()).map_err(|e| format!("journal: {e}"))?;
        if convert::outcome_is_final(row.outcome) {
            done.insert(row.index);
        }
        targets.push(Target {
            index: row.index,
            account_id: row.account_id,
            account_name: r.account_name,
            joined_at: None,
            action: if r.action == pb::AccountAction::Remove as i32 { Action::Remove } else { Action::Ensure },
        });
    }
    Ok(Some((targets, done)))
}

/// Resolves and persists the targets: the selected accounts, the ones to clean up, the skipped ones.
async fn resolve(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    kind: pb::OperationKind,
    ctx: &CallContext,
    sink: &EventSink,
) -> Result<Vec<Target>, String> {
    // An apply reads the organization fresh: accounts move, and a stale tree would miss them.
    let (tree, selection) =
        inner.discovery.select(ctx, &spec.targets, "targets", true).await.map_err(|e| e.to_string())?;
    let members = tree.account_ids();
    guardrails::enforce(spec, inner.aws.partition(), OrgContext { member_accounts: Some(&members) })
        .map_err(|e| e.to_string())?;

    let remove_all = kind == pb::OperationKind::Destroy;
    let selected: BTreeSet<String> = selection.selected.iter().map(|a| a.id.clone()).collect();
    let mut targets = Vec::new();
    let mut skipped_rows = Vec::new();
    for a in &selection.selected {
        targets.push(Target {
            index: 0,
            account_id: a.id.clone(),
            account_name: a.name.clone(),
            joined_at: a.joined_at,
            action: if remove_all { Action::Remove } else { Action::Ensure },
        });
    }
    let mut cleanup = 0;
    if remove_all || spec.rollout.prune {
        let placements = inner.journal.placements(&spec.name).await.map_err(|e| e.to_string())?;
        for account in placements.into_iter().filter(|a| !selected.contains(a)) {
            cleanup += 1;
            match tree.accounts.get(&account) {
                Some(a) if a.state == crossrole_core::spec::AccountState::Active => targets.push(Target {
                    index: 0,
                    account_id: a.id.clone(),
                    account_name: a.name.clone(),
                    joined_at: a.joined_at,
                    action: Action::Remove,
                }),
                other => skipped_rows.push((
                    account.clone(),
                    other.map(|a| a.name.clone()).unwrap_or_default(),
                    match other {
                        Some(a) => format!("account is {}; its role cannot be removed now", a.state.as_str()),
                        None => "account left the organization; its role cannot be removed by crossrole".to_string(),
                    },
                )),
            }
        }
    }
    for s in &selection.skipped {
        skipped_rows.push((s.account.id.clone(), s.account.name.clone(), s.reason.clone()));
    }
    let mut rows = Vec::new();
    for (i, t) in targets.iter_mut().enumerate() {
        t.index = i as u32;
        rows.push(pb::AccountResult {
            role_arn: spec.role.arn(inner.aws.partition(), &t.account_id),
            ..t.result(pb::AccountOutcome::Pending, pb::AccountPhase::Queued)
        });
    }
    for (i, (id, name, reason)) in skipped_rows.iter().enumerate() {
        rows.push(pb::AccountResult {
            account_id: id.clone(),
            account_name: name.clone(),
            index: (targets.len() + i) as u32,
            outcome: pb::AccountOutcome::Skipped as i32,
            phase: pb::AccountPhase::Done as i32,
            error: Some(convert::own_error("account_not_active", reason.clone(), pb::AccountPhase::Queued)),
            ..Default::default()
        });
    }
    let journal_rows = rows
        .iter()
        .map(|r| crossrole_store::AccountRow {
            index: r.index,
            account_id: r.account_id.clone(),
            outcome: r.outcome,
            result: r.encode_to_vec(),
        })
        .collect();
    inner.journal.put_accounts(&op.id, journal_rows).await.map_err(|e| e.to_string())?;
    sink.emit(
        "",
        pb::operation_event::Event::TargetsResolved(pb::TargetsResolved {
            target_count: targets.len() as u32,
            skipped_count: skipped_rows.len() as u32,
            cleanup_count: cleanup,
        }),
    );
    Ok(targets)
}

/// Plans and applies the trusted side's policy.
#[allow(clippy::too_many_arguments)]
async fn trusted_side(
    inner: &Inner,
    spec: &AccessSpec,
    g: &TrustedGrant,
    ensure: &BTreeSet<String>,
    remove: bool,
    ctx: &CallContext,
    op_id: &str,
    sink: &EventSink,
) -> Result<(), String> {
    // The grant policy is shared by every operation of the spec: one writer at a time, like roles.
    let _guard = inner
        .locks
        .lock(&g.account_id, &format!("policy{}{}", TrustedGrant::POLICY_PATH, g.policy_name), inner.config.lock_policy)
        .await
        .ok_or_else(|| "another operation is updating the trusted side's policy".to_string())?;
    let session = format!("crossrole-{op_id}");
    let creds = inner.broker.bootstrap(ctx, &g.account_id, None, &session).await.map_err(|e| e.to_string())?;
    let iam = AccountIam { iam: inner.aws.iam(&creds), calls: &inner.calls, ctx };
    let arn = g.policy_arn(inner.aws.partition());
    let observed = iam.read_grant(&arn).await.map_err(|e| e.to_string())?;
    let plan = grant_plan(inner, spec, g, ensure, remove, observed.as_ref(), ctx).await;
    match plan {
        GrantPlan::InSync => Ok(()),
        GrantPlan::Conflict { owner } => Err(match owner {
            Some(o) => format!("policy {arn} belongs to crossrole spec {o:?}"),
            None => format!("policy {arn} exists and is not managed by crossrole; it is left untouched"),
        }),
        GrantPlan::Changes(changes) => iam
            .apply_grant(&arn, &changes, |c| {
                sink.emit(
                    &g.account_id,
                    pb::operation_event::Event::ChangeApplied(pb::ChangeApplied { change: Some(c.into()) }),
                )
            })
            .await
            .map_err(|e| e.to_string()),
    }
}

/// The trusted side's plan for `ensure` accounts.
pub(crate) async fn grant_plan(
    inner: &Inner,
    spec: &AccessSpec,
    g: &TrustedGrant,
    ensure: &BTreeSet<String>,
    remove: bool,
    observed: Option<&grant::ObservedGrant>,
    ctx: &CallContext,
) -> GrantPlan {
    if remove {
        return grant::plan_grant_delete(&spec.name, observed);
    }
    let org_id = inner.discovery.tree(ctx, false).await.ok().map(|t| t.organization.id.clone());
    let (doc, widened) =
        grant_policy(inner.aws.partition(), &spec.role.path, &spec.role.name, ensure, org_id.as_deref());
    if widened {
        tracing::warn!(
            spec = spec.name,
            "grant policy names the role by path in any account of the organization: too many accounts to list"
        );
    }
    let principals: BTreeSet<(PrincipalKind, String)> = g.principals().map(|(k, n)| (k, n.to_string())).collect();
    grant::plan_grant(&spec.name, &g.policy_name, TrustedGrant::POLICY_PATH, &doc, &principals, observed)
}

/// Reports retries as events.
struct RetryEvents(EventSink);

impl crossrole_aws::calls::CallObserver for RetryEvents {
    fn retrying(&self, call: &str, code: Option<&str>, attempt: u32, delay: std::time::Duration) {
        self.0.emit(
            "",
            pb::operation_event::Event::CallRetried(pb::CallRetried {
                call: call.to_string(),
                aws_error_code: code.unwrap_or_default().to_string(),
                attempt,
                delay_ms: delay.as_millis() as u64,
            }),
        );
    }
}
