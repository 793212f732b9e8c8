//! The work in one account: assume → read → plan → apply → verify, with an event at each step.
//!
//! Plans, applies and verifies all go through [`examine`], so a plan is exactly what an apply would do. An apply
//! reads the role before it writes, also where the journal does not have the spec applied: a role there that
//! crossrole does not own is found by the read and reported, and no write is ever aimed at it. If a role appears
//! between the read and the create, the create finds it and does nothing; the account is read again and planned
//! from what is there.
//!
//! Applying is write-ahead: before each change is sent, the account's row is persisted with the change as its last
//! entry, so after a crash (kill -9) the resumed run knows what was in flight. If the re-read shows the change is
//! still needed, it was not carried out and is dropped from the record (and applied again); if not, it was, and the
//! record keeps it. A resumed account's result thus names every change the operation made, before and after the
//! crash.

use std::sync::Arc;

use crossrole_aws::{api::Credentials, reconcile::AccountIam, verify};
pub(crate) use crossrole_core::ops::Action;
use crossrole_core::{
    AccessSpec, guardrails,
    ops::{
        AccountError, AccountResult, AssumeCheck, CheckOutcome, ErrorCode, Event, Outcome, Phase, ShownChange,
        VerifySummary,
    },
    plan::{self, AccountPlan, Change, DesiredRole, ObservedRole},
    revocation,
};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::{ExternalIds, Inner, events::EventSink};

/// An account to work on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) index: u32,
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    pub(crate) joined_at: Option<u64>,
    pub(crate) action: Action,
    /// The row an interrupted run of this operation left (resume only).
    pub(crate) prior: Option<AccountResult>,
}

impl Target {
    /// Where per-account values in the spec resolve for this account.
    pub(crate) fn place(&self, partition: crossrole_core::Partition) -> crossrole_core::names::Place<'_> {
        crossrole_core::names::Place { partition, account_id: &self.account_id, account_name: &self.account_name }
    }

    /// Whether an interrupted run of this operation left the account part-way through its changes.
    pub(crate) fn part_way(&self) -> bool {
        self.prior.as_ref().is_some_and(|p| !p.changes.is_empty())
    }

    /// This account's row at `outcome` and `phase`, with what the operation does there, nothing else filled in.
    pub(crate) fn result(&self, outcome: Outcome, phase: Phase) -> AccountResult {
        let result = AccountResult::new(&self.account_id, &self.account_name, self.index, outcome, phase);
        AccountResult { action: Some(self.action), ..result }
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
    /// What the run does with the spec's ExternalId in the roles that exist (an apply: as the plan it carries out).
    pub(crate) external_ids: ExternalIds,
    /// The operation this run belongs to (empty for a plan or a verification).
    pub(crate) operation: String,
    /// The plan the apply carries, if it carries one: an account is changed only as that plan showed.
    pub(crate) confirmed: Option<Arc<crate::confirmed::Fingerprint>>,
}

impl RunEnv {
    fn emit(&self, account: &str, event: Event) {
        if let Some(s) = &self.sink {
            s.emit(account, event);
        }
    }

    fn phase(&self, account: &str, phase: Phase) {
        self.emit(account, Event::PhaseStarted { phase });
    }
}

/// What reading an account found.
pub(crate) struct Examined {
    pub(crate) credentials: Credentials,
    pub(crate) observed: Option<ObservedRole>,
    pub(crate) plan: AccountPlan,
}

