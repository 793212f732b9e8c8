//! Organizations events, not polls: crossroled reads the SQS queue EventBridge feeds with AWS Organizations
//! events and reacts in seconds, where a binding's polling would take its interval.
//!
//! Each receive long-polls the queue (up to 10 messages). The messages' changes
//! ([`crossrole_core::org_events::parse`]) go to discovery, which reads the accounts they name again
//! ([`crossrole_aws::discovery::Discovery::learn`]), and then to the bindings, which reconcile just those accounts
//! where they concern them ([`Bindings::enrol`]): a new account gets its roles, an account that moved in or out is
//! enrolled or cleaned up, one that left leaves the grants. Only then are the messages deleted: if reading or
//! enrolling fails, they come back after the queue's visibility timeout and are handled again (everything here is
//! idempotent). Messages that are malformed or name nothing to do are deleted at once, and counted. Changed units
//! (created, renamed, deleted) drop discovery's tree; the bindings' periodic reconcile, the safety net for
//! anything an event did not say, re-resolves them.
//!
//! Only the crossroled that writes the journal reads the queue; a standby does not.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_aws::{api::QueueApi, calls::CallContext};
use crossrole_core::org_events::{self, OrgChange, Parsed};
use crossrole_engine::{Engine, bindings::Bindings};

use crate::config::OrganizationEvents;

/// Who starts the reconciles events cause, in the journal and the audit of operations.
pub const CALLER: &str = "organizations-events";

/// Messages read, by what they were (`joined`, `moved`, `left`, `tagged`, `units`, `ignored`, `malformed`), and
/// the receives that failed.
#[derive(Debug, Default)]
pub struct Counters {
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    receive_errors: Mutex<u64>,
}

impl Counters {
    fn count(&self, kind: &'static str) {
        if let Ok(mut m) = self.by_kind.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    /// Messages by kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.by_kind.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Receives that failed.
    pub fn receive_errors(&self) -> u64 {
        self.receive_errors.lock().map(|n| *n).unwrap_or_default()
    }
}

/// Reads the queue forever (until the task is aborted).
pub(crate) async fn consume(
    queue: Arc<dyn QueueApi>,
    engine: Engine,
    bindings: Bindings,
    config: OrganizationEvents,
    counters: Arc<Counters>,
) {
    tracing::info!(wait = ?config.wait, "reading Organizations events");
    let mut pause = Duration::from_secs(1);
    loop {
        let messages = match queue.receive(10, config.wait).await {
            Ok(m) => {
                pause = Duration::from_secs(1);
                m
            }
            Err(e) => {
                if let Ok(mut n) = counters.receive_errors.lock() {
                    *n += 1;
                }
                tracing::warn!(error = %e, retry_in = ?pause, "cannot receive Organizations events");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut changes: Vec<OrgChange> = Vec::new();
        for m in &messages {
            match org_events::parse(&m.body) {
                Parsed::Change(event) => {
                    counters.count(event.change.kind());
                    tracing::info!(
                        event = event.id,
                        name = event.name,
                        time = event.time,
                        account = event.change.account_id().unwrap_or_default(),
                        "Organizations event"
                    );
                    changes.push(event.change);
                }
                Parsed::Ignored(why) => {
                    counters.count("ignored");
                    tracing::debug!(message = m.id, why, "Organizations event ignored");
                }
                Parsed::Malformed(why) => {
                    counters.count("malformed");
                    tracing::warn!(
                        message = m.id,
                        why,
                        "a message on the events queue is not an Organizations event; deleted"
                    );
                }
            }
        }
        if !changes.is_empty()
            && let Err(e) = react(&engine, &bindings, &changes).await
        {
            // Left on the queue: handled again once their visibility timeout runs out.
            tracing::warn!(error = %e, "cannot act on Organizations events now; they come back from the queue");
            continue;
        }
        let receipts: Vec<String> = messages.into_iter().map(|m| m.receipt_handle).collect();
        match queue.delete(&receipts).await {
            Ok(failed) => {
                for (_, why) in failed {
                    tracing::warn!(why, "an Organizations event was not deleted; it will be handled again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete handled Organizations events; they will be handled again")
            }
        }
    }
}

/// Reads the accounts `changes` name again and enrols them into the bindings they concern.
async fn react(engine: &Engine, bindings: &Bindings, changes: &[OrgChange]) -> Result<(), crossrole_engine::Error> {
    let learned = engine.discovery().learn(&CallContext::new(), changes).await?;
    let started = bindings.enrol(&learned.accounts, CALLER).await?;
    tracing::info!(
        accounts = learned.accounts.len(),
        tree_dropped = learned.tree_dropped,
        reconciles = started.len(),
        "acted on Organizations events"
    );
    Ok(())
}
