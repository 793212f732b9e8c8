//! `crossrole revoke`, for an incident: every session of a spec's role issued before now denied, in every account
//! where the journal has the spec placed (or in those of them the request names), as an operation.
//!
//! Each account costs one `AssumeRole` (the bootstrap role), one `GetRole` and one `PutRolePolicy` writing the
//! `AWSRevokeOlderSessions` deny ([`crossrole_core::revocation`]). The journal's placements say where to look, not
//! what to write to: the role is read first, and the deny is written only when its ownership tags say it is this
//! spec's. A role of that name that crossrole does not own (deleted and made again by hand, say) or that another
//! spec owns is left as it is, and the account is skipped as not owned, saying why; so is an account named that
//! does not have the spec placed. The deny is kept 12 hours (the longest session IAM issues, and the longest a
//! console session signed in from one of the role's sessions lasts, whatever the role's own maximum), then a later
//! apply or reconcile removes it; its instant is taken just before it is written.
//!
//! Like an apply, it is written to the journal before it starts, reports progress in events and a result per
//! account, can be cancelled, and is resumed after a restart (the accounts without a final row are revoked again:
//! a later instant denies at least what an earlier one did).

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    AccessSpec,
    ops::{AccountError, AccountResult, ErrorCode, Event, Operation, OperationKind, OperationState, Outcome, Phase},
    org::OrgTree,
    plan::Change,
    revocation::{LONGEST_SESSION_SECS, Revocation},
    spec::{AccountState, RawSpec, owner_of},
};
use crossrole_store::{NewOperation, OperationRow};
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Engine, Error, Inner, account::error_from, events::EventSink, records, rollout};

/// Accounts revoked at once, at most: the call layer's buckets (STS's quota for the `AssumeRole`s, each account's
/// IAM quota for its write) set the pace, not this.
const CONCURRENCY: usize = 64;

/// A request to revoke a spec's sessions.
#[derive(Debug, Clone)]
pub struct RevokeRequest {
    /// The spec whose role's sessions are revoked (a spec file's, or a binding's).
    pub spec: AccessSpec,
    /// Only these accounts (`None`: every account where the spec is placed).
    pub accounts: Option<BTreeSet<String>>,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Name of the caller's token.
    pub created_by: String,
}

impl Engine {
    /// Starts a revocation (or returns the one its idempotency key already started). It runs in the background;
    /// watch it as any operation.
    pub async fn start_revoke(&self, request: RevokeRequest) -> Result<Operation, Error> {
        if let Some(accounts) = &request.accounts {
            if accounts.is_empty() {
                return Err(Error::Invalid(crossrole_core::Error::invalid(
                    "account_ids",
                    "give at least one account, or none for every account where the spec is placed",
                )));
            }
            if let Some(bad) = accounts.iter().find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
                return Err(Error::Invalid(crossrole_core::Error::invalid(
                    "account_ids",
                    format!("{bad:?} is not an account id (12 digits)"),
                )));
            }
        }
        let raw = RawSpec::from(&request.spec);
        let mut fingerprint = self.fingerprint(OperationKind::Revoke, false, &raw);
        for a in request.accounts.iter().flatten() {
            fingerprint.push(' ');
            fingerprint.push_str(a);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let sealed = crate::sealed(&raw, &self.inner.config.journal_key, &id)?;
        let (row, created) = self
            .inner
            .journal
            .create_operation(NewOperation {
                id,
                kind: records::stored_kind(OperationKind::Revoke),
                spec_name: request.spec.name.clone(),
                spec: records::encode_operation(&sealed, request.accounts.as_ref(), None),
                idempotency_key: request.idempotency_key.clone(),
                request_fingerprint: self.inner.redactor.digest(fingerprint.as_bytes()),
                // Not journaled under a binding even when it is a binding's spec: a binding's unfinished operation
                // is taken for its reconcile, and the others of the binding wait for it (`rollout::turn`); a
                // revocation runs at once, beside them.
                binding_name: None,
                created_by: request.created_by.clone(),
                create_time: crate::now_ms(),
                state: records::stored_state(OperationState::Pending),
                dry_run: false,
            })
            .await
            .map_err(|e| match e {
                crossrole_store::StoreError::IdempotencyConflict(k) => {
                    Error::FailedPrecondition(format!("idempotency key {k:?} was already used for a different request"))
                }
                other => other.into(),
            })?;
        if created {
            self.spawn(row.clone(), crate::Work::Revoke(Box::new(request.spec)));
        }
        self.operation(&row.id).await
    }
}

/// One account to revoke in.
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
    spec: AccessSpec,
    ctx: CallContext,
    session: String,
    sink: EventSink,
    stop: CancellationToken,
    operation: String,
}

