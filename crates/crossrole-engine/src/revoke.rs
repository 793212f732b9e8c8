//! `crossrole revoke`, for an incident: every session of a spec's role issued before now denied, in every account
//! where the journal has the spec placed (or in those of them the request names), as an operation.
//!
//! Each account costs one `AssumeRole` (the bootstrap role), one `GetRole`, one `GetRolePolicy` (a policy of that
//! name already there: the console's, or a person's statements, kept) and one `PutRolePolicy` writing the
//! `AWSRevokeOlderSessions` deny ([`crossrole_core::revocation`]). The journal's placements say where to look, not
//! what to write to: the role is read first, and the deny is written only when its ownership tags say it is this
//! spec's. A role of that name that crossrole does not own (deleted and made again by hand, say) or that another
//! spec owns is left as it is, and the account is skipped as not owned, saying why; so is an account named that
//! does not have the spec placed. The deny is kept 12 hours (the longest session IAM issues, and the longest a
//! console session signed in from one of the role's sessions lasts, whatever the role's own maximum; shorter only
//! on emulators, by `emulator_testing.revocation_hold`), then a later apply or reconcile removes it; its instant is
//! taken just before it is written.
//!
//! Like an apply, it is written to the journal before it starts, reports progress in events and a result per
//! account, can be cancelled, and is resumed after a restart (the accounts without a final row are revoked again:
//! a later instant denies at least what an earlier one did), on the organization-wide skeleton
//! ([`crate::sweep`]): its accounts are numbered first, and each is put on record and revoked in as soon as the
//! organization's pages list it ACTIVE, while the rest of the organization is still being read.

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::reconcile::AccountIam;
use crossrole_core::{
    AccessSpec,
    ops::{AccountError, AccountResult, ErrorCode, Event, Operation, OperationKind, OperationState, Outcome, Phase},
    org::OrgTree,
    plan::Change,
    revocation::{LONGEST_SESSION_SECS, POLICY_NAME, Revocation, as_written, split},
    spec::{RawSpec, owner_of},
};
use crossrole_store::{NewOperation, OperationRow};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::{
    Engine, Error, Inner,
    account::error_from,
    events::EventSink,
    records, rollout,
    sweep::{self, Sweep, Target, Visit},
};

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
                spec: records::encode_operation_spec(&sealed, request.accounts.as_ref()),
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

/// A revocation's visit: read the role, write the deny if it is this spec's.
struct Revoke {
    spec: AccessSpec,
    /// Where the journal has the spec placed.
    placed: BTreeSet<String>,
    /// The accounts to revoke in: those named that the spec is placed in (the others are refused), or all where
    /// it is placed.
    accounts: BTreeSet<String>,
}

/// Runs (or resumes) a revocation to its end; a shutdown leaves it unfinished, to be resumed.
pub(crate) async fn run(
    inner: Arc<Inner>,
    op: OperationRow,
    spec: AccessSpec,
    cancel: CancellationToken,
    sink: EventSink,
) {
    let span = tracing::info_span!("operation", id = %op.id, kind = "revoke", spec = %spec.name);
    let visit = match inner.journal.placements(&spec.name).await {
        Ok(placed) => {
            let placed: BTreeSet<String> = placed.into_iter().collect();
            let accounts = records::operation_scope(&op.spec).unwrap_or_else(|| placed.clone());
            Ok(Revoke { spec, placed, accounts })
        }
        Err(e) => Err(format!("cannot read where spec {} is placed: {e}; nothing was revoked", spec.name)),
    };
    sweep::run(inner, op, visit, cancel, sink, span).await
}

impl Visit for Revoke {
    type Done = Done;
    const KIND: &'static str = "revoke";
    const NAME: &'static str = "the revocation";
    const FAILED: &'static str = "revoked";
    const NEEDS_ORGANIZATION: bool = false;

    /// Numbered first, in account id order; an account that left the organization or is not ACTIVE is skipped
    /// once the organization says so.
    fn accounts(&self) -> Option<&BTreeSet<String>> {
        Some(&self.accounts)
    }

    fn refused(&self, account: &str) -> Option<(ErrorCode, String)> {
        (!self.placed.contains(account)).then(|| {
            (
                ErrorCode::NotOwned,
                format!(
                    "crossrole has not applied spec {} in this account, so no role there is one it may revoke",
                    self.spec.name
                ),
            )
        })
    }

    fn organization(&self, _tree: &OrgTree) {}

