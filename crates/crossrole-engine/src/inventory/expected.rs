//! What crossrole expects of the roles it owns, for the inventory's drift finding: each binding's spec (a spec
//! kept true over time) with the accounts where the journal has it placed, read once per inventory run; and the
//! spec of a one-off apply, read once per run for each spec a role's ownership tags name, where the journal has
//! that spec placed: the newest apply or reconcile of it that succeeded — or, in an account where a newer one that
//! did not succeed everywhere (failed, cancelled, still running) succeeded, the newest such one's. The roles
//! expected of one account are made when that account is classified, so no document of the whole organization is
//! held at once: a spec per name (and per newer apply that placed it somewhere), each binding's placements, and
//! the accounts newer applies placed.
//!
//! One spec per role. A spec a binding holds is judged by the binding's spec, even where a one-off apply of
//! the same name placed it since: the binding's reconcile puts its own spec back, so the apply's is the drift. Two
//! specs that expect a role of the same name in one account (one placed it, the role was deleted, the other made
//! it again) are told apart by the role's ownership tags: the spec they name, placed there, is the one it is
//! judged by.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, btree_map::Entry},
    sync::Arc,
};

use crossrole_core::{
    AccessSpec,
    inventory::{ExpectedRole, RoleDetail},
    names::Place,
    ops::{Action, OperationKind, OperationState, Outcome},
    plan::DesiredRole,
    spec::{RawSpec, owner_of},
};
use crossrole_store::{OperationFilter, OperationRow};

use crate::{Error, Inner, records, records::BindingRecord, secrets};

/// Operations read at a time, looking for a spec's newest apply.
const OPERATIONS_AT_ONCE: usize = 50;

/// Account rows read at a time, looking for where an apply placed its spec.
const ACCOUNTS_AT_ONCE: usize = 1000;

/// What crossrole expects of its roles: each binding's desired role and where it is placed, and the one-off
/// applies' specs as they are asked for.
pub(super) struct Expected {
    bindings: Vec<(DesiredRole, BTreeSet<String>)>,
    /// The names of the bindings' specs (even one that cannot be read: its spec is the binding's to keep).
    bound: BTreeSet<String>,
    /// Each spec asked for ([`Expected::applied`]), as its applies placed it.
    applied: tokio::sync::Mutex<BTreeMap<String, Applied>>,
}

/// Where a spec's applies placed which of its versions.
#[derive(Default)]
struct Applied {
    /// The newest apply or reconcile that succeeded; `None` when there is none this crossroled can read, or a
    /// destroy of the whole spec succeeded since.
    base: Option<Arc<Placed>>,
    /// By account: the newest apply or reconcile newer than `base` that succeeded there (its operation did not
    /// succeed everywhere).
    since: BTreeMap<String, Arc<Placed>>,
}

/// A spec as an apply placed it: its desired role and, when the apply kept each existing role's ExternalId (a
/// token that may not read ExternalIds applied it: [`crate::ExternalIds::Kept`]), the spec, to judge the trust
/// with the role's own ExternalId in the spec's place — the apply did not write the spec's there, and a drift
/// said of it would tell that token whether the ExternalId it sent is AWS's.
pub(super) struct Placed {
    desired: DesiredRole,
    kept: Option<AccessSpec>,
}

