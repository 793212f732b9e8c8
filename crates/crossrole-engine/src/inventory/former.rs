//! The organization's former members, for the inventory's classification: the accounts crossrole saw as members
//! before (every tree discovery saved or loaded is noted in the journal, see `organization_cache`) and those the
//! organization still lists in a state other than ACTIVE (a closed account stays listed, SUSPENDED, for some 90
//! days), unless ACTIVE now. A trust naming one is the "left the organization" finding, not an outsider's.
//!
//! What crossrole never saw is not known: an account that joined and left while no crossroled of this journal read
//! the organization (or before its journal noted members) is taken for an outsider — still a finding, named as one.

use std::collections::BTreeSet;

use crossrole_store::Journal;

use crate::Error;

/// Every account the journal noted as seen as a member of the organization: read once per run (beside what
/// crossrole placed), it gives, with the tree the run reads, the accounts to classify as former members
/// (`crossrole_core::inventory::former_members(tree, seen)`).
pub(crate) async fn members_seen(journal: &dyn Journal) -> Result<BTreeSet<String>, Error> {
    Ok(journal.members_seen().await?.into_iter().map(|(id, _)| id).collect())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Arc,
        time::{Duration, SystemTime},
    };

    use crossrole_aws::discovery::DiscoveryStore;
    use crossrole_core::{
        inventory,
        org::{OrgTree, fixture::TreeBuilder},
        spec::AccountState,
    };
    use crossrole_store::SqliteJournal;

    use super::*;
    use crate::organization_cache::OrganizationCache;

    const MANAGEMENT: &str = "111122223333";
    const STAYS: &str = "222233334444";
    const LEAVES: &str = "333344445555";
    const CLOSED: &str = "444455556666";
    const LATER: &str = "555566667777";

    /// As the run has them: the journal's read once, the organization's tree as read now.
    async fn former_members(journal: &dyn Journal, tree: &OrgTree) -> Result<BTreeSet<String>, Error> {
        let seen = members_seen(journal).await?;
        Ok(inventory::former_members(tree, seen.iter().map(String::as_str)))
    }

    fn tree(accounts: &[(&str, AccountState)]) -> OrgTree {
        let mut b = TreeBuilder::new("o-a1b2c3d4e5", MANAGEMENT, "r-root").account(
            "r-root",
            MANAGEMENT,
            "management",
            AccountState::Active,
        );
        for (id, state) in accounts {
            b = b.account("r-root", id, id, *state);
        }
        b.build()
    }

    #[tokio::test]
    async fn an_account_seen_in_a_tree_before_and_gone_now_is_a_former_member() {
        let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::in_memory().unwrap());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_464_800);
        let before = tree(&[(STAYS, AccountState::Active), (LEAVES, AccountState::Active)]);
        OrganizationCache::new(journal.clone()).save_tree(at, &before).await.unwrap();
        // The organization now: LEAVES is gone, CLOSED is listed SUSPENDED, LATER joined. Another crossroled of the
        // journal (a restart) saves it, and knows LEAVES only from the journal.
        let now =
            tree(&[(STAYS, AccountState::Active), (CLOSED, AccountState::Suspended), (LATER, AccountState::Active)]);
        OrganizationCache::new(journal.clone()).save_tree(at + Duration::from_secs(60), &now).await.unwrap();
        let former = former_members(&*journal, &now).await.unwrap();
        assert_eq!(former, BTreeSet::from([LEAVES.to_string(), CLOSED.to_string()]));
        // Had LATER been seen only in a tree saved before it left, it would be one too; it is ACTIVE now.
        assert!(!former.contains(LATER) && !former.contains(STAYS) && !former.contains(MANAGEMENT));
    }

    #[tokio::test]
    async fn a_tree_loaded_from_the_journal_is_noted_too() {
        let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::in_memory().unwrap());
        // A tree saved without noting its members (as a journal written before members were noted holds it).
        let before = tree(&[(LEAVES, AccountState::Active)]);
        let payload = crate::records::encode(&before);
        journal.save_organization_tree(crossrole_store::Discovered { fetched_at_ms: 5, payload }).await.unwrap();
        assert!(journal.members_seen().await.unwrap().is_empty());
        OrganizationCache::new(journal.clone()).load_tree(0).await.unwrap();
        let now = tree(&[]);
        assert_eq!(former_members(&*journal, &now).await.unwrap(), BTreeSet::from([LEAVES.to_string()]));
    }
}
