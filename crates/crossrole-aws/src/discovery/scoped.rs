//! An apply's fresh read of the part of the organization its selector looks at.
//!
//! An apply must see where accounts are now: an account moved out of a selected OU since the last read must not
//! get the role, one moved in must. Walking the whole organization for that costs a call per unit and per page of
//! 20 accounts at Organizations' 10 requests per second — about a minute at 10,000 accounts — whatever the apply
//! selects. Given a tree read before (of any age: it only says where to look), an apply re-reads just:
//! - each selected unit's ancestors' child units (`ListOrganizationalUnitsForParent`, one per ancestor), which
//!   confirms that the unit is still where the selector found it, under the names its path says;
//! - each selected unit's subtree, walked afresh: its units, and the accounts in each with their states.
//!
//! What the selection depends on is then as fresh as a full walk would make it. What the part cannot answer
//! falls back to the full walk, which answers it or names the error: a selector of accounts by id or of the
//! root, a unit or exclusion the earlier tree does not know, a unit that moved, was renamed or is gone. The one
//! thing kept from the earlier tree is the organization itself (its id and management account never change).
//! Exclusions of units outside the part are left out: they cannot change what is selected in it.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use crossrole_core::{
    org::{self, OrgTree, OrgUnit, Selection},
    spec::TargetSelector,
};
use futures::{StreamExt, TryStreamExt, stream};

use super::{
    Discovery,
    found::{Finder, Found},
};
use crate::{
    api::OuRecord,
    calls::{CallContext, Quota},
    error::{Error, ErrorKind},
};

/// A selection read afresh, for an apply.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// What the selection was made from: the whole organization (`whole`), or only its root, the selected units'
    /// ancestors (without their accounts) and the selected units' subtrees.
    pub tree: Arc<OrgTree>,
    /// The selected and skipped accounts.
    pub selection: Selection,
    /// Whether `tree` holds the whole organization.
    pub whole: bool,
}

impl Discovery {
    /// The accounts `selector` selects, read afresh (see the module's documentation): from the selected part of
    /// the organization when a tree read before says where it is, else from a full walk. Tags as
    /// [`Discovery::tags`] keeps them. `at` is the selector's field path for errors.
    pub async fn select_fresh(&self, ctx: &CallContext, selector: &TargetSelector, at: &str) -> Result<Fresh, Error> {
        self.select_fresh_found(ctx, selector, at, None).await
    }

