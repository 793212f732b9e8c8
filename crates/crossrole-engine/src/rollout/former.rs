//! The grants a spec no longer has ([`crossrole_core::grant::former`]): where the spec's earlier applies and
//! reconciles placed a grant that is not its grant now (its `grant` section removed, its account or policy name
//! changed). The spec as it is now no longer says where that was; the journal's records of those operations do
//! ([`places`]). What is there now is read from IAM ([`read`]): the policy, if it is still there and tagged as this
//! spec's, is removed as a destroy removes it; one that is not this spec's is never touched.
//!
//! One that cannot be read fails the trusted side, until a request gives up on it by account ([`Release`], the
//! request's `release_former_grants`, checked first by [`check_release`]): then it is left in place and said so
//! ([`Unread::outcome`]), and once an apply that released it succeeds, [`places`] no longer looks for it (that
//! apply settles the operations before it, as any apply that succeeded removing the former grants does).

use std::collections::BTreeSet;

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    AccessSpec,
    grant::{
        ObservedGrant,
        former::{self, Former, Place, Release},
    },
    names,
    ops::{AccountError, ChangeKind, Event, OperationEvent, OperationKind, OperationState, Phase},
    spec::{RawSpec, TrustedGrant},
};
use crossrole_store::OperationFilter;

use crate::{Error, Inner, account::error_from, events::EventSink, records};

/// Where the spec's earlier applies and reconciles placed a grant that is not `spec`'s grant now, as the journal
/// records them: an operation that succeeded wrote its grant (or found it in place); one that did not (failed,
/// cancelled, unfinished) counts where its events say it wrote the grant; a dry run never does. So a grant that was
/// never placed (an account mistyped, then corrected) is not looked for. The operations before the newest apply,
/// reconcile or destroy that succeeded removing the former grants (`records::operation_cuts_former_grants`) are
/// not read: it left none of theirs (so an account the grant left long ago, since closed, is not asked again). A
/// record this crossroled cannot read is passed over (and logged).
pub(crate) async fn places(inner: &Inner, spec: &AccessSpec) -> Result<BTreeSet<Place>, Error> {
    let filter = OperationFilter { spec_name: spec.name.clone(), ..Default::default() };
    let succeeded = records::stored_state(OperationState::Succeeded);
    let mut placed = BTreeSet::new();
    let mut maybe: Vec<(Place, String)> = Vec::new();
    let mut before = None;
    let mut settled = false;
    while !settled {
        let (rows, next) = inner.journal.list_operations(&filter, 200, before).await?;
        for row in &rows {
            let kind = records::kind_of(row.kind);
            let counted =
                matches!(kind, Some(OperationKind::Apply | OperationKind::Reconcile | OperationKind::Destroy));
            if row.dry_run || !counted {
                continue;
            }
            // Newest first: the first that succeeded removing the former grants settles every older one.
            settled = row.state == succeeded && records::operation_cuts_former_grants(&row.spec);
            if kind == Some(OperationKind::Destroy) {
                // Its own grant it removed, or failed to.
                if settled {
                    break;
                }
                continue;
            }
            let place = match records::decode::<RawSpec>(&row.spec, &format!("the spec of operation {}", row.id)) {
                Ok(raw) => raw.grant.map(|g| former::place_of(&spec.name, &g.account_id, &g.policy_name)),
                Err(e) => {
                    tracing::warn!(operation = row.id, error = %e, "its grant is not known: record unreadable");
                    None
                }
            };
            match place {
                Some(place) if row.state == succeeded => {
                    placed.insert(place);
                }
                Some(place) => maybe.push((place, row.id.clone())),
                None => {}
            }
            if settled {
                break;
            }
        }
        match next {
            Some(next) if !rows.is_empty() => before = Some(next),
            _ => break,
        }
    }
    let candidates = former::places(maybe.iter().map(|(p, _)| p), spec.grant.as_ref());
    for (place, op) in maybe {
        if candidates.contains(&place) && !placed.contains(&place) && wrote_grant(inner, &op, &place.0).await? {
            placed.insert(place);
        }
    }
    Ok(former::places(&placed, spec.grant.as_ref()))
}

/// Whether operation `op`'s events say it wrote the grant in `account` (created, updated or attached it).
async fn wrote_grant(inner: &Inner, op: &str, account: &str) -> Result<bool, Error> {
    let mut after = 0;
    loop {
        let rows = inner.journal.read_events(op, after, 1000).await?;
        let Some(last) = rows.last() else { return Ok(false) };
        after = last.sequence;
        for row in &rows {
            let Ok(e) = records::decode::<OperationEvent>(&row.payload, "an event") else { continue };
            if let Event::ChangeApplied { change } = &e.event
                && e.account_id == account
                && matches!(
                    change.kind,
                    ChangeKind::CreateGrantPolicy | ChangeKind::UpdateGrantPolicy | ChangeKind::AttachGrantPolicy
                )
            {
                return Ok(true);
            }
        }
    }
}