/// Runs (or resumes) a revocation to its end; a shutdown leaves it unfinished, to be resumed.
pub(crate) async fn run(
    inner: Arc<Inner>,
    op: OperationRow,
    spec: AccessSpec,
    cancel: CancellationToken,
    sink: EventSink,
) {
    let began = std::time::Instant::now();
    let span = tracing::info_span!("operation", id = %op.id, kind = "revoke", spec = %spec.name);
    async move {
        let stop = cancel.child_token();
        let stop_on = {
            let (stop, shutdown) = (stop.clone(), inner.shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                stop.cancel();
            })
        };
        let ending = drive(&inner, &op, spec, &cancel, &stop, &sink).await;
        stop_on.abort();
        match ending {
            None => tracing::info!("stopped for shutdown; it resumes at the next start"),
            Some((state, message)) => {
                sink.flush().await;
                let counts = rollout::counts(&inner, &op.id).await;
                sink.finish(state, &message, counts);
                sink.flush().await;
                if let Ok(mut m) = inner.metrics.lock() {
                    m.finished("revoke", state.as_str(), began.elapsed().as_secs_f64());
                }
                tracing::info!(state = state.as_str(), message, "revocation finished");
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
    spec: AccessSpec,
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
            return Some((OperationState::Failed, format!("cannot read the organization: {e}; nothing was revoked")));
        }
    };
    let pending = match targets(inner, op, &spec, &tree, sink).await {
        Ok(pending) => pending,
        Err(e) => return Some((OperationState::Failed, format!("cannot read the operation's accounts: {e}"))),
    };
    drop(tree);
    let env = Arc::new(Env {
        inner: inner.clone(),
        spec,
        ctx,
        session: format!("crossrole-{}", op.id),
        sink: sink.clone(),
        stop: stop.clone(),
        operation: op.id.clone(),
    });
    let mut queue = pending.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < CONCURRENCY && !stop.is_cancelled() && sink.healthy() {
            let Some(target) = queue.next() else { break };
            let env = env.clone();
            let span = tracing::info_span!("account", id = %target.account_id);
            running.push(tokio::spawn(async move { revoke_in(&env, target).await }.instrument(span)));
        }
        let Some(finished) = running.next().await else { break };
        if let Err(e) = finished {
            tracing::error!(error = %e, "account task panicked");
        }
    }
    if !cancel.is_cancelled() && inner.shutdown.is_cancelled() {
        return None;
    }
    let never: Vec<Target> = queue.collect();
    for t in &never {
        let mut r = t.result(Outcome::NotStarted, Phase::Done);
        r.error =
            Some(AccountError::new(ErrorCode::NotStarted, "not started: the revocation was cancelled", Phase::Queued));
        sink.account(&r);
    }
    sink.flush().await;
    if cancel.is_cancelled() {
        return Some((OperationState::Cancelled, "cancelled".into()));
    }
    match rollout::counts(inner, &op.id).await.failed {
        0 => Some((OperationState::Succeeded, String::new())),
        n => Some((
            OperationState::Failed,
            format!("{} could not be revoked; each says why", rollout::accounts(n as usize)),
        )),
    }
}