    fn started(&self, inner: &Inner, target: &Target) -> AccountResult {
        let mut result = target.result(Outcome::Running, Phase::Assume);
        let role = &self.spec.role;
        result.role_arn =
            crossrole_core::names::role_arn(inner.aws.partition(), &target.account_id, &role.path, &role.name);
        result
    }

    async fn visit<'a>(
        &'a self,
        sweep: &'a Sweep<Self>,
        _target: &'a Target,
        iam: &'a AccountIam<'a>,
    ) -> Result<Done, (crossrole_aws::Error, Phase)> {
        written(sweep, iam, &self.spec.role.name).await
    }

    fn failed(&self, e: &crossrole_aws::Error, phase: Phase) -> AccountError {
        let mut error = error_from(e, phase);
        if matches!(e, crossrole_aws::Error::Aws(a) if a.is_not_found()) {
            error.message = format!(
                "there is no role {} in this account (removed since it was placed): {}",
                self.spec.role.name, error.message
            );
        }
        error
    }

    fn record(&self, sweep: &Sweep<Self>, result: &mut AccountResult, done: Done) {
        match done {
            Done::Written(change) => {
                let shown = change.shown(&sweep.inner.redactor);
                result.outcome = Outcome::Changed;
                result.changes = vec![shown.clone()];
                sweep.sink.emit(&result.account_id, Event::ChangeApplied { change: shown });
            }
            Done::NotOwned(why) => {
                result.outcome = Outcome::Skipped;
                result.error = Some(AccountError::new(ErrorCode::NotOwned, why, Phase::Read));
            }
        }
        sweep.sink.account(result);
    }

    fn ending(failed: u32) -> (OperationState, String) {
        match failed {
            0 => (OperationState::Succeeded, String::new()),
            n => (
                OperationState::Failed,
                format!("{} could not be {}; each says why", rollout::accounts(n as usize), Self::FAILED),
            ),
        }
    }
}

/// What one account's revocation came to.
pub(crate) enum Done {
    /// The deny was written: this change.
    Written(Change),
    /// The role there is not this spec's: nothing was written, for this reason.
    NotOwned(String),
}

/// Reads role `role` (one `GetRole`) and, when its ownership tags say it is this spec's, its
/// `AWSRevokeOlderSessions` policy if any (one `GetRolePolicy`), then writes the deny (one `PutRolePolicy`), every
/// statement of that policy that is not a revocation kept; the error comes with the phase it failed in.
async fn written(
    sweep: &Sweep<Revoke>,
    iam: &AccountIam<'_>,
    role: &str,
) -> Result<Done, (crossrole_aws::Error, Phase)> {
    let env = sweep;
    let account = iam.account.as_str();
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Read });
    let Some(found) = iam.role_record(role).await.map_err(|e| (e, Phase::Read))? else {
        let message = format!("The role with name {role} cannot be found.");
        let missing = crossrole_aws::AwsError::from_code("iam:GetRole", Some("NoSuchEntity"), Some(404), message);
        let missing = crossrole_aws::Error::Aws(missing);
        return Err((missing, Phase::Read));
    };
    let spec = env.visit.spec.name.as_str();
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
    // On emulators, a test may hold it shorter (`emulator_testing.revocation_hold`, refused against AWS).
    let (keep_for, held) = match env.inner.config.revocation_hold_secs {
        Some(hold) if hold < LONGEST_SESSION_SECS => (
            hold,
            format!(
                "; kept {hold}s, not {LONGEST_SESSION_SECS}s, by emulator_testing.revocation_hold: for tests on \
                 emulators only"
            ),
        ),
        _ => (LONGEST_SESSION_SECS, String::new()),
    };
    // A policy of that name already there (the console's, crossrole's, a person's statements) is merged, never
    // replaced: its revocation with this one (the later instant), every other statement kept as it was written.
    let existing = iam.inline_policy(role, POLICY_NAME).await.map_err(|e| (e, Phase::Read))?;
    let (there, others) = existing.as_deref().map(split).unwrap_or_default();
    let now = Revocation::at(env.inner.config.clock.now(), keep_for);
    let change = Change::RevokeSessions {
        before: existing.as_deref().map(as_written),
        revocation: there.map_or(now, |t| t.merge(now)),
        keep_for,
        reason: format!("crossrole revoke asked for it (operation {}){held}", env.operation),
        others,
    };
    env.sink.emit(account, Event::PhaseStarted { phase: Phase::Apply });
    let nothing = |_: &Change| futures::future::ready(()).boxed();
    iam.apply(role, std::slice::from_ref(&change), || env.stop.is_cancelled(), nothing, |_| {})
        .await
        .map_err(|e| (e, Phase::Apply))?;
    Ok(Done::Written(change))
}
