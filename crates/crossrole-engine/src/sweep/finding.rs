//! Where a sweep's accounts come from: the organization read (or its tree, if discovery holds one young enough),
//! each ACTIVE account handed out as its page is listed, and the rest once the organization is read to its end.
//!
//! Every account gets its row before it is handed out, written once with its name (the organization's, as its
//! page lists it). A run about named accounts ([`Visit::accounts`]) numbers them first, in account id order, and
//! puts on record at once only those it refuses (skipped, with why); the organization then says which are ACTIVE
//! members: each is put on record as it is listed, and one that is not is skipped with why once it is read to its
//! end (or said not started, if the run is cancelled first). A run about the whole organization puts each ACTIVE
//! account on record as it is found, with the next index. A resumed run takes the rows its earlier run left (and
//! numbers again, as before, the named accounts it left without one): the final ones are not visited again, the
//! others are handed out when the organization lists them, their rows written again only if they no longer say
//! pending under that name; `TargetsResolved` is said once, by the run that read the organization to its end.

use std::{
    collections::{BTreeMap, BTreeSet},
    pin::Pin,
    sync::Arc,
};

use crossrole_core::{
    ops::{AccountError, ErrorCode, Event, Outcome, Phase},
    org::{AccountInfo, OrgTree, Selection},
    spec::{AccountState, TargetSelector},
};
use crossrole_store::OperationRow;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::{Sweep, Target, Visit};
use crate::rollout::source;

/// The organization being read.
type Reading = Pin<Box<dyn Future<Output = Result<(Arc<OrgTree>, Selection), crossrole_aws::Error>> + Send>>;

/// What arrived while the organization was being read.
pub(super) enum Arrival {
    /// ACTIVE accounts a page listed.
    Found(Vec<AccountInfo>),
    /// The organization is read to its end (or could not be read).
    Complete(Result<(Arc<OrgTree>, Selection), crossrole_aws::Error>),
}

/// Where an account stands.
enum Row {
    /// Not handed out yet; `pending`: its row on record says pending, under `name` (a named account not listed yet
    /// has no row).
    Waiting { index: u32, name: String, pending: bool },
    /// Handed out, or final.
    Done,
}

/// The accounts of one run: their rows, and the organization being read.
pub(super) struct Finder {
    /// Every account of the run: on record, or named and numbered.
    rows: BTreeMap<String, Row>,
    next_index: u32,
    /// Accounts found are put on record as they come (a run about the whole organization).
    whole: bool,
    reading: Option<Reading>,
    found: UnboundedReceiver<Vec<AccountInfo>>,
    tree: Option<Arc<OrgTree>>,
    /// Whether an earlier run said the targets are all known.
    resolved_before: bool,
    /// Rows skipped (refused, or not ACTIVE members), by this run or an earlier one.
    skipped: u32,
}

impl Finder {
    /// The rows an earlier run left, and the named accounts without one; and the organization's read begun.
    pub(super) async fn open<V: Visit>(sweep: &Arc<Sweep<V>>, op: &OperationRow) -> Result<Finder, String> {
        let inner = &sweep.inner;
        let (found_tx, found) = unbounded_channel();
        let mut finder = Finder {
            rows: BTreeMap::new(),
            next_index: 0,
            whole: sweep.visit.accounts().is_none(),
            reading: None,
            found,
            tree: None,
            resolved_before: false,
            skipped: 0,
        };
        let rows = source::all_rows(inner, &op.id).await?;
        if !rows.is_empty() {
            finder.resolved_before = source::resolved_before(inner, &op.id).await;
        }
        for r in rows {
            finder.next_index = finder.next_index.max(r.index + 1);
            finder.skipped += u32::from(r.outcome == Outcome::Skipped);
            let row = match r.outcome.is_final() {
                true => Row::Done,
                false => Row::Waiting { index: r.index, name: r.account_name, pending: r.outcome == Outcome::Pending },
            };
            finder.rows.insert(r.account_id, row);
        }
        if let Some(accounts) = sweep.visit.accounts() {
            finder.put_named(sweep, accounts);
        }
        sweep.sink.flush().await;
        let (inner, ctx) = (inner.clone(), sweep.ctx.clone());
        finder.reading = Some(Box::pin(async move {
            let selector = whole_organization();
            let max_age = inner.discovery.config().cache_ttl;
            inner.discovery.select_within_found(&ctx, &selector, "organization", max_age, Some(&found_tx)).await
        }));
        Ok(finder)
    }

    /// Numbers the named accounts without a row, in account id order (an account's index is its place among them,
    /// in every run): those the visit refuses are put on record, skipped; the others wait for the organization to
    /// list them.
    fn put_named<V: Visit>(&mut self, sweep: &Sweep<V>, accounts: &BTreeSet<String>) {
        for (index, id) in (0u32..).zip(accounts) {
            self.next_index = self.next_index.max(index + 1);
            if self.rows.contains_key(id) {
                continue;
            }
            match sweep.visit.refused(id) {
                Some((code, why)) => {
                    let target = Target { index, account_id: id.clone(), account_name: String::new(), joined_at: None };
                    let mut r = target.result(Outcome::Skipped, Phase::Done);
                    r.error = Some(AccountError::new(code, why, Phase::Queued));
                    sweep.sink.account(&r);
                    self.rows.insert(id.clone(), Row::Done);
                    self.skipped += 1;
                }
                None => {
                    self.rows.insert(id.clone(), Row::Waiting { index, name: String::new(), pending: false });
                }
            }
        }
    }

