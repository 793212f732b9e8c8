//! Which accounts an operation works on, and which it skips and why: one function for plans and applies, so a plan
//! shows exactly the accounts, skips and reasons an apply would.
//!
//! The targets are the selected accounts (to ensure the role, or to remove it for a destroy), then — for a destroy
//! or a pruning apply — the accounts where the spec was applied before and that it no longer selects (to remove
//! it). Skipped are the selected accounts that are not ACTIVE, and the accounts to clean up that cannot be worked
//! on (suspended, or gone from the organization).
//!
//! An apply reads where accounts are now ([`crossrole_aws::discovery::Discovery::select_fresh`]): only the selected
//! part of the organization when an earlier read says where it is, and the whole of it when accounts to clean up
//! are no longer in that part.
//!
//! An apply or reconcile that runs while its targets are found — and a plan or verification whose tree of the
//! organization is walked anew — is sent the selected accounts as the organization's pages list them
//! ([`crossrole_aws::discovery::Found`]), and none before the guardrails that need the organization have passed.
//!
//! A spec whose `role.adopt_accounts` names an account its selection does not hold is refused, naming the field,
//! before any account is worked on.
//!
//! The trusted side's grant names the roles of the accounts where the role is this spec's and in place:
//! [`grant_accounts`] decides it from per-account outcomes, the same way for a plan and for the end of an apply.

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::{
    calls::CallContext,
    discovery::{Found, Fresh},
};
use crossrole_core::{
    AccessSpec,
    guardrails::{self, OrgContext},
    org::{AccountInfo, OrgTree},
    spec::AccountState,
};

use crate::{
    Error, Inner,
    account::{Action, Target},
};

/// An account matched but not worked on.
#[derive(Debug, Clone)]
pub(crate) struct Skip {
    pub(crate) account: AccountInfo,
    pub(crate) reason: String,
}

/// The resolved targets of an operation.
pub(crate) struct Resolved {
    pub(crate) tree: Arc<OrgTree>,
    /// In order; `index` is the position.
    pub(crate) targets: Vec<Target>,
    pub(crate) skipped: Vec<Skip>,
    /// How many placements are to be cleaned up (some of them may be skipped).
    pub(crate) cleanup: u32,
}

