//! Retention: finished operations and old audit entries leave the journal after a while, so that it does not grow
//! without bound while bindings reconcile every few minutes.
//!
//! Two ages: one for every finished operation, and a shorter one for reconciles that found everything in place
//! (each account unchanged or skipped): those are most of a binding's history and say nothing an auditor needs
//! beyond "nothing changed", which the binding's status and the later operations also say. Unfinished operations
//! and each binding's newest operation are always kept. Placements (which accounts hold a spec's role) are not
//! operations and are never expired.

use std::time::Duration;

use crossrole_core::ops::{OperationKind, Outcome};
use crossrole_store::Expiry;

use crate::{Engine, Error, records};

/// How long finished operations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Every finished operation is deleted this long after it ended; `None`: kept forever.
    pub operations: Option<Duration>,
    /// A reconcile that changed nothing is deleted this long after it ended; `None`: as any other operation.
    pub quiet_reconciles: Option<Duration>,
    /// Audit entries are deleted this long after they were recorded; `None`: kept forever.
    pub audit: Option<Duration>,
}

/// What one pass of retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Operations, with their account results and events.
    pub operations: u64,
    /// Audit entries.
    pub audit_entries: u64,
}

impl Default for Retention {
    /// 90 days for operations; one day for reconciles that changed nothing; a year for the audit log.
    fn default() -> Self {
        Retention {
            operations: Some(Duration::from_secs(90 * 24 * 3600)),
            quiet_reconciles: Some(Duration::from_secs(24 * 3600)),
            audit: Some(Duration::from_secs(365 * 24 * 3600)),
        }
    }
}

impl Retention {
    /// How often to look for what has expired: a tenth of the shorter age, from 10 seconds to 10 minutes.
    pub fn period(&self) -> Option<Duration> {
        let shortest = [self.operations, self.quiet_reconciles, self.audit].into_iter().flatten().min()?;
        Some((shortest / 10).clamp(Duration::from_secs(10), Duration::from_secs(600)))
    }
}

/// Operations deleted in one transaction.
const PAGE: usize = 500;

impl Engine {
    /// Deletes the operations (a page at a time) and audit entries `retention` lets go as of `now_ms`.
    pub async fn expire(&self, retention: &Retention, now_ms: i64) -> Result<Expired, Error> {
        let final_states = records::final_states();
        let before = |age: Duration| now_ms.saturating_sub(age.as_millis().min(i64::MAX as u128) as i64);
        let mut rules = Vec::new();
        if let Some(age) = retention.quiet_reconciles {
            rules.push(Expiry {
                final_states: final_states.clone(),
                ended_before: before(age),
                kinds: vec![records::stored_kind(OperationKind::Reconcile)],
                outcomes: [Outcome::Unchanged, Outcome::Skipped].into_iter().map(records::stored_outcome).collect(),
                limit: PAGE,
            });
        }
        if let Some(age) = retention.operations {
            rules.push(Expiry { final_states, ended_before: before(age), limit: PAGE, ..Expiry::default() });
        }
        let mut deleted = Expired::default();
        if let Some(age) = retention.audit {
            deleted.audit_entries = self.inner.journal.expire_audit(before(age)).await?;
        }
        for rule in rules {
            loop {
                let n = self.inner.journal.expire_operations(&rule).await?;
                deleted.operations += n;
                if n < PAGE as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(deleted)
    }
}
