//! What Organizations discovery read, kept in the journal: the tree and each account's tags, as journal records
//! with the time they were read. A restarted crossroled starts from them (see `crossrole_aws::discovery`), so a tag
//! selector over thousands of accounts does not cost a `ListTagsForResource` per account at every start. The
//! journal's tree, at its newest revision, is also the one every replica of a shared journal works from: whichever
//! replica reads Organizations events patches it, and the others take it before their next use of the tree.
//!
//! Every account of every tree saved or loaded is also noted as seen as a member ([`Journal::note_members`]), and
//! kept after it leaves: the inventory tells a trust naming an account that left the organization from one naming
//! a stranger by it (`inventory::former`).
//!
//! A record that cannot be read or written is logged; discovery works from the tree it has, or reads from
//! Organizations.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use crossrole_aws::discovery::{DiscoveryStore, StoredTree};
use crossrole_core::org::OrgTree;
use crossrole_store::{Discovered, Journal};

use crate::records;

/// Discovery's store in the journal.
pub(crate) struct OrganizationCache {
    journal: Arc<dyn Journal>,
    /// The accounts this crossroled has noted as seen (so a tree saved again costs no write for them).
    noted: Mutex<HashSet<String>>,
}

impl OrganizationCache {
    pub(crate) fn new(journal: Arc<dyn Journal>) -> OrganizationCache {
        OrganizationCache { journal, noted: Mutex::new(HashSet::new()) }
    }

    /// Notes the accounts of `tree` it has not noted yet as seen as members at `at`; a failure is logged (and the
    /// accounts tried again with the next tree).
    async fn note_members(&self, at: SystemTime, tree: &OrgTree) {
        let new: Vec<String> = match self.noted.lock() {
            Ok(noted) => tree.accounts.keys().filter(|a| !noted.contains(*a)).cloned().collect(),
            Err(_) => return,
        };
        if new.is_empty() {
            return;
        }
        match self.journal.note_members(millis(at), new.clone()).await {
            Ok(()) => {
                if let Ok(mut noted) = self.noted.lock() {
                    noted.extend(new);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not note the organization's members in the journal"),
        }
    }
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[async_trait]
impl DiscoveryStore for OrganizationCache {
    async fn load_tree(&self, newer_than: u64) -> Option<StoredTree> {
        let saved = match self.journal.organization_tree(newer_than).await {
            Ok(saved) => saved?,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the organization's tree from the journal");
                return None;
            }
        };
        match records::decode::<OrgTree>(&saved.tree.payload, "the organization's tree") {
            Ok(tree) => {
                let walked = time(saved.tree.fetched_at_ms);
                self.note_members(walked, &tree).await;
                Some(StoredTree { revision: saved.revision, walked, tree })
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the organization's tree in the journal");
                None
            }
        }
    }

    async fn save_tree(&self, at: SystemTime, tree: &OrgTree) -> Option<u64> {
        self.note_members(at, tree).await;
        let d = Discovered { fetched_at_ms: millis(at), payload: records::encode(tree) };
        match self.journal.save_organization_tree(d).await {
            Ok(revision) => Some(revision),
            Err(e) => {
                tracing::warn!(error = %e, "could not keep the organization's tree in the journal");
                None
            }
        }
    }

    async fn load_tags(&self) -> Vec<(String, SystemTime, BTreeMap<String, String>)> {
        let rows = match self.journal.account_tags().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read account tags from the journal");
                return Vec::new();
            }
        };
        rows.into_iter()
            .filter_map(|(account, d)| {
                match records::decode::<BTreeMap<String, String>>(&d.payload, &format!("the tags of {account}")) {
                    Ok(tags) => Some((account, time(d.fetched_at_ms), tags)),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an account's tags in the journal");
                        None
                    }
                }
            })
            .collect()
    }

    async fn save_tags(&self, at: SystemTime, tags: &[(String, BTreeMap<String, String>)]) {
        let at = millis(at);
        let rows = tags
            .iter()
            .map(|(account, t)| (account.clone(), Discovered { fetched_at_ms: at, payload: records::encode(t) }))
            .collect();
        if let Err(e) = self.journal.save_account_tags(rows).await {
            tracing::warn!(error = %e, "could not keep account tags in the journal");
        }
    }
}