/// Assume, read and plan one account. Errors come back as the account's error.
pub(crate) async fn examine(env: &RunEnv, target: &Target) -> Result<Examined, AccountError> {
    let inner = &env.inner;
    let assume = || async {
        env.phase(&target.account_id, Phase::Assume);
        inner
            .broker
            .bootstrap(&env.ctx, &target.account_id, target.joined_at, &env.session)
            .await
            .map_err(|e| error_from(&e, Phase::Assume))
    };
    let read = |credentials: &Credentials| {
        env.phase(&target.account_id, Phase::Read);
        let iam = AccountIam {
            iam: inner.aws.iam(credentials),
            account: credentials.account_id.clone(),
            calls: &inner.calls,
            ctx: &env.ctx,
        };
        async move { iam.read_role(&env.desired.name).await }
    };
    let mut credentials = assume().await?;
    let mut observed = read(&credentials).await;
    if observed.as_ref().is_err_and(|e| inner.broker.stale(&target.account_id, e)) {
        credentials = assume().await?;
        observed = read(&credentials).await;
    }
    let observed = observed.map_err(|e| match &e {
        // Denied with fresh bootstrap credentials: the bootstrap role is there but cannot manage IAM (a
        // least-privilege role missing permissions, or a role that is not what it should be).
        crossrole_aws::Error::Aws(a) if a.kind == crossrole_aws::ErrorKind::AccessDenied => AccountError {
            code: ErrorCode::BootstrapRoleUnavailable,
            message: format!(
                "bootstrap role {} in account {} is not usable: it cannot read IAM ({a})",
                inner.broker.bootstrap_role(),
                target.account_id
            ),
            aws_error_code: a.code.clone(),
            phase: Phase::Read,
        },
        _ => error_from(&e, Phase::Read),
    })?;
    env.phase(&target.account_id, Phase::Plan);
    let plan = planned(env, target, observed.as_ref())?;
    Ok(Examined { credentials, observed, plan })
}

/// The plan for `target` from the role read there (`observed`), the spec's ExternalId taken as
/// [`RunEnv::external_ids`] says: each role's own kept (see [`seen_by`]), or the spec's written whatever the role
/// holds (planned from the role as if it held another, [`rotated`]).
fn planned(env: &RunEnv, target: &Target, observed: Option<&ObservedRole>) -> Result<AccountPlan, AccountError> {
    let seen = seen_by(env, observed);
    let desired = seen.as_ref().map_or(&env.desired, |(_, d)| d);
    let rotated = rotated(env, observed);
    let observed = rotated.as_ref().or(observed);
    let plan = match target.action {
        Action::Ensure => plan::plan(&desired.in_account(target.place(env.inner.aws.partition())), observed),
        Action::Remove => plan::plan_delete(&env.spec.name, observed),
    };
    let revoking = revoke(&env.spec, env.inner.config.revocation_hold_secs);
    let plan = revocation::with_revocation(plan, observed, env.inner.config.clock.now(), &revoking);
    // A revocation that would not fit beside what it keeps: refused before anything is written (IAM would refuse
    // it only after the narrowing it follows).
    if let Some(why) = revocation::over_quota(&plan, observed) {
        return Err(AccountError::new(ErrorCode::Invalid, why, Phase::Plan));
    }
    under_ceiling(env, target, plan, observed)
}

/// Whether `spec`'s changes that take access away revoke the sessions issued before them (see
/// [`crossrole_core::revocation`]). A request that opts out turns the spec's field off before the operation is
/// journaled, so the record says it either way. `hold_secs`: [`crate::EngineConfig::revocation_hold_secs`], for
/// tests on emulators.
pub(crate) fn revoke(spec: &AccessSpec, hold_secs: Option<u32>) -> revocation::Revoke {
    if spec.role.revoke_sessions_on_narrowing {
        match hold_secs {
            None => revocation::Revoke::On,
            Some(secs) => revocation::Revoke::HeldAtMost { secs, by: "emulator_testing.revocation_hold".into() },
        }
    } else {
        revocation::Revoke::Off(
            "role.revoke_sessions_on_narrowing: false (the spec's, or the request's keep_sessions)".into(),
        )
    }
}