    /// Whether the organization is still being read.
    pub(super) fn finding(&self) -> bool {
        self.reading.is_some()
    }

    /// The organization, once read to its end.
    pub(super) fn tree(&self) -> Option<Arc<OrgTree>> {
        self.tree.clone()
    }

    /// Stops reading the organization (a cancel or a shutdown): the accounts on record that were not handed out
    /// come back, to be said not started.
    pub(super) fn stop(&mut self) -> Vec<Target> {
        self.reading = None;
        let mut left = Vec::new();
        for (id, row) in &mut self.rows {
            if let Row::Waiting { index, name, .. } = std::mem::replace(row, Row::Done) {
                left.push(Target { index, account_id: id.clone(), account_name: name, joined_at: None });
            }
        }
        left
    }

    /// Waits for the next accounts found, or the end of the read. Only waits: dropping it loses nothing.
    pub(super) async fn arrival(&mut self) -> Arrival {
        let Some(reading) = self.reading.as_mut() else { return std::future::pending().await };
        tokio::select! {
            biased;
            Some(batch) = self.found.recv() => Arrival::Found(batch),
            read = reading => Arrival::Complete(read),
        }
    }

    /// The accounts to visit that `arrival` brings, each on record; once the organization is read to its end, the
    /// rest, and the accounts on record it does not have as ACTIVE members skipped with why. `Err` when the
    /// organization could not be read (the read stops).
    pub(super) async fn take<V: Visit>(&mut self, sweep: &Sweep<V>, arrival: Arrival) -> Result<Vec<Target>, String> {
        let out = match arrival {
            Arrival::Found(batch) => batch.iter().filter_map(|a| self.hand_out(sweep, a)).collect(),
            Arrival::Complete(Err(e)) => {
                self.reading = None;
                return Err(e.to_string());
            }
            Arrival::Complete(Ok((tree, selection))) => {
                self.reading = None;
                let mut out = Vec::new();
                // What was sent before the end is all in the channel by now.
                while let Ok(batch) = self.found.try_recv() {
                    out.extend(batch.iter().filter_map(|a| self.hand_out(sweep, a)));
                }
                out.extend(selection.selected.iter().filter_map(|a| self.hand_out(sweep, a)));
                self.skip_the_rest(sweep, &tree, &selection);
                if !self.resolved_before {
                    let skipped = self.skipped;
                    let targets = self.rows.len() as u32 - skipped;
                    sweep.sink.emit("", Event::TargetsResolved { targets, skipped, cleanup: 0 });
                }
                self.tree = Some(tree);
                out
            }
        };
        sweep.sink.flush().await;
        Ok(out)
    }

    /// `account` as a target, if it is one not handed out yet, on record as pending under its name first (unless
    /// its row already says so).
    fn hand_out<V: Visit>(&mut self, sweep: &Sweep<V>, account: &AccountInfo) -> Option<Target> {
        let (index, on_record) = match self.rows.get_mut(&account.id) {
            Some(row) => match std::mem::replace(row, Row::Done) {
                Row::Waiting { index, name, pending } => (index, pending && name == account.name),
                Row::Done => return None,
            },
            None if self.whole => {
                let index = self.next_index;
                self.next_index += 1;
                self.rows.insert(account.id.clone(), Row::Done);
                (index, false)
            }
            None => return None,
        };
        let target = Target {
            index,
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            joined_at: account.joined_at,
        };
        if !on_record {
            sweep.sink.account(&target.result(Outcome::Pending, Phase::Queued));
        }
        Some(target)
    }

    /// Skips the accounts on record that the organization, read to its end, does not have as ACTIVE members.
    fn skip_the_rest<V: Visit>(&mut self, sweep: &Sweep<V>, tree: &OrgTree, selection: &Selection) {
        let reasons: BTreeMap<&str, &str> =
            selection.skipped.iter().map(|s| (s.account.id.as_str(), s.reason.as_str())).collect();
        for (id, row) in &mut self.rows {
            let Row::Waiting { index, name, .. } = std::mem::replace(row, Row::Done) else { continue };
            let account = tree.accounts.get(id);
            let why = match (account, reasons.get(id.as_str())) {
                (_, Some(reason)) => reason.to_string(),
                (None, None) => "the account is not a member of the organization".to_string(),
                (Some(a), None) if a.state != AccountState::Active => format!("account is {}", a.state.as_str()),
                (Some(_), None) => "the organization's selection does not have the account".to_string(),
            };
            let target = Target {
                index,
                account_id: id.clone(),
                account_name: account.map(|a| a.name.clone()).unwrap_or(name),
                joined_at: None,
            };
            let mut r = target.result(Outcome::Skipped, Phase::Done);
            r.error = Some(AccountError::new(ErrorCode::AccountNotActive, why, Phase::Queued));
            sweep.sink.account(&r);
            self.skipped += 1;
        }
    }
}

/// Every ACTIVE account of the organization, the management account with them.
fn whole_organization() -> TargetSelector {
    TargetSelector {
        organizational_unit_paths: vec!["/Root".into()],
        include_management_account: true,
        states: [AccountState::Active].into(),
        ..TargetSelector::default()
    }
}
