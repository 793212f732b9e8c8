//! The work in one account: assume → read → plan → apply → verify, with an event at each step.
//!
//! Plans, applies and verifies all go through [`examine`], so a plan is exactly what an apply would do.
//!
//! Applying is write-ahead: before each change is sent, the account's row is persisted with the change as its last
//! entry, so after a crash (kill -9) the resumed run knows what was in flight. If the re-read shows the change is
//! still needed, it was not carried out and is dropped from the record (and applied again); if not, it was, and the
//! record keeps it. A resumed account's result thus names every change the operation made, before and after the
//! crash.

use std::sync::Arc;

use crossrole_aws::{api::Credentials, reconcile::AccountIam, verify};
use crossrole_core::{
    AccessSpec, guardrails,
    plan::{self, AccountPlan, Change, DesiredRole, ObservedRole},
};
use crossrole_proto::v1 as pb;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::{Inner, convert, events::EventSink};

/// What the operation does in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Make the role as the spec says.
    Ensure,
    /// Remove the role.
    Remove,
}

impl Action {
    pub(crate) fn to_pb(self) -> pb::AccountAction {
        match self {
            Action::Ensure => pb::AccountAction::Ensure,
            Action::Remove => pb::AccountAction::Remove,
        }
    }
}

/// An account to work on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) index: u32,
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    pub(crate) joined_at: Option<u64>,
    pub(crate) action: Action,
    /// The row an interrupted run of this operation left (resume only).
    pub(crate) prior: Option<pb::AccountResult>,
}

impl Target {
    /// This account's result row at `outcome` and `phase`, nothing else filled in.
    pub(crate) fn result(&self, outcome: pb::AccountOutcome, phase: pb::AccountPhase) -> pb::AccountResult {
        pb::AccountResult {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            index: self.index,
            outcome: outcome as i32,
            phase: phase as i32,
            action: self.action.to_pb() as i32,
            ..Default::default()
        }
    }
}

/// The trusted side's identity for live checks, found once per operation.
pub(crate) type Verifier = OnceCell<Result<(Credentials, String), String>>;

/// What every account of one run shares.
pub(crate) struct RunEnv {
    pub(crate) inner: Arc<Inner>,
    pub(crate) spec: Arc<AccessSpec>,
    pub(crate) desired: Arc<DesiredRole>,
    pub(crate) ctx: crossrole_aws::calls::CallContext,
    pub(crate) session: String,
    /// User cancel or shutdown: stop between changes.
    pub(crate) stop: CancellationToken,
    pub(crate) sink: Option<EventSink>,
    /// Apply changes (false for plans, verifies and dry runs).
    pub(crate) write: bool,
    pub(crate) verifier: Verifier,
    /// Marks secrets in what leaves the engine.
    pub(crate) redactor: crossrole_core::secret::Redactor,
}

impl RunEnv {
    fn emit(&self, account: &str, event: pb::operation_event::Event) {
        if let Some(s) = &self.sink {
            s.emit(account, event);
        }
    }

    fn phase(&self, account: &str, phase: pb::AccountPhase) {
        self.emit(account, pb::operation_event::Event::PhaseStarted(pb::AccountPhaseStarted { phase: phase as i32 }));
    }
}

/// What reading an account found.
pub(crate) struct Examined {
    pub(crate) credentials: Credentials,
    pub(crate) observed: Option<ObservedRole>,
    pub(crate) plan: AccountPlan,
}

/// Assume, read and plan one account. Errors come back as the account's error.
pub(crate) async fn examine(env: &RunEnv, target: &Target) -> Result<Examined, pb::AccountError> {
    let inner = &env.inner;
    env.phase(&target.account_id, pb::AccountPhase::Assume);
    let credentials = inner
        .broker
        .bootstrap(&env.ctx, &target.account_id, target.joined_at, &env.session)
        .await
        .map_err(|e| convert::account_error(&e, pb::AccountPhase::Assume))?;
    env.phase(&target.account_id, pb::AccountPhase::Read);
    let iam = AccountIam { iam: inner.aws.iam(&credentials), calls: &inner.calls, ctx: &env.ctx };
    let observed = iam.read_role(&env.desired.name).await.map_err(|e| match &e {
        // Denied on the first read with fresh bootstrap credentials: the bootstrap role is there but cannot
        // manage IAM (a least-privilege role missing permissions, or a role that is not what it should be).
        crossrole_aws::Error::Aws(a) if a.kind == crossrole_aws::ErrorKind::AccessDenied => pb::AccountError {
            code: "bootstrap_role_unavailable".into(),
            message: format!(
                "bootstrap role {} in account {} is not usable: it cannot read IAM ({a})",
                inner.broker.bootstrap_role(),
                target.account_id
            ),
            aws_error_code: a.code.clone().unwrap_or_default(),
            phase: pb::AccountPhase::Read as i32,
        },
        _ => convert::account_error(&e, pb::AccountPhase::Read),
    })?;
    env.phase(&target.account_id, pb::AccountPhase::Plan);
    let plan = match target.action {
        Action::Ensure => {
            plan::plan(&env.desired.in_account(inner.aws.partition(), &target.account_id), observed.as_ref())
        }
        Action::Remove => plan::plan_delete(&env.spec.name, observed.as_ref()),
    };
    Ok(Examined { credentials, observed, plan })
}