/// Why an account of an apply that carries a confirmed plan must be left untouched: what it needs now — as the
/// plan's caller is shown it — is not what the plan showed for it (`None`: it may be changed). An account resumed
/// part-way through its changes was checked before its first one.
fn unconfirmed(env: &RunEnv, target: &Target, examined: &Examined) -> Option<AccountError> {
    let plan = env.confirmed.as_ref()?;
    if target.prior.as_ref().is_some_and(|p| !p.changes.is_empty()) {
        return None;
    }
    // Planned as the plan was (its ExternalIds taken alike: the operation's are the plan's).
    let shown: Vec<ShownChange> = examined.plan.changes().iter().map(|c| c.shown(&env.inner.redactor)).collect();
    let key = crate::confirmed::key(&env.inner.config.journal_key);
    let why = plan.check_account(&key, &target.account_id, target.action, &shown).err()?;
    Some(AccountError::new(ErrorCode::PlanChanged, why, Phase::Plan))
}

/// When each role's own ExternalId is kept ([`ExternalIds::Kept`]): the spec and role with the ExternalId the
/// observed role already requires in place of the request's, so that nothing the caller sees, nor the apply does,
/// depends on the value they sent; `None` when the request's is planned as it is (compared or written, no
/// ExternalId, no role, or a role that requires none: then any guess is answered alike).
pub(crate) fn seen_by(
    env: &RunEnv,
    observed: Option<&ObservedRole>,
) -> Option<(Arc<crossrole_core::AccessSpec>, Arc<DesiredRole>)> {
    if env.external_ids != ExternalIds::Kept || env.spec.role.trust.external_id.is_none() {
        return None;
    }
    let required = crossrole_core::policy::required_external_id(&observed?.attributes.trust_policy)?;
    let mut spec = (*env.spec).clone();
    spec.role.trust.external_id = Some(required);
    let desired = DesiredRole::from_spec(&spec, env.inner.aws.partition());
    Some((Arc::new(spec), Arc::new(desired)))
}

/// When the spec's ExternalId is written whatever the roles hold ([`ExternalIds::Written`]): the observed role as if
/// every ExternalId its trust requires were a stand-in other than the spec's, so that the plan writes the spec's
/// trust and revokes the sessions as a changed ExternalId does, in every role that requires one — the same plan
/// whether the ExternalId sent is the role's or not. `None` otherwise (and for a role that requires none: the
/// spec's is a change there anyway).
fn rotated(env: &RunEnv, observed: Option<&ObservedRole>) -> Option<ObservedRole> {
    let sent = env.spec.role.trust.external_id.as_ref().filter(|_| env.external_ids == ExternalIds::Written)?;
    let observed = observed?;
    crossrole_core::policy::required_external_id(&observed.attributes.trust_policy)?;
    let mut stand_in = String::from("crossrole-replaced-external-id");
    while stand_in == sent.expose() {
        stand_in.push('-');
    }
    let doc = crossrole_core::policy::PolicyDocument::parse_observed(&observed.attributes.trust_policy).ok()?;
    let mut trust = doc.as_value().clone();
    let statements = match trust.get_mut("Statement")? {
        serde_json::Value::Array(all) => all.iter_mut().collect(),
        one => vec![one],
    };
    let mut held = Vec::new();
    for statement in statements {
        let Some(serde_json::Value::Object(operators)) = statement.get_mut("Condition") else { continue };
        for keys in operators.values_mut() {
            let serde_json::Value::Object(keys) = keys else { continue };
            for (key, values) in keys.iter_mut() {
                if key.eq_ignore_ascii_case("sts:ExternalId") {
                    strings(values, &mut |v| held.push(v.clone()));
                    *values = serde_json::Value::String(stand_in.clone());
                }
            }
        }
    }
    // Anything else that spells one out (a Sid, say) is replaced too: what the plan shows of the role's trust says
    // nothing of the ExternalIds it held.
    held.retain(|v| !v.is_empty());
    strings(&mut trust, &mut |v| {
        for h in &held {
            if v.contains(h.as_str()) {
                *v = v.replace(h.as_str(), &stand_in);
            }
        }
    });
    let mut role = observed.clone();
    role.attributes.trust_policy = trust.to_string();
    Some(role)
}

