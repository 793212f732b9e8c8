//! What crossrole expects of the roles it owns, for the inventory's drift finding: each binding's spec (a spec
//! kept true over time) with the accounts where the journal has it placed, read once per inventory run; and the
//! spec of a one-off apply — the newest apply or reconcile of it that succeeded — read once per run for each spec
//! a role's ownership tags name, where the journal has that spec placed. The roles expected of one account are
//! made when that account is classified, so no document of the whole organization is held at once: a spec per
//! name, and each binding's placements.
//!
//! One spec per name wins. A spec a binding holds is judged by the binding's spec, even where a one-off apply of
//! the same name placed it since: the binding's reconcile puts its own spec back, so the apply's is the drift. Two
//! specs that expect a role of the same name in one account (one placed it, the role was deleted, the other made
//! it again) are told apart by the role's ownership tags: the spec they name, placed there, is the one it is
//! judged by.

use std::{
    collections::{BTreeMap, BTreeSet, btree_map::Entry},
    sync::Arc,
};

use crossrole_core::{
    AccessSpec,
    inventory::{ExpectedRole, RoleDetail},
    names::Place,
    ops::{OperationKind, OperationState},
    plan::DesiredRole,
    spec::{RawSpec, owner_of},
};
use crossrole_store::OperationFilter;

use crate::{Error, Inner, records, records::BindingRecord, secrets};

/// Operations read at a time, looking for a spec's newest apply.
const OPERATIONS_AT_ONCE: usize = 50;

/// What crossrole expects of its roles: each binding's desired role and where it is placed, and the one-off
/// applies' specs as they are asked for.
pub(super) struct Expected {
    bindings: Vec<(DesiredRole, BTreeSet<String>)>,
    /// The names of the bindings' specs (even one that cannot be read: its spec is the binding's to keep).
    bound: BTreeSet<String>,
    /// Each spec asked for ([`Expected::applied`]): its newest apply or reconcile that succeeded, `None` when it
    /// has none this crossroled can read or a destroy of it succeeded since.
    applied: tokio::sync::Mutex<BTreeMap<String, Option<Arc<DesiredRole>>>>,
}

impl Expected {
    /// Every binding whose spec this crossroled reads, with its placements; a binding it cannot read is left out
    /// (its roles are then classified without a drift check), and said once in the log.
    pub(super) async fn load(inner: &Inner) -> Result<Expected, Error> {
        let mut bindings = Vec::new();
        let mut bound = BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let rows = inner.journal.list_bindings(200, after.as_deref()).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.name.clone());
            for row in rows {
                let what = format!("binding {}", row.name);
                let record = records::decode::<BindingRecord>(&row.binding, &what);
                if let Ok(record) = &record {
                    bound.insert(record.spec.name.clone());
                }
                let spec = record
                    .and_then(|r| {
                        secrets::opened(&r.spec, &inner.config.journal_key, &format!("binding:{}", row.name), &what)
                    })
                    .and_then(|raw| Ok(AccessSpec::try_from(&raw)?));
                match spec {
                    Ok(spec) => {
                        let placed = inner.journal.placements(&spec.name).await?.into_iter().collect();
                        bindings.push((DesiredRole::from_spec(&spec, inner.aws.partition()), placed));
                    }
                    Err(e) => {
                        tracing::warn!(binding = row.name, error = %e, "the inventory checks no drift for a binding it cannot read")
                    }
                }
            }
        }
        Ok(Expected { bindings, bound, applied: tokio::sync::Mutex::new(BTreeMap::new()) })
    }

    /// The one-off applies' specs among `placed` (the specs the journal has placed in an account, named by its
    /// roles' tags) that no binding holds: each one's newest apply or reconcile that succeeded, read from the
    /// journal the first time it is asked for. A spec whose operations cannot be read is left out (its roles are
    /// classified without a drift check), and said once in the log.
    pub(super) async fn applied(&self, inner: &Inner, placed: &BTreeSet<String>) -> Vec<Arc<DesiredRole>> {
        let mut applied = self.applied.lock().await;
        let mut out = Vec::new();
        for name in placed.iter().filter(|n| !self.bound.contains(*n)) {
            if !applied.contains_key(name) {
                let spec = newest_applied(inner, name).await.unwrap_or_else(|e| {
                    tracing::warn!(spec = name, error = %e, "the inventory checks no drift for a spec whose applies it cannot read");
                    None
                });
                applied.insert(name.clone(), spec.map(|s| Arc::new(DesiredRole::from_spec(&s, inner.aws.partition()))));
            }
            out.extend(applied.get(name).cloned().flatten());
        }
        out
    }

    /// The roles crossrole expects in `account`, by (account id, role name): the bindings' placed there, and
    /// `applied`'s (from [`Expected::applied`] for the account) as the module says.
    pub(super) fn for_account(
        &self,
        place: Place<'_>,
        applied: &[Arc<DesiredRole>],
        details: &[RoleDetail],
    ) -> BTreeMap<(String, String), ExpectedRole> {
        let account_id = place.account_id;
        let mut expected: BTreeMap<(String, String), ExpectedRole> = self
            .bindings
            .iter()
            .filter(|(_, placed)| placed.contains(account_id))
            .map(|(desired, _)| {
                let desired = desired.in_account(place);
                ((account_id.to_string(), desired.name.clone()), ExpectedRole::from_desired(&desired))
            })
            .collect();
        for desired in applied {
            let desired = desired.in_account(place);
            let role = ExpectedRole::from_desired(&desired);
            match expected.entry((account_id.to_string(), desired.name.clone())) {
                Entry::Vacant(e) => {
                    e.insert(role);
                }
                Entry::Occupied(mut e) => {
                    let claimed = details
                        .iter()
                        .any(|d| d.name == desired.name && owner_of(&d.tags) == Some(desired.spec_name.as_str()));
                    if claimed {
                        e.insert(role);
                    }
                }
            }
        }
        expected
    }
}

/// The spec of `name`'s newest apply or reconcile that succeeded (not a dry run), unless a destroy of the whole spec
/// succeeded after it (`None`: nothing placed since is that apply's). A destroy limited to some accounts does not
/// settle it: the journal forgets the spec's placement where one removed it.
async fn newest_applied(inner: &Inner, name: &str) -> Result<Option<AccessSpec>, Error> {
    let filter = OperationFilter {
        states: vec![records::stored_state(OperationState::Succeeded)],
        spec_name: name.to_string(),
        binding_name: String::new(),
    };
    let mut before = None;
    loop {
        let (rows, next) = inner.journal.list_operations(&filter, OPERATIONS_AT_ONCE, before).await?;
        for row in &rows {
            if row.dry_run {
                continue;
            }
            match records::kind_of(row.kind) {
                Some(OperationKind::Apply | OperationKind::Reconcile) => {
                    let what = format!("the spec of operation {}", row.id);
                    let raw = records::decode::<RawSpec>(&row.spec, &what)?;
                    let raw = secrets::opened(&raw, &inner.config.journal_key, &row.id, &what)?;
                    return Ok(Some(AccessSpec::try_from(&raw)?));
                }
                Some(OperationKind::Destroy) if records::operation_scope(&row.spec).is_none() => return Ok(None),
                _ => {}
            }
        }
        match next {
            Some(next) if !rows.is_empty() => before = Some(next),
            _ => return Ok(None),
        }
    }
}
