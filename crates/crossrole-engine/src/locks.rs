//! Per-(account, role) locks: never two operations on the same role at once.
//!
//! In one crossroled these are in-process locks; a second operation waits (the default) or is refused. With a
//! shared PostgreSQL journal they would become row leases.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::OwnedMutexGuard;

/// What a second operation on a locked role does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockPolicy {
    /// Wait for the first one.
    #[default]
    Wait,
    /// Fail the account with `busy`.
    Refuse,
}

/// One async lock per (account, role).
type LockTable = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// The lock table.
#[derive(Default)]
pub(crate) struct RoleLocks {
    locks: Mutex<LockTable>,
}

impl RoleLocks {
    /// Locks (account, role); `None` if refused.
    pub(crate) async fn lock(&self, account: &str, role: &str, policy: LockPolicy) -> Option<OwnedMutexGuard<()>> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop entries nobody holds, so the table does not grow with every account ever touched.
            if locks.len() > 4096 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry((account.to_string(), role.to_string())).or_default().clone()
        };
        match policy {
            LockPolicy::Wait => Some(lock.lock_owned().await),
            LockPolicy::Refuse => lock.try_lock_owned().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_or_is_refused() {
        let locks = Arc::new(RoleLocks::default());
        let held = locks.lock("1", "R", LockPolicy::Wait).await.unwrap();
        assert!(locks.lock("1", "R", LockPolicy::Refuse).await.is_none());
        assert!(locks.lock("2", "R", LockPolicy::Refuse).await.is_some());
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move { l2.lock("1", "R", LockPolicy::Wait).await.is_some() });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        assert!(waiter.await.unwrap());
    }
}