    /// Like [`Discovery::select_fresh`]; `found`, if given, is sent the selected accounts as they are listed,
    /// before the whole selection is known (see [`Found`]).
    pub async fn select_fresh_found(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        found: Option<&Found>,
    ) -> Result<Fresh, Error> {
        if let Some(known) = self.cached_tree().await
            && let Some(scope) = Scope::of(&known, selector)
        {
            let mut finder = Finder::new(selector, at, found, Some((&known, &scope)));
            match self.read_scope(ctx, &known, &scope, &mut finder).await? {
                Some((tree, selector)) => match org::resolve(&tree, &selector, at) {
                    Ok(structural) => {
                        let selection = self.finish(ctx, structural, self.config.tags_max_age).await?;
                        return Ok(Fresh { tree, selection, whole: false });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "the selected part does not resolve; reading the whole organization")
                    }
                },
                None => tracing::debug!("the selected part of the organization moved; reading the whole organization"),
            }
        }
        let mut finder = Finder::new(selector, at, found, None);
        let (tree, selection) =
            self.select_aged(ctx, selector, at, Duration::ZERO, self.config.tags_max_age, &mut finder).await?;
        Ok(Fresh { tree, selection, whole: true })
    }

    /// Which of `accounts` are members of the organization now: those in `fresh`'s tree, and when that tree is
    /// not the whole organization, those `DescribeAccount` finds.
    pub async fn members(
        &self,
        ctx: &CallContext,
        fresh: &Fresh,
        accounts: &[String],
    ) -> Result<BTreeSet<String>, Error> {
        let mut members = BTreeSet::new();
        let mut ask = Vec::new();
        for a in accounts {
            if fresh.tree.accounts.contains_key(a) {
                members.insert(a.clone());
            } else if !fresh.whole {
                ask.push(a.clone());
            }
        }
        members.extend(self.members_now(ctx, &ask).await?);
        Ok(members)
    }

    /// Which of `accounts` are members of the organization now, as `DescribeAccount` finds them (one call each).
    pub async fn members_now(&self, ctx: &CallContext, accounts: &[String]) -> Result<BTreeSet<String>, Error> {
        let found: Vec<Option<String>> = stream::iter(accounts.to_vec())
            .map(|a| async move {
                let info = self
                    .calls
                    .call(ctx, Quota::Organizations, "DescribeAccount", || self.api.describe_account(&a))
                    .await?;
                Ok::<_, Error>(info.map(|_| a))
            })
            .buffer_unordered(self.config.parallelism.max(1))
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Reads `scope` afresh; `None` if a selected unit is no longer where `known` has it (or is gone). The tree
    /// comes with the selector to resolve on it.
    async fn read_scope(
        &self,
        ctx: &CallContext,
        known: &OrgTree,
        scope: &Scope,
        finder: &mut Finder<'_>,
    ) -> Result<Option<(Arc<OrgTree>, TargetSelector)>, Error> {
        // The ancestors' child units are listed (to confirm each chain) while the subtrees are walked.
        let parents: BTreeSet<String> =
            scope.chains.iter().flat_map(|chain| chain.iter().take(chain.len().saturating_sub(1))).cloned().collect();
        let mut units = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        for chain in &scope.chains {
            let (Some(id), Some(parent)) = (chain.last(), chain.iter().rev().nth(1)) else { continue };
            units.insert(
                id.clone(),
                OrgUnit {
                    id: id.clone(),
                    name: String::new(),
                    parent_id: Some(parent.clone()),
                    children: vec![],
                    accounts: vec![],
                },
            );
        }
        let tops = scope.chains.iter().filter_map(|c| c.last().cloned()).collect();
        let walked = self.walk_below(ctx, tops, parents.into_iter().collect(), &mut units, &mut accounts, finder).await;
        let children = match walked {
            Ok(children) => children,
            Err(Error::Aws(e))
                if e.kind == ErrorKind::NotFound || e.code.as_deref() == Some("ParentNotFoundException") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some((mut tree, selector)) = confirm(known, scope, &children, units) else { return Ok(None) };
        tree.accounts = accounts;
        let tree = Arc::new(tree);
        self.note_read(&tree, tokio::time::Instant::now(), std::time::SystemTime::now());
        Ok(Some((tree, selector)))
    }
}

/// The part's units (`units`, walked afresh) under each chain confirmed link by link by the ancestors' child units
/// read now (`children`), with their names read now; `None` if a link is broken, or an excluded unit the part held
/// is no longer in it. The tree has no accounts yet; it comes with the selector to resolve on it.
pub(super) fn confirm(
    known: &OrgTree,
    scope: &Scope,
    children: &BTreeMap<String, Vec<OuRecord>>,
    mut units: BTreeMap<String, OrgUnit>,
) -> Option<(OrgTree, TargetSelector)> {
    for chain in &scope.chains {
        for pair in chain.windows(2) {
            let [parent, child] = pair else { continue };
            let record = children.get(parent).and_then(|ous| ous.iter().find(|o| &o.id == child))?;
            let unit = units.entry(child.clone()).or_insert_with(|| OrgUnit {
                id: child.clone(),
                name: String::new(),
                parent_id: Some(parent.clone()),
                children: vec![],
                accounts: vec![],
            });
            unit.name = record.name.clone();
        }
        for pair in chain.windows(2) {
            let [parent, child] = pair else { continue };
            let root = known.units.get(parent).filter(|_| *parent == known.root_id);
            let unit = units.entry(parent.clone()).or_insert_with(|| OrgUnit {
                id: parent.clone(),
                name: root.map(|r| r.name.clone()).unwrap_or_default(),
                parent_id: None,
                children: vec![],
                accounts: vec![],
            });
            if !unit.children.contains(child) {
                unit.children.push(child.clone());
            }
        }
    }
    let tree = OrgTree {
        organization: known.organization.clone(),
        root_id: known.root_id.clone(),
        units,
        accounts: BTreeMap::new(),
    };
    // Exclusions outside the part cannot change what is selected in it, and are left out. One the part no
    // longer holds but held before (an excluded OU renamed, moved or deleted) is not dropped: leaving it
    // out would select what the operator excluded. The whole organization answers it (or names the error).
    let paths: BTreeSet<String> = tree.units.keys().map(|id| tree.path_of(id)).collect();
    if scope.excluded_ids_inside.iter().any(|id| !tree.units.contains_key(id))
        || scope.excluded_paths_inside.iter().any(|p| !paths.contains(p))
    {
        return None;
    }
    let mut selector = scope.selector.clone();
    selector.exclude_organizational_unit_ids.retain(|id| tree.units.contains_key(id));
    selector.exclude_organizational_unit_paths.retain(|p| paths.contains(p));
    Some((tree, selector))
}

/// The part of the organization a selector looks at, as a tree read before has it.
#[derive(Debug)]
pub(super) struct Scope {
    /// Per selected unit (none of them below another), the unit ids from the root down to it.
    chains: Vec<Vec<String>>,
    /// The excluded units (by id, and by path) that were inside the part: each must still be found there.
    excluded_ids_inside: Vec<String>,
    excluded_paths_inside: Vec<String>,
    selector: TargetSelector,
}

impl Scope {
    /// The scope of `selector` in `known`; `None` when only a full walk can answer it.
    fn of(known: &OrgTree, selector: &TargetSelector) -> Option<Scope> {
        if !selector.account_ids.is_empty() {
            return None;
        }
        let by_path: BTreeMap<String, &String> = known.units.keys().map(|id| (known.path_of(id), id)).collect();
        let mut selected: Vec<&String> = Vec::new();
        for id in &selector.organizational_unit_ids {
            selected.push(known.units.get_key_value(id)?.0);
        }
        for path in &selector.organizational_unit_paths {
            selected.push(by_path.get(path)?);
        }
        let known_exclusions = selector.exclude_organizational_unit_ids.iter().all(|id| known.units.contains_key(id))
            && selector.exclude_organizational_unit_paths.iter().all(|p| by_path.contains_key(p));
        if selected.is_empty() || !known_exclusions {
            return None;
        }
        let mut chains: Vec<Vec<String>> = Vec::new();
        for id in selected {
            let mut chain = vec![id.clone()];
            while let Some(parent) = known.units.get(chain.last()?).and_then(|u| u.parent_id.clone()) {
                if chain.len() > 64 || chain.contains(&parent) {
                    return None;
                }
                chain.push(parent);
            }
            chain.reverse();
            // The root has no chain to confirm: selecting it is walking everything.
            if chain.len() < 2 || chain.first() != Some(&known.root_id) {
                return None;
            }
            chains.push(chain);
        }
        // A unit below another selected one is walked with it.
        let tops: Vec<String> = chains.iter().filter_map(|c| c.last().cloned()).collect();
        chains.retain(|c| !c.iter().take(c.len() - 1).any(|a| tops.contains(a)));
        chains.sort();
        chains.dedup();
        let inside: BTreeSet<String> = chains.iter().filter_map(|c| c.last()).flat_map(|t| known.subtree(t)).collect();
        let excluded_ids_inside =
            selector.exclude_organizational_unit_ids.iter().filter(|id| inside.contains(*id)).cloned().collect();
        let excluded_paths_inside = selector
            .exclude_organizational_unit_paths
            .iter()
            .filter(|p| by_path.get(*p).is_some_and(|id| inside.contains(*id)))
            .cloned()
            .collect();
        Some(Scope { chains, excluded_ids_inside, excluded_paths_inside, selector: selector.clone() })
    }
}