/// The error for a role crossrole must not touch.
pub(crate) fn not_owned(env: &RunEnv, target: &Target, owner: Option<&str>) -> pb::AccountError {
    let arn = env.desired.arn(env.inner.aws.partition(), &target.account_id);
    let finding = guardrails::unowned_role(&arn, owner);
    convert::own_error("not_owned", finding.message, pb::AccountPhase::Plan)
}

/// Runs one account of an apply, destroy or reconcile and returns its result.
pub(crate) async fn run(env: &RunEnv, target: &Target) -> pb::AccountResult {
    let mut result = pb::AccountResult {
        role_arn: env.desired.arn(env.inner.aws.partition(), &target.account_id),
        ..target.result(pb::AccountOutcome::Running, pb::AccountPhase::Assume)
    };
    let finish = |mut r: pb::AccountResult, outcome: pb::AccountOutcome| {
        r.outcome = outcome as i32;
        r.phase = pb::AccountPhase::Done as i32;
        r.end_time = Some(convert::now());
        r
    };
    let examined = match examine(env, target).await {
        Ok(e) => e,
        Err(error) => {
            result.error = Some(error);
            return finish(result, pb::AccountOutcome::Failed);
        }
    };
    // What an interrupted run of this operation already did here.
    let before = carried_over(target, examined.plan.changes(), &env.redactor);
    let changes: Vec<Change> = match &examined.plan {
        AccountPlan::InSync => {
            if target.action == Action::Remove {
                forget_placement(env, target).await;
            } else if env.write {
                remember_placement(env, target).await;
            }
            let outcome = if before.is_empty() { pb::AccountOutcome::Unchanged } else { pb::AccountOutcome::Changed };
            result.changes = before;
            return finish(result, outcome);
        }
        AccountPlan::Conflict { owner } => {
            result.error = Some(not_owned(env, target, owner.as_deref()));
            result.changes = before;
            return finish(result, pb::AccountOutcome::Skipped);
        }
        AccountPlan::Changes(c) => c.clone(),
    };
    if !env.write {
        result.changes = changes.iter().map(|c| c.to_wire(&env.redactor)).collect();
        return finish(result, pb::AccountOutcome::Drifted);
    }

    env.phase(&target.account_id, pb::AccountPhase::Apply);
    result.phase = pb::AccountPhase::Apply as i32;
    let iam = AccountIam { iam: env.inner.aws.iam(&examined.credentials), calls: &env.inner.calls, ctx: &env.ctx };
    let done = std::sync::Mutex::new(before);
    let outcome = iam
        .apply(
            &env.desired.name,
            &changes,
            || env.stop.is_cancelled(),
            |c| {
                // Write-ahead: the change is on record before it is sent.
                let mut row = result.clone();
                row.changes = done.lock().map(|d| d.clone()).unwrap_or_default();
                row.changes.push(c.to_wire(&env.redactor));
                let sink = env.sink.clone();
                Box::pin(async move {
                    if let Some(s) = sink {
                        s.account(&row);
                        s.flush().await;
                    }
                })
            },
            |c| {
                let change = c.to_wire(&env.redactor);
                env.emit(
                    &target.account_id,
                    pb::operation_event::Event::ChangeApplied(pb::ChangeApplied { change: Some(change.clone()) }),
                );
                if let Ok(mut d) = done.lock() {
                    d.push(change);
                }
            },
        )
        .await;
    result.changes = done.into_inner().unwrap_or_default();
    if matches!(outcome, Err(crossrole_aws::Error::Cancelled)) && env.inner.shutdown.is_cancelled() {
        // Stopped for shutdown between two changes: not an outcome. The row stays running, with the changes
        // made so far, and the next start resumes the account.
        return result;
    }
    if let Err(e) = outcome {
        result.error = Some(convert::account_error(&e, pb::AccountPhase::Apply));
        return finish(result, pb::AccountOutcome::Failed);
    }
    match target.action {
        Action::Remove => {
            forget_placement(env, target).await;
            return finish(result, pb::AccountOutcome::Changed);
        }
        Action::Ensure => remember_placement(env, target).await,
    }

    if env.spec.rollout.verify {
        env.phase(&target.account_id, pb::AccountPhase::Verify);
        result.phase = pb::AccountPhase::Verify as i32;
        let check = live_check(env, &target.account_id, &result.role_arn).await;
        let passed = check.outcome == pb::CheckOutcome::Passed as i32;
        let skipped = check.outcome == pb::CheckOutcome::Skipped as i32;
        result.verify = Some(pb::AssumeCheckSummary {
            passed,
            assumed_account_id: check.assumed_account_id.clone(),
            attempts: check.attempts,
            error: check.error.clone(),
        });
        if !passed && !skipped {
            result.error = Some(convert::own_error(
                "verify_failed",
                format!("the trusted side cannot assume {}: {}", result.role_arn, check.error),
                pb::AccountPhase::Verify,
            ));
            return finish(result, pb::AccountOutcome::Failed);
        }
    }
    finish(result, pb::AccountOutcome::Changed)
}