/// Resolves `spec`'s targets for an apply (`remove_all` false, with the guardrails that need the organization) or
/// a destroy (true), from a tree of the organization younger than `max_age`; only the accounts in `scope`, if
/// given. `found`, if given, is sent the selected accounts as they are found, once the guardrails have passed
/// (see [`found_as_read`]); they are in the targets returned too.
pub(crate) async fn resolve(
    inner: &Inner,
    spec: &AccessSpec,
    remove_all: bool,
    ctx: &CallContext,
    max_age: std::time::Duration,
    scope: Option<&BTreeSet<String>>,
    found: Option<Found>,
) -> Result<Resolved, Error> {
    // A spec that takes roles over is checked against its whole selection before any account is worked on (see
    // below): its accounts are not sent as they are found.
    let found = if spec.role.adopt_accounts.is_empty() { found } else { None };
    let cleaning = remove_all || spec.rollout.prune;
    let in_scope = |account: &str| scope.is_none_or(|s| s.contains(account));
    let mut placements = if cleaning { inner.journal.placements(&spec.name).await? } else { vec![] };
    placements.retain(|p| in_scope(p));
    // An apply that must read afresh reads only the part of the organization it selects from — unless it has
    // accounts to clean up that the part does not hold: where they went takes the whole organization to say. A
    // scoped one works from the tree as discovery keeps it: its accounts were just read into it
    // (`Discovery::learn`). Any other works from the tree discovery keeps if it is younger than `max_age`, else
    // walks the organization, finding its accounts as the pages list them if asked.
    let mut checked = false;
    let mut fresh = if scope.is_some() {
        whole(inner, spec, ctx, std::time::Duration::MAX, None).await?
    } else if max_age.is_zero() && !remove_all {
        match found {
            Some(found) => {
                let read = |found: Found| async move {
                    Ok(inner.discovery.select_fresh_found(ctx, &spec.targets, "targets", Some(&found)).await?)
                };
                let (fresh, passed) = found_as_read(inner, spec, ctx, found, Membership::Now, read).await?;
                checked = passed;
                fresh
            }
            None => inner.discovery.select_fresh(ctx, &spec.targets, "targets").await?,
        }
    } else {
        match found {
            Some(found) if !remove_all => {
                let read = |found: Found| async move { whole(inner, spec, ctx, max_age, Some(&found)).await };
                let (fresh, passed) = found_as_read(inner, spec, ctx, found, Membership::IfFound, read).await?;
                checked = passed;
                fresh
            }
            _ => whole(inner, spec, ctx, max_age, None).await?,
        }
    };
    fresh.selection.selected.retain(|a| in_scope(&a.id));
    fresh.selection.skipped.retain(|s| in_scope(&s.account.id));
    if !fresh.whole && placements.iter().any(|p| !fresh.tree.accounts.contains_key(p)) {
        fresh = whole(inner, spec, ctx, std::time::Duration::ZERO, None).await?;
    }
    // The guardrails keep unsafe access from being granted; taking access away is never refused.
    if !remove_all && !checked {
        let members = inner.discovery.members(ctx, &fresh, &guardrails::membership_checked(spec)).await?;
        guardrails::enforce(spec, inner.aws.partition(), OrgContext { member_accounts: Some(&members) })?;
    }
    // `role.adopt_accounts` names only accounts the spec targets: one the selection does not hold would be
    // silently ignored (validation refused those the targets alone rule out).
    if !remove_all && scope.is_none() {
        let matched = fresh.selection.selected.iter().map(|a| a.id.as_str());
        let matched = matched.chain(fresh.selection.skipped.iter().map(|s| s.account.id.as_str()));
        crossrole_core::spec::adopt_outside_selection(spec, matched)?;
    }
    let Fresh { tree, selection, .. } = fresh;

    let action = if remove_all { Action::Remove } else { Action::Ensure };
    let selected: BTreeSet<&str> = selection.selected.iter().map(|a| a.id.as_str()).collect();
    let mut targets: Vec<Target> = selection.selected.iter().map(|a| target(a, action)).collect();
    let mut skipped: Vec<Skip> = Vec::new();
    let mut cleanup = 0;
    if cleaning {
        for account in placements {
            if selected.contains(account.as_str()) {
                continue;
            }
            cleanup += 1;
            match tree.accounts.get(&account) {
                Some(a) if a.state == AccountState::Active => targets.push(target(a, Action::Remove)),
                Some(a) => skipped.push(Skip {
                    account: a.clone(),
                    reason: format!("account is {}; its role cannot be removed now", a.state.as_str()),
                }),
                None => skipped.push(Skip {
                    account: AccountInfo {
                        id: account.clone(),
                        name: String::new(),
                        email: String::new(),
                        state: AccountState::Closed,
                        parent_id: String::new(),
                        joined_at: None,
                    },
                    reason: "account left the organization; its role cannot be removed by crossrole".into(),
                }),
            }
        }
    }
    skipped.extend(selection.skipped.into_iter().map(|s| Skip { account: s.account, reason: s.reason }));
    for (i, t) in targets.iter_mut().enumerate() {
        t.index = i as u32;
    }
    Ok(Resolved { tree, targets, skipped, cleanup })
}

/// When [`found_as_read`] reads the trusted accounts' membership for the guardrails (when they need it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// At once, while the organization is read (the read is a walk: accounts will be found).
    Now,
    /// Only once an account is found: a tree young enough is read with no walk and finds none, and then the
    /// guardrails are the resolution's, from the tree, with no call.
    IfFound,
}

