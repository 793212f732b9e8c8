//! The trusted side of a run: the grant policy, brought in line with what the accounts reached (an apply or a
//! reconcile, at the end) or removed (a destroy, first). The accounts whose roles it names are read back from the
//! journal ([`reached`]), so a resumed operation decides from the same outcome. Cutting it, from principals or
//! from roles that stay ([`GrantCut`]), is held to what a confirmed plan showed before it is written.

use std::collections::BTreeSet;

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    AccessSpec,
    grant::{
        self, GrantChange, GrantPlan,
        cut::GrantCut,
        former::{Former, Place, Release},
    },
    ops::{Event, Outcome},
    policy::grant_policy,
    revocation::Revoke,
    spec::{PrincipalKind, TrustedGrant},
};
use crossrole_store::OperationRow;

use crate::{
    Inner,
    account::Action,
    confirmed::{self, Fingerprint},
    events::EventSink,
    targets::{self, Standing},
};

use super::{former::Unread, source::all_rows};

/// What the trusted side is brought to.
pub(super) enum Want<'a> {
    /// Removed (a destroy).
    Removed,
    /// Naming the roles of `ensure` ([`Reached`]); a cut is first held to the `confirmed` plan's when the apply
    /// carries one.
    Naming { reached: &'a Reached, confirmed: Option<&'a Fingerprint> },
}

/// What the accounts of an operation reached, for the grant.
pub(super) struct Reached {
    /// The accounts whose roles the grant names.
    pub(super) ensure: BTreeSet<String>,
    /// Those whose role a principal cut from the grant may hold sessions of ([`grant::cut::sessions_in`]).
    pub(super) sessions_in: BTreeSet<String>,
    /// Those whose role stays, that the grant no longer names ([`grant::cut::unnamed`]).
    pub(super) left: BTreeSet<String>,
}

/// The accounts whose roles the grant names after this operation, and those whose role's sessions a cut revokes
/// ([`Reached`]): read back from the journal, so a resumed operation decides from the same outcome. An operation
/// limited to some accounts (`scope`) decides for those; the grant keeps naming the others where a full operation
/// would: where the spec was applied and still selects them, in the tree discovery keeps.
pub(super) async fn reached(
    inner: &Inner,
    op: &OperationRow,
    spec: &AccessSpec,
    scope: Option<&BTreeSet<String>>,
    ctx: &CallContext,
) -> Result<Reached, String> {
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
    let removed: BTreeSet<String> =
        rows.iter().filter(|r| r.action == Some(Action::Remove)).map(|r| r.account_id.clone()).collect();
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
    let sessions_in = grant::cut::sessions_in(&placements, &accounts, &removed);
    let touched: BTreeSet<String> = rows.iter().map(|r| r.account_id.clone()).collect();
    let left = grant::cut::unnamed(&placements, &touched, &accounts);
    Ok(Reached { ensure: accounts, sessions_in, left })
}

