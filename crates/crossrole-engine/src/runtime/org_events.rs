//! Organizations events, not polls: the reader of the SQS queue EventBridge feeds with AWS Organizations events,
//! so that crossroled reacts in seconds where a binding's schedule would take its interval.
//!
//! Each tick receives through the call layer, like every AWS call: once, long polling, up to 10 messages; when
//! that fills, up to [`RECEIVES`] more at once without waiting, so that a backlog is read 100 messages a round.
//! A message must come from where Organizations sends its events ([`crossrole_core::org_events::Origin`]: the
//! CloudTrail detail types, the region, the organization's management account), or it is deleted at once, costing
//! no AWS call. The messages' changes ([`crossrole_core::org_events::parse_from`]), the same account named by
//! many messages once, go to discovery, which reads the accounts they name
//! again ([`crossrole_aws::discovery::Discovery::learn`]), and then to the bindings, which reconcile just those
//! accounts where they concern them ([`Bindings::reconcile_accounts`]): a new account gets its roles, an account that moved in
//! or out gets its role or loses it, one that left leaves the grants. Only then are the messages deleted: if
//! reading or reconciling fails, they come back after the queue's visibility timeout and are handled again
//! (everything here is idempotent). Messages that are malformed or name nothing to do are deleted at once, and
//! counted. Changed units (created, renamed, deleted) drop discovery's tree; the bindings' schedule, the safety net
//! for anything an event did not say, re-resolves them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_aws::{
    api::{QueueApi, QueueMessage},
    calls::{CallContext, Quota},
};
use crossrole_core::org_events::{self, OrgChange, Origin, Parsed};

use super::{Loop, QueueConfig};
use crate::{Engine, backoff::Backoff, bindings::Bindings};

/// Receives made at once, besides the first, when the queue has a backlog (10 messages each).
pub const RECEIVES: usize = 9;

/// Who starts the reconciles events cause, in the journal and the audit of operations.
pub const ORGANIZATIONS_EVENTS: &str = "organizations-events";

/// Messages read, by what they were (`joined`, `moved`, `left`, `tagged`, `units`, `ignored`, `malformed`), and
/// the receives that failed.
#[derive(Debug, Default)]
pub struct EventCounters {
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    receive_errors: Mutex<u64>,
}

impl EventCounters {
    fn count(&self, kind: &'static str) {
        if let Ok(mut m) = self.by_kind.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    fn receive_failed(&self) {
        if let Ok(mut n) = self.receive_errors.lock() {
            *n += 1;
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

/// The loop.
pub(crate) struct Reader {
    engine: Engine,
    bindings: Bindings,
    queue: Arc<dyn QueueApi>,
    url: String,
    wait: Duration,
    counters: Arc<EventCounters>,
    /// Between receives that fail after the call layer's retries.
    backoff: Backoff,
}

impl Reader {
    pub(crate) fn new(
        engine: Engine,
        bindings: Bindings,
        config: &QueueConfig,
        counters: Arc<EventCounters>,
    ) -> Reader {
        tracing::info!(wait = ?config.wait, "reading Organizations events");
        Reader {
            queue: engine.aws().queue(&config.queue_url),
            url: config.queue_url.clone(),
            wait: config.wait,
            engine,
            bindings,
            counters,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }

    /// Where genuine events come from: the organization's management account once a walk has said which.
    async fn origin(&self) -> Origin {
        let management =
            self.engine.discovery().cached_tree().await.map(|t| t.organization.management_account_id.clone());
        Origin::new(self.engine.partition(), management.filter(|m| !m.is_empty()))
    }

    /// The messages' changes, counted, each account once; malformed and ignored messages are logged.
    fn changes(&self, messages: &[QueueMessage], origin: &Origin) -> Vec<OrgChange> {
        let mut changes: Vec<OrgChange> = Vec::new();
        for m in messages {
            match org_events::parse_from(&m.body, origin) {
                Parsed::Change(event) => {
                    self.counters.count(event.change.kind());
                    tracing::info!(
                        event = event.id,
                        name = event.name,
                        time = event.time,
                        account = event.change.account_id().unwrap_or_default(),
                        "Organizations event"
                    );
                    if !changes.contains(&event.change) {
                        changes.push(event.change);
                    }
                }
                Parsed::Ignored(why) => {
                    self.counters.count("ignored");
                    tracing::debug!(message = m.id, why, "Organizations event ignored");
                }
                Parsed::Malformed(why) => {
                    self.counters.count("malformed");
                    tracing::warn!(
                        message = m.id,
                        why,
                        "a message on the events queue is not an Organizations event; deleted"
                    );
                }
            }
        }
        changes
    }

    /// Reads the accounts `changes` name again and reconciles them in the bindings they concern.
    async fn react(&self, ctx: &CallContext, changes: &[OrgChange]) -> Result<(), crate::Error> {
        let learned = self.engine.discovery().learn(ctx, changes).await?;
        let started = self.bindings.reconcile_accounts(&learned.accounts, ORGANIZATIONS_EVENTS).await?;
        tracing::info!(
            accounts = learned.accounts.len(),
            tree_dropped = learned.tree_dropped,
            reconciles = started.len(),
            "acted on Organizations events"
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl Loop for Reader {
    fn name(&self) -> &'static str {
        "organizations-events"
    }

    async fn tick(&mut self) -> Duration {
        let ctx = CallContext::new();
        let calls = self.engine.calls().clone();
        let quota = Quota::Queue(self.url.clone());
        let receive = |wait: Duration| {
            let (calls, ctx, quota, queue) = (calls.clone(), ctx.clone(), quota.clone(), self.queue.clone());
            async move { calls.call(&ctx, quota, "ReceiveMessage", || queue.receive(10, wait)).await }
        };
        let mut messages = match receive(self.wait).await {
            Ok(m) => {
                self.backoff.reset();
                m
            }
            Err(e) => {
                self.counters.receive_failed();
                let pause = self.backoff.delay();
                tracing::warn!(error = %e, retry_in = ?pause, "cannot receive Organizations events");
                return pause;
            }
        };
        if messages.is_empty() {
            return Duration::ZERO;
        }
        if messages.len() == 10 {
            // A backlog: read more of it at once, without waiting.
            let more = futures::future::join_all((0..RECEIVES).map(|_| receive(Duration::ZERO))).await;
            messages.extend(more.into_iter().flatten().flatten());
        }
        let changes = self.changes(&messages, &self.origin().await);
        if !changes.is_empty()
            && let Err(e) = self.react(&ctx, &changes).await
        {
            // Left on the queue: handled again once their visibility timeout runs out.
            tracing::warn!(error = %e, "cannot act on Organizations events now; they come back from the queue");
            return Duration::ZERO;
        }
        let receipts: Vec<String> = messages.into_iter().map(|m| m.receipt_handle).collect();
        let deletes = receipts.chunks(10).map(|batch| {
            let (calls, ctx, quota, queue) = (calls.clone(), ctx.clone(), quota.clone(), self.queue.clone());
            async move { calls.call(&ctx, quota, "DeleteMessageBatch", || queue.delete(batch)).await }
        });
        for deleted in futures::future::join_all(deletes).await {
            match deleted {
                Ok(failed) => {
                    for (_, why) in failed {
                        tracing::warn!(why, "an Organizations event was not deleted; it will be handled again");
                    }
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot delete handled Organizations events; they will be handled again"
                ),
            }
        }
        Duration::ZERO
    }
}
