//! How the crossroleds of one journal share its work, apart from the journal, which only stores (quickwit keeps
//! cluster membership and leader election apart from its metastore in the same way).
//!
//! [`Coordination`] says which operations this process runs, which (account, role) it holds, whether it runs the
//! work for one replica, and when it must stop writing. [`SingleNode`] is one crossroled per journal (SQLite under
//! its data directory's lock; tests): everything is its own, at once, and nothing is ever lost. PostgreSQL has its
//! own two: its one writer, held by a session lock that can be lost, and its replicas sharing the work
//! ([`crate::PostgresJournal::coordination`]).
//!
//! A writer that can be replaced stops writing — the journal *and AWS* — before any other crossroled may take its
//! work: its [`LeaseDeadline`], on its own monotonic clock, moves forward only with a renewal the database
//! confirmed, and the call layer refuses every AWS write attempt past it ([`LeaseTimes`] has the inequality).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::{sync::watch, time::Instant};

use crate::{Journal, OperationRow, StoreError};

/// The timing of a lease `L`, from which every other follows (15 s by default, `journal_lease`).
///
/// Another crossroled may take this one's work only after a whole lease without a renewal, counted from the
/// renewal the database last carried out, which it carried out after it was sent. This one renews every
/// [`LeaseTimes::heartbeat`] and may write — the journal and AWS — only until [`LeaseTimes::fence`] after it *sent*
/// the last renewal the database confirmed; each AWS write attempt it started before then is given up after
/// [`LeaseTimes::write_attempt`]. With a [`LeaseTimes::margin`] for the network and for clocks that run at slightly
/// different rates:
///
/// ```text
/// fence + write_attempt + margin = lease        3L/5 + L/3 + L/15 = L      (9 s + 5 s + 1 s = 15 s)
/// fence > 2 × heartbeat                         3L/5 > 2L/5               (two renewals may fail in a row)
/// ```
///
/// so every write of this process has reached AWS, or been given up, before another may start. A process paused
/// (SIGSTOP, a VM frozen) past its fence finds, when it goes on, that its deadline has passed, and sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// The lease: how long a crossroled is taken to be alive after its last renewal.
    pub lease: Duration,
}

impl LeaseTimes {
    /// The timing of `lease`.
    pub fn of(lease: Duration) -> LeaseTimes {
        LeaseTimes { lease }
    }

    /// How often the lease is renewed: a fifth of it.
    pub fn heartbeat(&self) -> Duration {
        self.lease / 5
    }

    /// How long after sending a renewal the database confirmed this process may go on writing: three fifths.
    pub fn fence(&self) -> Duration {
        self.lease * 3 / 5
    }

    /// How long one AWS write attempt may take before it is given up: a third.
    pub fn write_attempt(&self) -> Duration {
        self.lease / 3
    }

    /// What is left for the network and clock rates: a fifteenth.
    pub fn margin(&self) -> Duration {
        self.lease.saturating_sub(self.fence() + self.write_attempt())
    }
}

/// When this process must stop writing, for the call layer's fence on AWS writes.
#[derive(Debug, Clone)]
pub struct LeaseDeadline {
    /// The deadline, on this process's monotonic clock: moved forward by each confirmed renewal.
    pub until: watch::Receiver<Instant>,
    /// How long one AWS write attempt may take ([`LeaseTimes::write_attempt`]).
    pub write_attempt: Duration,
}

/// The coordination of the crossroleds that run one journal's operations.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Whether several live replicas share the journal's work (then roles are locked across them, and each claims
    /// what dead ones left).
    fn shares_work(&self) -> bool;
    /// The unfinished operations this process should run now, but those in `passed_over` (ones it gave back): when
    /// replicas share the work, at most `limit` (at least 1) of those whose owner is no longer alive, claimed for
    /// this replica; with one writer, every unfinished one.
    async fn claim_operations(&self, limit: usize, passed_over: &[String]) -> Result<Vec<OperationRow>, StoreError>;
    /// Gives back an operation this process claimed but will not run (it cannot read it: a record a newer
    /// crossroled wrote, say): free at once for another replica, one that can. Nothing to do with one writer.
    async fn give_back(&self, _operation: &str) -> Result<(), StoreError> {
        Ok(())
    }
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
    /// or run its work). Never, for a journal that cannot be lost. It resolves at the latest when the
    /// [`Coordination::fence`] passes.
    async fn writer_lost(&self) -> String;
    /// When this process must stop writing to AWS; `None` when nothing can take its work while it runs.
    fn fence(&self) -> Option<LeaseDeadline>;
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

    async fn claim_operations(&self, _limit: usize, passed_over: &[String]) -> Result<Vec<OperationRow>, StoreError> {
        let mut rows = self.journal.unfinished_operations().await?;
        rows.retain(|r| !passed_over.contains(&r.id));
        Ok(rows)
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

    fn fence(&self) -> Option<LeaseDeadline> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_leaves_room_for_a_write_attempt_and_a_margin_after_the_fence() {
        for secs in [2, 3, 15, 60, 600] {
            let t = LeaseTimes::of(Duration::from_secs(secs));
            assert_eq!(t.fence() + t.write_attempt() + t.margin(), t.lease, "{secs}s");
            assert!(t.margin() >= t.lease / 16, "{secs}s: margin {:?}", t.margin());
            assert!(t.fence() > t.heartbeat() * 2, "{secs}s: two renewals may fail in a row");
        }
        let t = LeaseTimes::of(Duration::from_secs(15));
        assert_eq!(
            (t.heartbeat(), t.fence(), t.write_attempt(), t.margin()),
            (Duration::from_secs(3), Duration::from_secs(9), Duration::from_secs(5), Duration::from_secs(1))
        );
    }
}