/// The selection `read` makes, its accounts sent to `out` as they are found — but none before the guardrails that
/// need the organization have passed (the trusted accounts' membership, read now with `DescribeAccount`, as
/// `membership` says): an unsafe spec is refused before any account is worked on, as when the targets are
/// resolved first. Returns the selection, and whether the guardrails were checked.
async fn found_as_read<F, Fut>(
    inner: &Inner,
    spec: &AccessSpec,
    ctx: &CallContext,
    out: Found,
    membership: Membership,
    read: F,
) -> Result<(Fresh, bool), Error>
where
    F: FnOnce(Found) -> Fut,
    Fut: std::future::Future<Output = Result<Fresh, Error>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let checked = guardrails::membership_checked(spec);
    let check = || async {
        let members = inner.discovery.members_now(ctx, &checked).await?;
        guardrails::enforce(spec, inner.aws.partition(), OrgContext { member_accounts: Some(&members) })?;
        Ok::<_, Error>(true)
    };
    let forward = async {
        // With no membership to read, checked at once, whatever `membership` says: it costs no call.
        let mut passed = (membership == Membership::Now || checked.is_empty()) && check().await?;
        while let Some(batch) = rx.recv().await {
            if !passed {
                passed = check().await?;
            }
            // An operation that stopped listening has stopped; the selection at the end is what counts.
            let _ = out.send(batch);
        }
        Ok::<_, Error>(passed)
    };
    Ok(futures::try_join!(read(tx), forward)?)
}

/// How many accounts the selector selected in the tree read before, if there is one (no call): what the
/// operation expects to find while it is finding its targets.
pub(crate) async fn expected(inner: &Inner, spec: &AccessSpec) -> Option<usize> {
    let tree = inner.discovery.cached_tree().await?;
    crossrole_core::org::resolve(&tree, &spec.targets, "targets")
        .ok()
        .map(|s| s.finish(&Default::default()).selected.len())
}

/// The selection from a tree of the whole organization younger than `max_age` (`found`: see
/// [`crossrole_aws::discovery::Discovery::select_within_found`]).
async fn whole(
    inner: &Inner,
    spec: &AccessSpec,
    ctx: &CallContext,
    max_age: std::time::Duration,
    found: Option<&Found>,
) -> Result<Fresh, Error> {
    let (tree, selection) = inner.discovery.select_within_found(ctx, &spec.targets, "targets", max_age, found).await?;
    Ok(Fresh { tree, selection, whole: true })
}

pub(crate) fn target(a: &AccountInfo, action: Action) -> Target {
    Target {
        index: 0,
        account_id: a.id.clone(),
        account_name: a.name.clone(),
        joined_at: a.joined_at,
        action,
        prior: None,
    }
}

/// Where an account stands, as far as the grant is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The role is this spec's and in place (applied, in sync, or planned to be made so).
    InPlace,
    /// The account failed; whether its role was in place is known only from where the spec was applied before.
    Failed,
    /// Anything else: not owned, skipped, removed, not started, not examined.
    Out,
}

/// The accounts whose roles the grant names: those where the role is in place, and those that failed but where
/// the spec was applied before (a transient failure must not cut access it had granted).
pub(crate) fn grant_accounts<'a>(
    standings: impl IntoIterator<Item = (&'a str, Standing)>,
    placements: &BTreeSet<String>,
) -> BTreeSet<String> {
    standings
        .into_iter()
        .filter(|(account, s)| match s {
            Standing::InPlace => true,
            Standing::Failed => placements.contains(*account),
            Standing::Out => false,
        })
        .map(|(account, _)| account.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_names_roles_in_place_and_failed_ones_it_named_before() {
        let placements: BTreeSet<String> = ["2", "3"].map(String::from).into();
        let got = grant_accounts(
            [
                ("1", Standing::InPlace),
                ("2", Standing::Failed),
                ("3", Standing::Out),
                ("4", Standing::Failed),
                ("5", Standing::Out),
            ],
            &placements,
        );
        assert_eq!(got, ["1", "2"].map(String::from).into());
    }
}