/// Calls `each` on every string in `value`, at any depth (not on object keys).
fn strings(value: &mut serde_json::Value, each: &mut impl FnMut(&mut String)) {
    match value {
        serde_json::Value::String(s) => each(s),
        serde_json::Value::Array(all) => all.iter_mut().for_each(|v| strings(v, each)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| strings(v, each)),
        _ => {}
    }
}

/// The ExternalId the role in `observed`'s account requires once the run's changes are made there: the role's own
/// where it is kept ([`ExternalIds::Kept`], a role that required one), else the spec's — for the live check.
fn external_id_after(env: &RunEnv, observed: Option<&ObservedRole>) -> Option<crossrole_core::secret::ExternalId> {
    match seen_by(env, observed) {
        Some((spec, _)) => spec.role.trust.external_id.clone(),
        None => env.spec.role.trust.external_id.clone(),
    }
}

/// The plan as the ceiling's templates let it be carried out: an existing role bounded by the ceiling before any
/// other write, or refused when it carries another boundary (see [`plan::under_ceiling`]).
fn under_ceiling(
    env: &RunEnv,
    target: &Target,
    plan: AccountPlan,
    observed: Option<&ObservedRole>,
) -> Result<AccountPlan, AccountError> {
    let Some(ceiling) = &env.inner.config.ceiling.permissions_boundary else { return Ok(plan) };
    let ceiling = crossrole_core::names::expand(ceiling, target.place(env.inner.aws.partition()));
    plan::under_ceiling(plan, observed, &ceiling, target.action == Action::Remove).map_err(|refused| {
        let arn =
            observed.map_or_else(|| env.desired.arn(env.inner.aws.partition(), &target.account_id), |o| o.arn.clone());
        AccountError::new(ErrorCode::OutsideCeiling, refused.message(&arn, &env.desired.name), Phase::Plan)
    })
}

/// The error for a role crossrole must not touch: the one found (`observed`, whose path may not be the spec's), or
/// the spec's in the account.
pub(crate) fn not_owned(
    env: &RunEnv,
    target: &Target,
    observed: Option<&ObservedRole>,
    owner: Option<&str>,
) -> AccountError {
    let arn =
        observed.map_or_else(|| env.desired.arn(env.inner.aws.partition(), &target.account_id), |o| o.arn.clone());
    let finding = unowned(env, target, observed, &arn, owner);
    AccountError::new(ErrorCode::NotOwned, finding.message, Phase::Plan)
}

/// The finding for the role `arn` crossrole must not touch (`observed`, owned by spec `owner` or by none), saying
/// too why an adoption the spec approves in the account does not take it over (see [`plan::adoption_refused`]).
pub(crate) fn unowned(
    env: &RunEnv,
    target: &Target,
    observed: Option<&ObservedRole>,
    arn: &str,
    owner: Option<&str>,
) -> guardrails::Finding {
    match observed.filter(|_| owner.is_none()) {
        Some(o) => match plan::adoption_refused(&env.desired, &target.account_id, o) {
            Some(why) => guardrails::unadopted_role(arn, &why),
            None => guardrails::unowned_role(arn, owner),
        },
        None => guardrails::unowned_role(arn, owner),
    }
}

/// Runs one account of an apply, destroy or reconcile and returns its result.
pub(crate) async fn run(env: &RunEnv, target: &Target) -> AccountResult {
    let mut appeared = false;
    let row = work(env, target, Some(&mut appeared)).await;
    if !appeared {
        return row;
    }
    // A role appeared between the read and the create, which did nothing and is no longer in flight: read the
    // account again and plan from what is there (a role crossrole does not own is a conflict, left untouched).
    if let Some(s) = &env.sink {
        s.account(&row);
        s.flush().await;
    }
    let mut row = work(env, target, None).await;
    // A create was sent: if the account could not even be read, that create may have landed.
    if row.outcome == Outcome::Failed && row.phase == Phase::Done && row.changes.is_empty() {
        found_after_failure(env, target, &mut row).await;
    }
    row
}

