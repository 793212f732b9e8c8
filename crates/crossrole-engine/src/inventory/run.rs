//! Running an inventory: the organization's accounts (or those asked for) found and put on record, each read and
//! classified once the organization is read to its end (is a trusted account inside it?), on the organization-wide
//! skeleton ([`crate::sweep`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use crossrole_aws::reconcile::AccountIam;
use crossrole_core::{
    inventory::{Context, InventoryRole, RoleDetail, classify, former_members},
    names::Place,
    ops::{AccountResult, ErrorCode, OperationState, Outcome, Phase},
    org::OrgTree,
    spec::owner_of,
};
use crossrole_store::OperationRow;
use tokio_util::sync::CancellationToken;

use super::{expected::Expected, former};
use crate::{
    Inner,
    events::EventSink,
    records, rollout,
    sweep::{self, Sweep, Target, Visit},
};

/// An inventory's visit: read every role of the account, classify it, put it on record with the account's row.
struct Inventory {
    /// The accounts asked for, if not the whole organization.
    accounts: Option<BTreeSet<String>>,
    expected: Expected,
    /// Every account the journal noted as seen as a member (for the former members).
    seen: BTreeSet<String>,
    /// After how many days without use a role is reported unused (the request's).
    unused_after_days: Option<u32>,
    partition: crossrole_core::Partition,
    /// Where the journal has each spec that a role's ownership tags name placed (read once per spec per run).
    placements: tokio::sync::Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// The organization as classification sees it, once it is read to its end; its `expected` is filled for one
    /// account at a time.
    context: Mutex<Option<Context>>,
}

/// Runs (or resumes) an inventory to its end; a shutdown leaves it unfinished, to be resumed.
pub(crate) async fn run(inner: Arc<Inner>, op: OperationRow, cancel: CancellationToken, sink: EventSink) {
    let span = tracing::info_span!("operation", id = %op.id, kind = "inventory");
    let read =
        async { Ok::<_, crate::Error>((Expected::load(&inner).await?, former::members_seen(&*inner.journal).await?)) };
    let visit = read
        .await
        .map(|(expected, seen)| Inventory {
            accounts: records::operation_scope(&op.spec),
            expected,
            seen,
            unused_after_days: records::operation_unused_after_days(&op.spec),
            partition: inner.aws.partition(),
            placements: tokio::sync::Mutex::new(BTreeMap::new()),
            context: Mutex::new(None),
        })
        .map_err(|e| format!("cannot read what crossrole placed or saw of the organization: {e}"));
    sweep::run(inner, op, visit, cancel, sink, span).await
}

impl Visit for Inventory {
    /// The account's roles; the specs their ownership tags name that the journal has placed in it (`None`: the
    /// journal could not say); and the one-off applies' specs among those.
    type Done = (Vec<RoleDetail>, Option<BTreeSet<String>>, Vec<Arc<super::expected::Placed>>);
    const KIND: &'static str = "inventory";
    const NAME: &'static str = "the inventory";
    const FAILED: &'static str = "read";
    const NEEDS_ORGANIZATION: bool = true;

    fn accounts(&self) -> Option<&BTreeSet<String>> {
        self.accounts.as_ref()
    }

    fn refused(&self, _account: &str) -> Option<(ErrorCode, String)> {
        None
    }

    fn organization(&self, tree: &OrgTree) {
        let mut context = Context::new(tree.organization.id.clone(), self.partition, now_secs());
        context.member_account_ids = tree.account_ids();
        context.former_member_account_ids = former_members(tree, self.seen.iter().map(String::as_str));
        if let Some(days) = self.unused_after_days {
            context.unused_after_days = days;
        }
        *self.context.lock().unwrap_or_else(|e| e.into_inner()) = Some(context);
    }

    async fn visit<'a>(
        &'a self,
        sweep: &'a Sweep<Self>,
        target: &'a Target,
        iam: &'a AccountIam<'a>,
    ) -> Result<Self::Done, (crossrole_aws::Error, Phase)> {
        sweep.sink.emit(&target.account_id, crossrole_core::ops::Event::PhaseStarted { phase: Phase::Read });
        let details = iam.role_details().await.map_err(|e| (e, Phase::Read))?;
        let placed = self.placed(sweep, &target.account_id, &details).await;
        let applied = match &placed {
            Some(placed) => self.expected.applied(&sweep.inner, &target.account_id, placed).await,
            None => Vec::new(),
        };
        Ok((details, placed, applied))
    }

    fn record(&self, sweep: &Sweep<Self>, result: &mut AccountResult, (details, placed, applied): Self::Done) {
        // Read, and nothing changed: an inventory writes nothing.
        result.outcome = Outcome::Unchanged;
        let roles: Vec<InventoryRole> = {
            let place =
                Place { partition: self.partition, account_id: &result.account_id, account_name: &result.account_name };
            let expected = self.expected.for_account(place, &applied, &details);
            let mut context = self.context.lock().unwrap_or_else(|e| e.into_inner());
            let Some(context) = context.as_mut() else {
                // Visits wait for the organization (`NEEDS_ORGANIZATION`): never reached.
                tracing::error!("an account was read before the organization");
                return;
            };
            context.expected = expected;
            context.placed_specs = placed;
            details.iter().map(|d| classify(d, context)).collect()
        };
        sweep.sink.inventory_account(result, &roles);
    }

    fn ending(failed: u32) -> (OperationState, String) {
        let message = match failed {
            0 => String::new(),
            n => format!("{} could not be {}; each says why", rollout::accounts(n as usize), Self::FAILED),
        };
        (OperationState::Succeeded, message)
    }
}

impl Inventory {
    /// The specs the roles' ownership tags name that the journal has placed in `account`; `None` when the journal
    /// cannot say (then no claim is questioned).
    async fn placed(&self, sweep: &Sweep<Self>, account: &str, details: &[RoleDetail]) -> Option<BTreeSet<String>> {
        let claimed: BTreeSet<&str> = details.iter().filter_map(|d| owner_of(&d.tags)).collect();
        let mut placements = self.placements.lock().await;
        let mut placed = BTreeSet::new();
        for spec in claimed {
            if !placements.contains_key(spec) {
                match sweep.inner.journal.placements(spec).await {
                    Ok(accounts) => {
                        placements.insert(spec.to_string(), accounts.into_iter().collect());
                    }
                    Err(e) => {
                        tracing::warn!(spec, error = %e, "cannot read where the spec is placed; its roles' tags are taken as they are");
                        return None;
                    }
                }
            }
            if placements.get(spec).is_some_and(|accounts| accounts.contains(account)) {
                placed.insert(spec.to_string());
            }
        }
        Some(placed)
    }
}

/// Now, Unix seconds.
fn now_secs() -> i64 {
    crate::now_ms() / 1000
}
