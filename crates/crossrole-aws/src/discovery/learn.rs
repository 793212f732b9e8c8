//! What Organizations events teach discovery: the accounts they name are read again and put where they are now
//! in the cached tree, so that a reconcile of just those accounts needs no walk of the organization.
//!
//! An event only says where to look. Each account it names is read from Organizations (`DescribeAccount`, then
//! `ListParents` for a member): a member goes under its parent, one that is no longer a member leaves the tree,
//! and its tags are read again at its next selection. When the tree does not know an account's parent (a unit
//! made since the walk), or the units themselves changed (created, renamed, deleted: a path a selector names may
//! now mean another unit), the cached tree is dropped and the next use walks the organization. Either way the
//! store keeps what was learned (the patched tree, or the drop), so every crossroled of the store takes it at its
//! next use of the tree.
//!
//! An account Organizations says is not a member is remembered for [`STRANGER_MEMORY`] (at most
//! [`STRANGERS_KEPT`] of them): events naming it again meanwhile — a flood of forged ones — cost no call.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use crossrole_core::{org::AccountInfo, org_events::OrgChange};
use futures::{StreamExt, TryStreamExt, stream};

use super::Discovery;
use crate::{
    calls::{CallContext, Quota},
    error::Error,
};

/// What discovery did with some changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// The accounts the changes named, read again: the ones to reconcile.
    pub accounts: BTreeSet<String>,
    /// Whether the cached tree was dropped, so that the next use walks the organization.
    pub tree_dropped: bool,
}

/// How long an account Organizations said is not a member costs no call when events name it again.
pub(super) const STRANGER_MEMORY: Duration = Duration::from_secs(300);
/// How many such accounts are remembered at most.
pub(super) const STRANGERS_KEPT: usize = 10_000;

impl Discovery {
    /// Whether `id` was found not to be a member a moment ago.
    fn stranger(&self, id: &str) -> bool {
        let strangers = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        strangers.get(id).is_some_and(|at| at.elapsed() < STRANGER_MEMORY)
    }

    /// Remembers that Organizations said `ids` are not members.
    fn remember_strangers(&self, ids: impl Iterator<Item = String>) {
        let mut strangers = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        strangers.retain(|_, at| at.elapsed() < STRANGER_MEMORY);
        for id in ids {
            if strangers.len() >= STRANGERS_KEPT {
                // The oldest goes first.
                if let Some(oldest) = strangers.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                    strangers.remove(&oldest);
                }
            }
            strangers.insert(id, now);
        }
    }

    /// Reads again what `changes` name, and updates the cache (see the module's documentation).
    pub async fn learn(&self, ctx: &CallContext, changes: &[OrgChange]) -> Result<Learned, Error> {
        self.load().await;
        let mut learned = Learned::default();
        let mut units_changed = false;
        for change in changes {
            match change.account_id() {
                // An account found a moment ago not to be a member is not asked about again.
                Some(id) if self.stranger(id) => {}
                Some(id) => {
                    learned.accounts.insert(id.to_string());
                }
                None => units_changed = true,
            }
        }
        let read: Vec<(String, Option<AccountInfo>)> = stream::iter(learned.accounts.iter().cloned())
            .map(|id| async move {
                let info = self
                    .calls
                    .call(ctx, Quota::Organizations, "DescribeAccount", || self.api.describe_account(&id))
                    .await?;
                let info = match info {
                    Some(mut account) => {
                        account.parent_id = self
                            .calls
                            .call(ctx, Quota::Organizations, "ListParents", || self.api.list_parent(&id))
                            .await?;
                        Some(account)
                    }
                    None => None,
                };
                Ok::<_, Error>((id, info))
            })
            .buffer_unordered(self.config.parallelism.max(1))
            .try_collect()
            .await?;
        self.forget_tags(&learned.accounts).await;
        self.remember_strangers(read.iter().filter(|(_, info)| info.is_none()).map(|(id, _)| id.clone()));

        // The tree patched is the newest any crossroled of the store saved, and the patch is saved for them all.
        let mut held = self.tree.lock().await;
        self.catch_up(&mut held).await;
        let Some((at, tree)) = held.tree.as_mut() else { return Ok(learned) };
        let mut patched = (**tree).clone();
        let placed = !units_changed
            && read.into_iter().all(|(id, info)| match info {
                Some(account) => patched.place(account),
                None => {
                    patched.remove_account(&id);
                    true
                }
            });
        if !placed {
            // Dropped for every crossroled of the store: kept as walked at the epoch, which no use takes.
            let dropped = tree.clone();
            held.tree = None;
            drop(held);
            learned.tree_dropped = true;
            tracing::debug!("the organization's units changed; the next use walks it");
            self.keep(SystemTime::UNIX_EPOCH, &dropped).await;
            return Ok(learned);
        }
        let patched = Arc::new(patched);
        let read = self.read_time(tree);
        *tree = patched.clone();
        // The tree is as old as its walk; the accounts patched into it are as new as now.
        let walked = SystemTime::now().checked_sub(at.elapsed()).unwrap_or(SystemTime::UNIX_EPOCH);
        self.note_read(&patched, *at, read.unwrap_or(walked));
        drop(held);
        self.keep(walked, &patched).await;
        Ok(learned)
    }

    /// Makes the tags of `accounts` be read at their next selection, also after a restart.
    async fn forget_tags(&self, accounts: &BTreeSet<String>) {
        let forgotten: Vec<(String, std::collections::BTreeMap<String, String>)> = match self.tags.lock() {
            Ok(mut cache) => {
                accounts.iter().filter_map(|a| cache.remove(a).map(|(_, tags)| (a.clone(), tags))).collect()
            }
            Err(_) => return,
        };
        // Kept as read at the epoch: too old to be used when a restarted crossroled loads them.
        if let Some(store) = &self.store
            && !forgotten.is_empty()
        {
            store.save_tags(SystemTime::UNIX_EPOCH, &forgotten).await;
        }
    }
}