/// The result of `r`, finished with `outcome`.
fn finish(mut r: AccountResult, outcome: Outcome) -> AccountResult {
    r.outcome = outcome;
    r.phase = Phase::Done;
    r.end_time = Some(crate::now_ms());
    r
}

/// One attempt at an account: read, plan, apply. With `appeared`, a create that finds a role made since the read
/// sets it and returns the row as it was before the create was sent (nothing was done): then the account is to be
/// read again.
async fn work(env: &RunEnv, target: &Target, appeared: Option<&mut bool>) -> AccountResult {
    let mut result = AccountResult {
        role_arn: env.desired.arn(env.inner.aws.partition(), &target.account_id),
        ..target.result(Outcome::Running, Phase::Assume)
    };
    let examined = match examine(env, target).await {
        Ok(e) => e,
        Err(mut error) => {
            // A role the ceiling keeps crossrole from changing is left as it is, like one it does not own.
            let outcome = if error.code == ErrorCode::OutsideCeiling { Outcome::Skipped } else { Outcome::Failed };
            // What an interrupted run of this operation made here stays on record.
            if let Some(last) = keep_known_made(env, target, &mut result).await {
                error.message.push_str(&in_flight_unknown(&last, "the account could not be read to tell"));
            }
            result.error = Some(error);
            return finish(result, outcome);
        }
    };
    if let Some(error) = unconfirmed(env, target, &examined) {
        result.error = Some(error);
        return finish(result, Outcome::Failed);
    }
    // What an interrupted run of this operation already did here.
    let before = carried_over(env, target, examined.plan.changes()).await;
    let changes: Vec<Change> = match &examined.plan {
        AccountPlan::InSync => {
            if target.action == Action::Remove {
                forget_placement(env, target).await;
                let outcome = if before.is_empty() { Outcome::Unchanged } else { Outcome::Changed };
                result.changes = before;
                return finish(result, outcome);
            }
            if env.write {
                remember_placement(env, target).await;
            }
            if before.is_empty() {
                return finish(result, Outcome::Unchanged);
            }
            // An earlier run made every change and stopped before it verified them: verified now.
            result.changes = before;
            return verified(env, target, &examined, result).await;
        }
        AccountPlan::Conflict { owner } => {
            result.error = Some(not_owned(env, target, examined.observed.as_ref(), owner.as_deref()));
            result.changes = before;
            return finish(result, Outcome::Skipped);
        }
        AccountPlan::Changes(c) => c.clone(),
    };
    if !env.write {
        result.changes = changes.iter().map(|c| c.shown(&env.redactor)).collect();
        return finish(result, Outcome::Drifted);
    }
    let done_before = before.len();
    let outcome = apply(env, target, &examined, &changes, before, &mut result).await;
    if outcome.as_ref().is_err_and(crossrole_aws::Error::is_fenced) {
        // This process may no longer write (its lease may have lapsed): it stops as for a shutdown, before the
        // crossroled that takes its work over starts. The write the fence stopped may have been sent: the row
        // stays the one written ahead of it, with that change last, in flight.
        env.inner.shutdown.cancel();
        if let Some(in_flight) = changes.get(result.changes.len().saturating_sub(done_before)) {
            result.changes.push(in_flight.shown(&env.redactor));
        }
        return result;
    }
    if matches!(outcome, Err(crossrole_aws::Error::Cancelled)) && env.inner.shutdown.is_cancelled() {
        // Stopped for shutdown between two changes: not an outcome. The row stays running, with the changes
        // made so far, and the next start (or the crossroled that takes the work over) resumes the account.
        return result;
    }
    // Read as absent, the role is there now (made since the read): the create did nothing, and whose the role is
    // is for a new read to tell — never for a write.
    if let Some(appeared) = appeared
        && let Err(crossrole_aws::Error::Aws(e)) = &outcome
        && e.kind == crossrole_aws::ErrorKind::AlreadyExists
        && result.changes.len() == done_before
    {
        *appeared = true;
        return result;
    }
    if let Err(e) = outcome {
        result.error = Some(error_from(&e, Phase::Apply));
        found_after_failure(env, target, &mut result).await;
        return finish(result, Outcome::Failed);
    }
    match target.action {
        Action::Remove => {
            forget_placement(env, target).await;
            finish(result, Outcome::Changed)
        }
        Action::Ensure => {
            remember_placement(env, target).await;
            verified(env, target, &examined, result).await
        }
    }
}