impl Placed {
    /// The role expected of `details`' role of this spec's name.
    fn for_role(&self, details: &[RoleDetail], partition: crossrole_core::names::Partition) -> Cow<'_, DesiredRole> {
        let Some(spec) = &self.kept else { return Cow::Borrowed(&self.desired) };
        let own = details
            .iter()
            .find(|d| d.name == self.desired.name)
            .and_then(|d| crossrole_core::policy::required_external_id(&d.trust_policy));
        match own {
            Some(own) => {
                let mut spec = spec.clone();
                spec.role.trust.external_id = Some(own);
                Cow::Owned(DesiredRole::from_spec(&spec, partition))
            }
            None => Cow::Borrowed(&self.desired),
        }
    }
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

    /// The one-off applies' specs in `account` among `placed` (the specs the journal has placed there, named by
    /// its roles' tags) that no binding holds, as the module says; each spec's applies are read from the journal
    /// the first time it is asked for. A spec whose operations cannot be read is left out (its roles are
    /// classified without a drift check), and said once in the log.
    pub(super) async fn applied(&self, inner: &Inner, account: &str, placed: &BTreeSet<String>) -> Vec<Arc<Placed>> {
        let mut applied = self.applied.lock().await;
        let mut out = Vec::new();
        for name in placed.iter().filter(|n| !self.bound.contains(*n)) {
            if !applied.contains_key(name) {
                let read = applies(inner, name).await.unwrap_or_else(|e| {
                    tracing::warn!(spec = name, error = %e, "the inventory checks no drift for a spec whose applies it cannot read");
                    Applied::default()
                });
                applied.insert(name.clone(), read);
            }
            if let Some(a) = applied.get(name) {
                out.extend(a.since.get(account).or(a.base.as_ref()).cloned());
            }
        }
        out
    }

    /// The roles crossrole expects in `account`, by (account id, role name): the bindings' placed there, and
    /// `applied`'s (from [`Expected::applied`] for the account) as the module says.
    pub(super) fn for_account(
        &self,
        place: Place<'_>,
        applied: &[Arc<Placed>],
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
        for placed in applied {
            let desired = placed.for_role(details, place.partition);
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

/// Where `name`'s applies and reconciles placed which of its versions ([`Applied`]), read newest first (dry runs
/// are none) down to the newest that succeeded, or to a destroy of the whole spec that succeeded (nothing placed
/// before it is left). A destroy limited to some accounts does not end it: the journal forgets the spec's
/// placement where one removed it.
async fn applies(inner: &Inner, name: &str) -> Result<Applied, Error> {
    let filter = OperationFilter { spec_name: name.to_string(), ..OperationFilter::default() };
    let succeeded = records::stored_state(OperationState::Succeeded);
    let mut applied = Applied::default();
    let mut before = None;
    loop {
        let (rows, next) = inner.journal.list_operations(&filter, OPERATIONS_AT_ONCE, before).await?;
        for row in &rows {
            if row.dry_run {
                continue;
            }
            match records::kind_of(row.kind) {
                Some(OperationKind::Apply | OperationKind::Reconcile) if row.state == succeeded => {
                    applied.base = Some(desired(inner, row)?);
                    return Ok(applied);
                }
                Some(OperationKind::Apply | OperationKind::Reconcile) => {
                    let placed = placed_by(inner, &row.id).await?;
                    if placed.iter().any(|a| !applied.since.contains_key(a)) {
                        let desired = desired(inner, row)?;
                        for account in placed {
                            applied.since.entry(account).or_insert_with(|| desired.clone());
                        }
                    }
                }
                Some(OperationKind::Destroy)
                    if row.state == succeeded && records::operation_scope(&row.spec).is_none() =>
                {
                    return Ok(applied);
                }
                _ => {}
            }
        }
        match next {
            Some(next) if !rows.is_empty() => before = Some(next),
            _ => return Ok(applied),
        }
    }
}

/// The spec operation `row` ran, as it placed it ([`Placed`]).
fn desired(inner: &Inner, row: &OperationRow) -> Result<Arc<Placed>, Error> {
    let what = format!("the spec of operation {}", row.id);
    let raw = records::decode::<RawSpec>(&row.spec, &what)?;
    let raw = secrets::opened(&raw, &inner.config.journal_key, &row.id, &what)?;
    let spec = AccessSpec::try_from(&raw)?;
    let desired = DesiredRole::from_spec(&spec, inner.aws.partition());
    let kept =
        records::operation_external_ids(&row.spec) == crate::ExternalIds::Kept && spec.role.trust.external_id.is_some();
    Ok(Arc::new(Placed { desired, kept: kept.then_some(spec) }))
}

/// The accounts where operation `op` made or found the spec's role as it should be (changed or unchanged, the role
/// ensured there).
async fn placed_by(inner: &Inner, op: &str) -> Result<BTreeSet<String>, Error> {
    let outcomes = [Outcome::Changed, Outcome::Unchanged].map(records::stored_outcome);
    let mut placed = BTreeSet::new();
    let mut after = None;
    loop {
        let rows = inner.journal.list_accounts(op, &outcomes, ACCOUNTS_AT_ONCE, after).await?;
        let Some(last) = rows.last() else { return Ok(placed) };
        after = Some(last.index);
        for row in &rows {
            if records::account_result(row, op)?.action == Some(Action::Ensure) {
                placed.insert(row.account_id.clone());
            }
        }
        if rows.len() < ACCOUNTS_AT_ONCE {
            return Ok(placed);
        }
    }
}