/// The accounts still to revoke in. The first run puts every target on record (`pending`, in account id order:
/// the accounts where the spec is placed, or those named; one named where it is not placed, or not an ACTIVE
/// member, skipped with why); a resumed one reads its rows back and keeps those without a final outcome.
async fn targets(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    tree: &OrgTree,
    sink: &EventSink,
) -> Result<Vec<Target>, Error> {
    let joined = |id: &str| tree.accounts.get(id).and_then(|a| a.joined_at);
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
    let placed: BTreeSet<String> = inner.journal.placements(&spec.name).await?.into_iter().collect();
    let ids = records::operation_scope(&op.spec).unwrap_or_else(|| placed.clone());
    let mut pending = Vec::new();
    let mut skipped = 0u32;
    for (index, id) in ids.into_iter().enumerate() {
        let account = tree.accounts.get(&id);
        let target = Target {
            index: index as u32,
            account_name: account.map(|a| a.name.clone()).unwrap_or_default(),
            joined_at: account.and_then(|a| a.joined_at),
            account_id: id,
        };
        let why = if !placed.contains(&target.account_id) {
            Some((
                ErrorCode::NotOwned,
                format!(
                    "crossrole has not applied spec {} in this account, so no role there is one it may revoke",
                    spec.name
                ),
            ))
        } else {
            match account {
                None => Some((ErrorCode::AccountNotActive, "the account is not a member of the organization".into())),
                Some(a) if a.state != AccountState::Active => {
                    Some((ErrorCode::AccountNotActive, format!("account is {}", a.state.as_str())))
                }
                Some(_) => None,
            }
        };
        match why {
            Some((code, why)) => {
                skipped += 1;
                let mut r = target.result(Outcome::Skipped, Phase::Done);
                r.error = Some(AccountError::new(code, why, Phase::Queued));
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

/// What one account's revocation came to.
enum Done {
    /// The deny was written: this change.
    Written(Change),
    /// The role there is not this spec's: nothing was written, for this reason.
    NotOwned(String),
}

/// Revokes in one account: its bootstrap role assumed, the role read (is it this spec's, and how long are its
/// sessions), the deny written only to this spec's role; the result on record.
async fn revoke_in(env: &Env, target: Target) {
    let inner = &env.inner;
    let account = target.account_id.as_str();
    let role = env.spec.role.name.as_str();
    let mut result = target.result(Outcome::Running, Phase::Assume);
    result.role_arn = crossrole_core::names::role_arn(inner.aws.partition(), account, &env.spec.role.path, role);
    env.sink.account(&result);
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Assume });
    let write = async {
        let assume = || async {
            inner
                .broker
                .bootstrap(&env.ctx, account, target.joined_at, &env.session)
                .await
                .map_err(|e| error_from(&e, Phase::Assume))
        };
        let credentials = assume().await?;
        let work = |credentials| {
            let iam = AccountIam {
                iam: inner.aws.iam(credentials),
                account: account.to_string(),
                calls: &inner.calls,
                ctx: &env.ctx,
            };
            async move { written(env, &iam, role).await }
        };
        match work(&credentials).await {
            Ok(done) => Ok(done),
            // Credentials cached from before the bootstrap role was replaced are denied everything: assume afresh.
            Err((e, _)) if inner.broker.stale(account, &e) => {
                work(&assume().await?).await.map_err(|(e, phase)| failed(&e, phase, role))
            }
            Err((e, phase)) => Err(failed(&e, phase, role)),
        }
    };
    let outcome = write.await;
    result.phase = Phase::Done;
    result.end_time = Some(crate::now_ms());
    match outcome {
        Ok(Done::Written(change)) => {
            let shown = change.shown(&inner.redactor);
            result.outcome = Outcome::Changed;
            result.changes = vec![shown.clone()];
            env.sink.emit(account, Event::ChangeApplied { change: shown });
        }
        Ok(Done::NotOwned(why)) => {
            result.outcome = Outcome::Skipped;
            result.error = Some(AccountError::new(ErrorCode::NotOwned, why, Phase::Read));
        }
        Err(error) => {
            result.outcome = Outcome::Failed;
            result.error = Some(error);
        }
    }
    env.sink.account(&result);
    if let Ok(mut m) = inner.metrics.lock() {
        *m.accounts.entry(result.outcome.as_str()).or_default() += 1;
    }
    env.sink.emit(account, Event::AccountFinished { result: Box::new(result) });
}

/// Reads role `role` (one `GetRole`) and, when its ownership tags say it is this spec's, writes the deny (one
/// `PutRolePolicy`); the error comes with the phase it failed in.
async fn written(env: &Env, iam: &AccountIam<'_>, role: &str) -> Result<Done, (crossrole_aws::Error, Phase)> {
    let account = iam.account.as_str();
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Read });
    let Some(found) = iam.role_record(role).await.map_err(|e| (e, Phase::Read))? else {
        let message = format!("The role with name {role} cannot be found.");
        let missing = crossrole_aws::AwsError::from_code("iam:GetRole", Some("NoSuchEntity"), Some(404), message);
        let missing = crossrole_aws::Error::Aws(missing);
        return Err((missing, Phase::Read));
    };
    let spec = env.spec.name.as_str();
    match owner_of(&found.attributes.tags) {
        Some(owner) if owner == spec => {}
        owner => {
            let whose = match owner {
                Some(other) => format!("crossrole's for spec {other}"),
                None => "not crossrole's (it carries no crossrole ownership tags: made or replaced by hand)".into(),
            };
            return Ok(Done::NotOwned(format!(
                "role {role} in this account is {whose}, not spec {spec}'s, so crossrole writes nothing to it"
            )));
        }
    }
    // Kept the longest IAM issues (12 h), not the role's own maximum session as read: a console session signed in
    // from one of the role's sessions lasts up to 12 h whatever the role's maximum (deploy/README.md section 9).
    let keep_for = LONGEST_SESSION_SECS;
    let change = Change::RevokeSessions {
        before: None,
        revocation: Revocation::at(env.inner.config.clock.now(), keep_for),
        keep_for,
        reason: format!("crossrole revoke asked for it (operation {})", env.operation),
    };
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Apply });
    let nothing = |_: &Change| futures::future::ready(()).boxed();
    iam.apply(role, std::slice::from_ref(&change), || env.stop.is_cancelled(), nothing, |_| {})
        .await
        .map_err(|e| (e, Phase::Apply))?;
    Ok(Done::Written(change))
}

/// Why the read or the write failed, for the account's result: a role that is not there is said so.
fn failed(e: &crossrole_aws::Error, phase: Phase, role: &str) -> AccountError {
    let mut error = error_from(e, phase);
    if matches!(e, crossrole_aws::Error::Aws(a) if a.is_not_found()) {
        error.message =
            format!("there is no role {role} in this account (removed since it was placed): {}", error.message);
    }
    error
}