/// Applies `changes` in order, each written ahead into the account's row before it is sent, each applied one an
/// event; `result.changes` ends with every change made (those of an earlier run, `before`, first).
async fn apply(
    env: &RunEnv,
    target: &Target,
    examined: &Examined,
    changes: &[Change],
    before: Vec<ShownChange>,
    result: &mut AccountResult,
) -> Result<(), crossrole_aws::Error> {
    env.phase(&target.account_id, Phase::Apply);
    result.phase = Phase::Apply;
    let iam = AccountIam {
        iam: env.inner.aws.iam(&examined.credentials),
        account: examined.credentials.account_id.clone(),
        calls: &env.inner.calls,
        ctx: &env.ctx,
    };
    let done = std::sync::Mutex::new(before);
    let row = result.clone();
    let outcome = iam
        .apply_at(
            &env.desired.name,
            changes,
            // A revocation is dated when its deny is written, after the narrowed trust (see crossrole_core::revocation).
            || env.inner.config.clock.now(),
            || env.stop.is_cancelled(),
            |c| {
                // Write-ahead: the change is on record before it is sent.
                let mut row = row.clone();
                row.changes = done.lock().map(|d| d.clone()).unwrap_or_default();
                row.changes.push(c.shown(&env.redactor));
                let sink = env.sink.clone();
                Box::pin(async move {
                    if let Some(s) = sink {
                        s.account(&row);
                        s.flush().await;
                    }
                })
            },
            |c| {
                let change = c.shown(&env.redactor);
                env.emit(&target.account_id, Event::ChangeApplied { change: change.clone() });
                if let Ok(mut d) = done.lock() {
                    d.push(change);
                }
            },
        )
        .await;
    result.changes = done.into_inner().unwrap_or_default();
    outcome
}

/// How long an account whose write may have landed is read with patience before it is judged: as long as a write
/// waits between its attempts (`[aws] max_attempts`, `max_backoff`), at least two seconds.
fn find_patience(env: &RunEnv) -> std::time::Duration {
    env.inner.calls.retry().longest_wait().max(std::time::Duration::from_secs(2))
}

