//! How the crossroleds of one journal share its work, apart from the journal, which only stores (quickwit keeps
//! cluster membership and leader election apart from its metastore in the same way).
//!
//! [`Coordination`] says which operations this process runs, which (account, role) it holds, whether it runs the
//! work for one replica, and when it must stop writing. [`SingleNode`] is one crossroled per journal (SQLite under
//! its data directory's lock; tests): everything is its own, at once, and nothing is ever lost. PostgreSQL has its
//! own two: its one writer, held by a session lock that can be lost, and its replicas sharing the work
//! ([`crate::PostgresJournal::coordination`]).

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Journal, OperationRow, StoreError};

/// The coordination of the crossroleds that run one journal's operations.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Whether several live replicas share the journal's work (then roles are locked across them, and each claims
    /// what dead ones left).
    fn shares_work(&self) -> bool;
    /// The unfinished operations this process should run now: when replicas share the work, at most `limit` (at
    /// least 1) of those whose owner is no longer alive, claimed for this replica; with one writer, every
    /// unfinished one.
    async fn claim_operations(&self, limit: usize) -> Result<Vec<OperationRow>, StoreError>;
    /// Takes (account, role) for `operation` across replicas: the token it is held with, or `None` while another
    /// live replica holds it (ask again later). With one writer, the engine's own locks are enough: always taken.
    async fn lock_role(&self, account: &str, role: &str, operation: &str) -> Result<Option<String>, StoreError>;
    /// Gives back (account, role) taken with `token`.
    async fn unlock_role(&self, account: &str, role: &str, token: &str) -> Result<(), StoreError>;
    /// Replicas alive now, this one included (1 with one writer).
    async fn live_replicas(&self) -> Result<usize, StoreError>;
    /// Resolves when this process runs the work only one replica may do (the binding scheduler, the events reader,
    /// retention): at once with one writer.
    async fn leader(&self);
    /// Leaves the replicas at a clean stop: what this one owns is free for the others at once, and it writes
    /// nothing more. Nothing to do with one writer.
    async fn release(&self) -> Result<(), StoreError>;
    /// Resolves when this process can no longer write the journal, with why (another crossroled may hold it now,
    /// or run its work). Never, for a journal that cannot be lost.
    async fn writer_lost(&self) -> String;
}

/// One crossroled per journal, which nothing takes from it while it runs (SQLite, whose data directory it holds
/// locked; tests).
pub struct SingleNode {
    journal: Arc<dyn Journal>,
}

impl SingleNode {
    /// The coordination of the one crossroled that runs `journal`.
    pub fn new(journal: Arc<dyn Journal>) -> SingleNode {
        SingleNode { journal }
    }
}

#[async_trait]
impl Coordination for SingleNode {
    fn shares_work(&self) -> bool {
        false
    }

    async fn claim_operations(&self, _limit: usize) -> Result<Vec<OperationRow>, StoreError> {
        self.journal.unfinished_operations().await
    }

    async fn lock_role(&self, _account: &str, _role: &str, _operation: &str) -> Result<Option<String>, StoreError> {
        Ok(Some(String::new()))
    }

    async fn unlock_role(&self, _account: &str, _role: &str, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn live_replicas(&self) -> Result<usize, StoreError> {
        Ok(1)
    }

    async fn leader(&self) {}

    async fn release(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn writer_lost(&self) -> String {
        std::future::pending().await
    }
}