/// The changes an interrupted run of this operation made in the account, from the row it left: every entry but
/// the last was carried out; the last was in flight, and was carried out unless the new plan (`now`) still needs it.
fn carried_over(target: &Target, now: &[Change], redactor: &crossrole_core::secret::Redactor) -> Vec<pb::Change> {
    let Some(prior) = &target.prior else { return Vec::new() };
    let mut changes = prior.changes.clone();
    if let Some(last) = changes.last() {
        let still_needed = now.iter().any(|c| {
            let w = c.to_wire(redactor);
            w.kind == last.kind && w.subject == last.subject
        });
        if still_needed {
            changes.pop();
        }
    }
    changes
}

async fn remember_placement(env: &RunEnv, target: &Target) {
    if let Err(e) = env.inner.journal.set_placement(&env.spec.name, &target.account_id, true).await {
        tracing::error!(account = target.account_id, error = %e, "cannot record where the spec is applied");
    }
}

async fn forget_placement(env: &RunEnv, target: &Target) {
    if let Err(e) = env.inner.journal.set_placement(&env.spec.name, &target.account_id, false).await {
        tracing::error!(account = target.account_id, error = %e, "cannot forget a placement");
    }
}

/// The live check: assume the role as the trusted side. Skipped (with the reason) where crossrole cannot be
/// the trusted side: MFA required, the trusted account outside the organization, or a trust that names only
/// specific principals that the bootstrap role is not.
pub(crate) async fn live_check(env: &RunEnv, account: &str, role_arn: &str) -> pb::AssumeCheck {
    let trust = &env.spec.role.trust;
    if trust.require_mfa {
        return verify::live_check_skipped(
            "the role requires MFA, which crossrole cannot present; see the static checks",
        );
    }
    let identity = env
        .verifier
        .get_or_init(|| async {
            let trusted = match &env.spec.grant {
                Some(g) => g.account_id.clone(),
                None => match trust.account_ids.iter().next() {
                    Some(a) => a.clone(),
                    None => return Err("the spec trusts no account crossrole can act in".to_string()),
                },
            };
            let tree = env.inner.discovery.tree(&env.ctx, false).await.map_err(|e| e.to_string())?;
            if !tree.accounts.contains_key(&trusted) {
                return Err(format!("the trusted account {trusted} is outside the organization; crossrole cannot act there"));
            }
            let bootstrap_arn =
                crossrole_core::names::role_arn(
                env.inner.aws.partition(),
                &trusted,
                env.inner.broker.bootstrap_role_path(),
                env.inner.broker.bootstrap_role(),
            );
            let covered = trust.account_ids.contains(&trusted)
                || trust.principal_arns.iter().any(|p| crossrole_core::policy::eval::Caller::from_arn(&bootstrap_arn).principal_arn == *p);
            if !covered {
                return Err(format!(
                    "the trust names specific principals and not {bootstrap_arn}, which crossrole acts as; see the static checks"
                ));
            }
            let creds = env.inner.broker.bootstrap(&env.ctx, &trusted, None, &env.session).await.map_err(|e| e.to_string())?;
            Ok((creds, bootstrap_arn))
        })
        .await;
    match identity {
        Err(reason) => verify::live_check_skipped(reason),
        Ok((creds, caller)) => {
            verify::live_check(
                env.inner.aws.as_ref(),
                &env.inner.calls,
                &env.ctx,
                verify::LiveCheck {
                    as_credentials: creds,
                    caller_arn: caller,
                    role_arn,
                    account,
                    external_id: trust.external_id.as_ref(),
                    timeout: env.spec.rollout.verify_timeout,
                },
            )
            .await
        }
    }
}
