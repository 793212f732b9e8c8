//! Per-(account, role) locks: never two operations on the same role (or the same grant policy) at once. A second
//! operation waits for the first. In one process the lock is a mutex; on a journal several live replicas share
//! ([`Coordination::shares_work`]) it is also held across them (a row in the journal), free when its replica dies,
//! so a second operation on another replica waits too. The wait is not cut short by a cancel: the holder's account
//! finishes its calls first.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_store::Coordination;
use tokio::sync::OwnedMutexGuard;

/// One async lock per (account, role).
type LockTable = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// The lock table.
pub(crate) struct RoleLocks {
    locks: Mutex<LockTable>,
    coordination: Arc<dyn Coordination>,
}

/// A held (account, role): given back when dropped.
pub(crate) struct RoleGuard {
    _local: OwnedMutexGuard<()>,
    /// Held across replicas too: (coordination, account, role, token).
    shared: Option<(Arc<dyn Coordination>, String, String, String)>,
}

impl Drop for RoleGuard {
    fn drop(&mut self) {
        let Some((coordination, account, role, token)) = self.shared.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        // A lock left behind (the journal refused) is free anyway once this replica is gone; on this replica the
        // next holder takes it over.
        runtime.spawn(async move {
            if let Err(e) = coordination.unlock_role(&account, &role, &token).await {
                tracing::warn!(account, role, error = %e, "cannot give back a role lock in the journal");
            }
        });
    }
}

impl RoleLocks {
    /// A lock table; across replicas too when `coordination` shares the work.
    pub(crate) fn new(coordination: Arc<dyn Coordination>) -> RoleLocks {
        RoleLocks { locks: Mutex::default(), coordination }
    }

    /// Locks (account, role) for `operation`, waiting for the holder if there is one, here or on another replica.
    pub(crate) async fn lock(&self, account: &str, role: &str, operation: &str) -> RoleGuard {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop entries nobody holds, so the table does not grow with every account ever touched.
            if locks.len() > 4096 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry((account.to_string(), role.to_string())).or_default().clone()
        };
        let local = lock.lock_owned().await;
        if !self.coordination.shares_work() {
            return RoleGuard { _local: local, shared: None };
        }
        let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut told = false;
        loop {
            match self.coordination.lock_role(account, role, operation).await {
                Ok(Some(token)) => {
                    let shared = Some((self.coordination.clone(), account.to_string(), role.to_string(), token));
                    return RoleGuard { _local: local, shared };
                }
                Ok(None) if !told => {
                    tracing::info!(account, role, "waiting for another replica's operation on the same role");
                    told = true;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(account, role, error = %e, "cannot take the role's lock in the journal"),
            }
            backoff.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_of_the_same_role_waits_and_others_do_not() {
        let journal = Arc::new(crossrole_store::SqliteJournal::in_memory().unwrap());
        let locks = Arc::new(RoleLocks::new(Arc::new(crossrole_store::SingleNode::new(journal))));
        let held = locks.lock("1", "R", "op").await;
        drop(locks.lock("2", "R", "op").await);
        drop(locks.lock("1", "Other", "op").await);
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            drop(l2.lock("1", "R", "op2").await);
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
    }
}