/// The IAM of `account` for this operation (`session`), and what it has at `arn`; a stale session is opened again
/// once.
async fn open<'a>(
    inner: &'a Inner,
    account: &str,
    arn: &str,
    ctx: &'a CallContext,
    session: &str,
) -> Result<(AccountIam<'a>, Option<ObservedGrant>), AccountError> {
    let once = || async {
        let creds =
            inner.broker.bootstrap(ctx, account, None, session).await.map_err(|e| error_from(&e, Phase::Assume))?;
        let iam =
            AccountIam { iam: inner.aws.iam(&creds), account: creds.account_id.clone(), calls: &inner.calls, ctx };
        let observed = iam.read_grant(arn).await;
        Ok::<_, AccountError>((iam, observed))
    };
    let (mut iam, mut observed) = once().await?;
    if observed.as_ref().is_err_and(|e| inner.broker.stale(account, e)) {
        (iam, observed) = once().await?;
    }
    Ok((iam, observed.map_err(|e| error_from(&e, Phase::Read))?))
}

/// The ARN of the grant policy at `place`.
pub(crate) fn arn_of(inner: &Inner, place: &Place) -> String {
    names::policy_arn(inner.aws.partition(), &place.0, TrustedGrant::POLICY_PATH, &place.1)
}

/// What removing the former grant at `place` does: `None` when it is gone, or not this spec's (crossrole never
/// touches a policy it did not create for the spec; logged). Fails, saying which policy, when it cannot be read.
pub(crate) async fn read(
    inner: &Inner,
    spec: &AccessSpec,
    place: &Place,
    ctx: &CallContext,
    session: &str,
) -> Result<Option<Former>, AccountError> {
    let arn = arn_of(inner, place);
    let (_, observed) = open(inner, &place.0, &arn, ctx, session).await.map_err(|mut e| {
        e.message = format!("the former grant {arn} cannot be read: {}", e.message);
        e
    })?;
    match former::plan_former(&spec.name, &place.0, &arn, observed.as_ref()) {
        Ok(found) => Ok(found),
        Err(why) => {
            tracing::info!(spec = spec.name, "former grant not removed: {why}");
            Ok(None)
        }
    }
}

/// Removes `former` as planned, each change said as it is made.
pub(crate) async fn remove(
    inner: &Inner,
    former: &Former,
    ctx: &CallContext,
    session: &str,
    sink: &EventSink,
) -> Result<(), String> {
    let (iam, _) = open(inner, &former.account_id, &former.policy_arn, ctx, session)
        .await
        .map_err(|e| format!("the former grant {}: {}", former.policy_arn, e.message))?;
    iam.apply_grant(&former.policy_arn, &former.changes, |c| {
        sink.emit(&former.account_id, Event::ChangeApplied { change: former.show(c) })
    })
    .await
    .map_err(|e| format!("the former grant {}: {e}", former.policy_arn))
}

/// Refuses, before anything is done, a release (`release_former_grants`) of an account where the journal places no
/// former grant of the spec (a typo would otherwise release nothing, silently), or whose former grants can all be
/// read (crossrole removes those: there is nothing to give up on).
pub(crate) async fn check_release(inner: &Inner, spec: &AccessSpec, release: &Release) -> Result<(), Error> {
    let places = places(inner, spec).await?;
    check_released_places(spec, &places, release)?;
    let ctx = CallContext::new();
    for account in &release.accounts {
        let here = places.iter().filter(|p| &p.0 == account);
        let mut unread = false;
        for place in here {
            unread |= read(inner, spec, place, &ctx, "crossrole-release").await.is_err();
        }
        if !unread {
            return Err(refused(
                account,
                "its former grant can be read, and crossrole removes it: there is nothing to release",
            ));
        }
    }
    Ok(())
}

/// Refuses a release of an account where none of `places` (the spec's former grants) is.
pub(crate) fn check_released_places(
    spec: &AccessSpec,
    places: &BTreeSet<Place>,
    release: &Release,
) -> Result<(), Error> {
    match release.accounts.iter().find(|a| !places.iter().any(|p| &&p.0 == a)) {
        None => Ok(()),
        Some(account) => {
            let why = format!(
                "spec {:?} has no former grant there (no apply or reconcile of it placed a grant there that it no \
                 longer has, or one that succeeded removed it)",
                spec.name
            );
            Err(refused(account, &why))
        }
    }
}

fn refused(account: &str, why: &str) -> Error {
    Error::Invalid(crossrole_core::Error::invalid("release_former_grants", format!("account {account}: {why}")))
}

/// A former grant that could not be read, and whether the request released it.
pub(crate) struct Unread<'a> {
    /// Where it is.
    pub(crate) place: &'a Place,
    /// Why it could not be read.
    pub(crate) error: AccountError,
}

impl Unread<'_> {
    /// What becomes of it under `release`: `Ok` with the change that says it is left in place, released; or the
    /// error (it is not released).
    pub(crate) fn outcome(
        self,
        inner: &Inner,
        release: &Release,
    ) -> Result<crossrole_core::ops::ShownChange, AccountError> {
        if !release.covers(self.place) {
            return Err(self.error);
        }
        let arn = arn_of(inner, self.place);
        Ok(former::released(&self.place.0, &arn, &release.by, &self.error.message))
    }
}