/// After a write failed, what is there: the role is read back, waiting out an IAM outage for a while (a write
/// whose answer was lost may have landed — a role created while IAM failed, say); when it is this spec's, its
/// creation is put on record (with its event) and so is the spec's placement, so that a destroy, even one that no
/// longer selects the account, looks there. When the account cannot be read in time, the error says the role may
/// be there; nothing is assumed (the grant must not name a role that may not exist), and the next run that reads
/// the account finds it.
async fn found_after_failure(env: &RunEnv, target: &Target, result: &mut AccountResult) {
    if target.action != Action::Ensure || !env.write {
        return;
    }
    let Ok(credentials) =
        env.inner.broker.bootstrap(&env.ctx, &target.account_id, target.joined_at, &env.session).await
    else {
        return;
    };
    let iam = AccountIam {
        iam: env.inner.aws.iam(&credentials),
        account: credentials.account_id.clone(),
        calls: &env.inner.calls,
        ctx: &env.ctx,
    };
    let until = tokio::time::Instant::now() + find_patience(env);
    match iam.find_role(&env.desired.name, until).await {
        Ok(Some(role)) if crossrole_core::spec::owner_of(&role.attributes.tags) == Some(env.spec.name.as_str()) => {
            remember_placement(env, target).await;
            if !result.changes.iter().any(|c| c.kind == crossrole_core::ops::ChangeKind::CreateRole) {
                let create = plan::plan(&env.desired.in_account(target.place(env.inner.aws.partition())), None);
                if let Some(c) = create.changes().first() {
                    let shown = c.shown(&env.redactor);
                    env.emit(&target.account_id, Event::ChangeApplied { change: shown.clone() });
                    result.changes.insert(0, shown);
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            // Not on record as placed: the grant names only roles known to be there. The next run reads it.
            if let Some(error) = &mut result.error {
                error.message.push_str(&format!(
                    "; the role may have been created meanwhile (IAM could not be read to tell: {e}): the next run \
                     that reaches the account reads it"
                ));
            }
        }
    }
}

/// The result of an account that an interrupted run of this operation left part-way through its changes and that
/// this run does not resume (`error` says why: the operation was cancelled, its failure tolerance exceeded, …). It
/// failed part-way, and its record keeps what was done, as a resumed run's would: the account is read (with the
/// patience of a write that may have landed) to settle the change that was in flight, and where the spec's role
/// is there the placement is put on record, so that a destroy, even one that no longer selects the account, looks
/// there (where a removal took it away, the placement goes). When the account cannot be read, the record keeps the
/// changes known to be made, and the error says the last may have been.
pub(crate) async fn left_part_way(env: &RunEnv, target: &Target, mut error: AccountError) -> AccountResult {
    let mut result = AccountResult {
        role_arn: env.desired.arn(env.inner.aws.partition(), &target.account_id),
        ..target.result(Outcome::Failed, Phase::Done)
    };
    let _guard = env.inner.locks.lock(&target.account_id, &env.desired.name, &env.session).await;
    let read = match tokio::time::timeout(find_patience(env), examine(env, target)).await {
        Ok(read) => read.map_err(|e| e.message),
        Err(_) => Err(format!("no answer within {:?}", find_patience(env))),
    };
    match read {
        Ok(examined) => {
            result.changes = carried_over(env, target, examined.plan.changes()).await;
            let ours = !matches!(examined.plan, AccountPlan::Conflict { .. });
            match (target.action, examined.observed.is_some()) {
                (Action::Ensure, true) if ours && env.write => remember_placement(env, target).await,
                (Action::Remove, false) if env.write => forget_placement(env, target).await,
                _ => {}
            }
        }
        Err(why) => {
            if let Some(last) = keep_known_made(env, target, &mut result).await {
                let why = format!("the account could not be read to tell: {why}");
                error.message.push_str(&in_flight_unknown(&last, &why));
            }
        }
    }
    result.error = Some(error);
    result.end_time = Some(crate::now_ms());
    result
}

/// Puts on `result` the changes an interrupted run of this operation is known to have made in the account, from
/// the row it left — every entry but the last, which was in flight — and the spec's placement where they made its
/// role. Returns the change that was in flight, unknown without a read of the account.
async fn keep_known_made(env: &RunEnv, target: &Target, result: &mut AccountResult) -> Option<ShownChange> {
    let mut made = target.prior.as_ref().map(|p| p.changes.clone()).unwrap_or_default();
    let in_flight = made.pop();
    let created = made.iter().any(|c| c.kind == crossrole_core::ops::ChangeKind::CreateRole);
    if created && target.action == Action::Ensure && env.write {
        remember_placement(env, target).await;
    }
    result.changes = made;
    in_flight
}

/// What an account's error adds when the change an interrupted run had in flight is unknown, and why.
fn in_flight_unknown(change: &ShownChange, why: &str) -> String {
    let subject = if change.subject.is_empty() { String::new() } else { format!(" {}", change.subject) };
    format!("; its last change ({:?}{subject}) was in flight and may have been made ({why})", change.kind)
}

/// The live check after the role was put in place, when the spec asks for it: a failure fails the account.
async fn verified(env: &RunEnv, target: &Target, examined: &Examined, mut result: AccountResult) -> AccountResult {
    if !env.spec.rollout.verify {
        return finish(result, Outcome::Changed);
    }
    env.phase(&target.account_id, Phase::Verify);
    result.phase = Phase::Verify;
    // The ExternalId the role requires now: its own, where the run kept it.
    let external_id = external_id_after(env, examined.observed.as_ref());
    let check = live_check(env, &target.account_id, &result.role_arn, external_id.as_ref()).await;
    let passed = check.outcome == CheckOutcome::Passed;
    let skipped = check.outcome == CheckOutcome::Skipped;
    result.verify = Some(VerifySummary {
        passed,
        assumed_account_id: check.assumed_account_id.clone(),
        attempts: check.attempts,
        error: check.error.clone(),
    });
    if !passed && !skipped {
        result.error = Some(AccountError::new(
            ErrorCode::VerifyFailed,
            format!("the trusted side cannot assume {}: {}", result.role_arn, check.error),
            Phase::Verify,
        ));
        return finish(result, Outcome::Failed);
    }
    finish(result, Outcome::Changed)
}

/// The changes an interrupted run of this operation made in the account, from the row it left: every entry but
/// the last was carried out; the last was in flight, and was carried out unless the new plan (`now`) still needs
/// it — then, if the crash kept its event from the journal, its event is sent now.
async fn carried_over(env: &RunEnv, target: &Target, now: &[Change]) -> Vec<ShownChange> {
    let Some(prior) = &target.prior else { return Vec::new() };
    let mut changes = prior.changes.clone();
    if let Some(last) = changes.last() {
        let still_needed = now.iter().any(|c| {
            let shown = c.shown(&env.redactor);
            shown.kind == last.kind && shown.subject == last.subject
        });
        if still_needed {
            changes.pop();
        } else if !announced(env, &target.account_id, last).await {
            env.emit(&target.account_id, Event::ChangeApplied { change: last.clone() });
        }
    }
    changes
}

/// Whether the journal has the event of `change` in `account` for this run's operation.
async fn announced(env: &RunEnv, account: &str, change: &ShownChange) -> bool {
    let mut after = 0;
    loop {
        let Ok(page) = env.inner.journal.read_events(&env.operation, after, 1000).await else { return false };
        for e in &page {
            let Ok(event) = crate::records::decode::<crossrole_core::ops::OperationEvent>(&e.payload, "event") else {
                continue;
            };
            if event.account_id == account
                && let Event::ChangeApplied { change: c } = &event.event
                && c.kind == change.kind
                && c.subject == change.subject
            {
                return true;
            }
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = last.sequence,
            _ => return false,
        }
    }
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
pub(crate) async fn live_check(
    env: &RunEnv,
    account: &str,
    role_arn: &str,
    external_id: Option<&crossrole_core::secret::ExternalId>,
) -> AssumeCheck {
    let trust = &env.spec.role.trust;
    if trust.require_mfa {
        return AssumeCheck::skipped("the role requires MFA, which crossrole cannot present; see the static checks");
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
            // Asked now (one call per operation), not read from a tree: one may be being walked while the first
            // accounts are verified, and a tree read before may be out of date.
            let members = env
                .inner
                .discovery
                .members_now(&env.ctx, std::slice::from_ref(&trusted))
                .await
                .map_err(|e| e.to_string())?;
            if !members.contains(&trusted) {
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
        Err(reason) => AssumeCheck::skipped(reason.clone()),
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
                    external_id,
                    timeout: env.spec.rollout.verify_timeout,
                },
            )
            .await
        }
    }
}

/// An account error from an AWS-side error, in a phase.
pub(crate) fn error_from(e: &crossrole_aws::Error, phase: Phase) -> AccountError {
    AccountError { code: e.code(), message: e.to_string(), aws_error_code: e.aws_code().map(str::to_string), phase }
}
