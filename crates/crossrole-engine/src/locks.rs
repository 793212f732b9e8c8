//! Per-(account, role) locks: never two operations on the same role at once. A second operation waits for the
//! first; with a shared journal (several replicas) these become leases in the journal.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::OwnedMutexGuard;

/// One async lock per (account, role).
type LockTable = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// The lock table.
#[derive(Default)]
pub(crate) struct RoleLocks {
    locks: Mutex<LockTable>,
}

impl RoleLocks {
    /// Locks (account, role), waiting for the holder if there is one.
    pub(crate) async fn lock(&self, account: &str, role: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop entries nobody holds, so the table does not grow with every account ever touched.
            if locks.len() > 4096 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry((account.to_string(), role.to_string())).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_of_the_same_role_waits_and_others_do_not() {
        let locks = Arc::new(RoleLocks::default());
        let held = locks.lock("1", "R").await;
        drop(locks.lock("2", "R").await);
        drop(locks.lock("1", "Other").await);
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            drop(l2.lock("1", "R").await);
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
    }
}