/// Plans and applies the trusted side's policy as `want` says, after removing the spec's former grants (`former`:
/// [`super::former::places`]; one that cannot be read fails it, unless `release` gives it up, which the events
/// then say). Returns the cut it made, if any: the principals the grant (now or former) was
/// detached from (they may no longer assume the spec's roles) and what becomes of their sessions. A cut that is not
/// the confirmed plan's writes nothing; nor does a policy that cannot be read or planned.
#[allow(clippy::too_many_arguments)] // the run's context, passed as the other steps take it
pub(super) async fn trusted_side(
    inner: &Inner,
    spec: &AccessSpec,
    g: Option<&TrustedGrant>,
    former: &BTreeSet<Place>,
    release: &Release,
    want: Want<'_>,
    ctx: &CallContext,
    op_id: &str,
    sink: &EventSink,
) -> Result<Option<GrantCut>, String> {
    // A grant policy is shared by every operation of the spec: one writer at a time, like roles — taken in one
    // order, so two operations that each remove the other's grant do not wait on each other.
    let mut places: BTreeSet<&Place> = former.iter().collect();
    let now = g.map(|g| (g.account_id.clone(), g.policy_name.clone()));
    places.extend(now.as_ref());
    let mut _guards = Vec::new();
    for (account, name) in places {
        _guards.push(inner.locks.lock(account, &format!("policy{}{name}", TrustedGrant::POLICY_PATH), op_id).await);
    }
    let session = format!("crossrole-{op_id}");
    let mut formers = Vec::new();
    let mut released = Vec::new();
    for place in former {
        match super::former::read(inner, spec, place, ctx, &session).await {
            Ok(found) => formers.extend(found),
            Err(error) => {
                let change = Unread { place, error }.outcome(inner, release).map_err(|e| e.message)?;
                released.push((place.0.clone(), change));
            }
        }
    }
    let released_in: BTreeSet<String> = released.iter().map(|(account, _)| account.clone()).collect();
    let current = match g {
        None => None,
        Some(g) => {
            let arn = g.policy_arn(inner.aws.partition());
            let open = || async {
                let creds =
                    inner.broker.bootstrap(ctx, &g.account_id, None, &session).await.map_err(|e| e.to_string())?;
                let iam = AccountIam {
                    iam: inner.aws.iam(&creds),
                    account: creds.account_id.clone(),
                    calls: &inner.calls,
                    ctx,
                };
                let observed = iam.read_grant(&arn).await;
                Ok::<_, String>((iam, observed))
            };
            let (mut iam, mut observed) = open().await?;
            if observed.as_ref().is_err_and(|e| inner.broker.stale(&g.account_id, e)) {
                (iam, observed) = open().await?;
            }
            let observed = observed.map_err(|e| e.to_string())?;
            let ensure = match &want {
                Want::Removed => None,
                Want::Naming { reached, .. } => Some(&reached.ensure),
            };
            let plan = grant_plan(inner, spec, g, ensure, observed.as_ref(), ctx).await.map_err(|e| e.to_string())?;
            match plan {
                GrantPlan::InSync => None,
                GrantPlan::Conflict { owner } => {
                    return Err(match owner {
                        Some(o) => format!("policy {arn} belongs to crossrole spec {o:?}"),
                        None => format!("policy {arn} exists and is not managed by crossrole; it is left untouched"),
                    });
                }
                GrantPlan::Changes(changes) => Some((g, iam, arn, changes)),
            }
        }
    };
    // The principals the grant's policy (a former one, or the spec's now) is detached from: their sessions of the
    // spec's roles are to be revoked (every session of the roles: one of them may still reach them through a group
    // the grant keeps, which crossrole does not read, so the plan says what is detached, not who lost access).
    let cut = match &want {
        Want::Removed => None,
        Want::Naming { reached, confirmed } => {
            let changes: Vec<GrantChange> = formers
                .iter()
                .flat_map(Former::cut_from)
                .chain(current.iter().flat_map(|(_, _, _, c)| c.iter().cloned()))
                .collect();
            let sessions_in = reached.sessions_in.clone();
            let cut = GrantCut::of(&changes, &spec.role.name, sessions_in, &reached.left, cut_revoke(spec));
            if let Some(plan) = confirmed {
                plan.check_grant_releasing(&confirmed::key(&inner.config.journal_key), cut.as_ref(), &released_in)?;
            }
            cut
        }
    };
    for (account, change) in released {
        sink.emit(&account, Event::ChangeApplied { change });
    }
    for f in &formers {
        super::former::remove(inner, f, ctx, &session, sink).await?;
    }
    if let Some((g, iam, arn, changes)) = current {
        iam.apply_grant(&arn, &changes, |c| sink.emit(&g.account_id, Event::ChangeApplied { change: c.shown() }))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(cut)
}

/// Whether a cut from principals revokes their sessions: as the spec says (a request's `keep_sessions` turned its
/// field off before the operation was journaled), in the words a role's own revocation uses.
pub(crate) fn cut_revoke(spec: &AccessSpec) -> Revoke {
    if spec.role.revoke_sessions_on_narrowing {
        Revoke::On
    } else {
        Revoke::Off("role.revoke_sessions_on_narrowing: false (the spec's, or the request's keep_sessions)".into())
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
